#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "cli/commands.hpp"
#include "gpu/stream.hpp"
#include "ops/matmul.hpp"

namespace tessera::cli {

int demo(const Globals& g, const std::vector<std::string>&) {
  gpu::Context ctx(g.options);
  std::printf("device: %s (%s)\n", ctx.info().name.c_str(), ctx.info().type_name());
  const int M = 256, N = 384, K = 512;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> a(M * K), w(N * K), bias(N);
  for (auto& x : a) x = dist(rng);
  for (auto& x : w) x = dist(rng);
  for (auto& x : bias) x = dist(rng);
  auto ta = gpu::Tensor::from_f32(ctx, a, {M, K}, gpu::DType::f32, "a");
  auto tw = gpu::Tensor::from_f32(ctx, w, {N, K}, gpu::DType::f32, "w");
  auto tb = gpu::Tensor::from_f32(ctx, bias, {N}, gpu::DType::f32, "bias");
  gpu::Tensor out(ctx, gpu::DType::f32, {M, N}, "out");
  gpu::Stream s(ctx);
  ops::matmul(s, ta, tw, out, ops::WeightLayout::out_in, tb.view());
  const auto t0 = std::chrono::steady_clock::now();
  s.run();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto got = gpu::download_f32(out);
  double num = 0, den = 0;
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double ref = bias[n];
      for (int k = 0; k < K; ++k) ref += static_cast<double>(a[m * K + k]) * w[n * K + k];
      num += (got[m * N + n] - ref) * (got[m * N + n] - ref);
      den += ref * ref;
    }
  const double err = std::sqrt(num / den);
  std::printf("matmul %dx%dx%d + bias: %.2f ms (first run, includes pipeline creation), normalized error %.2e vs CPU\n", M,
              N, K, ms, err);
  return err < 1e-5 ? 0 : 1;
}

}  // namespace tessera::cli
