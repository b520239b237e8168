// The machine's FP32 peak, measured: independent FMA chains on every core, widest vectors the CPU has.
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "bench_ops.hpp"

namespace tessera::bench {
namespace {

// Twelve independent FMA chains hide the latency of the two FMA ports.
__attribute__((target("avx2,fma"))) double fma_loop_avx2(long iters) {
  __m256 acc[12];
  for (int c = 0; c < 12; ++c) acc[c] = _mm256_set1_ps(1.0f * c);
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < 12; ++c) acc[c] = _mm256_fmadd_ps(acc[c], mul, add);
  }
  float sink = 0;
  for (int c = 0; c < 12; ++c) sink += _mm256_cvtss_f32(acc[c]);
  return sink;
}

double fma_loop_generic(long iters) {
  float acc[12 * 8];
  for (int c = 0; c < 12 * 8; ++c) acc[c] = 1.0f * c;
  for (long i = 0; i < iters; ++i)
    for (int c = 0; c < 12 * 8; ++c) acc[c] = acc[c] * 0.999999f + 1e-7f;
  float sink = 0;
  for (float a : acc) sink += a;
  return sink;
}

}  // namespace

double cpu_fp32_peak_gflops() {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  const long iters = 20'000'000;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  volatile double sink = 0;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&] { sink = sink + (avx2 ? fma_loop_avx2(iters) : fma_loop_generic(iters)); });
    for (auto& t : pool) t.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, threads * static_cast<double>(iters) * 12 * 8 * 2 / s / 1e9);
  }
  return best;
}

}  // namespace tessera::bench
