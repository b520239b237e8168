#pragma once
#include <optional>

#include "ops/common.hpp"

namespace tessera::ops {

enum class WeightLayout {
  out_in,  // W[N, K]: PyTorch nn.Linear
  in_out,  // W[K, N]: GPT-2 Conv1D
};

// out[b, m, n] = sum_k a[b, m, k] * W[n, k] (or W[k, n]) + bias[n].
//   a:   f32 [M, K] or [B, M, K], rows contiguous (any row and batch pitch)
//   w:   f32 or f16, [N, K] / [K, N], or batched [B, N, K] / [B, K, N]; rows contiguous
//   bias: optional f32 or f16 [N]
//   out: f32 [M, N] or [B, M, N], rows contiguous
// f16 weights are widened on fetch and accumulated in fp32.
void matmul(gpu::Stream& s, const TensorView& a, const TensorView& w, const TensorView& out,
            WeightLayout layout = WeightLayout::out_in, std::optional<TensorView> bias = std::nullopt);

}  // namespace tessera::ops
