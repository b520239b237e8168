#pragma once
// Elementwise activations and arithmetic with numpy broadcasting, up to 4-D.
#include <array>

#include "ops/common.hpp"

namespace tessera::ops {

enum class Unary {
  identity,   // with alpha/beta: scale, or y = a*x + b
  gelu_erf,   // 0.5 x (1 + erf(x / sqrt 2))
  gelu_tanh,  // GPT-2's "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  silu,       // x * sigmoid(x)
  relu,
};

enum class Binary {
  add,
  sub,
  mul,
  gelu_erf_mul,   // gelu_erf(a) * b: the GLU feed-forward of DALL-E Mini / BART-GLU in one dispatch
  gelu_tanh_mul,  // gelu_tanh(a) * b
  silu_mul,       // silu(a) * b (SwiGLU)
};

// out = alpha * f(x) + beta.
//   x: f32 or f16, up to 4-D, any strides; out: f32 of x's shape, any strides.
// out may be x itself (in place); it must not otherwise overlap x.
void unary(gpu::Stream& s, Unary op, const TensorView& x, const TensorView& out, float alpha = 1.0f, float beta = 0.0f);

// out = alpha * f(a, b), where a and b broadcast against each other by numpy rules (shapes aligned at the
// right; each dimension equal or 1) to out's shape, e.g. x[B,L,C] + bias[C] or x[B,C,H,W] * y[B,C,1,1].
//   a, b: f32 or f16, up to 4-D, any strides; out: f32, exactly the broadcast shape, any strides.
// out may be a or b itself (in place, when that operand has the full shape); no other overlap.
void binary(gpu::Stream& s, Binary op, const TensorView& a, const TensorView& b, const TensorView& out,
            float alpha = 1.0f);

namespace detail {

// An iteration space of exactly 4 dimensions (leading ones padded) with per-operand element strides,
// adjacent dimensions merged wherever every operand allows it, so that contiguous data is one row.
struct Loop4 {
  std::array<int64_t, 4> shape{};
  std::array<std::array<int64_t, 4>, 3> strides{};  // per operand
};
// `strides[k]` (rank entries each, 0 for broadcast dimensions) describe operand k over `shape`.
Loop4 merge_loop(int rank, const std::array<int64_t, 4>& shape, int operands,
                 const std::array<std::array<int64_t, 4>, 3>& strides);

}  // namespace detail
}  // namespace tessera::ops
