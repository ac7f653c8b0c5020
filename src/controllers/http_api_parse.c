/*
 * Parsers for the HTTP control API's requests: JSON bodies through jansson and
 * base64 through libsodium, strictly. Owns no state; the controller in
 * http_api.c does the HTTP and asks the service for signatures.
 */
#include "http_api_parse.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "util.h"

/* Strict decode: no ignored characters, and the whole text must be consumed. */
static int b64_decode(uint8_t *out, size_t outmax, size_t *outlen, const char *text, size_t len,
                      int variant)
{
    const char *end = NULL;

    /* libsodium 1.0.18 (Debian 12) reads every byte from 0x80 up as the 64th
     * character ('/' or '_'), so "\xc3\xa9AA" would decode like "//AA". */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] >= 0x80)
            return -1;
    if (sodium_base642bin(out, outmax, text, len, NULL, outlen, &end, variant) != 0 ||
        end != text + len)
        return -1;
    return 0;
}

/* An optional integer field from lo to hi; absent leaves *out alone. */
static int opt_uint(json_t *root, const char *field, json_int_t lo, json_int_t hi, uint32_t *out)
{
    json_t *v = json_object_get(root, field);

    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -1;
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

int http_api_parse_sign(const char *body, size_t len, size_t max_message,
                        struct http_api_sign_req *req, const char **errmsg)
{
    static const char *const fields[] = {"public_key", "message", "timeout_ms", "wait_ms", "label"};
    json_error_t jerr;
    json_t *root, *v;
    const char *field;
    size_t keylen = 0, n, room, i;
    int rc = HTTP_API_BAD_REQUEST;

    memset(req, 0, sizeof *req);
    *errmsg = NULL;

    /* Duplicate keys are refused: jansson would keep the last one, and a proxy
     * in front of the daemon might have checked the first. A NUL inside a string
     * is loaded so that the field it is in can be named in the refusal. */
    root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                      &jerr);
    if (!root || !json_is_object(root)) {
        *errmsg = "body must be a JSON object";
        goto out;
    }
    json_object_foreach (root, field, v) {
        for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (!strcmp(field, fields[i]))
                break;
        if (i == sizeof fields / sizeof fields[0]) {
            *errmsg = "unknown field in body";
            goto out;
        }
    }
    v = json_object_get(root, "public_key");
    if (!json_is_string(v) ||
        b64_decode(req->key, WSS_PUBLIC_KEY_BYTES, &keylen, json_string_value(v),
                   json_string_length(v), sodium_base64_VARIANT_ORIGINAL) != 0 ||
        keylen != WSS_PUBLIC_KEY_BYTES) {
        *errmsg = "public_key must be base64 of 32 bytes";
        goto out;
    }
    v = json_object_get(root, "message");
    n = json_is_string(v) ? json_string_length(v) : 0;
    /* Room for anything n characters can decode to; the body limit bounds n. */
    room = n / 4 * 3 + 3;
    req->msg = malloc(room);
    if (!req->msg || !json_is_string(v) ||
        b64_decode(req->msg, room, &req->msglen, json_string_value(v), n,
                   sodium_base64_VARIANT_ORIGINAL) != 0 ||
        req->msglen == 0) {
        *errmsg = "message must be non-empty standard base64";
        goto out;
    }
    /* Precise answers for what wss_send_to_sign() would refuse as a bad argument. */
    if (req->msglen > max_message) {
        rc = HTTP_API_TOO_LARGE;
        *errmsg = "message exceeds requests.max_message_bytes";
        goto out;
    }
    if (req->msglen >= strlen(WSS_INTRODUCTION_PREFIX) &&
        !memcmp(req->msg, WSS_INTRODUCTION_PREFIX, strlen(WSS_INTRODUCTION_PREFIX))) {
        *errmsg = "message begins with the reserved prefix " WSS_INTRODUCTION_PREFIX;
        goto out;
    }
    if (opt_uint(root, "timeout_ms", 1, WSS_TIMEOUT_MAX_MS, &req->timeout_ms) != 0) {
        *errmsg = "timeout_ms must be an integer from 1 to 60000";
        goto out;
    }
    if (opt_uint(root, "wait_ms", 0, WSS_TIMEOUT_MAX_MS, &req->wait_ms) != 0) {
        *errmsg = "wait_ms must be an integer from 0 to 60000";
        goto out;
    }
    v = json_object_get(root, "label");
    if (v) {
        /* jansson has checked the UTF-8; a NUL inside (\u0000) is a control character. */
        if (!json_is_string(v) || json_string_length(v) > WSS_LABEL_MAX ||
            !util_label_valid(json_string_value(v), json_string_length(v))) {
            *errmsg = "label must be at most 256 bytes of UTF-8 without control characters";
            goto out;
        }
        memcpy(req->label, json_string_value(v), json_string_length(v));
        req->label[json_string_length(v)] = '\0';
        req->has_label = true;
    }
    rc = 0;
out:
    if (rc != 0) {
        free(req->msg);
        memset(req, 0, sizeof *req);
    }
    json_decref(root);
    return rc;
}

int http_api_parse_key(const char *text, size_t len, uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    size_t keylen = 0;

    /* Keys travel in paths, where '=' is often dropped: accept both forms. */
    if (b64_decode(key, WSS_PUBLIC_KEY_BYTES, &keylen, text, len, sodium_base64_VARIANT_URLSAFE) !=
            0 &&
        b64_decode(key, WSS_PUBLIC_KEY_BYTES, &keylen, text, len,
                   sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return HTTP_API_BAD_REQUEST;
    if (keylen != WSS_PUBLIC_KEY_BYTES)
        return HTTP_API_BAD_REQUEST;
    return 0;
}

int http_api_parse_limit(const char *text, size_t len, size_t *limit)
{
    size_t v = 0;

    if (!len || len > 4)
        return HTTP_API_BAD_REQUEST;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return HTTP_API_BAD_REQUEST;
        v = v * 10 + (size_t)(text[i] - '0');
    }
    if (!v || v > WSS_LIST_MAX)
        return HTTP_API_BAD_REQUEST;
    *limit = v;
    return 0;
}

char *http_api_cursor(char out[WSS_PUBLIC_KEY_BASE64_BYTES],
                      const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    return sodium_bin2base64(out, WSS_PUBLIC_KEY_BASE64_BYTES, key, WSS_PUBLIC_KEY_BYTES,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
