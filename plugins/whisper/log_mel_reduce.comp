#version 450
// Whisper's log-mel, first pass: every mel energy becomes log10(max(e, 1e-10)) in place, and each workgroup
// leaves the largest value it saw, so the second pass can clamp against the maximum of the whole input.
// With take_log 0 it only reduces: one workgroup turns the partial maxima into the global one, which the last
// pass then reads once per invocation instead of looping over every partial.
layout(local_size_x = 256) in;
layout(binding = 0) buffer Mel { float mel[]; };          // f32 [frames * n_mels], in place
layout(binding = 1) buffer Partial { float partial[]; };  // f32 [workgroups]
layout(push_constant) uniform Push {
  int n, mel_offset, partial_offset, take_log;
} p;

shared float best[256];

void main() {
  const int lane = int(gl_LocalInvocationID.x);
  const int stride = int(gl_NumWorkGroups.x) * 256;
  float m = -1.0e30;  // below any log10 of a clamped energy (>= -10)
  for (int i = int(gl_GlobalInvocationID.x); i < p.n; i += stride) {
    float v = mel[p.mel_offset + i];
    if (p.take_log != 0) {
      v = log(max(v, 1e-10)) * 0.43429448190325176;  // log10 e
      mel[p.mel_offset + i] = v;
    }
    m = max(m, v);
  }
  best[lane] = m;
  barrier();
  for (int half_size = 128; half_size > 0; half_size >>= 1) {
    if (lane < half_size) best[lane] = max(best[lane], best[lane + half_size]);
    barrier();
  }
  if (lane == 0) partial[p.partial_offset + int(gl_WorkGroupID.x)] = best[0];
}
