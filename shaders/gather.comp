#version 450
// Embedding lookup: out[t, :] = table[ids[t], :] (+ pos[pos0 + t % L, :] with HAS_POS), one invocation
// per four columns of one token. An id outside [0, V) yields a zero row (plus the position row): the
// GPU cannot raise an error, and a zero row is easy to spot and to test.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const bool VEC4 = false;  // table and pos rows read as RGBA texels
layout(constant_id = 2) const bool HAS_POS = false;

layout(binding = 0) uniform samplerBuffer Table;
layout(binding = 1) uniform isamplerBuffer Ids;
layout(binding = 2) uniform samplerBuffer Pos;
layout(binding = 3) writeonly buffer Out { float O[]; };

layout(push_constant) uniform Push {
  int T, C, V, L;            // tokens, columns, vocabulary rows, sequence length (last dim of ids)
  int t_off, t_row;          // texels
  int ids_off;
  int o_off, o_row;          // floats
  int p_off, p_row, pos0;    // texels; pos0: position of the first token of each sequence
} p;

vec4 row4(bool pos_table, int base, int j) {
  if (pos_table) {
    if (VEC4) return texelFetch(Pos, base + j / 4);
    return vec4(texelFetch(Pos, base + j).x, texelFetch(Pos, base + min(j + 1, p.C - 1)).x,
                texelFetch(Pos, base + min(j + 2, p.C - 1)).x, texelFetch(Pos, base + min(j + 3, p.C - 1)).x);
  }
  if (VEC4) return texelFetch(Table, base + j / 4);
  return vec4(texelFetch(Table, base + j).x, texelFetch(Table, base + min(j + 1, p.C - 1)).x,
              texelFetch(Table, base + min(j + 2, p.C - 1)).x, texelFetch(Table, base + min(j + 3, p.C - 1)).x);
}

void main() {
  const int chunks = (p.C + 3) / 4;
  const int inv = int(flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x);
  if (inv >= p.T * chunks) return;
  const int t = inv / chunks, j = (inv % chunks) * 4;
  const int id = texelFetch(Ids, p.ids_off + t).x;
  vec4 v = (id >= 0 && id < p.V) ? row4(false, p.t_off + id * p.t_row, j) : vec4(0.0);
  if (HAS_POS) v += row4(true, p.p_off + (p.pos0 + t % p.L) * p.p_row, j);
  const int o = p.o_off + t * p.o_row + j;
  [[unroll]] for (int k = 0; k < 4; ++k)
    if (j + k < p.C) O[o + k] = v[k];
}
