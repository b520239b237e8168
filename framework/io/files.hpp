#pragma once
// Output files the way users keep them: written atomically (a half-written file never appears under the
// final name), PNGs carrying their generation parameters in tEXt chunks so a picture can be reproduced
// from its file, as stable-diffusion.cpp and ComfyUI do.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tessera::io {

// Writes `bytes` to `path` through a temporary file in the same directory renamed over it. Throws
// tessera::Error naming the path and the reason; no temporary file is left behind.
void write_file_atomic(const std::string& path, const void* bytes, size_t size);
std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes);

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3, row-major
};

using TextChunks = std::vector<std::pair<std::string, std::string>>;  // keyword, text (Latin-1 / ASCII)

// Encodes RGB8 as PNG with one tEXt chunk per entry (keywords 1-79 printable Latin-1 characters).
std::vector<uint8_t> encode_png(const Image& image, const TextChunks& text = {});
void write_png(const std::string& path, const Image& image, const TextChunks& text = {});
// Decodes any PNG (and the other formats stb_image reads) to RGB8; the tEXt chunks of a PNG come back in `text`.
Image read_image(const std::string& path, TextChunks* text = nullptr);
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, TextChunks* text = nullptr);

}  // namespace tessera::io
