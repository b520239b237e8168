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
int plugins(const Globals& g, const std::vector<std::string>& args);
int validate(const Globals& g, const std::vector<std::string>& args);
int run(const Globals& g, const std::vector<std::string>& args);
int eval(const Globals& g, const std::vector<std::string>& args);

// Exit codes: distinct for usage errors, invalid pipelines and failures while running.
constexpr int kExitRunFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInvalidPipeline = 3;

}  // namespace tessera::cli
