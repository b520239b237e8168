// Plugin tessera.dalle.tokenizer: prompts to the two encoder rows min-dalle feeds its BART encoder.
#include "dalle/bpe.hpp"
#include "dalle/dalle_config.hpp"
#include "tessera/plugin.hpp"

namespace {

namespace sdk = tessera::sdk;
using tessera_plugins::dalle::DalleConfig;
using tessera_plugins::dalle::TextTokenizer;

class Tokenize : public sdk::Stage {
 public:
  Tokenize(const sdk::Params& p, const sdk::Host& host)
      : host_(host), config_(DalleConfig::load(p.text("model"))), tokenizer_(config_.vocab_file, config_.merges_file) {}

  void run(sdk::Run& r) override {
    const std::vector<std::string> prompts = r.texts("text");
    const auto T = config_.text_token_count;
    sdk::Tokens out;
    out.rows = static_cast<uint32_t>(2 * prompts.size());
    out.length = static_cast<uint32_t>(T);
    for (const std::string& prompt : prompts) {
      if (const size_t n = tokenizer_.tokenize(prompt).size(); static_cast<int64_t>(n) > T)
        host_.log(2, "prompt of " + std::to_string(n) + " tokens truncated to the model's " + std::to_string(T) +
                         " (min-dalle does the same): \"" + prompt + "\"");
      const std::vector<int32_t> rows = tokenizer_.encoder_rows(prompt, T);
      for (int32_t id : rows) {
        if (id >= config_.text_vocab_size)
          throw std::runtime_error("token id " + std::to_string(id) + " is outside the encoder's vocabulary of " +
                                   std::to_string(config_.text_vocab_size));
        out.ids.push_back(id);
        out.mask.push_back(id != config_.pad_id ? 1 : 0);
      }
    }
    r.set_tokens("tokens", out);
  }

 private:
  sdk::Host host_;
  DalleConfig config_;
  TextTokenizer tokenizer_;
};

}  // namespace

TESSERA_PLUGIN("tessera.dalle.tokenizer", "1.0.0", "Tessera", "min-dalle's BPE text tokenizer (DALL-E Mini/Mega)",
               sdk::stage<Tokenize>("tokenize",
                                    "each prompt as two rows of text_token_count ids: the empty prompt (for "
                                    "super-conditioning), then the prompt; mask 0 on <pad>",
                                    {sdk::input("text", TESSERA_PORT_TEXT, "prompts")},
                                    {sdk::output("tokens", TESSERA_PORT_TOKENS, "2 rows per prompt")},
                                    {sdk::text_param("model", nullptr, true, "model directory (config.json, vocab.json, merges.txt)")}))
