#include "ops/norm.hpp"

#include <algorithm>

namespace tessera::ops {
namespace {

struct LayerNormPush {
  int32_t rows, C, n1, n2;
  int32_t x_off, x_s[3];
  int32_t o_off, o_s[3];
  int32_t w_off, b_off;
  float eps;
};

struct GroupNormPush {
  int32_t G, Cg, HW;
  int32_t x_off, x_sb, x_sc;
  int32_t o_off, o_sb, o_sc;
  int32_t w_off, b_off;
  float eps;
};

void expect_vector(const char* op, const char* name, const std::optional<TensorView>& v, int64_t n) {
  if (!v) return;
  expect_dtype(op, name, *v, {DType::f32, DType::f16});
  if (v->rank != 1 || v->shape[0] != n || !v->contiguous())
    fail(op, std::string(name) + " " + v->str() + " must be a contiguous [" + std::to_string(n) + "]");
}

}  // namespace

void layer_norm(gpu::Stream& s, const TensorView& x, std::optional<TensorView> weight, std::optional<TensorView> bias,
                float eps, const TensorView& out) {
  const char* op = "layer_norm";
  expect_dtype(op, "x", x, {DType::f32});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "x", x, 1, 4);
  expect_same_shape(op, "out", out, "x", x);
  expect_rows_contiguous(op, "x", x);
  expect_rows_contiguous(op, "out", out);
  const int64_t C = x.dim(-1);
  expect_vector(op, "weight", weight, C);
  expect_vector(op, "bias", bias, C);
  expect_no_partial_overlap(op, "out", out, "x", x);
  if (x.numel() == 0) return;

  const bool vec4 = texel_aligned(x, 4) && texel_aligned(out, 4) && (!weight || texel_aligned(*weight, 4)) &&
                    (!bias || texel_aligned(*bias, 4));
  const int lanes = vec4 ? 4 : 1;
  LayerNormPush p{};
  int64_t n[3];
  outer_dims(op, x, lanes, n, p.x_s);
  outer_dims(op, out, 1, n, p.o_s);
  p.rows = i32(op, n[0] * n[1] * n[2]);
  p.C = i32(op, C);
  p.n1 = i32(op, n[1]);
  p.n2 = i32(op, n[2]);
  p.x_off = i32(op, x.offset / lanes);
  p.o_off = i32(op, out.offset);
  p.w_off = weight ? i32(op, weight->offset / lanes) : 0;
  p.b_off = bias ? i32(op, bias->offset / lanes) : 0;
  p.eps = eps;

  gpu::Context& ctx = context_of(x);
  const RowLayout rl = row_layout(ctx, C / lanes);
  const int WG = rl.workgroup_size;
  const std::string shader = std::string(rl.subgroup_per_row ? "layer_norm_sg" : "layer_norm") + (vec4 ? "_vec4" : "");
  const gpu::Kernel& k = ctx.kernel({shader,
                                     {gpu::Access::texel, gpu::Access::texel, gpu::Access::texel, gpu::Access::storage},
                                     sizeof(LayerNormPush), {WG, weight ? 1 : 0, bias ? 1 : 0, 0}});
  const gpu::Bind binds[] = {gpu::Bind::texel(x, lanes), gpu::Bind::texel(weight ? *weight : x, lanes),
                             gpu::Bind::texel(bias ? *bias : x, lanes), gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, gpu::groups_for(ctx, static_cast<uint64_t>(p.rows), rl.rows_per_group), op);
}

void group_norm(gpu::Stream& s, const TensorView& x, int groups, std::optional<TensorView> weight,
                std::optional<TensorView> bias, float eps, const TensorView& out, bool silu) {
  const char* op = "group_norm";
  expect_dtype(op, "x", x, {DType::f32});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "x", x, 2, 4);
  expect_same_shape(op, "out", out, "x", x);
  const int64_t B = x.shape[0], C = x.shape[1];
  if (groups <= 0 || C % groups != 0)
    fail(op, "x " + x.str() + " has " + std::to_string(C) + " channels, not divisible into " + std::to_string(groups) +
                 " groups");
  // Each channel plane (the spatial dimensions) must be one contiguous run.
  auto plane = [&](const TensorView& t, const char* name) {
    int64_t expect = 1;
    for (int i = t.rank - 1; i >= 2; --i) {
      if (t.shape[i] > 1 && t.strides[i] != expect)
        fail(op, std::string(name) + " " + t.str() + " needs contiguous channel planes; copy it first");
      expect *= t.shape[i];
    }
    return expect;
  };
  const int64_t HW = plane(x, "x");
  plane(out, "out");
  expect_vector(op, "weight", weight, C);
  expect_vector(op, "bias", bias, C);
  expect_no_partial_overlap(op, "out", out, "x", x);
  if (x.numel() == 0) return;

  auto stride = [](const TensorView& t, int d, int lanes) { return t.shape[d] > 1 ? t.strides[d] / lanes : 0; };
  const bool vec4 = HW % 4 == 0 && x.offset % 4 == 0 && stride(x, 0, 1) % 4 == 0 && stride(x, 1, 1) % 4 == 0 &&
                    out.offset % 4 == 0 && stride(out, 0, 1) % 4 == 0 && stride(out, 1, 1) % 4 == 0;
  const int lanes = vec4 ? 4 : 1;
  GroupNormPush p{};
  p.G = groups;
  p.Cg = i32(op, C / groups);
  p.HW = i32(op, HW);
  p.x_off = i32(op, x.offset / lanes);
  p.x_sb = i32(op, stride(x, 0, lanes));
  p.x_sc = i32(op, stride(x, 1, lanes));
  p.o_off = i32(op, out.offset);
  p.o_sb = i32(op, stride(out, 0, 1));
  p.o_sc = i32(op, stride(out, 1, 1));
  p.w_off = weight ? i32(op, weight->offset) : 0;
  p.b_off = bias ? i32(op, bias->offset) : 0;
  p.eps = eps;

  gpu::Context& ctx = context_of(x);
  // One workgroup per (batch, group); the statistics are reduced in shared memory once per group.
  const int WG = 128;
  const gpu::Kernel& k = ctx.kernel({vec4 ? "group_norm_vec4" : "group_norm",
                                     {gpu::Access::texel, gpu::Access::texel, gpu::Access::texel, gpu::Access::storage},
                                     sizeof(GroupNormPush), {WG, weight ? 1 : 0, bias ? 1 : 0, silu ? 1 : 0}});
  const gpu::Bind binds[] = {gpu::Bind::texel(x, lanes), gpu::Bind::texel(weight ? *weight : x, 1),
                             gpu::Bind::texel(bias ? *bias : x, 1), gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, gpu::groups_for(ctx, static_cast<uint64_t>(B * groups), 1), op);
}

}  // namespace tessera::ops
