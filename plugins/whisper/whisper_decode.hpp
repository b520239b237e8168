// Decoding one 30 s window, with the rules tools/whisper/model.py documents and its reference implements:
//   - the window starts with the tokenizer's start sequence (sot, language, transcribe, notimestamps; .en
//     models: sot, notimestamps);
//   - every step, every token after <|endoftext|> (the other specials, timestamps included) is suppressed;
//     at the first step <|endoftext|> and " " are suppressed too (no empty transcripts);
//   - greedy: the first index of the maximum, until <|endoftext|>, max_tokens or the context's end;
//   - beam search: each live beam proposes its beam_size + 1 likeliest tokens (log-softmax in double, ties
//     to the lower id); candidates sorted by summed log-probability (stable); ones ending in <|endoftext|>
//     are finished, the best beam_size others live on. It stops once beam_size are finished (or at
//     max_tokens; with none finished the live beams count), and picks the best score / token count.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "gather_rows_spirv.h"
#include "whisper/whisper_model.hpp"
#include "whisper/whisper_tokenizer.hpp"

namespace tessera_plugins::whisper {

struct Hypothesis {
  std::vector<int32_t> tokens;  // generated, <|endoftext|> excluded
  double score = 0;             // summed log-probability (beam search)
};

class WindowDecoder {
 public:
  WindowDecoder(const sdk::Host& host, const WhisperModel& model, const WhisperTokenizer& tokenizer)
      : host_(host),
        model_(model),
        tok_(tokenizer),
        gather_(host, "whisper.gather_rows", gather_rows_spirv, sizeof gather_rows_spirv,
                {TESSERA_BINDING_TEXEL, TESSERA_BINDING_TEXEL, TESSERA_BINDING_STORAGE}, sizeof(GatherPush)) {}

  // `cross`: the window's cross keys and values (WhisperModel::cross_kv). `beam_size` <= 1: greedy.
  // `keep_going` is asked after each step (progress and cancellation); returning false stops early.
  Hypothesis decode(const sdk::Tensor& cross, const std::vector<int32_t>& start, int64_t max_tokens, int64_t beam_size,
                    const std::function<bool(int64_t step)>& keep_going) const {
    const int64_t P = static_cast<int64_t>(start.size());
    const int64_t budget = std::min<int64_t>(max_tokens, model_.config().n_text_ctx - P);
    if (budget < 1) return {};
    return beam_size <= 1 ? greedy(cross, start, budget, keep_going) : beam(cross, start, budget, beam_size, keep_going);
  }

 private:
  struct GatherPush {
    int32_t rows, n_ctx, C, positions, src_offset, source_offset, dst_offset;
  };

  // The suppression rules applied to one row of logits, in place.
  void suppress(float* logits, bool first) const {
    const float off = -std::numeric_limits<float>::infinity();
    for (int32_t i = tok_.eot() + 1; i < tok_.n_vocab(); ++i) logits[i] = off;
    if (first) {
      logits[tok_.eot()] = off;
      if (tok_.blank() >= 0) logits[tok_.blank()] = off;
    }
  }

  static int32_t argmax(const float* v, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
      if (v[i] > v[best]) best = i;
    return static_cast<int32_t>(best);
  }

  Hypothesis greedy(const sdk::Tensor& cross, const std::vector<int32_t>& start, int64_t budget,
                    const std::function<bool(int64_t)>& keep_going) const {
    const int64_t P = static_cast<int64_t>(start.size()), V = tok_.n_vocab(), C = model_.width();
    DecoderCache cache = model_.new_cache(1, P + budget);
    DecoderScratch prompt = model_.new_scratch(1, P), step = model_.new_scratch(1, 1);
    sdk::Tensor ids(host_, TESSERA_DTYPE_I32, {1, P}, "whisper.start");
    ids.upload(start);
    sdk::Tensor logits(host_, TESSERA_DTYPE_F32, {1, V}, "whisper.logits");
    sdk::Tensor next(host_, TESSERA_DTYPE_I32, {1}, "whisper.next");
    sdk::Stream s(host_);
    model_.decode(s, cache, prompt, cross, ids, 0);
    model_.head(s, prompt.h.select(1, P - 1), logits);
    s.finish();
    // The first step's extra suppression is applied on the host; later steps draw on the GPU over the ids up
    // to <|endoftext|> (everything after it is suppressed), so the host reads back one id per step.
    std::vector<float> row = logits.download_f32();
    suppress(row.data(), true);
    Hypothesis h;
    int32_t id = argmax(row.data(), V);
    for (int64_t k = 0;; ++k) {
      if (id == tok_.eot()) break;
      h.tokens.push_back(id);
      if (k + 1 >= budget || !keep_going(k)) break;
      if (k == 0) next.upload(std::vector<int32_t>{id});
      model_.decode(s, cache, step, cross, next.reshape({1, 1}), P + k);
      model_.head(s, step.h.reshape({1, C}), logits);
      s.op("sample", {{"logits", logits.slice(-1, 0, tok_.eot() + 1)}, {"temperature", 0.0}, {"out", next}});
      s.finish();
      id = next.download_i32()[0];
    }
    return h;
  }

  Hypothesis beam(const sdk::Tensor& cross, const std::vector<int32_t>& start, int64_t budget, int64_t B,
                  const std::function<bool(int64_t)>& keep_going) const {
    const int64_t P = static_cast<int64_t>(start.size()), V = tok_.n_vocab(), C = model_.width();
    // Two caches: each step gathers the surviving beams' rows from one into the other.
    DecoderCache cache[2] = {model_.new_cache(B, P + budget), model_.new_cache(B, P + budget)};
    int current = 0;
    DecoderScratch prompt = model_.new_scratch(B, P), step = model_.new_scratch(B, 1);
    sdk::Tensor ids(host_, TESSERA_DTYPE_I32, {B, P}, "whisper.start");
    std::vector<int32_t> all;
    for (int64_t r = 0; r < B; ++r) all.insert(all.end(), start.begin(), start.end());
    ids.upload(all);
    sdk::Tensor logits(host_, TESSERA_DTYPE_F32, {B, V}, "whisper.logits");
    sdk::Tensor next(host_, TESSERA_DTYPE_I32, {B, 1}, "whisper.next");
    sdk::Tensor source(host_, TESSERA_DTYPE_I32, {B}, "whisper.beam_source");
    sdk::Stream s(host_);
    model_.decode(s, cache[current], prompt, cross, ids, 0);
    model_.head(s, prompt.h.select(1, P - 1), logits);
    s.finish();

    std::vector<Hypothesis> live(1), finished;  // every row holds the start sequence; one beam to begin with
    struct Candidate {
      size_t beam;
      int32_t token;
      double score;
    };
    for (int64_t k = 0; k < budget; ++k) {
      const std::vector<float> rows = logits.download_f32();
      std::vector<Candidate> candidates;
      for (size_t b = 0; b < live.size(); ++b) {
        std::vector<float> row(rows.begin() + static_cast<int64_t>(b) * V, rows.begin() + static_cast<int64_t>(b + 1) * V);
        suppress(row.data(), k == 0);
        double top = -std::numeric_limits<double>::infinity(), sum = 0;
        for (float l : row) top = std::max(top, static_cast<double>(l));
        for (float l : row) sum += std::exp(static_cast<double>(l) - top);
        const double log_z = top + std::log(sum);
        std::vector<int32_t> order(static_cast<size_t>(V));
        std::iota(order.begin(), order.end(), 0);
        const size_t keep = static_cast<size_t>(std::min<int64_t>(B + 1, V));
        std::partial_sort(order.begin(), order.begin() + static_cast<int64_t>(keep), order.end(), [&](int32_t a, int32_t c) {
          return row[static_cast<size_t>(a)] != row[static_cast<size_t>(c)] ? row[static_cast<size_t>(a)] > row[static_cast<size_t>(c)] : a < c;
        });
        for (size_t j = 0; j < keep; ++j) {
          const int32_t t = order[j];
          candidates.push_back({b, t, live[b].score + (static_cast<double>(row[static_cast<size_t>(t)]) - log_z)});
        }
      }
      std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& c) { return a.score > c.score; });
      std::vector<Hypothesis> survivors;
      std::vector<int32_t> from, tokens;
      for (const Candidate& c : candidates) {
        if (c.token == tok_.eot()) {
          finished.push_back({live[c.beam].tokens, c.score});
          continue;
        }
        Hypothesis h{live[c.beam].tokens, c.score};
        h.tokens.push_back(c.token);
        survivors.push_back(std::move(h));
        from.push_back(static_cast<int32_t>(c.beam));
        tokens.push_back(c.token);
        if (static_cast<int64_t>(survivors.size()) == B) break;
      }
      live = std::move(survivors);
      if (static_cast<int64_t>(finished.size()) >= B || k + 1 >= budget || !keep_going(k)) break;
      // Reorder the caches to the survivors, then run their new tokens.
      while (static_cast<int64_t>(from.size()) < B) from.push_back(0), tokens.push_back(0);  // idle rows
      source.upload(from);
      next.upload(tokens);
      DecoderCache& src = cache[current];
      DecoderCache& dst = cache[1 - current];
      const int64_t positions = P + k;
      const GatherPush push{static_cast<int32_t>(B), static_cast<int32_t>(src.positions), static_cast<int32_t>(C),
                            static_cast<int32_t>(positions), 0, 0, 0};
      gather_.dispatch(s, {&src.kv, &source, &dst.kv}, push,
                       {static_cast<uint32_t>((positions * C + 63) / 64), static_cast<uint32_t>(B),
                        static_cast<uint32_t>(2 * model_.config().n_text_layer)});
      current = 1 - current;
      model_.decode(s, cache[current], step, cross, next, P + k);
      model_.head(s, step.h.reshape({B, C}), logits);
      s.finish();
    }
    if (finished.empty()) finished = live;
    const Hypothesis* best = nullptr;
    double best_rank = -std::numeric_limits<double>::infinity();
    for (const Hypothesis& h : finished) {
      const double rank = h.score / static_cast<double>(std::max<size_t>(1, h.tokens.size()));
      if (!best || rank > best_rank) best = &h, best_rank = rank;
    }
    return *best;
  }

  sdk::Host host_;
  const WhisperModel& model_;
  const WhisperTokenizer& tok_;
  sdk::Kernel gather_;
};

}  // namespace tessera_plugins::whisper
