// GPT-2's byte-level BPE tokenizer (OpenAI's encoder.py, as tiktoken's "gpt2" and Hugging Face's GPT2Tokenizer
// run it), header-only:
//   1. Text is UTF-8; invalid UTF-8 is replaced by U+FFFD, one per maximal ill-formed subpart (Unicode §3.9,
//      as Python's bytes.decode(errors="replace") and the WHATWG decoder do).
//   2. Pre-tokenization by the pattern
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      matched by hand over code points, with \p{L}, \p{N} and \s (Unicode White_Space, as the `regex` module,
//      tiktoken and Rust's regex read it) from unicode_tables.inc (tools/gen_unicode_tables.py).
//   3. Each piece's UTF-8 bytes as byte symbols (bytes_to_unicode), merged by rank: each round takes the
//      lowest-ranked adjacent pair and merges all its occurrences left to right, as encoder.py's bpe() does.
//      Results are cached per piece.
//   4. Special tokens (<|endoftext|>, and a tokenizer.json's added tokens) are recognised in the text only
//      when asked: the text is split at them and each part encoded alone (tiktoken's allowed_special="all").
//      Otherwise "<|endoftext|>" is ordinary text, as in encoder.py.
// Vocabularies: vocab.json + merges.txt (Hugging Face; OpenAI's encoder.json + vocab.bpe are the same
// formats), or a Hugging Face tokenizer.json (model.vocab, model.merges as "a b" strings or [a, b] pairs,
// added_tokens). Decoding maps tokens back to bytes; StreamDecoder emits only complete UTF-8 as ids arrive.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tessera/json.hpp"

namespace tessera_plugins::gpt2 {

// ---- Unicode --------------------------------------------------------------------------------------------------

struct UnicodeRange {
  uint32_t first, last;
  uint8_t cls;
};
#include "unicode_tables.inc"

enum CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3 };

// The class of a code point: letter (\p{L}), number (\p{N}), space (\s) or other.
inline CharClass char_class(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return kLetter;
    if (cp >= '0' && cp <= '9') return kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return kSpace;
    return kOther;
  }
  const UnicodeRange* end = kUnicodeRanges + sizeof kUnicodeRanges / sizeof kUnicodeRanges[0];
  const UnicodeRange* r = std::upper_bound(kUnicodeRanges, end, cp, [](uint32_t c, const UnicodeRange& x) { return c < x.first; });
  if (r == kUnicodeRanges) return kOther;
  --r;
  return cp <= r->last ? static_cast<CharClass>(r->cls) : kOther;
}

using tessera::json::append_utf8;  // the JSON reader's encoder

enum class Utf8 { ok, invalid, incomplete };

// The code point at s[i]. ok: `cp` and its length. invalid: `len` is the maximal ill-formed subpart (>= 1
// bytes), to be replaced by one U+FFFD. incomplete: s ends inside a well-formed prefix of `len` bytes.
inline Utf8 next_code_point(std::string_view s, size_t i, uint32_t& cp, size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  len = 1;
  if (b0 < 0x80) {
    cp = b0;
    return Utf8::ok;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) need = 1, cp = b0 & 0x1Fu;
  else if (b0 >= 0xE0 && b0 <= 0xEF) need = 2, cp = b0 & 0x0Fu, lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
  else if (b0 >= 0xF0 && b0 <= 0xF4) need = 3, cp = b0 & 0x07u, lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
  else return Utf8::invalid;
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return Utf8::incomplete;
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return Utf8::invalid;
    cp = (cp << 6) | (b & 0x3Fu);
    len = k + 1;
  }
  return Utf8::ok;
}

// `s` with every ill-formed subpart (and a truncated sequence at the end) replaced by U+FFFD.
inline std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t len;
    if (next_code_point(s, i, cp, len) == Utf8::ok) out.append(s.substr(i, len));
    else out += "\xEF\xBF\xBD";
    i += len;
  }
  return out;
}

inline bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    uint32_t cp;
    size_t len;
    if (next_code_point(s, i, cp, len) != Utf8::ok) return false;
    i += len;
  }
  return true;
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100..U+0143
// in byte order.
inline const std::array<uint32_t, 256>& byte_to_unicode() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

// ---- pre-tokenization -------------------------------------------------------------------------------------------

// Calls emit(begin, end) with the byte offsets of each piece of `text`, in order; the pieces cover it. (Ill-formed
// UTF-8, which encode() never passes, counts as one "other" character per maximal ill-formed subpart.)
template <class Emit>
void pretokenize(std::string_view text, Emit&& emit) {
  const size_t n = text.size();
  struct Char {
    uint32_t cp;
    size_t len;
    CharClass cls;
  };
  auto at = [&](size_t i) {
    Char c;
    if (next_code_point(text, i, c.cp, c.len) != Utf8::ok) c.cp = 0xFFFD;
    c.cls = char_class(c.cp);
    return c;
  };
  // The end of the run of characters of class k that starts at byte i.
  auto run = [&](size_t i, CharClass k) {
    while (i < n) {
      const Char c = at(i);
      if (c.cls != k) break;
      i += c.len;
    }
    return i;
  };
  auto ascii = [&](size_t i, char c) { return i < n && text[i] == c; };
  size_t i = 0;
  while (i < n) {
    size_t j;
    const Char c = at(i);
    if (c.cp == '\'' && (ascii(i + 1, 's') || ascii(i + 1, 't') || ascii(i + 1, 'm') || ascii(i + 1, 'd'))) {
      j = i + 2;  // 's 't 'm 'd
    } else if (c.cp == '\'' && ((ascii(i + 1, 'r') && ascii(i + 2, 'e')) || (ascii(i + 1, 'v') && ascii(i + 2, 'e')) ||
                                (ascii(i + 1, 'l') && ascii(i + 2, 'l')))) {
      j = i + 3;  // 're 've 'll
    } else if (c.cp == ' ' && i + 1 < n && at(i + 1).cls != kSpace) {
      // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' with the space
      const Char d = at(i + 1);
      j = run(i + 1 + d.len, d.cls);
    } else if (c.cls != kSpace) {
      j = run(i + c.len, c.cls);
    } else {
      // '\s+(?!\S)': the whole run at the end of the text, else all but its last character; '\s+': a single
      // space character before a non-space.
      size_t last = i, end = i + c.len;
      while (end < n) {
        const Char d = at(end);
        if (d.cls != kSpace) break;
        last = end;
        end += d.len;
      }
      j = end == n || last == i ? end : last;
    }
    emit(i, j);
    i = j;
  }
}

inline std::vector<std::string> pretokenize(std::string_view text) {
  std::vector<std::string> pieces;
  pretokenize(text, [&](size_t b, size_t e) { pieces.emplace_back(text.substr(b, e - b)); });
  return pieces;
}

// ---- the tokenizer ---------------------------------------------------------------------------------------------

class Tokenizer {
 public:
  static constexpr const char* kEndOfText = "<|endoftext|>";

  // `path`: a directory holding vocab.json + merges.txt, else tokenizer.json, else encoder.json + vocab.bpe; or one
  // of those files (vocab.json or merges.txt: the other is read from beside it; any other file as tokenizer.json).
  static Tokenizer load(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p(path);
    if (!fs::exists(p, ec)) throw std::runtime_error(path + ": no such file or directory");
    if (fs::is_directory(p, ec)) {
      if (fs::exists(p / "vocab.json") || fs::exists(p / "merges.txt"))
        return from_files((p / "vocab.json").string(), (p / "merges.txt").string());
      if (fs::exists(p / "tokenizer.json")) return from_tokenizer_json((p / "tokenizer.json").string());
      if (fs::exists(p / "encoder.json") || fs::exists(p / "vocab.bpe"))
        return from_files((p / "encoder.json").string(), (p / "vocab.bpe").string());
      throw std::runtime_error(path + ": holds neither vocab.json + merges.txt nor tokenizer.json");
    }
    const std::string name = p.filename().string();
    if (name == "vocab.json") return from_files(path, (p.parent_path() / "merges.txt").string());
    if (name == "merges.txt") return from_files((p.parent_path() / "vocab.json").string(), path);
    if (name == "encoder.json") return from_files(path, (p.parent_path() / "vocab.bpe").string());
    if (name == "vocab.bpe") return from_files((p.parent_path() / "encoder.json").string(), path);
    return from_tokenizer_json(path);
  }

  static Tokenizer from_files(const std::string& vocab_path, const std::string& merges_path) {
    Tokenizer t;
    const std::string vocab_text = read_file(vocab_path);
    const std::string merges_text = read_file(merges_path);
    try {
      const tessera::json::Value vocab = tessera::json::parse(vocab_text);
      t.set_vocab(vocab);
    } catch (const std::exception& e) {
      throw std::runtime_error(vocab_path + ": " + e.what());
    }
    t.check_byte_symbols(vocab_path);
    std::istringstream lines(merges_text);
    std::string line;
    int line_no = 0, rank = 0;
    while (std::getline(lines, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line_no == 1 && line.rfind("#version", 0) == 0) continue;
      if (line.empty()) continue;
      const std::string where = merges_path + ":" + std::to_string(line_no);
      const size_t sp = line.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
        throw std::runtime_error(where + ": expected two symbols separated by one space, found \"" + line + "\"");
      t.add_merge(line.substr(0, sp), line.substr(sp + 1), rank++, where);
    }
    t.finish();
    return t;
  }

  static Tokenizer from_tokenizer_json(const std::string& path) {
    Tokenizer t;
    const std::string text = read_file(path);
    try {
      const tessera::json::Value root = tessera::json::parse(text);
      const tessera::json::Value& model = root.at("model");
      if (model.has("type") && model.at("type").string() != "BPE")
        throw std::runtime_error("model.type is \"" + model.at("type").string() + "\", expected \"BPE\"");
      t.set_vocab(model.at("vocab"));
      t.check_byte_symbols(path);
      const auto& merges = model.at("merges").array();
      for (size_t i = 0; i < merges.size(); ++i) {
        const tessera::json::Value& m = merges[i];
        const std::string where = path + ": model.merges[" + std::to_string(i) + "]";
        std::string a, b;
        if (m.is(tessera::json::Kind::string)) {
          const std::string& s = m.string();
          const size_t sp = s.find(' ');
          if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
            throw std::runtime_error(where + ": expected two symbols separated by one space, found \"" + s + "\"");
          a = s.substr(0, sp);
          b = s.substr(sp + 1);
        } else if (m.is(tessera::json::Kind::array) && m.size() == 2 && m.at(0).is(tessera::json::Kind::string) &&
                   m.at(1).is(tessera::json::Kind::string) && !m.at(0).string().empty() && !m.at(1).string().empty()) {
          a = m.at(0).string();
          b = m.at(1).string();
        } else {
          throw std::runtime_error(where + ": expected \"a b\" or [\"a\", \"b\"]");
        }
        t.add_merge(a, b, static_cast<int32_t>(i), where);
      }
      if (const tessera::json::Value* added = root.find("added_tokens"); added && !added->is(tessera::json::Kind::null))
        for (const tessera::json::Value& a : added->array()) {
          const int64_t id = a.at("id").integer();
          if (id < 0 || id > INT32_MAX) throw std::runtime_error(a.path() + ": id " + std::to_string(id) + " is out of range");
          t.add_special(a.at("content").string(), static_cast<int32_t>(id));
        }
    } catch (const std::exception& e) {
      const std::string what = e.what();
      throw std::runtime_error(what.rfind(path, 0) == 0 ? what : path + ": " + what);
    }
    t.finish();
    return t;
  }

  // Token ids of `text` (invalid UTF-8 replaced by U+FFFD). allow_special: special tokens written in the text
  // become their ids; otherwise they are encoded as text.
  std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const {
    std::vector<int32_t> out;
    std::string clean;
    if (!is_valid_utf8(text)) {
      clean = sanitize_utf8(text);
      text = clean;
    }
    if (!allow_special || specials_.empty()) {
      encode_ordinary(text, out);
      return out;
    }
    size_t start = 0;
    while (start <= text.size()) {
      // The first special token in text[start:], the longest at that position.
      size_t at = std::string_view::npos, len = 0;
      int32_t id = -1;
      for (const auto& [content, sid] : specials_) {
        const size_t p = text.find(content, start);
        if (p != std::string_view::npos && (p < at || (p == at && content.size() > len))) at = p, len = content.size(), id = sid;
      }
      encode_ordinary(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start), out);
      if (at == std::string_view::npos) break;
      out.push_back(id);
      start = at + len;
    }
    return out;
  }

  // The bytes of a token (special tokens: their text). Throws for an id outside the vocabulary.
  const std::string& token_bytes(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= bytes_.size() || !known_[static_cast<size_t>(id)])
      throw std::runtime_error("token id " + std::to_string(id) + " is not in the vocabulary");
    return bytes_[static_cast<size_t>(id)];
  }
  // The bytes of `ids`, concatenated: not necessarily UTF-8.
  std::string decode_bytes(const std::vector<int32_t>& ids) const {
    std::string out;
    for (int32_t id : ids) out += token_bytes(id);
    return out;
  }
  // The text of `ids`: their bytes as UTF-8, ill-formed parts replaced by U+FFFD.
  std::string decode(const std::vector<int32_t>& ids) const { return sanitize_utf8(decode_bytes(ids)); }

  // The id of a vocabulary or special token, or -1.
  int32_t token_id(const std::string& token) const {
    if (auto it = specials_.find(token); it != specials_.end()) return it->second;
    auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
  }
  int32_t eos_id() const { return token_id(kEndOfText); }
  bool is_special(int32_t id) const {
    for (const auto& [content, sid] : specials_)
      if (sid == id) return true;
    return false;
  }
  size_t vocab_size() const { return vocab_.size(); }
  size_t merge_count() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank, id;
  };
  struct PieceHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, PieceHash, std::equal_to<>> pieces;
  };
  static constexpr size_t kCacheEntries = 1 << 17, kCachedPieceBytes = 256;

  Tokenizer() : cache_(std::make_unique<Cache>()) {}

  static std::string read_file(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw std::runtime_error(path + ": no such file or directory");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot be read");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
  static std::string quoted(const std::string& s) { return "\"" + s + "\""; }

  void set_vocab(const tessera::json::Value& vocab) {
    for (const auto& [token, value] : vocab.members()) {
      const int64_t id = value.integer();
      if (id < 0 || id > INT32_MAX) throw std::runtime_error(value.path() + ": id " + std::to_string(id) + " is out of range");
      vocab_[token] = static_cast<int32_t>(id);
    }
  }
  // Every byte's symbol must be a token: the vocabulary is byte-level.
  void check_byte_symbols(const std::string& path) {
    for (uint32_t b = 0; b < 256; ++b) {
      std::string sym;
      append_utf8(sym, byte_to_unicode()[b]);
      auto it = vocab_.find(sym);
      if (it == vocab_.end()) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", b);
        throw std::runtime_error(path + ": the symbol " + quoted(sym) + " of byte " + hex +
                                 " is not in the vocabulary: not a byte-level BPE vocabulary");
      }
      byte_ids_[b] = it->second;
    }
  }
  void add_merge(const std::string& a, const std::string& b, int32_t rank, const std::string& where) {
    auto id_of = [&](const std::string& s) {
      auto it = vocab_.find(s);
      if (it == vocab_.end()) throw std::runtime_error(where + ": " + quoted(s) + " is not in the vocabulary");
      return it->second;
    };
    const int32_t ia = id_of(a), ib = id_of(b), merged = id_of(a + b);
    merges_.insert_or_assign(key(ia, ib), Merge{rank, merged});  // a repeated pair keeps its last rank, as encoder.py
  }
  void add_special(const std::string& content, int32_t id) {
    if (content.empty()) return;
    specials_[content] = id;
    extra_[id] = content;
  }
  void finish() {
    if (auto it = vocab_.find(kEndOfText); it != vocab_.end() && !specials_.count(kEndOfText)) specials_[kEndOfText] = it->second;
    int32_t max_id = -1;
    for (const auto& [token, id] : vocab_) max_id = std::max(max_id, id);
    for (const auto& [id, content] : extra_) max_id = std::max(max_id, id);
    bytes_.assign(static_cast<size_t>(max_id + 1), std::string());
    known_.assign(static_cast<size_t>(max_id + 1), false);
    std::unordered_map<uint32_t, char> to_byte;
    for (uint32_t b = 0; b < 256; ++b) to_byte[byte_to_unicode()[b]] = static_cast<char>(b);
    for (const auto& [token, id] : vocab_) {
      std::string& out = bytes_[static_cast<size_t>(id)];
      known_[static_cast<size_t>(id)] = true;
      if (specials_.count(token)) {
        out = token;
        continue;
      }
      for (size_t i = 0; i < token.size();) {
        uint32_t cp;
        size_t len;
        if (next_code_point(token, i, cp, len) == Utf8::ok) {
          auto it = to_byte.find(cp);
          if (it != to_byte.end()) out += it->second;
          else out.append(token, i, len);  // not a byte symbol: the character itself
        } else {
          out.append(token, i, len);
        }
        i += len;
      }
    }
    for (const auto& [id, content] : extra_) {
      bytes_[static_cast<size_t>(id)] = content;
      known_[static_cast<size_t>(id)] = true;
    }
  }

  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
    pretokenize(text, [&](size_t b, size_t e) { encode_piece(text.substr(b, e - b), out); });
  }

  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    if (piece.size() == 1) {
      out.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
      return;
    }
    const bool cacheable = piece.size() <= kCachedPieceBytes;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_->mutex);
      auto it = cache_->pieces.find(piece);
      if (it != cache_->pieces.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> ids = bpe(piece);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_->mutex);
      if (cache_->pieces.size() >= kCacheEntries) cache_->pieces.clear();
      cache_->pieces.emplace(std::string(piece), std::move(ids));
    }
  }

  // Rank-ordered merging of one piece's byte symbols. Each round is the lowest rank among adjacent pairs; all of
  // its occurrences merge, left to right, before pairs made in the round are considered (encoder.py's bpe()).
  std::vector<int32_t> bpe(std::string_view piece) const {
    const size_t n = piece.size();
    struct Sym {
      int32_t id, prev, next;  // prev/next: neighbours in the list, -1 at the ends
    };
    struct Pair {
      int32_t rank, pos, left, right, merged;
      bool operator>(const Pair& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::vector<Sym> syms(n);
    for (size_t i = 0; i < n; ++i)
      syms[i] = {byte_ids_[static_cast<unsigned char>(piece[i])], static_cast<int32_t>(i) - 1,
                 i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
    std::vector<Pair> heap, made;
    auto candidate = [&](int32_t pos, std::vector<Pair>& into) {
      const int32_t next = syms[static_cast<size_t>(pos)].next;
      if (next < 0) return;
      const int32_t l = syms[static_cast<size_t>(pos)].id, r = syms[static_cast<size_t>(next)].id;
      auto it = merges_.find(key(l, r));
      if (it != merges_.end()) into.push_back({it->second.rank, pos, l, r, it->second.id});
    };
    for (size_t i = 0; i + 1 < n; ++i) candidate(static_cast<int32_t>(i), heap);
    const auto cmp = std::greater<Pair>();
    std::make_heap(heap.begin(), heap.end(), cmp);
    while (!heap.empty()) {
      const int32_t rank = heap.front().rank;
      made.clear();
      while (!heap.empty() && heap.front().rank == rank) {
        std::pop_heap(heap.begin(), heap.end(), cmp);
        const Pair p = heap.back();
        heap.pop_back();
        Sym& s = syms[static_cast<size_t>(p.pos)];
        if (s.id != p.left || s.next < 0 || syms[static_cast<size_t>(s.next)].id != p.right) continue;  // stale
        const int32_t gone = s.next;
        s.id = p.merged;
        s.next = syms[static_cast<size_t>(gone)].next;
        if (s.next >= 0) syms[static_cast<size_t>(s.next)].prev = p.pos;
        syms[static_cast<size_t>(gone)].id = -1;
        if (s.prev >= 0) candidate(s.prev, made);
        candidate(p.pos, made);
      }
      for (const Pair& m : made) {
        heap.push_back(m);
        std::push_heap(heap.begin(), heap.end(), cmp);
      }
    }
    std::vector<int32_t> ids;
    for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) ids.push_back(syms[static_cast<size_t>(i)].id);
    return ids;
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<std::string, int32_t> specials_;
  std::unordered_map<int32_t, std::string> extra_;  // added tokens, by id
  std::unordered_map<uint64_t, Merge> merges_;      // (left id, right id) -> rank, merged id
  std::array<int32_t, 256> byte_ids_{};
  std::vector<std::string> bytes_;  // id -> bytes
  std::vector<bool> known_;
  std::unique_ptr<Cache> cache_;
};

// Decodes ids as they come (generation): push() returns the text that is complete so far, holding back a UTF-8
// sequence split across tokens until its last byte arrives; bytes that can never become valid come out as
// U+FFFD at once. finish() returns what is held back (a truncated sequence as U+FFFD). The concatenation of all
// pieces equals tokenizer.decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

  std::string push(int32_t id) {
    pending_ += tokenizer_.token_bytes(id);
    std::string out;
    size_t i = 0;
    while (i < pending_.size()) {
      uint32_t cp;
      size_t len;
      const Utf8 r = next_code_point(pending_, i, cp, len);
      if (r == Utf8::incomplete) break;
      if (r == Utf8::ok) out.append(pending_, i, len);
      else out += "\xEF\xBF\xBD";
      i += len;
    }
    pending_.erase(0, i);
    return out;
  }
  std::string finish() {
    std::string out = sanitize_utf8(pending_);
    pending_.clear();
    return out;
  }
  // Bytes held back: the start of a multi-byte character.
  size_t pending() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
};

}  // namespace tessera_plugins::gpt2
