// `tessera plugins` and `tessera validate`: what the loaded plugins offer, and whether a pipeline file
// is sound, without loading any weights or touching the GPU.
#include <cmath>
#include <cstdio>

#include "cli/commands.hpp"
#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"

namespace tessera::cli {
namespace {

// Loads the default plugin directories, then `extra`, printing what cannot be loaded.
bool load_plugins(plugin::PluginSet& set, const std::vector<std::string>& extra) {
  bool ok = true;
  std::vector<std::string> dirs = plugin::default_plugin_dirs();
  dirs.insert(dirs.end(), extra.begin(), extra.end());
  for (const std::string& d : dirs) {
    try {
      set.load_directory(d);
    } catch (const Error& e) {
      std::fprintf(stderr, "tessera: %s\n", e.what());
      ok = false;
    }
  }
  return ok;
}

// Splits "--plugin-path DIR" options from the positional arguments.
bool split_args(const std::vector<std::string>& args, std::vector<std::string>* dirs, std::vector<std::string>* rest) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--plugin-path") {
      if (i + 1 == args.size()) return false;
      dirs->push_back(args[++i]);
    } else {
      rest->push_back(args[i]);
    }
  }
  return true;
}

}  // namespace

int plugins(const Globals&, const std::vector<std::string>& args) {
  std::vector<std::string> dirs, rest;
  if (!split_args(args, &dirs, &rest) || !rest.empty()) {
    std::fprintf(stderr, "usage: tessera plugins [--plugin-path DIR]...\n");
    return kExitUsage;
  }
  plugin::PluginSet set;
  const bool ok = load_plugins(set, dirs);
  if (set.plugins().empty()) std::printf("no plugins found (directories: install dir, TESSERA_PLUGIN_PATH, --plugin-path)\n");
  for (const auto& p : set.plugins()) {
    std::printf("%s %s  (%s)\n  %s\n", p.entry->id, p.entry->version ? p.entry->version : "",
                p.path.c_str(), p.entry->description ? p.entry->description : "");
    for (const std::string& id : set.contracts().stages(p.entry->id)) {
      const pipeline::StageContract* c = set.contracts().find(p.entry->id, id);
      std::printf("  stage %s: %s\n", id.c_str(), c->description.c_str());
      for (const auto& port : c->inputs)
        std::printf("    in  %-14s %-7s%s %s\n", port.name.c_str(), pipeline::port_type_name(port.type),
                    port.optional ? " (optional)" : "", port.doc.c_str());
      for (const auto& port : c->outputs)
        std::printf("    out %-14s %-7s %s\n", port.name.c_str(), pipeline::port_type_name(port.type), port.doc.c_str());
      for (const auto& par : c->params) {
        char range[64] = "";
        if (par.min || par.max)
          std::snprintf(range, sizeof range, " [%g, %g]", par.min ? *par.min : -INFINITY, par.max ? *par.max : INFINITY);
        std::printf("    par %-14s %-7s %s%s %s\n", par.name.c_str(), pipeline::param_type_name(par.type),
                    par.required ? "required" : ("= " + par.default_value).c_str(), range, par.doc.c_str());
      }
    }
  }
  return ok ? 0 : kExitRunFailed;
}

int validate(const Globals&, const std::vector<std::string>& args) {
  std::vector<std::string> dirs, rest;
  if (!split_args(args, &dirs, &rest) || rest.size() != 1) {
    std::fprintf(stderr, "usage: tessera validate PIPELINE.yaml [--plugin-path DIR]...\n");
    return kExitUsage;
  }
  plugin::PluginSet set;
  load_plugins(set, dirs);
  // The file's own plugin directories come from a first, lenient read; everything is checked after.
  const std::vector<std::string> file_dirs = pipeline::plugin_dirs_of(rest[0]);
  for (const std::string& d : file_dirs) {
    try {
      set.load_directory(d);
    } catch (const Error& e) {
      std::fprintf(stderr, "tessera: %s\n", e.what());
    }
  }
  try {
    const pipeline::Pipeline p = pipeline::load_pipeline(rest[0], set.contracts());
    std::printf("%s: valid pipeline '%s': %zu stages, %zu outputs\n", rest[0].c_str(), p.name.c_str(), p.stages.size(),
                p.outputs.size());
    return 0;
  } catch (const pipeline::PipelineError& e) {
    for (const auto& line : e.problems()) std::fprintf(stderr, "%s\n", line.c_str());
    return kExitInvalidPipeline;
  }
}

}  // namespace tessera::cli
