/*
 * The HTTP control API controller: POST /v1/sign, GET /v1/keys/{key},
 * GET /healthz, JSON in and out, optional bearer tokens. It asks for
 * signatures only through <wssignd/service.h>; an HTTP request is answered
 * when its sign callback runs, so the loop never waits.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>

#include <wssignd/controller.h>

#include "http_api_parse.h"

#define API_PROTOCOL "wssignd-http-api"
#define BODY_MAX_DEFAULT 65536
/* A request body must arrive in full within this many seconds. */
#define BODY_DEADLINE_S 10
/* Failed authentications allowed in a burst; the allowance refills by one a second. */
#define AUTH_BURST_DEFAULT 20
#define TOKEN_MIN_CHARS 16
#define TOKEN_LINE_MAX 512
#define KEY_PATH "/v1/keys/"

/* Per controller instance: made by init, freed by cleanup. */
struct api {
    struct wss_service *svc;
    size_t body_max;
    uint8_t (*tokens)[crypto_generichash_BYTES]; /* digests of the accepted tokens */
    size_t n_tokens;
    double auth_allowance;  /* failed attempts still allowed (token bucket) */
    double auth_burst;
    uint64_t auth_refilled_ms;
};

enum resp_phase { RESP_NONE = 0, RESP_READY };

/* Room kept in front of a response body for LWS_PRE and the headers, so that
 * headers and body leave in one write. */
#define HEADERS_MAX 256
#define RESP_HEAD (LWS_PRE + HEADERS_MAX)

/* Per HTTP connection (lws per-session data), reset for each transaction. */
struct http_req {
    struct api *api;
    struct lws *wsi;
    char remote[64];
    char *body;         /* request body being received */
    size_t body_len;
    bool body_too_big;
    bool receiving_body; /* a POST body is being read, against BODY_DEADLINE_S */
    bool waiting;       /* a sign request is in flight for this transaction */
    char request_id[WSS_REQUEST_ID_BYTES];
    enum resp_phase phase;
    unsigned status;
    const char *ctype;  /* content type of resp (static) */
    char *resp;         /* RESP_HEAD bytes of headroom, then resp_len bytes of the body */
    size_t resp_len;
    bool close_after;   /* close instead of keeping the connection alive */
    bool write_now;     /* the response is ready outside this connection's callbacks */
};

static void response_ready(struct http_req *r);

static unsigned status_for(int err)
{
    switch (err) {
    case WSS_OK: return 200;
    case WSS_ERR_INVAL: return 400;
    case WSS_ERR_NOT_CONNECTED: return 404;
    case WSS_ERR_NOT_FOUND: return 404;
    case WSS_ERR_REJECTED: return 422;
    case WSS_ERR_BAD_SIG: return 502;
    case WSS_ERR_CONN_CLOSED: return 502;
    case WSS_ERR_SHUTTING_DOWN: return 503;
    case WSS_ERR_OVERLOADED: return 503;
    case WSS_ERR_TIMEOUT: return 504;
    default: return 500;
    }
}

/* Takes ownership of body (a jansson object) and makes it the response. */
static void respond_take(struct http_req *r, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;

    json_decref(body);
    free(r->resp);
    r->resp = malloc(RESP_HEAD + len + 1);
    if (!r->resp || !text) {
        free(text);
        free(r->resp);
        r->resp = NULL;
        r->close_after = true;
        response_ready(r);
        return;
    }
    memcpy(r->resp + RESP_HEAD, text, len);
    free(text);
    r->resp_len = len;
    r->status = status;
    r->ctype = "application/json";
    r->phase = RESP_READY;
    response_ready(r);
}

/* Makes buf (RESP_HEAD headroom, then len bytes) the response; takes ownership of buf. */
static void respond_buf_take(struct http_req *r, unsigned status, const char *ctype, char *buf,
                             size_t len)
{
    free(r->resp);
    r->resp = buf;
    r->resp_len = len;
    r->status = status;
    r->ctype = ctype;
    r->phase = RESP_READY;
    response_ready(r);
}

static void respond_error(struct http_req *r, unsigned status, const char *code,
                          const char *message, const char *request_id)
{
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);

    if (request_id && request_id[0])
        json_object_set_new(err, "request_id", json_string(request_id));
    respond_take(r, status, json_pack("{s:o}", "error", err));
}

static void respond_wss_error(struct http_req *r, int err, const char *detail)
{
    char msg[320];

    if (detail)
        snprintf(msg, sizeof msg, "%s: %s", wss_strerror(err), detail);
    else
        snprintf(msg, sizeof msg, "%s", wss_strerror(err));
    respond_error(r, status_for(err), wss_err_code(err), msg, r->request_id);
}

static json_t *b64_string(const uint8_t *bin, size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *text = malloc(n);
    json_t *s;

    if (!text)
        return NULL;
    sodium_bin2base64(text, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
    s = json_string(text);
    free(text);
    return s;
}

static void reset(struct http_req *r)
{
    free(r->body);
    free(r->resp);
    r->body = r->resp = NULL;
    r->body_len = r->resp_len = 0;
    r->body_too_big = r->waiting = r->receiving_body = r->write_now = false;
    r->request_id[0] = '\0';
    r->phase = RESP_NONE;
}

/* Copies n bytes of s to p; returns the end. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Writes "name":"<base64 of bin>" at p (room for it and a NUL is the caller's); returns the end. */
static char *put_b64_field(char *p, const char *name, const uint8_t *bin, size_t len)
{
    size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);

    p = put(p, "\"", 1);
    p = put(p, name, strlen(name));
    p = put(p, "\":\"", 3);
    sodium_bin2base64(p, n, bin, len, sodium_base64_VARIANT_ORIGINAL);
    p += n - 1;
    return put(p, "\"", 1);
}

/*
 * The 200 answer to a sign request, sent for every signature: written
 * straight into the response buffer instead of through jansson. Its fields
 * need no escaping (base64, and a request id the daemon made of hex digits
 * and dashes, checked here). Same bytes as jansson's compact output.
 * Returns -1, having done nothing, if the id is not of that form or memory
 * is short.
 */
static int respond_signed(struct http_req *r, const struct wss_sign_result *res)
{
    static const char head[] = "{\"request_id\":\"";
    size_t idlen = strlen(res->request_id), cap;
    char *buf, *p;

    if (strspn(res->request_id, "0123456789abcdef-") != idlen)
        return -1;
    /* Per base64 field at most 16 bytes besides the base64: the name (public_key is the
     * longest), four quotes, a colon and the comma or closing brace after it. */
    cap = sizeof head + idlen + 2 + 3 * 16 +
          sodium_base64_ENCODED_LEN(WSS_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL) +
          sodium_base64_ENCODED_LEN(res->message_len, sodium_base64_VARIANT_ORIGINAL) +
          sodium_base64_ENCODED_LEN(WSS_SIGNATURE_BYTES, sodium_base64_VARIANT_ORIGINAL);
    if (!(buf = malloc(RESP_HEAD + cap)))
        return -1;
    p = put(buf + RESP_HEAD, head, sizeof head - 1);
    p = put(p, res->request_id, idlen);
    p = put(p, "\",", 2);
    p = put_b64_field(p, "public_key", res->public_key, WSS_PUBLIC_KEY_BYTES);
    p = put(p, ",", 1);
    p = put_b64_field(p, "message", res->message, res->message_len);
    p = put(p, ",", 1);
    p = put_b64_field(p, "signature", res->signature, WSS_SIGNATURE_BYTES);
    p = put(p, "}", 1);
    respond_buf_take(r, 200, "application/json", buf, (size_t)(p - (buf + RESP_HEAD)));
    return 0;
}

static void on_sign_result(const struct wss_sign_result *res, void *user)
{
    struct http_req *r = user;
    json_t *body;

    /* Called after handle_sign returned (waiting is set): from another connection's callback or a timer. */
    r->write_now = r->waiting;
    r->waiting = false;
    if (!r->wsi)
        return; /* the client has gone; nothing to answer */
    if (res->status != WSS_OK) {
        respond_wss_error(r, res->status, res->detail);
        return;
    }
    if (respond_signed(r, res) == 0)
        return;
    body = json_pack("{s:s, s:o, s:o, s:o}", "request_id", res->request_id, "public_key",
                     b64_string(res->public_key, WSS_PUBLIC_KEY_BYTES), "message",
                     b64_string(res->message, res->message_len), "signature",
                     b64_string(res->signature, WSS_SIGNATURE_BYTES));
    respond_take(r, 200, body);
}

static void handle_sign(struct http_req *r)
{
    struct api *api = r->api;
    uint8_t key[WSS_PUBLIC_KEY_BYTES], *msg = NULL;
    size_t msglen = 0;
    struct wss_sign_opts opts = {0};
    const char *why = NULL;
    char requester[96];
    int rc;

    rc = http_api_parse_sign(r->body, r->body_len, wss_max_message_bytes(api->svc), key, &msg,
                             &msglen, &opts.timeout_ms, &why);
    if (rc != 0) {
        respond_error(r, (unsigned)rc,
                      rc == HTTP_API_TOO_LARGE ? "payload_too_large" : "bad_request", why, NULL);
        return;
    }
    snprintf(requester, sizeof requester, "http_api %s", r->remote);
    opts.requester = requester;
    rc = wss_send_to_sign(api->svc, key, msg, msglen, &opts, on_sign_result, r, r->request_id);
    free(msg);
    if (rc != 0) {
        respond_wss_error(r, rc, NULL);
        return;
    }
    r->waiting = true;
    /* The answer may take until the request's deadline; lws must not time the socket out. */
    lws_set_timeout(r->wsi, NO_PENDING_TIMEOUT, 0);
}

static void handle_key(struct http_req *r, const char *text)
{
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    struct wss_presence p;
    json_t *body;

    if (http_api_parse_key(text, strlen(text), key) != 0) {
        respond_error(r, 400, "bad_request", "key must be base64url of 32 bytes", NULL);
        return;
    }
    if (!wss_lookup_key(r->api->svc, key, &p)) {
        respond_error(r, 404, "not_connected", "no signer holding this key is connected", NULL);
        return;
    }
    body = json_pack("{s:o, s:b, s:I, s:s, s:I}", "public_key", b64_string(key, sizeof key),
                     "connected", 1, "connected_at", (json_int_t)p.connected_at_ms, "session_id",
                     p.session_id, "pending", (json_int_t)p.pending);
    respond_take(r, 200, body);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * Token guessing is bounded by a bucket of failed attempts: while it is empty
 * every request that needs a token is answered 429 without a comparison.
 */
static bool auth_throttled(struct api *api)
{
    uint64_t now = now_ms();

    api->auth_allowance += (double)(now - api->auth_refilled_ms) / 1000.0;
    if (api->auth_allowance > api->auth_burst)
        api->auth_allowance = api->auth_burst;
    api->auth_refilled_ms = now;
    return api->auth_allowance < 1.0;
}

/* Constant-time check of "Authorization: Bearer <token>" against every known token. */
static bool authorized(struct http_req *r)
{
    struct api *api = r->api;
    char hdr[TOKEN_LINE_MAX + 16];
    uint8_t digest[crypto_generichash_BYTES];
    int n, match = 0;

    if (!api->n_tokens)
        return true;
    n = lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 7 || n >= (int)sizeof hdr ||
        lws_hdr_copy(r->wsi, hdr, sizeof hdr, WSI_TOKEN_HTTP_AUTHORIZATION) != n ||
        strncmp(hdr, "Bearer ", 7))
        return false;
    crypto_generichash(digest, sizeof digest, (const uint8_t *)hdr + 7, (size_t)n - 7, NULL, 0);
    /* Compare with every digest, without stopping early, so timing tells nothing. */
    for (size_t i = 0; i < api->n_tokens; i++)
        match |= sodium_memcmp(digest, api->tokens[i], sizeof digest) == 0;
    sodium_memzero(hdr, sizeof hdr);
    return match;
}

/* A body is JSON when it says so, or says nothing (curl -d says form-urlencoded). */
static bool json_content_type(struct lws *wsi)
{
    char ctype[128];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);

    if (n <= 0)
        return true;
    if (n >= (int)sizeof ctype || lws_hdr_copy(wsi, ctype, sizeof ctype,
                                               WSI_TOKEN_HTTP_CONTENT_TYPE) != n)
        return false;
    return !strncasecmp(ctype, "application/json", 16) && (ctype[16] == '\0' || ctype[16] == ';' ||
                                                          ctype[16] == ' ');
}

static int on_http(struct http_req *r, struct lws *wsi)
{
    char *uri_ptr = NULL, uri[256];
    int uri_len = 0, method = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
    char clen[24];

    reset(r);
    r->wsi = wsi;
    lws_get_peer_simple(wsi, r->remote, sizeof r->remote);
    if (method < 0 || uri_len <= 0 || uri_len >= (int)sizeof uri) {
        respond_error(r, 400, "bad_request", "unsupported method or URI too long", NULL);
        r->close_after = true;
        return 0;
    }
    memcpy(uri, uri_ptr, (size_t)uri_len);
    uri[uri_len] = '\0';

    if (!strcmp(uri, "/healthz")) {
        if (method != LWSHUMETH_GET)
            respond_error(r, 405, "method_not_allowed", "use GET", NULL);
        else
            respond_take(r, 200, json_pack("{s:s}", "status", "ok"));
        return 0;
    }
    if (r->api->n_tokens && auth_throttled(r->api)) {
        respond_error(r, 429, "too_many_requests", "too many failed authentications; retry later",
                      NULL);
        r->close_after = method == LWSHUMETH_POST;
        return 0;
    }
    if (!authorized(r)) {
        r->api->auth_allowance -= 1.0;
        wss_log(WSS_LOG_WARN, "event=auth_failed remote=%s", r->remote);
        respond_error(r, 401, "unauthorized", "a valid bearer token is required", NULL);
        r->close_after = method == LWSHUMETH_POST; /* its body is not read */
        return 0;
    }
    if (!strcmp(uri, "/v1/sign")) {
        if (method != LWSHUMETH_POST) {
            respond_error(r, 405, "method_not_allowed", "use POST", NULL);
            return 0;
        }
        if (!json_content_type(wsi)) {
            respond_error(r, 415, "unsupported_media_type", "send the body as application/json",
                          NULL);
            r->close_after = true;
            return 0;
        }
        /* Refuse a declared body over the limit before reading any of it. */
        if (lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
            strtoull(clen, NULL, 10) > r->api->body_max) {
            respond_error(r, 413, "payload_too_large", "request body too large", NULL);
            r->close_after = true;
        }
        /* lws restarts its own timeout at every body byte: bound the whole body here. */
        r->receiving_body = true;
        lws_set_timer_usecs(wsi, (lws_usec_t)BODY_DEADLINE_S * LWS_US_PER_SEC);
        return 0; /* the body arrives in LWS_CALLBACK_HTTP_BODY */
    }
    if (!strcmp(uri, "/metrics")) {
        size_t len;
        char *text;

        if (method != LWSHUMETH_GET) {
            respond_error(r, 405, "method_not_allowed", "use GET", NULL);
            return 0;
        }
        text = wss_metrics_render(r->api->svc, RESP_HEAD, &len);
        respond_buf_take(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        return 0;
    }
    if (!strncmp(uri, KEY_PATH, strlen(KEY_PATH))) {
        if (method != LWSHUMETH_GET)
            respond_error(r, 405, "method_not_allowed", "use GET", NULL);
        else
            handle_key(r, uri + strlen(KEY_PATH));
        return 0;
    }
    respond_error(r, 404, "not_found", "no such endpoint", NULL);
    return 0;
}

static int on_body(struct http_req *r, const void *in, size_t len)
{
    if (!len)
        return 0;
    if (r->phase != RESP_NONE || r->body_too_big)
        return 0;
    if (len > r->api->body_max - r->body_len) {
        r->body_too_big = true;
        r->close_after = true;
        respond_error(r, 413, "payload_too_large", "request body too large", NULL);
        return 0;
    }
    r->body = realloc(r->body, r->body_len + len + 1);
    if (!r->body)
        return -1;
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    return 0;
}

/*
 * Writes the response, headers and body in one write: the headers are built
 * in the headroom in front of the body. The content length is sent as a plain
 * header, so lws does not count body bytes against it.
 */
static int on_writable(struct http_req *r, struct lws *wsi)
{
    unsigned char hdrs[HEADERS_MAX], *p = hdrs, *end = hdrs + sizeof hdrs - 1, *start;
    char clen[24];
    size_t hlen;
    int n;

    if (r->phase == RESP_NONE)
        return r->close_after && !r->waiting ? -1 : 0;
    n = snprintf(clen, sizeof clen, "%zu", r->resp_len);
    if (lws_add_http_header_status(wsi, r->status, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)r->ctype, (int)strlen(r->ctype), &p,
                                     end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                     (const unsigned char *)clen, n, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    hlen = (size_t)(p - hdrs);
    start = (unsigned char *)r->resp + RESP_HEAD - hlen;
    memcpy(start, hdrs, hlen);
    if (lws_write(wsi, start, hlen + r->resp_len, LWS_WRITE_HTTP_HEADERS) < (int)(hlen + r->resp_len))
        return -1;
    reset(r);
    if (r->close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/*
 * A response is ready. Inside this connection's callbacks it waits for
 * WRITEABLE. A sign result arrives from elsewhere (the signer's connection, a
 * timer): it is written at once when nothing is pending on the socket, which
 * saves two poll changes and a loop turn per request. r may be freed by then
 * (lws_http_transaction_completed rebinds the protocol): only wsi is used after.
 */
static void response_ready(struct http_req *r)
{
    struct lws *wsi = r->wsi;
    bool now = r->write_now;

    r->write_now = false;
    if (!now || lws_partial_buffered(wsi)) {
        lws_callback_on_writable(wsi);
        return;
    }
    if (on_writable(r, wsi) < 0) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        /* From a timer lws would not see the timeout until it next wakes up. */
        lws_cancel_service(lws_get_context(wsi));
    }
}

static int callback_api(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct http_req *r = user;
    const struct lws_protocols *proto = lws_get_protocol(wsi);

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return -1; /* no WebSocket or h2c on the control listener */
    case LWS_CALLBACK_HTTP:
        r->api = proto->user;
        return on_http(r, wsi);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(r, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        /* lws 4.1.6 cannot cancel the timer (LWS_SET_TIMER_USEC_CANCEL fires it): it
         * finds receiving_body false and does nothing. */
        r->receiving_body = false;
        if (r->phase == RESP_NONE && !r->body_too_big)
            handle_sign(r);
        return 0;
    case LWS_CALLBACK_TIMER:
        if (!r->receiving_body)
            return 0;
        /* The body did not arrive in time (a slow sender): 408 and close. */
        wss_log(WSS_LOG_INFO, "event=http_body_timeout remote=%s", r->remote);
        lws_return_http_status(wsi, HTTP_STATUS_REQUEST_TIMEOUT, NULL);
        return -1;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writable(r, wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (!r || !r->api)
            return 0;
        r->wsi = NULL;
        /* The requester left: withdraw its request (the callback sees wsi == NULL). */
        if (r->waiting)
            wss_cancel(r->api->svc, r->request_id);
        reset(r);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Reads the token file: one token per line, '#' comments; it must be private to its owner. */
static int load_tokens(struct api *api, const char *path, char *err, size_t errlen)
{
    char line[TOKEN_LINE_MAX + 2];
    struct stat st;
    FILE *f;
    int rc = 0;

    f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read token file %s: %s", path, strerror(errno));
        return WSS_ERR_IO;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        snprintf(err, errlen, "token file %s must be a regular file readable only by its owner "
                 "(chmod 600)", path);
        fclose(f);
        return WSS_ERR_CONFIG;
    }
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);

        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            snprintf(err, errlen, "token file %s: line too long", path);
            rc = WSS_ERR_CONFIG;
            break;
        }
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        if (!n || line[0] == '#')
            continue;
        if (n < TOKEN_MIN_CHARS || strchr(line, ' ') || strchr(line, '\t')) {
            snprintf(err, errlen, "token file %s: tokens must be at least %d characters without "
                     "spaces", path, TOKEN_MIN_CHARS);
            rc = WSS_ERR_CONFIG;
            break;
        }
        api->tokens = realloc(api->tokens, (api->n_tokens + 1) * sizeof *api->tokens);
        if (!api->tokens)
            abort();
        crypto_generichash(api->tokens[api->n_tokens++], crypto_generichash_BYTES,
                           (const uint8_t *)line, n, NULL, 0);
    }
    sodium_memzero(line, sizeof line);
    fclose(f);
    if (!rc && !api->n_tokens) {
        snprintf(err, errlen, "token file %s holds no token", path);
        rc = WSS_ERR_CONFIG;
    }
    return rc;
}

static const struct wss_opt_spec api_opts[] = {
    {"token_file", 's'},
    {"max_body_bytes", 'i'},
    {"auth_failures_burst", 'i'},
    {NULL, 0},
};

static int api_init(struct wss_service *svc, const struct wss_opts *opts, void **state, char *err,
                    size_t errlen)
{
    struct api *api;
    const char *token_file;
    long long body_max, burst;
    int rc;

    if ((rc = wss_opts_check(opts, api_opts, err, errlen)) != 0)
        return rc;
    body_max = wss_opts_int(opts, "max_body_bytes", BODY_MAX_DEFAULT);
    if (body_max < 1024 || body_max > 16 * 1024 * 1024) {
        snprintf(err, errlen, "key 'controllers.http_api.max_body_bytes' must be 1024..16777216");
        return WSS_ERR_CONFIG;
    }
    burst = wss_opts_int(opts, "auth_failures_burst", AUTH_BURST_DEFAULT);
    if (burst < 1 || burst > 100000) {
        snprintf(err, errlen, "key 'controllers.http_api.auth_failures_burst' must be 1..100000");
        return WSS_ERR_CONFIG;
    }
    token_file = wss_opts_string(opts, "token_file", NULL);
    /* Without tokens anyone who reaches the listener can ask for signatures. */
    if (!token_file && !wss_control_is_local(svc)) {
        snprintf(err, errlen, "the control listener is not loopback-only: set "
                 "controllers.http_api.token_file");
        return WSS_ERR_CONFIG;
    }
    api = calloc(1, sizeof *api);
    if (!api)
        abort();
    api->svc = svc;
    api->body_max = (size_t)body_max;
    api->auth_burst = api->auth_allowance = (double)burst;
    api->auth_refilled_ms = now_ms();
    if (token_file && (rc = load_tokens(api, token_file, err, errlen)) != 0) {
        free(api->tokens);
        free(api);
        return rc;
    }
    *state = api;
    return 0;
}

static void api_cleanup(void *state)
{
    struct api *api = state;

    if (!api)
        return;
    if (api->tokens)
        sodium_memzero(api->tokens, api->n_tokens * sizeof *api->tokens);
    free(api->tokens);
    free(api);
}

static const struct lws_protocols api_protocols[] = {
    {API_PROTOCOL, callback_api, sizeof(struct http_req), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct wss_mount api_mounts[] = {
    {"/", API_PROTOCOL},
    {NULL, NULL},
};

const struct wss_controller http_api_controller = {
    .name = "http_api",
    .init = api_init,
    .cleanup = api_cleanup,
    .protocols = api_protocols,
    .mounts = api_mounts,
};
