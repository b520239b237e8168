#pragma once
// What a stage promises before it runs: its typed ports and parameters. Pipelines are validated
// against these contracts before any weight is loaded or any GPU memory is allocated.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tessera::pipeline {

// What flows between stages.
enum class PortType { text, tokens, tensor, image, audio };
// What configures a stage.
enum class ParamType { boolean, integer, number, string, path };

const char* port_type_name(PortType t);
const char* param_type_name(ParamType t);
std::optional<PortType> parse_port_type(const std::string& name);
std::optional<ParamType> parse_param_type(const std::string& name);

struct PortSpec {
  std::string name;
  PortType type = PortType::tensor;
  std::string doc;
  bool optional = false;  // inputs only: the stage runs without it
};

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::string;
  std::string default_value;  // as written in YAML; empty with required = true
  bool required = false;
  std::optional<double> min, max;  // integer and number only
  std::string doc;
};

struct StageContract {
  std::string plugin;  // plugin id, e.g. "dalle"
  std::string stage;   // stage id within the plugin, e.g. "encoder"
  std::string description;
  std::vector<PortSpec> inputs;
  std::vector<PortSpec> outputs;
  std::vector<ParamSpec> params;

  const PortSpec* input(const std::string& name) const;
  const PortSpec* output(const std::string& name) const;
  const ParamSpec* param(const std::string& name) const;
};

// Every stage the loaded plugins offer, by plugin and stage id.
class ContractRegistry {
 public:
  // Throws tessera::Error when the plugin already has a stage of that id.
  void add(StageContract contract);
  const StageContract* find(const std::string& plugin, const std::string& stage) const;
  bool has_plugin(const std::string& plugin) const;
  std::vector<std::string> plugins() const;
  std::vector<std::string> stages(const std::string& plugin) const;

 private:
  std::map<std::string, std::map<std::string, StageContract>> by_plugin_;
};

}  // namespace tessera::pipeline
