// embedding lookups against a CPU reference: f32 and f16 tables, odd widths, ids of several ranks,
// out-of-range ids (zero rows), the fused positional add, an output slice, guards and bad arguments.
#include <optional>

#include "ops/embedding.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;

std::vector<float> gather_ref(const std::vector<float>& table, int64_t V, int64_t C, const std::vector<int32_t>& ids,
                              int64_t L, const std::vector<float>* pos, int64_t pos0) {
  std::vector<float> out(ids.size() * C);
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t c = 0; c < C; ++c) {
      float v = ids[t] >= 0 && ids[t] < V ? table[ids[t] * C + c] : 0.0f;
      if (pos) v += (*pos)[(pos0 + static_cast<int64_t>(t) % L) * C + c];
      out[t * C + c] = v;
    }
  return out;
}

struct Case {
  int64_t V, C, B, L;
  DType dtype;
  bool pos;
  int64_t pos0;
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << "V " << c.V << " C " << c.C << " ids [" << c.B << "," << c.L << "] " << gpu::dtype_name(c.dtype) << " pos "
      << c.pos << " from " << c.pos0;
}

class EmbeddingTest : public test::GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(EmbeddingTest, MatchesReference) {
  const Case c = GetParam();
  auto table = test::random_floats(c.V * c.C, 71);
  const int64_t P = c.pos0 + c.L + 3;
  auto pos = test::random_floats(P * c.C, 72);
  if (c.dtype == DType::f16) {
    table = test::round_to_half(table);
    pos = test::round_to_half(pos);
  }
  auto ids = test::random_ints(c.B * c.L, 73, 0, static_cast<int32_t>(c.V - 1));
  auto want = gather_ref(table, c.V, c.C, ids, c.L, c.pos ? &pos : nullptr, c.pos0);
  gpu::Tensor tt = gpu::Tensor::from_f32(ctx(), table, {c.V, c.C}, c.dtype);
  gpu::Tensor tp = gpu::Tensor::from_f32(ctx(), pos, {P, c.C}, c.dtype);
  gpu::Tensor ti = gpu::Tensor::from_i32(ctx(), ids, {c.B, c.L});
  test::Guarded out(ctx(), DType::f32, {c.B, c.L, c.C});
  gpu::Stream s(ctx());
  ops::embedding(s, tt, ti, out, c.pos ? std::optional<gpu::TensorView>(tp) : std::nullopt, c.pos0);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-7);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingTest,
                         ::testing::Values(Case{1, 1, 1, 1, DType::f32, false, 0},
                                           Case{50, 16, 2, 7, DType::f32, false, 0},
                                           Case{97, 13, 3, 5, DType::f32, true, 2},
                                           Case{64, 32, 1, 9, DType::f16, true, 0},
                                           Case{31, 7, 2, 3, DType::f16, false, 0},
                                           Case{1000, 768, 1, 1, DType::f32, true, 17}));

TEST_F(EmbeddingTest, OutOfRangeIdsGiveZeroRows) {
  const int64_t V = 10, C = 6;
  auto table = test::random_floats(V * C, 74);
  std::vector<int32_t> ids = {3, -1, 10, 9, 1 << 30, 0};
  auto want = gather_ref(table, V, C, ids, 6, nullptr, 0);
  gpu::Tensor tt = gpu::Tensor::from_f32(ctx(), table, {V, C});
  gpu::Tensor ti = gpu::Tensor::from_i32(ctx(), ids, {6});
  test::Guarded out(ctx(), DType::f32, {6, C});
  gpu::Stream s(ctx());
  ops::embedding(s, tt, ti, out);
  s.run();
  auto got = out.read_f32();
  EXPECT_EQ(got, want);
  for (int c = 0; c < C; ++c) EXPECT_EQ(got[1 * C + c], 0.0f);
  out.check_guards();
}

TEST_F(EmbeddingTest, WritesIntoAColumnSliceOfALargerTensor) {
  // out is columns [4, 12) of a [5, 16] tensor: token rows at pitch 16.
  const int64_t V = 20, C = 8;
  auto table = test::random_floats(V * C, 75);
  auto ids = test::random_ints(5, 76, 0, V - 1);
  gpu::Tensor tt = gpu::Tensor::from_f32(ctx(), table, {V, C});
  gpu::Tensor ti = gpu::Tensor::from_i32(ctx(), ids, {5});
  std::vector<float> zeros(5 * 16, -7.0f);
  gpu::Tensor big = gpu::Tensor::from_f32(ctx(), zeros, {5, 16});
  gpu::Stream s(ctx());
  ops::embedding(s, tt, ti, big.view().slice(1, 4, C));
  s.run();
  auto got = gpu::download_f32(big);
  for (int t = 0; t < 5; ++t)
    for (int c = 0; c < 16; ++c)
      EXPECT_EQ(got[t * 16 + c], c >= 4 && c < 12 ? table[ids[t] * C + c - 4] : -7.0f) << t << "," << c;
}

TEST_F(EmbeddingTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor table(ctx(), DType::f32, {10, 8});
  gpu::Tensor ids(ctx(), DType::i32, {2, 3});
  gpu::Tensor pos(ctx(), DType::f32, {4, 8});
  gpu::Tensor out(ctx(), DType::f32, {2, 3, 8});
  gpu::Stream s(ctx());
  try {
    ops::embedding(s, table, ids, out, pos.view(), 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "embedding: positions 2..4 are outside pos_table f32[4,8]");
  }
  gpu::Tensor out_bad(ctx(), DType::f32, {2, 3, 7});
  try {
    ops::embedding(s, table, ids, out_bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "embedding: out f32[2,3,7] must be [2,3,8] for ids i32[2,3] and table f32[10,8]");
  }
  gpu::Tensor fids(ctx(), DType::f32, {2, 3});
  try {
    ops::embedding(s, table, fids, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "embedding: ids f32[2,3] must be i32");
  }
}

}  // namespace
}  // namespace tessera
