#version 450
// Draws one token id per row of logits, entirely on the GPU: one workgroup per row, one dispatch.
//   l[i] = cfg ? uncond[i] * (1 - f) + cond[i] * f : cond[i]     (NaN counts as -inf)
//   greedy (temperature 0): the first index of max(l).
//   otherwise: kept = {i : l[i] >= t_k and l[i] >= t_p}, draw i from kept with probability
//   proportional to exp((l[i] - max) / T) by the Gumbel-max trick: argmax over kept of
//   (l[i] - max) / T - log(-log(u_i)), u_i from a counter-based hash of (i, row, step, seed).
// Thresholds are found by bisection over an order-preserving integer key of l, 16 candidates per pass:
//   t_k: the largest key whose count of elements >= it is at least top_k (the k-th largest value);
//   t_p: the largest key whose softmax mass (over elements >= t_k) of elements >= it is at least top_p.
// Every element tied with a threshold value is kept, so a set can exceed top_k (or the nucleus) by ties.
// A pass stops early once its bracket holds a single element. Per-pass partial sums are reduced per
// subgroup, then by one invocation, so each pass costs two barriers and no shared memory in its loop.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
const int NC = 16;       // bisection candidates per pass
const int MAX_SG = 128;  // subgroups per workgroup the shared arrays hold (dispatcher checks)

layout(binding = 0) uniform samplerBuffer Cond;
layout(binding = 1) uniform samplerBuffer Uncond;
layout(binding = 2) uniform samplerBuffer Cond4;    // the same buffers, four elements per texel
layout(binding = 3) uniform samplerBuffer Uncond4;
layout(binding = 4) writeonly buffer Ids { int ids[]; };

layout(push_constant) uniform Push {
  int V;
  int cond_offset, cond_row;
  int uncond_offset, uncond_row;
  int has_cfg;
  float cfg;
  float inv_temp;  // 0: greedy
  int top_k;       // 0: off
  float top_p;     // 1: off
  uint seed, step;
  int ids_offset;
  int vec4_ok;   // the row's texels can be fetched four at a time (uncond, if any, shares the alignment)
  int seed_per_row;  // row r draws as row 0 would with seed + r (a batch equals runs with seeds seed, seed+1, ...)
} p;

shared uint s_u[NC][MAX_SG];
shared float s_f[NC][MAX_SG];
shared uint s_bc[4];   // broadcast: lo, hi, count(>= lo), count(>= hi)
shared float s_bf[2];  // broadcast: max logit, target mass

int row;
// A row is read as whole texels [a0, a1) of four elements, plus up to three scalar elements on each side:
// the head [0, h) and the tail [t, V). Rows not four-aligned with their uncond rows are read all scalar.
int s0, su, a0, a1, h, t, nedge, du;

void row_layout() {
  s0 = p.cond_offset + row * p.cond_row;
  su = p.uncond_offset + row * p.uncond_row;
  if (p.vec4_ok != 0) {
    a0 = (s0 + 3) >> 2;
    a1 = max((s0 + p.V) >> 2, a0);
    h = min(4 * a0 - s0, p.V);
    t = clamp(4 * a1 - s0, h, p.V);
    du = (su - s0) >> 2;
  } else {
    a0 = a1 = du = 0;
    h = t = p.V;
  }
  nedge = h + p.V - t;
}

float clean(float c) { return isnan(c) ? uintBitsToFloat(0xff800000u) : c; }

float logit(int i) {
  float c = texelFetch(Cond, s0 + i).x;
  if (p.has_cfg != 0) c = texelFetch(Uncond, su + i).x * (1.0 - p.cfg) + c * p.cfg;
  return clean(c);
}

vec4 logit4(int q) {
  vec4 c = texelFetch(Cond4, q);
  if (p.has_cfg != 0) c = texelFetch(Uncond4, q + du) * (1.0 - p.cfg) + c * p.cfg;
  return vec4(clean(c.x), clean(c.y), clean(c.z), clean(c.w));
}

// Runs BODY for every element of the row with `i` its index and `l` its (guided) logit. Each invocation
// sees its elements in increasing index order within each of the two loops.
#define FOR_EACH_LOGIT(BODY)                                          \
  for (int q_ = a0 + int(lid); q_ < a1; q_ += int(wg)) {              \
    const vec4 v_ = logit4(q_);                                       \
    [[unroll]] for (int c_ = 0; c_ < 4; ++c_) {                       \
      const int i = 4 * q_ - s0 + c_;                                 \
      const float l = v_[c_];                                         \
      BODY                                                            \
    }                                                                 \
  }                                                                   \
  for (int j_ = int(lid); j_ < nedge; j_ += int(wg)) {                \
    const int i = j_ < h ? j_ : t + j_ - h;                           \
    const float l = logit(i);                                         \
    BODY                                                              \
  }

// Monotonic in the float value: a < b  <=>  key(a) < key(b).
uint key_of(float x) {
  const uint u = floatBitsToUint(x);
  return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

// Jarzynski & Olano, "Hash Functions for GPU Rendering" (JCGT 2020): a 4-D counter-based hash.
uvec4 pcg4d(uvec4 v) {
  v = v * 1664525u + 1013904223u;
  v.x += v.y * v.w;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v.w += v.y * v.z;
  v ^= v >> 16u;
  v.x += v.y * v.w;
  v.y += v.z * v.x;
  v.z += v.x * v.y;
  v.w += v.y * v.z;
  return v;
}

// Bisection for the largest key c in [lo, hi) with f(c) >= target, where f(c) is the count (MASS false)
// or softmax mass (MASS true) of elements with key >= c and key >= floor_key. On entry f(hi) < target.
// When target < 0, the target becomes -target * f(lo), found in the first pass (top-p: p * total mass).
// Returns lo; s_bc holds the final bracket.
uint bisect(uint lo, uint hi, uint floor_key, float target, const bool MASS, float mx) {
  const uint lid = gl_LocalInvocationID.x;
  const uint wg = gl_WorkGroupSize.x;
  uint cnt_lo = 0xffffffffu, cnt_hi = 0u;
  for (;;) {
    const uint span = hi - lo;
    if (span <= 1u || cnt_lo - cnt_hi <= 1u) break;
    // Candidates lo + j * stride, j < NC, those < hi. A power-of-two stride turns the per-element
    // division into a shift (CPUs have no vector integer division).
    const uint shift = uint(max(findMSB(span - 1u) + 1 - 4, 0));
    const uint stride = 1u << shift;
    uint cnt[NC];
    float mass[NC];
    [[unroll]] for (int j = 0; j < NC; ++j) {
      cnt[j] = 0u;
      mass[j] = 0.0;
    }
    FOR_EACH_LOGIT({
      const uint k = key_of(l);
      if (k >= floor_key && k >= lo) {
        const uint d = (k - lo) >> shift;  // k is >= candidates 0..d
        if (MASS) {
          const float e = exp((l - mx) * p.inv_temp);
          [[unroll]] for (int j = 0; j < NC; ++j) mass[j] += uint(j) <= d ? e : 0.0;
        }
        [[unroll]] for (int j = 0; j < NC; ++j) cnt[j] += uint(j) <= d ? 1u : 0u;
      }
    })
    [[unroll]] for (int j = 0; j < NC; ++j) {
      const uint c = subgroupAdd(cnt[j]);
      const float m = MASS ? subgroupAdd(mass[j]) : 0.0;
      if (subgroupElect()) {
        s_u[j][gl_SubgroupID] = c;
        s_f[j][gl_SubgroupID] = m;
      }
    }
    barrier();
    if (lid == 0u) {
      uint tc[NC];
      float tm[NC];
      [[unroll]] for (int j = 0; j < NC; ++j) {
        tc[j] = 0u;
        tm[j] = 0.0;
        for (uint s = 0u; s < gl_NumSubgroups; ++s) {
          tc[j] += s_u[j][s];
          tm[j] += s_f[j][s];
        }
      }
      if (target < 0.0) target = -target * (MASS ? tm[0] : float(tc[0]));
      // Candidate 0 is lo, which satisfies the target by the invariant.
      int best = 0;
      [[unroll]] for (int j = 1; j < NC; ++j) {
        const bool valid = uint(j) * stride < span;
        if (valid && (MASS ? tm[j] >= target : float(tc[j]) >= target)) best = j;
      }
      const uint nlo = lo + uint(best) * stride;
      const bool next_valid = best + 1 < NC && uint(best + 1) * stride < span;
      s_bc[0] = nlo;
      s_bc[1] = next_valid ? nlo + stride : hi;
      s_bc[2] = tc[best];
      s_bc[3] = next_valid ? tc[best + 1] : cnt_hi;
      s_bf[1] = target;
    }
    barrier();
    lo = s_bc[0];
    hi = s_bc[1];
    cnt_lo = s_bc[2];
    cnt_hi = s_bc[3];
    target = s_bf[1];
  }
  return lo;
}

void main() {
  row = int(gl_WorkGroupID.x);
  row_layout();
  const uint lid = gl_LocalInvocationID.x;
  const uint wg = gl_WorkGroupSize.x;

  // Pass 1: max (first index on ties) and min.
  float mx = uintBitsToFloat(0xff800000u);
  uint kmin = 0xffffffffu;
  int amax = 0x7fffffff;
  FOR_EACH_LOGIT({
    if (l > mx || (l == mx && i < amax)) {
      mx = l;
      amax = i;
    }
    kmin = min(kmin, key_of(l));
  })
  {
    const float m = subgroupMax(mx);
    const int a = subgroupMin(mx == m ? amax : 0x7fffffff);
    const uint k = subgroupMin(kmin);
    if (subgroupElect()) {
      s_f[0][gl_SubgroupID] = m;
      s_u[0][gl_SubgroupID] = uint(a);
      s_u[1][gl_SubgroupID] = k;
    }
  }
  barrier();
  if (lid == 0u) {
    float m = s_f[0][0];
    uint a = s_u[0][0], k = s_u[1][0];
    for (uint s = 1u; s < gl_NumSubgroups; ++s) {
      const float ms = s_f[0][s];
      const uint as = s_u[0][s];
      if (ms > m || (ms == m && as < a)) {
        m = ms;
        a = as;
      }
      k = min(k, s_u[1][s]);
    }
    s_bf[0] = m;
    s_bc[0] = a;
    s_bc[1] = k;
  }
  barrier();
  mx = s_bf[0];
  amax = int(s_bc[0]);
  kmin = s_bc[1];
  // Greedy; nothing drawable (every logit -inf); or a +inf logit, drawn with certainty: the argmax.
  if (p.inv_temp == 0.0 || isinf(mx)) {
    if (lid == 0u) ids[p.ids_offset + row] = amax;
    return;
  }
  barrier();  // s_bc is rewritten below

  const uint khi = key_of(mx) + 1u;
  uint thr = kmin;
  if (p.top_k > 0 && p.top_k < p.V) thr = bisect(kmin, khi, 0u, float(p.top_k), false, mx);
  if (p.top_p < 1.0) {
    barrier();
    thr = bisect(thr, khi, thr, -p.top_p, true, mx);
  }

  // Draw: Gumbel-max over the kept elements.
  float best = uintBitsToFloat(0xff800000u);
  int bi = 0x7fffffff;
  // u <= 1 - 2^-25, so the Gumbel noise never exceeds GMAX: elements that cannot beat the running best
  // skip the hash and both logarithms.
  const float GMAX = 17.3287;
  FOR_EACH_LOGIT({
    const float z = (l - mx) * p.inv_temp;
    if (key_of(l) >= thr && z + GMAX >= best) {
      const uvec4 r = p.seed_per_row != 0 ? pcg4d(uvec4(uint(i), 0u, p.step, p.seed + uint(row)))
                                          : pcg4d(uvec4(uint(i), uint(row), p.step, p.seed));
      const float u = (float(r.x >> 8u) + 0.5) * (1.0 / 16777216.0);  // (0, 1)
      const float g = z - log(-log(u));
      if (g > best || (g == best && i < bi)) {
        best = g;
        bi = i;
      }
    }
  })
  {
    const float m = subgroupMax(best);
    const int a = subgroupMin(best == m ? bi : 0x7fffffff);
    barrier();
    if (subgroupElect()) {
      s_f[0][gl_SubgroupID] = m;
      s_u[0][gl_SubgroupID] = uint(a);
    }
  }
  barrier();
  if (lid == 0u) {
    float m = s_f[0][0];
    uint a = s_u[0][0];
    for (uint s = 1u; s < gl_NumSubgroups; ++s)
      if (s_f[0][s] > m || (s_f[0][s] == m && s_u[0][s] < a)) {
        m = s_f[0][s];
        a = s_u[0][s];
      }
    // Only -inf logits were kept (cannot happen: the max is finite and always kept): fall back to argmax.
    ids[p.ids_offset + row] = a == 0x7fffffffu ? amax : int(a);
  }
}
