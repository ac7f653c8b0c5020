/*
 * libFuzzer target for the HTTP control API's request parsers
 * (src/controllers/http_api_parse.c): each input is a POST /v1/sign body, and
 * also, as text, the {key} of GET /v1/keys/{key}. It checks the header's
 * contract: the statuses and messages a refused body gets, the bounds on an
 * accepted one, that accepted base64 was the one strict encoding of its bytes,
 * that max_message is an inclusive limit, that a body rebuilt from the
 * parsed values (label and wait_ms too) parses to the same values, and that
 * every body has the same outcome read by jansson alone
 * (http_api_parse_sign_json), so the flat reader (jsonflat.c) never decides
 * otherwise.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "controllers/http_api_parse.h"
#include "util.h"
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
static char *rebuild(const struct http_api_sign_req *req)
{
    json_t *obj = json_object();
    char *k = b64(req->key, WSS_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
    char *m = b64(req->msg, req->msglen, sodium_base64_VARIANT_ORIGINAL);
    char *text;

    CHECK(obj != NULL);
    json_object_set_new(obj, "message", json_string(m));
    json_object_set_new(obj, "public_key", json_string(k));
    if (req->timeout_ms)
        json_object_set_new(obj, "timeout_ms", json_integer(req->timeout_ms));
    if (req->wait_ms)
        json_object_set_new(obj, "wait_ms", json_integer(req->wait_ms));
    if (req->has_label)
        json_object_set_new(obj, "label", json_string(req->label));
    text = json_dumps(obj, JSON_COMPACT);
    CHECK(text != NULL);
    json_decref(obj);
    free(k);
    free(m);
    return text;
}

static bool same_req(const struct http_api_sign_req *a, const struct http_api_sign_req *b)
{
    return !memcmp(a->key, b->key, sizeof a->key) && a->msglen == b->msglen &&
           !memcmp(a->msg, b->msg, a->msglen) && a->timeout_ms == b->timeout_ms &&
           a->wait_ms == b->wait_ms && a->has_label == b->has_label &&
           (!a->has_label || !strcmp(a->label, b->label));
}

/* Strict base64 has one text per byte string: the body's field must be exactly it. */
static void check_canonical(const char *body, size_t len, const char *key, const uint8_t *bin,
                            size_t binlen)
{
    json_t *obj = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    json_t *v = json_object_get(obj, key);
    char *text = b64(bin, binlen, sodium_base64_VARIANT_ORIGINAL);

    CHECK(json_is_string(v) && json_string_length(v) == strlen(text) &&
          memcmp(json_string_value(v), text, strlen(text)) == 0);
    free(text);
    json_decref(obj);
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void check_refused(int rc, const struct http_api_sign_req *req, const char *why)
{
    static const char *const bad_request[] = {
        "body must be a JSON object",
        "unknown field in body",
        "public_key must be base64 of 32 bytes",
        "message must be non-empty standard base64",
        ("message begins with the reserved prefix " WSS_INTRODUCTION_PREFIX),
        "timeout_ms must be an integer from 1 to 60000",
        "wait_ms must be an integer from 0 to 60000",
        "label must be at most 256 bytes of UTF-8 without control characters",
    };
    bool known = false;

    CHECK(all_zero(req, sizeof *req) && why != NULL);
    if (rc == HTTP_API_TOO_LARGE) {
        CHECK(strcmp(why, "message exceeds requests.max_message_bytes") == 0);
        return;
    }
    CHECK(rc == HTTP_API_BAD_REQUEST);
    for (size_t i = 0; i < sizeof(bad_request) / sizeof(bad_request[0]); i++)
        known |= strcmp(why, bad_request[i]) == 0;
    CHECK(known);
}

/* The fast reading and jansson's agree: the same status, message and values. */
static void check_both_ways(const char *body, size_t len, size_t max_message, int rc,
                            const struct http_api_sign_req *req, const char *why)
{
    struct http_api_sign_req ref;
    const char *rwhy = (const char *)1;
    int rrc;

    memset(&ref, 0x5a, sizeof ref);
    rrc = http_api_parse_sign_json(body, len, max_message, &ref, &rwhy);
    CHECK(rrc == rc);
    CHECK((why == NULL) == (rwhy == NULL) && (!why || strcmp(why, rwhy) == 0));
    if (rc == 0)
        CHECK(same_req(req, &ref));
    else
        CHECK(all_zero(&ref, sizeof ref));
    free(ref.msg);
}

/* Parses body; on success checks the bounds, then returns the outputs. */
static int parse(const char *body, size_t len, size_t max_message, struct http_api_sign_req *req)
{
    const char *why = (const char *)1; /* must be overwritten */
    int rc;

    memset(req, 0xa5, sizeof *req);
    rc = http_api_parse_sign(body, len, max_message, req, &why);
    check_both_ways(body, len, max_message, rc, req, why);
    if (rc != 0) {
        check_refused(rc, req, why);
        return rc;
    }
    CHECK(req->msg != NULL && req->msglen >= 1 && req->msglen <= max_message);
    CHECK(req->timeout_ms <= WSS_TIMEOUT_MAX_MS && req->wait_ms <= WSS_TIMEOUT_MAX_MS);
    CHECK(!(req->msglen >= strlen(WSS_INTRODUCTION_PREFIX) &&
            !memcmp(req->msg, WSS_INTRODUCTION_PREFIX, strlen(WSS_INTRODUCTION_PREFIX))));
    if (req->has_label)
        CHECK(strlen(req->label) <= WSS_LABEL_MAX &&
              util_label_valid(req->label, strlen(req->label)));
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
    struct http_api_sign_req req, req2;
    uint8_t key2[WSS_PUBLIC_KEY_BYTES];
    char *text, *path;
    int rc, krc;

    rc = parse((const char *)data, size, MAX_MESSAGE, &req);

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
            rc = parse((const char *)data, size, SIZE_MAX, &req);
            CHECK(rc == 0 || rc == HTTP_API_BAD_REQUEST);
            if (rc == 0)
                CHECK(req.msglen > MAX_MESSAGE);
            free(req.msg);
        }
        return 0;
    }

    check_canonical((const char *)data, size, "public_key", req.key, WSS_PUBLIC_KEY_BYTES);
    check_canonical((const char *)data, size, "message", req.msg, req.msglen);

    /* max_message is inclusive. */
    CHECK(parse((const char *)data, size, req.msglen, &req2) == 0);
    free(req2.msg);
    CHECK(parse((const char *)data, size, req.msglen - 1, &req2) == HTTP_API_TOO_LARGE);

    /* The canonical body for the same values parses to the same values. */
    text = rebuild(&req);
    CHECK(parse(text, strlen(text), MAX_MESSAGE, &req2) == 0);
    CHECK(same_req(&req, &req2));
    free(req2.msg);
    free(text);

    check_key_path(req.key);
    free(req.msg);
    return 0;
}
