#pragma once
#include <cstdint>
#include <optional>

#include "ops/common.hpp"

namespace tessera::ops {

struct SampleParams {
  float temperature = 1.0f;  // >= 0; 0 = greedy argmax (top_k, top_p and the seed are then ignored)
  int top_k = 0;             // keep the top_k largest logits; 0 = off; at most the vocabulary size
  float top_p = 1.0f;        // in (0, 1]: keep the smallest top set whose probability reaches top_p; 1 = off
  // Counter-based randomness: the draw of a row is a pure function of (logits, seed, step, row), on any
  // device that rounds exp/log alike. Advance `step` every decoding step.
  uint32_t seed = 0;
  uint32_t step = 0;
  // Row r draws exactly as row 0 of a run with seed + r would (the seed wraps at 2^32): a batch of R
  // samples then equals R runs with seeds seed, seed + 1, ..., as the scheduler's --count promises.
  bool seed_per_row = false;
  // Classifier-free guidance (DALL-E super-conditioning): logits = uncond * (1 - guidance) + cond * guidance,
  // where `cond` is the logits argument. Same shape as the logits.
  std::optional<TensorView> uncond;
  float guidance = 1.0f;
};

// Draws one token id per row on the GPU, so a decoding step reads back R ints instead of R x V floats.
//   logits:  f32 or f16 [V] or [R, V], last dimension contiguous (any row pitch)
//   out_ids: i32 [R] (R = 1 for [V] logits), contiguous
// Rules, applied to the (guided) logits l of a row; NaN counts as -inf:
//   greedy: the first index of the maximum. A +inf logit, or a row of only -inf, also yields that.
//   sampling: i is drawn with probability proportional to exp((l[i] - max) / temperature) among the kept
//   set: l[i] >= the top_k-th largest value, and within the top_p nucleus of the tempered softmax over
//   those. Ties at either threshold are all kept, so the kept set may exceed top_k or the nucleus.
// One dispatch, one workgroup per row, whatever the parameters: a max pass, a draw pass (Gumbel-max with a
// counter-based hash), and with top_k / top_p a 16-way bisection over the float keys of the row, one pass
// per step, stopping once its bracket holds a single element (typically 4 to 8 passes each).
// Needs subgroup arithmetic in compute shaders. Top-p masses are fp32 sums in the device's reduction
// order, so a nucleus boundary within rounding of top_p may fall differently on another device.
void sample(gpu::Stream& s, const TensorView& logits, const SampleParams& params, const TensorView& out_ids);

}  // namespace tessera::ops
