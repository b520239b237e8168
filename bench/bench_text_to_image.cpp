// `tessera bench text-to-image`: the whole pipeline (configs/text-to-image.yaml) on a model directory,
// image tokens per second and seconds per image, beside PyTorch running the same weights with the same
// algorithm (tools/bench_torch_dalle.py) in the same run. Medians over --runs after a warm-up.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "bench_ops.hpp"
#include "pipeline/scheduler.hpp"
#include "plugin/loader.hpp"
#include "tessera/json.hpp"

namespace tessera::bench {
namespace {

int usage() {
  std::fprintf(stderr,
               "usage: tessera bench text-to-image [--model DIR] [--images N] [--runs R] [--threads T] [--json]\n"
               "  DIR defaults to the bundled models/tiny-dalle; T is PyTorch's thread count (default 1).\n");
  return 2;
}

}  // namespace

int run_text_to_image(const gpu::ContextOptions& options, const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::string model = TESSERA_SOURCE_DIR "/models/tiny-dalle";
  int images = 1, runs = 3, threads = 1;
  bool json = false;
  if (!Options()
           .text("--model", &model)
           .integer("--images", &images, 1, 64)
           .integer("--runs", &runs, 1, 1000)
           .integer("--threads", &threads, 1, 256)
           .flag("--json", &json)
           .parse(args))
    return usage();
  model = fs::absolute(model).string();
  if (!fs::exists(model + "/config.json")) {
    std::fprintf(stderr, "tessera bench: %s is not a model directory (no config.json)\n", model.c_str());
    return 1;
  }
  const json::Value cfg = json::parse_file(model + "/config.json");
  const int64_t tokens_per_image = cfg.at("image_token_count").integer();

  gpu::Context ctx(options);  // ours, to read its memory figures
  plugin::PluginSet plugins(options);
  plugins.services().use_context(ctx);
  for (const auto& d : plugin::default_plugin_dirs()) plugins.load_directory(d);
  pipeline::Scheduler scheduler(
      plugins, pipeline::load_pipeline(TESSERA_SOURCE_DIR "/configs/text-to-image.yaml", plugins.contracts()));
  pipeline::RunOptions o;
  o.inputs = {{"model", model}, {"images", std::to_string(images)}, {"upscale", "1"}};
  o.out_dir = (fs::temp_directory_path() / ("tessera-bench-" + std::to_string(::getpid()))).string();
  std::vector<double> total, decode, encode, detok;
  for (int r = 0; r <= runs; ++r) {  // run 0 loads the weights and compiles the pipelines
    o.seed = static_cast<uint64_t>(r + 1);
    const auto t0 = std::chrono::steady_clock::now();
    const pipeline::RunResult res = scheduler.run(o);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r == 0) continue;
    total.push_back(wall);
    decode.push_back(res.stage_seconds.at("decode"));
    encode.push_back(res.stage_seconds.at("encode"));
    detok.push_back(res.stage_seconds.at("detokenize"));
  }
  fs::remove_all(o.out_dir);
  // Weights stay with the stage instances after a run; everything else a run allocates is freed by then.
  const gpu::MemoryStats mem = ctx.allocator().stats();

  const Reference ref = run_reference(
      TESSERA_SOURCE_DIR "/tools/bench_torch_dalle.py " + shell_quote(model) + " " + std::to_string(images) + " " +
          std::to_string(runs) + " " + std::to_string(threads),
      threads);
  const double t_enc = ref.number("encode"), t_dec = ref.number("decode"), t_detok = ref.number("detokenize");
  const std::string& torch_name = ref.name;

  Reporter rep(json);
  rep.line("text-to-image: " + model + ", " + std::to_string(images) + " image(s) per run, median of " +
           std::to_string(runs) + " runs after a warm-up");
  const double n_tokens = static_cast<double>(tokens_per_image * images);
  const double ref_total = t_enc + t_dec + t_detok;
  rep.row("decode: image tokens/s", "tok/s", n_tokens / median(decode), torch_name, t_dec > 0 ? n_tokens / t_dec : 0,
          "higher is better");
  rep.row("seconds per image (whole pipeline)", "s", median(total) / images, torch_name,
          ref_total > 0 ? ref_total / images : 0, "ours includes tokenizer, grid and PNG");
  rep.row("encode", "s", median(encode), torch_name, t_enc, "");
  rep.row("detokenize", "s", median(detok), torch_name, t_detok, "");
  rep.row("peak GPU memory", "MB", static_cast<double>(mem.peak_device_in_use) / 1e6, "", 0,
          "weights " + std::to_string(mem.device_in_use / 1000000) + " MB; per image beyond the weights " +
              std::to_string((mem.peak_device_in_use - mem.device_in_use) / 1000 / static_cast<uint64_t>(images)) +
              " kB");
  return 0;
}

}  // namespace tessera::bench
