// `tessera bench speech`: configs/transcribe.yaml (the tessera.whisper plugin) on a clip, as a user runs it,
// beside PyTorch running the same weights with the same algorithm (tools/bench_torch_whisper.py) in the same
// run: seconds per transcription, the real-time factor (seconds of work per second of audio; below 1 is
// faster than real time) and the ratio. Medians over --runs after a warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <unistd.h>

#include "bench_ops.hpp"
#include "gpu/error.hpp"
#include "io/wav.hpp"
#include "pipeline/scheduler.hpp"
#include "plugin/loader.hpp"
#include "tessera/json.hpp"

namespace tessera::bench {
namespace {

namespace fs = std::filesystem;

int usage() {
  std::fprintf(stderr,
               "usage: tessera bench speech [--model DIR] [--audio WAV | --manifest TSV] [--beam B] [--max-tokens N]\n"
               "                            [--runs R] [--threads T] [--json]\n"
               "  Without --model: the bundled models/tiny-whisper when it exists, else a model of Whisper tiny's size\n"
               "  with random weights (made once by tools/whisper/golden.py in the user cache dir). Without --audio:\n"
               "  that model's sample clip (31.5 s, two windows, for the random one). WAV: 16 kHz mono 16-bit PCM (the\n"
               "  reference reads only that). B: 1 greedy (default), more for beam search; T: PyTorch's threads (1).\n"
               "  --manifest: lines \"file.wav<TAB>reference text\" (files relative to it), each transcribed once:\n"
               "  the word error rate of both sides and the real-time factor over all of them.\n");
  return 2;
}

// Whisper tiny's dimensions with random weights, and its two test clips, made once and kept.
fs::path random_tiny() {
  return cached_bench_dir("whisper-tiny-random", "a Whisper-tiny-sized model with random weights",
                          "tools.whisper.golden --random-tiny");
}

// Words as the word error rate compares them (tools/whisper/data.py wer_words): lower case, anything but
// letters, digits and apostrophes separates words, and spellings that sound alike count as one word.
std::vector<std::string> wer_words(const std::string& text) {
  static const std::map<std::string, std::string> spelling = {
      {"grey", "gray"}, {"centre", "center"}, {"disc", "disk"}};
  std::vector<std::string> words;
  std::string w;
  const auto flush = [&] {
    if (w.empty()) return;
    const auto it = spelling.find(w);
    words.push_back(it == spelling.end() ? w : it->second);
    w.clear();
  };
  for (char c : text) {
    const char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '\'') {
      w += l;
    } else {
      flush();
    }
  }
  flush();
  return words;
}

// Word-level Levenshtein distance.
size_t word_errors(const std::vector<std::string>& ref, const std::vector<std::string>& hyp) {
  std::vector<size_t> prev(hyp.size() + 1), cur(hyp.size() + 1);
  for (size_t j = 0; j <= hyp.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= ref.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= hyp.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[hyp.size()];
}

struct Clip {
  std::string path, reference;
};

std::vector<Clip> read_manifest(const std::string& manifest) {
  std::ifstream in(manifest);
  if (!in) throw Error(manifest + ": cannot read the manifest");
  std::vector<Clip> clips;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) throw Error(manifest + ":" + std::to_string(n) + ": expected file<TAB>text");
    clips.push_back({(fs::path(manifest).parent_path() / line.substr(0, tab)).string(), line.substr(tab + 1)});
  }
  if (clips.empty()) throw Error(manifest + ": no clips");
  return clips;
}

// Transcribes every clip of a manifest once; the word error rate and real-time factor beside PyTorch's.
int run_manifest(pipeline::Scheduler& scheduler, pipeline::RunOptions o, const std::string& model,
                 const std::string& manifest, int beam, int max_tokens, int threads, bool json) {
  const std::vector<Clip> clips = read_manifest(manifest);
  double seconds = 0, audio_seconds = 0;
  size_t errors = 0, words = 0;
  for (size_t i = 0; i <= clips.size(); ++i) {  // clip 0 twice: the first run loads and compiles
    const Clip& c = clips[i == 0 ? 0 : i - 1];
    o.inputs["audio"] = c.path;
    const pipeline::RunResult res = scheduler.run(o);
    if (i == 0) continue;
    seconds += res.stage_seconds.at("transcribe");
    const io::Audio a = io::read_wav(c.path);
    audio_seconds += static_cast<double>(a.frames()) / a.sample_rate;
    std::ifstream text(res.files.at(0));
    const std::string hyp((std::istreambuf_iterator<char>(text)), std::istreambuf_iterator<char>());
    const std::vector<std::string> ref_words = wer_words(c.reference);
    errors += word_errors(ref_words, wer_words(hyp));
    words += ref_words.size();
  }
  fs::remove_all(o.out_dir);
  const Reference ref = run_reference(
      TESSERA_SOURCE_DIR "/tools/bench_torch_whisper.py " + shell_quote(model) + " " + shell_quote(manifest) + " 1 " +
          std::to_string(threads) + " " + std::to_string(beam) + " " + std::to_string(max_tokens),
      threads);
  const double t_seconds = ref.number("seconds"), t_wer = ref.number("wer");
  const std::string& torch_name = ref.name;
  Reporter rep(json);
  rep.line("speech: " + model + ", " + std::to_string(clips.size()) + " clips of " + manifest + " (" +
           std::to_string(audio_seconds).substr(0, 6) + " s of audio), " +
           (beam > 1 ? "beam search of " + std::to_string(beam) : std::string("greedy")));
  rep.row("word error rate", "%", 100.0 * static_cast<double>(errors) / static_cast<double>(std::max<size_t>(1, words)),
          torch_name, 100.0 * t_wer, std::to_string(words) + " reference words");
  rep.row("real-time factor (work / audio)", "x", seconds / audio_seconds, torch_name, t_seconds / audio_seconds,
          "below 1 is faster than real time; ours: whole stage per clip");
  return 0;
}

}  // namespace

int run_speech(const gpu::ContextOptions& options, const std::vector<std::string>& args) {
  std::string model, audio, manifest;
  int beam = 1, max_tokens = 224, runs = 3, threads = 1;
  bool json = false;
  if (!Options()
           .text("--model", &model)
           .text("--audio", &audio)
           .text("--manifest", &manifest)
           .integer("--beam", &beam, 1, 16)
           .integer("--max-tokens", &max_tokens, 1, 448)
           .integer("--runs", &runs, 1, 1000)
           .integer("--threads", &threads, 1, 256)
           .flag("--json", &json)
           .parse(args))
    return usage();
  if (model.empty()) {
    const fs::path bundled = TESSERA_SOURCE_DIR "/models/tiny-whisper";
    if (fs::exists(bundled / "config.json")) {
      model = bundled.string();
      if (audio.empty() && fs::exists(bundled / "sample.wav")) audio = (bundled / "sample.wav").string();
    } else {
      const fs::path dir = random_tiny();
      model = (dir / "model").string();
      if (audio.empty()) audio = (dir / "long.wav").string();
    }
  }
  if (audio.empty() && manifest.empty()) {
    std::fprintf(stderr, "tessera bench speech: give a clip with --audio (16 kHz mono 16-bit PCM)\n");
    return 2;
  }
  model = fs::absolute(model).string();

  gpu::Context ctx(options);
  plugin::PluginSet plugins(options);
  plugins.services().use_context(ctx);
  for (const auto& d : plugin::default_plugin_dirs()) plugins.load_directory(d);
  pipeline::Scheduler scheduler(
      plugins, pipeline::load_pipeline(TESSERA_SOURCE_DIR "/configs/transcribe.yaml", plugins.contracts()));
  pipeline::RunOptions o;
  o.inputs = {{"model", model}, {"beam_size", std::to_string(beam)}};
  o.overrides = {{"transcribe.max_tokens", std::to_string(max_tokens)}};
  o.out_dir = (fs::temp_directory_path() / ("tessera-bench-" + std::to_string(::getpid()))).string();
  if (!manifest.empty())
    return run_manifest(scheduler, o, model, fs::absolute(manifest).string(), beam, max_tokens, threads, json);
  audio = fs::absolute(audio).string();
  o.inputs["audio"] = audio;
  const io::Audio clip = io::read_wav(audio);
  const double seconds_of_audio = static_cast<double>(clip.frames()) / clip.sample_rate;
  std::vector<double> stage;
  for (int r = 0; r <= runs; ++r) {  // run 0 loads the weights and compiles the pipelines
    const pipeline::RunResult res = scheduler.run(o);
    if (r > 0) stage.push_back(res.stage_seconds.at("transcribe"));
  }
  fs::remove_all(o.out_dir);

  const Reference ref = run_reference(
      TESSERA_SOURCE_DIR "/tools/bench_torch_whisper.py " + shell_quote(model) + " " + shell_quote(audio) + " " +
          std::to_string(runs) + " " + std::to_string(threads) + " " + std::to_string(beam) + " " + std::to_string(max_tokens),
      threads);
  const double t_total = ref.number("seconds"), t_mel = ref.number("log_mel"), t_enc = ref.number("encode"),
               t_dec = ref.number("decode");
  const int64_t tokens = static_cast<int64_t>(ref.number("tokens"));
  const std::string& torch_name = ref.name;

  Reporter rep(json);
  rep.line("speech: " + model + ", " + audio + " (" + std::to_string(seconds_of_audio).substr(0, 5) + " s), " +
           (beam > 1 ? "beam search of " + std::to_string(beam) : std::string("greedy")) + ", median of " +
           std::to_string(runs) + " runs after a warm-up");
  const double ours = median(stage);
  rep.row("seconds per transcription", "s", ours, torch_name, t_total, "ours: the whole stage, resampling included");
  rep.row("real-time factor (work / audio)", "x", ours / seconds_of_audio, torch_name, t_total / seconds_of_audio,
          "below 1 is faster than real time");
  if (ref.ok)
    rep.line("  " + torch_name + " split: log-mel " + std::to_string(t_mel).substr(0, 6) + " s, encode " +
             std::to_string(t_enc).substr(0, 6) + " s, decode " + std::to_string(t_dec).substr(0, 6) + " s (" +
             std::to_string(tokens) + " tokens)");
  return 0;
}

}  // namespace tessera::bench
