/*
 * The wssign.v1 wire codec: JSON text frames <-> plain C structs, via jansson.
 * No I/O, no lws. jansson values never leave proto.c.
 *
 * Client -> server frames are decoded strictly: JSON_REJECT_DUPLICATES, an
 * object at the top, a known "type", every required field present with the
 * right type, no unknown fields, strict standard base64 with padding, and
 * fixed binary lengths checked before anything else sees the bytes.
 */
#ifndef WSSIGND_PROTO_H
#define WSSIGND_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define PROTO_VERSION "wssign.v1"
/* A request id on the wire: a UUID in text form, 36 characters. */
#define PROTO_REQUEST_ID_MAX 36
/* Longest reject reason kept (longer ones are refused as bad_field). */
#define PROTO_REASON_MAX 256
/* Longest error text produced by the decoder. */
#define PROTO_ERRMSG_MAX 128

/* Types of frames a client may send. */
enum proto_type {
    PROTO_INTRODUCTION = 1,
    PROTO_SIGN_RESPONSE,
    PROTO_SIGN_REJECT,
};

/* Per frame: one decoded client frame. Fields not used by its type are zero. */
struct proto_msg {
    enum proto_type type;
    /* introduction */
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    char host[CRYPTO_HOST_MAX + 1];
    bool has_proof;
    uint8_t proof[crypto_sign_BYTES];
    /* sign_response, sign_reject */
    char request_id[PROTO_REQUEST_ID_MAX + 1];
    /* sign_response: message is owned by the struct (free with proto_msg_cleanup) */
    uint8_t *message;
    size_t message_len;
    uint8_t signature[crypto_sign_BYTES];
    /* sign_reject */
    char reason[PROTO_REASON_MAX + 1];
};

/* Per decode failure: what the peer is told in an "error" frame. */
struct proto_error {
    const char *code; /* static snake_case: "bad_json", "unknown_type", "missing_field", "bad_field" */
    /* names the field: "field 'signature' must decode to 64 bytes" */
    char message[PROTO_ERRMSG_MAX];
    char request_id[PROTO_REQUEST_ID_MAX + 1]; /* the frame's request_id if one was readable, else "" */
};

/* True if s (len bytes) is a request id as the server issues them: a lowercase
 * 8-4-4-4-12 UUID. Nothing else can name a request. */
bool proto_is_request_id(const char *s, size_t len);

/*
 * Decodes one client frame of len bytes (not NUL-terminated) into *out.
 * max_message is the largest decoded sign_response message accepted.
 * Returns 0, or WSS_ERR_PROTO with *err filled; on failure *out holds nothing
 * that needs freeing. On success the caller calls proto_msg_cleanup(out).
 * err may be NULL when the caller does not need the details.
 *
 * Error codes, in the order they are checked:
 *   bad_json       not JSON, trailing data, duplicate keys, not an object
 *   missing_field  "type" absent (a missing type is a missing field)
 *   bad_field      "type" not a string
 *   unknown_type   "type" is not introduction, sign_response or sign_reject
 *   bad_field      a field the type does not define
 * then each field in turn:
 *   missing_field  a required field absent
 *   bad_field      wrong JSON type; base64 that is not strict padded standard
 *                  base64; wrong decoded length; message over max_message;
 *                  request_id not a lowercase 8-4-4-4-12 UUID; host empty,
 *                  over CRYPTO_HOST_MAX bytes or not all visible ASCII
 *                  (0x21..0x7e); reason over PROTO_REASON_MAX bytes
 * err->request_id is set whenever the object has a well-formed "request_id",
 * even if the frame fails for another reason. A proof, when present, has the
 * same rules as the other base64 fields; public keys are not checked for
 * validity here (see crypto_key_is_valid).
 */
int proto_decode(const char *buf, size_t len, size_t max_message, struct proto_msg *out,
                 struct proto_error *err);

/* Frees what proto_decode put in msg and zeroes it. NULL is a no-op. */
void proto_msg_cleanup(struct proto_msg *msg);

/*
 * Encoders for server -> client frames. Each returns a malloc'd buffer whose
 * first headroom bytes are left free (for the transport's framing) followed
 * by the JSON text (no NUL counted); *len receives the JSON length. The
 * caller frees the buffer with free(). They never fail (out-of-memory aborts).
 */
char *proto_encode_challenge(size_t headroom, size_t *len, const char *nonce_b64);
char *proto_encode_introduced(size_t headroom, size_t *len,
                              const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                              const char *session_id);
char *proto_encode_sign_request(size_t headroom, size_t *len, const char *request_id,
                                const uint8_t *message, size_t message_len,
                                uint64_t expires_at_ms);
/* reason: "timeout", "requester_cancelled" or "shutting_down" */
char *proto_encode_cancel(size_t headroom, size_t *len, const char *request_id, const char *reason);
/* request_id may be NULL or "" (then the field is omitted) */
char *proto_encode_error(size_t headroom, size_t *len, const char *code, const char *message,
                         const char *request_id);

#endif
