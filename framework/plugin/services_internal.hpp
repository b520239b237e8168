#pragma once
// What a handle of the plugin services points at; shared by services.cpp and op_table.cpp only.
#include <memory>
#include <string>
#include <vector>

#include "gpu/kernel.hpp"
#include "gpu/stream.hpp"
#include "io/safetensors.hpp"
#include "ops/attention.hpp"
#include "plugin/services.hpp"

namespace tessera::plugin {

struct Services::Device {
  tessera_host_t host{};
  Services* owner = nullptr;
  std::string name;  // as the pipeline wrote it; "" = default
  std::unique_ptr<gpu::Context> own;
  gpu::Context* ctx = nullptr;
};

struct Services::StreamEntry {
  Device* device = nullptr;
  std::unique_ptr<gpu::Stream> stream;
  std::vector<std::shared_ptr<gpu::Tensor>> keep;  // storage of the tensors recorded ops use, until finish()
  std::unique_ptr<ops::AttentionWorkspace> attention;
};

struct Services::KernelEntry {
  Device* device = nullptr;
  const gpu::Kernel* kernel = nullptr;
  std::vector<tessera_binding_t> bindings;
  uint32_t push_bytes = 0;
  std::string name;
};

struct Services::WeightsEntry {
  Device* device = nullptr;
  io::SafetensorsFile file;
};

}  // namespace tessera::plugin
