// A plugin written with the C++ SDK (tessera/plugin.hpp): one file, no C boilerplate.
#include <algorithm>

#include "tessera/plugin.hpp"

namespace {

using tessera::sdk::Image;
using tessera::sdk::Params;
using tessera::sdk::Run;

class Tint : public tessera::sdk::Stage {
 public:
  explicit Tint(const Params& p) : add_{p.integer("red"), p.integer("green"), p.integer("blue")}, explode_(p.boolean("explode")) {}
  void run(Run& r) override {
    if (explode_) throw std::runtime_error("tint exploded as asked");
    Image img = r.image("image");
    for (size_t i = 0; i < img.pixels.size(); ++i)
      img.pixels[i] = static_cast<uint8_t>(std::min<int64_t>(255, img.pixels[i] + add_[i % 3]));
    r.progress(1.0, "tinted");
    r.set_image("image", img);
  }

 private:
  int64_t add_[3];
  bool explode_;
};

class Count : public tessera::sdk::Stage {
 public:
  explicit Count(const Params&) {}
  void run(Run& r) override {
    const Image img = r.image("image");
    r.set_texts("text", {std::to_string(img.width * img.height) + " pixels, seed " + std::to_string(r.seed())});
  }
};

}  // namespace

TESSERA_PLUGIN("test.cpp", "1.0.0", "Tessera tests", "stages written with the C++ SDK",
               tessera::sdk::stage<Tint>("tint", "adds a colour", {tessera::sdk::input("image", TESSERA_PORT_IMAGE)},
                                         {tessera::sdk::output("image", TESSERA_PORT_IMAGE)},
                                         {tessera::sdk::int_param("red", 0, 0, 255), tessera::sdk::int_param("green", 0, 0, 255),
                                          tessera::sdk::int_param("blue", 0, 0, 255),
                                          tessera::sdk::bool_param("explode", false)}),
               tessera::sdk::stage<Count>("count", "counts pixels", {tessera::sdk::input("image", TESSERA_PORT_IMAGE)},
                                          {tessera::sdk::output("text", TESSERA_PORT_TEXT)}))
