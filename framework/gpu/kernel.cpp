#include "gpu/kernel.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gpu/context.hpp"
#include "gpu/error.hpp"
#include "gpu/shaders.hpp"

namespace tessera::gpu {
namespace {

uint64_t fnv1a(const void* data, size_t bytes, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

constexpr char kMagic[8] = {'T', 'S', 'R', 'P', 'C', 'A', 'C', '1'};

}  // namespace

std::string KernelSpec::key() const {
  std::string k = shader;
  for (int32_t c : constants) k += ":" + std::to_string(c);
  if (!spirv.empty()) {  // a plugin may ask for one shader with several layouts
    k += "|";
    for (Access a : bindings) k += a == Access::texel ? 't' : 's';
    k += "|" + std::to_string(push_bytes);
  }
  return k;
}

const EmbeddedShader& find_shader(std::string_view name) {
  for (const EmbeddedShader& s : embedded_shaders())
    if (name == s.name) return s;
  throw Error("shader variant \"" + std::string(name) + "\" is not built into this library");
}

uint64_t embedded_shaders_hash() {
  static const uint64_t hash = [] {
    uint64_t h = 1469598103934665603ull;
    for (const EmbeddedShader& s : embedded_shaders()) {
      h = fnv1a(s.name, std::strlen(s.name), h);
      h = fnv1a(s.words, s.word_count * sizeof(uint32_t), h);
    }
    return h;
  }();
  return hash;
}

Kernel::Kernel(Context& ctx, const KernelSpec& spec, VkPipelineCache cache) : ctx_(ctx), spec_(spec) {
  const EmbeddedShader shader = spec.spirv.empty()
                                    ? find_shader(spec.shader)
                                    : EmbeddedShader{spec.shader.c_str(), spec.spirv.data(), spec.spirv.size()};
  VkDevice dev = ctx.device();

  std::vector<VkDescriptorSetLayoutBinding> bindings(spec.bindings.size());
  for (uint32_t i = 0; i < bindings.size(); ++i) {
    bindings[i].binding = i;
    bindings[i].descriptorType = spec.bindings[i] == Access::texel ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                                    : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    bindings[i].descriptorCount = 1;
    bindings[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  auto set_info = vk_struct<VkDescriptorSetLayoutCreateInfo>(VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO);
  set_info.bindingCount = static_cast<uint32_t>(bindings.size());
  set_info.pBindings = bindings.data();

  auto module_info = vk_struct<VkShaderModuleCreateInfo>(VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO);
  module_info.codeSize = shader.word_count * sizeof(uint32_t);
  module_info.pCode = shader.words;
  VkShaderModule module = VK_NULL_HANDLE;

  try {
    TESSERA_VK(vkCreateDescriptorSetLayout(dev, &set_info, nullptr, &set_layout_));
    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, spec.push_bytes};
    auto layout_info = vk_struct<VkPipelineLayoutCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO);
    layout_info.setLayoutCount = 1;
    layout_info.pSetLayouts = &set_layout_;
    layout_info.pushConstantRangeCount = spec.push_bytes ? 1 : 0;
    layout_info.pPushConstantRanges = &range;
    TESSERA_VK(vkCreatePipelineLayout(dev, &layout_info, nullptr, &layout_));
    TESSERA_VK(vkCreateShaderModule(dev, &module_info, nullptr, &module));

    std::vector<VkSpecializationMapEntry> entries(spec.constants.size());
    for (uint32_t i = 0; i < entries.size(); ++i) entries[i] = {i, i * 4u, 4};
    VkSpecializationInfo spec_info{static_cast<uint32_t>(entries.size()), entries.data(),
                                   spec.constants.size() * sizeof(int32_t), spec.constants.data()};

    auto info = vk_struct<VkComputePipelineCreateInfo>(VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO);
    info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module;
    info.stage.pName = "main";
    info.stage.pSpecializationInfo = entries.empty() ? nullptr : &spec_info;
    info.layout = layout_;
    TESSERA_VK(vkCreateComputePipelines(dev, cache, 1, &info, nullptr, &pipeline_));
  } catch (...) {
    if (module) vkDestroyShaderModule(dev, module, nullptr);
    if (layout_) vkDestroyPipelineLayout(dev, layout_, nullptr);
    if (set_layout_) vkDestroyDescriptorSetLayout(dev, set_layout_, nullptr);
    throw;
  }
  vkDestroyShaderModule(dev, module, nullptr);
}

Kernel::~Kernel() {
  VkDevice dev = ctx_.device();
  vkDestroyPipeline(dev, pipeline_, nullptr);
  vkDestroyPipelineLayout(dev, layout_, nullptr);
  vkDestroyDescriptorSetLayout(dev, set_layout_, nullptr);
}

std::string PipelineCacheFile::default_directory() {
  if (const char* dir = std::getenv("TESSERA_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/tessera";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/tessera";
  return {};
}

PipelineCacheFile::PipelineCacheFile(VkDevice device, const DeviceInfo& info) : device_(device) {
  // Header: magic, vendor, device, driver version, driver cache UUID, shader hash, payload size and hash.
  auto put = [&](const void* p, size_t n) {
    header_.insert(header_.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  };
  const uint64_t shaders = embedded_shaders_hash();
  put(kMagic, sizeof kMagic);
  put(&info.vendor_id, 4);
  put(&info.device_id, 4);
  put(&info.driver_version, 4);
  put(info.pipeline_cache_uuid, VK_UUID_SIZE);
  put(&shaders, 8);

  std::vector<uint8_t> payload;
  const std::string dir = default_directory();
  if (!dir.empty() && !std::getenv("TESSERA_NO_PIPELINE_CACHE")) {
    char name[64];
    std::snprintf(name, sizeof name, "/pipelines-%04x-%04x.bin", info.vendor_id, info.device_id);
    path_ = dir + name;
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const size_t h = header_.size();
      uint64_t size = 0, hash = 0;
      if (file.size() < h + 16 || std::memcmp(file.data(), header_.data(), h) != 0) {
        log(LogLevel::debug, "pipeline cache " + path_ + " is from another device, driver or build; starting afresh");
      } else {
        std::memcpy(&size, file.data() + h, 8);
        std::memcpy(&hash, file.data() + h + 8, 8);
        if (size != file.size() - h - 16 || fnv1a(file.data() + h + 16, size) != hash) {
          log(LogLevel::warn, "pipeline cache " + path_ + " is corrupt; ignoring it");
        } else {
          payload.assign(file.begin() + static_cast<long>(h + 16), file.end());
          loaded_ = true;
        }
      }
    }
  }
  auto ci = vk_struct<VkPipelineCacheCreateInfo>(VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO);
  ci.initialDataSize = payload.size();
  ci.pInitialData = payload.empty() ? nullptr : payload.data();
  if (vkCreatePipelineCache(device_, &ci, nullptr, &cache_) != VK_SUCCESS) {
    // The driver rejected the data it once wrote: start empty rather than fail the run.
    log(LogLevel::warn, "the driver rejected pipeline cache " + path_ + "; starting afresh");
    loaded_ = false;
    ci.initialDataSize = 0;
    ci.pInitialData = nullptr;
    TESSERA_VK(vkCreatePipelineCache(device_, &ci, nullptr, &cache_));
  }
}

PipelineCacheFile::~PipelineCacheFile() {
  try {
    if (dirty_) save();
  } catch (...) {
  }
  vkDestroyPipelineCache(device_, cache_, nullptr);
}

void PipelineCacheFile::save() {
  if (path_.empty()) return;
  size_t size = 0;
  if (vkGetPipelineCacheData(device_, cache_, &size, nullptr) != VK_SUCCESS) return;
  std::vector<uint8_t> data(size);
  if (vkGetPipelineCacheData(device_, cache_, &size, data.data()) != VK_SUCCESS) return;
  data.resize(size);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  const std::string tmp = path_ + ".tmp" + std::to_string(reinterpret_cast<uintptr_t>(this) & 0xffff);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      log(LogLevel::debug, "cannot write pipeline cache " + tmp);
      return;
    }
    const uint64_t payload_size = data.size();
    const uint64_t hash = fnv1a(data.data(), data.size());
    out.write(reinterpret_cast<const char*>(header_.data()), static_cast<std::streamsize>(header_.size()));
    out.write(reinterpret_cast<const char*>(&payload_size), 8);
    out.write(reinterpret_cast<const char*>(&hash), 8);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    if (!out) {
      out.close();
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, path_, ec);
  if (ec) std::filesystem::remove(tmp, ec);
  dirty_ = false;
}

}  // namespace tessera::gpu
