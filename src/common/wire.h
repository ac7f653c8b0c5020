/*
 * The wssign.v1 wire codec, both directions: JSON text frames <-> plain C
 * structs, via jansson (and, for the sign_response read with every
 * signature, a flat reader that leaves every other text to jansson). The daemon decodes what clients send and encodes what
 * servers send; wssign does the opposite. No I/O, no lws; jansson values
 * never leave wire.c. docs/PROTOCOL.md describes every frame.
 *
 * Frames are decoded strictly, whichever side sent them: JSON_REJECT_DUPLICATES,
 * an object at the top, a "type" the sender may send, every required field
 * present with the right type, no unknown fields, strict standard base64 with
 * padding, and fixed binary lengths checked before anything else sees the bytes.
 */
#ifndef WSSIGND_WIRE_H
#define WSSIGND_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define WIRE_VERSION "wssign.v1"
/* A request id on the wire: a UUID in text form, 36 characters. */
#define WIRE_REQUEST_ID_MAX 36
/* Longest reject reason kept (a longer one in a sign_reject is refused as
 * bad_field; a longer cancel reason is cut). */
#define WIRE_REASON_MAX 256
/* sign_request: the requester's label (UTF-8) and name, when present. */
#define WIRE_LABEL_MAX 256
#define WIRE_REQUESTER_MAX 64
/* Longest session id accepted in an "introduced" frame. */
#define WIRE_SESSION_ID_MAX 64
/* Longest error code accepted in an "error" frame or an API error body. */
#define WIRE_CODE_MAX 64
/* Longest error text kept from an "error" frame or an API error body (cut). */
#define WIRE_TEXT_MAX 256
/* Longest error text produced by the decoders. */
#define WIRE_ERRMSG_MAX 128

/* Types of frames. */
enum wire_type {
    /* client -> server */
    WIRE_INTRODUCTION = 1,
    WIRE_SIGN_RESPONSE,
    WIRE_SIGN_REJECT,
    /* server -> client */
    WIRE_CHALLENGE,
    WIRE_INTRODUCED,
    WIRE_SIGN_REQUEST,
    WIRE_CANCEL,
    WIRE_ERROR,
};

/* Who sent a frame: each side accepts only the frame types of the other. */
enum wire_from {
    WIRE_FROM_CLIENT, /* the daemon decodes: introduction, sign_response, sign_reject */
    WIRE_FROM_SERVER, /* wssign decodes: challenge, introduced, sign_request, cancel, error */
    /* The daemon decodes, with introduction.proof "none" (no challenge was sent): the same
     * frames, but an introduction is exactly "type" and "public_key"; "host" and "proof"
     * are refused (bad_field), as there is no challenge to prove. */
    WIRE_FROM_MINIMAL_CLIENT,
};

/* Per frame: one decoded frame. Fields its type does not use are zero. */
struct wire_msg {
    enum wire_type type;
    /* introduction, introduced */
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    /* introduction */
    char host[CRYPTO_HOST_MAX + 1];
    bool has_proof;
    uint8_t proof[crypto_sign_BYTES];
    /* challenge: the nonce text exactly as sent (it is signed as text) */
    char nonce_b64[CRYPTO_NONCE_B64_BYTES];
    /* introduced */
    char session_id[WIRE_SESSION_ID_MAX + 1];
    /* sign_request, sign_response, sign_reject, cancel; error: "" when absent */
    char request_id[WIRE_REQUEST_ID_MAX + 1];
    /* sign_request, sign_response: owned by the struct (wire_msg_cleanup) */
    uint8_t *message;
    size_t message_len;
    /* sign_response */
    uint8_t signature[crypto_sign_BYTES];
    /* sign_request: unix milliseconds */
    int64_t expires_at;
    /* sign_request: "" when absent */
    char label[WIRE_LABEL_MAX + 1];
    char requester[WIRE_REQUESTER_MAX + 1];
    /* sign_reject ("" when absent), cancel */
    char reason[WIRE_REASON_MAX + 1];
    /* error: its code and its message */
    char code[WIRE_CODE_MAX + 1];
    char text[WIRE_TEXT_MAX + 1];
};

/* Per decode failure: what the peer is told in an "error" frame, or what is logged. */
struct wire_error {
    /* static snake_case: "bad_json", "unknown_type", "missing_field", "bad_field" */
    const char *code;
    /* names the field: "field 'signature' must decode to 64 bytes" */
    char message[WIRE_ERRMSG_MAX];
    /* the frame's request_id if one was readable, else "" */
    char request_id[WIRE_REQUEST_ID_MAX + 1];
};

/* True if s (len bytes) is a request id as the server issues them: a lowercase
 * 8-4-4-4-12 UUID. Nothing else can name a request. */
bool wire_is_request_id(const char *s, size_t len);

/*
 * Decodes one frame of len bytes (not NUL-terminated) sent by from into *out.
 * max_message is the largest decoded message accepted (sign_response,
 * sign_request). Returns 0 (then call wire_msg_cleanup(out)), or
 * WSS_ERR_PROTO with *err filled; on failure *out holds nothing that needs
 * freeing. err may be NULL.
 *
 * Error codes, in the order they are checked:
 *   bad_json       not JSON, trailing data, duplicate keys, not an object
 *   missing_field  "type" absent (a missing type is a missing field)
 *   bad_field      "type" not a string
 *   unknown_type   "type" is not one that from sends
 *   bad_field      a field the type does not define
 * then each field in turn:
 *   missing_field  a required field absent
 *   bad_field      wrong JSON type; base64 that is not strict padded standard
 *                  base64; wrong decoded length; message over max_message;
 *                  request_id not a lowercase 8-4-4-4-12 UUID; host empty,
 *                  over CRYPTO_HOST_MAX bytes or not all visible ASCII
 *                  (0x21..0x7e); reason over WIRE_REASON_MAX bytes (a
 *                  sign_reject's); session_id or code empty, too long or not
 *                  visible ASCII; expires_at not an integer >= 0; a challenge
 *                  for a protocol other than WIRE_VERSION
 * err->request_id is set whenever the object has a well-formed "request_id",
 * even if the frame fails for another reason. A proof, when present, has the
 * same rules as the other base64 fields; public keys are not checked for
 * validity here (see crypto_key_is_valid). The free text of a cancel reason
 * and an error's message is cut at WIRE_REASON_MAX / WIRE_TEXT_MAX bytes.
 */
int wire_decode(enum wire_from from, const char *buf, size_t len, size_t max_message,
                struct wire_msg *out, struct wire_error *err);

/* wire_decode with the frame always read by jansson: the same outcome for
 * every input (the reference the tests compare the fast reading with). */
int wire_decode_json(enum wire_from from, const char *buf, size_t len, size_t max_message,
                     struct wire_msg *out, struct wire_error *err);

/* Frees what wire_decode put in msg and zeroes it. NULL is a no-op. */
void wire_msg_cleanup(struct wire_msg *msg);

/*
 * Encoders. Each returns a malloc'd buffer whose first headroom bytes are
 * zero (left free for the transport's framing), followed by the JSON text and
 * a NUL that *len (may be NULL) does not count. The caller frees it with
 * free(). They never fail (out-of-memory aborts). Text that is not valid
 * UTF-8 has its non-ASCII bytes replaced by '?'.
 */

/* server -> client */
char *wire_encode_challenge(size_t headroom, size_t *len, const char *nonce_b64);
char *wire_encode_introduced(size_t headroom, size_t *len,
                             const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                             const char *session_id);
/* Sent for every signature, so written without jansson (the same bytes). A
 * request_id that is not one (wire_is_request_id) is sent as ""; expires_at_ms
 * is clamped to INT64_MAX. message may be NULL when message_len is 0. */
char *wire_encode_sign_request(size_t headroom, size_t *len, const char *request_id,
                               const uint8_t *message, size_t message_len, uint64_t expires_at_ms);
/* The same with the requester's label and name (either may be NULL or "":
 * the field is left out); written without jansson when neither needs escaping. */
char *wire_encode_labelled_sign_request(size_t headroom, size_t *len, const char *request_id,
                                        const uint8_t *message, size_t message_len,
                                        uint64_t expires_at_ms, const char *label,
                                        const char *requester);
/* reason: "timeout", "requester_cancelled" or "shutting_down" */
char *wire_encode_cancel(size_t headroom, size_t *len, const char *request_id, const char *reason);
/* request_id may be NULL or "" (then the field is omitted) */
char *wire_encode_error(size_t headroom, size_t *len, const char *code, const char *message,
                        const char *request_id);

/* client -> server */
char *wire_encode_introduction(size_t headroom, size_t *len,
                               const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                               const char *host, const uint8_t proof[crypto_sign_BYTES]);
/* The message is echoed back as the base64 of message (the bytes that were signed). */
char *wire_encode_sign_response(size_t headroom, size_t *len, const char *request_id,
                                const uint8_t *message, size_t message_len,
                                const uint8_t signature[crypto_sign_BYTES]);
char *wire_encode_sign_reject(size_t headroom, size_t *len, const char *request_id,
                              const char *reason);

#endif
