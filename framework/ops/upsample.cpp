#include "ops/upsample.hpp"

namespace tessera::ops {
namespace {

struct UpsamplePush {
  int32_t C, H, W;
  int32_t x_offset, x_sb, x_sc, x_sh;
  int32_t o_offset, o_sb, o_sc, o_sh;
  int32_t rows;
};

}  // namespace

void upsample_nearest2x(gpu::Stream& s, const TensorView& x, const TensorView& out) {
  const char* op = "upsample_nearest2x";
  expect_dtype(op, "x", x, {DType::f32, DType::f16});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "x", x, 4, 4);
  expect_rank(op, "out", out, 4, 4);
  expect_rows_contiguous(op, "x", x);
  expect_rows_contiguous(op, "out", out);
  const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  if (out.shape[0] != B || out.shape[1] != C || out.shape[2] != 2 * H || out.shape[3] != 2 * W)
    fail(op, "out " + out.str() + " must be [" + std::to_string(B) + "," + std::to_string(C) + "," +
                 std::to_string(2 * H) + "," + std::to_string(2 * W) + "] for x " + x.str());
  if (x.numel() == 0) return;

  gpu::Context& ctx = context_of(x);
  const int TP = 4, WG = 64;
  const gpu::Kernel& k =
      ctx.kernel({"upsample_nearest2x", {gpu::Access::texel, gpu::Access::storage}, sizeof(UpsamplePush), {WG, TP}});
  UpsamplePush p{};
  p.C = i32(op, C);
  p.H = i32(op, H);
  p.W = i32(op, W);
  p.x_offset = i32(op, x.offset);
  p.x_sb = i32(op, x.strides[0]);
  p.x_sc = i32(op, x.strides[1]);
  p.x_sh = i32(op, x.strides[2]);
  p.o_offset = i32(op, out.offset);
  p.o_sb = i32(op, out.strides[0]);
  p.o_sc = i32(op, out.strides[1]);
  p.o_sh = i32(op, out.strides[2]);
  p.rows = i32(op, B * C * H);
  const int64_t items = B * C * H * ((W + TP - 1) / TP);
  i32(op, items);
  const gpu::Bind binds[] = {gpu::Bind::texel(x, 1), gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, gpu::groups_for(ctx, static_cast<uint64_t>(items), WG), op);
}

}  // namespace tessera::ops
