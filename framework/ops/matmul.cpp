#include "ops/matmul.hpp"

#include <algorithm>
#include <cstring>

namespace tessera::ops {
namespace {

struct MatmulPush {
  int32_t M, N, K;
  int32_t a_offset, a_row, a_batch;
  int32_t w_offset, w_row, w_batch;
  int32_t c_offset, c_row, c_batch;
  int32_t bias_offset, has_bias;
};

struct MatvecPush {
  int32_t N, K4;
  int32_t x_offset, x_batch;
  int32_t rows;
  int32_t w_offset, w_row;
  int32_t y_offset, y_batch;
  int32_t bias_offset, has_bias;
};

bool is_cpu(const gpu::Context& ctx) { return ctx.info().type == VK_PHYSICAL_DEVICE_TYPE_CPU; }

// The epilogue's activation as activation.glsl numbers it: ops::Unary's order.
int act_id(const Epilogue& e) { return static_cast<int>(e.activation); }

// Decoding: y = x W^T for a few rows of x ([N, K] weights), streaming W once for all of them. `rows` rows
// of x start x_pitch floats apart, their outputs y_pitch floats apart.
void matvec(gpu::Stream& s, const TensorView& a, const TensorView& w, const TensorView& out,
            const std::optional<TensorView>& bias, int64_t rows, int64_t x_pitch, int64_t y_pitch, int64_t N, int64_t K,
            const Epilogue& e) {
  const char* op = "matmul";
  gpu::Context& ctx = context_of(a);
  const auto& f = ctx.features();
  // On a CPU device lanes are SIMD slots and a lane keeps whole rows (measured on lavapipe: 8 rows per
  // lane, 16 lanes per group, ~2 ms for 4096x1024 f32). GPUs share a row across a subgroup so that the
  // weight reads of neighbouring lanes coalesce, and reduce with subgroupAdd.
  const bool subgroup_rows = !is_cpu(ctx) && f.subgroup_in_compute &&
                             (f.subgroup_ops & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) && f.subgroup_size >= 4 &&
                             f.subgroup_size <= 128;
  const int split = subgroup_rows ? static_cast<int>(f.subgroup_size) : 1;
  const int TN = subgroup_rows ? 2 : 8;
  const int WG = subgroup_rows ? std::max(128, split) : 16;
  // Rows of x per invocation: every weight fetch then serves that many outputs.
  const int R = rows >= 4 ? 4 : rows >= 2 ? 2 : 1;
  const gpu::Kernel& k = ctx.kernel({"matvec", {gpu::Access::texel, gpu::Access::texel, gpu::Access::texel, gpu::Access::storage},
                                     sizeof(MatvecPush), {WG, TN, split, R, act_id(e), e.accumulate ? 1 : 0}});
  MatvecPush p{};
  p.N = i32(op, N);
  p.K4 = i32(op, K / 4);
  p.x_offset = i32(op, a.offset / 4);
  p.x_batch = i32(op, x_pitch / 4);
  p.rows = i32(op, rows);
  p.w_offset = i32(op, w.offset / 4);
  p.w_row = i32(op, w.strides[0] / 4);
  p.y_offset = i32(op, out.offset);
  p.y_batch = i32(op, y_pitch);
  p.has_bias = bias ? 1 : 0;
  p.bias_offset = bias ? i32(op, bias->offset) : 0;
  const int64_t rows_per_group = static_cast<int64_t>(WG / split) * TN;
  auto groups = gpu::groups_for(ctx, static_cast<uint64_t>((N + rows_per_group - 1) / rows_per_group), 1);
  groups[2] = static_cast<uint32_t>((rows + R - 1) / R);
  const gpu::Bind binds[] = {gpu::Bind::texel(a, 4), gpu::Bind::texel(w, 4), gpu::Bind::texel(bias ? *bias : w, 1),
                             gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, groups, "matvec");
}

// Register tile (TM rows x TN columns per invocation) and workgroup size.
struct Tile {
  int TM, TN, WG;
};

// Rows per tile of a packed weight: the TN of the four-wide [N, K] kernel on this device.
int packed_rows(const gpu::Context& ctx) { return is_cpu(ctx) ? 16 : 4; }

Tile choose_tile(const gpu::Context& ctx, int64_t M, bool nk, bool vec4) {
  // Rows per invocation: the smallest power of two covering M, up to the tile height.
  auto rows = [&](int most) {
    int tm = 1;
    while (tm < most && tm < M) tm *= 2;
    return tm;
  };
  if (!is_cpu(ctx)) return {rows(4), nk ? 4 : (vec4 ? 2 : 4), 64};
  // On lavapipe every texel fetch is dear and every lane is a SIMD slot: big register tiles amortise the
  // fetches (tile sweeps on 1024^3, in docs/PERFORMANCE.md: 4x4 13, 8x8 21, 16x16 31 GFLOP/s).
  if (nk && vec4) return {rows(16), 16, 16};
  return {rows(8), 8, 16};
}

void check_bias(const std::optional<TensorView>& bias, int64_t N) {
  if (!bias) return;
  expect_dtype("matmul", "bias", *bias, {DType::f32, DType::f16});
  if (bias->rank != 1 || bias->shape[0] != N || !bias->contiguous())
    fail("matmul", "bias " + bias->str() + " must be a contiguous [" + std::to_string(N) + "]");
}

// Records the tiled kernel `shader` with tile `t` over a [B, M, N] output.
void dispatch_tiled(gpu::Stream& s, const std::string& shader, const Tile& t, const MatmulPush& p, const TensorView& a,
                    int a_lanes, const TensorView& w, int w_lanes, const std::optional<TensorView>& bias,
                    const TensorView& out, int64_t B, int64_t cols, const Epilogue& e) {
  gpu::Context& ctx = context_of(a);
  const gpu::Kernel& k = ctx.kernel({shader, {gpu::Access::texel, gpu::Access::texel, gpu::Access::texel, gpu::Access::storage},
                                     sizeof(MatmulPush), {t.WG, t.TM, t.TN, act_id(e), e.accumulate ? 1 : 0}});
  const int64_t tiles = ((p.M + t.TM - 1) / t.TM) * ((cols + t.TN - 1) / t.TN);
  auto groups = gpu::groups_for(ctx, static_cast<uint64_t>(tiles), static_cast<uint32_t>(t.WG));
  groups[2] = static_cast<uint32_t>(B);
  const gpu::Bind binds[] = {gpu::Bind::texel(a, a_lanes), gpu::Bind::texel(w, w_lanes),
                             gpu::Bind::texel(bias ? *bias : a, 1), gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, groups, "matmul");
}

void matmul_packed(gpu::Stream& s, const TensorView& a, const TensorView& w, const TensorView& out,
                   const std::optional<TensorView>& bias, int64_t B, int64_t M, int64_t K, const Epilogue& e) {
  const char* op = "matmul";
  gpu::Context& ctx = context_of(a);
  const int T = packed_rows(ctx);
  const int64_t N = out.dim(-1);
  if (w.rank != 4 || w.shape[2] != T || w.shape[3] != 4 || !w.contiguous())
    fail(op, "packed w " + w.str() + " was not made by pack_weights() for this device (tile " + std::to_string(T) + ")");
  if (w.shape[1] * 4 != K) fail(op, "a " + a.str() + " has K=" + std::to_string(K) + " but packed w " + w.str() +
                                        " has K=" + std::to_string(w.shape[1] * 4));
  if (N > w.shape[0] * T || N <= (w.shape[0] - 1) * T)
    fail(op, "out " + out.str() + " has N=" + std::to_string(N) + " but packed w " + w.str() + " holds " +
                 std::to_string((w.shape[0] - 1) * T + 1) + " to " + std::to_string(w.shape[0] * T) + " rows");
  if (out.dim(-2) != M || (a.rank == 3 && out.shape[0] != B))
    fail(op, "out " + out.str() + " must be [" + (a.rank == 3 ? std::to_string(B) + "," : "") + std::to_string(M) +
                 "," + std::to_string(N) + "] for a " + a.str());
  if (!texel_aligned(a, 4)) fail(op, "a " + a.str() + " must have offsets and row pitch divisible by 4 for a packed w");
  check_bias(bias, N);
  if (M == 0 || N == 0) return;
  Tile t = choose_tile(ctx, M, true, true);
  t.TN = T;
  MatmulPush p{};
  p.M = i32(op, M);
  p.N = i32(op, N);
  p.K = i32(op, K);
  p.a_offset = i32(op, a.offset / 4);
  p.a_row = i32(op, a.strides[a.rank - 2] / 4);
  p.a_batch = a.rank == 3 ? i32(op, a.strides[0] / 4) : 0;
  p.w_offset = i32(op, w.offset / 4);
  p.c_offset = i32(op, out.offset);
  p.c_row = i32(op, out.strides[out.rank - 2]);
  p.c_batch = out.rank == 3 ? i32(op, out.strides[0]) : 0;
  p.has_bias = bias ? 1 : 0;
  p.bias_offset = bias ? i32(op, bias->offset) : 0;
  dispatch_tiled(s, "matmul_nk_vec4_packed", t, p, a, 4, w, 4, bias, out, B, N, e);
}

}  // namespace

Tensor pack_weights(gpu::Context& ctx, const TensorView& w, WeightLayout layout) {
  const char* op = "pack_weights";
  expect_dtype(op, "w", w, {DType::f32, DType::f16});
  expect_rank(op, "w", w, 2, 2);
  if (layout == WeightLayout::packed) fail(op, "w " + w.str() + " is packed already");
  const bool nk = layout == WeightLayout::out_in;
  const int64_t N = nk ? w.shape[0] : w.shape[1];
  const int64_t K = nk ? w.shape[1] : w.shape[0];
  if (K % 4) fail(op, "w " + w.str() + " has K=" + std::to_string(K) + ", not a multiple of 4; use it unpacked");
  const int T = packed_rows(ctx);
  const int64_t NB = (N + T - 1) / T;
  const uint32_t es = gpu::dtype_size(w.dtype);
  // Raw elements, whatever the dtype: packing only moves them.
  TensorView raw = w;
  std::vector<uint8_t> src(static_cast<size_t>(N * K) * es);
  if (w.dtype == DType::f16) {
    auto v = gpu::download_f32(w);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = gpu::float_to_half(v[i]);
      std::memcpy(&src[i * 2], &h, 2);
    }
  } else {
    raw.dtype = DType::i32;  // bit-exact copy of the floats
    auto v = gpu::download_i32(raw);
    std::memcpy(src.data(), v.data(), src.size());
  }
  std::vector<uint8_t> dst(static_cast<size_t>(NB * K * T) * es, 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const int64_t from = nk ? n * K + k : k * N + n;
      const int64_t to = (((n / T) * (K / 4) + k / 4) * T + n % T) * 4 + k % 4;
      std::memcpy(&dst[static_cast<size_t>(to) * es], &src[static_cast<size_t>(from) * es], es);
    }
  Tensor packed(ctx, w.dtype, {NB, K / 4, T, 4}, "packed weight");
  gpu::upload_bytes(packed, dst.data(), dst.size());
  return packed;
}

void matmul(gpu::Stream& s, const TensorView& a, const TensorView& w, const TensorView& out, WeightLayout layout,
            std::optional<TensorView> bias, Epilogue epilogue) {
  const char* op = "matmul";
  expect_dtype(op, "a", a, {DType::f32});
  expect_dtype(op, "w", w, {DType::f32, DType::f16});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "a", a, 2, 3);
  expect_rank(op, "out", out, a.rank, a.rank);
  expect_rows_contiguous(op, "a", a);
  expect_rows_contiguous(op, "out", out);
  if (layout != WeightLayout::packed) {
    expect_rank(op, "w", w, 2, 3);
    expect_rows_contiguous(op, "w", w);
  }

  const int64_t B = a.rank == 3 ? a.shape[0] : 1;
  const int64_t M = a.dim(-2), K = a.dim(-1);
  if (layout == WeightLayout::packed) return matmul_packed(s, a, w, out, bias, B, M, K, epilogue);
  const bool nk = layout == WeightLayout::out_in;
  const int64_t N = nk ? w.dim(-2) : w.dim(-1);
  const int64_t WK = nk ? w.dim(-1) : w.dim(-2);
  if (WK != K)
    fail(op, "a " + a.str() + " has K=" + std::to_string(K) + " but w " + w.str() + (nk ? " [N,K]" : " [K,N]") +
                 " has K=" + std::to_string(WK));
  if (w.rank == 3 && (a.rank != 3 || w.shape[0] != B))
    fail(op, "batched w " + w.str() + " needs a with the same batch, got a " + a.str());
  if (out.dim(-2) != M || out.dim(-1) != N || (a.rank == 3 && out.shape[0] != B))
    fail(op, "out " + out.str() + " must be [" + (a.rank == 3 ? std::to_string(B) + "," : "") + std::to_string(M) +
                 "," + std::to_string(N) + "] for a " + a.str() + " and w " + w.str());
  check_bias(bias, N);
  if (M == 0 || N == 0) return;

  // Four-wide fetches when the layout allows; the same kernel reads one float at a time otherwise.
  const bool vec4 = K % 4 == 0 && texel_aligned(a, 4) && (nk ? texel_aligned(w, 4) : (N % 4 == 0 && texel_aligned(w, 4)));
  // A few rows against [N, K] weights: one pass over the weights (decoding, a batch of sequences).
  if (nk && vec4 && w.rank == 2) {
    if (M == 1)
      return matvec(s, a, w, out, bias, B, a.rank == 3 ? a.strides[0] : 0, out.rank == 3 ? out.strides[0] : 0, N, K,
                    epilogue);
    if (a.rank == 2 && M <= 8) return matvec(s, a, w, out, bias, M, a.strides[0], out.strides[0], N, K, epilogue);
  }

  const int a_lanes = vec4 && nk ? 4 : 1;
  const int w_lanes = vec4 ? 4 : 1;
  gpu::Context& ctx = context_of(a);
  const Tile t = choose_tile(ctx, M, nk, vec4);
  const std::string shader = std::string("matmul_") + (nk ? "nk" : "kn") + (vec4 ? "_vec4" : "");
  MatmulPush p{};
  p.M = i32(op, M);
  p.N = i32(op, N);
  p.K = i32(op, K);
  p.a_offset = i32(op, a.offset / a_lanes);
  p.a_row = i32(op, a.strides[a.rank - 2] / a_lanes);
  p.a_batch = a.rank == 3 ? i32(op, a.strides[0] / a_lanes) : 0;
  p.w_offset = i32(op, w.offset / w_lanes);
  p.w_row = i32(op, w.strides[w.rank - 2] / w_lanes);
  p.w_batch = w.rank == 3 ? i32(op, w.strides[0] / w_lanes) : 0;
  p.c_offset = i32(op, out.offset);
  p.c_row = i32(op, out.strides[out.rank - 2]);
  p.c_batch = out.rank == 3 ? i32(op, out.strides[0]) : 0;
  p.has_bias = bias ? 1 : 0;
  p.bias_offset = bias ? i32(op, bias->offset) : 0;

  dispatch_tiled(s, shader, t, p, a, a_lanes, w, w_lanes, bias, out, B, vec4 && !nk ? N / 4 : N, epilogue);
}

}  // namespace tessera::ops
