// Figures for the op library, each beside a reference measured in the same run, as a ratio.
#include "bench_ops.hpp"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "bench_attention.hpp"
#include "gpu/error.hpp"
#include "gpu/stream.hpp"
#include "ops/matmul.hpp"

namespace tessera::bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string run_python_reference(const std::string& script_and_args, int threads) {
  std::string cmd;
  if (threads > 0) cmd = "OMP_NUM_THREADS=" + std::to_string(threads) + " OPENBLAS_NUM_THREADS=" + std::to_string(threads) + " ";
  cmd += "/usr/bin/python3 " + script_and_args + " 2>/dev/null";
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  pclose(pipe);
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string cache_dir() {
  namespace fs = std::filesystem;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return (fs::path(x) / "tessera").string();
  if (const char* h = std::getenv("HOME"); h && *h) return (fs::path(h) / ".cache" / "tessera").string();
  return (fs::temp_directory_path() / "tessera-cache").string();
}

Options& Options::text(const char* name, std::string* out) {
  options_.push_back({name, [out](const std::string* v) { return *out = *v, true; }, true});
  return *this;
}

Options& Options::texts(const char* name, std::vector<std::string>* out) {
  options_.push_back({name, [out](const std::string* v) { return out->push_back(*v), true; }, true});
  return *this;
}

Options& Options::integer(const char* name, int* out, int lo, int hi) {
  options_.push_back({name,
                      [out, lo, hi](const std::string* v) {
                        char* end = nullptr;
                        const long n = std::strtol(v->c_str(), &end, 10);
                        if (v->empty() || *end || n < lo || n > hi) return false;
                        *out = static_cast<int>(n);
                        return true;
                      },
                      true});
  return *this;
}

Options& Options::flag(const char* name, bool* out, bool value) {
  options_.push_back({name, [out, value](const std::string*) { return *out = value, true; }, false});
  return *this;
}

bool Options::parse(const std::vector<std::string>& args) const {
  for (size_t i = 0; i < args.size(); ++i) {
    const Option* o = nullptr;
    for (const Option& c : options_)
      if (c.name == args[i]) o = &c;
    if (!o) return false;
    if (!o->takes_value) {
      o->set(nullptr);
    } else if (i + 1 >= args.size() || !o->set(&args[++i])) {
      return false;
    }
  }
  return true;
}

Reference run_reference(const std::string& script_and_args, int threads) {
  Reference r;
  try {
    r.result = json::parse(run_python_reference(script_and_args, threads));
    r.name = "PyTorch " + r.result.at("torch").string() + " (" + std::to_string(r.result.at("threads").integer()) + " thr)";
    r.ok = true;
  } catch (const std::exception&) {
    r = Reference();
  }
  return r;
}

std::string cached_bench_dir(const std::string& name, const std::string& what, const std::string& module_and_args) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(cache_dir()) / "bench" / name;
  if (fs::exists(dir / "golden.json")) return dir.string();
  std::fprintf(stderr, "making %s in %s ...\n", what.c_str(), dir.c_str());
  const std::string cmd = "cd " TESSERA_SOURCE_DIR " && /usr/bin/python3 -m " + module_and_args + " " +
                          shell_quote(dir.string()) + " >&2";
  if (std::system(cmd.c_str()) != 0 || !fs::exists(dir / "golden.json"))
    throw Error("could not make " + what + " (" + cmd + ")");
  return dir.string();
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

Reporter::Reporter(bool json) : json_(json) {}

void Reporter::row(const std::string& name, const std::string& unit, double ours, const std::string& ref_name,
                   double ref, const std::string& note) {
  if (json_) {
    std::printf("{\"bench\":\"%s\",\"unit\":\"%s\",\"tessera\":%.4g,\"reference\":\"%s\",\"reference_value\":%.4g,"
                "\"ratio\":%.4g%s%s%s}\n",
                name.c_str(), unit.c_str(), ours, ref_name.c_str(), ref, ref > 0 ? ours / ref : 0.0,
                note.empty() ? "" : ",\"note\":\"", note.c_str(), note.empty() ? "" : "\"");
  } else if (ref_name.empty()) {  // a figure without a reference
    std::printf("%-40s %9.2f %-8s  %-46s %s\n", name.c_str(), ours, unit.c_str(), "", note.c_str());
  } else {
    std::printf("%-40s %9.2f %-8s  %-18s %9.2f   ratio %5.2f  %s\n", name.c_str(), ours, unit.c_str(), ref_name.c_str(),
                ref, ref > 0 ? ours / ref : 0.0, note.c_str());
  }
  std::fflush(stdout);
}

void Reporter::line(const std::string& text) {
  if (json_)
    std::printf("{\"info\":\"%s\"}\n", text.c_str());
  else
    std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

GpuTime time_gpu(gpu::Context& ctx, const std::function<void(gpu::Stream&)>& record, int reps) {
  gpu::Stream s(ctx);
  s.set_timing(true);
  record(s);
  s.run();  // warm-up: pipelines compiled, memory touched
  std::vector<double> gpu_ns, wall_s;
  for (int r = 0; r < reps; ++r) {
    record(s);
    const auto t0 = std::chrono::steady_clock::now();
    s.run();
    wall_s.push_back(seconds_since(t0));
    gpu_ns.push_back(s.last_gpu_ns());
  }
  return {median(gpu_ns) * 1e-9, median(wall_s)};
}

double time_cpu(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(seconds_since(t0));
  }
  return median(t);
}

namespace {

void bench_matmul(gpu::Context& ctx, Reporter& rep, int M, int N, int K, gpu::DType wtype, ops::WeightLayout layout,
                  int reps, bool packed_weights = false) {
  auto a = random_floats(static_cast<size_t>(M) * K, 1);
  auto w = random_floats(static_cast<size_t>(N) * K, 2);
  const bool nk = layout == ops::WeightLayout::out_in;
  auto ta = gpu::Tensor::from_f32(ctx, a, {M, K});
  auto tw = nk ? gpu::Tensor::from_f32(ctx, w, {N, K}, wtype) : gpu::Tensor::from_f32(ctx, w, {K, N}, wtype);
  gpu::Tensor out(ctx, gpu::DType::f32, {M, N});
  gpu::Tensor packed;
  if (packed_weights) packed = ops::pack_weights(ctx, tw, layout);
  const GpuTime t = time_gpu(
      ctx,
      [&](gpu::Stream& s) {
        if (packed_weights)
          ops::matmul(s, ta, packed, out, ops::WeightLayout::packed);
        else
          ops::matmul(s, ta, tw, out, layout);
      },
      reps);

  std::vector<float> c(static_cast<size_t>(M) * N);
  const double blas = time_cpu(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, nk ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a.data(), K, w.data(),
                    nk ? K : N, 0.0f, c.data(), N);
      },
      reps);
  const double flops = 2.0 * M * N * K;
  char name[96];
  std::snprintf(name, sizeof name, "matmul %dx%dx%d %s %s%s", M, N, K, gpu::dtype_name(wtype), nk ? "[N,K]" : "[K,N]",
                packed_weights ? " packed" : "");
  char note[96];
  // Bytes the op must move at least: A, W and C once each.
  std::snprintf(note, sizeof note, "gpu %.3f ms, wall %.3f ms, %.1f GB/s compulsory", t.gpu_s * 1e3, t.wall_s * 1e3,
                (4.0 * M * K + gpu::dtype_size(wtype) * 1.0 * N * K + 4.0 * M * N) / t.gpu_s / 1e9);
  rep.row(name, "GFLOP/s", flops / t.gpu_s / 1e9, "openblas sgemm", flops / blas / 1e9, note);
}

void bench_dispatch_cost(gpu::Context& ctx, Reporter& rep) {
  // The cheapest real dispatch we have: a 1x1x1 matmul.
  auto a = gpu::Tensor::from_f32(ctx, std::vector<float>{1.0f}, {1, 1});
  gpu::Tensor out(ctx, gpu::DType::f32, {1, 1});
  const int n = 200;
  gpu::Stream s(ctx);
  auto record = [&](int count) {
    for (int i = 0; i < count; ++i) ops::matmul(s, a, a, out);
  };
  record(1);
  s.run();
  std::vector<double> one, many;
  for (int r = 0; r < 9; ++r) {
    record(1);
    auto t0 = std::chrono::steady_clock::now();
    s.run();
    one.push_back(seconds_since(t0));
    record(n);
    t0 = std::chrono::steady_clock::now();
    s.run();
    many.push_back(seconds_since(t0));
  }
  const double submit = median(one);
  const double per_dispatch = (median(many) - submit) / (n - 1);
  char note[64];
  std::snprintf(note, sizeof note, "(%d dependent dispatches in one submission)", n);
  rep.row("dispatch cost", "us", per_dispatch * 1e6, "-", 0, note);
  rep.row("submit-and-wait of one dispatch", "us", submit * 1e6, "-", 0, "");
}

}  // namespace

int run_ops(const gpu::ContextOptions& options, const std::vector<std::string>& args) {
  bool quick = false, json = false;
  for (auto& a : args) {
    if (a == "--quick")
      quick = true;
    else if (a == "--json")
      json = true;
    else {
      std::fprintf(stderr, "tessera bench ops: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  gpu::Context ctx(options);
  Reporter rep(json);
  const int reps = quick ? 3 : 7;
  const double peak = cpu_fp32_peak_gflops();
  char line[256];
  std::snprintf(line, sizeof line, "device: %s (%s); CPU FP32 peak (FMA loop, all cores): %.1f GFLOP/s; medians of %d runs",
                ctx.info().name.c_str(), ctx.info().type_name(), peak, reps);
  rep.line(line);

  bench_dispatch_cost(ctx, rep);
  bench_matmul(ctx, rep, 1024, 1024, 1024, gpu::DType::f32, ops::WeightLayout::out_in, reps);
  bench_matmul(ctx, rep, 1024, 1024, 1024, gpu::DType::f16, ops::WeightLayout::out_in, reps);
  bench_matmul(ctx, rep, 1024, 1024, 1024, gpu::DType::f32, ops::WeightLayout::in_out, reps);
  bench_matmul(ctx, rep, 1024, 1024, 1024, gpu::DType::f32, ops::WeightLayout::out_in, reps, true);
  bench_matmul(ctx, rep, 1024, 1024, 1024, gpu::DType::f16, ops::WeightLayout::out_in, reps, true);
  bench_matmul(ctx, rep, 1024, 1024, 1024, gpu::DType::f32, ops::WeightLayout::in_out, reps, true);
  if (!quick) {
    bench_matmul(ctx, rep, 256, 2730, 1024, gpu::DType::f32, ops::WeightLayout::out_in, reps);
    bench_matmul(ctx, rep, 1, 4096, 1024, gpu::DType::f32, ops::WeightLayout::out_in, reps);
    bench_matmul(ctx, rep, 1, 4096, 1024, gpu::DType::f16, ops::WeightLayout::out_in, reps);
    bench_matmul(ctx, rep, 1, 3072, 768, gpu::DType::f32, ops::WeightLayout::in_out, reps);
    bench_matmul(ctx, rep, 1, 3072, 768, gpu::DType::f32, ops::WeightLayout::in_out, reps, true);
  }
  bench_attention(ctx, rep, quick, reps);
  std::snprintf(line, sizeof line, "matmul 1024^3 share of CPU FP32 peak is GFLOP/s / %.1f", peak);
  rep.line(line);
  return 0;
}

}  // namespace tessera::bench
