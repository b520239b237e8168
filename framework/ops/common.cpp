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

gpu::Context& context_of(const TensorView& t) { return t.buffer->context(); }

}  // namespace tessera::ops
