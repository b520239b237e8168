// The scheduler runs validated pipelines with real plugin stages: outputs with their parameters, seeds
// per sample, instance reuse, concurrent branches, cancellation and failures that leave nothing behind.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "io/files.hpp"
#include "io/wav.hpp"
#include "pipeline/scheduler.hpp"

namespace tessera::pipeline {
namespace {

namespace fs = std::filesystem;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plugins_.load_directory(std::string(TESSERA_TEST_PLUGINS) + "/run");
    out_ = fs::temp_directory_path() / ("tessera-sched-" + std::to_string(::getpid()));
    fs::remove_all(out_);
  }
  void TearDown() override { fs::remove_all(out_); }

  Scheduler make(const std::string& yaml) {
    return Scheduler(plugins_, parse_pipeline(yaml, "configs/test.yaml", plugins_.contracts()));
  }
  size_t files_in_out() const {
    if (!fs::exists(out_)) return 0;
    return static_cast<size_t>(std::distance(fs::directory_iterator(out_), fs::directory_iterator()));
  }

  plugin::PluginSet plugins_;
  fs::path out_;
};

const char* kChain = R"(pipeline: chain
inputs:
  note: {type: text, default: "hello"}
stages:
  source: {plugin: test.run, stage: gradient, params: {width: 6, height: 3}}
  negative: {plugin: test.run, stage: invert, inputs: {image: source.image}}
  about: {plugin: test.run, stage: describe, inputs: {image: negative.image}}
outputs:
  picture: {from: negative.image, file: "{pipeline}-{seed}.png"}
  caption: {from: about.text, file: "{pipeline}-{seed}.txt"}
)";

TEST_F(SchedulerTest, RunsStagesAndWritesOutputsWithTheirParameters) {
  Scheduler s = make(kChain);
  RunOptions o;
  o.out_dir = out_.string();
  o.seed = 5;
  const RunResult r = s.run(o);
  ASSERT_EQ(r.files.size(), 2u);
  io::TextChunks text;
  const io::Image img = io::read_image((out_ / "chain-5.png").string(), &text);
  ASSERT_EQ(img.width, 6);
  ASSERT_EQ(img.height, 3);
  EXPECT_EQ(img.rgb[0], 255);
  EXPECT_EQ(img.rgb[1], 255);
  EXPECT_EQ(img.rgb[2], 255 - 5);
  EXPECT_EQ(img.rgb[(2 * 6 + 5) * 3 + 0], 0);
  EXPECT_EQ(text, (io::TextChunks{{"pipeline", "chain"}, {"seed", "5"}, {"input.note", "hello"}, {"source.width", "6"},
                                   {"source.height", "3"}, {"source.images", "1"}}));  // every stage parameter as used
  std::ifstream caption(out_ / "chain-5.txt");
  std::string line;
  std::getline(caption, line);
  EXPECT_EQ(line, "6x3 mean 128 128 250");
}

TEST_F(SchedulerTest, SamplesGetConsecutiveSeedsAndInstancesAreReused) {
  Scheduler s = make(kChain);
  RunOptions o;
  o.out_dir = out_.string();
  o.seed = 40;
  o.count = 3;
  s.run(o);
  EXPECT_TRUE(fs::exists(out_ / "chain-40.png"));
  EXPECT_TRUE(fs::exists(out_ / "chain-42.png"));
  EXPECT_EQ(s.instances_created(), 3);
  s.run(o);
  EXPECT_EQ(s.instances_created(), 3) << "a second run loads nothing again";
  o.overrides["source.width"] = "5";
  s.run(o);
  EXPECT_EQ(s.instances_created(), 4) << "only the stage whose parameters changed is made again";
  EXPECT_EQ(io::read_image((out_ / "chain-41.png").string()).width, 5);
}

// `batch: images`: --count N runs the graph once with images = N (times its own value); the items are
// the images sequential samples would have made (image i has seed + i), each in a file of its own.
TEST_F(SchedulerTest, ABatchPipelineMakesItsCountInOneRun) {
  Scheduler s = make(R"(pipeline: batched
inputs:
  images: {type: int, default: 1}
batch: images
stages:
  source: {plugin: test.run, stage: gradient, params: {width: 2, height: 2, images: $images}}
outputs:
  picture: {from: source.image, file: "{pipeline}-{seed}.png"}
)");
  RunOptions o;
  o.out_dir = out_.string();
  o.seed = 7;
  o.count = 3;
  const RunResult r = s.run(o);
  ASSERT_EQ(r.files.size(), 3u);  // sequential samples would have written batched-7.png, batched-8.png, ...
  for (int i = 0; i < 3; ++i) {
    io::TextChunks text;
    const io::Image img = io::read_image((out_ / ("batched-7-" + std::to_string(i) + ".png")).string(), &text);
    EXPECT_EQ(img.rgb[2], 7 + i) << "image " << i;
    EXPECT_EQ(text[2], (std::pair<std::string, std::string>{"input.images", "3"}));
  }
  o.inputs["images"] = "2";  // --count multiplies the batch input
  o.count = 2;
  EXPECT_EQ(s.run(o).files.size(), 4u);
}

TEST_F(SchedulerTest, ABatchKeyMustNameAnIntInput) {
  try {
    make("pipeline: p\ninputs:\n  note: {type: text}\nbatch: note\nstages:\n  a: {plugin: test.run, stage: gradient}\n");
    ADD_FAILURE() << "no error";
  } catch (const PipelineError& e) {
    EXPECT_EQ(std::string(e.what()), "configs/test.yaml:4:8: batch: input 'note' must be of type int, found text");
  }
  try {
    make("pipeline: p\nbatch: images\nstages:\n  a: {plugin: test.run, stage: gradient}\n");
    ADD_FAILURE() << "no error";
  } catch (const PipelineError& e) {
    EXPECT_EQ(std::string(e.what()), "configs/test.yaml:2:8: batch: no input named 'images' (expected an int input)");
  }
  try {
    make("pipeline: p\ninputs:\n  n: {type: int}\nbatch: {count: n, texts: n, size: 3}\n"
         "stages:\n  a: {plugin: test.run, stage: gradient}\n");
    ADD_FAILURE() << "no error";
  } catch (const PipelineError& e) {
    EXPECT_EQ(std::string(e.what()),
              "configs/test.yaml:4:29: batch: unknown key 'size' (expected one of: count, texts)\n"
              "configs/test.yaml:4:26: batch: input 'n' must be of type text, found int");
  }
}

TEST_F(SchedulerTest, SeveralItemsOnlyForTheBatchTextsInput) {
  Scheduler s = make(kChain);
  RunOptions o;
  o.out_dir = out_.string();
  o.text_items["note"] = {"a", "b"};
  try {
    s.run(o);
    ADD_FAILURE() << "no error";
  } catch (const PipelineError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--input note: pipeline 'chain' does not take several items for 'note' in one run (no batch: {texts: note})");
  }
  EXPECT_EQ(files_in_out(), 0u);
}

// Audio end to end: a WAV file on an audio input, through a stage, to a WAV output.
TEST_F(SchedulerTest, AudioFlowsFromAWavFileThroughAStageToAWavFile) {
  fs::create_directories(out_);
  io::Audio in;
  in.sample_rate = 22050;
  in.channels = 2;
  for (int i = 0; i < 100; ++i) in.samples.push_back(static_cast<float>(i % 7) / 8.0f - 0.4f);
  const std::vector<uint8_t> bytes = io::encode_wav(in);
  io::write_file_atomic((out_ / "in.wav").string(), bytes.data(), bytes.size());
  Scheduler s = make(R"(pipeline: quieter
inputs:
  sound: {type: audio}
stages:
  halve: {plugin: test.run, stage: halve, inputs: {audio: $sound}}
outputs:
  sound: {from: halve.audio}
)");
  RunOptions o;
  o.out_dir = out_.string();
  o.inputs["sound"] = (out_ / "in.wav").string();
  const RunResult r = s.run(o);
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(fs::path(r.files[0]).filename(), "quieter-sound-0-0.wav");
  const io::Audio got = io::read_wav(r.files[0]);
  EXPECT_EQ(got.sample_rate, 22050u);
  EXPECT_EQ(got.channels, 2u);
  const io::Audio want = io::decode_wav(bytes, "in.wav");
  ASSERT_EQ(got.samples.size(), want.samples.size());
  for (size_t i = 0; i < want.samples.size(); ++i) EXPECT_NEAR(got.samples[i], 0.5f * want.samples[i], 1.0f / 32768) << i;
  o.inputs["sound"] = (out_ / "missing.wav").string();
  EXPECT_THROW(s.run(o), Error);
}

// A file named as an input's default in the pipeline file is found next to that file, whatever the working
// directory; one given on the command line stays relative to the working directory.
TEST_F(SchedulerTest, AnAudioInputsDefaultIsRelativeToThePipelineFile) {
  fs::create_directories(out_ / "configs" / "sounds");
  io::Audio in;
  in.sample_rate = 16000;
  in.channels = 1;
  in.samples = {0.5f, -0.25f, 0.125f};
  const std::vector<uint8_t> bytes = io::encode_wav(in);
  io::write_file_atomic((out_ / "configs" / "sounds" / "default.wav").string(), bytes.data(), bytes.size());
  Scheduler s(plugins_, parse_pipeline(R"(pipeline: quieter
inputs:
  sound: {type: audio, default: sounds/default.wav}
stages:
  halve: {plugin: test.run, stage: halve, inputs: {audio: $sound}}
outputs:
  sound: {from: halve.audio}
)",
                                        (out_ / "configs" / "quieter.yaml").string(), plugins_.contracts()));
  RunOptions o;
  o.out_dir = (out_ / "out").string();
  const RunResult r = s.run(o);  // the test's working directory is not out_/configs
  ASSERT_EQ(r.files.size(), 1u);
  const io::Audio got = io::read_wav(r.files[0]);
  ASSERT_EQ(got.samples.size(), 3u);
  EXPECT_NEAR(got.samples[0], 0.25f, 1.0f / 32768);
  o.inputs["sound"] = "sounds/default.wav";
  try {
    s.run(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sounds/default.wav"), std::string::npos) << e.what();
  }
}

TEST_F(SchedulerTest, IndependentBranchesRunAtTheSameTime) {
  Scheduler s = make(R"(stages:
  a: {plugin: test.run, stage: gradient}
  b: {plugin: test.run, stage: gradient, params: {width: 3}}
  slow_a: {plugin: test.run, stage: sleep, params: {ms: 1000}, inputs: {image: a.image}}
  slow_b: {plugin: test.run, stage: sleep, params: {ms: 1000}, inputs: {image: b.image}}
outputs:
  x: {from: slow_a.image}
  y: {from: slow_b.image}
)");
  RunOptions o;
  o.out_dir = out_.string();
  const auto t0 = std::chrono::steady_clock::now();
  s.run(o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Generous for loaded machines and sanitizer builds: in sequence the branches would take 2 s.
  EXPECT_LT(seconds, 1.8) << "two 1 s branches in sequence would take 2 s";
  EXPECT_EQ(files_in_out(), 2u);
}

TEST_F(SchedulerTest, CancellingStopsTheRunAndWritesNothing) {
  Scheduler s = make(R"(stages:
  a: {plugin: test.run, stage: gradient}
  wait: {plugin: test.run, stage: sleep, params: {ms: 5000}, inputs: {image: a.image}}
outputs:
  x: {from: wait.image}
)");
  std::atomic<bool> cancel{false};
  RunOptions o;
  o.out_dir = out_.string();
  o.cancel = &cancel;
  int events = 0;
  o.on_progress = [&](const ProgressEvent& e) {
    EXPECT_EQ(e.stage, "wait");
    if (++events == 3) cancel = true;
  };
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(s.run(o), Cancelled);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  EXPECT_EQ(files_in_out(), 0u);
}

TEST_F(SchedulerTest, AFailingStageIsNamedAndNothingIsWritten) {
  Scheduler s = make(R"(stages:
  a: {plugin: test.run, stage: gradient}
  ok: {plugin: test.run, stage: invert, inputs: {image: a.image}}
  boom: {plugin: test.run, stage: fail, inputs: {image: a.image}}
outputs:
  x: {from: ok.image}
  y: {from: boom.image}
)");
  RunOptions o;
  o.out_dir = out_.string();
  try {
    s.run(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "stage 'boom' (test.run/fail) failed: this stage always fails");
  }
  EXPECT_EQ(files_in_out(), 0u);
}

TEST_F(SchedulerTest, BadInputsAndOverridesAreRefusedBeforeAnythingRuns) {
  Scheduler s = make(kChain);
  RunOptions o;
  o.out_dir = out_.string();
  o.inputs["nope"] = "1";
  o.overrides["source.depth"] = "3";
  try {
    s.run(o);
    FAIL();
  } catch (const PipelineError& e) {
    EXPECT_EQ(e.problems(), (std::vector<std::string>{"--input nope: the pipeline has no input 'nope'",
                                                      "--set source.depth: no such stage parameter (expected stage.param)"}));
  }
  RunOptions range;
  range.out_dir = out_.string();
  range.overrides["source.width"] = "0";
  try {
    s.run(range);
    FAIL();
  } catch (const PipelineError& e) {
    EXPECT_STREQ(e.what(), "stage 'source', param 'width': expected int in [1, 512], found 0");
  }
  EXPECT_EQ(s.instances_created(), 0);
  EXPECT_EQ(files_in_out(), 0u);
}

TEST_F(SchedulerTest, StagesWrittenWithTheCppSdkRunAndReportExceptions) {
  plugins_.load_directory(std::string(TESSERA_TEST_PLUGINS) + "/cpp");
  Scheduler s = make(R"(stages:
  a: {plugin: test.run, stage: gradient, params: {width: 4, height: 2}}
  tinted: {plugin: test.cpp, stage: tint, params: {blue: 100}, inputs: {image: a.image}}
  n: {plugin: test.cpp, stage: count, inputs: {image: tinted.image}}
outputs:
  picture: {from: tinted.image, file: "t.png"}
  text: {from: n.text, file: "n.txt"}
)");
  RunOptions o;
  o.out_dir = out_.string();
  o.seed = 9;
  s.run(o);
  const io::Image img = io::read_image((out_ / "t.png").string());
  EXPECT_EQ(img.rgb[2], 9 + 100) << "blue = seed + tint";
  std::ifstream text(out_ / "n.txt");
  std::string line;
  std::getline(text, line);
  EXPECT_EQ(line, "8 pixels, seed 9");
  o.overrides["tinted.explode"] = "true";
  try {
    s.run(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "stage 'tinted' (test.cpp/tint) failed: tint exploded as asked");
  }
}

}  // namespace
}  // namespace tessera::pipeline
