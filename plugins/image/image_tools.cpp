// Plugin tessera.image: image utilities for pipelines (CPU; they move bytes, not math).
#include <algorithm>
#include <cmath>

#include "tessera/plugin.hpp"

namespace {

namespace sdk = tessera::sdk;

// A batch of images as one mosaic, min-dalle's grid: `columns` across (0 = the smallest square that fits).
class Grid : public sdk::Stage {
 public:
  explicit Grid(const sdk::Params& p) : columns_(p.integer("columns")), gap_(p.integer("gap")) {}
  void run(sdk::Run& r) override {
    const sdk::Image in = r.image("image");
    const int64_t n = in.count, w = in.width, h = in.height;
    const int64_t cols = columns_ > 0 ? std::min<int64_t>(columns_, n)
                                      : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    const int64_t rows = (n + cols - 1) / cols;
    sdk::Image out;
    out.count = 1;
    out.width = static_cast<uint32_t>(cols * w + (cols - 1) * gap_);
    out.height = static_cast<uint32_t>(rows * h + (rows - 1) * gap_);
    out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t x0 = (i % cols) * (w + gap_), y0 = (i / cols) * (h + gap_);
      for (int64_t y = 0; y < h; ++y)
        std::copy_n(in.pixels.begin() + static_cast<long>(((i * h + y) * w) * 3), w * 3,
                    out.pixels.begin() + static_cast<long>(((y0 + y) * out.width + x0) * 3));
    }
    r.set_image("image", out);
  }

 private:
  int64_t columns_, gap_;
};

// Nearest-neighbour enlargement by an integer factor: small model outputs become visible pictures.
class Upscale : public sdk::Stage {
 public:
  explicit Upscale(const sdk::Params& p) : factor_(p.integer("factor")) {}
  void run(sdk::Run& r) override {
    const sdk::Image in = r.image("image");
    sdk::Image out;
    out.count = in.count;
    out.width = static_cast<uint32_t>(in.width * factor_);
    out.height = static_cast<uint32_t>(in.height * factor_);
    out.pixels.resize(static_cast<size_t>(out.count) * out.width * out.height * 3);
    for (uint32_t i = 0; i < in.count; ++i)
      for (uint32_t y = 0; y < out.height; ++y)
        for (uint32_t x = 0; x < out.width; ++x)
          for (int c = 0; c < 3; ++c)
            out.pixels[((static_cast<size_t>(i) * out.height + y) * out.width + x) * 3 + c] =
                in.pixels[((static_cast<size_t>(i) * in.height + y / factor_) * in.width + x / factor_) * 3 + c];
    r.set_image("image", out);
  }

 private:
  int64_t factor_;
};

}  // namespace

TESSERA_PLUGIN("tessera.image", "1.0.0", "Tessera", "image utilities: grids and nearest upscaling",
               sdk::stage<Grid>("grid", "a batch of images as one mosaic", {sdk::input("image", TESSERA_PORT_IMAGE)},
                                {sdk::output("image", TESSERA_PORT_IMAGE, "one image")},
                                {sdk::int_param("columns", 0, 0, 64, "images across; 0: a square grid"),
                                 sdk::int_param("gap", 0, 0, 64, "white pixels between images")}),
               sdk::stage<Upscale>("upscale", "nearest-neighbour enlargement", {sdk::input("image", TESSERA_PORT_IMAGE)},
                                   {sdk::output("image", TESSERA_PORT_IMAGE)},
                                   {sdk::int_param("factor", 4, 1, 32, "integer scale factor")}))
