#include "ops/copy.hpp"

#include "ops/elementwise.hpp"

namespace tessera::ops {
namespace {

struct CopyPush {
  int32_t n[4];
  int32_t s_off, s_s[4];
  int32_t o_off, o_s[4];
};

constexpr int kGroup = 64;

}  // namespace

void copy(gpu::Stream& s, const TensorView& src, const TensorView& dst) {
  const char* op = "copy";
  expect_dtype(op, "src", src, {DType::f32, DType::f16, DType::i32});
  expect_dtype(op, "dst", dst, {DType::f32, DType::i32});
  expect_rank(op, "src", src, 1, 4);
  expect_same_shape(op, "dst", dst, "src", src);
  const bool ints = src.dtype == DType::i32;
  if (ints != (dst.dtype == DType::i32))
    fail(op, "dst " + dst.str() + " cannot take src " + src.str() + ": i32 copies only to i32, f32 and f16 to f32");
  if (views_overlap(src, dst) && !same_view(src, dst)) fail(op, "dst " + dst.str() + " overlaps src " + src.str());
  if (src.numel() == 0 || same_view(src, dst)) return;
  if (src.dtype == dst.dtype && src.contiguous() && dst.contiguous()) {
    // A plain byte copy: the driver's transfer path needs no kernel.
    const uint64_t es = gpu::dtype_size(src.dtype);
    s.copy(*src.buffer, src.offset * es, *dst.buffer, dst.offset * es, src.numel() * es);
    return;
  }

  std::array<int64_t, 4> shape{};
  std::array<std::array<int64_t, 4>, 3> st{};
  for (int i = 0; i < src.rank; ++i) {
    shape[i] = src.shape[i];
    st[0][i] = src.strides[i];
    st[1][i] = dst.strides[i];
  }
  const detail::Loop4 l = detail::merge_loop(src.rank, shape, 2, st);

  CopyPush p{};
  for (int i = 0; i < 4; ++i) p.n[i] = i32(op, l.shape[i]);
  bool vec4 = l.strides[0][3] == 1 && l.shape[3] % 4 == 0 && src.offset % 4 == 0;
  for (int i = 0; i < 3; ++i) vec4 = vec4 && (l.shape[i] == 1 || l.strides[0][i] % 4 == 0);
  const int lanes = vec4 ? 4 : 1;
  p.s_off = i32(op, src.offset / lanes);
  for (int i = 0; i < 3; ++i) p.s_s[i] = i32(op, l.shape[i] == 1 ? 0 : l.strides[0][i] / lanes);
  p.s_s[3] = i32(op, l.strides[0][3]);
  bool dvec4 = l.strides[1][3] == 1 && l.shape[3] % 4 == 0 && dst.offset % 4 == 0;
  for (int i = 0; i < 3; ++i) dvec4 = dvec4 && (l.shape[i] == 1 || l.strides[1][i] % 4 == 0);
  const int dlanes = dvec4 ? 4 : 1;
  p.o_off = i32(op, dst.offset / dlanes);
  for (int i = 0; i < 3; ++i) p.o_s[i] = i32(op, l.shape[i] == 1 ? 0 : l.strides[1][i] / dlanes);
  p.o_s[3] = i32(op, l.strides[1][3]);
  const int64_t invocations = i32(op, l.shape[0] * l.shape[1] * l.shape[2] * ((l.shape[3] + 3) / 4));

  gpu::Context& ctx = context_of(dst);
  const gpu::Kernel& k = ctx.kernel({ints ? "copy_i32" : "copy_f32", {gpu::Access::texel, gpu::Access::storage},
                                     sizeof(CopyPush), {kGroup, vec4 ? 1 : 0, dvec4 ? 1 : 0}});
  const gpu::Bind binds[] = {gpu::Bind::texel(src, lanes), gpu::Bind::storage_write(dst)};
  s.dispatch(k, binds, &p, sizeof p, gpu::groups_for(ctx, static_cast<uint64_t>(invocations), kGroup), op);
}

void concat(gpu::Stream& s, std::span<const TensorView> parts, int dim, const TensorView& out) {
  const char* op = "concat";
  if (parts.empty()) fail(op, "needs at least one part");
  expect_rank(op, "out", out, 1, 4);
  const int d = dim < 0 ? dim + out.rank : dim;
  if (d < 0 || d >= out.rank) fail(op, "dim " + std::to_string(dim) + " is out of range for out " + out.str());
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const TensorView& p = parts[i];
    bool ok = p.rank == out.rank;
    for (int j = 0; ok && j < out.rank; ++j) ok = j == d || p.shape[j] == out.shape[j];
    if (!ok)
      fail(op, "part " + std::to_string(i) + " " + p.str() + " does not match out " + out.str() +
                   " outside dimension " + std::to_string(d));
    total += p.shape[d];
  }
  if (total != out.shape[d])
    fail(op, "parts add up to " + std::to_string(total) + " along dimension " + std::to_string(d) + " but out " +
                 out.str() + " has " + std::to_string(out.shape[d]));
  int64_t at = 0;
  for (const TensorView& p : parts) {
    if (p.shape[d] > 0) copy(s, p, out.slice(d, at, p.shape[d]));
    at += p.shape[d];
  }
}

}  // namespace tessera::ops
