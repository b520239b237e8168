// A whole transformer decode step (embedding, layer norm, QKV projection, KV-cache append, attention,
// output projection, GELU MLP, logits, sampling) recorded into one stream: it must cost exactly one
// submission per token and give the same tokens as running every op in its own submission.
#include <set>

#include "ops/attention.hpp"
#include "ops/elementwise.hpp"
#include "ops/embedding.hpp"
#include "ops/kv_cache.hpp"
#include "ops/matmul.hpp"
#include "ops/norm.hpp"
#include "ops/sampling.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

using gpu::DType;
using gpu::Tensor;

constexpr int kVocab = 97, kWidth = 64, kHeads = 4, kMaxLen = 16;

struct TinyModel {
  Tensor embed, pos, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, ln2_w, ln2_b, fc_w, fc2_w, head_w;
  Tensor k_cache, v_cache;
  // Activations of one step.
  Tensor ids, x, h, qkv, att, y, mlp, logits, next;
  ops::AttentionWorkspace workspace;

  explicit TinyModel(gpu::Context& c) {
    uint32_t seed = 10;
    auto weights = [&](std::initializer_list<int64_t> shape, float scale) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      Tensor t(c, DType::f32, shape);
      gpu::upload(t, test::random_floats(static_cast<size_t>(n), seed++, -scale, scale));
      return t;
    };
    embed = weights({kVocab, kWidth}, 1.0f);
    pos = weights({kMaxLen, kWidth}, 0.5f);
    ln1_w = weights({kWidth}, 1.0f);
    ln1_b = weights({kWidth}, 0.1f);
    qkv_w = weights({kWidth, 3 * kWidth}, 0.3f);  // GPT-2 Conv1D layout [in, out]
    qkv_b = weights({3 * kWidth}, 0.1f);
    proj_w = weights({kWidth, kWidth}, 0.2f);
    ln2_w = weights({kWidth}, 1.0f);
    ln2_b = weights({kWidth}, 0.1f);
    fc_w = weights({4 * kWidth, kWidth}, 0.2f);  // Linear layout [out, in]
    fc2_w = weights({kWidth, 4 * kWidth}, 0.1f);
    head_w = weights({kVocab, kWidth}, 0.5f);
    k_cache = Tensor(c, DType::f32, {1, kMaxLen, kWidth});
    v_cache = Tensor(c, DType::f32, {1, kMaxLen, kWidth});
    ids = Tensor(c, DType::i32, {1, 1});
    x = Tensor(c, DType::f32, {1, 1, kWidth});
    h = Tensor(c, DType::f32, {1, 1, kWidth});
    qkv = Tensor(c, DType::f32, {1, 1, 3 * kWidth});
    att = Tensor(c, DType::f32, {1, 1, kWidth});
    y = Tensor(c, DType::f32, {1, 1, kWidth});
    mlp = Tensor(c, DType::f32, {1, 1, 4 * kWidth});
    logits = Tensor(c, DType::f32, {1, kVocab});
    next = Tensor(c, DType::i32, {1});
  }

  // Records step `pos`. With `each_op_alone`, every op is submitted and waited on its own.
  void record_step(gpu::Stream& s, int step, bool each_op_alone) {
    auto sync = [&] {
      if (each_op_alone) s.run();
    };
    ops::embedding(s, embed, ids, x, pos.view(), step);
    sync();
    ops::layer_norm(s, x, ln1_w.view(), ln1_b.view(), 1e-5f, h);
    sync();
    ops::matmul(s, h, qkv_w, qkv, ops::WeightLayout::in_out, qkv_b.view());
    sync();
    const gpu::TensorView q = qkv.view().slice(2, 0, kWidth);
    ops::kv_cache_append(s, qkv.view().slice(2, kWidth, kWidth), qkv.view().slice(2, 2 * kWidth, kWidth), k_cache,
                         v_cache, step);
    sync();
    ops::AttentionOptions o;
    o.heads = kHeads;
    ops::attention(s, q, k_cache.view().slice(1, 0, step + 1), v_cache.view().slice(1, 0, step + 1), att, o,
                   &workspace);
    sync();
    ops::matmul(s, att, proj_w, y, ops::WeightLayout::in_out);
    sync();
    ops::binary(s, ops::Binary::add, x, y, x);
    sync();
    ops::layer_norm(s, x, ln2_w.view(), ln2_b.view(), 1e-5f, h);
    sync();
    ops::matmul(s, h, fc_w, mlp);
    sync();
    ops::unary(s, ops::Unary::gelu_tanh, mlp, mlp);
    sync();
    ops::matmul(s, mlp, fc2_w, y);
    sync();
    ops::binary(s, ops::Binary::add, x, y, x);
    sync();
    ops::matmul(s, x.view().reshape({1, kWidth}), head_w, logits);
    sync();
    ops::SampleParams params;
    params.temperature = 0;  // greedy: the comparison below is exact
    ops::sample(s, logits, params, next);
  }
};

class DecodeStepTest : public test::GpuTest {};

std::vector<int32_t> generate(gpu::Context& c, bool each_op_alone, uint64_t* submissions) {
  TinyModel m(c);
  gpu::Stream s(c);
  std::vector<int32_t> tokens{5};
  for (int step = 0; step < 8; ++step) {
    gpu::upload(m.ids, std::vector<int32_t>{tokens.back()});
    m.record_step(s, step, each_op_alone);
    s.run();
    tokens.push_back(gpu::download_i32(m.next)[0]);
  }
  *submissions = s.submissions();
  return tokens;
}

TEST_F(DecodeStepTest, OneSubmissionPerTokenMatchesOpByOp) {
  uint64_t fused_submissions = 0, alone_submissions = 0;
  const auto fused = generate(ctx(), false, &fused_submissions);
  const auto alone = generate(ctx(), true, &alone_submissions);
  EXPECT_EQ(fused_submissions, 8u) << "one submission per decoded token";
  EXPECT_GT(alone_submissions, 8u * 10);
  EXPECT_EQ(fused, alone);
  // The tiny random model must not be degenerate, or the comparison proves little.
  EXPECT_GT(std::set<int32_t>(fused.begin(), fused.end()).size(), 2u);
}

}  // namespace
}  // namespace tessera
