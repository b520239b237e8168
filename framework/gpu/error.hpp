#pragma once
// Errors and logging shared by the whole runtime.
#include <stdexcept>
#include <string>
#include <string_view>

#include <vulkan/vulkan.h>

namespace tessera {

// Every failure the runtime reports to a caller: a bad shape, an exhausted budget, a missing feature,
// a failed Vulkan call. The message is meant for the user and names the op, the shapes and the limit.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

// Messages at or above TESSERA_LOG (debug|info|warn|error, default warn) go to stderr.
void log(LogLevel level, std::string_view message);
LogLevel log_threshold();

const char* vk_result_name(VkResult result);

[[noreturn]] void throw_vk(VkResult result, const char* call, const char* file, int line);

}  // namespace tessera

#define TESSERA_VK(call)                                                   \
  do {                                                                     \
    VkResult tessera_vk_result_ = (call);                                  \
    if (tessera_vk_result_ != VK_SUCCESS)                                  \
      ::tessera::throw_vk(tessera_vk_result_, #call, __FILE__, __LINE__); \
  } while (0)

namespace tessera {
// A zeroed Vulkan struct with its sType set.
template <class T>
T vk_struct(VkStructureType type) {
  T value{};
  value.sType = type;
  return value;
}
}  // namespace tessera
