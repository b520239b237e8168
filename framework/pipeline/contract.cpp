#include "pipeline/contract.hpp"

#include "gpu/error.hpp"

namespace tessera::pipeline {

const char* port_type_name(PortType t) {
  switch (t) {
    case PortType::text:
      return "text";
    case PortType::tokens:
      return "tokens";
    case PortType::tensor:
      return "tensor";
    case PortType::image:
      return "image";
    case PortType::audio:
      return "audio";
  }
  return "?";
}

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::boolean:
      return "bool";
    case ParamType::integer:
      return "int";
    case ParamType::number:
      return "float";
    case ParamType::string:
      return "string";
    case ParamType::path:
      return "path";
  }
  return "?";
}

std::optional<PortType> parse_port_type(const std::string& name) {
  for (PortType t : {PortType::text, PortType::tokens, PortType::tensor, PortType::image, PortType::audio})
    if (name == port_type_name(t)) return t;
  return std::nullopt;
}

std::optional<ParamType> parse_param_type(const std::string& name) {
  for (ParamType t : {ParamType::boolean, ParamType::integer, ParamType::number, ParamType::string, ParamType::path})
    if (name == param_type_name(t)) return t;
  return std::nullopt;
}

template <class T>
static const T* find_named(const std::vector<T>& v, const std::string& name) {
  for (const T& x : v)
    if (x.name == name) return &x;
  return nullptr;
}

const PortSpec* StageContract::input(const std::string& name) const { return find_named(inputs, name); }
const PortSpec* StageContract::output(const std::string& name) const { return find_named(outputs, name); }
const ParamSpec* StageContract::param(const std::string& name) const { return find_named(params, name); }

void ContractRegistry::add(StageContract contract) {
  auto& stages = by_plugin_[contract.plugin];
  if (stages.count(contract.stage))
    throw Error("plugin " + contract.plugin + " declares stage " + contract.stage + " twice");
  const std::string id = contract.stage;
  stages.emplace(id, std::move(contract));
}

const StageContract* ContractRegistry::find(const std::string& plugin, const std::string& stage) const {
  auto p = by_plugin_.find(plugin);
  if (p == by_plugin_.end()) return nullptr;
  auto s = p->second.find(stage);
  return s == p->second.end() ? nullptr : &s->second;
}

bool ContractRegistry::has_plugin(const std::string& plugin) const { return by_plugin_.count(plugin) != 0; }

std::vector<std::string> ContractRegistry::plugins() const {
  std::vector<std::string> out;
  for (auto& [id, _] : by_plugin_) out.push_back(id);
  return out;
}

std::vector<std::string> ContractRegistry::stages(const std::string& plugin) const {
  std::vector<std::string> out;
  auto p = by_plugin_.find(plugin);
  if (p != by_plugin_.end())
    for (auto& [id, _] : p->second) out.push_back(id);
  return out;
}

}  // namespace tessera::pipeline
