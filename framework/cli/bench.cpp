#include <cstdio>

#include "cli/commands.hpp"

#ifdef TESSERA_HAVE_BENCH
#include "bench_ops.hpp"
#endif

namespace tessera::cli {

int bench(const Globals& g, const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "ops" && args[0] != "text-to-image" && args[0] != "text-generation" &&
                        args[0] != "speech")) {
    std::fprintf(stderr,
                 "usage: tessera bench ops [--quick] [--json]\n"
                 "       tessera bench text-to-image [--model DIR] [--images N] [--runs R] [--threads T] [--json]\n"
                 "       tessera bench text-generation [--model DIR]... [--no-small] [--prompt-tokens P] [--tokens N]\n"
                 "                                     [--batches 1,8] [--runs R] [--threads T] [--json]\n"
                 "       tessera bench speech [--model DIR] [--audio WAV] [--beam B] [--max-tokens N] [--runs R]\n"
                 "                            [--threads T] [--json]\n");
    return 2;
  }
#ifdef TESSERA_HAVE_BENCH
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "text-to-image") return tessera::bench::run_text_to_image(g.options, rest);
  if (args[0] == "text-generation") return tessera::bench::run_text_generation(g.options, rest);
  if (args[0] == "speech") return tessera::bench::run_speech(g.options, rest);
  return tessera::bench::run_ops(g.options, rest);
#else
  (void)g;
  std::fprintf(stderr, "tessera was built without benchmarks (TESSERA_BUILD_BENCH=OFF)\n");
  return 1;
#endif
}

}  // namespace tessera::cli
