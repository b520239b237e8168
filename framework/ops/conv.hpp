#pragma once
#include <optional>

#include "ops/common.hpp"

namespace tessera::ops {

// Zero padding added to each side of the input before the kernel slides over it.
struct Padding2d {
  int top = 0, bottom = 0, left = 0, right = 0;
  static Padding2d uniform(int p) { return {p, p, p, p}; }
};

// out[b, co, oy, ox] = bias[co] + sum_{ci, ky, kx} w[co, ci, ky, kx] * xpad[b, ci, oy*stride + ky, ox*stride + kx]
//   x:    f32 [B, Cin, H, W], last dimension contiguous (any batch, channel and row pitch)
//   w:    f32 or f16 [Cout, Cin, kh, kw], contiguous (PyTorch Conv2d layout), kh and kw in [1, 7]
//   bias: optional f32 or f16 [Cout]
//   out:  f32 [B, Cout, Ho, Wo] with Ho = (H + top + bottom - kh) / stride + 1, Wo likewise; last dimension
//         contiguous
// Accumulates in fp32; f16 weights are widened on fetch. Asymmetric padding such as VQGAN's
// downsampling (top 0, bottom 1, left 0, right 1, stride 2) is expressed directly.
void conv2d(gpu::Stream& s, const TensorView& x, const TensorView& w, std::optional<TensorView> bias, int stride,
            Padding2d padding, const TensorView& out);

// out[b, co, o] = bias[co] + sum_{ci, k} w[co, ci, k] * xpad[b, ci, o*stride + k], `padding` zeros on both ends.
//   x: f32 [B, Cin, L];  w: f32 or f16 [Cout, Cin, k], contiguous, k in [1, 7];  bias: optional [Cout]
//   out: f32 [B, Cout, Lo] with Lo = (L + 2*padding - k) / stride + 1
// Whisper's audio front end: k = 3, padding 1, stride 1 then 2.
void conv1d(gpu::Stream& s, const TensorView& x, const TensorView& w, std::optional<TensorView> bias, int stride,
            int padding, const TensorView& out);

}  // namespace tessera::ops
