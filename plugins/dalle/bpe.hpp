// The DALL-E Mini/Mega text tokenizer exactly as min-dalle runs it (../shared/specs/dalle-mini.md §1.7):
// lower-case, drop non-ASCII, split on single spaces, per word ['Ġ'] + characters merged by rank (the first
// occurrence of the lowest-ranked pair each round), <s> ... </s>, unknown symbols as <unk>.
// emoji.demojize is not applied: emoji are dropped with the other non-ASCII characters.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tessera/json.hpp"

namespace tessera_plugins::dalle {

class TextTokenizer {
 public:
  static constexpr int32_t kBos = 0, kPad = 1, kEos = 2, kUnk = 3;

  TextTokenizer(const std::string& vocab_path, const std::string& merges_path) {
    std::ifstream v(vocab_path);
    if (!v) throw std::runtime_error(vocab_path + ": cannot read the vocabulary");
    std::stringstream vs;
    vs << v.rdbuf();
    try {
      const tessera::json::Value vocab = tessera::json::parse(vs.str());  // kept: the loop reads into it
      for (const auto& [token, id] : vocab.members()) ids_[token] = static_cast<int32_t>(id.integer());
    } catch (const std::exception& e) {
      throw std::runtime_error(vocab_path + ": " + e.what());
    }
    std::ifstream m(merges_path);
    if (!m) throw std::runtime_error(merges_path + ": cannot read the merges");
    std::string line;
    int rank = 0, line_no = 0;
    while (std::getline(m, line)) {
      ++line_no;
      if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const size_t sp = line.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
        throw std::runtime_error(merges_path + ":" + std::to_string(line_no) + ": expected two symbols separated by one space");
      ranks_.emplace(line.substr(0, sp) + '\x01' + line.substr(sp + 1), rank++);
    }
  }

  // [<s>] + ids + [</s>], untruncated.
  std::vector<int32_t> tokenize(const std::string& text) const {
    std::vector<int32_t> out{kBos};
    const std::string clean = normalize(text);
    size_t start = 0;
    while (start <= clean.size()) {
      const size_t end = std::min(clean.find(' ', start), clean.size());
      if (end > start)
        for (const std::string& piece : merge(clean.substr(start, end - start))) {
          auto it = ids_.find(piece);
          out.push_back(it == ids_.end() ? kUnk : it->second);
        }
      start = end + 1;
    }
    out.push_back(kEos);
    return out;
  }

  // min-dalle's two encoder rows of `length` ids: row 0 the empty prompt [<s>, last], row 1 the prompt,
  // truncated to `length`, padded with <pad>.
  std::vector<int32_t> encoder_rows(const std::string& text, int64_t length) const {
    std::vector<int32_t> t = tokenize(text);
    if (static_cast<int64_t>(t.size()) > length) t.resize(static_cast<size_t>(length));
    std::vector<int32_t> rows(static_cast<size_t>(2 * length), kPad);
    rows[0] = t.front();
    rows[1] = t.back();
    for (size_t i = 0; i < t.size(); ++i) rows[static_cast<size_t>(length) + i] = t[i];
    return rows;
  }

  size_t vocab_size() const { return ids_.size(); }
  size_t merge_count() const { return ranks_.size(); }

  // Python's str.lower() then ASCII only: the two non-ASCII letters whose lower case is ASCII are kept.
  static std::string normalize(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x80) {
        out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        ++i;
        continue;
      }
      const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      const std::string cp = text.substr(i, n);
      if (cp == "\xE2\x84\xAA") out += 'k';       // KELVIN SIGN -> k
      else if (cp == "\xC4\xB0") out += 'i';      // LATIN CAPITAL I WITH DOT ABOVE -> i + U+0307 (dropped)
      i += n;
    }
    return out;
  }

 private:
  std::vector<std::string> merge(const std::string& word) const {
    std::vector<std::string> parts{"\xC4\xA0"};  // Ġ, U+0120: the space before the word
    for (char ch : word) parts.emplace_back(1, ch);
    while (parts.size() > 1) {
      int best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = ranks_.find(parts[i] + '\x01' + parts[i + 1]);
        if (it != ranks_.end() && (best < 0 || it->second < best)) {
          best = it->second;
          at = i;
        }
      }
      if (best < 0) break;
      parts[at] += parts[at + 1];
      parts.erase(parts.begin() + static_cast<long>(at) + 1);
    }
    return parts;
  }

  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int> ranks_;
};

}  // namespace tessera_plugins::dalle
