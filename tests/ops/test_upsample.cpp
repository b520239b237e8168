// upsample_nearest2x against the CPU: odd sizes, batches, f16 input, strided views, guards, bad arguments.
#include "ops/upsample.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;

std::vector<float> reference(const std::vector<float>& x, int B, int C, int H, int W) {
  std::vector<float> out(static_cast<size_t>(B) * C * 4 * H * W);
  for (int bc = 0; bc < B * C; ++bc)
    for (int y = 0; y < 2 * H; ++y)
      for (int xx = 0; xx < 2 * W; ++xx)
        out[(static_cast<size_t>(bc) * 2 * H + y) * 2 * W + xx] = x[(static_cast<size_t>(bc) * H + y / 2) * W + xx / 2];
  return out;
}

struct Case {
  int B, C, H, W;
  DType dtype;
};

class UpsampleTest : public test::GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(UpsampleTest, MatchesReference) {
  const Case c = GetParam();
  auto x = test::random_floats(static_cast<size_t>(c.B) * c.C * c.H * c.W, 7);
  if (c.dtype == DType::f16) x = test::round_to_half(x);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {c.B, c.C, c.H, c.W}, c.dtype);
  test::Guarded out(ctx(), DType::f32, {c.B, c.C, 2 * c.H, 2 * c.W});
  gpu::Stream s(ctx());
  ops::upsample_nearest2x(s, tx, out);
  s.run();
  EXPECT_EQ(out.read_f32(), reference(x, c.B, c.C, c.H, c.W));
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Shapes, UpsampleTest,
                         ::testing::Values(Case{1, 1, 1, 1, DType::f32}, Case{1, 3, 5, 7, DType::f32},
                                           Case{2, 4, 8, 8, DType::f32}, Case{3, 2, 1, 13, DType::f32},
                                           Case{1, 16, 17, 9, DType::f16}));

TEST_F(UpsampleTest, ReadsAndWritesStridedViews) {
  // x: channels 1..3 of a 5-channel tensor; out: channels 2..4 of a 6-channel one.
  const int H = 3, W = 5;
  auto wide = test::random_floats(static_cast<size_t>(5) * H * W, 8);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), wide, {1, 5, H, W});
  std::vector<float> zeros(static_cast<size_t>(6) * 4 * H * W, 0.0f);
  gpu::Tensor big = gpu::Tensor::from_f32(ctx(), zeros, {1, 6, 2 * H, 2 * W});
  gpu::Stream s(ctx());
  ops::upsample_nearest2x(s, tx.view().slice(1, 1, 3), big.view().slice(1, 2, 3));
  s.run();
  auto all = gpu::download_f32(big);
  std::vector<float> x(wide.begin() + H * W, wide.begin() + 4 * H * W);
  auto want = reference(x, 1, 3, H, W);
  const size_t plane = 4 * H * W;
  EXPECT_EQ(std::vector<float>(all.begin() + 2 * plane, all.begin() + 5 * plane), want);
  for (size_t i = 0; i < 2 * plane; ++i) ASSERT_EQ(all[i], 0.0f);
  for (size_t i = 5 * plane; i < all.size(); ++i) ASSERT_EQ(all[i], 0.0f);
}

TEST_F(UpsampleTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor x(ctx(), DType::f32, {1, 3, 4, 5});
  gpu::Tensor out(ctx(), DType::f32, {1, 3, 8, 9});
  gpu::Stream s(ctx());
  try {
    ops::upsample_nearest2x(s, x, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "upsample_nearest2x: out f32[1,3,8,9] must be [1,3,8,10] for x f32[1,3,4,5]");
  }
  gpu::Tensor out16(ctx(), DType::f16, {1, 3, 8, 10});
  try {
    ops::upsample_nearest2x(s, x, out16);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "upsample_nearest2x: out f16[1,3,8,10] must be f32");
  }
}

}  // namespace
}  // namespace tessera
