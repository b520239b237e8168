// Tessera plugin SDK for C++: header-only, over tessera/plugin.h, so that a plugin is one .cpp file.
//
//   class Invert : public tessera::sdk::Stage {
//    public:
//     explicit Invert(const tessera::sdk::Params& p) : amount_(p.integer("amount")) {}
//     void run(tessera::sdk::Run& r) override {
//       tessera::sdk::Image img = r.image("image");
//       for (auto& v : img.pixels) v = static_cast<uint8_t>(amount_ - v);
//       r.set_image("image", img);
//     }
//    private:
//     int64_t amount_;
//   };
//   TESSERA_PLUGIN("example.filters", "1.0.0", "Example vendor", "image filters",
//                  tessera::sdk::stage<Invert>("invert", "amount - pixel",
//                      {tessera::sdk::input("image", TESSERA_PORT_IMAGE)},
//                      {tessera::sdk::output("image", TESSERA_PORT_IMAGE)},
//                      {tessera::sdk::int_param("amount", 255, 0, 255)}))
//
// A stage that uses the GPU takes the host's services in its constructor and keeps them:
//
//   class Scale : public tessera::sdk::Stage {
//    public:
//     Scale(const tessera::sdk::Params& p, const tessera::sdk::Host& host) : host_(host), k_(p.number("k")) {}
//     void run(tessera::sdk::Run& r) override {
//       tessera::sdk::Tensor x = r.tensor("x", host_);
//       tessera::sdk::Tensor y(host_, TESSERA_DTYPE_F32, x.shape());
//       tessera::sdk::Stream s(host_);
//       s.op("scale", {{"x", x}, {"out", y}, {"alpha", k_}});
//       s.finish();
//       r.set_tensor("y", y);
//     }
//     ...
//
// Exceptions thrown by a stage's constructor or run() become error messages for the host; nothing
// crosses the C boundary.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tessera/plugin.h"

namespace tessera::sdk {

// A stage's validated parameters, by name.
class Params {
 public:
  Params(const tessera_param_value_t* values, uint32_t count) : values_(values), count_(count) {}
  bool has(const char* name) const { return find(name) != nullptr; }
  int64_t integer(const char* name) const { return get(name).i; }
  double number(const char* name) const { return get(name).f; }
  bool boolean(const char* name) const { return get(name).b; }
  std::string text(const char* name) const { return get(name).s ? get(name).s : ""; }

 private:
  const tessera_param_value_t* find(const char* name) const {
    for (uint32_t i = 0; i < count_; ++i)
      if (!std::strcmp(values_[i].name, name)) return &values_[i];
    return nullptr;
  }
  const tessera_param_value_t& get(const char* name) const {
    if (const auto* v = find(name)) return *v;
    throw std::runtime_error(std::string("no parameter '") + name + "'");
  }
  const tessera_param_value_t* values_;
  uint32_t count_;
};

// RGB8 images, `count` of them, each height x width x 3 bytes.
struct Image {
  uint32_t width = 0, height = 0, count = 1;
  std::vector<uint8_t> pixels;
};

// Audio clips: `count` clips of `frames` samples per channel, interleaved, f32 in [-1, 1].
struct Audio {
  uint32_t sample_rate = 0, channels = 1, count = 1;
  uint64_t frames = 0;
  std::vector<float> samples;
};

// ---- GPU services ---------------------------------------------------------------------------------------------

// Throws std::runtime_error with the host's message when a service call fails.
inline void check(tessera_status_t status, const char* message) {
  if (status != TESSERA_OK) throw std::runtime_error(message && message[0] ? message : "host service failed");
}

// The services of the host a stage runs on. Cheap to copy; valid while the host lives (the whole plugin
// lifetime).
class Host {
 public:
  Host() = default;
  explicit Host(const tessera_host_t* host) : host_(host) {
    auto get = [&](const char* id) {
      const void* s = host && host->get_service ? host->get_service(host, id) : nullptr;
      if (!s) throw std::runtime_error(std::string("the host has no service ") + id);
      return s;
    };
    tensors_ = static_cast<const tessera_tensor_service_t*>(get(TESSERA_SERVICE_TENSORS));
    ops_ = static_cast<const tessera_ops_service_t*>(get(TESSERA_SERVICE_OPS));
    kernels_ = static_cast<const tessera_kernel_service_t*>(get(TESSERA_SERVICE_KERNELS));
    weights_ = static_cast<const tessera_safetensors_service_t*>(get(TESSERA_SERVICE_SAFETENSORS));
    random_ = static_cast<const tessera_random_service_t*>(get(TESSERA_SERVICE_RANDOM));
  }
  const tessera_host_t* raw() const { return host_; }
  const tessera_tensor_service_t& tensors() const { return *tensors_; }
  const tessera_ops_service_t& ops() const { return *ops_; }
  const tessera_kernel_service_t& kernels() const { return *kernels_; }
  const tessera_safetensors_service_t& weights() const { return *weights_; }
  const tessera_random_service_t& random() const { return *random_; }
  void log(int32_t level, const std::string& message) const { host_->log(host_, level, message.c_str()); }

 private:
  const tessera_host_t* host_ = nullptr;
  const tessera_tensor_service_t* tensors_ = nullptr;
  const tessera_ops_service_t* ops_ = nullptr;
  const tessera_kernel_service_t* kernels_ = nullptr;
  const tessera_safetensors_service_t* weights_ = nullptr;
  const tessera_random_service_t* random_ = nullptr;
};

// One reference to a GPU tensor; move-only. Views share the storage and keep it alive.
class Tensor {
 public:
  Tensor() = default;
  Tensor(const Host& host, tessera_dtype_t dtype, std::vector<int64_t> shape, const char* name = nullptr)
      : host_(host) {
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host.tensors().create(host.raw(), dtype, static_cast<uint32_t>(shape.size()), shape.data(), name, &h_, &err), m);
  }
  // Takes ownership of a reference the caller holds.
  static Tensor adopt(const Host& host, tessera_tensor_t h) {
    Tensor t;
    t.host_ = host;
    t.h_ = h;
    return t;
  }
  ~Tensor() { reset(); }
  Tensor(Tensor&& o) noexcept : host_(o.host_), h_(o.h_) { o.h_ = 0; }
  Tensor& operator=(Tensor&& o) noexcept {
    if (this != &o) {
      reset();
      host_ = o.host_;
      h_ = o.h_;
      o.h_ = 0;
    }
    return *this;
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  void reset() {
    if (h_) host_.tensors().release(host_.raw(), h_);
    h_ = 0;
  }
  explicit operator bool() const { return h_ != 0; }
  tessera_tensor_t handle() const { return h_; }
  const Host& host() const { return host_; }

  tessera_tensor_info_t info() const {
    tessera_tensor_info_t i{};
    i.struct_size = sizeof i;
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.tensors().info(host_.raw(), h_, &i, &err), m);
    return i;
  }
  std::vector<int64_t> shape() const {
    const tessera_tensor_info_t i = info();
    return std::vector<int64_t>(i.shape, i.shape + i.rank);
  }
  int64_t dim(int d) const {
    const tessera_tensor_info_t i = info();
    return i.shape[d < 0 ? static_cast<int>(i.rank) + d : d];
  }
  int64_t numel() const {
    const tessera_tensor_info_t i = info();
    int64_t n = 1;
    for (uint32_t k = 0; k < i.rank; ++k) n *= i.shape[k];
    return n;
  }
  // Another reference to the same tensor.
  Tensor retain() const {
    tessera_tensor_t out = 0;
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.tensors().retain(host_.raw(), h_, &out, &err), m);
    return adopt(host_, out);
  }
  // A view with an explicit layout (elements of the storage).
  Tensor view(const tessera_tensor_info_t& layout) const {
    tessera_tensor_t out = 0;
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.tensors().view(host_.raw(), h_, &layout, &out, &err), m);
    return adopt(host_, out);
  }
  // Rows [start, start + length) of dimension `d`.
  Tensor slice(int d, int64_t start, int64_t length) const {
    tessera_tensor_info_t i = info();
    if (d < 0) d += static_cast<int>(i.rank);
    if (d < 0 || d >= static_cast<int>(i.rank) || start < 0 || length < 1 || start + length > i.shape[d])
      throw std::runtime_error("slice out of range");
    i.offset += start * i.strides[d];
    i.shape[d] = length;
    return view(i);
  }
  // Index `index` of dimension `d`, that dimension dropped (a row of a batch, one layer of stacked caches).
  Tensor select(int d, int64_t index) const {
    tessera_tensor_info_t i = info();
    if (d < 0) d += static_cast<int>(i.rank);
    if (d < 0 || d >= static_cast<int>(i.rank) || i.rank < 2 || index < 0 || index >= i.shape[d])
      throw std::runtime_error("select out of range");
    i.offset += index * i.strides[d];
    for (uint32_t k = static_cast<uint32_t>(d); k + 1 < i.rank; ++k) {
      i.shape[k] = i.shape[k + 1];
      i.strides[k] = i.strides[k + 1];
    }
    --i.rank;
    return view(i);
  }
  // Dimensions d0 and d1 swapped (no copy; ops that need contiguous rows say so).
  Tensor transpose(int d0, int d1) const {
    tessera_tensor_info_t i = info();
    if (d0 < 0) d0 += static_cast<int>(i.rank);
    if (d1 < 0) d1 += static_cast<int>(i.rank);
    if (d0 < 0 || d1 < 0 || d0 >= static_cast<int>(i.rank) || d1 >= static_cast<int>(i.rank))
      throw std::runtime_error("transpose out of range");
    std::swap(i.shape[d0], i.shape[d1]);
    std::swap(i.strides[d0], i.strides[d1]);
    return view(i);
  }
  // A new dimension `d` of `n` copies of the tensor, with stride 0 (no copy): one set of keys for every row of
  // a batch, or n = 1 for a leading batch dimension.
  Tensor repeated(int d, int64_t n) const {
    tessera_tensor_info_t i = info();
    if (d < 0 || d > static_cast<int>(i.rank) || i.rank >= TESSERA_MAX_RANK || n < 1) throw std::runtime_error("repeated out of range");
    for (uint32_t k = i.rank; k > static_cast<uint32_t>(d); --k) {
      i.shape[k] = i.shape[k - 1];
      i.strides[k] = i.strides[k - 1];
    }
    i.shape[d] = n;
    i.strides[d] = 0;
    ++i.rank;
    return view(i);
  }
  // A reshape of a contiguous tensor.
  Tensor reshape(std::vector<int64_t> dims) const {
    tessera_tensor_info_t i = info();
    int64_t n = 1, stride = 1;
    for (int64_t d : dims) n *= d;
    if (n != numel()) throw std::runtime_error("reshape changes the element count");
    for (uint32_t k = i.rank; k-- > 0;) {
      if (i.shape[k] != 1 && i.strides[k] != stride) throw std::runtime_error("reshape of a non-contiguous tensor");
      stride *= i.shape[k];
    }
    i.rank = static_cast<uint32_t>(dims.size());
    stride = 1;
    for (uint32_t k = i.rank; k-- > 0;) {
      i.shape[k] = dims[k];
      i.strides[k] = stride;
      stride *= dims[k];
    }
    return view(i);
  }

  void upload(const std::vector<float>& data) const { upload(TESSERA_DTYPE_F32, data.data(), data.size()); }
  void upload(const std::vector<int32_t>& data) const { upload(TESSERA_DTYPE_I32, data.data(), data.size()); }
  void upload(tessera_dtype_t dtype, const void* data, size_t count) const {
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.tensors().upload(host_.raw(), h_, dtype, data, count, &err), m);
  }
  std::vector<float> download_f32() const {
    std::vector<float> v(static_cast<size_t>(numel()));
    download(TESSERA_DTYPE_F32, v.data(), v.size());
    return v;
  }
  std::vector<int32_t> download_i32() const {
    std::vector<int32_t> v(static_cast<size_t>(numel()));
    download(TESSERA_DTYPE_I32, v.data(), v.size());
    return v;
  }
  void download(tessera_dtype_t dtype, void* data, size_t count) const {
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.tensors().download(host_.raw(), h_, dtype, data, count, &err), m);
  }

 private:
  Host host_;
  tessera_tensor_t h_ = 0;
};

// A named op argument: a tensor, a number or a choice.
struct Arg {
  tessera_op_arg_t raw{};
  Arg(const char* name, const Tensor& t) { raw.name = name, raw.tensor = t.handle(); }
  Arg(const char* name, double v) { raw.name = name, raw.number = v; }
  Arg(const char* name, int v) { raw.name = name, raw.number = v; }
  Arg(const char* name, int64_t v) { raw.name = name, raw.number = static_cast<double>(v); }
  Arg(const char* name, bool v) { raw.name = name, raw.number = v ? 1 : 0; }
  Arg(const char* name, const char* choice) { raw.name = name, raw.text = choice; }
};

// Records core ops and runs them in one submission at finish(). One thread at a time.
//   s.op("matmul", {{"a", x}, {"w", w}, {"out", y}});
//   s.finish();
class Stream {
 public:
  explicit Stream(const Host& host) : host_(host) {
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host.ops().stream_create(host.raw(), &s_, &err), m);
  }
  ~Stream() { host_.ops().stream_destroy(host_.raw(), s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  void op(const char* name, std::initializer_list<Arg> args) { op(name, std::vector<Arg>(args)); }
  void op(const char* name, const std::vector<Arg>& args) {
    std::vector<tessera_op_arg_t> raw;
    raw.reserve(args.size());
    for (const Arg& a : args) raw.push_back(a.raw);
    char m[1024] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.ops().record(host_.raw(), s_, name, raw.data(), static_cast<uint32_t>(raw.size()), &err), m);
  }
  void finish() {
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.ops().finish(host_.raw(), s_, &err), m);
  }
  tessera_stream_t handle() const { return s_; }
  const Host& host() const { return host_; }

 private:
  Host host_;
  tessera_stream_t s_ = 0;
};

// One T per (host, key) while any stage instance holds it: instances that differ only in settings (max tokens,
// sampling, beams) share one copy of a model's weights on a device instead of loading it again. `make()` builds
// it on first use. [main] and [run], thread-safe.
template <class T, class Make>
std::shared_ptr<const T> shared_per_host(const Host& host, const std::string& key, Make&& make) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, std::string>, std::weak_ptr<const T>> held;
  std::lock_guard<std::mutex> lock(mutex);
  std::weak_ptr<const T>& slot = held[{host.raw(), key}];
  if (std::shared_ptr<const T> t = slot.lock()) return t;
  std::shared_ptr<const T> t = make();
  slot = t;
  return t;
}

// A safetensors file, mapped while this object lives.
class Weights {
 public:
  Weights(const Host& host, const std::string& path) : host_(host) {
    char m[1024] = "";
    tessera_message_t err{m, sizeof m};
    check(host.weights().open(host.raw(), path.c_str(), &w_, &err), m);
  }
  ~Weights() { host_.weights().close(host_.raw(), w_); }
  Weights(const Weights&) = delete;
  Weights& operator=(const Weights&) = delete;

  bool has(const char* name) const {
    tessera_stored_tensor_t t{};
    t.struct_size = sizeof t;
    char m[8] = "";
    tessera_message_t err{m, sizeof m};
    return host_.weights().find(host_.raw(), w_, name, &t, &err) == TESSERA_OK;
  }
  tessera_stored_tensor_t stored(const char* name) const {
    tessera_stored_tensor_t t{};
    t.struct_size = sizeof t;
    char m[1024] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.weights().find(host_.raw(), w_, name, &t, &err), m);
    return t;
  }
  // Uploads `name` as `dtype`; a non-empty `shape` must match the stored one.
  Tensor load(const std::string& name, tessera_dtype_t dtype = TESSERA_DTYPE_F32, std::vector<int64_t> shape = {}) const {
    tessera_tensor_t out = 0;
    char m[1024] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.weights().load(host_.raw(), w_, name.c_str(), dtype, static_cast<uint32_t>(shape.size()),
                               shape.empty() ? nullptr : shape.data(), &out, &err),
          m);
    return Tensor::adopt(host_, out);
  }
  std::string metadata(const char* key) const {
    const char* v = host_.weights().metadata(host_.raw(), w_, key);
    return v ? v : "";
  }

 private:
  Host host_;
  tessera_weights_t w_ = 0;
};

// A plugin's own compute shader.
class Kernel {
 public:
  Kernel(const Host& host, const char* name, const uint32_t* spirv, size_t spirv_bytes,
         std::vector<tessera_binding_t> bindings, uint32_t push_bytes, std::vector<int32_t> constants = {})
      : host_(host) {
    tessera_kernel_desc_t d{};
    d.struct_size = sizeof d;
    d.name = name;
    d.spirv = spirv;
    d.spirv_bytes = spirv_bytes;
    d.bindings = bindings.data();
    d.binding_count = static_cast<uint32_t>(bindings.size());
    d.push_constant_bytes = push_bytes;
    d.constants = constants.data();
    d.constant_count = static_cast<uint32_t>(constants.size());
    char m[1024] = "";
    tessera_message_t err{m, sizeof m};
    check(host.kernels().create(host.raw(), &d, &k_, &err), m);
  }
  ~Kernel() { host_.kernels().release(host_.raw(), k_); }
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  template <class Push>
  void dispatch(Stream& s, std::initializer_list<const Tensor*> tensors, const Push& push,
                std::array<uint32_t, 3> groups) const {
    std::vector<tessera_tensor_t> handles;
    for (const Tensor* t : tensors) handles.push_back(t->handle());
    char m[1024] = "";
    tessera_message_t err{m, sizeof m};
    check(host_.kernels().dispatch(host_.raw(), s.handle(), k_, handles.data(), static_cast<uint32_t>(handles.size()),
                                   &push, sizeof(Push), groups.data(), &err),
          m);
  }

 private:
  Host host_;
  tessera_kernel_t k_ = 0;
};

// Token ids and mask, rows x length.
struct Tokens {
  uint32_t rows = 0, length = 0;
  std::vector<int32_t> ids, mask;
};

// One run of a stage: typed access to its inputs and outputs.
class Run {
 public:
  explicit Run(const tessera_run_t* run) : run_(run) {}
  uint64_t seed() const { return run_->seed; }
  uint32_t index() const { return run_->index; }
  bool cancelled() const { return run_->cancelled(run_); }
  void progress(double fraction, const char* label = nullptr) const { run_->progress(run_, fraction, label); }
  // Streams a piece of text output `name` as it is produced (a host older than ABI 1.1 ignores it).
  void stream(const char* name, const std::string& text) const {
    if (run_->struct_size >= offsetof(tessera_run_t, stream) + sizeof run_->stream && run_->stream)
      run_->stream(run_, name, text.c_str());
  }
  // The raw value on an input, or nullptr for an unconnected optional input.
  const tessera_value_t* value(const char* name) const { return run_->input(run_, name); }

  Image image(const char* name) const {
    const tessera_value_t* v = require(name, TESSERA_PORT_IMAGE);
    Image img;
    img.width = v->width;
    img.height = v->height;
    img.count = v->count;
    img.pixels.assign(v->pixels, v->pixels + static_cast<size_t>(v->count) * v->width * v->height * 3);
    return img;
  }
  Audio audio(const char* name) const {
    const tessera_value_t* v = require(name, TESSERA_PORT_AUDIO);
    Audio a;
    a.sample_rate = v->sample_rate;
    a.channels = v->channels;
    a.count = v->count;
    a.frames = v->frames;
    a.samples.assign(v->samples, v->samples + static_cast<size_t>(v->count) * v->frames * v->channels);
    return a;
  }
  std::vector<std::string> texts(const char* name) const {
    const tessera_value_t* v = require(name, TESSERA_PORT_TEXT);
    return std::vector<std::string>(v->text, v->text + v->count);
  }

  // The tensor on input `name`: a reference of the caller's own.
  Tensor tensor(const char* name, const Host& host) const {
    const tessera_value_t* v = require(name, TESSERA_PORT_TENSOR);
    tessera_tensor_t own = 0;
    char m[512] = "";
    tessera_message_t err{m, sizeof m};
    check(host.tensors().retain(host.raw(), v->tensor, &own, &err), m);
    return Tensor::adopt(host, own);
  }
  Tokens tokens(const char* name) const {
    const tessera_value_t* v = require(name, TESSERA_PORT_TOKENS);
    Tokens t;
    t.rows = v->count;
    t.length = v->length;
    const size_t n = static_cast<size_t>(v->count) * v->length;
    t.ids.assign(v->ids, v->ids + n);
    if (v->mask) t.mask.assign(v->mask, v->mask + n);
    else t.mask.assign(n, 1);
    return t;
  }

  void set_tensor(const char* name, const Tensor& t) const {
    tessera_value_t v = blank(TESSERA_PORT_TENSOR, 1);
    v.tensor = t.handle();
    publish(name, v);
  }
  void set_tokens(const char* name, const Tokens& t) const {
    if (t.ids.size() != static_cast<size_t>(t.rows) * t.length || t.mask.size() != t.ids.size())
      throw std::runtime_error(std::string("output '") + name + "': ids and mask must hold rows x length values");
    tessera_value_t v = blank(TESSERA_PORT_TOKENS, t.rows);
    v.length = t.length;
    v.ids = t.ids.data();
    v.mask = t.mask.data();
    publish(name, v);
  }
  void set_image(const char* name, const Image& img) const {
    tessera_value_t v = blank(TESSERA_PORT_IMAGE, img.count);
    v.width = img.width;
    v.height = img.height;
    v.pixels = img.pixels.data();
    publish(name, v);
  }
  void set_audio(const char* name, const Audio& a) const {
    if (a.samples.size() != static_cast<size_t>(a.count) * a.frames * a.channels)
      throw std::runtime_error(std::string("output '") + name + "': samples must hold count x frames x channels values");
    tessera_value_t v = blank(TESSERA_PORT_AUDIO, a.count);
    v.samples = a.samples.data();
    v.frames = a.frames;
    v.channels = a.channels;
    v.sample_rate = a.sample_rate;
    publish(name, v);
  }
  void set_texts(const char* name, const std::vector<std::string>& texts) const {
    std::vector<const char*> ptrs;
    for (const auto& t : texts) ptrs.push_back(t.c_str());
    tessera_value_t v = blank(TESSERA_PORT_TEXT, static_cast<uint32_t>(texts.size()));
    v.text = ptrs.data();
    publish(name, v);
  }

 private:
  static tessera_value_t blank(tessera_port_type_t type, uint32_t count) {
    tessera_value_t v;
    std::memset(&v, 0, sizeof v);
    v.struct_size = sizeof v;
    v.type = type;
    v.count = count;
    return v;
  }
  const tessera_value_t* require(const char* name, tessera_port_type_t type) const {
    const tessera_value_t* v = run_->input(run_, name);
    if (!v) throw std::runtime_error(std::string("input '") + name + "' is not connected");
    if (v->type != type) throw std::runtime_error(std::string("input '") + name + "' has another type");
    return v;
  }
  void publish(const char* name, const tessera_value_t& v) const {
    if (run_->set_output(run_, name, &v) != TESSERA_OK)
      throw std::runtime_error(std::string("the host refused output '") + name + "'");
  }
  const tessera_run_t* run_;
};

// Base of every stage: made by create(), run by run(), destroyed by destroy().
class Stage {
 public:
  virtual ~Stage() = default;
  virtual void run(Run& r) = 0;
};

inline tessera_port_t input(const char* name, tessera_port_type_t type, const char* doc = "", bool optional = false) {
  return {sizeof(tessera_port_t), name, type, optional ? TESSERA_PORT_OPTIONAL : 0u, doc};
}
inline tessera_port_t output(const char* name, tessera_port_type_t type, const char* doc = "") {
  return {sizeof(tessera_port_t), name, type, 0u, doc};
}

namespace detail {
// Strings and arrays the descriptors point at: they live as long as the plugin is loaded.
inline std::deque<std::string>& strings() {
  static std::deque<std::string> s;
  return s;
}
inline const char* keep(std::string s) { return strings().emplace_back(std::move(s)).c_str(); }
template <class T>
const T* keep_array(std::vector<T> v) {
  static std::deque<std::vector<T>> arrays;
  return v.empty() ? nullptr : arrays.emplace_back(std::move(v)).data();
}
inline void write_message(tessera_message_t* m, const char* text) {
  if (m && m->text && m->capacity) std::snprintf(m->text, m->capacity, "%s", text);
}
}  // namespace detail

inline tessera_param_t int_param(const char* name, int64_t def, double min, double max, const char* doc = "") {
  return {sizeof(tessera_param_t), name, TESSERA_PARAM_INT, detail::keep(std::to_string(def)),
          TESSERA_PARAM_HAS_MIN | TESSERA_PARAM_HAS_MAX, min, max, doc};
}
inline tessera_param_t float_param(const char* name, double def, double min, double max, const char* doc = "") {
  return {sizeof(tessera_param_t), name, TESSERA_PARAM_FLOAT, detail::keep(std::to_string(def)),
          TESSERA_PARAM_HAS_MIN | TESSERA_PARAM_HAS_MAX, min, max, doc};
}
inline tessera_param_t bool_param(const char* name, bool def, const char* doc = "") {
  return {sizeof(tessera_param_t), name, TESSERA_PARAM_BOOL, def ? "true" : "false", 0u, 0, 0, doc};
}
// A string or path parameter; a null default makes it required.
inline tessera_param_t text_param(const char* name, const char* def, bool path = false, const char* doc = "") {
  return {sizeof(tessera_param_t), name, path ? TESSERA_PARAM_PATH : TESSERA_PARAM_STRING, def, 0u, 0, 0, doc};
}

// The descriptor of stage class T (constructible from Params).
template <class T>
tessera_stage_t stage(const char* id, const char* description, std::vector<tessera_port_t> inputs,
                      std::vector<tessera_port_t> outputs, std::vector<tessera_param_t> params = {}) {
  tessera_stage_t s;
  std::memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  s.id = id;
  s.description = description;
  s.input_count = static_cast<uint32_t>(inputs.size());
  s.output_count = static_cast<uint32_t>(outputs.size());
  s.param_count = static_cast<uint32_t>(params.size());
  s.inputs = detail::keep_array(std::move(inputs));
  s.outputs = detail::keep_array(std::move(outputs));
  s.params = detail::keep_array(std::move(params));
  s.create = [](const tessera_host_t* host, const tessera_param_value_t* values, uint32_t count, void** instance,
                tessera_message_t* error) -> tessera_status_t {
    try {
      if constexpr (std::is_constructible_v<T, const Params&, const Host&>)
        *instance = new T(Params(values, count), Host(host));
      else
        *instance = new T(Params(values, count));
      return TESSERA_OK;
    } catch (const std::exception& e) {
      detail::write_message(error, e.what());
      return TESSERA_ERROR;
    }
  };
  s.run = [](void* instance, const tessera_run_t* r, tessera_message_t* error) -> tessera_status_t {
    try {
      Run run(r);
      static_cast<T*>(instance)->run(run);
      return r->cancelled(r) ? TESSERA_CANCELLED : TESSERA_OK;
    } catch (const std::exception& e) {
      detail::write_message(error, e.what());
      return TESSERA_ERROR;
    }
  };
  s.destroy = [](void* instance) { delete static_cast<T*>(instance); };
  return s;
}

inline tessera_plugin_entry_t make_entry(const char* id, const char* version, const char* vendor,
                                         const char* description, std::vector<tessera_stage_t> stages) {
  tessera_plugin_entry_t e;
  std::memset(&e, 0, sizeof e);
  e.abi = TESSERA_ABI_VERSION;
  e.struct_size = sizeof e;
  e.id = id;
  e.version = version;
  e.vendor = vendor;
  e.description = description;
  e.stage_count = static_cast<uint32_t>(stages.size());
  e.stages = detail::keep_array(std::move(stages));
  return e;
}

}  // namespace tessera::sdk

// Defines the exported entry of a plugin whose stages are the trailing arguments.
#define TESSERA_PLUGIN(id, version, vendor, description, ...)                                     \
  extern "C" TESSERA_EXPORT const tessera_plugin_entry_t tessera_plugin_entry =                  \
      ::tessera::sdk::make_entry(id, version, vendor, description, {__VA_ARGS__});
