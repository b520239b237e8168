#include "ops/common.hpp"

#include <algorithm>

namespace tessera::ops {

void fail(const char* op, const std::string& message) { throw Error(std::string(op) + ": " + message); }

void expect_dtype(const char* op, const char* name, const TensorView& t, std::initializer_list<DType> allowed) {
  if (!t.buffer) fail(op, std::string(name) + " has no storage");
  if (std::find(allowed.begin(), allowed.end(), t.dtype) != allowed.end()) return;
  std::string list;
  for (DType d : allowed) list += (list.empty() ? "" : " or ") + std::string(gpu::dtype_name(d));
  fail(op, std::string(name) + " " + t.str() + " must be " + list);
}

void expect_rank(const char* op, const char* name, const TensorView& t, int lo, int hi) {
  if (t.rank >= lo && t.rank <= hi) return;
  fail(op, std::string(name) + " " + t.str() + " must have " +
               (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) + " dimensions");
}

void expect_rows_contiguous(const char* op, const char* name, const TensorView& t) {
  if (!t.rows_contiguous())
    fail(op, std::string(name) + " " + t.str() + " needs a contiguous last dimension (stride " +
                 std::to_string(t.strides[t.rank - 1]) + "); copy it first");
}

void expect_contiguous(const char* op, const char* name, const TensorView& t) {
  if (!t.contiguous()) fail(op, std::string(name) + " " + t.str() + " must be contiguous; copy it first");
}

void expect_same_shape(const char* op, const char* name, const TensorView& t, const char* other_name,
                       const TensorView& other) {
  if (!t.same_shape(other))
    fail(op, std::string(name) + " " + t.str() + " must have the shape of " + other_name + " " + other.str());
}

bool texel_aligned(const TensorView& t, int lanes) {
  if (lanes == 1) return true;
  if (t.offset % lanes) return false;
  if (t.rank > 0 && t.strides[t.rank - 1] != 1) return false;
  for (int i = 0; i + 1 < t.rank; ++i)
    if (t.strides[i] % lanes && t.shape[i] > 1) return false;
  return t.rank == 0 || t.shape[t.rank - 1] % lanes == 0;
}

int32_t i32(const char* op, int64_t v) {
  if (v > INT32_MAX || v < INT32_MIN) fail(op, "a size or offset of " + std::to_string(v) + " exceeds 32-bit indexing");
  return static_cast<int32_t>(v);
}

void outer_dims(const char* op, const TensorView& t, int lanes, int64_t n[3], int32_t s[3]) {
  const int lead = 3 - (t.rank - 1);
  for (int i = 0; i < 3; ++i) {
    const int d = i - lead;
    n[i] = d >= 0 ? t.shape[d] : 1;
    s[i] = d >= 0 && n[i] > 1 ? i32(op, t.strides[d] / lanes) : 0;
  }
}

static int64_t last_element(const TensorView& t) {
  int64_t e = t.offset;
  for (int i = 0; i < t.rank; ++i) e += (t.shape[i] - 1) * t.strides[i];
  return e;
}

bool views_overlap(const TensorView& a, const TensorView& b) {
  if (a.buffer != b.buffer || a.numel() == 0 || b.numel() == 0) return false;
  const int64_t ea = gpu::dtype_size(a.dtype), eb = gpu::dtype_size(b.dtype);
  const int64_t a0 = a.offset * ea, a1 = (last_element(a) + 1) * ea;
  const int64_t b0 = b.offset * eb, b1 = (last_element(b) + 1) * eb;
  return a0 < b1 && b0 < a1;
}

bool same_view(const TensorView& a, const TensorView& b) {
  if (a.buffer != b.buffer || a.dtype != b.dtype || a.offset != b.offset || !a.same_shape(b)) return false;
  for (int i = 0; i < a.rank; ++i)
    if (a.shape[i] > 1 && a.strides[i] != b.strides[i]) return false;
  return true;
}

void expect_no_partial_overlap(const char* op, const char* out_name, const TensorView& out, const char* in_name,
                               const TensorView& in) {
  if (views_overlap(out, in) && !same_view(out, in))
    fail(op, std::string(out_name) + " " + out.str() + " overlaps " + in_name + " " + in.str() +
                 " without being the same view");
}

RowLayout row_layout(const gpu::Context& ctx, int64_t row_texels) {
  const auto& f = ctx.features();
  const bool sg = f.subgroup_in_compute && (f.subgroup_ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                  f.subgroup_size > 0 && row_texels >= static_cast<int64_t>(f.subgroup_size);
  const int wg = sg ? std::max<int>(64, static_cast<int>(f.subgroup_size)) : 16;
  return {sg, wg, sg ? static_cast<uint32_t>(wg) / f.subgroup_size : static_cast<uint32_t>(wg)};
}

gpu::Context& context_of(const TensorView& t) { return t.buffer->context(); }

}  // namespace tessera::ops
