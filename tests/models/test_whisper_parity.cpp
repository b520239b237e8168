// The Whisper plugin against golden vectors of the PyTorch reference (tools/whisper/golden.py) for the same
// random weights at Whisper-tiny dimensions: log-mel within 1e-4, encoder output and teacher-forced logits
// within 1e-4 of their scale, greedy tokens identical while the reference's margin is above 1e-3, beam search
// and windowing identical. TESSERA_GOLDEN_DIR holds golden.json, golden.safetensors, speech.wav, long.wav
// and model/ (or TESSERA_MODEL_DIR names the model: the bundled one).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "gpu/error.hpp"
#include "io/safetensors.hpp"
#include "io/wav.hpp"
#include "support/gpu_test.hpp"
#include "support/parity.hpp"
#include "support/stage_runner.hpp"
#include "tessera/audio.hpp"
#include "tessera/json.hpp"

namespace tessera::test {
namespace {

namespace fs = std::filesystem;

PortValue wav(const std::string& path) {
  io::Audio a = io::read_wav(path);
  return PortValue::audio(std::move(a.samples), a.channels, a.sample_rate);
}

class WhisperParity : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    dir_ = env("TESSERA_GOLDEN_DIR");
    if (dir_.empty()) GTEST_SKIP() << "TESSERA_GOLDEN_DIR not set";
    meta_ = json::parse_file((fs::path(dir_) / "golden.json").string());
    golden_ = std::make_unique<io::SafetensorsFile>((fs::path(dir_) / "golden.safetensors").string());
    plugins_.services().use_context(ctx());
    plugins_.load_directory(TESSERA_PLUGIN_DIR);
  }

  std::vector<int32_t> ints(const std::string& name) const { return test::golden_i32(*golden_, name); }
  // TESSERA_MODEL_DIR (the bundled model) or the golden directory's own random model.
  std::string model() const {
    const std::string m = env("TESSERA_MODEL_DIR");
    return m.empty() ? (fs::path(dir_) / "model").string() : m;
  }
  std::string file(const char* name) const { return (fs::path(dir_) / name).string(); }
  // The score stage over speech.wav and the golden teacher-forcing tokens: its features and logits.
  std::map<std::string, PortValue> score(const std::map<std::string, std::string>& params) {
    StageRunner stage(plugins_, "tessera.whisper", "score", params);
    const PortValue audio = wav(file("speech.wav"));
    const std::vector<int32_t> ids = ints("tf_tokens");
    const PortValue tokens = PortValue::tokens(1, static_cast<uint32_t>(ids.size()), ids);
    return stage.run({{"audio", &audio}, {"tokens", &tokens}});
  }
  std::vector<int32_t> transcribe(const std::string& clip, int64_t max_tokens, int64_t beam, std::string* text = nullptr) {
    StageRunner t(plugins_, "tessera.whisper", "transcribe",
                  {{"model", model()}, {"max_tokens", std::to_string(max_tokens)}, {"beam_size", std::to_string(beam)}});
    const PortValue audio = wav(clip);
    auto out = t.run({{"audio", &audio}});
    if (text) *text = out.at("text").text.at(0);
    std::vector<int32_t> ids;
    const PortValue& tokens = out.at("tokens");
    for (size_t k = 0; k < tokens.ids.size(); ++k)
      if (tokens.mask[k]) ids.push_back(tokens.ids[k]);
    return ids;
  }

  std::string dir_;
  json::Value meta_;
  std::unique_ptr<io::SafetensorsFile> golden_;
  plugin::PluginSet plugins_;
};

TEST_F(WhisperParity, LogMelMatchesTheReference) {
  const json::Value& dims = meta_.at("dims");
  StageRunner mel(plugins_, "tessera.whisper", "log_mel",
                  {{"n_mels", std::to_string(dims.at("n_mels").integer())},
                   {"window_frames", std::to_string(2 * dims.at("n_audio_ctx").integer())}});
  for (auto [clip, name] : {std::pair{"speech.wav", "mel"}, {"long.wav", "long_mel"}}) {
    const PortValue audio = wav(file(clip));
    auto out = mel.run({{"audio", &audio}});
    const std::vector<float> got = out.at("mel").floats();
    const std::vector<int64_t> shape = out.at("mel").shape();
    const io::StoredTensor& want_t = golden_->at(name);
    const std::vector<float> want = golden_->read_f32(name);
    const int64_t frames = want_t.shape[1];  // `mel` holds the first window only
    ASSERT_EQ(shape.at(0), want_t.shape[0]) << clip;
    ASSERT_GE(shape.at(1), frames) << clip;
    double worst = 0;
    for (int64_t m = 0; m < shape[0]; ++m)
      for (int64_t t = 0; t < frames; ++t)
        worst = std::max(worst, std::fabs(static_cast<double>(got[static_cast<size_t>(m * shape[1] + t)]) -
                                          want[static_cast<size_t>(m * frames + t)]));
    EXPECT_LT(worst, 1e-4) << clip;
    std::printf("%s: log-mel [%lld, %lld], max abs error %.2e\n", clip, static_cast<long long>(shape[0]),
                static_cast<long long>(frames), worst);
  }
}

TEST_F(WhisperParity, EncoderAndTeacherForcedLogitsMatchTheReference) {
  auto out = score({{"model", model()}});
  const double ef = scaled_max_error(out.at("features").floats(), golden_->read_f32("audio_features"));
  const double el = scaled_max_error(out.at("logits").floats(), golden_->read_f32("tf_logits"));
  EXPECT_LT(ef, 1e-4);
  EXPECT_LT(el, 1e-4);
  std::printf("audio features within %.2e of scale; %zu positions' logits within %.2e\n", ef, ints("tf_tokens").size(), el);
}

TEST_F(WhisperParity, F16WeightsStayCloseToTheReference) {
  // Real checkpoints ship fp16; keeping f32 weights as f16 on the GPU exercises the same paths.
  auto out = score({{"model", model()}, {"f16_weights", "true"}});
  const double err = scaled_max_error(out.at("logits").floats(), golden_->read_f32("tf_logits"));
  EXPECT_LT(err, 2e-2);
  EXPECT_GT(err, 1e-6);  // the weights really were rounded
  std::printf("f16 weights: logits within %.2e of scale\n", err);
}

TEST_F(WhisperParity, GreedyTranscriptMatchesWhileTheMarginAllows) {
  const std::vector<int32_t> want = ints("greedy_ids");
  const std::vector<float> margins = golden_->read_f32("greedy_margins");
  std::string text;
  const std::vector<int32_t> got = transcribe(file("speech.wav"), meta_.at("greedy_max_tokens").integer(), 1, &text);
  size_t checked = 0;
  bool all_clear = true;
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_LT(k, got.size()) << "the transcript ended early";
    EXPECT_EQ(got[k], want[k]) << "token " << k << " (margin " << margins[k] << ")";
    ++checked;
    if (margins[k] < 1e-3f) {  // past a near tie the sequences may rightly part
      all_clear = false;
      break;
    }
  }
  if (all_clear) {
    EXPECT_EQ(got.size(), want.size());
    EXPECT_EQ(text, meta_.at("greedy_text").string());
  }
  std::printf("greedy: %zu of %zu tokens checked; text \"%s\"\n", checked, want.size(), text.c_str());
}

TEST_F(WhisperParity, BeamSearchMatchesTheReference) {
  std::string text;
  const std::vector<int32_t> got =
      transcribe(file("speech.wav"), meta_.at("beam_max_tokens").integer(), meta_.at("beam_size").integer(), &text);
  EXPECT_EQ(got, ints("beam_ids"));
  EXPECT_EQ(text, meta_.at("beam_text").string());
  std::printf("beam search (%lld beams): %zu tokens, text \"%s\"\n", static_cast<long long>(meta_.at("beam_size").integer()),
              got.size(), text.c_str());
}

TEST_F(WhisperParity, LongAudioIsTranscribedWindowByWindow) {
  std::string text;
  const std::vector<int32_t> got = transcribe(file("long.wav"), meta_.at("long_max_tokens").integer(), 1, &text);
  std::vector<int32_t> want;
  for (int64_t w = 0; w < meta_.at("long_windows").integer(); ++w) {
    const std::vector<int32_t> ids = ints("long_greedy_ids_" + std::to_string(w));
    want.insert(want.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(text, meta_.at("long_text").string());
}

TEST_F(WhisperParity, SilenceAndEmptyClipsGiveAnEmptyTranscript) {
  StageRunner t(plugins_, "tessera.whisper", "transcribe", {{"model", model()}, {"max_tokens", "4"}});
  for (size_t n : {size_t{0}, size_t{16000}}) {
    const PortValue audio = PortValue::audio(std::vector<float>(n, 0.0f), 1, 16000);
    auto out = t.run({{"audio", &audio}});
    EXPECT_EQ(out.at("text").text.at(0), "") << n << " samples";
  }
}

TEST_F(WhisperParity, OtherRatesAndStereoAreResampledToTheModelRate) {
  // speech.wav at 16 kHz mono against the same speech as 48 kHz stereo (band-limited upsampling): the
  // plugin resamples it back, and the log-mel barely moves.
  io::Audio a = io::read_wav(file("speech.wav"));
  const std::vector<float> up = audio::resample(a.samples.data(), a.samples.size(), 16000, 48000);
  std::vector<float> stereo;
  for (float v : up) stereo.insert(stereo.end(), {v, v});
  StageRunner mel(plugins_, "tessera.whisper", "log_mel", {});
  const PortValue mono16 = PortValue::audio(a.samples, 1, 16000), stereo48 = PortValue::audio(stereo, 2, 48000);
  const std::vector<float> x = mel.run({{"audio", &mono16}}).at("mel").floats();
  const std::vector<float> y = mel.run({{"audio", &stereo48}}).at("mel").floats();
  ASSERT_EQ(x.size(), y.size());
  double mean = 0;
  for (size_t i = 0; i < x.size(); ++i) mean += std::fabs(static_cast<double>(x[i]) - y[i]);
  mean /= static_cast<double>(x.size());
  EXPECT_LT(mean, 0.05);
  std::printf("48 kHz stereo vs 16 kHz mono: mean log-mel difference %.4f\n", mean);
}

TEST_F(WhisperParity, StagesThatTakeOneClipRefuseSeveral) {
  PortValue two = PortValue::audio(std::vector<float>(3200, 0.1f), 1, 16000);
  two.count = 2;
  two.frames = 1600;
  const std::vector<int32_t> ids = ints("tf_tokens");
  const PortValue tokens = PortValue::tokens(1, static_cast<uint32_t>(ids.size()), ids);
  StageRunner mel(plugins_, "tessera.whisper", "log_mel", {});
  StageRunner score(plugins_, "tessera.whisper", "score", {{"model", model()}});
  test::expect_error([&] { mel.run({{"audio", &two}}); }, "log_mel takes one clip, found 2");
  test::expect_error([&] { score.run({{"audio", &two}, {"tokens", &tokens}}); }, "score takes one clip, found 2");
}

TEST_F(WhisperParity, BadSettingsAreRefusedWithTheirReason) {
  try {
    StageRunner t(plugins_, "tessera.whisper", "transcribe", {{"model", model()}, {"language", "xx"}});
    FAIL() << "an unknown language was accepted";
  } catch (const Error& e) {
    const bool multilingual = meta_.at("dims").at("n_vocab").integer() >= 51865;
    EXPECT_NE(std::string(e.what()).find(multilingual ? "language 'xx' is not one of this model's 99 languages"
                                                      : "language 'xx': this model is English-only"),
              std::string::npos)
        << e.what();
  }
  try {
    StageRunner t(plugins_, "tessera.whisper", "transcribe", {{"model", (fs::path(dir_) / "no-model").string()}});
    FAIL() << "a directory without a model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read the model config"), std::string::npos) << e.what();
  }
}

TEST_F(WhisperParity, BrokenModelFilesAreRefusedWithFileLineAndReason) {
  const fs::path dir = fs::temp_directory_path() / ("whisper-broken-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fs::path(model()) / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
  fs::create_symlink(fs::absolute(fs::path(model()) / "model.safetensors"), dir / "model.safetensors");
  const int64_t n_vocab = meta_.at("dims").at("n_vocab").integer();
  auto refused = [&](const std::string& vocab, const std::string& want) {
    std::ofstream(dir / "vocab.tiktoken") << vocab;
    try {
      StageRunner t(plugins_, "tessera.whisper", "transcribe", {{"model", dir.string()}});
      ADD_FAILURE() << "accepted a vocabulary that should give: " << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  const std::string path = (dir / "vocab.tiktoken").string();
  refused("IQ== 0\nIg== 2\n", path + ":2: rank '2', expected 1 (ranks run 0, 1, 2, ...)");
  refused("IQ== 0\n!!!! 1\n", path + ":2: the token is not valid base64");
  refused("IQ==\n", path + ":1: expected 'base64-token rank'");
  refused("IQ== 0\nIg== 1\n", path + ": 2 ranks do not fit a Whisper vocabulary of " + std::to_string(n_vocab) + " tokens");
  std::ofstream(dir / "config.json") << "{\"model_type\": \"gpt2\"}";
  try {
    StageRunner t(plugins_, "tessera.whisper", "transcribe", {{"model", dir.string()}});
    ADD_FAILURE() << "accepted a GPT-2 config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "config.json").string() + ": model_type must be \"whisper\""),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tessera::test
