/*
 * The JSON bodies of the HTTP control API's POST /v1/sign, both ways: the
 * request body, the 200 answer and the error body. wssign encodes requests
 * and decodes answers; the daemon's HTTP controller encodes answers (its
 * request parser is http_api_parse.c). JSON text <-> plain C structs via
 * jansson; no I/O, no lws, and jansson values never leave api.c.
 *
 * Answers are decoded leniently where the wire codec is strict: they come
 * from the daemon the caller chose to ask, and fields a newer daemon adds are
 * ignored. Every value that is used is still checked.
 */
#ifndef WSSIGND_API_H
#define WSSIGND_API_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "wire.h" /* WIRE_REQUEST_ID_MAX, WIRE_CODE_MAX, WIRE_TEXT_MAX, struct wire_error */

/* What a POST /v1/sign asks for. */
struct api_sign_call {
    const uint8_t *pk; /* crypto_sign_PUBLICKEYBYTES */
    const uint8_t *msg;
    size_t msg_len;
    uint32_t timeout_ms; /* 0: the field is left out (the daemon's default applies) */
    uint32_t wait_ms;    /* 0: left out (do not wait for the key) */
    const char *label;   /* NULL: left out */
};

/*
 * The body of POST /v1/sign:
 * {"public_key","message"[,"timeout_ms"][,"wait_ms"][,"label"]}. Returns a
 * NUL-terminated malloc'd string (free()); *len (may be NULL) is its length.
 * Never fails (out-of-memory aborts).
 */
char *api_encode_sign_call(size_t *len, const struct api_sign_call *call);

/*
 * The 200 answer: {"request_id","public_key","message","signature"}, the
 * binary fields in standard padded base64. Written after headroom zeroed
 * bytes, followed by a NUL that *len (may be NULL) does not count; the caller
 * frees the buffer with free(). Sent for every signature, so it is written
 * without jansson whenever request_id needs no escaping (every id the daemon
 * makes); the bytes are jansson's compact output either way. msg may be NULL
 * when msg_len is 0. Never fails (out-of-memory aborts).
 */
char *api_encode_sign_result(size_t headroom, size_t *len, const char *request_id,
                             const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const uint8_t *msg,
                             size_t msg_len, const uint8_t sig[crypto_sign_BYTES]);

/* Per call: a decoded 200 answer. */
struct api_sign_result {
    char request_id[WIRE_REQUEST_ID_MAX + 1];
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    uint8_t *message; /* owned; api_sign_result_cleanup */
    size_t message_len;
    uint8_t signature[crypto_sign_BYTES];
};

/*
 * Decodes a 200 answer of len bytes: a JSON object (no duplicate keys) with
 * request_id (a lowercase UUID), public_key (base64 of 32 bytes), message
 * (base64 of at most max_message bytes) and signature (base64 of 64 bytes).
 * Other fields are ignored. Returns 0 (then call api_sign_result_cleanup),
 * or WSS_ERR_PROTO with err (may be NULL) filled as wire_decode fills it;
 * on failure *out holds nothing that needs freeing.
 */
int api_decode_sign_result(const char *buf, size_t len, size_t max_message,
                           struct api_sign_result *out, struct wire_error *err);

/* Frees the message of r and zeroes r. NULL is a no-op. */
void api_sign_result_cleanup(struct api_sign_result *r);

/*
 * An error body: {"error":{"code","message"[,"request_id"]}}, request_id
 * left out when NULL or "". Laid out as api_encode_sign_result's buffer.
 * Never fails (out-of-memory aborts).
 */
char *api_encode_error(size_t headroom, size_t *len, const char *code, const char *message,
                       const char *request_id);

/* Per call: a decoded error body. */
struct api_error {
    char code[WIRE_CODE_MAX + 1];
    char message[WIRE_TEXT_MAX + 1];          /* cut to fit; "" when absent */
    char request_id[WIRE_REQUEST_ID_MAX + 1]; /* "" when absent or not a request id */
};

/*
 * Decodes an error body: an object whose "error" object has a "code" of
 * 1..WIRE_CODE_MAX visible ASCII characters; "message" (any string) and
 * "request_id" are taken when usable. Returns 0, or WSS_ERR_PROTO if the
 * text is not such a body.
 */
int api_decode_error(const char *buf, size_t len, struct api_error *out);

#endif
