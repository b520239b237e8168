#include "ops/elementwise.hpp"

#include <algorithm>

namespace tessera::ops {
namespace detail {

Loop4 merge_loop(int rank, const std::array<int64_t, 4>& shape, int operands,
                 const std::array<std::array<int64_t, 4>, 3>& strides) {
  // Walk from the innermost dimension outwards, dropping size-1 dimensions and folding a dimension into
  // the one inside it when every operand steps over it exactly as one run of the inner one.
  std::array<int64_t, 4> ms{};
  std::array<std::array<int64_t, 4>, 3> mst{};
  int n = 0;  // merged dimensions so far, stored innermost first
  for (int d = rank - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    bool fold = n > 0;
    for (int k = 0; k < operands && fold; ++k) fold = strides[k][d] == mst[k][n - 1] * ms[n - 1];
    if (fold) {
      ms[n - 1] *= shape[d];
      continue;
    }
    ms[n] = shape[d];
    for (int k = 0; k < operands; ++k) mst[k][n] = strides[k][d];
    ++n;
  }
  Loop4 l;
  for (int i = 0; i < 4; ++i) {
    const bool real = i < n;
    l.shape[3 - i] = real ? ms[i] : 1;
    for (int k = 0; k < 3; ++k) l.strides[k][3 - i] = real && k < operands ? mst[k][i] : 0;
  }
  return l;
}

}  // namespace detail

namespace {

struct EltPush {
  int32_t n[4];
  int32_t a_off, a_s[4];
  int32_t b_off, b_s[4];
  int32_t o_off, o_s[4];
  float alpha, beta;
};

constexpr int kGroup = 128;
constexpr int kPer = 8;

std::string shape_str(int rank, const std::array<int64_t, 4>& shape) {
  std::string r = "[";
  for (int i = 0; i < rank; ++i) r += (i ? "," : "") + std::to_string(shape[i]);
  return r + "]";
}

// Fills one operand's offset and strides, in RGBA texels when its rows allow; returns whether they do.
bool operand(const char* op, const detail::Loop4& l, int k, int64_t offset, int32_t& off, int32_t* s) {
  const auto& st = l.strides[k];
  bool vec4 = st[3] == 1 && l.shape[3] % 4 == 0 && offset % 4 == 0;
  for (int i = 0; i < 3; ++i) vec4 = vec4 && (l.shape[i] == 1 || st[i] % 4 == 0);
  const int lanes = vec4 ? 4 : 1;
  off = i32(op, offset / lanes);
  for (int i = 0; i < 3; ++i) s[i] = i32(op, l.shape[i] == 1 ? 0 : st[i] / lanes);
  s[3] = i32(op, st[3]);
  return vec4;
}

void check_out(const char* op, const TensorView& out, const TensorView& in, const char* in_name) {
  if (views_overlap(out, in) && !same_view(out, in))
    fail(op, std::string("out ") + out.str() + " overlaps " + in_name + " " + in.str() +
                 " without being the same view; in-place use needs out to be exactly the input");
}

void launch(gpu::Stream& s, const char* op, const char* shader, int code, const detail::Loop4& l, int operands,
            const TensorView& a, const TensorView* b, const TensorView& out, float alpha, float beta) {
  EltPush p{};
  for (int i = 0; i < 4; ++i) p.n[i] = i32(op, l.shape[i]);
  const bool a4 = operand(op, l, 0, a.offset, p.a_off, p.a_s);
  const bool b4 = b ? operand(op, l, 1, b->offset, p.b_off, p.b_s) : false;
  const int ok = operands - 1;
  bool o4 = l.strides[ok][3] == 1 && l.shape[3] % 4 == 0 && out.offset % 4 == 0;
  for (int i = 0; i < 3; ++i) o4 = o4 && (l.shape[i] == 1 || l.strides[ok][i] % 4 == 0);
  const int o_lanes = o4 ? 4 : 1;
  p.o_off = i32(op, out.offset / o_lanes);
  for (int i = 0; i < 3; ++i) p.o_s[i] = i32(op, l.shape[i] == 1 ? 0 : l.strides[ok][i] / o_lanes);
  p.o_s[3] = i32(op, l.strides[ok][3]);
  p.alpha = alpha;
  p.beta = beta;
  const bool contiguous = a4 && (b4 || !b) && o4 && l.shape[0] * l.shape[1] * l.shape[2] == 1;
  const int64_t invocations = l.shape[0] * l.shape[1] * l.shape[2] * ((l.shape[3] + 3) / 4);
  i32(op, invocations);

  gpu::Context& ctx = context_of(out);
  std::vector<gpu::Access> access(b ? 2 : 1, gpu::Access::texel);
  access.push_back(gpu::Access::storage);
  const gpu::Kernel& k = ctx.kernel(
      {shader, access, sizeof(EltPush), {kGroup, code, a4 ? 1 : 0, b4 ? 1 : 0, o4 ? 1 : 0, kPer, contiguous ? 1 : 0}});
  const auto groups = gpu::groups_for(ctx, static_cast<uint64_t>(invocations), kGroup * kPer);
  if (b) {
    const gpu::Bind binds[] = {gpu::Bind::texel(a, a4 ? 4 : 1), gpu::Bind::texel(*b, b4 ? 4 : 1),
                               gpu::Bind::storage_write(out)};
    s.dispatch(k, binds, &p, sizeof p, groups, op);
  } else {
    const gpu::Bind binds[] = {gpu::Bind::texel(a, a4 ? 4 : 1), gpu::Bind::storage_write(out)};
    s.dispatch(k, binds, &p, sizeof p, groups, op);
  }
}

}  // namespace

void unary(gpu::Stream& s, Unary op_kind, const TensorView& x, const TensorView& out, float alpha, float beta) {
  const char* op = "unary";
  expect_dtype(op, "x", x, {DType::f32, DType::f16});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "x", x, 1, 4);
  expect_same_shape(op, "out", out, "x", x);
  check_out(op, out, x, "x");
  if (x.numel() == 0) return;
  std::array<int64_t, 4> shape{};
  std::array<std::array<int64_t, 4>, 3> st{};
  for (int i = 0; i < x.rank; ++i) {
    shape[i] = x.shape[i];
    st[0][i] = x.strides[i];
    st[1][i] = out.strides[i];
  }
  const detail::Loop4 l = detail::merge_loop(x.rank, shape, 2, st);
  launch(s, op, "unary", static_cast<int>(op_kind), l, 2, x, nullptr, out, alpha, beta);
}

void binary(gpu::Stream& s, Binary op_kind, const TensorView& a, const TensorView& b, const TensorView& out,
            float alpha) {
  const char* op = "binary";
  expect_dtype(op, "a", a, {DType::f32, DType::f16});
  expect_dtype(op, "b", b, {DType::f32, DType::f16});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "a", a, 1, 4);
  expect_rank(op, "b", b, 1, 4);
  const int rank = std::max(a.rank, b.rank);
  std::array<int64_t, 4> shape{};
  std::array<std::array<int64_t, 4>, 3> st{};
  for (int i = 0; i < rank; ++i) {
    const int ia = i - (rank - a.rank), ib = i - (rank - b.rank);
    const int64_t da = ia >= 0 ? a.shape[ia] : 1, db = ib >= 0 ? b.shape[ib] : 1;
    if (da != db && da != 1 && db != 1)
      fail(op, "a " + a.str() + " and b " + b.str() + " do not broadcast (dimension " + std::to_string(i) + ": " +
                   std::to_string(da) + " vs " + std::to_string(db) + ")");
    shape[i] = std::max(da, db);
    st[0][i] = da == 1 ? 0 : a.strides[ia];
    st[1][i] = db == 1 ? 0 : b.strides[ib];
  }
  bool match = out.rank == rank;
  for (int i = 0; match && i < rank; ++i) match = out.shape[i] == shape[i];
  if (!match)
    fail(op, "out " + out.str() + " must be " + shape_str(rank, shape) + ", the broadcast of a " + a.str() +
                 " and b " + b.str());
  check_out(op, out, a, "a");
  check_out(op, out, b, "b");
  if (out.numel() == 0) return;
  for (int i = 0; i < rank; ++i) st[2][i] = out.strides[i];
  const detail::Loop4 l = detail::merge_loop(rank, shape, 3, st);
  launch(s, op, "binary", static_cast<int>(op_kind), l, 3, a, &b, out, alpha, 0.0f);
}

}  // namespace tessera::ops
