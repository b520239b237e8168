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
#define TESSERA_ABI_MINOR 1

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
  /* [run] Since ABI 1.1 (check struct_size): shows `text` as the next piece of text output `name` while the
   * stage still works (generated text streams to the terminal). The output's value is still published
   * with set_output(). */
  void (*stream)(const tessera_run_t* run, const char* name, const char* text);
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

/* Service ids, for host->get_service(). Each names one of the tables below; a later incompatible table gets
 * a new id ("/2") while the host keeps serving the old one. */
#define TESSERA_SERVICE_TENSORS "tessera.tensors/1"
#define TESSERA_SERVICE_OPS "tessera.ops/1"
#define TESSERA_SERVICE_KERNELS "tessera.kernels/1"
#define TESSERA_SERVICE_SAFETENSORS "tessera.safetensors/1"
#define TESSERA_SERVICE_RANDOM "tessera.random/1"

/* ---- Tensors (TESSERA_SERVICE_TENSORS) ---------------------------------------------------------------------
 * GPU-resident tensors named by handles. A handle is a reference: views and the host's copies of values on
 * ports keep the storage alive, and the storage goes when its last reference is released. Each stage's
 * tensors live on that stage's device (the `device:` of its pipeline entry), the host the stage was created
 * with. Uploads and downloads happen when called; work recorded on a stream runs at finish(). */
typedef uint64_t tessera_tensor_t; /* 0 = no tensor */

typedef int32_t tessera_dtype_t;
#define TESSERA_DTYPE_F32 1
#define TESSERA_DTYPE_F16 2
#define TESSERA_DTYPE_I32 3
#define TESSERA_MAX_RANK 4

/* A tensor's element type and layout: shape, strides and offset in elements of its storage. */
typedef struct tessera_tensor_info {
  uint32_t struct_size;
  tessera_dtype_t dtype;
  uint32_t rank;
  int64_t shape[TESSERA_MAX_RANK];
  int64_t strides[TESSERA_MAX_RANK];
  int64_t offset;
} tessera_tensor_info_t;

typedef struct tessera_tensor_service {
  uint32_t struct_size;
  /* [any] A new dense row-major tensor, contents undefined. `name` labels it in errors; may be NULL. */
  tessera_status_t (*create)(const tessera_host_t* host, tessera_dtype_t dtype, uint32_t rank, const int64_t* shape,
                             const char* name, tessera_tensor_t* out, tessera_message_t* error);
  /* [any] A new reference to `t`'s storage with another layout (dtype must stay): a slice, reshape or
   * permutation made by the caller. Refused when it would reach outside the storage. */
  tessera_status_t (*view)(const tessera_host_t* host, tessera_tensor_t t, const tessera_tensor_info_t* layout,
                           tessera_tensor_t* out, tessera_message_t* error);
  /* [any] Another reference to the same tensor. */
  tessera_status_t (*retain)(const tessera_host_t* host, tessera_tensor_t t, tessera_tensor_t* out,
                             tessera_message_t* error);
  /* [any] Fills *out (struct_size set by the caller). */
  tessera_status_t (*info)(const tessera_host_t* host, tessera_tensor_t t, tessera_tensor_info_t* out,
                           tessera_message_t* error);
  /* [any] Writes `count` elements (exactly the tensor's element count, in row-major order of its shape) of
   * type `src_dtype`; F32 data written to an F16 tensor is converted, and F16 to F32. No stream that uses
   * the tensor may be between record and finish. */
  tessera_status_t (*upload)(const tessera_host_t* host, tessera_tensor_t t, tessera_dtype_t src_dtype,
                             const void* data, size_t count, tessera_message_t* error);
  /* [any] Reads `count` elements into `data` as `dst_dtype` (F16 tensors read as F32 or F16). */
  tessera_status_t (*download)(const tessera_host_t* host, tessera_tensor_t t, tessera_dtype_t dst_dtype, void* data,
                               size_t count, tessera_message_t* error);
  /* [any] Drops one reference; 0 is ignored. */
  void (*release)(const tessera_host_t* host, tessera_tensor_t t);
} tessera_tensor_service_t;

/* ---- Ops (TESSERA_SERVICE_OPS) -----------------------------------------------------------------------------
 * Every core op, recorded into a stream by name with named arguments; docs/plugins.md lists each op and its
 * arguments. An op is checked when it is recorded (shapes, dtypes, overlaps) and runs at finish(): many ops
 * go to the GPU in one submission, with barriers only where one op reads what another wrote. A stream is
 * used by one thread at a time and keeps the tensors its recorded ops use alive until finish(). */
typedef uint64_t tessera_stream_t;

/* One named argument: a tensor, a number (integers and booleans too) or a choice written as text. */
typedef struct tessera_op_arg {
  const char* name;
  tessera_tensor_t tensor;
  double number;
  const char* text;
} tessera_op_arg_t;

typedef struct tessera_ops_service {
  uint32_t struct_size;
  /* [run] A new stream on the host's device. */
  tessera_status_t (*stream_create)(const tessera_host_t* host, tessera_stream_t* out, tessera_message_t* error);
  /* [run] Checks op `op` with its arguments and records it. An argument name that repeats makes a list
   * (concat's inputs). */
  tessera_status_t (*record)(const tessera_host_t* host, tessera_stream_t s, const char* op,
                             const tessera_op_arg_t* args, uint32_t arg_count, tessera_message_t* error);
  /* [run] Submits everything recorded since the last finish and waits for it. */
  tessera_status_t (*finish)(const tessera_host_t* host, tessera_stream_t s, tessera_message_t* error);
  /* [run] Waits for nothing: call it after finish(). 0 is ignored. */
  void (*stream_destroy)(const tessera_host_t* host, tessera_stream_t s);
  /* [any] Whether this host knows op `op`. */
  bool (*has_op)(const tessera_host_t* host, const char* op);
  /* [any] A copy of weights `w` ([N,K], or [K,N] when `in_out`) in the layout matmul reads fastest
   * (layout "packed"); make it once, at load time. */
  tessera_status_t (*pack_weights)(const tessera_host_t* host, tessera_tensor_t w, bool in_out, tessera_tensor_t* out,
                                   tessera_message_t* error);
} tessera_ops_service_t;

/* ---- Custom kernels (TESSERA_SERVICE_KERNELS) ---------------------------------------------------------------
 * A plugin's own compute shader (SPIR-V, entry point "main", descriptor set 0 with bindings 0..n-1, one push
 * constant block, specialization constants with constant_id 0..n-1). Bindings cover a tensor's whole
 * storage: pass its info().offset in the push constants. */
typedef uint64_t tessera_kernel_t;

typedef int32_t tessera_binding_t;
#define TESSERA_BINDING_TEXEL 1  /* read-only, samplerBuffer / isamplerBuffer, one component per element */
#define TESSERA_BINDING_TEXEL4 2 /* read-only, four elements per texel (element count a multiple of 4) */
#define TESSERA_BINDING_STORAGE 3 /* read and written, a buffer block */

typedef struct tessera_kernel_desc {
  uint32_t struct_size;
  const char* name; /* shown in errors and profiles */
  const uint32_t* spirv;
  size_t spirv_bytes;
  const tessera_binding_t* bindings;
  uint32_t binding_count;
  uint32_t push_constant_bytes; /* at most 128 */
  const int32_t* constants;
  uint32_t constant_count;
} tessera_kernel_desc_t;

typedef struct tessera_kernel_service {
  uint32_t struct_size;
  /* [any] Builds the pipeline (through the host's pipeline cache); the SPIR-V is copied. */
  tessera_status_t (*create)(const tessera_host_t* host, const tessera_kernel_desc_t* desc, tessera_kernel_t* out,
                             tessera_message_t* error);
  /* [run] Records a dispatch of groups[0] x groups[1] x groups[2] workgroups; one tensor per binding. */
  tessera_status_t (*dispatch)(const tessera_host_t* host, tessera_stream_t s, tessera_kernel_t kernel,
                               const tessera_tensor_t* bindings, uint32_t binding_count, const void* push,
                               uint32_t push_bytes, const uint32_t groups[3], tessera_message_t* error);
  /* [any] Forgets the kernel; 0 is ignored. */
  void (*release)(const tessera_host_t* host, tessera_kernel_t kernel);
} tessera_kernel_service_t;

/* ---- Safetensors files (TESSERA_SERVICE_SAFETENSORS) --------------------------------------------------------
 * Weight files mapped into memory and checked on open (header, offsets, sizes). */
typedef uint64_t tessera_weights_t;

typedef struct tessera_stored_tensor {
  uint32_t struct_size;
  const char* name;
  const char* dtype; /* as stored: "F32", "F16", "BF16", "I32", ... */
  uint32_t rank;
  int64_t shape[8];
  const void* data; /* mapped bytes, valid until close() */
  uint64_t bytes;
} tessera_stored_tensor_t;

typedef struct tessera_safetensors_service {
  uint32_t struct_size;
  /* [any] Opens and maps a file. */
  tessera_status_t (*open)(const tessera_host_t* host, const char* path, tessera_weights_t* out,
                           tessera_message_t* error);
  /* [any] How many tensors the file holds. */
  uint32_t (*count)(const tessera_host_t* host, tessera_weights_t file);
  /* [any] The tensor at `index` (in name order); strings and data valid until close(). */
  tessera_status_t (*at)(const tessera_host_t* host, tessera_weights_t file, uint32_t index,
                         tessera_stored_tensor_t* out, tessera_message_t* error);
  /* [any] The tensor called `name`, or TESSERA_INVALID_ARGUMENT with a message naming the file. */
  tessera_status_t (*find)(const tessera_host_t* host, tessera_weights_t file, const char* name,
                           tessera_stored_tensor_t* out, tessera_message_t* error);
  /* [any] A value of the file's __metadata__, or NULL. */
  const char* (*metadata)(const tessera_host_t* host, tessera_weights_t file, const char* key);
  /* [any] Uploads tensor `name` as a new GPU tensor of `dtype` (F32, F16 and BF16 files convert to F32 or
   * F16). With rank > 0 the stored shape must equal `shape`; the error names the file, the tensor, and both
   * shapes. */
  tessera_status_t (*load)(const tessera_host_t* host, tessera_weights_t file, const char* name, tessera_dtype_t dtype,
                           uint32_t rank, const int64_t* shape, tessera_tensor_t* out, tessera_message_t* error);
  /* [any] Unmaps the file; 0 is ignored. Tensors loaded from it stay. */
  void (*close)(const tessera_host_t* host, tessera_weights_t file);
} tessera_safetensors_service_t;

/* ---- Random numbers (TESSERA_SERVICE_RANDOM) ----------------------------------------------------------------
 * Counter-based: the same (seed, counter) gives the same value on every host, thread and run, so a sample
 * is reproducible from its seed alone. */
typedef struct tessera_random_service {
  uint32_t struct_size;
  /* [any] 64 random bits. */
  uint64_t (*bits)(uint64_t seed, uint64_t counter);
  /* [any] n uniform floats in [0, 1) for counters counter, counter + 1, ... */
  void (*uniform)(uint64_t seed, uint64_t counter, float* out, size_t n);
  /* [any] n standard normal floats (Box-Muller over the same counters). */
  void (*normal)(uint64_t seed, uint64_t counter, float* out, size_t n);
} tessera_random_service_t;

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
