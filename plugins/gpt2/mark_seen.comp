#version 450
// Marks each row's newly drawn token as seen, on the GPU, so the next step's penalty needs no readback.
layout(local_size_x = 64) in;
layout(binding = 0) buffer Seen { int seen[]; };  // i32 [rows, V]
layout(binding = 1) uniform isamplerBuffer Ids;   // i32 [rows]
layout(push_constant) uniform Push {
  int V, rows, seen_offset, ids_offset;
} p;

void main() {
  const int r = int(gl_GlobalInvocationID.x);
  if (r >= p.rows) return;
  const int id = texelFetch(Ids, p.ids_offset + r).x;
  if (id >= 0 && id < p.V) seen[p.seen_offset + r * p.V + id] = 1;
}
