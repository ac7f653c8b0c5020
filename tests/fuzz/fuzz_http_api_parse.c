/*
 * libFuzzer target for the HTTP control API's request parsers
 * (src/controllers/http_api_parse.c): each input is a POST /v1/sign body, and
 * also, as text, the {key} of GET /v1/keys/{key}. It checks the header's
 * contract: the statuses and messages a refused body gets, the bounds on an
 * accepted one, that accepted base64 was the one strict encoding of its bytes,
 * that max_message is an inclusive limit, and that a body rebuilt from the
 * parsed values parses to the same values.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "controllers/http_api_parse.h"
#include "fuzz_check.h"

/* Small enough that bodies within -max_len can exceed it. */
#define MAX_MESSAGE 1024

static char *b64(const uint8_t *bin, size_t len, int variant)
{
    size_t n = sodium_base64_ENCODED_LEN(len, variant);
    char *text = malloc(n);

    CHECK(text != NULL);
    return sodium_bin2base64(text, n, bin, len, variant);
}

/* The body a well-behaved client would send for these values. */
static char *rebuild(const uint8_t key[WSS_PUBLIC_KEY_BYTES], const uint8_t *msg, size_t msglen,
                     uint32_t timeout_ms)
{
    json_t *obj = json_object();
    char *k = b64(key, WSS_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
    char *m = b64(msg, msglen, sodium_base64_VARIANT_ORIGINAL);
    char *text;

    CHECK(obj != NULL);
    json_object_set_new(obj, "message", json_string(m));
    json_object_set_new(obj, "public_key", json_string(k));
    if (timeout_ms)
        json_object_set_new(obj, "timeout_ms", json_integer(timeout_ms));
    text = json_dumps(obj, JSON_COMPACT);
    CHECK(text != NULL);
    json_decref(obj);
    free(k);
    free(m);
    return text;
}

/* Strict base64 has one text per byte string: the body's field must be exactly it. */
static void check_canonical(const char *body, size_t len, const char *key, const uint8_t *bin,
                            size_t binlen)
{
    json_t *obj = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *v = json_object_get(obj, key);
    char *text = b64(bin, binlen, sodium_base64_VARIANT_ORIGINAL);

    CHECK(json_is_string(v) && json_string_length(v) == strlen(text) &&
          memcmp(json_string_value(v), text, strlen(text)) == 0);
    free(text);
    json_decref(obj);
}

static void check_refused(int rc, const uint8_t *msg, size_t msglen, uint32_t timeout_ms,
                          const char *why)
{
    static const char *const bad_request[] = {
        "body must be a JSON object",
        "unknown field in body",
        "public_key must be base64 of 32 bytes",
        "message must be non-empty standard base64",
        ("message begins with the reserved prefix " WSS_INTRODUCTION_PREFIX),
        "timeout_ms must be an integer from 1 to 60000",
    };
    bool known = false;

    CHECK(msg == NULL && msglen == 0 && timeout_ms == 0 && why != NULL);
    if (rc == HTTP_API_TOO_LARGE) {
        CHECK(strcmp(why, "message exceeds requests.max_message_bytes") == 0);
        return;
    }
    CHECK(rc == HTTP_API_BAD_REQUEST);
    for (size_t i = 0; i < sizeof(bad_request) / sizeof(bad_request[0]); i++)
        known |= strcmp(why, bad_request[i]) == 0;
    CHECK(known);
}

/* Parses body; on success checks the bounds, then returns the outputs. */
static int parse(const char *body, size_t len, size_t max_message, uint8_t key[32],
                 uint8_t **msg, size_t *msglen, uint32_t *timeout_ms)
{
    const char *why = (const char *)1; /* must be overwritten */
    int rc;

    *msg = (uint8_t *)1;
    *msglen = 12345;
    *timeout_ms = 12345;
    rc = http_api_parse_sign(body, len, max_message, key, msg, msglen, timeout_ms, &why);
    if (rc != 0) {
        check_refused(rc, *msg, *msglen, *timeout_ms, why);
        return rc;
    }
    CHECK(*msg != NULL && *msglen >= 1 && *msglen <= max_message);
    CHECK(*timeout_ms <= WSS_TIMEOUT_MAX_MS);
    CHECK(!(*msglen >= strlen(WSS_INTRODUCTION_PREFIX) &&
            !memcmp(*msg, WSS_INTRODUCTION_PREFIX, strlen(WSS_INTRODUCTION_PREFIX))));
    return 0;
}

static void check_key_path(const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    static const int variants[] = {sodium_base64_VARIANT_URLSAFE,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    uint8_t got[WSS_PUBLIC_KEY_BYTES];

    for (size_t i = 0; i < 2; i++) {
        char *text = b64(key, WSS_PUBLIC_KEY_BYTES, variants[i]);

        CHECK(http_api_parse_key(text, strlen(text), got) == 0);
        CHECK(!memcmp(got, key, WSS_PUBLIC_KEY_BYTES));
        free(text);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[WSS_PUBLIC_KEY_BYTES], key2[WSS_PUBLIC_KEY_BYTES], *msg, *msg2;
    size_t msglen, msglen2;
    uint32_t timeout_ms, timeout2;
    char *text, *path;
    int rc, krc;

    rc = parse((const char *)data, size, MAX_MESSAGE, key, &msg, &msglen, &timeout_ms);

    /* The same bytes as a key path segment (the controller passes a C string). */
    path = malloc(size + 1);
    CHECK(path != NULL);
    memcpy(path, data, size);
    path[size] = '\0';
    krc = http_api_parse_key(path, strlen(path), key2);
    CHECK(krc == 0 || krc == HTTP_API_BAD_REQUEST);
    free(path);

    if (rc != 0) {
        /* A too-large message is refused only because of the limit. */
        if (rc == HTTP_API_TOO_LARGE) {
            rc = parse((const char *)data, size, SIZE_MAX, key, &msg, &msglen, &timeout_ms);
            CHECK(rc == 0 || rc == HTTP_API_BAD_REQUEST);
            if (rc == 0)
                CHECK(msglen > MAX_MESSAGE);
            free(msg);
        }
        return 0;
    }

    check_canonical((const char *)data, size, "public_key", key, WSS_PUBLIC_KEY_BYTES);
    check_canonical((const char *)data, size, "message", msg, msglen);

    /* max_message is inclusive. */
    CHECK(parse((const char *)data, size, msglen, key2, &msg2, &msglen2, &timeout2) == 0);
    free(msg2);
    CHECK(parse((const char *)data, size, msglen - 1, key2, &msg2, &msglen2, &timeout2) ==
          HTTP_API_TOO_LARGE);

    /* The canonical body for the same values parses to the same values. */
    text = rebuild(key, msg, msglen, timeout_ms);
    CHECK(parse(text, strlen(text), MAX_MESSAGE, key2, &msg2, &msglen2, &timeout2) == 0);
    CHECK(!memcmp(key, key2, sizeof(key)) && msglen == msglen2 &&
          !memcmp(msg, msg2, msglen) && timeout_ms == timeout2);
    free(msg2);
    free(text);

    check_key_path(key);
    free(msg);
    return 0;
}
