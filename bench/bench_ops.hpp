#pragma once
#include <string>
#include <vector>

#include <functional>

#include "gpu/context.hpp"
#include "gpu/stream.hpp"
#include "tessera/json.hpp"

namespace tessera::bench {

// `tessera bench ops [--quick] [--json]`: returns the process exit code.
int run_ops(const gpu::ContextOptions& options, const std::vector<std::string>& args);
// `tessera bench text-to-image [--model DIR] [--images N] [--runs R] [--threads T] [--json]`.
int run_text_to_image(const gpu::ContextOptions& options, const std::vector<std::string>& args);
// `tessera bench text-generation [--model DIR]... [--prompt-tokens P] [--tokens N] [--batches 1,8] ...`.
int run_text_generation(const gpu::ContextOptions& options, const std::vector<std::string>& args);
// `tessera bench speech [--model DIR] [--audio WAV] [--beam B] [--runs R] [--threads T] [--json]`.
int run_speech(const gpu::ContextOptions& options, const std::vector<std::string>& args);

// Prints one figure beside its reference, as text or as a JSON line.
class Reporter {
 public:
  explicit Reporter(bool json);
  void row(const std::string& name, const std::string& unit, double ours, const std::string& ref_name, double ref,
           const std::string& note);
  void line(const std::string& text);

 private:
  bool json_;
};

struct GpuTime {
  double gpu_s;   // GPU timestamps, summed over the dispatches
  double wall_s;  // submit to fence, on the host
};

// The median of `v` (the upper one for an even count; 0 when empty).
double median(std::vector<double> v);

// Runs `/usr/bin/python3 SCRIPT_AND_ARGS` (a reference under tools/) and returns its standard output, ""
// when it cannot run; its stderr is dropped. threads > 0 pins torch's BLAS (OpenBLAS/OpenMP) to that many
// threads: otherwise OpenBLAS starts threads of its own beside torch's and the reference runs up to 3x
// slower on a small machine. 0 leaves the library defaults.
std::string run_python_reference(const std::string& script_and_args, int threads);

// A bench's command line: "--name value" options and "--flag"s, declared, then read in one go. parse() is false
// for an unknown option, a missing value, or a number outside its range (the caller prints its usage).
//   if (!Options().text("--model", &model).integer("--runs", &runs, 1, 1000).flag("--json", &json).parse(args)) ...
class Options {
 public:
  Options& text(const char* name, std::string* out);
  Options& texts(const char* name, std::vector<std::string>* out);  // may be given several times
  Options& integer(const char* name, int* out, int lo, int hi);
  Options& flag(const char* name, bool* out, bool value = true);
  bool parse(const std::vector<std::string>& args) const;

 private:
  struct Option {
    std::string name;
    std::function<bool(const std::string*)> set;  // nullptr argument: a flag
    bool takes_value;
  };
  std::vector<Option> options_;
};

// What a reference under tools/ printed (one JSON object) and its name for the report: "PyTorch 1.13 (1 thr)"
// from its "torch" and "threads" fields, or "PyTorch (unavailable)" with ok false when it could not run.
struct Reference {
  bool ok = false;
  json::Value result;
  std::string name = "PyTorch (unavailable)";
  // result[key], or 0 when the reference did not run.
  double number(const char* key) const { return ok ? result.at(key).number() : 0.0; }
};
Reference run_reference(const std::string& script_and_args, int threads);

// A directory made once by a tools/ command and kept in cache_dir()/bench/NAME: runs
// `cd SOURCE && /usr/bin/python3 -m MODULE_AND_ARGS DIR` when DIR/golden.json (written last) is missing. `what`
// names it in the progress line and the error.
std::string cached_bench_dir(const std::string& name, const std::string& what, const std::string& module_and_args);

// `s` in single quotes for a POSIX shell command line.
std::string shell_quote(const std::string& s);
// The per-user cache directory ($XDG_CACHE_HOME/tessera or ~/.cache/tessera): models the benches make once.
std::string cache_dir();

// Median over `reps` runs (after a warm-up) of a stream that `record` fills.
GpuTime time_gpu(gpu::Context& ctx, const std::function<void(gpu::Stream&)>& record, int reps);
// Median wall time of `fn` over `reps` runs after a warm-up.
double time_cpu(const std::function<void()>& fn, int reps);

// FP32 FLOP/s of this CPU on all cores (FMA loop), in GFLOP/s.
double cpu_fp32_peak_gflops();

}  // namespace tessera::bench
