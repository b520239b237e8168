// WAV files for the audio port: every encoding users have, written as 16-bit PCM, bad files refused with
// the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "gpu/error.hpp"
#include "io/wav.hpp"

namespace tessera::io {
namespace {

void put(std::vector<uint8_t>& b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void tag(std::vector<uint8_t>& b, const char* t) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(t[i]));
}

// A WAV file by hand: fmt (16 bytes, or 40 for WAVE_FORMAT_EXTENSIBLE), an optional odd-sized chunk
// before the data, then `data` as given.
std::vector<uint8_t> wav(uint16_t format, uint16_t channels, uint32_t rate, uint16_t bits,
                         const std::vector<uint8_t>& data, bool extensible = false, bool odd_chunk = false) {
  std::vector<uint8_t> b;
  tag(b, "RIFF");
  put(b, 0, 4);  // the RIFF size is not checked, as readers in the wild do not
  tag(b, "WAVE");
  tag(b, "fmt ");
  put(b, extensible ? 40 : 16, 4);
  put(b, extensible ? 0xFFFE : format, 2);
  put(b, channels, 2);
  put(b, rate, 4);
  put(b, rate * channels * bits / 8, 4);
  put(b, channels * bits / 8, 2);
  put(b, bits, 2);
  if (extensible) {
    put(b, 22, 2);
    put(b, bits, 2);
    put(b, 0, 4);
    put(b, format, 2);  // the sub-format GUID starts with the format tag
    for (int i = 0; i < 14; ++i) b.push_back(0);
  }
  if (odd_chunk) {
    tag(b, "LIST");
    put(b, 3, 4);
    for (uint8_t c : {'a', 'b', 'c', '\0'}) b.push_back(c);  // 3 bytes and the pad byte
  }
  tag(b, "data");
  put(b, data.size(), 4);
  for (uint8_t c : data) b.push_back(c);
  return b;
}

TEST(Wav, DecodesEveryPcmAndFloatWidth) {
  std::vector<uint8_t> d8 = {0, 128, 255};
  Audio a = decode_wav(wav(1, 1, 8000, 8, d8), "a.wav");
  EXPECT_EQ(a.sample_rate, 8000u);
  ASSERT_EQ(a.samples.size(), 3u);
  EXPECT_FLOAT_EQ(a.samples[0], -1.0f);
  EXPECT_FLOAT_EQ(a.samples[1], 0.0f);
  EXPECT_FLOAT_EQ(a.samples[2], 127.0f / 128.0f);

  std::vector<uint8_t> d16;
  for (int v : {-32768, -1, 0, 16384, 32767}) put(d16, static_cast<uint16_t>(static_cast<int16_t>(v)), 2);
  a = decode_wav(wav(1, 1, 16000, 16, d16), "b.wav");
  ASSERT_EQ(a.samples.size(), 5u);
  EXPECT_FLOAT_EQ(a.samples[0], -1.0f);
  EXPECT_FLOAT_EQ(a.samples[1], -1.0f / 32768);
  EXPECT_FLOAT_EQ(a.samples[3], 0.5f);

  std::vector<uint8_t> d24;
  for (int v : {-8388608, -4194304, 4194304}) put(d24, static_cast<uint32_t>(v) & 0xFFFFFF, 3);
  a = decode_wav(wav(1, 1, 44100, 24, d24, /*extensible=*/true), "c.wav");
  ASSERT_EQ(a.samples.size(), 3u);
  EXPECT_FLOAT_EQ(a.samples[0], -1.0f);
  EXPECT_FLOAT_EQ(a.samples[1], -0.5f);
  EXPECT_FLOAT_EQ(a.samples[2], 0.5f);

  std::vector<uint8_t> d32;
  put(d32, static_cast<uint32_t>(-1073741824), 4);
  a = decode_wav(wav(1, 1, 48000, 32, d32), "d.wav");
  EXPECT_FLOAT_EQ(a.samples.at(0), -0.5f);

  std::vector<uint8_t> df;
  for (float v : {0.25f, -0.75f}) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    put(df, u, 4);
  }
  a = decode_wav(wav(3, 2, 22050, 32, df, false, /*odd_chunk=*/true), "e.wav");
  EXPECT_EQ(a.channels, 2u);
  EXPECT_EQ(a.frames(), 1u);
  EXPECT_FLOAT_EQ(a.samples[1], -0.75f);

  std::vector<uint8_t> dd;
  const double x = -0.125;
  uint64_t u;
  std::memcpy(&u, &x, 8);
  put(dd, u, 8);
  EXPECT_FLOAT_EQ(decode_wav(wav(3, 1, 16000, 64, dd), "f.wav").samples.at(0), -0.125f);
}

TEST(Wav, WritesSixteenBitPcmThatReadsBack) {
  Audio a;
  a.sample_rate = 16000;
  a.channels = 2;
  a.samples = {0.0f, 0.5f, -0.5f, 1.5f, -2.0f, NAN};
  const std::vector<uint8_t> bytes = encode_wav(a);
  ASSERT_EQ(bytes.size(), 44u + 12u);
  const Audio b = decode_wav(bytes, "round.wav");
  EXPECT_EQ(b.sample_rate, 16000u);
  EXPECT_EQ(b.channels, 2u);
  ASSERT_EQ(b.samples.size(), 6u);
  EXPECT_NEAR(b.samples[1], 0.5f, 1.0f / 32768);
  EXPECT_NEAR(b.samples[2], -0.5f, 1.0f / 32768);
  EXPECT_NEAR(b.samples[3], 1.0f, 1.0f / 32768);   // clipped
  EXPECT_NEAR(b.samples[4], -1.0f, 1.0f / 32768);  // clipped
  EXPECT_EQ(b.samples[5], 0.0f);                    // NaN is silence
  const Audio m = downmix_to_mono(b);
  EXPECT_EQ(m.channels, 1u);
  ASSERT_EQ(m.samples.size(), 3u);
  EXPECT_NEAR(m.samples[0], 0.25f, 1e-4);
  EXPECT_NEAR(m.samples[1], 0.25f, 1e-4);
}

TEST(Wav, ATruncatedDataChunkKeepsTheWholeFramesThere) {
  std::vector<uint8_t> d16;
  for (int i = 0; i < 5; ++i) put(d16, static_cast<uint16_t>(i * 1000), 2);
  std::vector<uint8_t> b = wav(1, 2, 8000, 16, d16);
  b[b.size() - 10 - 4] = 0xFF;  // the data size now claims more than the file holds (a cut recording)
  const Audio a = decode_wav(b, "cut.wav");
  EXPECT_EQ(a.frames(), 2u);  // 5 samples = 2 whole stereo frames
}

void expect_refused(const std::vector<uint8_t>& bytes, const std::string& message) {
  try {
    decode_wav(bytes, "x.wav");
    ADD_FAILURE() << "no error, expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(Wav, BadFilesAreRefusedWithTheReason) {
  expect_refused({'R', 'I', 'F', 'F'}, "x.wav: not a WAV file (no RIFF/WAVE header)");
  std::vector<uint8_t> png = wav(1, 1, 8000, 16, {0, 0});
  std::memcpy(&png[8], "AVI ", 4);
  expect_refused(png, "x.wav: not a WAV file (no RIFF/WAVE header)");
  expect_refused(wav(2, 1, 8000, 4, {0, 0}),
                 "x.wav: unsupported encoding (format tag 2, 4 bits); expected PCM 8/16/24/32-bit or float 32/64-bit");
  expect_refused(wav(1, 0, 8000, 16, {0, 0}), "x.wav: 0 channels at 8000 Hz");
  std::vector<uint8_t> no_data = wav(1, 1, 8000, 16, {});
  no_data.resize(no_data.size() - 8);
  expect_refused(no_data, "x.wav: no data chunk");
  std::vector<uint8_t> long_fmt = wav(1, 1, 8000, 16, {0, 0});
  long_fmt[16] = 200;  // the fmt chunk claims 200 bytes
  expect_refused(long_fmt, "x.wav: the 'fmt ' chunk runs past the end of the file");
  std::vector<uint8_t> bad_block = wav(1, 2, 8000, 16, {0, 0, 0, 0});
  bad_block[32] = 3;
  expect_refused(bad_block, "x.wav: block align 3 does not match 2 channels of 16 bits");
}

}  // namespace
}  // namespace tessera::io
