#pragma once
// The sample op's random numbers on the CPU (shaders/sampling.comp): a test can replay a draw exactly.
#include <cstdint>

namespace tessera::test {

// Jarzynski & Olano's 4-D counter-based hash, first component, as the shader computes it.
inline uint32_t pcg4d_x(uint32_t x, uint32_t y, uint32_t z, uint32_t w) {
  uint32_t v[4] = {x, y, z, w};
  for (uint32_t& a : v) a = a * 1664525u + 1013904223u;
  auto mix = [&] {
    v[0] += v[1] * v[3];
    v[1] += v[2] * v[0];
    v[2] += v[0] * v[1];
    v[3] += v[1] * v[2];
  };
  mix();
  for (uint32_t& a : v) a ^= a >> 16u;
  mix();
  return v[0];
}

// The uniform in (0, 1) behind the Gumbel noise of element i.
inline float draw_uniform(uint32_t i, uint32_t row, uint32_t step, uint32_t seed) {
  return (static_cast<float>(pcg4d_x(i, row, step, seed) >> 8u) + 0.5f) * (1.0f / 16777216.0f);
}

}  // namespace tessera::test
