# Building Tessera plugins, in this tree and out of it (installed as <prefix>/lib/cmake/Tessera/).
#
#   tessera_add_plugin(<target> SOURCES a.cpp ... [SHADERS NAME=file.comp ...] [OUTPUT_DIRECTORY dir])
#       A shared module with the plugin SDK headers (Tessera::sdk), hidden symbols except the entry, no "lib"
#       prefix. Each SHADERS entry compiles file.comp to SPIR-V at build time and makes "NAME.h" available,
#       defining `const uint32_t NAME[]` (pass NAME and sizeof(NAME) to tessera::sdk::Kernel).
#   tessera_plugin_shader(<target> NAME <name> SOURCE <file.comp> [DEFINES A=1 B ...])
#       The same for one shader, with defines for variants.
include_guard(GLOBAL)

if(NOT TESSERA_GLSLANG)
  find_program(TESSERA_GLSLANG glslangValidator REQUIRED)
endif()

function(tessera_plugin_shader target)
  cmake_parse_arguments(S "" "NAME;SOURCE" "DEFINES" ${ARGN})
  if(NOT S_NAME OR NOT S_SOURCE)
    message(FATAL_ERROR "tessera_plugin_shader(${target} NAME <name> SOURCE <file.comp>): NAME and SOURCE are required")
  endif()
  get_filename_component(src ${S_SOURCE} ABSOLUTE)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${target}_shaders)
  set(out ${dir}/${S_NAME}.h)
  set(defs "")
  foreach(d IN LISTS S_DEFINES)
    list(APPEND defs "-D${d}")
  endforeach()
  get_filename_component(src_dir ${src} DIRECTORY)
  file(GLOB includes ${src_dir}/*.glsl)
  file(MAKE_DIRECTORY ${dir})
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${TESSERA_GLSLANG} -V --target-env vulkan1.1 --quiet ${defs} --vn ${S_NAME} -o ${out} ${src}
    DEPENDS ${src} ${includes}
    COMMENT "glslang ${S_NAME} (${target})"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
  target_include_directories(${target} PRIVATE ${dir})
endfunction()

function(tessera_add_plugin target)
  cmake_parse_arguments(P "" "OUTPUT_DIRECTORY" "SOURCES;SHADERS" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "tessera_add_plugin(${target} SOURCES ...): no sources")
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE Tessera::sdk)
  set_target_properties(${target} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden
                                             CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON)
  if(P_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIRECTORY})
  endif()
  foreach(entry IN LISTS P_SHADERS)
    string(FIND "${entry}" "=" eq)
    if(eq LESS 1)
      message(FATAL_ERROR "tessera_add_plugin(${target}): SHADERS entries are NAME=file.comp, found '${entry}'")
    endif()
    string(SUBSTRING "${entry}" 0 ${eq} name)
    math(EXPR from "${eq} + 1")
    string(SUBSTRING "${entry}" ${from} -1 file)
    tessera_plugin_shader(${target} NAME ${name} SOURCE ${file})
  endforeach()
endfunction()
