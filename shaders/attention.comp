#version 450
// Fused multi-head attention, flash style: softmax(q k^T * scale + mask) v without a score matrix.
//   default: every invocation owns QB query rows of one head and walks its keys in blocks of KB,
//            keeping the running max, the running sum and the unnormalized output in registers
//            (online softmax), then writes normalized rows of out.
//   SPLIT:   the same walk over one slice of the keys, writing a partial record per query row
//            (flash-decoding), for when batch * heads * query blocks is too small to fill the device.
//            The last split of a query block to finish merges the partial records into out.
//   VEC4:    q, k and v fetched as RGBA texels (offsets and strides multiples of 4); else 4 scalar fetches.
// Heads are column blocks of width D = 4 * D4 in rows of q, k, v and out, so projections feed it directly.
// Scores live in the log2 domain (q is pre-scaled by scale * log2(e)) so that exp2 does the softmax.
// A key that is masked out (key mask, causal, -inf additive mask) contributes nothing; a row that sees
// no key at all ends with sum 0 and is written as zeros.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const int D4 = 16;  // head dim / 4
layout(constant_id = 2) const int QB = 8;   // query rows per invocation
layout(constant_id = 3) const int KB = 4;   // keys per online-softmax step

const float kNone = -1.0e30;  // running max before any visible key: finite, so no inf - inf

layout(binding = 0) uniform samplerBuffer Q;
layout(binding = 1) uniform samplerBuffer K;
layout(binding = 2) uniform samplerBuffer V;
layout(binding = 3) uniform samplerBuffer KeyMaskF;
layout(binding = 4) uniform isamplerBuffer KeyMaskI;
layout(binding = 5) uniform samplerBuffer AddMask;
layout(binding = 6) writeonly buffer Out { float O[]; };
#if defined(SPLIT)
// Record (b, h, i, s) is D4 + 1 vec4 at ((b * H + h) * Lq + i) * splits + s: (max, sum, 0, 0), then the
// unnormalized output. One counter per (b, h, query block) counts the splits that have finished; it
// rests at zero between dispatches.
layout(binding = 7) coherent buffer Partials { vec4 P[]; };
layout(binding = 8) coherent buffer Counters { uint count[]; };
#endif

layout(push_constant) uniform Push {
  int Lq, Lk, H;
  int causal, causal_shift;  // query i sees keys j <= i + causal_shift
  float scale;               // softmax scale * log2(e)
  int q_offset, q_row, q_batch;  // in floats, whatever the fetch width
  int k_offset, k_row, k_batch;
  int v_offset, v_row, v_batch;
  int o_offset, o_row, o_batch;
  int km_kind, km_offset, km_batch;  // key mask: 0 none, 1 f32, 2 i32
  int am, am_offset, am_row, am_batch, am_head;  // additive mask
  int splits, split_len;  // keys [s * split_len, (s + 1) * split_len) per split
} p;

#if defined(VEC4)
#define LOAD(T, i) texelFetch(T, (i) >> 2)
#else
#define LOAD(T, i) vec4(texelFetch(T, i).x, texelFetch(T, (i) + 1).x, texelFetch(T, (i) + 2).x, texelFetch(T, (i) + 3).x)
#endif

void main() {
  const int batch = int(gl_WorkGroupID.z);
  const int inv = int(flat_group()) * int(gl_WorkGroupSize.x) + int(gl_LocalInvocationID.x);
  const int NQB = (p.Lq + QB - 1) / QB;
  // Neighbouring invocations take neighbouring query blocks of one head, then the next heads: they walk
  // the same key rows in step (one row for all heads), which keeps what they fetch hot in cache.
  if (inv >= NQB * p.splits * p.H) return;
  const int qb = inv % NQB;
  const int h = (inv / NQB) % p.H;
  const int split = inv / (NQB * p.H);
  const int i0 = qb * QB;
  const int hcol = h * 4 * D4;

  // Rows past the end repeat the last one and are not stored: no branches in the key loop.
  vec4 q[QB][D4];
  [[unroll]] for (int r = 0; r < QB; ++r) {
    const int base = p.q_offset + batch * p.q_batch + min(i0 + r, p.Lq - 1) * p.q_row + hcol;
    [[unroll]] for (int d = 0; d < D4; ++d) q[r][d] = LOAD(Q, base + 4 * d) * p.scale;
  }

  const int kbeg = split * p.split_len;
  int kend = min(p.Lk, kbeg + p.split_len);
  if (p.causal != 0) kend = min(kend, min(i0 + QB - 1, p.Lq - 1) + p.causal_shift + 1);

  vec4 acc[QB][D4];
  float m[QB], l[QB];
  [[unroll]] for (int r = 0; r < QB; ++r) {
    m[r] = kNone;
    l[r] = 0.0;
    [[unroll]] for (int d = 0; d < D4; ++d) acc[r][d] = vec4(0.0);
  }

  const int kbase = p.k_offset + batch * p.k_batch + hcol;
  const int vbase = p.v_offset + batch * p.v_batch + hcol;
  const int abase = p.am_offset + batch * p.am_batch + h * p.am_head;
  const int mbase = p.km_offset + batch * p.km_batch;
  for (int j0 = kbeg; j0 < kend; j0 += KB) {
    float s[QB][KB];
    bool live[QB][KB];
    [[unroll]] for (int c = 0; c < KB; ++c) {
      const int j = min(j0 + c, kend - 1);
      const int kr = kbase + j * p.k_row;
      [[unroll]] for (int r = 0; r < QB; ++r) s[r][c] = 0.0;
      [[unroll]] for (int d = 0; d < D4; ++d) {
        const vec4 kv = LOAD(K, kr + 4 * d);
        [[unroll]] for (int r = 0; r < QB; ++r) s[r][c] += dot(q[r][d], kv);
      }
      bool key_ok = j0 + c < kend;
      if (p.km_kind == 1) key_ok = key_ok && texelFetch(KeyMaskF, mbase + j).x != 0.0;
      if (p.km_kind == 2) key_ok = key_ok && texelFetch(KeyMaskI, mbase + j).x != 0;
      [[unroll]] for (int r = 0; r < QB; ++r) {
        const int i = min(i0 + r, p.Lq - 1);
        if (p.am != 0) s[r][c] += texelFetch(AddMask, abase + i * p.am_row + j).x * 1.4426950408889634;
        live[r][c] = key_ok && (p.causal == 0 || j <= i + p.causal_shift) && s[r][c] > kNone;
      }
    }
    float w[QB][KB];
    [[unroll]] for (int r = 0; r < QB; ++r) {
      float mx = m[r];
      [[unroll]] for (int c = 0; c < KB; ++c) mx = live[r][c] ? max(mx, s[r][c]) : mx;
      const float alpha = exp2(m[r] - mx);
      m[r] = mx;
      l[r] *= alpha;
      [[unroll]] for (int d = 0; d < D4; ++d) acc[r][d] *= alpha;
      [[unroll]] for (int c = 0; c < KB; ++c) {
        w[r][c] = live[r][c] ? exp2(s[r][c] - mx) : 0.0;
        l[r] += w[r][c];
      }
    }
    [[unroll]] for (int c = 0; c < KB; ++c) {
      const int vr = vbase + min(j0 + c, kend - 1) * p.v_row;
      [[unroll]] for (int d = 0; d < D4; ++d) {
        const vec4 vv = LOAD(V, vr + 4 * d);
        [[unroll]] for (int r = 0; r < QB; ++r) acc[r][d] += w[r][c] * vv;
      }
    }
  }

#if defined(SPLIT)
  [[unroll]] for (int r = 0; r < QB; ++r) {
    const int i = i0 + r;
    if (i >= p.Lq) break;
    const int rec = (((batch * p.H + h) * p.Lq + i) * p.splits + split) * (D4 + 1);
    P[rec] = vec4(m[r], l[r], 0.0, 0.0);
    [[unroll]] for (int d = 0; d < D4; ++d) P[rec + 1 + d] = acc[r][d];
  }
  // The last split of this query block to finish merges all of them, so no second dispatch is needed.
  memoryBarrierBuffer();
  const int ci = (batch * p.H + h) * NQB + qb;
  if (atomicAdd(count[ci], 1u) != uint(p.splits - 1)) return;
  memoryBarrierBuffer();
  count[ci] = 0u;
  [[unroll]] for (int r = 0; r < QB; ++r) {
    const int rec0 = ((batch * p.H + h) * p.Lq + min(i0 + r, p.Lq - 1)) * p.splits;
    float mx = kNone;
    for (int t = 0; t < p.splits; ++t) mx = max(mx, P[(rec0 + t) * (D4 + 1)].x);
    l[r] = 0.0;
    [[unroll]] for (int d = 0; d < D4; ++d) acc[r][d] = vec4(0.0);
    for (int t = 0; t < p.splits; ++t) {
      const int rec = (rec0 + t) * (D4 + 1);
      const vec4 ml = P[rec];
      const float w = exp2(ml.x - mx);
      l[r] += ml.y * w;
      [[unroll]] for (int d = 0; d < D4; ++d) acc[r][d] += P[rec + 1 + d] * w;
    }
  }
#endif

  [[unroll]] for (int r = 0; r < QB; ++r) {
    const int i = i0 + r;
    if (i >= p.Lq) break;
    const float inv_l = l[r] > 0.0 ? 1.0 / l[r] : 0.0;
    const int o = p.o_offset + batch * p.o_batch + i * p.o_row + hcol;
    [[unroll]] for (int d = 0; d < D4; ++d) {
      const vec4 v = acc[r][d] * inv_l;
      O[o + 4 * d] = v.x;
      O[o + 4 * d + 1] = v.y;
      O[o + 4 * d + 2] = v.z;
      O[o + 4 * d + 3] = v.w;
    }
  }
}
