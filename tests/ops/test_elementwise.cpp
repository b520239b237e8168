// unary and binary elementwise ops against double-precision references: every operator, odd shapes,
// numpy broadcasting, f16 inputs, strided views, in-place use, guard regions and bad arguments.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "ops/elementwise.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;
using ops::Binary;
using ops::Unary;

double act(Unary op, double x) {
  switch (op) {
    case Unary::identity: return x;
    case Unary::gelu_erf: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Unary::gelu_tanh: return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case Unary::silu: return x / (1 + std::exp(-x));
    case Unary::relu: return x > 0 ? x : 0;
  }
  return 0;
}

double bin(Binary op, double a, double b) {
  switch (op) {
    case Binary::add: return a + b;
    case Binary::sub: return a - b;
    case Binary::mul: return a * b;
    case Binary::gelu_erf_mul: return act(Unary::gelu_erf, a) * b;
    case Binary::gelu_tanh_mul: return act(Unary::gelu_tanh, a) * b;
    case Binary::silu_mul: return act(Unary::silu, a) * b;
  }
  return 0;
}

int64_t count(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Broadcast reference over contiguous host arrays.
std::vector<float> broadcast_ref(Binary op, const std::vector<float>& a, std::vector<int64_t> as,
                                 const std::vector<float>& b, std::vector<int64_t> bs, const std::vector<int64_t>& os,
                                 float alpha) {
  const size_t r = os.size();
  as.insert(as.begin(), r - as.size(), 1);
  bs.insert(bs.begin(), r - bs.size(), 1);
  std::vector<float> out(count(os));
  std::vector<int64_t> idx(r, 0);
  for (int64_t flat = 0; flat < count(os); ++flat) {
    int64_t rem = flat, ia = 0, ib = 0;
    for (int d = static_cast<int>(r) - 1; d >= 0; --d) {
      idx[d] = rem % os[d];
      rem /= os[d];
    }
    for (size_t d = 0; d < r; ++d) {
      ia = ia * as[d] + (as[d] == 1 ? 0 : idx[d]);
      ib = ib * bs[d] + (bs[d] == 1 ? 0 : idx[d]);
    }
    out[flat] = static_cast<float>(alpha * bin(op, a[ia], b[ib]));
  }
  return out;
}

gpu::Tensor make(gpu::Context& ctx, const std::vector<float>& v, const std::vector<int64_t>& shape, DType dt) {
  gpu::Tensor t(ctx, dt, std::span<const int64_t>(shape));
  gpu::upload(t, v);
  return t;
}

test::Guarded guarded(gpu::Context& ctx, const std::vector<int64_t>& s) {
  switch (s.size()) {
    case 1: return test::Guarded(ctx, DType::f32, {s[0]});
    case 2: return test::Guarded(ctx, DType::f32, {s[0], s[1]});
    case 3: return test::Guarded(ctx, DType::f32, {s[0], s[1], s[2]});
    default: return test::Guarded(ctx, DType::f32, {s[0], s[1], s[2], s[3]});
  }
}

struct UnaryCase {
  Unary op;
  std::vector<int64_t> shape;
  DType dtype;
  float alpha, beta;
};
void PrintTo(const UnaryCase& c, std::ostream* os) {
  *os << "op " << static_cast<int>(c.op) << " " << gpu::dtype_name(c.dtype) << "[" << c.shape.size() << "-D, "
      << count(c.shape) << "] alpha " << c.alpha << " beta " << c.beta;
}

class UnaryTest : public test::GpuTest, public ::testing::WithParamInterface<UnaryCase> {};

TEST_P(UnaryTest, MatchesReference) {
  const UnaryCase c = GetParam();
  auto x = test::random_floats(count(c.shape), 11, -4.0f, 4.0f);
  if (c.dtype == DType::f16) x = test::round_to_half(x);
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = static_cast<float>(c.alpha * act(c.op, x[i]) + c.beta);
  gpu::Tensor tx = make(ctx(), x, c.shape, c.dtype);
  test::Guarded out = guarded(ctx(), c.shape);
  gpu::Stream s(ctx());
  ops::unary(s, c.op, tx, out, c.alpha, c.beta);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 2e-6);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(
    Ops, UnaryTest,
    ::testing::Values(UnaryCase{Unary::identity, {1}, DType::f32, 2.5f, -1.0f},
                      UnaryCase{Unary::identity, {3, 5, 7}, DType::f16, 1.0f, 0.0f},
                      UnaryCase{Unary::gelu_erf, {1001}, DType::f32, 1.0f, 0.0f},
                      UnaryCase{Unary::gelu_erf, {4, 64}, DType::f16, 1.0f, 0.0f},
                      UnaryCase{Unary::gelu_tanh, {2, 3, 4, 5}, DType::f32, 1.0f, 0.0f},
                      UnaryCase{Unary::gelu_tanh, {13, 17}, DType::f32, -0.5f, 0.25f},
                      UnaryCase{Unary::silu, {7, 3}, DType::f32, 1.0f, 0.0f},
                      UnaryCase{Unary::silu, {2, 2, 2, 2}, DType::f16, 1.0f, 0.0f},
                      UnaryCase{Unary::relu, {97}, DType::f32, 3.0f, 0.0f}));

TEST_F(UnaryTest, ExtremeInputsStayFinite) {
  std::vector<float> x = {-1e30f, -100.0f, -20.0f, 0.0f, 20.0f, 100.0f, 1e30f, 3.0f};
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {8});
  for (Unary op : {Unary::gelu_erf, Unary::gelu_tanh, Unary::silu}) {
    gpu::Tensor out(ctx(), DType::f32, {8});
    gpu::Stream s(ctx());
    ops::unary(s, op, tx, out);
    s.run();
    auto got = gpu::download_f32(out);
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_TRUE(std::isfinite(got[i])) << "op " << static_cast<int>(op) << " x=" << x[i];
      EXPECT_NEAR(got[i], act(op, x[i]), 1e-6 * std::max(1.0, std::fabs(static_cast<double>(x[i]))));
    }
  }
}

TEST_F(UnaryTest, ReadsTransposedViewAndWorksInPlace) {
  const int R = 5, C = 9;
  auto x = test::random_floats(R * C, 12);
  gpu::Tensor tx = gpu::Tensor::from_f32(ctx(), x, {R, C});
  test::Guarded out(ctx(), DType::f32, {C, R});
  gpu::Stream s(ctx());
  ops::unary(s, Unary::silu, tx.view().transpose(0, 1), out);
  s.run();
  std::vector<float> want(R * C);
  for (int i = 0; i < C; ++i)
    for (int j = 0; j < R; ++j) want[i * R + j] = static_cast<float>(act(Unary::silu, x[j * C + i]));
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-6);
  out.check_guards();

  // In place, on a slice so that neighbours must survive.
  ops::unary(s, Unary::identity, out.view().slice(0, 2, 3), out.view().slice(0, 2, 3), 2.0f, 1.0f);
  s.run();
  for (int i = 2; i < 5; ++i)
    for (int j = 0; j < R; ++j) want[i * R + j] = 2.0f * want[i * R + j] + 1.0f;
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-6);
  out.check_guards();
}

struct BinaryCase {
  Binary op;
  std::vector<int64_t> a, b, out;
  DType bdtype;
  float alpha;
};
void PrintTo(const BinaryCase& c, std::ostream* os) {
  auto dims = [](const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
  };
  *os << "op " << static_cast<int>(c.op) << " a" << dims(c.a) << " b" << dims(c.b) << " out" << dims(c.out);
}

class BinaryTest : public test::GpuTest, public ::testing::WithParamInterface<BinaryCase> {};

TEST_P(BinaryTest, MatchesReference) {
  const BinaryCase c = GetParam();
  auto a = test::random_floats(count(c.a), 21, -3.0f, 3.0f);
  auto b = test::random_floats(count(c.b), 22, -3.0f, 3.0f);
  if (c.bdtype == DType::f16) b = test::round_to_half(b);
  auto want = broadcast_ref(c.op, a, c.a, b, c.b, c.out, c.alpha);
  gpu::Tensor ta = make(ctx(), a, c.a, DType::f32);
  gpu::Tensor tb = make(ctx(), b, c.b, c.bdtype);
  test::Guarded out = guarded(ctx(), c.out);
  gpu::Stream s(ctx());
  ops::binary(s, c.op, ta, tb, out, c.alpha);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 2e-6);
  out.check_guards();
}

INSTANTIATE_TEST_SUITE_P(
    Broadcasts, BinaryTest,
    ::testing::Values(BinaryCase{Binary::add, {1}, {1}, {1}, DType::f32, 1.0f},
                      BinaryCase{Binary::add, {1000}, {1000}, {1000}, DType::f32, 1.0f},
                      BinaryCase{Binary::add, {1003}, {1003}, {1003}, DType::f32, 0.5f},
                      BinaryCase{Binary::add, {2, 7, 12}, {12}, {2, 7, 12}, DType::f16, 1.0f},   // x + bias
                      BinaryCase{Binary::add, {3, 5, 13}, {13}, {3, 5, 13}, DType::f32, 1.0f},
                      BinaryCase{Binary::mul, {2, 6, 5, 3}, {2, 6, 1, 1}, {2, 6, 5, 3}, DType::f32, 1.0f},
                      BinaryCase{Binary::mul, {2, 8, 4, 4}, {2, 8, 1, 1}, {2, 8, 4, 4}, DType::f32, 1.0f},
                      BinaryCase{Binary::sub, {3, 1}, {7}, {3, 7}, DType::f32, 1.0f},            // outer product
                      BinaryCase{Binary::sub, {1, 5, 1}, {4, 1, 3}, {4, 5, 3}, DType::f32, 2.0f},
                      BinaryCase{Binary::gelu_erf_mul, {5, 31}, {5, 31}, {5, 31}, DType::f32, 1.0f},
                      BinaryCase{Binary::gelu_tanh_mul, {4, 16}, {4, 16}, {4, 16}, DType::f16, 1.0f},
                      BinaryCase{Binary::silu_mul, {2, 3, 9}, {2, 3, 9}, {2, 3, 9}, DType::f32, 1.0f}));

TEST_F(BinaryTest, InPlaceAddOfBiasIntoStridedRows) {
  // out == a: a [4, 6] window with row pitch 10 of a larger matrix, plus a broadcast bias.
  auto big = test::random_floats(4 * 10, 31);
  auto bias = test::random_floats(6, 32);
  gpu::Tensor tbig = gpu::Tensor::from_f32(ctx(), big, {4, 10});
  gpu::Tensor tbias = gpu::Tensor::from_f32(ctx(), bias, {6});
  const gpu::TensorView win = tbig.view().slice(1, 3, 6);
  gpu::Stream s(ctx());
  ops::binary(s, Binary::add, win, tbias, win);
  s.run();
  std::vector<float> want = big;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) want[r * 10 + 3 + c] += bias[c];
  EXPECT_LT(test::normalized_error(gpu::download_f32(tbig), want), 1e-7);
}

TEST_F(BinaryTest, InPlaceIntoSecondOperand) {
  auto a = test::random_floats(64, 33), b = test::random_floats(64, 34);
  gpu::Tensor ta = gpu::Tensor::from_f32(ctx(), a, {8, 8});
  gpu::Tensor tb = gpu::Tensor::from_f32(ctx(), b, {8, 8});
  gpu::Stream s(ctx());
  ops::binary(s, Binary::gelu_erf_mul, ta, tb, tb);
  s.run();
  auto want = broadcast_ref(Binary::gelu_erf_mul, a, {8, 8}, b, {8, 8}, {8, 8}, 1.0f);
  EXPECT_LT(test::normalized_error(gpu::download_f32(tb), want), 1e-6);
}

TEST_F(BinaryTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor a(ctx(), DType::f32, {2, 3});
  gpu::Tensor b(ctx(), DType::f32, {4});
  gpu::Tensor out(ctx(), DType::f32, {2, 3});
  gpu::Stream s(ctx());
  try {
    ops::binary(s, Binary::add, a, b, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "binary: a f32[2,3] and b f32[4] do not broadcast (dimension 1: 3 vs 4)");
  }
  gpu::Tensor b3(ctx(), DType::f32, {3});
  gpu::Tensor out_bad(ctx(), DType::f32, {3, 3});
  try {
    ops::binary(s, Binary::add, a, b3, out_bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "binary: out f32[3,3] must be [2,3], the broadcast of a f32[2,3] and b f32[3]");
  }
  gpu::Tensor sq(ctx(), DType::f32, {3, 3});
  try {
    ops::unary(s, Unary::silu, sq.view().transpose(0, 1), sq);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "unary: out f32[3,3] overlaps x f32[3,3] without being the same view; in-place use needs out to be "
                 "exactly the input");
  }
  gpu::Tensor ints(ctx(), DType::i32, {2, 3});
  try {
    ops::unary(s, Unary::relu, ints, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "unary: x i32[2,3] must be f32 or f16");
  }
}

}  // namespace
}  // namespace tessera

namespace tessera {
namespace {

// Throughput report (not a correctness test): --gtest_also_run_disabled_tests to run it.
TEST_F(BinaryTest, DISABLED_Throughput) {
  const int64_t n = 4 << 20;
  gpu::Tensor a = gpu::Tensor::from_f32(ctx(), test::random_floats(n, 1), {n});
  gpu::Tensor b = gpu::Tensor::from_f32(ctx(), test::random_floats(n, 2), {n});
  gpu::Tensor out(ctx(), DType::f32, {n});
  gpu::Stream s(ctx());
  s.set_timing(true);
  for (auto [name, shape_b] :
       {std::pair{"add 4M", int64_t{0}}, std::pair{"add 4M as [4096,1024]+[1024]", int64_t{1024}}}) {
    std::vector<double> ms;
    for (int i = 0; i < 9; ++i) {
      if (shape_b)
        ops::binary(s, Binary::add, a.view().reshape({n / shape_b, shape_b}), b.view().slice(0, 0, shape_b),
                    out.view().reshape({n / shape_b, shape_b}));
      else
        ops::binary(s, Binary::add, a, b, out);
      s.run();
      ms.push_back(s.last_gpu_ns() * 1e-6);
    }
    std::sort(ms.begin(), ms.end());
    const double bytes = (shape_b ? 2.0 : 3.0) * n * 4;
    std::printf("%s: median %.3f ms, %.2f GB/s (min %.3f ms)\n", name, ms[4], bytes / (ms[4] * 1e6), ms[0]);
  }
  std::vector<double> ms;
  for (int i = 0; i < 9; ++i) {
    ops::unary(s, Unary::gelu_tanh, a, out);
    s.run();
    ms.push_back(s.last_gpu_ns() * 1e-6);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("gelu_tanh 4M: median %.3f ms, %.2f GB/s\n", ms[4], 2.0 * n * 4 / (ms[4] * 1e6));
}

}  // namespace
}  // namespace tessera
