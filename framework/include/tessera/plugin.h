/* Tessera plugin ABI: the only header a plugin needs.
 *
 * Pure C11, stable across releases of the same major version. A plugin is a shared library exporting one
 * symbol, `tessera_plugin_entry`, a const tessera_plugin_entry_t. Everything the plugin hands the host
 * (descriptors, strings, arrays) is owned by the plugin and must stay valid until deinit(); everything the
 * host hands the plugin is owned by the host and valid for the duration of the call unless said otherwise.
 * Memory is never freed across the boundary.
 *
 * Versioning: every struct that may grow starts with `struct_size` (sizeof as the plugin was compiled),
 * so a host reads only the fields a plugin knows. A plugin built against an older minor version keeps
 * loading; a different major version is refused.
 *
 * Threads: "[main]" functions are called from the thread that loads plugins and builds pipelines,
 * "[run]" functions from a scheduler worker thread, one call at a time per stage instance, and
 * "[any]" functions from any thread.
 */
#ifndef TESSERA_PLUGIN_H
#define TESSERA_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TESSERA_ABI_MAJOR 1
#define TESSERA_ABI_MINOR 0

#if defined(_WIN32)
#define TESSERA_EXPORT __declspec(dllexport)
#else
#define TESSERA_EXPORT __attribute__((visibility("default")))
#endif

/* The exported symbol's name, for hosts that look it up. */
#define TESSERA_PLUGIN_ENTRY_SYMBOL "tessera_plugin_entry"

typedef struct tessera_version {
  uint32_t major;
  uint32_t minor;
  uint32_t patch;
} tessera_version_t;

#define TESSERA_ABI_VERSION {TESSERA_ABI_MAJOR, TESSERA_ABI_MINOR, 0}

/* Status codes. Anything but TESSERA_OK comes with a message (see tessera_message_t). */
typedef int32_t tessera_status_t;
#define TESSERA_OK 0
#define TESSERA_ERROR 1
#define TESSERA_INVALID_ARGUMENT 2
#define TESSERA_UNSUPPORTED 3
#define TESSERA_OUT_OF_MEMORY 4
#define TESSERA_CANCELLED 5

/* A message buffer the host owns; the plugin writes a NUL-terminated message of at most `capacity`
 * bytes into it when it returns an error. */
typedef struct tessera_message {
  char* text;
  size_t capacity;
} tessera_message_t;

/* What flows between stages. */
typedef int32_t tessera_port_type_t;
#define TESSERA_PORT_TEXT 1   /* UTF-8 strings, one per batch item */
#define TESSERA_PORT_TOKENS 2 /* i32 ids and mask, [rows, length] */
#define TESSERA_PORT_TENSOR 3 /* a GPU-resident tensor */
#define TESSERA_PORT_IMAGE 4  /* RGB8 images, batched */
#define TESSERA_PORT_AUDIO 5  /* f32 PCM with a sample rate */

/* What configures a stage. */
typedef int32_t tessera_param_type_t;
#define TESSERA_PARAM_BOOL 1
#define TESSERA_PARAM_INT 2
#define TESSERA_PARAM_FLOAT 3
#define TESSERA_PARAM_STRING 4
#define TESSERA_PARAM_PATH 5

#define TESSERA_PORT_OPTIONAL 1u /* an input the stage can run without */

typedef struct tessera_port {
  uint32_t struct_size;
  const char* name; /* [a-z0-9_]+, unique among the stage's inputs (or outputs) */
  tessera_port_type_t type;
  uint32_t flags; /* TESSERA_PORT_* */
  const char* doc;
} tessera_port_t;

#define TESSERA_PARAM_HAS_MIN 1u
#define TESSERA_PARAM_HAS_MAX 2u

typedef struct tessera_param {
  uint32_t struct_size;
  const char* name;
  tessera_param_type_t type;
  const char* default_value; /* as it would be written in a pipeline file; NULL: the parameter is required */
  uint32_t flags;            /* TESSERA_PARAM_HAS_MIN / _MAX */
  double min, max;           /* inclusive, for INT and FLOAT */
  const char* doc;
} tessera_param_t;

/* A validated parameter value, as handed to create(). */
typedef struct tessera_param_value {
  const char* name;
  tessera_param_type_t type;
  bool b;
  int64_t i;
  double f;
  const char* s; /* STRING and PATH; PATH is absolute */
} tessera_param_value_t;

/* Values on ports. Which member is meaningful follows `type`. The host owns values it passes in;
 * values a plugin sets as outputs are copied by the host before set_output() returns. */
typedef struct tessera_value {
  uint32_t struct_size;
  tessera_port_type_t type;
  uint32_t count; /* batch items */
  /* TEXT */
  const char* const* text;
  /* TOKENS: ids and mask, count rows of `length` */
  const int32_t* ids;
  const int32_t* mask;
  uint32_t length;
  /* IMAGE: count images of height x width x 3 bytes, row-major */
  const uint8_t* pixels;
  uint32_t width, height;
  /* AUDIO: count clips of `frames` samples per channel, interleaved */
  const float* samples;
  uint64_t frames;
  uint32_t channels, sample_rate;
  /* TENSOR: a handle of the host's tensor service (see TESSERA_SERVICE_TENSORS) */
  uint64_t tensor;
} tessera_value_t;

/* One execution of a stage instance: how it reads inputs, publishes outputs and reports progress. */
typedef struct tessera_run tessera_run_t;
struct tessera_run {
  uint32_t struct_size;
  uint64_t seed;  /* reproducible seed of this sample */
  uint32_t index; /* index of the sample in its batch */
  /* [run] The value on input `name`, or NULL for an unconnected optional input. Valid until run() returns. */
  const tessera_value_t* (*input)(const tessera_run_t* run, const char* name);
  /* [run] Publishes output `name`; the host copies the value. */
  tessera_status_t (*set_output)(const tessera_run_t* run, const char* name, const tessera_value_t* value);
  /* [run] Progress of this run in [0, 1], with a short label (may be NULL). */
  void (*progress)(const tessera_run_t* run, double fraction, const char* label);
  /* [run] True once the user asked to stop: return TESSERA_CANCELLED soon. */
  bool (*cancelled)(const tessera_run_t* run);
  void* host_data;
};

/* The host, as a plugin sees it. */
typedef struct tessera_host tessera_host_t;
struct tessera_host {
  uint32_t struct_size;
  tessera_version_t abi;
  const char* name;
  const char* version;
  /* [any] level: 0 debug, 1 info, 2 warning, 3 error. */
  void (*log)(const tessera_host_t* host, int32_t level, const char* message);
  /* [any] A versioned service table by id (e.g. TESSERA_SERVICE_TENSORS), or NULL when the host has none.
   * The table lives as long as the host. */
  const void* (*get_service)(const tessera_host_t* host, const char* id);
  void* host_data;
};

/* Service ids. Each names a struct of function pointers documented in its own header. */
#define TESSERA_SERVICE_TENSORS "tessera.tensors/1"
#define TESSERA_SERVICE_OPS "tessera.ops/1"
#define TESSERA_SERVICE_KERNELS "tessera.kernels/1"
#define TESSERA_SERVICE_SAFETENSORS "tessera.safetensors/1"
#define TESSERA_SERVICE_RANDOM "tessera.random/1"

/* A stage: a typed contract and the three functions that run it. */
typedef struct tessera_stage {
  uint32_t struct_size;
  const char* id; /* unique within the plugin */
  const char* description;
  const tessera_port_t* inputs;
  uint32_t input_count;
  const tessera_port_t* outputs;
  uint32_t output_count;
  const tessera_param_t* params;
  uint32_t param_count;
  /* [main] Makes an instance from validated parameters; may load weights. Returns TESSERA_OK and sets
   * *instance, or an error with `error` filled. */
  tessera_status_t (*create)(const tessera_host_t* host, const tessera_param_value_t* params, uint32_t param_count,
                             void** instance, tessera_message_t* error);
  /* [run] Runs once; inputs and outputs through `run`. */
  tessera_status_t (*run)(void* instance, const tessera_run_t* run, tessera_message_t* error);
  /* [main] Frees the instance; no run is in flight. */
  void (*destroy)(void* instance);
} tessera_stage_t;

/* The one exported symbol: `TESSERA_EXPORT const tessera_plugin_entry_t tessera_plugin_entry = {...};` */
typedef struct tessera_plugin_entry {
  tessera_version_t abi; /* TESSERA_ABI_VERSION as the plugin was compiled */
  uint32_t struct_size;
  const char* id; /* reverse-DNS or short lowercase id, unique among loaded plugins */
  const char* version;
  const char* vendor;
  const char* description;
  const tessera_stage_t* stages;
  uint32_t stage_count;
  /* [main] Called once after loading, before anything else; may be NULL. False refuses the plugin. */
  bool (*init)(const tessera_host_t* host);
  /* [main] Called once before unloading; may be NULL. */
  void (*deinit)(void);
  /* [any] Optional capabilities by versioned string id; may be NULL. */
  const void* (*get_extension)(const char* id);
} tessera_plugin_entry_t;

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_PLUGIN_H */
