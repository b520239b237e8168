#pragma once
// The host side of the plugin services (tessera/plugin.h): tensors, ops, custom kernels, safetensors files
// and random numbers, reached by plugins through get_service(). One tessera_host_t per device; handles
// are process-wide, tagged by kind, and checked on every call so that a stale or wrong handle gives a
// message instead of a crash.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "gpu/context.hpp"
#include "gpu/tensor.hpp"
#include "tessera/plugin.h"

namespace tessera::plugin {

class Services {
 public:
  // `options` make the Context of each device on first use (its `device` field is replaced per host).
  explicit Services(gpu::ContextOptions options = gpu::ContextOptions::from_environment());
  ~Services();  // frees every handle, then the devices it made
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  // Stages on `device` ("" = the default one) get this host. Creating it does not touch the GPU.
  const tessera_host_t* host(const std::string& device = "");
  // Borrow `ctx` as the default device instead of making one (tests share their validated context).
  // Call before any stage uses the GPU; `ctx` must outlive this object.
  void use_context(gpu::Context& ctx);
  const void* service(const char* id) const;

  // For the scheduler: references to tensors on ports.
  tessera_tensor_t retain(tessera_tensor_t t);
  // A reference to `t` usable by stages on `host`'s device: `t` itself, or a copy made through host memory
  // when the tensor lives on another device (a pipeline that places stages on two GPUs).
  tessera_tensor_t transfer(tessera_tensor_t t, const tessera_host_t* host);
  void release(tessera_tensor_t t);
  size_t live_tensors() const;
  size_t live_streams() const;

  struct Device;
  struct TensorEntry;
  struct StreamEntry;
  struct KernelEntry;
  struct WeightsEntry;

  // Implementation access for the C entry points (services.cpp, op_table.cpp).
  static Services& of(const tessera_host_t* host);
  static Device& device_of(const tessera_host_t* host);
  gpu::Context& context(Device& d);
  TensorEntry tensor(tessera_tensor_t t) const;  // throws when t is not a live tensor
  tessera_tensor_t add_tensor(TensorEntry e);
  StreamEntry& stream(tessera_stream_t s);
  tessera_stream_t add_stream(std::unique_ptr<StreamEntry> e);
  void remove_stream(tessera_stream_t s);
  const KernelEntry& kernel(tessera_kernel_t k) const;
  tessera_kernel_t add_kernel(std::unique_ptr<KernelEntry> e);
  void remove_kernel(tessera_kernel_t k);
  WeightsEntry& weights(tessera_weights_t w);
  tessera_weights_t add_weights(std::unique_ptr<WeightsEntry> e);
  void remove_weights(tessera_weights_t w);

 private:
  gpu::ContextOptions options_;
  std::mutex devices_mutex_;
  std::map<std::string, std::unique_ptr<Device>> devices_;
  gpu::Context* borrowed_ = nullptr;

  mutable std::mutex handles_mutex_;
  uint64_t next_handle_ = 1;
  std::unordered_map<uint64_t, std::shared_ptr<TensorEntry>> tensors_;
  std::unordered_map<uint64_t, std::unique_ptr<StreamEntry>> streams_;
  std::unordered_map<uint64_t, std::unique_ptr<KernelEntry>> kernels_;
  std::unordered_map<uint64_t, std::unique_ptr<WeightsEntry>> weights_;
};

// A tensor handle's target: shared storage and this handle's view of it.
struct Services::TensorEntry {
  std::shared_ptr<gpu::Tensor> storage;
  gpu::TensorView view;
  Device* device = nullptr;
};

// Records core ops by name (op_table.cpp); throws tessera::Error "op: reason" for any bad argument.
void record_op(Services& services, const tessera_host_t* host, tessera_stream_t stream, const char* op,
               const tessera_op_arg_t* args, uint32_t arg_count);
bool known_op(const char* op);

}  // namespace tessera::plugin
