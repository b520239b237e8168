// The plugin services as a plugin sees them, through the C tables of tessera/plugin.h: tensors, ops by
// name, safetensors files, custom kernels and random numbers; each bad call with its exact message.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "plugin/services.hpp"
#include "tessera/plugin.hpp"
#include "support/gpu_test.hpp"

namespace tessera::plugin {
namespace {

namespace fs = std::filesystem;

std::string hex(uint64_t h) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(h));
  return buf;
}

class ServicesTest : public test::GpuTest {
 protected:
  void SetUp() override {
    test::GpuTest::SetUp();
    services_.use_context(ctx());
    host_ = services_.host();
    tensors_ = static_cast<const tessera_tensor_service_t*>(host_->get_service(host_, TESSERA_SERVICE_TENSORS));
    ops_ = static_cast<const tessera_ops_service_t*>(host_->get_service(host_, TESSERA_SERVICE_OPS));
    weights_ = static_cast<const tessera_safetensors_service_t*>(host_->get_service(host_, TESSERA_SERVICE_SAFETENSORS));
    kernels_ = static_cast<const tessera_kernel_service_t*>(host_->get_service(host_, TESSERA_SERVICE_KERNELS));
    random_ = static_cast<const tessera_random_service_t*>(host_->get_service(host_, TESSERA_SERVICE_RANDOM));
    ASSERT_TRUE(tensors_ && ops_ && weights_ && kernels_ && random_);
  }

  tessera_tensor_t make(tessera_dtype_t dtype, std::vector<int64_t> shape) {
    tessera_tensor_t t = 0;
    EXPECT_EQ(tensors_->create(host_, dtype, static_cast<uint32_t>(shape.size()), shape.data(), "t", &t, err()), TESSERA_OK)
        << message_;
    return t;
  }
  tessera_tensor_t make_f32(std::vector<int64_t> shape, const std::vector<float>& values) {
    const tessera_tensor_t t = make(TESSERA_DTYPE_F32, std::move(shape));
    EXPECT_EQ(tensors_->upload(host_, t, TESSERA_DTYPE_F32, values.data(), values.size(), err()), TESSERA_OK) << message_;
    return t;
  }
  std::vector<float> read(tessera_tensor_t t, size_t n) {
    std::vector<float> v(n);
    EXPECT_EQ(tensors_->download(host_, t, TESSERA_DTYPE_F32, v.data(), n, err()), TESSERA_OK) << message_;
    return v;
  }
  tessera_message_t* err() {
    message_[0] = 0;
    msg_ = {message_, sizeof message_};
    return &msg_;
  }
  std::string message() const { return message_; }

  Services services_;
  const tessera_host_t* host_ = nullptr;
  const tessera_tensor_service_t* tensors_ = nullptr;
  const tessera_ops_service_t* ops_ = nullptr;
  const tessera_safetensors_service_t* weights_ = nullptr;
  const tessera_kernel_service_t* kernels_ = nullptr;
  const tessera_random_service_t* random_ = nullptr;
  char message_[1024] = "";
  tessera_message_t msg_{};
};

TEST_F(ServicesTest, UnknownServicesAreNull) {
  EXPECT_EQ(host_->get_service(host_, "tessera.tensors/2"), nullptr);
  EXPECT_EQ(host_->get_service(host_, "nope"), nullptr);
}

TEST_F(ServicesTest, TensorsRoundTripAndConvertHalves) {
  const std::vector<float> v = test::random_floats(15, 1);
  const tessera_tensor_t t = make_f32({3, 5}, v);
  EXPECT_EQ(read(t, 15), v);
  tessera_tensor_info_t info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(tensors_->info(host_, t, &info, err()), TESSERA_OK);
  EXPECT_EQ(info.dtype, TESSERA_DTYPE_F32);
  EXPECT_EQ(info.rank, 2u);
  EXPECT_EQ(info.shape[0], 3);
  EXPECT_EQ(info.strides[0], 5);

  const tessera_tensor_t h = make(TESSERA_DTYPE_F16, {15});
  ASSERT_EQ(tensors_->upload(host_, h, TESSERA_DTYPE_F32, v.data(), v.size(), err()), TESSERA_OK);
  EXPECT_EQ(read(h, 15), test::round_to_half(v));
  std::vector<uint16_t> halves(15);
  ASSERT_EQ(tensors_->download(host_, h, TESSERA_DTYPE_F16, halves.data(), 15, err()), TESSERA_OK);
  EXPECT_EQ(gpu::half_to_float(halves[4]), test::round_to_half(v)[4]);

  // A view shares storage: the middle row of t.
  tessera_tensor_info_t row = info;
  row.rank = 1;
  row.shape[0] = 5;
  row.strides[0] = 1;
  row.offset = 5;
  tessera_tensor_t r = 0;
  ASSERT_EQ(tensors_->view(host_, t, &row, &r, err()), TESSERA_OK) << message();
  tensors_->release(host_, t);  // the view keeps the storage
  EXPECT_EQ(read(r, 5), std::vector<float>(v.begin() + 5, v.begin() + 10));
  tensors_->release(host_, r);
  tensors_->release(host_, h);
  EXPECT_EQ(services_.live_tensors(), 0u);
}

TEST_F(ServicesTest, SdkViewsSelectTransposeAndRepeatWithoutCopies) {
  // t[b, r, c] = 12 b + 4 r + c, shape [2, 3, 4]
  std::vector<float> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const sdk::Host host(host_);
  const sdk::Tensor t = sdk::Tensor::adopt(host, make_f32({2, 3, 4}, v));
  auto dense = [&](const sdk::Tensor& view) {  // the view's elements in row-major order, through the copy op
    sdk::Tensor out(host, TESSERA_DTYPE_F32, view.shape());
    sdk::Stream s(host);
    s.op("copy", {{"x", view}, {"out", out}});
    s.finish();
    return out.download_f32();
  };
  const sdk::Tensor row = t.select(1, 2);  // t[:, 2, :]
  EXPECT_EQ(row.shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(dense(row), (std::vector<float>{8, 9, 10, 11, 20, 21, 22, 23}));
  EXPECT_EQ(dense(row.transpose(0, 1)), (std::vector<float>{8, 20, 9, 21, 10, 22, 11, 23}));
  const sdk::Tensor three = t.select(0, 1).select(0, 0).repeated(0, 3);  // [3, 4], every row t[1, 0, :]
  EXPECT_EQ(three.info().strides[0], 0);
  EXPECT_EQ(dense(three), (std::vector<float>{12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15}));
  EXPECT_EQ(t.select(-1, 3).shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.repeated(3, 1).shape(), (std::vector<int64_t>{2, 3, 4, 1}));
  auto refused = [](auto&& f, const std::string& want) {
    try {
      f();
      ADD_FAILURE() << "accepted: " << want;
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), want);
    }
  };
  refused([&] { (void)t.select(1, 3); }, "select out of range");
  refused([&] { (void)t.select(0, 0).select(0, 0).select(0, 0); }, "select out of range");  // rank 1 stays
  refused([&] { (void)t.transpose(0, 3); }, "transpose out of range");
  refused([&] { (void)t.repeated(0, 2).repeated(0, 2); }, "repeated out of range");  // past rank 4
  refused([&] { (void)t.repeated(0, 0); }, "repeated out of range");
}

TEST_F(ServicesTest, BadTensorCallsSayWhatIsWrong) {
  const tessera_tensor_t t = make(TESSERA_DTYPE_F32, {3, 5});
  std::vector<float> v(14);
  EXPECT_EQ(tensors_->upload(host_, t, TESSERA_DTYPE_F32, v.data(), v.size(), err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "tensors.upload: 14 elements given for f32[3,5]");
  std::vector<int32_t> ints(15);
  EXPECT_EQ(tensors_->upload(host_, t, TESSERA_DTYPE_I32, ints.data(), 15, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "tensors.upload: i32 data cannot go into f32[3,5]");

  tessera_tensor_info_t layout{};
  layout.struct_size = sizeof layout;
  layout.dtype = TESSERA_DTYPE_F32;
  layout.rank = 2;
  layout.shape[0] = 3;
  layout.shape[1] = 5;
  layout.strides[0] = 6;
  layout.strides[1] = 1;
  tessera_tensor_t out = 0;
  EXPECT_EQ(tensors_->view(host_, t, &layout, &out, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "tensors.view: the view f32[3,5] at offset 0 reaches element 16 of a storage of 15");

  const int64_t bad_shape[] = {4, 0};
  EXPECT_EQ(tensors_->create(host_, TESSERA_DTYPE_F32, 2, bad_shape, "x", &out, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "tensors.create: dimension 0 must be positive");
  EXPECT_EQ(tensors_->create(host_, 9, 1, bad_shape, "x", &out, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "tensors.create: unknown dtype 9 (expected F32, F16 or I32)");

  tensors_->release(host_, t);
  tensors_->release(host_, t);  // a second release is ignored
  tessera_tensor_info_t info{};
  info.struct_size = sizeof info;
  EXPECT_EQ(tensors_->info(host_, t, &info, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "tensor handle " + hex(t) + " is not live (released, or never made)");

  tessera_stream_t s = 0;
  ASSERT_EQ(ops_->stream_create(host_, &s, err()), TESSERA_OK);
  EXPECT_EQ(tensors_->info(host_, s, &info, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "tensor handle " + hex(s) + " is a stream, not a tensor");
  ops_->stream_destroy(host_, s);
}

TEST_F(ServicesTest, OpsRecordByNameAndRunAtFinish) {
  const int M = 7, K = 13, N = 5;
  const std::vector<float> a = test::random_floats(M * K, 2), w = test::random_floats(N * K, 3);
  const tessera_tensor_t ta = make_f32({M, K}, a), tw = make_f32({N, K}, w);
  const tessera_tensor_t ty = make(TESSERA_DTYPE_F32, {M, N}), tz = make(TESSERA_DTYPE_F32, {M, N});
  tessera_stream_t s = 0;
  ASSERT_EQ(ops_->stream_create(host_, &s, err()), TESSERA_OK);
  const tessera_op_arg_t mm[] = {{"a", ta, 0, nullptr}, {"w", tw, 0, nullptr}, {"out", ty, 0, nullptr},
                                 {"layout", 0, 0, "out_in"}};
  ASSERT_EQ(ops_->record(host_, s, "matmul", mm, 4, err()), TESSERA_OK) << message();
  const tessera_op_arg_t gelu[] = {{"x", ty, 0, nullptr}, {"out", tz, 0, nullptr}};
  ASSERT_EQ(ops_->record(host_, s, "gelu_erf", gelu, 2, err()), TESSERA_OK) << message();
  // The stream keeps what it recorded alive: release the inputs before the work runs.
  tensors_->release(host_, ta);
  tensors_->release(host_, tw);
  ASSERT_EQ(ops_->finish(host_, s, err()), TESSERA_OK) << message();
  std::vector<float> want(M * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += static_cast<double>(a[i * K + k]) * w[j * K + k];
      want[i * N + j] = static_cast<float>(0.5 * acc * (1.0 + std::erf(acc / std::sqrt(2.0))));
    }
  EXPECT_LT(test::normalized_error(read(tz, M * N), want), 1e-5);

  // concat takes its parts as a repeated argument.
  const tessera_tensor_t tc = make(TESSERA_DTYPE_F32, {2 * M, N});
  const tessera_op_arg_t cat[] = {{"x", ty, 0, nullptr}, {"x", tz, 0, nullptr}, {"dim", 0, 0, nullptr}, {"out", tc, 0, nullptr}};
  ASSERT_EQ(ops_->record(host_, s, "concat", cat, 4, err()), TESSERA_OK) << message();
  const tessera_tensor_t ti = make(TESSERA_DTYPE_I32, {6});
  const tessera_op_arg_t fill[] = {{"out", ti, 0, nullptr}, {"value", 0, -3, nullptr}};
  ASSERT_EQ(ops_->record(host_, s, "fill", fill, 2, err()), TESSERA_OK) << message();
  ASSERT_EQ(ops_->finish(host_, s, err()), TESSERA_OK) << message();
  const std::vector<float> both = read(tc, 2 * M * N);
  EXPECT_EQ(std::vector<float>(both.begin() + M * N, both.end()), read(tz, M * N));
  std::vector<int32_t> ints(6);
  ASSERT_EQ(tensors_->download(host_, ti, TESSERA_DTYPE_I32, ints.data(), 6, err()), TESSERA_OK);
  EXPECT_EQ(ints, std::vector<int32_t>(6, -3));
  EXPECT_TRUE(ops_->has_op(host_, "attention"));
  EXPECT_FALSE(ops_->has_op(host_, "teleport"));
  ops_->stream_destroy(host_, s);
  for (tessera_tensor_t t : {ty, tz, tc, ti}) tensors_->release(host_, t);
  EXPECT_EQ(services_.live_tensors(), 0u);
}

TEST_F(ServicesTest, BadOpCallsSayWhatIsWrong) {
  const tessera_tensor_t x = make(TESSERA_DTYPE_F32, {4, 8}), y = make(TESSERA_DTYPE_F32, {4, 8});
  tessera_stream_t s = 0;
  ASSERT_EQ(ops_->stream_create(host_, &s, err()), TESSERA_OK);
  auto record = [&](const char* op, std::vector<tessera_op_arg_t> args) {
    const tessera_status_t st = ops_->record(host_, s, op, args.data(), static_cast<uint32_t>(args.size()), err());
    EXPECT_EQ(st, TESSERA_INVALID_ARGUMENT);
    return message();
  };
  EXPECT_EQ(record("teleport", {}), "ops.record: unknown op 'teleport'");
  EXPECT_EQ(record("silu", {{"x", x, 0, nullptr}}), "silu: missing tensor argument 'out'");
  EXPECT_EQ(record("silu", {{"x", x, 0, nullptr}, {"out", y, 0, nullptr}, {"alpah", 0, 2, nullptr}}),
            "silu: unknown argument 'alpah'");
  EXPECT_EQ(record("silu", {{"x", 0, 1, nullptr}, {"out", y, 0, nullptr}}), "silu: argument 'x' must be a tensor");
  EXPECT_EQ(record("matmul", {{"a", x, 0, nullptr}, {"w", y, 0, nullptr}, {"out", y, 0, nullptr}, {"layout", 0, 0, "sideways"}}),
            "matmul: argument 'layout' is \"sideways\", expected one of out_in, in_out, packed");
  EXPECT_EQ(record("group_norm", {{"x", x, 0, nullptr}, {"out", y, 0, nullptr}, {"groups", 0, 2.5, nullptr}}),
            "group_norm: argument 'groups' must be an integer");
  tensors_->release(host_, x);
  EXPECT_EQ(record("silu", {{"x", x, 0, nullptr}, {"out", y, 0, nullptr}}),
            "silu: argument 'x': tensor handle " + hex(x) + " is not live (released, or never made)");
  ASSERT_EQ(ops_->finish(host_, s, err()), TESSERA_OK);
  ops_->stream_destroy(host_, s);
  tensors_->release(host_, y);
}

// Writes a safetensors file: `header` is the JSON, `data` the bytes after it.
void write_safetensors(const fs::path& path, const std::string& header, const std::vector<uint8_t>& data) {
  std::ofstream f(path, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::vector<uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST_F(ServicesTest, SafetensorsFilesLoadCheckedAndConverted) {
  const fs::path dir = fs::temp_directory_path() / ("tessera-st-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path good = dir / "good.safetensors";
  std::vector<float> w = test::random_floats(6, 4);
  std::vector<uint8_t> data = bytes_of(w);
  const uint16_t halves[2] = {gpu::float_to_half(1.5f), gpu::float_to_half(-2.0f)};
  data.insert(data.end(), reinterpret_cast<const uint8_t*>(halves), reinterpret_cast<const uint8_t*>(halves) + 4);
  write_safetensors(good,
                    R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                    R"("h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]}})",
                    data);
  tessera_weights_t file = 0;
  ASSERT_EQ(weights_->open(host_, good.c_str(), &file, err()), TESSERA_OK) << message();
  EXPECT_EQ(weights_->count(host_, file), 2u);
  EXPECT_STREQ(weights_->metadata(host_, file, "format"), "pt");
  tessera_stored_tensor_t st{};
  st.struct_size = sizeof st;
  ASSERT_EQ(weights_->at(host_, file, 0, &st, err()), TESSERA_OK);
  EXPECT_STREQ(st.name, "h");  // name order
  EXPECT_STREQ(st.dtype, "F16");

  const int64_t want_shape[] = {2, 3}, wrong_shape[] = {3, 2};
  tessera_tensor_t t = 0;
  ASSERT_EQ(weights_->load(host_, file, "w", TESSERA_DTYPE_F32, 2, want_shape, &t, err()), TESSERA_OK) << message();
  EXPECT_EQ(read(t, 6), w);
  tensors_->release(host_, t);
  EXPECT_EQ(weights_->load(host_, file, "w", TESSERA_DTYPE_F16, 2, wrong_shape, &t, err()), TESSERA_ERROR);
  EXPECT_EQ(message(), good.string() + ": tensor 'w' has shape [2,3], expected [3,2]");
  EXPECT_EQ(weights_->load(host_, file, "v", TESSERA_DTYPE_F32, 0, nullptr, &t, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), good.string() + ": no tensor 'v'");
  ASSERT_EQ(weights_->load(host_, file, "h", TESSERA_DTYPE_F32, 0, nullptr, &t, err()), TESSERA_OK) << message();
  EXPECT_EQ(read(t, 2), (std::vector<float>{1.5f, -2.0f}));
  weights_->close(host_, file);
  EXPECT_EQ(read(t, 2), (std::vector<float>{1.5f, -2.0f}));  // loaded tensors outlive the file
  tensors_->release(host_, t);

  auto refused = [&](const std::string& name, const std::string& header, size_t data_bytes) {
    const fs::path p = dir / name;
    write_safetensors(p, header, std::vector<uint8_t>(data_bytes));
    tessera_weights_t f = 0;
    EXPECT_EQ(weights_->open(host_, p.c_str(), &f, err()), TESSERA_ERROR);
    const std::string m = message();
    return m.substr(0, p.string().size()) == p.string() ? m.substr(p.string().size()) : m;
  };
  EXPECT_EQ(refused("outside.safetensors", R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
            ": tensor 'w': data [0, 8) lies outside the data section of 4 bytes");
  EXPECT_EQ(refused("size.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
            ": tensor 'w': shape [3] of F32 needs 12 bytes, the file has 8");
  EXPECT_EQ(refused("overlap.safetensors",
                    R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
            ": tensors 'a' and 'b' overlap");
  EXPECT_EQ(refused("dtype.safetensors", R"({"w":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1),
            ": tensor 'w': unknown dtype \"Q4\"");
  EXPECT_EQ(refused("json.safetensors", R"({"w":{"dtype":"F32",)", 0),
            ": bad safetensors header: JSON error at byte 20: expected a string key");
  {
    std::ofstream f(dir / "short.safetensors", std::ios::binary);
    const uint64_t n = 1000;
    f.write(reinterpret_cast<const char*>(&n), 8);
  }
  tessera_weights_t f = 0;
  EXPECT_EQ(weights_->open(host_, (dir / "short.safetensors").c_str(), &f, err()), TESSERA_ERROR);
  EXPECT_EQ(message(), (dir / "short.safetensors").string() + ": not a safetensors file (header of 1000 bytes in a file of 8)");
  fs::remove_all(dir);
}

TEST_F(ServicesTest, KernelsRefuseWhatIsNotSpirv) {
  const uint32_t words[8] = {0x12345678u};
  tessera_kernel_desc_t d{};
  d.struct_size = sizeof d;
  d.name = "broken";
  d.spirv = words;
  d.spirv_bytes = sizeof words;
  tessera_kernel_t k = 0;
  EXPECT_EQ(kernels_->create(host_, &d, &k, err()), TESSERA_INVALID_ARGUMENT);
  EXPECT_EQ(message(), "kernels.create: 'broken': not SPIR-V (32 bytes; SPIR-V starts with the magic word 0x07230203)");
}

TEST_F(ServicesTest, RandomNumbersAreCounterBasedAndWellSpread) {
  EXPECT_EQ(random_->bits(7, 11), random_->bits(7, 11));
  EXPECT_NE(random_->bits(7, 11), random_->bits(8, 11));
  EXPECT_NE(random_->bits(7, 11), random_->bits(7, 12));
  std::vector<float> u(20000), n(20000);
  random_->uniform(42, 0, u.data(), u.size());
  random_->normal(42, 0, n.data(), n.size());
  double su = 0, sn = 0, sn2 = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    ASSERT_GE(u[i], 0.0f);
    ASSERT_LT(u[i], 1.0f);
    su += u[i];
    sn += n[i];
    sn2 += static_cast<double>(n[i]) * n[i];
  }
  EXPECT_NEAR(su / 20000, 0.5, 0.01);
  EXPECT_NEAR(sn / 20000, 0.0, 0.03);
  EXPECT_NEAR(std::sqrt(sn2 / 20000), 1.0, 0.03);
  std::vector<float> again(5);
  random_->uniform(42, 3, again.data(), 5);
  EXPECT_EQ(again[0], u[3]);  // counters, not state: any slice can be redrawn
}

}  // namespace
}  // namespace tessera::plugin
