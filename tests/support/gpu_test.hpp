#pragma once
// What every GPU test shares: one validated Context per process, random data, CPU-reference comparison
// by normalized error, and guard regions around outputs that catch out-of-bounds writes.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "gpu/context.hpp"
#include "gpu/error.hpp"
#include "gpu/stream.hpp"
#include "gpu/tensor.hpp"

namespace tessera::test {

// The process-wide test context: validation layers always on, pipeline cache in the build tree.
gpu::Context& context();

// Base fixture: fails the test if the Vulkan validation layer reported anything while it ran.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  gpu::Context& ctx() { return context(); }

 private:
  uint64_t messages_before_ = 0;
};

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f);
std::vector<int32_t> random_ints(size_t n, uint32_t seed, int32_t lo, int32_t hi);
// Rounds every value to the nearest fp16, as an f16 tensor stores it.
std::vector<float> round_to_half(std::span<const float> v);

// ||got - want|| / max(||want||, tiny): the error measure of every op test.
double normalized_error(std::span<const float> got, std::span<const float> want);

// An output tensor with `guard` sentinel elements before and after it. view() is the part the op may
// write; check_guards() fails the test if anything outside it changed.
class Guarded {
 public:
  Guarded(gpu::Context& ctx, gpu::DType dtype, std::initializer_list<int64_t> shape, int64_t guard = 67);
  gpu::TensorView view() const {
    gpu::TensorView v = view_;
    v.buffer = &storage_.buffer();  // the Guarded may have moved since construction
    return v;
  }
  operator gpu::TensorView() const { return view(); }
  std::vector<float> read_f32() const;
  std::vector<int32_t> read_i32() const;
  // Fails the current test with the index of the first overwritten guard element.
  void check_guards() const;

 private:
  gpu::Tensor storage_;
  gpu::TensorView view_;
  int64_t guard_;
  int64_t total_;
};

// Runs `f` and checks that it throws tessera::Error with exactly `message`.
template <class F>
void expect_error(F&& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "no error, expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

constexpr uint32_t kSentinel = 0x7fa5a5a5u;  // a NaN no kernel produces by arithmetic

}  // namespace tessera::test
