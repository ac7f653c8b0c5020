/*
 * Parsers for the HTTP control API's requests: JSON bodies through the flat
 * reader (jsonflat.h) or, for any other text, jansson, and base64 through
 * libsodium, strictly. Owns no state; the controller in
 * http_api.c does the HTTP and asks the service for signatures.
 */
#include "http_api_parse.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "jsonflat.h"
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
static int opt_uint(const struct jsonflat *body, const char *field, int64_t lo, int64_t hi,
                    uint32_t *out)
{
    const struct jsonflat_member *v = jsonflat_get(body, field);

    if (!v)
        return 0;
    if (v->kind != JSONFLAT_INTEGER || v->num < lo || v->num > hi)
        return -1;
    *out = (uint32_t)v->num;
    return 0;
}

static bool is_string(const struct jsonflat_member *v)
{
    return v && v->kind == JSONFLAT_STRING;
}

/* The fields a body may carry. */
static const char *const fields[] = {"public_key", "message", "timeout_ms", "wait_ms", "label"};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/*
 * The checks, on the body's members however they were read: every outcome
 * (the values, or the status and message) depends on the members alone, so
 * the fast reading and jansson's cannot disagree.
 */
static int check_sign(const struct jsonflat *body, size_t max_message,
                      struct http_api_sign_req *req, const char **errmsg)
{
    const struct jsonflat_member *v;
    size_t keylen = 0, n, room, i, j;

    for (i = 0; i < body->n; i++) {
        for (j = 0; j < N_FIELDS; j++)
            if (body->m[i].name_len == strlen(fields[j]) &&
                !memcmp(body->m[i].name, fields[j], body->m[i].name_len))
                break;
        if (j == N_FIELDS) {
            *errmsg = "unknown field in body";
            return HTTP_API_BAD_REQUEST;
        }
    }
    v = jsonflat_get(body, "public_key");
    if (!is_string(v) ||
        b64_decode(req->key, WSS_PUBLIC_KEY_BYTES, &keylen, v->str, v->len,
                   sodium_base64_VARIANT_ORIGINAL) != 0 ||
        keylen != WSS_PUBLIC_KEY_BYTES) {
        *errmsg = "public_key must be base64 of 32 bytes";
        return HTTP_API_BAD_REQUEST;
    }
    v = jsonflat_get(body, "message");
    n = is_string(v) ? v->len : 0;
    /* Room for anything n characters can decode to; the body limit bounds n. */
    room = n / 4 * 3 + 3;
    req->msg = xmalloc(room);
    if (!is_string(v) ||
        b64_decode(req->msg, room, &req->msglen, v->str, n, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        req->msglen == 0) {
        *errmsg = "message must be non-empty standard base64";
        return HTTP_API_BAD_REQUEST;
    }
    /* Precise answers for what wss_send_to_sign() would refuse as a bad argument. */
    if (req->msglen > max_message) {
        *errmsg = "message exceeds requests.max_message_bytes";
        return HTTP_API_TOO_LARGE;
    }
    if (req->msglen >= strlen(WSS_INTRODUCTION_PREFIX) &&
        !memcmp(req->msg, WSS_INTRODUCTION_PREFIX, strlen(WSS_INTRODUCTION_PREFIX))) {
        *errmsg = "message begins with the reserved prefix " WSS_INTRODUCTION_PREFIX;
        return HTTP_API_BAD_REQUEST;
    }
    if (opt_uint(body, "timeout_ms", 1, WSS_TIMEOUT_MAX_MS, &req->timeout_ms) != 0) {
        *errmsg = "timeout_ms must be an integer from 1 to 60000";
        return HTTP_API_BAD_REQUEST;
    }
    if (opt_uint(body, "wait_ms", 0, WSS_TIMEOUT_MAX_MS, &req->wait_ms) != 0) {
        *errmsg = "wait_ms must be an integer from 0 to 60000";
        return HTTP_API_BAD_REQUEST;
    }
    v = jsonflat_get(body, "label");
    if (v) {
        /* The reader has checked the UTF-8; a NUL inside (\u0000) is a control character. */
        if (!is_string(v) || v->len > WSS_LABEL_MAX || !util_label_valid(v->str, v->len)) {
            *errmsg = "label must be at most 256 bytes of UTF-8 without control characters";
            return HTTP_API_BAD_REQUEST;
        }
        memcpy(req->label, v->str, v->len);
        req->label[v->len] = '\0';
        req->has_label = true;
    }
    return 0;
}

/*
 * jansson's reading of a body into members: the known fields it holds, as
 * json_object_get finds them. An unknown field is refused here, as
 * check_sign would refuse it, so at most N_FIELDS members are kept.
 */
static int load_sign(json_t *root, struct jsonflat *body, const char **errmsg)
{
    const char *field;
    json_t *v;
    size_t i;

    json_object_foreach (root, field, v) {
        for (i = 0; i < N_FIELDS; i++)
            if (!strcmp(field, fields[i]))
                break;
        if (i == N_FIELDS) {
            *errmsg = "unknown field in body";
            return HTTP_API_BAD_REQUEST;
        }
    }
    for (i = 0; i < N_FIELDS; i++) {
        struct jsonflat_member *m = &body->m[body->n];

        if (!(v = json_object_get(root, fields[i])))
            continue;
        m->name = fields[i];
        m->name_len = strlen(fields[i]);
        if (json_is_string(v)) {
            m->kind = JSONFLAT_STRING;
            m->str = json_string_value(v);
            m->len = json_string_length(v);
        } else if (json_is_integer(v)) {
            m->kind = JSONFLAT_INTEGER;
            m->num = json_integer_value(v);
        } else {
            m->kind = JSONFLAT_OTHER;
        }
        body->n++;
    }
    return 0;
}

/* Resets a refused request: nothing allocated, every field zero. */
static int refuse(int rc, struct http_api_sign_req *req)
{
    if (rc != 0) {
        free(req->msg);
        memset(req, 0, sizeof *req);
    }
    return rc;
}

int http_api_parse_sign_json(const char *body, size_t len, size_t max_message,
                             struct http_api_sign_req *req, const char **errmsg)
{
    struct jsonflat members = {0};
    json_error_t jerr;
    json_t *root;
    int rc;

    memset(req, 0, sizeof *req);
    *errmsg = NULL;
    /* Duplicate keys are refused: jansson would keep the last one, and a proxy
     * in front of the daemon might have checked the first. A NUL inside a string
     * is loaded so that the field it is in can be named in the refusal. */
    root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                      &jerr);
    if (!root || !json_is_object(root)) {
        *errmsg = "body must be a JSON object";
        rc = HTTP_API_BAD_REQUEST;
    } else if ((rc = load_sign(root, &members, errmsg)) == 0) {
        rc = check_sign(&members, max_message, req, errmsg);
    }
    json_decref(root);
    return refuse(rc, req);
}

int http_api_parse_sign(const char *body, size_t len, size_t max_message,
                        struct http_api_sign_req *req, const char **errmsg)
{
    struct jsonflat members;
    int rc;

    /* The body as clients write it is read without jansson; any other text
     * (and every malformed one) goes to jansson, which decides. */
    if (!jsonflat_read(&members, body, len, JSONFLAT_ALLOW_NUL))
        return http_api_parse_sign_json(body, len, max_message, req, errmsg);
    memset(req, 0, sizeof *req);
    *errmsg = NULL;
    rc = check_sign(&members, max_message, req, errmsg);
    jsonflat_cleanup(&members);
    return refuse(rc, req);
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
