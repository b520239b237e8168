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
// Exceptions thrown by a stage's constructor or run() become error messages for the host; nothing
// crosses the C boundary.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
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

// One run of a stage: typed access to its inputs and outputs.
class Run {
 public:
  explicit Run(const tessera_run_t* run) : run_(run) {}
  uint64_t seed() const { return run_->seed; }
  uint32_t index() const { return run_->index; }
  bool cancelled() const { return run_->cancelled(run_); }
  void progress(double fraction, const char* label = nullptr) const { run_->progress(run_, fraction, label); }
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
  std::vector<std::string> texts(const char* name) const {
    const tessera_value_t* v = require(name, TESSERA_PORT_TEXT);
    return std::vector<std::string>(v->text, v->text + v->count);
  }

  void set_image(const char* name, const Image& img) const {
    tessera_value_t v = blank(TESSERA_PORT_IMAGE, img.count);
    v.width = img.width;
    v.height = img.height;
    v.pixels = img.pixels.data();
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
  s.create = [](const tessera_host_t*, const tessera_param_value_t* values, uint32_t count, void** instance,
                tessera_message_t* error) -> tessera_status_t {
    try {
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
