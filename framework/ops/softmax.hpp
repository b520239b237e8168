#pragma once
#include "ops/common.hpp"

namespace tessera::ops {

// out = softmax(scale * x) over the last dimension, max-subtracted. A row that is entirely -inf gives
// zeros (a fully masked row), not NaN.
//   x: f32 [..., N], up to 4-D, last dimension contiguous; out: f32, x's shape, same rule; may be x.
void softmax(gpu::Stream& s, const TensorView& x, const TensorView& out, float scale = 1.0f);

}  // namespace tessera::ops
