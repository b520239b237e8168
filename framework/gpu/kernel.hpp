#pragma once
// Compute pipelines built from embedded SPIR-V, their layouts, and the on-disk pipeline cache.
#include <cstdint>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

namespace tessera::gpu {

class Context;

// How a kernel reaches one binding. Reads go through texel buffers wherever the data allows: on
// lavapipe a texel fetch costs ~1/30 of a storage-buffer load, and on real GPUs it uses the texture cache.
enum class Access : uint8_t {
  texel,    // uniform texel buffer (samplerBuffer / isamplerBuffer): read-only
  storage,  // storage buffer: read and written
};

// Everything that identifies a pipeline: the shader variant, its binding layout, the size of its push
// constant block and the values of its specialization constants (constant_id 0, 1, 2, ...).
struct KernelSpec {
  std::string shader;
  std::vector<Access> bindings;
  uint32_t push_bytes = 0;
  std::vector<int32_t> constants;
  // SPIR-V from outside the library (a plugin's own kernel); empty: the embedded variant named `shader`.
  // `shader` must then name it uniquely (the kernels service puts a hash of the words in it).
  std::vector<uint32_t> spirv = {};

  std::string key() const;
};

// A compute pipeline and its layouts. Owned by the Context's kernel registry; never destroyed while the
// Context lives, so references to it stay valid.
class Kernel {
 public:
  Kernel(Context& ctx, const KernelSpec& spec, VkPipelineCache cache);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  const KernelSpec& spec() const { return spec_; }
  VkPipeline pipeline() const { return pipeline_; }
  VkPipelineLayout layout() const { return layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }

 private:
  Context& ctx_;
  KernelSpec spec_;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipeline pipeline_ = VK_NULL_HANDLE;
};

// A VkPipelineCache persisted under the user's cache directory. The file is keyed by vendor, device,
// driver version, the driver's cache UUID and a hash of every embedded shader; a stale, foreign or
// corrupt file is ignored (with a debug log) and rewritten, never fatal.
class PipelineCacheFile {
 public:
  PipelineCacheFile(VkDevice device, const struct DeviceInfo& info);
  ~PipelineCacheFile();  // saves, if anything new was compiled
  PipelineCacheFile(const PipelineCacheFile&) = delete;
  PipelineCacheFile& operator=(const PipelineCacheFile&) = delete;

  VkPipelineCache handle() const { return cache_; }
  const std::string& path() const { return path_; }
  bool loaded_from_disk() const { return loaded_; }
  void mark_dirty() { dirty_ = true; }
  // Writes the cache now (atomically: a temporary file renamed over the old one).
  void save();

  static std::string default_directory();

 private:
  VkDevice device_;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  std::string path_;
  std::vector<uint8_t> header_;
  bool loaded_ = false;
  bool dirty_ = false;
};

}  // namespace tessera::gpu
