/*
 * The control API's bodies: answers are parsed with jansson and copied into
 * plain structs; the POST /v1/sign body is built as a jansson object and
 * dumped. No jansson value outlives a call here. Owns no state; does no I/O.
 */
#include "client_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <wssignd/errors.h>

#include "util.h"

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

static int get_request_id(json_t *obj, bool required, char out[WIRE_REQUEST_ID_MAX + 1],
                          struct errbuf *e)
{
    const char *s;
    size_t len;
    int rc;

    out[0] = '\0';
    if ((rc = get_string(obj, "request_id", required, &s, &len, e)) != 0 || !s)
        return rc;
    if (!wire_is_request_id(s, len))
        return fail(e, "field 'request_id' must be a lowercase UUID");
    memcpy(out, s, len + 1);
    return 0;
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
        json_string_length(v) > WIRE_CODE_MAX ||
        !is_visible_ascii(json_string_value(v), json_string_length(v)))
        goto out;
    memcpy(out->code, json_string_value(v), json_string_length(v) + 1);
    v = json_object_get(err, "message");
    if (json_is_string(v))
        snprintf(out->message, sizeof out->message, "%s", json_string_value(v));
    v = json_object_get(err, "request_id");
    if (json_is_string(v) && wire_is_request_id(json_string_value(v), json_string_length(v)))
        memcpy(out->request_id, json_string_value(v), json_string_length(v) + 1);
    rc = 0;
out:
    json_decref(root);
    return rc;
}
