// layer_norm and group_norm against double-precision two-pass references: optional and f16 affine
// parameters, odd sizes, a large mean offset (where E[x^2] - E[x]^2 would fail), strided rows, in-place
// use, fused SiLU, guard regions and bad arguments.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "ops/norm.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;

std::vector<float> layer_norm_ref(const std::vector<float>& x, int64_t rows, int64_t C, const std::vector<float>* w,
                                  const std::vector<float>* b, double eps) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mean += x[r * C + c];
    mean /= C;
    for (int64_t c = 0; c < C; ++c) var += (x[r * C + c] - mean) * (x[r * C + c] - mean);
    var /= C;
    for (int64_t c = 0; c < C; ++c) {
      double v = (x[r * C + c] - mean) / std::sqrt(var + eps);
      if (w) v *= (*w)[c];
      if (b) v += (*b)[c];
      y[r * C + c] = static_cast<float>(v);
    }
  }
  return y;
}

std::vector<float> group_norm_ref(const std::vector<float>& x, int64_t B, int64_t C, int64_t HW, int64_t G,
                                  const std::vector<float>* w, const std::vector<float>* b, double eps, bool silu) {
  std::vector<float> y(x.size());
  const int64_t Cg = C / G, n = Cg * HW;
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t base = (bi * C + g * Cg) * HW;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < n; ++i) mean += x[base + i];
      mean /= n;
      for (int64_t i = 0; i < n; ++i) var += (x[base + i] - mean) * (x[base + i] - mean);
      var /= n;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t c = g * Cg + i / HW;
        double v = (x[base + i] - mean) / std::sqrt(var + eps);
        if (w) v *= (*w)[c];
        if (b) v += (*b)[c];
        if (silu) v = v / (1 + std::exp(-v));
        y[base + i] = static_cast<float>(v);
      }
    }
  return y;
}

struct LnCase {
  int64_t rows, C;
  bool weight, bias;
  DType wtype;
  float offset;  // added to every x: a large mean stresses the variance computation
};
void PrintTo(const LnCase& c, std::ostream* os) {
  *os << "[" << c.rows << "," << c.C << "] w " << c.weight << " b " << c.bias << " " << gpu::dtype_name(c.wtype)
      << " offset " << c.offset;
}

class LayerNormTest : public test::GpuTest, public ::testing::WithParamInterface<LnCase> {};

TEST_P(LayerNormTest, MatchesReference) {
  const LnCase c = GetParam();
  auto x = test::random_floats(c.rows * c.C, 41, -2.0f, 2.0f);
  for (float& v : x) v += c.offset;
  auto w = test::random_floats(c.C, 42, 0.5f, 1.5f), b = test::random_floats(c.C, 43);
  if (c.wtype == DType::f16) {
    w = test::round_to_half(w);
    b = test::round_to_half(b);
  }
  auto want = layer_norm_ref(x, c.rows, c.C, c.weight ? &w : nullptr, c.bias ? &b : nullptr, 1e-5);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {c.rows, c.C});
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {c.C}, c.wtype);
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), b, {c.C}, c.wtype);
  test::Guarded out(ctx(), DType::f32, {c.rows, c.C});
  gpu::Stream s(ctx());
  ops::layer_norm(s, tx, c.weight ? std::optional<gpu::TensorView>(tw) : std::nullopt,
                  c.bias ? std::optional<gpu::TensorView>(tb) : std::nullopt, 1e-5f, out);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), c.offset > 100 ? 1e-3 : 2e-6);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNormTest,
                         ::testing::Values(LnCase{1, 1, true, true, DType::f32, 0.0f},
                                           LnCase{1, 768, true, true, DType::f32, 0.0f},
                                           LnCase{7, 13, true, true, DType::f32, 0.0f},
                                           LnCase{33, 64, false, false, DType::f32, 0.0f},
                                           LnCase{5, 100, false, true, DType::f32, 0.0f},
                                           LnCase{3, 48, true, false, DType::f16, 0.0f},
                                           LnCase{9, 37, true, true, DType::f16, 0.0f},
                                           LnCase{4, 1024, true, true, DType::f32, 1000.0f},
                                           LnCase{2, 4097, true, true, DType::f32, 0.0f}));

TEST_F(LayerNormTest, StridedRowsRank4AndInPlace) {
  // x is a [2, 3, 2, 12] window with row pitch 20 of a [2, 3, 2, 20] tensor, normalized in place.
  auto big = test::random_floats(2 * 3 * 2 * 20, 44);
  gpu::Tensor t = gpu::Tensor::from_f32(ctx(), big, {2, 3, 2, 20});
  const gpu::TensorView win = t.view().slice(3, 4, 12);
  std::vector<float> rows;
  for (int r = 0; r < 12; ++r)
    for (int c = 0; c < 12; ++c) rows.push_back(big[r * 20 + 4 + c]);
  auto want_rows = layer_norm_ref(rows, 12, 12, nullptr, nullptr, 1e-6);
  std::vector<float> want = big;
  for (int r = 0; r < 12; ++r)
    for (int c = 0; c < 12; ++c) want[r * 20 + 4 + c] = want_rows[r * 12 + c];
  gpu::Stream s(ctx());
  ops::layer_norm(s, win, std::nullopt, std::nullopt, 1e-6f, win);
  s.run();
  EXPECT_LT(test::normalized_error(gpu::download_f32(t), want), 2e-6);
}

TEST_F(LayerNormTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor x(ctx(), DType::f32, {4, 8});
  gpu::Tensor w(ctx(), DType::f32, {7});
  gpu::Tensor out(ctx(), DType::f32, {4, 8});
  gpu::Stream s(ctx());
  try {
    ops::layer_norm(s, x, w.view(), std::nullopt, 1e-5f, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "layer_norm: weight f32[7] must be a contiguous [8]");
  }
  gpu::Tensor out_bad(ctx(), DType::f32, {4, 9});
  try {
    ops::layer_norm(s, x, std::nullopt, std::nullopt, 1e-5f, out_bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "layer_norm: out f32[4,9] must have the shape of x f32[4,8]");
  }
  try {
    ops::layer_norm(s, x.view().transpose(0, 1), std::nullopt, std::nullopt, 1e-5f, out.view().transpose(0, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "layer_norm: x f32[8,4] needs a contiguous last dimension (stride 8); copy it first");
  }
}

struct GnCase {
  int64_t B, C, H, W, G;
  bool affine, silu;
  DType wtype;
};
void PrintTo(const GnCase& c, std::ostream* os) {
  *os << "[" << c.B << "," << c.C << "," << c.H << "," << c.W << "] G " << c.G << " affine " << c.affine << " silu "
      << c.silu << " " << gpu::dtype_name(c.wtype);
}

class GroupNormTest : public test::GpuTest, public ::testing::WithParamInterface<GnCase> {};

TEST_P(GroupNormTest, MatchesReference) {
  const GnCase c = GetParam();
  const int64_t HW = c.H * c.W;
  auto x = test::random_floats(c.B * c.C * HW, 51, -3.0f, 5.0f);
  auto w = test::random_floats(c.C, 52, 0.5f, 1.5f), b = test::random_floats(c.C, 53);
  if (c.wtype == DType::f16) {
    w = test::round_to_half(w);
    b = test::round_to_half(b);
  }
  auto want = group_norm_ref(x, c.B, c.C, HW, c.G, c.affine ? &w : nullptr, c.affine ? &b : nullptr, 1e-6, c.silu);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {c.B, c.C, c.H, c.W});
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {c.C}, c.wtype);
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), b, {c.C}, c.wtype);
  test::Guarded out(ctx(), DType::f32, {c.B, c.C, c.H, c.W});
  gpu::Stream s(ctx());
  ops::group_norm(s, tx, static_cast<int>(c.G), c.affine ? std::optional<gpu::TensorView>(tw) : std::nullopt,
                  c.affine ? std::optional<gpu::TensorView>(tb) : std::nullopt, 1e-6f, out, c.silu);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 2e-6);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Shapes, GroupNormTest,
                         ::testing::Values(GnCase{1, 1, 1, 1, 1, true, false, DType::f32},
                                           GnCase{1, 32, 8, 8, 32, true, true, DType::f32},
                                           GnCase{2, 12, 5, 7, 4, true, false, DType::f32},
                                           GnCase{2, 12, 5, 7, 3, false, true, DType::f32},
                                           GnCase{1, 64, 16, 16, 32, true, true, DType::f16},
                                           GnCase{3, 6, 1, 13, 2, true, true, DType::f16},
                                           GnCase{1, 8, 33, 33, 1, true, false, DType::f32}));

TEST_F(GroupNormTest, Rank3InPlace) {
  const int64_t B = 2, C = 8, L = 9, G = 4;
  auto x = test::random_floats(B * C * L, 54);
  auto w = test::random_floats(C, 55), b = test::random_floats(C, 56);
  auto want = group_norm_ref(x, B, C, L, G, &w, &b, 1e-5, true);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {B, C, L});
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {C});
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), b, {C});
  gpu::Stream s(ctx());
  ops::group_norm(s, tx, G, tw.view(), tb.view(), 1e-5f, tx, true);
  s.run();
  EXPECT_LT(test::normalized_error(gpu::download_f32(tx), want), 2e-6);
}

TEST_F(GroupNormTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor x(ctx(), DType::f32, {1, 6, 4, 4});
  gpu::Tensor out(ctx(), DType::f32, {1, 6, 4, 4});
  gpu::Stream s(ctx());
  try {
    ops::group_norm(s, x, 4, std::nullopt, std::nullopt, 1e-6f, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "group_norm: x f32[1,6,4,4] has 6 channels, not divisible into 4 groups");
  }
  try {
    ops::group_norm(s, x.view().transpose(2, 3), 3, std::nullopt, std::nullopt, 1e-6f, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "group_norm: x f32[1,6,4,4] needs contiguous channel planes; copy it first");
  }
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// Throughput report (not a correctness test): --gtest_also_run_disabled_tests to run it.
TEST_F(LayerNormTest, DISABLED_Throughput) {
  const int64_t R = 1024, C = 2048;
  gpu::Tensor x = gpu::Tensor::from_f32(ctx(), test::random_floats(R * C, 1), {R, C});
  gpu::Tensor w = gpu::Tensor::from_f32(ctx(), test::random_floats(C, 2), {C});
  gpu::Tensor b = gpu::Tensor::from_f32(ctx(), test::random_floats(C, 3), {C});
  gpu::Tensor out(ctx(), DType::f32, {R, C});
  gpu::Stream s(ctx());
  s.set_timing(true);
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    ops::layer_norm(s, x, w.view(), b.view(), 1e-5f, out);
    s.run();
    ms.push_back(s.last_gpu_ns() * 1e-6);
  }
  std::sort(ms.begin(), ms.end());
  const double bytes = 2.0 * R * C * 4;
  std::printf("layer_norm [%lld, %lld]: median %.3f ms, %.2f GB/s (min %.3f ms)\n", static_cast<long long>(R),
              static_cast<long long>(C), ms[7], bytes / (ms[7] * 1e6), ms[0]);
}

TEST_F(GroupNormTest, DISABLED_Throughput) {
  const int64_t B = 1, C = 128, H = 128, W = 128;
  gpu::Tensor x = gpu::Tensor::from_f32(ctx(), test::random_floats(B * C * H * W, 1), {B, C, H, W});
  gpu::Tensor w = gpu::Tensor::from_f32(ctx(), test::random_floats(C, 2), {C});
  gpu::Tensor out(ctx(), DType::f32, {B, C, H, W});
  gpu::Stream s(ctx());
  s.set_timing(true);
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    ops::group_norm(s, x, 32, w.view(), w.view(), 1e-6f, out, true);
    s.run();
    ms.push_back(s.last_gpu_ns() * 1e-6);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("group_norm+silu [1,128,128,128] G=32: median %.3f ms, %.2f GB/s\n", ms[2],
              2.0 * B * C * H * W * 4 / (ms[2] * 1e6));
}

}  // namespace
}  // namespace tessera
