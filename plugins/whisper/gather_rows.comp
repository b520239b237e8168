#version 450
// Beam search reorders its hypotheses every step: row r of each cache takes row source[r] of the previous
// step's cache, for the positions written so far. One dispatch for every layer's keys and values at once.
layout(local_size_x = 64) in;
layout(binding = 0) uniform samplerBuffer Src;   // f32 [caches, rows, n_ctx, C]
layout(binding = 1) uniform isamplerBuffer Source;  // i32 [rows]
layout(binding = 2) buffer Dst { float dst[]; };   // f32 [caches, rows, n_ctx, C]
layout(push_constant) uniform Push {
  int rows, n_ctx, C, positions, src_offset, source_offset, dst_offset;
} p;

void main() {
  const int i = int(gl_GlobalInvocationID.x), r = int(gl_GlobalInvocationID.y), cache = int(gl_GlobalInvocationID.z);
  if (i >= p.positions * p.C || r >= p.rows) return;
  const int from = texelFetch(Source, p.source_offset + r).x;
  const int row_size = p.n_ctx * p.C;
  dst[p.dst_offset + (cache * p.rows + r) * row_size + i] = texelFetch(Src, p.src_offset + (cache * p.rows + from) * row_size + i).x;
}
