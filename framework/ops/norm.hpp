#pragma once
// Layer and group normalization.
#include <optional>

#include "ops/common.hpp"

namespace tessera::ops {

// out = (x - mean) / sqrt(var + eps) * weight + bias over the last dimension (biased variance).
//   x:   f32 [..., C], up to 4-D, last dimension contiguous (any outer strides)
//   weight, bias: optional f32 or f16 [C], contiguous; an absent weight acts as ones, an absent bias as
//        zeros (DALL-E Mini's checkpoints lack several scales)
//   out: f32, x's shape, last dimension contiguous; may be x itself
void layer_norm(gpu::Stream& s, const TensorView& x, std::optional<TensorView> weight, std::optional<TensorView> bias,
                float eps, const TensorView& out);

// GroupNorm over x [B, C, *spatial] (NCHW, rank 2 to 4): channels split into `groups` equal groups, each
// (batch, group) normalized over its channels and positions, then per-channel weight and bias, then,
// with `silu`, y * sigmoid(y) (VQGAN always follows GroupNorm with swish).
//   x: f32, each channel plane contiguous (any batch and channel stride); weight, bias: optional f32 or
//   f16 [C]; out: f32, x's shape, same layout rule; may be x itself.
void group_norm(gpu::Stream& s, const TensorView& x, int groups, std::optional<TensorView> weight,
                std::optional<TensorView> bias, float eps, const TensorView& out, bool silu = false);

}  // namespace tessera::ops
