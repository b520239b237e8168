#include "ops/kv_cache.hpp"

namespace tessera::ops {
namespace {

struct AppendPush {
  int32_t T, C, pos;
  int32_t kn_offset, kn_row, kn_batch;
  int32_t vn_offset, vn_row, vn_batch;
  int32_t kc_offset, kc_row, kc_batch;
  int32_t vc_offset, vc_row, vc_batch;
};

}  // namespace

void kv_cache_append(gpu::Stream& s, const TensorView& k, const TensorView& v, const TensorView& k_cache,
                     const TensorView& v_cache, int64_t pos) {
  const char* op = "kv_cache_append";
  expect_dtype(op, "k", k, {DType::f32, DType::f16});
  expect_dtype(op, "v", v, {DType::f32, DType::f16});
  expect_dtype(op, "k_cache", k_cache, {DType::f32, DType::f16});
  expect_dtype(op, "v_cache", v_cache, {k_cache.dtype});
  expect_rank(op, "k", k, 2, 3);
  expect_rank(op, "v", v, k.rank, k.rank);
  expect_rank(op, "k_cache", k_cache, k.rank, k.rank);
  expect_rank(op, "v_cache", v_cache, k.rank, k.rank);
  expect_rows_contiguous(op, "k", k);
  expect_rows_contiguous(op, "v", v);
  expect_rows_contiguous(op, "k_cache", k_cache);
  expect_rows_contiguous(op, "v_cache", v_cache);
  expect_same_shape(op, "v", v, "k", k);
  expect_same_shape(op, "v_cache", v_cache, "k_cache", k_cache);

  const bool batched = k.rank == 3;
  const int64_t B = batched ? k.shape[0] : 1;
  const int64_t T = k.dim(-2), C = k.dim(-1), Lmax = k_cache.dim(-2);
  if ((batched && k_cache.shape[0] != B) || k_cache.dim(-1) != C)
    fail(op, "k_cache " + k_cache.str() + " must be [" + (batched ? std::to_string(B) + "," : "") + "Lmax," +
                 std::to_string(C) + "] for k " + k.str());
  if (pos < 0 || pos + T > Lmax)
    fail(op, "cannot write " + std::to_string(T) + " rows at position " + std::to_string(pos) + " of k_cache " +
                 k_cache.str() + ": it holds " + std::to_string(Lmax) + " rows");
  const bool f16 = k_cache.dtype == DType::f16;
  if (f16) {
    for (const TensorView* c : {&k_cache, &v_cache}) {
      bool even = c->offset % 2 == 0 && C % 2 == 0;
      for (int i = 0; i + 1 < c->rank; ++i) even = even && c->strides[i] % 2 == 0;
      if (!even)
        fail(op, std::string(c == &k_cache ? "k_cache " : "v_cache ") + c->str() +
                     " is f16 and needs an even offset, row width and pitch");
    }
  }
  if (B == 0 || T == 0 || C == 0) return;

  auto batch = [](const TensorView& t) { return t.rank == 3 ? t.strides[0] : 0; };
  AppendPush p{};
  p.T = i32(op, T);
  p.C = i32(op, C);
  p.pos = i32(op, pos);
  p.kn_offset = i32(op, k.offset);
  p.kn_row = i32(op, k.stride(-2));
  p.kn_batch = i32(op, batch(k));
  p.vn_offset = i32(op, v.offset);
  p.vn_row = i32(op, v.stride(-2));
  p.vn_batch = i32(op, batch(v));
  p.kc_offset = i32(op, k_cache.offset);
  p.kc_row = i32(op, k_cache.stride(-2));
  p.kc_batch = i32(op, batch(k_cache));
  p.vc_offset = i32(op, v_cache.offset);
  p.vc_row = i32(op, v_cache.stride(-2));
  p.vc_batch = i32(op, batch(v_cache));
  i32(op, (pos + T) * p.kc_row + B * p.kc_batch + p.kc_offset);  // 32-bit indexing of the caches
  i32(op, (pos + T) * p.vc_row + B * p.vc_batch + p.vc_offset);

  gpu::Context& ctx = context_of(k);
  const int WG = 64;
  const gpu::Kernel& kern =
      ctx.kernel({f16 ? "kv_append_f16" : "kv_append_f32",
                  {gpu::Access::texel, gpu::Access::texel, gpu::Access::storage, gpu::Access::storage},
                  sizeof(AppendPush),
                  {WG}});
  auto groups = gpu::groups_for(ctx, static_cast<uint64_t>(2 * T * (f16 ? C / 2 : C)), WG);
  groups[2] = static_cast<uint32_t>(B);
  const gpu::Bind b[] = {gpu::Bind::texel(k, 1), gpu::Bind::texel(v, 1), gpu::Bind::storage_write(k_cache),
                         gpu::Bind::storage_write(v_cache)};
  s.dispatch(kern, b, &p, sizeof p, groups, "kv_cache_append");
}

}  // namespace tessera::ops
