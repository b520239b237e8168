// `tessera run`: validate a pipeline, run it, write its outputs; progress on the terminal or as JSON lines.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.hpp"
#include "pipeline/scheduler.hpp"
#include "plugin/loader.hpp"

namespace tessera::cli {
namespace {

std::atomic<bool> g_cancel{false};

void on_interrupt(int) { g_cancel = true; }

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

int usage() {
  std::fprintf(stderr,
               "usage: tessera run PIPELINE.yaml [--input NAME=VALUE]... [--prompt TEXT | --prompts FILE] [--set STAGE.PARAM=VALUE]...\n"
               "                  [--out DIR] [--count N] [--seed S] [--progress bar|json|none] [--plugin-path DIR]...\n"
               "  --prompt TEXT is --input prompt=TEXT; --prompts FILE runs every line of FILE as a prompt. Paths given with --input or --set are relative to the\n"
               "  working directory; paths written in the pipeline file are relative to the file.\n");
  return kExitUsage;
}

}  // namespace

int run(const Globals& g, const std::vector<std::string>& args) {
  std::string path, progress = isatty(2) ? "bar" : "none";
  std::vector<std::string> dirs;
  pipeline::RunOptions options;
  bool seed_given = false;
  std::string prompts_file;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--input" || a == "--set") {
      if (!value(&v) || v.find('=') == std::string::npos) return usage();
      (a == "--input" ? options.inputs : options.overrides)[v.substr(0, v.find('='))] = v.substr(v.find('=') + 1);
    } else if (a == "--prompt") {  // the common case of --input prompt=...
      if (!value(&v)) return usage();
      options.inputs["prompt"] = v;
    } else if (a == "--prompts") {
      if (!value(&prompts_file)) return usage();
    } else if (a == "--out") {
      if (!value(&options.out_dir)) return usage();
    } else if (a == "--count" || a == "--seed") {
      if (!value(&v)) return usage();
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || (a == "--count" && (n < 1 || n > 100000))) return usage();
      if (a == "--count")
        options.count = static_cast<int>(n);
      else {
        options.seed = n;
        seed_given = true;
      }
    } else if (a == "--progress") {
      if (!value(&progress) || (progress != "bar" && progress != "json" && progress != "none")) return usage();
    } else if (a == "--plugin-path") {
      if (!value(&v)) return usage();
      dirs.push_back(v);
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else if (path.empty() && a.rfind("--", 0) != 0) {
      path = a;
    } else {
      return usage();
    }
  }
  if (path.empty()) return usage();

  plugin::PluginSet plugins(g.options);
  std::vector<std::string> all = plugin::default_plugin_dirs();
  all.insert(all.end(), dirs.begin(), dirs.end());
  for (const auto& d : pipeline::plugin_dirs_of(path)) all.push_back(d);
  for (const auto& d : all) {
    try {
      plugins.load_directory(d);
    } catch (const Error& e) {
      std::fprintf(stderr, "tessera: %s\n", e.what());
    }
  }
  try {
    pipeline::Pipeline p = pipeline::load_pipeline(path, plugins.contracts());
    if (!seed_given)
      if (const auto* in = p.input("seed"); in && in->has_default) options.seed = std::strtoull(in->default_value.c_str(), nullptr, 10);
    if (!seed_given && options.inputs.count("seed")) options.seed = std::strtoull(options.inputs["seed"].c_str(), nullptr, 10);
    pipeline::Scheduler scheduler(plugins, std::move(p));
    options.cancel = &g_cancel;
    options.on_progress = [&](const pipeline::ProgressEvent& e) {
      if (progress == "json") {
        std::printf("{\"event\":\"progress\",\"stage\":\"%s\",\"sample\":%d,\"count\":%d,\"fraction\":%.4f,\"label\":\"%s\"}\n",
                    json_escape(e.stage).c_str(), e.sample, e.count, e.fraction, json_escape(e.label).c_str());
        std::fflush(stdout);
      } else if (progress == "bar") {
        const int filled = static_cast<int>(e.fraction * 30);
        std::fprintf(stderr, "\r%-16.16s [%-30.*s] %3.0f%%  sample %d/%d", e.stage.c_str(), filled,
                     "##############################", e.fraction * 100, e.sample + 1, e.count);
        std::fflush(stderr);
      }
    };
    // --prompts FILE: every non-empty line is a prompt; prompt i runs its samples with seeds
    // seed + i * count, ..., so every image has a seed of its own. A pipeline that batches its prompt
    // (batch: {texts: prompt}) gets them all in one run, with the same seeds.
    std::vector<std::string> prompts;
    if (!prompts_file.empty()) {
      std::ifstream in(prompts_file);
      if (!in) throw Error(prompts_file + ": cannot read the prompts file");
      for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) prompts.push_back(line);
      }
      if (prompts.empty()) throw Error(prompts_file + ": no prompts (one per line)");
      if (!scheduler.pipeline().input("prompt"))
        throw Error("--prompts: pipeline '" + scheduler.pipeline().name + "' has no input named prompt");
    }
    bool ends_with_newline = true;  // of the streamed text: "wrote ..." goes on a line of its own
    options.on_text = [&](const std::string& stage, int sample, const std::string& output, const std::string& text) {
      if (progress == "json") {
        std::printf("{\"event\":\"text\",\"stage\":\"%s\",\"sample\":%d,\"output\":\"%s\",\"text\":\"%s\"}\n",
                    json_escape(stage).c_str(), sample, json_escape(output).c_str(), json_escape(text).c_str());
      } else {
        if (progress == "bar") std::fprintf(stderr, "\r%80s\r", "");
        std::fputs(text.c_str(), stdout);
        if (!text.empty()) ends_with_newline = text.back() == '\n';
      }
      std::fflush(stdout);
    };
    std::signal(SIGINT, on_interrupt);
    pipeline::RunResult r;
    if (prompts.empty()) {
      r = scheduler.run(options);
    } else if (scheduler.pipeline().batch_texts == "prompt") {
      // The stages take several prompts at once: the scheduler runs them in GPU batches, with the seeds
      // one run per prompt would get.
      options.text_items["prompt"] = prompts;
      r = scheduler.run(options);
    } else {
      const uint64_t base = options.seed;
      for (size_t i = 0; i < prompts.size(); ++i) {
        options.inputs["prompt"] = prompts[i];
        options.seed = base + i * static_cast<uint64_t>(options.count);
        const pipeline::RunResult one = scheduler.run(options);
        r.files.insert(r.files.end(), one.files.begin(), one.files.end());
      }
    }
    std::signal(SIGINT, SIG_DFL);
    if (progress == "bar") std::fprintf(stderr, "\r%80s\r", "");
    if (!ends_with_newline) std::printf("\n");
    for (const auto& f : r.files) {
      if (progress == "json")
        std::printf("{\"event\":\"output\",\"file\":\"%s\"}\n", json_escape(f).c_str());
      else
        std::printf("wrote %s\n", f.c_str());
    }
    return 0;
  } catch (const pipeline::Cancelled&) {
    std::fprintf(stderr, "\ntessera: cancelled; no output was written\n");
    return 130;
  } catch (const pipeline::PipelineError& e) {
    for (const auto& line : e.problems()) std::fprintf(stderr, "%s\n", line.c_str());
    return kExitInvalidPipeline;
  } catch (const Error& e) {
    std::fprintf(stderr, "tessera: %s\n", e.what());
    return kExitRunFailed;
  }
}

}  // namespace tessera::cli
