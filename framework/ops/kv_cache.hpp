#pragma once
#include <cstdint>

#include "ops/common.hpp"

namespace tessera::ops {

// Writes this step's keys and values into preallocated caches, in place, in one dispatch:
//   k_cache[b, pos + t, :] = k[b, t, :] and v_cache[b, pos + t, :] = v[b, t, :] for t < T.
//   k, v:             f32 or f16 [T, C] or [B, T, C]; any row and batch pitch (e.g. slices of a fused QKV output)
//   k_cache, v_cache: both f32 or both f16, [Lmax, C] or [B, Lmax, C] (rank of k); rows contiguous. f16
//                     caches need even offsets, pitches and C (they are written two halves at a time).
// Then attention reads k_cache.slice(-2, 0, pos + T). Throws when pos + T > Lmax.
void kv_cache_append(gpu::Stream& s, const TensorView& k, const TensorView& v, const TensorView& k_cache,
                     const TensorView& v_cache, int64_t pos);

}  // namespace tessera::ops
