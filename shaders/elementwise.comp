#version 450
// out = alpha * f(a) + beta (UNARY) or out = alpha * f(a, b) (BINARY) over up to 4-D, numpy broadcasting
// expressed as stride-0 dimensions. The dispatcher merges dimensions first, so a contiguous tensor is
// one long row. Each invocation produces four consecutive elements of the last dimension; an operand
// whose last dimension is contiguous and aligned is fetched as one RGBA texel, any other (strided,
// broadcast, unaligned) with four scalar fetches. The operator is a specialization constant, so each
// pipeline holds only its own arithmetic.
// In-place use is safe when out is exactly an input view: each element is read before it is written,
// by the same invocation.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "activation.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int OP = 0;
layout(constant_id = 2) const bool A_VEC4 = false;
layout(constant_id = 3) const bool B_VEC4 = false;
layout(constant_id = 4) const bool O_VEC4 = false;  // out rows contiguous and aligned: one vec4 store
layout(constant_id = 5) const int PER = 1;           // chunks per invocation
layout(constant_id = 6) const bool CONTIGUOUS = false;  // one row, every operand VEC4

layout(binding = 0) uniform samplerBuffer A;
#ifdef BINARY
layout(binding = 1) uniform samplerBuffer B;
#define OUT_BINDING 2
#else
#define OUT_BINDING 1
#endif
// The same buffer seen as floats and as vec4s; each pipeline uses one of the two.
layout(binding = OUT_BINDING) writeonly buffer Out { float O[]; };
layout(binding = OUT_BINDING) writeonly buffer Out4 { vec4 O4[]; };

layout(push_constant) uniform Push {
  int n0, n1, n2, n3;            // dims, n3 innermost
  int a_off, a_s0, a_s1, a_s2, a_s3;  // texels of A's view (RGBA: offset and outer strides / 4)
  int b_off, b_s0, b_s1, b_s2, b_s3;
  int o_off, o_s0, o_s1, o_s2, o_s3;  // floats
  float alpha, beta;
} p;


vec4 load(bool vec4_view, int base, int s3, int j, int n3, bool is_a) {
  // j: first element of the chunk. Scalar fetches past the row end read its last element (not stored).
#ifdef BINARY
  if (!is_a) {
    if (vec4_view) return texelFetch(B, base + j / 4);
    return vec4(texelFetch(B, base + j * s3).x, texelFetch(B, base + min(j + 1, n3 - 1) * s3).x,
                texelFetch(B, base + min(j + 2, n3 - 1) * s3).x, texelFetch(B, base + min(j + 3, n3 - 1) * s3).x);
  }
#endif
  if (vec4_view) return texelFetch(A, base + j / 4);
  return vec4(texelFetch(A, base + j * s3).x, texelFetch(A, base + min(j + 1, n3 - 1) * s3).x,
              texelFetch(A, base + min(j + 2, n3 - 1) * s3).x, texelFetch(A, base + min(j + 3, n3 - 1) * s3).x);
}

vec4 apply(vec4 a, vec4 b) {
#ifdef BINARY
  vec4 v;
  if (OP == 0) v = a + b;
  else if (OP == 1) v = a - b;
  else if (OP == 2) v = a * b;
  else if (OP == 3) v = gelu_erf(a) * b;
  else if (OP == 4) v = gelu_tanh(a) * b;
  else v = silu(a) * b;
  return v * p.alpha;
#else
  return p.alpha * activate(OP, a) + p.beta;
#endif
}

void body(int inv, int chunks) {
  // Integer division is scalarized on CPU drivers: skip it for the common one-row case.
  int j = inv * 4, i0 = 0, i1 = 0, i2 = 0;
  if (p.n0 * p.n1 == 1) {
    if (p.n2 != 1) {  // two dimensions, the common broadcast (x[rows, C] + bias[C]): one division
      i2 = inv / chunks;
      j = (inv - i2 * chunks) * 4;
    }
  } else {
    j = (inv % chunks) * 4;
    int r = inv / chunks;
    i2 = r % p.n2;
    r /= p.n2;
    i1 = r % p.n1;
    i0 = r / p.n1;
  }

  const vec4 a = load(A_VEC4, p.a_off + i0 * p.a_s0 + i1 * p.a_s1 + i2 * p.a_s2, p.a_s3, j, p.n3, true);
#ifdef BINARY
  const vec4 b = load(B_VEC4, p.b_off + i0 * p.b_s0 + i1 * p.b_s1 + i2 * p.b_s2, p.b_s3, j, p.n3, false);
#else
  const vec4 b = vec4(0.0);
#endif
  const vec4 v = apply(a, b);

  const int o = p.o_off + i0 * p.o_s0 + i1 * p.o_s1 + i2 * p.o_s2;
  if (O_VEC4) {
    O4[o + j / 4] = v;  // o_off and outer strides count vec4s here
    return;
  }
  [[unroll]] for (int k = 0; k < 4; ++k)
    if (j + k < p.n3) O[o + (j + k) * p.o_s3] = v[k];
}

void main() {
  // A workgroup covers PER * local_size consecutive chunks, its invocations side by side in each step
  // (coalesced on GPUs); fewer, fuller workgroups cost less scheduling on CPU drivers.
  const int chunks = (p.n3 + 3) / 4;
  const int total = p.n0 * p.n1 * p.n2 * chunks;
  const int wg = int(gl_WorkGroupSize.x);
  const int first = int(flat_group()) * PER * wg + int(gl_LocalInvocationID.x);
  if (CONTIGUOUS) {
    // One contiguous row everywhere, all aligned: no index arithmetic at all.
    for (int u = 0; u < PER; ++u) {
      const int c = first + u * wg;
      if (c >= total) return;
#ifdef BINARY
      O4[p.o_off + c] = apply(texelFetch(A, p.a_off + c), texelFetch(B, p.b_off + c));
#else
      O4[p.o_off + c] = apply(texelFetch(A, p.a_off + c), vec4(0.0));
#endif
    }
    return;
  }
  for (int u = 0; u < PER; ++u) {
    const int inv = first + u * wg;
    if (inv >= total) return;
    body(inv, chunks);
  }
}
