// Activation functions shared by the elementwise kernels and the matmul epilogues. The numbering is
// ops::Unary's: 0 identity, 1 gelu_erf, 2 gelu_tanh, 3 silu, 4 relu.

vec4 erf4(vec4 x) {
  // Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, below fp32 resolution of the result.
  const vec4 ax = abs(x);
  const vec4 t = 1.0 / (1.0 + 0.3275911 * ax);
  const vec4 poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-ax * ax));
}

// tanh through exp never produces inf/inf, unlike some drivers' tanh for large arguments.
vec4 safe_tanh(vec4 u) { return 1.0 - 2.0 / (exp(2.0 * u) + 1.0); }

vec4 gelu_erf(vec4 x) { return 0.5 * x * (1.0 + erf4(x * 0.70710678118654752)); }
vec4 gelu_tanh(vec4 x) { return 0.5 * x * (1.0 + safe_tanh(0.79788456080286536 * (x + 0.044715 * x * x * x))); }
vec4 silu(vec4 x) { return x / (1.0 + exp(-x)); }

// `act` is a specialization constant at every call site, so the branches fold away.
vec4 activate(int act, vec4 x) {
  if (act == 1) return gelu_erf(x);
  if (act == 2) return gelu_tanh(x);
  if (act == 3) return silu(x);
  if (act == 4) return max(x, vec4(0.0));
  return x;
}
