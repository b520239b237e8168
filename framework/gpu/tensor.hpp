#pragma once
// GPU tensors: a dtype, a shape of up to 4 dimensions and strides over one device buffer.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "gpu/memory.hpp"

namespace tessera::gpu {

enum class DType : uint8_t { f32, f16, i32 };
constexpr int kMaxRank = 4;

uint32_t dtype_size(DType t);
const char* dtype_name(DType t);

uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

// A non-owning window on a tensor's buffer: shape, strides and offset in elements. Views and slices
// never copy; they stay valid while the Tensor that owns the buffer lives.
struct TensorView {
  const Buffer* buffer = nullptr;
  DType dtype = DType::f32;
  int rank = 0;
  std::array<int64_t, kMaxRank> shape{};
  std::array<int64_t, kMaxRank> strides{};
  int64_t offset = 0;

  int64_t numel() const;
  // dim(-1) is the last dimension.
  int64_t dim(int i) const;
  int64_t stride(int i) const;
  bool contiguous() const;
  // Innermost dimension contiguous; outer dimensions may be strided (row pitch).
  bool rows_contiguous() const;
  std::string str() const;  // "f32[2,3,4]"
  bool same_shape(const TensorView& o) const;

  // Zero-copy reshapes; throw tessera::Error when the layout does not allow one.
  TensorView slice(int dim, int64_t start, int64_t length) const;
  TensorView reshape(std::initializer_list<int64_t> dims) const;
  TensorView reshape(std::span<const int64_t> dims) const;
  TensorView permute(std::initializer_list<int> order) const;
  TensorView transpose(int a, int b) const;
};

class Context;

// Owns a device buffer holding a contiguous tensor. Move-only; borrows the Context.
class Tensor {
 public:
  Tensor() = default;
  Tensor(Context& ctx, DType dtype, std::initializer_list<int64_t> shape, std::string_view name = "tensor");
  Tensor(Context& ctx, DType dtype, std::span<const int64_t> shape, std::string_view name = "tensor");

  // Convenience constructors that upload host data.
  static Tensor from_f32(Context& ctx, std::span<const float> data, std::initializer_list<int64_t> shape,
                         DType dtype = DType::f32, std::string_view name = "tensor");
  static Tensor from_i32(Context& ctx, std::span<const int32_t> data, std::initializer_list<int64_t> shape,
                         std::string_view name = "tensor");

  TensorView view() const;
  operator TensorView() const { return view(); }
  const Buffer& buffer() const { return buffer_; }
  DType dtype() const { return view_.dtype; }
  int rank() const { return view_.rank; }
  int64_t dim(int i) const { return view_.dim(i); }
  int64_t numel() const { return view_.numel(); }
  bool valid() const { return buffer_.valid(); }
  std::string str() const { return view_.str(); }

 private:
  Buffer buffer_;
  TensorView view_;
};

// Host transfers. They wait for nothing: call them when no stream that touches the tensor is in flight.
// f32 data written to an f16 tensor is converted; reads of f16 convert back.
void upload(const TensorView& dst, std::span<const float> src);
void upload(const TensorView& dst, std::span<const int32_t> src);
void upload_bytes(const TensorView& dst, const void* src, size_t bytes);
std::vector<float> download_f32(const TensorView& src);
std::vector<int32_t> download_i32(const TensorView& src);

}  // namespace tessera::gpu
