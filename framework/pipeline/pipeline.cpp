#include "pipeline/pipeline.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace tessera::pipeline {
namespace {

constexpr size_t kMaxFileBytes = 1 << 20;

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

const char* kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "an undefined node";
  }
}

bool parse_int(const std::string& s, long long* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
}

bool parse_float(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

bool parse_bool(const std::string& s) { return s == "true" || s == "false"; }

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

struct Reader {
  std::string file;
  std::vector<std::string> problems;

  Location at(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    // A node with no position (an empty document) is reported at the start of the file.
    return {file, std::max(m.line, 0) + 1, std::max(m.column, 0) + 1};
  }
  void problem(const Location& where, const std::string& message) { problems.push_back(where.str() + ": " + message); }

  // Visits the entries of a mapping in file order, reporting duplicate and unknown keys.
  void for_each_entry(const YAML::Node& map, const std::string& what, const std::vector<std::string>& allowed,
                      const std::function<void(const std::string&, const YAML::Node& key, const YAML::Node& value)>& f) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (!seen.insert(key).second) {
        problem(at(it->first), what + ": duplicate key '" + key + "'");
        continue;
      }
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        problem(at(it->first), what + ": unknown key '" + key + "' (expected one of: " + join(allowed) + ")");
        continue;
      }
      f(key, it->first, it->second);
    }
  }

  bool expect_kind(const YAML::Node& n, YAML::NodeType::value kind, const std::string& what, const char* expected) {
    if (n.Type() == kind) return true;
    problem(at(n), what + ": expected " + expected + ", found " + kind_name(n));
    return false;
  }

  std::optional<Source> parse_source(const YAML::Node& n, const std::string& what) {
    if (!expect_kind(n, YAML::NodeType::Scalar, what, "\"$input\" or \"stage.port\"")) return std::nullopt;
    const std::string s = n.Scalar();
    Source src;
    src.where = at(n);
    if (!s.empty() && s[0] == '$') {
      src.from_input = true;
      src.name = s.substr(1);
    } else {
      const auto dot = s.find('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == s.size()) {
        problem(src.where, what + ": expected \"$input\" or \"stage.port\", found \"" + s + "\"");
        return std::nullopt;
      }
      src.stage = s.substr(0, dot);
      src.name = s.substr(dot + 1);
    }
    if (src.name.empty()) {
      problem(src.where, what + ": expected \"$input\" or \"stage.port\", found \"" + s + "\"");
      return std::nullopt;
    }
    return src;
  }
};

std::optional<InputType> parse_input_type(const std::string& s) {
  for (InputType t : {InputType::text, InputType::integer, InputType::number, InputType::boolean, InputType::path,
                      InputType::image, InputType::audio})
    if (s == input_type_name(t)) return t;
  return std::nullopt;
}

// The port type a pipeline input can feed, if any.
std::optional<PortType> port_of(InputType t) {
  switch (t) {
    case InputType::text:
      return PortType::text;
    case InputType::image:
      return PortType::image;
    case InputType::audio:
      return PortType::audio;
    default:
      return std::nullopt;
  }
}

// Whether a pipeline input of type `t` may set a parameter of type `p`.
bool feeds_param(InputType t, ParamType p) {
  switch (p) {
    case ParamType::boolean:
      return t == InputType::boolean;
    case ParamType::integer:
      return t == InputType::integer;
    case ParamType::number:
      return t == InputType::integer || t == InputType::number;
    case ParamType::string:
      return t == InputType::text || t == InputType::path;
    case ParamType::path:
      return t == InputType::path;
  }
  return false;
}


std::optional<std::string> check_input_default(InputType type, const std::string& text) {
  long long i;
  double d;
  switch (type) {
    case InputType::integer:
      if (!parse_int(text, &i)) return "expected int, found \"" + text + "\"";
      break;
    case InputType::number:
      if (!parse_float(text, &d)) return "expected float, found \"" + text + "\"";
      break;
    case InputType::boolean:
      if (!parse_bool(text)) return "expected bool (true or false), found \"" + text + "\"";
      break;
    default:
      break;
  }
  return std::nullopt;
}

}  // namespace

std::string check_param_value(const ParamSpec& spec, const std::string& text) {
  const ParamType type = spec.type;
  long long i = 0;
  double d = 0;
  switch (type) {
    case ParamType::boolean:
      if (!parse_bool(text)) return "expected bool (true or false), found \"" + text + "\"";
      return {};
    case ParamType::integer:
      if (!parse_int(text, &i)) return "expected int, found \"" + text + "\"";
      d = static_cast<double>(i);
      break;
    case ParamType::number:
      if (!parse_float(text, &d)) return "expected float, found \"" + text + "\"";
      break;
    case ParamType::string:
    case ParamType::path:
      return {};
  }
  if ((spec.min && d < *spec.min) || (spec.max && d > *spec.max))
    return "expected " + std::string(param_type_name(type)) + " in [" + (spec.min ? number(*spec.min) : "-inf") +
           ", " + (spec.max ? number(*spec.max) : "inf") + "], found " + text;
  return {};
}

std::string Location::str() const { return file + ":" + std::to_string(line) + ":" + std::to_string(column); }

std::string Source::str() const { return from_input ? "$" + name : stage + "." + name; }

const char* input_type_name(InputType t) {
  switch (t) {
    case InputType::text:
      return "text";
    case InputType::integer:
      return "int";
    case InputType::number:
      return "float";
    case InputType::boolean:
      return "bool";
    case InputType::path:
      return "path";
    case InputType::image:
      return "image";
    case InputType::audio:
      return "audio";
  }
  return "?";
}

const Stage* Pipeline::stage(const std::string& id) const {
  for (const Stage& s : stages)
    if (s.id == id) return &s;
  return nullptr;
}

const PipelineInput* Pipeline::input(const std::string& name) const {
  for (const PipelineInput& i : inputs)
    if (i.name == name) return &i;
  return nullptr;
}

static std::string join_lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "\n") + x;
  return s;
}

PipelineError::PipelineError(std::vector<std::string> problems)
    : Error(join_lines(problems)), problems_(std::move(problems)) {}

Pipeline load_pipeline(const std::string& path, const ContractRegistry& contracts) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PipelineError({path + ": cannot read the pipeline file"});
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount()) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes)
      throw PipelineError({path + ": a pipeline file is at most 1 MiB; this one is larger"});
  }
  return parse_pipeline(text, path, contracts);
}

Pipeline parse_pipeline(const std::string& yaml, const std::string& path, const ContractRegistry& contracts) {
  Reader r{path, {}};
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw PipelineError({Location{path, e.mark.line + 1, e.mark.column + 1}.str() + ": YAML syntax: " + e.msg});
  }
  Pipeline p;
  p.path = path;
  p.name = std::filesystem::path(path).stem().string();
  if (!root.IsMap()) {
    r.problem(r.at(root), std::string("a pipeline is a mapping with at least stages:, found ") + kind_name(root));
    throw PipelineError(r.problems);
  }
  const std::filesystem::path base = std::filesystem::path(path).parent_path();

  YAML::Node stages_node, outputs_node, batch_count_node, batch_texts_node;
  bool have_stages = false, have_outputs = false, have_batch_count = false, have_batch_texts = false;
  r.for_each_entry(root, "pipeline", {"pipeline", "description", "plugins", "inputs", "batch", "stages", "outputs"},
                   [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
    if (key == "pipeline" && r.expect_kind(v, YAML::NodeType::Scalar, "pipeline", "a name")) p.name = v.Scalar();
    if (key == "batch") {
      // `batch: images`, or `batch: {count: images, texts: prompt}`
      if (v.IsScalar()) {
        batch_count_node = v;
        have_batch_count = true;
      } else if (r.expect_kind(v, YAML::NodeType::Map, "batch", "the name of an int input, or {count:, texts:}")) {
        r.for_each_entry(v, "batch", {"count", "texts"}, [&](const std::string& field, const YAML::Node&, const YAML::Node& fv) {
          if (!r.expect_kind(fv, YAML::NodeType::Scalar, "batch, " + field, "an input name")) return;
          (field == "count" ? batch_count_node : batch_texts_node) = fv;
          (field == "count" ? have_batch_count : have_batch_texts) = true;
        });
      }
    }
    if (key == "description" && r.expect_kind(v, YAML::NodeType::Scalar, "description", "text"))
      p.description = v.Scalar();
    if (key == "plugins" && r.expect_kind(v, YAML::NodeType::Sequence, "plugins", "a list of directories")) {
      for (const auto& d : v)
        if (r.expect_kind(d, YAML::NodeType::Scalar, "plugins", "a directory"))
          p.plugin_paths.push_back(std::filesystem::absolute(base / d.Scalar()).lexically_normal().string());
    }
    if (key == "inputs" && r.expect_kind(v, YAML::NodeType::Map, "inputs", "a mapping of input names")) {
      r.for_each_entry(v, "inputs", {}, [&](const std::string& name, const YAML::Node& k, const YAML::Node& spec) {
        PipelineInput in;
        in.name = name;
        in.where = r.at(k);
        const std::string what = "input '" + name + "'";
        if (!r.expect_kind(spec, YAML::NodeType::Map, what, "a mapping with type: and default:")) return;
        bool typed = false;
        r.for_each_entry(spec, what, {"type", "default", "doc"},
                         [&](const std::string& field, const YAML::Node&, const YAML::Node& fv) {
          if (!r.expect_kind(fv, YAML::NodeType::Scalar, what + ", " + field, "a scalar")) return;
          if (field == "type") {
            auto t = parse_input_type(fv.Scalar());
            if (!t)
              r.problem(r.at(fv), what + ": unknown type '" + fv.Scalar() +
                                      "' (expected one of: text, int, float, bool, path, image, audio)");
            else {
              in.type = *t;
              typed = true;
            }
          } else if (field == "default") {
            in.default_value = fv.Scalar();
            in.has_default = true;
          } else {
            in.doc = fv.Scalar();
          }
        });
        if (!typed && !spec["type"]) r.problem(in.where, what + ": missing type:");
        if (typed && in.has_default)
          if (auto bad = check_input_default(in.type, in.default_value)) r.problem(in.where, what + ", default: " + *bad);
        p.inputs.push_back(std::move(in));
      });
    }
    if (key == "stages") {
      stages_node = v;
      have_stages = true;
    }
    if (key == "outputs") {
      outputs_node = v;
      have_outputs = true;
    }
  });
  // `batch:` names inputs, which must exist with the right type: count (int) sets how many samples the
  // stages make together; texts (text) may carry several items, each its own sample, in the same run.
  auto batch_input = [&](const YAML::Node& n, InputType type, const char* expected, std::string* out) {
    const PipelineInput* in = p.input(n.Scalar());
    if (!in)
      r.problem(r.at(n), "batch: no input named '" + n.Scalar() + "' (expected " + expected + ")");
    else if (in->type != type)
      r.problem(r.at(n), "batch: input '" + in->name + "' must be of type " + input_type_name(type) + ", found " +
                             std::string(input_type_name(in->type)));
    else
      *out = in->name;
  };
  if (have_batch_count) batch_input(batch_count_node, InputType::integer, "an int input", &p.batch_input);
  if (have_batch_texts) batch_input(batch_texts_node, InputType::text, "a text input", &p.batch_texts);

  if (!have_stages) {
    r.problem(r.at(root), "pipeline: missing stages:");
  } else if (r.expect_kind(stages_node, YAML::NodeType::Map, "stages", "a mapping of stage ids")) {
    r.for_each_entry(stages_node, "stages", {}, [&](const std::string& id, const YAML::Node& k, const YAML::Node& spec) {
      Stage st;
      st.id = id;
      st.where = r.at(k);
      const std::string what = "stage '" + id + "'";
      if (id.find('.') != std::string::npos || id.empty() || id[0] == '$') {
        r.problem(st.where, what + ": a stage id may not be empty, start with $ or contain a dot");
        return;
      }
      if (!r.expect_kind(spec, YAML::NodeType::Map, what, "a mapping with plugin: and stage:")) return;
      YAML::Node params_node, inputs_node;
      bool have_params = false, have_inputs = false;
      r.for_each_entry(spec, what, {"plugin", "stage", "device", "params", "inputs"},
                       [&](const std::string& field, const YAML::Node&, const YAML::Node& fv) {
        if (field == "plugin" && r.expect_kind(fv, YAML::NodeType::Scalar, what + ", plugin", "a plugin id"))
          st.plugin = fv.Scalar();
        if (field == "stage" && r.expect_kind(fv, YAML::NodeType::Scalar, what + ", stage", "a stage id"))
          st.stage = fv.Scalar();
        if (field == "device" && r.expect_kind(fv, YAML::NodeType::Scalar, what + ", device", "a device index or name"))
          st.device = fv.Scalar();
        if (field == "params") {
          params_node = fv;
          have_params = true;
        }
        if (field == "inputs") {
          inputs_node = fv;
          have_inputs = true;
        }
      });
      if (st.plugin.empty() && !spec["plugin"]) r.problem(st.where, what + ": missing plugin:");
      if (st.stage.empty() && !spec["stage"]) r.problem(st.where, what + ": missing stage:");
      if (!st.plugin.empty() && !st.stage.empty()) {
        st.contract = contracts.find(st.plugin, st.stage);
        if (!st.contract) {
          const Location l = r.at(spec[contracts.has_plugin(st.plugin) ? "stage" : "plugin"]);
          if (!contracts.has_plugin(st.plugin))
            r.problem(l, what + ": unknown plugin '" + st.plugin + "' (loaded plugins: " + join(contracts.plugins()) + ")");
          else
            r.problem(l, what + ": plugin '" + st.plugin + "' has no stage '" + st.stage + "' (it has: " +
                             join(contracts.stages(st.plugin)) + ")");
        }
      }
      const StageContract* c = st.contract;
      if (have_params && r.expect_kind(params_node, YAML::NodeType::Map, what + ", params", "a mapping")) {
        r.for_each_entry(params_node, what + ", params", {}, [&](const std::string& name, const YAML::Node& pk, const YAML::Node& pv) {
          const std::string pwhat = what + ", param '" + name + "'";
          if (!r.expect_kind(pv, YAML::NodeType::Scalar, pwhat, "a scalar")) return;
          ParamValue val;
          val.where = r.at(pv);
          val.text = pv.Scalar();
          if (!val.text.empty() && val.text[0] == '$' && pv.Tag() != "!") {
            val.from_input = true;
            val.text = val.text.substr(1);
          }
          if (c) {
            const ParamSpec* spec_p = c->param(name);
            if (!spec_p) {
              std::vector<std::string> names;
              for (auto& ps : c->params) names.push_back(ps.name);
              r.problem(r.at(pk), pwhat + ": no such parameter (parameters: " + join(names) + ")");
              return;
            }
            if (!val.from_input) {
              const std::string bad = check_param_value(*spec_p, val.text);
              if (!bad.empty()) r.problem(val.where, pwhat + ": " + bad);
            }
          }
          st.params.emplace(name, std::move(val));
        });
      }
      if (have_inputs && r.expect_kind(inputs_node, YAML::NodeType::Map, what + ", inputs", "a mapping of ports")) {
        r.for_each_entry(inputs_node, what + ", inputs", {}, [&](const std::string& port, const YAML::Node& pk, const YAML::Node& sv) {
          const std::string iwhat = what + ", input '" + port + "'";
          if (c && !c->input(port)) {
            std::vector<std::string> names;
            for (auto& ps : c->inputs) names.push_back(ps.name);
            r.problem(r.at(pk), iwhat + ": no such port (ports: " + join(names) + ")");
            return;
          }
          if (auto src = r.parse_source(sv, iwhat)) st.inputs.emplace(port, *src);
        });
      }
      if (c) {
        for (const ParamSpec& ps : c->params)
          if (ps.required && !st.params.count(ps.name))
            r.problem(st.where, what + ", param '" + ps.name + "': missing (expected " + param_type_name(ps.type) + ")");
        for (const PortSpec& port : c->inputs)
          if (!port.optional && !st.inputs.count(port.name))
            r.problem(st.where, what + ", input '" + port.name + "': not connected (expected " +
                                    port_type_name(port.type) + ")");
      }
      p.stages.push_back(std::move(st));
    });
  }

  // Wires: every source must exist and carry the type its consumer expects.
  auto source_type = [&](const Source& src, const std::string& what, std::optional<PortType>* type) -> bool {
    if (src.from_input) {
      const PipelineInput* in = p.input(src.name);
      if (!in) {
        std::vector<std::string> names;
        for (auto& i : p.inputs) names.push_back(i.name);
        r.problem(src.where, what + ": unknown pipeline input '$" + src.name + "' (inputs: " + join(names) + ")");
        return false;
      }
      *type = port_of(in->type);
      if (!*type) {
        r.problem(src.where, what + ": pipeline input '$" + src.name + "' is " + input_type_name(in->type) +
                                 ", which no port carries (set a parameter with it instead)");
        return false;
      }
      return true;
    }
    const Stage* from = p.stage(src.stage);
    if (!from) {
      r.problem(src.where, what + ": unknown stage '" + src.stage + "' in \"" + src.str() + "\"");
      return false;
    }
    if (!from->contract) return false;  // already reported
    const PortSpec* out = from->contract->output(src.name);
    if (!out) {
      std::vector<std::string> names;
      for (auto& o : from->contract->outputs) names.push_back(o.name);
      r.problem(src.where, what + ": stage '" + src.stage + "' has no output '" + src.name + "' (outputs: " +
                               join(names) + ")");
      return false;
    }
    *type = out->type;
    return true;
  };

  for (const Stage& st : p.stages) {
    for (const auto& [port, src] : st.inputs) {
      const std::string what = "stage '" + st.id + "', input '" + port + "'";
      if (!src.from_input && src.stage == st.id) {
        r.problem(src.where, what + ": a stage cannot take its own output");
        continue;
      }
      std::optional<PortType> t;
      if (!source_type(src, what, &t) || !st.contract) continue;
      const PortSpec* want = st.contract->input(port);
      if (want && *t != want->type)
        r.problem(src.where, what + ": expected " + port_type_name(want->type) + ", found " + port_type_name(*t) +
                                 " from \"" + src.str() + "\"");
    }
    for (const auto& [name, val] : st.params) {
      if (!val.from_input || !st.contract) continue;
      const std::string what = "stage '" + st.id + "', param '" + name + "'";
      const PipelineInput* in = p.input(val.text);
      const ParamSpec* spec = st.contract->param(name);
      if (!in)
        r.problem(val.where, what + ": unknown pipeline input '$" + val.text + "'");
      else if (spec && !feeds_param(in->type, spec->type))
        r.problem(val.where, what + ": expected " + param_type_name(spec->type) + ", found pipeline input '$" +
                                 val.text + "' of type " + input_type_name(in->type));
    }
  }

  if (have_outputs && r.expect_kind(outputs_node, YAML::NodeType::Map, "outputs", "a mapping of output names")) {
    r.for_each_entry(outputs_node, "outputs", {}, [&](const std::string& name, const YAML::Node& k, const YAML::Node& spec) {
      PipelineOutput o;
      o.name = name;
      o.where = r.at(k);
      const std::string what = "output '" + name + "'";
      if (!r.expect_kind(spec, YAML::NodeType::Map, what, "a mapping with from: and file:")) return;
      bool have_from = false;
      r.for_each_entry(spec, what, {"from", "file"}, [&](const std::string& field, const YAML::Node&, const YAML::Node& fv) {
        if (field == "from") {
          if (auto src = r.parse_source(fv, what + ", from")) {
            o.from = *src;
            have_from = true;
          }
        } else if (r.expect_kind(fv, YAML::NodeType::Scalar, what + ", file", "a file name template")) {
          o.file = fv.Scalar();
        }
      });
      if (!have_from) {
        if (!spec["from"]) r.problem(o.where, what + ": missing from:");
        return;
      }
      if (o.from.from_input) {
        r.problem(o.from.where, what + ": expected a stage output \"stage.port\", found \"" + o.from.str() + "\"");
        return;
      }
      std::optional<PortType> t;
      if (!source_type(o.from, what, &t)) return;
      static const std::map<PortType, std::string> ext = {
          {PortType::image, ".png"}, {PortType::audio, ".wav"}, {PortType::text, ".txt"}};
      auto e = ext.find(*t);
      if (e == ext.end()) {
        r.problem(o.from.where, what + ": " + port_type_name(*t) + " from \"" + o.from.str() +
                                    "\" cannot be written to a file (image, audio and text can)");
        return;
      }
      if (o.file.empty()) o.file = "{pipeline}-" + name + "-{seed}-{index}" + e->second;
      const std::string actual = std::filesystem::path(o.file).extension().string();
      if (actual != e->second)
        r.problem(o.where, what + ": " + port_type_name(*t) + " is written as " + e->second + ", found file \"" +
                               o.file + "\"");
      p.outputs.push_back(std::move(o));
    });
  }

  // Dependency order; a cycle is reported once, with its path.
  if (r.problems.empty()) {
    std::map<std::string, int> state;  // 0 new, 1 on the stack, 2 done
    std::vector<std::string> stack, order;
    std::function<bool(const Stage&)> visit = [&](const Stage& s) -> bool {
      state[s.id] = 1;
      stack.push_back(s.id);
      for (const auto& [port, src] : s.inputs) {
        if (src.from_input) continue;
        const Stage* dep = p.stage(src.stage);
        if (state[dep->id] == 1) {
          std::string path;
          auto start = std::find(stack.begin(), stack.end(), dep->id);
          for (auto it = start; it != stack.end(); ++it) path += *it + " -> ";
          r.problem(src.where, "stage '" + s.id + "', input '" + port + "': cycle " + path + dep->id);
          return false;
        }
        if (state[dep->id] == 0 && !visit(*dep)) return false;
      }
      stack.pop_back();
      state[s.id] = 2;
      order.push_back(s.id);
      return true;
    };
    for (const Stage& s : p.stages)
      if (state[s.id] == 0 && !visit(s)) break;
    if (r.problems.empty()) {
      std::vector<Stage> sorted;
      for (const std::string& id : order) sorted.push_back(*p.stage(id));
      p.stages = std::move(sorted);
      for (Stage& s : p.stages) s.contract = contracts.find(s.plugin, s.stage);
    }
  }
  if (!r.problems.empty()) throw PipelineError(r.problems);
  return p;
}

std::vector<std::string> plugin_dirs_of(const std::string& path) {
  std::vector<std::string> dirs;
  try {
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) > kMaxFileBytes || ec) return dirs;
    const YAML::Node root = YAML::LoadFile(path);
    const YAML::Node list = root.IsMap() ? root["plugins"] : YAML::Node();
    if (!list.IsSequence()) return dirs;
    const std::filesystem::path base = std::filesystem::path(path).parent_path();
    for (const auto& d : list)
      if (d.IsScalar()) dirs.push_back(std::filesystem::absolute(base / d.Scalar()).lexically_normal().string());
  } catch (const YAML::Exception&) {
    dirs.clear();
  }
  return dirs;
}

}  // namespace tessera::pipeline
