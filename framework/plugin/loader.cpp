#include "plugin/loader.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

namespace tessera::plugin {
namespace {

namespace fs = std::filesystem;

std::optional<pipeline::PortType> port_type(tessera_port_type_t t) {
  switch (t) {
    case TESSERA_PORT_TEXT:
      return pipeline::PortType::text;
    case TESSERA_PORT_TOKENS:
      return pipeline::PortType::tokens;
    case TESSERA_PORT_TENSOR:
      return pipeline::PortType::tensor;
    case TESSERA_PORT_IMAGE:
      return pipeline::PortType::image;
    case TESSERA_PORT_AUDIO:
      return pipeline::PortType::audio;
    default:
      return std::nullopt;
  }
}

std::optional<pipeline::ParamType> param_type(tessera_param_type_t t) {
  switch (t) {
    case TESSERA_PARAM_BOOL:
      return pipeline::ParamType::boolean;
    case TESSERA_PARAM_INT:
      return pipeline::ParamType::integer;
    case TESSERA_PARAM_FLOAT:
      return pipeline::ParamType::number;
    case TESSERA_PARAM_STRING:
      return pipeline::ParamType::string;
    case TESSERA_PARAM_PATH:
      return pipeline::ParamType::path;
    default:
      return std::nullopt;
  }
}

bool valid_name(const char* s) {
  if (!s || !*s) return false;
  for (const char* c = s; *c; ++c)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' || *c == '.')) return false;
  return true;
}

// Turns one stage descriptor into a contract; the reason it is malformed otherwise.
pipeline::StageContract contract_of(const std::string& file, const std::string& plugin, const tessera_stage_t& st) {
  auto bad = [&](const std::string& why) -> Error {
    return Error(file + ": stage '" + (st.id ? st.id : "?") + "' of plugin '" + plugin + "': " + why);
  };
  if (!valid_name(st.id)) throw bad("its id must be lowercase letters, digits, '_', '-' or '.'");
  if (!st.create || !st.run || !st.destroy) throw bad("create, run and destroy must all be set");
  pipeline::StageContract c;
  c.plugin = plugin;
  c.stage = st.id;
  c.description = st.description ? st.description : "";
  auto ports = [&](const tessera_port_t* list, uint32_t n, const char* kind, std::vector<pipeline::PortSpec>& out) {
    if (n && !list) throw bad(std::string("its ") + kind + " list is NULL");
    std::set<std::string> names;
    for (uint32_t i = 0; i < n; ++i) {
      const tessera_port_t& p = list[i];
      if (!valid_name(p.name)) throw bad(std::string(kind) + " " + std::to_string(i) + " has no valid name");
      if (!names.insert(p.name).second) throw bad(std::string(kind) + " '" + p.name + "' is declared twice");
      auto t = port_type(p.type);
      if (!t) throw bad(std::string(kind) + " '" + p.name + "' has unknown type " + std::to_string(p.type));
      out.push_back({p.name, *t, p.doc ? p.doc : "", (p.flags & TESSERA_PORT_OPTIONAL) != 0});
    }
  };
  ports(st.inputs, st.input_count, "input", c.inputs);
  ports(st.outputs, st.output_count, "output", c.outputs);
  if (st.param_count && !st.params) throw bad("its parameter list is NULL");
  std::set<std::string> names;
  for (uint32_t i = 0; i < st.param_count; ++i) {
    const tessera_param_t& p = st.params[i];
    if (!valid_name(p.name)) throw bad("parameter " + std::to_string(i) + " has no valid name");
    if (!names.insert(p.name).second) throw bad(std::string("parameter '") + p.name + "' is declared twice");
    auto t = param_type(p.type);
    if (!t) throw bad(std::string("parameter '") + p.name + "' has unknown type " + std::to_string(p.type));
    pipeline::ParamSpec spec;
    spec.name = p.name;
    spec.type = *t;
    spec.required = p.default_value == nullptr;
    spec.default_value = p.default_value ? p.default_value : "";
    if (p.flags & TESSERA_PARAM_HAS_MIN) spec.min = p.min;
    if (p.flags & TESSERA_PARAM_HAS_MAX) spec.max = p.max;
    spec.doc = p.doc ? p.doc : "";
    c.params.push_back(std::move(spec));
  }
  return c;
}

}  // namespace

PluginSet::PluginSet(gpu::ContextOptions options) : services_(std::make_unique<Services>(std::move(options))) {}

PluginSet::~PluginSet() {
  for (auto it = plugins_.rbegin(); it != plugins_.rend(); ++it) {
    if (it->entry->deinit) it->entry->deinit();
    dlclose(it->handle);
  }
}

void PluginSet::load_file(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw Error(path + ": not a loadable plugin: " + (why ? why : "dlopen failed"));
  }
  struct Closer {
    void* h;
    ~Closer() {
      if (h) dlclose(h);
    }
  } closer{handle};
  const auto* entry = static_cast<const tessera_plugin_entry_t*>(dlsym(handle, TESSERA_PLUGIN_ENTRY_SYMBOL));
  if (!entry) throw Error(path + ": not a Tessera plugin: it does not export " TESSERA_PLUGIN_ENTRY_SYMBOL);
  if (entry->abi.major != TESSERA_ABI_MAJOR)
    throw Error(path + ": plugin ABI " + std::to_string(entry->abi.major) + "." + std::to_string(entry->abi.minor) +
                " does not match this Tessera's ABI " + std::to_string(TESSERA_ABI_MAJOR) + "." +
                std::to_string(TESSERA_ABI_MINOR) + "; rebuild the plugin against this version's tessera/plugin.h");
  if (entry->struct_size < offsetof(tessera_plugin_entry_t, get_extension))
    throw Error(path + ": its tessera_plugin_entry is truncated (struct_size " + std::to_string(entry->struct_size) + ")");
  if (!valid_name(entry->id)) throw Error(path + ": its plugin id must be lowercase letters, digits, '_', '-' or '.'");
  const std::string id = entry->id;
  for (const LoadedPlugin& p : plugins_)
    if (id == p.entry->id) throw Error(path + ": plugin id '" + id + "' is already loaded from " + p.path);
  if (entry->stage_count && !entry->stages) throw Error(path + ": plugin '" + id + "' has a NULL stage list");

  std::vector<pipeline::StageContract> contracts;
  std::set<std::string> stage_ids;
  for (uint32_t i = 0; i < entry->stage_count; ++i) {
    contracts.push_back(contract_of(path, id, entry->stages[i]));
    if (!stage_ids.insert(contracts.back().stage).second)
      throw Error(path + ": plugin '" + id + "' declares stage '" + contracts.back().stage + "' twice");
  }
  if (entry->init && !entry->init(host())) throw Error(path + ": plugin '" + id + "' refused to start (init returned false)");
  for (auto& c : contracts) contracts_.add(std::move(c));
  plugins_.push_back({path, entry, handle});
  closer.h = nullptr;
}

const tessera_stage_t* PluginSet::stage(const std::string& plugin, const std::string& id) const {
  for (const LoadedPlugin& p : plugins_) {
    if (plugin != p.entry->id) continue;
    for (uint32_t i = 0; i < p.entry->stage_count; ++i)
      if (id == p.entry->stages[i].id) return &p.entry->stages[i];
  }
  return nullptr;
}

void PluginSet::load_directory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir + ": plugin directory does not exist");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".so") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) load_file(f);
}

std::vector<std::string> default_plugin_dirs() {
  std::vector<std::string> dirs;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = (exe.parent_path() / TESSERA_PLUGIN_DIR_FROM_BIN).lexically_normal();
    if (fs::is_directory(installed, ec)) dirs.push_back(installed.string());
  }
  if (const char* env = std::getenv("TESSERA_PLUGIN_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      const size_t end = std::min(s.find(':', start), s.size());
      if (end > start) dirs.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  return dirs;
}

}  // namespace tessera::plugin
