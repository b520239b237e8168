#include "io/wav.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "gpu/error.hpp"
#include "io/files.hpp"
#include "tessera/audio.hpp"

namespace tessera::io {
namespace {

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
void put16(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
  put16(out, v & 0xFFFF);
  put16(out, v >> 16);
}

constexpr uint16_t kPcm = 1, kFloat = 3, kExtensible = 0xFFFE;

}  // namespace

Audio decode_wav(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() < 12 || std::memcmp(bytes.data(), "RIFF", 4) != 0 || std::memcmp(&bytes[8], "WAVE", 4) != 0)
    throw Error(name + ": not a WAV file (no RIFF/WAVE header)");
  uint16_t format = 0, channels = 0, bits = 0, block = 0;
  uint32_t rate = 0;
  bool have_fmt = false;
  const uint8_t* data = nullptr;
  size_t data_bytes = 0;
  for (size_t at = 12; at + 8 <= bytes.size();) {
    const uint32_t size = u32(&bytes[at + 4]);
    const uint8_t* body = &bytes[at + 8];
    const bool is_data = std::memcmp(&bytes[at], "data", 4) == 0;
    if (size > bytes.size() - at - 8) {
      // A streaming writer may leave the data size unknown (0xFFFFFFFF) or the file may be cut: take what
      // is there for data, refuse anything else.
      if (!is_data) throw Error(name + ": the '" + std::string(reinterpret_cast<const char*>(&bytes[at]), 4) +
                                "' chunk runs past the end of the file");
    }
    if (std::memcmp(&bytes[at], "fmt ", 4) == 0) {
      if (size < 16) throw Error(name + ": the fmt chunk is " + std::to_string(size) + " bytes, expected at least 16");
      format = u16(body);
      channels = u16(body + 2);
      rate = u32(body + 4);
      block = u16(body + 12);
      bits = u16(body + 14);
      if (format == kExtensible && size >= 40) format = u16(body + 24);  // the sub-format GUID's first two bytes
      have_fmt = true;
    } else if (is_data) {
      data = body;
      data_bytes = std::min<size_t>(size, bytes.size() - at - 8);
      break;
    }
    at += 8 + size + (size & 1);  // chunks are padded to an even size
  }
  if (!have_fmt) throw Error(name + ": no fmt chunk before the data");
  if (!data) throw Error(name + ": no data chunk");
  if (channels == 0 || rate == 0) throw Error(name + ": " + std::to_string(channels) + " channels at " +
                                              std::to_string(rate) + " Hz");
  const bool pcm = format == kPcm && (bits == 8 || bits == 16 || bits == 24 || bits == 32);
  const bool flt = format == kFloat && (bits == 32 || bits == 64);
  if (!pcm && !flt)
    throw Error(name + ": unsupported encoding (format tag " + std::to_string(format) + ", " + std::to_string(bits) +
                " bits); expected PCM 8/16/24/32-bit or float 32/64-bit");
  const uint32_t width = bits / 8;
  if (block != width * channels)
    throw Error(name + ": block align " + std::to_string(block) + " does not match " + std::to_string(channels) +
                " channels of " + std::to_string(bits) + " bits");
  Audio a;
  a.sample_rate = rate;
  a.channels = channels;
  const size_t n = data_bytes / block * channels;
  a.samples.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = data + i * width;
    float v = 0;
    if (flt && bits == 32) {
      std::memcpy(&v, p, 4);
    } else if (flt) {
      double d;
      std::memcpy(&d, p, 8);
      v = static_cast<float>(d);
    } else if (bits == 8) {
      v = (static_cast<float>(p[0]) - 128.0f) / 128.0f;  // 8-bit WAV is unsigned
    } else if (bits == 16) {
      v = static_cast<float>(static_cast<int16_t>(u16(p))) / 32768.0f;
    } else if (bits == 24) {
      const int32_t s = static_cast<int32_t>(static_cast<uint32_t>(p[0]) << 8 | static_cast<uint32_t>(p[1]) << 16 |
                                             static_cast<uint32_t>(p[2]) << 24) >> 8;
      v = static_cast<float>(s) / 8388608.0f;
    } else {
      v = static_cast<float>(static_cast<double>(static_cast<int32_t>(u32(p))) / 2147483648.0);
    }
    a.samples[i] = v;
  }
  return a;
}

Audio read_wav(const std::string& path) { return decode_wav(read_file(path, 1u << 30), path); }

std::vector<uint8_t> encode_wav(const Audio& audio) {
  if (audio.channels == 0 || audio.sample_rate == 0 || audio.samples.size() % audio.channels)
    throw Error("encode_wav: " + std::to_string(audio.samples.size()) + " samples, " + std::to_string(audio.channels) +
                " channels at " + std::to_string(audio.sample_rate) + " Hz");
  const uint64_t data_bytes = audio.samples.size() * 2;
  if (data_bytes > 0xFFFFFFFFull - 36) throw Error("encode_wav: too long for a WAV file");
  std::vector<uint8_t> out;
  out.reserve(44 + data_bytes);
  for (char c : std::string("RIFF")) out.push_back(static_cast<uint8_t>(c));
  put32(out, static_cast<uint32_t>(36 + data_bytes));
  for (char c : std::string("WAVEfmt ")) out.push_back(static_cast<uint8_t>(c));
  put32(out, 16);
  put16(out, kPcm);
  put16(out, audio.channels);
  put32(out, audio.sample_rate);
  put32(out, audio.sample_rate * audio.channels * 2);
  put16(out, audio.channels * 2);
  put16(out, 16);
  for (char c : std::string("data")) out.push_back(static_cast<uint8_t>(c));
  put32(out, static_cast<uint32_t>(data_bytes));
  for (float v : audio.samples) {
    const float c = std::isnan(v) ? 0.0f : std::clamp(v, -1.0f, 1.0f);
    put16(out, static_cast<uint16_t>(static_cast<int16_t>(std::lround(c * 32767.0f))));
  }
  return out;
}

Audio downmix_to_mono(const Audio& audio) {
  Audio m;
  m.sample_rate = audio.sample_rate;
  m.channels = 1;
  m.samples = tessera::audio::downmix(audio.samples.data(), audio.frames(), audio.channels);
  return m;
}

}  // namespace tessera::io
