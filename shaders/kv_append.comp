#version 450
// Writes this step's key and value rows into preallocated caches at row `pos`, both in one dispatch:
// the first half of the invocations copies K, the second half V.
//   default: f32 caches, one element per invocation.
//   F16:     f16 caches written as packed pairs (one uint per invocation), so no 16-bit storage feature
//            is needed; the dispatcher guarantees even offsets and row widths.
// New rows are read through texel views, so they may be f32 or f16 whatever the cache holds.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) uniform samplerBuffer Knew;
layout(binding = 1) uniform samplerBuffer Vnew;
#if defined(F16)
layout(binding = 2) writeonly buffer KCache { uint kc[]; };
layout(binding = 3) writeonly buffer VCache { uint vc[]; };
#else
layout(binding = 2) writeonly buffer KCache { float kc[]; };
layout(binding = 3) writeonly buffer VCache { float vc[]; };
#endif

layout(push_constant) uniform Push {
  int T, C, pos;  // rows per batch, elements per row, first cache row
  int kn_offset, kn_row, kn_batch;
  int vn_offset, vn_row, vn_batch;
  int kc_offset, kc_row, kc_batch;  // in elements of the cache
  int vc_offset, vc_row, vc_batch;
} p;

void main() {
  const int batch = int(gl_WorkGroupID.z);
  const int inv = int(flat_group()) * int(gl_WorkGroupSize.x) + int(gl_LocalInvocationID.x);
#if defined(F16)
  const int per_row = p.C / 2;
#else
  const int per_row = p.C;
#endif
  const int per_tensor = p.T * per_row;
  if (inv >= 2 * per_tensor) return;
  const bool is_v = inv >= per_tensor;
  const int e = is_v ? inv - per_tensor : inv;
  const int t = e / per_row;
  const int c = e % per_row;
#if defined(F16)
  if (!is_v) {
    const int src = p.kn_offset + batch * p.kn_batch + t * p.kn_row + 2 * c;
    const int dst = p.kc_offset + batch * p.kc_batch + (p.pos + t) * p.kc_row + 2 * c;
    kc[dst >> 1] = packHalf2x16(vec2(texelFetch(Knew, src).x, texelFetch(Knew, src + 1).x));
  } else {
    const int src = p.vn_offset + batch * p.vn_batch + t * p.vn_row + 2 * c;
    const int dst = p.vc_offset + batch * p.vc_batch + (p.pos + t) * p.vc_row + 2 * c;
    vc[dst >> 1] = packHalf2x16(vec2(texelFetch(Vnew, src).x, texelFetch(Vnew, src + 1).x));
  }
#else
  if (!is_v)
    kc[p.kc_offset + batch * p.kc_batch + (p.pos + t) * p.kc_row + c] =
        texelFetch(Knew, p.kn_offset + batch * p.kn_batch + t * p.kn_row + c).x;
  else
    vc[p.vc_offset + batch * p.vc_batch + (p.pos + t) * p.vc_row + c] =
        texelFetch(Vnew, p.vn_offset + batch * p.vn_batch + t * p.vn_row + c).x;
#endif
}
