// Stages that keep their data on the GPU: tensors on ports between plugins, core ops through the host
// services, and a third-party plugin's own compute shader (examples/image-filter).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/files.hpp"
#include "pipeline/scheduler.hpp"
#include "support/gpu_test.hpp"

namespace tessera::pipeline {
namespace {

namespace fs = std::filesystem;

class GpuStagesTest : public test::GpuTest {
 protected:
  void SetUp() override {
    test::GpuTest::SetUp();
    plugins_.services().use_context(ctx());
    plugins_.load_directory(std::string(TESSERA_TEST_PLUGINS) + "/gpu");
    plugins_.load_directory(std::string(TESSERA_TEST_PLUGINS) + "/filter");
    out_ = fs::temp_directory_path() / ("tessera-gpu-stages-" + std::to_string(::getpid()));
    fs::remove_all(out_);
  }
  void TearDown() override {
    fs::remove_all(out_);
    test::GpuTest::TearDown();
  }
  std::string read_text(const fs::path& p) {
    std::ifstream f(p);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  plugin::PluginSet plugins_;
  fs::path out_;
};

TEST_F(GpuStagesTest, TensorsFlowBetweenStagesAndAreFreedAfterTheRun) {
  {
    Scheduler s(plugins_, parse_pipeline(R"(pipeline: tensors
stages:
  ramp: {plugin: test.gpu, stage: ramp, params: {n: 5, start: 1, step: 2}}
  affine: {plugin: test.gpu, stage: affine, params: {alpha: 3, beta: 1, keep: 3}, inputs: {values: ramp.values}}
  print: {plugin: test.gpu, stage: print, inputs: {values: affine.values}}
outputs:
  text: {from: print.text, file: "values.txt"}
)",
                                         "configs/tensors.yaml", plugins_.contracts()));
    RunOptions o;
    o.out_dir = out_.string();
    std::string streamed;
    o.on_text = [&](const std::string& stage, int, const std::string& output, const std::string& text) {
      EXPECT_EQ(stage + "." + output, "print.text");
      streamed += text;
    };
    s.run(o);
    EXPECT_EQ(read_text(out_ / "values.txt"), "4 10 16\n");  // 3 * (1, 3, 5) + 1
    EXPECT_EQ(streamed, "4 10 16");
    EXPECT_EQ(plugins_.services().live_tensors(), 0u);
    s.run(o);
    EXPECT_EQ(s.instances_created(), 3);
  }
  EXPECT_EQ(plugins_.services().live_tensors(), 0u);
  EXPECT_EQ(plugins_.services().live_streams(), 0u);
}

TEST_F(GpuStagesTest, AStageOnAnotherDeviceGetsItsTensorsThere) {
  // "0" names the first device explicitly: a Vulkan context of its own, so tensors must cross over.
  Scheduler s(plugins_, parse_pipeline(R"(pipeline: devices
stages:
  ramp: {plugin: test.gpu, stage: ramp, params: {n: 4, start: 2, step: 1}}
  affine: {plugin: test.gpu, stage: affine, device: "0", params: {alpha: -1, beta: 0}, inputs: {values: ramp.values}}
  print: {plugin: test.gpu, stage: print, inputs: {values: affine.values}}
outputs:
  text: {from: print.text, file: "values.txt"}
)",
                                       "configs/devices.yaml", plugins_.contracts()));
  RunOptions o;
  o.out_dir = out_.string();
  s.run(o);
  EXPECT_EQ(read_text(out_ / "values.txt"), "-2 -3 -4 -5\n");
  EXPECT_EQ(plugins_.services().live_tensors(), 0u);
}

TEST_F(GpuStagesTest, APluginsOwnComputeShaderFiltersImages) {
  fs::create_directories(out_);
  io::Image img;
  img.width = 5;
  img.height = 3;
  for (int i = 0; i < 45; ++i) img.rgb.push_back(static_cast<uint8_t>(i * 5 + 7));
  io::write_png((out_ / "in.png").string(), img);
  Scheduler s(plugins_, load_pipeline(std::string(TESSERA_SOURCE_DIR) + "/examples/image-filter/invert.yaml",
                                      plugins_.contracts()));
  RunOptions o;
  o.out_dir = out_.string();
  o.inputs["picture"] = (out_ / "in.png").string();
  s.run(o);
  io::Image got = io::read_image((out_ / "invert-0.png").string());
  ASSERT_EQ(got.rgb.size(), img.rgb.size());
  for (size_t i = 0; i < img.rgb.size(); ++i) ASSERT_EQ(got.rgb[i], 255 - img.rgb[i]) << "at " << i;

  o.inputs["strength"] = "0.25";
  s.run(o);
  got = io::read_image((out_ / "invert-0.png").string());
  for (size_t i = 0; i < img.rgb.size(); ++i) {
    const double x = img.rgb[i] / 255.0;
    ASSERT_EQ(got.rgb[i], static_cast<uint8_t>(std::lround((x + 0.25 * (1 - 2 * x)) * 255))) << "at " << i;
  }
}

}  // namespace
}  // namespace tessera::pipeline
