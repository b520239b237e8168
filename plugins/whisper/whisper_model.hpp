// The Whisper architecture as OpenAI publishes it (../shared/specs/whisper.md), on the GPU through the host's
// ops: conv stem and pre-LN encoder over a 30 s log-mel window, then a pre-LN decoder with causal
// self-attention over a KV cache and cross-attention to the audio features. A model directory holds
// config.json (OpenAI's dims names), model.safetensors (OpenAI's tensor names) and vocab.tiktoken, as
// tools/whisper/convert.py writes it from a published checkpoint.
#pragma once

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tessera/json.hpp"
#include "tessera/plugin.hpp"

namespace tessera_plugins::whisper {

namespace sdk = tessera::sdk;

inline constexpr int64_t kSampleRate = 16000, kHop = 160, kFft = 400;

struct WhisperConfig {
  std::string dir;
  int64_t n_mels = 0, n_vocab = 0, n_audio_ctx = 0, n_audio_state = 0, n_audio_head = 0, n_audio_layer = 0;
  int64_t n_text_ctx = 0, n_text_state = 0, n_text_head = 0, n_text_layer = 0;

  // Mel frames per window: the stride-2 conv stem halves them into n_audio_ctx positions (OpenAI's models:
  // 1500 positions, 3000 frames, 30 s; a model trained for short prompts may use shorter windows).
  int64_t window_frames() const { return 2 * n_audio_ctx; }

  static WhisperConfig load(const std::string& path) {
    namespace fs = std::filesystem;
    fs::path dir = path, file = path;
    if (fs::is_directory(dir)) file = dir / "config.json";
    else dir = fs::path(path).parent_path();
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file.string() + ": cannot read the model config (is '" + path + "' a Whisper model directory?)");
    std::stringstream text;
    text << in.rdbuf();
    try {
      const tessera::json::Value c = tessera::json::parse(text.str());
      if (!c.has("model_type") || c.at("model_type").string() != "whisper")
        throw std::runtime_error("model_type must be \"whisper\" (convert OpenAI checkpoints with tools/whisper/convert.py)");
      WhisperConfig w;
      w.dir = dir.string();
      w.n_mels = c.at("n_mels").integer();
      w.n_vocab = c.at("n_vocab").integer();
      w.n_audio_ctx = c.at("n_audio_ctx").integer();
      w.n_audio_state = c.at("n_audio_state").integer();
      w.n_audio_head = c.at("n_audio_head").integer();
      w.n_audio_layer = c.at("n_audio_layer").integer();
      w.n_text_ctx = c.at("n_text_ctx").integer();
      w.n_text_state = c.at("n_text_state").integer();
      w.n_text_head = c.at("n_text_head").integer();
      w.n_text_layer = c.at("n_text_layer").integer();
      for (auto [name, v] : {std::pair{"n_mels", w.n_mels}, {"n_vocab", w.n_vocab}, {"n_audio_ctx", w.n_audio_ctx},
                             {"n_audio_layer", w.n_audio_layer}, {"n_text_ctx", w.n_text_ctx}, {"n_text_layer", w.n_text_layer}})
        if (v <= 0) throw std::runtime_error(std::string(name) + " must be positive");
      if (w.n_audio_state != w.n_text_state)
        throw std::runtime_error("n_audio_state " + std::to_string(w.n_audio_state) + " and n_text_state " +
                                 std::to_string(w.n_text_state) + " differ (cross-attention needs one width)");
      for (auto [state, heads, what] : {std::tuple{w.n_audio_state, w.n_audio_head, "audio"},
                                        std::tuple{w.n_text_state, w.n_text_head, "text"}}) {
        if (heads <= 0 || state % heads || (state / heads) % 4 || state / heads > 256)
          throw std::runtime_error(std::string("n_") + what + "_state " + std::to_string(state) + " / n_" + what + "_head " +
                                   std::to_string(heads) + " must give a head size that is a multiple of 4, at most 256");
      }
      return w;
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ": " + e.what());
    }
  }
};

// What an encoder and a decoder block share: pre-LN self-attention (q/k/v fused) and the MLP.
struct Block {
  sdk::Tensor ln1_w, ln1_b, qkv_w, qkv_b, out_w, out_b;  // self-attention
  sdk::Tensor ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;  // MLP
};
struct DecoderLayer {
  Block block;
  sdk::Tensor lnx_w, lnx_b, xq_w, xq_b, xout_w, xout_b;  // cross-attention (its keys and values: cross_kv)
};

// The activations of one encoder window.
struct EncoderScratch {
  sdk::Tensor conv1, conv2, x, h, qkv, a, fc, features;
};

// Self-attention keys and values of R hypotheses: one tensor [2 * layers, R, positions, C] (keys of layer l
// at 2l, values at 2l + 1), so that beam search reorders every cache in one dispatch.
struct DecoderCache {
  int64_t rows = 0, positions = 0;
  sdk::Tensor kv;
};

struct DecoderScratch {
  int64_t rows = 0, length = 0;
  sdk::Tensor x, h, qkv, q, a, fc;
};

class WhisperModel {
 public:
  WhisperModel(const sdk::Host& host, const std::string& dir, bool f16) : host_(host), c_(WhisperConfig::load(dir)) {
    sdk::Weights file(host, (std::filesystem::path(c_.dir) / "model.safetensors").string());
    const int64_t C = c_.n_audio_state, M = c_.n_mels;
    auto dtype = [&](const std::string& name) {
      return f16 || std::string(file.stored(name.c_str()).dtype) == "F16" ? TESSERA_DTYPE_F16 : TESSERA_DTYPE_F32;
    };
    auto plain = [&](const std::string& name, std::vector<int64_t> shape) { return file.load(name, dtype(name), std::move(shape)); };
    conv1_w_ = plain("encoder.conv1.weight", {C, M, 3});
    conv1_b_ = plain("encoder.conv1.bias", {C});
    conv2_w_ = plain("encoder.conv2.weight", {C, C, 3});
    conv2_b_ = plain("encoder.conv2.bias", {C});
    enc_pos_ = plain("encoder.positional_embedding", {c_.n_audio_ctx, C});
    ln_post_w_ = plain("encoder.ln_post.weight", {C});
    ln_post_b_ = plain("encoder.ln_post.bias", {C});
    // Block N of the encoder or decoder: the key has no bias (zeros in the fused one).
    auto block = [&](const std::string& n) {
      Block b;
      b.ln1_w = plain(n + "attn_ln.weight", {C});
      b.ln1_b = plain(n + "attn_ln.bias", {C});
      b.qkv_w = stacked(file, {n + "attn.query.weight", n + "attn.key.weight", n + "attn.value.weight"}, C, C, dtype);
      b.qkv_b = stacked(file, {n + "attn.query.bias", "", n + "attn.value.bias"}, C, 1, dtype);
      b.out_w = plain(n + "attn.out.weight", {C, C});
      b.out_b = plain(n + "attn.out.bias", {C});
      b.ln2_w = plain(n + "mlp_ln.weight", {C});
      b.ln2_b = plain(n + "mlp_ln.bias", {C});
      b.fc1_w = plain(n + "mlp.0.weight", {4 * C, C});
      b.fc1_b = plain(n + "mlp.0.bias", {4 * C});
      b.fc2_w = plain(n + "mlp.2.weight", {C, 4 * C});
      b.fc2_b = plain(n + "mlp.2.bias", {C});
      return b;
    };
    for (int64_t l = 0; l < c_.n_audio_layer; ++l) encoder_.push_back(block("encoder.blocks." + std::to_string(l) + "."));
    tok_emb_ = plain("decoder.token_embedding.weight", {c_.n_vocab, C});
    dec_pos_ = plain("decoder.positional_embedding", {c_.n_text_ctx, C});
    ln_w_ = plain("decoder.ln.weight", {C});
    ln_b_ = plain("decoder.ln.bias", {C});
    std::vector<std::string> cross_w, cross_b;
    for (int64_t l = 0; l < c_.n_text_layer; ++l) {
      const std::string n = "decoder.blocks." + std::to_string(l) + ".";
      DecoderLayer L;
      L.block = block(n);
      L.lnx_w = plain(n + "cross_attn_ln.weight", {C});
      L.lnx_b = plain(n + "cross_attn_ln.bias", {C});
      L.xq_w = plain(n + "cross_attn.query.weight", {C, C});
      L.xq_b = plain(n + "cross_attn.query.bias", {C});
      L.xout_w = plain(n + "cross_attn.out.weight", {C, C});
      L.xout_b = plain(n + "cross_attn.out.bias", {C});
      decoder_.push_back(std::move(L));
      cross_w.insert(cross_w.end(), {n + "cross_attn.key.weight", n + "cross_attn.value.weight"});
      cross_b.insert(cross_b.end(), {"", n + "cross_attn.value.bias"});
    }
    // Every layer's cross keys and values come from the same audio features: one matmul makes them all.
    cross_w_ = stacked(file, cross_w, C, C, dtype);
    cross_b_ = stacked(file, cross_b, C, 1, dtype);
  }

  const WhisperConfig& config() const { return c_; }
  int64_t width() const { return c_.n_audio_state; }

  EncoderScratch new_encoder_scratch() const {
    const int64_t C = width(), T = c_.n_audio_ctx;
    EncoderScratch e;
    e.conv1 = sdk::Tensor(host_, TESSERA_DTYPE_F32, {1, C, c_.window_frames()}, "whisper.conv1");
    e.conv2 = sdk::Tensor(host_, TESSERA_DTYPE_F32, {1, C, T}, "whisper.conv2");
    e.x = sdk::Tensor(host_, TESSERA_DTYPE_F32, {T, C}, "whisper.enc_x");
    e.h = sdk::Tensor(host_, TESSERA_DTYPE_F32, {T, C}, "whisper.enc_h");
    e.qkv = sdk::Tensor(host_, TESSERA_DTYPE_F32, {T, 3 * C}, "whisper.enc_qkv");
    e.a = sdk::Tensor(host_, TESSERA_DTYPE_F32, {T, C}, "whisper.enc_attention");
    e.fc = sdk::Tensor(host_, TESSERA_DTYPE_F32, {T, 4 * C}, "whisper.enc_fc");
    e.features = sdk::Tensor(host_, TESSERA_DTYPE_F32, {T, C}, "whisper.audio_features");
    return e;
  }

  // The audio features [n_audio_ctx, C] of one window, left in st.features. `mel`: [1, n_mels, window] f32,
  // frames contiguous (any channel pitch: a window of a longer log-mel).
  void encode(sdk::Stream& s, const sdk::Tensor& mel, EncoderScratch& st) const {
    const int64_t C = width();
    s.op("conv1d", {{"x", mel}, {"w", conv1_w_}, {"bias", conv1_b_}, {"padding", 1}, {"out", st.conv1}});
    s.op("gelu_erf", {{"x", st.conv1}, {"out", st.conv1}});
    s.op("conv1d", {{"x", st.conv1}, {"w", conv2_w_}, {"bias", conv2_b_}, {"stride", 2}, {"padding", 1}, {"out", st.conv2}});
    // GELU on the way to [T, C]: the transpose is a strided read, so the activation rides along for free.
    s.op("gelu_erf", {{"x", st.conv2.select(0, 0).transpose(0, 1)}, {"out", st.x}});
    s.op("add", {{"a", st.x}, {"b", enc_pos_}, {"out", st.x}});
    for (const Block& B : encoder_) {
      s.op("layer_norm", {{"x", st.x}, {"out", st.h}, {"weight", B.ln1_w}, {"bias", B.ln1_b}});
      s.op("matmul", {{"a", st.h}, {"w", B.qkv_w}, {"bias", B.qkv_b}, {"out", st.qkv}});
      s.op("attention", {{"q", st.qkv.slice(-1, 0, C)}, {"k", st.qkv.slice(-1, C, C)}, {"v", st.qkv.slice(-1, 2 * C, C)},
                         {"out", st.a}, {"heads", c_.n_audio_head}});
      s.op("matmul", {{"a", st.a}, {"w", B.out_w}, {"bias", B.out_b}, {"out", st.x}, {"accumulate", true}});
      mlp(s, B, st.x, st.h, st.fc);
    }
    s.op("layer_norm", {{"x", st.x}, {"out", st.features}, {"weight", ln_post_w_}, {"bias", ln_post_b_}});
  }

  // Every decoder layer's cross-attention keys and values of one window: [n_audio_ctx, layers * 2C].
  sdk::Tensor new_cross() const {
    return sdk::Tensor(host_, TESSERA_DTYPE_F32, {c_.n_audio_ctx, c_.n_text_layer * 2 * width()}, "whisper.cross_kv");
  }
  void cross_kv(sdk::Stream& s, const sdk::Tensor& features, const sdk::Tensor& cross) const {
    s.op("matmul", {{"a", features}, {"w", cross_w_}, {"bias", cross_b_}, {"out", cross}});
  }

  DecoderCache new_cache(int64_t rows, int64_t positions) const {
    DecoderCache c;
    c.rows = rows;
    c.positions = std::min(positions, c_.n_text_ctx);
    c.kv = sdk::Tensor(host_, TESSERA_DTYPE_F32, {2 * c_.n_text_layer, rows, c.positions, width()}, "whisper.kv_cache");
    return c;
  }
  DecoderScratch new_scratch(int64_t rows, int64_t length) const {
    const int64_t C = width();
    DecoderScratch d;
    d.rows = rows;
    d.length = length;
    d.x = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, C}, "whisper.dec_x");
    d.h = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, C}, "whisper.dec_h");
    d.qkv = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, 3 * C}, "whisper.dec_qkv");
    d.q = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, C}, "whisper.dec_q");
    d.a = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, C}, "whisper.dec_attention");
    d.fc = sdk::Tensor(host_, TESSERA_DTYPE_F32, {rows, length, 4 * C}, "whisper.dec_fc");
    return d;
  }

  // Positions [pos, pos + T) of every row: `ids` [R, T] go in, their keys and values go to the cache, and the
  // final hidden states (after decoder.ln) are left in st.h [R, T, C]. Every row attends to the same audio
  // (`cross` from cross_kv()).
  void decode(sdk::Stream& s, DecoderCache& cache, DecoderScratch& st, const sdk::Tensor& cross, const sdk::Tensor& ids,
              int64_t pos) const {
    const int64_t C = width(), T = st.length, R = st.rows;
    if (pos + T > cache.positions)
      throw std::runtime_error("position " + std::to_string(pos + T) + " exceeds the decoder's context of " +
                               std::to_string(cache.positions) + " tokens");
    s.op("embedding", {{"table", tok_emb_}, {"ids", ids}, {"out", st.x}, {"positions", dec_pos_}, {"position_offset", pos}});
    for (size_t l = 0; l < decoder_.size(); ++l) {
      const DecoderLayer& L = decoder_[l];
      const Block& B = L.block;
      const sdk::Tensor k_cache = cache.kv.select(0, 2 * static_cast<int64_t>(l)),
                        v_cache = cache.kv.select(0, 2 * static_cast<int64_t>(l) + 1);
      s.op("layer_norm", {{"x", st.x}, {"out", st.h}, {"weight", B.ln1_w}, {"bias", B.ln1_b}});
      s.op("matmul", {{"a", st.h}, {"w", B.qkv_w}, {"bias", B.qkv_b}, {"out", st.qkv}});
      s.op("kv_cache_append", {{"k", st.qkv.slice(-1, C, C)}, {"v", st.qkv.slice(-1, 2 * C, C)}, {"k_cache", k_cache},
                               {"v_cache", v_cache}, {"pos", pos}});
      s.op("attention", {{"q", st.qkv.slice(-1, 0, C)}, {"k", k_cache.slice(1, 0, pos + T)}, {"v", v_cache.slice(1, 0, pos + T)},
                         {"out", st.a}, {"heads", c_.n_text_head}, {"causal", true}});
      s.op("matmul", {{"a", st.a}, {"w", B.out_w}, {"bias", B.out_b}, {"out", st.x}, {"accumulate", true}});
      s.op("layer_norm", {{"x", st.x}, {"out", st.h}, {"weight", L.lnx_w}, {"bias", L.lnx_b}});
      s.op("matmul", {{"a", st.h}, {"w", L.xq_w}, {"bias", L.xq_b}, {"out", st.q}});
      const int64_t at = static_cast<int64_t>(l) * 2 * C;
      s.op("attention", {{"q", st.q}, {"k", cross.slice(-1, at, C).repeated(0, R)}, {"v", cross.slice(-1, at + C, C).repeated(0, R)},
                         {"out", st.a}, {"heads", c_.n_text_head}});
      s.op("matmul", {{"a", st.a}, {"w", L.xout_w}, {"bias", L.xout_b}, {"out", st.x}, {"accumulate", true}});
      mlp(s, B, st.x, st.h, st.fc);
    }
    s.op("layer_norm", {{"x", st.x}, {"out", st.h}, {"weight", ln_w_}, {"bias", ln_b_}});
  }

  // logits [M, V] = hidden [M, C] · token_embeddingᵀ (the tied head).
  void head(sdk::Stream& s, const sdk::Tensor& hidden, const sdk::Tensor& logits) const {
    s.op("matmul", {{"a", hidden}, {"w", tok_emb_}, {"out", logits}});
  }

 private:
  // x += fc2(gelu(fc1(mlp_ln(x)))); the GELU and the residual add ride in the matmuls' epilogues.
  static void mlp(sdk::Stream& s, const Block& B, const sdk::Tensor& x, const sdk::Tensor& h, const sdk::Tensor& fc) {
    s.op("layer_norm", {{"x", x}, {"out", h}, {"weight", B.ln2_w}, {"bias", B.ln2_b}});
    s.op("matmul", {{"a", h}, {"w", B.fc1_w}, {"bias", B.fc1_b}, {"out", fc}, {"activation", "gelu_erf"}});
    s.op("matmul", {{"a", fc}, {"w", B.fc2_w}, {"bias", B.fc2_b}, {"out", x}, {"accumulate", true}});
  }

  // Tensors of `rows` x `cols` each, stacked along the first dimension into one tensor; an empty name stands
  // for zeros (Whisper's keys have no bias).
  template <class DtypeOf>
  sdk::Tensor stacked(const sdk::Weights& file, const std::vector<std::string>& names, int64_t rows, int64_t cols,
                      DtypeOf&& dtype_of) const {
    tessera_dtype_t dtype = TESSERA_DTYPE_F32;
    for (const std::string& n : names)
      if (!n.empty()) dtype = dtype_of(n);
    const size_t piece = static_cast<size_t>(rows * cols);
    const std::vector<int64_t> shape = cols == 1 ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, cols};
    const int64_t total_rows = rows * static_cast<int64_t>(names.size());
    sdk::Tensor out(host_, dtype,
                    cols == 1 ? std::vector<int64_t>{total_rows} : std::vector<int64_t>{total_rows, cols},
                    names.front().empty() ? "whisper.stacked" : names.front().c_str());
    const size_t elem = dtype == TESSERA_DTYPE_F16 ? 2 : 4;
    std::vector<uint8_t> all(piece * names.size() * elem, 0);  // zero bits are 0.0 in f16 and f32
    for (size_t k = 0; k < names.size(); ++k) {
      if (names[k].empty()) continue;
      const sdk::Tensor t = file.load(names[k], dtype, shape);
      t.download(dtype, all.data() + k * piece * elem, piece);
    }
    out.upload(dtype, all.data(), piece * names.size());
    return out;
  }

  sdk::Host host_;
  WhisperConfig c_;
  sdk::Tensor conv1_w_, conv1_b_, conv2_w_, conv2_b_, enc_pos_, ln_post_w_, ln_post_b_;
  std::vector<Block> encoder_;
  sdk::Tensor tok_emb_, dec_pos_, ln_w_, ln_b_, cross_w_, cross_b_;
  std::vector<DecoderLayer> decoder_;
};

}  // namespace tessera_plugins::whisper
