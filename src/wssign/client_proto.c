/*
 * Client-side codec: server frames and control-API answers are parsed with
 * jansson and copied into plain structs; client frames and the POST /v1/sign
 * body are built as jansson objects and dumped. No jansson value outlives a
 * call here. Owns no state; does no I/O.
 */
#include "client_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <wssignd/errors.h>

#include "util.h"

/* Per frame type: which fields it carries. */
struct frame_spec {
    const char *type;
    enum client_proto_type id;
    const char *const *fields; /* NULL-terminated, "type" included */
};

static const char *const challenge_fields[] = {"type", "nonce", "protocol", NULL};
static const char *const introduced_fields[] = {"type", "public_key", "session_id", NULL};
static const char *const request_fields[] = {"type", "request_id", "message", "expires_at", NULL};
static const char *const cancel_fields[] = {"type", "request_id", "reason", NULL};
static const char *const error_fields[] = {"type", "code", "message", "request_id", NULL};

static const struct frame_spec specs[] = {
    {"challenge", CLIENT_PROTO_CHALLENGE, challenge_fields},
    {"introduced", CLIENT_PROTO_INTRODUCED, introduced_fields},
    {"sign_request", CLIENT_PROTO_SIGN_REQUEST, request_fields},
    {"cancel", CLIENT_PROTO_CANCEL, cancel_fields},
    {"error", CLIENT_PROTO_ERROR, error_fields},
};

/* Per decode: where the reason for a failure goes. */
struct errbuf {
    char *text;
    size_t len;
};

__attribute__((format(printf, 2, 3))) static int fail(struct errbuf *e, const char *fmt, ...)
{
    va_list ap;

    if (e && e->text && e->len) {
        va_start(ap, fmt);
        vsnprintf(e->text, e->len, fmt, ap);
        va_end(ap);
    }
    return WSS_ERR_PROTO;
}

static bool is_visible_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Looks up a string field; *s is NULL when an optional field is absent. */
static int get_string(json_t *obj, const char *name, bool required, const char **s, size_t *len,
                      struct errbuf *e)
{
    json_t *v = json_object_get(obj, name);

    *s = NULL;
    *len = 0;
    if (!v)
        return required ? fail(e, "field '%s' is missing", name) : 0;
    if (!json_is_string(v))
        return fail(e, "field '%s' must be a string", name);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

/* A base64 field that must decode to exactly n bytes. */
static int get_fixed_b64(json_t *obj, const char *name, uint8_t *out, size_t n, struct errbuf *e)
{
    const char *s;
    size_t len, outlen;
    int rc;

    if ((rc = get_string(obj, name, true, &s, &len, e)) != 0)
        return rc;
    if (crypto_b64_decoded_len(s, len) != n || crypto_b64_decode(out, n, &outlen, s, len) != 0 ||
        outlen != n)
        return fail(e, "field '%s' must be base64 of %zu bytes", name, n);
    return 0;
}

/* A base64 field of at most max bytes, decoded into a new buffer. */
static int get_var_b64(json_t *obj, const char *name, size_t max, uint8_t **out, size_t *outlen,
                       struct errbuf *e)
{
    const char *s;
    size_t len, want;
    uint8_t *buf;
    int rc;

    if ((rc = get_string(obj, name, true, &s, &len, e)) != 0)
        return rc;
    /* The size is known from the text length: refuse before allocating. */
    want = crypto_b64_decoded_len(s, len);
    if (want == SIZE_MAX)
        return fail(e, "field '%s' is not valid base64", name);
    if (want > max)
        return fail(e, "field '%s' decodes to %zu bytes, more than %zu", name, want, max);
    buf = xmalloc(want + 1);
    if (crypto_b64_decode(buf, want, outlen, s, len) != 0) {
        free(buf);
        return fail(e, "field '%s' is not valid base64", name);
    }
    *out = buf;
    return 0;
}

static int get_request_id(json_t *obj, bool required, char out[PROTO_REQUEST_ID_MAX + 1],
                          struct errbuf *e)
{
    const char *s;
    size_t len;
    int rc;

    out[0] = '\0';
    if ((rc = get_string(obj, "request_id", required, &s, &len, e)) != 0 || !s)
        return rc;
    if (!proto_is_request_id(s, len))
        return fail(e, "field 'request_id' must be a lowercase UUID");
    memcpy(out, s, len + 1);
    return 0;
}

/* Free text: any string, kept up to outlen - 1 bytes. */
static int get_text(json_t *obj, const char *name, char *out, size_t outlen, struct errbuf *e)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = get_string(obj, name, true, &s, &len, e)) != 0)
        return rc;
    snprintf(out, outlen, "%s", s);
    return 0;
}

static int decode_challenge(json_t *obj, struct client_proto_msg *out, struct errbuf *e)
{
    uint8_t nonce[CRYPTO_NONCE_BYTES];
    const char *s;
    size_t len;
    int rc;

    if ((rc = get_fixed_b64(obj, "nonce", nonce, sizeof nonce, e)) != 0)
        return rc;
    /* Valid base64 of 32 bytes is exactly 44 characters: it fits. */
    get_string(obj, "nonce", true, &s, &len, e);
    memcpy(out->nonce_b64, s, len + 1);
    if ((rc = get_string(obj, "protocol", true, &s, &len, e)) != 0)
        return rc;
    if (strcmp(s, PROTO_VERSION) != 0)
        return fail(e, "unsupported protocol (this client speaks %s)", PROTO_VERSION);
    return 0;
}

static int decode_introduced(json_t *obj, struct client_proto_msg *out, struct errbuf *e)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = get_fixed_b64(obj, "public_key", out->public_key, sizeof out->public_key, e)) != 0)
        return rc;
    if ((rc = get_string(obj, "session_id", true, &s, &len, e)) != 0)
        return rc;
    if (len == 0 || len > CLIENT_PROTO_SESSION_ID_MAX || !is_visible_ascii(s, len))
        return fail(e, "field 'session_id' must be 1..%d visible ASCII characters",
                    CLIENT_PROTO_SESSION_ID_MAX);
    memcpy(out->session_id, s, len + 1);
    return 0;
}

static int decode_sign_request(json_t *obj, size_t max_message, struct client_proto_msg *out,
                               struct errbuf *e)
{
    json_t *v;
    int rc;

    if ((rc = get_request_id(obj, true, out->request_id, e)) != 0)
        return rc;
    v = json_object_get(obj, "expires_at");
    if (!v)
        return fail(e, "field 'expires_at' is missing");
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(e, "field 'expires_at' must be a non-negative integer");
    out->expires_at = json_integer_value(v);
    return get_var_b64(obj, "message", max_message, &out->message, &out->message_len, e);
}

static int decode_cancel(json_t *obj, struct client_proto_msg *out, struct errbuf *e)
{
    int rc;

    if ((rc = get_request_id(obj, true, out->request_id, e)) != 0)
        return rc;
    return get_text(obj, "reason", out->reason, sizeof out->reason, e);
}

static int decode_error(json_t *obj, struct client_proto_msg *out, struct errbuf *e)
{
    const char *s;
    size_t len;
    int rc;

    if ((rc = get_string(obj, "code", true, &s, &len, e)) != 0)
        return rc;
    if (len == 0 || len > CLIENT_PROTO_CODE_MAX || !is_visible_ascii(s, len))
        return fail(e, "field 'code' must be 1..%d visible ASCII characters",
                    CLIENT_PROTO_CODE_MAX);
    memcpy(out->code, s, len + 1);
    if ((rc = get_text(obj, "message", out->text, sizeof out->text, e)) != 0)
        return rc;
    return get_request_id(obj, false, out->request_id, e);
}

int client_proto_decode(const char *buf, size_t len, size_t max_message,
                        struct client_proto_msg *out, char *err, size_t errlen)
{
    struct errbuf e = {err, errlen};
    const struct frame_spec *spec = NULL;
    json_error_t jerr;
    const char *key, *type;
    json_t *root, *v;
    int rc = WSS_ERR_PROTO;

    memset(out, 0, sizeof *out);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(&e, "not JSON: %s", jerr.text);
    if (!json_is_object(root)) {
        fail(&e, "a frame must be a JSON object");
        goto out;
    }
    v = json_object_get(root, "type");
    if (!v || !json_is_string(v)) {
        fail(&e, "field 'type' is %s", v ? "not a string" : "missing");
        goto out;
    }
    type = json_string_value(v);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (!strcmp(type, specs[i].type))
            spec = &specs[i];
    if (!spec) {
        fail(&e, "unknown frame type");
        goto out;
    }
    json_object_foreach(root, key, v) {
        bool known = false;

        for (const char *const *f = spec->fields; *f; f++)
            known |= !strcmp(key, *f);
        if (!known) {
            fail(&e, "a %s frame has an unknown field", spec->type);
            goto out;
        }
    }
    out->type = spec->id;
    switch (spec->id) {
    case CLIENT_PROTO_CHALLENGE:
        rc = decode_challenge(root, out, &e);
        break;
    case CLIENT_PROTO_INTRODUCED:
        rc = decode_introduced(root, out, &e);
        break;
    case CLIENT_PROTO_SIGN_REQUEST:
        rc = decode_sign_request(root, max_message, out, &e);
        break;
    case CLIENT_PROTO_CANCEL:
        rc = decode_cancel(root, out, &e);
        break;
    case CLIENT_PROTO_ERROR:
        rc = decode_error(root, out, &e);
        break;
    }
out:
    json_decref(root);
    if (rc)
        client_proto_msg_cleanup(out);
    return rc;
}

void client_proto_msg_cleanup(struct client_proto_msg *msg)
{
    if (!msg)
        return;
    free(msg->message);
    memset(msg, 0, sizeof *msg);
}

/* ---- encoders ---- */

static json_t *need(json_t *v)
{
    if (!v) {
        fprintf(stderr, "level=err event=out_of_memory where=client_proto\n");
        abort();
    }
    return v;
}

static void set(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, need(v)) != 0)
        need(NULL);
}

static json_t *b64(const uint8_t *bin, size_t binlen)
{
    static const uint8_t empty[1];
    size_t n = crypto_b64_len(binlen);
    char *text = xmalloc(n);
    json_t *v;

    crypto_b64_encode(text, n, binlen ? bin : empty, binlen);
    v = need(json_stringn_nocheck(text, n - 1));
    free(text);
    return v;
}

/* Strings from the daemon (request ids) were validated as ASCII on the way
 * in; reasons are ours. Non-UTF-8 would make jansson return NULL: replace it. */
static json_t *str(const char *s)
{
    json_t *v = json_string(s ? s : "");
    char *copy;

    if (v)
        return v;
    copy = xstrdup(s);
    for (size_t i = 0; copy[i]; i++)
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = '?';
    v = need(json_string(copy));
    free(copy);
    return v;
}

/* Dumps obj (compact, insertion order) after zeroed headroom; drops the reference. */
static char *finish(json_t *obj, size_t headroom, size_t *len)
{
    size_t n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    char *buf;

    if (n == 0)
        need(NULL);
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

char *client_proto_encode_introduction(size_t headroom, size_t *len,
                                       const uint8_t public_key[crypto_sign_PUBLICKEYBYTES],
                                       const char *host, const uint8_t proof[crypto_sign_BYTES])
{
    json_t *obj = need(json_object());

    set(obj, "type", str("introduction"));
    set(obj, "public_key", b64(public_key, crypto_sign_PUBLICKEYBYTES));
    set(obj, "host", str(host));
    set(obj, "proof", b64(proof, crypto_sign_BYTES));
    return finish(obj, headroom, len);
}

char *client_proto_encode_sign_response(size_t headroom, size_t *len, const char *request_id,
                                        const uint8_t *msg, size_t msg_len,
                                        const uint8_t signature[crypto_sign_BYTES])
{
    json_t *obj = need(json_object());

    set(obj, "type", str("sign_response"));
    set(obj, "request_id", str(request_id));
    set(obj, "message", b64(msg, msg_len));
    set(obj, "signature", b64(signature, crypto_sign_BYTES));
    return finish(obj, headroom, len);
}

char *client_proto_encode_sign_reject(size_t headroom, size_t *len, const char *request_id,
                                      const char *reason)
{
    json_t *obj = need(json_object());

    set(obj, "type", str("sign_reject"));
    set(obj, "request_id", str(request_id));
    set(obj, "reason", str(reason));
    return finish(obj, headroom, len);
}

char *client_proto_encode_sign_call(size_t *len, const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                                    const uint8_t *msg, size_t msg_len, uint32_t timeout_ms)
{
    json_t *obj = need(json_object());

    set(obj, "public_key", b64(pk, crypto_sign_PUBLICKEYBYTES));
    set(obj, "message", b64(msg, msg_len));
    if (timeout_ms)
        set(obj, "timeout_ms", json_integer(timeout_ms));
    return finish(obj, 0, len);
}

int client_proto_decode_sign_result(const char *buf, size_t len, size_t max_message,
                                    struct client_proto_sign_result *out, char *err,
                                    size_t errlen)
{
    struct errbuf e = {err, errlen};
    json_error_t jerr;
    json_t *root;
    int rc = WSS_ERR_PROTO;

    memset(out, 0, sizeof *out);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(&e, "answer is not JSON: %s", jerr.text);
    if (!json_is_object(root)) {
        fail(&e, "answer is not a JSON object");
        goto out;
    }
    if ((rc = get_request_id(root, true, out->request_id, &e)) != 0 ||
        (rc = get_fixed_b64(root, "public_key", out->public_key, sizeof out->public_key, &e)) !=
            0 ||
        (rc = get_fixed_b64(root, "signature", out->signature, sizeof out->signature, &e)) != 0)
        goto out;
    rc = get_var_b64(root, "message", max_message, &out->message, &out->message_len, &e);
out:
    json_decref(root);
    if (rc)
        client_proto_sign_result_cleanup(out);
    return rc;
}

void client_proto_sign_result_cleanup(struct client_proto_sign_result *r)
{
    if (!r)
        return;
    free(r->message);
    memset(r, 0, sizeof *r);
}

int client_proto_decode_api_error(const char *buf, size_t len, struct client_proto_api_error *out)
{
    json_error_t jerr;
    json_t *root, *err, *v;
    int rc = WSS_ERR_PROTO;

    memset(out, 0, sizeof *out);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return WSS_ERR_PROTO;
    err = json_object_get(root, "error");
    if (!json_is_object(err))
        goto out;
    v = json_object_get(err, "code");
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > CLIENT_PROTO_CODE_MAX ||
        !is_visible_ascii(json_string_value(v), json_string_length(v)))
        goto out;
    memcpy(out->code, json_string_value(v), json_string_length(v) + 1);
    v = json_object_get(err, "message");
    if (json_is_string(v))
        snprintf(out->message, sizeof out->message, "%s", json_string_value(v));
    v = json_object_get(err, "request_id");
    if (json_is_string(v) && proto_is_request_id(json_string_value(v), json_string_length(v)))
        memcpy(out->request_id, json_string_value(v), json_string_length(v) + 1);
    rc = 0;
out:
    json_decref(root);
    return rc;
}
