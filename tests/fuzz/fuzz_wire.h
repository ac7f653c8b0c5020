/*
 * What the two wire-codec fuzz targets share (fuzz_proto.c, the frames a
 * client sends; fuzz_server_frames.c, the frames a server sends): the
 * oracles written apart from the code under test, checks of an encoder's
 * output and of a decoder's bounds, and the start-up. Included by those two
 * files only (it defines LLVMFuzzerInitialize).
 */
#ifndef WSSIGND_FUZZ_WIRE_H
#define WSSIGND_FUZZ_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <wssignd/errors.h>

#include "crypto.h"
#include "fuzz_check.h"
#include "wire.h"

/* The limit the codec cases in tests/proto use, so the seeds keep their meaning. */
#define MAX_MESSAGE 1024
/* Odd on purpose: encoders must leave exactly this much zeroed room. */
#define HEADROOM 13

/* Each target uses only some of these. */
#define FUZZ_HELPER static __attribute__((unused))

FUZZ_HELPER bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Written apart from wire_is_request_id on purpose: the oracle the decoders are checked by. */
FUZZ_HELPER bool is_uuid(const char *s)
{
    if (strlen(s) != WIRE_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < WIRE_REQUEST_ID_MAX; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

FUZZ_HELPER json_t *b64_value(const uint8_t *bin, size_t len)
{
    size_t n = crypto_b64_len(len);
    char *text = malloc(n);
    json_t *v;

    CHECK(text != NULL);
    crypto_b64_encode(text, n, bin, len);
    v = json_string(text);
    free(text);
    CHECK(v != NULL);
    return v;
}

/* Decodes the base64 string field key of obj into a fresh buffer. */
FUZZ_HELPER uint8_t *b64_field(json_t *obj, const char *key, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    size_t n;
    uint8_t *out;

    CHECK(json_is_string(v));
    n = json_string_length(v);
    out = malloc(n + 1);
    CHECK(out != NULL);
    CHECK(crypto_b64_decode(out, n, len, json_string_value(v), n) == 0);
    return out;
}

FUZZ_HELPER const char *str_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    CHECK(json_is_string(v));
    return json_string_value(v);
}

/*
 * Strict base64 has one text per byte string: the field's text in the input
 * frame must be exactly the standard padded encoding of what was decoded.
 */
FUZZ_HELPER void check_canonical(json_t *frame, const char *key, const uint8_t *bin, size_t len)
{
    json_t *v = json_object_get(frame, key);
    size_t n = crypto_b64_len(len);
    char *text = malloc(n);

    CHECK(text != NULL);
    crypto_b64_encode(text, n, bin, len);
    CHECK(json_is_string(v) && json_string_length(v) == n - 1 &&
          memcmp(json_string_value(v), text, n - 1) == 0);
    free(text);
}

/*
 * Checks an encoder's output: zeroed headroom, a NUL after the counted JSON,
 * a JSON object with the expected "type". Returns the parsed object.
 */
FUZZ_HELPER json_t *parse_encoded(char *buf, size_t len, const char *type)
{
    json_error_t jerr;
    json_t *obj;

    CHECK(buf != NULL);
    CHECK(all_zero(buf, HEADROOM));
    CHECK(buf[HEADROOM + len] == '\0');
    CHECK(strlen(buf + HEADROOM) == len);
    obj = json_loadb(buf + HEADROOM, len, JSON_REJECT_DUPLICATES, &jerr);
    CHECK(obj != NULL && json_is_object(obj));
    CHECK(strcmp(str_field(obj, "type"), type) == 0);
    free(buf);
    return obj;
}

/* The decoder under test: wire_decode from one side. */
typedef int (*fuzz_decode_fn)(const char *buf, size_t len, size_t max_message, struct wire_msg *out,
                              struct wire_error *err);
/* The target's comparison of two decoded frames. */
typedef bool (*fuzz_same_fn)(const struct wire_msg *a, const struct wire_msg *b);

/*
 * A refused frame (data, size): nothing left in m, a known code, bounded
 * text, an echoed id only if well formed, and the same refusal with err NULL.
 */
FUZZ_HELPER void check_refused(fuzz_decode_fn decode, const uint8_t *data, size_t size,
                               const struct wire_msg *m, const struct wire_error *e)
{
    struct wire_msg again;
    static const char *const codes[] = {"bad_json", "missing_field", "bad_field", "unknown_type"};
    bool known = false;

    CHECK(all_zero(m, sizeof(*m)));
    CHECK(e->code != NULL);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        known |= strcmp(e->code, codes[i]) == 0;
    CHECK(known);
    CHECK(memchr(e->message, '\0', sizeof(e->message)) != NULL && e->message[0] != '\0');
    /* The message is built from fixed text and plain field names only. */
    for (const char *p = e->message; *p; p++)
        CHECK(*p >= 0x20 && *p < 0x7f);
    CHECK(e->request_id[0] == '\0' || is_uuid(e->request_id));
    CHECK(decode((const char *)data, size, MAX_MESSAGE, &again, NULL) == WSS_ERR_PROTO);
}

/* buf decodes (with err NULL) to the same values as m. */
FUZZ_HELPER void check_decodes_to(fuzz_decode_fn decode, fuzz_same_fn same, const char *buf,
                                  size_t len, const struct wire_msg *m)
{
    struct wire_msg again;

    CHECK(decode(buf, len, MAX_MESSAGE, &again, NULL) == 0);
    CHECK(same(m, &again));
    wire_msg_cleanup(&again);
}

/* max_message is an inclusive bound on the decoded size of m's message. */
FUZZ_HELPER void check_message_bound(fuzz_decode_fn decode, const uint8_t *data, size_t size,
                                     const struct wire_msg *m)
{
    struct wire_msg again;
    struct wire_error e;

    CHECK(decode((const char *)data, size, m->message_len, &again, NULL) == 0);
    wire_msg_cleanup(&again);
    if (m->message_len > 0) {
        CHECK(decode((const char *)data, size, m->message_len - 1, &again, &e) == WSS_ERR_PROTO);
        CHECK(strcmp(e.code, "bad_field") == 0);
        CHECK(strcmp(e.request_id, m->request_id) == 0);
        CHECK(again.message == NULL);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (crypto_init() != 0)
        abort();
    return 0;
}

#endif
