// The plugin ABI header must compile as C++20 with -pedantic -Werror too (plugins are often C++).
#include "tessera/plugin.h"

namespace {
[[maybe_unused]] constexpr tessera_version_t kAbi = TESSERA_ABI_VERSION;
static_assert(kAbi.major == TESSERA_ABI_MAJOR);
static_assert(sizeof(tessera_value_t) > sizeof(uint32_t));
}  // namespace
