// `tessera eval`: the shapes-world judge (tools/shapes, Python) on generated images. The caption is the
// prompt recorded in each PNG's tEXt chunk unless --caption gives one, so `tessera eval out/*.png` checks
// every picture against the prompt that made it.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "io/files.hpp"

namespace tessera::cli {
namespace {

int usage() {
  std::fprintf(stderr,
               "usage: tessera eval IMAGE.png... [--caption TEXT] [--json]\n"
               "  judges each image against its caption (default: the prompt stored in the PNG) with the\n"
               "  shapes-world judge; exit 0 when every image is accepted, 1 otherwise, 2 for bad input\n");
  return kExitUsage;
}

// The directory holding tools/shapes: the installed share/tessera, else the source tree.
std::string tools_root() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("TESSERA_TOOLS_DIR")) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path installed = exe.parent_path().parent_path() / "share" / "tessera";
  if (!ec && fs::is_directory(installed / "tools" / "shapes", ec)) return installed.string();
  return TESSERA_SOURCE_DIR;
}

// Runs the judge without a shell (captions are arbitrary text); returns its exit code.
int judge(const std::string& root, const std::string& image, const std::string& caption, bool json) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    if (chdir(root.c_str()) != 0) _exit(2);
    std::vector<const char*> argv{"/usr/bin/python3", "-m", "tools.shapes", "judge", image.c_str(), caption.c_str()};
    if (json) argv.push_back("--json");
    argv.push_back(nullptr);
    execv(argv[0], const_cast<char* const*>(argv.data()));
    std::fprintf(stderr, "tessera eval: cannot run /usr/bin/python3 (apt-get install python3-numpy)\n");
    _exit(2);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

}  // namespace

int eval(const Globals&, const std::vector<std::string>& args) {
  std::vector<std::string> files;
  std::string caption;
  bool json = false, have_caption = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--caption" && i + 1 < args.size()) {
      caption = args[++i];
      have_caption = true;
    } else if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--help" || args[i] == "-h") {
      usage();
      return 0;
    } else if (args[i].rfind("--", 0) == 0) {
      return usage();
    } else {
      files.push_back(args[i]);
    }
  }
  if (files.empty()) return usage();
  const std::string root = tools_root();
  int accepted = 0, judged = 0;
  for (const std::string& file : files) {
    std::string text = caption;
    if (!have_caption) {
      io::TextChunks chunks;
      try {
        io::read_image(file, &chunks);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera eval: %s\n", e.what());
        return kExitUsage;
      }
      for (const auto& [k, v] : chunks)
        if (k == "input.prompt") text = v;
      if (text.empty()) {
        std::fprintf(stderr, "tessera eval: %s has no prompt in its tEXt chunks; give --caption\n", file.c_str());
        return kExitUsage;
      }
    }
    std::printf("%s: \"%s\": ", file.c_str(), text.c_str());
    const int rc = judge(root, std::filesystem::absolute(file).string(), text, json);
    if (rc == 2) return kExitUsage;
    ++judged;
    if (rc == 0) ++accepted;
  }
  std::printf("accepted %d of %d (%.1f%%)\n", accepted, judged, 100.0 * accepted / judged);
  return accepted == judged ? 0 : 1;
}

}  // namespace tessera::cli
