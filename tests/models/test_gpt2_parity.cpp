// GPT-2 plugins against golden vectors from the PyTorch reference (tools/gpt2/golden.py) for the same
// weights: tokenizer ids exact, teacher-forced logits within 1e-4 of their scale (also over the whole
// context), greedy continuations identical while the reference's logit margin is above 1e-3.
// TESSERA_GOLDEN_DIR holds golden.json + golden.safetensors; TESSERA_MODEL_DIR the model directory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "io/safetensors.hpp"
#include "support/gpu_test.hpp"
#include "support/parity.hpp"
#include "support/sampling_replay.hpp"
#include "support/stage_runner.hpp"
#include "tessera/json.hpp"

namespace tessera::test {
namespace {

namespace fs = std::filesystem;

class Gpt2Parity : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    golden_dir_ = env("TESSERA_GOLDEN_DIR");
    model_dir_ = env("TESSERA_MODEL_DIR");
    if (golden_dir_.empty() || model_dir_.empty()) GTEST_SKIP() << "TESSERA_GOLDEN_DIR / TESSERA_MODEL_DIR not set";
    meta_ = json::parse_file((fs::path(golden_dir_) / "golden.json").string());
    golden_ = std::make_unique<io::SafetensorsFile>((fs::path(golden_dir_) / "golden.safetensors").string());
    plugins_.services().use_context(ctx());
    plugins_.load_directory(TESSERA_PLUGIN_DIR);
  }

  std::vector<int32_t> ints(const std::string& name) const { return test::golden_i32(*golden_, name); }
  std::vector<int32_t> prompt(size_t p) const {
    const std::vector<int32_t> ids = ints("prompt_ids"), off = ints("prompt_offsets");
    return std::vector<int32_t>(ids.begin() + off[p], ids.begin() + off[p + 1]);
  }
  size_t prompts() const { return ints("prompt_offsets").size() - 1; }
  std::map<std::string, std::string> model() const { return {{"model", model_dir_}}; }

  std::string golden_dir_, model_dir_;
  json::Value meta_;
  std::unique_ptr<io::SafetensorsFile> golden_;
  plugin::PluginSet plugins_;
};

TEST_F(Gpt2Parity, TokenizerMatchesTheReference) {
  // As Hugging Face tokenizers do, <|endoftext|> written in a prompt is the special token.
  StageRunner enc(plugins_, "tessera.gpt2.tokenizer", "encode", {{"vocab", model_dir_}, {"allow_special", "true"}});
  const auto& texts = meta_.at("prompts").array();
  for (size_t p = 0; p < texts.size(); ++p) {
    if (!texts[p].is(json::Kind::string)) continue;  // a prompt given as ids only
    const PortValue text = PortValue::texts({texts[p].string()});
    auto out = enc.run({{"text", &text}});
    EXPECT_EQ(out.at("tokens").ids, prompt(p)) << "prompt " << p;
  }
}

TEST_F(Gpt2Parity, TeacherForcedLogitsMatchTheReference) {
  StageRunner score(plugins_, "tessera.gpt2", "score", model());
  const std::vector<float> want = golden_->read_f32("tf_logits");
  const int64_t V = golden_->at("tf_logits").shape[1];
  size_t row = 0;
  for (size_t p = 0; p < prompts(); ++p) {
    const std::vector<int32_t> ids = prompt(p);
    const PortValue tokens = PortValue::tokens(1, static_cast<uint32_t>(ids.size()), ids);
    const std::vector<float> got = score.run({{"tokens", &tokens}}).at("logits").floats();
    const double err = scaled_max_error(got.data(), want.data() + row * V, got.size());
    EXPECT_LT(err, 1e-4) << "prompt " << p;
    std::printf("prompt %zu: %zu positions, logits max error %.2e of scale\n", p, ids.size(), err);
    row += ids.size();
  }
}

TEST_F(Gpt2Parity, TheWholeContextMatchesTheReference) {
  if (!golden_->find("long_ids")) GTEST_SKIP() << "no long sequence in these golden vectors";
  StageRunner score(plugins_, "tessera.gpt2", "score", model());
  const std::vector<int32_t> ids = ints("long_ids"), positions = ints("long_positions");
  const std::vector<float> want = golden_->read_f32("long_logits");
  const int64_t V = golden_->at("long_logits").shape[1];
  const PortValue tokens = PortValue::tokens(1, static_cast<uint32_t>(ids.size()), ids);
  const PortValue at = PortValue::tokens(1, static_cast<uint32_t>(positions.size()), positions);
  const std::vector<float> got = score.run({{"tokens", &tokens}, {"positions", &at}}).at("logits").floats();
  ASSERT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t k = 0; k < positions.size(); ++k)
    worst = std::max(worst, scaled_max_error(got.data() + k * V, want.data() + k * V, static_cast<size_t>(V)));
  EXPECT_LT(worst, 1e-4);
  std::printf("%zu positions: logits at %zu of them within %.2e of scale\n", ids.size(), positions.size(), worst);
}

TEST_F(Gpt2Parity, GreedyContinuationsMatchWhileTheMarginAllows) {
  const std::vector<int32_t> greedy = ints("greedy_ids");
  const std::vector<float> margins = golden_->read_f32("greedy_margins");
  const int64_t N = golden_->at("greedy_ids").shape[1];
  auto params = model();
  params["temperature"] = "0";
  params["max_tokens"] = std::to_string(N);
  params["stop_at_eos"] = "false";
  StageRunner gen(plugins_, "tessera.gpt2", "generate", params);
  for (size_t p = 0; p < prompts(); ++p) {
    const std::vector<int32_t> ids = prompt(p);
    const PortValue tokens = PortValue::tokens(1, static_cast<uint32_t>(ids.size()), ids);
    const std::vector<int32_t> got = gen.run({{"tokens", &tokens}}).at("tokens").ids;
    ASSERT_EQ(static_cast<int64_t>(got.size()), N);
    int64_t checked = 0;
    for (int64_t i = 0; i < N; ++i) {
      if (margins[p * N + i] <= 1e-3f) break;
      ASSERT_EQ(got[static_cast<size_t>(i)], greedy[p * N + i]) << "prompt " << p << ", step " << i;
      ++checked;
    }
    std::printf("prompt %zu: %lld of %lld greedy tokens checked\n", p, static_cast<long long>(checked),
                static_cast<long long>(N));
    EXPECT_GT(checked, 0);
  }
}

// Hugging Face's logits processors (repetition penalty, temperature, top-k, top-p, in that order), as the
// generator runs them on the GPU: fed the golden `proc_seen` as its prompt, 64 sequences draw their first
// token (sequence r with seed + r). Every draw must lie in the reference's kept set (the finite entries of
// proc_logits_out), and equal the Gumbel-max replay of the shader's random numbers over the reference's
// processed logits wherever the replay's margin allows.
TEST_F(Gpt2Parity, LogitsProcessorsMatchHuggingFaces) {
  const std::vector<int32_t> seen = ints("proc_seen");
  const std::vector<float> processed = golden_->read_f32("proc_logits_out");
  const json::Value& proc = meta_.at("processors");
  auto params = model();
  params["temperature"] = std::to_string(proc.at("temperature").number());
  params["top_k"] = std::to_string(proc.at("top_k").integer());
  params["top_p"] = std::to_string(proc.at("top_p").number());
  params["repetition_penalty"] = std::to_string(proc.at("repetition_penalty").number());
  params["max_tokens"] = "1";
  params["sequences"] = "64";
  params["stop_at_eos"] = "false";
  StageRunner gen(plugins_, "tessera.gpt2", "generate", params);
  const PortValue tokens = PortValue::tokens(1, static_cast<uint32_t>(seen.size()), seen);
  std::vector<double> kept(processed.size());
  for (size_t i = 0; i < processed.size(); ++i) kept[i] = std::isfinite(processed[i]) ? 1.0 : 0.0;
  int checked = 0, kept_drawn = 0;
  for (uint64_t seed : {3u, 1000u}) {
    const std::vector<int32_t> got = gen.run({{"tokens", &tokens}}, seed).at("tokens").ids;
    ASSERT_EQ(got.size(), 64u);
    for (uint32_t r = 0; r < 64; ++r) {
      ASSERT_TRUE(std::isfinite(processed[static_cast<size_t>(got[r])]))
          << "sequence " << r << " drew " << got[r] << ", which the reference's processors remove";
      ++kept_drawn;
      // The processed logits already carry the temperature; sequence r draws as row 0 with seed + r.
      const Replay want = replay(processed, kept, 1.0f, static_cast<uint32_t>(seed + r), 0, 0);
      if (want.margin > 1e-3f) {
        EXPECT_EQ(got[r], want.id) << "sequence " << r << ", seed " << seed;
        ++checked;
      }
    }
  }
  std::printf("%d draws inside the reference's kept set (%d tokens), %d replayed exactly\n", kept_drawn,
              static_cast<int>(meta_.at("proc_kept").integer()), checked);
  EXPECT_GT(checked, 100);
}

// Instances that differ only in settings share the weights on a device (loading them once), and a batch
// of several prompts, which the generator does not take, is refused with the count.
TEST_F(Gpt2Parity, InstancesShareWeightsAndSeveralPromptsAreRefused) {
  auto params = model();
  params["max_tokens"] = "2";
  StageRunner first(plugins_, "tessera.gpt2", "generate", params);
  const uint64_t after_first = ctx().allocator().stats().device_in_use;
  params["max_tokens"] = "3";
  params["temperature"] = "0";
  StageRunner second(plugins_, "tessera.gpt2", "generate", params);
  const int64_t C = meta_.at("config").at("n_embd").integer(), V = meta_.at("config").at("vocab_size").integer();
  EXPECT_LT(ctx().allocator().stats().device_in_use - after_first, static_cast<uint64_t>(V * C))
      << "the second instance loaded its own weights";
  const PortValue two = PortValue::texts({"a", "b"});
  try {
    second.run({{"text", &two}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("generate continues one prompt per run, found 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera::test
