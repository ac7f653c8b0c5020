/*
 * Controller option sections (struct wss_opts): the daemon's side of
 * <wssignd/opts.h>. config.c makes one per section under "controllers" and
 * owns it; controllers read it through the public getters. Also the one
 * writer of dotted key names ("controllers.http_api.token_file") for error
 * text, shared with config.c.
 */
#ifndef WSSIGND_OPTS_INTERNAL_H
#define WSSIGND_OPTS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <wssignd/opts.h>

#include "util.h"

/* Longest controller name (a section under "controllers"). */
#define OPTS_NAME_MAX 64
/* Room for a dotted key: controller prefix, '.', echoed key, "..." and NUL. */
#define OPTS_KEY_BYTES (sizeof "controllers." + OPTS_NAME_MAX + 1 + UTIL_PRINTABLE_MAX + 8)

/* Makes the section of controller name from obj (a JSON object, taken:
 * freed with the section). Never NULL. */
struct wss_opts *opts_new_take(const char *name, json_t *obj);

/* A deep copy of src. Never NULL (aborts on out-of-memory). */
struct wss_opts *opts_dup(const struct wss_opts *src);

/* Frees o. NULL is a no-op. */
void opts_free(struct wss_opts *o);

/* The section as a JSON object, borrowed from o (never NULL). */
const json_t *opts_json(const struct wss_opts *o);

/* Adds to o each key of spec that o lacks and that has a default: an
 * integer, a boolean, or a string whose default is not NULL. Required keys
 * are left out. */
void opts_fill_defaults(struct wss_opts *o, const struct wss_opt_spec *spec);

/* True if a and b hold the same keys and values. */
bool opts_equal(const struct wss_opts *a, const struct wss_opts *b);

/*
 * Writes "prefix.key" (or "key" when prefix is NULL) into out, with key made
 * printable and cut (util_printable_append): keys come from files. The
 * prefix is a name known to the caller or a validated controller name.
 * Returns out.
 */
const char *opts_key_name(char *out, size_t outlen, const char *prefix, const char *key);

#endif
