#pragma once
// The Vulkan device Tessera runs on: one per process is typical. Everything else borrows it.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <vulkan/vulkan.h>

#include "gpu/device.hpp"
#include "gpu/kernel.hpp"
#include "gpu/memory.hpp"

namespace tessera::gpu {

struct ContextOptions {
  std::string device;            // "" = best; an index or a name substring (TESSERA_DEVICE)
  bool validate = false;         // VK_LAYER_KHRONOS_validation (TESSERA_VALIDATE=1)
  bool profile = false;          // GPU timestamps per dispatch, table at exit (TESSERA_PROFILE=1)
  uint64_t memory_budget = 0;    // bytes; 0 = 90% of the largest device-local heap (TESSERA_MEMORY_BUDGET, MiB)
  bool pipeline_cache = true;    // keep compiled pipelines on disk

  // Options taken from the TESSERA_* environment variables.
  static ContextOptions from_environment();
};

// Per-label GPU time collected from stream timestamps.
class Profiler {
 public:
  void add(const std::string& label, double ns);
  // A table sorted by total time: label, calls, total ms, mean us, share.
  std::string table() const;
  void clear();
  bool empty() const;

 private:
  struct Entry {
    uint64_t calls = 0;
    double total_ns = 0;
  };
  std::map<std::string, Entry> entries_;
  mutable std::mutex mutex_;
};

class Context {
 public:
  explicit Context(const ContextOptions& options = ContextOptions::from_environment());
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  VkDevice device() const { return device_; }
  VkPhysicalDevice physical_device() const { return physical_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }
  const DeviceInfo& info() const { return info_; }
  const DeviceFeatures& features() const { return info_.features; }
  const Instance& instance() const { return *instance_; }
  Allocator& allocator() { return *allocator_; }
  const ContextOptions& options() const { return options_; }
  Profiler& profiler() { return profiler_; }
  bool profiling() const { return options_.profile && info_.features.timestamps; }
  const PipelineCacheFile* pipeline_cache() const { return cache_.get(); }

  // The pipeline for `spec`, compiled on first use (through the on-disk cache) and kept until the
  // Context dies. Thread-safe.
  const Kernel& kernel(const KernelSpec& spec);
  size_t kernel_count() const;

  // Whole-submission GPU timing for benchmarks: when on, every stream brackets each submission with two
  // timestamps and adds the span to gpu_busy_ns(), so wall time minus busy time is the host's overhead
  // (recording, submitting, waiting, reading back). Thread-safe.
  void set_busy_timing(bool on) { busy_timing_ = on && info_.features.timestamps; }
  bool busy_timing() const { return busy_timing_; }
  void add_busy_ns(double ns) { busy_ns_ += static_cast<uint64_t>(ns); }
  double gpu_busy_ns() const { return static_cast<double>(busy_ns_.load()); }

  // Serialises queue submissions from several threads.
  std::mutex& queue_mutex() { return queue_mutex_; }

 private:
  ContextOptions options_;
  std::unique_ptr<Instance> instance_;
  DeviceInfo info_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  std::unique_ptr<Allocator> allocator_;
  std::unique_ptr<PipelineCacheFile> cache_;
  std::map<std::string, std::unique_ptr<Kernel>> kernels_;
  mutable std::mutex kernels_mutex_;
  std::mutex queue_mutex_;
  Profiler profiler_;
  std::atomic<bool> busy_timing_{false};
  std::atomic<uint64_t> busy_ns_{0};
};

}  // namespace tessera::gpu
