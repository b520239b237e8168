// copy and concat: permutes and transposes of every rank, strided sources and destinations, f16 to f32
// widening, i32 copies, odd sizes, guard regions and bad arguments.
#include <vector>

#include "ops/copy.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;

// Host permute of a contiguous [d0,d1,d2,d3] array by `order` (out dim i = in dim order[i]).
template <class T>
std::vector<T> permute_ref(const std::vector<T>& x, std::array<int64_t, 4> shape, std::array<int, 4> order) {
  std::array<int64_t, 4> st{shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1};
  std::array<int64_t, 4> os{}, ost{};
  for (int i = 0; i < 4; ++i) {
    os[i] = shape[order[i]];
    ost[i] = st[order[i]];
  }
  std::vector<T> out;
  for (int64_t a = 0; a < os[0]; ++a)
    for (int64_t b = 0; b < os[1]; ++b)
      for (int64_t c = 0; c < os[2]; ++c)
        for (int64_t d = 0; d < os[3]; ++d) out.push_back(x[a * ost[0] + b * ost[1] + c * ost[2] + d * ost[3]]);
  return out;
}

struct Case {
  std::array<int64_t, 4> shape;
  std::array<int, 4> order;
  DType src;
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << gpu::dtype_name(c.src) << "[" << c.shape[0] << "," << c.shape[1] << "," << c.shape[2] << "," << c.shape[3]
      << "] permute(" << c.order[0] << "," << c.order[1] << "," << c.order[2] << "," << c.order[3] << ")";
}

class CopyTest : public test::GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(CopyTest, PermuteMatchesReference) {
  const Case c = GetParam();
  const int64_t n = c.shape[0] * c.shape[1] * c.shape[2] * c.shape[3];
  const auto& sh = c.shape;
  const auto& o = c.order;
  gpu::Tensor src(ctx(), c.src, {sh[0], sh[1], sh[2], sh[3]});
  const DType dt = c.src == DType::i32 ? DType::i32 : DType::f32;
  test::Guarded out(ctx(), dt, {sh[o[0]], sh[o[1]], sh[o[2]], sh[o[3]]});
  gpu::Stream s(ctx());
  if (c.src == DType::i32) {
    auto x = test::random_ints(n, 81, -1000000, 1000000);
    gpu::upload(src, x);
    ops::copy(s, src.view().permute({o[0], o[1], o[2], o[3]}), out);
    s.run();
    EXPECT_EQ(out.read_i32(), permute_ref(x, sh, o));
  } else {
    auto x = test::random_floats(n, 82);
    if (c.src == DType::f16) x = test::round_to_half(x);
    gpu::upload(src, x);
    ops::copy(s, src.view().permute({o[0], o[1], o[2], o[3]}), out);
    s.run();
    EXPECT_EQ(out.read_f32(), permute_ref(x, sh, o));
  }
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(Permutes, CopyTest,
                         ::testing::Values(Case{{1, 1, 1, 1}, {0, 1, 2, 3}, DType::f32},
                                           Case{{2, 3, 5, 8}, {0, 1, 2, 3}, DType::f32},   // plain contiguous copy
                                           Case{{2, 3, 5, 7}, {0, 2, 1, 3}, DType::f32},   // heads <-> sequence
                                           Case{{2, 5, 3, 4}, {0, 2, 1, 3}, DType::f32},
                                           Case{{3, 4, 5, 6}, {3, 2, 1, 0}, DType::f32},
                                           Case{{1, 7, 9, 11}, {0, 1, 3, 2}, DType::f16},  // transpose + widen
                                           Case{{2, 2, 3, 8}, {1, 0, 2, 3}, DType::f16},
                                           Case{{2, 3, 5, 7}, {2, 0, 3, 1}, DType::i32},
                                           Case{{1, 1, 13, 1}, {0, 2, 3, 1}, DType::i32}));

TEST_F(CopyTest, StridedSourceAndDestination) {
  // src: every second column of a [6, 10] tensor (stride 2); dst: columns [1, 6) of a [6, 9] tensor.
  auto x = test::random_floats(60, 83);
  gpu::Tensor src = gpu::Tensor::from_f32(ctx(), x, {6, 10});
  std::vector<float> init(54, 5.0f);
  gpu::Tensor dst = gpu::Tensor::from_f32(ctx(), init, {6, 9});
  gpu::TensorView sv = src.view().slice(1, 0, 5);
  sv.strides[1] = 2;  // a column stride no reshape produces: the generic path
  sv.offset = 1;
  gpu::Stream s(ctx());
  ops::copy(s, sv, dst.view().slice(1, 1, 5));
  s.run();
  auto got = gpu::download_f32(dst);
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 9; ++c) EXPECT_EQ(got[r * 9 + c], c >= 1 && c < 6 ? x[r * 10 + 2 * (c - 1) + 1] : 5.0f);
}

TEST_F(CopyTest, ConcatAlongAnyDimension) {
  auto a = test::random_floats(2 * 3 * 4, 84), b = test::random_floats(2 * 5 * 4, 85);
  gpu::Tensor ta = gpu::Tensor::from_f32(ctx(), a, {2, 3, 4});
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), b, {2, 5, 4});
  test::Guarded out(ctx(), DType::f32, {2, 8, 4});
  gpu::Stream s(ctx());
  const gpu::TensorView parts[] = {ta, tb};
  ops::concat(s, parts, 1, out);
  s.run();
  std::vector<float> want;
  for (int i = 0; i < 2; ++i) {
    want.insert(want.end(), a.begin() + i * 12, a.begin() + (i + 1) * 12);
    want.insert(want.end(), b.begin() + i * 20, b.begin() + (i + 1) * 20);
  }
  EXPECT_EQ(out.read_f32(), want);
  out.check_guards();

  // Along dimension 0: contiguous parts into contiguous slices at an offset (a plain buffer copy).
  test::Guarded out0(ctx(), DType::f32, {4, 3, 4});
  const gpu::TensorView parts0[] = {ta, ta.view().slice(0, 1, 1), ta.view().slice(0, 0, 1)};
  ops::concat(s, parts0, 0, out0);
  s.run();
  std::vector<float> want0 = a;
  want0.insert(want0.end(), a.begin() + 12, a.end());
  want0.insert(want0.end(), a.begin(), a.begin() + 12);
  EXPECT_EQ(out0.read_f32(), want0);
  out0.check_guards();

  // Along the last dimension, with a part of width 1 and an f16 part.
  auto c = test::random_floats(3, 86), d = test::round_to_half(test::random_floats(6, 87));
  gpu::Tensor tc = gpu::Tensor::from_f32(ctx(), c, {3, 1});
  gpu::Tensor td = gpu::Tensor::from_f32(ctx(), d, {3, 2}, DType::f16);
  test::Guarded out2(ctx(), DType::f32, {3, 3});
  const gpu::TensorView parts2[] = {tc, td};
  ops::concat(s, parts2, -1, out2);
  s.run();
  EXPECT_EQ(out2.read_f32(), (std::vector<float>{c[0], d[0], d[1], c[1], d[2], d[3], c[2], d[4], d[5]}));
  out2.check_guards();
}

TEST_F(CopyTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor f(ctx(), DType::f32, {3, 4});
  gpu::Tensor i(ctx(), DType::i32, {3, 4});
  gpu::Tensor h(ctx(), DType::f16, {3, 4});
  gpu::Stream s(ctx());
  try {
    ops::copy(s, f, i);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "copy: dst i32[3,4] cannot take src f32[3,4]: i32 copies only to i32, f32 and f16 to f32");
  }
  try {
    ops::copy(s, f, h);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "copy: dst f16[3,4] must be f32 or i32");
  }
  try {
    ops::copy(s, f, f.view().transpose(0, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "copy: dst f32[4,3] must have the shape of src f32[3,4]");
  }
  gpu::Tensor o(ctx(), DType::f32, {3, 6});
  const gpu::TensorView parts[] = {f, f};
  try {
    ops::concat(s, parts, 1, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "concat: parts add up to 8 along dimension 1 but out f32[3,6] has 6");
  }
}

}  // namespace
}  // namespace tessera
