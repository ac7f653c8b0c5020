/*
 * The client side of the wssign.v1 codec, and the JSON bodies of the
 * control API's POST /v1/sign: JSON text <-> plain C structs via jansson.
 * No I/O, no lws; jansson values never leave client_proto.c.
 *
 * Server -> client frames are decoded as strictly as the daemon decodes
 * client frames: JSON_REJECT_DUPLICATES, an object at the top, a known
 * "type", every required field present with the right JSON type, no fields
 * the type does not define, strict padded standard base64 with fixed decoded
 * lengths, lowercase UUID request ids.
 */
#ifndef WSSIGN_CLIENT_PROTO_H
#define WSSIGN_CLIENT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "proto.h" /* PROTO_VERSION, PROTO_REQUEST_ID_MAX, PROTO_REASON_MAX */

/* Longest session id accepted in an "introduced" frame. */
#define CLIENT_PROTO_SESSION_ID_MAX 64
/* Longest error code accepted in an "error" frame or API error body. */
#define CLIENT_PROTO_CODE_MAX 64
/* Free text (cancel reasons, error messages) is kept up to this many bytes;
 * longer text is truncated, not refused, since it is only logged. */
#define CLIENT_PROTO_TEXT_MAX 256

/* Types of frames the server sends. */
enum client_proto_type {
    CLIENT_PROTO_CHALLENGE = 1,
    CLIENT_PROTO_INTRODUCED,
    CLIENT_PROTO_SIGN_REQUEST,
    CLIENT_PROTO_CANCEL,
    CLIENT_PROTO_ERROR,
};

/* Per frame: one decoded server frame. Fields its type does not use are zero. */
struct client_proto_msg {
    enum client_proto_type type;
    /* challenge: the nonce text exactly as sent (it is signed as text) */
    char nonce_b64[CRYPTO_NONCE_B64_BYTES];
    /* introduced */
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    char session_id[CLIENT_PROTO_SESSION_ID_MAX + 1];
    /* sign_request, cancel; error when present (else "") */
    char request_id[PROTO_REQUEST_ID_MAX + 1];
    /* sign_request: message is owned by the struct (client_proto_msg_cleanup) */
    uint8_t *message;
    size_t message_len;
    int64_t expires_at; /* unix milliseconds */
    /* cancel: reason; error: code and message */
    char reason[CLIENT_PROTO_TEXT_MAX + 1];
    char code[CLIENT_PROTO_CODE_MAX + 1];
    char text[CLIENT_PROTO_TEXT_MAX + 1];
};

/*
 * Decodes one server frame of len bytes (not NUL-terminated). max_message is
 * the largest decoded sign_request message accepted. Returns 0 (then call
 * client_proto_msg_cleanup), or WSS_ERR_PROTO with a one-line reason in err;
 * on failure *out holds nothing that needs freeing.
 */
int client_proto_decode(const char *buf, size_t len, size_t max_message,
                        struct client_proto_msg *out, char *err, size_t errlen);

/* Frees what client_proto_decode put in msg and zeroes it. NULL is a no-op. */
void client_proto_msg_cleanup(struct client_proto_msg *msg);

/*
 * Encoders for client -> server frames. Each returns a malloc'd buffer whose
 * first headroom bytes are free (LWS_PRE for the transport) followed by the
 * JSON text and a NUL (not counted in *len). The caller frees it with free().
 * They never fail (out-of-memory aborts).
 */
char *client_proto_encode_introduction(size_t headroom, size_t *len,
                                       const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                                       const char *host, const uint8_t proof[crypto_sign_BYTES]);
/* The message is echoed back as the base64 of msg (the bytes that were signed). */
char *client_proto_encode_sign_response(size_t headroom, size_t *len, const char *request_id,
                                        const uint8_t *msg, size_t msg_len,
                                        const uint8_t signature[crypto_sign_BYTES]);
char *client_proto_encode_sign_reject(size_t headroom, size_t *len, const char *request_id,
                                      const char *reason);

/*
 * The body of POST /v1/sign: {"public_key","message"[,"timeout_ms"]}.
 * timeout_ms 0 leaves the field out (the daemon's default applies).
 * Returns a NUL-terminated malloc'd string (free()); *len is its length.
 */
char *client_proto_encode_sign_call(size_t *len, const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                                    const uint8_t *msg, size_t msg_len, uint32_t timeout_ms);

/* Per call: a decoded 200 answer of POST /v1/sign. */
struct client_proto_sign_result {
    char request_id[PROTO_REQUEST_ID_MAX + 1];
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
    char code[CLIENT_PROTO_CODE_MAX + 1];
    char message[CLIENT_PROTO_TEXT_MAX + 1];
    char request_id[PROTO_REQUEST_ID_MAX + 1]; /* "" when absent */
};

/* Decodes an error body. Returns 0, or WSS_ERR_PROTO if it is not one. */
int client_proto_decode_api_error(const char *buf, size_t len, struct client_proto_api_error *out);

#endif
