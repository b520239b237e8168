#include "ops/attention.hpp"

#include <algorithm>
#include <cmath>

namespace tessera::ops {
namespace {

struct AttentionPush {
  int32_t Lq, Lk, H;
  int32_t causal, causal_shift;
  float scale;
  int32_t q_offset, q_row, q_batch;
  int32_t k_offset, k_row, k_batch;
  int32_t v_offset, v_row, v_batch;
  int32_t o_offset, o_row, o_batch;
  int32_t km_kind, km_offset, km_batch;
  int32_t am, am_offset, am_row, am_batch, am_head;
  int32_t splits, split_len;
};
static_assert(sizeof(AttentionPush) <= 128);

// Batch stride of a [B, ...] or [...] view: 0 when it has no batch dimension or broadcasts it.
int64_t batch_stride(const TensorView& t, int batched_rank) {
  return t.rank == batched_rank && t.shape[0] > 1 ? t.strides[0] : 0;
}

std::string dims(std::initializer_list<int64_t> d) {
  std::string s = "[";
  for (int64_t x : d) s += (s.size() > 1 ? "," : "") + std::to_string(x);
  return s + "]";
}

// Items (batch x head x query block) below which the keys are split over invocations, the fewest keys a
// split takes, and the most splits: enough work for every core, and a merge that stays cheap (the last
// split of each item reads every partial record through storage-buffer loads).
constexpr int64_t kSplitTarget = 64;
constexpr int64_t kMinSplitKeys = 32;
constexpr int64_t kMaxSplits = 64;

}  // namespace

uint64_t AttentionWorkspace::bytes() const {
  uint64_t n = 0;
  for (const gpu::Tensor* t : {&partials_, &counters_})
    if (t->valid()) n += t->buffer().size();
  return n;
}

AttentionWorkspace::Views AttentionWorkspace::reserve(gpu::Stream& s, gpu::Context& ctx, int64_t floats,
                                                      int64_t counters) {
  // Room to grow: decode steps ask for a little more each time the cache gets longer.
  auto grow = [&](gpu::Tensor& t, DType dtype, int64_t n, const char* name, bool zero) {
    if (t.valid() && t.numel() >= n) return;
    const int64_t size = std::max<int64_t>(n, t.valid() ? t.numel() * 2 : 0);
    if (t.valid()) retired_.push_back(std::move(t));
    t = gpu::Tensor(ctx, dtype, {size}, name);
    if (zero) s.fill(t.buffer(), 0, t.buffer().size(), 0);
  };
  grow(partials_, DType::f32, floats, "attention partials", false);
  grow(counters_, DType::i32, counters, "attention counters", true);
  return {partials_.view().slice(0, 0, floats), counters_.view().slice(0, 0, counters)};
}

void attention(gpu::Stream& s, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
               const AttentionOptions& o, AttentionWorkspace* workspace) {
  const char* op = "attention";
  expect_dtype(op, "q", q, {DType::f32, DType::f16});
  expect_dtype(op, "k", k, {DType::f32, DType::f16});
  expect_dtype(op, "v", v, {DType::f32, DType::f16});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "q", q, 2, 3);
  expect_rank(op, "k", k, q.rank, q.rank);
  expect_rank(op, "v", v, q.rank, q.rank);
  expect_rank(op, "out", out, q.rank, q.rank);
  expect_rows_contiguous(op, "q", q);
  expect_rows_contiguous(op, "k", k);
  expect_rows_contiguous(op, "v", v);
  expect_rows_contiguous(op, "out", out);

  const bool batched = q.rank == 3;
  const int64_t B = batched ? q.shape[0] : 1;
  const int64_t Lq = q.dim(-2), HD = q.dim(-1), Lk = k.dim(-2);
  const int64_t H = o.heads;
  if (H < 1 || HD % H)
    fail(op, "q " + q.str() + " has " + std::to_string(HD) + " columns, which " + std::to_string(H) +
                 " heads do not divide");
  const int64_t D = HD / H;
  if (D % 4 || D > 256)
    fail(op, "head dim " + std::to_string(D) + " (q " + q.str() + ", " + std::to_string(H) +
                 " heads) must be a multiple of 4, at most 256");
  const std::string kv_shape = batched ? dims({B, Lk, HD}) : dims({Lk, HD});
  if ((batched && k.shape[0] != B) || k.dim(-1) != HD)
    fail(op, "k " + k.str() + " must be " + kv_shape + " for q " + q.str());
  if (!v.same_shape(k)) fail(op, "v " + v.str() + " must have the shape of k " + k.str());
  expect_same_shape(op, "out", out, "q", q);

  gpu::Context& ctx = context_of(q);
  if ((q.dtype == DType::f16 || k.dtype == DType::f16 || v.dtype == DType::f16) && !ctx.features().f16_texel_fetch)
    fail(op, "this device cannot read f16 tensors through texel buffers; convert q, k and v to f32");

  AttentionPush p{};
  p.km_kind = 0;
  if (o.key_mask) {
    const TensorView& m = *o.key_mask;
    expect_dtype(op, "key_mask", m, {DType::f32, DType::i32});
    expect_rank(op, "key_mask", m, 1, 2);
    expect_rows_contiguous(op, "key_mask", m);
    if (m.dim(-1) != Lk || (m.rank == 2 && m.shape[0] != B && m.shape[0] != 1))
      fail(op, "key_mask " + m.str() + " must be " + dims({B, Lk}) + " (or " + dims({Lk}) + ") for k " + k.str());
    p.km_kind = m.dtype == DType::f32 ? 1 : 2;
    p.km_offset = i32(op, m.offset);
    p.km_batch = i32(op, batch_stride(m, 2));
  }
  if (o.mask) {
    const TensorView& m = *o.mask;
    expect_dtype(op, "mask", m, {DType::f32});
    expect_rank(op, "mask", m, 2, 4);
    expect_rows_contiguous(op, "mask", m);
    const bool ok_b = m.rank < 3 || m.shape[0] == B || m.shape[0] == 1;
    const bool ok_h = m.rank < 4 || m.shape[1] == H || m.shape[1] == 1;
    if (m.dim(-2) != Lq || m.dim(-1) != Lk || !ok_b || !ok_h)
      fail(op, "mask " + m.str() + " must be " + dims({Lq, Lk}) + ", " + dims({B, Lq, Lk}) + " or " +
                   dims({B, H, Lq, Lk}) + " (1 broadcasts B or H) for q " + q.str() + " and k " + k.str());
    p.am = 1;
    p.am_offset = i32(op, m.offset);
    p.am_row = i32(op, m.stride(-2));
    p.am_batch = m.rank >= 3 && m.shape[0] > 1 ? i32(op, m.strides[0]) : 0;
    p.am_head = m.rank == 4 && m.shape[1] > 1 ? i32(op, m.strides[1]) : 0;
  }
  if (B == 0 || Lq == 0 || H == 0) return;

  const bool vec4 = texel_aligned(q, 4) && texel_aligned(k, 4) && texel_aligned(v, 4);
  const int lanes = vec4 ? 4 : 1;
  const int D4 = static_cast<int>(D / 4);
  // Query rows per invocation: each fetched key and value texel serves QB rows. Fewer for wide heads:
  // the kernel is unrolled over QB x D / 4, and beyond 128 its compile time (seconds on lavapipe) grows
  // faster than its speed. KB keys share one rescaling of the accumulators.
  int QB = Lq >= 8 ? 8 : Lq >= 4 ? 4 : 1;
  while (QB > 1 && QB * (D / 4) > 128) QB /= 2;
  const int KB = 4;
  const int WG = 32;
  const int64_t NQB = (Lq + QB - 1) / QB;

  p.Lq = i32(op, Lq);
  p.Lk = i32(op, Lk);
  p.H = i32(op, H);
  p.causal = o.causal ? 1 : 0;
  p.causal_shift = i32(op, Lk - Lq);
  p.scale = static_cast<float>((o.scale ? *o.scale : 1.0 / std::sqrt(static_cast<double>(D))) * 1.4426950408889634);
  p.q_offset = i32(op, q.offset);
  p.q_row = i32(op, q.stride(-2));
  p.q_batch = i32(op, batch_stride(q, 3));
  p.k_offset = i32(op, k.offset);
  p.k_row = i32(op, k.stride(-2));
  p.k_batch = i32(op, batch_stride(k, 3));
  p.v_offset = i32(op, v.offset);
  p.v_row = i32(op, v.stride(-2));
  p.v_batch = i32(op, batch_stride(v, 3));
  p.o_offset = i32(op, out.offset);
  p.o_row = i32(op, out.stride(-2));
  p.o_batch = i32(op, batch_stride(out, 3));

  // Decoding: too few items to fill the device, so the keys are split over invocations as well.
  const int64_t items = B * H * NQB;
  int64_t splits = 1;
  if (workspace && items < kSplitTarget && Lk >= 2 * kMinSplitKeys)
    splits = std::min({(kSplitTarget + items - 1) / items, Lk / kMinSplitKeys, kMaxSplits});
  p.splits = static_cast<int32_t>(splits);
  p.split_len = i32(op, (Lk + splits - 1) / splits);

  const gpu::Bind q_bind = gpu::Bind::texel(q, lanes);
  gpu::Bind kmf = gpu::Bind::texel(q, 1), kmi = gpu::Bind::texel(q, 1), am = gpu::Bind::texel(q, 1);
  kmf.format = gpu::TexelFormat::r32f;  // placeholders keep the binding formats valid when a mask is absent
  kmi.format = gpu::TexelFormat::r32i;
  am.format = gpu::TexelFormat::r32f;
  if (o.key_mask) (p.km_kind == 1 ? kmf : kmi) = gpu::Bind::texel(*o.key_mask, 1);
  if (o.mask) am = gpu::Bind::texel(*o.mask, 1);
  std::vector<gpu::Access> layout(6, gpu::Access::texel);
  layout.push_back(gpu::Access::storage);
  auto groups = gpu::groups_for(ctx, static_cast<uint64_t>(NQB * splits * H), WG);
  groups[2] = static_cast<uint32_t>(B);

  if (splits == 1) {
    const gpu::Kernel& kern =
        ctx.kernel({vec4 ? "attention_vec4" : "attention", layout, sizeof(AttentionPush), {WG, D4, QB, KB}});
    const gpu::Bind b[] = {q_bind, gpu::Bind::texel(k, lanes), gpu::Bind::texel(v, lanes), kmf, kmi, am,
                           gpu::Bind::storage_write(out)};
    s.dispatch(kern, b, &p, sizeof p, groups, "attention");
    return;
  }

  const auto scratch = workspace->reserve(s, ctx, B * H * Lq * splits * (D + 4), B * H * NQB);
  std::vector<gpu::Access> split_layout = layout;
  split_layout.push_back(gpu::Access::storage);
  split_layout.push_back(gpu::Access::storage);
  const gpu::Kernel& kern = ctx.kernel(
      {vec4 ? "attention_split_vec4" : "attention_split", split_layout, sizeof(AttentionPush), {WG, D4, QB, KB}});
  const gpu::Bind b[] = {q_bind, gpu::Bind::texel(k, lanes), gpu::Bind::texel(v, lanes), kmf, kmi, am,
                         gpu::Bind::storage_write(out), gpu::Bind::storage_write(scratch.partials),
                         gpu::Bind::storage_write(scratch.counters)};
  s.dispatch(kern, b, &p, sizeof p, groups, "attention split");
}

}  // namespace tessera::ops
