#pragma once
#include "bench_ops.hpp"

namespace tessera::bench {
// Fused attention (prefill shapes and one decode step) beside a plain CPU attention and PyTorch.
void bench_attention(gpu::Context& ctx, Reporter& rep, bool quick, int reps);
}  // namespace tessera::bench
