// Plugin tessera.dalle.encoder: DALL-E Mini/Mega's BART text encoder (§1.3 of the spec) on the GPU.
#include "dalle/bart.hpp"

namespace {

namespace sdk = tessera::sdk;
using namespace tessera_plugins::dalle;

struct EncoderLayer {
  Norm pre_self, self;
  sdk::Tensor qkv, out;
  Glu glu;
};

class Encode : public sdk::Stage {
 public:
  Encode(const sdk::Params& p, const sdk::Host& host) : host_(host), c_(DalleConfig::load(p.text("model"))) {
    const bool f16 = p.boolean("f16_weights");
    sdk::Weights file(host, c_.encoder_file);
    const int64_t E = c_.embed_dim;
    embed_tokens_ = load(file, "embed_tokens.weight", {c_.text_vocab_size, E}, f16);
    embed_positions_ = load(file, "embed_positions.weight", {c_.text_token_count, E}, f16);
    embedding_norm_ = Norm(file, "layernorm_embedding", E, f16);
    final_norm_ = Norm(file, "final_ln", E, f16);
    for (int64_t l = 0; l < c_.encoder_layers; ++l) {
      const std::string n = "layers." + std::to_string(l) + ".";
      EncoderLayer layer;
      layer.pre_self = Norm(file, n + "pre_self_attn_layer_norm", E, f16);
      layer.self = Norm(file, n + "self_attn_layer_norm", E, f16);
      layer.qkv = stacked(host, file, {n + "self_attn.q_proj.weight", n + "self_attn.k_proj.weight", n + "self_attn.v_proj.weight"},
                          E, E, f16);
      layer.out = load(file, n + "self_attn.out_proj.weight", {E, E}, f16);
      layer.glu = Glu(host, file, n + "glu.", c_, f16);
      layers_.push_back(std::move(layer));
    }
  }

  void run(sdk::Run& r) override {
    const sdk::Tokens tokens = r.tokens("tokens");
    const int64_t R = tokens.rows, T = c_.text_token_count, E = c_.embed_dim;
    if (static_cast<int64_t>(tokens.length) != T)
      throw std::runtime_error("tokens of length " + std::to_string(tokens.length) + ", the model reads " +
                               std::to_string(T) + " (text_token_count)");
    for (int32_t id : tokens.ids)
      if (id < 0 || id >= c_.text_vocab_size)
        throw std::runtime_error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                 std::to_string(c_.text_vocab_size));
    sdk::Tensor ids(host_, TESSERA_DTYPE_I32, {R, T}, "encoder.ids");
    ids.upload(tokens.ids);
    sdk::Tensor mask(host_, TESSERA_DTYPE_I32, {R, T}, "encoder.mask");
    mask.upload(key_mask(tokens));

    Scratch t(host_, R, T, c_);
    const double eps = c_.layer_norm_eps;
    sdk::Stream s(host_);
    s.op("embedding", {{"table", embed_tokens_}, {"ids", ids}, {"out", t.x}, {"positions", embed_positions_}});
    embedding_norm_.apply(s, t.x, t.x, eps);
    for (const EncoderLayer& layer : layers_) {
      layer.pre_self.apply(s, t.x, t.h, eps);
      s.op("matmul", {{"a", t.h}, {"w", layer.qkv}, {"out", t.qkv}});
      s.op("attention", {{"q", t.qkv.slice(-1, 0, E)}, {"k", t.qkv.slice(-1, E, E)}, {"v", t.qkv.slice(-1, 2 * E, E)},
                         {"out", t.a}, {"heads", c_.attention_heads}, {"key_mask", mask}});
      s.op("matmul", {{"a", t.a}, {"w", layer.out}, {"out", t.h}});
      layer.self.apply(s, t.h, t.h, eps);
      s.op("add", {{"a", t.x}, {"b", t.h}, {"out", t.x}});
      glu_residual(s, layer.glu, t, eps);
    }
    final_norm_.apply(s, t.x, t.x, eps);
    s.finish();
    r.progress(1.0, "encoded");
    r.set_tensor("state", t.x);
  }

  // min-dalle masks keys by id: a key is seen when its token is not <pad>.
  std::vector<int32_t> key_mask(const sdk::Tokens& tokens) const {
    std::vector<int32_t> m(tokens.ids.size());
    for (size_t i = 0; i < m.size(); ++i) m[i] = tokens.ids[i] != c_.pad_id ? 1 : 0;
    return m;
  }

 private:
  sdk::Host host_;
  DalleConfig c_;
  sdk::Tensor embed_tokens_, embed_positions_;
  Norm embedding_norm_, final_norm_;
  std::vector<EncoderLayer> layers_;
};

}  // namespace

TESSERA_PLUGIN("tessera.dalle.encoder", "1.0.0", "Tessera", "DALL-E Mini/Mega BART text encoder on the GPU",
               sdk::stage<Encode>("encode", "text tokens to the encoder state the image decoder attends to",
                                  {sdk::input("tokens", TESSERA_PORT_TOKENS, "rows of text_token_count ids")},
                                  {sdk::output("state", TESSERA_PORT_TENSOR, "f32 [rows, text_token_count, embed_dim]")},
                                  {sdk::text_param("model", nullptr, true, "model directory"),
                                   sdk::bool_param("f16_weights", false, "keep f32 weights as f16 on the GPU")}))
