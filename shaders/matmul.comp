#version 450
// C[b, m, n] = act(sum_k A[b, m, k] * W[b?, ., .] (+ bias[n])), added to C when ACCUMULATE (a residual).
//   W_NK: W stored [N, K] (PyTorch Linear);  W_KN: W stored [K, N] (GPT-2 Conv1D).
//   VEC4: inner dimension fetched four floats at a time (needs aligned offsets and strides).
// Every invocation keeps a TM x TN block of C in registers and reads A and W through texel buffers,
// which on lavapipe are ~30x cheaper than storage-buffer loads and on GPUs go through the texture cache.
// f16 weights come through an R16/RGBA16F view: the fetch widens them, accumulation stays fp32.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "activation.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int TM = 4;  // rows of C per invocation
layout(constant_id = 2) const int TN = 4;  // columns (vec4 columns for W_KN VEC4) per invocation
layout(constant_id = 3) const int ACT = 0;  // epilogue activation, numbered as in activation.glsl
layout(constant_id = 4) const bool ACCUMULATE = false;  // C += result instead of C = result

layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer W;
layout(binding = 2) uniform samplerBuffer Bias;
layout(binding = 3) buffer Out { float C[]; };

// Each element is read (ACCUMULATE) and written by the one invocation that computes it.
void store(int c, float v) {
  v = activate(ACT, vec4(v)).x;
  C[c] = ACCUMULATE ? C[c] + v : v;
}

layout(push_constant) uniform Push {
  int M, N, K;
  int a_offset, a_row, a_batch;   // in texels of the view A is read through
  int w_offset, w_row, w_batch;   // w_batch 0: one W shared by the batch
  int c_offset, c_row, c_batch;   // in floats
  int bias_offset, has_bias;
} p;

void main() {
  const int batch = int(gl_WorkGroupID.z);
  const int inv = int(gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * int(gl_WorkGroupSize.x) +
                  int(gl_LocalInvocationID.x);
#if defined(W_KN) && defined(VEC4)
  const int NB = (p.N / 4 + TN - 1) / TN;  // blocks of TN vec4 columns
#else
  const int NB = (p.N + TN - 1) / TN;
#endif
  const int MB = (p.M + TM - 1) / TM;
  if (inv >= NB * MB) return;
  const int m0 = (inv / NB) * TM;
  const int n0 = (inv % NB) * TN;

  // Rows and columns past the edge read the last valid one and are not stored: no branch in the loop.
  int a_base[TM];
  [[unroll]] for (int i = 0; i < TM; ++i) a_base[i] = p.a_offset + batch * p.a_batch + min(m0 + i, p.M - 1) * p.a_row;
  const int w_off = p.w_offset + batch * p.w_batch;

#if defined(W_NK)
  int w_base[TN];
#ifdef PACKED
  // W packed as [N/TN][K/4][TN] texels: a lane's TN rows at one k are adjacent, one stream per lane.
  [[unroll]] for (int j = 0; j < TN; ++j) w_base[j] = w_off + (n0 / TN) * (p.K / 4) * TN + j;
#else
  [[unroll]] for (int j = 0; j < TN; ++j) w_base[j] = w_off + min(n0 + j, p.N - 1) * p.w_row;
#endif
  float acc[TM][TN];
  [[unroll]] for (int i = 0; i < TM; ++i) [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = 0.0;
#if defined(VEC4)
  const int KS = p.K / 4;
  for (int k = 0; k < KS; ++k) {
    vec4 a[TM];
    [[unroll]] for (int i = 0; i < TM; ++i) a[i] = texelFetch(A, a_base[i] + k);
    [[unroll]] for (int j = 0; j < TN; ++j) {
#ifdef PACKED
      const vec4 w = texelFetch(W, w_base[j] + k * TN);
#else
      const vec4 w = texelFetch(W, w_base[j] + k);
#endif
      [[unroll]] for (int i = 0; i < TM; ++i) acc[i][j] += dot(a[i], w);
    }
  }
#else
  for (int k = 0; k < p.K; ++k) {
    float a[TM];
    [[unroll]] for (int i = 0; i < TM; ++i) a[i] = texelFetch(A, a_base[i] + k).x;
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const float w = texelFetch(W, w_base[j] + k).x;
      [[unroll]] for (int i = 0; i < TM; ++i) acc[i][j] += a[i] * w;
    }
  }
#endif
  [[unroll]] for (int i = 0; i < TM; ++i) {
    const int m = m0 + i;
    if (m >= p.M) break;
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const int n = n0 + j;
      if (n >= p.N) break;
      const float b = p.has_bias != 0 ? texelFetch(Bias, p.bias_offset + n).x : 0.0;
      store(p.c_offset + batch * p.c_batch + m * p.c_row + n, acc[i][j] + b);
    }
  }

#elif defined(W_KN) && defined(VEC4)
  // W[k, n..n+3] is one texel; n0 counts vec4 columns.
  int w_col[TN];
  [[unroll]] for (int j = 0; j < TN; ++j) w_col[j] = w_off + min(n0 + j, p.N / 4 - 1);
  vec4 acc[TM][TN];
  [[unroll]] for (int i = 0; i < TM; ++i) [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = vec4(0.0);
  // A is read through a scalar view here (offsets in floats), four k at a time.
  const int KS = p.K / 4;
  for (int k4 = 0; k4 < KS; ++k4) {
    vec4 a[TM];
    [[unroll]] for (int i = 0; i < TM; ++i)
      a[i] = vec4(texelFetch(A, a_base[i] + 4 * k4).x, texelFetch(A, a_base[i] + 4 * k4 + 1).x,
                  texelFetch(A, a_base[i] + 4 * k4 + 2).x, texelFetch(A, a_base[i] + 4 * k4 + 3).x);
    [[unroll]] for (int kk = 0; kk < 4; ++kk) {
      const int row = (4 * k4 + kk) * p.w_row;
      [[unroll]] for (int j = 0; j < TN; ++j) {
        const vec4 w = texelFetch(W, w_col[j] + row);
        [[unroll]] for (int i = 0; i < TM; ++i) acc[i][j] += a[i][kk] * w;
      }
    }
  }
  for (int k = KS * 4; k < p.K; ++k) {
    const int row = k * p.w_row;
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const vec4 w = texelFetch(W, w_col[j] + row);
      [[unroll]] for (int i = 0; i < TM; ++i) acc[i][j] += texelFetch(A, a_base[i] + k).x * w;
    }
  }
  [[unroll]] for (int i = 0; i < TM; ++i) {
    const int m = m0 + i;
    if (m >= p.M) break;
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const int n = (n0 + j) * 4;
      if (n >= p.N) break;
      vec4 v = acc[i][j];
      if (p.has_bias != 0)
        v += vec4(texelFetch(Bias, p.bias_offset + n).x, texelFetch(Bias, p.bias_offset + n + 1).x,
                  texelFetch(Bias, p.bias_offset + n + 2).x, texelFetch(Bias, p.bias_offset + n + 3).x);
      const int c = p.c_offset + batch * p.c_batch + m * p.c_row + n;
      v = activate(ACT, v);
      if (ACCUMULATE) v += vec4(C[c], C[c + 1], C[c + 2], C[c + 3]);
      C[c] = v.x;
      C[c + 1] = v.y;
      C[c + 2] = v.z;
      C[c + 3] = v.w;
    }
  }

#else  // W_KN scalar
  int w_col[TN];
  [[unroll]] for (int j = 0; j < TN; ++j) w_col[j] = w_off + min(n0 + j, p.N - 1);
  float acc[TM][TN];
  [[unroll]] for (int i = 0; i < TM; ++i) [[unroll]] for (int j = 0; j < TN; ++j) acc[i][j] = 0.0;
  for (int k = 0; k < p.K; ++k) {
    float a[TM];
    [[unroll]] for (int i = 0; i < TM; ++i) a[i] = texelFetch(A, a_base[i] + k).x;
    const int row = k * p.w_row;
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const float w = texelFetch(W, w_col[j] + row).x;
      [[unroll]] for (int i = 0; i < TM; ++i) acc[i][j] += a[i] * w;
    }
  }
  [[unroll]] for (int i = 0; i < TM; ++i) {
    const int m = m0 + i;
    if (m >= p.M) break;
    [[unroll]] for (int j = 0; j < TN; ++j) {
      const int n = n0 + j;
      if (n >= p.N) break;
      const float b = p.has_bias != 0 ? texelFetch(Bias, p.bias_offset + n).x : 0.0;
      store(p.c_offset + batch * p.c_batch + m * p.c_row + n, acc[i][j] + b);
    }
  }
#endif
}
