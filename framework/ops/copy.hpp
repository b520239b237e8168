#pragma once
#include <span>

#include "ops/common.hpp"

namespace tessera::ops {

// dst = src elementwise, for any strides of either (up to 4-D): transpose/permute (pass
// src.permute(...)), materializing a strided view, or writing into a slice of a larger tensor.
//   src: f32, f16 or i32; dst: f32 (from f32 or f16: f16 is widened) or i32 (from i32), src's shape.
//   dst must not overlap src unless it is the same view.
// f16 destinations are not supported: storage writes of 16-bit halves from different invocations into
// one 32-bit word would race; keep activations f32.
void copy(gpu::Stream& s, const TensorView& src, const TensorView& dst);

// out = the concatenation of `parts` along `dim` (negative counts from the end): one copy per part into
// out.slice(dim, ...). Parts must match out in every other dimension.
void concat(gpu::Stream& s, std::span<const TensorView> parts, int dim, const TensorView& out);

}  // namespace tessera::ops
