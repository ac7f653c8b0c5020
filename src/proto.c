/*
 * The wssign.v1 codec: client frames are parsed with jansson and copied into
 * struct proto_msg; server frames are built as jansson objects and dumped into
 * a buffer with transport headroom. No jansson value outlives a call here.
 * Owns no state; does no I/O.
 */
#include "proto.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <wssignd/errors.h>

#include "util.h"

/* Longest field name quoted back in an "unknown field" message. */
#define FIELD_NAME_QUOTE_MAX 32

/* Per frame type: which fields it may carry. */
struct frame_spec {
    const char *type;
    enum proto_type id;
    const char *const *fields; /* NULL-terminated, "type" included */
};

static const char *const intro_fields[] = {"type", "public_key", "host", "proof", NULL};
static const char *const response_fields[] = {"type", "request_id", "message", "signature", NULL};
static const char *const reject_fields[] = {"type", "request_id", "reason", NULL};

static const struct frame_spec specs[] = {
    {"introduction", PROTO_INTRODUCTION, intro_fields},
    {"sign_response", PROTO_SIGN_RESPONSE, response_fields},
    {"sign_reject", PROTO_SIGN_REJECT, reject_fields},
};

__attribute__((format(printf, 3, 4))) static int fail(struct proto_error *err, const char *code,
                                                      const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return WSS_ERR_PROTO;
}

bool proto_is_request_id(const char *s, size_t len)
{
    size_t i;

    if (len != PROTO_REQUEST_ID_MAX)
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

/*
 * Hosts are compared byte for byte with the configured server names and end
 * up inside the signed transcript, so only visible ASCII is allowed: no
 * spaces, no control characters (the transcript separator among them), no
 * non-ASCII bytes (internationalised names travel as A-labels).
 */
static bool is_host(const char *s, size_t len)
{
    size_t i;

    if (len == 0 || len > CRYPTO_HOST_MAX)
        return false;
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Field names are peer-controlled: quote them back only when short and plain. */
static bool is_plain_name(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        if (i >= FIELD_NAME_QUOTE_MAX)
            return false;
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    }
    return i > 0;
}

/* Looks up a string field. *s is NULL when an optional field is absent. */
static int get_string(json_t *obj, const char *name, bool required, const char **s, size_t *len,
                      struct proto_error *err)
{
    json_t *v = json_object_get(obj, name);

    *s = NULL;
    *len = 0;
    if (!v) {
        if (required)
            return fail(err, "missing_field", "field '%s' is missing", name);
        return 0;
    }
    if (!json_is_string(v))
        return fail(err, "bad_field", "field '%s' must be a string", name);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

/* A base64 field that must decode to exactly n bytes; *present (may be NULL)
 * tells whether an optional one was there. */
static int get_fixed_b64(json_t *obj, const char *name, bool required, uint8_t *out, size_t n,
                         bool *present, struct proto_error *err)
{
    const char *s;
    size_t len, want, outlen;
    int rc;

    if (present)
        *present = false;
    if ((rc = get_string(obj, name, required, &s, &len, err)) != 0 || !s)
        return rc;
    /* Sizes come from the text length before anything is decoded. */
    want = crypto_b64_decoded_len(s, len);
    if (want == SIZE_MAX)
        return fail(err, "bad_field", "field '%s' is not valid base64", name);
    if (want != n)
        return fail(err, "bad_field", "field '%s' must decode to %zu bytes", name, n);
    if (crypto_b64_decode(out, n, &outlen, s, len) != 0 || outlen != n)
        return fail(err, "bad_field", "field '%s' is not valid base64", name);
    if (present)
        *present = true;
    return 0;
}

static int decode_introduction(json_t *obj, struct proto_msg *out, struct proto_error *err)
{
    const char *host;
    size_t hostlen;
    int rc;

    if ((rc = get_fixed_b64(obj, "public_key", true, out->public_key, sizeof(out->public_key),
                            NULL, err)) != 0)
        return rc;
    if ((rc = get_string(obj, "host", true, &host, &hostlen, err)) != 0)
        return rc;
    if (!is_host(host, hostlen))
        return fail(err, "bad_field",
                    "field 'host' must be 1..%d visible ASCII characters", CRYPTO_HOST_MAX);
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    /* Optional here; the daemon decides whether a proof is required. */
    return get_fixed_b64(obj, "proof", false, out->proof, sizeof(out->proof), &out->has_proof,
                         err);
}

static int get_request_id(json_t *obj, struct proto_msg *out, struct proto_error *err)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = get_string(obj, "request_id", true, &s, &len, err)) != 0)
        return rc;
    if (!proto_is_request_id(s, len))
        return fail(err, "bad_field", "field 'request_id' must be a lowercase UUID");
    memcpy(out->request_id, s, len + 1);
    return 0;
}

static int decode_sign_response(json_t *obj, size_t max_message, struct proto_msg *out,
                                struct proto_error *err)
{
    const char *s;
    size_t len, n, outlen;
    int rc;

    if ((rc = get_request_id(obj, out, err)) != 0)
        return rc;
    if ((rc = get_string(obj, "message", true, &s, &len, err)) != 0)
        return rc;
    /* Size from the text first: nothing is allocated for a message that is
     * too large or that cannot be padded base64. */
    n = crypto_b64_decoded_len(s, len);
    if (n == SIZE_MAX)
        return fail(err, "bad_field", "field 'message' is not valid base64");
    if (n > max_message)
        return fail(err, "bad_field", "field 'message' must decode to at most %zu bytes",
                    max_message);
    out->message = xmalloc(n ? n : 1);
    if (crypto_b64_decode(out->message, n, &outlen, s, len) != 0 || outlen != n)
        return fail(err, "bad_field", "field 'message' is not valid base64");
    out->message_len = n;
    return get_fixed_b64(obj, "signature", true, out->signature, sizeof(out->signature), NULL,
                         err);
}

static int decode_sign_reject(json_t *obj, struct proto_msg *out, struct proto_error *err)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = get_request_id(obj, out, err)) != 0)
        return rc;
    if ((rc = get_string(obj, "reason", false, &s, &len, err)) != 0)
        return rc;
    if (!s)
        return 0; /* absent: reason stays "" */
    if (len > PROTO_REASON_MAX)
        return fail(err, "bad_field", "field 'reason' must be at most %d bytes",
                    PROTO_REASON_MAX);
    /* jansson has already refused invalid UTF-8 and \u0000. */
    memcpy(out->reason, s, len);
    out->reason[len] = '\0';
    return 0;
}

/* A fixed description of a parse failure; jansson's own text quotes the
 * peer's bytes, which are not echoed back. */
static const char *json_problem(const json_error_t *jerr)
{
    switch (json_error_code(jerr)) {
    case json_error_duplicate_key:
        return "frame has a duplicate key";
    case json_error_stack_overflow:
        return "frame nests too deeply";
    case json_error_invalid_utf8:
        return "frame is not valid UTF-8";
    case json_error_null_character:
        return "frame contains \\u0000";
    case json_error_numeric_overflow:
        return "frame has a number out of range";
    case json_error_end_of_input_expected:
        return "frame has data after the JSON value";
    default:
        return "frame is not valid JSON";
    }
}

static int check_fields(json_t *obj, const struct frame_spec *spec, struct proto_error *err)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach(obj, key, v) {
        for (i = 0; spec->fields[i]; i++)
            if (strcmp(key, spec->fields[i]) == 0)
                break;
        if (spec->fields[i])
            continue;
        if (is_plain_name(key))
            return fail(err, "bad_field", "unknown field '%s' in %s", key, spec->type);
        return fail(err, "bad_field", "unknown field in %s", spec->type);
    }
    return 0;
}

int proto_decode(const char *buf, size_t len, size_t max_message, struct proto_msg *out,
                 struct proto_error *err)
{
    struct proto_error scratch;
    const struct frame_spec *spec = NULL;
    json_error_t jerr;
    json_t *obj = NULL, *v;
    const char *type;
    size_t i;
    int rc = 0;

    if (!err)
        err = &scratch;
    memset(err, 0, sizeof(*err));
    memset(out, 0, sizeof(*out));

    /* Duplicate keys must fail: jansson otherwise keeps the last one, and two
     * readers of the same frame could disagree about what it says. Trailing
     * data, \u0000, invalid UTF-8 and out-of-range numbers fail by default. */
    obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        rc = fail(err, "bad_json", "%s", json_problem(&jerr));
        goto out;
    }
    if (!json_is_object(obj)) {
        rc = fail(err, "bad_json", "frame must be a JSON object");
        goto out;
    }

    /* Echo the id in any error frame, whatever else is wrong, when it is one
     * the server could have issued. */
    v = json_object_get(obj, "request_id");
    if (json_is_string(v) && proto_is_request_id(json_string_value(v), json_string_length(v)))
        memcpy(err->request_id, json_string_value(v), PROTO_REQUEST_ID_MAX + 1);

    v = json_object_get(obj, "type");
    if (!v) {
        rc = fail(err, "missing_field", "field 'type' is missing");
        goto out;
    }
    if (!json_is_string(v)) {
        rc = fail(err, "bad_field", "field 'type' must be a string");
        goto out;
    }
    type = json_string_value(v);
    for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
        if (strcmp(type, specs[i].type) == 0)
            spec = &specs[i];
    if (!spec) {
        if (is_plain_name(type))
            rc = fail(err, "unknown_type", "unknown frame type '%s'", type);
        else
            rc = fail(err, "unknown_type", "unknown frame type");
        goto out;
    }
    if ((rc = check_fields(obj, spec, err)) != 0)
        goto out;

    out->type = spec->id;
    switch (spec->id) {
    case PROTO_INTRODUCTION:
        rc = decode_introduction(obj, out, err);
        break;
    case PROTO_SIGN_RESPONSE:
        rc = decode_sign_response(obj, max_message, out, err);
        break;
    case PROTO_SIGN_REJECT:
        rc = decode_sign_reject(obj, out, err);
        break;
    }

out:
    json_decref(obj);
    if (rc != 0)
        proto_msg_cleanup(out);
    return rc;
}

void proto_msg_cleanup(struct proto_msg *msg)
{
    if (!msg)
        return;
    free(msg->message);
    sodium_memzero(msg, sizeof(*msg));
}

/* jansson returns NULL only on out-of-memory once its input is valid. */
static json_t *need(json_t *v)
{
    if (!v) {
        fprintf(stderr, "level=err event=out_of_memory where=proto\n");
        abort();
    }
    return v;
}

/*
 * A JSON string for s. Text that is not valid UTF-8 (json_string refuses it)
 * has every non-ASCII byte replaced by '?', so an encoder always produces a
 * frame.
 */
static json_t *str(const char *s)
{
    json_t *v;
    char *copy;
    size_t i;

    if (!s)
        s = "";
    if ((v = json_string(s)) != NULL)
        return v;
    copy = xstrdup(s);
    for (i = 0; copy[i]; i++)
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = '?';
    v = need(json_string(copy));
    free(copy);
    return v;
}

static json_t *b64(const uint8_t *bin, size_t binlen)
{
    size_t n = crypto_b64_len(binlen);
    char *text = xmalloc(n);
    json_t *v;

    crypto_b64_encode(text, n, bin, binlen);
    v = need(json_stringn_nocheck(text, n - 1));
    free(text);
    return v;
}

static void set(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, v) != 0) {
        fprintf(stderr, "level=err event=out_of_memory where=proto\n");
        abort();
    }
}

/*
 * Dumps obj (compact, keys in insertion order) after headroom bytes and
 * drops the reference. The headroom is zero-filled so no uninitialised byte
 * ever reaches the transport; a NUL follows the JSON but is not counted.
 */
static char *finish(json_t *obj, size_t headroom, size_t *len)
{
    size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    char *buf;

    if (n == 0) {
        fprintf(stderr, "level=err event=out_of_memory where=proto\n");
        abort();
    }
    buf = xmalloc(headroom + n + 1);
    memset(buf, 0, headroom);
    if (json_dumpb(obj, buf + headroom, n, JSON_COMPACT) != n)
        abort();
    buf[headroom + n] = '\0';
    json_decref(obj);
    if (len)
        *len = n;
    return buf;
}

char *proto_encode_challenge(size_t headroom, size_t *len, const char *nonce_b64)
{
    json_t *obj = need(json_object());

    set(obj, "type", str("challenge"));
    set(obj, "nonce", str(nonce_b64));
    set(obj, "protocol", str(PROTO_VERSION));
    return finish(obj, headroom, len);
}

char *proto_encode_introduced(size_t headroom, size_t *len,
                              const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                              const char *session_id)
{
    json_t *obj = need(json_object());

    set(obj, "type", str("introduced"));
    set(obj, "public_key", b64(public_key, crypto_sign_PUBLICKEYBYTES));
    set(obj, "session_id", str(session_id));
    return finish(obj, headroom, len);
}

/* Copies n bytes of s to p; returns the end. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/*
 * The frame sent for every signature, so it is written straight into one
 * buffer rather than built as a jansson object and dumped twice: each field
 * is known to need no escaping (a request id is checked to be one; base64
 * and integers never do). Same bytes as jansson's compact output.
 */
char *proto_encode_sign_request(size_t headroom, size_t *len, const char *request_id,
                                const uint8_t *message, size_t message_len,
                                uint64_t expires_at_ms)
{
    static const char head[] = "{\"type\":\"sign_request\",\"request_id\":\"";
    static const char mid[] = "\",\"message\":\"";
    static const char tail[] = "\",\"expires_at\":";
    static const uint8_t empty[1];
    /* JSON integers are signed 64-bit in jansson; no real clock gets near. */
    long long at = expires_at_ms > INT64_MAX ? INT64_MAX : (long long)expires_at_ms;
    size_t b64n = crypto_b64_len(message ? message_len : 0); /* with its NUL */
    size_t idlen = request_id ? strlen(request_id) : 0, cap;
    char *buf, *p;

    if (!proto_is_request_id(request_id, idlen)) {
        request_id = "";
        idlen = 0;
    }
    /* 21: the longest int64 with its sign; 2: the closing brace and the NUL. */
    cap = sizeof head - 1 + idlen + sizeof mid - 1 + b64n + sizeof tail - 1 + 21 + 2;
    buf = xmalloc(headroom + cap);
    memset(buf, 0, headroom);
    p = put(buf + headroom, head, sizeof head - 1);
    p = put(p, request_id, idlen);
    p = put(p, mid, sizeof mid - 1);
    crypto_b64_encode(p, b64n, message ? message : empty, message ? message_len : 0);
    p = put(p + b64n - 1, tail, sizeof tail - 1);
    p += snprintf(p, cap - (size_t)(p - (buf + headroom)), "%lld}", at);
    if (len)
        *len = (size_t)(p - (buf + headroom));
    return buf;
}

char *proto_encode_cancel(size_t headroom, size_t *len, const char *request_id, const char *reason)
{
    json_t *obj = need(json_object());

    set(obj, "type", str("cancel"));
    set(obj, "request_id", str(request_id));
    set(obj, "reason", str(reason));
    return finish(obj, headroom, len);
}

char *proto_encode_error(size_t headroom, size_t *len, const char *code, const char *message,
                         const char *request_id)
{
    json_t *obj = need(json_object());

    set(obj, "type", str("error"));
    set(obj, "code", str(code));
    set(obj, "message", str(message));
    if (request_id && request_id[0])
        set(obj, "request_id", str(request_id));
    return finish(obj, headroom, len);
}
