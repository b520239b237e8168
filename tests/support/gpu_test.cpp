#include "support/gpu_test.hpp"

#include <cmath>
#include <cstring>
#include <memory>

#include "gpu/error.hpp"

namespace tessera::test {

gpu::Context& context() {
  static std::unique_ptr<gpu::Context> ctx = [] {
    gpu::ContextOptions o = gpu::ContextOptions::from_environment();
    o.validate = true;
    return std::make_unique<gpu::Context>(o);
  }();
  return *ctx;
}

void GpuTest::SetUp() { messages_before_ = context().instance().validation_message_count(); }

void GpuTest::TearDown() {
  const uint64_t now = context().instance().validation_message_count();
  EXPECT_EQ(now, messages_before_) << "Vulkan validation reported " << (now - messages_before_)
                                   << " message(s); last: " << context().instance().last_validation_message();
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<int32_t> random_ints(size_t n, uint32_t seed, int32_t lo, int32_t hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = dist(rng);
  return v;
}

std::vector<float> round_to_half(std::span<const float> v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = gpu::half_to_float(gpu::float_to_half(v[i]));
  return out;
}

double normalized_error(std::span<const float> got, std::span<const float> want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    if (std::isnan(got[i]) != std::isnan(want[i])) return INFINITY;
    if (!std::isnan(d)) num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

Guarded::Guarded(gpu::Context& ctx, gpu::DType dtype, std::initializer_list<int64_t> shape, int64_t guard)
    : guard_(guard) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  total_ = n + 2 * guard;
  storage_ = gpu::Tensor(ctx, dtype, {total_}, "guarded output");
  const uint32_t es = gpu::dtype_size(dtype);
  std::vector<uint8_t> fill(static_cast<size_t>(total_) * es);
  for (int64_t i = 0; i < total_; ++i) {
    if (es == 4)
      std::memcpy(&fill[i * 4], &kSentinel, 4);
    else {
      const uint16_t h = 0x7e5a;
      std::memcpy(&fill[i * 2], &h, 2);
    }
  }
  gpu::upload_bytes(storage_, fill.data(), fill.size());
  view_ = storage_.view().slice(0, guard, n).reshape(std::span<const int64_t>(shape.begin(), shape.size()));
}

std::vector<float> Guarded::read_f32() const { return gpu::download_f32(view()); }
std::vector<int32_t> Guarded::read_i32() const { return gpu::download_i32(view()); }

void Guarded::check_guards() const {
  const uint32_t es = gpu::dtype_size(storage_.dtype());
  std::vector<uint8_t> all(static_cast<size_t>(total_) * es);
  gpu::TensorView raw = storage_.view();
  raw.dtype = storage_.dtype();
  if (es == 4) {
    raw.dtype = gpu::DType::i32;
    auto v = gpu::download_i32(raw);
    std::memcpy(all.data(), v.data(), all.size());
  } else {
    auto v = gpu::download_f32(raw);  // f16 guard compares by bit pattern below
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = gpu::float_to_half(v[i]);
      std::memcpy(&all[i * 2], &h, 2);
    }
  }
  const int64_t n = total_ - 2 * guard_;
  for (int64_t i = 0; i < total_; ++i) {
    if (i >= guard_ && i < guard_ + n) continue;
    bool intact;
    if (es == 4) {
      uint32_t x;
      std::memcpy(&x, &all[i * 4], 4);
      intact = x == kSentinel;
    } else {
      uint16_t x;
      std::memcpy(&x, &all[i * 2], 2);
      intact = (x & 0x7c00) == 0x7c00 && (x & 0x3ff);  // still a NaN
    }
    if (!intact) {
      ADD_FAILURE() << "out-of-bounds write at guard element " << (i < guard_ ? i - guard_ : i - guard_ - n)
                    << (i < guard_ ? " (before the output)" : " (after the output)");
      return;
    }
  }
}

}  // namespace tessera::test
