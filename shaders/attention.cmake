# Fused attention (flash style), its split-K (flash-decoding) pass and combine, and the KV-cache append.
tessera_shader(NAME attention            SOURCE attention.comp DEFINES)
tessera_shader(NAME attention_vec4       SOURCE attention.comp DEFINES VEC4)
tessera_shader(NAME attention_split      SOURCE attention.comp DEFINES SPLIT)
tessera_shader(NAME attention_split_vec4 SOURCE attention.comp DEFINES SPLIT VEC4)
tessera_shader(NAME kv_append_f32        SOURCE kv_append.comp DEFINES)
tessera_shader(NAME kv_append_f16        SOURCE kv_append.comp DEFINES F16)
