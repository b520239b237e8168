#pragma once
// The sample op's random numbers on the CPU (shaders/sampling.comp): a test can replay a draw exactly.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

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

struct Replay {
  int id;
  float margin;  // gap between the winner's and the runner-up's perturbed logit
};

// The shader's Gumbel-max draw over logits `l`, replayed in float: the kept elements (kept[i] != 0) compete
// with (l[i] - max l) / temperature plus the Gumbel noise of element i for (row, step, seed).
inline Replay replay(const std::vector<float>& l, const std::vector<double>& kept, float temperature, uint32_t seed,
                     uint32_t step, uint32_t row) {
  const float mx = *std::max_element(l.begin(), l.end());
  float best = -std::numeric_limits<float>::infinity(), second = best;
  int id = -1;
  for (size_t i = 0; i < l.size(); ++i) {
    if (kept[i] == 0) continue;
    const float u = draw_uniform(static_cast<uint32_t>(i), row, step, seed);
    const float g = (l[i] - mx) * (1.0f / temperature) - std::log(-std::log(u));
    if (g > best) {
      second = best;
      best = g;
      id = static_cast<int>(i);
    } else {
      second = std::max(second, g);
    }
  }
  return {id, best - second};
}

}  // namespace tessera::test
