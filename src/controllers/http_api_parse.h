/*
 * Request parsing for the HTTP control API: the POST /v1/sign body, the
 * key in GET /v1/keys/{key} and the arguments of GET /v1/keys (and the
 * cursors it gives out), turned into plain values and the answer to give
 * when they are refused. No lws, no service calls, no I/O, so both can be
 * tested and fuzzed on their own.
 */
#ifndef WSSIGND_HTTP_API_PARSE_H
#define WSSIGND_HTTP_API_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wssignd/service.h>
#include <wssignd/util.h>

/* The HTTP statuses the parsers answer with when they refuse a request. */
#define HTTP_API_BAD_REQUEST 400 /* "bad_request" */
#define HTTP_API_TOO_LARGE 413   /* "payload_too_large" */

/* What a POST /v1/sign body asks for. */
struct http_api_sign_req {
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    uint8_t *msg; /* malloc'd; the caller frees it with free() */
    size_t msglen;
    uint32_t timeout_ms; /* 0: the configured default */
    uint32_t wait_ms;    /* 0: do not wait for the key */
    bool has_label;
    char label[WSS_LABEL_MAX + 1]; /* NUL-terminated when has_label */
};

/*
 * Parses a POST /v1/sign body of len bytes (not NUL-terminated; body may be
 * NULL when len is 0). The body must be a JSON object without duplicate keys
 * whose only fields are "public_key" (standard padded base64 of
 * WSS_PUBLIC_KEY_BYTES bytes), "message" (standard padded base64 of 1 to
 * max_message bytes that do not begin with WSS_INTRODUCTION_PREFIX) and,
 * optionally, "timeout_ms" (an integer from 1 to WSS_TIMEOUT_MAX_MS),
 * "wait_ms" (an integer from 0 to WSS_TIMEOUT_MAX_MS) and "label" (a string
 * of at most WSS_LABEL_MAX bytes of UTF-8 without control characters).
 *
 * Returns 0 and fills *req. Otherwise returns HTTP_API_BAD_REQUEST, or
 * HTTP_API_TOO_LARGE when the message decodes to more than max_message bytes,
 * and points *errmsg at a static description for the client; req->msg is then
 * NULL and the other fields are zero. Whether wait_ms fits within the
 * request's timeout is the service's to judge.
 */
int http_api_parse_sign(const char *body, size_t len, size_t max_message,
                        struct http_api_sign_req *req, const char **errmsg);

/* http_api_parse_sign with the body always read by jansson: the same outcome
 * for every input (the reference the tests compare the fast reading with). */
int http_api_parse_sign_json(const char *body, size_t len, size_t max_message,
                             struct http_api_sign_req *req, const char **errmsg);

/*
 * Parses the {key} of GET /v1/keys/{key}: len characters of URL-safe base64,
 * padded or not, of WSS_PUBLIC_KEY_BYTES bytes. Returns 0 and fills key, or
 * HTTP_API_BAD_REQUEST (key may then have been partly written).
 */
int http_api_parse_key(const char *text, size_t len, uint8_t key[WSS_PUBLIC_KEY_BYTES]);

/* Parses the limit of GET /v1/keys: len decimal digits of 1 to WSS_LIST_MAX.
 * Returns 0 with *limit set, or HTTP_API_BAD_REQUEST. */
int http_api_parse_limit(const char *text, size_t len, size_t *limit);

/*
 * Writes the cursor that continues a listing after key, and a NUL: the
 * key's URL-safe base64 without padding (43 characters; http_api_parse_key
 * reads it back). Clients treat it as opaque. Returns out.
 */
char *http_api_cursor(char out[WSS_PUBLIC_KEY_BASE64_BYTES],
                      const uint8_t key[WSS_PUBLIC_KEY_BYTES]);

#endif
