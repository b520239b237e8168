#pragma once
// Runs one plugin stage through its C ABI, outside any pipeline, so a test can feed it exact inputs and
// read every output, GPU tensors included (model parity tests).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "plugin/loader.hpp"
#include "tessera/plugin.h"

namespace tessera::test {

// An output (or input) value with its own storage. Tensors are host references, released on destruction.
struct PortValue {
  tessera_port_type_t type = 0;
  uint32_t count = 0, length = 0, width = 0, height = 0;
  std::vector<std::string> text;
  std::vector<int32_t> ids, mask;
  std::vector<uint8_t> pixels;
  std::vector<float> samples;  // audio: count clips of `frames` x `channels`, interleaved
  uint64_t frames = 0;
  uint32_t channels = 0, sample_rate = 0;
  tessera_tensor_t tensor = 0;
  plugin::Services* services = nullptr;

  PortValue() = default;
  PortValue(PortValue&& o) noexcept;
  PortValue& operator=(PortValue&&) = delete;
  ~PortValue();

  static PortValue texts(std::vector<std::string> t);
  static PortValue audio(std::vector<float> samples, uint32_t channels, uint32_t sample_rate);
  static PortValue tokens(uint32_t rows, uint32_t length, std::vector<int32_t> ids, std::vector<int32_t> mask = {});
  // The tensor's values as f32 / i32 (downloaded).
  std::vector<float> floats() const;
  std::vector<int64_t> shape() const;
};

class StageRunner {
 public:
  // Creates an instance of plugin/stage with `params` (text, as a pipeline would write them; unlisted
  // parameters take their defaults). Throws tessera::Error with the stage's message when create() fails.
  StageRunner(plugin::PluginSet& plugins, const std::string& plugin, const std::string& stage,
              const std::map<std::string, std::string>& params);
  ~StageRunner();
  StageRunner(const StageRunner&) = delete;
  StageRunner& operator=(const StageRunner&) = delete;

  // Runs once; inputs by port name (borrowed). Throws tessera::Error with the stage's message on failure.
  std::map<std::string, PortValue> run(const std::map<std::string, const PortValue*>& inputs, uint64_t seed = 0);

 private:
  plugin::PluginSet& plugins_;
  const tessera_stage_t* stage_ = nullptr;
  void* instance_ = nullptr;
};

}  // namespace tessera::test
