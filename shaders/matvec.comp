#version 450
// y[r, n] = act(sum_k x[r, k] * W[n, k] (+ bias[n])), added to y when ACCUMULATE, for a few rows r: token-by-token decoding, where the
// weights are the traffic. Each invocation keeps ROWS rows of x against TN weight rows, so every weight
// fetch serves ROWS outputs (the unconditional and conditional rows of super-conditioning, a batch).
// SPLIT lanes share one output row and reduce with subgroup arithmetic (GPUs: coalesced weight reads);
// SPLIT == 1 gives each lane TN whole rows (CPU devices such as lavapipe, where lanes are SIMD slots).
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "common.glsl"
#include "activation.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TN = 4;     // rows per lane group
layout(constant_id = 2) const int SPLIT = 1;  // lanes per row (1 or the subgroup size)
layout(constant_id = 3) const int ROWS = 1;   // rows of x per invocation
layout(constant_id = 4) const int ACT = 0;    // epilogue activation, numbered as in activation.glsl
layout(constant_id = 5) const bool ACCUMULATE = false;  // Y += result (a residual) instead of Y = result

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer W;
layout(binding = 2) uniform samplerBuffer Bias;
layout(binding = 3) buffer Out { float Y[]; };

layout(push_constant) uniform Push {
  int N, K4;                 // K in vec4s
  int x_offset, x_batch;     // in vec4s; x_batch is the pitch between rows
  int rows;
  int w_offset, w_row;       // in vec4s
  int y_offset, y_batch;     // in floats
  int bias_offset, has_bias;
} p;

void main() {
  const int r0 = int(gl_WorkGroupID.z) * ROWS;
  const int group = int(gl_LocalInvocationID.x) / SPLIT;
  const int lane = int(gl_LocalInvocationID.x) % SPLIT;
  const int groups_per_wg = int(gl_WorkGroupSize.x) / SPLIT;
  const int n0 = (int(flat_group()) * groups_per_wg + group) * TN;

  int x_base[ROWS];
  [[unroll]] for (int r = 0; r < ROWS; ++r) x_base[r] = p.x_offset + min(r0 + r, p.rows - 1) * p.x_batch;
  int w_base[TN];
  [[unroll]] for (int j = 0; j < TN; ++j) w_base[j] = p.w_offset + min(n0 + j, p.N - 1) * p.w_row;
  float acc[ROWS][TN];
  [[unroll]] for (int r = 0; r < ROWS; ++r)
    [[unroll]] for (int j = 0; j < TN; ++j) acc[r][j] = 0.0;
  for (int k = lane; k < p.K4; k += SPLIT) {
    vec4 x[ROWS];
    [[unroll]] for (int r = 0; r < ROWS; ++r) x[r] = texelFetch(X, x_base[r] + k);
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const vec4 w = texelFetch(W, w_base[j] + k);
      [[unroll]] for (int r = 0; r < ROWS; ++r) acc[r][j] += dot(x[r], w);
    }
  }
  if (SPLIT > 1) {
    [[unroll]] for (int r = 0; r < ROWS; ++r)
      [[unroll]] for (int j = 0; j < TN; ++j) acc[r][j] = subgroupAdd(acc[r][j]);
  }
  if (lane == 0) {
    [[unroll]] for (int r = 0; r < ROWS; ++r) {
      if (r0 + r >= p.rows) break;
      [[unroll]] for (int j = 0; j < TN; ++j) {
        const int n = n0 + j;
        if (n < p.N) {
          const float b = p.has_bias != 0 ? texelFetch(Bias, p.bias_offset + n).x : 0.0;
          const int y = p.y_offset + (r0 + r) * p.y_batch + n;
          const float v = activate(ACT, vec4(acc[r][j] + b)).x;
          Y[y] = ACCUMULATE ? Y[y] + v : v;
        }
      }
    }
  }
}
