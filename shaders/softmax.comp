#version 450
// out = softmax(scale * x) over the last dimension, max-subtracted. Three passes of texel fetches (max,
// sum of exponentials, normalized store) by one subgroup per row (SUBGROUP: lanes side by side along the
// row, subgroupMax/subgroupAdd) or one invocation per row: no shared memory or barriers either way.
// A row that is entirely -inf (fully masked) gives zeros rather than NaN.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#define ROW_ID (int(flat_group() * gl_NumSubgroups + gl_SubgroupID))
#define LANE int(gl_SubgroupInvocationID)
#define STEP int(gl_SubgroupSize)
#define ROW_MAX(v) subgroupMax(v)
#define ROW_SUM(v) subgroupAdd(v)
#else
#define ROW_ID int(flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x)
#define LANE 0
#define STEP 1
#define ROW_MAX(v) (v)
#define ROW_SUM(v) (v)
#endif

layout(local_size_x_id = 0) in;

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) writeonly buffer Out { float O[]; };
layout(binding = 1) writeonly buffer Out4 { vec4 O4[]; };  // the same buffer, for VEC4 stores

layout(push_constant) uniform Push {
  int rows, N, n1, n2;
  int x_off, x_s0, x_s1, x_s2;  // texels
  int o_off, o_s0, o_s1, o_s2;  // floats
  float scale;
} p;

#ifdef VEC4
#define V vec4
#define LANES 4
#define FETCH(i) texelFetch(X, i)
#define HSUM(v) (((v).x + (v).y) + ((v).z + (v).w))
#define HMAX(v) max(max((v).x, (v).y), max((v).z, (v).w))
#else
#define V float
#define LANES 1
#define FETCH(i) texelFetch(X, i).x
#define HSUM(v) (v)
#define HMAX(v) (v)
#endif

void main() {
  const int row = ROW_ID;
  if (row >= p.rows) return;
  const int i2 = row % p.n2, i1 = (row / p.n2) % p.n1, i0 = row / (p.n1 * p.n2);
  const int x = p.x_off + i0 * p.x_s0 + i1 * p.x_s1 + i2 * p.x_s2;
  const int o = p.o_off + i0 * p.o_s0 + i1 * p.o_s1 + i2 * p.o_s2;
  const int n = p.N / LANES;

  V m4 = V(-1.0 / 0.0);
  for (int k = LANE; k < n; k += STEP) m4 = max(m4, p.scale * FETCH(x + k));
  float m = ROW_MAX(HMAX(m4));
  if (isinf(m) && m < 0.0) m = 0.0;  // all -inf: exp() below gives 0 everywhere
  V acc = V(0.0);
  for (int k = LANE; k < n; k += STEP) acc += exp(p.scale * FETCH(x + k) - m);
  const float sum = ROW_SUM(HSUM(acc));
  const float inv = sum > 0.0 ? 1.0 / sum : 0.0;
  for (int k = LANE; k < n; k += STEP) {
    const V y = exp(p.scale * FETCH(x + k) - m) * inv;
#ifdef VEC4
    O4[(o >> 2) + k] = y;  // VEC4 needs out's offset and strides to be multiples of 4 as well
#else
    O[o + k] = y;
#endif
  }
}
