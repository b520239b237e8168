// softmax against a double-precision reference: odd row lengths, scale, huge logits (stability), fully
// masked rows, strided rows, in-place use, guard regions and bad arguments.
#include <cmath>
#include <limits>

#include "ops/softmax.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;

std::vector<float> softmax_ref(const std::vector<float>& x, int64_t rows, int64_t N, double scale) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = -INFINITY;
    for (int64_t i = 0; i < N; ++i) m = std::max(m, scale * x[r * N + i]);
    if (std::isinf(m)) continue;  // fully masked: zeros
    double sum = 0;
    for (int64_t i = 0; i < N; ++i) sum += std::exp(scale * x[r * N + i] - m);
    for (int64_t i = 0; i < N; ++i) y[r * N + i] = static_cast<float>(std::exp(scale * x[r * N + i] - m) / sum);
  }
  return y;
}

struct Case {
  int64_t rows, N;
  float scale, spread;
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << "[" << c.rows << "," << c.N << "] scale " << c.scale << " spread " << c.spread;
}

class SoftmaxTest : public test::GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(SoftmaxTest, MatchesReference) {
  const Case c = GetParam();
  auto x = test::random_floats(c.rows * c.N, 61, -c.spread, c.spread);
  auto want = softmax_ref(x, c.rows, c.N, c.scale);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {c.rows, c.N});
  test::Guarded out(ctx(), DType::f32, {c.rows, c.N});
  gpu::Stream s(ctx());
  ops::softmax(s, tx, out, c.scale);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 2e-6);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Shapes, SoftmaxTest,
                         ::testing::Values(Case{1, 1, 1.0f, 1.0f}, Case{1, 1024, 1.0f, 4.0f}, Case{7, 13, 0.125f, 3.0f},
                                           Case{33, 256, 1.0f, 2.0f}, Case{4, 257, -1.0f, 2.0f},
                                           Case{3, 100, 1.0f, 1000.0f},   // logits far beyond exp's range
                                           Case{129, 3, 1.0f, 1.0f}));

TEST_F(SoftmaxTest, MaskedEntriesAndFullyMaskedRows) {
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.0f, ninf, 2.0f, ninf, 0.5f, ninf, ninf, ninf, ninf, ninf, 3.0f, 3.0f, 3.0f, ninf, 3.0f};
  auto want = softmax_ref(x, 3, 5, 1.0);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {3, 5});
  test::Guarded out(ctx(), DType::f32, {3, 5});
  gpu::Stream s(ctx());
  ops::softmax(s, tx, out);
  s.run();
  auto got = out.read_f32();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
  out.check_guards();
}

TEST_F(SoftmaxTest, Rank4StridedInPlace) {
  // Attention scores [B=2, H=3, L=4, S=8] stored with S pitch 12: softmax of the first 8 columns, in place.
  auto big = test::random_floats(2 * 3 * 4 * 12, 62, -5.0f, 5.0f);
  gpu::Tensor t = gpu::Tensor::from_f32(ctx(), big, {2, 3, 4, 12});
  const gpu::TensorView win = t.view().slice(3, 0, 8);
  std::vector<float> rows;
  for (int r = 0; r < 24; ++r)
    for (int c = 0; c < 8; ++c) rows.push_back(big[r * 12 + c]);
  auto want_rows = softmax_ref(rows, 24, 8, 0.5);
  std::vector<float> want = big;
  for (int r = 0; r < 24; ++r)
    for (int c = 0; c < 8; ++c) want[r * 12 + c] = want_rows[r * 8 + c];
  gpu::Stream s(ctx());
  ops::softmax(s, win, win, 0.5f);
  s.run();
  EXPECT_LT(test::normalized_error(gpu::download_f32(t), want), 2e-6);
}

TEST_F(SoftmaxTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor x(ctx(), DType::f32, {4, 8});
  gpu::Tensor out(ctx(), DType::f32, {4, 7});
  gpu::Stream s(ctx());
  try {
    ops::softmax(s, x, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "softmax: out f32[4,7] must have the shape of x f32[4,8]");
  }
  gpu::Tensor h(ctx(), DType::f16, {4, 8});
  try {
    ops::softmax(s, h, x);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "softmax: x f16[4,8] must be f32");
  }
  try {
    ops::softmax(s, x.view().slice(1, 0, 6), x.view().slice(1, 2, 6));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "softmax: out f32[4,6] overlaps x f32[4,6] without being the same view");
  }
}

}  // namespace
}  // namespace tessera
