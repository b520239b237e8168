// tessera: the command-line front end.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "gpu/device.hpp"
#include "gpu/error.hpp"

namespace {

void usage(FILE* to) {
  std::fprintf(to,
               "usage: tessera [--device <index|name>] <command> [args]\n"
               "\n"
               "commands:\n"
               "  devices            list every Vulkan device and the features kernels choose from\n"
               "  demo               run a matmul on the GPU and check it against the CPU\n"
               "  plugins [--plugin-path DIR]\n"
               "                     every loadable plugin with its stages, ports and parameters\n"
               "  run PIPELINE.yaml [--input NAME=VALUE] [--prompt TEXT | --prompts FILE] [--set STAGE.PARAM=VALUE]\n"
               "                    [--out DIR] [--count N] [--seed S] [--progress bar|json|none] [--plugin-path DIR]\n"
               "                     run a pipeline and write its outputs (exit 130 when cancelled)\n"
               "  validate PIPELINE.yaml [--plugin-path DIR]\n"
               "                     check a pipeline file against the plugins' contracts (exit 3 if invalid)\n"
               "  bench ops [--quick] [--json]\n"
               "                     GFLOP/s of matmul and attention beside OpenBLAS and a CPU attention\n"
               "  bench text-to-image [--model DIR] [--images N] [--runs R] [--json]\n"
               "                     image tokens/s and seconds per image beside PyTorch on the same weights\n"
               "  eval IMAGE.png... [--caption TEXT] [--json]\n"
               "                     the shapes-world judge on images (caption: the prompt stored in the PNG)\n"
               "\n"
               "environment:\n"
               "  TESSERA_DEVICE=<index|name>   device choice (also --device)\n"
               "  TESSERA_VALIDATE=1            Vulkan validation layers\n"
               "  TESSERA_PROFILE=1             per-op GPU time table at exit\n"
               "  TESSERA_MEMORY_BUDGET=<MiB>   GPU memory budget\n"
               "  TESSERA_CACHE_DIR=<dir>       pipeline cache directory (default ~/.cache/tessera)\n"
               "  TESSERA_PLUGIN_PATH=<dirs>    colon-separated plugin directories\n"
               "\n"
               "exit codes: 0 success, 1 failure while running, 2 usage error, 3 invalid pipeline\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  tessera::cli::Globals globals;
  globals.options = tessera::gpu::ContextOptions{};
  try {
    globals.options = tessera::gpu::ContextOptions::from_environment();
    while (!args.empty() && args[0].rfind("--", 0) == 0) {
      if (args[0] == "--device" && args.size() > 1) {
        globals.options.device = args[1];
        args.erase(args.begin(), args.begin() + 2);
      } else if (args[0].rfind("--device=", 0) == 0) {
        globals.options.device = args[0].substr(9);
        args.erase(args.begin());
      } else if (args[0] == "--help" || args[0] == "-h") {
        usage(stdout);
        return 0;
      } else {
        std::fprintf(stderr, "tessera: unknown option %s\n\n", args[0].c_str());
        usage(stderr);
        return 2;
      }
    }
    if (args.empty()) {
      usage(stderr);
      return 2;
    }
    const std::string command = args[0];
    args.erase(args.begin());
    // With TESSERA_VALIDATE=1 a command that made the validation layer speak fails, as a test would.
    auto checked = [](int rc) {
      const uint64_t n = tessera::gpu::Instance::validation_message_count();
      if (n == 0 || rc != 0) return rc;
      std::fprintf(stderr, "tessera: Vulkan validation reported %llu message(s); last: %s\n",
                   static_cast<unsigned long long>(n), tessera::gpu::Instance::last_validation_message().c_str());
      return 1;
    };
    if (command == "devices") return checked(tessera::cli::devices(globals, args));
    if (command == "demo") return checked(tessera::cli::demo(globals, args));
    if (command == "bench") return checked(tessera::cli::bench(globals, args));
    if (command == "plugins") return tessera::cli::plugins(globals, args);
    if (command == "validate") return tessera::cli::validate(globals, args);
    if (command == "run") return checked(tessera::cli::run(globals, args));
    if (command == "eval") return tessera::cli::eval(globals, args);
    if (command == "help") {
      usage(stdout);
      return 0;
    }
    std::fprintf(stderr, "tessera: unknown command \"%s\"\n\n", command.c_str());
    usage(stderr);
    return 2;
  } catch (const tessera::Error& e) {
    std::fprintf(stderr, "tessera: %s\n", e.what());
    return 1;
  }
}
