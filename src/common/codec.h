/*
 * What the two JSON codecs, wire.c (WebSocket frames) and api.c (HTTP API
 * bodies), share: the strict loader, field getters that name what is wrong,
 * encoders that abort on out-of-memory, and the one hand-written writer, for
 * the flat objects sent with every signature. Include it from those two files
 * only: jansson values never leave them.
 */
#ifndef WSSIGND_CODEC_H
#define WSSIGND_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wire.h" /* struct wire_error, WIRE_REQUEST_ID_MAX */

/* Fills err (unless NULL) with code and the formatted message; returns WSS_ERR_PROTO. */
int codec_fail(struct wire_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parses len bytes as one JSON object: duplicate keys, data after the value,
 * \u0000, invalid UTF-8 and out-of-range numbers are refused (two readers of
 * one text must not disagree about what it says). Returns the object (the
 * caller drops it with json_decref), or NULL with err filled: "bad_json" and
 * a fixed description starting with what ("frame", "answer"); the peer's
 * bytes are never quoted back.
 */
json_t *codec_load_object(const char *buf, size_t len, const char *what, struct wire_error *err);

/*
 * Field getters. Each returns 0, or WSS_ERR_PROTO with err filled:
 * "missing_field" when a required field is absent, "bad_field" when it has
 * the wrong JSON type or breaks the rule the getter names. The messages name
 * the field: "field 'signature' must decode to 64 bytes".
 */

/* A string; *s (borrowed from obj) is NULL when an optional field is absent. */
int codec_get_string(json_t *obj, const char *name, bool required, const char **s, size_t *len,
                     struct wire_error *err);

/* Strict padded standard base64 of exactly n bytes, decoded into out. *present
 * (may be NULL) tells whether an optional field was there. */
int codec_get_fixed_b64(json_t *obj, const char *name, bool required, uint8_t *out, size_t n,
                        bool *present, struct wire_error *err);

/* Required strict base64 of at most max bytes. The size is checked from the
 * text before anything is allocated. On success *out is a new buffer (never
 * NULL, even for 0 bytes) that the caller frees with free(). */
int codec_get_var_b64(json_t *obj, const char *name, size_t max, uint8_t **out, size_t *outlen,
                      struct wire_error *err);

/* The base64 rules of the two getters above, on a string's len bytes at s
 * fetched by any reader; name is only quoted in err. Same returns. */
int codec_check_fixed_b64(const char *name, const char *s, size_t len, uint8_t *out, size_t n,
                          struct wire_error *err);
int codec_check_var_b64(const char *name, const char *s, size_t len, size_t max, uint8_t **out,
                        size_t *outlen, struct wire_error *err);

/* "request_id": a lowercase 8-4-4-4-12 UUID (wire_is_request_id) copied into
 * out; out is "" when an optional one is absent. */
int codec_get_request_id(json_t *obj, bool required, char out[WIRE_REQUEST_ID_MAX + 1],
                         struct wire_error *err);

/* A required string of 1..max visible ASCII characters (0x21..0x7e), copied
 * into out (max + 1 bytes). For hosts, session ids and error codes: things
 * compared byte for byte or written into log lines. */
int codec_get_token(json_t *obj, const char *name, size_t max, char *out, struct wire_error *err);

/* A required string of free text, kept up to outlen - 1 bytes (longer text
 * is cut, not refused: it is only logged). */
int codec_get_text(json_t *obj, const char *name, char *out, size_t outlen, struct wire_error *err);

/*
 * Encoders through jansson. None returns NULL: out-of-memory aborts.
 */

/* A new empty object. */
json_t *codec_object(void);
/* Sets key to v, taking v. */
void codec_set(json_t *obj, const char *key, json_t *v);
/* Sets key to the string s (NULL: ""); text that is not valid UTF-8 has every
 * non-ASCII byte replaced by '?', so an encoder always produces its text. */
void codec_set_str(json_t *obj, const char *key, const char *s);
/* Sets key to the standard padded base64 of len bytes (bin may be NULL when len is 0). */
void codec_set_b64(json_t *obj, const char *key, const uint8_t *bin, size_t len);
/* Sets key to the integer v. */
void codec_set_int(json_t *obj, const char *key, int64_t v);

/*
 * Dumps obj (compact, keys in insertion order) after headroom zeroed bytes
 * and drops the reference. Returns a malloc'd buffer: headroom bytes, the
 * JSON text, a NUL that *len (may be NULL) does not count. free() it.
 */
char *codec_dump_take(json_t *obj, size_t headroom, size_t *len);

/* What a flat object's field holds. */
enum codec_kind { CODEC_TEXT, CODEC_B64, CODEC_INT };

/* Per field of a flat object written by codec_write_flat. */
struct codec_field {
    const char *name; /* a constant key: needs no escaping */
    enum codec_kind kind;
    const char *text;   /* CODEC_TEXT */
    const uint8_t *bin; /* CODEC_B64: base64 of len bytes (bin may be NULL when len is 0) */
    size_t len;
    int64_t num; /* CODEC_INT */
};

/*
 * Writes the flat object {"name":value,...} of n fields straight into one
 * buffer laid out as codec_dump_take's, without building a jansson object:
 * for the frames and answers sent with every signature. The bytes are exactly
 * what codec_dump_take gives for the same object. Text values must need no
 * escaping: printable ASCII (0x20..0x7e) other than '"' and '\\'. Returns
 * NULL, having allocated nothing, if one does not qualify.
 */
char *codec_write_flat(size_t headroom, size_t *len, const struct codec_field *f, size_t n);

#endif
