#include "io/files.hpp"

#include <stb_image.h>
#include <stb_image_write.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gpu/error.hpp"

namespace tessera::io {
namespace {

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

uint32_t get_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void append_to_vector(void* context, void* data, int size) {
  auto* v = static_cast<std::vector<uint8_t>*>(context);
  v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

const uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

}  // namespace

void write_file_atomic(const std::string& path, const void* bytes, size_t size) {
  const std::filesystem::path target(path);
  const std::string tmp = (target.parent_path() / ("." + target.filename().string() + ".tmp" +
                                                   std::to_string(::getpid()))).string();
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("cannot write " + path + ": " + std::strerror(errno));
  const bool written = std::fwrite(bytes, 1, size, f) == size;
  const int err = errno;
  const bool closed = std::fclose(f) == 0;
  std::error_code ec;
  if (!written || !closed) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write " + path + ": " + std::strerror(written ? errno : err));
  }
  std::filesystem::rename(tmp, target, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write " + path + ": " + ec.message());
  }
}

std::vector<uint8_t> read_file(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount()) {
    bytes.insert(bytes.end(), buf, buf + in.gcount());
    if (bytes.size() > max_bytes) throw Error(path + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  return bytes;
}

std::vector<uint8_t> encode_png(const Image& image, const TextChunks& text) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3)
    throw Error("encode_png: " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " RGB image needs " + std::to_string(static_cast<size_t>(std::max(image.width, 0)) * std::max(image.height, 0) * 3) +
                " bytes, has " + std::to_string(image.rgb.size()));
  std::vector<uint8_t> png;
  if (!stbi_write_png_to_func(append_to_vector, &png, image.width, image.height, 3, image.rgb.data(), image.width * 3))
    throw Error("encode_png: the PNG encoder failed");
  // stb writes signature, IHDR (8 + 25 bytes), then IDAT: tEXt chunks go right after IHDR.
  std::vector<uint8_t> chunks;
  for (const auto& [key, value] : text) {
    if (key.empty() || key.size() > 79 || key.find('\0') != std::string::npos || value.find('\0') != std::string::npos)
      throw Error("encode_png: tEXt keyword \"" + key + "\" must be 1-79 characters and neither part may hold NUL");
    std::vector<uint8_t> body(key.begin(), key.end());
    body.push_back(0);
    body.insert(body.end(), value.begin(), value.end());
    put_u32(chunks, static_cast<uint32_t>(body.size()));
    const size_t type_at = chunks.size();
    for (char c : std::string("tEXt")) chunks.push_back(static_cast<uint8_t>(c));
    chunks.insert(chunks.end(), body.begin(), body.end());
    put_u32(chunks, crc32(chunks.data() + type_at, 4 + body.size()));
  }
  const size_t after_ihdr = 8 + 25;
  png.insert(png.begin() + static_cast<long>(after_ihdr), chunks.begin(), chunks.end());
  return png;
}

void write_png(const std::string& path, const Image& image, const TextChunks& text) {
  const std::vector<uint8_t> png = encode_png(image, text);
  write_file_atomic(path, png.data(), png.size());
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, TextChunks* text) {
  int w = 0, h = 0, channels = 0;
  stbi_uc* pixels = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 3);
  if (!pixels) throw Error(name + ": not a readable image (" + stbi_failure_reason() + ")");
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(pixels, pixels + static_cast<size_t>(w) * h * 3);
  stbi_image_free(pixels);
  if (text && bytes.size() > 8 && std::memcmp(bytes.data(), kSignature, 8) == 0) {
    for (size_t at = 8; at + 12 <= bytes.size();) {
      const uint32_t len = get_u32(&bytes[at]);
      if (at + 12 + len > bytes.size()) break;
      if (std::memcmp(&bytes[at + 4], "tEXt", 4) == 0) {
        const char* body = reinterpret_cast<const char*>(&bytes[at + 8]);
        const std::string chunk(body, len);
        const size_t nul = chunk.find('\0');
        if (nul != std::string::npos) text->emplace_back(chunk.substr(0, nul), chunk.substr(nul + 1));
      }
      at += 12 + len;
    }
  }
  return img;
}

Image read_image(const std::string& path, TextChunks* text) {
  return decode_image(read_file(path, 256u << 20), path, text);
}

}  // namespace tessera::io
