#include "ops/softmax.hpp"

#include <algorithm>

namespace tessera::ops {
namespace {

struct SoftmaxPush {
  int32_t rows, N, n1, n2;
  int32_t x_off, x_s[3];
  int32_t o_off, o_s[3];
  float scale;
};

}  // namespace

void softmax(gpu::Stream& s, const TensorView& x, const TensorView& out, float scale) {
  const char* op = "softmax";
  expect_dtype(op, "x", x, {DType::f32});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "x", x, 1, 4);
  expect_same_shape(op, "out", out, "x", x);
  expect_rows_contiguous(op, "x", x);
  expect_rows_contiguous(op, "out", out);
  if (x.buffer == out.buffer && !(x.offset == out.offset && x.strides == out.strides)) {
    int64_t xb = x.offset, ob = out.offset;
    for (int i = 0; i < x.rank; ++i) {
      xb += (x.shape[i] - 1) * x.strides[i];
      ob += (out.shape[i] - 1) * out.strides[i];
    }
    if (x.offset <= ob && out.offset <= xb)
      fail(op, "out " + out.str() + " overlaps x " + x.str() + " without being the same view");
  }
  if (x.numel() == 0) return;

  const bool vec4 = texel_aligned(x, 4) && texel_aligned(out, 4);
  const int lanes = vec4 ? 4 : 1;
  SoftmaxPush p{};
  int64_t n[3];
  outer_dims(op, x, lanes, n, p.x_s);
  outer_dims(op, out, 1, n, p.o_s);
  p.rows = i32(op, n[0] * n[1] * n[2]);
  p.N = i32(op, x.dim(-1));
  p.n1 = i32(op, n[1]);
  p.n2 = i32(op, n[2]);
  p.x_off = i32(op, x.offset / lanes);
  p.o_off = i32(op, out.offset);
  p.scale = scale;

  gpu::Context& ctx = context_of(x);
  const auto& f = ctx.features();
  // As layer_norm: a subgroup per row when the row keeps its lanes busy, else an invocation per row.
  const bool sg = f.subgroup_in_compute && (f.subgroup_ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                  f.subgroup_size > 0 && x.dim(-1) / lanes >= static_cast<int64_t>(f.subgroup_size);
  const int WG = sg ? std::max<int>(64, f.subgroup_size) : 16;
  const uint32_t rows_per_group = sg ? WG / f.subgroup_size : WG;
  const std::string shader = std::string(sg ? "softmax_sg" : "softmax") + (vec4 ? "_vec4" : "");
  const gpu::Kernel& k = ctx.kernel({shader, {gpu::Access::texel, gpu::Access::storage}, sizeof(SoftmaxPush), {WG}});
  const gpu::Bind binds[] = {gpu::Bind::texel(x, lanes), gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, gpu::groups_for(ctx, static_cast<uint64_t>(p.rows), rows_per_group), op);
}

}  // namespace tessera::ops
