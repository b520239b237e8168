// Pipeline files are validated as a whole before anything runs: every mistake is reported with
// file:line:column, the stage, the port or parameter, what was expected and what was found.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pipeline/pipeline.hpp"

namespace tessera::pipeline {
namespace {

ContractRegistry contracts() {
  ContractRegistry r;
  r.add({"text", "tokenize", "text to token ids",
         {{"text", PortType::text, "", false}},
         {{"tokens", PortType::tokens, "", false}},
         {{"max_tokens", ParamType::integer, "64", false, 1, 256, ""}}});
  r.add({"dalle", "encoder", "BART encoder", {{"tokens", PortType::tokens, "", false}}, {{"state", PortType::tensor, "", false}}, {}});
  r.add({"dalle", "decoder", "image token decoder",
         {{"state", PortType::tensor, "", false}},
         {{"image_tokens", PortType::tensor, "", false}},
         {{"seed", ParamType::integer, "0", false, std::nullopt, std::nullopt, ""},
          {"temperature", ParamType::number, "1", false, 0.0, 10.0, ""},
          {"model", ParamType::path, "", true, std::nullopt, std::nullopt, ""}}});
  r.add({"vqgan", "detokenize", "tokens to pixels", {{"tokens", PortType::tensor, "", false}}, {{"image", PortType::image, "", false}}, {}});
  r.add({"util", "grid", "mosaic",
         {{"images", PortType::image, "", false}, {"captions", PortType::text, "", true}},
         {{"image", PortType::image, "", false}},
         {}});
  return r;
}

const char* kGood = R"(pipeline: text-to-image
plugins: [../plugins]
inputs:
  prompt: {type: text, default: "a red circle"}
  seed: {type: int, default: 7}
stages:
  image:
    plugin: vqgan
    stage: detokenize
    inputs: {tokens: decode.image_tokens}
  decode:
    plugin: dalle
    stage: decoder
    params: {seed: $seed, temperature: 0.5, model: models/tiny}
    inputs: {state: encode.state}
  encode:
    plugin: dalle
    stage: encoder
    inputs: {tokens: tokenize.tokens}
  tokenize:
    plugin: text
    stage: tokenize
    inputs: {text: $prompt}
outputs:
  picture: {from: image.image}
)";

// Replaces the first occurrence of `from` in the good pipeline by `to`.
std::string edit(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::vector<std::string> problems(const std::string& yaml) {
  try {
    parse_pipeline(yaml, "configs/t.yaml", contracts());
  } catch (const PipelineError& e) {
    return e.problems();
  }
  return {};
}

using Lines = std::vector<std::string>;

TEST(PipelineTest, AcceptsAGoodPipelineAndOrdersItsStages) {
  const Pipeline p = parse_pipeline(kGood, "configs/t.yaml", contracts());
  EXPECT_EQ(p.name, "text-to-image");
  ASSERT_EQ(p.stages.size(), 4u);
  EXPECT_EQ(p.stages[0].id, "tokenize");
  EXPECT_EQ(p.stages[1].id, "encode");
  EXPECT_EQ(p.stages[2].id, "decode");
  EXPECT_EQ(p.stages[3].id, "image");
  EXPECT_TRUE(p.stages[2].params.at("seed").from_input);
  ASSERT_EQ(p.outputs.size(), 1u);
  EXPECT_EQ(p.outputs[0].file, "{pipeline}-picture-{seed}-{index}.png");
  ASSERT_EQ(p.plugin_paths.size(), 1u);
  EXPECT_EQ(p.plugin_paths[0], (std::filesystem::absolute("plugins")).lexically_normal().string());
}

TEST(PipelineTest, YamlSyntaxErrorsNameTheirPosition) {
  EXPECT_EQ(problems("stages:\n  a: {plugin: x\n"),
            Lines{"configs/t.yaml:3:1: YAML syntax: end of map flow not found"});
  EXPECT_EQ(problems("- just\n- a list\n"),
            Lines{"configs/t.yaml:1:1: a pipeline is a mapping with at least stages:, found a list"});
}

TEST(PipelineTest, UnknownPluginsAndStages) {
  EXPECT_EQ(problems(edit("plugin: vqgan", "plugin: vqgn")),
            Lines{"configs/t.yaml:8:13: stage 'image': unknown plugin 'vqgn' (loaded plugins: dalle, text, util, vqgan)"});
  EXPECT_EQ(problems(edit("stage: encoder", "stage: encodr")),
            Lines{"configs/t.yaml:18:12: stage 'encode': plugin 'dalle' has no stage 'encodr' (it has: decoder, encoder)"});
}

TEST(PipelineTest, PortsMustExistBeConnectedAndAgreeOnType) {
  EXPECT_EQ(problems(edit("inputs: {tokens: tokenize.tokens}", "inputs: {tokns: tokenize.tokens}")),
            (Lines{"configs/t.yaml:19:14: stage 'encode', input 'tokns': no such port (ports: tokens)",
                   "configs/t.yaml:16:3: stage 'encode', input 'tokens': not connected (expected tokens)"}));
  EXPECT_EQ(problems(edit("inputs: {state: encode.state}", "inputs: {state: tokenize.tokens}")),
            Lines{"configs/t.yaml:15:21: stage 'decode', input 'state': expected tensor, found tokens from "
                  "\"tokenize.tokens\""});
  EXPECT_EQ(problems(edit("inputs: {state: encode.state}", "inputs: {state: encode.hidden}")),
            Lines{"configs/t.yaml:15:21: stage 'decode', input 'state': stage 'encode' has no output 'hidden' "
                  "(outputs: state)"});
  EXPECT_EQ(problems(edit("inputs: {text: $prompt}", "inputs: {text: $seed}")),
            Lines{"configs/t.yaml:23:20: stage 'tokenize', input 'text': pipeline input '$seed' is int, which no port "
                  "carries (set a parameter with it instead)"});
  EXPECT_EQ(problems(edit("inputs: {text: $prompt}", "inputs: {text: $promt}")),
            Lines{"configs/t.yaml:23:20: stage 'tokenize', input 'text': unknown pipeline input '$promt' (inputs: "
                  "prompt, seed)"});
  EXPECT_EQ(problems(edit("inputs: {text: $prompt}", "inputs: {text: prompt}")),
            (Lines{"configs/t.yaml:23:20: stage 'tokenize', input 'text': expected \"$input\" or \"stage.port\", "
                   "found \"prompt\"",
                   "configs/t.yaml:20:3: stage 'tokenize', input 'text': not connected (expected text)"}));
}

TEST(PipelineTest, ParametersAreCheckedForNameTypeAndRange) {
  EXPECT_EQ(problems(edit("temperature: 0.5", "temprature: 0.5")),
            Lines{"configs/t.yaml:14:27: stage 'decode', param 'temprature': no such parameter (parameters: seed, "
                  "temperature, model)"});
  EXPECT_EQ(problems(edit("temperature: 0.5", "temperature: hot")),
            Lines{"configs/t.yaml:14:40: stage 'decode', param 'temperature': expected float, found \"hot\""});
  EXPECT_EQ(problems(edit("temperature: 0.5", "temperature: 11")),
            Lines{"configs/t.yaml:14:40: stage 'decode', param 'temperature': expected float in [0, 10], found 11"});
  EXPECT_EQ(problems(edit("seed: $seed,", "seed: $prompt,")),
            Lines{"configs/t.yaml:14:20: stage 'decode', param 'seed': expected int, found pipeline input '$prompt' "
                  "of type text"});
  EXPECT_EQ(problems(edit(", model: models/tiny", "")),
            Lines{"configs/t.yaml:11:3: stage 'decode', param 'model': missing (expected path)"});
  EXPECT_EQ(problems(edit("default: 7", "default: seven")),
            Lines{"configs/t.yaml:5:3: input 'seed', default: expected int, found \"seven\""});
}

TEST(PipelineTest, CyclesDuplicatesAndUnknownKeys) {
  EXPECT_EQ(problems(edit("inputs: {text: $prompt}", "inputs: {text: $prompt}\n    params: {}\n  tokenize2: {plugin: text}")),
            Lines{"configs/t.yaml:25:3: stage 'tokenize2': missing stage:"});
  const std::string g = R"(stages:
  a: {plugin: util, stage: grid, inputs: {images: b.image}}
  b: {plugin: util, stage: grid, inputs: {images: a.image}}
)";
  EXPECT_EQ(problems(g), Lines{"configs/t.yaml:3:51: stage 'b', input 'images': cycle a -> b -> a"});
  const std::string self = "stages:\n  a: {plugin: util, stage: grid, inputs: {images: a.image}}\n";
  EXPECT_EQ(problems(self), Lines{"configs/t.yaml:2:51: stage 'a', input 'images': a stage cannot take its own output"});
  EXPECT_EQ(problems(edit("  encode:\n", "  decode:\n")), (Lines{"configs/t.yaml:16:3: stages: duplicate key 'decode'",
                   "configs/t.yaml:15:21: stage 'decode', input 'state': unknown stage 'encode' in \"encode.state\""}));
  EXPECT_EQ(problems(edit("outputs:", "output:")),
            Lines{"configs/t.yaml:24:1: pipeline: unknown key 'output' (expected one of: pipeline, description, "
                  "plugins, inputs, batch, stages, outputs)"});
}

TEST(PipelineTest, OutputsMustComeFromAStageAndFitTheirFile) {
  EXPECT_EQ(problems(edit("{from: image.image}", "{from: imag.image}")),
            Lines{"configs/t.yaml:25:19: output 'picture': unknown stage 'imag' in \"imag.image\""});
  EXPECT_EQ(problems(edit("{from: image.image}", "{from: decode.image_tokens}")),
            Lines{"configs/t.yaml:25:19: output 'picture': tensor from \"decode.image_tokens\" cannot be written to a "
                  "file (image, audio and text can)"});
  EXPECT_EQ(problems(edit("{from: image.image}", "{from: image.image, file: out.wav}")),
            Lines{"configs/t.yaml:25:3: output 'picture': image is written as .png, found file \"out.wav\""});
}

TEST(PipelineTest, HostileFilesGiveErrorsNotCrashes) {
  EXPECT_FALSE(problems(std::string(20000, '[')).empty());
  EXPECT_FALSE(problems("stages: !!binary AAAA\n").empty());
  EXPECT_FALSE(problems("&a [*a]").empty());
  EXPECT_EQ(problems(""), Lines{"configs/t.yaml:1:1: a pipeline is a mapping with at least stages:, found nothing"});
  const auto dir = std::filesystem::temp_directory_path();
  const std::string big = (dir / "tessera-big-pipeline.yaml").string();
  {
    std::ofstream out(big);
    out << "stages: {}\n# " << std::string(2 << 20, 'x') << "\n";
  }
  try {
    load_pipeline(big, contracts());
    FAIL();
  } catch (const PipelineError& e) {
    EXPECT_EQ(std::string(e.what()), big + ": a pipeline file is at most 1 MiB; this one is larger");
  }
  std::filesystem::remove(big);
  try {
    load_pipeline("/no/such/pipeline.yaml", contracts());
    FAIL();
  } catch (const PipelineError& e) {
    EXPECT_EQ(std::string(e.what()), "/no/such/pipeline.yaml: cannot read the pipeline file");
  }
}

}  // namespace
}  // namespace tessera::pipeline
