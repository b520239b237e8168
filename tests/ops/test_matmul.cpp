// matmul against a double-precision CPU reference: both weight layouts, bias, batches, f16 weights,
// sizes that are not multiples of any tile, strided inputs, guard regions, and bad arguments.
#include <cmath>
#include <tuple>

#include "ops/matmul.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;
using ops::WeightLayout;

std::vector<float> reference(const std::vector<float>& a, const std::vector<float>& w, const std::vector<float>* bias,
                             int B, int M, int N, int K, WeightLayout layout, bool batched_w) {
  std::vector<float> c(static_cast<size_t>(B) * M * N);
  for (int b = 0; b < B; ++b)
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double s = bias ? (*bias)[n] : 0.0;
        const size_t wb = batched_w ? static_cast<size_t>(b) * N * K : 0;
        for (int k = 0; k < K; ++k) {
          const float wv = layout == WeightLayout::out_in ? w[wb + static_cast<size_t>(n) * K + k] : w[wb + static_cast<size_t>(k) * N + n];
          s += static_cast<double>(a[(static_cast<size_t>(b) * M + m) * K + k]) * wv;
        }
        c[(static_cast<size_t>(b) * M + m) * N + n] = static_cast<float>(s);
      }
  return c;
}

struct Case {
  int B, M, N, K;
  WeightLayout layout;
  bool bias;
  DType wtype;
  bool batched_w;
};

class MatmulTest : public test::GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(MatmulTest, MatchesReference) {
  const Case c = GetParam();
  auto a = test::random_floats(static_cast<size_t>(c.B) * c.M * c.K, 1);
  const size_t wn = static_cast<size_t>(c.batched_w ? c.B : 1) * c.N * c.K;
  auto w = test::random_floats(wn, 2);
  if (c.wtype == DType::f16) w = test::round_to_half(w);
  auto bias = test::random_floats(c.N, 3);
  auto want = reference(a, w, c.bias ? &bias : nullptr, c.B, c.M, c.N, c.K, c.layout, c.batched_w);

  gpu::Tensor ta = c.B > 1 ? gpu::Tensor::from_f32(ctx(), a, {c.B, c.M, c.K}) : gpu::Tensor::from_f32(ctx(), a, {c.M, c.K});
  const int64_t wr = c.layout == WeightLayout::out_in ? c.N : c.K;
  const int64_t wc = c.layout == WeightLayout::out_in ? c.K : c.N;
  gpu::Tensor tw = c.batched_w ? gpu::Tensor::from_f32(ctx(), w, {c.B, wr, wc}, c.wtype)
                               : gpu::Tensor::from_f32(ctx(), w, {wr, wc}, c.wtype);
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), bias, {c.N});
  test::Guarded out = c.B > 1 ? test::Guarded(ctx(), DType::f32, {c.B, c.M, c.N}) : test::Guarded(ctx(), DType::f32, {c.M, c.N});

  gpu::Stream s(ctx());
  ops::matmul(s, ta, tw, out, c.layout, c.bias ? std::optional<gpu::TensorView>(tb.view()) : std::nullopt);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-5);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulTest,
    ::testing::Values(Case{1, 1, 1, 1, WeightLayout::out_in, false, DType::f32, false},
                      Case{1, 7, 13, 9, WeightLayout::out_in, true, DType::f32, false},
                      Case{1, 33, 65, 64, WeightLayout::out_in, true, DType::f32, false},
                      Case{1, 1, 257, 128, WeightLayout::out_in, true, DType::f32, false},
                      Case{1, 64, 96, 2730, WeightLayout::out_in, false, DType::f32, false},
                      Case{3, 17, 31, 20, WeightLayout::out_in, true, DType::f32, false},
                      Case{2, 9, 12, 16, WeightLayout::out_in, false, DType::f32, true},
                      Case{1, 5, 11, 7, WeightLayout::in_out, true, DType::f32, false},
                      Case{1, 19, 36, 64, WeightLayout::in_out, true, DType::f32, false},
                      Case{1, 1, 100, 96, WeightLayout::in_out, false, DType::f32, false},
                      Case{2, 6, 8, 12, WeightLayout::in_out, false, DType::f32, true},
                      Case{1, 21, 40, 48, WeightLayout::out_in, true, DType::f16, false},
                      Case{1, 3, 10, 13, WeightLayout::out_in, false, DType::f16, false},
                      Case{1, 9, 44, 32, WeightLayout::in_out, true, DType::f16, false},
                      // a few rows share each weight fetch (decoding): 2-D rows and [B, 1, K] batches
                      Case{1, 2, 67, 40, WeightLayout::out_in, true, DType::f32, false},
                      Case{1, 3, 33, 16, WeightLayout::out_in, false, DType::f16, false},
                      Case{1, 8, 130, 44, WeightLayout::out_in, true, DType::f32, false},
                      Case{2, 1, 19, 12, WeightLayout::out_in, true, DType::f32, false},
                      Case{5, 1, 70, 36, WeightLayout::out_in, false, DType::f32, false},
                      Case{9, 1, 9, 8, WeightLayout::out_in, true, DType::f16, false}));

struct PackedCase {
  int B, M, N, K;
  WeightLayout from;
  DType wtype;
  bool bias;
};

class PackedMatmulTest : public test::GpuTest, public ::testing::WithParamInterface<PackedCase> {};

TEST_P(PackedMatmulTest, MatchesReference) {
  const PackedCase c = GetParam();
  auto a = test::random_floats(static_cast<size_t>(c.B) * c.M * c.K, 11);
  auto w = test::random_floats(static_cast<size_t>(c.N) * c.K, 12);
  if (c.wtype == DType::f16) w = test::round_to_half(w);
  auto bias = test::random_floats(c.N, 13);
  auto want = reference(a, w, c.bias ? &bias : nullptr, c.B, c.M, c.N, c.K, c.from, false);
  const bool nk = c.from == WeightLayout::out_in;
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {nk ? c.N : c.K, nk ? c.K : c.N}, c.wtype);
  gpu::Tensor packed = ops::pack_weights(ctx(), tw, c.from);
  EXPECT_EQ(packed.dtype(), c.wtype);
  gpu::Tensor ta = c.B > 1 ? gpu::Tensor::from_f32(ctx(), a, {c.B, c.M, c.K}) : gpu::Tensor::from_f32(ctx(), a, {c.M, c.K});
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), bias, {c.N});
  test::Guarded out = c.B > 1 ? test::Guarded(ctx(), DType::f32, {c.B, c.M, c.N}) : test::Guarded(ctx(), DType::f32, {c.M, c.N});
  gpu::Stream s(ctx());
  ops::matmul(s, ta, packed, out, WeightLayout::packed, c.bias ? std::optional<gpu::TensorView>(tb.view()) : std::nullopt);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-5);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Shapes, PackedMatmulTest,
                         ::testing::Values(PackedCase{1, 1, 1, 4, WeightLayout::out_in, DType::f32, false},
                                           PackedCase{1, 37, 70, 64, WeightLayout::out_in, DType::f32, true},
                                           PackedCase{1, 1, 33, 128, WeightLayout::out_in, DType::f16, true},
                                           PackedCase{2, 9, 48, 20, WeightLayout::in_out, DType::f32, true},
                                           PackedCase{1, 20, 17, 36, WeightLayout::in_out, DType::f16, false}));

// The epilogue (activation, accumulate into out) on every kernel path: matvec with one and several rows,
// the tiled kernels for both layouts with and without four-wide fetches, and packed weights.
struct EpilogueCase {
  int B, M, N, K;
  WeightLayout layout;  // packed: packed from out_in
  ops::Unary activation;
  bool accumulate;
};

double activate(ops::Unary op, double x) {
  switch (op) {
    case ops::Unary::gelu_erf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case ops::Unary::gelu_tanh: return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case ops::Unary::silu: return x / (1.0 + std::exp(-x));
    case ops::Unary::relu: return x > 0 ? x : 0.0;
    default: return x;
  }
}

class MatmulEpilogueTest : public test::GpuTest, public ::testing::WithParamInterface<EpilogueCase> {};

TEST_P(MatmulEpilogueTest, MatchesReference) {
  const EpilogueCase c = GetParam();
  const bool packed = c.layout == WeightLayout::packed;
  const WeightLayout stored = packed ? WeightLayout::out_in : c.layout;
  auto a = test::random_floats(static_cast<size_t>(c.B) * c.M * c.K, 21);
  auto w = test::random_floats(static_cast<size_t>(c.N) * c.K, 22);
  auto bias = test::random_floats(c.N, 23);
  auto before = test::random_floats(static_cast<size_t>(c.B) * c.M * c.N, 24);
  auto want = reference(a, w, &bias, c.B, c.M, c.N, c.K, stored, false);
  for (size_t i = 0; i < want.size(); ++i)
    want[i] = static_cast<float>(activate(c.activation, want[i]) + (c.accumulate ? before[i] : 0.0));

  gpu::Tensor ta = c.B > 1 ? gpu::Tensor::from_f32(ctx(), a, {c.B, c.M, c.K}) : gpu::Tensor::from_f32(ctx(), a, {c.M, c.K});
  const bool nk = stored == WeightLayout::out_in;
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), w, {nk ? c.N : c.K, nk ? c.K : c.N});
  gpu::Tensor tp = packed ? ops::pack_weights(ctx(), tw, WeightLayout::out_in) : gpu::Tensor();
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), bias, {c.N});
  test::Guarded out = c.B > 1 ? test::Guarded(ctx(), DType::f32, {c.B, c.M, c.N}) : test::Guarded(ctx(), DType::f32, {c.M, c.N});
  gpu::upload(out.view(), before);

  gpu::Stream s(ctx());
  ops::matmul(s, ta, packed ? tp.view() : tw.view(), out, c.layout, tb.view(), ops::Epilogue{c.activation, c.accumulate});
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-5);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(
    Paths, MatmulEpilogueTest,
    ::testing::Values(EpilogueCase{1, 1, 67, 40, WeightLayout::out_in, ops::Unary::gelu_tanh, false},    // matvec
                      EpilogueCase{1, 1, 67, 40, WeightLayout::out_in, ops::Unary::identity, true},      // residual
                      EpilogueCase{3, 1, 33, 16, WeightLayout::out_in, ops::Unary::silu, true},         // [B,1,K]
                      EpilogueCase{1, 3, 70, 36, WeightLayout::out_in, ops::Unary::relu, true},         // rows
                      EpilogueCase{1, 13, 29, 20, WeightLayout::out_in, ops::Unary::gelu_erf, true},    // tiled vec4
                      EpilogueCase{2, 9, 21, 13, WeightLayout::out_in, ops::Unary::gelu_tanh, true},    // tiled scalar
                      EpilogueCase{1, 11, 36, 24, WeightLayout::in_out, ops::Unary::gelu_tanh, true},   // kn vec4
                      EpilogueCase{1, 7, 10, 9, WeightLayout::in_out, ops::Unary::silu, false},         // kn scalar
                      EpilogueCase{1, 17, 45, 32, WeightLayout::packed, ops::Unary::gelu_erf, true}));  // packed

TEST_F(MatmulTest, PackedWeightsRejectWhatTheyCannotServe) {
  gpu::Tensor odd(ctx(), DType::f32, {8, 6});
  test::expect_error([&] { ops::pack_weights(ctx(), odd, WeightLayout::out_in); },
                     "pack_weights: w f32[8,6] has K=6, not a multiple of 4; use it unpacked");
  gpu::Tensor w(ctx(), DType::f32, {8, 12});
  gpu::Tensor packed = ops::pack_weights(ctx(), w, WeightLayout::out_in);
  gpu::Tensor a(ctx(), DType::f32, {3, 12});
  gpu::Tensor out(ctx(), DType::f32, {3, 40});
  gpu::Stream s(ctx());
  const int64_t T = packed.dim(2);
  test::expect_error([&] { ops::matmul(s, a, packed, out, WeightLayout::packed); },
                     "matmul: out f32[3,40] has N=40 but packed w " + packed.str() + " holds 1 to " +
                         std::to_string(T) + " rows");
  gpu::Tensor a_wrong(ctx(), DType::f32, {3, 8});
  gpu::Tensor out_ok(ctx(), DType::f32, {3, 8});
  test::expect_error([&] { ops::matmul(s, a_wrong, packed, out_ok, WeightLayout::packed); },
                     "matmul: a f32[3,8] has K=8 but packed w " + packed.str() + " has K=12");
  test::expect_error([&] { ops::matmul(s, a, w, out_ok, WeightLayout::packed); },
                     "matmul: packed w f32[8,12] was not made by pack_weights() for this device (tile " +
                         std::to_string(T) + ")");
}

TEST_F(MatmulTest, ReadsStridedRowsWithoutCopy) {
  // a is a column slice of a wider matrix: row pitch 40, K = 16 starting at column 8.
  const int M = 11, K = 16, N = 9, pitch = 40;
  auto wide = test::random_floats(static_cast<size_t>(M) * pitch, 4);
  auto w = test::random_floats(static_cast<size_t>(N) * K, 5);
  std::vector<float> a(static_cast<size_t>(M) * K);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) a[m * K + k] = wide[m * pitch + 8 + k];
  auto want = reference(a, w, nullptr, 1, M, N, K, WeightLayout::out_in, false);
  gpu::Tensor tw = gpu::Tensor::from_f32(ctx(), wide, {M, pitch});
  gpu::Tensor ww = gpu::Tensor::from_f32(ctx(), w, {N, K});
  test::Guarded out(ctx(), DType::f32, {M, N});
  gpu::Stream s(ctx());
  ops::matmul(s, tw.view().slice(1, 8, K), ww, out);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-5);
  out.check_guards();
}

TEST_F(MatmulTest, RejectsMismatchedShapesWithAClearMessage) {
  gpu::Tensor a(ctx(), DType::f32, {3, 5});
  gpu::Tensor w(ctx(), DType::f32, {4, 6});
  gpu::Tensor out(ctx(), DType::f32, {3, 4});
  gpu::Stream s(ctx());
  try {
    ops::matmul(s, a, w, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "matmul: a f32[3,5] has K=5 but w f32[4,6] [N,K] has K=6");
  }
  gpu::Tensor bad_out(ctx(), DType::f32, {3, 3});
  gpu::Tensor w_ok(ctx(), DType::f32, {4, 5});
  try {
    ops::matmul(s, a, w_ok, bad_out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "matmul: out f32[3,3] must be [3,4] for a f32[3,5] and w f32[4,5]");
  }
  gpu::Tensor ints(ctx(), DType::i32, {3, 5});
  try {
    ops::matmul(s, ints, w_ok, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "matmul: a i32[3,5] must be f32");
  }
}

}  // namespace
}  // namespace tessera
