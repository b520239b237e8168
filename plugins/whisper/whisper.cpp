// Plugin tessera.whisper: speech recognition with Whisper architecture models (OpenAI's published
// checkpoints after tools/whisper/convert.py, or a model Tessera trains). Audio of any rate and channel count
// is mixed to mono and resampled to 16 kHz, its log-mel computed on the GPU over the whole clip, and each 30 s
// window encoded and decoded in turn (greedy or beam search, whisper_decode.hpp).
#include <cmath>
#include <memory>

#include "tessera/audio.hpp"
#include "whisper/log_mel.hpp"
#include "whisper/whisper_decode.hpp"

namespace {

namespace sdk = tessera::sdk;
using namespace tessera_plugins::whisper;

// A model and its tokenizer, shared by stage instances on one host that name the same directory. The
// tokenizer is read first: a broken vocabulary is refused before gigabytes of weights are uploaded.
struct Loaded {
  WhisperTokenizer tokenizer;
  WhisperModel model;
  Loaded(const sdk::Host& host, const std::string& dir, bool f16)
      : tokenizer(load_tokenizer(WhisperConfig::load(dir))), model(host, dir, f16) {}

  static WhisperTokenizer load_tokenizer(const WhisperConfig& c) {
    return WhisperTokenizer::load((std::filesystem::path(c.dir) / "vocab.tiktoken").string(), c.n_vocab);
  }
};

std::shared_ptr<const Loaded> shared_model(const sdk::Host& host, const std::string& dir, bool f16) {
  return sdk::shared_per_host<Loaded>(host, dir + (f16 ? "|f16" : ""),
                                      [&] { return std::make_shared<const Loaded>(host, dir, f16); });
}

// Clip `index` of an audio input as 16 kHz mono.
std::vector<float> speech_samples(const sdk::Audio& a, uint32_t index) {
  if (a.channels == 0) throw std::runtime_error("audio: the clip has no channels");
  if (a.sample_rate == 0) throw std::runtime_error("audio: the clip has no sample rate");
  const float* clip = a.samples.data() + static_cast<size_t>(index) * a.frames * a.channels;
  std::vector<float> mono = tessera::audio::downmix(clip, a.frames, a.channels);
  if (a.sample_rate != kSampleRate) mono = tessera::audio::resample(mono.data(), mono.size(), a.sample_rate, kSampleRate);
  for (float& v : mono)
    if (!std::isfinite(v)) v = 0.0f;  // a NaN would poison the global maximum of the whole log-mel
  return mono;
}

std::string strip(const std::string& s) {
  const char* space = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(space);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

class Transcribe : public sdk::Stage {
 public:
  Transcribe(const sdk::Params& p, const sdk::Host& host)
      : host_(host),
        loaded_(shared_model(host, p.text("model"), p.boolean("f16_weights"))),
        mel_(host, static_cast<int>(loaded_->model.config().n_mels), loaded_->model.config().window_frames()),
        decoder_(host, loaded_->model, loaded_->tokenizer),
        language_(p.text("language")),
        start_(loaded_->tokenizer.start_sequence(language_)),
        beam_size_(p.integer("beam_size")),
        max_tokens_(p.integer("max_tokens")) {}

  void run(sdk::Run& r) override {
    const sdk::Audio audio = r.audio("audio");
    std::vector<std::string> texts;
    sdk::Tokens out;
    std::vector<std::vector<int32_t>> all_ids;
    for (uint32_t clip = 0; clip < audio.count; ++clip) {
      std::vector<int32_t> ids;
      texts.push_back(transcribe(r, speech_samples(audio, clip), clip, audio.count, ids));
      if (r.cancelled()) return;
      all_ids.push_back(std::move(ids));
    }
    out.rows = audio.count;
    for (const auto& ids : all_ids) out.length = std::max<uint32_t>(out.length, static_cast<uint32_t>(ids.size()));
    for (const auto& ids : all_ids)
      for (uint32_t k = 0; k < out.length; ++k) {
        out.ids.push_back(k < ids.size() ? ids[k] : loaded_->tokenizer.eot());
        out.mask.push_back(k < ids.size() ? 1 : 0);
      }
    r.set_texts("text", texts);
    r.set_tokens("tokens", out);
  }

 private:
  std::string transcribe(sdk::Run& r, const std::vector<float>& samples, uint32_t clip, uint32_t clips,
                         std::vector<int32_t>& ids) const {
    float peak = 0.0f;
    for (float v : samples) peak = std::max(peak, std::fabs(v));
    if (peak < 1e-4f) {  // below -80 dBFS: nothing to hear, and Whisper would only hallucinate
      host_.log(2, "the audio is silent; the transcript is empty");
      return "";
    }
    const WhisperModel& model = loaded_->model;
    sdk::Stream s(host_);
    const sdk::Tensor log_mel = mel_.compute(s, samples);
    const int64_t windows = mel_.windows_of(static_cast<int64_t>(samples.size()));
    EncoderScratch enc = model.new_encoder_scratch();
    const sdk::Tensor cross = model.new_cross();
    std::string text, streamed;
    for (int64_t w = 0; w < windows; ++w) {
      model.encode(s, mel_.window(log_mel, w), enc);
      model.cross_kv(s, enc.features, cross);
      s.finish();
      auto keep_going = [&](int64_t step) {
        const double within = std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(max_tokens_));
        r.progress((static_cast<double>(clip) + (static_cast<double>(w) + within) / static_cast<double>(windows)) / clips,
                   "transcribing");
        return !r.cancelled();
      };
      const Hypothesis h = decoder_.decode(cross, start_, max_tokens_, beam_size_, keep_going);
      ids.insert(ids.end(), h.tokens.begin(), h.tokens.end());
      std::string piece = loaded_->tokenizer.decode(h.tokens);
      text += piece;
      if (clips == 1) {  // a long recording shows its transcript window by window
        if (streamed.empty()) piece = strip(piece);
        if (!piece.empty()) r.stream("text", piece);
        streamed += piece;
      }
      if (r.cancelled()) break;
      r.progress((static_cast<double>(clip) + static_cast<double>(w + 1) / static_cast<double>(windows)) / clips, "transcribing");
    }
    return strip(text);
  }

  sdk::Host host_;
  std::shared_ptr<const Loaded> loaded_;
  LogMel mel_;
  WindowDecoder decoder_;
  std::string language_;
  std::vector<int32_t> start_;
  int64_t beam_size_, max_tokens_;
};

// Whisper's log-mel spectrogram of a clip (plus a window of zero padding), [n_mels, frames].
class LogMelStage : public sdk::Stage {
 public:
  LogMelStage(const sdk::Params& p, const sdk::Host& host)
      : host_(host), mel_(host, static_cast<int>(p.integer("n_mels")), p.integer("window_frames")) {}

  void run(sdk::Run& r) override {
    const sdk::Audio audio = r.audio("audio");
    if (audio.count != 1) throw std::runtime_error("log_mel takes one clip, found " + std::to_string(audio.count));
    sdk::Stream s(host_);
    const sdk::Tensor out = mel_.compute(s, speech_samples(audio, 0));
    s.finish();
    r.set_tensor("mel", out);
  }

 private:
  sdk::Host host_;
  LogMel mel_;
};

// Teacher forcing on the first window of a clip: its audio features and the logits of every position of a
// token sequence (parity checks).
class Score : public sdk::Stage {
 public:
  Score(const sdk::Params& p, const sdk::Host& host)
      : host_(host),
        loaded_(shared_model(host, p.text("model"), p.boolean("f16_weights"))),
        mel_(host, static_cast<int>(loaded_->model.config().n_mels), loaded_->model.config().window_frames()) {}

  void run(sdk::Run& r) override {
    const WhisperModel& model = loaded_->model;
    const WhisperConfig& c = model.config();
    const sdk::Audio audio = r.audio("audio");
    if (audio.count != 1) throw std::runtime_error("score takes one clip, found " + std::to_string(audio.count));
    const sdk::Tokens t = r.tokens("tokens");
    if (t.rows != 1) throw std::runtime_error("tokens: expected 1 row, found " + std::to_string(t.rows));
    const int64_t T = t.length;
    if (T < 1 || T > c.n_text_ctx)
      throw std::runtime_error(std::to_string(T) + " tokens do not fit the decoder's context of " + std::to_string(c.n_text_ctx));
    for (int32_t id : t.ids)
      if (id < 0 || id >= c.n_vocab)
        throw std::runtime_error("token " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(c.n_vocab));
    sdk::Stream s(host_);
    const sdk::Tensor log_mel = mel_.compute(s, speech_samples(audio, 0));
    EncoderScratch enc = model.new_encoder_scratch();
    model.encode(s, mel_.window(log_mel, 0), enc);
    const sdk::Tensor cross = model.new_cross();
    model.cross_kv(s, enc.features, cross);
    DecoderCache cache = model.new_cache(1, T);
    DecoderScratch pass = model.new_scratch(1, T);
    sdk::Tensor ids(host_, TESSERA_DTYPE_I32, {1, T}, "whisper.score_ids");
    ids.upload(t.ids);
    model.decode(s, cache, pass, cross, ids, 0);
    sdk::Tensor logits(host_, TESSERA_DTYPE_F32, {T, c.n_vocab}, "whisper.score_logits");
    model.head(s, pass.h.reshape({T, model.width()}), logits);
    s.finish();
    r.set_tensor("logits", logits);
    r.set_tensor("features", enc.features);
  }

 private:
  sdk::Host host_;
  std::shared_ptr<const Loaded> loaded_;
  LogMel mel_;
};

}  // namespace

TESSERA_PLUGIN("tessera.whisper", "1.0.0", "Tessera", "Whisper architecture speech recognition on the GPU",
               sdk::stage<Transcribe>(
                   "transcribe", "speech to text: log-mel on the GPU, then each window (30 s for OpenAI's models) encoded and decoded",
                   {sdk::input("audio", TESSERA_PORT_AUDIO, "speech, any rate and channel count (resampled to 16 kHz mono)")},
                   {sdk::output("text", TESSERA_PORT_TEXT, "the transcript of each clip"),
                    sdk::output("tokens", TESSERA_PORT_TOKENS, "the transcript's token ids, one row per clip")},
                   {sdk::text_param("model", nullptr, true, "model directory: config.json, model.safetensors, vocab.tiktoken"),
                    sdk::text_param("language", "en", false, "language code of the speech (multilingual models)"),
                    sdk::int_param("beam_size", 1, 1, 16, "1: greedy; more: beam search with this many beams"),
                    sdk::int_param("max_tokens", 224, 1, 448, "tokens per window at most"),
                    sdk::bool_param("f16_weights", false, "keep f32 weights as f16 on the GPU")}),
               sdk::stage<LogMelStage>("log_mel", "Whisper's log-mel spectrogram of a clip (with 30 s of zero padding)",
                                       {sdk::input("audio", TESSERA_PORT_AUDIO, "one clip, any rate and channel count")},
                                       {sdk::output("mel", TESSERA_PORT_TENSOR, "f32 [n_mels, frames]")},
                                       {sdk::int_param("n_mels", 80, 1, 512, "mel bands: 80, or 128 for large-v3"),
                                        sdk::int_param("window_frames", 3000, 2, 30000, "frames per window (2 x n_audio_ctx); a window of zeros is appended")}),
               sdk::stage<Score>("score", "teacher-forced logits of a token sequence over a clip's first window",
                                 {sdk::input("audio", TESSERA_PORT_AUDIO, "one clip"),
                                  sdk::input("tokens", TESSERA_PORT_TOKENS, "one row of ids, the start sequence first")},
                                 {sdk::output("logits", TESSERA_PORT_TENSOR, "f32 [tokens, n_vocab]"),
                                  sdk::output("features", TESSERA_PORT_TENSOR, "f32 [1500, C]: the encoder's output")},
                                 {sdk::text_param("model", nullptr, true, "model directory"),
                                  sdk::bool_param("f16_weights", false, "keep f32 weights as f16 on the GPU")}))
