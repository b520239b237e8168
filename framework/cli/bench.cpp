#include <cstdio>

#include "cli/commands.hpp"

#ifdef TESSERA_HAVE_BENCH
#include "bench_ops.hpp"
#endif

namespace tessera::cli {

int bench(const Globals& g, const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "ops") {
    std::fprintf(stderr, "usage: tessera bench ops [--quick] [--json]\n");
    return 2;
  }
#ifdef TESSERA_HAVE_BENCH
  return tessera::bench::run_ops(g.options, std::vector<std::string>(args.begin() + 1, args.end()));
#else
  (void)g;
  std::fprintf(stderr, "tessera was built without benchmarks (TESSERA_BUILD_BENCH=OFF)\n");
  return 1;
#endif
}

}  // namespace tessera::cli
