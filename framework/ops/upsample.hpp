#pragma once
#include "ops/common.hpp"

namespace tessera::ops {

// Nearest-neighbour 2x upsampling: out[b, c, y, x] = x[b, c, y / 2, x / 2].
//   x: f32 or f16 [B, C, H, W], last dimension contiguous;  out: f32 [B, C, 2H, 2W], last dimension contiguous.
void upsample_nearest2x(gpu::Stream& s, const TensorView& x, const TensorView& out);

}  // namespace tessera::ops
