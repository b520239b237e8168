#pragma once
#include <optional>
#include <vector>

#include "ops/common.hpp"

namespace tessera::ops {

struct AttentionOptions {
  int heads = 1;
  std::optional<float> scale;  // default 1 / sqrt(head_dim)
  // Query i sees keys j <= i + (Lk - Lq): the usual triangle when Lq == Lk, and the right one for a
  // block of new queries at the end of a KV cache.
  bool causal = false;
  // i32 or f32 [B, Lk] (or [Lk], or [1, Lk]: shared by the batch); 0 masks that key out.
  std::optional<TensorView> key_mask;
  // f32, added to the scaled scores: [Lq, Lk], [B, Lq, Lk] or [B, H, Lq, Lk]; a dimension of 1 in place
  // of B or H broadcasts. -inf masks a score out.
  std::optional<TensorView> mask;
};

// Scratch for the split-K (flash-decoding) path: the partial maxima, sums and unnormalized outputs of
// each slice of the keys, and one counter per (batch, head, query block) with which the last slice to
// finish finds out that it merges them (so decoding stays one dispatch). The caller owns it, like any
// tensor the stream reads, so that it outlives the work: keep one per stream (the layers of a model can
// share it; calls in one stream are ordered) and destroy it only when no stream that used it is in
// flight; never use one from two streams at once. It grows on demand and never shrinks; a buffer it
// outgrows stays alive until the workspace dies, because a recorded dispatch may still use it.
class AttentionWorkspace {
 public:
  AttentionWorkspace() = default;
  AttentionWorkspace(const AttentionWorkspace&) = delete;
  AttentionWorkspace& operator=(const AttentionWorkspace&) = delete;

  // Bytes held; 0 until a call took the split path.
  uint64_t bytes() const;

  // Views of at least `floats` partial floats and `counters` zeroed counters; new buffers are zeroed
  // through `s`.
  struct Views {
    TensorView partials, counters;
  };
  Views reserve(gpu::Stream& s, gpu::Context& ctx, int64_t floats, int64_t counters);

 private:
  gpu::Tensor partials_, counters_;
  std::vector<gpu::Tensor> retired_;
};

// out = softmax(q k^T * scale + mask) v for every head, fused (no score matrix is stored).
//   q:   f32 or f16 [Lq, H*D] or [B, Lq, H*D]; head h is columns [h*D, (h+1)*D)
//   k,v: f32 or f16 [Lk, H*D] or [B, Lk, H*D]; any row and batch pitch, so a slice of a fused QKV
//        output or of a preallocated KV cache works without a copy
//   out: f32, the shape of q; rows contiguous
// D must be a multiple of 4, at most 256. A row whose keys are all masked out is zeros.
// One dispatch. With a workspace, few (batch, head, query-block) items and many keys (decoding), the
// keys are also split over invocations (flash-decoding), which then merge their partial results.
void attention(gpu::Stream& s, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const AttentionOptions& options = {}, AttentionWorkspace* workspace = nullptr);

}  // namespace tessera::ops
