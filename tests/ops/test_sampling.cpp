// GPU sampling against CPU references: greedy equals argmax (first index on ties), classifier-free
// guidance mixes like the CPU formula, draws are deterministic in (seed, step, row) and reproduce a CPU
// replica of the hash, every draw lies in the top-k set and the top-p nucleus, and 4000 draws on a small
// vocabulary follow the tempered, truncated softmax. Bad parameters give exact messages.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <tuple>

#include "ops/sampling.hpp"
#include "support/gpu_test.hpp"
#include "support/sampling_replay.hpp"

namespace tessera {
namespace {

using gpu::DType;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The probabilities the sampler draws from, in double: tempered softmax over the kept set.
std::vector<double> kept_distribution(const std::vector<float>& l, float temperature, int top_k, float top_p) {
  const size_t V = l.size();
  std::vector<float> sorted(l);
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const float mx = sorted[0];
  const float tk = top_k > 0 ? sorted[top_k - 1] : kNegInf;
  std::vector<double> q(V, 0.0);
  double z = 0;
  for (size_t i = 0; i < V; ++i)
    if (l[i] >= tk && l[i] != kNegInf) z += q[i] = std::exp((static_cast<double>(l[i]) - mx) / temperature);
  if (top_p < 1.0f) {
    // The largest value t with mass(l >= t) >= top_p * z.
    double mass = 0;
    float tp = mx;
    for (size_t r = 0; r < V; ++r) {
      const float v = sorted[r];
      if (v < tk) break;
      tp = v;
      mass = 0;
      for (size_t i = 0; i < V; ++i)
        if (l[i] >= v) mass += q[i];
      if (mass >= top_p * z) break;
    }
    for (size_t i = 0; i < V; ++i)
      if (l[i] < tp) q[i] = 0;
  }
  const double total = std::accumulate(q.begin(), q.end(), 0.0);
  for (double& v : q) v /= total;
  return q;
}

class SamplingTest : public test::GpuTest {
 protected:
  std::vector<int32_t> run(const gpu::Tensor& logits, const ops::SampleParams& p, int rows) {
    test::Guarded ids(ctx(), DType::i32, {rows});
    gpu::Stream s(ctx());
    ops::sample(s, logits, p, ids);
    s.run();
    ids.check_guards();
    return ids.read_i32();
  }
};

TEST_F(SamplingTest, GreedyIsTheFirstArgmax) {
  for (int V : {1, 7, 16384, 50257}) {
    const int R = 3;
    auto l = test::random_floats(static_cast<size_t>(R) * V, 100 + V, -5.0f, 5.0f);
    // Row 1: a tie for the maximum, the first occurrence wins. Row 2: -inf entries around.
    if (V > 10) {
      l[V + V / 3] = 9.0f;
      l[V + V / 2] = 9.0f;
      for (int i = 0; i < V; i += 3) l[2 * V + i] = kNegInf;
    }
    gpu::Tensor t = gpu::Tensor::from_f32(ctx(), l, {R, V});
    ops::SampleParams p;
    p.temperature = 0.0f;
    auto ids = run(t, p, R);
    for (int r = 0; r < R; ++r) {
      const auto first = l.begin() + static_cast<ptrdiff_t>(r) * V;
      EXPECT_EQ(ids[r], std::max_element(first, first + V) - first) << "V " << V << " row " << r;
    }
  }
}

TEST_F(SamplingTest, GuidanceMixesTwoViewsLikeTheCpu) {
  // cond and uncond rows are two halves of one [2R, V] tensor, as a batched CFG forward pass leaves them.
  const int R = 4, V = 16384;
  auto l = test::random_floats(static_cast<size_t>(2 * R) * V, 7, -4.0f, 4.0f);
  gpu::Tensor t = gpu::Tensor::from_f32(ctx(), l, {2 * R, V});
  for (float f : {1.0f, 3.0f, 10.0f}) {
    ops::SampleParams p;
    p.temperature = 0.0f;
    p.uncond = t.view().slice(0, R, R);
    p.guidance = f;
    test::Guarded ids(ctx(), DType::i32, {R});
    gpu::Stream s(ctx());
    ops::sample(s, t.view().slice(0, 0, R), p, ids);
    s.run();
    auto got = ids.read_i32();
    for (int r = 0; r < R; ++r) {
      int best = 0;
      double bv = -1e300;
      for (int i = 0; i < V; ++i) {
        const double v = static_cast<double>(l[(R + r) * V + i]) * (1 - f) + static_cast<double>(l[r * V + i]) * f;
        if (v > bv) bv = v, best = i;
      }
      EXPECT_EQ(got[r], best) << "guidance " << f << " row " << r;
    }
    ids.check_guards();
  }
}

TEST_F(SamplingTest, GuidanceRowsOutOfPhaseAndF16AndRankOneLogits) {
  // uncond starts one float later than cond: the four-wide path cannot serve both, the scalar one does.
  const int R = 3, V = 1001;
  auto c = test::random_floats(static_cast<size_t>(R) * V, 17, -4.0f, 4.0f);
  auto u = test::random_floats(static_cast<size_t>(R) * V + 1, 18, -4.0f, 4.0f);
  gpu::Tensor tc = gpu::Tensor::from_f32(ctx(), c, {R, V});
  gpu::Tensor tu = gpu::Tensor::from_f32(ctx(), u, {R * V + 1});
  ops::SampleParams p;
  p.temperature = 0.0f;
  p.uncond = tu.view().slice(0, 1, static_cast<int64_t>(R) * V).reshape({R, V});
  p.guidance = 2.5f;
  auto ids = run(tc, p, R);
  for (int r = 0; r < R; ++r) {
    int best = 0;
    double bv = -1e300;
    for (int i = 0; i < V; ++i) {
      const double v = static_cast<double>(u[1 + r * V + i]) * (1 - 2.5) + static_cast<double>(c[r * V + i]) * 2.5;
      if (v > bv) bv = v, best = i;
    }
    EXPECT_EQ(ids[r], best) << "row " << r;
  }
  // f16 logits (rounded on upload) and a single [V] row.
  auto h = test::round_to_half(test::random_floats(V, 19, -4.0f, 4.0f));
  gpu::Tensor th = gpu::Tensor::from_f32(ctx(), h, {V}, DType::f16);
  ops::SampleParams g;
  g.temperature = 0.0f;
  EXPECT_EQ(run(th, g, 1)[0], std::max_element(h.begin(), h.end()) - h.begin());
  g.temperature = 0.9f;
  g.top_k = 20;
  auto kept = kept_distribution(h, 0.9f, 20, 1.0f);
  for (uint32_t seed = 0; seed < 8; ++seed) {
    g.seed = seed;
    EXPECT_GT(kept[run(th, g, 1)[0]], 0.0) << "seed " << seed;
  }
}

TEST_F(SamplingTest, DrawsAreDeterministicAndReplayOnTheCpu) {
  const int R = 8, V = 1000;
  auto l = test::random_floats(static_cast<size_t>(R) * V, 9, -3.0f, 3.0f);
  gpu::Tensor t = gpu::Tensor::from_f32(ctx(), l, {R, V});
  int checked = 0;
  for (uint32_t step : {0u, 1u, 2u}) {
    for (auto [T, k, tp] : {std::tuple{1.0f, 0, 1.0f}, std::tuple{0.7f, 40, 1.0f}, std::tuple{1.3f, 0, 0.8f},
                            std::tuple{1.0f, 100, 0.5f}}) {
      ops::SampleParams p;
      p.temperature = T;
      p.top_k = k;
      p.top_p = tp;
      p.seed = 1234;
      p.step = step;
      auto a = run(t, p, R);
      auto b = run(t, p, R);
      EXPECT_EQ(a, b);
      for (int r = 0; r < R; ++r) {
        std::vector<float> row(l.begin() + r * V, l.begin() + (r + 1) * V);
        auto kept = kept_distribution(row, T, k, tp);
        ASSERT_GT(kept[a[r]], 0.0) << "drew " << a[r] << " outside the kept set, row " << r;
        const test::Replay want = test::replay(row, kept, T, p.seed, step, static_cast<uint32_t>(r));
        // exp/log may round differently on the device: only near-ties may differ.
        if (want.margin > 1e-3f) {
          EXPECT_EQ(a[r], want.id) << "row " << r << " step " << step;
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 80);
}

// seed_per_row: row r of a batch draws exactly what a one-row run with seed + r draws (--count as a batch).
TEST_F(SamplingTest, SeedPerRowMakesABatchEqualSeparateRuns) {
  const int R = 6, V = 777;
  auto l = test::random_floats(static_cast<size_t>(R) * V, 19, -2.0f, 2.0f);
  gpu::Tensor t = gpu::Tensor::from_f32(ctx(), l, {R, V});
  ops::SampleParams p;
  p.temperature = 1.5f;
  p.top_k = 200;
  p.top_p = 0.9f;
  p.seed = 0xFFFFFFFEu;  // wraps past 2^32 within the batch
  p.step = 5;
  p.seed_per_row = true;
  const auto batch = run(t, p, R);
  p.seed_per_row = false;
  const auto shared_seed = run(t, p, R);
  int differs = 0;
  for (int r = 0; r < R; ++r) {
    std::vector<float> row(l.begin() + r * V, l.begin() + (r + 1) * V);
    gpu::Tensor one = gpu::Tensor::from_f32(ctx(), row, {1, V});
    ops::SampleParams q = p;
    q.seed = p.seed + static_cast<uint32_t>(r);
    EXPECT_EQ(run(one, q, 1)[0], batch[r]) << "row " << r;
    differs += shared_seed[r] != batch[r];
  }
  EXPECT_GT(differs, 0) << "seed_per_row changed nothing";
}

TEST_F(SamplingTest, DrawsStayInTopKAndNucleusOnLargeVocabularies) {
  for (int V : {16384, 50257}) {
    const int R = 4;
    auto l = test::random_floats(static_cast<size_t>(R) * V, 11, -6.0f, 6.0f);
    gpu::Tensor t = gpu::Tensor::from_f32(ctx(), l, {R, V});
    for (auto [k, tp] : {std::pair{50, 1.0f}, std::pair{0, 0.3f}, std::pair{1000, 0.9f}, std::pair{1, 1.0f}}) {
      for (uint32_t seed = 0; seed < 3; ++seed) {
        ops::SampleParams p;
        p.temperature = 0.5f;
        p.top_k = k;
        p.top_p = tp;
        p.seed = seed;
        auto ids = run(t, p, R);
        for (int r = 0; r < R; ++r) {
          std::vector<float> row(l.begin() + static_cast<ptrdiff_t>(r) * V, l.begin() + static_cast<ptrdiff_t>(r + 1) * V);
          auto kept = kept_distribution(row, p.temperature, k, tp);
          EXPECT_GT(kept[ids[r]], 0.0) << "V " << V << " k " << k << " p " << tp << " row " << r;
        }
      }
    }
  }
}

// 4000 draws (rows of one dispatch: the row enters the hash) against the expected distribution.
void expect_distribution(gpu::Context& ctx, const std::vector<float>& logits, const ops::SampleParams& p) {
  const int R = 4000, V = static_cast<int>(logits.size());
  std::vector<float> rows;
  for (int r = 0; r < R; ++r) rows.insert(rows.end(), logits.begin(), logits.end());
  gpu::Tensor t = gpu::Tensor::from_f32(ctx, rows, {R, V});
  test::Guarded out(ctx, DType::i32, {R});
  gpu::Stream s(ctx);
  ops::sample(s, t, p, out);
  s.run();
  out.check_guards();
  auto ids = out.read_i32();
  auto want = kept_distribution(logits, p.temperature, p.top_k, p.top_p);
  std::vector<double> freq(V, 0.0);
  for (int id : ids) {
    ASSERT_TRUE(id >= 0 && id < V);
    ASSERT_GT(want[id], 0.0) << "drew " << id << " outside the kept set";
    freq[id] += 1.0 / R;
  }
  double tv = 0, chi2 = 0;
  int df = -1;
  for (int i = 0; i < V; ++i) {
    tv += 0.5 * std::abs(freq[i] - want[i]);
    if (want[i] > 0) {
      chi2 += R * (freq[i] - want[i]) * (freq[i] - want[i]) / want[i];
      ++df;
    }
  }
  // For 4000 draws the expected total variation is about 0.01-0.02; chi-square at p = 0.001 for df <= 15
  // stays under 38.
  EXPECT_LT(tv, 0.04) << "T " << p.temperature << " k " << p.top_k << " p " << p.top_p;
  EXPECT_LT(chi2, 38.0) << "df " << df << " T " << p.temperature << " k " << p.top_k << " p " << p.top_p;
}

TEST_F(SamplingTest, EmpiricalDistributionMatchesTheTruncatedSoftmax) {
  const std::vector<float> logits = {1.0f, 0.5f, 2.0f, -1.0f, 0.0f, 1.5f, kNegInf, -0.5f, 0.25f, 1.75f, -2.0f, 0.75f};
  for (auto [T, k, tp] : {std::tuple{1.0f, 0, 1.0f}, std::tuple{0.6f, 0, 1.0f}, std::tuple{1.0f, 5, 1.0f},
                          std::tuple{1.4f, 0, 0.7f}, std::tuple{0.9f, 8, 0.8f}}) {
    ops::SampleParams p;
    p.temperature = T;
    p.top_k = k;
    p.top_p = tp;
    p.seed = 77;
    p.step = 5;
    expect_distribution(ctx(), logits, p);
  }
}

TEST_F(SamplingTest, TiesAtTheThresholdAreAllKeptAndMaskedTokensNeverDrawn) {
  // top_k = 2 over {5, 3, 3, 3, 1, -inf}: the three 3s tie for second place and are all kept.
  const std::vector<float> logits = {5.0f, 3.0f, 3.0f, 3.0f, 1.0f, kNegInf};
  const int R = 2000;
  std::vector<float> rows;
  for (int r = 0; r < R; ++r) rows.insert(rows.end(), logits.begin(), logits.end());
  gpu::Tensor t = gpu::Tensor::from_f32(ctx(), rows, {R, 6});
  ops::SampleParams p;
  p.temperature = 2.0f;
  p.top_k = 2;
  auto ids = run(t, p, R);
  std::vector<int> count(6, 0);
  for (int id : ids) ++count[id];
  EXPECT_EQ(count[4], 0);
  EXPECT_EQ(count[5], 0);
  for (int i = 1; i <= 3; ++i) EXPECT_GT(count[i], 100) << i;
  // Without truncation the -inf token still never comes up; a row of only -inf yields index 0.
  p.top_k = 0;
  ids = run(t, p, R);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 5), 0);
  gpu::Tensor dead = gpu::Tensor::from_f32(ctx(), std::vector<float>(5, kNegInf), {1, 5});
  EXPECT_EQ(run(dead, p, 1)[0], 0);
}

TEST_F(SamplingTest, StepsAndRowsDecorrelate) {
  // A flat distribution over 64 tokens: consecutive steps of one row should rarely repeat.
  const int V = 64;
  gpu::Tensor t = gpu::Tensor::from_f32(ctx(), std::vector<float>(V, 0.0f), {1, V});
  std::vector<int> seen(V, 0);
  int repeats = 0, prev = -1;
  for (uint32_t step = 0; step < 64; ++step) {
    ops::SampleParams p;
    p.seed = 3;
    p.step = step;
    const int id = run(t, p, 1)[0];
    repeats += id == prev;
    prev = id;
    ++seen[id];
  }
  EXPECT_LT(repeats, 6);
  EXPECT_GT(std::count_if(seen.begin(), seen.end(), [](int c) { return c > 0; }), 30);
}

TEST_F(SamplingTest, RejectsBadParametersWithAClearMessage) {
  gpu::Tensor l(ctx(), DType::f32, {2, 10});
  gpu::Tensor ids(ctx(), DType::i32, {2});
  gpu::Stream s(ctx());
  auto with = [&](auto edit) {
    ops::SampleParams p;
    edit(p);
    return p;
  };
  test::expect_error([&] { ops::sample(s, l, with([](auto& p) { p.temperature = -0.5f; }), ids); },
               "sample: temperature -0.5 must be finite and >= 0 (0 = greedy)");
  test::expect_error([&] { ops::sample(s, l, with([](auto& p) { p.top_p = 0.0f; }), ids); },
               "sample: top_p 0 must be in (0, 1] (1 = off)");
  test::expect_error([&] { ops::sample(s, l, with([](auto& p) { p.top_p = 1.5f; }), ids); },
               "sample: top_p 1.5 must be in (0, 1] (1 = off)");
  test::expect_error([&] { ops::sample(s, l, with([](auto& p) { p.top_k = 11; }), ids); },
               "sample: top_k 11 exceeds the vocabulary of logits f32[2,10]");
  test::expect_error([&] { ops::sample(s, l, with([](auto& p) { p.top_k = -1; }), ids); },
               "sample: top_k -1 must be >= 0 (0 = off)");
  gpu::Tensor other(ctx(), DType::f32, {2, 9});
  test::expect_error([&] { ops::sample(s, l, with([&](auto& p) { p.uncond = other.view(); }), ids); },
               "sample: uncond f32[2,9] must have the shape of logits f32[2,10]");
  gpu::Tensor ids3(ctx(), DType::i32, {3});
  test::expect_error([&] { ops::sample(s, l, ops::SampleParams{}, ids3); }, "sample: out_ids i32[3] must be [2] for logits f32[2,10]");
  gpu::Tensor fids(ctx(), DType::f32, {2});
  test::expect_error([&] { ops::sample(s, l, ops::SampleParams{}, fids); }, "sample: out_ids f32[2] must be i32");
}

TEST_F(SamplingTest, SpeedPerCall) {
  for (int V : {16384, 50257}) {
    for (int R : {1, 8}) {
      gpu::Tensor t = gpu::Tensor::from_f32(ctx(), test::random_floats(static_cast<size_t>(R) * V, 5, -8.0f, 8.0f), {R, V});
      gpu::Tensor ids(ctx(), DType::i32, {R});
      for (auto [name, k, tp] : {std::tuple{"plain", 0, 1.0f}, std::tuple{"top_k 50", 50, 1.0f},
                                 std::tuple{"top_p 0.9", 0, 0.9f}, std::tuple{"k 50 + p 0.9", 50, 0.9f},
                                 std::tuple{"greedy", -1, 1.0f}}) {
        ops::SampleParams p;
        p.temperature = k < 0 ? 0.0f : 0.8f;
        p.top_k = std::max(k, 0);
        p.top_p = tp;
        gpu::Stream s(ctx());
        s.set_timing(true);
        std::vector<double> gpu_us, wall_us;
        for (int rep = 0; rep < 5; ++rep) {
          p.step = rep;
          const auto t0 = std::chrono::steady_clock::now();
          ops::sample(s, t, p, ids);
          s.run();
          wall_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
          gpu_us.push_back(s.last_gpu_ns() * 1e-3);
        }
        std::sort(gpu_us.begin(), gpu_us.end());
        std::sort(wall_us.begin(), wall_us.end());
        std::printf("sample V=%d R=%d %-12s gpu %8.1f us  wall %8.1f us\n", V, R, name, gpu_us[2], wall_us[2]);
      }
    }
  }
}

}  // namespace
}  // namespace tessera
