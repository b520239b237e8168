#include "ops/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace tessera::ops {
namespace {

struct SamplePush {
  int32_t V;
  int32_t cond_offset, cond_row;
  int32_t uncond_offset, uncond_row;
  int32_t has_cfg;
  float cfg;
  float inv_temp;
  int32_t top_k;
  float top_p;
  uint32_t seed, step;
  int32_t ids_offset;
  int32_t vec4_ok;
  int32_t seed_per_row;
};

std::string num(float v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

void sample(gpu::Stream& s, const TensorView& logits, const SampleParams& params, const TensorView& out_ids) {
  const char* op = "sample";
  expect_dtype(op, "logits", logits, {DType::f32, DType::f16});
  expect_dtype(op, "out_ids", out_ids, {DType::i32});
  expect_rank(op, "logits", logits, 1, 2);
  expect_rank(op, "out_ids", out_ids, 1, 1);
  expect_rows_contiguous(op, "logits", logits);
  expect_contiguous(op, "out_ids", out_ids);
  const int64_t R = logits.rank == 2 ? logits.shape[0] : 1;
  const int64_t V = logits.dim(-1);
  if (out_ids.shape[0] != R)
    fail(op, "out_ids " + out_ids.str() + " must be [" + std::to_string(R) + "] for logits " + logits.str());
  if (V == 0) fail(op, "logits " + logits.str() + " has an empty vocabulary");
  if (params.uncond) {
    expect_dtype(op, "uncond", *params.uncond, {DType::f32, DType::f16});
    expect_same_shape(op, "uncond", *params.uncond, "logits", logits);
    expect_rows_contiguous(op, "uncond", *params.uncond);
    if (!std::isfinite(params.guidance)) fail(op, "guidance " + num(params.guidance) + " must be finite");
  }
  if (!(params.temperature >= 0.0f) || std::isinf(params.temperature))
    fail(op, "temperature " + num(params.temperature) + " must be finite and >= 0 (0 = greedy)");
  if (params.top_k < 0) fail(op, "top_k " + std::to_string(params.top_k) + " must be >= 0 (0 = off)");
  if (params.top_k > V)
    fail(op, "top_k " + std::to_string(params.top_k) + " exceeds the vocabulary of logits " + logits.str());
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f))
    fail(op, "top_p " + num(params.top_p) + " must be in (0, 1] (1 = off)");
  if (R == 0) return;

  gpu::Context& ctx = context_of(logits);
  const gpu::DeviceFeatures& f = ctx.features();
  if (R > f.max_workgroup_count[0])
    fail(op, "logits " + logits.str() + " has more rows than the " + std::to_string(f.max_workgroup_count[0]) +
                 " workgroups one dispatch can hold");
  constexpr VkSubgroupFeatureFlags needed = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
  if (!f.subgroup_in_compute || (f.subgroup_ops & needed) != needed)
    fail(op, "the device lacks subgroup arithmetic in compute shaders");
  // The shader's shared arrays hold 128 subgroups: any subgroup size works with 128 invocations.
  const int WG = static_cast<int>(std::min<uint32_t>(128, f.max_workgroup_size[0]));
  const gpu::Kernel& k = ctx.kernel({"sampling",
                                     {gpu::Access::texel, gpu::Access::texel, gpu::Access::texel, gpu::Access::texel,
                                      gpu::Access::storage},
                                     sizeof(SamplePush),
                                     {WG}});

  const TensorView& cond = logits;
  const TensorView& uncond = params.uncond ? *params.uncond : logits;
  SamplePush p{};
  p.V = i32(op, V);
  p.cond_offset = i32(op, cond.offset);
  p.cond_row = cond.rank == 2 ? i32(op, cond.strides[0]) : 0;
  p.uncond_offset = i32(op, uncond.offset);
  p.uncond_row = uncond.rank == 2 ? i32(op, uncond.strides[0]) : 0;
  p.has_cfg = params.uncond ? 1 : 0;
  p.cfg = params.guidance;
  // A temperature so small that 1/T overflows behaves as T -> 0+: the max wins unless tied.
  p.inv_temp = params.temperature == 0.0f ? 0.0f : std::min(1.0f / params.temperature, 1e30f);
  p.top_k = params.top_k == V ? 0 : params.top_k;
  p.top_p = params.top_p;
  p.seed = params.seed;
  p.step = params.step;
  p.ids_offset = i32(op, out_ids.offset);
  // Four-wide fetches need whole texels in both buffers and, with guidance, the same alignment of a
  // cond row and its uncond row (so one texel index serves both).
  const uint64_t es = gpu::dtype_size(cond.dtype);
  const bool wide = cond.buffer->size() >= 4 * es && uncond.buffer->size() >= 4 * es;
  const bool same_phase = !params.uncond || ((uncond.offset - cond.offset) % 4 == 0 &&
                                             (static_cast<int64_t>(p.uncond_row) - p.cond_row) % 4 == 0);
  p.vec4_ok = wide && same_phase ? 1 : 0;
  p.seed_per_row = params.seed_per_row ? 1 : 0;
  const int lanes = p.vec4_ok ? 4 : 1;
  const gpu::Bind binds[] = {gpu::Bind::texel(cond, 1), gpu::Bind::texel(uncond, 1), gpu::Bind::texel(cond, lanes),
                             gpu::Bind::texel(uncond, lanes), gpu::Bind::storage_write(out_ids)};
  s.dispatch(k, binds, &p, sizeof p, {static_cast<uint32_t>(i32(op, R)), 1, 1}, op);
}

}  // namespace tessera::ops
