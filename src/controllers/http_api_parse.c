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

int http_api_parse_sign(const char *body, size_t len, size_t max_message,
                        uint8_t key[WSS_PUBLIC_KEY_BYTES], uint8_t **msg, size_t *msglen,
                        uint32_t *timeout_ms, const char **errmsg)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *field;
    size_t keylen = 0, n, room;
    int rc = HTTP_API_BAD_REQUEST;

    *msg = NULL;
    *msglen = 0;
    *timeout_ms = 0;
    *errmsg = NULL;

    /* Duplicate keys are refused: jansson would keep the last one, and a proxy
     * in front of the daemon might have checked the first. */
    root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        *errmsg = "body must be a JSON object";
        goto out;
    }
    json_object_foreach(root, field, v) {
        if (strcmp(field, "public_key") && strcmp(field, "message") &&
            strcmp(field, "timeout_ms")) {
            *errmsg = "unknown field in body";
            goto out;
        }
    }
    v = json_object_get(root, "public_key");
    if (!json_is_string(v) ||
        b64_decode(key, WSS_PUBLIC_KEY_BYTES, &keylen, json_string_value(v),
                   json_string_length(v), sodium_base64_VARIANT_ORIGINAL) != 0 ||
        keylen != WSS_PUBLIC_KEY_BYTES) {
        *errmsg = "public_key must be base64 of 32 bytes";
        goto out;
    }
    v = json_object_get(root, "message");
    n = json_is_string(v) ? json_string_length(v) : 0;
    /* Room for anything n characters can decode to; the body limit bounds n. */
    room = n / 4 * 3 + 3;
    *msg = malloc(room);
    if (!*msg || !json_is_string(v) ||
        b64_decode(*msg, room, msglen, json_string_value(v), n, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        *msglen == 0) {
        *errmsg = "message must be non-empty standard base64";
        goto out;
    }
    /* Precise answers for what wss_send_to_sign() would refuse as a bad argument. */
    if (*msglen > max_message) {
        rc = HTTP_API_TOO_LARGE;
        *errmsg = "message exceeds requests.max_message_bytes";
        goto out;
    }
    if (*msglen >= strlen(WSS_INTRODUCTION_PREFIX) &&
        !memcmp(*msg, WSS_INTRODUCTION_PREFIX, strlen(WSS_INTRODUCTION_PREFIX))) {
        *errmsg = "message begins with the reserved prefix " WSS_INTRODUCTION_PREFIX;
        goto out;
    }
    v = json_object_get(root, "timeout_ms");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > (json_int_t)WSS_TIMEOUT_MAX_MS) {
            *errmsg = "timeout_ms must be an integer from 1 to 60000";
            goto out;
        }
        *timeout_ms = (uint32_t)json_integer_value(v);
    }
    rc = 0;
out:
    if (rc != 0) {
        free(*msg);
        *msg = NULL;
        *msglen = 0;
        *timeout_ms = 0;
    }
    json_decref(root);
    return rc;
}

int http_api_parse_key(const char *text, size_t len, uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    size_t keylen = 0;

    /* Keys travel in paths, where '=' is often dropped: accept both forms. */
    if (b64_decode(key, WSS_PUBLIC_KEY_BYTES, &keylen, text, len,
                   sodium_base64_VARIANT_URLSAFE) != 0 &&
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
