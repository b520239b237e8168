// Plugin tessera.gpt2.tokenizer: GPT-2's byte-level BPE (gpt2/gpt2_bpe.hpp), text to tokens and back.
#include <algorithm>

#include "gpt2/gpt2_bpe.hpp"
#include "tessera/plugin.hpp"

namespace {

namespace sdk = tessera::sdk;
using tessera_plugins::gpt2::Tokenizer;

class Encode : public sdk::Stage {
 public:
  explicit Encode(const sdk::Params& p)
      : tokenizer_(Tokenizer::load(p.text("vocab"))), add_eos_(p.boolean("add_eos")), allow_special_(p.boolean("allow_special")) {
    if (add_eos_ && tokenizer_.eos_id() < 0)
      throw std::runtime_error(p.text("vocab") + ": add_eos needs <|endoftext|>, which is not in the vocabulary");
  }

  void run(sdk::Run& r) override {
    const std::vector<std::string> texts = r.texts("text");
    std::vector<std::vector<int32_t>> rows;
    size_t length = 0;
    for (const std::string& text : texts) {
      rows.push_back(tokenizer_.encode(text, allow_special_));
      if (add_eos_) rows.back().push_back(tokenizer_.eos_id());
      length = std::max(length, rows.back().size());
    }
    const int32_t pad = std::max(tokenizer_.eos_id(), 0);
    sdk::Tokens out;
    out.rows = static_cast<uint32_t>(rows.size());
    out.length = static_cast<uint32_t>(length);
    for (const auto& row : rows) {
      out.ids.insert(out.ids.end(), row.begin(), row.end());
      out.ids.insert(out.ids.end(), length - row.size(), pad);
      out.mask.insert(out.mask.end(), row.size(), 1);
      out.mask.insert(out.mask.end(), length - row.size(), 0);
    }
    r.set_tokens("tokens", out);
  }

 private:
  Tokenizer tokenizer_;
  bool add_eos_, allow_special_;
};

class Decode : public sdk::Stage {
 public:
  explicit Decode(const sdk::Params& p) : tokenizer_(Tokenizer::load(p.text("vocab"))), skip_special_(p.boolean("skip_special")) {}

  void run(sdk::Run& r) override {
    const sdk::Tokens t = r.tokens("tokens");
    std::vector<std::string> texts;
    for (uint32_t row = 0; row < t.rows; ++row) {
      std::vector<int32_t> ids;
      for (size_t i = static_cast<size_t>(row) * t.length, end = i + t.length; i < end; ++i)
        if (t.mask[i] && !(skip_special_ && tokenizer_.is_special(t.ids[i]))) ids.push_back(t.ids[i]);
      texts.push_back(tokenizer_.decode(ids));
    }
    r.set_texts("text", texts);
  }

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
};

const char* const kVocabDoc =
    "directory holding vocab.json + merges.txt or tokenizer.json, or one of those files (vocab.json or merges.txt "
    "with the other beside it)";

}  // namespace

TESSERA_PLUGIN("tessera.gpt2.tokenizer", "1.0.0", "Tessera", "GPT-2's byte-level BPE tokenizer",
               sdk::stage<Encode>("encode",
                                  "each text as one row of token ids (invalid UTF-8 read as U+FFFD); rows padded "
                                  "to the longest with <|endoftext|>, mask 0",
                                  {sdk::input("text", TESSERA_PORT_TEXT, "texts")},
                                  {sdk::output("tokens", TESSERA_PORT_TOKENS, "one row per text")},
                                  {sdk::text_param("vocab", nullptr, true, kVocabDoc),
                                   sdk::bool_param("add_eos", false, "append <|endoftext|> to every row"),
                                   sdk::bool_param("allow_special", false,
                                                   "<|endoftext|> written in the text is the special token; "
                                                   "otherwise it is encoded as text")}),
               sdk::stage<Decode>("decode", "each row's ids (mask 1) as text; ill-formed UTF-8 as U+FFFD",
                                  {sdk::input("tokens", TESSERA_PORT_TOKENS, "token ids")},
                                  {sdk::output("text", TESSERA_PORT_TEXT, "one text per row")},
                                  {sdk::text_param("vocab", nullptr, true, kVocabDoc),
                                   sdk::bool_param("skip_special", false, "leave out special tokens (<|endoftext|>)")}))
