#version 450
// Nearest-neighbour 2x upsampling, NCHW: out[b, c, y, x] = in[b, c, y / 2, x / 2].
// Each invocation reads TP consecutive input pixels of one row and writes the 2 x 2TP block they cover.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TP = 4;

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) writeonly buffer Out { float O[]; };

layout(push_constant) uniform Push {
  int C, H, W;
  int x_offset, x_sb, x_sc, x_sh;  // floats
  int o_offset, o_sb, o_sc, o_sh;
  int rows;                         // B * C * H
} p;

void main() {
  const int inv = int(flat_group()) * int(gl_WorkGroupSize.x) + int(gl_LocalInvocationID.x);
  const int PB = (p.W + TP - 1) / TP;
  if (inv >= p.rows * PB) return;
  const int row = inv / PB;
  const int x0 = (inv % PB) * TP;
  const int y = row % p.H;
  const int c = (row / p.H) % p.C;
  const int b = row / (p.H * p.C);
  const int src = p.x_offset + b * p.x_sb + c * p.x_sc + y * p.x_sh;
  const int dst = p.o_offset + b * p.o_sb + c * p.o_sc + 2 * y * p.o_sh;
  [[unroll]] for (int t = 0; t < TP; ++t) {
    const int x = x0 + t;
    if (x >= p.W) break;
    const float v = texelFetch(X, src + x).x;
    O[dst + 2 * x] = v;
    O[dst + 2 * x + 1] = v;
    O[dst + p.o_sh + 2 * x] = v;
    O[dst + p.o_sh + 2 * x + 1] = v;
  }
}
