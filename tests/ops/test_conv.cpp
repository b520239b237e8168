// conv2d and conv1d against a double-precision CPU reference: 1x1, 3x3 and odd kernels, strides 1 and 2,
// symmetric and asymmetric padding, f16 weights, channel counts on and off the four-channel weight path,
// strided views in and out, guard regions, bad arguments, and the speed of a VQGAN-decoder-sized 3x3 conv.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "ops/conv.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;
using ops::Padding2d;

std::vector<float> reference2d(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>* bias,
                               int B, int Cin, int H, int W, int Cout, int kh, int kw, int stride, Padding2d pad,
                               int Ho, int Wo) {
  std::vector<float> out(static_cast<size_t>(B) * Cout * Ho * Wo);
  for (int b = 0; b < B; ++b)
    for (int co = 0; co < Cout; ++co)
      for (int oy = 0; oy < Ho; ++oy)
        for (int ox = 0; ox < Wo; ++ox) {
          double s = bias ? (*bias)[co] : 0.0;
          for (int ci = 0; ci < Cin; ++ci)
            for (int ky = 0; ky < kh; ++ky)
              for (int kx = 0; kx < kw; ++kx) {
                const int iy = oy * stride - pad.top + ky, ix = ox * stride - pad.left + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += static_cast<double>(w[((static_cast<size_t>(co) * Cin + ci) * kh + ky) * kw + kx]) *
                     x[((static_cast<size_t>(b) * Cin + ci) * H + iy) * W + ix];
              }
          out[((static_cast<size_t>(b) * Cout + co) * Ho + oy) * Wo + ox] = static_cast<float>(s);
        }
  return out;
}

struct Case2d {
  int B, Cin, H, W, Cout, kh, kw, stride;
  Padding2d pad;
  bool bias;
  DType wtype;
};

class Conv2dTest : public test::GpuTest, public ::testing::WithParamInterface<Case2d> {};

TEST_P(Conv2dTest, MatchesReference) {
  const Case2d c = GetParam();
  const int Ho = (c.H + c.pad.top + c.pad.bottom - c.kh) / c.stride + 1;
  const int Wo = (c.W + c.pad.left + c.pad.right - c.kw) / c.stride + 1;
  auto x = test::random_floats(static_cast<size_t>(c.B) * c.Cin * c.H * c.W, 11);
  auto w = test::random_floats(static_cast<size_t>(c.Cout) * c.Cin * c.kh * c.kw, 12);
  if (c.wtype == DType::f16) w = test::round_to_half(w);
  auto bias = test::random_floats(c.Cout, 13);
  auto want = reference2d(x, w, c.bias ? &bias : nullptr, c.B, c.Cin, c.H, c.W, c.Cout, c.kh, c.kw, c.stride, c.pad,
                          Ho, Wo);

  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {c.B, c.Cin, c.H, c.W});
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {c.Cout, c.Cin, c.kh, c.kw}, c.wtype);
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), bias, {c.Cout}, c.wtype);
  test::Guarded out(ctx(), DType::f32, {c.B, c.Cout, Ho, Wo});
  gpu::Stream s(ctx());
  ops::conv2d(s, tx, tw, c.bias ? std::optional<gpu::TensorView>(tb.view()) : std::nullopt, c.stride, c.pad, out);
  s.run();
  if (c.wtype == DType::f16 && c.bias) {
    // The bias went through f16 too.
    auto hb = test::round_to_half(bias);
    want = reference2d(x, w, &hb, c.B, c.Cin, c.H, c.W, c.Cout, c.kh, c.kw, c.stride, c.pad, Ho, Wo);
  }
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-5);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2dTest,
    ::testing::Values(Case2d{1, 1, 1, 1, 1, 1, 1, 1, {}, false, DType::f32},
                      Case2d{1, 3, 7, 9, 5, 3, 3, 1, Padding2d::uniform(1), true, DType::f32},
                      Case2d{2, 4, 6, 5, 13, 3, 3, 1, Padding2d::uniform(1), true, DType::f32},
                      Case2d{1, 8, 11, 13, 16, 3, 3, 1, Padding2d::uniform(1), false, DType::f32},
                      Case2d{1, 12, 9, 9, 9, 1, 1, 1, {}, true, DType::f32},
                      Case2d{2, 5, 10, 17, 7, 1, 1, 1, {}, true, DType::f32},
                      Case2d{1, 8, 12, 12, 8, 3, 3, 2, Padding2d{0, 1, 0, 1}, true, DType::f32},
                      Case2d{1, 3, 13, 11, 6, 3, 3, 2, Padding2d{0, 1, 0, 1}, false, DType::f32},
                      Case2d{1, 4, 3, 4, 5, 3, 3, 1, Padding2d::uniform(2), true, DType::f32},
                      Case2d{1, 2, 8, 9, 3, 5, 2, 1, Padding2d{2, 1, 0, 3}, true, DType::f32},
                      Case2d{1, 3, 16, 15, 4, 7, 7, 2, Padding2d::uniform(3), true, DType::f32},
                      Case2d{1, 16, 9, 10, 11, 3, 3, 1, Padding2d::uniform(1), true, DType::f16},
                      Case2d{1, 7, 6, 7, 9, 3, 3, 1, Padding2d::uniform(1), false, DType::f16},
                      Case2d{1, 32, 8, 8, 3, 3, 3, 1, Padding2d::uniform(1), true, DType::f32},
                      // Rows of a multiple of four: the input window is fetched as whole texels.
                      Case2d{2, 8, 6, 12, 10, 3, 3, 1, Padding2d::uniform(1), true, DType::f32},
                      Case2d{1, 5, 7, 16, 6, 7, 7, 1, Padding2d::uniform(3), true, DType::f32},
                      Case2d{1, 8, 5, 8, 9, 1, 1, 1, {}, true, DType::f32},
                      Case2d{1, 4, 4, 20, 4, 5, 2, 1, Padding2d{2, 2, 4, 0}, false, DType::f32},
                      Case2d{1, 12, 5, 4, 7, 3, 3, 1, Padding2d::uniform(1), true, DType::f16}));

TEST_F(Conv2dTest, ReadsAndWritesStridedViews) {
  // x is channels 2..9 of a 12-channel tensor, out is channels 3..8 of a 10-channel one.
  for (const int W : {7, 8}) {
  const int Cin = 8, Cout = 6, H = 5;
  auto wide = test::random_floats(static_cast<size_t>(12) * H * W, 21);
  auto w = test::random_floats(static_cast<size_t>(Cout) * Cin * 9, 22);
  std::vector<float> x(wide.begin() + 2 * H * W, wide.begin() + 10 * H * W);
  auto want = reference2d(x, w, nullptr, 1, Cin, H, W, Cout, 3, 3, 1, Padding2d::uniform(1), H, W);

  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), wide, {1, 12, H, W});
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {Cout, Cin, 3, 3});
  std::vector<float> zeros(static_cast<size_t>(10) * H * W, 0.0f);
  gpu::Tensor big_out = gpu::Tensor::from_f32(ctx(), zeros, {1, 10, H, W});
  gpu::Stream s(ctx());
  ops::conv2d(s, tx.view().slice(1, 2, Cin), tw, std::nullopt, 1, Padding2d::uniform(1),
              big_out.view().slice(1, 3, Cout));
  s.run();
  auto all = gpu::download_f32(big_out);
  std::vector<float> got(all.begin() + 3 * H * W, all.begin() + 9 * H * W);
  EXPECT_LT(test::normalized_error(got, want), 1e-5);
  for (int i = 0; i < 3 * H * W; ++i) ASSERT_EQ(all[i], 0.0f) << i;
  for (size_t i = 9 * H * W; i < all.size(); ++i) ASSERT_EQ(all[i], 0.0f) << i;
  }
}

struct Case1d {
  int B, Cin, L, Cout, k, stride, pad;
  bool bias;
  DType wtype;
};

class Conv1dTest : public test::GpuTest, public ::testing::WithParamInterface<Case1d> {};

TEST_P(Conv1dTest, MatchesReference) {
  const Case1d c = GetParam();
  const int Lo = (c.L + 2 * c.pad - c.k) / c.stride + 1;
  auto x = test::random_floats(static_cast<size_t>(c.B) * c.Cin * c.L, 31);
  auto w = test::random_floats(static_cast<size_t>(c.Cout) * c.Cin * c.k, 32);
  if (c.wtype == DType::f16) w = test::round_to_half(w);
  auto bias = test::random_floats(c.Cout, 33);
  // The 2-D reference over a single row with padding only along it.
  auto want = reference2d(x, w, c.bias ? &bias : nullptr, c.B, c.Cin, 1, c.L, c.Cout, 1, c.k, c.stride,
                          Padding2d{0, 0, c.pad, c.pad}, 1, Lo);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {c.B, c.Cin, c.L});
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {c.Cout, c.Cin, c.k}, c.wtype);
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), bias, {c.Cout});
  test::Guarded out(ctx(), DType::f32, {c.B, c.Cout, Lo});
  gpu::Stream s(ctx());
  ops::conv1d(s, tx, tw, c.bias ? std::optional<gpu::TensorView>(tb.view()) : std::nullopt, c.stride, c.pad, out);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-5);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Shapes, Conv1dTest,
                         ::testing::Values(Case1d{1, 1, 1, 1, 1, 1, 0, false, DType::f32},
                                           Case1d{1, 80, 37, 24, 3, 1, 1, true, DType::f32},
                                           Case1d{1, 24, 37, 24, 3, 2, 1, true, DType::f32},
                                           Case1d{2, 5, 30, 7, 3, 2, 1, true, DType::f32},
                                           Case1d{1, 3, 11, 9, 5, 1, 2, false, DType::f32},
                                           Case1d{1, 16, 64, 12, 3, 1, 1, true, DType::f16}));

TEST_F(Conv2dTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor x(ctx(), DType::f32, {1, 3, 8, 8});
  gpu::Tensor w(ctx(), DType::f32, {8, 4, 3, 3});
  gpu::Tensor w_ok(ctx(), DType::f32, {8, 3, 3, 3});
  gpu::Tensor out(ctx(), DType::f32, {1, 8, 7, 7});
  gpu::Tensor out_ok(ctx(), DType::f32, {1, 8, 8, 8});
  gpu::Tensor bias(ctx(), DType::f32, {7});
  gpu::Stream s(ctx());
  test::expect_error([&] { ops::conv2d(s, x, w, std::nullopt, 1, Padding2d::uniform(1), out_ok); },
               "conv2d: w f32[8,4,3,3] has 4 input channels but x f32[1,3,8,8] has 3");
  test::expect_error([&] { ops::conv2d(s, x, w_ok, std::nullopt, 1, Padding2d::uniform(1), out); },
               "conv2d: out f32[1,8,7,7] must be [1,8,8,8] for x f32[1,3,8,8], w f32[8,3,3,3], stride 1, padding "
               "(1,1,1,1)");
  test::expect_error([&] { ops::conv2d(s, x, w_ok, bias.view(), 1, Padding2d::uniform(1), out_ok); },
               "conv2d: bias f32[7] must be a contiguous [8]");
  test::expect_error([&] { ops::conv2d(s, x, w_ok, std::nullopt, 0, Padding2d::uniform(1), out_ok); },
               "conv2d: stride 0 must be >= 1");
  test::expect_error([&] { ops::conv2d(s, x, w_ok, std::nullopt, 1, Padding2d{0, -1, 0, 0}, out_ok); },
               "conv2d: padding (0,-1,0,0) must not be negative");
  gpu::Tensor tiny(ctx(), DType::f32, {1, 3, 2, 2});
  test::expect_error([&] { ops::conv2d(s, tiny, w_ok, std::nullopt, 1, Padding2d{}, out_ok); },
               "conv2d: kernel 3x3 of w f32[8,3,3,3] does not fit x f32[1,3,2,2] with padding (0,0,0,0)");
  gpu::Tensor w9(ctx(), DType::f32, {8, 3, 9, 9});
  test::expect_error([&] { ops::conv2d(s, x, w9, std::nullopt, 1, Padding2d::uniform(4), out_ok); },
               "conv2d: w f32[8,3,9,9] has a kernel size of 9; supported are 1 to 7");
  gpu::Tensor xi(ctx(), DType::i32, {1, 3, 8, 8});
  test::expect_error([&] { ops::conv2d(s, xi, w_ok, std::nullopt, 1, Padding2d::uniform(1), out_ok); },
               "conv2d: x i32[1,3,8,8] must be f32");
  test::expect_error([&] { ops::conv2d(s, x.view().reshape({3, 8, 8}), w_ok, std::nullopt, 1, Padding2d::uniform(1), out_ok); },
               "conv2d: x f32[3,8,8] must have 4 dimensions");
}

TEST_F(Conv1dTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor x(ctx(), DType::f32, {1, 80, 30});
  gpu::Tensor w(ctx(), DType::f32, {16, 80, 3});
  gpu::Tensor out(ctx(), DType::f32, {1, 16, 30});
  gpu::Stream s(ctx());
  test::expect_error([&] { ops::conv1d(s, x, w, std::nullopt, 2, 1, out); },
               "conv1d: out f32[1,16,30] must be [1,16,15] for x f32[1,80,30], w f32[16,80,3], stride 2, padding 1");
  test::expect_error([&] { ops::conv1d(s, x, w, std::nullopt, 1, -1, out); }, "conv1d: padding -1 must not be negative");
}

// Speed of the op that dominates a VQGAN decoder at 256x256: 3x3, 128 -> 128 channels, 64x64, batch 1.
TEST_F(Conv2dTest, Speed3x3At128Channels) {
  const int C = 128, H = 64, W = 64;
  gpu::Tensor x = gpu::Tensor::from_f32(ctx(), test::random_floats(static_cast<size_t>(C) * H * W, 41), {1, C, H, W});
  gpu::Tensor w = gpu::Tensor::from_f32(ctx(), test::random_floats(static_cast<size_t>(C) * C * 9, 42, -0.05f, 0.05f),
                                        {C, C, 3, 3});
  gpu::Tensor b = gpu::Tensor::from_f32(ctx(), test::random_floats(C, 43), {C});
  gpu::Tensor out(ctx(), DType::f32, {1, C, H, W});
  gpu::Stream s(ctx());
  s.set_timing(true);
  std::vector<double> gpu_ms, wall_ms;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    ops::conv2d(s, x, w, b.view(), 1, Padding2d::uniform(1), out);
    s.run();
    wall_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    gpu_ms.push_back(s.last_gpu_ns() * 1e-6);
  }
  std::sort(gpu_ms.begin(), gpu_ms.end());
  std::sort(wall_ms.begin(), wall_ms.end());
  const double flops = 2.0 * C * C * 9 * H * W;
  const double ms = gpu_ms[1] > 0 ? gpu_ms[1] : wall_ms[1];
  std::printf("conv2d 3x3 %d->%d %dx%d: %.2f ms (wall %.2f ms), %.2f GFLOP/s\n", C, C, H, W, ms, wall_ms[1],
              flops / (ms * 1e6));
  // Spot-check a few outputs against the CPU so the timed kernel is also a correct one.
  auto got = gpu::download_f32(out);
  auto xs = gpu::download_f32(x), ws = gpu::download_f32(w), bs = gpu::download_f32(b);
  for (int idx : {0, 4097, 123456, C * H * W - 1}) {
    const int co = idx / (H * W), oy = (idx / W) % H, ox = idx % W;
    double r = bs[co];
    for (int ci = 0; ci < C; ++ci)
      for (int ky = 0; ky < 3; ++ky)
        for (int kx = 0; kx < 3; ++kx) {
          const int iy = oy - 1 + ky, ix = ox - 1 + kx;
          if (iy >= 0 && iy < H && ix >= 0 && ix < W)
            r += static_cast<double>(ws[((co * C + ci) * 3 + ky) * 3 + kx]) * xs[(ci * H + iy) * W + ix];
        }
    EXPECT_NEAR(got[idx], r, 1e-4 * (1 + std::abs(r))) << idx;
  }
}

}  // namespace
}  // namespace tessera
