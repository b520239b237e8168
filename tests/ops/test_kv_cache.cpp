// kv_cache_append: rows land at the right position of f32 and f16 caches, nothing else in the cache
// changes, strided inputs work, successive steps build the cache attention reads, and bad positions fail.
#include <cmath>

#include "ops/attention.hpp"
#include "ops/kv_cache.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;

struct Case {
  int B, T, C, Lmax, pos;
  DType cache_dtype;
  DType new_dtype;
};

class KvCacheTest : public test::GpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(KvCacheTest, WritesRowsInPlace) {
  const Case c = GetParam();
  auto k = test::random_floats(static_cast<size_t>(c.B) * c.T * c.C, 1);
  auto v = test::random_floats(static_cast<size_t>(c.B) * c.T * c.C, 2);
  if (c.new_dtype == DType::f16 || c.cache_dtype == DType::f16) {
    k = test::round_to_half(k);
    v = test::round_to_half(v);
  }
  // Caches start with known contents: everything outside the written rows must survive.
  auto kc0 = test::random_floats(static_cast<size_t>(c.B) * c.Lmax * c.C, 3);
  auto vc0 = test::random_floats(static_cast<size_t>(c.B) * c.Lmax * c.C, 4);
  if (c.cache_dtype == DType::f16) {
    kc0 = test::round_to_half(kc0);
    vc0 = test::round_to_half(vc0);
  }
  gpu::Tensor tk = gpu::Tensor::from_f32(ctx(), k, {c.B, c.T, c.C}, c.new_dtype);
  gpu::Tensor tv = gpu::Tensor::from_f32(ctx(), v, {c.B, c.T, c.C}, c.new_dtype);
  // Both caches live in one buffer, separated by a gap that nothing may touch.
  const int64_t n = static_cast<int64_t>(c.B) * c.Lmax * c.C, gap = 10;
  std::vector<float> both(kc0);
  both.resize(n + gap, 7.0f);
  both.insert(both.end(), vc0.begin(), vc0.end());
  gpu::Tensor store = gpu::Tensor::from_f32(ctx(), both, {2 * n + gap}, c.cache_dtype);
  const auto kc = store.view().slice(0, 0, n).reshape({c.B, c.Lmax, c.C});
  const auto vc = store.view().slice(0, n + gap, n).reshape({c.B, c.Lmax, c.C});

  gpu::Stream s(ctx());
  ops::kv_cache_append(s, tk, tv, kc, vc, c.pos);
  s.run();
  EXPECT_EQ(s.recorded_dispatches(), 1u);

  auto want = both;
  for (int b = 0; b < c.B; ++b)
    for (int t = 0; t < c.T; ++t)
      for (int e = 0; e < c.C; ++e) {
        const size_t src = (static_cast<size_t>(b) * c.T + t) * c.C + e;
        const size_t dst = (static_cast<size_t>(b) * c.Lmax + c.pos + t) * c.C + e;
        want[dst] = k[src];
        want[n + gap + dst] = v[src];
      }
  const auto got = gpu::download_f32(store);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, KvCacheTest,
                         ::testing::Values(Case{1, 1, 512, 16, 0, DType::f32, DType::f32},
                                           Case{2, 3, 7, 9, 6, DType::f32, DType::f32},
                                           Case{1, 7, 64, 7, 0, DType::f32, DType::f16},
                                           Case{3, 1, 80, 33, 32, DType::f16, DType::f32},
                                           Case{2, 5, 6, 11, 3, DType::f16, DType::f16}));

TEST_F(KvCacheTest, ReadsStridedRowsOfAFusedProjection) {
  // k and v are column blocks of a fused [T, 3C] QKV output; the caches are rank 2.
  const int T = 5, C = 12, Lmax = 8, pos = 2;
  auto qkv = test::random_floats(static_cast<size_t>(T) * 3 * C, 5);
  gpu::Tensor tqkv = gpu::Tensor::from_f32(ctx(), qkv, {T, 3 * C});
  gpu::Tensor kc(ctx(), DType::f32, {Lmax, C}), vc(ctx(), DType::f32, {Lmax, C});
  gpu::Stream s(ctx());
  s.fill(kc.buffer(), 0, kc.buffer().size(), 0);
  s.fill(vc.buffer(), 0, vc.buffer().size(), 0);
  ops::kv_cache_append(s, tqkv.view().slice(1, C, C), tqkv.view().slice(1, 2 * C, C), kc, vc, pos);
  s.run();
  const auto gk = gpu::download_f32(kc), gv = gpu::download_f32(vc);
  for (int r = 0; r < Lmax; ++r)
    for (int e = 0; e < C; ++e) {
      const bool in = r >= pos && r < pos + T;
      ASSERT_EQ(gk[r * C + e], in ? qkv[(r - pos) * 3 * C + C + e] : 0.0f);
      ASSERT_EQ(gv[r * C + e], in ? qkv[(r - pos) * 3 * C + 2 * C + e] : 0.0f);
    }
}

TEST_F(KvCacheTest, DecodeStepsMatchFullAttention) {
  // Prefill 5 rows, then 3 single-row steps, each followed by attention over the cache so far; the
  // last step must equal causal attention over all 8 rows (its last query row).
  const int H = 2, D = 16, C = H * D, L = 8, Lmax = 12;
  auto q = test::random_floats(static_cast<size_t>(L) * C, 6);
  auto k = test::round_to_half(test::random_floats(static_cast<size_t>(L) * C, 7));
  auto v = test::round_to_half(test::random_floats(static_cast<size_t>(L) * C, 8));
  gpu::Tensor tq = gpu::Tensor::from_f32(ctx(), q, {1, L, C});
  gpu::Tensor tk = gpu::Tensor::from_f32(ctx(), k, {1, L, C});
  gpu::Tensor tv = gpu::Tensor::from_f32(ctx(), v, {1, L, C});
  gpu::Tensor kc(ctx(), DType::f16, {1, Lmax, C}), vc(ctx(), DType::f16, {1, Lmax, C});
  gpu::Tensor step_out(ctx(), DType::f32, {1, 1, C}), full_out(ctx(), DType::f32, {1, L, C});
  ops::AttentionOptions o;
  o.heads = H;
  o.causal = true;
  ops::AttentionWorkspace ws;
  gpu::Stream s(ctx());
  int pos = 0;
  for (int t : {5, 1, 1, 1}) {
    ops::kv_cache_append(s, tk.view().slice(1, pos, t), tv.view().slice(1, pos, t), kc, vc, pos);
    pos += t;
    ops::attention(s, tq.view().slice(1, pos - 1, 1), kc.view().slice(1, 0, pos), vc.view().slice(1, 0, pos),
                   step_out, o, &ws);
  }
  ops::attention(s, tq, tk, tv, full_out, o);
  s.run();
  const auto full = gpu::download_f32(full_out);
  const std::vector<float> last(full.end() - C, full.end());
  EXPECT_LT(test::normalized_error(gpu::download_f32(step_out), last), 1e-5);
}

TEST_F(KvCacheTest, RejectsBadPositionsWithAClearMessage) {
  gpu::Tensor k(ctx(), DType::f32, {2, 3, 8}), v(ctx(), DType::f32, {2, 3, 8});
  gpu::Tensor kc(ctx(), DType::f32, {2, 10, 8}), vc(ctx(), DType::f32, {2, 10, 8});
  gpu::Stream s(ctx());
  try {
    ops::kv_cache_append(s, k, v, kc, vc, 8);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "kv_cache_append: cannot write 3 rows at position 8 of k_cache f32[2,10,8]: it holds 10 rows");
  }
  try {
    ops::kv_cache_append(s, k, v, kc, vc, -1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "kv_cache_append: cannot write 3 rows at position -1 of k_cache f32[2,10,8]: it holds 10 rows");
  }
  gpu::Tensor kc_bad(ctx(), DType::f32, {2, 10, 6});
  try {
    ops::kv_cache_append(s, k, v, kc_bad, kc_bad, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "kv_cache_append: k_cache f32[2,10,6] must be [2,Lmax,8] for k f32[2,3,8]");
  }
  gpu::Tensor vc16(ctx(), DType::f16, {2, 10, 8});
  try {
    ops::kv_cache_append(s, k, v, kc, vc16, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "kv_cache_append: v_cache f16[2,10,8] must be f32");
  }
  gpu::Tensor flat(ctx(), DType::f16, {2 * 10 * 8 + 1});
  const auto odd = flat.view().slice(0, 1, 2 * 10 * 8).reshape({2, 10, 8});
  try {
    ops::kv_cache_append(s, k, v, odd, odd, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "kv_cache_append: k_cache f16[2,10,8] is f16 and needs an even offset, row width and pitch");
  }
}

}  // namespace
}  // namespace tessera
