#version 450
// Whisper's log-mel, second pass: max(x, global max - 8), then (x + 4) / 4, written channel-major
// ([n_mels, frames]) as the conv stem reads it.
layout(local_size_x = 64) in;
layout(binding = 0) uniform samplerBuffer LogMel;   // f32 [frames, n_mels]
layout(binding = 1) uniform samplerBuffer Partial;  // f32 [partials]: each workgroup's maximum of pass one
layout(binding = 2) buffer Out { float outv[]; };   // f32 [n_mels, frames]
layout(push_constant) uniform Push {
  int frames, n_mels, partials, in_offset, partial_offset, out_offset;
} p;

void main() {
  const int t = int(gl_GlobalInvocationID.x), m = int(gl_GlobalInvocationID.y);
  if (t >= p.frames || m >= p.n_mels) return;
  float top = -1.0e30;
  for (int g = 0; g < p.partials; ++g) top = max(top, texelFetch(Partial, p.partial_offset + g).x);
  const float x = texelFetch(LogMel, p.in_offset + t * p.n_mels + m).x;
  outv[p.out_offset + m * p.frames + t] = (max(x, top - 8.0) + 4.0) / 4.0;
}
