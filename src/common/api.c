/*
 * The control API's bodies: answers are parsed with jansson and copied into
 * plain structs; bodies are built as jansson objects and dumped, except the
 * 200 answer, written directly (codec.h). No jansson value outlives a call
 * here. Owns no state; does no I/O.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "codec.h"

char *api_encode_sign_call(size_t *len, const struct api_sign_call *call)
{
    json_t *obj = codec_object();

    codec_set_b64(obj, "public_key", call->pk, crypto_sign_PUBLICKEYBYTES);
    codec_set_b64(obj, "message", call->msg, call->msg_len);
    if (call->timeout_ms)
        codec_set_int(obj, "timeout_ms", call->timeout_ms);
    if (call->wait_ms)
        codec_set_int(obj, "wait_ms", call->wait_ms);
    if (call->label)
        codec_set_str(obj, "label", call->label);
    return codec_dump_take(obj, 0, len);
}

char *api_encode_sign_result(size_t headroom, size_t *len, const char *request_id,
                             const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const uint8_t *msg,
                             size_t msg_len, const uint8_t sig[crypto_sign_BYTES])
{
    const struct codec_field f[] = {
        {.name = "request_id", .kind = CODEC_TEXT, .text = request_id ? request_id : ""},
        {.name = "public_key", .kind = CODEC_B64, .bin = pk, .len = crypto_sign_PUBLICKEYBYTES},
        {.name = "message", .kind = CODEC_B64, .bin = msg, .len = msg ? msg_len : 0},
        {.name = "signature", .kind = CODEC_B64, .bin = sig, .len = crypto_sign_BYTES},
    };
    char *buf = codec_write_flat(headroom, len, f, sizeof f / sizeof f[0]);
    json_t *obj;

    if (buf)
        return buf;
    /* An id that needs escaping: jansson writes it. */
    obj = codec_object();
    codec_set_str(obj, "request_id", request_id);
    codec_set_b64(obj, "public_key", pk, crypto_sign_PUBLICKEYBYTES);
    codec_set_b64(obj, "message", msg, msg ? msg_len : 0);
    codec_set_b64(obj, "signature", sig, crypto_sign_BYTES);
    return codec_dump_take(obj, headroom, len);
}

int api_decode_sign_result(const char *buf, size_t len, size_t max_message,
                           struct api_sign_result *out, struct wire_error *err)
{
    json_t *root;
    int rc;

    memset(out, 0, sizeof *out);
    if (err)
        memset(err, 0, sizeof *err);
    if (!(root = codec_load_object(buf, len, "answer", err)))
        return WSS_ERR_PROTO;
    if ((rc = codec_get_request_id(root, true, out->request_id, err)) != 0 ||
        (rc = codec_get_fixed_b64(root, "public_key", true, out->public_key, sizeof out->public_key,
                                  NULL, err)) != 0 ||
        (rc = codec_get_fixed_b64(root, "signature", true, out->signature, sizeof out->signature,
                                  NULL, err)) != 0)
        goto out;
    rc = codec_get_var_b64(root, "message", max_message, &out->message, &out->message_len, err);
out:
    json_decref(root);
    if (rc)
        api_sign_result_cleanup(out);
    return rc;
}

void api_sign_result_cleanup(struct api_sign_result *r)
{
    if (!r)
        return;
    free(r->message);
    memset(r, 0, sizeof *r);
}

char *api_encode_error(size_t headroom, size_t *len, const char *code, const char *message,
                       const char *request_id)
{
    json_t *obj = codec_object(), *e = codec_object();

    codec_set_str(e, "code", code);
    codec_set_str(e, "message", message);
    if (request_id && request_id[0])
        codec_set_str(e, "request_id", request_id);
    codec_set(obj, "error", e);
    return codec_dump_take(obj, headroom, len);
}

int api_decode_error(const char *buf, size_t len, struct api_error *out)
{
    json_t *root, *e, *v;
    int rc = WSS_ERR_PROTO;

    memset(out, 0, sizeof *out);
    if (!(root = codec_load_object(buf, len, "answer", NULL)))
        return WSS_ERR_PROTO;
    e = json_object_get(root, "error");
    if (!json_is_object(e) || codec_get_token(e, "code", WIRE_CODE_MAX, out->code, NULL) != 0)
        goto out;
    v = json_object_get(e, "message");
    if (json_is_string(v))
        snprintf(out->message, sizeof out->message, "%s", json_string_value(v));
    v = json_object_get(e, "request_id");
    if (json_is_string(v) && wire_is_request_id(json_string_value(v), json_string_length(v)))
        memcpy(out->request_id, json_string_value(v), WIRE_REQUEST_ID_MAX + 1);
    rc = 0;
out:
    json_decref(root);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}
