// Audio helpers, header-only, for the host and plugins alike: channels averaged to mono, and band-limited
// sample-rate conversion for speech models (44100/48000/22050/8000 Hz in, the 16000 Hz a model wants, and
// back up for playback).
//
//   std::vector<float> mono = tessera::audio::downmix(samples.data(), frames, channels);
//   std::vector<float> x16k = tessera::audio::resample(mono.data(), mono.size(), 44100, 16000);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace tessera::audio {

// The mean of the channels of each frame (summed in double, so 8 channels lose nothing to rounding). Zero
// frames give an empty result whatever `channels` says; frames with 0 channels are refused.
inline std::vector<float> downmix(const float* interleaved, uint64_t frames, uint32_t channels) {
  if (frames == 0) return {};
  if (channels == 0) throw std::invalid_argument("tessera::audio::downmix: " + std::to_string(frames) +
                                                 " frames of 0 channels");
  std::vector<float> out(frames);
  for (uint64_t f = 0; f < frames; ++f) {
    double sum = 0;
    for (uint32_t c = 0; c < channels; ++c) sum += static_cast<double>(interleaved[f * channels + c]);
    out[f] = static_cast<float>(sum / channels);
  }
  return out;
}

namespace detail {

// The filter: a sinc low-pass under a Kaiser window.
//  - kRolloff 0.97: the cutoff (the -6 dB point) as a fraction of the lower rate's Nyquist frequency. Below 1
//    so that the transition band ends at about the new Nyquist frequency: only the top ~1% above it can fold
//    back, into the top ~1% below it, and attenuated by the transition band on the way.
//  - kBeta 8.6: Kaiser's formula gives ~86 dB of stopband attenuation (near the ~96 dB 16-bit audio resolves)
//    and passband ripple near 5e-5.
//  - kZeroCrossings 64 per side: the transition band is then ~8.6% of the cutoff wide (Kaiser: width =
//    (A - 7.95) / (2.285 * 2 pi * Z) of the cutoff), from 0.93 to 1.01 x the new Nyquist frequency.
//    Measured at 48 kHz -> 16 kHz: 7.5 kHz loses 0.05 dB, 7.75 kHz 5.4 dB, 8.1 kHz and up are down > 96 dB.
//    The ~32 of fast resamplers would double the transition band: 7.5 kHz -1.2 dB, and 8.1 kHz folds back
//    to 7.9 kHz at only -24 dB. 64 costs twice the work: 10 min of 48 kHz audio takes ~0.85 s on one core.
constexpr double kRolloff = 0.97, kBeta = 8.6, kZeroCrossings = 64;
// Phase tables beyond this many taps (4 MiB of floats) are not built; see resample().
constexpr uint64_t kTableBudget = uint64_t{1} << 20;

// The modified Bessel function I0 by its power series (fast to converge for the x <= kBeta a window needs).
inline double bessel_i0(double x) {
  double sum = 1, term = 1;
  const double q = x * x / 4;
  for (int k = 1; k < 200 && term > 1e-17 * sum; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
  }
  return sum;
}

inline void check_rates(uint32_t from_rate, uint32_t to_rate) {
  if (from_rate == 0 || to_rate == 0 || from_rate > 1000000 || to_rate > 1000000)
    throw std::invalid_argument("tessera::audio::resample: sample rates must be 1 to 1000000 Hz, got " +
                                std::to_string(from_rate) + " Hz -> " + std::to_string(to_rate) + " Hz");
}

}  // namespace detail

// The length resample() gives: output sample n stands at input time n * from / to (in input samples), and
// every instant inside the input's span [0, frames) gets one, so the length is ceil(frames * to / from):
// 0 -> 0, 1 -> 1, 44101 frames at 44100 -> 16000 Hz -> 16001. Throws as resample() does for bad rates.
inline uint64_t resampled_length(uint64_t frames, uint32_t from_rate, uint32_t to_rate) {
  detail::check_rates(from_rate, to_rate);
  const uint64_t g = std::gcd(from_rate, to_rate), up = to_rate / g, down = from_rate / g;
  return frames / down * up + (frames % down * up + down - 1) / down;  // no overflow: the remainder term < 1e12
}

// Band-limited resampling of mono f32 audio. Equal rates give an exact copy. Otherwise output sample n is
// the input convolved with the windowed sinc centred at input time n * from / to (zero phase: no delay),
// samples outside the input taken as zeros: the kernel reaches kZeroCrossings / kRolloff (66) samples of the
// lower rate each way, so that much at each end sees the edge. The ratio is reduced to up/down by the gcd and
// the up phases' filters are designed once (in double, each normalised to sum to 1 so that DC stays DC to
// float rounding, stored as float). An odd rate pair such as 44100 -> 44099 has up to a million phases; past
// kTableBudget the taps are designed per output sample instead: exact, but ~0.4 s per second of audio.
// Throws std::invalid_argument for a rate of 0 or above 1 MHz, naming both.
inline std::vector<float> resample(const float* mono, uint64_t frames, uint32_t from_rate, uint32_t to_rate) {
  const uint64_t n_out = resampled_length(frames, from_rate, to_rate);
  if (from_rate == to_rate) return std::vector<float>(mono, mono + frames);
  const uint64_t g = std::gcd(from_rate, to_rate), up = to_rate / g, down = from_rate / g;

  // The kernel in units of input samples: h(t) = s sinc(s t) w(t / half). s = the cutoff over the input's
  // Nyquist frequency, scaled down to the output's Nyquist frequency when downsampling.
  const double s = detail::kRolloff * std::min(1.0, static_cast<double>(up) / static_cast<double>(down));
  const double half = detail::kZeroCrossings / s;
  const int64_t reach = static_cast<int64_t>(std::ceil(half));
  const uint64_t taps = 2 * static_cast<uint64_t>(reach);
  const double pi = 3.14159265358979323846, i0_beta = detail::bessel_i0(detail::kBeta);
  std::vector<double> wide(taps);
  // Phase p (the output instant sits p / up past input sample i): tap k weighs input i - reach + 1 + k.
  auto design = [&](uint64_t p, float* out) {
    double sum = 0;
    for (uint64_t k = 0; k < taps; ++k) {
      const double t = static_cast<double>(p) / static_cast<double>(up) + static_cast<double>(reach - 1) -
                       static_cast<double>(k);
      const double r = t / half, x = pi * s * t;
      const double w = std::abs(r) < 1 ? detail::bessel_i0(detail::kBeta * std::sqrt(1 - r * r)) / i0_beta : 0;
      wide[k] = w * (x == 0 ? 1 : std::sin(x) / x);  // the factor s goes in the normalisation
      sum += wide[k];
    }
    for (uint64_t k = 0; k < taps; ++k) out[k] = static_cast<float>(wide[k] / sum);
  };
  const bool table = up * taps <= detail::kTableBudget;
  std::vector<float> bank(table ? up * taps : taps);
  if (table)
    for (uint64_t p = 0; p < up; ++p) design(p, &bank[p * taps]);

  std::vector<float> out(n_out);
  const int64_t n_in = static_cast<int64_t>(frames);
  const uint64_t step = down / up, step_frac = down % up;  // n * down / up, advanced without overflow
  int64_t i = 0;
  uint64_t p = 0;
  for (uint64_t n = 0; n < n_out; ++n) {
    const float* h = &bank[table ? p * taps : 0];
    if (!table) design(p, bank.data());
    const int64_t first = i - reach + 1;  // the input under tap 0
    const int64_t kb = std::max<int64_t>(0, -first), ke = std::min(static_cast<int64_t>(taps), n_in - first);
    const int64_t count = std::max<int64_t>(0, ke - kb);  // the taps over real samples; the rest see zeros
    const float* x = mono + (count ? first + kb : 0);
    h += kb;
    // Eight float partial sums (independent, so the compiler keeps them in SIMD lanes), each over at most
    // taps / 8 products of magnitude <= |x|, then added in double: error ~1e-7 of the signal's level.
    float acc[8] = {};
    int64_t k = 0;
    for (; k + 8 <= count; k += 8)
      for (int l = 0; l < 8; ++l) acc[l] += h[k + l] * x[k + l];
    double sum = 0;
    for (; k < count; ++k) sum += static_cast<double>(h[k]) * static_cast<double>(x[k]);
    for (float a : acc) sum += static_cast<double>(a);
    out[n] = static_cast<float>(sum);
    i += static_cast<int64_t>(step);
    p += step_frac;
    if (p >= up) p -= up, ++i;
  }
  return out;
}

}  // namespace tessera::audio
