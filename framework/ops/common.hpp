#pragma once
// Helpers every op dispatcher uses: argument checks with messages that name the op, the tensors and
// their shapes, and the alignment rules of texel-buffer reads.
#include <initializer_list>
#include <string>

#include "gpu/context.hpp"
#include "gpu/error.hpp"
#include "gpu/stream.hpp"
#include "gpu/tensor.hpp"

namespace tessera::ops {

using gpu::DType;
using gpu::Tensor;
using gpu::TensorView;

// Throws tessera::Error("<op>: <message>").
[[noreturn]] void fail(const char* op, const std::string& message);

// `name` must have one of `allowed` dtypes.
void expect_dtype(const char* op, const char* name, const TensorView& t, std::initializer_list<DType> allowed);
// `name` must have rank in [lo, hi].
void expect_rank(const char* op, const char* name, const TensorView& t, int lo, int hi);
// Innermost dimension contiguous (stride 1).
void expect_rows_contiguous(const char* op, const char* name, const TensorView& t);
void expect_contiguous(const char* op, const char* name, const TensorView& t);
// `out` must be f32 and exactly `shape` (rank and dims).
void expect_same_shape(const char* op, const char* name, const TensorView& t, const char* other_name,
                       const TensorView& other);

// True when `t` can be read `lanes` elements per texel: offset and every outer stride divisible.
bool texel_aligned(const TensorView& t, int lanes);

// A signed 32-bit push constant, refusing tensors too large for 32-bit indexing.
int32_t i32(const char* op, int64_t v);

// The dimensions of `t` before the last, padded to three with leading ones, and their strides divided by
// `lanes` (0 where a dimension is 1): how row-wise ops walk any rank-1..4 view.
void outer_dims(const char* op, const TensorView& t, int lanes, int64_t n[3], int32_t s[3]);

// Whether any element of a may share memory with any element of b (conservative: byte ranges).
bool views_overlap(const TensorView& a, const TensorView& b);
// The same elements in the same order: reading and writing such a pair in place is safe element-wise.
bool same_view(const TensorView& a, const TensorView& b);
// Refuses `out` sharing memory with `in` unless it is exactly the same view:
// "<op>: <out_name> f32[..] overlaps <in_name> f32[..] without being the same view".
void expect_no_partial_overlap(const char* op, const char* out_name, const TensorView& out, const char* in_name,
                               const TensorView& in);

// How a row-wise op (layer_norm, softmax) spreads rows over invocations: a subgroup per row (contiguous
// fetches, subgroupAdd) when a row of `row_texels` keeps its lanes busy, else one invocation per row. Rows per
// workgroup are counted with the reported (largest) subgroup size; a smaller actual one leaves spare
// subgroups idle.
struct RowLayout {
  bool subgroup_per_row;
  int workgroup_size;
  uint32_t rows_per_group;
};
RowLayout row_layout(const gpu::Context& ctx, int64_t row_texels);

gpu::Context& context_of(const TensorView& t);

}  // namespace tessera::ops
