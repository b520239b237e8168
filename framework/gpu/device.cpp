#include "gpu/device.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <mutex>

#include "gpu/error.hpp"

namespace tessera::gpu {
namespace {

std::atomic<uint64_t> g_validation_messages{0};
std::mutex g_validation_mutex;
std::string g_last_validation_message;

VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                     void*) {
  if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
  const char* text = data && data->pMessage ? data->pMessage : "(no message)";
  g_validation_messages.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(g_validation_mutex);
    g_last_validation_message = text;
  }
  log(LogLevel::error, std::string("Vulkan validation: ") + text);
  return VK_FALSE;
}

bool has_layer(const char* name) {
  uint32_t count = 0;
  vkEnumerateInstanceLayerProperties(&count, nullptr);
  std::vector<VkLayerProperties> layers(count);
  vkEnumerateInstanceLayerProperties(&count, layers.data());
  return std::any_of(layers.begin(), layers.end(),
                     [&](const VkLayerProperties& l) { return !std::strcmp(l.layerName, name); });
}

bool has_instance_extension(const char* name) {
  uint32_t count = 0;
  vkEnumerateInstanceExtensionProperties(nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> exts(count);
  vkEnumerateInstanceExtensionProperties(nullptr, &count, exts.data());
  return std::any_of(exts.begin(), exts.end(),
                     [&](const VkExtensionProperties& e) { return !std::strcmp(e.extensionName, name); });
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const char* DeviceInfo::type_name() const {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "cpu";
    default:
      return "other";
  }
}

int DeviceInfo::rank() const {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return 1;
    default:
      return 0;
  }
}

std::string subgroup_ops_string(VkSubgroupFeatureFlags ops) {
  static const std::pair<VkSubgroupFeatureFlagBits, const char*> names[] = {
      {VK_SUBGROUP_FEATURE_BASIC_BIT, "basic"},
      {VK_SUBGROUP_FEATURE_VOTE_BIT, "vote"},
      {VK_SUBGROUP_FEATURE_ARITHMETIC_BIT, "arithmetic"},
      {VK_SUBGROUP_FEATURE_BALLOT_BIT, "ballot"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_BIT, "shuffle"},
      {VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT, "shuffle_relative"},
      {VK_SUBGROUP_FEATURE_CLUSTERED_BIT, "clustered"},
      {VK_SUBGROUP_FEATURE_QUAD_BIT, "quad"},
  };
  std::string out;
  for (auto& [bit, name] : names) {
    if (ops & bit) {
      if (!out.empty()) out += ",";
      out += name;
    }
  }
  return out.empty() ? "none" : out;
}

Instance::Instance(bool validate) {
  std::vector<const char*> layers;
  std::vector<const char*> extensions;
  if (validate) {
    if (!has_layer("VK_LAYER_KHRONOS_validation"))
      throw Error(
          "Vulkan validation was requested (TESSERA_VALIDATE=1 or a test) but VK_LAYER_KHRONOS_validation "
          "is not installed; install it with: apt-get install vulkan-validationlayers");
    layers.push_back("VK_LAYER_KHRONOS_validation");
    extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  }
  VkInstanceCreateFlags flags = 0;
  if (has_instance_extension(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
    // MoltenVK is only listed when we ask for portability devices.
    extensions.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
    flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
  }

  uint32_t loader_version = VK_API_VERSION_1_0;
  vkEnumerateInstanceVersion(&loader_version);
  if (loader_version < VK_API_VERSION_1_1)
    throw Error("the Vulkan loader supports only Vulkan 1.0; Tessera needs Vulkan 1.1 or newer");

  auto app = vk_struct<VkApplicationInfo>(VK_STRUCTURE_TYPE_APPLICATION_INFO);
  app.pApplicationName = "tessera";
  app.pEngineName = "tessera";
  app.apiVersion = std::min<uint32_t>(loader_version, VK_API_VERSION_1_3);

  auto messenger_info = vk_struct<VkDebugUtilsMessengerCreateInfoEXT>(VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT);
  messenger_info.messageSeverity =
      VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  messenger_info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  messenger_info.pfnUserCallback = on_validation_message;

  auto info = vk_struct<VkInstanceCreateInfo>(VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO);
  info.flags = flags;
  info.pApplicationInfo = &app;
  info.enabledLayerCount = static_cast<uint32_t>(layers.size());
  info.ppEnabledLayerNames = layers.data();
  info.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
  info.ppEnabledExtensionNames = extensions.data();
  if (validate) info.pNext = &messenger_info;  // also catches messages from vkCreateInstance itself
  VkResult r = vkCreateInstance(&info, nullptr, &instance_);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
    throw Error("no Vulkan driver found; install one (for a CPU-only machine: apt-get install mesa-vulkan-drivers)");
  TESSERA_VK(r);

  if (validate) {
    auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkCreateDebugUtilsMessengerEXT"));
    if (create) TESSERA_VK(create(instance_, &messenger_info, nullptr, &messenger_));
  }

  uint32_t count = 0;
  TESSERA_VK(vkEnumeratePhysicalDevices(instance_, &count, nullptr));
  physical_.resize(count);
  TESSERA_VK(vkEnumeratePhysicalDevices(instance_, &count, physical_.data()));
  // Devices that cannot run Vulkan 1.1 compute are invisible to us.
  std::erase_if(physical_, [](VkPhysicalDevice d) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(d, &p);
    return p.apiVersion < VK_API_VERSION_1_1;
  });
}

Instance::~Instance() {
  if (messenger_) {
    auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
    if (destroy) destroy(instance_, messenger_, nullptr);
  }
  if (instance_) vkDestroyInstance(instance_, nullptr);
}

uint64_t Instance::validation_message_count() { return g_validation_messages.load(); }

std::string Instance::last_validation_message() {
  std::lock_guard<std::mutex> lock(g_validation_mutex);
  return g_last_validation_message;
}

DeviceInfo Instance::describe(uint32_t index) const {
  VkPhysicalDevice pd = physical_.at(index);
  DeviceInfo info;
  info.index = index;

  auto subgroup = vk_struct<VkPhysicalDeviceSubgroupProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES);
  auto driver = vk_struct<VkPhysicalDeviceDriverProperties>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES);
  auto props = vk_struct<VkPhysicalDeviceProperties2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2);
  props.pNext = &subgroup;
  VkPhysicalDeviceProperties base;
  vkGetPhysicalDeviceProperties(pd, &base);
  if (base.apiVersion >= VK_API_VERSION_1_2) subgroup.pNext = &driver;
  vkGetPhysicalDeviceProperties2(pd, &props);
  const VkPhysicalDeviceLimits& lim = props.properties.limits;

  info.name = props.properties.deviceName;
  info.type = props.properties.deviceType;
  info.vendor_id = props.properties.vendorID;
  info.device_id = props.properties.deviceID;
  info.api_version = props.properties.apiVersion;
  info.driver_version = props.properties.driverVersion;
  std::memcpy(info.pipeline_cache_uuid, props.properties.pipelineCacheUUID, VK_UUID_SIZE);
  if (base.apiVersion >= VK_API_VERSION_1_2) {
    info.driver_name = driver.driverName;
    info.driver_info = driver.driverInfo;
  }

  auto f16i8 = vk_struct<VkPhysicalDeviceShaderFloat16Int8Features>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES);
  auto s16 = vk_struct<VkPhysicalDevice16BitStorageFeatures>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES);
  auto s8 = vk_struct<VkPhysicalDevice8BitStorageFeatures>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES);
  auto feats = vk_struct<VkPhysicalDeviceFeatures2>(VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2);
  feats.pNext = &s16;
  if (base.apiVersion >= VK_API_VERSION_1_2) {
    s16.pNext = &f16i8;
    f16i8.pNext = &s8;
  }
  vkGetPhysicalDeviceFeatures2(pd, &feats);

  DeviceFeatures& f = info.features;
  f.fp16_arithmetic = f16i8.shaderFloat16;
  f.int8_arithmetic = f16i8.shaderInt8;
  f.storage_16bit = s16.storageBuffer16BitAccess;
  f.storage_8bit = s8.storageBuffer8BitAccess;
  f.subgroup_size = subgroup.subgroupSize;
  f.subgroup_ops = subgroup.supportedOperations;
  f.subgroup_in_compute = subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT;
  f.shared_memory_bytes = lim.maxComputeSharedMemorySize;
  f.max_workgroup_invocations = lim.maxComputeWorkGroupInvocations;
  for (int i = 0; i < 3; ++i) {
    f.max_workgroup_size[i] = lim.maxComputeWorkGroupSize[i];
    f.max_workgroup_count[i] = lim.maxComputeWorkGroupCount[i];
  }
  f.timestamp_period_ns = lim.timestampPeriod;
  f.max_storage_buffer_range = lim.maxStorageBufferRange;
  f.max_texel_buffer_elements = lim.maxTexelBufferElements;
  f.max_push_constants = lim.maxPushConstantsSize;
  f.min_storage_buffer_alignment = static_cast<uint32_t>(lim.minStorageBufferOffsetAlignment);
  f.min_texel_buffer_alignment = static_cast<uint32_t>(lim.minTexelBufferOffsetAlignment);

  uint32_t qcount = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qcount, nullptr);
  std::vector<VkQueueFamilyProperties> families(qcount);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &qcount, families.data());
  for (auto& q : families)
    if ((q.queueFlags & VK_QUEUE_COMPUTE_BIT) && q.timestampValidBits > 0 && lim.timestampComputeAndGraphics)
      f.timestamps = true;

  auto texel_ok = [&](VkFormat fmt) {
    VkFormatProperties fp;
    vkGetPhysicalDeviceFormatProperties(pd, fmt, &fp);
    return (fp.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT) != 0;
  };
  f.f16_texel_fetch = texel_ok(VK_FORMAT_R16_SFLOAT) && texel_ok(VK_FORMAT_R16G16B16A16_SFLOAT);

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  uint64_t largest_local = 0;
  for (uint32_t h = 0; h < mem.memoryHeapCount; ++h)
    if (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      largest_local = std::max<uint64_t>(largest_local, mem.memoryHeaps[h].size);
  info.device_local_bytes = largest_local;
  const VkMemoryPropertyFlags mappable_local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                               VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                               VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  for (uint32_t t = 0; t < mem.memoryTypeCount; ++t) {
    const auto& type = mem.memoryTypes[t];
    if ((type.propertyFlags & mappable_local) == mappable_local &&
        mem.memoryHeaps[type.heapIndex].size >= largest_local)
      f.unified_memory = true;
  }
  return info;
}

std::vector<DeviceInfo> Instance::describe_all() const {
  std::vector<DeviceInfo> all;
  for (uint32_t i = 0; i < physical_.size(); ++i) all.push_back(describe(i));
  return all;
}

uint32_t Instance::select(const std::string& request) const {
  if (physical_.empty())
    throw Error("no Vulkan 1.1 device found; install a driver (for a CPU-only machine: apt-get install mesa-vulkan-drivers)");
  std::vector<DeviceInfo> all = describe_all();
  auto listing = [&] {
    std::string s;
    for (auto& d : all) s += "\n  " + std::to_string(d.index) + ": " + d.name + " (" + d.type_name() + ")";
    return s;
  };
  if (request.empty()) {
    uint32_t best = 0;
    for (auto& d : all)
      if (d.rank() > all[best].rank()) best = d.index;
    return best;
  }
  if (std::all_of(request.begin(), request.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    unsigned long idx = std::stoul(request);
    if (idx >= all.size())
      throw Error("device index " + request + " is out of range; devices:" + listing());
    return static_cast<uint32_t>(idx);
  }
  for (auto& d : all)
    if (lower(d.name).find(lower(request)) != std::string::npos) return d.index;
  throw Error("no Vulkan device matches \"" + request + "\"; devices:" + listing());
}

}  // namespace tessera::gpu
