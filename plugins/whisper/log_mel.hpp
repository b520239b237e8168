// Whisper's front end on the GPU, exactly as audio.py computes it (../shared/specs/whisper.md): 16 kHz audio
// plus one window of zeros (30 s for OpenAI's models, as transcribe appends), reflect-padded by 200, periodic Hann windows of 400 every 160 samples, |STFT|² with the
// last frame dropped, the Slaney mel filter bank, log10 clamped at 1e-10, max(x, global max − 8), (x + 4)/4.
//
// The STFT is a matmul: the frames are an overlapping strided view of the padded signal (row pitch 160), and
// the DFT basis, window folded in, is a [404, 400] weight whose rows are cos and sin of each of the 201 bins
// (two zero rows keep K a multiple of 4 for the next matmul). Squaring in place then multiplying by the
// filter bank with each weight repeated for the cos and the sin row sums re² + im² and applies the filters in
// one matmul. Small kernels take the log with the global maximum and write [n_mels, frames].
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "log_mel_finish_spirv.h"
#include "log_mel_reduce_spirv.h"
#include "tessera/plugin.hpp"
#include "whisper/whisper_model.hpp"

namespace tessera_plugins::whisper {

// librosa.filters.mel(sr=16000, n_fft=400, n_mels, htk=False, norm="slaney"): triangles on the Slaney mel
// scale (linear below 1 kHz, logarithmic above), each scaled to unit area. [n_mels, 201], f32 values.
inline std::vector<double> slaney_mel_filters(int n_mels) {
  constexpr double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  auto hz_to_mel = [&](double f) { return f >= min_log_hz ? min_log_mel + std::log(f / min_log_hz) / logstep : f / f_sp; };
  auto mel_to_hz = [&](double m) { return m >= min_log_mel ? min_log_hz * std::exp(logstep * (m - min_log_mel)) : f_sp * m; };
  const int bins = kFft / 2 + 1;
  const double top = hz_to_mel(kSampleRate / 2.0);
  std::vector<double> mel_f(static_cast<size_t>(n_mels + 2));
  for (int i = 0; i < n_mels + 2; ++i) mel_f[static_cast<size_t>(i)] = mel_to_hz(top * i / (n_mels + 1));
  std::vector<double> w(static_cast<size_t>(n_mels * bins), 0.0);
  for (int m = 0; m < n_mels; ++m) {
    const double lo = mel_f[static_cast<size_t>(m)], mid = mel_f[static_cast<size_t>(m + 1)], hi = mel_f[static_cast<size_t>(m + 2)];
    for (int k = 0; k < bins; ++k) {
      const double f = k * (kSampleRate / 2.0) / (bins - 1);
      const double rise = (f - lo) / (mid - lo), fall = (hi - f) / (hi - mid);
      // librosa keeps the weights in f32 between the triangle and the area normalisation; rounding at both
      // places as it does reproduces OpenAI's mel_filters.npz bit for bit.
      const float triangle = static_cast<float>(std::max(0.0, std::min(rise, fall)));
      w[static_cast<size_t>(m * bins + k)] = static_cast<float>(static_cast<double>(triangle) * (2.0 / (hi - lo)));
    }
  }
  return w;
}

class LogMel {
 public:
  static constexpr int kBasisRows = 404;  // cos and sin of 201 bins, padded to a multiple of 4

  // `window_frames`: mel frames per window (2 * n_audio_ctx; 3000 for OpenAI's models).
  LogMel(const sdk::Host& host, int n_mels, int64_t window_frames)
      : host_(host),
        n_mels_(n_mels),
        window_(window_frames),
        reduce_(host, "whisper.log_mel_reduce", log_mel_reduce_spirv, sizeof log_mel_reduce_spirv,
                {TESSERA_BINDING_STORAGE, TESSERA_BINDING_STORAGE}, sizeof(ReducePush)),
        finish_(host, "whisper.log_mel_finish", log_mel_finish_spirv, sizeof log_mel_finish_spirv,
                {TESSERA_BINDING_TEXEL, TESSERA_BINDING_TEXEL, TESSERA_BINDING_STORAGE}, sizeof(FinishPush)) {
    constexpr double kPi = 3.14159265358979323846;
    std::vector<float> basis(static_cast<size_t>(kBasisRows * kFft), 0.0f);
    for (int k = 0; k <= kFft / 2; ++k)
      for (int n = 0; n < kFft; ++n) {
        const double window = 0.5 - 0.5 * std::cos(2.0 * kPi * n / kFft);  // periodic Hann
        const double angle = 2.0 * kPi * static_cast<double>((static_cast<int64_t>(k) * n) % kFft) / kFft;
        basis[static_cast<size_t>((2 * k) * kFft + n)] = static_cast<float>(window * std::cos(angle));
        basis[static_cast<size_t>((2 * k + 1) * kFft + n)] = static_cast<float>(-window * std::sin(angle));
      }
    basis_ = sdk::Tensor(host, TESSERA_DTYPE_F32, {kBasisRows, kFft}, "whisper.dft_basis");
    basis_.upload(basis);
    const std::vector<double> mel = slaney_mel_filters(n_mels);
    const int bins = kFft / 2 + 1;
    std::vector<float> filters(static_cast<size_t>(n_mels * kBasisRows), 0.0f);
    for (int m = 0; m < n_mels; ++m)
      for (int k = 0; k < bins; ++k) {
        const float f = static_cast<float>(mel[static_cast<size_t>(m * bins + k)]);  // librosa's f32 filters
        filters[static_cast<size_t>(m * kBasisRows + 2 * k)] = f;
        filters[static_cast<size_t>(m * kBasisRows + 2 * k + 1)] = f;
      }
    filters_ = sdk::Tensor(host, TESSERA_DTYPE_F32, {n_mels, kBasisRows}, "whisper.mel_filters");
    filters_.upload(filters);
  }

  int n_mels() const { return n_mels_; }

  int64_t window_frames() const { return window_; }
  // Frames of `samples` (16 kHz mono) once a window of zeros is appended, as Whisper's transcribe does.
  int64_t frames_of(int64_t samples) const { return (samples + window_ * kHop) / kHop; }
  // Windows a clip of `samples` is transcribed in: they start every window_frames frames, while the start is
  // within the clip (one at least).
  int64_t windows_of(int64_t samples) const {
    return std::max<int64_t>(1, (samples / kHop + window_ - 1) / window_);
  }

  // The log-mel spectrogram [n_mels, frames_of(n)] of the whole clip; recorded on `s` (run it with finish()).
  sdk::Tensor compute(sdk::Stream& s, const std::vector<float>& samples) const {
    const int64_t n = static_cast<int64_t>(samples.size()), padded_n = n + window_ * kHop;
    const int64_t frames = frames_of(n), pad = kFft / 2;
    // The zero-extended clip, reflect-padded by 200 on both sides (the right side reflects zeros).
    std::vector<float> padded(static_cast<size_t>(padded_n + 2 * pad), 0.0f);
    for (int64_t i = 0; i < n; ++i) padded[static_cast<size_t>(pad + i)] = samples[static_cast<size_t>(i)];
    for (int64_t i = 1; i <= pad; ++i) padded[static_cast<size_t>(pad - i)] = i < n ? samples[static_cast<size_t>(i)] : 0.0f;
    sdk::Tensor signal(host_, TESSERA_DTYPE_F32, {static_cast<int64_t>(padded.size())}, "whisper.signal");
    signal.upload(padded);
    sdk::Tensor mel(host_, TESSERA_DTYPE_F32, {frames, n_mels_}, "whisper.mel_energy");
    // Frames from `live` on see only the appended zeros: their energy is exactly 0, so they are filled instead
    // of transformed (for a short clip that is most of the window, and of the STFT's work).
    const int64_t live = std::min(frames, (n + pad + kHop - 1) / kHop);
    if (live < frames) s.op("fill", {{"out", mel.slice(0, live, frames - live)}, {"value", 0.0}});
    const int64_t chunk = std::min<int64_t>(live, 3000);  // bounds the spectrum scratch (5 MB) for any clip
    sdk::Tensor spectrum(host_, TESSERA_DTYPE_F32, {chunk, kBasisRows}, "whisper.spectrum");
    for (int64_t t0 = 0; t0 < live; t0 += chunk) {
      const int64_t rows = std::min(chunk, live - t0);
      tessera_tensor_info_t at = signal.info();
      at.rank = 2;
      at.offset = t0 * kHop;
      at.shape[0] = rows;
      at.strides[0] = kHop;  // frames overlap: each row starts 160 samples after the last
      at.shape[1] = kFft;
      at.strides[1] = 1;
      const sdk::Tensor frames_view = signal.view(at);
      const sdk::Tensor spec = spectrum.slice(0, 0, rows);
      s.op("matmul", {{"a", frames_view}, {"w", basis_}, {"out", spec}});
      s.op("mul", {{"a", spec}, {"b", spec}, {"out", spec}});
      s.op("matmul", {{"a", spec}, {"w", filters_}, {"out", mel.slice(0, t0, rows)}});
    }
    const int64_t count = frames * n_mels_;
    const int64_t groups = std::clamp<int64_t>((count + 255) / 256, 1, 64);
    sdk::Tensor partial(host_, TESSERA_DTYPE_F32, {groups}, "whisper.mel_max_partial");
    sdk::Tensor top(host_, TESSERA_DTYPE_F32, {1}, "whisper.mel_max");
    const ReducePush rp{static_cast<int32_t>(count), static_cast<int32_t>(mel.info().offset), 0, 1};
    reduce_.dispatch(s, {&mel, &partial}, rp, {static_cast<uint32_t>(groups), 1, 1});
    const ReducePush rp2{static_cast<int32_t>(groups), 0, 0, 0};
    reduce_.dispatch(s, {&partial, &top}, rp2, {1, 1, 1});
    sdk::Tensor out(host_, TESSERA_DTYPE_F32, {n_mels_, frames}, "whisper.log_mel");
    const FinishPush fp{static_cast<int32_t>(frames), n_mels_, 1, 0, 0, 0};
    finish_.dispatch(s, {&mel, &top, &out}, fp, {static_cast<uint32_t>((frames + 63) / 64), static_cast<uint32_t>(n_mels_), 1});
    return out;
  }

  // Window w (frames [w * W, w * W + W), W = window_frames()) of a log-mel from compute(), as [1, n_mels, W].
  sdk::Tensor window(const sdk::Tensor& log_mel, int64_t w) const {
    return log_mel.slice(1, w * window_, window_).repeated(0, 1);
  }

 private:
  struct ReducePush {
    int32_t n, mel_offset, partial_offset, take_log;
  };
  struct FinishPush {
    int32_t frames, n_mels, partials, in_offset, partial_offset, out_offset;
  };

  sdk::Host host_;
  int n_mels_;
  int64_t window_;
  sdk::Kernel reduce_, finish_;
  sdk::Tensor basis_, filters_;
};

}  // namespace tessera_plugins::whisper
