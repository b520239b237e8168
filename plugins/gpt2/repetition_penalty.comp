#version 450
// HF's repetition penalty on the GPU: every token a row has seen (prompt and generated) has its logit
// divided by `penalty` when positive and multiplied when negative.
layout(local_size_x = 64) in;
layout(binding = 0) buffer Logits { float logits[]; };
layout(binding = 1) uniform isamplerBuffer Seen;  // i32 [rows, V]: 1 where seen
layout(push_constant) uniform Push {
  int V, logits_offset, logits_row, seen_offset;
  float penalty;
} p;

void main() {
  const int i = int(gl_GlobalInvocationID.x), r = int(gl_GlobalInvocationID.y);
  if (i >= p.V) return;
  if (texelFetch(Seen, p.seen_offset + r * p.V + i).x == 0) return;
  const int at = p.logits_offset + r * p.logits_row + i;
  const float l = logits[at];
  logits[at] = l > 0.0 ? l / p.penalty : l * p.penalty;
}
