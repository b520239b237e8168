#pragma once
#include <optional>

#include "ops/common.hpp"

namespace tessera::ops {

// out[..., :] = table[ids[...], :] (+ pos_table[pos_offset + l, :], l the index along ids' last
// dimension: learned positions of BART / GPT-2 added in the same dispatch).
//   table: f32 or f16 [V, C], rows contiguous; ids: i32, rank 1 to 3, contiguous
//   pos_table: optional f32 or f16 [P, C], rows contiguous, with pos_offset + ids.dim(-1) <= P
//   out: f32 [ids..., C], rows contiguous with one row pitch
// An id outside [0, V) produces a row of zeros (plus its position row): the GPU cannot report it, and
// checking on the host would need the ids there. Validate ids upstream when that matters.
void embedding(gpu::Stream& s, const TensorView& table, const TensorView& ids, const TensorView& out,
               std::optional<TensorView> pos_table = std::nullopt, int64_t pos_offset = 0);

}  // namespace tessera::ops
