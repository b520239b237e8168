#pragma once
// Runs a validated pipeline: stages in dependency order, independent branches at the same time, stage
// instances kept across runs (weights load once), outputs written only when every stage succeeded.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/pipeline.hpp"
#include "plugin/loader.hpp"

namespace tessera::pipeline {

struct ProgressEvent {
  std::string stage;
  int sample = 0;     // which of `count`
  int count = 1;
  double fraction = 0;  // of this stage's run, in [0, 1]
  std::string label;
};

struct RunOptions {
  std::map<std::string, std::string> inputs;     // pipeline input name -> value (text, or a file path)
  std::map<std::string, std::string> overrides;  // "stage.param" -> value, checked like the YAML
  // Several items for the pipeline's batch texts input (batch: {texts: prompt}), all in one run; replaces
  // that input's value in `inputs`.
  std::map<std::string, std::vector<std::string>> text_items;
  std::string out_dir = ".";
  uint64_t seed = 0;  // sample i runs with seed + i
  int count = 1;
  // Called from worker threads, one call at a time.
  std::function<void(const ProgressEvent&)> on_progress;
  // Pieces of text a stage streams on an output while it runs (generated tokens). Worker threads, one call at a time.
  std::function<void(const std::string& stage, int sample, const std::string& output, const std::string& text)> on_text;
  // Set by the caller (Ctrl-C) to stop: stages see cancelled(), the run throws Cancelled.
  const std::atomic<bool>* cancel = nullptr;
};

struct RunResult {
  std::vector<std::string> files;  // written outputs, in order
  std::map<std::string, double> stage_seconds;  // wall time in each stage's run(), summed over samples
};

// Thrown when a run stops because RunOptions::cancel was set; nothing was written.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

class Scheduler {
 public:
  // `plugins` must outlive the scheduler; the pipeline must have been validated against its contracts.
  Scheduler(const plugin::PluginSet& plugins, Pipeline pipeline);
  ~Scheduler();  // destroys every stage instance
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs `count` samples. Throws PipelineError for bad inputs or overrides (before any stage runs),
  // tessera::Error naming the stage for a stage failure, Cancelled when cancelled. More text items than
  // kItemsPerBatch run as consecutive batches with the seeds one run per item would get; each batch's
  // outputs are written when that batch succeeds.
  RunResult run(const RunOptions& options);
  static constexpr size_t kItemsPerBatch = 8;

  // How many stage instances were created so far (instances are reused while their parameters match).
  int instances_created() const { return created_; }
  const Pipeline& pipeline() const { return pipeline_; }

  struct Instance;
  struct Value;

 private:
  RunResult run_batch(const RunOptions& options);

  const plugin::PluginSet& plugins_;
  Pipeline pipeline_;
  std::map<std::string, std::unique_ptr<Instance>> instances_;  // by stage id + parameter text
  int created_ = 0;
  std::mutex progress_mutex_;
};

}  // namespace tessera::pipeline
