# Convolutions, upsampling and GPU sampling. Kernel sizes, strides and tiles are specialization constants.
#   VEC4: weights four input channels at a time (Cin % 4 == 0);  XVEC4: input windows as whole texels.
tessera_shader(NAME conv               SOURCE conv.comp)
tessera_shader(NAME conv_vec4          SOURCE conv.comp DEFINES VEC4)
tessera_shader(NAME conv_x4            SOURCE conv.comp DEFINES XVEC4)
tessera_shader(NAME conv_vec4_x4       SOURCE conv.comp DEFINES VEC4 XVEC4)
tessera_shader(NAME upsample_nearest2x SOURCE upsample.comp)
tessera_shader(NAME sampling           SOURCE sampling.comp)
