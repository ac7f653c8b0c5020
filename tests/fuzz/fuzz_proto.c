/*
 * libFuzzer target for the daemon's decoder of the frames a client sends
 * (wire_decode from WIRE_FROM_CLIENT). Each input is one text frame. Besides
 * ASan/UBSan, it checks the header's contract: what a decoded frame may hold,
 * what a refused frame leaves behind, that accepted base64 was the one strict
 * encoding of its bytes, that a re-encoded frame decodes to the same struct,
 * and that the server encoders carry decoded values through unchanged. The
 * same input is decoded as from a minimal client too (introduction.proof
 * "none"), which must differ only in introductions: type and public_key.
 * Both decodings are compared with jansson's alone (wire_decode_json): the
 * flat reader (jsonflat.c) that reads sign_response frames must agree.
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

/* A decoded frame holds only what wire.h allows. */
static void check_decoded(const struct wire_msg *m, size_t max_message)
{
    size_t hostlen;

    switch (m->type) {
    case WIRE_INTRODUCTION:
        hostlen = strnlen(m->host, sizeof(m->host));
        CHECK(hostlen >= 1 && hostlen <= CRYPTO_HOST_MAX);
        for (size_t i = 0; i < hostlen; i++)
            CHECK((unsigned char)m->host[i] > 0x20 && (unsigned char)m->host[i] < 0x7f);
        CHECK(m->has_proof || all_zero(m->proof, sizeof(m->proof)));
        CHECK(m->request_id[0] == '\0' && m->message == NULL && m->reason[0] == '\0');
        break;
    case WIRE_SIGN_RESPONSE:
        CHECK(is_uuid(m->request_id));
        CHECK(m->message != NULL && m->message_len <= max_message);
        CHECK(m->host[0] == '\0' && !m->has_proof && m->reason[0] == '\0');
        break;
    case WIRE_SIGN_REJECT:
        CHECK(is_uuid(m->request_id));
        CHECK(strnlen(m->reason, sizeof(m->reason)) <= WIRE_REASON_MAX);
        CHECK(m->message == NULL && m->host[0] == '\0' && !m->has_proof);
        break;
    default: CHECK(!"unexpected type");
    }
}

/* Builds a client frame from a decoded struct, in canonical form. */
static char *reencode(const struct wire_msg *m, size_t *len)
{
    json_t *obj = json_object();
    char *text;

    CHECK(obj != NULL);
    switch (m->type) {
    case WIRE_INTRODUCTION:
        json_object_set_new(obj, "type", json_string("introduction"));
        json_object_set_new(obj, "public_key", b64_value(m->public_key, sizeof(m->public_key)));
        json_object_set_new(obj, "host", json_string(m->host));
        if (m->has_proof)
            json_object_set_new(obj, "proof", b64_value(m->proof, sizeof(m->proof)));
        break;
    case WIRE_SIGN_RESPONSE:
        json_object_set_new(obj, "type", json_string("sign_response"));
        json_object_set_new(obj, "request_id", json_string(m->request_id));
        json_object_set_new(obj, "message", b64_value(m->message, m->message_len));
        json_object_set_new(obj, "signature", b64_value(m->signature, sizeof(m->signature)));
        break;
    case WIRE_SIGN_REJECT:
        json_object_set_new(obj, "type", json_string("sign_reject"));
        json_object_set_new(obj, "request_id", json_string(m->request_id));
        /* An empty reason and an absent one decode the same. */
        if (m->reason[0])
            json_object_set_new(obj, "reason", json_string(m->reason));
        break;
    default: CHECK(!"unexpected type");
    }
    text = json_dumps(obj, JSON_COMPACT);
    CHECK(text != NULL);
    json_decref(obj);
    *len = strlen(text);
    return text;
}

static bool same_msg(const struct wire_msg *a, const struct wire_msg *b)
{
    return a->type == b->type && !memcmp(a->public_key, b->public_key, sizeof(a->public_key)) &&
           !strcmp(a->host, b->host) && a->has_proof == b->has_proof &&
           !memcmp(a->proof, b->proof, sizeof(a->proof)) && !strcmp(a->request_id, b->request_id) &&
           a->message_len == b->message_len &&
           (a->message_len == 0 || !memcmp(a->message, b->message, a->message_len)) &&
           !memcmp(a->signature, b->signature, sizeof(a->signature)) &&
           !strcmp(a->reason, b->reason);
}

/* The server encoders, fed with decoded values, must carry them through unchanged. */
static void check_encoders(const struct wire_msg *m)
{
    json_t *obj;
    uint8_t *bytes;
    size_t len, n;
    char *buf;

    switch (m->type) {
    case WIRE_INTRODUCTION:
        buf = wire_encode_introduced(HEADROOM, &len, m->public_key, m->host);
        obj = parse_encoded(buf, len, "introduced");
        bytes = b64_field(obj, "public_key", &n);
        CHECK(n == sizeof(m->public_key) && !memcmp(bytes, m->public_key, n));
        CHECK(strcmp(str_field(obj, "session_id"), m->host) == 0);
        free(bytes);
        json_decref(obj);
        buf = wire_encode_challenge(HEADROOM, &len, m->host);
        obj = parse_encoded(buf, len, "challenge");
        CHECK(strcmp(str_field(obj, "nonce"), m->host) == 0);
        CHECK(strcmp(str_field(obj, "protocol"), WIRE_VERSION) == 0);
        json_decref(obj);
        break;
    case WIRE_SIGN_RESPONSE:
        buf = wire_encode_sign_request(HEADROOM, &len, m->request_id, m->message, m->message_len,
                                       m->message_len ? UINT64_MAX : 0);
        obj = parse_encoded(buf, len, "sign_request");
        CHECK(strcmp(str_field(obj, "request_id"), m->request_id) == 0);
        bytes = b64_field(obj, "message", &n);
        CHECK(n == m->message_len && (n == 0 || !memcmp(bytes, m->message, n)));
        CHECK(json_is_integer(json_object_get(obj, "expires_at")));
        CHECK(json_integer_value(json_object_get(obj, "expires_at")) ==
              (m->message_len ? INT64_MAX : 0));
        free(bytes);
        json_decref(obj);
        break;
    case WIRE_SIGN_REJECT:
        /* reason is valid UTF-8 (jansson checked it), so it must come back byte for byte. */
        buf = wire_encode_cancel(HEADROOM, &len, m->request_id, m->reason);
        obj = parse_encoded(buf, len, "cancel");
        CHECK(strcmp(str_field(obj, "request_id"), m->request_id) == 0);
        CHECK(strcmp(str_field(obj, "reason"), m->reason) == 0);
        json_decref(obj);
        break;
    default: CHECK(!"unexpected type");
    }
}

/* The daemon's decoder: frames a client sends. */
static int decode(const char *buf, size_t len, size_t max_message, struct wire_msg *out,
                  struct wire_error *err)
{
    return wire_decode(WIRE_FROM_CLIENT, buf, len, max_message, out, err);
}

static int decode_minimal(const char *buf, size_t len, size_t max_message, struct wire_msg *out,
                          struct wire_error *err)
{
    return wire_decode(WIRE_FROM_MINIMAL_CLIENT, buf, len, max_message, out, err);
}

/*
 * The minimal client's decoder against the client's: the same outcome for
 * every frame but an introduction, which it takes only as exactly "type" and
 * "public_key" (and which the client's decoder then refuses: no host).
 */
static void check_minimal_mode(const uint8_t *data, size_t size)
{
    struct wire_msg a, b;
    struct wire_error ea, eb;
    int ra = decode_minimal((const char *)data, size, MAX_MESSAGE, &a, &ea);
    int rb = decode((const char *)data, size, MAX_MESSAGE, &b, &eb);
    json_t *obj;

    if (ra == 0 && a.type == WIRE_INTRODUCTION) {
        CHECK(a.host[0] == '\0' && !a.has_proof && all_zero(a.proof, sizeof(a.proof)));
        obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
        CHECK(obj != NULL && json_object_size(obj) == 2);
        check_canonical(obj, "public_key", a.public_key, sizeof(a.public_key));
        json_decref(obj);
        CHECK(rb == WSS_ERR_PROTO && !strcmp(eb.code, "missing_field"));
        check_decodes_to(decode_minimal, same_msg, (const char *)data, size, &a);
    } else if (rb == 0 && b.type == WIRE_INTRODUCTION) {
        /* A full introduction names a host: never one of a minimal client. */
        CHECK(ra == WSS_ERR_PROTO && !strcmp(ea.code, "bad_field"));
    } else if (ra == 0 || rb == 0) {
        CHECK(ra == 0 && rb == 0 && same_msg(&a, &b));
    } else {
        CHECK(ra == WSS_ERR_PROTO && rb == WSS_ERR_PROTO);
        check_refused(decode_minimal, data, size, &a, &ea);
    }
    wire_msg_cleanup(&a);
    wire_msg_cleanup(&b);
}

/*
 * wire_decode against wire_decode_json (jansson alone) from both kinds of
 * client: the same code, message, echoed id and values, so the flat reading
 * of sign_response frames never decides otherwise.
 */
static void check_both_ways(const uint8_t *data, size_t size)
{
    static const enum wire_from froms[] = {WIRE_FROM_CLIENT, WIRE_FROM_MINIMAL_CLIENT};

    for (size_t i = 0; i < 2; i++) {
        struct wire_msg a, b;
        struct wire_error ea, eb;
        int ra = wire_decode(froms[i], (const char *)data, size, MAX_MESSAGE, &a, &ea);
        int rb = wire_decode_json(froms[i], (const char *)data, size, MAX_MESSAGE, &b, &eb);

        CHECK(ra == rb);
        CHECK((ea.code == NULL) == (eb.code == NULL) && (!ea.code || !strcmp(ea.code, eb.code)));
        CHECK(!strcmp(ea.message, eb.message) && !strcmp(ea.request_id, eb.request_id));
        CHECK(ra != 0 || same_msg(&a, &b));
        wire_msg_cleanup(&a);
        wire_msg_cleanup(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_msg m;
    struct wire_error e;
    size_t len;
    char *text, *buf;
    json_t *obj;
    int rc;

    check_both_ways(data, size);
    check_minimal_mode(data, size);
    rc = decode((const char *)data, size, MAX_MESSAGE, &m, &e);
    if (rc != 0) {
        CHECK(rc == WSS_ERR_PROTO);
        check_refused(decode, data, size, &m, &e);
        /* The error frame sent back for it must carry the same text and id. */
        buf = wire_encode_error(HEADROOM, &len, e.code, e.message, e.request_id);
        obj = parse_encoded(buf, len, "error");
        CHECK(strcmp(str_field(obj, "code"), e.code) == 0);
        CHECK(strcmp(str_field(obj, "message"), e.message) == 0);
        if (e.request_id[0])
            CHECK(strcmp(str_field(obj, "request_id"), e.request_id) == 0);
        else
            CHECK(json_object_get(obj, "request_id") == NULL);
        json_decref(obj);
        wire_msg_cleanup(&m);
        return 0;
    }

    CHECK(e.code == NULL);
    /* Decoding is a pure function of its input: err == NULL must not change it. */
    check_decodes_to(decode, same_msg, (const char *)data, size, &m);
    check_decoded(&m, MAX_MESSAGE);

    obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    CHECK(obj != NULL);
    switch (m.type) {
    case WIRE_INTRODUCTION:
        check_canonical(obj, "public_key", m.public_key, sizeof(m.public_key));
        if (m.has_proof)
            check_canonical(obj, "proof", m.proof, sizeof(m.proof));
        break;
    case WIRE_SIGN_RESPONSE:
        check_canonical(obj, "message", m.message, m.message_len);
        check_canonical(obj, "signature", m.signature, sizeof(m.signature));
        break;
    default: break;
    }
    json_decref(obj);

    /* The canonical re-encoding decodes to the same struct. */
    text = reencode(&m, &len);
    check_decodes_to(decode, same_msg, text, len, &m);
    free(text);

    if (m.type == WIRE_SIGN_RESPONSE)
        check_message_bound(decode, data, size, &m);

    check_encoders(&m);
    wire_msg_cleanup(&m);
    CHECK(all_zero(&m, sizeof(m)));
    return 0;
}
