#include "gpu/stream.hpp"

#include <algorithm>

#include "gpu/context.hpp"
#include "gpu/error.hpp"

namespace tessera::gpu {
namespace {

constexpr uint32_t kSetsPerPool = 512;
constexpr uint32_t kQueriesPerPool = 1024;

TexelFormat texel_format(DType dtype, int lanes) {
  switch (dtype) {
    case DType::f32:
      return lanes == 4 ? TexelFormat::rgba32f : TexelFormat::r32f;
    case DType::f16:
      return lanes == 4 ? TexelFormat::rgba16f : TexelFormat::r16f;
    case DType::i32:
      return lanes == 4 ? TexelFormat::rgba32i : TexelFormat::r32i;
  }
  return TexelFormat::r32f;
}

}  // namespace

Bind Bind::texel(const TensorView& t, int lanes) {
  if (!t.buffer) throw Error("binding a tensor with no storage");
  Bind b;
  b.buffer = t.buffer;
  b.access = Access::texel;
  b.format = texel_format(t.dtype, lanes);
  return b;
}

Bind Bind::storage_read(const TensorView& t) {
  if (!t.buffer) throw Error("binding a tensor with no storage");
  Bind b;
  b.buffer = t.buffer;
  return b;
}

Bind Bind::storage_write(const TensorView& t) {
  Bind b = storage_read(t);
  b.writes = true;
  return b;
}

std::array<uint32_t, 3> groups_for(const Context& ctx, uint64_t n, uint32_t per_group) {
  const uint64_t groups = (n + per_group - 1) / per_group;
  const uint64_t max_x = ctx.features().max_workgroup_count[0];
  if (groups <= max_x) return {static_cast<uint32_t>(std::max<uint64_t>(groups, 1)), 1, 1};
  const uint64_t y = (groups + max_x - 1) / max_x;
  if (y > ctx.features().max_workgroup_count[1])
    throw Error("a dispatch of " + std::to_string(groups) + " workgroups exceeds this device's limits");
  return {static_cast<uint32_t>((groups + y - 1) / y), static_cast<uint32_t>(y), 1};
}

Stream::Stream(Context& ctx) : ctx_(ctx) {
  VkDevice dev = ctx.device();
  auto pinfo = vk_struct<VkCommandPoolCreateInfo>(VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO);
  pinfo.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pinfo.queueFamilyIndex = ctx.queue_family();
  TESSERA_VK(vkCreateCommandPool(dev, &pinfo, nullptr, &pool_));
  try {
    auto ainfo = vk_struct<VkCommandBufferAllocateInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO);
    ainfo.commandPool = pool_;
    ainfo.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ainfo.commandBufferCount = 1;
    TESSERA_VK(vkAllocateCommandBuffers(dev, &ainfo, &cb_));
    auto finfo = vk_struct<VkFenceCreateInfo>(VK_STRUCTURE_TYPE_FENCE_CREATE_INFO);
    TESSERA_VK(vkCreateFence(dev, &finfo, nullptr, &fence_));
  } catch (...) {
    vkDestroyCommandPool(dev, pool_, nullptr);
    throw;
  }
}

Stream::~Stream() {
  VkDevice dev = ctx_.device();
  if (in_flight_) vkWaitForFences(dev, 1, &fence_, VK_TRUE, UINT64_MAX);
  for (VkQueryPool q : query_pools_) vkDestroyQueryPool(dev, q, nullptr);
  for (VkDescriptorPool p : descriptor_pools_) vkDestroyDescriptorPool(dev, p, nullptr);
  vkDestroyFence(dev, fence_, nullptr);
  vkDestroyCommandPool(dev, pool_, nullptr);
}

void Stream::begin_if_needed() {
  if (in_flight_) throw Error("a stream cannot record while its submission is in flight; call wait() first");
  if (recording_) return;
  auto binfo = vk_struct<VkCommandBufferBeginInfo>(VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO);
  binfo.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  TESSERA_VK(vkBeginCommandBuffer(cb_, &binfo));
  recording_ = true;
  dispatches_ = 0;
  queries_used_ = 0;
  query_labels_.clear();
  label_queries_.clear();
  read_since_barrier_.clear();
  written_since_barrier_.clear();
  busy_begin_query_ = -1;
  if (ctx_.busy_timing()) {
    const uint32_t q = next_query();
    vkCmdWriteTimestamp(cb_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, query_pools_[q / kQueriesPerPool], q % kQueriesPerPool);
    busy_begin_query_ = q;
  }
  // Work from earlier submissions (and host writes) is complete: the fence was waited.
}

void Stream::barrier_for(std::span<const Bind> binds) {
  bool hazard = false;
  for (const Bind& b : binds) {
    const VkBuffer h = b.buffer->handle();
    if (written_since_barrier_.count(h)) hazard = true;                  // read or write after write
    if (b.writes && read_since_barrier_.count(h)) hazard = true;         // write after read
  }
  if (hazard) {
    auto mb = vk_struct<VkMemoryBarrier>(VK_STRUCTURE_TYPE_MEMORY_BARRIER);
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(cb_, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
    read_since_barrier_.clear();
    written_since_barrier_.clear();
  }
  for (const Bind& b : binds) (b.writes ? written_since_barrier_ : read_since_barrier_).insert(b.buffer->handle());
}

VkDescriptorSet Stream::allocate_set(VkDescriptorSetLayout layout) {
  VkDevice dev = ctx_.device();
  for (;;) {
    if (current_pool_ == descriptor_pools_.size()) {
      VkDescriptorPoolSize sizes[] = {{VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, kSetsPerPool * 4},
                                      {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * 4}};
      auto info = vk_struct<VkDescriptorPoolCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO);
      info.maxSets = kSetsPerPool;
      info.poolSizeCount = 2;
      info.pPoolSizes = sizes;
      VkDescriptorPool pool;
      TESSERA_VK(vkCreateDescriptorPool(dev, &info, nullptr, &pool));
      descriptor_pools_.push_back(pool);
    }
    auto ainfo = vk_struct<VkDescriptorSetAllocateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO);
    ainfo.descriptorPool = descriptor_pools_[current_pool_];
    ainfo.descriptorSetCount = 1;
    ainfo.pSetLayouts = &layout;
    VkDescriptorSet set;
    VkResult r = vkAllocateDescriptorSets(dev, &ainfo, &set);
    if (r == VK_SUCCESS) return set;
    if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) TESSERA_VK(r);
    ++current_pool_;
  }
}

uint32_t Stream::next_query() {
  const uint32_t pool = queries_used_ / kQueriesPerPool;
  if (pool == query_pools_.size()) {
    auto info = vk_struct<VkQueryPoolCreateInfo>(VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO);
    info.queryType = VK_QUERY_TYPE_TIMESTAMP;
    info.queryCount = kQueriesPerPool;
    VkQueryPool q;
    TESSERA_VK(vkCreateQueryPool(ctx_.device(), &info, nullptr, &q));
    query_pools_.push_back(q);
  }
  const uint32_t index = queries_used_ % kQueriesPerPool;
  if (index == 0) vkCmdResetQueryPool(cb_, query_pools_[pool], 0, kQueriesPerPool);
  return queries_used_++;
}

void Stream::dispatch(const Kernel& kernel, std::span<const Bind> binds, const void* push, uint32_t push_bytes,
                      std::array<uint32_t, 3> groups, const char* label) {
  const KernelSpec& spec = kernel.spec();
  if (binds.size() != spec.bindings.size())
    throw Error(std::string(label) + ": kernel " + spec.shader + " takes " + std::to_string(spec.bindings.size()) +
                " bindings, got " + std::to_string(binds.size()));
  if (push_bytes != spec.push_bytes)
    throw Error(std::string(label) + ": kernel " + spec.shader + " takes " + std::to_string(spec.push_bytes) +
                " bytes of push constants, got " + std::to_string(push_bytes));
  for (const auto& g : groups)
    if (g == 0) return;  // nothing to do: an empty tensor
  begin_if_needed();

  VkDescriptorSet set = allocate_set(kernel.set_layout());
  std::vector<VkWriteDescriptorSet> writes(binds.size());
  std::vector<VkDescriptorBufferInfo> infos(binds.size());
  std::vector<VkBufferView> views(binds.size());
  const uint64_t max_range = ctx_.features().max_storage_buffer_range;
  for (uint32_t i = 0; i < binds.size(); ++i) {
    const Bind& b = binds[i];
    if (b.access != spec.bindings[i])
      throw Error(std::string(label) + ": binding " + std::to_string(i) + " of kernel " + spec.shader +
                  " has the wrong access kind");
    VkWriteDescriptorSet& w = writes[i];
    w = vk_struct<VkWriteDescriptorSet>(VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET);
    w.dstSet = set;
    w.dstBinding = i;
    w.descriptorCount = 1;
    if (b.access == Access::texel) {
      views[i] = b.buffer->view(b.format);
      w.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
      w.pTexelBufferView = &views[i];
    } else {
      if (b.buffer->size() > max_range)
        throw Error(std::string(label) + ": a " + std::to_string(b.buffer->size() >> 20) +
                    " MiB tensor exceeds this device's storage-buffer range of " + std::to_string(max_range >> 20) +
                    " MiB");
      infos[i] = {b.buffer->handle(), 0, VK_WHOLE_SIZE};
      w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      w.pBufferInfo = &infos[i];
    }
  }
  vkUpdateDescriptorSets(ctx_.device(), static_cast<uint32_t>(writes.size()), writes.data(), 0, nullptr);

  barrier_for(binds);
  vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.pipeline());
  vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, kernel.layout(), 0, 1, &set, 0, nullptr);
  if (push_bytes) vkCmdPushConstants(cb_, kernel.layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);

  const bool timed = (timing_ || ctx_.profiling()) && ctx_.features().timestamps;
  if (timed) {
    const uint32_t q = next_query();
    vkCmdWriteTimestamp(cb_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, query_pools_[q / kQueriesPerPool], q % kQueriesPerPool);
    label_queries_.push_back(q);
  }
  vkCmdDispatch(cb_, groups[0], groups[1], groups[2]);
  if (timed) {
    const uint32_t q = next_query();
    vkCmdWriteTimestamp(cb_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pools_[q / kQueriesPerPool],
                        q % kQueriesPerPool);
    query_labels_.emplace_back(label);
  }
  ++dispatches_;
}

void Stream::fill(const Buffer& buffer, uint64_t offset, uint64_t bytes, uint32_t value) {
  if (offset % 4 || bytes % 4) throw Error("fill needs 4-byte aligned offset and size");
  if (!bytes) return;
  begin_if_needed();
  Bind b;
  b.buffer = &buffer;
  b.writes = true;
  barrier_for(std::span<const Bind>(&b, 1));
  vkCmdFillBuffer(cb_, buffer.handle(), offset, bytes, value);
}

void Stream::copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset, uint64_t bytes) {
  if (!bytes) return;
  if (src_offset + bytes > src.size() || dst_offset + bytes > dst.size()) throw Error("copy runs past a buffer's end");
  begin_if_needed();
  Bind b[2];
  b[0].buffer = &src;
  b[1].buffer = &dst;
  b[1].writes = true;
  barrier_for(b);
  VkBufferCopy region{src_offset, dst_offset, bytes};
  vkCmdCopyBuffer(cb_, src.handle(), dst.handle(), 1, &region);
}

void Stream::submit() {
  if (in_flight_) throw Error("stream submitted twice without wait()");
  if (!recording_) return;
  if (busy_begin_query_ >= 0) {
    const uint32_t q = next_query();  // the submission's last query
    vkCmdWriteTimestamp(cb_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pools_[q / kQueriesPerPool],
                        q % kQueriesPerPool);
  }
  TESSERA_VK(vkEndCommandBuffer(cb_));
  recording_ = false;
  auto sinfo = vk_struct<VkSubmitInfo>(VK_STRUCTURE_TYPE_SUBMIT_INFO);
  sinfo.commandBufferCount = 1;
  sinfo.pCommandBuffers = &cb_;
  {
    std::lock_guard<std::mutex> lock(ctx_.queue_mutex());
    TESSERA_VK(vkQueueSubmit(ctx_.queue(), 1, &sinfo, fence_));
  }
  in_flight_ = true;
  ++submissions_;
}

void Stream::wait() {
  if (recording_) throw Error("wait() on a stream that was not submitted");
  if (!in_flight_) return;
  VkDevice dev = ctx_.device();
  VkResult r = vkWaitForFences(dev, 1, &fence_, VK_TRUE, UINT64_MAX);
  in_flight_ = false;
  TESSERA_VK(r);
  TESSERA_VK(vkResetFences(dev, 1, &fence_));
  last_gpu_ns_ = 0;
  if (queries_used_) {
    std::vector<uint64_t> stamps(queries_used_);
    for (uint32_t p = 0; p * kQueriesPerPool < queries_used_; ++p) {
      const uint32_t n = std::min(kQueriesPerPool, queries_used_ - p * kQueriesPerPool);
      TESSERA_VK(vkGetQueryPoolResults(dev, query_pools_[p], 0, n, n * sizeof(uint64_t), stamps.data() + p * kQueriesPerPool,
                                       sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    }
    const double period = ctx_.features().timestamp_period_ns;
    if (busy_begin_query_ >= 0)  // the submission's span: its first and its last query
      ctx_.add_busy_ns(static_cast<double>(stamps[queries_used_ - 1] - stamps[static_cast<size_t>(busy_begin_query_)]) *
                       period);
    for (size_t i = 0; i < query_labels_.size(); ++i) {
      const uint32_t q = label_queries_[i];
      const double ns = static_cast<double>(stamps[q + 1] - stamps[q]) * period;
      last_gpu_ns_ += ns;
      if (ctx_.profiling()) ctx_.profiler().add(query_labels_[i], ns);
    }
  }
  TESSERA_VK(vkResetCommandBuffer(cb_, 0));
  for (VkDescriptorPool p : descriptor_pools_) TESSERA_VK(vkResetDescriptorPool(dev, p, 0));
  current_pool_ = 0;
}

void Stream::run() {
  submit();
  wait();
}

}  // namespace tessera::gpu
