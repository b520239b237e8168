// The runtime under the ops: device selection, memory budget and suballocation, the on-disk pipeline
// cache, tensor views and transfers, and streams that chain dependent dispatches in one submission.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "gpu/device.hpp"
#include "gpu/error.hpp"
#include "ops/matmul.hpp"
#include "support/gpu_test.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using gpu::DType;

class RuntimeTest : public test::GpuTest {};

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(RuntimeTest, SelectsByRankIndexAndName) {
  const gpu::Instance& inst = ctx().instance();
  const auto all = inst.describe_all();
  ASSERT_FALSE(all.empty());
  const uint32_t best = inst.select("");
  for (const auto& d : all) EXPECT_LE(d.rank(), all[best].rank());
  EXPECT_EQ(inst.select("0"), 0u);
  std::string part = all[0].name.substr(0, 4);
  for (char& c : part) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(inst.select(part), 0u) << "name match is case-insensitive";
  const std::string listing = "\n  0: " + all[0].name + " (" + all[0].type_name() + ")";
  if (all.size() == 1) {
    EXPECT_EQ(error_of([&] { inst.select("7"); }), "device index 7 is out of range; devices:" + listing);
    EXPECT_EQ(error_of([&] { inst.select("no-such-gpu"); }), "no Vulkan device matches \"no-such-gpu\"; devices:" + listing);
  }
}

TEST_F(RuntimeTest, ReportsTheFeaturesKernelsChooseFrom) {
  const auto& f = ctx().features();
  EXPECT_GT(f.subgroup_size, 0u);
  EXPECT_GE(f.shared_memory_bytes, 16384u);
  EXPECT_GE(f.max_workgroup_invocations, 128u);
  EXPECT_GE(f.max_push_constants, 128u);
  EXPECT_GT(f.max_texel_buffer_elements, 65535u);
}

TEST_F(RuntimeTest, MemoryBudgetFailsCleanlyAndNamesTheAllocation) {
  gpu::ContextOptions o;
  o.validate = true;
  o.memory_budget = 1 << 20;
  o.pipeline_cache = false;
  gpu::Context small(o);
  gpu::Tensor fits(small, DType::f32, {1000}, "fits");
  EXPECT_EQ(error_of([&] { gpu::Tensor big(small, DType::f32, {512, 1024}, "activations"); }),
            "GPU memory budget exceeded allocating activations f32[512,1024]: requested 2.0 MiB, in use 0.0 MiB, "
            "budget 1.0 MiB (raise it with TESSERA_MEMORY_BUDGET=<MiB>)");
  // Nothing half-made stays behind: the budget still has room for what fits.
  EXPECT_EQ(small.allocator().stats().in_use, 4000u);
  gpu::Tensor still_fits(small, DType::f32, {100000}, "more");
  EXPECT_EQ(small.allocator().stats().in_use, 404000u);
}

TEST_F(RuntimeTest, SmallBuffersShareBlocksAndFreedSpaceIsReused) {
  gpu::ContextOptions o;
  o.validate = true;
  o.pipeline_cache = false;
  gpu::Context c(o);
  {
    std::vector<gpu::Tensor> many;
    for (int i = 0; i < 100; ++i) many.emplace_back(c, DType::f32, std::initializer_list<int64_t>{1000 + i});
    EXPECT_EQ(c.allocator().stats().blocks, 1u);
    many.erase(many.begin() + 10, many.begin() + 60);
    for (int i = 0; i < 50; ++i) many.emplace_back(c, DType::f32, std::initializer_list<int64_t>{900});
    EXPECT_EQ(c.allocator().stats().blocks, 1u);
  }
  EXPECT_EQ(c.allocator().stats().in_use, 0u);
  // A large request gets a block of its own, returned when freed.
  { gpu::Tensor big(c, DType::f32, {64, 1024, 1024}); EXPECT_EQ(c.allocator().stats().blocks, 2u); }
  EXPECT_EQ(c.allocator().stats().blocks, 1u);
}

class PipelineCacheTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    dir_ = fs::temp_directory_path() / ("tessera-cache-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ::setenv("TESSERA_CACHE_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    RuntimeTest::TearDown();
  }
  // Makes a context, compiles one kernel, and reports whether the cache came from disk.
  bool run_once() {
    gpu::ContextOptions o;
    o.validate = true;
    gpu::Context c(o);
    auto a = gpu::Tensor::from_f32(c, std::vector<float>{1, 2, 3, 4}, {2, 2});
    gpu::Tensor out(c, DType::f32, {2, 2});
    gpu::Stream s(c);
    ops::matmul(s, a, a, out);
    s.run();
    EXPECT_EQ(gpu::download_f32(out), (std::vector<float>{5, 11, 11, 25}));
    return c.pipeline_cache()->loaded_from_disk();
  }
  fs::path file() const {
    for (auto& e : fs::directory_iterator(dir_)) return e.path();
    return {};
  }
  fs::path dir_;
};

TEST_F(PipelineCacheTest, IsWrittenThenReused) {
  EXPECT_FALSE(run_once());
  ASSERT_FALSE(file().empty());
  EXPECT_TRUE(run_once());
}

TEST_F(PipelineCacheTest, CorruptOrStaleFilesAreIgnoredAndRewritten) {
  run_once();
  const fs::path f = file();
  // Flip a byte of the payload: the checksum catches it.
  {
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(-5, std::ios::end);
    io.put('\x5a');
  }
  EXPECT_FALSE(run_once());
  EXPECT_TRUE(run_once()) << "a good file is written back";
  // A header from another driver version.
  {
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(16);
    io.put('\x7f');
  }
  EXPECT_FALSE(run_once());
  // Truncated to a few bytes, then emptied.
  fs::resize_file(f, 10);
  EXPECT_FALSE(run_once());
  fs::resize_file(f, 0);
  EXPECT_FALSE(run_once());
  EXPECT_TRUE(run_once());
}

TEST_F(RuntimeTest, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(gpu::float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(gpu::float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(gpu::float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(gpu::float_to_half(65520.0f), 0x7c00);  // rounds up to infinity
  EXPECT_EQ(gpu::float_to_half(1.0f + 1.0f / 2048), 0x3c00);  // tie goes to even
  EXPECT_EQ(gpu::float_to_half(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_EQ(gpu::float_to_half(5.960464477539063e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(gpu::float_to_half(std::ldexp(1.0f, -15)), 0x0200);
  EXPECT_EQ(gpu::float_to_half(1e-9f), 0x0000);
  EXPECT_EQ(gpu::float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(gpu::half_to_float(gpu::float_to_half(NAN))));
  for (uint32_t h = 0; h < 0x7c00; h += 7) EXPECT_EQ(gpu::float_to_half(gpu::half_to_float(static_cast<uint16_t>(h))), h);
}

TEST_F(RuntimeTest, ViewsSliceReshapeAndPermuteWithoutCopies) {
  std::vector<float> data(2 * 3 * 4);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  auto t = gpu::Tensor::from_f32(ctx(), data, {2, 3, 4});
  const gpu::TensorView v = t;
  EXPECT_EQ(gpu::download_f32(v.slice(1, 1, 2).slice(2, 3, 1)), (std::vector<float>{7, 11, 19, 23}));
  EXPECT_EQ(gpu::download_f32(v.reshape({6, -1}).slice(0, 5, 1)), (std::vector<float>{20, 21, 22, 23}));
  EXPECT_EQ(gpu::download_f32(v.permute({2, 0, 1}).slice(0, 1, 1)), (std::vector<float>{1, 5, 9, 13, 17, 21}));
  EXPECT_FALSE(v.transpose(0, 2).contiguous());
  EXPECT_EQ(error_of([&] { v.transpose(0, 2).reshape({24}); }), "cannot reshape non-contiguous f32[4,3,2] without a copy");
  EXPECT_EQ(error_of([&] { v.slice(1, 2, 2); }), "slice(1, 2, 2) is out of range for f32[2,3,4]");
  EXPECT_EQ(error_of([&] { v.reshape({5, -1}); }), "cannot reshape f32[2,3,4]: -1 does not divide evenly");
  // Writing through a strided view touches only its elements.
  gpu::upload(v.slice(2, 0, 1), std::vector<float>{-1, -2, -3, -4, -5, -6});
  auto back = gpu::download_f32(t);
  EXPECT_EQ(back[0], -1);
  EXPECT_EQ(back[1], 1);
  EXPECT_EQ(back[4], -2);
  EXPECT_EQ(back[23], 23);
  EXPECT_EQ(error_of([&] { gpu::upload(v, std::vector<float>(5)); }), "upload of 5 floats into f32[2,3,4]");
}

TEST_F(RuntimeTest, F16AndI32TensorsRoundTrip) {
  auto x = test::random_floats(333, 9, -100, 100);
  auto h = gpu::Tensor::from_f32(ctx(), x, {333}, DType::f16);
  EXPECT_EQ(gpu::download_f32(h), test::round_to_half(x));
  auto ids = test::random_ints(77, 3, -5, 1 << 20);
  auto ti = gpu::Tensor::from_i32(ctx(), ids, {7, 11});
  EXPECT_EQ(gpu::download_i32(ti), ids);
}

TEST_F(RuntimeTest, DependentDispatchesInOneSubmissionSeeEachOthersResults) {
  // x -> x W -> (x W) W -> ... ten times in one submission; barriers must order every step.
  const int n = 24;
  auto w = test::random_floats(n * n, 4, -0.3f, 0.3f);
  auto x = test::random_floats(3 * n, 5);
  auto tw = gpu::Tensor::from_f32(ctx(), w, {n, n});
  std::vector<gpu::Tensor> acts;
  acts.push_back(gpu::Tensor::from_f32(ctx(), x, {3, n}));
  for (int i = 0; i < 10; ++i) acts.emplace_back(ctx(), DType::f32, std::initializer_list<int64_t>{3, n});
  gpu::Stream s(ctx());
  for (int i = 0; i < 10; ++i) ops::matmul(s, acts[i], tw, acts[i + 1]);
  EXPECT_EQ(s.recorded_dispatches(), 10u);
  s.run();
  EXPECT_EQ(s.submissions(), 1u);
  std::vector<float> ref = x;
  for (int it = 0; it < 10; ++it) {
    std::vector<float> next(3 * n);
    for (int m = 0; m < 3; ++m)
      for (int o = 0; o < n; ++o) {
        double acc = 0;
        for (int k = 0; k < n; ++k) acc += static_cast<double>(ref[m * n + k]) * w[o * n + k];
        next[m * n + o] = static_cast<float>(acc);
      }
    ref = next;
  }
  EXPECT_LT(test::normalized_error(gpu::download_f32(acts[10]), ref), 1e-5);
  // The stream records again after wait().
  ops::matmul(s, acts[0], tw, acts[1]);
  s.run();
  EXPECT_EQ(s.submissions(), 2u);
}

TEST_F(RuntimeTest, TimestampsMeasureEachDispatch) {
  if (!ctx().features().timestamps) GTEST_SKIP() << "device has no timestamps";
  auto a = gpu::Tensor::from_f32(ctx(), test::random_floats(64 * 64, 1), {64, 64});
  gpu::Tensor out(ctx(), DType::f32, {64, 64});
  gpu::Stream s(ctx());
  s.set_timing(true);
  ops::matmul(s, a, a, out);
  s.run();
  EXPECT_GT(s.last_gpu_ns(), 0.0);
  gpu::Profiler p;
  p.add("matmul", 2e6);
  p.add("matmul", 4e6);
  p.add("softmax", 1e6);
  const std::string table = p.table();
  EXPECT_NE(table.find("matmul                                  2        6.000      3000.00   85.7%"), std::string::npos)
      << table;
}

// Whole-submission timing for benchmarks: off, nothing is counted; on, every submission adds its span, at
// least the per-dispatch time of what it ran, and per-dispatch timing of the same stream still works.
TEST_F(RuntimeTest, BusyTimingCountsEverySubmission) {
  if (!ctx().features().timestamps) GTEST_SKIP() << "device has no timestamps";
  auto a = gpu::Tensor::from_f32(ctx(), test::random_floats(96 * 96, 2), {96, 96});
  gpu::Tensor out(ctx(), DType::f32, {96, 96}), out2(ctx(), DType::f32, {96, 96});
  gpu::Stream s(ctx());
  const double before = ctx().gpu_busy_ns();
  ops::matmul(s, a, a, out);
  s.run();
  EXPECT_EQ(ctx().gpu_busy_ns(), before) << "counted while off";
  ctx().set_busy_timing(true);
  s.set_timing(true);
  ops::matmul(s, a, a, out);
  ops::matmul(s, out, a, out2);
  s.run();
  const double span = ctx().gpu_busy_ns() - before;
  EXPECT_GT(span, 0.0);
  EXPECT_GE(span * 1.001, s.last_gpu_ns()) << "a submission's span holds its dispatches";
  ops::matmul(s, a, a, out);
  s.run();
  EXPECT_GT(ctx().gpu_busy_ns() - before, span) << "a second submission adds to the count";
  ctx().set_busy_timing(false);
}

// Device memory is counted apart from staging buffers, with its own peak, and reset_peaks() starts the
// peaks again from what is in use.
TEST_F(RuntimeTest, DeviceMemoryPeaksLeaveStagingOut) {
  gpu::Allocator& alloc = ctx().allocator();
  alloc.reset_peaks();
  const gpu::MemoryStats start = alloc.stats();
  EXPECT_EQ(start.peak_device_in_use, start.device_in_use);
  {
    gpu::Tensor big(ctx(), DType::f32, {1 << 20});  // 4 MiB on the device
    gpu::Buffer staging(ctx(), 8 << 20, gpu::MemoryKind::staging, "test staging");
    const gpu::MemoryStats mid = alloc.stats();
    EXPECT_GE(mid.device_in_use - start.device_in_use, 4u << 20);
    EXPECT_LT(mid.device_in_use - start.device_in_use, 8u << 20) << "staging counted as device memory";
    EXPECT_GE(mid.in_use - start.in_use, 12u << 20);
  }
  const gpu::MemoryStats end = alloc.stats();
  EXPECT_EQ(end.device_in_use, start.device_in_use);
  EXPECT_GE(end.peak_device_in_use - start.device_in_use, 4u << 20);
  alloc.reset_peaks();
  EXPECT_EQ(alloc.stats().peak_device_in_use, end.device_in_use);
}

TEST_F(RuntimeTest, RecordingWhileInFlightIsRefused) {
  auto a = gpu::Tensor::from_f32(ctx(), std::vector<float>{1}, {1, 1});
  gpu::Tensor out(ctx(), DType::f32, {1, 1});
  gpu::Stream s(ctx());
  ops::matmul(s, a, a, out);
  s.submit();
  EXPECT_EQ(error_of([&] { ops::matmul(s, a, a, out); }),
            "a stream cannot record while its submission is in flight; call wait() first");
  s.wait();
}

}  // namespace
}  // namespace tessera
