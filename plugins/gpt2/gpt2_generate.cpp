// Plugin tessera.gpt2: text generation with GPT-2 architecture models in Hugging Face's layout (the
// bundled tiny one, or GPT-2 small to XL as published). The prompt runs in one batched pass; then token by
// token over a GPU KV cache, with the repetition penalty, temperature, top-k and top-p applied and the
// token drawn on the GPU; the host reads back one id per sequence per step to stream text and check stops.
#include <algorithm>
#include <cmath>
#include <memory>

#include "gpt2/gpt2_bpe.hpp"
#include "gpt2/gpt2_model.hpp"
#include "mark_seen_spirv.h"
#include "repetition_penalty_spirv.h"

namespace {

namespace sdk = tessera::sdk;
using namespace tessera_plugins::gpt2;

struct PenaltyPush {
  int32_t V, logits_offset, logits_row, seen_offset;
  float penalty;
};
struct MarkPush {
  int32_t V, rows, seen_offset, ids_offset;
};

std::vector<std::string> split_stops(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = std::min(s.find('|', start), s.size());
    std::string piece = s.substr(start, end - start);
    // "\n" and "\t" as written in a pipeline file or on the command line
    for (size_t at; (at = piece.find("\\n")) != std::string::npos;) piece.replace(at, 2, "\n");
    for (size_t at; (at = piece.find("\\t")) != std::string::npos;) piece.replace(at, 2, "\t");
    if (!piece.empty()) out.push_back(piece);
    start = end + 1;
  }
  return out;
}

// Stage instances that differ only in generation settings (max_tokens, sampling, sequences) share one copy
// of a model's weights on a device: changing a setting in a long-lived process does not load them again.
std::shared_ptr<const Gpt2Model> shared_model(const sdk::Host& host, const std::string& dir, bool f16) {
  return sdk::shared_per_host<Gpt2Model>(host, dir + (f16 ? "|f16" : ""),
                                         [&] { return std::make_shared<const Gpt2Model>(host, dir, f16); });
}

class Generate : public sdk::Stage {
 public:
  Generate(const sdk::Params& p, const sdk::Host& host)
      : host_(host),
        model_(shared_model(host, p.text("model"), p.boolean("f16_weights"))),
        tokenizer_(Tokenizer::load(model_->config().dir)),
        max_tokens_(p.integer("max_tokens")),
        sequences_(p.integer("sequences")),
        temperature_(p.number("temperature")),
        top_k_(p.integer("top_k")),
        top_p_(p.number("top_p")),
        penalty_(p.number("repetition_penalty")),
        stops_(split_stops(p.text("stop"))),
        include_prompt_(p.boolean("include_prompt")),
        stop_at_eos_(p.boolean("stop_at_eos")),
        penalty_kernel_(host, "gpt2.repetition_penalty", repetition_penalty_spirv, sizeof repetition_penalty_spirv,
                        {TESSERA_BINDING_STORAGE, TESSERA_BINDING_TEXEL}, sizeof(PenaltyPush)),
        mark_kernel_(host, "gpt2.mark_seen", mark_seen_spirv, sizeof mark_seen_spirv,
                     {TESSERA_BINDING_STORAGE, TESSERA_BINDING_TEXEL}, sizeof(MarkPush)) {
    if (top_k_ > model_->config().vocab_size)
      throw std::runtime_error("top_k " + std::to_string(top_k_) + " exceeds the vocabulary of " +
                               std::to_string(model_->config().vocab_size));
  }

  void run(sdk::Run& r) override {
    const Gpt2Config& c = model_->config();
    const int64_t R = sequences_, V = c.vocab_size, C = c.n_embd;
    // The prompt as text, or as ids (from a tokenizer stage, or exact ids for tests).
    const bool have_text = r.value("text") != nullptr, have_ids = r.value("tokens") != nullptr;
    if (have_text == have_ids) throw std::runtime_error("connect exactly one of the inputs 'text' and 'tokens'");
    if (have_text && r.texts("text").size() != 1)
      throw std::runtime_error("generate continues one prompt per run, found " + std::to_string(r.texts("text").size()));
    const std::string prompt = have_text ? r.texts("text").at(0) : std::string();
    std::vector<int32_t> ids;
    if (have_text) {
      ids = tokenizer_.encode(prompt, /*allow_special=*/true);  // "<|endoftext|>" in a prompt starts a document, as in HF
    } else {
      const sdk::Tokens t = r.tokens("tokens");
      for (uint32_t k = 0; k < t.length; ++k)
        if (t.mask[k]) ids.push_back(t.ids[k]);
      for (int32_t id : ids)
        if (id < 0 || id >= c.vocab_size)
          throw std::runtime_error("prompt token " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(c.vocab_size));
    }
    if (ids.empty()) ids.push_back(static_cast<int32_t>(c.eos_token_id));  // an empty prompt starts a document
    const int64_t P = static_cast<int64_t>(ids.size());
    if (P + max_tokens_ > c.n_positions)
      throw std::runtime_error("the prompt's " + std::to_string(P) + " tokens and max_tokens " + std::to_string(max_tokens_) +
                               " exceed the model's context of " + std::to_string(c.n_positions) + " tokens");

    Gpt2Cache cache = model_->new_cache(R, P + max_tokens_);
    Gpt2Scratch prompt_pass = model_->new_scratch(R, P), step_pass = model_->new_scratch(R, 1);
    sdk::Tensor prompt_ids(host_, TESSERA_DTYPE_I32, {R, P}, "gpt2.prompt");
    std::vector<int32_t> rows_ids;
    for (int64_t row = 0; row < R; ++row) rows_ids.insert(rows_ids.end(), ids.begin(), ids.end());
    prompt_ids.upload(rows_ids);
    sdk::Tensor logits(host_, TESSERA_DTYPE_F32, {R, V}, "gpt2.logits");
    sdk::Tensor next(host_, TESSERA_DTYPE_I32, {R}, "gpt2.next");
    sdk::Tensor seen;
    if (penalty_ != 1.0) {
      std::vector<int32_t> marks(static_cast<size_t>(R * V), 0);
      for (int64_t row = 0; row < R; ++row)
        for (int32_t id : ids) marks[static_cast<size_t>(row * V + id)] = 1;
      seen = sdk::Tensor(host_, TESSERA_DTYPE_I32, {R, V}, "gpt2.seen");
      seen.upload(marks);
    }

    if (include_prompt_ && R == 1) r.stream("text", prompt);
    sdk::Stream s(host_);
    model_->forward(s, cache, prompt_pass, prompt_ids, 0);
    model_->head(s, prompt_pass.h.select(1, P - 1), logits);

    std::vector<std::string> text(static_cast<size_t>(R));
    std::vector<std::vector<int32_t>> generated(static_cast<size_t>(R));
    std::vector<bool> done(static_cast<size_t>(R), false), stopped(static_cast<size_t>(R), false);
    std::vector<StreamDecoder> decoders(static_cast<size_t>(R), StreamDecoder(tokenizer_));
    const uint32_t seed = static_cast<uint32_t>(r.seed() & 0xFFFFFFFFu);
    for (int64_t step = 0; step < max_tokens_; ++step) {
      if (penalty_ != 1.0) {
        const PenaltyPush push{static_cast<int32_t>(V), static_cast<int32_t>(logits.info().offset), static_cast<int32_t>(V),
                               static_cast<int32_t>(seen.info().offset), static_cast<float>(penalty_)};
        penalty_kernel_.dispatch(s, {&logits, &seen}, push, {static_cast<uint32_t>((V + 63) / 64), static_cast<uint32_t>(R), 1});
      }
      s.op("sample", {{"logits", logits}, {"temperature", temperature_}, {"top_k", top_k_}, {"top_p", top_p_},
                      {"seed", static_cast<int64_t>(seed)}, {"step", step}, {"seed_per_row", true}, {"out", next}});
      if (penalty_ != 1.0) {
        const MarkPush push{static_cast<int32_t>(V), static_cast<int32_t>(R), static_cast<int32_t>(seen.info().offset),
                            static_cast<int32_t>(next.info().offset)};
        mark_kernel_.dispatch(s, {&seen, &next}, push, {static_cast<uint32_t>((R + 63) / 64), 1, 1});
      }
      const bool last = step + 1 == max_tokens_;
      if (!last) {  // the next position goes in the same submission: the host only reads the ids
        model_->forward(s, cache, step_pass, next.reshape({R, 1}), P + step);
        model_->head(s, step_pass.h.reshape({R, C}), logits);
      }
      s.finish();
      const std::vector<int32_t> drawn = next.download_i32();
      for (int64_t row = 0; row < R; ++row) {
        const size_t i = static_cast<size_t>(row);
        if (done[i]) continue;
        if (drawn[i] == c.eos_token_id && stop_at_eos_) {
          done[i] = true;
          continue;
        }
        generated[i].push_back(drawn[i]);
        std::string piece = decoders[i].push(drawn[i]);
        const size_t before = text[i].size();
        text[i] += piece;
        for (const std::string& stop : stops_) {
          // A stop string ends the text where it starts (it may have begun in an earlier piece).
          const size_t at = text[i].find(stop, before >= stop.size() ? before - stop.size() + 1 : 0);
          if (at != std::string::npos) {
            text[i].resize(at);
            piece = before < at ? text[i].substr(before) : std::string();
            done[i] = stopped[i] = true;
          }
        }
        if (R == 1 && !piece.empty()) r.stream("text", piece);
      }
      r.progress(static_cast<double>(step + 1) / static_cast<double>(max_tokens_), "tokens");
      if (r.cancelled()) return;
      if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    }
    for (int64_t row = 0; row < R; ++row) {  // bytes of a character the last token left unfinished
      const size_t i = static_cast<size_t>(row);
      if (stopped[i]) continue;
      const std::string rest = decoders[i].finish();
      text[i] += rest;
      if (R == 1 && !rest.empty()) r.stream("text", rest);
    }
    sdk::Tokens out;
    out.rows = static_cast<uint32_t>(R);
    for (const auto& g : generated) out.length = std::max<uint32_t>(out.length, static_cast<uint32_t>(g.size()));
    std::vector<std::string> texts;
    for (int64_t row = 0; row < R; ++row) {
      const auto& g = generated[static_cast<size_t>(row)];
      for (uint32_t k = 0; k < out.length; ++k) {
        out.ids.push_back(k < g.size() ? g[k] : static_cast<int32_t>(c.eos_token_id));
        out.mask.push_back(k < g.size() ? 1 : 0);
      }
      texts.push_back((include_prompt_ ? prompt : std::string()) + text[static_cast<size_t>(row)]);
    }
    r.set_tokens("tokens", out);
    r.set_texts("text", texts);
  }

 private:
  sdk::Host host_;
  std::shared_ptr<const Gpt2Model> model_;
  Tokenizer tokenizer_;
  int64_t max_tokens_, sequences_;
  double temperature_;
  int64_t top_k_;
  double top_p_, penalty_;
  std::vector<std::string> stops_;
  bool include_prompt_, stop_at_eos_;
  sdk::Kernel penalty_kernel_, mark_kernel_;
};

// Teacher forcing: the logits of every position of a token sequence, in one batched pass (parity checks,
// perplexity).
class Score : public sdk::Stage {
 public:
  Score(const sdk::Params& p, const sdk::Host& host) : host_(host), model_(shared_model(host, p.text("model"), p.boolean("f16_weights"))) {}

  void run(sdk::Run& r) override {
    const Gpt2Config& c = model_->config();
    const sdk::Tokens t = r.tokens("tokens");
    if (t.rows != 1) throw std::runtime_error("tokens: expected 1 row, found " + std::to_string(t.rows));
    const int64_t T = t.length;
    if (T < 1 || T > c.n_positions)
      throw std::runtime_error(std::to_string(T) + " tokens do not fit the model's context of " + std::to_string(c.n_positions));
    for (int32_t id : t.ids)
      if (id < 0 || id >= c.vocab_size)
        throw std::runtime_error("token " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(c.vocab_size));
    // Which positions' logits to return (all by default; a long context's [T, V] may not fit one buffer).
    std::vector<int32_t> positions;
    if (r.value("positions")) {
      for (int32_t q : r.tokens("positions").ids) {
        if (q < 0 || q >= T) throw std::runtime_error("position " + std::to_string(q) + " is outside the " + std::to_string(T) + " tokens");
        positions.push_back(q);
      }
    } else {
      for (int32_t q = 0; q < T; ++q) positions.push_back(q);
    }
    const int64_t K = static_cast<int64_t>(positions.size());
    sdk::Tensor ids(host_, TESSERA_DTYPE_I32, {1, T}, "gpt2.score_ids");
    ids.upload(t.ids);
    Gpt2Cache cache = model_->new_cache(1, T);
    Gpt2Scratch pass = model_->new_scratch(1, T);
    sdk::Tensor logits(host_, TESSERA_DTYPE_F32, {K, c.vocab_size}, "gpt2.score_logits");
    sdk::Stream s(host_);
    model_->forward(s, cache, pass, ids, 0);
    const sdk::Tensor hidden = pass.h.reshape({T, c.n_embd});
    if (r.value("positions")) {
      sdk::Tensor picked(host_, TESSERA_DTYPE_F32, {K, c.n_embd}, "gpt2.score_rows");
      for (int64_t k = 0; k < K; ++k) s.op("copy", {{"x", hidden.slice(0, positions[static_cast<size_t>(k)], 1)}, {"out", picked.slice(0, k, 1)}});
      model_->head(s, picked, logits);
    } else {
      model_->head(s, hidden, logits);
    }
    s.finish();
    r.set_tensor("logits", logits);
  }

 private:
  sdk::Host host_;
  std::shared_ptr<const Gpt2Model> model_;
};

}  // namespace

TESSERA_PLUGIN("tessera.gpt2", "1.0.0", "Tessera", "GPT-2 architecture text generation on the GPU",
               sdk::stage<Generate>(
                   "generate", "continues a prompt: batched prompt pass, then token by token over a GPU KV cache",
                   {sdk::input("text", TESSERA_PORT_TEXT, "the prompt as text", true),
                    sdk::input("tokens", TESSERA_PORT_TOKENS, "or the prompt as ids (one row)", true)},
                   {sdk::output("text", TESSERA_PORT_TEXT, "one continuation per sequence (streamed when there is one)"),
                    sdk::output("tokens", TESSERA_PORT_TOKENS, "the generated ids, one row per sequence")},
                   {sdk::text_param("model", nullptr, true, "model directory: config.json, model.safetensors, vocab.json + merges.txt or tokenizer.json"),
                    sdk::int_param("max_tokens", 64, 1, 8192, "tokens to generate at most"),
                    sdk::int_param("sequences", 1, 1, 64, "continuations generated together"),
                    sdk::float_param("temperature", 1.0, 0, 100, "0: greedy"),
                    sdk::int_param("top_k", 0, 0, 1 << 20, "keep the k likeliest tokens; 0: all"),
                    sdk::float_param("top_p", 1.0, 0.0001, 1, "nucleus: keep the smallest set reaching this probability"),
                    sdk::float_param("repetition_penalty", 1.0, 0.01, 100, "HF semantics: seen tokens' logits / p (>0) or * p (<0)"),
                    sdk::text_param("stop", "", false, "stop strings separated by |; \\n and \\t allowed"),
                    sdk::bool_param("include_prompt", false, "prefix each output with the prompt"),
                    sdk::bool_param("stop_at_eos", true, "end a sequence at <|endoftext|>"),
                    sdk::bool_param("f16_weights", false, "keep f32 weights as f16 on the GPU")}),
               sdk::stage<Score>("score", "teacher-forced logits of every position of a token sequence",
                                 {sdk::input("tokens", TESSERA_PORT_TOKENS, "one row of ids"),
                                  sdk::input("positions", TESSERA_PORT_TOKENS, "positions to return (default: all)", true)},
                                 {sdk::output("logits", TESSERA_PORT_TENSOR, "f32 [positions, vocab_size]")},
                                 {sdk::text_param("model", nullptr, true, "model directory"),
                                  sdk::bool_param("f16_weights", false, "keep f32 weights as f16 on the GPU")}))
