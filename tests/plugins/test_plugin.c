/* Plugins for the loader tests, one per VARIANT_*: written in plain C11 against tessera/plugin.h only,
 * as a third party would. */
#include <stdio.h>
#include <string.h>

#include "tessera/plugin.h"

static tessera_status_t create(const tessera_host_t* host, const tessera_param_value_t* params, uint32_t count,
                               void** instance, tessera_message_t* error) {
  (void)host;
  (void)params;
  (void)count;
  (void)error;
  static int token;
  *instance = &token;
  return TESSERA_OK;
}

/* Copies the image input to the image output (or writes a caption): enough to exercise the ABI. */
static tessera_status_t run(void* instance, const tessera_run_t* r, tessera_message_t* error) {
  (void)instance;
  const tessera_value_t* in = r->input(r, "image");
  if (!in) {
    snprintf(error->text, error->capacity, "no image on the input");
    return TESSERA_INVALID_ARGUMENT;
  }
  return r->set_output(r, "image", in);
}

static void destroy(void* instance) { (void)instance; }

static const tessera_port_t image_in[] = {
    {sizeof(tessera_port_t), "image", TESSERA_PORT_IMAGE, 0, "pictures to process"},
    {sizeof(tessera_port_t), "mask", TESSERA_PORT_IMAGE, TESSERA_PORT_OPTIONAL, "where to apply it"},
};
static const tessera_port_t image_out[] = {
    {sizeof(tessera_port_t), "image", TESSERA_PORT_IMAGE, 0, "the result"},
};
static const tessera_port_t text_out[] = {
#ifdef VARIANT_BAD_PORT
    {sizeof(tessera_port_t), "caption", 42, 0, "a port of no known type"},
#else
    {sizeof(tessera_port_t), "caption", TESSERA_PORT_TEXT, 0, "what the picture shows"},
#endif
};
static const tessera_param_t blur_params[] = {
    {sizeof(tessera_param_t), "radius", TESSERA_PARAM_INT, "1", TESSERA_PARAM_HAS_MIN | TESSERA_PARAM_HAS_MAX, 0, 8,
     "pixels"},
    {sizeof(tessera_param_t), "model", TESSERA_PARAM_PATH, NULL, 0, 0, 0, "a model directory"},
};

static const tessera_stage_t stages[] = {
    {sizeof(tessera_stage_t), "blur", "box blur", image_in, 2, image_out, 1, blur_params, 2, create, run, destroy},
    {sizeof(tessera_stage_t), "caption", "describe a picture", image_in, 1, text_out, 1, NULL, 0, create, run,
     destroy},
};

#ifdef VARIANT_REFUSES
static bool init(const tessera_host_t* host) {
  host->log(host, 2, "test plugin: refusing to start");
  return false;
}
#else
static bool init(const tessera_host_t* host) { return host->abi.major == TESSERA_ABI_MAJOR; }
#endif

#if defined(VARIANT_NEWER_MAJOR)
#define ABI {TESSERA_ABI_MAJOR + 1, 0, 0}
#elif defined(VARIANT_OLDER_MINOR)
#define ABI {TESSERA_ABI_MAJOR, 0, 0}
#else
#define ABI TESSERA_ABI_VERSION
#endif

#if defined(VARIANT_OTHER)
#define ID "test.other"
#elif defined(VARIANT_OLDER_MINOR)
#define ID "test.older"
#else
#define ID "test.images"
#endif

#ifndef VARIANT_NO_ENTRY
TESSERA_EXPORT const tessera_plugin_entry_t tessera_plugin_entry = {
    ABI, sizeof(tessera_plugin_entry_t), ID, "1.0.0", "Tessera tests", "image stages for loader tests", stages, 2, init,
    NULL, NULL};
#else
/* A library with the stages but without the entry symbol. */
typedef struct not_an_entry {
  const tessera_stage_t* stages;
  bool (*init)(const tessera_host_t* host);
} not_an_entry_t;
TESSERA_EXPORT const not_an_entry_t some_other_symbol = {stages, init};
#endif
