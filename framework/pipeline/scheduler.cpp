#include "pipeline/scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <set>
#include <thread>

#include "io/files.hpp"
#include "io/wav.hpp"

namespace tessera::pipeline {

// A value owned by the host: the storage, and the C view a plugin reads.
struct Scheduler::Value {
  tessera_value_t view{};
  std::vector<std::string> strings;
  std::vector<const char*> string_ptrs;
  std::vector<int32_t> ids, mask;
  std::vector<uint8_t> pixels;
  std::vector<float> samples;
  std::shared_ptr<const tessera_tensor_t> tensor;  // a reference of its own, released with the last copy

  void copy_from(const tessera_value_t& v, plugin::Services& services) {
    view = v;
    view.struct_size = sizeof view;
    tensor.reset();
    if (v.type == TESSERA_PORT_TENSOR) {
      const tessera_tensor_t held = services.retain(v.tensor);  // throws for a handle that is not a live tensor
      tensor = std::shared_ptr<const tessera_tensor_t>(new tessera_tensor_t(held), [&services](const tessera_tensor_t* t) {
        services.release(*t);
        delete t;
      });
      view.tensor = held;
    }
    const size_t n = v.count;
    if (v.type == TESSERA_PORT_TEXT && v.text) {
      strings.clear();
      for (size_t i = 0; i < n; ++i) strings.emplace_back(v.text[i] ? v.text[i] : "");
    }
    if (v.type == TESSERA_PORT_TOKENS) {
      if (v.ids) ids.assign(v.ids, v.ids + n * v.length);
      if (v.mask) mask.assign(v.mask, v.mask + n * v.length);
    }
    if (v.type == TESSERA_PORT_IMAGE && v.pixels) pixels.assign(v.pixels, v.pixels + n * v.width * v.height * 3);
    if (v.type == TESSERA_PORT_AUDIO && v.samples) samples.assign(v.samples, v.samples + n * v.frames * v.channels);
    relink();
  }
  // Points the view at this value's own storage.
  void relink() {
    string_ptrs.clear();
    for (const auto& s : strings) string_ptrs.push_back(s.c_str());
    view.text = string_ptrs.empty() ? nullptr : string_ptrs.data();
    view.ids = ids.empty() ? nullptr : ids.data();
    view.mask = mask.empty() ? nullptr : mask.data();
    view.pixels = pixels.empty() ? nullptr : pixels.data();
    view.samples = samples.empty() ? nullptr : samples.data();
  }
};

struct Scheduler::Instance {
  const tessera_stage_t* stage = nullptr;
  void* handle = nullptr;
  std::mutex run_mutex;  // one run at a time per instance
  ~Instance() {
    if (handle) stage->destroy(handle);
  }
};

namespace {

// A file named in a pipeline file (a path parameter, an image or audio input's default) is relative to that
// file; an absolute one stays as it is.
std::string next_to(const Pipeline& pipeline, const std::string& file) {
  return std::filesystem::absolute(std::filesystem::path(pipeline.path).parent_path() / file).lexically_normal().string();
}

tessera_port_type_t abi_port(PortType t) {
  switch (t) {
    case PortType::text:
      return TESSERA_PORT_TEXT;
    case PortType::tokens:
      return TESSERA_PORT_TOKENS;
    case PortType::tensor:
      return TESSERA_PORT_TENSOR;
    case PortType::image:
      return TESSERA_PORT_IMAGE;
    case PortType::audio:
      return TESSERA_PORT_AUDIO;
  }
  return 0;
}

// The state behind one tessera_run_t.
struct RunContext {
  tessera_run_t run{};
  Scheduler* scheduler = nullptr;
  const Stage* stage = nullptr;
  std::map<std::string, const Scheduler::Value*> inputs;
  std::map<std::string, Scheduler::Value>* outputs = nullptr;
  std::function<void(double, const char*)> progress;
  std::function<void(const char*, const char*)> stream;
  const std::atomic<bool>* cancel = nullptr;
  std::string set_output_error;
  plugin::Services* services = nullptr;
  std::deque<Scheduler::Value> local_values;  // inputs this run made for itself (tensors moved between devices)
};

const tessera_value_t* run_input(const tessera_run_t* r, const char* name) {
  auto* ctx = static_cast<RunContext*>(r->host_data);
  auto it = ctx->inputs.find(name ? name : "");
  return it == ctx->inputs.end() ? nullptr : &it->second->view;
}

tessera_status_t run_set_output(const tessera_run_t* r, const char* name, const tessera_value_t* value) {
  auto* ctx = static_cast<RunContext*>(r->host_data);
  const PortSpec* port = name ? ctx->stage->contract->output(name) : nullptr;
  if (!port || !value) {
    ctx->set_output_error = std::string("set_output: no output port '") + (name ? name : "(null)") + "'";
    return TESSERA_INVALID_ARGUMENT;
  }
  if (value->type != abi_port(port->type)) {
    ctx->set_output_error = "set_output: port '" + port->name + "' carries " + port_type_name(port->type);
    return TESSERA_INVALID_ARGUMENT;
  }
  try {
    (*ctx->outputs)[port->name].copy_from(*value, *ctx->services);
  } catch (const std::exception& e) {
    ctx->set_output_error = "set_output: port '" + port->name + "': " + e.what();
    return TESSERA_INVALID_ARGUMENT;
  }
  return TESSERA_OK;
}

void run_progress(const tessera_run_t* r, double fraction, const char* label) {
  auto* ctx = static_cast<RunContext*>(r->host_data);
  if (ctx->progress) ctx->progress(fraction, label);
}

void run_stream(const tessera_run_t* r, const char* name, const char* text) {
  auto* ctx = static_cast<RunContext*>(r->host_data);
  if (ctx->stream && name && text) ctx->stream(name, text);
}

bool run_cancelled(const tessera_run_t* r) {
  auto* ctx = static_cast<RunContext*>(r->host_data);
  return ctx->cancel && ctx->cancel->load();
}

std::string expand(std::string tmpl, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars)
    for (size_t at; (at = tmpl.find("{" + k + "}")) != std::string::npos;) tmpl.replace(at, k.size() + 2, v);
  return tmpl;
}

}  // namespace

Scheduler::Scheduler(const plugin::PluginSet& plugins, Pipeline pipeline)
    : plugins_(plugins), pipeline_(std::move(pipeline)) {
  for (Stage& s : pipeline_.stages) {
    s.contract = plugins_.contracts().find(s.plugin, s.stage);
    if (!s.contract || !plugins_.stage(s.plugin, s.stage))
      throw Error("stage '" + s.id + "': plugin " + s.plugin + " with stage " + s.stage + " is not loaded");
  }
}

Scheduler::~Scheduler() = default;

RunResult Scheduler::run(const RunOptions& options) {
  const auto items = options.text_items.find(pipeline_.batch_texts);
  if (items == options.text_items.end() || items->second.size() <= kItemsPerBatch) return run_batch(options);
  // Batches of kItemsPerBatch items; item p's sample i keeps seed + p * per_item + i, where per_item is
  // how many samples one item makes (--count times the batch input).
  uint64_t per_item = static_cast<uint64_t>(std::max(options.count, 1));
  if (const PipelineInput* in = pipeline_.input(pipeline_.batch_input)) {
    const auto given = options.inputs.find(in->name);
    const std::string& v = given != options.inputs.end() ? given->second : in->default_value;
    per_item *= std::max<uint64_t>(1, std::strtoull(v.c_str(), nullptr, 10));
  }
  const std::vector<std::string> all = items->second;
  RunOptions batch = options;
  RunResult result;
  for (size_t p0 = 0; p0 < all.size(); p0 += kItemsPerBatch) {
    batch.text_items[pipeline_.batch_texts].assign(all.begin() + static_cast<long>(p0),
                                                   all.begin() + static_cast<long>(std::min(all.size(), p0 + kItemsPerBatch)));
    batch.seed = options.seed + p0 * per_item;
    const RunResult one = run_batch(batch);
    result.files.insert(result.files.end(), one.files.begin(), one.files.end());
    for (const auto& [stage, seconds] : one.stage_seconds) result.stage_seconds[stage] += seconds;
  }
  return result;
}

RunResult Scheduler::run_batch(const RunOptions& options) {
  // Inputs and overrides are checked before anything runs.
  std::vector<std::string> problems;
  std::map<std::string, std::string> input_text;
  for (const auto& [name, value] : options.inputs)
    if (!pipeline_.input(name)) problems.push_back("--input " + name + ": the pipeline has no input '" + name + "'");
  for (const PipelineInput& in : pipeline_.inputs) {
    auto it = options.inputs.find(in.name);
    if (it != options.inputs.end())
      input_text[in.name] = it->second;
    else if (in.has_default && (in.type == InputType::image || in.type == InputType::audio))
      input_text[in.name] = next_to(pipeline_, in.default_value);
    else if (in.has_default)
      input_text[in.name] = in.default_value;
    else
      problems.push_back("--input " + in.name + ": required (" + input_type_name(in.type) + ")");
  }
  std::map<std::string, std::map<std::string, std::string>> override_of;
  for (const auto& [key, value] : options.overrides) {
    const auto dot = key.find('.');
    const Stage* st = dot == std::string::npos ? nullptr : pipeline_.stage(key.substr(0, dot));
    const ParamSpec* spec = st ? st->contract->param(key.substr(dot + 1)) : nullptr;
    if (!spec) {
      problems.push_back("--set " + key + ": no such stage parameter (expected stage.param)");
      continue;
    }
    override_of[st->id][spec->name] = value;
  }
  for (const auto& [name, items] : options.text_items) {
    if (name != pipeline_.batch_texts)
      problems.push_back("--input " + name + ": pipeline '" + pipeline_.name + "' does not take several items for '" +
                         name + "' in one run (no batch: {texts: " + name + "})");
    else if (items.empty())
      problems.push_back("--input " + name + ": no items");
    else {
      std::string joined;  // what parameters and the PNG tEXt see: the items, one per line
      for (size_t i = 0; i < items.size(); ++i) joined += (i ? "\n" : "") + items[i];
      input_text[name] = joined;
    }
  }
  if (options.count < 1) problems.push_back("--count must be at least 1");
  // A pipeline whose stages batch (`batch: images`) makes --count N samples in one run of the graph: the
  // batch input is multiplied by N, and the stages give sample i the seed + i it would have had alone.
  int samples = options.count;
  if (!pipeline_.batch_input.empty() && options.count > 1) {
    std::string& v = input_text[pipeline_.batch_input];
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (!v.empty() && !*end && n >= 1) v = std::to_string(n * options.count);
    samples = 1;
  }
  if (!problems.empty()) throw PipelineError(problems);

  // Host-owned values of the pipeline inputs that feed ports.
  std::map<std::string, Value> input_values;
  for (const PipelineInput& in : pipeline_.inputs) {
    Value v;
    v.view.struct_size = sizeof v.view;
    v.view.count = 1;
    if (in.type == InputType::text) {
      v.view.type = TESSERA_PORT_TEXT;
      const auto items = options.text_items.find(in.name);
      if (items != options.text_items.end()) {
        v.strings = items->second;
        v.view.count = static_cast<uint32_t>(items->second.size());
      } else {
        v.strings = {input_text[in.name]};
      }
    } else if (in.type == InputType::image) {
      const io::Image img = io::read_image(input_text[in.name]);
      v.view.type = TESSERA_PORT_IMAGE;
      v.view.width = static_cast<uint32_t>(img.width);
      v.view.height = static_cast<uint32_t>(img.height);
      v.pixels = img.rgb;
    } else if (in.type == InputType::audio) {
      // As the file has it (channels, rate): a stage down-mixes and resamples to what its model needs.
      const io::Audio clip = io::read_wav(input_text[in.name]);
      v.view.type = TESSERA_PORT_AUDIO;
      v.view.frames = clip.frames();
      v.view.channels = clip.channels;
      v.view.sample_rate = clip.sample_rate;
      v.samples = clip.samples;
    } else {
      continue;
    }
    v.relink();
    input_values.emplace(in.name, std::move(v));
  }

  // Instances: made on first use, reused while the resolved parameters stay the same.
  std::map<std::string, Instance*> instance_of;
  io::TextChunks param_chunks;  // every stage parameter as used, for the PNG tEXt chunks
  for (const Stage& st : pipeline_.stages) {
    std::vector<std::pair<const ParamSpec*, std::string>> resolved;
    for (const ParamSpec& spec : st.contract->params) {
      std::string text = spec.default_value;
      bool have = !spec.required;
      // A path written in the pipeline file is relative to the file; one given on the command line
      // (--input, --set) is relative to the working directory.
      const bool path = spec.type == ParamType::path;
      if (auto p = st.params.find(spec.name); p != st.params.end()) {
        text = p->second.from_input ? input_text[p->second.text] : p->second.text;
        if (path && p->second.from_input && options.inputs.count(p->second.text))
          text = std::filesystem::absolute(text).string();
        have = true;
      }
      if (auto o = override_of[st.id].find(spec.name); o != override_of[st.id].end()) {
        text = path ? std::filesystem::absolute(o->second).string() : o->second;
        have = true;
      }
      if (have) resolved.emplace_back(&spec, text);
    }
    std::string key = st.id + "@" + st.device;
    for (auto& [spec, text] : resolved) {
      key += "\n" + spec->name + "=" + text;
      param_chunks.emplace_back(st.id + "." + spec->name, text);
    }
    auto it = instances_.find(key);
    if (it == instances_.end()) {
      auto inst = std::make_unique<Instance>();
      inst->stage = plugins_.stage(st.plugin, st.stage);
      std::vector<tessera_param_value_t> values;
      std::deque<std::string> paths;  // c_str()s handed to the plugin stay put
      for (auto& [spec, text] : resolved) {
        // Values from inputs and --set are checked like the YAML's own literals.
        if (const std::string bad = check_param_value(*spec, text); !bad.empty())
          throw PipelineError({"stage '" + st.id + "', param '" + spec->name + "': " + bad});
        tessera_param_value_t v{};
        v.name = spec->name.c_str();
        switch (spec->type) {
          case ParamType::boolean:
            v.type = TESSERA_PARAM_BOOL;
            v.b = text == "true";
            break;
          case ParamType::integer:
            v.type = TESSERA_PARAM_INT;
            v.i = std::strtoll(text.c_str(), nullptr, 10);
            break;
          case ParamType::number:
            v.type = TESSERA_PARAM_FLOAT;
            v.f = std::strtod(text.c_str(), nullptr);
            break;
          case ParamType::string:
            v.type = TESSERA_PARAM_STRING;
            paths.push_back(text);
            v.s = paths.back().c_str();
            break;
          case ParamType::path:
            v.type = TESSERA_PARAM_PATH;
            paths.push_back(next_to(pipeline_, text));
            v.s = paths.back().c_str();
            break;
        }
        values.push_back(v);
      }
      char message[1024] = "";
      tessera_message_t err{message, sizeof message};
      const tessera_status_t status = inst->stage->create(plugins_.host(st.device), values.data(),
                                                          static_cast<uint32_t>(values.size()), &inst->handle, &err);
      if (status != TESSERA_OK)
        throw Error("stage '" + st.id + "' (" + st.plugin + "/" + st.stage + ") could not start: " +
                    (message[0] ? message : "error " + std::to_string(status)));
      ++created_;
      it = instances_.emplace(key, std::move(inst)).first;
    }
    instance_of[st.id] = it->second.get();
  }

  // Every sample runs the whole graph; its outputs are written only when all samples succeeded.
  std::vector<std::map<std::string, std::map<std::string, Value>>> results(static_cast<size_t>(samples));
  std::map<std::string, double> stage_seconds;
  for (int sample = 0; sample < samples; ++sample) {
    auto& values = results[static_cast<size_t>(sample)];
    std::mutex m;
    std::condition_variable cv;
    std::set<std::string> done, started;
    std::string failure;
    bool cancelled = false;
    std::vector<std::thread> workers;
    auto ready = [&](const Stage& st) {
      for (const auto& [port, src] : st.inputs)
        if (!src.from_input && !done.count(src.stage)) return false;
      return true;
    };
    {
      std::unique_lock<std::mutex> lock(m);
      auto stopping = [&] { return !failure.empty() || cancelled || (options.cancel && options.cancel->load()); };
      while (done.size() < pipeline_.stages.size() && !stopping()) {
        for (const Stage& st : pipeline_.stages) {
          if (started.count(st.id) || !ready(st)) continue;
          started.insert(st.id);
          // Inputs are read from values of finished stages only: no lock needed while the stage runs.
          auto ctx = std::make_shared<RunContext>();
          ctx->stage = &st;
          ctx->services = &plugins_.services();
          ctx->cancel = options.cancel;
          for (const auto& [port, src] : st.inputs) {
            const Value* v = src.from_input ? &input_values.at(src.name) : &values[src.stage][src.name];
            if (v->view.type == TESSERA_PORT_TENSOR && v->tensor) {
              // A tensor made on another device arrives as a copy on this stage's device.
              const tessera_tensor_t here = plugins_.services().transfer(v->view.tensor, plugins_.host(st.device));
              auto& local = ctx->local_values.emplace_back();
              local.view = v->view;
              local.view.tensor = here;
              local.tensor = std::shared_ptr<const tessera_tensor_t>(new tessera_tensor_t(here), [&svc = plugins_.services()](const tessera_tensor_t* t) {
                svc.release(*t);
                delete t;
              });
              v = &local;
            }
            ctx->inputs[port] = v;
          }
          ctx->outputs = &values[st.id];
          ctx->progress = [&, id = st.id, sample](double f, const char* label) {
            if (!options.on_progress) return;
            std::lock_guard<std::mutex> plock(progress_mutex_);
            options.on_progress({id, sample, samples, f, label ? label : ""});
          };
          ctx->stream = [&, id = st.id, sample](const char* output, const char* text) {
            if (!options.on_text) return;
            std::lock_guard<std::mutex> plock(progress_mutex_);
            options.on_text(id, sample, output, text);
          };
          ctx->run.struct_size = sizeof ctx->run;
          ctx->run.stream = run_stream;
          ctx->run.seed = options.seed + static_cast<uint64_t>(sample);
          ctx->run.index = static_cast<uint32_t>(sample);
          ctx->run.input = run_input;
          ctx->run.set_output = run_set_output;
          ctx->run.progress = run_progress;
          ctx->run.cancelled = run_cancelled;
          ctx->run.host_data = ctx.get();
          Instance* inst = instance_of[st.id];
          workers.emplace_back([&, ctx, inst, id = st.id] {
            char message[1024] = "";
            tessera_message_t err{message, sizeof message};
            tessera_status_t status;
            const auto started_at = std::chrono::steady_clock::now();
            {
              std::lock_guard<std::mutex> run_lock(inst->run_mutex);
              status = inst->stage->run(inst->handle, &ctx->run, &err);
            }
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at).count();
            std::lock_guard<std::mutex> lock2(m);
            stage_seconds[id] += seconds;
            if (status == TESSERA_CANCELLED) {
              cancelled = true;
            } else if (status != TESSERA_OK && failure.empty()) {
              std::string why = message[0] ? message : ctx->set_output_error;
              if (why.empty()) why = "error " + std::to_string(status);
              failure = "stage '" + id + "' (" + ctx->stage->plugin + "/" + ctx->stage->stage + ") failed: " + why;
            } else if (status == TESSERA_OK) {
              for (const PortSpec& out : ctx->stage->contract->outputs)
                if (!values[id].count(out.name) && failure.empty())
                  failure = "stage '" + id + "' (" + ctx->stage->plugin + "/" + ctx->stage->stage +
                            ") finished without setting output '" + out.name + "'";
            }
            done.insert(id);
            cv.notify_all();
          });
        }
        // Wake on any stage finishing, so that what it unblocks starts while other branches still run.
        const size_t finished = done.size();
        cv.wait(lock, [&] { return done.size() != finished || stopping(); });
      }
      cv.wait(lock, [&] { return done.size() == started.size(); });
    }
    for (auto& w : workers) w.join();
    if (cancelled || (options.cancel && options.cancel->load())) throw Cancelled();
    if (!failure.empty()) throw Error(failure);
  }

  RunResult result;
  result.stage_seconds = stage_seconds;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> files;
  for (int sample = 0; sample < samples; ++sample) {
    const uint64_t seed = options.seed + static_cast<uint64_t>(sample);
    for (const PipelineOutput& out : pipeline_.outputs) {
      const Value& v = results[static_cast<size_t>(sample)][out.from.stage][out.from.name];
      // Several items of one sample (a batch) need names of their own: "{index}" goes before the extension
      // when the pattern has none.
      std::string pattern = out.file;
      if (v.view.count > 1 && pattern.find("{index}") == std::string::npos) {
        const size_t dot = pattern.rfind('.');
        pattern.insert(dot == std::string::npos || dot == 0 ? pattern.size() : dot, "-{index}");
      }
      for (uint32_t item = 0; item < std::max<uint32_t>(v.view.count, 1); ++item) {
        const std::string name = expand(pattern, {{"pipeline", pipeline_.name},
                                                   {"name", out.name},
                                                   {"seed", std::to_string(seed)},
                                                   {"index", std::to_string(sample * std::max<uint32_t>(v.view.count, 1) + item)}});
        const std::string path = (std::filesystem::path(options.out_dir) / name).string();
        if (v.view.type == TESSERA_PORT_IMAGE) {
          io::Image img;
          img.width = static_cast<int>(v.view.width);
          img.height = static_cast<int>(v.view.height);
          const size_t n = static_cast<size_t>(img.width) * img.height * 3;
          img.rgb.assign(v.pixels.begin() + static_cast<long>(item * n), v.pixels.begin() + static_cast<long>((item + 1) * n));
          io::TextChunks text = {{"pipeline", pipeline_.name}, {"seed", std::to_string(seed)}};
          for (const auto& [k, val] : input_text) {
            // An output with one item per prompt of a batch of prompts records each item's own prompt.
            const auto items = options.text_items.find(k);
            const bool per_item = items != options.text_items.end() && items->second.size() == v.view.count;
            text.emplace_back("input." + k, per_item ? items->second[item] : val);
          }
          text.insert(text.end(), param_chunks.begin(), param_chunks.end());
          files.emplace_back(path, io::encode_png(img, text));
        } else if (v.view.type == TESSERA_PORT_TEXT) {
          const std::string s = item < v.strings.size() ? v.strings[item] + "\n" : "\n";
          files.emplace_back(path, std::vector<uint8_t>(s.begin(), s.end()));
        } else if (v.view.type == TESSERA_PORT_AUDIO) {
          io::Audio clip;
          clip.sample_rate = v.view.sample_rate;
          clip.channels = v.view.channels;
          const size_t n = static_cast<size_t>(v.view.frames) * v.view.channels;
          clip.samples.assign(v.samples.begin() + static_cast<long>(item * n), v.samples.begin() + static_cast<long>((item + 1) * n));
          files.emplace_back(path, io::encode_wav(clip));
        } else {
          throw Error("output '" + out.name + "': writing " + std::to_string(v.view.type) + " values is not supported yet");
        }
      }
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  for (auto& [path, bytes] : files) {
    io::write_file_atomic(path, bytes.data(), bytes.size());
    result.files.push_back(path);
  }
  return result;
}

}  // namespace tessera::pipeline
