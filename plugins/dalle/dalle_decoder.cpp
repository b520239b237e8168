// Plugin tessera.dalle.decoder: DALL-E Mini/Mega's BART image decoder (§1.4-1.6 of the spec) on the GPU.
// Each step runs the whole network for the 2N rows (N unconditional, N conditional) over a GPU KV cache,
// mixes the two halves (super-conditioning), samples on the GPU and feeds the ids back without leaving
// the GPU; the host only submits every few steps to report progress and notice cancellation.
#include <algorithm>
#include <memory>

#include "dalle/bart.hpp"

namespace {

namespace sdk = tessera::sdk;
using namespace tessera_plugins::dalle;

struct DecoderLayer {
  Norm pre_self, self, pre_cross, cross;
  sdk::Tensor self_qkv, self_out, cross_q, cross_kv, cross_out;
  Glu glu;
};

// The decoder's weights, and the recording of one decoding step for 2N rows.
class DecoderModel {
 public:
  DecoderModel(const sdk::Params& p, const sdk::Host& host) : host_(host), c_(DalleConfig::load(p.text("model"))) {
    const bool f16 = p.boolean("f16_weights");
    sdk::Weights file(host, c_.decoder_file);
    const int64_t E = c_.embed_dim;
    embed_tokens_ = load(file, "embed_tokens.weight", {c_.decoder_vocab_rows, E}, f16);
    embed_positions_ = load(file, "embed_positions.weight", {c_.image_token_count, E}, f16);
    lm_head_ = load(file, "lm_head.weight", {c_.decoder_vocab_rows, E}, f16);
    embedding_norm_ = Norm(file, "layernorm_embedding", E, f16);
    final_norm_ = Norm(file, "final_ln", E, f16);
    for (int64_t l = 0; l < c_.decoder_layers; ++l) {
      const std::string n = "layers." + std::to_string(l) + ".";
      DecoderLayer layer;
      layer.pre_self = Norm(file, n + "pre_self_attn_layer_norm", E, f16);
      layer.self = Norm(file, n + "self_attn_layer_norm", E, f16);
      layer.pre_cross = Norm(file, n + "pre_encoder_attn_layer_norm", E, f16);
      layer.cross = Norm(file, n + "encoder_attn_layer_norm", E, f16);
      layer.self_qkv = stacked(host, file, {n + "self_attn.q_proj.weight", n + "self_attn.k_proj.weight", n + "self_attn.v_proj.weight"},
                               E, E, f16);
      layer.self_out = load(file, n + "self_attn.out_proj.weight", {E, E}, f16);
      layer.cross_q = load(file, n + "encoder_attn.q_proj.weight", {E, E}, f16);
      layer.cross_kv = stacked(host, file, {n + "encoder_attn.k_proj.weight", n + "encoder_attn.v_proj.weight"}, E, E, f16);
      layer.cross_out = load(file, n + "encoder_attn.out_proj.weight", {E, E}, f16);
      layer.glu = Glu(host, file, n + "glu.", c_, f16);
      layers_.push_back(std::move(layer));
    }
  }

  const DalleConfig& config() const { return c_; }

  // The state of one run over 2N rows, N = prompts x images: rows 0..N-1 see the empty prompt, rows N..2N-1
  // the prompts (image n draws prompt n / images).
  struct Pass {
    int64_t N = 0, R = 0;
    sdk::Tensor key_mask, ids, logits, q;
    std::unique_ptr<Scratch> t;
    std::vector<sdk::Tensor> cross_kv, k_cache, v_cache;
  };

  // Checks the inputs, allocates the pass and records the text's keys and values (computed once, where
  // min-dalle recomputes them every step). The tokenizer gives 2 rows per prompt (empty, prompt).
  Pass begin(sdk::Stream& s, sdk::Run& r, int64_t images) const {
    const sdk::Tokens text = r.tokens("tokens");
    sdk::Tensor state = r.tensor("state", host_);
    const int64_t T = c_.text_token_count, E = c_.embed_dim, L = c_.image_token_count;
    if (text.rows == 0 || text.rows % 2 || static_cast<int64_t>(text.length) != T)
      throw std::runtime_error("expected the tokenizer's 2 rows of " + std::to_string(T) + " ids per prompt, found " +
                               std::to_string(text.rows) + " of " + std::to_string(text.length));
    const int64_t prompts = text.rows / 2, N = prompts * images, R = 2 * N;
    if (state.shape() != std::vector<int64_t>{2 * prompts, T, E})
      throw std::runtime_error("the encoder state must be [" + std::to_string(2 * prompts) + ", " + std::to_string(T) +
                               ", " + std::to_string(E) + "]");
    Pass p;
    p.N = N;
    p.R = R;
    // The state row each decoder row attends to: 2 * prompt for the unconditional half, 2 * prompt + 1 else.
    auto state_row = [&](int64_t row) { return 2 * ((row % N) / images) + (row < N ? 0 : 1); };
    std::vector<int32_t> mask(static_cast<size_t>(R * T));
    for (int64_t row = 0; row < R; ++row)
      for (int64_t k = 0; k < T; ++k)
        mask[static_cast<size_t>(row * T + k)] = text.ids[static_cast<size_t>(state_row(row) * T + k)] != c_.pad_id ? 1 : 0;
    p.key_mask = sdk::Tensor(host_, TESSERA_DTYPE_I32, {R, T}, "decoder.key_mask");
    p.key_mask.upload(mask);
    p.ids = sdk::Tensor(host_, TESSERA_DTYPE_I32, {R}, "decoder.ids");
    p.ids.upload(std::vector<int32_t>(static_cast<size_t>(R), static_cast<int32_t>(c_.bos_id)));
    p.logits = sdk::Tensor(host_, TESSERA_DTYPE_F32, {R, c_.decoder_vocab_rows}, "decoder.logits");
    p.q = sdk::Tensor(host_, TESSERA_DTYPE_F32, {R, 1, E}, "decoder.cross_q");
    p.t = std::make_unique<Scratch>(host_, R, 1, c_);
    // The text's keys and values are computed once per distinct state row (2 per prompt), then copied to the
    // decoder rows that attend to them: images of one prompt share them.
    sdk::Tensor kv(host_, TESSERA_DTYPE_F32, {2 * prompts, T, 2 * E}, "decoder.text_kv");
    for (const DecoderLayer& layer : layers_) {
      p.cross_kv.emplace_back(host_, TESSERA_DTYPE_F32, std::vector<int64_t>{R, T, 2 * E}, "decoder.cross_kv");
      p.k_cache.emplace_back(host_, TESSERA_DTYPE_F32, std::vector<int64_t>{R, L, E}, "decoder.k_cache");
      p.v_cache.emplace_back(host_, TESSERA_DTYPE_F32, std::vector<int64_t>{R, L, E}, "decoder.v_cache");
      s.op("matmul", {{"a", state}, {"w", layer.cross_kv}, {"out", kv}});
      for (int64_t half = 0; half < 2; ++half) {  // unconditional rows, then conditional ones
        // kv row 2 * prompt + half, repeated `images` times (a stride-0 dimension): [prompts, images, T, 2E]
        const sdk::Tensor from = kv.reshape({prompts, 2, T, 2 * E}).select(1, half).repeated(1, images);
        s.op("copy", {{"x", from},
                      {"out", p.cross_kv.back().slice(0, half * N, N).reshape({prompts, images, T, 2 * E})}});
      }
    }
    return p;
  }

  // Step i: the tokens in p.ids at position i through the network, logits of every row into p.logits.
  void step(sdk::Stream& s, Pass& p, int64_t i) const {
    Scratch& t = *p.t;
    const int64_t R = p.R, E = c_.embed_dim;
    const double eps = c_.layer_norm_eps;
    s.op("embedding", {{"table", embed_tokens_}, {"ids", p.ids.reshape({R, 1})}, {"out", t.x},
                       {"positions", embed_positions_}, {"position_offset", i}});
    embedding_norm_.apply(s, t.x, t.x, eps);
    for (size_t l = 0; l < layers_.size(); ++l) {
      const DecoderLayer& layer = layers_[l];
      layer.pre_self.apply(s, t.x, t.h, eps);
      s.op("matmul", {{"a", t.h}, {"w", layer.self_qkv}, {"out", t.qkv}});
      s.op("kv_cache_append", {{"k", t.qkv.slice(-1, E, E)}, {"v", t.qkv.slice(-1, 2 * E, E)}, {"k_cache", p.k_cache[l]},
                               {"v_cache", p.v_cache[l]}, {"pos", i}});
      s.op("attention", {{"q", t.qkv.slice(-1, 0, E)}, {"k", p.k_cache[l].slice(1, 0, i + 1)},
                         {"v", p.v_cache[l].slice(1, 0, i + 1)}, {"out", t.a}, {"heads", c_.attention_heads}});
      s.op("matmul", {{"a", t.a}, {"w", layer.self_out}, {"out", t.h}});
      layer.self.apply(s, t.h, t.h, eps);
      s.op("add", {{"a", t.x}, {"b", t.h}, {"out", t.x}});

      layer.pre_cross.apply(s, t.x, t.h, eps);
      s.op("matmul", {{"a", t.h}, {"w", layer.cross_q}, {"out", p.q}});
      s.op("attention", {{"q", p.q}, {"k", p.cross_kv[l].slice(-1, 0, E)}, {"v", p.cross_kv[l].slice(-1, E, E)},
                         {"out", t.a}, {"heads", c_.attention_heads}, {"key_mask", p.key_mask}});
      s.op("matmul", {{"a", t.a}, {"w", layer.cross_out}, {"out", t.h}});
      layer.cross.apply(s, t.h, t.h, eps);
      s.op("add", {{"a", t.x}, {"b", t.h}, {"out", t.x}});
      glu_residual(s, layer.glu, t, eps);
    }
    const sdk::Tensor x_rows = t.x.reshape({R, E}), h_rows = t.h.reshape({R, E});
    final_norm_.apply(s, x_rows, h_rows, eps);
    s.op("matmul", {{"a", h_rows}, {"w", lm_head_}, {"out", p.logits}});
  }

 private:
  sdk::Host host_;
  DalleConfig c_;
  sdk::Tensor embed_tokens_, embed_positions_, lm_head_;
  Norm embedding_norm_, final_norm_;
  std::vector<DecoderLayer> layers_;
};

class Decode : public sdk::Stage {
 public:
  Decode(const sdk::Params& p, const sdk::Host& host)
      : host_(host),
        model_(p, host),
        images_(p.integer("images")),
        factor_(p.number("supercondition_factor") >= 0 ? p.number("supercondition_factor")
                                                       : model_.config().supercondition_factor),
        top_k_(p.integer("top_k") > 0 ? p.integer("top_k") : model_.config().top_k),
        temperature_(p.number("temperature") >= 0 ? p.number("temperature") : model_.config().temperature),
        steps_per_submit_(p.integer("steps_per_submit")) {
    if (top_k_ > model_.config().image_vocab_size)
      throw std::runtime_error("top_k " + std::to_string(top_k_) + " exceeds the image vocabulary of " +
                               std::to_string(model_.config().image_vocab_size));
  }

  void run(sdk::Run& r) override {
    const DalleConfig& c = model_.config();
    const int64_t L = c.image_token_count, V = c.image_vocab_size;
    sdk::Stream s(host_);
    DecoderModel::Pass p = model_.begin(s, r, images_);
    const int64_t N = p.N;  // prompts x images
    sdk::Tensor image_tokens(host_, TESSERA_DTYPE_I32, {N, L}, "decoder.image_tokens");
    const sdk::Tensor cond = p.logits.slice(0, N, N).slice(1, 0, V), uncond = p.logits.slice(0, 0, N).slice(1, 0, V);
    const sdk::Tensor cond_ids = p.ids.slice(0, N, N), uncond_ids = p.ids.slice(0, 0, N);
    for (int64_t i = 0; i < L; ++i) {
      model_.step(s, p, i);
      // uncond·(1−f) + cond·f over the image vocabulary, then top-k and temperature; both halves take the
      // drawn token next.
      s.op("sample", {{"logits", cond}, {"uncond", uncond}, {"guidance", factor_}, {"top_k", top_k_},
                      {"temperature", temperature_}, {"seed", static_cast<int64_t>(r.seed() & 0xFFFFFFFFu)},
                      {"step", i}, {"seed_per_row", true}, {"out", cond_ids}});
      s.op("copy", {{"x", cond_ids}, {"out", uncond_ids}});
      s.op("copy", {{"x", cond_ids.reshape({N, 1})}, {"out", image_tokens.slice(1, i, 1)}});
      if ((i + 1) % steps_per_submit_ == 0 || i + 1 == L) {
        s.finish();
        r.progress(static_cast<double>(i + 1) / static_cast<double>(L), "image tokens");
        if (r.cancelled()) return;
      }
    }
    sdk::Tokens out;
    out.rows = static_cast<uint32_t>(N);
    out.length = static_cast<uint32_t>(L);
    out.ids = image_tokens.download_i32();
    out.mask.assign(out.ids.size(), 1);
    r.set_tokens("image_tokens", out);
  }

 private:
  sdk::Host host_;
  DecoderModel model_;
  int64_t images_;
  double factor_;
  int64_t top_k_;
  double temperature_;
  int64_t steps_per_submit_;
};

// Teacher forcing through the same cached decoding path: the logits of every row at every position for
// given image tokens (position i reads token i - 1, BOS at 0). For parity checks and likelihood scoring.
class Score : public sdk::Stage {
 public:
  Score(const sdk::Params& p, const sdk::Host& host) : host_(host), model_(p, host) {}

  void run(sdk::Run& r) override {
    const DalleConfig& c = model_.config();
    const int64_t L = c.image_token_count, rows = c.decoder_vocab_rows;
    const sdk::Tokens forced = r.tokens("image_tokens");
    if (forced.rows != 1 || static_cast<int64_t>(forced.length) != L)
      throw std::runtime_error("image_tokens: expected 1 row of " + std::to_string(L) + " ids");
    sdk::Tensor ids_in(host_, TESSERA_DTYPE_I32, {L}, "score.tokens");
    ids_in.upload(forced.ids);
    sdk::Stream s(host_);
    DecoderModel::Pass p = model_.begin(s, r, 1);
    if (p.N != 1) throw std::runtime_error("score takes one prompt (2 tokenizer rows), found " + std::to_string(p.N));
    sdk::Tensor logits(host_, TESSERA_DTYPE_F32, {2, L, rows}, "score.logits");
    for (int64_t i = 0; i < L; ++i) {
      if (i > 0)
        for (int64_t row = 0; row < 2; ++row) s.op("copy", {{"x", ids_in.slice(0, i - 1, 1)}, {"out", p.ids.slice(0, row, 1)}});
      model_.step(s, p, i);
      s.op("copy", {{"x", p.logits.reshape({2, 1, rows})}, {"out", logits.slice(1, i, 1)}});
      if ((i + 1) % 16 == 0 || i + 1 == L) {
        s.finish();
        r.progress(static_cast<double>(i + 1) / static_cast<double>(L), "scored");
        if (r.cancelled()) return;
      }
    }
    r.set_tensor("logits", logits);
  }

 private:
  sdk::Host host_;
  DecoderModel model_;
};

}  // namespace

TESSERA_PLUGIN("tessera.dalle.decoder", "1.0.0", "Tessera", "DALL-E Mini/Mega image-token decoder on the GPU",
               sdk::stage<Score>("score", "teacher-forced logits of given image tokens, through the cached decoding path",
                                 {sdk::input("state", TESSERA_PORT_TENSOR, "the encoder state [2, text_token_count, embed_dim]"),
                                  sdk::input("tokens", TESSERA_PORT_TOKENS, "the tokenizer's rows"),
                                  sdk::input("image_tokens", TESSERA_PORT_TOKENS, "1 row of image_token_count ids")},
                                 {sdk::output("logits", TESSERA_PORT_TENSOR, "f32 [2, image_token_count, decoder_vocab_rows]")},
                                 {sdk::text_param("model", nullptr, true, "model directory"),
                                  sdk::bool_param("f16_weights", false, "keep f32 weights as f16 on the GPU")}),
               sdk::stage<Decode>(
                   "decode", "image tokens from the encoder state: causal self-attention over a GPU KV cache, "
                             "cross-attention to the text, super-conditioning, top-k sampling on the GPU",
                   {sdk::input("state", TESSERA_PORT_TENSOR, "the encoder state [2 x prompts, text_token_count, embed_dim]"),
                    sdk::input("tokens", TESSERA_PORT_TOKENS, "the tokenizer's rows, 2 per prompt (their pads mask the text)")},
                   {sdk::output("image_tokens", TESSERA_PORT_TOKENS,
                                "one row of image_token_count ids per image, prompt by prompt; image n draws with seed + n")},
                   {sdk::text_param("model", nullptr, true, "model directory"),
                    sdk::int_param("images", 1, 1, 64, "images decoded together for each prompt"),
                    sdk::float_param("supercondition_factor", -1, -1, 1000,
                                     "uncond·(1−f) + cond·f; -1: the model's default"),
                    sdk::int_param("top_k", 0, 0, 16384, "keep the k likeliest tokens; 0: the model's default"),
                    sdk::float_param("temperature", -1, -1, 100, "0: greedy; -1: the model's default"),
                    sdk::int_param("steps_per_submit", 8, 1, 1024, "decoding steps per GPU submission"),
                    sdk::bool_param("f16_weights", false, "keep f32 weights as f16 on the GPU")}))
