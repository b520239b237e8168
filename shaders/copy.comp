#version 450
// dst[i0,i1,i2,i3] = src[i0,i1,i2,i3] for any strides of either side (transpose, permute, materializing
// a strided view, writing into a slice). FLOAT: f32 or f16 source (an f16 texel view widens it) into
// f32; INT: i32 into i32. Four elements of the last dimension per invocation; a contiguous aligned
// source row is fetched as RGBA texels.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool SRC_VEC4 = false;
layout(constant_id = 2) const bool DST_VEC4 = false;  // dst rows contiguous and aligned: one 16-byte store

#ifdef INT
layout(binding = 0) uniform isamplerBuffer S;
layout(binding = 1) writeonly buffer Out { int O[]; };
layout(binding = 1) writeonly buffer Out4 { ivec4 O4[]; };  // the same buffer
#define T4 ivec4
#else
layout(binding = 0) uniform samplerBuffer S;
layout(binding = 1) writeonly buffer Out { float O[]; };
layout(binding = 1) writeonly buffer Out4 { vec4 O4[]; };  // the same buffer
#define T4 vec4
#endif

layout(push_constant) uniform Push {
  int n0, n1, n2, n3;
  int s_off, s_s0, s_s1, s_s2, s_s3;  // texels of S's view
  int o_off, o_s0, o_s1, o_s2, o_s3;  // elements (vec4s with DST_VEC4)
} p;

void main() {
  const int chunks = (p.n3 + 3) / 4;
  const int inv = int(flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x);
  if (inv >= p.n0 * p.n1 * p.n2 * chunks) return;
  const int j = (inv % chunks) * 4;
  int r = inv / chunks;
  const int i2 = r % p.n2;
  r /= p.n2;
  const int i1 = r % p.n1;
  const int i0 = r / p.n1;

  const int s = p.s_off + i0 * p.s_s0 + i1 * p.s_s1 + i2 * p.s_s2;
  T4 v;
  if (SRC_VEC4) {
    v = texelFetch(S, s + j / 4);
  } else {
    // Past the row end: re-read its last element, never stored.
    v = T4(texelFetch(S, s + j * p.s_s3).x, texelFetch(S, s + min(j + 1, p.n3 - 1) * p.s_s3).x,
           texelFetch(S, s + min(j + 2, p.n3 - 1) * p.s_s3).x, texelFetch(S, s + min(j + 3, p.n3 - 1) * p.s_s3).x);
  }
  const int o = p.o_off + i0 * p.o_s0 + i1 * p.o_s1 + i2 * p.o_s2;
  if (DST_VEC4) {
    O4[o + j / 4] = v;  // offset and outer strides count vec4s here
    return;
  }
  [[unroll]] for (int k = 0; k < 4; ++k)
    if (j + k < p.n3) O[o + (j + k) * p.o_s3] = v[k];
}
