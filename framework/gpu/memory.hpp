#pragma once
// Device memory: large blocks suballocated into buffers, under a budget that fails cleanly.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <vulkan/vulkan.h>

namespace tessera::gpu {

class Context;

enum class MemoryKind {
  device,   // where tensors live; host-mappable on unified-memory devices (lavapipe, integrated GPUs)
  staging,  // host-visible, coherent: transfers to and from device memory
};

struct MemoryStats {
  uint64_t budget = 0;
  uint64_t in_use = 0;     // bytes handed out to buffers
  uint64_t reserved = 0;   // bytes of VkDeviceMemory held in blocks
  uint64_t peak_in_use = 0;
  uint64_t device_in_use = 0;       // tensors only, without staging buffers
  uint64_t peak_device_in_use = 0;  // what a model needs on a discrete GPU
  uint32_t blocks = 0;
};

// Suballocates VkDeviceMemory blocks (64 MiB, or one dedicated block for a larger request).
// Thread-safe. Borrowed by buffers; must outlive them (the Context guarantees that).
class Allocator {
 public:
  struct Allocation {
    VkDeviceMemory memory = VK_NULL_HANDLE;
    uint64_t offset = 0;
    uint64_t size = 0;
    void* mapped = nullptr;  // host pointer to offset, when the memory is mappable
    uint32_t block = 0;
    bool host_visible = false;
    MemoryKind kind = MemoryKind::device;
  };

  Allocator(VkPhysicalDevice physical, VkDevice device, uint64_t budget_bytes);
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Throws tessera::Error naming `what`, the size, what is in use and the budget when over budget.
  Allocation allocate(const VkMemoryRequirements& req, MemoryKind kind, std::string_view what);
  void free(const Allocation& a);
  MemoryStats stats() const;
  // Starts the peaks again from what is in use now (benchmarks measure one model at a time).
  void reset_peaks();
  bool device_memory_is_mappable() const;

 private:
  struct Block {
    VkDeviceMemory memory = VK_NULL_HANDLE;
    uint64_t size = 0;
    uint32_t type = 0;
    void* mapped = nullptr;
    std::map<uint64_t, uint64_t> free_ranges;  // offset -> size, coalesced
    bool dedicated = false;
  };
  uint32_t choose_type(uint32_t type_bits, MemoryKind kind) const;

  VkDevice device_;
  VkPhysicalDeviceMemoryProperties props_{};
  uint64_t budget_;
  uint64_t in_use_ = 0;
  uint64_t reserved_ = 0;
  uint64_t peak_ = 0;
  uint64_t device_in_use_ = 0;
  uint64_t device_peak_ = 0;
  std::vector<std::unique_ptr<Block>> blocks_;
  mutable std::mutex mutex_;
};

// The texel formats a kernel may read a buffer through.
enum class TexelFormat : uint8_t { r32f, rgba32f, r16f, rgba16f, r32i, rgba32i, count };
VkFormat vk_format(TexelFormat f);
uint32_t texel_bytes(TexelFormat f);

// A VkBuffer bound to suballocated memory. Move-only; borrows the Context, which must outlive it.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Context& ctx, uint64_t bytes, MemoryKind kind, std::string_view what);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer handle() const { return buffer_; }
  uint64_t size() const { return size_; }
  void* mapped() const { return alloc_.mapped; }
  bool valid() const { return buffer_ != VK_NULL_HANDLE; }
  Context& context() const { return *ctx_; }
  // A view of the whole buffer through `format`, made on first use.
  VkBufferView view(TexelFormat format) const;

 private:
  void release() noexcept;
  Context* ctx_ = nullptr;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  uint64_t size_ = 0;
  Allocator::Allocation alloc_{};
  mutable std::array<VkBufferView, static_cast<size_t>(TexelFormat::count)> views_{};
};

}  // namespace tessera::gpu
