#pragma once
// A command stream: records many dispatches into one command buffer with the barriers their data
// dependencies need, then submits them as one submission.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include <vulkan/vulkan.h>

#include "gpu/kernel.hpp"
#include "gpu/memory.hpp"
#include "gpu/tensor.hpp"

namespace tessera::gpu {

class Context;

// One binding of a dispatch: which buffer, read through which texel format, or as a storage buffer.
struct Bind {
  const Buffer* buffer = nullptr;
  Access access = Access::storage;
  TexelFormat format = TexelFormat::r32f;  // texel bindings only
  bool writes = false;

  // Read through a texel buffer, `lanes` (1 or 4) components per fetch. f16 tensors read as floats.
  static Bind texel(const TensorView& t, int lanes = 1);
  // Read through a storage buffer.
  static Bind storage_read(const TensorView& t);
  // Written (and possibly read) through a storage buffer.
  static Bind storage_write(const TensorView& t);
};

// Not thread-safe: one thread records and submits a stream. Borrows the Context.
class Stream {
 public:
  explicit Stream(Context& ctx);
  ~Stream();  // waits for work in flight
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Records a dispatch of `groups` workgroups. `label` names it in profiles.
  void dispatch(const Kernel& kernel, std::span<const Bind> binds, const void* push, uint32_t push_bytes,
                std::array<uint32_t, 3> groups, const char* label);
  template <class Push>
  void dispatch(const Kernel& kernel, std::initializer_list<Bind> binds, const Push& push,
                std::array<uint32_t, 3> groups, const char* label) {
    dispatch(kernel, std::span<const Bind>(binds.begin(), binds.size()), &push, sizeof(Push), groups, label);
  }
  // Fills `bytes` bytes of `buffer` from `offset` with the 32-bit `value`.
  void fill(const Buffer& buffer, uint64_t offset, uint64_t bytes, uint32_t value);
  void copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset, uint64_t bytes);

  // Ends recording and submits; returns at once. Nothing may be recorded until wait().
  void submit();
  // Waits for the submission, collects profile timestamps and makes the stream ready to record again.
  void wait();
  // submit() then wait().
  void run();

  uint32_t recorded_dispatches() const { return dispatches_; }
  // GPU time of the last waited submission (ns), when the device has timestamps; else 0.
  double last_gpu_ns() const { return last_gpu_ns_; }
  // How many submissions this stream has made: a decode step should cost one.
  uint64_t submissions() const { return submissions_; }
  // Time every dispatch of this stream (besides TESSERA_PROFILE, which times all streams).
  void set_timing(bool on) { timing_ = on; }

 private:
  void begin_if_needed();
  void barrier_for(std::span<const Bind> binds);
  VkDescriptorSet allocate_set(VkDescriptorSetLayout layout);
  uint32_t next_query();

  Context& ctx_;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  std::vector<VkDescriptorPool> descriptor_pools_;
  size_t current_pool_ = 0;
  std::vector<VkQueryPool> query_pools_;
  uint32_t queries_used_ = 0;
  std::vector<std::string> query_labels_;
  std::vector<uint32_t> label_queries_;  // first of the two queries of each label
  int64_t busy_begin_query_ = -1;         // whole-submission timing (Context::busy_timing)
  bool recording_ = false;
  bool in_flight_ = false;
  bool timing_ = false;
  uint32_t dispatches_ = 0;
  uint64_t submissions_ = 0;
  double last_gpu_ns_ = 0;
  std::unordered_set<VkBuffer> read_since_barrier_;
  std::unordered_set<VkBuffer> written_since_barrier_;
};

// Workgroup counts for `n` items in groups of `per_group`, spread over x and y when x would exceed the
// device limit. Kernels rebuild the flat index as gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x.
std::array<uint32_t, 3> groups_for(const Context& ctx, uint64_t n, uint32_t per_group);

}  // namespace tessera::gpu
