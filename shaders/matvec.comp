#version 450
// y[b, n] = sum_k x[b, k] * W[n, k] (+ bias[n]): the one-row case of token-by-token decoding.
// SPLIT lanes share one output row and reduce with subgroup arithmetic (GPUs: coalesced weight reads);
// SPLIT == 1 gives each lane TN whole rows (CPU devices such as lavapipe, where lanes are SIMD slots).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TN = 4;     // rows per lane group
layout(constant_id = 2) const int SPLIT = 1;  // lanes per row (1 or the subgroup size)

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer W;
layout(binding = 2) uniform samplerBuffer Bias;
layout(binding = 3) writeonly buffer Out { float Y[]; };

layout(push_constant) uniform Push {
  int N, K4;                 // K in vec4s
  int x_offset, x_batch;     // in vec4s
  int w_offset, w_row;       // in vec4s
  int y_offset, y_batch;     // in floats
  int bias_offset, has_bias;
} p;

void main() {
  const int batch = int(gl_WorkGroupID.z);
  const int group = int(gl_LocalInvocationID.x) / SPLIT;
  const int lane = int(gl_LocalInvocationID.x) % SPLIT;
  const int groups_per_wg = int(gl_WorkGroupSize.x) / SPLIT;
  const int n0 = (int(flat_group()) * groups_per_wg + group) * TN;
  const int x_base = p.x_offset + batch * p.x_batch;

  int w_base[TN];
  [[unroll]] for (int j = 0; j < TN; ++j) w_base[j] = p.w_offset + min(n0 + j, p.N - 1) * p.w_row;
  float acc[TN];
  [[unroll]] for (int j = 0; j < TN; ++j) acc[j] = 0.0;
  for (int k = lane; k < p.K4; k += SPLIT) {
    const vec4 x = texelFetch(X, x_base + k);
    [[unroll]] for (int j = 0; j < TN; ++j) acc[j] += dot(x, texelFetch(W, w_base[j] + k));
  }
  if (SPLIT > 1) {
    [[unroll]] for (int j = 0; j < TN; ++j) acc[j] = subgroupAdd(acc[j]);
  }
  if (lane == 0) {
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const int n = n0 + j;
      if (n < p.N) {
        const float b = p.has_bias != 0 ? texelFetch(Bias, p.bias_offset + n).x : 0.0;
        Y[p.y_offset + batch * p.y_batch + n] = acc[j] + b;
      }
    }
  }
}
