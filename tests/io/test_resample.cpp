// tessera/audio.hpp: downmix, and the windowed-sinc resampler measured against analytic sines: what passes,
// what is cut, where the samples land, how many there are, and the rates refused.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tessera/audio.hpp"

namespace tessera::audio {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> sine(double hz, uint32_t rate, uint64_t frames, double amplitude = 1.0) {
  std::vector<float> x(frames);
  for (uint64_t i = 0; i < frames; ++i)
    x[i] = static_cast<float>(amplitude * std::sin(2 * kPi * hz * static_cast<double>(i) / rate));
  return x;
}

// How many output samples make `lower` samples of the lower rate: the kernel reaches 66 such samples, so
// that near the edges it sees the zeros outside the signal.
uint64_t margin(uint32_t from, uint32_t to, uint64_t lower = 64) {
  return lower * static_cast<uint64_t>(std::ceil(double(to) / std::min(from, to)));
}

// The largest difference between resampling a sine and the sine sampled at the new rate.
double max_error(double hz, uint32_t from, uint32_t to, uint64_t frames) {
  const std::vector<float> y = resample(sine(hz, from, frames).data(), frames, from, to);
  const std::vector<float> want = sine(hz, to, y.size());
  double worst = 0;
  for (uint64_t n = margin(from, to); n + margin(from, to) < y.size(); ++n)
    worst = std::max(worst, std::abs(double(y[n]) - want[n]));
  return worst;
}

// The level of a unit sine after resampling, in dB (RMS over the middle, times sqrt 2): 0 passes intact.
double level_db(double hz, uint32_t from, uint32_t to) {
  const std::vector<float> y = resample(sine(hz, from, from).data(), from, from, to);
  double energy = 0;
  const uint64_t a = margin(from, to), b = y.size() - margin(from, to);
  for (uint64_t n = a; n < b; ++n) energy += double(y[n]) * y[n];
  return 10 * std::log10(2 * energy / double(b - a));
}

// Measured (GCC 12, -O2): 440 Hz 3.3e-6 from 44.1 kHz and 3.1e-6 from 48 kHz; 3 kHz 8.5e-6 and 7.5e-6.
TEST(Resample, SinesDownTo16kMatchTheAnalyticSine) {
  for (uint32_t from : {44100u, 48000u})
    for (double hz : {440.0, 3000.0}) {
      const double err = max_error(hz, from, 16000, from);
      std::printf("%5.0f Hz, %u -> 16000: max error %.2g\n", hz, from, err);
      EXPECT_LT(err, 1e-4) << hz << " Hz from " << from;
    }
}

// Measured: 1 kHz 8000 -> 16000 6.6e-6; 3 kHz 16000 -> 44100 1.2e-5, -> 48000 1.1e-5; 440 Hz 22050 -> 16000
// 3.4e-6.
TEST(Resample, UpsamplingMatchesTheAnalyticSine) {
  const struct { double hz; uint32_t from, to; } cases[] = {{1000, 8000, 16000}, {3000, 16000, 44100},
                                                            {3000, 16000, 48000}, {440, 22050, 16000}};
  for (const auto& c : cases) {
    const double err = max_error(c.hz, c.from, c.to, c.from);
    std::printf("%5.0f Hz, %u -> %u: max error %.2g\n", c.hz, c.from, c.to, err);
    EXPECT_LT(err, 1e-4) << c.hz << " Hz, " << c.from << " -> " << c.to;
  }
}

// Measured: 7.5 kHz -0.05 dB; 9 kHz (which would fold back to 7 kHz) -99 dB.
TEST(Resample, KeepsWhatFitsUnderTheNewNyquistAndCutsWhatDoesNot) {
  const double pass = level_db(7500, 48000, 16000), cut = level_db(9000, 48000, 16000);
  std::printf("48000 -> 16000: 7.5 kHz %.3f dB, 9 kHz %.1f dB\n", pass, cut);
  EXPECT_GT(pass, -0.1);
  EXPECT_LT(pass, 0.01);
  EXPECT_LT(cut, -80);  // the brief asks > 40 dB; the design gives ~86
  const double cut_44k = level_db(9000, 44100, 16000);
  std::printf("44100 -> 16000: 9 kHz %.1f dB\n", cut_44k);
  EXPECT_LT(cut_44k, -80);
}

TEST(Resample, DcStaysDc) {
  for (auto [from, to] : {std::pair{44100u, 16000u}, {48000u, 16000u}, {8000u, 16000u}, {16000u, 44100u}}) {
    const std::vector<float> x(from, 0.5f);
    const std::vector<float> y = resample(x.data(), x.size(), from, to);
    // Past the kernel's reach only the taps' float rounding is left: measured 1.2e-7 (2 ulp). (At 64 samples from the edges,
    // where the cut tail of the kernel shows, it is 3e-6.)
    for (uint64_t n = margin(from, to, 67); n + margin(from, to, 67) < y.size(); ++n)
      ASSERT_NEAR(y[n], 0.5f, 5e-7) << from << " -> " << to << " at " << n;
  }
}

// A pair without a small common ratio (441 and 44099 are coprime) takes the per-sample design.
TEST(Resample, AnOddRatePairStillMatches) {
  const double err = max_error(440, 44100, 44099, 4410);
  std::printf("440 Hz, 44100 -> 44099: max error %.2g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST(Resample, OutputLengthIsTheCeilingOfFramesTimesTheRatio) {
  const struct { uint32_t from, to; uint64_t want[4]; } cases[] = {
      {44100, 16000, {0, 1, 3, 16001}},  // 7 * 16000 / 44100 = 2.54; 44101 * 16000 / 44100 = 16000.36
      {48000, 16000, {0, 1, 3, 14701}},
      {8000, 16000, {0, 2, 14, 88202}},
      {16000, 44100, {0, 3, 20, 121554}},  // 2.756; 19.29; 121553.38
  };
  const uint64_t frames[4] = {0, 1, 7, 44101};
  const std::vector<float> x(44101, 0.25f);
  for (const auto& c : cases)
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(resampled_length(frames[i], c.from, c.to), c.want[i]) << frames[i] << " at " << c.from;
      EXPECT_EQ(resample(x.data(), frames[i], c.from, c.to).size(), c.want[i]) << frames[i] << " at " << c.from;
    }
}

TEST(Resample, EqualRatesCopyExactly) {
  std::vector<float> x = sine(440, 16000, 1001);
  x[3] = 1e-40f;  // a denormal survives too
  EXPECT_EQ(resample(x.data(), x.size(), 16000, 16000), x);
}

TEST(Resample, RefusesZeroAndAbsurdRatesNamingBoth) {
  const float x[4] = {};
  auto message = [&](uint32_t from, uint32_t to) -> std::string {
    try {
      resample(x, 4, from, to);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message(0, 16000), "tessera::audio::resample: sample rates must be 1 to 1000000 Hz, got 0 Hz -> 16000 Hz");
  EXPECT_EQ(message(44100, 0), "tessera::audio::resample: sample rates must be 1 to 1000000 Hz, got 44100 Hz -> 0 Hz");
  EXPECT_EQ(message(1000001, 16000),
            "tessera::audio::resample: sample rates must be 1 to 1000000 Hz, got 1000001 Hz -> 16000 Hz");
  EXPECT_EQ(message(0, 0), "tessera::audio::resample: sample rates must be 1 to 1000000 Hz, got 0 Hz -> 0 Hz");
  EXPECT_THROW(resampled_length(4, 16000, 4000000), std::invalid_argument);
  EXPECT_EQ(resample(x, 4, 1000000, 16000).size(), 1u);  // the limit itself is allowed
}

// Measured 0.66 to 0.85 s on one core (AMD EPYC, GCC 12 -O2: the RelWithDebInfo build) for 9.6 M outputs of
// 396 taps each. Not asserted, as sanitizer builds and a busy machine are slower.
TEST(Resample, TenMinutesOf48kTo16kIsFast) {
  const uint64_t frames = 48000ull * 600;
  const std::vector<float> x = sine(1000, 48000, frames, 0.5);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<float> y = resample(x.data(), frames, 48000, 16000);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("10 min of 48 kHz -> 16 kHz: %.2f s\n", seconds);
  ASSERT_EQ(y.size(), 16000ull * 600);
  const uint64_t n = y.size() / 2 + 3;
  EXPECT_NEAR(y[n], 0.5 * std::sin(2 * kPi * 1000.0 * double(n) / 16000), 1e-4);
}

TEST(Downmix, AveragesTheChannelsOfEachFrame) {
  const float stereo[6] = {1.0f, 0.0f, 0.5f, -0.5f, -1.0f, 0.25f};
  EXPECT_EQ(downmix(stereo, 3, 2), (std::vector<float>{0.5f, 0.0f, -0.375f}));
  EXPECT_EQ(downmix(stereo, 2, 3), (std::vector<float>{0.5f, static_cast<float>(-1.25 / 3)}));
  EXPECT_EQ(downmix(stereo, 6, 1), std::vector<float>(stereo, stereo + 6));
  EXPECT_TRUE(downmix(nullptr, 0, 0).empty());
  EXPECT_THROW(downmix(stereo, 1, 0), std::invalid_argument);
}

}  // namespace
}  // namespace tessera::audio
