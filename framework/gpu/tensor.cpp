#include "gpu/tensor.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#include "gpu/context.hpp"
#include "gpu/error.hpp"

namespace tessera::gpu {

uint32_t dtype_size(DType t) { return t == DType::f16 ? 2 : 4; }

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::i32:
      return "i32";
  }
  return "?";
}

uint16_t float_to_half(float f) {
  // Round to nearest even, with overflow to infinity and gradual underflow.
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs < 0x38800000u) {                                              // subnormal half or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // half subnormal unit is 2^-24
    const uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    return static_cast<uint16_t>(sign | (q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0)));
  }
  const uint32_t e = (abs >> 23) - 112;
  const uint32_t mant = abs & 0x7fffffu;
  uint32_t h = (e << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1f;
  const uint32_t m = h & 0x3ffu;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112) << 23) | (m << 13));
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[i];
  return n;
}

int64_t TensorView::dim(int i) const {
  const int k = i < 0 ? rank + i : i;
  if (k < 0 || k >= rank) throw Error("dimension " + std::to_string(i) + " is out of range for " + str());
  return shape[k];
}

int64_t TensorView::stride(int i) const {
  const int k = i < 0 ? rank + i : i;
  if (k < 0 || k >= rank) throw Error("dimension " + std::to_string(i) + " is out of range for " + str());
  return strides[k];
}

bool TensorView::contiguous() const {
  int64_t expect = 1;
  for (int i = rank - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

bool TensorView::rows_contiguous() const { return rank == 0 || strides[rank - 1] == 1 || shape[rank - 1] == 1; }

std::string TensorView::str() const {
  std::string s = dtype_name(dtype);
  s += "[";
  for (int i = 0; i < rank; ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  s += "]";
  return s;
}

bool TensorView::same_shape(const TensorView& o) const {
  if (rank != o.rank) return false;
  for (int i = 0; i < rank; ++i)
    if (shape[i] != o.shape[i]) return false;
  return true;
}

TensorView TensorView::slice(int d, int64_t start, int64_t length) const {
  const int k = d < 0 ? rank + d : d;
  if (k < 0 || k >= rank || start < 0 || length < 0 || start + length > shape[k])
    throw Error("slice(" + std::to_string(d) + ", " + std::to_string(start) + ", " + std::to_string(length) +
                ") is out of range for " + str());
  TensorView v = *this;
  v.offset += start * strides[k];
  v.shape[k] = length;
  return v;
}

TensorView TensorView::reshape(std::initializer_list<int64_t> dims) const {
  return reshape(std::span<const int64_t>(dims.begin(), dims.size()));
}

TensorView TensorView::reshape(std::span<const int64_t> dims) const {
  if (dims.size() > kMaxRank) throw Error("tensors have at most 4 dimensions; reshape asked for " + std::to_string(dims.size()));
  int64_t n = 1;
  int infer = -1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      if (infer >= 0) throw Error("reshape of " + str() + " has more than one -1");
      infer = static_cast<int>(i);
    } else {
      n *= dims[i];
    }
  }
  TensorView v = *this;
  v.rank = static_cast<int>(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) v.shape[i] = dims[i];
  if (infer >= 0) {
    if (n == 0 || numel() % n != 0) throw Error("cannot reshape " + str() + ": -1 does not divide evenly");
    v.shape[infer] = numel() / n;
    n *= v.shape[infer];
  }
  if (n != numel()) throw Error("cannot reshape " + str() + " to " + std::to_string(n) + " elements");
  if (!contiguous()) throw Error("cannot reshape non-contiguous " + str() + " without a copy");
  int64_t s = 1;
  for (int i = v.rank - 1; i >= 0; --i) {
    v.strides[i] = s;
    s *= v.shape[i];
  }
  return v;
}

TensorView TensorView::permute(std::initializer_list<int> order) const {
  if (static_cast<int>(order.size()) != rank) throw Error("permute of " + str() + " needs " + std::to_string(rank) + " axes");
  TensorView v = *this;
  bool seen[kMaxRank] = {};
  int i = 0;
  for (int axis : order) {
    if (axis < 0 || axis >= rank || seen[axis]) throw Error("permute of " + str() + " has a bad axis list");
    seen[axis] = true;
    v.shape[i] = shape[axis];
    v.strides[i] = strides[axis];
    ++i;
  }
  return v;
}

TensorView TensorView::transpose(int a, int b) const {
  const int ka = a < 0 ? rank + a : a;
  const int kb = b < 0 ? rank + b : b;
  if (ka < 0 || kb < 0 || ka >= rank || kb >= rank) throw Error("transpose axes out of range for " + str());
  TensorView v = *this;
  std::swap(v.shape[ka], v.shape[kb]);
  std::swap(v.strides[ka], v.strides[kb]);
  return v;
}

Tensor::Tensor(Context& ctx, DType dtype, std::initializer_list<int64_t> shape, std::string_view name)
    : Tensor(ctx, dtype, std::span<const int64_t>(shape.begin(), shape.size()), name) {}

Tensor::Tensor(Context& ctx, DType dtype, std::span<const int64_t> shape, std::string_view name) {
  if (shape.size() > kMaxRank) throw Error("tensor " + std::string(name) + " has more than 4 dimensions");
  view_.dtype = dtype;
  view_.rank = static_cast<int>(shape.size());
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) throw Error("tensor " + std::string(name) + " has a negative dimension");
    view_.shape[i] = shape[i];
    n *= shape[i];
  }
  int64_t s = 1;
  for (int i = view_.rank - 1; i >= 0; --i) {
    view_.strides[i] = s;
    s *= view_.shape[i];
  }
  buffer_ = Buffer(ctx, static_cast<uint64_t>(n) * dtype_size(dtype), MemoryKind::device,
                   std::string(name) + " " + view_.str());
  view_.buffer = &buffer_;
}

TensorView Tensor::view() const {
  TensorView v = view_;
  v.buffer = &buffer_;  // the Tensor may have moved since construction
  return v;
}

Tensor Tensor::from_f32(Context& ctx, std::span<const float> data, std::initializer_list<int64_t> shape, DType dtype,
                        std::string_view name) {
  Tensor t(ctx, dtype, shape, name);
  upload(t, data);
  return t;
}

Tensor Tensor::from_i32(Context& ctx, std::span<const int32_t> data, std::initializer_list<int64_t> shape,
                        std::string_view name) {
  Tensor t(ctx, DType::i32, shape, name);
  upload(t, data);
  return t;
}

namespace {

// Runs `record` in a one-off command buffer and waits for it.
template <class F>
void one_shot(Context& ctx, F&& record) {
  VkDevice dev = ctx.device();
  auto pinfo = vk_struct<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
  pinfo.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
  pinfo.queueFamilyIndex = ctx.queue_family();
  VkCommandPool pool;
  TESSERA_VK(vkCreateCommandPool(dev, &pinfo, nullptr, &pool));
  VkFence fence = VK_NULL_HANDLE;
  try {
    auto ainfo = vk_struct<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
    ainfo.commandPool = pool;
    ainfo.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ainfo.commandBufferCount = 1;
    VkCommandBuffer cb;
    TESSERA_VK(vkAllocateCommandBuffers(dev, &ainfo, &cb));
    auto binfo = vk_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
    binfo.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    TESSERA_VK(vkBeginCommandBuffer(cb, &binfo));
    record(cb);
    TESSERA_VK(vkEndCommandBuffer(cb));
    auto finfo = vk_struct<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
    TESSERA_VK(vkCreateFence(dev, &finfo, nullptr, &fence));
    auto sinfo = vk_struct<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
    sinfo.commandBufferCount = 1;
    sinfo.pCommandBuffers = &cb;
    {
      std::lock_guard<std::mutex> lock(ctx.queue_mutex());
      TESSERA_VK(vkQueueSubmit(ctx.queue(), 1, &sinfo, fence));
    }
    TESSERA_VK(vkWaitForFences(dev, 1, &fence, VK_TRUE, UINT64_MAX));
  } catch (...) {
    if (fence) vkDestroyFence(dev, fence, nullptr);
    vkDestroyCommandPool(dev, pool, nullptr);
    throw;
  }
  vkDestroyFence(dev, fence, nullptr);
  vkDestroyCommandPool(dev, pool, nullptr);
}

void check_view(const TensorView& v, const char* what) {
  if (!v.buffer || !v.buffer->valid()) throw Error(std::string(what) + ": the tensor has no storage");
}

void write_bytes(const TensorView& dst, const void* src, uint64_t offset, uint64_t bytes) {
  const Buffer& buf = *dst.buffer;
  if (offset + bytes > buf.size()) throw Error("upload to " + dst.str() + " runs past the end of its buffer");
  if (buf.mapped()) {
    std::memcpy(static_cast<char*>(buf.mapped()) + offset, src, bytes);
    return;
  }
  Context& ctx = buf.context();
  Buffer staging(ctx, bytes, MemoryKind::staging, "upload staging");
  std::memcpy(staging.mapped(), src, bytes);
  one_shot(ctx, [&](VkCommandBuffer cb) {
    VkBufferCopy region{0, offset, bytes};
    vkCmdCopyBuffer(cb, staging.handle(), buf.handle(), 1, &region);
  });
}

void read_bytes(const TensorView& src, void* dst, uint64_t offset, uint64_t bytes) {
  const Buffer& buf = *src.buffer;
  if (offset + bytes > buf.size()) throw Error("download from " + src.str() + " runs past the end of its buffer");
  if (buf.mapped()) {
    std::memcpy(dst, static_cast<const char*>(buf.mapped()) + offset, bytes);
    return;
  }
  Context& ctx = buf.context();
  Buffer staging(ctx, bytes, MemoryKind::staging, "download staging");
  one_shot(ctx, [&](VkCommandBuffer cb) {
    VkBufferCopy region{offset, 0, bytes};
    vkCmdCopyBuffer(cb, buf.handle(), staging.handle(), 1, &region);
  });
  std::memcpy(dst, staging.mapped(), bytes);
}

// Visits the linear element index of every element of `v`, in row-major order.
template <class F>
void for_each_offset(const TensorView& v, F&& f) {
  std::array<int64_t, kMaxRank> idx{};
  const int64_t n = v.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = v.offset;
    for (int d = 0; d < v.rank; ++d) off += idx[d] * v.strides[d];
    f(i, off);
    for (int d = v.rank - 1; d >= 0; --d) {
      if (++idx[d] < v.shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Copies between host and a possibly strided view: one block when contiguous, element-wise otherwise.
void transfer(const TensorView& v, void* host, bool to_device) {
  const uint32_t es = dtype_size(v.dtype);
  const uint64_t n = static_cast<uint64_t>(v.numel());
  if (v.contiguous()) {
    if (to_device)
      write_bytes(v, host, static_cast<uint64_t>(v.offset) * es, n * es);
    else
      read_bytes(v, host, static_cast<uint64_t>(v.offset) * es, n * es);
    return;
  }
  // Strided: move the covering range once, scatter or gather on the host.
  int64_t lo = v.offset, hi = v.offset;
  for (int d = 0; d < v.rank; ++d) {
    if (v.shape[d] == 0) return;
    const int64_t span = (v.shape[d] - 1) * v.strides[d];
    (span < 0 ? lo : hi) += span;
  }
  std::vector<uint8_t> range(static_cast<size_t>(hi - lo + 1) * es);
  read_bytes(v, range.data(), static_cast<uint64_t>(lo) * es, range.size());
  auto* h = static_cast<uint8_t*>(host);
  for_each_offset(v, [&](int64_t i, int64_t off) {
    uint8_t* r = range.data() + (off - lo) * es;
    if (to_device)
      std::memcpy(r, h + i * es, es);
    else
      std::memcpy(h + i * es, r, es);
  });
  if (to_device) write_bytes(v, range.data(), static_cast<uint64_t>(lo) * es, range.size());
}

}  // namespace

void upload_bytes(const TensorView& dst, const void* src, size_t bytes) {
  check_view(dst, "upload");
  if (bytes != static_cast<size_t>(dst.numel()) * dtype_size(dst.dtype))
    throw Error("upload of " + std::to_string(bytes) + " bytes into " + dst.str() + " which holds " +
                std::to_string(dst.numel() * dtype_size(dst.dtype)));
  transfer(dst, const_cast<void*>(src), true);
}

void upload(const TensorView& dst, std::span<const float> src) {
  check_view(dst, "upload");
  if (static_cast<int64_t>(src.size()) != dst.numel())
    throw Error("upload of " + std::to_string(src.size()) + " floats into " + dst.str());
  if (dst.dtype == DType::f32) return upload_bytes(dst, src.data(), src.size_bytes());
  if (dst.dtype == DType::f16) {
    std::vector<uint16_t> h(src.size());
    for (size_t i = 0; i < src.size(); ++i) h[i] = float_to_half(src[i]);
    return upload_bytes(dst, h.data(), h.size() * 2);
  }
  throw Error("upload of floats into integer tensor " + dst.str());
}

void upload(const TensorView& dst, std::span<const int32_t> src) {
  check_view(dst, "upload");
  if (dst.dtype != DType::i32) throw Error("upload of integers into " + dst.str());
  if (static_cast<int64_t>(src.size()) != dst.numel())
    throw Error("upload of " + std::to_string(src.size()) + " integers into " + dst.str());
  upload_bytes(dst, src.data(), src.size_bytes());
}

std::vector<float> download_f32(const TensorView& src) {
  check_view(src, "download");
  const size_t n = static_cast<size_t>(src.numel());
  if (src.dtype == DType::f32) {
    std::vector<float> out(n);
    transfer(src, out.data(), false);
    return out;
  }
  if (src.dtype == DType::f16) {
    std::vector<uint16_t> h(n);
    transfer(src, h.data(), false);
    std::vector<float> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = half_to_float(h[i]);
    return out;
  }
  throw Error("download_f32 of integer tensor " + src.str());
}

std::vector<int32_t> download_i32(const TensorView& src) {
  check_view(src, "download");
  if (src.dtype != DType::i32) throw Error("download_i32 of " + src.str());
  std::vector<int32_t> out(static_cast<size_t>(src.numel()));
  transfer(src, out.data(), false);
  return out;
}

}  // namespace tessera::gpu
