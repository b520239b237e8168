#version 450
// Direct convolution as an implicit GEMM, NCHW activations, PyTorch [Cout, Cin, KH, KW] weights:
//   out[b, co, oy, ox] = bias[co] + sum_{ci, ky, kx} w[co, ci, ky, kx] * x[b, ci, oy*SY - pad_top + ky, ox*SX - pad_left + kx]
// (zero outside the image). conv1d runs through the same kernel with H = KH = 1.
//   VEC4: Cin % 4 == 0, weights fetched four at a time; the KH*KW*4 weights of four input channels are
//         KH*KW consecutive texels, so the split between texels is known at compile time.
// Each invocation keeps TC output channels x TP consecutive output pixels of one row in registers. The
// input window of those pixels (KH rows x NCOL columns) is fetched once per input channel and reused by
// every output channel and every kernel tap. Offsets of the window are clamped into the image and the
// fetched value multiplied by a 0/1 mask, so the inner loop has no branches.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TC = 8;  // output channels per invocation
layout(constant_id = 2) const int TP = 4;  // output pixels (along a row) per invocation
layout(constant_id = 3) const int KH = 3;
layout(constant_id = 4) const int KW = 3;
layout(constant_id = 5) const int SY = 1;
layout(constant_id = 6) const int SX = 1;
layout(constant_id = 7) const int PH = 0;  // XVEC4: (-pad_left) mod 4, where a window starts in its texel

const int KK = KH * KW;
const int NCOL = (TP - 1) * SX + KW;  // input columns the TP outputs of a row touch
// XVEC4 (stride 1, W and every x offset and pitch multiples of 4, TP a multiple of 4): the window of a row
// is NT whole texels, column c being lane (PH + c) % 4 of texel (PH + c) / 4. Image edges fall on texel
// edges, so clamping texel indices and the per-column masks still give zero padding.
const int NT = (PH + NCOL + 3) / 4;
#if defined(VEC4)
const int CG = 4;  // input channels per weight group
#else
const int CG = 1;
#endif

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer Wt;
layout(binding = 2) uniform samplerBuffer Bias;
layout(binding = 3) writeonly buffer Out { float O[]; };

layout(push_constant) uniform Push {
  int Cin, H, W, Cout, Ho, Wo;
  int pad_top, pad_left;
  int x_offset, x_sb, x_sc, x_sh;  // floats
  int w_offset, w_co;              // texels of the weight view: start, per output channel
  int o_offset, o_sb, o_sc, o_sh;  // floats
  int bias_offset, has_bias;
} p;

void main() {
  const int batch = int(gl_WorkGroupID.z);
  const int inv = int(flat_group()) * int(gl_WorkGroupSize.x) + int(gl_LocalInvocationID.x);
  const int PB = (p.Wo + TP - 1) / TP;
  const int npix = p.Ho * PB;
  const int CB = (p.Cout + TC - 1) / TC;
  if (inv >= npix * CB) return;
  // Pixel blocks vary fastest: neighbouring invocations share their output channels, hence their weights.
  const int co0 = (inv / npix) * TC;
  const int rem = inv % npix;
  const int oy = rem / PB;
  const int ox0 = (rem % PB) * TP;

  float mask[KH][NCOL];
#if defined(XVEC4)
  int off[KH][NT];  // texels; x_offset and the pitches are in texels too
  const int tb = (ox0 - p.pad_left - PH) / 4;
#else
  int off[KH][NCOL];
#endif
  [[unroll]] for (int ky = 0; ky < KH; ++ky) {
    const int iy = oy * SY - p.pad_top + ky;
    const bool row_in = iy >= 0 && iy < p.H;
    const int roff = clamp(iy, 0, p.H - 1) * p.x_sh;
    [[unroll]] for (int c = 0; c < NCOL; ++c) {
      const int ix = ox0 * SX - p.pad_left + c;
#if !defined(XVEC4)
      off[ky][c] = roff + clamp(ix, 0, p.W - 1);
#endif
      mask[ky][c] = (row_in && ix >= 0 && ix < p.W) ? 1.0 : 0.0;
    }
#if defined(XVEC4)
    [[unroll]] for (int q = 0; q < NT; ++q) off[ky][q] = roff + clamp(tb + q, 0, p.W / 4 - 1);
#endif
  }

  // Channels past Cout read the last valid channel's weights and are not stored.
  int wbase[TC];
  [[unroll]] for (int j = 0; j < TC; ++j) wbase[j] = p.w_offset + min(co0 + j, p.Cout - 1) * p.w_co;

  float acc[TC][TP];
  [[unroll]] for (int j = 0; j < TC; ++j) [[unroll]] for (int t = 0; t < TP; ++t) acc[j][t] = 0.0;

  const int xb = p.x_offset + batch * p.x_sb;
  const int groups = p.Cin / CG;
  for (int g = 0; g < groups; ++g) {
    float xv[CG][KH][NCOL];
    [[unroll]] for (int cc = 0; cc < CG; ++cc) {
      const int base = xb + (g * CG + cc) * p.x_sc;
#if defined(XVEC4)
      [[unroll]] for (int ky = 0; ky < KH; ++ky)
        [[unroll]] for (int q = 0; q < NT; ++q) {
          const vec4 v = texelFetch(X, base + off[ky][q]);
          [[unroll]] for (int e = 0; e < 4; ++e) {
            const int c = 4 * q + e - PH;
            if (c >= 0 && c < NCOL) xv[cc][ky][c] = v[e] * mask[ky][c];
          }
        }
#else
      [[unroll]] for (int ky = 0; ky < KH; ++ky)
        [[unroll]] for (int c = 0; c < NCOL; ++c) xv[cc][ky][c] = texelFetch(X, base + off[ky][c]).x * mask[ky][c];
#endif
    }
    [[unroll]] for (int j = 0; j < TC; ++j) {
      float wv[CG * KK];
#if defined(VEC4)
      [[unroll]] for (int q = 0; q < KK; ++q) {
        const vec4 w4 = texelFetch(Wt, wbase[j] + g * KK + q);
        wv[4 * q] = w4.x;
        wv[4 * q + 1] = w4.y;
        wv[4 * q + 2] = w4.z;
        wv[4 * q + 3] = w4.w;
      }
#else
      [[unroll]] for (int q = 0; q < KK; ++q) wv[q] = texelFetch(Wt, wbase[j] + g * KK + q).x;
#endif
      [[unroll]] for (int cc = 0; cc < CG; ++cc)
        [[unroll]] for (int ky = 0; ky < KH; ++ky)
          [[unroll]] for (int kx = 0; kx < KW; ++kx) {
            const float w = wv[cc * KK + ky * KW + kx];
            [[unroll]] for (int t = 0; t < TP; ++t) acc[j][t] += w * xv[cc][ky][t * SX + kx];
          }
    }
  }

  const int ob = p.o_offset + batch * p.o_sb + oy * p.o_sh;
  [[unroll]] for (int j = 0; j < TC; ++j) {
    const int co = co0 + j;
    if (co >= p.Cout) break;
    const float b = p.has_bias != 0 ? texelFetch(Bias, p.bias_offset + co).x : 0.0;
    [[unroll]] for (int t = 0; t < TP; ++t) {
      const int ox = ox0 + t;
      if (ox >= p.Wo) break;
      O[ob + co * p.o_sc + ox] = acc[j][t] + b;
    }
  }
}
