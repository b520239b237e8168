// Plugin tessera.image: image utilities for pipelines (CPU; they move bytes, not math).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "tessera/plugin.hpp"

namespace {

namespace sdk = tessera::sdk;

// A batch of images as mosaics, min-dalle's grid: `columns` across (0 = the smallest square that fits).
// `per_grid` > 0 makes one mosaic of every `per_grid` consecutive images (the images of each prompt of a
// batch of prompts); 0 puts the whole batch in one.
class Grid : public sdk::Stage {
 public:
  explicit Grid(const sdk::Params& p)
      : columns_(p.integer("columns")), gap_(p.integer("gap")), per_grid_(p.integer("per_grid")) {}
  void run(sdk::Run& r) override {
    const sdk::Image in = r.image("image");
    const int64_t total = in.count, w = in.width, h = in.height;
    const int64_t n = per_grid_ > 0 ? std::min<int64_t>(per_grid_, total) : total;
    if (total % n)
      throw std::runtime_error(std::to_string(total) + " images do not make grids of " + std::to_string(n));
    const int64_t cols = columns_ > 0 ? std::min<int64_t>(columns_, n)
                                      : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    const int64_t rows = (n + cols - 1) / cols;
    sdk::Image out;
    out.count = static_cast<uint32_t>(total / n);
    out.width = static_cast<uint32_t>(cols * w + (cols - 1) * gap_);
    out.height = static_cast<uint32_t>(rows * h + (rows - 1) * gap_);
    const size_t grid_bytes = static_cast<size_t>(out.width) * out.height * 3;
    out.pixels.assign(grid_bytes * out.count, 255);
    for (int64_t i = 0; i < total; ++i) {
      const int64_t g = i / n, k = i % n;
      const int64_t x0 = (k % cols) * (w + gap_), y0 = (k / cols) * (h + gap_);
      for (int64_t y = 0; y < h; ++y)
        std::copy_n(in.pixels.begin() + static_cast<long>(((i * h + y) * w) * 3), w * 3,
                    out.pixels.begin() + static_cast<long>(static_cast<size_t>(g) * grid_bytes +
                                                           static_cast<size_t>(((y0 + y) * out.width + x0) * 3)));
    }
    r.set_image("image", out);
  }

 private:
  int64_t columns_, gap_, per_grid_;
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
               sdk::stage<Grid>("grid", "a batch of images as mosaics", {sdk::input("image", TESSERA_PORT_IMAGE)},
                                {sdk::output("image", TESSERA_PORT_IMAGE, "one image per grid")},
                                {sdk::int_param("columns", 0, 0, 64, "images across; 0: a square grid"),
                                 sdk::int_param("gap", 0, 0, 64, "white pixels between images"),
                                 sdk::int_param("per_grid", 0, 0, 4096,
                                                "images per mosaic (the images of one prompt); 0: all in one")}),
               sdk::stage<Upscale>("upscale", "nearest-neighbour enlargement", {sdk::input("image", TESSERA_PORT_IMAGE)},
                                   {sdk::output("image", TESSERA_PORT_IMAGE)},
                                   {sdk::int_param("factor", 4, 1, 32, "integer scale factor")}))
