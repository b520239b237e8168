#include <cstdio>

#include "cli/commands.hpp"
#include "gpu/device.hpp"

namespace tessera::cli {

int devices(const Globals& g, const std::vector<std::string>&) {
  gpu::Instance instance(g.options.validate);
  const auto all = instance.describe_all();
  if (all.empty()) {
    std::printf("no Vulkan 1.1 device found\n");
    return 1;
  }
  const uint32_t chosen = instance.select(g.options.device);
  for (const auto& d : all) {
    const auto& f = d.features;
    std::printf("%s %u: %s (%s)\n", d.index == chosen ? "*" : " ", d.index, d.name.c_str(), d.type_name());
    std::printf("    driver          %s %s, Vulkan %u.%u.%u\n", d.driver_name.c_str(), d.driver_info.c_str(),
                VK_API_VERSION_MAJOR(d.api_version), VK_API_VERSION_MINOR(d.api_version),
                VK_API_VERSION_PATCH(d.api_version));
    std::printf("    ids             vendor 0x%04x, device 0x%04x\n", d.vendor_id, d.device_id);
    std::printf("    memory          %.0f MiB device-local%s\n", static_cast<double>(d.device_local_bytes) / (1 << 20),
                f.unified_memory ? ", host-mappable (no staging)" : "");
    std::printf("    fp16 arithmetic %s, int8 arithmetic %s\n", f.fp16_arithmetic ? "yes" : "no",
                f.int8_arithmetic ? "yes" : "no");
    std::printf("    16-bit storage  %s, 8-bit storage %s, f16 texel fetch %s\n", f.storage_16bit ? "yes" : "no",
                f.storage_8bit ? "yes" : "no", f.f16_texel_fetch ? "yes" : "no");
    std::printf("    subgroup        size %u, ops %s%s\n", f.subgroup_size, gpu::subgroup_ops_string(f.subgroup_ops).c_str(),
                f.subgroup_in_compute ? "" : " (not in compute)");
    std::printf("    shared memory   %u KiB\n", f.shared_memory_bytes / 1024);
    std::printf("    workgroup       %u invocations, size %ux%ux%u\n", f.max_workgroup_invocations,
                f.max_workgroup_size[0], f.max_workgroup_size[1], f.max_workgroup_size[2]);
    std::printf("    timestamps      %s", f.timestamps ? "yes" : "no");
    if (f.timestamps) std::printf(" (%.3g ns per tick)", f.timestamp_period_ns);
    std::printf("\n    limits          storage buffer %u MiB, texel buffer %u texels, push constants %u bytes\n",
                f.max_storage_buffer_range >> 20, f.max_texel_buffer_elements, f.max_push_constants);
  }
  std::printf("(* = the device Tessera uses; choose another with --device or TESSERA_DEVICE)\n");
  return 0;
}

}  // namespace tessera::cli
