#pragma once
// Vulkan instance and physical-device discovery: what each device can do, and which one we pick.
#include <cstdint>
#include <string>
#include <vector>

#include <vulkan/vulkan.h>

namespace tessera::gpu {

// What kernels choose their variants from. Never decide on vendor names alone: read these.
struct DeviceFeatures {
  bool fp16_arithmetic = false;   // shaderFloat16
  bool int8_arithmetic = false;   // shaderInt8
  bool storage_16bit = false;     // storageBuffer16BitAccess
  bool storage_8bit = false;      // storageBuffer8BitAccess
  uint32_t subgroup_size = 0;
  VkSubgroupFeatureFlags subgroup_ops = 0;
  bool subgroup_in_compute = false;
  uint32_t shared_memory_bytes = 0;
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_workgroup_size[3] = {0, 0, 0};
  uint32_t max_workgroup_count[3] = {0, 0, 0};
  bool timestamps = false;
  float timestamp_period_ns = 0.0f;
  uint32_t max_storage_buffer_range = 0;
  uint32_t max_texel_buffer_elements = 0;
  uint32_t max_push_constants = 0;
  uint32_t min_storage_buffer_alignment = 0;
  uint32_t min_texel_buffer_alignment = 0;
  bool f16_texel_fetch = false;  // R16/R16G16B16A16_SFLOAT usable as uniform texel buffers
  bool unified_memory = false;   // device-local memory the host can map: no staging needed
};

struct DeviceInfo {
  uint32_t index = 0;
  std::string name;
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  uint32_t vendor_id = 0;
  uint32_t device_id = 0;
  uint32_t api_version = 0;
  uint32_t driver_version = 0;
  std::string driver_name;
  std::string driver_info;
  uint8_t pipeline_cache_uuid[VK_UUID_SIZE] = {};
  uint64_t device_local_bytes = 0;
  DeviceFeatures features;

  const char* type_name() const;
  // Preference when nothing is asked for: discrete > integrated > virtual > CPU > other.
  int rank() const;
};

// Owns the VkInstance (and the validation messenger when validation is on).
class Instance {
 public:
  // validate: enable VK_LAYER_KHRONOS_validation; throws if it is not installed.
  explicit Instance(bool validate);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  VkInstance handle() const { return instance_; }
  bool validating() const { return messenger_ != VK_NULL_HANDLE; }
  const std::vector<VkPhysicalDevice>& physical_devices() const { return physical_; }
  DeviceInfo describe(uint32_t index) const;
  std::vector<DeviceInfo> describe_all() const;

  // Index of the device to use. `request` is empty (best by rank), a decimal index, or a
  // case-insensitive substring of the device name. Throws with the list of devices if nothing matches.
  uint32_t select(const std::string& request) const;

  // Validation messages (warnings and errors) seen so far; tests fail when this grows.
  // Messages from the validation layer, counted over every instance of the process.
  static uint64_t validation_message_count();
  static std::string last_validation_message();

 private:
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  std::vector<VkPhysicalDevice> physical_;
};

std::string subgroup_ops_string(VkSubgroupFeatureFlags ops);

}  // namespace tessera::gpu
