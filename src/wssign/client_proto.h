/*
 * The JSON bodies of the control API's POST /v1/sign: JSON text <-> plain C
 * structs via jansson. No I/O, no lws; jansson values never leave
 * client_proto.c. (The frames are wire.h's.)
 */
#ifndef WSSIGN_CLIENT_PROTO_H
#define WSSIGN_CLIENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "wire.h" /* WIRE_REQUEST_ID_MAX, WIRE_CODE_MAX, WIRE_TEXT_MAX */

/*
 * The body of POST /v1/sign: {"public_key","message"[,"timeout_ms"]}.
 * timeout_ms 0 leaves the field out (the daemon's default applies).
 * Returns a NUL-terminated malloc'd string (free()); *len is its length.
 */
char *client_proto_encode_sign_call(size_t *len, const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                                    const uint8_t *msg, size_t msg_len, uint32_t timeout_ms);

/* Per call: a decoded 200 answer of POST /v1/sign. */
struct client_proto_sign_result {
    char request_id[WIRE_REQUEST_ID_MAX + 1];
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    uint8_t *message; /* owned; client_proto_sign_result_cleanup */
    size_t message_len;
    uint8_t signature[crypto_sign_BYTES];
};

/*
 * Decodes a 200 answer: an object with request_id (string), public_key
 * (base64, 32 bytes), message (base64, at most max_message bytes) and
 * signature (base64, 64 bytes). Fields added by newer daemons are ignored.
 * Returns 0 (then call client_proto_sign_result_cleanup) or WSS_ERR_PROTO
 * with a reason in err.
 */
int client_proto_decode_sign_result(const char *buf, size_t len, size_t max_message,
                                    struct client_proto_sign_result *out, char *err,
                                    size_t errlen);
void client_proto_sign_result_cleanup(struct client_proto_sign_result *r);

/* Per call: a decoded {"error":{"code","message"[,"request_id"]}} body. */
struct client_proto_api_error {
    char code[WIRE_CODE_MAX + 1];
    char message[WIRE_TEXT_MAX + 1];
    char request_id[WIRE_REQUEST_ID_MAX + 1]; /* "" when absent */
};

/* Decodes an error body. Returns 0, or WSS_ERR_PROTO if it is not one. */
int client_proto_decode_api_error(const char *buf, size_t len, struct client_proto_api_error *out);

#endif
