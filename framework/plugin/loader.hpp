#pragma once
// Loads plugins (shared libraries exporting tessera_plugin_entry) and turns their stage descriptors into
// the contracts pipelines are validated against.
#include <memory>
#include <string>
#include <vector>

#include "gpu/error.hpp"
#include "pipeline/contract.hpp"
#include "plugin/services.hpp"
#include "tessera/plugin.h"

namespace tessera::plugin {

struct LoadedPlugin {
  std::string path;
  const tessera_plugin_entry_t* entry = nullptr;
  void* handle = nullptr;
};

// The plugins of one process. Loading is [main]-thread work; the set unloads them (deinit, dlclose) when
// it dies, so it must outlive every stage instance made from them.
class PluginSet {
 public:
  // `options` make the GPU context of each device when a stage first uses one (never for listing or
  // validating).
  explicit PluginSet(gpu::ContextOptions options = gpu::ContextOptions::from_environment());
  ~PluginSet();
  PluginSet(const PluginSet&) = delete;
  PluginSet& operator=(const PluginSet&) = delete;

  // Loads one file. Throws tessera::Error naming the file and the reason: not a shared library, no
  // tessera_plugin_entry, an ABI major version other than ours, an id already loaded, a malformed stage.
  void load_file(const std::string& path);
  // Loads every "*.so" in each directory, in name order; a directory that does not exist is an error.
  void load_directory(const std::string& dir);

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const pipeline::ContractRegistry& contracts() const { return contracts_; }
  // The host stages on `device` get ("" = the default device); init() gets the default one.
  const tessera_host_t* host(const std::string& device = "") const { return services_->host(device); }
  Services& services() const { return *services_; }
  // The descriptor of a loaded stage, or nullptr.
  const tessera_stage_t* stage(const std::string& plugin, const std::string& id) const;

 private:
  std::vector<LoadedPlugin> plugins_;
  pipeline::ContractRegistry contracts_;
  std::unique_ptr<Services> services_;  // freed after the plugins are unloaded: it holds no plugin code
};

// Where plugins are looked for, in order: the install directory (<prefix>/lib/tessera/plugins, found
// from the running executable), then each directory of TESSERA_PLUGIN_PATH (colon-separated). Never the
// working directory.
std::vector<std::string> default_plugin_dirs();

}  // namespace tessera::plugin
