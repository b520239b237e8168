// `tessera bench text-generation`: configs/text-generation.yaml (the tessera.gpt2 plugin) at batch 1 and 8
// beside PyTorch running the same weights with the same algorithm (tools/bench_torch_gpt2.py) in the same
// run. Prompt tokens/s and generated tokens/s, each step split into GPU time and host overhead, and the peak
// GPU memory of a run that fills the model's whole context with f16 weights.
//
// The stage is timed from outside, as a user runs it: a run with max_tokens 1 is the prompt pass (plus one
// sampling step); a run with max_tokens 1 + N costs N steps more. GPU time comes from timestamps around every
// submission (Context::set_busy_timing); host overhead is the rest of the step: recording, submitting,
// waiting, reading the ids back, detokenizing.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "bench_ops.hpp"
#include "pipeline/scheduler.hpp"
#include "plugin/loader.hpp"
#include "tessera/json.hpp"

namespace tessera::bench {
namespace {

namespace fs = std::filesystem;

int usage() {
  std::fprintf(stderr,
               "usage: tessera bench text-generation [--model DIR]... [--no-small] [--prompt-tokens P] [--tokens N]\n"
               "                                      [--batches 1,8] [--runs R] [--threads T] [--json]\n"
               "  Without --model: the bundled models/tiny-gpt2 and a GPT-2-small-sized model with random weights\n"
               "  (made once by tools/gpt2/golden.py in the user cache dir; --no-small leaves it out).\n"
               "  P: prompt tokens (default 128, less where the context is short); N: generated tokens (default 64);\n"
               "  T: PyTorch's thread count (default 1).\n");
  return 2;
}

// GPT-2 small's dimensions (12 layers, 768 wide, 50257 tokens, 1024 positions) with random weights and GPT-2's
// own vocabulary, made once and kept.
std::string small_model() {
  return (fs::path(cached_bench_dir("gpt2-small-random", "a GPT-2-small-sized model with random weights",
                                    "tools.gpt2.golden --layers 12 --tokenizer tests/data/gpt2 --random-small")) /
          "model")
      .string();
}

// One run of the generate stage with `batch` sequences; returns the stage's seconds and the GPU's busy seconds.
std::pair<double, double> run_once(pipeline::Scheduler& scheduler, const gpu::Context& ctx, const std::string& model,
                                   int batch, int max_tokens, const std::string& text, bool f16,
                                   const std::string& out_dir) {
  pipeline::RunOptions o;
  o.inputs = {{"model", model},      {"prompt", text}, {"max_tokens", std::to_string(max_tokens)},
              {"temperature", "0.8"}, {"top_k", "40"},  {"top_p", "0.95"},
              {"repetition_penalty", "1.1"}, {"sequences", std::to_string(batch)}};
  o.overrides = {{"generate.stop_at_eos", "false"},
                 {"generate.include_prompt", "false"},
                 {"generate.f16_weights", f16 ? "true" : "false"}};
  o.out_dir = out_dir;
  o.seed = 1;
  const double busy0 = ctx.gpu_busy_ns();
  const pipeline::RunResult res = scheduler.run(o);
  return {res.stage_seconds.at("generate"), (ctx.gpu_busy_ns() - busy0) * 1e-9};
}


}  // namespace

int run_text_generation(const gpu::ContextOptions& options, const std::vector<std::string>& args) {
  std::vector<std::string> models;
  bool small = true, json = false;
  int prompt_tokens = 128, new_tokens = 64, runs = 3, threads = 1;
  std::string batches_arg = "1,8";
  if (!Options()
           .texts("--model", &models)
           .flag("--no-small", &small, false)
           .integer("--prompt-tokens", &prompt_tokens, 1, 1 << 20)
           .integer("--tokens", &new_tokens, 1, 1 << 20)
           .text("--batches", &batches_arg)
           .integer("--runs", &runs, 1, 1000)
           .integer("--threads", &threads, 1, 256)
           .flag("--json", &json)
           .parse(args))
    return usage();
  for (std::string& m : models) m = fs::absolute(m).string();
  std::vector<int> batches;
  {
    std::istringstream in(batches_arg);
    for (std::string b; std::getline(in, b, ',');) {
      const int n = std::atoi(b.c_str());
      if (n < 1 || n > 64) return usage();
      batches.push_back(n);
    }
  }
  if (models.empty()) {
    models.push_back(TESSERA_SOURCE_DIR "/models/tiny-gpt2");
    if (small) models.push_back(small_model());
  }

  Reporter rep(json);
  for (const std::string& model : models) {
    if (!fs::exists(fs::path(model) / "config.json")) {
      std::fprintf(stderr, "tessera bench: %s is not a model directory (no config.json)\n", model.c_str());
      return 1;
    }
    // The reference first, alone on the machine.
    std::string b_list;
    for (int b : batches) b_list += (b_list.empty() ? "" : ",") + std::to_string(b);
    const Reference ref = run_reference(
        TESSERA_SOURCE_DIR "/tools/bench_torch_gpt2.py " + shell_quote(model) + " " + std::to_string(prompt_tokens) +
            " " + std::to_string(new_tokens) + " " + b_list + " " + std::to_string(runs) + " " + std::to_string(threads),
        threads);
    if (!ref.ok) {
      std::fprintf(stderr, "tessera bench: the PyTorch reference failed for %s (is python3-torch installed?)\n",
                   model.c_str());
      return 1;
    }
    const std::string prompt = ref.result.at("prompt").string();
    const int64_t P = ref.result.at("prompt_tokens").integer();
    const std::string& torch_name = ref.name;

    const json::Value cfg = json::parse_file((fs::path(model) / "config.json").string());
    const int64_t n_positions = cfg.at("n_positions").integer();
    rep.line("text-generation: " + model + " (" + std::to_string(cfg.at("n_layer").integer()) + " layers, " +
             std::to_string(cfg.at("n_embd").integer()) + " wide, vocabulary " +
             std::to_string(cfg.at("vocab_size").integer()) + "), prompt " + std::to_string(P) + " tokens, " +
             std::to_string(new_tokens) + " generated, sampling T 0.8 / top-k 40 / top-p 0.95 / penalty 1.1, " +
             "median of " + std::to_string(runs) + " runs after a warm-up");
    const std::string out_dir = (fs::temp_directory_path() / ("tessera-bench-" + std::to_string(::getpid()))).string();
    {
      // Instances with other settings share the weights (the plugin keeps one copy per model and device).
      gpu::Context ctx(options);
      ctx.set_busy_timing(true);
      plugin::PluginSet plugins(options);
      plugins.services().use_context(ctx);
      for (const auto& d : plugin::default_plugin_dirs()) plugins.load_directory(d);
      pipeline::Scheduler scheduler(
          plugins, pipeline::load_pipeline(TESSERA_SOURCE_DIR "/configs/text-generation.yaml", plugins.contracts()));
      // Every batch size in f32 (what PyTorch runs), then batch 1 with the weights in f16.
      std::vector<std::pair<int, bool>> configs;
      for (int batch : batches) configs.emplace_back(batch, false);
      configs.emplace_back(1, true);
      for (const auto& [batch, f16] : configs) {
        std::vector<double> prompt_s, step_s, step_gpu_s;
        for (int r = 0; r <= runs; ++r) {  // run 0 loads the weights and compiles the pipelines
          const auto [t1, gpu1] = run_once(scheduler, ctx, model, batch, 1, prompt, f16, out_dir);
          const auto [tN, gpuN] = run_once(scheduler, ctx, model, batch, 1 + new_tokens, prompt, f16, out_dir);
          if (r == 0) continue;
          prompt_s.push_back(t1);
          step_s.push_back((tN - t1) / new_tokens);
          step_gpu_s.push_back((gpuN - gpu1) / new_tokens);
        }
        const json::Value* tb = ref.result.at("batches").find(std::to_string(batch));
        if (!tb) continue;
        const double ref_prompt = tb->at("prompt_s").number(), ref_step = tb->at("step_s").number();
        const std::string b = "batch " + std::to_string(batch) + (f16 ? ", f16 weights: " : ": ");
        const double step = median(step_s), gpu = std::min(median(step_gpu_s), step);
        rep.row(b + "prompt tokens/s", "tok/s", static_cast<double>(batch * P) / median(prompt_s), torch_name,
                static_cast<double>(batch * P) / ref_prompt, "one batched pass; ours includes one sampling step");
        rep.row(b + "generated tokens/s", "tok/s", batch / step, torch_name, batch / ref_step, "higher is better");
        rep.row(b + "time per step", "ms", step * 1e3, torch_name, ref_step * 1e3, "lower is better");
        rep.row(b + "  GPU time per step", "ms", gpu * 1e3, "", 0, "timestamps around each submission");
        rep.row(b + "  host overhead per step", "ms", (step - gpu) * 1e3, "", 0,
                std::to_string(static_cast<int>(100 * (step - gpu) / step + 0.5)) + "% of the step");
      }
    }
    {
      // Peak GPU memory with f16 weights over a run that fills the whole context, on a device of its own so
      // that nothing else is counted.
      gpu::Context ctx(options);
      plugin::PluginSet plugins(options);
      plugins.services().use_context(ctx);
      for (const auto& d : plugin::default_plugin_dirs()) plugins.load_directory(d);
      pipeline::Scheduler scheduler(
          plugins, pipeline::load_pipeline(TESSERA_SOURCE_DIR "/configs/text-generation.yaml", plugins.contracts()));
      const int64_t long_P = ref.result.at("long_prompt_tokens").integer();
      run_once(scheduler, ctx, model, 1, static_cast<int>(n_positions - long_P), ref.result.at("long_prompt").string(), true,
               out_dir);
      const gpu::MemoryStats m = ctx.allocator().stats();
      rep.row("peak GPU memory, f16 weights, " + std::to_string(n_positions) + "-token context", "MB",
              static_cast<double>(m.peak_device_in_use) / 1e6, "", 0,
              "weights " + std::to_string(m.device_in_use / 1000000) + " MB; prompt " + std::to_string(long_P) +
                  " tokens + " + std::to_string(n_positions - long_P) + " generated");
    }
    fs::remove_all(out_dir);
  }
  return 0;
}

}  // namespace tessera::bench
