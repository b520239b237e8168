// attention against a double-precision CPU reference: heads and head dims, odd lengths, causal with
// Lq != Lk, key-padding and additive masks (with broadcasts), cross attention, f16 K/V, strided and
// unaligned K/V views, the split-K decode path with long caches, fully masked rows, guard regions and
// argument errors.
#include <cmath>
#include <limits>

#include "ops/attention.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;

enum class KeyMask { none, i32, f32 };
enum class AddMask { none, lq_lk, b_lq_lk, one_lq_lk, b_h_lq_lk };

struct Case {
  int B, H, D, Lq, Lk;
  bool causal = false;
  KeyMask key_mask = KeyMask::none;
  AddMask add_mask = AddMask::none;
  DType kv_dtype = DType::f32;
  bool strided = false;   // k and v are column blocks of one [B, Lmax, 2*H*D] buffer with spare rows
  bool unaligned = false;  // k and v start at an odd column: the scalar-fetch variant
  bool workspace = false;
};

struct Inputs {
  std::vector<float> q, k, v;   // [B, L, H*D]
  std::vector<int32_t> keep;    // [B, Lk], 1 = visible
  std::vector<float> add;       // [B, H, Lq, Lk], expanded
};

// softmax(q k^T * scale + add) v per head, keys with keep == 0 or past the causal edge dropped; a row
// with no visible key is zeros.
std::vector<float> reference(const Case& c, const Inputs& in, double scale) {
  const int HD = c.H * c.D;
  std::vector<float> out(static_cast<size_t>(c.B) * c.Lq * HD, 0.0f);
  std::vector<double> sc(c.Lk);
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.H; ++h)
      for (int i = 0; i < c.Lq; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        for (int j = 0; j < c.Lk; ++j) {
          sc[j] = -std::numeric_limits<double>::infinity();
          if (!in.keep[static_cast<size_t>(b) * c.Lk + j]) continue;
          if (c.causal && j > i + (c.Lk - c.Lq)) continue;
          double d = 0;
          for (int e = 0; e < c.D; ++e)
            d += static_cast<double>(in.q[(static_cast<size_t>(b) * c.Lq + i) * HD + h * c.D + e]) *
                 in.k[(static_cast<size_t>(b) * c.Lk + j) * HD + h * c.D + e];
          sc[j] = d * scale + in.add[((static_cast<size_t>(b) * c.H + h) * c.Lq + i) * c.Lk + j];
          mx = std::max(mx, sc[j]);
        }
        if (mx == -std::numeric_limits<double>::infinity()) continue;
        double sum = 0;
        std::vector<double> acc(c.D, 0.0);
        for (int j = 0; j < c.Lk; ++j) {
          if (sc[j] == -std::numeric_limits<double>::infinity()) continue;
          const double w = std::exp(sc[j] - mx);
          sum += w;
          for (int e = 0; e < c.D; ++e) acc[e] += w * in.v[(static_cast<size_t>(b) * c.Lk + j) * HD + h * c.D + e];
        }
        for (int e = 0; e < c.D; ++e)
          out[(static_cast<size_t>(b) * c.Lq + i) * HD + h * c.D + e] = static_cast<float>(acc[e] / sum);
      }
  return out;
}

// Uploads rows [B, L, C] into a [B, Lmax, pitch] tensor at column `col` and returns the view of them.
gpu::TensorView place(gpu::Tensor& store, const std::vector<float>& rows, int B, int L, int C, int Lmax, int pitch,
                      int col, DType dtype, gpu::Context& ctx) {
  std::vector<float> all = test::random_floats(static_cast<size_t>(B) * Lmax * pitch, 99);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < L; ++t)
      for (int e = 0; e < C; ++e)
        all[(static_cast<size_t>(b) * Lmax + t) * pitch + col + e] = rows[(static_cast<size_t>(b) * L + t) * C + e];
  store = gpu::Tensor::from_f32(ctx, all, {B, Lmax, pitch}, dtype);
  return store.view().slice(1, 0, L).slice(2, col, C);
}

class AttentionTest : public test::GpuTest, public ::testing::WithParamInterface<Case> {
 protected:
  void check(const Case& c) {
    const int HD = c.H * c.D;
    Inputs in;
    in.q = test::random_floats(static_cast<size_t>(c.B) * c.Lq * HD, 1, -2.0f, 2.0f);
    in.k = test::random_floats(static_cast<size_t>(c.B) * c.Lk * HD, 2, -2.0f, 2.0f);
    in.v = test::random_floats(static_cast<size_t>(c.B) * c.Lk * HD, 3);
    if (c.kv_dtype == DType::f16) {
      in.k = test::round_to_half(in.k);
      in.v = test::round_to_half(in.v);
    }
    in.keep.assign(static_cast<size_t>(c.B) * c.Lk, 1);
    if (c.key_mask != KeyMask::none) {
      in.keep = test::random_ints(in.keep.size(), 4, 0, 3);  // about a third masked
      for (auto& x : in.keep) x = x != 0;
      for (int j = 0; j < c.Lk; ++j) in.keep[j] = 0;  // batch 0 sees nothing: zeros, not NaN
    }
    in.add.assign(static_cast<size_t>(c.B) * c.H * c.Lq * c.Lk, 0.0f);
    std::vector<float> mask_data;
    std::vector<int64_t> mask_shape;
    if (c.add_mask != AddMask::none) {
      const int mb = c.add_mask == AddMask::b_lq_lk || c.add_mask == AddMask::b_h_lq_lk ? c.B : 1;
      const int mh = c.add_mask == AddMask::b_h_lq_lk ? c.H : 1;
      mask_data = test::random_floats(static_cast<size_t>(mb) * mh * c.Lq * c.Lk, 5, -3.0f, 1.0f);
      for (size_t x = 0; x < mask_data.size(); x += 7) mask_data[x] = -std::numeric_limits<float>::infinity();
      for (int b = 0; b < c.B; ++b)
        for (int h = 0; h < c.H; ++h)
          for (int ij = 0; ij < c.Lq * c.Lk; ++ij)
            in.add[(static_cast<size_t>(b) * c.H + h) * c.Lq * c.Lk + ij] =
                mask_data[((static_cast<size_t>(mb > 1 ? b : 0) * mh) + (mh > 1 ? h : 0)) * c.Lq * c.Lk + ij];
      switch (c.add_mask) {
        case AddMask::lq_lk: mask_shape = {c.Lq, c.Lk}; break;
        case AddMask::b_lq_lk: mask_shape = {c.B, c.Lq, c.Lk}; break;
        case AddMask::one_lq_lk: mask_shape = {1, c.Lq, c.Lk}; break;
        default: mask_shape = {c.B, c.H, c.Lq, c.Lk}; break;
      }
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
    const auto want = reference(c, in, scale);

    gpu::Tensor tq = gpu::Tensor::from_f32(ctx(), in.q, {c.B, c.Lq, HD});
    gpu::Tensor kstore, vstore;
    gpu::TensorView k, v;
    if (c.strided || c.unaligned) {
      // One buffer for both, as a KV cache or a fused projection would hold them.
      const int pad = c.unaligned ? 1 : 0;
      const int pitch = 2 * HD + 2 * pad + (c.unaligned ? 1 : 4);
      const int Lmax = c.Lk + 5;
      std::vector<float> both(static_cast<size_t>(c.B) * c.Lk * 2 * HD);
      for (size_t r = 0; r < static_cast<size_t>(c.B) * c.Lk; ++r)
        for (int e = 0; e < HD; ++e) {
          both[r * 2 * HD + e] = in.k[r * HD + e];
          both[r * 2 * HD + HD + e] = in.v[r * HD + e];
        }
      const auto kv = place(kstore, both, c.B, c.Lk, 2 * HD, Lmax, pitch, pad, c.kv_dtype, ctx());
      k = kv.slice(2, 0, HD);
      v = kv.slice(2, HD, HD);
    } else {
      kstore = gpu::Tensor::from_f32(ctx(), in.k, {c.B, c.Lk, HD}, c.kv_dtype);
      vstore = gpu::Tensor::from_f32(ctx(), in.v, {c.B, c.Lk, HD}, c.kv_dtype);
      k = kstore;
      v = vstore;
    }
    gpu::Tensor tkeep;
    ops::AttentionOptions o;
    o.heads = c.H;
    o.causal = c.causal;
    if (c.key_mask == KeyMask::i32) {
      tkeep = gpu::Tensor::from_i32(ctx(), in.keep, {c.B, c.Lk});
      o.key_mask = tkeep.view();
    } else if (c.key_mask == KeyMask::f32) {
      std::vector<float> f(in.keep.begin(), in.keep.end());
      tkeep = gpu::Tensor::from_f32(ctx(), f, {c.B, c.Lk});
      o.key_mask = tkeep.view();
    }
    gpu::Tensor tmask;
    if (c.add_mask != AddMask::none) {
      tmask = gpu::Tensor(ctx(), DType::f32, std::span<const int64_t>(mask_shape));
      gpu::upload(tmask, mask_data);
      o.mask = tmask.view();
    }
    test::Guarded out(ctx(), DType::f32, {c.B, c.Lq, HD});
    ops::AttentionWorkspace ws;
    gpu::Stream s(ctx());
    ops::attention(s, tq, k, v, out, o, c.workspace ? &ws : nullptr);
    s.run();
    const auto got = out.read_f32();
    EXPECT_LT(test::normalized_error(got, want), 1e-5);
    for (float x : got) ASSERT_FALSE(std::isnan(x));
    out.check_guards();
    if (c.key_mask != KeyMask::none) {  // batch 0 saw no key
      for (int e = 0; e < c.Lq * HD; ++e) ASSERT_EQ(got[e], 0.0f) << e;
    }
    EXPECT_EQ(s.recorded_dispatches(), 1u);
    splits_used_ = ws.bytes() > 0;
  }
  bool splits_used_ = false;
};

TEST_P(AttentionTest, MatchesReference) { check(GetParam()); }

Case with(Case c, auto f) {
  f(c);
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionTest,
    ::testing::Values(
        Case{1, 1, 64, 1, 1}, Case{1, 8, 64, 7, 7}, Case{2, 2, 80, 33, 33}, Case{1, 2, 128, 100, 100},
        Case{1, 3, 32, 17, 5}, Case{2, 4, 16, 9, 33}, Case{1, 2, 4, 3, 8}, Case{1, 1, 256, 5, 11},
        with(Case{1, 2, 64, 33, 33}, [](Case& c) { c.causal = true; }),
        with(Case{2, 2, 64, 7, 100}, [](Case& c) { c.causal = true; }),   // queries at the end of a cache
        with(Case{1, 2, 32, 9, 4}, [](Case& c) { c.causal = true; }),     // early rows see no key: zeros
        with(Case{2, 2, 64, 33, 33}, [](Case& c) { c.key_mask = KeyMask::i32; }),
        with(Case{3, 1, 16, 7, 100}, [](Case& c) { c.key_mask = KeyMask::f32; c.causal = true; }),
        with(Case{1, 2, 32, 33, 17}, [](Case& c) { c.add_mask = AddMask::lq_lk; }),
        with(Case{2, 2, 32, 7, 33}, [](Case& c) { c.add_mask = AddMask::b_lq_lk; }),
        with(Case{2, 2, 32, 7, 9}, [](Case& c) { c.add_mask = AddMask::one_lq_lk; c.causal = true; }),
        with(Case{2, 3, 16, 5, 7}, [](Case& c) { c.add_mask = AddMask::b_h_lq_lk; c.key_mask = KeyMask::i32; }),
        with(Case{1, 4, 64, 33, 33}, [](Case& c) { c.kv_dtype = DType::f16; }),
        with(Case{2, 2, 80, 7, 100}, [](Case& c) { c.kv_dtype = DType::f16; c.strided = true; c.causal = true; }),
        with(Case{2, 2, 64, 33, 33}, [](Case& c) { c.strided = true; }),
        with(Case{1, 2, 16, 7, 33}, [](Case& c) { c.unaligned = true; c.key_mask = KeyMask::i32; }),
        with(Case{1, 2, 32, 7, 7}, [](Case& c) { c.unaligned = true; c.kv_dtype = DType::f16; c.causal = true; }),
        // Decoding: one query against a long cache, split over workgroups, then combined.
        with(Case{1, 8, 64, 1, 1000}, [](Case& c) { c.workspace = true; c.strided = true; }),
        with(Case{2, 2, 64, 1, 1000}, [](Case& c) { c.workspace = true; c.causal = true; c.kv_dtype = DType::f16; }),
        with(Case{2, 2, 80, 1, 333}, [](Case& c) { c.workspace = true; c.key_mask = KeyMask::i32; }),
        with(Case{1, 1, 16, 3, 200}, [](Case& c) { c.workspace = true; c.add_mask = AddMask::lq_lk; c.causal = true; }),
        with(Case{1, 2, 32, 1, 7}, [](Case& c) { c.workspace = true; })));  // too short to split

TEST_F(AttentionTest, LongDecodeTakesTheSplitPath) {
  check(with(Case{1, 8, 64, 1, 1000}, [](Case& c) { c.workspace = true; }));
  EXPECT_TRUE(splits_used_);
  check(with(Case{1, 8, 64, 1, 1000}, [](Case& c) { c.workspace = false; }));
  EXPECT_FALSE(splits_used_);
}

TEST_F(AttentionTest, WorkspaceServesSeveralCallsInOneStream) {
  // Two decode steps of different lengths recorded back to back: the workspace grows in between and
  // the first call's buffer must stay valid until the stream ran.
  const int H = 4, D = 32, HD = H * D;
  ops::AttentionWorkspace ws;
  gpu::Stream s(ctx());
  std::vector<gpu::Tensor> keep;
  std::vector<test::Guarded> outs;
  outs.reserve(2);  // a Guarded's view points into it: no reallocation
  std::vector<std::vector<float>> wants;
  for (int Lk : {100, 900}) {
    Case c{1, H, D, 1, Lk};
    Inputs in;
    in.q = test::random_floats(HD, 10 + Lk);
    in.k = test::random_floats(static_cast<size_t>(Lk) * HD, 11 + Lk);
    in.v = test::random_floats(static_cast<size_t>(Lk) * HD, 12 + Lk);
    in.keep.assign(Lk, 1);
    in.add.assign(static_cast<size_t>(H) * Lk, 0.0f);
    wants.push_back(reference(c, in, 1.0 / std::sqrt(double(D))));
    keep.push_back(gpu::Tensor::from_f32(ctx(), in.q, {1, HD}));
    keep.push_back(gpu::Tensor::from_f32(ctx(), in.k, {Lk, HD}));
    keep.push_back(gpu::Tensor::from_f32(ctx(), in.v, {Lk, HD}));
    outs.emplace_back(ctx(), DType::f32, std::initializer_list<int64_t>{1, HD});
    ops::AttentionOptions o;
    o.heads = H;
    const size_t n = keep.size();
    ops::attention(s, keep[n - 3], keep[n - 2], keep[n - 1], outs.back(), o, &ws);
  }
  s.run();
  for (size_t i = 0; i < outs.size(); ++i) {
    EXPECT_LT(test::normalized_error(outs[i].read_f32(), wants[i]), 1e-5);
    outs[i].check_guards();
  }
}

TEST_F(AttentionTest, SharedKeyMaskCustomScaleAndHalfQueries) {
  // A rank-1 key mask shared by the batch, a scale that is not 1/sqrt(D), and q stored as f16.
  const Case c{2, 2, 16, 5, 9};
  const int HD = c.H * c.D;
  Inputs in;
  in.q = test::round_to_half(test::random_floats(static_cast<size_t>(c.B) * c.Lq * HD, 21));
  in.k = test::random_floats(static_cast<size_t>(c.B) * c.Lk * HD, 22);
  in.v = test::random_floats(static_cast<size_t>(c.B) * c.Lk * HD, 23);
  const std::vector<float> keep1 = {1, 0, 1, 1, 0, 0, 1, 1, 0};
  for (int b = 0; b < c.B; ++b)
    for (float x : keep1) in.keep.push_back(x != 0.0f);
  in.add.assign(static_cast<size_t>(c.B) * c.H * c.Lq * c.Lk, 0.0f);
  const auto want = reference(c, in, 0.3);

  gpu::Tensor tq = gpu::Tensor::from_f32(ctx(), in.q, {c.B, c.Lq, HD}, DType::f16);
  gpu::Tensor tk = gpu::Tensor::from_f32(ctx(), in.k, {c.B, c.Lk, HD});
  gpu::Tensor tv = gpu::Tensor::from_f32(ctx(), in.v, {c.B, c.Lk, HD});
  gpu::Tensor tm = gpu::Tensor::from_f32(ctx(), keep1, {c.Lk});
  test::Guarded out(ctx(), DType::f32, {c.B, c.Lq, HD});
  ops::AttentionOptions o;
  o.heads = c.H;
  o.scale = 0.3f;
  o.key_mask = tm.view();
  gpu::Stream s(ctx());
  ops::attention(s, tq, tk, tv, out, o);
  s.run();
  EXPECT_LT(test::normalized_error(out.read_f32(), want), 1e-5);
  out.check_guards();
}

TEST_F(AttentionTest, RejectsBadArgumentsWithAClearMessage) {
  gpu::Tensor q(ctx(), DType::f32, {2, 5, 64});
  gpu::Tensor k(ctx(), DType::f32, {2, 7, 64});
  gpu::Tensor v(ctx(), DType::f32, {2, 7, 64});
  gpu::Tensor out(ctx(), DType::f32, {2, 5, 64});
  gpu::Stream s(ctx());
  auto expect_error = [&](const ops::AttentionOptions& o, const gpu::TensorView& kk, const gpu::TensorView& vv,
                          const char* msg) {
    try {
      ops::attention(s, q, kk, vv, out, o);
      FAIL() << "no error, expected " << msg;
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), msg);
    }
  };
  ops::AttentionOptions o;
  o.heads = 3;
  expect_error(o, k, v, "attention: q f32[2,5,64] has 64 columns, which 3 heads do not divide");
  o.heads = 32;
  expect_error(o, k, v, "attention: head dim 2 (q f32[2,5,64], 32 heads) must be a multiple of 4, at most 256");
  o.heads = 4;
  gpu::Tensor k_bad(ctx(), DType::f32, {2, 7, 32});
  expect_error(o, k_bad, v, "attention: k f32[2,7,32] must be [2,7,64] for q f32[2,5,64]");
  gpu::Tensor v_bad(ctx(), DType::f32, {2, 6, 64});
  expect_error(o, k, v_bad, "attention: v f32[2,6,64] must have the shape of k f32[2,7,64]");
  gpu::Tensor km(ctx(), DType::i32, {2, 5});
  o.key_mask = km.view();
  expect_error(o, k, v, "attention: key_mask i32[2,5] must be [2,7] (or [7]) for k f32[2,7,64]");
  o.key_mask.reset();
  gpu::Tensor am(ctx(), DType::f32, {3, 5, 7});
  o.mask = am.view();
  expect_error(o, k, v,
               "attention: mask f32[3,5,7] must be [5,7], [2,5,7] or [2,4,5,7] (1 broadcasts B or H) for q "
               "f32[2,5,64] and k f32[2,7,64]");
  o.mask.reset();
  gpu::Tensor ki(ctx(), DType::i32, {2, 7, 64});
  expect_error(o, ki, v, "attention: k i32[2,7,64] must be f32 or f16");
}

}  // namespace
}  // namespace tessera
