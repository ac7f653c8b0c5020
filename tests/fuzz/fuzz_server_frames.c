/*
 * libFuzzer target for wssign's decoder of the frames a server sends
 * (wire_decode from WIRE_FROM_SERVER): whatever answers at the agent's URL
 * reaches it. Each input is one text frame. Besides ASan/UBSan, it checks the
 * header's contract: what a decoded frame may hold, what a refused frame
 * leaves behind, that accepted base64 was the one strict encoding of its
 * bytes, that the server encoders turn the decoded values back into a frame
 * that decodes to the same struct, and that max_message is an inclusive bound.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <wssignd/errors.h>

#include "crypto.h"
#include "fuzz_wire.h"
#include "wire.h"

/* wssign's decoder: frames a server sends. */
static int decode(const char *buf, size_t len, size_t max_message, struct wire_msg *out,
                  struct wire_error *err)
{
    return wire_decode(WIRE_FROM_SERVER, buf, len, max_message, out, err);
}

/* min..max characters, each visible ASCII (0x21..0x7e). */
static bool visible(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);

    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* A decoded frame holds only what wire.h allows. */
static void check_decoded(const struct wire_msg *m)
{
    /* The fields of client frames stay empty. */
    CHECK(m->host[0] == '\0' && !m->has_proof && all_zero(m->proof, sizeof m->proof) &&
          all_zero(m->signature, sizeof m->signature));
    switch (m->type) {
    case WIRE_CHALLENGE:
        CHECK(strlen(m->nonce_b64) == CRYPTO_NONCE_B64_BYTES - 1);
        CHECK(m->request_id[0] == '\0' && m->message == NULL && m->session_id[0] == '\0');
        break;
    case WIRE_INTRODUCED:
        CHECK(visible(m->session_id, 1, WIRE_SESSION_ID_MAX));
        CHECK(m->request_id[0] == '\0' && m->message == NULL && m->nonce_b64[0] == '\0');
        break;
    case WIRE_SIGN_REQUEST:
        CHECK(is_uuid(m->request_id));
        CHECK(m->message != NULL && m->message_len <= MAX_MESSAGE);
        CHECK(m->expires_at >= 0);
        break;
    case WIRE_CANCEL:
        CHECK(is_uuid(m->request_id));
        CHECK(strnlen(m->reason, sizeof m->reason) <= WIRE_REASON_MAX);
        CHECK(m->message == NULL && m->code[0] == '\0');
        break;
    case WIRE_ERROR:
        CHECK(visible(m->code, 1, WIRE_CODE_MAX));
        CHECK(strnlen(m->text, sizeof m->text) <= WIRE_TEXT_MAX);
        CHECK(m->request_id[0] == '\0' || is_uuid(m->request_id));
        CHECK(m->message == NULL && m->reason[0] == '\0');
        break;
    default: CHECK(!"unexpected type");
    }
}

/* Accepted base64 is the one strict encoding of what was decoded. */
static void check_input_canonical(const uint8_t *data, size_t size, const struct wire_msg *m)
{
    json_t *obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    uint8_t nonce[CRYPTO_NONCE_BYTES];
    size_t n;

    CHECK(obj != NULL);
    switch (m->type) {
    case WIRE_CHALLENGE:
        CHECK(strcmp(str_field(obj, "nonce"), m->nonce_b64) == 0);
        CHECK(crypto_b64_decode(nonce, sizeof nonce, &n, m->nonce_b64, strlen(m->nonce_b64)) == 0 &&
              n == sizeof nonce);
        check_canonical(obj, "nonce", nonce, sizeof nonce);
        break;
    case WIRE_INTRODUCED:
        check_canonical(obj, "public_key", m->public_key, sizeof m->public_key);
        break;
    case WIRE_SIGN_REQUEST: check_canonical(obj, "message", m->message, m->message_len); break;
    default: break;
    }
    json_decref(obj);
}

/* The server's own encoder for the decoded values. */
static char *reencode(const struct wire_msg *m, size_t *len)
{
    switch (m->type) {
    case WIRE_CHALLENGE: return wire_encode_challenge(HEADROOM, len, m->nonce_b64);
    case WIRE_INTRODUCED:
        return wire_encode_introduced(HEADROOM, len, m->public_key, m->session_id);
    case WIRE_SIGN_REQUEST:
        return wire_encode_sign_request(HEADROOM, len, m->request_id, m->message, m->message_len,
                                        (uint64_t)m->expires_at);
    case WIRE_CANCEL: return wire_encode_cancel(HEADROOM, len, m->request_id, m->reason);
    case WIRE_ERROR: return wire_encode_error(HEADROOM, len, m->code, m->text, m->request_id);
    default: CHECK(!"unexpected type"); return NULL;
    }
}

/*
 * Same values. Free text at its limit may have been cut inside a UTF-8
 * sequence (the encoder then writes '?' for its non-ASCII bytes): it is
 * compared only when shorter.
 */
static bool same_msg(const struct wire_msg *a, const struct wire_msg *b)
{
    bool reason_cut = strlen(a->reason) == WIRE_REASON_MAX;
    bool text_cut = strlen(a->text) == WIRE_TEXT_MAX;

    return a->type == b->type && !strcmp(a->nonce_b64, b->nonce_b64) &&
           !memcmp(a->public_key, b->public_key, sizeof a->public_key) &&
           !strcmp(a->session_id, b->session_id) && !strcmp(a->request_id, b->request_id) &&
           a->message_len == b->message_len &&
           (a->message_len == 0 || !memcmp(a->message, b->message, a->message_len)) &&
           a->expires_at == b->expires_at && (reason_cut || !strcmp(a->reason, b->reason)) &&
           !strcmp(a->code, b->code) && (text_cut || !strcmp(a->text, b->text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_msg m;
    struct wire_error e;
    size_t len;
    char *buf;
    int rc;

    rc = decode((const char *)data, size, MAX_MESSAGE, &m, &e);
    if (rc != 0) {
        CHECK(rc == WSS_ERR_PROTO);
        check_refused(decode, data, size, &m, &e);
        return 0;
    }
    CHECK(e.code == NULL);
    /* Decoding is a pure function of its input: err == NULL must not change it. */
    check_decodes_to(decode, same_msg, (const char *)data, size, &m);
    check_decoded(&m);
    check_input_canonical(data, size, &m);

    /* The server's encoder gives a frame that decodes to the same values. */
    buf = reencode(&m, &len);
    CHECK(all_zero(buf, HEADROOM) && buf[HEADROOM + len] == '\0');
    check_decodes_to(decode, same_msg, buf + HEADROOM, len, &m);
    free(buf);

    if (m.type == WIRE_SIGN_REQUEST)
        check_message_bound(decode, data, size, &m);
    wire_msg_cleanup(&m);
    CHECK(all_zero(&m, sizeof m));
    return 0;
}
