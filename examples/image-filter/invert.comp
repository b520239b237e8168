#version 450
// Moves every channel value x (in [0, 1]) towards 1 - x by `strength`: 0 leaves the image, 1 inverts it.
layout(local_size_x = 64) in;
layout(binding = 0) uniform samplerBuffer src;  // texel reads: the fast path on every driver
layout(binding = 1) buffer Dst { float dst[]; };
layout(push_constant) uniform Push {
  uint count;
  uint src_offset;
  uint dst_offset;
  float strength;
} p;

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (i >= p.count) return;
  const float x = texelFetch(src, int(p.src_offset + i)).r;
  dst[p.dst_offset + i] = mix(x, 1.0 - x, p.strength);
}
