#pragma once
// What every model parity test needs beside its stage runner: where its golden files are, how far a result is
// from the reference on the reference's own scale, and the golden file's integer tensors.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gpu/error.hpp"
#include "io/safetensors.hpp"

namespace tessera::test {

// The value of an environment variable, "" when unset.
inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// max |got - want| / max(|want|): the error of the worst element, on the scale of the data.
inline double scaled_max_error(const float* got, const float* want, size_t n) {
  double worst = 0, scale = 1e-30;
  for (size_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  return worst / scale;
}
inline double scaled_max_error(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size())
    throw Error("scaled_max_error: " + std::to_string(got.size()) + " values against " + std::to_string(want.size()));
  return scaled_max_error(got.data(), want.data(), want.size());
}

// An I32 tensor of a golden file.
inline std::vector<int32_t> golden_i32(const io::SafetensorsFile& file, const std::string& name) {
  const io::StoredTensor& t = file.at(name);
  if (t.dtype != "I32") throw Error("golden tensor '" + name + "' is " + t.dtype + ", expected I32");
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  std::memcpy(v.data(), t.data, t.bytes);
  return v;
}

}  // namespace tessera::test
