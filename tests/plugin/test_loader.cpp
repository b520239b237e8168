// The plugin loader: what it accepts, what it refuses (with the file and the reason), and pipelines
// validated against the contracts of loaded plugins.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"

namespace tessera::plugin {
namespace {

std::string plugin_file(const std::string& variant) {
  return std::string(TESSERA_TEST_PLUGINS) + "/" + variant + "/test_plugin_" + variant + ".so";
}

std::string error_of(PluginSet& set, const std::string& path) {
  try {
    set.load_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(PluginLoaderTest, LoadsAPluginAndDescribesItsStages) {
  PluginSet set;
  set.load_file(plugin_file("good"));
  ASSERT_EQ(set.plugins().size(), 1u);
  EXPECT_STREQ(set.plugins()[0].entry->id, "test.images");
  EXPECT_EQ(set.contracts().stages("test.images"), (std::vector<std::string>{"blur", "caption"}));
  const pipeline::StageContract* blur = set.contracts().find("test.images", "blur");
  ASSERT_NE(blur, nullptr);
  ASSERT_EQ(blur->inputs.size(), 2u);
  EXPECT_TRUE(blur->inputs[1].optional);
  EXPECT_EQ(blur->outputs[0].type, pipeline::PortType::image);
  const pipeline::ParamSpec* radius = blur->param("radius");
  ASSERT_NE(radius, nullptr);
  EXPECT_EQ(radius->type, pipeline::ParamType::integer);
  EXPECT_EQ(radius->default_value, "1");
  EXPECT_EQ(radius->min, 0.0);
  EXPECT_EQ(radius->max, 8.0);
  EXPECT_TRUE(blur->param("model")->required);
  // A second plugin beside it, from a directory.
  set.load_directory(std::string(TESSERA_TEST_PLUGINS) + "/other");
  EXPECT_EQ(set.contracts().plugins(), (std::vector<std::string>{"test.images", "test.other"}));
}

TEST(PluginLoaderTest, APluginOfAnOlderMinorVersionLoads) {
  PluginSet set;
  set.load_file(plugin_file("older_minor"));
  EXPECT_EQ(set.plugins()[0].entry->abi.minor, 0u);
}

TEST(PluginLoaderTest, RefusesWhatIsNotAUsablePluginNamingTheFile) {
  PluginSet set;
  const std::string newer = plugin_file("newer_major");
  EXPECT_EQ(error_of(set, newer), newer + ": plugin ABI 2.0 does not match this Tessera's ABI 1.1; rebuild the plugin "
                                          "against this version's tessera/plugin.h");
  const std::string none = plugin_file("no_entry");
  EXPECT_EQ(error_of(set, none), none + ": not a Tessera plugin: it does not export tessera_plugin_entry");
  const std::string bad = plugin_file("bad_port");
  EXPECT_EQ(error_of(set, bad), bad + ": stage 'caption' of plugin 'test.images': output 'caption' has unknown type 42");
  const std::string refuses = plugin_file("refuses");
  EXPECT_EQ(error_of(set, refuses), refuses + ": plugin 'test.images' refused to start (init returned false)");
  EXPECT_TRUE(set.plugins().empty()) << "refused plugins leave nothing behind";

  set.load_file(plugin_file("good"));
  const std::string again = plugin_file("good");
  EXPECT_EQ(error_of(set, again), again + ": plugin id 'test.images' is already loaded from " + again);

  const auto text = std::filesystem::temp_directory_path() / "tessera-not-a-plugin.so";
  std::ofstream(text) << "just text\n";
  EXPECT_EQ(error_of(set, text.string()).rfind(text.string() + ": not a loadable plugin: ", 0), 0u);
  std::filesystem::remove(text);
  try {
    set.load_directory("/no/such/plugins");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/no/such/plugins: plugin directory does not exist");
  }
}

TEST(PluginLoaderTest, PipelinesAreValidatedAgainstLoadedContracts) {
  PluginSet set;
  set.load_file(plugin_file("good"));
  const std::string yaml = R"(inputs:
  picture: {type: image}
stages:
  soften:
    plugin: test.images
    stage: blur
    params: {radius: 9}
    inputs: {image: $picture}
outputs:
  result: {from: soften.image}
)";
  try {
    pipeline::parse_pipeline(yaml, "p.yaml", set.contracts());
    FAIL();
  } catch (const pipeline::PipelineError& e) {
    EXPECT_EQ(e.problems(), (std::vector<std::string>{
                                "p.yaml:7:22: stage 'soften', param 'radius': expected int in [0, 8], found 9",
                                "p.yaml:4:3: stage 'soften', param 'model': missing (expected path)"}));
  }
}

TEST(PluginLoaderTest, DefaultDirectoriesComeFromTheEnvironmentNeverTheWorkingDirectory) {
  ::setenv("TESSERA_PLUGIN_PATH", "/a/b::/c", 1);
  const auto dirs = default_plugin_dirs();
  ::unsetenv("TESSERA_PLUGIN_PATH");
  ASSERT_GE(dirs.size(), 2u);
  EXPECT_EQ(dirs[dirs.size() - 2], "/a/b");
  EXPECT_EQ(dirs.back(), "/c");
  for (const auto& d : dirs) EXPECT_NE(d, ".");
}

}  // namespace
}  // namespace tessera::plugin
