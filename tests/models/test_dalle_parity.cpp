// DALL-E Mini/Mega plugins against golden vectors from the PyTorch reference (tools/dalle/golden.py) for
// the same weights: tokenizer exact, encoder state and teacher-forced logits within 1e-4 of their scale,
// greedy tokens exact while the reference's logit margin is above 1e-3, images within 1 of 255.
// TESSERA_GOLDEN_DIR holds golden.json + golden.safetensors; TESSERA_MODEL_DIR the model directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "io/files.hpp"
#include "io/safetensors.hpp"
#include "pipeline/scheduler.hpp"
#include "support/gpu_test.hpp"
#include "support/parity.hpp"
#include "support/stage_runner.hpp"
#include "tessera/json.hpp"

namespace tessera::test {
namespace {

namespace fs = std::filesystem;

class DalleParity : public GpuTest {
 protected:
  static void SetUpTestSuite() {
    golden_dir_ = env("TESSERA_GOLDEN_DIR");
    model_dir_ = env("TESSERA_MODEL_DIR");
  }
  void SetUp() override {
    GpuTest::SetUp();
    if (golden_dir_.empty() || model_dir_.empty()) GTEST_SKIP() << "TESSERA_GOLDEN_DIR / TESSERA_MODEL_DIR not set";
    meta_ = json::parse_file((fs::path(golden_dir_) / "golden.json").string());
    golden_ = std::make_unique<io::SafetensorsFile>((fs::path(golden_dir_) / "golden.safetensors").string());
    plugins_.services().use_context(ctx());
    plugins_.load_directory(TESSERA_PLUGIN_DIR);
  }

  std::vector<float> golden_f32(const std::string& name) const { return golden_->read_f32(name); }
  std::vector<int32_t> golden_i32(const std::string& name) const { return test::golden_i32(*golden_, name); }
  int64_t dim(const std::string& name, int d) const { return golden_->at(name).shape[static_cast<size_t>(d)]; }
  std::string prompt(int64_t p) const { return meta_.at("prompts").at(static_cast<size_t>(p)).string(); }
  std::map<std::string, std::string> model() const { return {{"model", model_dir_}}; }

  // Tokenizer then encoder for prompt p: the tokens and the state.
  std::pair<PortValue, PortValue> encode(StageRunner& tok, StageRunner& enc, int64_t p) {
    const PortValue text = PortValue::texts({prompt(p)});
    auto t = tok.run({{"text", &text}});
    auto e = enc.run({{"tokens", &t.at("tokens")}});
    return {std::move(t.at("tokens")), std::move(e.at("state"))};
  }

  static inline std::string golden_dir_, model_dir_;
  json::Value meta_;
  std::unique_ptr<io::SafetensorsFile> golden_;
  plugin::PluginSet plugins_;
};

TEST_F(DalleParity, TokenizerAndEncoderMatchTheReference) {
  StageRunner tok(plugins_, "tessera.dalle.tokenizer", "tokenize", model());
  StageRunner enc(plugins_, "tessera.dalle.encoder", "encode", model());
  const std::vector<int32_t> rows = golden_i32("text_tokens");
  const std::vector<float> states = golden_f32("encoder_state");
  const int64_t P = dim("text_tokens", 0), T = dim("text_tokens", 2);
  const size_t state_size = states.size() / static_cast<size_t>(P);
  for (int64_t p = 0; p < P; ++p) {
    auto [tokens, state] = encode(tok, enc, p);
    EXPECT_EQ(tokens.ids, std::vector<int32_t>(rows.begin() + p * 2 * T, rows.begin() + (p + 1) * 2 * T))
        << "prompt \"" << prompt(p) << "\"";
    const std::vector<float> want(states.begin() + static_cast<long>(p * state_size),
                                  states.begin() + static_cast<long>((p + 1) * state_size));
    const double err = scaled_max_error(state.floats(), want);
    EXPECT_LT(err, 1e-4) << "encoder state of prompt " << p;
    std::printf("prompt %lld: encoder state max error %.2e of scale\n", static_cast<long long>(p), err);
  }
}

TEST_F(DalleParity, TeacherForcedLogitsMatchTheReference) {
  StageRunner tok(plugins_, "tessera.dalle.tokenizer", "tokenize", model());
  StageRunner enc(plugins_, "tessera.dalle.encoder", "encode", model());
  StageRunner score(plugins_, "tessera.dalle.decoder", "score", model());
  const std::vector<int32_t> forced = golden_i32("tf_image_tokens");
  const std::vector<float> logits = golden_f32("tf_logits");
  const auto& prompts = meta_.at("tf_prompts").array();
  const size_t per_prompt = logits.size() / prompts.size();
  const PortValue image_tokens = PortValue::tokens(1, static_cast<uint32_t>(forced.size()), forced);
  for (size_t q = 0; q < prompts.size(); ++q) {
    auto [tokens, state] = encode(tok, enc, prompts[q].integer());
    auto out = score.run({{"state", &state}, {"tokens", &tokens}, {"image_tokens", &image_tokens}});
    const std::vector<float> want(logits.begin() + static_cast<long>(q * per_prompt),
                                  logits.begin() + static_cast<long>((q + 1) * per_prompt));
    const double err = scaled_max_error(out.at("logits").floats(), want);
    EXPECT_LT(err, 1e-4) << "teacher-forced logits of prompt " << prompts[q].integer();
    std::printf("prompt %lld: teacher-forced logits max error %.2e of scale\n",
                static_cast<long long>(prompts[q].integer()), err);
  }
}

TEST_F(DalleParity, GreedyTokensMatchWhileTheMarginAllows) {
  StageRunner tok(plugins_, "tessera.dalle.tokenizer", "tokenize", model());
  StageRunner enc(plugins_, "tessera.dalle.encoder", "encode", model());
  auto params = model();
  params["top_k"] = "1";
  params["supercondition_factor"] = std::to_string(meta_.at("supercondition_factor").number());
  params["steps_per_submit"] = "64";
  StageRunner dec(plugins_, "tessera.dalle.decoder", "decode", params);
  const std::vector<int32_t> greedy = golden_i32("greedy_tokens");
  const std::vector<float> margins = golden_f32("greedy_margins");
  const int64_t S = dim("greedy_tokens", 1);
  // Decoding is the slow part at real sizes: TESSERA_PARITY_MAX_PROMPTS caps how many prompts it checks.
  int64_t P = dim("greedy_tokens", 0);
  if (const std::string cap = env("TESSERA_PARITY_MAX_PROMPTS"); !cap.empty()) P = std::min<int64_t>(P, std::stoll(cap));
  for (int64_t p = 0; p < P; ++p) {
    auto [tokens, state] = encode(tok, enc, p);
    auto out = dec.run({{"state", &state}, {"tokens", &tokens}}, 12345);
    const std::vector<int32_t>& got = out.at("image_tokens").ids;
    ASSERT_EQ(static_cast<int64_t>(got.size()), S);
    int64_t checked = 0;
    for (int64_t i = 0; i < S; ++i) {
      if (margins[static_cast<size_t>(p * S + i)] <= 1e-3f) break;  // a near tie: the rest may differ
      ASSERT_EQ(got[static_cast<size_t>(i)], greedy[static_cast<size_t>(p * S + i)]) << "prompt " << p << ", step " << i;
      ++checked;
    }
    std::printf("prompt %lld: %lld of %lld greedy tokens checked (stopped at the first margin <= 1e-3)\n",
                static_cast<long long>(p), static_cast<long long>(checked), static_cast<long long>(S));
    EXPECT_GT(checked, 0);
  }
}

// A batch is the samples it replaces: prompts x images decoded together give image n of prompt p exactly the
// tokens a run of that prompt alone with seed + (p * images + n) draws (sampled, not greedy).
TEST_F(DalleParity, BatchedPromptsAndImagesEqualSeparateRuns) {
  StageRunner tok(plugins_, "tessera.dalle.tokenizer", "tokenize", model());
  StageRunner enc(plugins_, "tessera.dalle.encoder", "encode", model());
  auto one = model(), batch = model();
  batch["images"] = "2";
  StageRunner dec_one(plugins_, "tessera.dalle.decoder", "decode", one);
  StageRunner dec_batch(plugins_, "tessera.dalle.decoder", "decode", batch);
  const PortValue texts = PortValue::texts({prompt(0), prompt(1)});
  auto t = tok.run({{"text", &texts}});
  auto e = enc.run({{"tokens", &t.at("tokens")}});
  const uint64_t seed = 77;
  const std::vector<int32_t> got = dec_batch.run({{"state", &e.at("state")}, {"tokens", &t.at("tokens")}}, seed)
                                       .at("image_tokens").ids;
  const size_t L = got.size() / 4;
  ASSERT_EQ(got.size(), 4 * L);
  for (int64_t p = 0; p < 2; ++p) {
    auto [tokens, state] = encode(tok, enc, p);
    for (int64_t n = 0; n < 2; ++n) {
      const uint64_t row = static_cast<uint64_t>(p * 2 + n);
      const std::vector<int32_t> alone =
          dec_one.run({{"state", &state}, {"tokens", &tokens}}, seed + row).at("image_tokens").ids;
      EXPECT_EQ(alone, std::vector<int32_t>(got.begin() + static_cast<long>(row * L), got.begin() + static_cast<long>((row + 1) * L)))
          << "prompt " << p << ", image " << n;
    }
  }
}

// The whole pipeline, as `tessera run configs/text-to-image.yaml --prompts FILE` runs it: two prompts in one
// run (batch: {texts: prompt}) give one PNG per prompt, each carrying its own prompt, equal pixel for pixel
// to the picture one run per prompt gives with seeds S and S+1.
TEST_F(DalleParity, PromptsFromAFileRunAsOneBatchWithTheirOwnSeeds) {
  if (fs::path(model_dir_).filename() != "tiny-dalle") GTEST_SKIP() << "the bundled model only";
  const fs::path out = fs::temp_directory_path() / ("tessera-prompts-" + std::to_string(::getpid()));
  pipeline::Scheduler sched(plugins_,
                            pipeline::load_pipeline(TESSERA_SOURCE_DIR "/configs/text-to-image.yaml", plugins_.contracts()));
  pipeline::RunOptions o;
  o.out_dir = out.string();
  o.inputs = {{"model", model_dir_}, {"upscale", "1"}};
  o.seed = 21;
  o.text_items["prompt"] = {prompt(0), prompt(1)};
  const pipeline::RunResult batch = sched.run(o);
  ASSERT_EQ(batch.files.size(), 2u);
  o.text_items.clear();
  for (int p = 0; p < 2; ++p) {
    io::TextChunks text;
    const io::Image batched = io::read_image(batch.files[static_cast<size_t>(p)], &text);
    EXPECT_NE(std::find(text.begin(), text.end(), std::pair<std::string, std::string>{"input.prompt", prompt(p)}),
              text.end())
        << "file " << p << " records its own prompt";
    o.inputs["prompt"] = prompt(p);
    o.seed = 21 + static_cast<uint64_t>(p);
    const io::Image alone = io::read_image(sched.run(o).files.at(0));
    ASSERT_EQ(batched.width, alone.width);
    ASSERT_EQ(batched.height, alone.height);
    EXPECT_EQ(batched.rgb, alone.rgb) << "prompt " << p;
  }
  fs::remove_all(out);
}

// More prompts than one batch holds: the scheduler splits them into batches of kItemsPerBatch and keeps
// every prompt's seed, so prompt 9 of 10 is what a run of that prompt alone with seed S + 9 makes.
TEST_F(DalleParity, MorePromptsThanOneBatchKeepTheirSeeds) {
  if (fs::path(model_dir_).filename() != "tiny-dalle") GTEST_SKIP() << "the bundled model only";
  const fs::path out = fs::temp_directory_path() / ("tessera-many-" + std::to_string(::getpid()));
  pipeline::Scheduler sched(plugins_,
                            pipeline::load_pipeline(TESSERA_SOURCE_DIR "/configs/text-to-image.yaml", plugins_.contracts()));
  pipeline::RunOptions o;
  o.out_dir = out.string();
  o.inputs = {{"model", model_dir_}, {"upscale", "1"}};
  o.seed = 5;
  std::vector<std::string> prompts;
  for (int p = 0; p < 10; ++p) prompts.push_back(prompt(p % 4) + (p >= 4 ? " " + std::to_string(p) : ""));
  o.text_items["prompt"] = prompts;
  const pipeline::RunResult r = sched.run(o);
  ASSERT_EQ(r.files.size(), 10u);
  for (size_t p = 0; p < 10; ++p) {
    io::TextChunks text;
    io::read_image(r.files[p], &text);
    EXPECT_NE(std::find(text.begin(), text.end(), std::pair<std::string, std::string>{"input.prompt", prompts[p]}),
              text.end())
        << "file " << p;
  }
  o.text_items.clear();
  o.inputs["prompt"] = prompts[9];
  o.seed = 5 + 9;
  EXPECT_EQ(io::read_image(r.files[9]).rgb, io::read_image(sched.run(o).files.at(0)).rgb);
  fs::remove_all(out);
}

// The decoder takes the tokenizer's rows in pairs (empty prompt, prompt) and an encoder state that matches.
TEST_F(DalleParity, DecoderRefusesRowsThatAreNotPromptPairs) {
  StageRunner tok(plugins_, "tessera.dalle.tokenizer", "tokenize", model());
  StageRunner enc(plugins_, "tessera.dalle.encoder", "encode", model());
  StageRunner dec(plugins_, "tessera.dalle.decoder", "decode", model());
  auto [tokens, state] = encode(tok, enc, 1);
  const int64_t T = static_cast<int64_t>(tokens.length);
  const PortValue one_row = PortValue::tokens(1, tokens.length, std::vector<int32_t>(tokens.ids.begin(), tokens.ids.begin() + T));
  auto message = [&](const PortValue& t) {
    try {
      dec.run({{"state", &state}, {"tokens", &t}});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(one_row).find("expected the tokenizer's 2 rows of " + std::to_string(T) +
                                  " ids per prompt, found 1 of " + std::to_string(T)),
            std::string::npos)
      << message(one_row);
  std::vector<int32_t> four(tokens.ids);
  four.insert(four.end(), tokens.ids.begin(), tokens.ids.end());
  const PortValue two_prompts = PortValue::tokens(4, tokens.length, four);
  EXPECT_NE(message(two_prompts).find("the encoder state must be [4, "), std::string::npos) << message(two_prompts);
}

// The grid stage with per_grid: one mosaic per prompt of a batch, in order; a batch that does not divide
// into whole grids is refused with the counts.
TEST(ImageGrid, OneMosaicPerGroupOfImages) {
  plugin::PluginSet plugins;
  plugins.load_directory(TESSERA_PLUGIN_DIR);
  StageRunner grid(plugins, "tessera.image", "grid", {{"per_grid", "2"}, {"gap", "1"}});
  PortValue in;
  in.type = TESSERA_PORT_IMAGE;
  in.count = 4;
  in.width = 1;
  in.height = 1;
  for (uint8_t v : {10, 20, 30, 40})
    for (int c = 0; c < 3; ++c) in.pixels.push_back(v);
  const PortValue out = std::move(grid.run({{"image", &in}}).at("image"));
  ASSERT_EQ(out.count, 2u);
  ASSERT_EQ(out.width, 3u);  // two across with a gap of 1
  ASSERT_EQ(out.height, 1u);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{10, 10, 10, 255, 255, 255, 20, 20, 20, 30, 30, 30, 255, 255, 255, 40, 40, 40}));
  in.count = 3;
  in.pixels.resize(9);
  try {
    grid.run({{"image", &in}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 images do not make grids of 2"), std::string::npos) << e.what();
  }
}

TEST_F(DalleParity, DetokenizedImagesMatchTheReference) {
  StageRunner detok(plugins_, "tessera.vqgan", "detokenize", model());
  const std::vector<int32_t> greedy = golden_i32("greedy_tokens");
  const io::StoredTensor& images = golden_->at("images");
  const int64_t S = dim("greedy_tokens", 1), H = images.shape[1], W = images.shape[2];
  const auto& which = meta_.at("image_prompts").array();
  for (size_t i = 0; i < which.size(); ++i) {
    const int64_t p = which[i].integer();
    const PortValue tokens = PortValue::tokens(
        1, static_cast<uint32_t>(S), std::vector<int32_t>(greedy.begin() + p * S, greedy.begin() + (p + 1) * S));
    auto out = detok.run({{"image_tokens", &tokens}});
    const PortValue& img = out.at("image");
    ASSERT_EQ(img.width, static_cast<uint32_t>(W));
    ASSERT_EQ(img.height, static_cast<uint32_t>(H));
    const uint8_t* want = images.data + i * static_cast<size_t>(H * W * 3);
    int worst = 0;
    for (size_t k = 0; k < img.pixels.size(); ++k) worst = std::max(worst, std::abs(int(img.pixels[k]) - int(want[k])));
    EXPECT_LE(worst, 1) << "image of prompt " << p;
    std::printf("prompt %lld: image max difference %d of 255\n", static_cast<long long>(p), worst);
  }
}

}  // namespace
}  // namespace tessera::test
