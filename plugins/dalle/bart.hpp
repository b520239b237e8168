// The BART pieces DALL-E Mini/Mega's encoder and decoder share (§1.2 of the spec): layer norms whose scale
// may be missing, attention projections fused at load time, and the GLU feed-forward. Weights come from a
// safetensors file with min-dalle's names; every tensor is checked against the config's shape.
#pragma once

#include <string>
#include <vector>

#include "dalle/dalle_config.hpp"
#include "tessera/plugin.hpp"

namespace tessera_plugins::dalle {

namespace sdk = tessera::sdk;

// Weights kept in the dtype they are stored in (F16 stays F16 on the GPU, F32 and BF16 become F32), or
// all F16 when asked.
inline tessera_dtype_t weight_dtype(const sdk::Weights& file, const std::string& name, bool force_f16) {
  if (force_f16) return TESSERA_DTYPE_F16;
  return std::string(file.stored(name.c_str()).dtype) == "F16" ? TESSERA_DTYPE_F16 : TESSERA_DTYPE_F32;
}

inline sdk::Tensor load(const sdk::Weights& file, const std::string& name, std::vector<int64_t> shape, bool f16) {
  return file.load(name, weight_dtype(file, name, f16), std::move(shape));
}

// A LayerNorm; a missing weight acts as ones (min-dalle's files lack the scales that feed a dense layer),
// a missing bias as zeros.
struct Norm {
  sdk::Tensor weight, bias;

  Norm() = default;
  Norm(const sdk::Weights& file, const std::string& name, int64_t dim, bool f16) {
    if (file.has((name + ".weight").c_str())) weight = load(file, name + ".weight", {dim}, f16);
    if (file.has((name + ".bias").c_str())) bias = load(file, name + ".bias", {dim}, f16);
  }
  void apply(sdk::Stream& s, const sdk::Tensor& x, const sdk::Tensor& out, double eps) const {
    std::vector<sdk::Arg> args{{"x", x}, {"out", out}, {"eps", eps}};
    if (weight) args.emplace_back("weight", weight);
    if (bias) args.emplace_back("bias", bias);
    s.op("layer_norm", args);
  }
};

// Weights [rows, cols] stacked along rows into one tensor at load time, so one matmul does the work of
// several. Through host memory: it runs once, and keeps f16 weights f16.
inline sdk::Tensor stacked(const sdk::Host& host, const sdk::Weights& file, const std::vector<std::string>& names,
                           int64_t rows, int64_t cols, bool f16) {
  if (names.size() == 1) return load(file, names.front(), {rows, cols}, f16);
  const tessera_dtype_t dtype = weight_dtype(file, names.front(), f16);
  const size_t part = static_cast<size_t>(rows * cols);
  std::vector<uint16_t> halves;
  std::vector<float> floats;
  for (size_t i = 0; i < names.size(); ++i) {
    const sdk::Tensor t = file.load(names[i], dtype, {rows, cols});
    if (dtype == TESSERA_DTYPE_F16) {
      halves.resize(part * (i + 1));
      t.download(TESSERA_DTYPE_F16, halves.data() + part * i, part);
    } else {
      floats.resize(part * (i + 1));
      t.download(TESSERA_DTYPE_F32, floats.data() + part * i, part);
    }
  }
  sdk::Tensor out(host, dtype, {rows * static_cast<int64_t>(names.size()), cols}, names.front().c_str());
  if (dtype == TESSERA_DTYPE_F16)
    out.upload(TESSERA_DTYPE_F16, halves.data(), halves.size());
  else
    out.upload(floats);
  return out;
}

// GLU feed-forward: out = fc2 · LN1(gelu(fc0 · LN0(x)) * (fc1 · LN0(x))); fc0 and fc1 are one matmul.
struct Glu {
  Norm ln0, ln1;
  sdk::Tensor fc01, fc2;
  int64_t hidden = 0;

  Glu() = default;
  Glu(const sdk::Host& host, const sdk::Weights& file, const std::string& prefix, const DalleConfig& c, bool f16)
      : ln0(file, prefix + "ln0", c.embed_dim, f16),
        ln1(file, prefix + "ln1", c.glu_hidden, f16),
        fc01(stacked(host, file, {prefix + "fc0.weight", prefix + "fc1.weight"}, c.glu_hidden, c.embed_dim, f16)),
        fc2(load(file, prefix + "fc2.weight", {c.embed_dim, c.glu_hidden}, f16)),
        hidden(c.glu_hidden) {}
};

// Scratch of one forward pass over `rows` x `length` positions.
struct Scratch {
  sdk::Tensor x, h, a, qkv, g, gg;
  Scratch(const sdk::Host& host, int64_t rows, int64_t length, const DalleConfig& c)
      : x(host, TESSERA_DTYPE_F32, {rows, length, c.embed_dim}, "x"),
        h(host, TESSERA_DTYPE_F32, {rows, length, c.embed_dim}, "h"),
        a(host, TESSERA_DTYPE_F32, {rows, length, c.embed_dim}, "attention"),
        qkv(host, TESSERA_DTYPE_F32, {rows, length, 3 * c.embed_dim}, "qkv"),
        g(host, TESSERA_DTYPE_F32, {rows, length, 2 * c.glu_hidden}, "glu"),
        gg(host, TESSERA_DTYPE_F32, {rows, length, c.glu_hidden}, "glu.gated") {}
};

// x += GLU(x)
inline void glu_residual(sdk::Stream& s, const Glu& glu, Scratch& t, double eps) {
  glu.ln0.apply(s, t.x, t.h, eps);
  s.op("matmul", {{"a", t.h}, {"w", glu.fc01}, {"out", t.g}});
  s.op("gelu_erf_mul", {{"a", t.g.slice(-1, 0, glu.hidden)}, {"b", t.g.slice(-1, glu.hidden, glu.hidden)}, {"out", t.gg}});
  glu.ln1.apply(s, t.gg, t.gg, eps);
  s.op("matmul", {{"a", t.gg}, {"w", glu.fc2}, {"out", t.h}});
  s.op("add", {{"a", t.x}, {"b", t.h}, {"out", t.x}});
}

}  // namespace tessera_plugins::dalle
