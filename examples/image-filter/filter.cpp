// An image filter plugin with its own compute shader, written against the installed Tessera SDK only.
// The shader (invert.comp) is compiled to SPIR-V at build time by tessera_add_plugin(... SHADERS ...).
#include <cmath>

#include "tessera/plugin.hpp"
#include "invert_spirv.h"  // const uint32_t invert_spirv[], made by glslang at build time

namespace {

namespace sdk = tessera::sdk;

struct InvertPush {
  uint32_t count, src_offset, dst_offset;
  float strength;
};

class Invert : public sdk::Stage {
 public:
  Invert(const sdk::Params& p, const sdk::Host& host)
      : host_(host),
        strength_(static_cast<float>(p.number("strength"))),
        kernel_(host, "example.invert", invert_spirv, sizeof invert_spirv,
                {TESSERA_BINDING_TEXEL, TESSERA_BINDING_STORAGE}, sizeof(InvertPush)) {}

  void run(sdk::Run& r) override {
    sdk::Image img = r.image("image");
    const int64_t n = static_cast<int64_t>(img.pixels.size());
    std::vector<float> values(img.pixels.begin(), img.pixels.end());
    for (float& v : values) v /= 255.0f;
    sdk::Tensor src(host_, TESSERA_DTYPE_F32, {n}, "invert.src");
    sdk::Tensor dst(host_, TESSERA_DTYPE_F32, {n}, "invert.dst");
    src.upload(values);

    sdk::Stream stream(host_);
    const InvertPush push{static_cast<uint32_t>(n), static_cast<uint32_t>(src.info().offset),
                          static_cast<uint32_t>(dst.info().offset), strength_};
    kernel_.dispatch(stream, {&src, &dst}, push, {static_cast<uint32_t>((n + 63) / 64), 1, 1});
    stream.finish();

    const std::vector<float> out = dst.download_f32();
    for (size_t i = 0; i < out.size(); ++i)
      img.pixels[i] = static_cast<uint8_t>(std::lround(std::fmin(std::fmax(out[i], 0.0f), 1.0f) * 255.0f));
    r.progress(1.0, "inverted");
    r.set_image("image", img);
  }

 private:
  sdk::Host host_;
  float strength_;
  sdk::Kernel kernel_;
};

}  // namespace

TESSERA_PLUGIN("example.filters", "1.0.0", "Tessera examples", "image filters with their own compute shaders",
               sdk::stage<Invert>("invert", "moves each colour towards its inverse on the GPU",
                                  {sdk::input("image", TESSERA_PORT_IMAGE, "RGB8 images")},
                                  {sdk::output("image", TESSERA_PORT_IMAGE, "the filtered images")},
                                  {sdk::float_param("strength", 1.0, 0.0, 1.0, "0 keeps the image, 1 inverts it")}))
