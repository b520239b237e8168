#include "ops/embedding.hpp"

namespace tessera::ops {
namespace {

struct GatherPush {
  int32_t T, C, V, L;
  int32_t t_off, t_row;
  int32_t ids_off;
  int32_t o_off, o_row;
  int32_t p_off, p_row, pos0;
};

constexpr int kGroup = 64;

}  // namespace

void embedding(gpu::Stream& s, const TensorView& table, const TensorView& ids, const TensorView& out,
               std::optional<TensorView> pos_table, int64_t pos_offset) {
  const char* op = "embedding";
  expect_dtype(op, "table", table, {DType::f32, DType::f16});
  expect_dtype(op, "ids", ids, {DType::i32});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "table", table, 2, 2);
  expect_rank(op, "ids", ids, 1, 3);
  expect_rows_contiguous(op, "table", table);
  expect_contiguous(op, "ids", ids);
  const int64_t V = table.shape[0], C = table.shape[1];
  bool shape_ok = out.rank == ids.rank + 1 && out.dim(-1) == C;
  for (int i = 0; shape_ok && i < ids.rank; ++i) shape_ok = out.shape[i] == ids.shape[i];
  if (!shape_ok) {
    std::string want = "[";
    for (int i = 0; i < ids.rank; ++i) want += std::to_string(ids.shape[i]) + ",";
    fail(op, "out " + out.str() + " must be " + want + std::to_string(C) + "] for ids " + ids.str() + " and table " +
                 table.str());
  }
  expect_rows_contiguous(op, "out", out);
  // Token rows of out must sit at one pitch, so that row t is at offset + t * pitch.
  const int64_t pitch = out.rank >= 2 ? out.strides[out.rank - 2] : C;
  for (int i = out.rank - 3; i >= 0; --i)
    if (out.shape[i] > 1 && out.strides[i] != out.strides[i + 1] * out.shape[i + 1])
      fail(op, "out " + out.str() + " must have its token rows at one pitch; copy it first");
  const int64_t L = ids.dim(-1);
  if (pos_table) {
    expect_dtype(op, "pos_table", *pos_table, {DType::f32, DType::f16});
    expect_rank(op, "pos_table", *pos_table, 2, 2);
    expect_rows_contiguous(op, "pos_table", *pos_table);
    if (pos_table->shape[1] != C)
      fail(op, "pos_table " + pos_table->str() + " must have " + std::to_string(C) + " columns like table " +
                   table.str());
    if (pos_offset < 0 || pos_offset + L > pos_table->shape[0])
      fail(op, "positions " + std::to_string(pos_offset) + ".." + std::to_string(pos_offset + L - 1) +
                   " are outside pos_table " + pos_table->str());
  }
  if (ids.numel() == 0 || C == 0) return;

  const bool vec4 = texel_aligned(table, 4) && (!pos_table || texel_aligned(*pos_table, 4));
  const int lanes = vec4 ? 4 : 1;
  GatherPush p{};
  p.T = i32(op, ids.numel());
  p.C = i32(op, C);
  p.V = i32(op, V);
  p.L = i32(op, L);
  p.t_off = i32(op, table.offset / lanes);
  p.t_row = i32(op, table.strides[0] / lanes);
  p.ids_off = i32(op, ids.offset);
  p.o_off = i32(op, out.offset);
  p.o_row = i32(op, pitch);
  p.p_off = pos_table ? i32(op, pos_table->offset / lanes) : 0;
  p.p_row = pos_table ? i32(op, pos_table->strides[0] / lanes) : 0;
  p.pos0 = i32(op, pos_offset);
  const int64_t invocations = i32(op, ids.numel() * ((C + 3) / 4));

  gpu::Context& ctx = context_of(table);
  const gpu::Kernel& k = ctx.kernel({"gather",
                                     {gpu::Access::texel, gpu::Access::texel, gpu::Access::texel, gpu::Access::storage},
                                     sizeof(GatherPush), {kGroup, vec4 ? 1 : 0, pos_table ? 1 : 0}});
  const gpu::Bind binds[] = {gpu::Bind::texel(table, lanes), gpu::Bind::texel(ids, 1),
                             gpu::Bind::texel(pos_table ? *pos_table : table, lanes), gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, gpu::groups_for(ctx, static_cast<uint64_t>(invocations), kGroup), op);
}

}  // namespace tessera::ops
