/*
 * The wssign.v1 codec: frames are parsed with jansson and copied into struct
 * wire_msg, except a sign_response as signers write it, read by the flat
 * reader (jsonflat.h); frames are built as jansson objects and dumped into a
 * buffer with transport headroom, except sign_request, written directly
 * (codec.h). No jansson value outlives a call here. Owns no state; no I/O.
 */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "codec.h"
#include "jsonflat.h"
#include "util.h"

/* Longest field or type name quoted back in an error message. */
#define NAME_QUOTE_MAX 32

/* Per frame type: who sends it and which fields it may carry. */
struct frame_spec {
    const char *type;
    enum wire_type id;
    enum wire_from from;
    const char *const *fields; /* NULL-terminated, "type" included */
};

static const char *const intro_fields[] = {"type", "public_key", "host", "proof", NULL};
static const char *const minimal_intro_fields[] = {"type", "public_key", NULL};
static const char *const response_fields[] = {"type", "request_id", "message", "signature", NULL};
static const char *const reject_fields[] = {"type", "request_id", "reason", NULL};
static const char *const challenge_fields[] = {"type", "nonce", "protocol", NULL};
static const char *const introduced_fields[] = {"type", "public_key", "session_id", NULL};
static const char *const request_fields[] = {"type",  "request_id", "message", "expires_at",
                                             "label", "requester",  NULL};
static const char *const cancel_fields[] = {"type", "request_id", "reason", NULL};
static const char *const error_fields[] = {"type", "code", "message", "request_id", NULL};

static const struct frame_spec specs[] = {
    {"introduction", WIRE_INTRODUCTION, WIRE_FROM_CLIENT, intro_fields},
    {"introduction", WIRE_INTRODUCTION, WIRE_FROM_MINIMAL_CLIENT, minimal_intro_fields},
    {"sign_response", WIRE_SIGN_RESPONSE, WIRE_FROM_CLIENT, response_fields},
    {"sign_reject", WIRE_SIGN_REJECT, WIRE_FROM_CLIENT, reject_fields},
    {"challenge", WIRE_CHALLENGE, WIRE_FROM_SERVER, challenge_fields},
    {"introduced", WIRE_INTRODUCED, WIRE_FROM_SERVER, introduced_fields},
    {"sign_request", WIRE_SIGN_REQUEST, WIRE_FROM_SERVER, request_fields},
    {"cancel", WIRE_CANCEL, WIRE_FROM_SERVER, cancel_fields},
    {"error", WIRE_ERROR, WIRE_FROM_SERVER, error_fields},
};

bool wire_is_request_id(const char *s, size_t len)
{
    size_t i;

    if (!s || len != WIRE_REQUEST_ID_MAX)
        return false;
    for (i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* Names are peer-controlled: quote them back only when short and plain. */
static bool is_plain_name(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        if (i >= NAME_QUOTE_MAX)
            return false;
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    }
    return i > 0;
}

/* ---- client -> server frames ---- */

/*
 * Hosts are compared byte for byte with the configured server names and end
 * up inside the signed transcript, so only visible ASCII is allowed: no
 * spaces, no control characters (the transcript separator among them), no
 * non-ASCII bytes (internationalised names travel as A-labels).
 */
static int decode_introduction(json_t *obj, struct wire_msg *out, struct wire_error *err)
{
    int rc;

    if ((rc = codec_get_fixed_b64(obj, "public_key", true, out->public_key, sizeof out->public_key,
                                  NULL, err)) != 0 ||
        (rc = codec_get_token(obj, "host", CRYPTO_HOST_MAX, out->host, err)) != 0)
        return rc;
    /* Optional here; the daemon decides whether a proof is required. */
    return codec_get_fixed_b64(obj, "proof", false, out->proof, sizeof out->proof, &out->has_proof,
                               err);
}

/* The minimal protocol's introduction: the key alone (check_fields has refused the rest). */
static int decode_minimal_introduction(json_t *obj, struct wire_msg *out, struct wire_error *err)
{
    return codec_get_fixed_b64(obj, "public_key", true, out->public_key, sizeof out->public_key,
                               NULL, err);
}

static int decode_sign_response(json_t *obj, size_t max_message, struct wire_msg *out,
                                struct wire_error *err)
{
    int rc;

    if ((rc = codec_get_request_id(obj, true, out->request_id, err)) != 0 ||
        (rc = codec_get_var_b64(obj, "message", max_message, &out->message, &out->message_len,
                                err)) != 0)
        return rc;
    return codec_get_fixed_b64(obj, "signature", true, out->signature, sizeof out->signature, NULL,
                               err);
}

static int decode_sign_reject(json_t *obj, struct wire_msg *out, struct wire_error *err)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = codec_get_request_id(obj, true, out->request_id, err)) != 0 ||
        (rc = codec_get_string(obj, "reason", false, &s, &len, err)) != 0)
        return rc;
    if (!s)
        return 0; /* absent: reason stays "" */
    if (len > WIRE_REASON_MAX)
        return codec_fail(err, "bad_field", "field 'reason' must be at most %d bytes",
                          WIRE_REASON_MAX);
    /* jansson has already refused invalid UTF-8 and \u0000. */
    memcpy(out->reason, s, len);
    out->reason[len] = '\0';
    return 0;
}

/* ---- server -> client frames ---- */

static int decode_challenge(json_t *obj, struct wire_msg *out, struct wire_error *err)
{
    uint8_t nonce[CRYPTO_NONCE_BYTES];
    const char *s;
    size_t len;
    int rc;

    if ((rc = codec_get_fixed_b64(obj, "nonce", true, nonce, sizeof nonce, NULL, err)) != 0)
        return rc;
    /* Valid base64 of 32 bytes is exactly 44 characters: it fits. */
    codec_get_string(obj, "nonce", true, &s, &len, err);
    memcpy(out->nonce_b64, s, len + 1);
    if ((rc = codec_get_string(obj, "protocol", true, &s, &len, err)) != 0)
        return rc;
    if (strcmp(s, WIRE_VERSION) != 0)
        return codec_fail(err, "bad_field", "unsupported protocol (this client speaks %s)",
                          WIRE_VERSION);
    return 0;
}

static int decode_introduced(json_t *obj, struct wire_msg *out, struct wire_error *err)
{
    int rc;

    if ((rc = codec_get_fixed_b64(obj, "public_key", true, out->public_key, sizeof out->public_key,
                                  NULL, err)) != 0)
        return rc;
    return codec_get_token(obj, "session_id", WIRE_SESSION_ID_MAX, out->session_id, err);
}

static int decode_sign_request(json_t *obj, size_t max_message, struct wire_msg *out,
                               struct wire_error *err)
{
    json_t *v;
    int rc;

    if ((rc = codec_get_request_id(obj, true, out->request_id, err)) != 0)
        return rc;
    v = json_object_get(obj, "expires_at");
    if (!v)
        return codec_fail(err, "missing_field", "field 'expires_at' is missing");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return codec_fail(err, "bad_field", "field 'expires_at' must be a non-negative integer");
    out->expires_at = json_integer_value(v);
    /* Optional: who asks and why, for the approval. */
    if ((v = json_object_get(obj, "label")) != NULL) {
        if (!json_is_string(v) || !util_label_valid(json_string_value(v), json_string_length(v)) ||
            strlen(json_string_value(v)) != json_string_length(v))
            return codec_fail(err, "bad_field",
                              "field 'label' must be at most 256 bytes of "
                              "UTF-8 without control characters");
        memcpy(out->label, json_string_value(v), json_string_length(v) + 1);
    }
    if (json_object_get(obj, "requester") &&
        (rc = codec_get_token(obj, "requester", WIRE_REQUESTER_MAX, out->requester, err)) != 0)
        return rc;
    return codec_get_var_b64(obj, "message", max_message, &out->message, &out->message_len, err);
}

static int decode_cancel(json_t *obj, struct wire_msg *out, struct wire_error *err)
{
    int rc;

    if ((rc = codec_get_request_id(obj, true, out->request_id, err)) != 0)
        return rc;
    return codec_get_text(obj, "reason", out->reason, sizeof out->reason, err);
}

static int decode_error(json_t *obj, struct wire_msg *out, struct wire_error *err)
{
    int rc;

    if ((rc = codec_get_token(obj, "code", WIRE_CODE_MAX, out->code, err)) != 0 ||
        (rc = codec_get_text(obj, "message", out->text, sizeof out->text, err)) != 0)
        return rc;
    return codec_get_request_id(obj, false, out->request_id, err);
}

/* ---- decoding ---- */

static const struct frame_spec *find_spec(enum wire_from from, const char *type)
{
    size_t i;

    for (i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (specs[i].from == from && strcmp(type, specs[i].type) == 0)
            return &specs[i];
    /* A minimal client differs from a client in its introduction only. */
    if (from == WIRE_FROM_MINIMAL_CLIENT)
        return find_spec(WIRE_FROM_CLIENT, type);
    return NULL;
}

static int check_fields(json_t *obj, const struct frame_spec *spec, struct wire_error *err)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach (obj, key, v) {
        for (i = 0; spec->fields[i]; i++)
            if (strcmp(key, spec->fields[i]) == 0)
                break;
        if (spec->fields[i])
            continue;
        if (spec->from == WIRE_FROM_MINIMAL_CLIENT &&
            (strcmp(key, "host") == 0 || strcmp(key, "proof") == 0))
            return codec_fail(err, "bad_field",
                              "field '%s' is not accepted: this server sends no challenge, so "
                              "an introduction is type and public_key only",
                              key);
        if (is_plain_name(key))
            return codec_fail(err, "bad_field", "unknown field '%s' in %s", key, spec->type);
        return codec_fail(err, "bad_field", "unknown field in %s", spec->type);
    }
    return 0;
}

static int decode_fields(json_t *obj, const struct frame_spec *spec, size_t max_message,
                         struct wire_msg *out, struct wire_error *err)
{
    out->type = spec->id;
    switch (spec->id) {
    case WIRE_INTRODUCTION:
        if (spec->from == WIRE_FROM_MINIMAL_CLIENT)
            return decode_minimal_introduction(obj, out, err);
        return decode_introduction(obj, out, err);
    case WIRE_SIGN_RESPONSE: return decode_sign_response(obj, max_message, out, err);
    case WIRE_SIGN_REJECT: return decode_sign_reject(obj, out, err);
    case WIRE_CHALLENGE: return decode_challenge(obj, out, err);
    case WIRE_INTRODUCED: return decode_introduced(obj, out, err);
    case WIRE_SIGN_REQUEST: return decode_sign_request(obj, max_message, out, err);
    case WIRE_CANCEL: return decode_cancel(obj, out, err);
    case WIRE_ERROR: return decode_error(obj, out, err);
    }
    return codec_fail(err, "unknown_type", "unknown frame type");
}

/*
 * The answer every signature brings back, read without jansson: when the
 * flat reader is sure of the text and the frame is a good sign_response of
 * exactly its four fields, out and err are filled as decode_sign_response
 * and wire_decode_json fill them (the same checks, from codec.c). Anything
 * else returns false with out zeroed, and jansson's reading decides.
 */
static bool decode_fast(enum wire_from from, const char *buf, size_t len, size_t max_message,
                        struct wire_msg *out, struct wire_error *err)
{
    const struct jsonflat_member *id, *msg, *sig;
    struct jsonflat obj;
    bool ok;

    if (from == WIRE_FROM_SERVER || !jsonflat_read(&obj, buf, len, 0))
        return false;
    id = jsonflat_get(&obj, "request_id");
    msg = jsonflat_get(&obj, "message");
    sig = jsonflat_get(&obj, "signature");
    /* Four distinct members, these four: no unknown field. */
    ok = obj.n == 4 && jsonflat_is_text(jsonflat_get(&obj, "type"), "sign_response") && id &&
         id->kind == JSONFLAT_STRING && wire_is_request_id(id->str, id->len) && msg &&
         msg->kind == JSONFLAT_STRING && sig && sig->kind == JSONFLAT_STRING &&
         codec_check_var_b64("message", msg->str, msg->len, max_message, &out->message,
                             &out->message_len, NULL) == 0 &&
         codec_check_fixed_b64("signature", sig->str, sig->len, out->signature,
                               sizeof out->signature, NULL) == 0;
    if (ok) {
        out->type = WIRE_SIGN_RESPONSE;
        /* Both were zeroed: the ids end with a NUL. */
        memcpy(out->request_id, id->str, WIRE_REQUEST_ID_MAX);
        memcpy(err->request_id, id->str, WIRE_REQUEST_ID_MAX);
    } else {
        wire_msg_cleanup(out);
    }
    jsonflat_cleanup(&obj);
    return ok;
}

int wire_decode(enum wire_from from, const char *buf, size_t len, size_t max_message,
                struct wire_msg *out, struct wire_error *err)
{
    struct wire_error scratch;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);
    if (decode_fast(from, buf, len, max_message, out, err))
        return 0;
    return wire_decode_json(from, buf, len, max_message, out, err);
}

int wire_decode_json(enum wire_from from, const char *buf, size_t len, size_t max_message,
                     struct wire_msg *out, struct wire_error *err)
{
    struct wire_error scratch;
    const struct frame_spec *spec;
    json_t *obj, *v;
    const char *type;
    int rc;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);

    if (!(obj = codec_load_object(buf, len, "frame", err)))
        return WSS_ERR_PROTO;

    /* Echo the id in any error frame, whatever else is wrong, when it is one
     * the server could have issued. */
    v = json_object_get(obj, "request_id");
    if (json_is_string(v) && wire_is_request_id(json_string_value(v), json_string_length(v)))
        memcpy(err->request_id, json_string_value(v), WIRE_REQUEST_ID_MAX + 1);

    v = json_object_get(obj, "type");
    if (!v) {
        rc = codec_fail(err, "missing_field", "field 'type' is missing");
        goto out;
    }
    if (!json_is_string(v)) {
        rc = codec_fail(err, "bad_field", "field 'type' must be a string");
        goto out;
    }
    type = json_string_value(v);
    if (!(spec = find_spec(from, type))) {
        if (is_plain_name(type))
            rc = codec_fail(err, "unknown_type", "unknown frame type '%s'", type);
        else
            rc = codec_fail(err, "unknown_type", "unknown frame type");
        goto out;
    }
    if ((rc = check_fields(obj, spec, err)) == 0)
        rc = decode_fields(obj, spec, max_message, out, err);

out:
    json_decref(obj);
    if (rc != 0)
        wire_msg_cleanup(out);
    return rc;
}

void wire_msg_cleanup(struct wire_msg *msg)
{
    if (!msg)
        return;
    free(msg->message);
    sodium_memzero(msg, sizeof *msg);
}

/* ---- encoding ---- */

char *wire_encode_challenge(size_t headroom, size_t *len, const char *nonce_b64)
{
    json_t *obj = codec_object();

    codec_set_str(obj, "type", "challenge");
    codec_set_str(obj, "nonce", nonce_b64);
    codec_set_str(obj, "protocol", WIRE_VERSION);
    return codec_dump_take(obj, headroom, len);
}

char *wire_encode_introduced(size_t headroom, size_t *len,
                             const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                             const char *session_id)
{
    json_t *obj = codec_object();

    codec_set_str(obj, "type", "introduced");
    codec_set_b64(obj, "public_key", public_key, crypto_sign_PUBLICKEYBYTES);
    codec_set_str(obj, "session_id", session_id);
    return codec_dump_take(obj, headroom, len);
}

char *wire_encode_sign_request(size_t headroom, size_t *len, const char *request_id,
                               const uint8_t *message, size_t message_len, uint64_t expires_at_ms)
{
    return wire_encode_labelled_sign_request(headroom, len, request_id, message, message_len,
                                             expires_at_ms, NULL, NULL);
}

char *wire_encode_labelled_sign_request(size_t headroom, size_t *len, const char *request_id,
                                        const uint8_t *message, size_t message_len,
                                        uint64_t expires_at_ms, const char *label,
                                        const char *requester)
{
    /* A request id is checked to be one; base64 and integers never need
     * escaping: without a label the flat writer always writes it. */
    struct codec_field f[6] = {
        {.name = "type", .kind = CODEC_TEXT, .text = "sign_request"},
        {.name = "request_id",
         .kind = CODEC_TEXT,
         .text =
             wire_is_request_id(request_id, request_id ? strlen(request_id) : 0) ? request_id : ""},
        {.name = "message", .kind = CODEC_B64, .bin = message, .len = message ? message_len : 0},
        /* JSON integers are signed 64-bit in jansson; no real clock gets near. */
        {.name = "expires_at",
         .kind = CODEC_INT,
         .num = expires_at_ms > INT64_MAX ? INT64_MAX : (int64_t)expires_at_ms},
    };
    size_t n = 4;
    json_t *obj;
    char *buf;

    if (label && *label)
        f[n++] = (struct codec_field){.name = "label", .kind = CODEC_TEXT, .text = label};
    if (requester && *requester)
        f[n++] = (struct codec_field){.name = "requester", .kind = CODEC_TEXT, .text = requester};
    if ((buf = codec_write_flat(headroom, len, f, n)) != NULL)
        return buf;
    /* A label with quotes, backslashes or non-ASCII text: jansson escapes it. */
    obj = codec_object();
    codec_set_str(obj, "type", "sign_request");
    codec_set_str(obj, "request_id", f[1].text);
    codec_set_b64(obj, "message", message, message ? message_len : 0);
    codec_set_int(obj, "expires_at", f[3].num);
    for (size_t i = 4; i < n; i++)
        codec_set_str(obj, f[i].name, f[i].text);
    return codec_dump_take(obj, headroom, len);
}

char *wire_encode_cancel(size_t headroom, size_t *len, const char *request_id, const char *reason)
{
    json_t *obj = codec_object();

    codec_set_str(obj, "type", "cancel");
    codec_set_str(obj, "request_id", request_id);
    codec_set_str(obj, "reason", reason);
    return codec_dump_take(obj, headroom, len);
}

char *wire_encode_error(size_t headroom, size_t *len, const char *code, const char *message,
                        const char *request_id)
{
    json_t *obj = codec_object();

    codec_set_str(obj, "type", "error");
    codec_set_str(obj, "code", code);
    codec_set_str(obj, "message", message);
    if (request_id && request_id[0])
        codec_set_str(obj, "request_id", request_id);
    return codec_dump_take(obj, headroom, len);
}

char *wire_encode_introduction(size_t headroom, size_t *len,
                               const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                               const char *host, const uint8_t proof[crypto_sign_BYTES])
{
    json_t *obj = codec_object();

    codec_set_str(obj, "type", "introduction");
    codec_set_b64(obj, "public_key", public_key, crypto_sign_PUBLICKEYBYTES);
    codec_set_str(obj, "host", host);
    codec_set_b64(obj, "proof", proof, crypto_sign_BYTES);
    return codec_dump_take(obj, headroom, len);
}

char *wire_encode_sign_response(size_t headroom, size_t *len, const char *request_id,
                                const uint8_t *message, size_t message_len,
                                const uint8_t signature[crypto_sign_BYTES])
{
    json_t *obj = codec_object();

    codec_set_str(obj, "type", "sign_response");
    codec_set_str(obj, "request_id", request_id);
    codec_set_b64(obj, "message", message, message_len);
    codec_set_b64(obj, "signature", signature, crypto_sign_BYTES);
    return codec_dump_take(obj, headroom, len);
}

char *wire_encode_sign_reject(size_t headroom, size_t *len, const char *request_id,
                              const char *reason)
{
    json_t *obj = codec_object();

    codec_set_str(obj, "type", "sign_reject");
    codec_set_str(obj, "request_id", request_id);
    codec_set_str(obj, "reason", reason);
    return codec_dump_take(obj, headroom, len);
}
