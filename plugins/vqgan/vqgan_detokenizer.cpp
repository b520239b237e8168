// Plugin tessera.vqgan: the VQGAN detokenizer of DALL-E Mini/Mega (§1.8 of the spec), configured by the
// model's detokenizer keys, on the GPU: codebook lookup, convolutions, group norm + swish, attention and
// nearest upsampling, with min-dalle's tensor names.
#include <algorithm>
#include <cmath>
#include <deque>

#include "dalle/dalle_config.hpp"
#include "tessera/plugin.hpp"

namespace {

namespace sdk = tessera::sdk;
using tessera_plugins::dalle::DalleConfig;
using tessera_plugins::dalle::DetokenizerConfig;

struct Conv {
  sdk::Tensor w, b;
  int64_t out = 0, in = 0, k = 0;
  Conv() = default;
  Conv(const sdk::Weights& f, const std::string& name, int64_t cout, int64_t cin, int64_t k_)
      : w(f.load(name + ".weight", TESSERA_DTYPE_F32, {cout, cin, k_, k_})),
        b(f.load(name + ".bias", TESSERA_DTYPE_F32, {cout})),
        out(cout), in(cin), k(k_) {}
};

struct GroupNorm {
  sdk::Tensor w, b;
  int64_t groups = 1;
  GroupNorm() = default;
  GroupNorm(const sdk::Weights& f, const std::string& name, int64_t c, const DetokenizerConfig& cfg)
      : w(f.load(name + ".weight", TESSERA_DTYPE_F32, {c})), b(f.load(name + ".bias", TESSERA_DTYPE_F32, {c})),
        groups(cfg.groups(c)) {}
};

struct ResBlock {
  GroupNorm norm1, norm2;
  Conv conv1, conv2, shortcut;
  bool has_shortcut = false;
};

struct AttnBlock {
  GroupNorm norm;
  sdk::Tensor qkv_w, qkv_b;  // q, k and v stacked: [3C, C] and [3C]
  Conv proj;
  int64_t c = 0;
};

class Detokenize : public sdk::Stage {
 public:
  Detokenize(const sdk::Params& p, const sdk::Host& host)
      : host_(host), model_(DalleConfig::load(p.text("model"))), cfg_(model_.detokenizer) {
    sdk::Weights f(host, model_.detokenizer_file);
    const int64_t levels = static_cast<int64_t>(cfg_.ch_mult.size());
    codebook_ = f.load("embedding.weight", TESSERA_DTYPE_F32, {cfg_.n_embed, cfg_.embed_dim});
    post_quant_ = Conv(f, "post_quant_conv", cfg_.z_channels, cfg_.embed_dim, 1);
    int64_t c = cfg_.ch * cfg_.ch_mult.back();
    conv_in_ = Conv(f, "decoder.conv_in", c, cfg_.z_channels, 3);
    mid_1_ = res_block(f, "decoder.mid.block_1", c, c);
    mid_attn_ = attn_block(f, "decoder.mid.attn_1", c);
    mid_2_ = res_block(f, "decoder.mid.block_2", c, c);
    int64_t res = cfg_.token_side();
    for (int64_t i = levels - 1; i >= 0; --i) {
      Level level;
      const int64_t out = cfg_.ch * cfg_.ch_mult[static_cast<size_t>(i)];
      const bool attn = std::find(cfg_.attn_resolutions.begin(), cfg_.attn_resolutions.end(), res) != cfg_.attn_resolutions.end();
      for (int64_t j = 0; j <= cfg_.num_res_blocks; ++j) {
        const std::string n = "decoder.up." + std::to_string(i);
        level.blocks.push_back(res_block(f, n + ".block." + std::to_string(j), c, out));
        c = out;
        if (attn) level.attns.push_back(attn_block(f, n + ".attn." + std::to_string(j), c));
      }
      if (i != 0) {
        level.upsample = Conv(f, "decoder.up." + std::to_string(i) + ".upsample.conv", c, c, 3);
        level.has_upsample = true;
        res *= 2;
      }
      levels_.push_back(std::move(level));
    }
    norm_out_ = GroupNorm(f, "decoder.norm_out", c, cfg_);
    conv_out_ = Conv(f, "decoder.conv_out", 3, c, 3);
  }

  void run(sdk::Run& r) override {
    const sdk::Tokens tokens = r.tokens("image_tokens");
    const int64_t N = tokens.rows, g = cfg_.token_side(), L = g * g;
    if (static_cast<int64_t>(tokens.length) != L)
      throw std::runtime_error("rows of " + std::to_string(tokens.length) + " image tokens, the detokenizer reads " +
                               std::to_string(L) + " (" + std::to_string(g) + "x" + std::to_string(g) + ")");
    for (int32_t id : tokens.ids)
      if (id < 0 || id >= cfg_.n_embed)
        throw std::runtime_error("image token " + std::to_string(id) + " is outside the codebook of " + std::to_string(cfg_.n_embed));
    keep_.clear();
    sdk::Tensor ids(host_, TESSERA_DTYPE_I32, {N, L}, "vqgan.ids");
    ids.upload(tokens.ids);
    sdk::Stream s(host_);
    // Token t sits at row t / g, column t % g: the looked-up rows [N, L, D] are NHWC, the convolutions NCHW.
    const int64_t D = cfg_.embed_dim;
    sdk::Tensor& z_rows = tensor({N, L, D});
    s.op("embedding", {{"table", codebook_}, {"ids", ids}, {"out", z_rows}});
    sdk::Tensor& z = tensor({N, D, g, g});
    s.op("copy", {{"x", z_rows.reshape({N, L, D}).transpose(1, 2)}, {"out", z.reshape({N, D, L})}});
    const sdk::Tensor* h = &conv(s, post_quant_, z, 0);
    h = &conv(s, conv_in_, *h, 1);
    h = &res(s, mid_1_, *h);
    h = &attention(s, mid_attn_, *h);
    h = &res(s, mid_2_, *h);
    for (const Level& level : levels_) {
      for (size_t j = 0; j < level.blocks.size(); ++j) {
        h = &res(s, level.blocks[j], *h);
        if (!level.attns.empty()) h = &attention(s, level.attns[j], *h);
      }
      if (level.has_upsample) {
        const std::vector<int64_t> shape = h->shape();
        sdk::Tensor& up = tensor({shape[0], shape[1], 2 * shape[2], 2 * shape[3]});
        s.op("upsample_nearest2x", {{"x", *h}, {"out", up}});
        h = &conv(s, level.upsample, up, 1);
      }
    }
    sdk::Tensor& normed = tensor(h->shape());
    s.op("group_norm", {{"x", *h}, {"out", normed}, {"groups", norm_out_.groups}, {"weight", norm_out_.w},
                        {"bias", norm_out_.b}, {"eps", cfg_.eps}, {"silu", true}});
    const sdk::Tensor& rgb = conv(s, conv_out_, normed, 1);
    s.finish();

    const std::vector<float> v = rgb.download_f32();  // [N, 3, H, W]
    const std::vector<int64_t> shape = rgb.shape();
    const int64_t H = shape[2], W = shape[3];
    sdk::Image img;
    img.count = static_cast<uint32_t>(N);
    img.width = static_cast<uint32_t>(W);
    img.height = static_cast<uint32_t>(H);
    img.pixels.resize(static_cast<size_t>(N * H * W * 3));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            const float f = v[static_cast<size_t>(((n * 3 + c) * H + y) * W + x)];
            const float clipped = std::fmin(std::fmax(f, 0.0f), 1.0f);  // min-dalle: clip(x, 0, 1) * 255
            img.pixels[static_cast<size_t>(((n * H + y) * W + x) * 3 + c)] = static_cast<uint8_t>(std::lround(clipped * 255.0f));
          }
    keep_.clear();
    r.progress(1.0, "detokenized");
    r.set_image("image", img);
  }

 private:
  struct Level {
    std::vector<ResBlock> blocks;
    std::vector<AttnBlock> attns;
    Conv upsample;
    bool has_upsample = false;
  };

  ResBlock res_block(const sdk::Weights& f, const std::string& n, int64_t in, int64_t out) const {
    ResBlock b;
    b.norm1 = GroupNorm(f, n + ".norm1", in, cfg_);
    b.conv1 = Conv(f, n + ".conv1", out, in, 3);
    b.norm2 = GroupNorm(f, n + ".norm2", out, cfg_);
    b.conv2 = Conv(f, n + ".conv2", out, out, 3);
    if (in != out) {
      b.shortcut = Conv(f, n + ".nin_shortcut", out, in, 1);
      b.has_shortcut = true;
    }
    return b;
  }

  AttnBlock attn_block(const sdk::Weights& f, const std::string& n, int64_t c) const {
    AttnBlock a;
    a.c = c;
    a.norm = GroupNorm(f, n + ".norm", c, cfg_);
    a.qkv_w = sdk::Tensor(host_, TESSERA_DTYPE_F32, {3 * c, c}, "vqgan.qkv");
    a.qkv_b = sdk::Tensor(host_, TESSERA_DTYPE_F32, {3 * c}, "vqgan.qkv_bias");
    std::vector<float> w, b;
    for (const char* part : {".q", ".k", ".v"}) {
      const std::vector<float> pw = f.load(n + part + ".weight", TESSERA_DTYPE_F32, {c, c, 1, 1}).download_f32();
      const std::vector<float> pb = f.load(n + part + ".bias", TESSERA_DTYPE_F32, {c}).download_f32();
      w.insert(w.end(), pw.begin(), pw.end());
      b.insert(b.end(), pb.begin(), pb.end());
    }
    a.qkv_w.upload(w);
    a.qkv_b.upload(b);
    a.proj = Conv(f, n + ".proj_out", c, c, 1);
    return a;
  }

  sdk::Tensor& tensor(std::vector<int64_t> shape) {
    keep_.emplace_back(host_, TESSERA_DTYPE_F32, std::move(shape), "vqgan");
    return keep_.back();
  }

  const sdk::Tensor& conv(sdk::Stream& s, const Conv& c, const sdk::Tensor& x, int64_t pad) {
    const std::vector<int64_t> shape = x.shape();
    sdk::Tensor& out = tensor({shape[0], c.out, shape[2] + 2 * pad - c.k + 1, shape[3] + 2 * pad - c.k + 1});
    s.op("conv2d", {{"x", x}, {"w", c.w}, {"bias", c.b}, {"padding", pad}, {"out", out}});
    return out;
  }

  const sdk::Tensor& res(sdk::Stream& s, const ResBlock& b, const sdk::Tensor& x) {
    sdk::Tensor& t1 = tensor(x.shape());
    s.op("group_norm", {{"x", x}, {"out", t1}, {"groups", b.norm1.groups}, {"weight", b.norm1.w}, {"bias", b.norm1.b},
                        {"eps", cfg_.eps}, {"silu", true}});
    const sdk::Tensor& t2 = conv(s, b.conv1, t1, 1);
    s.op("group_norm", {{"x", t2}, {"out", t2}, {"groups", b.norm2.groups}, {"weight", b.norm2.w}, {"bias", b.norm2.b},
                        {"eps", cfg_.eps}, {"silu", true}});
    const sdk::Tensor& t4 = conv(s, b.conv2, t2, 1);
    const sdk::Tensor& skip = b.has_shortcut ? conv(s, b.shortcut, x, 0) : x;
    sdk::Tensor& out = tensor(t4.shape());
    s.op("add", {{"a", skip}, {"b", t4}, {"out", out}});
    return out;
  }

  // x + proj_out(softmax(q kᵀ / sqrt(C)) v) over the H·W positions, one head of C channels.
  const sdk::Tensor& attention(sdk::Stream& s, const AttnBlock& a, const sdk::Tensor& x) {
    const std::vector<int64_t> shape = x.shape();
    const int64_t N = shape[0], C = shape[1], HW = shape[2] * shape[3];
    sdk::Tensor& normed = tensor(shape);
    s.op("group_norm", {{"x", x}, {"out", normed}, {"groups", a.norm.groups}, {"weight", a.norm.w}, {"bias", a.norm.b},
                        {"eps", cfg_.eps}});
    sdk::Tensor& rows = tensor({N, HW, C});
    s.op("copy", {{"x", normed.reshape({N, C, HW}).transpose(1, 2)}, {"out", rows}});
    sdk::Tensor& qkv = tensor({N, HW, 3 * C});
    s.op("matmul", {{"a", rows}, {"w", a.qkv_w}, {"bias", a.qkv_b}, {"out", qkv}});
    sdk::Tensor& mixed = tensor({N, HW, C});
    if (C % 4 == 0 && C <= 256) {
      s.op("attention", {{"q", qkv.slice(-1, 0, C)}, {"k", qkv.slice(-1, C, C)}, {"v", qkv.slice(-1, 2 * C, C)},
                         {"out", mixed}, {"heads", 1}});
    } else {  // heads wider than the fused kernel takes (the real VQGAN's 512): scores in memory
      sdk::Tensor& q = tensor({N, HW, C});
      sdk::Tensor& k = tensor({N, HW, C});
      sdk::Tensor& v = tensor({N, HW, C});
      s.op("copy", {{"x", qkv.slice(-1, 0, C)}, {"out", q}});
      s.op("copy", {{"x", qkv.slice(-1, C, C)}, {"out", k}});
      s.op("copy", {{"x", qkv.slice(-1, 2 * C, C)}, {"out", v}});
      sdk::Tensor& scores = tensor({N, HW, HW});
      s.op("matmul", {{"a", q}, {"w", k}, {"out", scores}});
      sdk::Tensor& probs = tensor({N, HW, HW});
      s.op("softmax", {{"x", scores}, {"out", probs}, {"scale", 1.0 / std::sqrt(static_cast<double>(C))}});
      s.op("matmul", {{"a", probs}, {"w", v}, {"layout", "in_out"}, {"out", mixed}});
    }
    sdk::Tensor& projected = tensor({N, HW, C});
    s.op("matmul", {{"a", mixed}, {"w", a.proj.w.reshape({C, C})}, {"bias", a.proj.b}, {"out", projected}});
    sdk::Tensor& out = tensor(shape);
    // rows [N, H*W, C] seen as NCHW [N, C, H, W]
    const sdk::Tensor nchw = projected.reshape({N, shape[2], shape[3], C}).transpose(1, 3).transpose(2, 3);
    s.op("add", {{"a", x}, {"b", nchw}, {"out", out}});
    return out;
  }

  sdk::Host host_;
  DalleConfig model_;
  DetokenizerConfig cfg_;
  sdk::Tensor codebook_;
  Conv post_quant_, conv_in_, conv_out_;
  ResBlock mid_1_, mid_2_;
  AttnBlock mid_attn_;
  std::vector<Level> levels_;
  GroupNorm norm_out_;
  std::deque<sdk::Tensor> keep_;  // this run's intermediate tensors
};

}  // namespace

TESSERA_PLUGIN("tessera.vqgan", "1.0.0", "Tessera", "VQGAN detokenizer (DALL-E Mini/Mega) on the GPU",
               sdk::stage<Detokenize>("detokenize", "image tokens to RGB images",
                                      {sdk::input("image_tokens", TESSERA_PORT_TOKENS, "one row of grid x grid ids per image")},
                                      {sdk::output("image", TESSERA_PORT_IMAGE, "RGB8 images")},
                                      {sdk::text_param("model", nullptr, true, "model directory")}))
