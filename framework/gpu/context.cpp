#include "gpu/context.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gpu/error.hpp"

namespace tessera::gpu {
namespace {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

bool has_device_extension(VkPhysicalDevice pd, const char* name) {
  uint32_t count = 0;
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> exts(count);
  vkEnumerateDeviceExtensionProperties(pd, nullptr, &count, exts.data());
  return std::any_of(exts.begin(), exts.end(),
                     [&](const VkExtensionProperties& e) { return !std::strcmp(e.extensionName, name); });
}

}  // namespace

ContextOptions ContextOptions::from_environment() {
  ContextOptions o;
  if (const char* d = std::getenv("TESSERA_DEVICE")) o.device = d;
  o.validate = env_flag("TESSERA_VALIDATE");
  o.profile = env_flag("TESSERA_PROFILE");
  if (const char* b = std::getenv("TESSERA_MEMORY_BUDGET")) {
    char* end = nullptr;
    const unsigned long long mib = std::strtoull(b, &end, 10);
    if (end == b || *end != '\0')
      throw Error(std::string("TESSERA_MEMORY_BUDGET must be a whole number of MiB, found \"") + b + "\"");
    o.memory_budget = static_cast<uint64_t>(mib) << 20;
  }
  o.pipeline_cache = !env_flag("TESSERA_NO_PIPELINE_CACHE");
  return o;
}

void Profiler::add(const std::string& label, double ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry& e = entries_[label];
  e.calls++;
  e.total_ns += ns;
}

void Profiler::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

bool Profiler::empty() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.empty();
}

std::string Profiler::table() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<std::string, Entry>> rows(entries_.begin(), entries_.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.total_ns > b.second.total_ns; });
  double total = 0;
  for (auto& r : rows) total += r.second.total_ns;
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-32s %8s %12s %12s %7s\n", "op", "calls", "total ms", "mean us", "share");
  out += line;
  for (auto& [label, e] : rows) {
    std::snprintf(line, sizeof line, "%-32s %8llu %12.3f %12.2f %6.1f%%\n", label.c_str(),
                  static_cast<unsigned long long>(e.calls), e.total_ns / 1e6, e.total_ns / 1e3 / e.calls,
                  total > 0 ? 100.0 * e.total_ns / total : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof line, "%-32s %8s %12.3f\n", "total GPU time", "", total / 1e6);
  out += line;
  return out;
}

Context::Context(const ContextOptions& options) : options_(options) {
  instance_ = std::make_unique<Instance>(options.validate);
  const uint32_t index = instance_->select(options.device);
  physical_ = instance_->physical_devices()[index];
  info_ = instance_->describe(index);

  uint32_t qcount = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &qcount, nullptr);
  std::vector<VkQueueFamilyProperties> families(qcount);
  vkGetPhysicalDeviceQueueFamilyProperties(physical_, &qcount, families.data());
  int chosen = -1;
  int chosen_score = -1;
  for (uint32_t i = 0; i < qcount; ++i) {
    if (!(families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
    // Prefer a family with timestamps; among those, a compute-only one (async compute on real GPUs).
    const int score = (families[i].timestampValidBits ? 2 : 0) + (families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT ? 0 : 1);
    if (score > chosen_score) {
      chosen = static_cast<int>(i);
      chosen_score = score;
    }
  }
  if (chosen < 0) throw Error("device " + info_.name + " has no compute queue");
  queue_family_ = static_cast<uint32_t>(chosen);
  if (!families[queue_family_].timestampValidBits) info_.features.timestamps = false;

  // Enable what the device has, so that kernels may use it; nothing here is required.
  auto f16i8 = vk_struct<VkPhysicalDeviceShaderFloat16Int8Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES);
  f16i8.shaderFloat16 = info_.features.fp16_arithmetic;
  f16i8.shaderInt8 = info_.features.int8_arithmetic;
  auto s16 = vk_struct<VkPhysicalDevice16BitStorageFeatures>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES);
  s16.storageBuffer16BitAccess = info_.features.storage_16bit;
  auto feats = vk_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
  feats.pNext = &s16;
  if (info_.api_version >= VK_API_VERSION_1_2) s16.pNext = &f16i8;

  std::vector<const char*> extensions;
  if (has_device_extension(physical_, "VK_KHR_portability_subset")) extensions.push_back("VK_KHR_portability_subset");

  const float priority = 1.0f;
  auto qinfo = vk_struct<VkDeviceQueueCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO);
  qinfo.queueFamilyIndex = queue_family_;
  qinfo.queueCount = 1;
  qinfo.pQueuePriorities = &priority;
  auto dinfo = vk_struct<VkDeviceCreateInfo>(VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO);
  dinfo.pNext = &feats;
  dinfo.queueCreateInfoCount = 1;
  dinfo.pQueueCreateInfos = &qinfo;
  dinfo.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
  dinfo.ppEnabledExtensionNames = extensions.data();
  TESSERA_VK(vkCreateDevice(physical_, &dinfo, nullptr, &device_));
  vkGetDeviceQueue(device_, queue_family_, 0, &queue_);

  uint64_t budget = options.memory_budget;
  if (!budget) budget = info_.device_local_bytes / 10 * 9;
  allocator_ = std::make_unique<Allocator>(physical_, device_, budget);
  if (options.pipeline_cache) {
    cache_ = std::make_unique<PipelineCacheFile>(device_, info_);
  }
}

Context::~Context() {
  if (device_) vkDeviceWaitIdle(device_);
  if (options_.profile && !profiler_.empty()) std::fprintf(stderr, "\nTESSERA_PROFILE\n%s", profiler_.table().c_str());
  kernels_.clear();
  cache_.reset();
  allocator_.reset();
  if (device_) vkDestroyDevice(device_, nullptr);
}

const Kernel& Context::kernel(const KernelSpec& spec) {
  const std::string key = spec.key();
  std::lock_guard<std::mutex> lock(kernels_mutex_);
  auto it = kernels_.find(key);
  if (it != kernels_.end()) return *it->second;
  auto kernel = std::make_unique<Kernel>(*this, spec, cache_ ? cache_->handle() : VK_NULL_HANDLE);
  if (cache_) cache_->mark_dirty();
  return *kernels_.emplace(key, std::move(kernel)).first->second;
}

size_t Context::kernel_count() const {
  std::lock_guard<std::mutex> lock(kernels_mutex_);
  return kernels_.size();
}

}  // namespace tessera::gpu
