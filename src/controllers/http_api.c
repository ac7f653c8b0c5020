/*
 * The HTTP control API controller: POST /v1/sign, GET /v1/keys/{key},
 * GET /metrics, GET /healthz, JSON in and out, optional bearer tokens
 * (failures throttled per client, the token file re-read on reload). It asks
 * for signatures only through <wssignd/service.h>; an HTTP request is
 * answered when its sign callback runs, so the loop never waits. Beyond
 * include/wssignd/ it uses the daemon's private-file reader (token files,
 * systemd credentials) and its log rate limit.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <sodium.h>

#include <wssignd/controller.h>

#include "../files.h"
#include "../log.h"
#include "http_api_parse.h"
#include "http_api_throttle.h"

#define API_PROTOCOL "wssignd-http-api"
#define BODY_MAX_DEFAULT 65536
/* A request body must arrive in full within this many seconds. */
#define BODY_DEADLINE_S 10
/* Failed authentications a client may make in a row; its allowance refills by one a second. */
#define AUTH_BURST_DEFAULT 20
#define TOKEN_MIN_CHARS 16
#define TOKEN_LINE_MAX 512
/* The largest token file read (a few thousand tokens). */
#define TOKEN_FILE_MAX (1024 * 1024)
#define TOKEN_PATH_MAX 4096
#define KEY_PATH "/v1/keys/"

/* Per configuration: what the controller's section and its token file say;
 * made by init and by each reload, owned by struct api once installed. */
struct api_settings {
    size_t body_max;
    unsigned auth_burst;
    uint8_t (*tokens)[crypto_generichash_BYTES]; /* digests of the accepted tokens */
    size_t n_tokens;
};

/* Per controller instance: made by init, freed by cleanup. */
struct api {
    struct wss_service *svc;
    struct api_settings set;
    struct http_api_throttle *throttle; /* failed authentications per client */
    /* Lines a client can cause at will are written at most once a second. */
    struct log_limit auth_log, timeout_log, pipeline_log;
};

enum resp_phase { RESP_NONE = 0, RESP_READY };

/* Room kept in front of a response body for LWS_PRE and the headers, so that
 * headers and body leave in one write. */
#define HEADERS_MAX 256
#define RESP_HEAD (LWS_PRE + HEADERS_MAX)

/*
 * Per HTTP transaction (lws per-session data). lws frees it whenever it
 * rebinds the connection's protocol, which it does between two requests on
 * a keep-alive connection, so nothing outlives one request and its answer.
 */
struct http_req {
    struct api *api;
    struct lws *wsi;
    char remote[64];
    bool is_sign;        /* POST /v1/sign: each refusal gets an audit line */
    bool body_expected;  /* a body follows: lws reads it, then BODY_COMPLETION */
    bool body_done;      /* BODY_COMPLETION was handled */
    char *body;          /* request body being received */
    size_t body_len;
    bool body_too_big;
    bool receiving_body; /* a POST body is being read, against BODY_DEADLINE_S */
    bool pipelined;      /* bytes of another request followed this one */
    unsigned body_repeats; /* BODY_COMPLETIONs lws repeated since (see on_body_done) */
    bool waiting;        /* a sign request is in flight for this transaction */
    char request_id[WSS_REQUEST_ID_BYTES];
    enum resp_phase phase;
    unsigned status;
    const char *ctype;  /* content type of resp (static) */
    char *resp;         /* RESP_HEAD bytes of headroom, then resp_len bytes of the body */
    size_t resp_len;
    bool close_after;   /* close instead of keeping the connection alive */
    bool closing;       /* the last answer is out; lws is to close the connection */
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
    case WSS_ERR_UNAUTHORIZED: return 401;
    case WSS_ERR_TOO_MANY_REQUESTS: return 429;
    case WSS_ERR_UNSUPPORTED_MEDIA_TYPE: return 415;
    case WSS_ERR_PAYLOAD_TOO_LARGE: return 413;
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

/* Frees what the transaction holds and clears it; the connection (api, wsi, remote) stays. */
static void reset(struct http_req *r)
{
    struct api *api = r->api;
    struct lws *wsi = r->wsi;
    char remote[sizeof r->remote];

    free(r->body);
    free(r->resp);
    memcpy(remote, r->remote, sizeof remote);
    memset(r, 0, sizeof *r);
    r->api = api;
    r->wsi = wsi;
    memcpy(r->remote, remote, sizeof remote);
}

static void requester_of(const struct http_req *r, char *out, size_t len)
{
    snprintf(out, len, "http_api %s", r->remote);
}

/*
 * Refuses the request with err's status and code. A refused POST /v1/sign
 * is audited and counted like a sign request the service refuses; one
 * whose body will not be read ends the connection after the answer.
 */
static void refuse(struct http_req *r, int err, const char *message)
{
    char requester[96];

    if (r->is_sign) {
        requester_of(r, requester, sizeof requester);
        wss_audit_refused(r->api->svc, NULL, NULL, 0, err, requester);
    }
    if (r->body_expected && !r->body_done)
        r->close_after = true;
    respond_error(r, status_for(err), wss_err_code(err), message, NULL);
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

    /*
     * Called after handle_sign returned (waiting is set), from another
     * connection's callback or a timer. A signature is written at once (see
     * response_ready): it comes from the signer's connection or the
     * verifier, input that arrives a loop turn at least after the request,
     * so bytes pipelined behind the request have shown themselves by then
     * (on_body_done). Other outcomes can come from a timer in the very next
     * turn, before lws has looked at such bytes, and wait for WRITEABLE.
     */
    r->write_now = r->waiting && res->status == WSS_OK;
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
        refuse(r, rc == HTTP_API_TOO_LARGE ? WSS_ERR_PAYLOAD_TOO_LARGE : WSS_ERR_INVAL, why);
        return;
    }
    requester_of(r, requester, sizeof requester);
    opts.requester = requester;
    /* A refusal here is audited by the service itself. */
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

/* Who the request comes from, as the failed-authentication throttle counts clients. */
static void client_of(struct http_req *r, struct http_api_client *who)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = (int)lws_get_socket_fd(r->wsi);

    memset(&ss, 0, sizeof ss);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNSPEC; /* counted as the one shared "unknown" client */
    http_api_client_of((struct sockaddr *)&ss, fd, who);
}

/* Constant-time check of "Authorization: Bearer <token>" against every known token. */
static bool authorized(struct http_req *r)
{
    struct api *api = r->api;
    char hdr[TOKEN_LINE_MAX + 16];
    uint8_t digest[crypto_generichash_BYTES];
    int n, match = 0;

    if (!api->set.n_tokens)
        return true;
    n = lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 7 || n >= (int)sizeof hdr ||
        lws_hdr_copy(r->wsi, hdr, sizeof hdr, WSI_TOKEN_HTTP_AUTHORIZATION) != n ||
        strncmp(hdr, "Bearer ", 7))
        return false;
    crypto_generichash(digest, sizeof digest, (const uint8_t *)hdr + 7, (size_t)n - 7, NULL, 0);
    /* Compare with every digest, without stopping early, so timing tells nothing. */
    for (size_t i = 0; i < api->set.n_tokens; i++)
        match |= sodium_memcmp(digest, api->set.tokens[i], sizeof digest) == 0;
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

/* True if the request says a body follows (lws then reads one). */
static bool declares_body(struct lws *wsi, int method)
{
    char clen[24];

    /* lws reads a body for POST, PUT and PATCH even without Content-Length. */
    if (method == LWSHUMETH_POST || method == LWSHUMETH_PUT || method == LWSHUMETH_PATCH ||
        lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return true;
    return lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
           strtoull(clen, NULL, 10) > 0;
}

/*
 * Bearer-token check, throttled per client: a client that has used up its
 * failed attempts gets 429 without its token being looked at, so guessing
 * stays slow, while every other client is checked as usual. Returns true if
 * the request may go on; otherwise it has been answered.
 */
static bool admitted(struct http_req *r)
{
    struct api *api = r->api;
    struct http_api_client who;
    uint64_t now = util_now_ms();

    if (!api->set.n_tokens)
        return true;
    /* Clients with no failures have no entry: skip the address lookup for them. */
    if (http_api_throttle_count(api->throttle)) {
        client_of(r, &who);
        if (http_api_throttle_blocked(api->throttle, &who, now)) {
            refuse(r, WSS_ERR_TOO_MANY_REQUESTS,
                   "too many failed authentications from this client; retry later");
            return false;
        }
    }
    if (authorized(r))
        return true;
    client_of(r, &who);
    http_api_throttle_fail(api->throttle, &who, now);
    log_limited(&api->auth_log, WSS_LOG_WARN, "event=auth_failed remote=%s", r->remote);
    refuse(r, WSS_ERR_UNAUTHORIZED, "a valid bearer token is required");
    return false;
}

static int on_http(struct http_req *r, struct lws *wsi)
{
    char *uri_ptr = NULL, uri[256];
    int uri_len = 0, method = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
    char clen[24];

    r->wsi = wsi;
    reset(r);
    lws_get_peer_simple(wsi, r->remote, sizeof r->remote);
    /* A connection is kept alive only once its request's body has been read
     * whole (lws 4.1.6 would otherwise drop the rest itself and go on with
     * whatever follows it from its buffer: see "Pipelined requests"). Only
     * POST /v1/sign reads its body, so any other request with one, and a
     * POST /v1/sign refused before its body is read (refuse()), ends the
     * connection after the answer. */
    r->body_expected = declares_body(wsi, method);
    if (method < 0 || uri_len <= 0 || uri_len >= (int)sizeof uri) {
        respond_error(r, 400, "bad_request", "unsupported method or URI too long", NULL);
        r->close_after = true;
        return 0;
    }
    memcpy(uri, uri_ptr, (size_t)uri_len);
    uri[uri_len] = '\0';
    r->is_sign = method == LWSHUMETH_POST && !strcmp(uri, "/v1/sign");
    r->close_after = r->body_expected && !r->is_sign;

    if (!strcmp(uri, "/healthz")) {
        if (method != LWSHUMETH_GET)
            respond_error(r, 405, "method_not_allowed", "use GET", NULL);
        else
            respond_take(r, 200, json_pack("{s:s}", "status", "ok"));
        return 0;
    }
    if (!admitted(r))
        return 0;
    if (!strcmp(uri, "/v1/sign")) {
        if (method != LWSHUMETH_POST) {
            respond_error(r, 405, "method_not_allowed", "use POST", NULL);
            return 0;
        }
        if (!json_content_type(wsi)) {
            refuse(r, WSS_ERR_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json");
            return 0;
        }
        /* Refuse a declared body over the limit before reading any of it. */
        if (lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
            strtoull(clen, NULL, 10) > r->api->set.body_max) {
            refuse(r, WSS_ERR_PAYLOAD_TOO_LARGE, "request body too large");
            return 0;
        }
        /* lws restarts its own timeout at every body byte: bound the whole body here. */
        r->receiving_body = true;
        lws_set_timer_usecs(wsi, (lws_usec_t)BODY_DEADLINE_S * LWS_US_PER_SEC);
        return 0; /* the body arrives in LWS_CALLBACK_HTTP_BODY */
    }
    if (!strcmp(uri, "/metrics")) {
        size_t len;
        char *text, *buf;

        if (method != LWSHUMETH_GET) {
            respond_error(r, 405, "method_not_allowed", "use GET", NULL);
            return 0;
        }
        text = wss_metrics_render(r->api->svc, &len);
        buf = malloc(RESP_HEAD + len);
        if (!buf)
            abort();
        memcpy(buf + RESP_HEAD, text, len);
        free(text);
        respond_buf_take(r, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
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
    if (len > r->api->set.body_max - r->body_len) {
        r->body_too_big = true;
        refuse(r, WSS_ERR_PAYLOAD_TOO_LARGE, "request body too large");
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
 * header, so lws does not count body bytes against it. Returns -1 when the
 * connection is to close.
 */
static int on_writable(struct http_req *r, struct lws *wsi)
{
    unsigned char hdrs[HEADERS_MAX], *p = hdrs, *end = hdrs + sizeof hdrs - 1, *start;
    char clen[24];
    size_t hlen;
    bool close_after = r->close_after;
    int n;

    if (r->phase == RESP_NONE)
        return close_after && !r->waiting ? -1 : 0;
    /* Keep-alive: the answer waits until lws has read the whole body. */
    if (r->body_expected && !r->body_done && !close_after)
        return 0;
    n = snprintf(clen, sizeof clen, "%zu", r->resp_len);
    if (lws_add_http_header_status(wsi, r->status, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)r->ctype, (int)strlen(r->ctype), &p,
                                     end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                     (const unsigned char *)clen, n, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        (close_after && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                                     (const unsigned char *)"close", 5, &p, end)) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    hlen = (size_t)(p - hdrs);
    start = (unsigned char *)r->resp + RESP_HEAD - hlen;
    memcpy(start, hdrs, hlen);
    if (lws_write(wsi, start, hlen + r->resp_len, LWS_WRITE_HTTP_HEADERS) < (int)(hlen + r->resp_len))
        return -1;
    reset(r);
    /* lws flushes anything it had to buffer before it closes. */
    if (close_after || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/*
 * A response is ready. Inside this connection's callbacks it waits for
 * WRITEABLE. A signature arrives from elsewhere (the signer's connection,
 * the verifier): it is written at once when nothing is pending on the
 * socket, which saves two poll changes and a loop turn per request (see
 * on_sign_result for why only a signature). r may be freed by then
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
        /* A callback lws repeats meanwhile closes at once (on_body_done): lws
         * clears this timeout when it repeats BODY_COMPLETION. */
        r->closing = true;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        /* From a timer lws would not see the timeout until it next wakes up. */
        lws_cancel_service(lws_get_context(wsi));
    }
}

/*
 * Pipelined requests: bytes behind a request whose answer is not out yet.
 * lws 4.1.6 keeps them and, on every later turn of the loop, either repeats
 * HTTP_BODY_COMPLETION for the request without consuming anything (a POST),
 * or feeds them to a header parser that ignores them and runs the same
 * request again (a request without a body). Were it to parse them as a new
 * request after a keep-alive answer, it would take that request's first
 * bytes as its body and loop inside one call for ever. So a connection that
 * pipelines gets its first answer, with "connection: close", and nothing
 * more; and no answer leaves before lws has had a loop turn to show such
 * bytes: answers go out from WRITEABLE, which comes a turn after the
 * request, or at once for a signature, which comes from another
 * connection's input after at least that turn.
 */
static void note_pipelined(struct http_req *r)
{
    r->pipelined = r->close_after = true;
    log_limited(&r->api->pipeline_log, WSS_LOG_INFO,
                "event=http_pipelined remote=%s action=close_after_answer", r->remote);
}

/* Repeats of BODY_COMPLETION after which lws is taken to be looping inside one call (see
 * above: it should never happen); while an answer is due one comes per loop turn. */
#define BODY_REPEATS_MAX 1000000u

/* BODY_COMPLETION: handled once per request, whatever lws repeats. */
static int on_body_done(struct http_req *r, struct lws *wsi)
{
    if (r->closing)
        return -1;
    if (r->body_done) {
        /* A repeat: another request's bytes wait behind this body. lws
         * repeats this on each loop turn until the answer is out (it offers
         * no way to stop it: a flow-controlled h1 connection is never given
         * WRITEABLE), so it is ignored, and the answer closes. */
        if (!r->pipelined)
            note_pipelined(r);
        return ++r->body_repeats > BODY_REPEATS_MAX ? -1 : 0;
    }
    r->body_done = true;
    /* lws 4.1.6 cannot cancel the timer (LWS_SET_TIMER_USEC_CANCEL fires it): it
     * finds receiving_body false and does nothing. */
    r->receiving_body = false;
    if (r->phase == RESP_READY)
        lws_callback_on_writable(wsi); /* an answer that waited for the body */
    else if (r->is_sign && !r->body_too_big)
        handle_sign(r);
    return 0;
}

/*
 * A new request reaches this protocol's FILTER_HTTP_CONNECTION only while
 * the previous one still holds the connection (keep-alive rebinds the
 * fallback protocol first): lws is running that request again over the
 * bytes that followed it. Answer it if the answer is ready, and close.
 */
static int on_rerun(struct http_req *r, struct lws *wsi)
{
    if (!r || !r->api)
        return -1;
    note_pipelined(r);
    if (r->phase == RESP_READY && !lws_partial_buffered(wsi))
        on_writable(r, wsi);
    return -1;
}

/* The transaction's memory is about to go (close, or a protocol rebind): no callback may
 * reach it afterwards. */
static void detach(struct http_req *r)
{
    if (!r || !r->api)
        return;
    r->wsi = NULL;
    /* The requester left: withdraw its request (the callback sees wsi == NULL). */
    if (r->waiting)
        wss_cancel(r->api->svc, r->request_id);
    reset(r);
}

static int callback_api(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    struct http_req *r = user;
    const struct lws_protocols *proto = lws_get_protocol(wsi);

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return -1; /* reached only when lws runs a request again: see on_rerun */
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
        return on_rerun(r, wsi);
    case LWS_CALLBACK_HTTP:
        r->api = proto->user;
        return on_http(r, wsi);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(r, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_done(r, wsi);
    case LWS_CALLBACK_TIMER:
        if (!r->receiving_body)
            return 0;
        /* The body did not arrive in time (a slow sender): 408 and close. */
        log_limited(&r->api->timeout_log, WSS_LOG_INFO, "event=http_body_timeout remote=%s",
                    r->remote);
        lws_return_http_status(wsi, HTTP_STATUS_REQUEST_TIMEOUT, NULL);
        return -1;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writable(r, wsi);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        detach(r);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Frees the token digests of s (wiped first). */
static void settings_cleanup(struct api_settings *s)
{
    if (s->tokens)
        sodium_memzero(s->tokens, s->n_tokens * sizeof *s->tokens);
    free(s->tokens);
    s->tokens = NULL;
    s->n_tokens = 0;
}

/* Adds the tokens of text (the token file at path, NUL-terminated) to s. */
static int parse_tokens(struct api_settings *s, char *text, const char *path, char *err,
                        size_t errlen)
{
    unsigned lineno = 0;
    char *line, *next;

    for (line = text; line; line = next) {
        size_t n;

        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n = strlen(line);
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        if (!n || line[0] == '#')
            continue;
        if (n > TOKEN_LINE_MAX) {
            snprintf(err, errlen, "token file %s: line %u is longer than %d characters", path,
                     lineno, TOKEN_LINE_MAX);
            return WSS_ERR_CONFIG;
        }
        if (n < TOKEN_MIN_CHARS || strpbrk(line, " \t")) {
            snprintf(err, errlen, "token file %s: line %u: tokens must be at least %d characters "
                     "without spaces", path, lineno, TOKEN_MIN_CHARS);
            return WSS_ERR_CONFIG;
        }
        s->tokens = realloc(s->tokens, (s->n_tokens + 1) * sizeof *s->tokens);
        if (!s->tokens)
            abort();
        crypto_generichash(s->tokens[s->n_tokens++], crypto_generichash_BYTES,
                           (const uint8_t *)line, n, NULL, 0);
    }
    return 0;
}

/*
 * Reads the token file named by setting (a path, or "credential:NAME"): one
 * token per line, '#' comments; it must be private to its owner. Fills the
 * tokens of s, or returns an error with s holding none.
 */
static int load_tokens(struct api_settings *s, const char *setting, char *err, size_t errlen)
{
    char path[TOKEN_PATH_MAX], *text = NULL;
    size_t len = 0;
    int rc;

    if ((rc = files_resolve(setting, path, sizeof path, err, errlen)) != 0 ||
        (rc = files_read(path, true, "token file", TOKEN_FILE_MAX, &text, &len, err, errlen)) != 0)
        return rc;
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "token file %s holds a NUL byte", path);
        rc = WSS_ERR_CONFIG;
    } else if ((rc = parse_tokens(s, text, path, err, errlen)) == 0 && !s->n_tokens) {
        snprintf(err, errlen, "token file %s holds no token", path);
        rc = WSS_ERR_CONFIG;
    }
    files_free_secret(text, len + 1);
    if (rc != 0)
        settings_cleanup(s);
    return rc;
}

static const struct wss_opt_spec api_opts[] = {
    {.key = "token_file", .type = WSS_OPT_STRING},
    {.key = "max_body_bytes", .type = WSS_OPT_INTEGER, .min = 1024, .max = 16 * 1024 * 1024,
     .def.i = BODY_MAX_DEFAULT},
    {.key = "auth_failures_burst", .type = WSS_OPT_INTEGER, .min = 1, .max = 100000,
     .def.i = AUTH_BURST_DEFAULT},
    {0},
};

/* Reads the controller's section (and the token file it names) into *s. */
static int read_settings(struct wss_service *svc, const struct wss_opts *opts,
                         struct api_settings *s, char *err, size_t errlen)
{
    const char *token_file;
    int rc;

    memset(s, 0, sizeof *s);
    if ((rc = wss_opts_check(opts, api_opts, err, errlen)) != 0)
        return rc;
    token_file = wss_opts_string(opts, api_opts, "token_file");
    /* Without tokens anyone who reaches the listener can ask for signatures. */
    if (!token_file && !wss_control_is_local(svc)) {
        snprintf(err, errlen, "the control listener is not loopback-only: set "
                 "controllers.http_api.token_file");
        return WSS_ERR_CONFIG;
    }
    s->body_max = (size_t)wss_opts_int(opts, api_opts, "max_body_bytes");
    s->auth_burst = (unsigned)wss_opts_int(opts, api_opts, "auth_failures_burst");
    return token_file ? load_tokens(s, token_file, err, errlen) : 0;
}

static int api_init(struct wss_service *svc, const struct wss_opts *opts, void **state, char *err,
                    size_t errlen)
{
    struct api *api = calloc(1, sizeof *api);
    int rc;

    if (!api)
        abort();
    if ((rc = read_settings(svc, opts, &api->set, err, errlen)) != 0) {
        free(api);
        return rc;
    }
    api->svc = svc;
    api->throttle = http_api_throttle_new(HTTP_API_THROTTLE_MAX, api->set.auth_burst);
    *state = api;
    return 0;
}

/* A reload re-reads the section and the token file: a revoked token stops working at once. */
static int api_reload_prepare(void *state, const struct wss_opts *opts, void **next, char *err,
                              size_t errlen)
{
    struct api *api = state;
    struct api_settings *s = calloc(1, sizeof *s);
    int rc;

    if (!s)
        abort();
    if ((rc = read_settings(api->svc, opts, s, err, errlen)) != 0) {
        free(s);
        return rc;
    }
    *next = s;
    return 0;
}

static void api_reload_commit(void *state, void *next, bool install)
{
    struct api *api = state;
    struct api_settings *s = next;

    if (!s)
        return;
    if (install) {
        settings_cleanup(&api->set);
        api->set = *s;
        http_api_throttle_set_burst(api->throttle, api->set.auth_burst);
        wss_log(WSS_LOG_NOTICE, "event=controller_reloaded name=http_api tokens=%zu",
                api->set.n_tokens);
    } else {
        settings_cleanup(s);
    }
    free(s);
}

static void api_cleanup(void *state)
{
    struct api *api = state;

    if (!api)
        return;
    settings_cleanup(&api->set);
    http_api_throttle_free(api->throttle);
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
    .api_version = WSS_CONTROLLER_API_VERSION,
    .name = "http_api",
    .init = api_init,
    .cleanup = api_cleanup,
    .reload_prepare = api_reload_prepare,
    .reload_commit = api_reload_commit,
    .protocols = api_protocols,
    .mounts = api_mounts,
};
