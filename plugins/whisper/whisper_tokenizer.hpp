// Whisper's tokenizer as recognition needs it: ids to text. The vocabulary is a tiktoken rank file (one
// base64 token and its rank per line: gpt2.tiktoken for the .en models, multilingual.tiktoken for the
// others); the special tokens follow the ranks in a fixed order (../shared/specs/whisper.md):
//   <|endoftext|>, <|startoftranscript|>, L language tokens, <|translate|>, <|transcribe|>, <|startoflm|>,
//   <|startofprev|>, <|nospeech|>, <|notimestamps|>, then 1501 timestamps <|0.00|> ... <|30.00|>.
// L is whatever makes the model's vocabulary size add up: 99 for tiny to large-v2, 100 for large-v3.
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "gpt2/gpt2_bpe.hpp"  // sanitize_utf8: invalid UTF-8 becomes U+FFFD as Python's errors="replace" does

namespace tessera_plugins::whisper {

// OpenAI's language order; the token of language i is sot + 1 + i.
inline constexpr std::array<const char*, 100> kLanguages = {
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id",
    "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg",
    "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br",
    "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so",
    "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt",
    "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};

class WhisperTokenizer {
 public:
  // `path`: the rank file; `n_vocab`: the model's vocabulary size, which fixes the number of languages.
  static WhisperTokenizer load(const std::string& path, int64_t n_vocab) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read the tokenizer's rank file");
    WhisperTokenizer t;
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const size_t space = line.find(' ');
      auto bad = [&](const std::string& why) {
        return std::runtime_error(path + ":" + std::to_string(line_no) + ": " + why);
      };
      if (space == std::string::npos) throw bad("expected 'base64-token rank'");
      int64_t rank = -1;
      try {
        size_t used = 0;
        rank = std::stoll(line.substr(space + 1), &used);
        if (used != line.size() - space - 1) rank = -1;
      } catch (const std::exception&) {
        rank = -1;
      }
      if (rank != static_cast<int64_t>(t.tokens_.size()))
        throw bad("rank '" + line.substr(space + 1) + "', expected " + std::to_string(t.tokens_.size()) + " (ranks run 0, 1, 2, ...)");
      std::string bytes;
      if (!base64_decode(line.substr(0, space), bytes)) throw bad("the token is not valid base64");
      t.tokens_.push_back(std::move(bytes));
    }
    const int64_t ranks = static_cast<int64_t>(t.tokens_.size());
    const int64_t languages = n_vocab - ranks - 1509;  // eot, sot, 6 task tokens, 1501 timestamps
    if (languages < 1 || languages > static_cast<int64_t>(kLanguages.size()))
      throw std::runtime_error(path + ": " + std::to_string(ranks) + " ranks do not fit a Whisper vocabulary of " +
                               std::to_string(n_vocab) + " tokens (that leaves " + std::to_string(languages) +
                               " language tokens; expected 1 to " + std::to_string(kLanguages.size()) + ")");
    t.languages_ = static_cast<int32_t>(languages);
    t.eot_ = static_cast<int32_t>(ranks);
    t.n_vocab_ = static_cast<int32_t>(n_vocab);
    for (int32_t id = 0; id < t.eot_; ++id)
      if (t.tokens_[static_cast<size_t>(id)] == " ") t.blank_ = id;
    return t;
  }

  int32_t n_vocab() const { return n_vocab_; }
  int32_t eot() const { return eot_; }
  int32_t sot() const { return eot_ + 1; }
  int32_t translate() const { return eot_ + 2 + languages_; }
  int32_t transcribe() const { return translate() + 1; }
  int32_t no_timestamps() const { return translate() + 5; }
  // The token of " " (suppressed at the first step, as Whisper does), or -1.
  int32_t blank() const { return blank_; }
  // An English-only model (.en) has no language or task tokens in its start sequence.
  bool multilingual() const { return n_vocab_ >= 51865; }

  int32_t language_token(const std::string& code) const {
    for (int32_t i = 0; i < languages_; ++i)
      if (code == kLanguages[static_cast<size_t>(i)]) return sot() + 1 + i;
    throw std::runtime_error("language '" + code + "' is not one of this model's " + std::to_string(languages_) +
                             " languages (codes such as en, de, fr, zh)");
  }

  // The tokens that start every transcription window.
  std::vector<int32_t> start_sequence(const std::string& language) const {
    if (!multilingual()) {
      if (language != "en")
        throw std::runtime_error("language '" + language + "': this model is English-only (its vocabulary has " +
                                 std::to_string(n_vocab_) + " tokens, fewer than a multilingual one's 51865)");
      return {sot(), no_timestamps()};
    }
    return {sot(), language_token(language), transcribe(), no_timestamps()};
  }

  // The text of ordinary tokens (specials skipped), invalid UTF-8 replaced.
  std::string decode(const std::vector<int32_t>& ids) const {
    std::string bytes;
    for (int32_t id : ids)
      if (id >= 0 && id < eot_) bytes += tokens_[static_cast<size_t>(id)];
    return tessera_plugins::gpt2::sanitize_utf8(bytes);
  }

 private:
  static bool base64_decode(const std::string& in, std::string& out) {
    auto value = [](char c) -> int {
      if (c >= 'A' && c <= 'Z') return c - 'A';
      if (c >= 'a' && c <= 'z') return c - 'a' + 26;
      if (c >= '0' && c <= '9') return c - '0' + 52;
      if (c == '+') return 62;
      if (c == '/') return 63;
      return -1;
    };
    if (in.empty() || in.size() % 4) return false;
    out.clear();
    for (size_t i = 0; i < in.size(); i += 4) {
      int v[4];
      int pad = 0;
      for (int k = 0; k < 4; ++k) {
        const char c = in[i + static_cast<size_t>(k)];
        if (c == '=' && i + 4 == in.size() && k >= 2) {
          v[k] = 0;
          ++pad;
        } else if (pad || (v[k] = value(c)) < 0) {
          return false;
        }
      }
      const uint32_t n = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                         (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
      out += static_cast<char>((n >> 16) & 0xFF);
      if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
      if (pad < 1) out += static_cast<char>(n & 0xFF);
    }
    return true;
  }

  std::vector<std::string> tokens_;
  int32_t languages_ = 0, eot_ = 0, n_vocab_ = 0, blank_ = -1;
};

}  // namespace tessera_plugins::whisper
