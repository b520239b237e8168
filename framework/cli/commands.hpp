#pragma once
#include <string>
#include <vector>

#include "gpu/context.hpp"

namespace tessera::cli {

struct Globals {
  gpu::ContextOptions options;
};

int devices(const Globals& g, const std::vector<std::string>& args);
int demo(const Globals& g, const std::vector<std::string>& args);
int bench(const Globals& g, const std::vector<std::string>& args);

}  // namespace tessera::cli
