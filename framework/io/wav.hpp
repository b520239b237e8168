#pragma once
// WAV files for the audio port: read what users have (PCM 8/16/24/32-bit, IEEE float 32/64, plain or
// WAVE_FORMAT_EXTENSIBLE, any channel count) and write what every player reads (16-bit PCM).
#include <cstdint>
#include <string>
#include <vector>

namespace tessera::io {

// Interleaved f32 samples in [-1, 1]: frames * channels values.
struct Audio {
  uint32_t sample_rate = 0;
  uint32_t channels = 0;
  std::vector<float> samples;
  uint64_t frames() const { return channels ? samples.size() / channels : 0; }
};

// Throws tessera::Error naming `name` and what is wrong (not RIFF/WAVE, a chunk past the end, an
// unsupported encoding with its format tag and bit depth, no data).
Audio decode_wav(const std::vector<uint8_t>& bytes, const std::string& name);
Audio read_wav(const std::string& path);
// 16-bit PCM, samples clipped to [-1, 1] and rounded.
std::vector<uint8_t> encode_wav(const Audio& audio);

// The channels averaged into one (a stereo prompt for a mono model).
Audio downmix_to_mono(const Audio& audio);

}  // namespace tessera::io
