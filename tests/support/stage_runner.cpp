#include "support/stage_runner.hpp"

#include <cstdlib>
#include <cstring>

#include "gpu/error.hpp"

namespace tessera::test {

PortValue::PortValue(PortValue&& o) noexcept
    : type(o.type), count(o.count), length(o.length), width(o.width), height(o.height), text(std::move(o.text)),
      ids(std::move(o.ids)), mask(std::move(o.mask)), pixels(std::move(o.pixels)),
      samples(std::move(o.samples)), frames(o.frames), channels(o.channels), sample_rate(o.sample_rate), tensor(o.tensor), services(o.services) {
  o.tensor = 0;
}

PortValue::~PortValue() {
  if (tensor && services) services->release(tensor);
}

PortValue PortValue::texts(std::vector<std::string> t) {
  PortValue v;
  v.type = TESSERA_PORT_TEXT;
  v.count = static_cast<uint32_t>(t.size());
  v.text = std::move(t);
  return v;
}

PortValue PortValue::audio(std::vector<float> samples, uint32_t channels, uint32_t sample_rate) {
  PortValue v;
  v.type = TESSERA_PORT_AUDIO;
  v.count = 1;
  v.channels = channels;
  v.sample_rate = sample_rate;
  v.frames = channels ? samples.size() / channels : 0;
  v.samples = std::move(samples);
  return v;
}

PortValue PortValue::tokens(uint32_t rows, uint32_t length, std::vector<int32_t> ids, std::vector<int32_t> mask) {
  PortValue v;
  v.type = TESSERA_PORT_TOKENS;
  v.count = rows;
  v.length = length;
  if (mask.empty()) mask.assign(ids.size(), 1);
  v.ids = std::move(ids);
  v.mask = std::move(mask);
  return v;
}

std::vector<int64_t> PortValue::shape() const {
  const auto* t = static_cast<const tessera_tensor_service_t*>(services->service(TESSERA_SERVICE_TENSORS));
  tessera_tensor_info_t info{};
  info.struct_size = sizeof info;
  char m[256];
  tessera_message_t err{m, sizeof m};
  if (t->info(services->host(), tensor, &info, &err) != TESSERA_OK) throw Error(m);
  return std::vector<int64_t>(info.shape, info.shape + info.rank);
}

std::vector<float> PortValue::floats() const {
  size_t n = 1;
  for (int64_t d : shape()) n *= static_cast<size_t>(d);
  std::vector<float> out(n);
  const auto* t = static_cast<const tessera_tensor_service_t*>(services->service(TESSERA_SERVICE_TENSORS));
  char m[256];
  tessera_message_t err{m, sizeof m};
  if (t->download(services->host(), tensor, TESSERA_DTYPE_F32, out.data(), n, &err) != TESSERA_OK) throw Error(m);
  return out;
}

namespace {

struct RunState {
  tessera_run_t run{};
  std::map<std::string, tessera_value_t> inputs;
  std::vector<std::vector<const char*>> text_ptrs;
  std::map<std::string, PortValue>* outputs = nullptr;
  plugin::Services* services = nullptr;
};

const tessera_value_t* input(const tessera_run_t* r, const char* name) {
  auto* st = static_cast<RunState*>(r->host_data);
  auto it = st->inputs.find(name);
  return it == st->inputs.end() ? nullptr : &it->second;
}

tessera_status_t set_output(const tessera_run_t* r, const char* name, const tessera_value_t* v) {
  auto* st = static_cast<RunState*>(r->host_data);
  PortValue out;
  out.type = v->type;
  out.count = v->count;
  out.services = st->services;
  const size_t n = v->count;
  if (v->type == TESSERA_PORT_TEXT)
    for (size_t i = 0; i < n; ++i) out.text.emplace_back(v->text[i]);
  if (v->type == TESSERA_PORT_TOKENS) {
    out.length = v->length;
    out.ids.assign(v->ids, v->ids + n * v->length);
    out.mask.assign(v->mask, v->mask + n * v->length);
  }
  if (v->type == TESSERA_PORT_IMAGE) {
    out.width = v->width;
    out.height = v->height;
    out.pixels.assign(v->pixels, v->pixels + n * v->width * v->height * 3);
  }
  if (v->type == TESSERA_PORT_AUDIO) {
    out.frames = v->frames;
    out.channels = v->channels;
    out.sample_rate = v->sample_rate;
    out.samples.assign(v->samples, v->samples + n * v->frames * v->channels);
  }
  if (v->type == TESSERA_PORT_TENSOR) out.tensor = st->services->retain(v->tensor);
  st->outputs->erase(name);
  st->outputs->emplace(name, std::move(out));
  return TESSERA_OK;
}

void progress(const tessera_run_t*, double, const char*) {}
bool cancelled(const tessera_run_t*) { return false; }

}  // namespace

StageRunner::StageRunner(plugin::PluginSet& plugins, const std::string& plugin, const std::string& stage,
                         const std::map<std::string, std::string>& params)
    : plugins_(plugins), stage_(plugins.stage(plugin, stage)) {
  if (!stage_) throw Error("no stage " + plugin + "/" + stage);
  const pipeline::StageContract* contract = plugins.contracts().find(plugin, stage);
  std::vector<tessera_param_value_t> values;
  std::vector<std::string> texts;
  texts.reserve(contract->params.size());
  for (const pipeline::ParamSpec& spec : contract->params) {
    auto it = params.find(spec.name);
    const std::string text = it != params.end() ? it->second : spec.default_value;
    if (it == params.end() && spec.required) throw Error("parameter '" + spec.name + "' is required");
    tessera_param_value_t v{};
    v.name = spec.name.c_str();
    texts.push_back(text);
    switch (spec.type) {
      case pipeline::ParamType::boolean: v.type = TESSERA_PARAM_BOOL; v.b = text == "true"; break;
      case pipeline::ParamType::integer: v.type = TESSERA_PARAM_INT; v.i = std::strtoll(text.c_str(), nullptr, 10); break;
      case pipeline::ParamType::number: v.type = TESSERA_PARAM_FLOAT; v.f = std::strtod(text.c_str(), nullptr); break;
      case pipeline::ParamType::string: v.type = TESSERA_PARAM_STRING; v.s = texts.back().c_str(); break;
      case pipeline::ParamType::path: v.type = TESSERA_PARAM_PATH; v.s = texts.back().c_str(); break;
    }
    values.push_back(v);
  }
  char m[1024] = "";
  tessera_message_t err{m, sizeof m};
  if (stage_->create(plugins.host(), values.data(), static_cast<uint32_t>(values.size()), &instance_, &err) != TESSERA_OK)
    throw Error(m);
}

StageRunner::~StageRunner() {
  if (instance_) stage_->destroy(instance_);
}

std::map<std::string, PortValue> StageRunner::run(const std::map<std::string, const PortValue*>& inputs, uint64_t seed) {
  RunState st;
  std::map<std::string, PortValue> outputs;
  st.outputs = &outputs;
  st.services = &plugins_.services();
  for (const auto& [name, pv] : inputs) {
    tessera_value_t v{};
    v.struct_size = sizeof v;
    v.type = pv->type;
    v.count = pv->count;
    if (pv->type == TESSERA_PORT_TEXT) {
      st.text_ptrs.emplace_back();
      for (const auto& t : pv->text) st.text_ptrs.back().push_back(t.c_str());
      v.text = st.text_ptrs.back().data();
    }
    v.ids = pv->ids.data();
    v.mask = pv->mask.data();
    v.length = pv->length;
    v.pixels = pv->pixels.data();
    v.width = pv->width;
    v.height = pv->height;
    v.samples = pv->samples.data();
    v.frames = pv->frames;
    v.channels = pv->channels;
    v.sample_rate = pv->sample_rate;
    v.tensor = pv->tensor;
    st.inputs[name] = v;
  }
  st.run.struct_size = sizeof st.run;
  st.run.seed = seed;
  st.run.input = input;
  st.run.set_output = set_output;
  st.run.progress = progress;
  st.run.cancelled = cancelled;
  st.run.host_data = &st;
  char m[1024] = "";
  tessera_message_t err{m, sizeof m};
  if (stage_->run(instance_, &st.run, &err) != TESSERA_OK) throw Error(m);
  return outputs;
}

}  // namespace tessera::test
