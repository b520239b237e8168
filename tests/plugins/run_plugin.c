/* A plugin whose stages really run, for the scheduler tests: an image source, an inverter, a describer,
 * a slow stage that honours cancellation, and one that always fails. Plain C11 against tessera/plugin.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tessera/plugin.h"

typedef struct gradient {
  int64_t width, height, images;
} gradient_t;

static tessera_status_t gradient_create(const tessera_host_t* host, const tessera_param_value_t* params, uint32_t count,
                                        void** instance, tessera_message_t* error) {
  (void)host;
  gradient_t* g = malloc(sizeof *g);
  if (!g) {
    snprintf(error->text, error->capacity, "out of memory");
    return TESSERA_OUT_OF_MEMORY;
  }
  g->width = 8;
  g->height = 4;
  g->images = 1;
  for (uint32_t i = 0; i < count; ++i) {
    if (!strcmp(params[i].name, "width")) g->width = params[i].i;
    if (!strcmp(params[i].name, "height")) g->height = params[i].i;
    if (!strcmp(params[i].name, "images")) g->images = params[i].i;
  }
  *instance = g;
  return TESSERA_OK;
}

static void free_instance(void* instance) { free(instance); }

static tessera_status_t gradient_run(void* instance, const tessera_run_t* r, tessera_message_t* error) {
  (void)error;
  const gradient_t* g = instance;
  const size_t n = (size_t)(g->width * g->height * 3);
  uint8_t* px = malloc(n * (size_t)g->images);
  if (!px) return TESSERA_OUT_OF_MEMORY;
  for (int64_t i = 0; i < g->images; ++i) /* image i of a batch draws with seed + i */
    for (int64_t y = 0; y < g->height; ++y)
      for (int64_t x = 0; x < g->width; ++x) {
        uint8_t* p = px + (size_t)i * n + (y * g->width + x) * 3;
        p[0] = (uint8_t)(x * 255 / (g->width > 1 ? g->width - 1 : 1));
        p[1] = (uint8_t)(y * 255 / (g->height > 1 ? g->height - 1 : 1));
        p[2] = (uint8_t)((r->seed + (uint64_t)i) & 0xff);
      }
  tessera_value_t v;
  memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.type = TESSERA_PORT_IMAGE;
  v.count = (uint32_t)g->images;
  v.pixels = px;
  v.width = (uint32_t)g->width;
  v.height = (uint32_t)g->height;
  const tessera_status_t s = r->set_output(r, "image", &v);
  free(px);
  return s;
}

static tessera_status_t no_params(const tessera_host_t* host, const tessera_param_value_t* params, uint32_t count,
                                  void** instance, tessera_message_t* error) {
  (void)host;
  (void)error;
  int64_t* ms = malloc(sizeof *ms);
  if (!ms) return TESSERA_OUT_OF_MEMORY;
  *ms = 0;
  for (uint32_t i = 0; i < count; ++i)
    if (!strcmp(params[i].name, "ms")) *ms = params[i].i;
  *instance = ms;
  return TESSERA_OK;
}

static tessera_status_t invert_run(void* instance, const tessera_run_t* r, tessera_message_t* error) {
  (void)instance;
  const tessera_value_t* in = r->input(r, "image");
  if (!in || !in->pixels) {
    snprintf(error->text, error->capacity, "no image");
    return TESSERA_INVALID_ARGUMENT;
  }
  const size_t n = (size_t)in->count * in->width * in->height * 3;
  uint8_t* px = malloc(n);
  if (!px) return TESSERA_OUT_OF_MEMORY;
  for (size_t i = 0; i < n; ++i) px[i] = (uint8_t)(255 - in->pixels[i]);
  tessera_value_t v = *in;
  v.pixels = px;
  const tessera_status_t s = r->set_output(r, "image", &v);
  free(px);
  return s;
}

/* Audio through a stage: every sample halved, the channel count and rate kept. */
static tessera_status_t halve_run(void* instance, const tessera_run_t* r, tessera_message_t* error) {
  (void)instance;
  const tessera_value_t* in = r->input(r, "audio");
  if (!in || !in->samples) {
    snprintf(error->text, error->capacity, "no audio");
    return TESSERA_INVALID_ARGUMENT;
  }
  const size_t n = (size_t)in->count * in->frames * in->channels;
  float* out = malloc((n ? n : 1) * sizeof *out);
  if (!out) return TESSERA_OUT_OF_MEMORY;
  for (size_t i = 0; i < n; ++i) out[i] = 0.5f * in->samples[i];
  tessera_value_t v = *in;
  v.samples = out;
  const tessera_status_t s = r->set_output(r, "audio", &v);
  free(out);
  return s;
}

static tessera_status_t describe_run(void* instance, const tessera_run_t* r, tessera_message_t* error) {
  (void)instance;
  (void)error;
  const tessera_value_t* in = r->input(r, "image");
  double sum[3] = {0, 0, 0};
  const size_t pixels = (size_t)in->width * in->height;
  for (size_t i = 0; i < pixels; ++i)
    for (int c = 0; c < 3; ++c) sum[c] += in->pixels[i * 3 + c];
  char text[128];
  snprintf(text, sizeof text, "%ux%u mean %.0f %.0f %.0f", in->width, in->height, sum[0] / pixels, sum[1] / pixels,
           sum[2] / pixels);
  const char* texts[1] = {text};
  tessera_value_t v;
  memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.type = TESSERA_PORT_TEXT;
  v.count = 1;
  v.text = texts;
  return r->set_output(r, "text", &v);
}

/* Sleeps `ms` in 5 ms slices, reporting progress and stopping early when cancelled. */
static tessera_status_t sleep_run(void* instance, const tessera_run_t* r, tessera_message_t* error) {
  (void)error;
  const int64_t ms = *(const int64_t*)instance;
  for (int64_t t = 0; t < ms; t += 5) {
    if (r->cancelled(r)) return TESSERA_CANCELLED;
    r->progress(r, (double)t / (double)ms, "sleeping");
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return r->set_output(r, "image", r->input(r, "image"));
}

static tessera_status_t fail_run(void* instance, const tessera_run_t* r, tessera_message_t* error) {
  (void)instance;
  (void)r;
  snprintf(error->text, error->capacity, "this stage always fails");
  return TESSERA_ERROR;
}

static const tessera_port_t image_in[] = {{sizeof(tessera_port_t), "image", TESSERA_PORT_IMAGE, 0, "input"}};
static const tessera_port_t image_out[] = {{sizeof(tessera_port_t), "image", TESSERA_PORT_IMAGE, 0, "output"}};
static const tessera_port_t text_out[] = {{sizeof(tessera_port_t), "text", TESSERA_PORT_TEXT, 0, "description"}};
static const tessera_port_t audio_in[] = {{sizeof(tessera_port_t), "audio", TESSERA_PORT_AUDIO, 0, "input"}};
static const tessera_port_t audio_out[] = {{sizeof(tessera_port_t), "audio", TESSERA_PORT_AUDIO, 0, "output"}};
static const tessera_param_t gradient_params[] = {
    {sizeof(tessera_param_t), "width", TESSERA_PARAM_INT, "8", TESSERA_PARAM_HAS_MIN | TESSERA_PARAM_HAS_MAX, 1, 512, ""},
    {sizeof(tessera_param_t), "height", TESSERA_PARAM_INT, "4", TESSERA_PARAM_HAS_MIN | TESSERA_PARAM_HAS_MAX, 1, 512, ""},
    {sizeof(tessera_param_t), "images", TESSERA_PARAM_INT, "1", TESSERA_PARAM_HAS_MIN | TESSERA_PARAM_HAS_MAX, 1, 64,
     "images made together; image i has seed + i"},
};
static const tessera_param_t sleep_params[] = {
    {sizeof(tessera_param_t), "ms", TESSERA_PARAM_INT, "200", TESSERA_PARAM_HAS_MIN, 0, 0, "how long"},
};

static const tessera_stage_t stages[] = {
    {sizeof(tessera_stage_t), "gradient", "an image from nothing", NULL, 0, image_out, 1, gradient_params, 3,
     gradient_create, gradient_run, free_instance},
    {sizeof(tessera_stage_t), "invert", "255 - pixel", image_in, 1, image_out, 1, NULL, 0, no_params, invert_run,
     free_instance},
    {sizeof(tessera_stage_t), "halve", "audio at half the amplitude", audio_in, 1, audio_out, 1, NULL, 0, no_params,
     halve_run, free_instance},
    {sizeof(tessera_stage_t), "describe", "size and mean colour", image_in, 1, text_out, 1, NULL, 0, no_params,
     describe_run, free_instance},
    {sizeof(tessera_stage_t), "sleep", "passes its input on after a while", image_in, 1, image_out, 1, sleep_params, 1,
     no_params, sleep_run, free_instance},
    {sizeof(tessera_stage_t), "fail", "always fails", image_in, 1, image_out, 1, NULL, 0, no_params, fail_run,
     free_instance},
};

TESSERA_EXPORT const tessera_plugin_entry_t tessera_plugin_entry = {
    TESSERA_ABI_VERSION, sizeof(tessera_plugin_entry_t), "test.run", "1.0.0", "Tessera tests",
    "stages that run, for scheduler tests", stages, 6, NULL, NULL, NULL};
