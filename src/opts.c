/*
 * Controller option sections: a JSON object per controller, read through
 * the typed getters of <wssignd/opts.h> and checked against the
 * controller's table of keys, types, ranges and defaults. Owns the jansson
 * values it holds; knows no controller by name.
 */
#include "opts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

/* Per controller section: its options without "enabled"; owned by one config. */
struct wss_opts {
    char *section; /* "controllers.<name>", the prefix of keys in error text */
    json_t *obj;   /* a JSON object, never NULL */
};

struct wss_opts *opts_new_take(const char *name, json_t *obj)
{
    struct wss_opts *o = xmalloc(sizeof *o);
    size_t len = sizeof "controllers." + strlen(name);

    o->section = xmalloc(len);
    snprintf(o->section, len, "controllers.%s", name);
    o->obj = obj;
    return o;
}

struct wss_opts *opts_dup(const struct wss_opts *src)
{
    struct wss_opts *o = xmalloc(sizeof *o);

    o->section = xstrdup(src->section);
    o->obj = json_deep_copy(src->obj);
    if (!o->obj) {
        /* jansson reports out-of-memory as NULL; xmalloc's policy is to abort. */
        fprintf(stderr, "level=err event=out_of_memory where=config\n");
        abort();
    }
    return o;
}

void opts_free(struct wss_opts *o)
{
    if (!o)
        return;
    json_decref(o->obj);
    free(o->section);
    free(o);
}

const json_t *opts_json(const struct wss_opts *o)
{
    return o->obj;
}

void opts_fill_defaults(struct wss_opts *o, const struct wss_opt_spec *spec)
{
    for (const struct wss_opt_spec *s = spec; s && s->key; s++) {
        json_t *v = NULL;

        if (s->required || json_object_get(o->obj, s->key))
            continue;
        if (s->type == WSS_OPT_INTEGER)
            v = json_integer((json_int_t)s->def.i);
        else if (s->type == WSS_OPT_BOOLEAN)
            v = json_boolean(s->def.b);
        else if (s->type == WSS_OPT_STRING && s->def.s)
            v = json_string(s->def.s);
        else
            continue;
        if (!v || json_object_set_new(o->obj, s->key, v) != 0) {
            fprintf(stderr, "level=err event=out_of_memory where=opts\n");
            abort();
        }
    }
}

bool opts_equal(const struct wss_opts *a, const struct wss_opts *b)
{
    return json_equal(a->obj, b->obj);
}

const char *opts_key_name(char *out, size_t outlen, const char *prefix, const char *key)
{
    int w = prefix ? snprintf(out, outlen, "%s.", prefix) : 0;
    size_t n = w < 0 ? 0 : (size_t)w;

    if (n >= outlen)
        return out;
    out[n] = '\0';
    util_printable_append(out, outlen, &n, key);
    return out;
}

/* The entry of spec for key, or NULL. */
static const struct wss_opt_spec *spec_of(const struct wss_opt_spec *spec, const char *key)
{
    for (; spec && spec->key; spec++)
        if (!strcmp(spec->key, key))
            return spec;
    return NULL;
}

/* The value of key if the section has one of the spec's type, else NULL. */
static json_t *value_of(const struct wss_opts *opts, const struct wss_opt_spec *s)
{
    json_t *v = opts ? json_object_get(opts->obj, s->key) : NULL;

    switch (s->type) {
    case WSS_OPT_STRING: return json_is_string(v) ? v : NULL;
    case WSS_OPT_INTEGER: return json_is_integer(v) ? v : NULL;
    case WSS_OPT_BOOLEAN: return json_is_boolean(v) ? v : NULL;
    }
    return NULL;
}

const char *wss_opts_string(const struct wss_opts *opts, const struct wss_opt_spec *spec,
                            const char *key)
{
    const struct wss_opt_spec *s = key ? spec_of(spec, key) : NULL;
    json_t *v;

    if (!s || s->type != WSS_OPT_STRING)
        return NULL;
    v = value_of(opts, s);
    return v ? json_string_value(v) : s->def.s;
}

long long wss_opts_int(const struct wss_opts *opts, const struct wss_opt_spec *spec,
                       const char *key)
{
    const struct wss_opt_spec *s = key ? spec_of(spec, key) : NULL;
    json_t *v;

    if (!s || s->type != WSS_OPT_INTEGER)
        return 0;
    v = value_of(opts, s);
    return v ? (long long)json_integer_value(v) : s->def.i;
}

bool wss_opts_bool(const struct wss_opts *opts, const struct wss_opt_spec *spec, const char *key)
{
    const struct wss_opt_spec *s = key ? spec_of(spec, key) : NULL;
    json_t *v;

    if (!s || s->type != WSS_OPT_BOOLEAN)
        return false;
    v = value_of(opts, s);
    return v ? json_is_true(v) : s->def.b;
}

bool wss_opts_has(const struct wss_opts *opts, const char *key)
{
    return opts && key && json_object_get(opts->obj, key) != NULL;
}

static int refuse(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the reason into err (when there is room) and returns rc. */
static int refuse(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Checks one present value against its entry; key is its dotted name. */
static int check_value(const struct wss_opt_spec *s, json_t *v, const char *key, char *err,
                       size_t errlen)
{
    bool ranged = s->min || s->max;
    long long n;

    switch (s->type) {
    case WSS_OPT_STRING:
        if (!json_is_string(v))
            return refuse(err, errlen, WSS_ERR_CONFIG, "key '%s' must be a string", key);
        n = (long long)json_string_length(v);
        if (ranged && (n < s->min || n > s->max)) {
            if (s->min <= 0)
                return refuse(err, errlen, WSS_ERR_CONFIG, "key '%s' must be at most %lld bytes",
                              key, s->max);
            return refuse(err, errlen, WSS_ERR_CONFIG,
                          "key '%s' must be between %lld and %lld bytes long", key, s->min, s->max);
        }
        return 0;
    case WSS_OPT_INTEGER:
        if (!json_is_integer(v))
            return refuse(err, errlen, WSS_ERR_CONFIG, "key '%s' must be an integer", key);
        n = (long long)json_integer_value(v);
        if (ranged && (n < s->min || n > s->max))
            return refuse(err, errlen, WSS_ERR_CONFIG, "key '%s' must be between %lld and %lld",
                          key, s->min, s->max);
        return 0;
    case WSS_OPT_BOOLEAN:
        if (!json_is_boolean(v))
            return refuse(err, errlen, WSS_ERR_CONFIG, "key '%s' must be a boolean", key);
        return 0;
    }
    return 0;
}

/* A table the controller got wrong: WSS_ERR_INVAL naming the entry, else 0. */
static int check_spec(const struct wss_opt_spec *spec, const char *section, char *err,
                      size_t errlen)
{
    char key[OPTS_KEY_BYTES];

    for (const struct wss_opt_spec *s = spec; s && s->key; s++) {
        opts_key_name(key, sizeof key, section, s->key);
        if (s->type != WSS_OPT_STRING && s->type != WSS_OPT_INTEGER && s->type != WSS_OPT_BOOLEAN)
            return refuse(err, errlen, WSS_ERR_INVAL,
                          "key '%s' has an unknown type %d in the controller's option list", key,
                          (int)s->type);
        if (s->min > s->max || (s->type == WSS_OPT_STRING && s->min < 0))
            return refuse(err, errlen, WSS_ERR_INVAL,
                          "key '%s' has an empty range in the controller's option list", key);
    }
    return 0;
}

int wss_opts_check(const struct wss_opts *opts, const struct wss_opt_spec *spec, char *err,
                   size_t errlen)
{
    const char *section = opts ? opts->section : NULL, *k;
    char key[OPTS_KEY_BYTES];
    json_t *v;
    int rc;

    if ((rc = check_spec(spec, section, err, errlen)) != 0)
        return rc;
    if (opts) {
        json_object_foreach (opts->obj, k, v) {
            const struct wss_opt_spec *s = spec_of(spec, k);

            opts_key_name(key, sizeof key, section, k);
            if (!s)
                return refuse(err, errlen, WSS_ERR_CONFIG, "key '%s' is not known", key);
            if ((rc = check_value(s, v, key, err, errlen)) != 0)
                return rc;
        }
    }
    for (const struct wss_opt_spec *s = spec; s && s->key; s++)
        if (s->required && !wss_opts_has(opts, s->key))
            return refuse(err, errlen, WSS_ERR_CONFIG, "key '%s' is required",
                          opts_key_name(key, sizeof key, section, s->key));
    return 0;
}
