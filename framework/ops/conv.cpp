#include "ops/conv.hpp"

namespace tessera::ops {
namespace {

struct ConvPush {
  int32_t Cin, H, W, Cout, Ho, Wo;
  int32_t pad_top, pad_left;
  int32_t x_offset, x_sb, x_sc, x_sh;
  int32_t w_offset, w_co;
  int32_t o_offset, o_sb, o_sc, o_sh;
  int32_t bias_offset, has_bias;
};
static_assert(sizeof(ConvPush) <= 128);

constexpr int kMaxKernel = 7;

std::string padding_str(const Padding2d& p) {
  return "(" + std::to_string(p.top) + "," + std::to_string(p.bottom) + "," + std::to_string(p.left) + "," +
         std::to_string(p.right) + ")";
}

// x, w and out have been checked by the public entry points and reshaped to 2-D form: x [B, Cin, H, W],
// w [Cout, Cin, kh, kw] (as a flat contiguous view), out [B, Cout, Ho, Wo].
void dispatch_conv(gpu::Stream& s, const char* op, const TensorView& x, const TensorView& w, int kh, int kw,
                   std::optional<TensorView> bias, int stride, const Padding2d& pad, const TensorView& out) {
  const int64_t B = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t Cout = out.shape[1], Ho = out.shape[2], Wo = out.shape[3];
  if (B == 0 || Cout == 0 || Ho == 0 || Wo == 0) return;
  gpu::Context& ctx = context_of(x);

  // Four input channels' weights are kh*kw whole texels when Cin is a multiple of 4.
  const bool vec4 = Cin % 4 == 0 && w.offset % 4 == 0;
  const int lanes = vec4 ? 4 : 1;
  // Register blocking: TC output channels x TP pixels of a row. Wide blocks amortise each fetched input
  // window and weight texel over more FMAs (16 x 8 measured best for 3x3 at 128 channels on lavapipe);
  // narrow outputs (the RGB head of a decoder, tiny images) take what they have.
  const int TC = Cout >= 16 ? 16 : (Cout >= 8 ? 8 : static_cast<int>(Cout));
  const int TP = Wo >= 8 ? 8 : (Wo >= 4 ? 4 : static_cast<int>(Wo));
  const int WG = 64;
  // Input windows as whole texels: stride 1, rows of a multiple of 4 and 4-aligned starts and pitches.
  const bool x4 = stride == 1 && TP % 4 == 0 && W % 4 == 0 && texel_aligned(x, 4) && x.strides[2] % 4 == 0;
  const int xl = x4 ? 4 : 1;
  const std::string shader = std::string(vec4 ? "conv_vec4" : "conv") + (x4 ? "_x4" : "");
  const gpu::Kernel& k = ctx.kernel({shader,
                                     {gpu::Access::texel, gpu::Access::texel, gpu::Access::texel, gpu::Access::storage},
                                     sizeof(ConvPush),
                                     {WG, TC, TP, kh, kw, stride, stride, x4 ? (4 - pad.left % 4) % 4 : 0}});

  ConvPush p{};
  p.Cin = i32(op, Cin);
  p.H = i32(op, H);
  p.W = i32(op, W);
  p.Cout = i32(op, Cout);
  p.Ho = i32(op, Ho);
  p.Wo = i32(op, Wo);
  p.pad_top = pad.top;
  p.pad_left = pad.left;
  p.x_offset = i32(op, x.offset / xl);
  p.x_sb = i32(op, x.strides[0] / xl);
  p.x_sc = i32(op, x.strides[1] / xl);
  p.x_sh = i32(op, x.strides[2] / xl);
  p.w_offset = i32(op, w.offset / lanes);
  p.w_co = i32(op, Cin * kh * kw / lanes);
  p.o_offset = i32(op, out.offset);
  p.o_sb = i32(op, out.strides[0]);
  p.o_sc = i32(op, out.strides[1]);
  p.o_sh = i32(op, out.strides[2]);
  p.has_bias = bias ? 1 : 0;
  p.bias_offset = bias ? i32(op, bias->offset) : 0;

  const int64_t items = ((Cout + TC - 1) / TC) * Ho * ((Wo + TP - 1) / TP);
  i32(op, items);
  auto groups = gpu::groups_for(ctx, static_cast<uint64_t>(items), WG);
  groups[2] = static_cast<uint32_t>(B);
  const gpu::Bind binds[] = {gpu::Bind::texel(x, xl), gpu::Bind::texel(w, lanes), gpu::Bind::texel(bias ? *bias : x, 1),
                             gpu::Bind::storage_write(out)};
  s.dispatch(k, binds, &p, sizeof p, groups, op);
}

void check_common(const char* op, const TensorView& x, const TensorView& w, std::optional<TensorView> bias,
                  int stride, const TensorView& out, int rank) {
  expect_dtype(op, "x", x, {DType::f32});
  expect_dtype(op, "w", w, {DType::f32, DType::f16});
  expect_dtype(op, "out", out, {DType::f32});
  expect_rank(op, "x", x, rank, rank);
  expect_rank(op, "w", w, rank, rank);
  expect_rank(op, "out", out, rank, rank);
  expect_rows_contiguous(op, "x", x);
  expect_contiguous(op, "w", w);
  expect_rows_contiguous(op, "out", out);
  if (stride < 1) fail(op, "stride " + std::to_string(stride) + " must be >= 1");
  for (int d = 2; d < rank; ++d)
    if (w.shape[d] < 1 || w.shape[d] > kMaxKernel)
      fail(op, "w " + w.str() + " has a kernel size of " + std::to_string(w.shape[d]) + "; supported are 1 to " +
                   std::to_string(kMaxKernel));
  if (w.shape[1] != x.shape[1])
    fail(op, "w " + w.str() + " has " + std::to_string(w.shape[1]) + " input channels but x " + x.str() + " has " +
                 std::to_string(x.shape[1]));
  if (bias) {
    expect_dtype(op, "bias", *bias, {DType::f32, DType::f16});
    if (bias->rank != 1 || bias->shape[0] != w.shape[0] || !bias->contiguous())
      fail(op, "bias " + bias->str() + " must be a contiguous [" + std::to_string(w.shape[0]) + "]");
  }
}

int64_t out_size(int64_t in, int pad_a, int pad_b, int64_t k, int stride) {
  const int64_t span = in + pad_a + pad_b - k;
  return span < 0 ? 0 : span / stride + 1;
}

}  // namespace

void conv2d(gpu::Stream& s, const TensorView& x, const TensorView& w, std::optional<TensorView> bias, int stride,
            Padding2d padding, const TensorView& out) {
  const char* op = "conv2d";
  check_common(op, x, w, bias, stride, out, 4);
  if (padding.top < 0 || padding.bottom < 0 || padding.left < 0 || padding.right < 0)
    fail(op, "padding " + padding_str(padding) + " must not be negative");
  const int64_t kh = w.shape[2], kw = w.shape[3];
  const int64_t Ho = out_size(x.shape[2], padding.top, padding.bottom, kh, stride);
  const int64_t Wo = out_size(x.shape[3], padding.left, padding.right, kw, stride);
  if (Ho < 1 || Wo < 1)
    fail(op, "kernel " + std::to_string(kh) + "x" + std::to_string(kw) + " of w " + w.str() +
                 " does not fit x " + x.str() + " with padding " + padding_str(padding));
  if (out.shape[0] != x.shape[0] || out.shape[1] != w.shape[0] || out.shape[2] != Ho || out.shape[3] != Wo)
    fail(op, "out " + out.str() + " must be [" + std::to_string(x.shape[0]) + "," + std::to_string(w.shape[0]) + "," +
                 std::to_string(Ho) + "," + std::to_string(Wo) + "] for x " + x.str() + ", w " + w.str() +
                 ", stride " + std::to_string(stride) + ", padding " + padding_str(padding));
  dispatch_conv(s, op, x, w, static_cast<int>(kh), static_cast<int>(kw), bias, stride, padding, out);
}

void conv1d(gpu::Stream& s, const TensorView& x, const TensorView& w, std::optional<TensorView> bias, int stride,
            int padding, const TensorView& out) {
  const char* op = "conv1d";
  check_common(op, x, w, bias, stride, out, 3);
  if (padding < 0) fail(op, "padding " + std::to_string(padding) + " must not be negative");
  const int64_t k = w.shape[2];
  const int64_t Lo = out_size(x.shape[2], padding, padding, k, stride);
  if (Lo < 1)
    fail(op, "kernel " + std::to_string(k) + " of w " + w.str() + " does not fit x " + x.str() + " with padding " +
                 std::to_string(padding));
  if (out.shape[0] != x.shape[0] || out.shape[1] != w.shape[0] || out.shape[2] != Lo)
    fail(op, "out " + out.str() + " must be [" + std::to_string(x.shape[0]) + "," + std::to_string(w.shape[0]) + "," +
                 std::to_string(Lo) + "] for x " + x.str() + ", w " + w.str() + ", stride " + std::to_string(stride) +
                 ", padding " + std::to_string(padding));
  // A 1-D convolution is a 2-D one over a single row: insert H = 1 (its stride is never used).
  auto as_2d = [](const TensorView& t) {
    TensorView v = t;
    v.rank = 4;
    v.shape = {t.shape[0], t.shape[1], 1, t.shape[2]};
    v.strides = {t.strides[0], t.strides[1], t.strides[2] * t.shape[2], t.strides[2]};
    return v;
  };
  dispatch_conv(s, op, as_2d(x), w, 1, static_cast<int>(k), bias, stride, Padding2d{0, 0, padding, padding},
                as_2d(out));
}

}  // namespace tessera::ops
