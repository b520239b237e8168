// The ops service's table: each core op by name, its arguments read by name and checked, then handed to
// the op's own dispatcher (which checks shapes and dtypes). docs/plugins.md lists the same table.
#include <cmath>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <string_view>

#include "ops/attention.hpp"
#include "ops/conv.hpp"
#include "ops/copy.hpp"
#include "ops/elementwise.hpp"
#include "ops/embedding.hpp"
#include "ops/kv_cache.hpp"
#include "ops/matmul.hpp"
#include "ops/norm.hpp"
#include "ops/sampling.hpp"
#include "ops/softmax.hpp"
#include "ops/upsample.hpp"
#include "plugin/services_internal.hpp"

namespace tessera::plugin {
namespace {

using gpu::TensorView;

// The arguments of one record() call. Every read marks its argument used; finish() refuses the rest.
class Args {
 public:
  Args(std::string op, std::span<const tessera_op_arg_t> args, Services& services, Services::StreamEntry& stream)
      : op_(std::move(op)), args_(args), used_(args.size(), false), services_(services), stream_(stream) {
    for (const auto& a : args)
      if (!a.name) fail("an argument has no name");
  }

  [[noreturn]] void fail(const std::string& why) const { throw Error(op_ + ": " + why); }

  TensorView tensor(const char* name) {
    if (auto t = optional_tensor(name)) return *t;
    fail(std::string("missing tensor argument '") + name + "'");
  }
  std::optional<TensorView> optional_tensor(const char* name) {
    const tessera_op_arg_t* a = take(name);
    if (!a) return std::nullopt;
    return resolve(*a);
  }
  std::vector<TensorView> tensors(const char* name) {
    std::vector<TensorView> out;
    while (const tessera_op_arg_t* a = take(name)) out.push_back(resolve(*a));
    if (out.empty()) fail(std::string("missing tensor argument '") + name + "'");
    return out;
  }
  double number(const char* name, std::optional<double> fallback = std::nullopt) {
    const tessera_op_arg_t* a = take(name);
    if (!a) {
      if (!fallback) fail(std::string("missing number argument '") + name + "'");
      return *fallback;
    }
    if (a->tensor || a->text) fail(std::string("argument '") + name + "' must be a number");
    if (!std::isfinite(a->number)) fail(std::string("argument '") + name + "' must be finite");
    return a->number;
  }
  int64_t integer(const char* name, std::optional<int64_t> fallback = std::nullopt) {
    const double v = number(name, fallback ? std::optional<double>(static_cast<double>(*fallback)) : std::nullopt);
    if (v != std::floor(v) || std::fabs(v) > 9.0e15) fail(std::string("argument '") + name + "' must be an integer");
    return static_cast<int64_t>(v);
  }
  bool boolean(const char* name, bool fallback) {
    const int64_t v = integer(name, fallback ? 1 : 0);
    if (v != 0 && v != 1) fail(std::string("argument '") + name + "' must be 0 or 1");
    return v == 1;
  }
  std::string choice(const char* name, std::initializer_list<const char*> options, const char* fallback) {
    const tessera_op_arg_t* a = take(name);
    if (!a) return fallback;
    const std::string v = a->text ? a->text : "";
    std::string list;
    for (const char* o : options) {
      if (v == o) return v;
      list += (list.empty() ? "" : ", ") + std::string(o);
    }
    fail(std::string("argument '") + name + "' is \"" + v + "\", expected one of " + list);
  }
  // Refuses arguments no read asked for: a misspelt name must not be silently ignored.
  void finish() const {
    for (size_t i = 0; i < args_.size(); ++i)
      if (!used_[i]) fail(std::string("unknown argument '") + args_[i].name + "'");
  }
  Services::StreamEntry& stream() { return stream_; }

 private:
  const tessera_op_arg_t* take(const char* name) {
    for (size_t i = 0; i < args_.size(); ++i)
      if (!used_[i] && !std::strcmp(args_[i].name, name)) {
        used_[i] = true;
        return &args_[i];
      }
    return nullptr;
  }
  TensorView resolve(const tessera_op_arg_t& a) {
    if (!a.tensor) fail(std::string("argument '") + a.name + "' must be a tensor");
    Services::TensorEntry e;
    try {
      e = services_.tensor(a.tensor);
    } catch (const Error& err) {
      fail(std::string("argument '") + a.name + "': " + err.what());
    }
    if (e.device != stream_.device)
      fail(std::string("tensor '") + a.name + "' lives on another device than the stream");
    stream_.keep.push_back(e.storage);
    return e.view;
  }

  std::string op_;
  std::span<const tessera_op_arg_t> args_;
  std::vector<bool> used_;
  Services& services_;
  Services::StreamEntry& stream_;
};

using OpFn = std::function<void(gpu::Stream&, Args&)>;

ops::Unary unary_of(std::string_view n) {
  if (n == "gelu_erf") return ops::Unary::gelu_erf;
  if (n == "gelu_tanh") return ops::Unary::gelu_tanh;
  if (n == "silu") return ops::Unary::silu;
  if (n == "relu") return ops::Unary::relu;
  return ops::Unary::identity;  // "scale"
}

ops::Binary binary_of(std::string_view n) {
  if (n == "add") return ops::Binary::add;
  if (n == "sub") return ops::Binary::sub;
  if (n == "mul") return ops::Binary::mul;
  if (n == "gelu_erf_mul") return ops::Binary::gelu_erf_mul;
  if (n == "gelu_tanh_mul") return ops::Binary::gelu_tanh_mul;
  return ops::Binary::silu_mul;
}

const std::map<std::string, OpFn, std::less<>>& table() {
  static const std::map<std::string, OpFn, std::less<>> ops = [] {
    std::map<std::string, OpFn, std::less<>> t;
    t["matmul"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("a"), w = a.tensor("w"), out = a.tensor("out");
      const auto bias = a.optional_tensor("bias");
      const std::string layout = a.choice("layout", {"out_in", "in_out", "packed"}, "out_in");
      const std::string act = a.choice("activation", {"none", "gelu_erf", "gelu_tanh", "silu", "relu"}, "none");
      ops::Epilogue e;
      e.activation = act == "gelu_erf"    ? ops::Unary::gelu_erf
                     : act == "gelu_tanh" ? ops::Unary::gelu_tanh
                     : act == "silu"      ? ops::Unary::silu
                     : act == "relu"      ? ops::Unary::relu
                                          : ops::Unary::identity;
      e.accumulate = a.boolean("accumulate", false);
      a.finish();
      ops::matmul(s, x, w, out,
                  layout == "in_out" ? ops::WeightLayout::in_out
                  : layout == "packed" ? ops::WeightLayout::packed
                                       : ops::WeightLayout::out_in,
                  bias, e);
    };
    t["attention"] = [](gpu::Stream& s, Args& a) {
      const TensorView q = a.tensor("q"), k = a.tensor("k"), v = a.tensor("v"), out = a.tensor("out");
      ops::AttentionOptions o;
      o.heads = static_cast<int>(a.integer("heads", 1));
      if (const double sc = a.number("scale", 0.0); sc != 0.0) o.scale = static_cast<float>(sc);
      o.causal = a.boolean("causal", false);
      o.key_mask = a.optional_tensor("key_mask");
      o.mask = a.optional_tensor("mask");
      a.finish();
      ops::attention(s, q, k, v, out, o, a.stream().attention.get());
    };
    t["kv_cache_append"] = [](gpu::Stream& s, Args& a) {
      const TensorView k = a.tensor("k"), v = a.tensor("v"), kc = a.tensor("k_cache"), vc = a.tensor("v_cache");
      const int64_t pos = a.integer("pos");
      a.finish();
      ops::kv_cache_append(s, k, v, kc, vc, pos);
    };
    t["layer_norm"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("x"), out = a.tensor("out");
      const auto w = a.optional_tensor("weight"), b = a.optional_tensor("bias");
      const float eps = static_cast<float>(a.number("eps", 1e-5));
      a.finish();
      ops::layer_norm(s, x, w, b, eps, out);
    };
    t["group_norm"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("x"), out = a.tensor("out");
      const int groups = static_cast<int>(a.integer("groups"));
      const auto w = a.optional_tensor("weight"), b = a.optional_tensor("bias");
      const float eps = static_cast<float>(a.number("eps", 1e-5));
      const bool silu = a.boolean("silu", false);
      a.finish();
      ops::group_norm(s, x, groups, w, b, eps, out, silu);
    };
    t["softmax"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("x"), out = a.tensor("out");
      const float scale = static_cast<float>(a.number("scale", 1.0));
      a.finish();
      ops::softmax(s, x, out, scale);
    };
    for (const char* name : {"scale", "gelu_erf", "gelu_tanh", "silu", "relu"}) {
      t[name] = [op = unary_of(name)](gpu::Stream& s, Args& a) {
        const TensorView x = a.tensor("x"), out = a.tensor("out");
        const float alpha = static_cast<float>(a.number("alpha", 1.0)), beta = static_cast<float>(a.number("beta", 0.0));
        a.finish();
        ops::unary(s, op, x, out, alpha, beta);
      };
    }
    for (const char* name : {"add", "sub", "mul", "gelu_erf_mul", "gelu_tanh_mul", "silu_mul"}) {
      t[name] = [op = binary_of(name)](gpu::Stream& s, Args& a) {
        const TensorView x = a.tensor("a"), y = a.tensor("b"), out = a.tensor("out");
        const float alpha = static_cast<float>(a.number("alpha", 1.0));
        a.finish();
        ops::binary(s, op, x, y, out, alpha);
      };
    }
    t["embedding"] = [](gpu::Stream& s, Args& a) {
      const TensorView table = a.tensor("table"), ids = a.tensor("ids"), out = a.tensor("out");
      const auto pos = a.optional_tensor("positions");
      const int64_t offset = a.integer("position_offset", 0);
      a.finish();
      ops::embedding(s, table, ids, out, pos, offset);
    };
    t["copy"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("x"), out = a.tensor("out");
      a.finish();
      ops::copy(s, x, out);
    };
    t["concat"] = [](gpu::Stream& s, Args& a) {
      const std::vector<TensorView> parts = a.tensors("x");
      const TensorView out = a.tensor("out");
      const int dim = static_cast<int>(a.integer("dim"));
      a.finish();
      ops::concat(s, parts, dim, out);
    };
    t["conv2d"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("x"), w = a.tensor("w"), out = a.tensor("out");
      const auto bias = a.optional_tensor("bias");
      const int stride = static_cast<int>(a.integer("stride", 1));
      const int pad = static_cast<int>(a.integer("padding", 0));
      ops::Padding2d p;
      p.top = static_cast<int>(a.integer("pad_top", pad));
      p.bottom = static_cast<int>(a.integer("pad_bottom", pad));
      p.left = static_cast<int>(a.integer("pad_left", pad));
      p.right = static_cast<int>(a.integer("pad_right", pad));
      a.finish();
      ops::conv2d(s, x, w, bias, stride, p, out);
    };
    t["conv1d"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("x"), w = a.tensor("w"), out = a.tensor("out");
      const auto bias = a.optional_tensor("bias");
      const int stride = static_cast<int>(a.integer("stride", 1));
      const int pad = static_cast<int>(a.integer("padding", 0));
      a.finish();
      ops::conv1d(s, x, w, bias, stride, pad, out);
    };
    t["upsample_nearest2x"] = [](gpu::Stream& s, Args& a) {
      const TensorView x = a.tensor("x"), out = a.tensor("out");
      a.finish();
      ops::upsample_nearest2x(s, x, out);
    };
    t["sample"] = [](gpu::Stream& s, Args& a) {
      const TensorView logits = a.tensor("logits"), out = a.tensor("out");
      ops::SampleParams p;
      p.uncond = a.optional_tensor("uncond");
      p.guidance = static_cast<float>(a.number("guidance", 1.0));
      p.temperature = static_cast<float>(a.number("temperature", 1.0));
      p.top_k = static_cast<int>(a.integer("top_k", 0));
      p.top_p = static_cast<float>(a.number("top_p", 1.0));
      const int64_t seed = a.integer("seed", 0), step = a.integer("step", 0);
      if (seed < 0 || seed > 0xFFFFFFFFll || step < 0 || step > 0xFFFFFFFFll)
        a.fail("seed and step must be in [0, 2^32)");
      p.seed = static_cast<uint32_t>(seed);
      p.step = static_cast<uint32_t>(step);
      p.seed_per_row = a.boolean("seed_per_row", false);
      a.finish();
      ops::sample(s, logits, p, out);
    };
    t["fill"] = [](gpu::Stream& s, Args& a) {
      const TensorView out = a.tensor("out");
      const double value = a.number("value", 0.0);
      a.finish();
      if (!out.contiguous()) a.fail("out " + out.str() + " must be contiguous");
      uint32_t bits = 0;
      if (out.dtype == gpu::DType::i32) {
        bits = static_cast<uint32_t>(static_cast<int32_t>(value));
      } else if (out.dtype == gpu::DType::f32) {
        const float f = static_cast<float>(value);
        std::memcpy(&bits, &f, 4);
      } else {
        const uint32_t h = gpu::float_to_half(static_cast<float>(value));
        bits = h | (h << 16);
      }
      const uint64_t es = gpu::dtype_size(out.dtype);
      const uint64_t begin = static_cast<uint64_t>(out.offset) * es, bytes = static_cast<uint64_t>(out.numel()) * es;
      if (begin % 4 || bytes % 4) a.fail("out " + out.str() + " must start and end on a 4-byte boundary");
      s.fill(*out.buffer, begin, bytes, bits);
    };
    return t;
  }();
  return ops;
}

}  // namespace

bool known_op(const char* op) { return table().count(std::string_view(op)) != 0; }

void record_op(Services& services, const tessera_host_t* host, tessera_stream_t stream, const char* op,
               const tessera_op_arg_t* args, uint32_t arg_count) {
  Services::StreamEntry& st = services.stream(stream);
  if (st.device != &Services::device_of(host)) throw Error("ops.record: the stream belongs to another device's host");
  if (!op) throw Error("ops.record: op is NULL");
  auto it = table().find(std::string_view(op));
  if (it == table().end()) throw Error(std::string("ops.record: unknown op '") + op + "'");
  if (arg_count && !args) throw Error(std::string(op) + ": args is NULL");
  Args a(op, std::span<const tessera_op_arg_t>(args, arg_count), services, st);
  it->second(*st.stream, a);
}

}  // namespace tessera::plugin
