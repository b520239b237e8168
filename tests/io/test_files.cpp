// PNG files carry their generation parameters and are written atomically; unreadable images give a clear
// error naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gpu/error.hpp"
#include "io/files.hpp"

namespace tessera::io {
namespace {

namespace fs = std::filesystem;

Image gradient(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      img.rgb.push_back(static_cast<uint8_t>(x * 255 / std::max(w - 1, 1)));
      img.rgb.push_back(static_cast<uint8_t>(y * 255 / std::max(h - 1, 1)));
      img.rgb.push_back(static_cast<uint8_t>((x * y) & 0xff));
    }
  return img;
}

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tessera-io-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FilesTest, PngRoundTripsPixelsAndParameters) {
  const Image img = gradient(37, 19);
  const TextChunks params = {{"prompt", "a small red circle on the left"}, {"seed", "42"}, {"pipeline", "t.yaml"}};
  const std::string path = (dir_ / "out.png").string();
  write_png(path, img, params);
  TextChunks back;
  const Image read = read_image(path, &back);
  EXPECT_EQ(read.width, 37);
  EXPECT_EQ(read.height, 19);
  EXPECT_EQ(read.rgb, img.rgb);
  EXPECT_EQ(back, params);
  // Only the final file exists: the temporary was renamed away.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(FilesTest, BadInputsGiveClearErrors) {
  Image wrong;
  wrong.width = 4;
  wrong.height = 4;
  wrong.rgb.resize(10);
  try {
    encode_png(wrong);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "encode_png: 4x4 RGB image needs 48 bytes, has 10");
  }
  try {
    encode_png(gradient(2, 2), {{"", "x"}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "encode_png: tEXt keyword \"\" must be 1-79 characters and neither part may hold NUL");
  }
  const std::string junk = (dir_ / "junk.png").string();
  std::ofstream(junk) << "not an image";
  try {
    read_image(junk);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(junk + ": not a readable image (", 0), 0u) << e.what();
  }
  try {
    write_png((dir_ / "no-such-dir" / "x.png").string(), gradient(2, 2));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot write " + (dir_ / "no-such-dir" / "x.png").string() + ": ", 0), 0u);
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1) << "nothing half-written";
}

}  // namespace
}  // namespace tessera::io
