#pragma once
// A generation pipeline read from YAML (docs/pipelines.md) and validated against stage contracts,
// before anything is loaded or allocated.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "gpu/error.hpp"
#include "pipeline/contract.hpp"

namespace tessera::pipeline {

struct Location {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string str() const;  // "file:line:column"
};

// Where a stage input or a pipeline output takes its value from: "$name" (a pipeline input) or
// "stage.port" (an output of another stage).
struct Source {
  bool from_input = false;
  std::string stage;  // empty for a pipeline input
  std::string name;   // input name or output port
  Location where;
  std::string str() const;  // as written
};

enum class InputType { text, integer, number, boolean, path, image, audio };
const char* input_type_name(InputType t);

struct PipelineInput {
  std::string name;
  InputType type = InputType::text;
  std::string default_value;
  bool has_default = false;
  std::string doc;
  Location where;
};

struct ParamValue {
  std::string text;      // the literal, or the input name when from_input
  bool from_input = false;
  Location where;
};

struct Stage {
  std::string id;
  std::string plugin, stage;
  std::string device;  // "" = the pipeline's device
  std::map<std::string, ParamValue> params;
  std::map<std::string, Source> inputs;
  const StageContract* contract = nullptr;
  Location where;
};

struct PipelineOutput {
  std::string name;
  Source from;
  std::string file;  // name template: {name}, {seed}, {index}, {pipeline}
  Location where;
};

struct Pipeline {
  std::string name;
  std::string description;
  std::string path;
  std::vector<std::string> plugin_paths;  // absolute, resolved relative to the file
  std::vector<PipelineInput> inputs;
  // The int input that sets how many samples the stages make together (`batch: images`): --count N then
  // runs the graph once with that input set to N, sample i drawing with seed + i. Empty: samples run one
  // after another.
  std::string batch_input;
  // The text input that may carry several items in one run (`batch: {count: images, texts: prompt}`):
  // `--prompts FILE` then decodes every prompt in one GPU batch, item p's sample i drawing with
  // seed + p * images + i, as the same prompts run one after another would.
  std::string batch_texts;
  std::vector<Stage> stages;  // in dependency order after validation
  std::vector<PipelineOutput> outputs;

  const Stage* stage(const std::string& id) const;
  const PipelineInput* input(const std::string& name) const;
};

// Every problem found in a pipeline file, one per line, each starting with file:line:column.
class PipelineError : public Error {
 public:
  explicit PipelineError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Why `text` is not a valid value of parameter `spec` ("expected int in [1, 512], found 0"), or "".
std::string check_param_value(const ParamSpec& spec, const std::string& text);

// Reads and validates a pipeline; throws PipelineError listing every problem it finds.
Pipeline load_pipeline(const std::string& path, const ContractRegistry& contracts);
// The same for YAML text already in memory; `path` names it in messages and anchors relative paths.
Pipeline parse_pipeline(const std::string& yaml, const std::string& path, const ContractRegistry& contracts);

// The plugin directories a pipeline file names (plugins:), resolved against the file; empty when the file
// cannot be read or parsed (load_pipeline() reports why).
std::vector<std::string> plugin_dirs_of(const std::string& path);

}  // namespace tessera::pipeline
