#include "plugin/services.hpp"
#include "plugin/services_internal.hpp"

#include <cmath>
#include <cstring>
#include <functional>

#include "gpu/kernel.hpp"
#include "gpu/stream.hpp"
#include "io/safetensors.hpp"
#include "ops/attention.hpp"
#include "ops/matmul.hpp"

namespace tessera::plugin {

namespace {

enum HandleKind : uint64_t { kTensor = 1, kStream = 2, kKernel = 3, kWeights = 4 };
constexpr int kKindShift = 56;

const char* kind_name(uint64_t h) {
  switch (h >> kKindShift) {
    case kTensor: return "a tensor";
    case kStream: return "a stream";
    case kKernel: return "a kernel";
    case kWeights: return "a weights file";
    default: return "no handle";
  }
}

// A handle problem or a bad argument: the caller's fault, TESSERA_INVALID_ARGUMENT.
class BadArgument : public Error {
 public:
  using Error::Error;
};

std::string hex(uint64_t h) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(h));
  return buf;
}

[[noreturn]] void bad_handle(uint64_t h, uint64_t want, const char* what) {
  if (h >> kKindShift != want)
    throw BadArgument(std::string(what) + " handle " + hex(h) + " is " + kind_name(h) + ", not " + kind_name(want << kKindShift));
  throw BadArgument(std::string(what) + " handle " + hex(h) + " is not live (released, or never made)");
}

void write(tessera_message_t* m, const std::string& text) {
  if (m && m->text && m->capacity) std::snprintf(m->text, m->capacity, "%s", text.c_str());
}

// Runs `f`, turning exceptions into a status and a message: nothing is thrown across the C boundary.
tessera_status_t guarded(tessera_message_t* error, const std::function<void()>& f) {
  try {
    f();
    return TESSERA_OK;
  } catch (const BadArgument& e) {
    write(error, e.what());
    return TESSERA_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    write(error, "out of host memory");
    return TESSERA_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    write(error, e.what());
    return TESSERA_ERROR;
  }
}

gpu::DType dtype_of(tessera_dtype_t t, const char* what) {
  switch (t) {
    case TESSERA_DTYPE_F32: return gpu::DType::f32;
    case TESSERA_DTYPE_F16: return gpu::DType::f16;
    case TESSERA_DTYPE_I32: return gpu::DType::i32;
    default: throw BadArgument(std::string(what) + ": unknown dtype " + std::to_string(t) + " (expected F32, F16 or I32)");
  }
}

tessera_dtype_t abi_dtype(gpu::DType t) {
  return t == gpu::DType::f32 ? TESSERA_DTYPE_F32 : t == gpu::DType::f16 ? TESSERA_DTYPE_F16 : TESSERA_DTYPE_I32;
}

std::vector<int64_t> shape_of(uint32_t rank, const int64_t* shape, const char* what) {
  if (rank < 1 || rank > TESSERA_MAX_RANK || !shape)
    throw BadArgument(std::string(what) + ": rank " + std::to_string(rank) + " is outside 1..4");
  std::vector<int64_t> dims(shape, shape + rank);
  for (int64_t d : dims)
    if (d < 1) throw BadArgument(std::string(what) + ": dimension " + std::to_string(d) + " must be positive");
  return dims;
}

// ---- tensors ----

tessera_status_t tensor_create(const tessera_host_t* host, tessera_dtype_t dtype, uint32_t rank, const int64_t* shape,
                               const char* name, tessera_tensor_t* out, tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out) throw BadArgument("tensors.create: out is NULL");
    Services& s = Services::of(host);
    Services::Device& d = Services::device_of(host);
    const std::vector<int64_t> dims = shape_of(rank, shape, "tensors.create");
    auto storage = std::make_shared<gpu::Tensor>(s.context(d), dtype_of(dtype, "tensors.create"),
                                                 std::span<const int64_t>(dims), name ? name : "plugin tensor");
    Services::TensorEntry e;
    e.view = storage->view();
    e.storage = std::move(storage);
    e.device = &d;
    *out = s.add_tensor(std::move(e));
  });
}

tessera_status_t tensor_view(const tessera_host_t* host, tessera_tensor_t t, const tessera_tensor_info_t* layout,
                             tessera_tensor_t* out, tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out || !layout) throw BadArgument("tensors.view: layout and out must not be NULL");
    Services& s = Services::of(host);
    Services::TensorEntry e = s.tensor(t);
    if (dtype_of(layout->dtype, "tensors.view") != e.view.dtype)
      throw BadArgument("tensors.view: a view keeps the dtype of " + e.view.str());
    const std::vector<int64_t> dims = shape_of(layout->rank, layout->shape, "tensors.view");
    gpu::TensorView v;
    v.buffer = e.view.buffer;
    v.dtype = e.view.dtype;
    v.rank = static_cast<int>(layout->rank);
    v.offset = layout->offset;
    int64_t last = layout->offset;
    for (uint32_t i = 0; i < layout->rank; ++i) {
      v.shape[i] = dims[i];
      v.strides[i] = layout->strides[i];
      if (layout->strides[i] < 0) throw BadArgument("tensors.view: negative strides are not supported");
      last += (dims[i] - 1) * layout->strides[i];
    }
    const int64_t storage = e.storage->numel();
    if (layout->offset < 0 || last >= storage)
      throw BadArgument("tensors.view: the view " + v.str() + " at offset " + std::to_string(layout->offset) +
                        " reaches element " + std::to_string(last) + " of a storage of " + std::to_string(storage));
    e.view = v;
    *out = s.add_tensor(std::move(e));
  });
}

tessera_status_t tensor_retain(const tessera_host_t* host, tessera_tensor_t t, tessera_tensor_t* out,
                               tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out) throw BadArgument("tensors.retain: out is NULL");
    *out = Services::of(host).retain(t);
  });
}

tessera_status_t tensor_info(const tessera_host_t* host, tessera_tensor_t t, tessera_tensor_info_t* out,
                             tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out) throw BadArgument("tensors.info: out is NULL");
    const Services::TensorEntry e = Services::of(host).tensor(t);
    tessera_tensor_info_t info{};
    info.struct_size = sizeof info;
    info.dtype = abi_dtype(e.view.dtype);
    info.rank = static_cast<uint32_t>(e.view.rank);
    for (int i = 0; i < e.view.rank; ++i) {
      info.shape[i] = e.view.shape[i];
      info.strides[i] = e.view.strides[i];
    }
    info.offset = e.view.offset;
    const uint32_t size = std::min<uint32_t>(out->struct_size ? out->struct_size : sizeof info, sizeof info);
    std::memcpy(out, &info, size);
    out->struct_size = size;
  });
}

void expect_count(const gpu::TensorView& v, size_t count, const char* what) {
  if (static_cast<int64_t>(count) != v.numel())
    throw BadArgument(std::string(what) + ": " + std::to_string(count) + " elements given for " + v.str());
}

tessera_status_t tensor_upload(const tessera_host_t* host, tessera_tensor_t t, tessera_dtype_t src_dtype,
                               const void* data, size_t count, tessera_message_t* error) {
  return guarded(error, [&] {
    const Services::TensorEntry e = Services::of(host).tensor(t);
    expect_count(e.view, count, "tensors.upload");
    if (!data) throw BadArgument("tensors.upload: data is NULL");
    const gpu::DType src = dtype_of(src_dtype, "tensors.upload");
    if ((src == gpu::DType::i32) != (e.view.dtype == gpu::DType::i32))
      throw BadArgument(std::string("tensors.upload: ") + gpu::dtype_name(src) + " data cannot go into " + e.view.str());
    if (src == gpu::DType::i32) {
      gpu::upload(e.view, std::span<const int32_t>(static_cast<const int32_t*>(data), count));
    } else if (src == gpu::DType::f32) {
      gpu::upload(e.view, std::span<const float>(static_cast<const float*>(data), count));
    } else {
      std::vector<float> wide(count);
      const auto* h = static_cast<const uint16_t*>(data);
      for (size_t i = 0; i < count; ++i) wide[i] = gpu::half_to_float(h[i]);
      gpu::upload(e.view, wide);
    }
  });
}

tessera_status_t tensor_download(const tessera_host_t* host, tessera_tensor_t t, tessera_dtype_t dst_dtype, void* data,
                                 size_t count, tessera_message_t* error) {
  return guarded(error, [&] {
    const Services::TensorEntry e = Services::of(host).tensor(t);
    expect_count(e.view, count, "tensors.download");
    if (!data) throw BadArgument("tensors.download: data is NULL");
    const gpu::DType dst = dtype_of(dst_dtype, "tensors.download");
    if ((dst == gpu::DType::i32) != (e.view.dtype == gpu::DType::i32))
      throw BadArgument(std::string("tensors.download: ") + e.view.str() + " cannot be read as " + gpu::dtype_name(dst));
    if (dst == gpu::DType::i32) {
      const std::vector<int32_t> v = gpu::download_i32(e.view);
      std::memcpy(data, v.data(), v.size() * 4);
    } else {
      const std::vector<float> v = gpu::download_f32(e.view);
      if (dst == gpu::DType::f32) {
        std::memcpy(data, v.data(), v.size() * 4);
      } else {
        auto* h = static_cast<uint16_t*>(data);
        for (size_t i = 0; i < v.size(); ++i) h[i] = gpu::float_to_half(v[i]);
      }
    }
  });
}

void tensor_release(const tessera_host_t* host, tessera_tensor_t t) {
  if (t) Services::of(host).release(t);
}

const tessera_tensor_service_t kTensorService = {
    sizeof(tessera_tensor_service_t), tensor_create, tensor_view, tensor_retain, tensor_info,
    tensor_upload, tensor_download, tensor_release};

// ---- ops ----

tessera_status_t stream_create(const tessera_host_t* host, tessera_stream_t* out, tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out) throw BadArgument("ops.stream_create: out is NULL");
    Services& s = Services::of(host);
    auto e = std::make_unique<Services::StreamEntry>();
    e->device = &Services::device_of(host);
    e->stream = std::make_unique<gpu::Stream>(s.context(*e->device));
    e->attention = std::make_unique<ops::AttentionWorkspace>();
    *out = s.add_stream(std::move(e));
  });
}

tessera_status_t op_record(const tessera_host_t* host, tessera_stream_t stream, const char* op,
                           const tessera_op_arg_t* args, uint32_t arg_count, tessera_message_t* error) {
  return guarded(error, [&] {
    try {
      record_op(Services::of(host), host, stream, op, args, arg_count);
    } catch (const BadArgument&) {
      throw;
    } catch (const Error& e) {
      throw BadArgument(e.what());  // a shape or dtype the op refuses: the caller's mistake
    }
  });
}

tessera_status_t stream_finish(const tessera_host_t* host, tessera_stream_t stream, tessera_message_t* error) {
  return guarded(error, [&] {
    Services::StreamEntry& e = Services::of(host).stream(stream);
    e.stream->run();
    e.keep.clear();
  });
}

void stream_destroy(const tessera_host_t* host, tessera_stream_t stream) {
  if (stream) Services::of(host).remove_stream(stream);
}

bool has_op(const tessera_host_t*, const char* op) { return op && known_op(op); }

tessera_status_t pack(const tessera_host_t* host, tessera_tensor_t w, bool in_out, tessera_tensor_t* out,
                      tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out) throw BadArgument("ops.pack_weights: out is NULL");
    Services& s = Services::of(host);
    Services::TensorEntry e = s.tensor(w);
    auto packed = std::make_shared<gpu::Tensor>(
        ops::pack_weights(s.context(*e.device), e.view, in_out ? ops::WeightLayout::in_out : ops::WeightLayout::out_in));
    e.view = packed->view();
    e.storage = std::move(packed);
    *out = s.add_tensor(std::move(e));
  });
}

const tessera_ops_service_t kOpsService = {sizeof(tessera_ops_service_t), stream_create, op_record, stream_finish,
                                           stream_destroy, has_op, pack};

// ---- kernels ----

uint64_t fnv1a(const void* data, size_t n) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

tessera_status_t kernel_create(const tessera_host_t* host, const tessera_kernel_desc_t* desc, tessera_kernel_t* out,
                               tessera_message_t* error) {
  return guarded(error, [&] {
    if (!desc || !out) throw BadArgument("kernels.create: desc and out must not be NULL");
    const std::string name = desc->name ? desc->name : "plugin kernel";
    if (!desc->spirv || desc->spirv_bytes < 20 || desc->spirv_bytes % 4 || desc->spirv[0] != 0x07230203u)
      throw BadArgument("kernels.create: '" + name + "': not SPIR-V (" + std::to_string(desc->spirv_bytes) +
                        " bytes; SPIR-V starts with the magic word 0x07230203)");
    if (desc->push_constant_bytes > 128 || desc->push_constant_bytes % 4)
      throw BadArgument("kernels.create: '" + name + "': push constants of " +
                        std::to_string(desc->push_constant_bytes) + " bytes (at most 128, a multiple of 4)");
    if (desc->binding_count && !desc->bindings) throw BadArgument("kernels.create: '" + name + "': bindings is NULL");
    Services& s = Services::of(host);
    auto e = std::make_unique<Services::KernelEntry>();
    e->device = &Services::device_of(host);
    e->name = name;
    e->push_bytes = desc->push_constant_bytes;
    gpu::KernelSpec spec;
    spec.spirv.assign(desc->spirv, desc->spirv + desc->spirv_bytes / 4);
    spec.shader = "plugin:" + name + "#" + hex(fnv1a(desc->spirv, desc->spirv_bytes));
    spec.push_bytes = desc->push_constant_bytes;
    for (uint32_t i = 0; i < desc->binding_count; ++i) {
      const tessera_binding_t b = desc->bindings[i];
      if (b != TESSERA_BINDING_TEXEL && b != TESSERA_BINDING_TEXEL4 && b != TESSERA_BINDING_STORAGE)
        throw BadArgument("kernels.create: '" + name + "': binding " + std::to_string(i) + " has unknown kind " +
                          std::to_string(b));
      e->bindings.push_back(b);
      spec.bindings.push_back(b == TESSERA_BINDING_STORAGE ? gpu::Access::storage : gpu::Access::texel);
    }
    if (desc->constant_count && !desc->constants) throw BadArgument("kernels.create: '" + name + "': constants is NULL");
    spec.constants.assign(desc->constants, desc->constants + desc->constant_count);
    e->kernel = &s.context(*e->device).kernel(spec);
    *out = s.add_kernel(std::move(e));
  });
}

tessera_status_t kernel_dispatch(const tessera_host_t* host, tessera_stream_t stream, tessera_kernel_t kernel,
                                 const tessera_tensor_t* bindings, uint32_t binding_count, const void* push,
                                 uint32_t push_bytes, const uint32_t groups[3], tessera_message_t* error) {
  return guarded(error, [&] {
    Services& s = Services::of(host);
    const Services::KernelEntry& k = s.kernel(kernel);
    Services::StreamEntry& st = s.stream(stream);
    const std::string what = "kernels.dispatch '" + k.name + "'";
    if (k.device != st.device) throw BadArgument(what + ": the kernel and the stream are on different devices");
    if (binding_count != k.bindings.size())
      throw BadArgument(what + ": " + std::to_string(binding_count) + " tensors for " +
                        std::to_string(k.bindings.size()) + " bindings");
    if (push_bytes != k.push_bytes || (push_bytes && !push))
      throw BadArgument(what + ": " + std::to_string(push_bytes) + " bytes of push constants, the kernel takes " +
                        std::to_string(k.push_bytes));
    if (!groups || !groups[0] || !groups[1] || !groups[2]) throw BadArgument(what + ": every group count must be >= 1");
    const auto& limits = s.context(*st.device).features().max_workgroup_count;
    for (int i = 0; i < 3; ++i)
      if (groups[i] > limits[i])
        throw BadArgument(what + ": " + std::to_string(groups[i]) + " groups in dimension " + std::to_string(i) +
                          " exceed the device limit " + std::to_string(limits[i]));
    std::vector<gpu::Bind> binds;
    for (uint32_t i = 0; i < binding_count; ++i) {
      const Services::TensorEntry t = s.tensor(bindings[i]);
      if (t.device != st.device)
        throw BadArgument(what + ": binding " + std::to_string(i) + " is a tensor on another device");
      switch (k.bindings[i]) {
        case TESSERA_BINDING_TEXEL: binds.push_back(gpu::Bind::texel(t.view, 1)); break;
        case TESSERA_BINDING_TEXEL4:
          if (t.storage->numel() % 4)
            throw BadArgument(what + ": binding " + std::to_string(i) + " reads 4 elements per texel, " +
                              t.storage->str() + " is not a multiple of 4");
          binds.push_back(gpu::Bind::texel(t.view, 4));
          break;
        default: binds.push_back(gpu::Bind::storage_write(t.view)); break;
      }
      st.keep.push_back(t.storage);
    }
    st.stream->dispatch(*k.kernel, binds, push, push_bytes, {groups[0], groups[1], groups[2]}, k.name.c_str());
  });
}

void kernel_release(const tessera_host_t* host, tessera_kernel_t kernel) {
  if (kernel) Services::of(host).remove_kernel(kernel);
}

const tessera_kernel_service_t kKernelService = {sizeof(tessera_kernel_service_t), kernel_create, kernel_dispatch,
                                                 kernel_release};

// ---- safetensors ----

void fill_stored(const io::StoredTensor& t, tessera_stored_tensor_t* out) {
  const uint32_t size = out->struct_size ? std::min<uint32_t>(out->struct_size, sizeof *out) : sizeof *out;
  tessera_stored_tensor_t info{};
  info.struct_size = size;
  info.name = t.name.c_str();
  info.dtype = t.dtype.c_str();
  if (t.shape.size() > 8) throw BadArgument("tensor '" + t.name + "' has more than 8 dimensions");
  info.rank = static_cast<uint32_t>(t.shape.size());
  for (size_t i = 0; i < t.shape.size(); ++i) info.shape[i] = t.shape[i];
  info.data = t.data;
  info.bytes = t.bytes;
  std::memcpy(out, &info, size);
}

tessera_status_t weights_open(const tessera_host_t* host, const char* path, tessera_weights_t* out,
                              tessera_message_t* error) {
  return guarded(error, [&] {
    if (!path || !out) throw BadArgument("safetensors.open: path and out must not be NULL");
    Services& s = Services::of(host);
    auto e = std::make_unique<Services::WeightsEntry>(Services::WeightsEntry{&Services::device_of(host), io::SafetensorsFile(path)});
    *out = s.add_weights(std::move(e));
  });
}

uint32_t weights_count(const tessera_host_t* host, tessera_weights_t file) {
  try {
    return static_cast<uint32_t>(Services::of(host).weights(file).file.tensors().size());
  } catch (const std::exception&) {
    return 0;
  }
}

tessera_status_t weights_at(const tessera_host_t* host, tessera_weights_t file, uint32_t index,
                            tessera_stored_tensor_t* out, tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out) throw BadArgument("safetensors.at: out is NULL");
    const auto& f = Services::of(host).weights(file).file;
    if (index >= f.tensors().size())
      throw BadArgument(f.path() + ": index " + std::to_string(index) + " of " + std::to_string(f.tensors().size()) + " tensors");
    fill_stored(f.tensors()[index], out);
  });
}

tessera_status_t weights_find(const tessera_host_t* host, tessera_weights_t file, const char* name,
                              tessera_stored_tensor_t* out, tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out || !name) throw BadArgument("safetensors.find: name and out must not be NULL");
    const auto& f = Services::of(host).weights(file).file;
    const io::StoredTensor* t = f.find(name);
    if (!t) throw BadArgument(f.path() + ": no tensor '" + name + "'");
    fill_stored(*t, out);
  });
}

const char* weights_metadata(const tessera_host_t* host, tessera_weights_t file, const char* key) {
  try {
    const auto& m = Services::of(host).weights(file).file.metadata();
    auto it = m.find(key ? key : "");
    return it == m.end() ? nullptr : it->second.c_str();
  } catch (const std::exception&) {
    return nullptr;
  }
}

tessera_status_t weights_load(const tessera_host_t* host, tessera_weights_t file, const char* name,
                              tessera_dtype_t dtype, uint32_t rank, const int64_t* shape, tessera_tensor_t* out,
                              tessera_message_t* error) {
  return guarded(error, [&] {
    if (!out || !name) throw BadArgument("safetensors.load: name and out must not be NULL");
    Services& s = Services::of(host);
    Services::WeightsEntry& w = s.weights(file);
    const io::StoredTensor* t = w.file.find(name);
    if (!t) throw BadArgument(w.file.path() + ": no tensor '" + name + "'");
    if (rank) w.file.expect_shape(*t, std::vector<int64_t>(shape, shape + rank));
    const gpu::DType want = dtype_of(dtype, "safetensors.load");
    std::vector<int64_t> dims = t->shape.empty() ? std::vector<int64_t>{1} : t->shape;
    if (dims.size() > 4) throw BadArgument(w.file.path() + ": tensor '" + t->name + "' " + t->shape_str() + " has more than 4 dimensions");
    if (t->numel() == 0) throw BadArgument(w.file.path() + ": tensor '" + t->name + "' " + t->shape_str() + " is empty");
    Services::Device& d = Services::device_of(host);
    auto storage = std::make_shared<gpu::Tensor>(s.context(d), want, std::span<const int64_t>(dims), t->name);
    if (want == gpu::DType::i32) {
      if (t->dtype != "I32") throw BadArgument(w.file.path() + ": tensor '" + t->name + "' is " + t->dtype + ", not I32");
      gpu::upload_bytes(storage->view(), t->data, t->bytes);
    } else if (want == gpu::DType::f16 && t->dtype == "F16") {
      gpu::upload_bytes(storage->view(), t->data, t->bytes);
    } else {
      std::vector<float> wide(static_cast<size_t>(t->numel()));
      try {
        io::convert_to_f32(*t, wide.data());
      } catch (const Error& e) {
        throw BadArgument(w.file.path() + ": " + e.what());
      }
      gpu::upload(storage->view(), wide);
    }
    Services::TensorEntry e;
    e.view = storage->view();
    e.storage = std::move(storage);
    e.device = &d;
    *out = s.add_tensor(std::move(e));
  });
}

void weights_close(const tessera_host_t* host, tessera_weights_t file) {
  if (file) Services::of(host).remove_weights(file);
}

const tessera_safetensors_service_t kSafetensorsService = {
    sizeof(tessera_safetensors_service_t), weights_open, weights_count, weights_at, weights_find,
    weights_metadata, weights_load, weights_close};

// ---- random ----

uint64_t splitmix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t random_bits(uint64_t seed, uint64_t counter) { return splitmix(splitmix(seed) ^ splitmix(~counter)); }

void random_uniform(uint64_t seed, uint64_t counter, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(random_bits(seed, counter + i) >> 40) * 0x1p-24f;
}

void random_normal(uint64_t seed, uint64_t counter, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const uint64_t b = random_bits(seed, counter + i);
    const double u1 = (static_cast<double>(b >> 40) + 1.0) * 0x1p-24;  // (0, 1]
    const double u2 = static_cast<double>((b >> 16) & 0xFFFFFF) * 0x1p-24;
    out[i] = static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
}

const tessera_random_service_t kRandomService = {sizeof(tessera_random_service_t), random_bits, random_uniform,
                                                 random_normal};

void host_log(const tessera_host_t*, int32_t level, const char* message) {
  const LogLevel l = level <= 0 ? LogLevel::debug : level == 1 ? LogLevel::info : level == 2 ? LogLevel::warn : LogLevel::error;
  log(l, message ? message : "");
}

const void* host_service(const tessera_host_t* host, const char* id) {
  return host && id ? Services::of(host).service(id) : nullptr;
}

}  // namespace

Services::Services(gpu::ContextOptions options) : options_(std::move(options)) {}

Services::~Services() {
  // Streams first (they wait for work in flight), then what the GPU work used, then the devices.
  streams_.clear();
  kernels_.clear();
  tensors_.clear();
  weights_.clear();
  devices_.clear();
}

const tessera_host_t* Services::host(const std::string& device) {
  std::lock_guard<std::mutex> lock(devices_mutex_);
  auto& d = devices_[device];
  if (!d) {
    d = std::make_unique<Device>();
    d->owner = this;
    d->name = device;
    d->host.struct_size = sizeof d->host;
    d->host.abi = TESSERA_ABI_VERSION;
    d->host.name = "tessera";
    d->host.version = "0.1.0";
    d->host.log = host_log;
    d->host.get_service = host_service;
    d->host.host_data = d.get();
  }
  return &d->host;
}

void Services::use_context(gpu::Context& ctx) {
  std::lock_guard<std::mutex> lock(devices_mutex_);
  borrowed_ = &ctx;
}

const void* Services::service(const char* id) const {
  const std::string s = id;
  if (s == TESSERA_SERVICE_TENSORS) return &kTensorService;
  if (s == TESSERA_SERVICE_OPS) return &kOpsService;
  if (s == TESSERA_SERVICE_KERNELS) return &kKernelService;
  if (s == TESSERA_SERVICE_SAFETENSORS) return &kSafetensorsService;
  if (s == TESSERA_SERVICE_RANDOM) return &kRandomService;
  return nullptr;
}

Services& Services::of(const tessera_host_t* host) { return *device_of(host).owner; }

Services::Device& Services::device_of(const tessera_host_t* host) {
  if (!host || !host->host_data) throw BadArgument("the host pointer is not the one this stage was given");
  return *static_cast<Device*>(host->host_data);
}

gpu::Context& Services::context(Device& d) {
  std::lock_guard<std::mutex> lock(devices_mutex_);
  if (!d.ctx) {
    if (d.name.empty() && borrowed_) {
      d.ctx = borrowed_;
    } else {
      gpu::ContextOptions o = options_;
      if (!d.name.empty()) o.device = d.name;
      d.own = std::make_unique<gpu::Context>(o);
      d.ctx = d.own.get();
    }
  }
  return *d.ctx;
}

Services::TensorEntry Services::tensor(tessera_tensor_t t) const {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = tensors_.find(t);
  if (it == tensors_.end()) bad_handle(t, kTensor, "tensor");
  return *it->second;
}

tessera_tensor_t Services::add_tensor(TensorEntry e) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  const uint64_t h = (kTensor << kKindShift) | next_handle_++;
  tensors_.emplace(h, std::make_shared<TensorEntry>(std::move(e)));
  return h;
}

tessera_tensor_t Services::retain(tessera_tensor_t t) { return add_tensor(tensor(t)); }

tessera_tensor_t Services::transfer(tessera_tensor_t t, const tessera_host_t* host) {
  TensorEntry e = tensor(t);
  Device& to = device_of(host);
  if (e.device == &to) return retain(t);
  std::vector<int64_t> shape(e.view.shape.begin(), e.view.shape.begin() + e.view.rank);
  auto copy = std::make_shared<gpu::Tensor>(context(to), e.view.dtype, std::span<const int64_t>(shape), "transferred");
  if (e.view.dtype == gpu::DType::i32)
    gpu::upload(copy->view(), gpu::download_i32(e.view));
  else
    gpu::upload(copy->view(), gpu::download_f32(e.view));  // f16 widens and narrows back exactly
  TensorEntry moved;
  moved.view = copy->view();
  moved.storage = std::move(copy);
  moved.device = &to;
  return add_tensor(std::move(moved));
}

void Services::release(tessera_tensor_t t) {
  std::shared_ptr<TensorEntry> gone;  // freed outside the lock
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = tensors_.find(t);
  if (it == tensors_.end()) return;
  gone = std::move(it->second);
  tensors_.erase(it);
}

size_t Services::live_tensors() const {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  return tensors_.size();
}

size_t Services::live_streams() const {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  return streams_.size();
}

Services::StreamEntry& Services::stream(tessera_stream_t s) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = streams_.find(s);
  if (it == streams_.end()) bad_handle(s, kStream, "stream");
  return *it->second;
}

tessera_stream_t Services::add_stream(std::unique_ptr<StreamEntry> e) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  const uint64_t h = (kStream << kKindShift) | next_handle_++;
  streams_.emplace(h, std::move(e));
  return h;
}

void Services::remove_stream(tessera_stream_t s) {
  std::unique_ptr<StreamEntry> gone;
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = streams_.find(s);
  if (it == streams_.end()) return;
  gone = std::move(it->second);
  streams_.erase(it);
}

const Services::KernelEntry& Services::kernel(tessera_kernel_t k) const {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = kernels_.find(k);
  if (it == kernels_.end()) bad_handle(k, kKernel, "kernel");
  return *it->second;
}

tessera_kernel_t Services::add_kernel(std::unique_ptr<KernelEntry> e) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  const uint64_t h = (kKernel << kKindShift) | next_handle_++;
  kernels_.emplace(h, std::move(e));
  return h;
}

void Services::remove_kernel(tessera_kernel_t k) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  kernels_.erase(k);
}

Services::WeightsEntry& Services::weights(tessera_weights_t w) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = weights_.find(w);
  if (it == weights_.end()) bad_handle(w, kWeights, "weights");
  return *it->second;
}

tessera_weights_t Services::add_weights(std::unique_ptr<WeightsEntry> e) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  const uint64_t h = (kWeights << kKindShift) | next_handle_++;
  weights_.emplace(h, std::move(e));
  return h;
}

void Services::remove_weights(tessera_weights_t w) {
  std::unique_ptr<WeightsEntry> gone;
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = weights_.find(w);
  if (it == weights_.end()) return;
  gone = std::move(it->second);
  weights_.erase(it);
}

}  // namespace tessera::plugin
