#include "gpu/error.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tessera {

LogLevel log_threshold() {
  static const LogLevel threshold = [] {
    const char* env = std::getenv("TESSERA_LOG");
    if (!env) return LogLevel::warn;
    if (!std::strcmp(env, "debug")) return LogLevel::debug;
    if (!std::strcmp(env, "info")) return LogLevel::info;
    if (!std::strcmp(env, "error")) return LogLevel::error;
    return LogLevel::warn;
  }();
  return threshold;
}

void log(LogLevel level, std::string_view message) {
  if (level < log_threshold()) return;
  static const char* const names[] = {"debug", "info", "warning", "error"};
  std::fprintf(stderr, "tessera %s: %.*s\n", names[static_cast<int>(level)],
               static_cast<int>(message.size()), message.data());
}

const char* vk_result_name(VkResult result) {
  switch (result) {
#define CASE(x) \
  case x:       \
    return #x;
    CASE(VK_SUCCESS)
    CASE(VK_NOT_READY)
    CASE(VK_TIMEOUT)
    CASE(VK_INCOMPLETE)
    CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    CASE(VK_ERROR_INITIALIZATION_FAILED)
    CASE(VK_ERROR_DEVICE_LOST)
    CASE(VK_ERROR_MEMORY_MAP_FAILED)
    CASE(VK_ERROR_LAYER_NOT_PRESENT)
    CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    CASE(VK_ERROR_TOO_MANY_OBJECTS)
    CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    CASE(VK_ERROR_FRAGMENTED_POOL)
    CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
    CASE(VK_ERROR_INVALID_SHADER_NV)
#undef CASE
    default:
      return "VK_ERROR_UNKNOWN";
  }
}

void throw_vk(VkResult result, const char* call, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw Error(std::string("Vulkan call failed with ") + vk_result_name(result) + ": " + call + " (" +
              (base ? base + 1 : file) + ":" + std::to_string(line) + ")");
}

}  // namespace tessera
