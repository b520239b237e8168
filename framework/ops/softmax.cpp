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
  expect_no_partial_overlap(op, "out", out, "x", x);
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
  const RowLayout rl = row_layout(ctx, x.dim(-1) / lanes);
  const int WG = rl.workgroup_size;
  const std::string shader = std::string(rl.subgroup_per_row ? "softmax_sg" : "softmax") + (vec4 ? "_vec4" : "");
  const gpu::Kernel& k = ctx.kernel({shader, {gpu::Access::texel, gpu::Access::storage}, sizeof(SoftmaxPush), {WG}});
  const gpu::Bind binds[] = {gpu::Bind::texel(x, lanes), gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, gpu::groups_for(ctx, static_cast<uint64_t>(p.rows), rl.rows_per_group), op);
}

}  // namespace tessera::ops
