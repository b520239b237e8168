#pragma once
#include <optional>

#include "ops/common.hpp"
#include "ops/elementwise.hpp"

namespace tessera::ops {

enum class WeightLayout {
  out_in,  // W[N, K]: PyTorch nn.Linear
  in_out,  // W[K, N]: GPT-2 Conv1D
  packed,  // made by pack_weights(): [ceil(N/T), K/4, T, 4], T rows of one tile interleaved
};

// What happens to each result on its way out, in the same dispatch: out = act(result), or with
// `accumulate` out += act(result) (a residual connection: x += proj(h)). Saves a dispatch and a round trip
// through memory for each; decoding is dominated by dispatch counts.
struct Epilogue {
  Unary activation = Unary::identity;  // identity, gelu_erf, gelu_tanh, silu or relu (alpha/beta unused)
  bool accumulate = false;
};

// out[b, m, n] = sum_k a[b, m, k] * W[n, k] (or W[k, n]) + bias[n], then the epilogue.
//   a:   f32 [M, K] or [B, M, K], rows contiguous (any row and batch pitch)
//   w:   f32 or f16, [N, K] / [K, N], or batched [B, N, K] / [B, K, N]; rows contiguous;
//        or a packed weight from pack_weights() (layout packed; N is taken from out)
//   bias: optional f32 or f16 [N]
//   out: f32 [M, N] or [B, M, N], rows contiguous; must not overlap a (it is read too when accumulating)
// f16 weights are widened on fetch and accumulated in fp32.
void matmul(gpu::Stream& s, const TensorView& a, const TensorView& w, const TensorView& out,
            WeightLayout layout = WeightLayout::out_in, std::optional<TensorView> bias = std::nullopt,
            Epilogue epilogue = {});

// Reorders a weight once, at load time, into the layout the tiled kernel streams fastest: the T rows one
// invocation computes lie side by side for every four k, so each lane reads one contiguous stream (on
// lavapipe 1024^3 goes from ~31 to ~40 GFLOP/s, see docs/PERFORMANCE.md). T depends on the device, so
// pack on the Context that will run the matmul. w is f32 or f16 (kept), [N, K] or [K, N]; K must be a
// multiple of 4. Rows past N are zero. Synchronous: it downloads and uploads through the host.
Tensor pack_weights(gpu::Context& ctx, const TensorView& w, WeightLayout layout);

}  // namespace tessera::ops
