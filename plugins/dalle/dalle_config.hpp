// A DALL-E Mini/Mega model directory in Tessera's format (docs/MODELS.md): config.json with every
// hyperparameter, three safetensors files with min-dalle's tensor names, and the tokenizer files.
// Read by the tokenizer, encoder, decoder and detokenizer plugins.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tessera/json.hpp"

namespace tessera_plugins::dalle {

struct DetokenizerConfig {
  int64_t ch = 0, z_channels = 0, embed_dim = 0, n_embed = 0, resolution = 0, num_res_blocks = 0;
  int64_t max_groups = 32;
  double eps = 1e-5;
  std::vector<int64_t> ch_mult;
  std::vector<int64_t> attn_resolutions;
  int64_t token_side() const { return resolution >> (ch_mult.size() - 1); }
  int64_t groups(int64_t channels) const { return channels < max_groups ? channels : max_groups; }
};

struct DalleConfig {
  std::string dir;  // the model directory
  std::string name;
  int64_t text_vocab_size = 0, text_token_count = 0, embed_dim = 0, attention_heads = 0, glu_hidden = 0;
  int64_t encoder_layers = 0, decoder_layers = 0, image_vocab_size = 0, decoder_vocab_rows = 0;
  int64_t bos_id = 0, pad_id = 1, image_token_grid = 0, image_token_count = 0, image_size = 0;
  double layer_norm_eps = 1e-5;
  double supercondition_factor = 16, temperature = 1;
  int64_t top_k = 256;
  std::string encoder_file, decoder_file, detokenizer_file, vocab_file, merges_file;
  DetokenizerConfig detokenizer;

  // `path` is the model directory or its config.json. Throws std::runtime_error naming the file and the
  // key for anything missing, mistyped or inconsistent.
  static DalleConfig load(const std::string& path) {
    namespace fs = std::filesystem;
    fs::path dir = path, file = path;
    if (fs::is_directory(dir)) file = dir / "config.json";
    else dir = fs::path(path).parent_path();
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file.string() + ": cannot read the model config (is '" + path + "' a model directory?)");
    std::stringstream text;
    text << in.rdbuf();
    const std::string where = file.string() + ": ";
    try {
      const tessera::json::Value c = tessera::json::parse(text.str());
      if (c.at("format").string() != "tessera.dalle")
        throw std::runtime_error("format is \"" + c.at("format").string() + "\", expected \"tessera.dalle\"");
      if (c.at("format_version").integer() != 1)
        throw std::runtime_error("format_version " + std::to_string(c.at("format_version").integer()) +
                                 " is not supported (this plugin reads 1)");
      DalleConfig m;
      m.dir = dir.string();
      m.name = c.get("name", "");
      m.text_vocab_size = c.at("text_vocab_size").integer();
      m.text_token_count = c.at("text_token_count").integer();
      m.embed_dim = c.at("embed_dim").integer();
      m.attention_heads = c.at("attention_heads").integer();
      m.glu_hidden = c.at("glu_hidden").integer();
      m.encoder_layers = c.at("encoder_layers").integer();
      m.decoder_layers = c.at("decoder_layers").integer();
      m.image_vocab_size = c.at("image_vocab_size").integer();
      m.decoder_vocab_rows = c.at("decoder_vocab_rows").integer();
      m.bos_id = c.at("bos_id").integer();
      m.pad_id = c.at("pad_id").integer();
      m.image_token_grid = c.at("image_token_grid").integer();
      m.image_token_count = c.at("image_token_count").integer();
      m.image_size = c.at("image_size").integer();
      m.layer_norm_eps = c.at("layer_norm_eps").number();
      if (const auto* s = c.find("sampling")) {
        m.supercondition_factor = s->get("supercondition_factor", m.supercondition_factor);
        m.top_k = s->get("top_k", m.top_k);
        m.temperature = s->get("temperature", m.temperature);
      }
      const auto& files = c.at("files");
      auto file_of = [&](const char* key) { return (dir / files.at(key).string()).string(); };
      m.encoder_file = file_of("encoder");
      m.decoder_file = file_of("decoder");
      m.detokenizer_file = file_of("detokenizer");
      m.vocab_file = file_of("vocab");
      m.merges_file = file_of("merges");
      const auto& d = c.at("detokenizer");
      DetokenizerConfig& t = m.detokenizer;
      t.ch = d.at("ch").integer();
      for (const auto& v : d.at("ch_mult").array()) t.ch_mult.push_back(v.integer());
      for (const auto& v : d.at("attn_resolutions").array()) t.attn_resolutions.push_back(v.integer());
      t.num_res_blocks = d.at("num_res_blocks").integer();
      t.z_channels = d.at("z_channels").integer();
      t.embed_dim = d.at("embed_dim").integer();
      t.n_embed = d.at("n_embed").integer();
      t.resolution = d.at("resolution").integer();
      t.max_groups = d.get("max_groups", t.max_groups);
      t.eps = d.get("norm_eps", t.eps);
      m.check();
      return m;
    } catch (const std::exception& e) {
      throw std::runtime_error(where + e.what());
    }
  }

  void check() const {
    auto need = [](bool ok, const std::string& what) {
      if (!ok) throw std::runtime_error(what);
    };
    need(embed_dim > 0 && attention_heads > 0 && embed_dim % attention_heads == 0,
         "embed_dim " + std::to_string(embed_dim) + " must be a positive multiple of attention_heads " +
             std::to_string(attention_heads));
    need((embed_dim / attention_heads) % 4 == 0 && embed_dim / attention_heads <= 256,
         "the head size embed_dim / attention_heads must be a multiple of 4, at most 256");
    need(glu_hidden > 0 && encoder_layers > 0 && decoder_layers > 0 && text_token_count > 1 && text_vocab_size > 3,
         "glu_hidden, encoder_layers, decoder_layers, text_token_count and text_vocab_size must be positive");
    need(image_token_count == image_token_grid * image_token_grid,
         "image_token_count must be image_token_grid squared");
    need(image_vocab_size > 0 && image_vocab_size <= decoder_vocab_rows && bos_id >= 0 && bos_id < decoder_vocab_rows,
         "need 0 < image_vocab_size <= decoder_vocab_rows and 0 <= bos_id < decoder_vocab_rows");
    need(pad_id >= 0 && pad_id < text_vocab_size, "pad_id must be a text token");
    need(top_k >= 1 && top_k <= image_vocab_size && temperature >= 0,
         "sampling: top_k must be in [1, image_vocab_size] and temperature >= 0");
    const DetokenizerConfig& t = detokenizer;
    need(!t.ch_mult.empty() && t.ch > 0 && t.num_res_blocks >= 0, "detokenizer: ch and ch_mult must be set");
    need(t.n_embed == image_vocab_size, "detokenizer: n_embed " + std::to_string(t.n_embed) +
                                            " differs from image_vocab_size " + std::to_string(image_vocab_size));
    need(t.resolution == image_size && t.token_side() == image_token_grid,
         "detokenizer: resolution and ch_mult must give image_size and image_token_grid");
  }
};

}  // namespace tessera_plugins::dalle
