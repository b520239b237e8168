#include "gpu/memory.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include "gpu/context.hpp"
#include "gpu/error.hpp"

namespace tessera::gpu {
namespace {

constexpr uint64_t kBlockBytes = 64ull << 20;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

Allocator::Allocator(VkPhysicalDevice physical, VkDevice device, uint64_t budget_bytes)
    : device_(device), budget_(budget_bytes) {
  vkGetPhysicalDeviceMemoryProperties(physical, &props_);
}

Allocator::~Allocator() {
  for (auto& b : blocks_) {
    if (!b) continue;
    if (b->mapped) vkUnmapMemory(device_, b->memory);
    vkFreeMemory(device_, b->memory, nullptr);
  }
}

bool Allocator::device_memory_is_mappable() const {
  const uint32_t t = choose_type(~0u, MemoryKind::device);
  return props_.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
}

uint32_t Allocator::choose_type(uint32_t type_bits, MemoryKind kind) const {
  uint64_t largest_local = 0;
  for (uint32_t h = 0; h < props_.memoryHeapCount; ++h)
    if (props_.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      largest_local = std::max<uint64_t>(largest_local, props_.memoryHeaps[h].size);
  int best = -1;
  int best_score = -1;
  for (uint32_t t = 0; t < props_.memoryTypeCount; ++t) {
    if (!(type_bits & (1u << t))) continue;
    const VkMemoryPropertyFlags f = props_.memoryTypes[t].propertyFlags;
    const uint64_t heap = props_.memoryHeaps[props_.memoryTypes[t].heapIndex].size;
    const bool local = f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const bool visible = (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    int score = -1;
    if (kind == MemoryKind::device) {
      if (!local) continue;
      // A mappable type backed by the whole of VRAM (unified memory, resizable BAR) saves staging copies;
      // a small mappable window (the 256 MiB BAR) is not worth spending on tensors.
      score = 1 + ((visible && heap >= largest_local) ? 1 : 0);
    } else {
      if (!visible) continue;
      score = 1 + ((f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) ? 1 : 0);
    }
    if (score > best_score) {
      best_score = score;
      best = static_cast<int>(t);
    }
  }
  if (best < 0)
    throw Error(std::string("no Vulkan memory type suits ") + (kind == MemoryKind::device ? "device" : "staging") +
                " buffers on this device");
  return static_cast<uint32_t>(best);
}

Allocator::Allocation Allocator::allocate(const VkMemoryRequirements& req, MemoryKind kind, std::string_view what) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (in_use_ + req.size > budget_)
    throw Error("GPU memory budget exceeded allocating " + std::string(what) + ": requested " + mib(req.size) +
                ", in use " + mib(in_use_) + ", budget " + mib(budget_) +
                " (raise it with TESSERA_MEMORY_BUDGET=<MiB>)");
  const uint32_t type = choose_type(req.memoryTypeBits, kind);
  const bool visible = props_.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;

  auto take = [&](uint32_t index, Block& b) -> std::optional<Allocation> {
    for (auto it = b.free_ranges.begin(); it != b.free_ranges.end(); ++it) {
      const uint64_t start = align_up(it->first, req.alignment);
      const uint64_t end = it->first + it->second;
      if (start + req.size > end) continue;
      const uint64_t range_start = it->first;
      b.free_ranges.erase(it);
      if (start > range_start) b.free_ranges[range_start] = start - range_start;
      if (end > start + req.size) b.free_ranges[start + req.size] = end - (start + req.size);
      Allocation a;
      a.memory = b.memory;
      a.offset = start;
      a.size = req.size;
      a.block = index;
      a.host_visible = b.mapped != nullptr;
      a.mapped = b.mapped ? static_cast<char*>(b.mapped) + start : nullptr;
      return a;
    }
    return std::nullopt;
  };

  std::optional<Allocation> result;
  const bool dedicated = req.size > kBlockBytes / 2;
  if (!dedicated) {
    for (uint32_t i = 0; i < blocks_.size() && !result; ++i)
      if (blocks_[i] && !blocks_[i]->dedicated && blocks_[i]->type == type) result = take(i, *blocks_[i]);
  }
  if (!result) {
    auto block = std::make_unique<Block>();
    block->size = dedicated ? req.size : kBlockBytes;
    block->type = type;
    block->dedicated = dedicated;
    auto info = vk_struct<VkMemoryAllocateInfo>(VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO);
    info.allocationSize = block->size;
    info.memoryTypeIndex = type;
    VkResult r = vkAllocateMemory(device_, &info, nullptr, &block->memory);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
      throw Error("the device is out of memory allocating " + std::string(what) + ": requested " + mib(req.size) +
                  ", in use " + mib(in_use_) + ", reserved " + mib(reserved_));
    TESSERA_VK(r);
    if (visible) TESSERA_VK(vkMapMemory(device_, block->memory, 0, VK_WHOLE_SIZE, 0, &block->mapped));
    block->free_ranges[0] = block->size;
    reserved_ += block->size;
    uint32_t index = 0;
    while (index < blocks_.size() && blocks_[index]) ++index;
    if (index == blocks_.size()) blocks_.emplace_back();
    blocks_[index] = std::move(block);
    result = take(index, *blocks_[index]);
  }
  in_use_ += req.size;
  peak_ = std::max(peak_, in_use_);
  result->kind = kind;
  if (kind == MemoryKind::device) {
    device_in_use_ += req.size;
    device_peak_ = std::max(device_peak_, device_in_use_);
  }
  return *result;
}

void Allocator::free(const Allocation& a) {
  if (!a.memory) return;
  std::lock_guard<std::mutex> lock(mutex_);
  Block& b = *blocks_.at(a.block);
  in_use_ -= a.size;
  if (a.kind == MemoryKind::device) device_in_use_ -= a.size;
  auto [it, inserted] = b.free_ranges.emplace(a.offset, a.size);
  (void)inserted;
  auto next = std::next(it);
  if (next != b.free_ranges.end() && it->first + it->second == next->first) {
    it->second += next->second;
    b.free_ranges.erase(next);
  }
  if (it != b.free_ranges.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      b.free_ranges.erase(it);
    }
  }
  // Give dedicated blocks back at once; keep pooled blocks for reuse.
  if (b.dedicated && b.free_ranges.size() == 1 && b.free_ranges.begin()->second == b.size) {
    if (b.mapped) vkUnmapMemory(device_, b.memory);
    vkFreeMemory(device_, b.memory, nullptr);
    reserved_ -= b.size;
    blocks_[a.block].reset();
  }
}

MemoryStats Allocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  MemoryStats s;
  s.budget = budget_;
  s.in_use = in_use_;
  s.reserved = reserved_;
  s.peak_in_use = peak_;
  s.device_in_use = device_in_use_;
  s.peak_device_in_use = device_peak_;
  for (auto& b : blocks_) s.blocks += b ? 1 : 0;
  return s;
}

void Allocator::reset_peaks() {
  std::lock_guard<std::mutex> lock(mutex_);
  peak_ = in_use_;
  device_peak_ = device_in_use_;
}

VkFormat vk_format(TexelFormat f) {
  switch (f) {
    case TexelFormat::r32f:
      return VK_FORMAT_R32_SFLOAT;
    case TexelFormat::rgba32f:
      return VK_FORMAT_R32G32B32A32_SFLOAT;
    case TexelFormat::r16f:
      return VK_FORMAT_R16_SFLOAT;
    case TexelFormat::rgba16f:
      return VK_FORMAT_R16G16B16A16_SFLOAT;
    case TexelFormat::r32i:
      return VK_FORMAT_R32_SINT;
    case TexelFormat::rgba32i:
      return VK_FORMAT_R32G32B32A32_SINT;
    default:
      return VK_FORMAT_UNDEFINED;
  }
}

uint32_t texel_bytes(TexelFormat f) {
  switch (f) {
    case TexelFormat::r32f:
    case TexelFormat::r32i:
      return 4;
    case TexelFormat::rgba32f:
    case TexelFormat::rgba32i:
      return 16;
    case TexelFormat::r16f:
      return 2;
    case TexelFormat::rgba16f:
      return 8;
    default:
      return 0;
  }
}

Buffer::Buffer(Context& ctx, uint64_t bytes, MemoryKind kind, std::string_view what) : ctx_(&ctx) {
  // Round up so that every texel view covers the whole buffer and zero-sized tensors still bind.
  size_ = std::max<uint64_t>(align_up(bytes, 16), 16);
  auto info = vk_struct<VkBufferCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO);
  info.size = size_;
  info.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  if (kind == MemoryKind::device)
    info.usage |= VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  TESSERA_VK(vkCreateBuffer(ctx.device(), &info, nullptr, &buffer_));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(ctx.device(), buffer_, &req);
  try {
    alloc_ = ctx.allocator().allocate(req, kind, what);
    TESSERA_VK(vkBindBufferMemory(ctx.device(), buffer_, alloc_.memory, alloc_.offset));
  } catch (...) {
    release();
    throw;
  }
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept { *this = std::move(other); }

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    ctx_ = other.ctx_;
    buffer_ = std::exchange(other.buffer_, VK_NULL_HANDLE);
    size_ = std::exchange(other.size_, 0);
    alloc_ = std::exchange(other.alloc_, Allocator::Allocation{});
    views_ = std::exchange(other.views_, {});
  }
  return *this;
}

void Buffer::release() noexcept {
  if (!ctx_) return;
  for (auto& v : views_)
    if (v) vkDestroyBufferView(ctx_->device(), std::exchange(v, VK_NULL_HANDLE), nullptr);
  if (buffer_) vkDestroyBuffer(ctx_->device(), std::exchange(buffer_, VK_NULL_HANDLE), nullptr);
  if (alloc_.memory) ctx_->allocator().free(std::exchange(alloc_, Allocator::Allocation{}));
}

VkBufferView Buffer::view(TexelFormat format) const {
  VkBufferView& v = views_[static_cast<size_t>(format)];
  if (v) return v;
  if ((format == TexelFormat::r16f || format == TexelFormat::rgba16f) && !ctx_->info().features.f16_texel_fetch)
    throw Error(ctx_->info().name + " cannot read f16 tensors through texel buffers; keep this tensor in f32");
  const uint64_t texels = size_ / texel_bytes(format);
  if (texels > ctx_->info().features.max_texel_buffer_elements)
    throw Error("a buffer of " + mib(size_) + " exceeds this device's texel buffer limit of " +
                std::to_string(ctx_->info().features.max_texel_buffer_elements) + " texels");
  auto info = vk_struct<VkBufferViewCreateInfo>(VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO);
  info.buffer = buffer_;
  info.format = vk_format(format);
  info.offset = 0;
  info.range = texels * texel_bytes(format);
  TESSERA_VK(vkCreateBufferView(ctx_->device(), &info, nullptr, &v));
  return v;
}

}  // namespace tessera::gpu
