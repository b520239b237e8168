#version 450
// LAYER_NORM: y = (x - mean) / sqrt(var + eps) * w + b over the last dimension; one subgroup per row
//   with SUBGROUP, else one invocation per row (texel fetches re-read the row from cache; no shared
//   memory, no barriers either way).
// GROUP_NORM: the same over each (batch, group) of an NCHW tensor with per-channel w and b, optionally
//   followed by SiLU; one workgroup per (batch, group), the statistics reduced in shared memory once.
// Both are two-pass (mean, then the mean of squared deviations), never E[x^2] - E[x]^2.
// VEC4: rows (LAYER_NORM) or channel planes (GROUP_NORM) fetched as RGBA texels; offsets and strides are
// then in texels and w, b are read four at a time as well.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#ifdef SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool HAS_W = false;
layout(constant_id = 2) const bool HAS_B = false;
layout(constant_id = 3) const bool SILU = false;

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer W;
layout(binding = 2) uniform samplerBuffer Bs;
layout(binding = 3) writeonly buffer Out { float O[]; };
layout(binding = 3) writeonly buffer Out4 { vec4 O4[]; };  // the same buffer, for VEC4 stores

#ifdef VEC4
#define V vec4
#define LANES 4
#define FETCH(t, i) texelFetch(t, i)
#define HSUM(v) (((v).x + (v).y) + ((v).z + (v).w))
#else
#define V float
#define LANES 1
#define FETCH(t, i) texelFetch(t, i).x
#define HSUM(v) (v)
#endif

V finish(V y) { return SILU ? y / (1.0 + exp(-y)) : y; }

void store(int o, V y) {
#ifdef VEC4
  O4[o >> 2] = y;  // VEC4 needs out's offset and strides to be multiples of 4 as well
#else
  O[o] = y;
#endif
}

#ifdef LAYER_NORM
layout(push_constant) uniform Push {
  int rows, C, n1, n2;             // rows = n0 * n1 * n2 outer positions; C elements per row
  int x_off, x_s0, x_s1, x_s2;     // texels
  int o_off, o_s0, o_s1, o_s2;     // floats
  int w_off, b_off;                // texels
  float eps;
} p;

#ifdef SUBGROUP
// One row per subgroup, its lanes side by side along the row (contiguous fetches); sums by subgroupAdd,
// which needs neither shared memory nor barriers.
float row_sum(float v) { return subgroupAdd(v); }
#define ROW_ID (int(flat_group() * gl_NumSubgroups + gl_SubgroupID))
#define LANE int(gl_SubgroupInvocationID)
#define STEP int(gl_SubgroupSize)
#else
// One row per invocation.
float row_sum(float v) { return v; }
#define ROW_ID int(flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x)
#define LANE 0
#define STEP 1
#endif

void main() {
  const int row = ROW_ID;
  if (row >= p.rows) return;
  const int i2 = row % p.n2, i1 = (row / p.n2) % p.n1, i0 = row / (p.n1 * p.n2);
  const int x = p.x_off + i0 * p.x_s0 + i1 * p.x_s1 + i2 * p.x_s2;
  const int o = p.o_off + i0 * p.o_s0 + i1 * p.o_s1 + i2 * p.o_s2;
  const int n = p.C / LANES;

  V acc = V(0.0);
  for (int k = LANE; k < n; k += STEP) acc += FETCH(X, x + k);
  const float mean = row_sum(HSUM(acc)) / float(p.C);
  acc = V(0.0);
  for (int k = LANE; k < n; k += STEP) {
    const V d = FETCH(X, x + k) - mean;
    acc += d * d;
  }
  const float rstd = inversesqrt(row_sum(HSUM(acc)) / float(p.C) + p.eps);
  for (int k = LANE; k < n; k += STEP) {
    V y = (FETCH(X, x + k) - mean) * rstd;
    if (HAS_W) y *= FETCH(W, p.w_off + k);
    if (HAS_B) y += FETCH(Bs, p.b_off + k);
    store(o + k * LANES, finish(y));
  }
}
#endif

#ifdef GROUP_NORM
layout(push_constant) uniform Push {
  int G, Cg, HW;                    // groups, channels per group, elements per channel plane
  int x_off, x_sb, x_sc;            // texels
  int o_off, o_sb, o_sc;            // floats
  int w_off, b_off;                 // floats (w and b are read one per channel)
  float eps;
} p;

shared float red[gl_WorkGroupSize.x];

// Sum over the workgroup; gl_WorkGroupSize.x is a power of two.
float reduce(float v) {
  const uint lid = gl_LocalInvocationID.x;
  red[lid] = v;
  barrier();
  for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
    if (lid < s) red[lid] += red[lid + s];
    barrier();
  }
  const float r = red[0];
  barrier();  // red is reused by the next reduction
  return r;
}

void main() {
  const int bg = int(flat_group());
  const int b = bg / p.G, g = bg % p.G;
  const int lid = int(gl_LocalInvocationID.x), wg = int(gl_WorkGroupSize.x);
  const int n = p.HW / LANES;
  const int c0 = g * p.Cg;
  const int x = p.x_off + b * p.x_sb + c0 * p.x_sc;
  const int o = p.o_off + b * p.o_sb + c0 * p.o_sc;
  const float count = float(p.Cg) * float(p.HW);

  V acc = V(0.0);
  for (int c = 0; c < p.Cg; ++c)
    for (int k = lid; k < n; k += wg) acc += FETCH(X, x + c * p.x_sc + k);
  const float mean = reduce(HSUM(acc)) / count;
  acc = V(0.0);
  for (int c = 0; c < p.Cg; ++c)
    for (int k = lid; k < n; k += wg) {
      const V d = FETCH(X, x + c * p.x_sc + k) - mean;
      acc += d * d;
    }
  const float rstd = inversesqrt(reduce(HSUM(acc)) / count + p.eps);
  for (int c = 0; c < p.Cg; ++c) {
    // (x - mean) * scale + bias, not x * scale + (bias - mean * scale): the latter cancels badly when
    // the variance is tiny and rstd large.
    const float scale = rstd * (HAS_W ? texelFetch(W, p.w_off + c0 + c).x : 1.0);
    const float shift = HAS_B ? texelFetch(Bs, p.b_off + c0 + c).x : 0.0;
    for (int k = lid; k < n; k += wg)
      store(o + c * p.o_sc + k * LANES, finish((FETCH(X, x + c * p.x_sc + k) - mean) * scale + shift));
  }
}
#endif
