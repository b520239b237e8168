// A small JSON reader, header-only, for model configs and safetensors headers. Plugins and the host share
// it so that both read files the same way. Strict RFC 8259: no comments, no trailing commas; numbers kept
// as double (and as the literal text, for integers beyond 2^53).
//
//   tessera::json::Value cfg = tessera::json::parse(text);          // throws json::ParseError
//   tessera::json::Value cfg = tessera::json::parse_file(path);     // the same for a file, errors name it
//   int64_t layers = cfg.at("encoder_layers").integer();             // throws json::TypeError naming the key
//   double eps = cfg.get("layer_norm_eps", 1e-5);
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::json {

class ParseError : public std::runtime_error {
 public:
  ParseError(const std::string& what, size_t offset) : std::runtime_error(what), offset_(offset) {}
  size_t offset() const { return offset_; }

 private:
  size_t offset_;
};

class TypeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Appends code point `cp` encoded as UTF-8 (what a "\uXXXX" escape stands for; tokenizers use it too).
inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

enum class Kind { null, boolean, number, string, array, object };

inline const char* kind_name(Kind k) {
  switch (k) {
    case Kind::null: return "null";
    case Kind::boolean: return "a boolean";
    case Kind::number: return "a number";
    case Kind::string: return "a string";
    case Kind::array: return "an array";
    case Kind::object: return "an object";
  }
  return "?";
}

class Value {
 public:
  Value() = default;
  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  // `path` is how the value was reached ("decoder.layers"), for messages.
  const std::string& path() const { return path_; }

  bool boolean() const { return expect(Kind::boolean).b_; }
  double number() const { return expect(Kind::number).n_; }
  int64_t integer() const {
    const double v = number();
    if (v != std::floor(v) || std::fabs(v) > 9007199254740992.0)
      throw TypeError(where() + "expected an integer, found " + text_);
    return static_cast<int64_t>(v);
  }
  const std::string& string() const { return expect(Kind::string).s_; }
  const std::vector<Value>& array() const { return expect(Kind::array).a_; }
  // Object members in file order.
  const std::vector<std::pair<std::string, Value>>& members() const { return expect(Kind::object).o_; }

  bool has(std::string_view key) const { return find(key) != nullptr; }
  const Value* find(std::string_view key) const {
    if (kind_ != Kind::object) return nullptr;
    for (const auto& [k, v] : o_)
      if (k == key) return &v;
    return nullptr;
  }
  const Value& at(std::string_view key) const {
    expect(Kind::object);
    if (const Value* v = find(key)) return *v;
    throw TypeError(where() + "missing key \"" + std::string(key) + "\"");
  }
  const Value& at(size_t i) const {
    const auto& a = array();
    if (i >= a.size()) throw TypeError(where() + "index " + std::to_string(i) + " is out of range");
    return a[i];
  }
  size_t size() const { return kind_ == Kind::array ? a_.size() : kind_ == Kind::object ? o_.size() : 0; }

  // The member `key` or a default when it is absent (a present member of the wrong kind still throws).
  double get(std::string_view key, double fallback) const {
    const Value* v = find(key);
    return v ? v->number() : fallback;
  }
  int64_t get(std::string_view key, int64_t fallback) const {
    const Value* v = find(key);
    return v ? v->integer() : fallback;
  }
  int64_t get(std::string_view key, int fallback) const { return get(key, static_cast<int64_t>(fallback)); }
  bool get(std::string_view key, bool fallback) const {
    const Value* v = find(key);
    return v ? v->boolean() : fallback;
  }
  std::string get(std::string_view key, const char* fallback) const {
    const Value* v = find(key);
    return v ? v->string() : std::string(fallback);
  }

 private:
  friend class Parser;
  std::string where() const { return path_.empty() ? std::string() : path_ + ": "; }
  const Value& expect(Kind k) const {
    if (kind_ != k) throw TypeError(where() + "expected " + kind_name(k) + ", found " + kind_name(kind_));
    return *this;
  }
  Kind kind_ = Kind::null;
  bool b_ = false;
  double n_ = 0;
  std::string text_;  // a number's literal
  std::string s_;
  std::vector<Value> a_;
  std::vector<std::pair<std::string, Value>> o_;
  std::string path_;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : t_(text) {}

  Value document() {
    Value v = value("", 0);
    skip_space();
    if (i_ != t_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ParseError("JSON error at byte " + std::to_string(i_) + ": " + what, i_);
  }
  void skip_space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    skip_space();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void need(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  bool literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Value value(const std::string& path, int depth) {
    if (depth > 64) fail("nesting deeper than 64 levels");
    skip_space();
    if (i_ >= t_.size()) fail("unexpected end of text");
    Value v;
    v.path_ = path;
    const char c = t_[i_];
    if (c == '{') {
      ++i_;
      v.kind_ = Kind::object;
      if (eat('}')) return v;
      do {
        skip_space();
        if (i_ >= t_.size() || t_[i_] != '"') fail("expected a string key");
        std::string key = string();
        need(':');
        v.o_.emplace_back(key, value(path.empty() ? key : path + "." + key, depth + 1));
      } while (eat(','));
      need('}');
    } else if (c == '[') {
      ++i_;
      v.kind_ = Kind::array;
      if (eat(']')) return v;
      do {
        v.a_.push_back(value(path + "[" + std::to_string(v.a_.size()) + "]", depth + 1));
      } while (eat(','));
      need(']');
    } else if (c == '"') {
      v.kind_ = Kind::string;
      v.s_ = string();
    } else if (literal("true")) {
      v.kind_ = Kind::boolean;
      v.b_ = true;
    } else if (literal("false")) {
      v.kind_ = Kind::boolean;
    } else if (literal("null")) {
      v.kind_ = Kind::null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t start = i_;
      if (t_[i_] == '-') ++i_;
      auto digits = [&] {
        const size_t d = i_;
        while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') ++i_;
        if (i_ == d) fail("malformed number");
      };
      digits();
      if (i_ < t_.size() && t_[i_] == '.') {
        ++i_;
        digits();
      }
      if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
        ++i_;
        if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
        digits();
      }
      v.kind_ = Kind::number;
      v.text_ = std::string(t_.substr(start, i_ - start));
      v.n_ = std::strtod(v.text_.c_str(), nullptr);
    } else {
      fail(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  uint32_t hex4() {
    if (i_ + 4 > t_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = t_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }
  std::string string() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= t_.size()) fail("unterminated string");
      const char c = t_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= t_.size()) fail("unterminated escape");
      const char e = t_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (!literal("\\u")) fail("unpaired surrogate");
            const uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            fail("unpaired surrogate");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          fail(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  std::string_view t_;
  size_t i_ = 0;
};

inline Value parse(std::string_view text) { return Parser(text).document(); }

// Reads and parses the file at `path`; every error starts with the path.
inline Value parse_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ParseError(path + ": cannot be read", 0);
  std::stringstream text;
  text << f.rdbuf();
  try {
    return parse(text.str());
  } catch (const ParseError& e) {
    throw ParseError(path + ": " + e.what(), e.offset());
  }
}

}  // namespace tessera::json
