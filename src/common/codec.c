/*
 * jansson helpers for wire.c and api.c: strict loading, field getters with
 * precise error text, encoders, and the one hand-written writer of flat
 * objects. Owns no state; does no I/O.
 */
#include "codec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "crypto.h"
#include "util.h"

int codec_fail(struct wire_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return WSS_ERR_PROTO;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return WSS_ERR_PROTO;
}

/* A fixed description of a parse failure: jansson's own text quotes the
 * peer's bytes, which are not echoed back. */
static const char *json_problem(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_duplicate_key: return "has a duplicate key";
    case json_error_stack_overflow: return "nests too deeply";
    case json_error_invalid_utf8: return "is not valid UTF-8";
    case json_error_null_character: return "contains \\u0000";
    case json_error_numeric_overflow: return "has a number out of range";
    case json_error_end_of_input_expected: return "has data after the JSON value";
    default: return "is not valid JSON";
    }
}

json_t *codec_load_object(const char *buf, size_t len, const char *what, struct wire_error *err)
{
    json_error_t jerr;
    json_t *obj;

    /* Duplicate keys must fail: jansson otherwise keeps the last one. Trailing
     * data, \u0000, invalid UTF-8 and out-of-range numbers fail by default. */
    obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        codec_fail(err, "bad_json", "%s %s", what, json_problem(&jerr));
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        codec_fail(err, "bad_json", "%s must be a JSON object", what);
        return NULL;
    }
    return obj;
}

int codec_get_string(json_t *obj, const char *name, bool required, const char **s, size_t *len,
                     struct wire_error *err)
{
    json_t *v = json_object_get(obj, name);

    *s = NULL;
    *len = 0;
    if (!v) {
        if (required)
            return codec_fail(err, "missing_field", "field '%s' is missing", name);
        return 0;
    }
    if (!json_is_string(v))
        return codec_fail(err, "bad_field", "field '%s' must be a string", name);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

int codec_check_fixed_b64(const char *name, const char *s, size_t len, uint8_t *out, size_t n,
                          struct wire_error *err)
{
    size_t want, outlen;

    /* Sizes come from the text length before anything is decoded. */
    want = crypto_b64_decoded_len(s, len);
    if (want == SIZE_MAX)
        return codec_fail(err, "bad_field", "field '%s' is not valid base64", name);
    if (want != n)
        return codec_fail(err, "bad_field", "field '%s' must decode to %zu bytes", name, n);
    if (crypto_b64_decode(out, n, &outlen, s, len) != 0 || outlen != n)
        return codec_fail(err, "bad_field", "field '%s' is not valid base64", name);
    return 0;
}

int codec_get_fixed_b64(json_t *obj, const char *name, bool required, uint8_t *out, size_t n,
                        bool *present, struct wire_error *err)
{
    const char *s;
    size_t len;
    int rc;

    if (present)
        *present = false;
    if ((rc = codec_get_string(obj, name, required, &s, &len, err)) != 0 || !s)
        return rc;
    if ((rc = codec_check_fixed_b64(name, s, len, out, n, err)) != 0)
        return rc;
    if (present)
        *present = true;
    return 0;
}

int codec_check_var_b64(const char *name, const char *s, size_t len, size_t max, uint8_t **out,
                        size_t *outlen, struct wire_error *err)
{
    size_t want;
    uint8_t *buf;

    /* Nothing is allocated for text that is too large or cannot be padded base64. */
    want = crypto_b64_decoded_len(s, len);
    if (want == SIZE_MAX)
        return codec_fail(err, "bad_field", "field '%s' is not valid base64", name);
    if (want > max)
        return codec_fail(err, "bad_field", "field '%s' must decode to at most %zu bytes", name,
                          max);
    buf = xmalloc(want ? want : 1);
    if (crypto_b64_decode(buf, want, outlen, s, len) != 0 || *outlen != want) {
        free(buf);
        *outlen = 0;
        return codec_fail(err, "bad_field", "field '%s' is not valid base64", name);
    }
    *out = buf;
    return 0;
}

int codec_get_var_b64(json_t *obj, const char *name, size_t max, uint8_t **out, size_t *outlen,
                      struct wire_error *err)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = codec_get_string(obj, name, true, &s, &len, err)) != 0)
        return rc;
    return codec_check_var_b64(name, s, len, max, out, outlen, err);
}

int codec_get_request_id(json_t *obj, bool required, char out[WIRE_REQUEST_ID_MAX + 1],
                         struct wire_error *err)
{
    const char *s;
    size_t len;
    int rc;

    out[0] = '\0';
    if ((rc = codec_get_string(obj, "request_id", required, &s, &len, err)) != 0 || !s)
        return rc;
    if (!wire_is_request_id(s, len))
        return codec_fail(err, "bad_field", "field 'request_id' must be a lowercase UUID");
    memcpy(out, s, len + 1);
    return 0;
}

int codec_get_token(json_t *obj, const char *name, size_t max, char *out, struct wire_error *err)
{
    const char *s;
    size_t len, i;
    int rc;

    if ((rc = codec_get_string(obj, name, true, &s, &len, err)) != 0)
        return rc;
    /* No spaces, no control characters, no non-ASCII bytes: a token is
     * compared byte for byte or written into a log line as it is. */
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            break;
    if (len == 0 || len > max || i < len)
        return codec_fail(err, "bad_field", "field '%s' must be 1..%zu visible ASCII characters",
                          name, max);
    memcpy(out, s, len + 1);
    return 0;
}

int codec_get_text(json_t *obj, const char *name, char *out, size_t outlen, struct wire_error *err)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = codec_get_string(obj, name, true, &s, &len, err)) != 0)
        return rc;
    /* jansson has refused \u0000: the string has no NUL before len. */
    snprintf(out, outlen, "%s", s);
    return 0;
}

/* jansson returns NULL only on out-of-memory once its input is valid. */
static json_t *need(json_t *v)
{
    if (!v) {
        fprintf(stderr, "level=err event=out_of_memory where=codec\n");
        abort();
    }
    return v;
}

json_t *codec_object(void)
{
    return need(json_object());
}

void codec_set(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, need(v)) != 0)
        need(NULL);
}

void codec_set_str(json_t *obj, const char *key, const char *s)
{
    json_t *v;
    char *copy;
    size_t i;

    if (!s)
        s = "";
    if ((v = json_string(s)) == NULL) {
        copy = xstrdup(s);
        for (i = 0; copy[i]; i++)
            if ((unsigned char)copy[i] >= 0x80)
                copy[i] = '?';
        v = json_string(copy);
        free(copy);
    }
    codec_set(obj, key, v);
}

void codec_set_b64(json_t *obj, const char *key, const uint8_t *bin, size_t len)
{
    static const uint8_t empty[1];
    size_t n = crypto_b64_len(len);
    char *text = xmalloc(n);

    crypto_b64_encode(text, n, len ? bin : empty, len);
    codec_set(obj, key, json_stringn_nocheck(text, n - 1));
    free(text);
}

void codec_set_int(json_t *obj, const char *key, int64_t v)
{
    codec_set(obj, key, json_integer((json_int_t)v));
}

char *codec_dump_take(json_t *obj, size_t headroom, size_t *len)
{
    size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    char *buf;

    if (n == 0)
        need(NULL);
    /* Zeroed headroom: no uninitialised byte ever reaches the transport. */
    buf = xmalloc(headroom + n + 1);
    memset(buf, 0, headroom);
    if (json_dumpb(obj, buf + headroom, n, JSON_COMPACT) != n)
        abort();
    buf[headroom + n] = '\0';
    json_decref(obj);
    if (len)
        *len = n;
    return buf;
}

/* True if jansson writes s as it is: printable ASCII other than '"' and '\\'. */
static bool needs_no_escape(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* Copies n bytes of s to p; returns the end. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

char *codec_write_flat(size_t headroom, size_t *len, const struct codec_field *f, size_t n)
{
    static const uint8_t empty[1];
    size_t cap = 3, i, b64n; /* the braces and the NUL */
    char *buf, *p;

    for (i = 0; i < n; i++) {
        /* a comma, the quoted name, a colon */
        cap += strlen(f[i].name) + 4;
        switch (f[i].kind) {
        case CODEC_TEXT:
            if (!needs_no_escape(f[i].text))
                return NULL;
            cap += strlen(f[i].text) + 2;
            break;
        case CODEC_B64: cap += crypto_b64_len(f[i].len) + 1; break;
        case CODEC_INT:
            cap += 20; /* the longest int64 with its sign */
            break;
        }
    }
    buf = xmalloc(headroom + cap);
    memset(buf, 0, headroom);
    p = put(buf + headroom, "{", 1);
    for (i = 0; i < n; i++) {
        if (i)
            p = put(p, ",", 1);
        p = put(p, "\"", 1);
        p = put(p, f[i].name, strlen(f[i].name));
        p = put(p, "\":", 2);
        switch (f[i].kind) {
        case CODEC_TEXT:
            p = put(p, "\"", 1);
            p = put(p, f[i].text, strlen(f[i].text));
            p = put(p, "\"", 1);
            break;
        case CODEC_B64:
            b64n = crypto_b64_len(f[i].len);
            p = put(p, "\"", 1);
            crypto_b64_encode(p, b64n, f[i].len ? f[i].bin : empty, f[i].len);
            p = put(p + b64n - 1, "\"", 1);
            break;
        case CODEC_INT:
            /* The format jansson uses for json_int_t. */
            p += snprintf(p, 21, "%" PRId64, f[i].num);
            break;
        }
    }
    p = put(p, "}", 1);
    *p = '\0';
    if (len)
        *len = (size_t)(p - (buf + headroom));
    return buf;
}
