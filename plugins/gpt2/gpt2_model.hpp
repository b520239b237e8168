// GPT-2 as Hugging Face publishes it (../shared/specs/gpt2.md): config.json and model.safetensors with HF's
// names (optionally under "transformer."), Conv1D weights [in, out], tied head, tanh GELU, pre-LN. Runs on
// the GPU through the host's ops, with a KV cache per layer for R sequences decoded together.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tessera/json.hpp"
#include "tessera/plugin.hpp"

namespace tessera_plugins::gpt2 {

namespace sdk = tessera::sdk;

struct Gpt2Config {
  std::string dir;
  int64_t vocab_size = 0, n_positions = 0, n_embd = 0, n_layer = 0, n_head = 0;
  int64_t eos_token_id = 50256;
  double eps = 1e-5;
  bool gelu_tanh = true;

  // `path`: the model directory (config.json, model.safetensors, tokenizer files) or its config.json.
  static Gpt2Config load(const std::string& path) {
    namespace fs = std::filesystem;
    fs::path dir = path, file = path;
    if (fs::is_directory(dir)) file = dir / "config.json";
    else dir = fs::path(path).parent_path();
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file.string() + ": cannot read the model config (is '" + path + "' a GPT-2 model directory?)");
    std::stringstream text;
    text << in.rdbuf();
    try {
      const tessera::json::Value c = tessera::json::parse(text.str());
      if (c.has("model_type") && c.at("model_type").string() != "gpt2")
        throw std::runtime_error("model_type is \"" + c.at("model_type").string() + "\", expected \"gpt2\"");
      Gpt2Config g;
      g.dir = dir.string();
      g.vocab_size = c.at("vocab_size").integer();
      g.n_positions = c.has("n_positions") ? c.at("n_positions").integer() : c.at("n_ctx").integer();
      g.n_embd = c.at("n_embd").integer();
      g.n_layer = c.at("n_layer").integer();
      g.n_head = c.at("n_head").integer();
      g.eps = c.get("layer_norm_epsilon", 1e-5);
      if (const auto* e = c.find("eos_token_id"); e && e->is(tessera::json::Kind::number)) g.eos_token_id = e->integer();
      const std::string act = c.get("activation_function", "gelu_new");
      if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu")
        throw std::runtime_error("activation_function \"" + act + "\" is not supported (gelu_new, gelu_pytorch_tanh, gelu)");
      g.gelu_tanh = act != "gelu";  // HF's gelu_new and real GPT-2 use the tanh form
      if (g.n_embd <= 0 || g.n_head <= 0 || g.n_embd % g.n_head || (g.n_embd / g.n_head) % 4 || g.n_embd / g.n_head > 256)
        throw std::runtime_error("n_embd " + std::to_string(g.n_embd) + " / n_head " + std::to_string(g.n_head) +
                                 " must give a head size that is a multiple of 4, at most 256");
      if (g.n_embd % 4) throw std::runtime_error("n_embd must be a multiple of 4");
      if (g.vocab_size <= 0 || g.n_positions <= 0 || g.n_layer <= 0)
        throw std::runtime_error("vocab_size, n_positions and n_layer must be positive");
      return g;
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ": " + e.what());
    }
  }
};

struct Gpt2Layer {
  sdk::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
  sdk::Tensor qkv_w, qkv_b, proj_w, proj_b, fc_w, fc_b, out_w, out_b;  // weights [out, in]
};

// R sequences' keys and values, [R, n_positions, C] per layer.
struct Gpt2Cache {
  int64_t rows = 0;
  std::vector<sdk::Tensor> k, v;
};

// The activations of a forward pass over rows x length positions; ln_f's output ends in h.
struct Gpt2Scratch {
  int64_t rows = 0, length = 0;
  sdk::Tensor x, h, qkv, a, fc;
};

class Gpt2Model {
 public:
  Gpt2Model(const sdk::Host& host, const std::string& dir, bool f16) : host_(host), c_(Gpt2Config::load(dir)) {
    const std::string path = (std::filesystem::path(c_.dir) / "model.safetensors").string();
    sdk::Weights file(host, path);
    prefix_ = file.has("transformer.wte.weight") ? "transformer." : "";
    const int64_t C = c_.n_embd, V = c_.vocab_size;
    auto dtype = [&](const std::string& name) {
      return f16 || std::string(file.stored((prefix_ + name).c_str()).dtype) == "F16" ? TESSERA_DTYPE_F16 : TESSERA_DTYPE_F32;
    };
    auto plain = [&](const std::string& name, std::vector<int64_t> shape) {
      return file.load(prefix_ + name, dtype(name), std::move(shape));
    };
    wte_ = plain("wte.weight", {V, C});
    wpe_ = plain("wpe.weight", {c_.n_positions, C});
    lnf_w_ = plain("ln_f.weight", {C});
    lnf_b_ = plain("ln_f.bias", {C});
    for (int64_t l = 0; l < c_.n_layer; ++l) {
      const std::string n = "h." + std::to_string(l) + ".";
      Gpt2Layer layer;
      layer.ln1_w = plain(n + "ln_1.weight", {C});
      layer.ln1_b = plain(n + "ln_1.bias", {C});
      layer.ln2_w = plain(n + "ln_2.weight", {C});
      layer.ln2_b = plain(n + "ln_2.bias", {C});
      layer.qkv_w = transposed(file, n + "attn.c_attn.weight", C, 3 * C, dtype(n + "attn.c_attn.weight"));
      layer.qkv_b = plain(n + "attn.c_attn.bias", {3 * C});
      layer.proj_w = transposed(file, n + "attn.c_proj.weight", C, C, dtype(n + "attn.c_proj.weight"));
      layer.proj_b = plain(n + "attn.c_proj.bias", {C});
      layer.fc_w = transposed(file, n + "mlp.c_fc.weight", C, 4 * C, dtype(n + "mlp.c_fc.weight"));
      layer.fc_b = plain(n + "mlp.c_fc.bias", {4 * C});
      layer.out_w = transposed(file, n + "mlp.c_proj.weight", 4 * C, C, dtype(n + "mlp.c_proj.weight"));
      layer.out_b = plain(n + "mlp.c_proj.bias", {C});
      layers_.push_back(std::move(layer));
    }
  }

  const Gpt2Config& config() const { return c_; }

  // Keys and values for `positions` positions of `rows` sequences: what the run will use, not the whole
  // context (GPT-2 small at batch 8 would otherwise hold 600 MB of cache for a short answer).
  Gpt2Cache new_cache(int64_t rows, int64_t positions) const {
    Gpt2Cache c;
    c.rows = rows;
    const int64_t n = std::min(positions, c_.n_positions);
    for (int64_t l = 0; l < c_.n_layer; ++l) {
      c.k.emplace_back(host_, TESSERA_DTYPE_F32, std::vector<int64_t>{rows, n, c_.n_embd}, "gpt2.k_cache");
      c.v.emplace_back(host_, TESSERA_DTYPE_F32, std::vector<int64_t>{rows, n, c_.n_embd}, "gpt2.v_cache");
    }
    return c;
  }

  Gpt2Scratch new_scratch(int64_t rows, int64_t length) const {
    const int64_t C = c_.n_embd;
    Gpt2Scratch s;
    s.rows = rows;
    s.length = length;
    s.x = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, C}, "gpt2.x");
    s.h = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, C}, "gpt2.h");
    s.a = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, C}, "gpt2.attention");
    s.qkv = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, 3 * C}, "gpt2.qkv");
    s.fc = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, 4 * C}, "gpt2.fc");
    return s;
  }

  // Records positions [pos, pos + T) of every row: `ids` [R, T] at those positions go in, their keys and
  // values go to the cache, and the final hidden states [R, T, C] are left in st.h (after ln_f). T is
  // st.length.
  void forward(sdk::Stream& s, Gpt2Cache& cache, Gpt2Scratch& st, const sdk::Tensor& ids, int64_t pos) const {
    const int64_t C = c_.n_embd, T = st.length;
    if (pos + T > c_.n_positions)
      throw std::runtime_error("position " + std::to_string(pos + T) + " exceeds the model's context of " +
                               std::to_string(c_.n_positions) + " tokens");
    const double eps = c_.eps;
    s.op("embedding", {{"table", wte_}, {"ids", ids}, {"out", st.x}, {"positions", wpe_}, {"position_offset", pos}});
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Gpt2Layer& L = layers_[l];
      s.op("layer_norm", {{"x", st.x}, {"out", st.h}, {"weight", L.ln1_w}, {"bias", L.ln1_b}, {"eps", eps}});
      s.op("matmul", {{"a", st.h}, {"w", L.qkv_w}, {"bias", L.qkv_b}, {"out", st.qkv}});
      s.op("kv_cache_append", {{"k", st.qkv.slice(-1, C, C)}, {"v", st.qkv.slice(-1, 2 * C, C)}, {"k_cache", cache.k[l]},
                               {"v_cache", cache.v[l]}, {"pos", pos}});
      // Queries at pos..pos+T-1 see keys 0..their own position (causal over the cache).
      s.op("attention", {{"q", st.qkv.slice(-1, 0, C)}, {"k", cache.k[l].slice(1, 0, pos + T)},
                         {"v", cache.v[l].slice(1, 0, pos + T)}, {"out", st.a}, {"heads", c_.n_head}, {"causal", true}});
      // The residual adds and the GELU ride in the matmuls' epilogues: decoding pays per dispatch.
      s.op("matmul", {{"a", st.a}, {"w", L.proj_w}, {"bias", L.proj_b}, {"out", st.x}, {"accumulate", true}});
      s.op("layer_norm", {{"x", st.x}, {"out", st.h}, {"weight", L.ln2_w}, {"bias", L.ln2_b}, {"eps", eps}});
      s.op("matmul", {{"a", st.h}, {"w", L.fc_w}, {"bias", L.fc_b}, {"out", st.fc},
                      {"activation", c_.gelu_tanh ? "gelu_tanh" : "gelu_erf"}});
      s.op("matmul", {{"a", st.fc}, {"w", L.out_w}, {"bias", L.out_b}, {"out", st.x}, {"accumulate", true}});
    }
    s.op("layer_norm", {{"x", st.x}, {"out", st.h}, {"weight", lnf_w_}, {"bias", lnf_b_}, {"eps", eps}});
  }

  // logits [M, V] = hidden [M, C] · wteᵀ (the tied head).
  void head(sdk::Stream& s, const sdk::Tensor& hidden, const sdk::Tensor& logits) const {
    s.op("matmul", {{"a", hidden}, {"w", wte_}, {"out", logits}});
  }

 private:
  // A Conv1D weight [in, out] stored transposed, [out, in]: decoding then streams each weight row once.
  sdk::Tensor transposed(const sdk::Weights& file, const std::string& name, int64_t in, int64_t out,
                         tessera_dtype_t dtype) const {
    const sdk::Tensor t = file.load(prefix_ + name, dtype, {in, out});
    const size_t n = static_cast<size_t>(in * out);
    sdk::Tensor result(host_, dtype, {out, in}, name.c_str());
    if (dtype == TESSERA_DTYPE_F16) {
      std::vector<uint16_t> src(n), dst(n);
      t.download(TESSERA_DTYPE_F16, src.data(), n);
      for (int64_t i = 0; i < in; ++i)
        for (int64_t o = 0; o < out; ++o) dst[static_cast<size_t>(o * in + i)] = src[static_cast<size_t>(i * out + o)];
      result.upload(TESSERA_DTYPE_F16, dst.data(), n);
    } else {
      const std::vector<float> src = t.download_f32();
      std::vector<float> dst(n);
      for (int64_t i = 0; i < in; ++i)
        for (int64_t o = 0; o < out; ++o) dst[static_cast<size_t>(o * in + i)] = src[static_cast<size_t>(i * out + o)];
      result.upload(dst);
    }
    return result;
  }

  sdk::Host host_;
  Gpt2Config c_;
  std::string prefix_;
  sdk::Tensor wte_, wpe_, lnf_w_, lnf_b_;
  std::vector<Gpt2Layer> layers_;
};

}  // namespace tessera_plugins::gpt2
