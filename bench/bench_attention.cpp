// Fused attention at the shapes (batch 1, 8 heads, head dim 64) beside a plain CPU attention
// (one thread per head, scores row by row) and PyTorch's CPU attention, measured in the same run.
#include "bench_attention.hpp"

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "ops/attention.hpp"

namespace tessera::bench {
namespace {

constexpr int kHeads = 8, kDim = 64;

// out[i, h*D:(h+1)*D] = softmax(q_i k^T / sqrt(D)) v for every head, written the obvious way.
void cpu_attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                   std::vector<float>& out, int lq, int lk) {
  const int width = kHeads * kDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
  auto head = [&](int h) {
    std::vector<float> s(lk);
    for (int i = 0; i < lq; ++i) {
      float mx = -INFINITY;
      for (int j = 0; j < lk; ++j) {
        float d = 0;
        for (int c = 0; c < kDim; ++c) d += q[i * width + h * kDim + c] * k[j * width + h * kDim + c];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      float sum = 0;
      for (int j = 0; j < lk; ++j) sum += (s[j] = std::exp(s[j] - mx));
      float* o = &out[i * width + h * kDim];
      for (int c = 0; c < kDim; ++c) o[c] = 0;
      for (int j = 0; j < lk; ++j) {
        const float p = s[j] / sum;
        for (int c = 0; c < kDim; ++c) o[c] += p * v[j * width + h * kDim + c];
      }
    }
  };
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int h = static_cast<int>(t); h < kHeads; h += static_cast<int>(threads)) head(h);
    });
  for (auto& t : pool) t.join();
}

// Median seconds per shape from tools/bench_torch_attention.py, or nothing when torch is missing.
std::map<std::pair<int, int>, double> torch_attention(const std::vector<std::pair<int, int>>& shapes, int reps) {
  std::map<std::pair<int, int>, double> result;
  std::string args = TESSERA_SOURCE_DIR "/tools/bench_torch_attention.py " + std::to_string(reps);
  for (auto& [lq, lk] : shapes) args += " " + std::to_string(lq) + ":" + std::to_string(lk);
  // torch on every core, as our attention runs on every core of this device
  std::istringstream out(run_python_reference(args, 0));
  int lq, lk;
  double seconds;
  while (out >> lq >> lk >> seconds) result[{lq, lk}] = seconds;
  return result;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

}  // namespace

void bench_attention(gpu::Context& ctx, Reporter& rep, bool quick, int reps) {
  std::vector<std::pair<int, int>> shapes = {{256, 256}, {1, 1024}};
  if (!quick) shapes.insert(shapes.begin() + 1, {1024, 1024});
  const auto torch = torch_attention(shapes, reps);
  if (torch.empty()) rep.line("PyTorch not found (apt-get install python3-torch): its column is empty");
  ops::AttentionWorkspace workspace;
  for (auto [lq, lk] : shapes) {
    const int width = kHeads * kDim;
    auto q = random_floats(static_cast<size_t>(lq) * width, 1);
    auto k = random_floats(static_cast<size_t>(lk) * width, 2);
    auto v = random_floats(static_cast<size_t>(lk) * width, 3);
    auto tq = gpu::Tensor::from_f32(ctx, q, {1, lq, width});
    auto tk = gpu::Tensor::from_f32(ctx, k, {1, lk, width});
    auto tv = gpu::Tensor::from_f32(ctx, v, {1, lk, width});
    gpu::Tensor out(ctx, gpu::DType::f32, {1, lq, width});
    ops::AttentionOptions opt;
    opt.heads = kHeads;
    const GpuTime t = time_gpu(ctx, [&](gpu::Stream& s) { ops::attention(s, tq, tk, tv, out, opt, &workspace); }, reps);
    std::vector<float> ref(static_cast<size_t>(lq) * width);
    const double cpu = time_cpu([&] { cpu_attention(q, k, v, ref, lq, lk); }, quick ? 1 : 3);
    const double flops = 4.0 * kHeads * lq * lk * kDim;
    char name[96], note[160];
    std::snprintf(name, sizeof name, "attention %dx%d h8 d64%s", lq, lk, lq == 1 ? " (decode)" : "");
    auto it = torch.find({lq, lk});
    std::snprintf(note, sizeof note, "gpu %.3f ms, wall %.3f ms; plain CPU attention %.2f GFLOP/s", t.gpu_s * 1e3,
                  t.wall_s * 1e3, flops / cpu / 1e9);
    if (it != torch.end())
      rep.row(name, "GFLOP/s", flops / t.gpu_s / 1e9, "pytorch cpu", flops / it->second / 1e9, note);
    else
      rep.row(name, "GFLOP/s", flops / t.gpu_s / 1e9, "plain cpu", flops / cpu / 1e9, note);
    if (lq == 1) {
      std::snprintf(note, sizeof note, "target < 500 us; pytorch %.1f us", it != torch.end() ? it->second * 1e6 : 0.0);
      rep.row("attention decode step 1x1024 h8 d64", "us", t.gpu_s * 1e6, "-", 0, note);
    }
  }
}

}  // namespace tessera::bench
