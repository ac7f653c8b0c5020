/*
 * The control listener's HTTP plumbing under <wssignd/http.h>: routing,
 * request parsing through lws, bounded bodies with a deadline, answers with
 * their headers in one write, keep-alive and close, the defences against
 * lws 4.1.6's handling of pipelined requests, and the rule that a request a
 * controller holds outlives its connection. Knows no route by name, writes
 * JSON only for its own two refusals (400 for a request line it cannot
 * take, 404 for a path no route owns), and knows nothing of sign requests.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <uv.h>

#include <wssignd/errors.h>

#include "service.h"
#include "util.h"
#include "wsio.h"

#define HTTP_RESP_HEAD HTTP_RESP_HEAD_BYTES
/* The longest Retry-After a controller may ask for: a day. */
#define HTTP_RETRY_AFTER_MAX 86400u
/* Repeats of BODY_COMPLETION after which lws is taken to be looping inside one call (see
 * "Pipelined requests": it should never happen); while an answer is due one comes per loop
 * turn. */
#define BODY_REPEATS_MAX 1000000u

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Per route: a controller's prefix and handler. */
struct http_route {
    const char *prefix; /* borrowed from the controller's constant table */
    wss_http_handler_cb handler;
    void *state;
};

/* Per daemon: the control listener's routes and what its requests share. */
struct http_server {
    struct wss_service *svc;
    struct http_route *routes;
    const char **prefixes; /* routes[i].prefix, for http_route_match */
    size_t n_routes;
    uv_prepare_t turn; /* counts the loop's turns (see "When an answer is written") */
    uint64_t turns;
    bool has_loop;
    struct wss_http_request *live;  /* every request handed to a controller, until answered */
    struct wss_http_request *spare; /* answered records kept for reuse (->next) */
    size_t n_spare;                 /* at most HTTP_SPARE_REQUESTS_MAX */
    /* Lines a client can cause at will are written at most once a second. */
    struct log_limit timeout_log, pipeline_log;
};

/* Per request handed to a controller: from its request line to wss_http_respond. */
struct wss_http_request {
    struct http_server *srv;
    struct http_txn *txn; /* NULL once the client has gone */
    const struct http_route *route;
    const char *method; /* static */
    char path[HTTP_PATH_MAX];
    char remote[64];
    bool in_handler;
    wss_http_body_cb body_cb; /* set while the body is read, until cb has run */
    size_t body_max;
    char *body; /* owned; kept with the record for reuse up to HTTP_BODY_KEEP_MAX */
    size_t body_len, body_cap;
    wss_http_abort_cb abort_cb;
    void *abort_user;
    unsigned retry_after;                 /* wss_http_retry_after; 0: none */
    struct wss_http_request *prev, *next; /* srv->live */
};

/* ---- pure helpers ---- */

int http_route_match(const char *const *prefixes, size_t n, const char *path)
{
    size_t best_len = 0;
    int best = -1;

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(prefixes[i]);

        if (strncmp(path, prefixes[i], len))
            continue;
        /* Whole segments only: "/v1" owns "/v1" and "/v1/...", not "/v10". */
        if (path[len] != '\0' && path[len] != '/' && !(len && prefixes[i][len - 1] == '/'))
            continue;
        if (best < 0 || len > best_len) {
            best = (int)i;
            best_len = len;
        }
    }
    return best;
}

int http_header_token(const char *name)
{
    char want[64];
    size_t n = name ? strlen(name) : 0;

    if (!n || n + 2 > sizeof want || name[0] == ':')
        return -1;
    for (size_t i = 0; i < n; i++)
        want[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    want[n] = ':';
    want[n + 1] = '\0';
    /* lws's table holds lowercase names with their colon ("authorization:"); the
     * request line's tokens ("get ") and pseudo-headers (":path") cannot match. */
    for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
        const char *s = (const char *)lws_token_to_string((enum lws_token_indexes)t);

        if (s && !strcmp(s, want))
            return t;
    }
    return -1;
}

const char *http_method_name(int method)
{
    static const char *const names[] = {
        [LWSHUMETH_GET] = "GET",         [LWSHUMETH_POST] = "POST",
        [LWSHUMETH_OPTIONS] = "OPTIONS", [LWSHUMETH_PUT] = "PUT",
        [LWSHUMETH_PATCH] = "PATCH",     [LWSHUMETH_DELETE] = "DELETE",
        [LWSHUMETH_CONNECT] = "CONNECT", [LWSHUMETH_HEAD] = "HEAD",
    };

    if (method < 0 || method >= (int)(sizeof names / sizeof names[0]))
        return NULL;
    return names[method];
}

char *http_content_type(char out[HTTP_CTYPE_MAX], const char *ctype)
{
    size_t n = 0;

    /* A header value: a control character (CR, LF) would end the header early. */
    while (ctype && ctype[n] && n < HTTP_CTYPE_MAX - 1 && (unsigned char)ctype[n] >= 0x20 &&
           ctype[n] != 0x7f) {
        out[n] = ctype[n];
        n++;
    }
    out[n] = '\0';
    if (!n)
        snprintf(out, HTTP_CTYPE_MAX, "application/octet-stream");
    return out;
}

bool http_length_exceeds(const char *text, size_t max)
{
    size_t v = 0;

    if (!text[0])
        return false;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (v > (SIZE_MAX - 9) / 10)
            return true; /* more than any bound */
        v = v * 10 + (size_t)(*p - '0');
    }
    return v > max;
}

/* ---- the server ---- */

static void on_turn(uv_prepare_t *h)
{
    struct http_server *srv = h->data;

    srv->turns++;
}

struct http_server *http_server_new(struct wss_service *svc, void *loop)
{
    struct http_server *srv = xcalloc(1, sizeof *srv);

    srv->svc = svc;
    if (loop && uv_prepare_init(loop, &srv->turn) == 0) {
        srv->turn.data = srv;
        uv_prepare_start(&srv->turn, on_turn);
        /* It only counts: it must not keep the loop running on its own. */
        uv_unref((uv_handle_t *)&srv->turn);
        srv->has_loop = true;
    }
    return srv;
}

int http_server_add_route(struct http_server *srv, const char *prefix, wss_http_handler_cb handler,
                          void *state, char *err, size_t errlen)
{
    if (!prefix || prefix[0] != '/' || !handler) {
        snprintf(err, errlen, "an HTTP route needs a prefix beginning with '/' and a handler");
        return WSS_ERR_INVAL;
    }
    for (size_t i = 0; i < srv->n_routes; i++)
        if (!strcmp(srv->routes[i].prefix, prefix)) {
            snprintf(err, errlen, "two controllers serve the HTTP prefix %s", prefix);
            return WSS_ERR_EXISTS;
        }
    srv->routes = xrealloc(srv->routes, (srv->n_routes + 1) * sizeof *srv->routes);
    srv->prefixes = xrealloc(srv->prefixes, (srv->n_routes + 1) * sizeof *srv->prefixes);
    srv->routes[srv->n_routes] = (struct http_route){prefix, handler, state};
    srv->prefixes[srv->n_routes++] = prefix;
    return 0;
}

size_t http_server_route_count(const struct http_server *srv)
{
    return srv ? srv->n_routes : 0;
}

const char *http_server_route_prefix(const struct http_server *srv, size_t i)
{
    return srv->routes[i].prefix;
}

void http_server_stop(struct http_server *srv)
{
    if (!srv || !srv->has_loop)
        return;
    uv_prepare_stop(&srv->turn);
    if (!uv_is_closing((uv_handle_t *)&srv->turn))
        uv_close((uv_handle_t *)&srv->turn, NULL);
    srv->has_loop = false;
}

/* A zeroed request record: a spare one (with its body buffer) if any. */
static struct wss_http_request *request_new(struct http_server *srv)
{
    struct wss_http_request *req = srv->spare;
    char *body;
    size_t body_cap;

    if (!req)
        return xcalloc(1, sizeof *req);
    srv->spare = req->next;
    srv->n_spare--;
    body = req->body;
    body_cap = req->body_cap;
    memset(req, 0, sizeof *req);
    req->body = body;
    req->body_cap = body_cap;
    return req;
}

/* Keeps req (in no list) for reuse, up to the bound, or frees it. */
static void request_recycle(struct http_server *srv, struct wss_http_request *req)
{
    if (srv->n_spare >= HTTP_SPARE_REQUESTS_MAX) {
        free(req->body);
        free(req);
        return;
    }
    /* A large body's buffer goes: a spare record keeps little memory. */
    if (req->body_cap > HTTP_BODY_KEEP_MAX) {
        free(req->body);
        req->body = NULL;
        req->body_cap = 0;
    }
    req->prev = NULL;
    req->next = srv->spare;
    srv->spare = req;
    srv->n_spare++;
}

/* Ends req: out of the live list, then recycled. */
static void request_free(struct wss_http_request *req)
{
    struct http_server *srv = req->srv;

    if (req->prev)
        req->prev->next = req->next;
    else
        srv->live = req->next;
    if (req->next)
        req->next->prev = req->prev;
    request_recycle(srv, req);
}

size_t http_server_spare_requests(const struct http_server *srv, size_t *body_bytes)
{
    size_t bytes = 0;

    for (const struct wss_http_request *r = srv->spare; r; r = r->next)
        bytes += r->body_cap;
    if (body_bytes)
        *body_bytes = bytes;
    return srv->n_spare;
}

void http_server_free(struct http_server *srv)
{
    struct wss_http_request *req;
    size_t leaked = 0;

    if (!srv)
        return;
    while (srv->live) {
        leaked++;
        request_free(srv->live);
    }
    while ((req = srv->spare) != NULL) {
        srv->spare = req->next;
        free(req->body);
        free(req);
    }
    if (leaked)
        log_warn("event=http_requests_unanswered count=%zu", leaked);
    free(srv->routes);
    free(srv->prefixes);
    free(srv);
}

/* ---- answers ---- */

/* Gives back the answer's buffer (an allocated one is freed). */
static void resp_release(struct http_txn *txn)
{
    if (txn->resp != txn->resp_inline)
        free(txn->resp);
    txn->resp = NULL;
}

/* Frees the transaction's answer and flags, keeping srv, wsi, remote and req. */
static void txn_reset(struct http_txn *txn)
{
    resp_release(txn);
    txn->resp_len = 0;
    txn->answered = false;
    txn->retry_after = 0;
}

/*
 * Writes the answer, headers and body in one write: the headers are built in
 * the headroom in front of the body. The content length is sent as a plain
 * header, so lws does not count body bytes against it.
 */
enum written {
    WRITTEN_NOTHING = 0, /* nothing to write yet; txn unchanged */
    WRITTEN_KEEP,        /* written; the connection serves the next request (txn may be gone) */
    WRITTEN_CLOSE,       /* written (or failed); the connection is to close; txn still valid */
    WRITTEN_FAILED,      /* keep-alive failed after the write: close (txn may be gone) */
};

static enum written write_answer(struct http_txn *txn)
{
    struct lws *wsi = txn->wsi;
    unsigned char hdrs[HTTP_HEADERS_MAX], *p = hdrs, *end = hdrs + sizeof hdrs - 1, *start;
    char clen[24];
    size_t hlen, total;
    bool close_after = txn->close_after;
    char retry[16];
    int n, rn = snprintf(retry, sizeof retry, "%u", txn->retry_after);

    if (!txn->answered)
        return WRITTEN_NOTHING;
    /* Keep-alive: the answer waits until lws has read the whole body. */
    if (txn->body_expected && !txn->body_done && !close_after)
        return WRITTEN_NOTHING;
    metrics_http(&txn->srv->svc->metrics, txn->status);
    n = snprintf(clen, sizeof clen, "%zu", txn->resp_len);
    /* A 204 has no body, and so neither a content type nor a length (RFC 9110 8.6). */
    if (lws_add_http_header_status(wsi, txn->status, &p, end) ||
        (txn->status != 204 &&
         (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                       (const unsigned char *)txn->ctype, (int)strlen(txn->ctype),
                                       &p, end) ||
          lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                       (const unsigned char *)clen, n, &p, end))) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        (close_after && lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
                                                     (const unsigned char *)"close", 5, &p, end)) ||
        (txn->retry_after &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                     (const unsigned char *)retry, rn, &p, end)) ||
        lws_finalize_http_header(wsi, &p, end)) {
        txn_reset(txn);
        return WRITTEN_CLOSE;
    }
    hlen = (size_t)(p - hdrs);
    start = (unsigned char *)txn->resp + HTTP_RESP_HEAD - hlen;
    memcpy(start, hdrs, hlen);
    total = hlen + txn->resp_len;
    n = lws_write(wsi, start, total, LWS_WRITE_HTTP_HEADERS);
    txn_reset(txn);
    if (n < (int)total || close_after)
        return WRITTEN_CLOSE;
    /* lws flushes anything it had to buffer before it closes. Keep-alive
     * rebinds the protocol: from here on txn may be freed. */
    return lws_http_transaction_completed(wsi) ? WRITTEN_FAILED : WRITTEN_KEEP;
}

/*
 * When an answer is written. Inside the connection's own callbacks it waits
 * for WRITEABLE. From outside them (a sign result from the signer's
 * connection or the verifier, a timer, a lookup) it is written at once
 * through wsio_write_now, but only once the loop has turned at least once
 * since the request was read whole: lws shows bytes pipelined behind a
 * request on the turn after it read them (see "Pipelined requests"), in
 * its idle phase, which comes after that turn's timers and before its
 * input. The prepare handle counts turns between the two, so an answer
 * from the next turn's input is written at once, while one from the next
 * turn's timers waits for WRITEABLE, as the pipelining check must run
 * first. After a keep-alive write txn may be freed: only wsi is used.
 */
static void answer_ready(struct http_txn *txn)
{
    struct lws *wsi = txn->wsi;
    bool idle = !txn->in_callback && txn->srv->turns > txn->ready_turn;

    if (!wsio_write_now(wsi, idle))
        return;
    switch (write_answer(txn)) {
    case WRITTEN_NOTHING: lws_callback_on_writable(wsi); break;
    case WRITTEN_KEEP: break;
    case WRITTEN_CLOSE:
        /* A callback lws repeats meanwhile closes at once (http_on_body_done). */
        txn->closing = true;
        wsio_kill(wsi);
        break;
    case WRITTEN_FAILED: wsio_kill(wsi); break;
    }
}

/* Room for an answer of len bytes after HTTP_RESP_HEAD: the transaction's own
 * storage when it fits, else allocated (txn_reset gives it back). */
static char *resp_alloc(struct http_txn *txn, size_t len)
{
    resp_release(txn);
    txn->resp = len <= HTTP_RESP_INLINE_MAX ? txn->resp_inline : xmalloc(HTTP_RESP_HEAD + len);
    return txn->resp;
}

/* An answer of the plumbing's own: {"error":{"code":...,"message":...}}. */
static void answer_error(struct http_txn *txn, unsigned status, const char *code,
                         const char *message)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                     message);

    memcpy(resp_alloc(txn, (size_t)n) + HTTP_RESP_HEAD, body, (size_t)n);
    txn->resp_len = (size_t)n;
    txn->status = status;
    snprintf(txn->ctype, sizeof txn->ctype, "application/json");
    txn->answered = true;
    if (txn->body_expected && !txn->body_done)
        txn->close_after = true;
    answer_ready(txn);
}

void wss_http_respond(struct wss_http_request *req, unsigned status, const char *content_type,
                      const void *body, size_t len)
{
    struct http_txn *txn = req->txn;

    if (!txn) {
        request_free(req); /* the client has gone: nothing to answer */
        return;
    }
    txn->req = NULL;
    if (txn->srv->svc->timers)
        timers_disarm(txn->srv->svc->timers, &txn->body_deadline);
    resp_alloc(txn, len);
    if (len)
        memcpy(txn->resp + HTTP_RESP_HEAD, body, len);
    txn->resp_len = len;
    txn->status = status >= 200 && status <= 599 ? status : 500;
    if (txn->status == 204)
        txn->resp_len = 0;
    http_content_type(txn->ctype, content_type);
    txn->retry_after = req->retry_after;
    txn->answered = true;
    /* A body lws has not read whole would be taken for the next request's
     * start (see "Pipelined requests"): such a connection closes after the answer. */
    if (txn->body_expected && !txn->body_done)
        txn->close_after = true;
    request_free(req);
    answer_ready(txn);
}

/* ---- requests ---- */

const char *wss_http_method(const struct wss_http_request *req)
{
    return req->method;
}

const char *wss_http_path(const struct wss_http_request *req)
{
    return req->path;
}

const char *wss_http_remote(const struct wss_http_request *req)
{
    return req->remote;
}

bool wss_http_gone(const struct wss_http_request *req)
{
    return !req->txn;
}

void wss_http_on_abort(struct wss_http_request *req, wss_http_abort_cb cb, void *user)
{
    req->abort_cb = cb;
    req->abort_user = user;
}

int wss_http_peer(const struct wss_http_request *req, struct wss_http_peer *out)
{
    int fd;

    memset(out, 0, sizeof *out);
    out->addr.ss_family = AF_UNSPEC;
    if (!req->txn)
        return WSS_ERR_NOT_FOUND;
    fd = (int)lws_get_socket_fd(req->txn->wsi);
    out->addr_len = sizeof out->addr;
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&out->addr, &out->addr_len) != 0) {
        memset(&out->addr, 0, sizeof out->addr);
        out->addr.ss_family = AF_UNSPEC;
        out->addr_len = 0;
        return 0;
    }
    if (out->addr.ss_family == AF_UNIX) {
        struct ucred cred;
        socklen_t len = sizeof cred;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            out->has_uid = true;
            out->uid = (uint32_t)cred.uid;
        }
    }
    return 0;
}

/* The headers are lws's: readable while lws holds them for the request being handled. */
static bool headers_available(const struct wss_http_request *req)
{
    return req->txn && (req->in_handler || req->txn->in_callback);
}

void wss_http_retry_after(struct wss_http_request *req, unsigned seconds)
{
    req->retry_after = seconds > HTTP_RETRY_AFTER_MAX ? HTTP_RETRY_AFTER_MAX : seconds;
}

int wss_http_query_arg(const struct wss_http_request *req, unsigned index, char *buf, size_t len)
{
    struct lws *wsi;
    int n;

    if (len)
        buf[0] = '\0';
    if (!headers_available(req) || !len || len > (size_t)INT32_MAX || index > INT32_MAX)
        return WSS_ERR_INVAL;
    wsi = req->txn->wsi;
    n = lws_hdr_copy_fragment(wsi, buf, (int)len, WSI_TOKEN_HTTP_URI_ARGS, (int)index);
    if (n >= 0)
        return n;
    buf[0] = '\0';
    /* lws says -1 both past the last argument and for one that does not fit. */
    return lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, (int)index) > 0
               ? WSS_ERR_INVAL
               : WSS_ERR_NOT_FOUND;
}

int wss_http_header(const struct wss_http_request *req, const char *name, char *buf, size_t len)
{
    struct lws *wsi;
    int token, n;
    char custom[72];

    if (len)
        buf[0] = '\0';
    if (!headers_available(req) || !name || !len || len > (size_t)INT32_MAX)
        return WSS_ERR_INVAL;
    wsi = req->txn->wsi;
    token = http_header_token(name);
    if (token >= 0) {
        /* lws does not tell an empty header from an absent one. */
        n = lws_hdr_total_length(wsi, (enum lws_token_indexes)token);
        if (n <= 0)
            return WSS_ERR_NOT_FOUND;
        if ((size_t)n >= len ||
            lws_hdr_copy(wsi, buf, (int)len, (enum lws_token_indexes)token) != n) {
            buf[0] = '\0';
            return WSS_ERR_INVAL;
        }
        return n;
    }
    /* A header lws has no token for: kept by name, lowercase, with its colon. */
    n = snprintf(custom, sizeof custom, "%s:", name);
    if (n < 2 || (size_t)n >= sizeof custom)
        return WSS_ERR_NOT_FOUND;
    for (int i = 0; i < n; i++)
        if (custom[i] >= 'A' && custom[i] <= 'Z')
            custom[i] = (char)(custom[i] - 'A' + 'a');
    if (lws_hdr_custom_length(wsi, custom, n) <= 0)
        return WSS_ERR_NOT_FOUND;
    if ((n = lws_hdr_custom_copy(wsi, buf, (int)len, custom, n)) < 0) {
        buf[0] = '\0';
        return WSS_ERR_INVAL;
    }
    return n;
}

const char *wss_http_body(const struct wss_http_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    /* A reused record's buffer holds nothing before this request's body arrives. */
    return req->body_len ? req->body : NULL;
}

/* Runs the body callback once: the body is whole (0) or refused (an error). */
static void body_end(struct wss_http_request *req, int status)
{
    wss_http_body_cb cb = req->body_cb;

    req->body_cb = NULL;
    cb(req, status, req->route->state);
}

static void on_body_deadline(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct http_txn *txn = container_of(t, struct http_txn, body_deadline);

    if (!txn->req || !txn->req->body_cb || txn->body_done)
        return;
    /* A slow sender: lws restarts its own timeout at every byte, this bounds the whole body. */
    log_limited(&txn->srv->timeout_log, WSS_LOG_INFO, "event=http_body_timeout remote=%s",
                txn->remote);
    txn->body_too_big = true; /* nothing more is read into it */
    body_end(txn->req, WSS_ERR_TIMEOUT);
}

int wss_http_read_body(struct wss_http_request *req, size_t max_bytes, wss_http_body_cb cb)
{
    struct http_txn *txn = req->txn;
    struct timers *ts = req->srv->svc->timers;
    char clen[24];

    if (!cb || !txn || !req->in_handler || req->body_max)
        return WSS_ERR_INVAL;
    if (!txn->body_expected)
        return WSS_ERR_NOT_FOUND;
    /* Refuse a declared body over the bound before reading any of it. */
    if (lws_hdr_copy(txn->wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
        http_length_exceeds(clen, max_bytes))
        return WSS_ERR_PAYLOAD_TOO_LARGE;
    req->body_max = max_bytes ? max_bytes : 1;
    req->body_cb = cb;
    if (ts)
        timers_arm(ts, &txn->body_deadline, util_now_ms() + HTTP_BODY_DEADLINE_MS,
                   on_body_deadline);
    return 0;
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
           http_length_exceeds(clen, 0);
}

/* A request still unanswered when the handler or body callback returns may
 * take until its work's deadline: lws must not time the socket out meanwhile. */
static void after_controller(struct http_txn *txn)
{
    if (txn->req && !txn->req->body_cb)
        lws_set_timeout(txn->wsi, NO_PENDING_TIMEOUT, 0);
}

int http_on_request(struct http_server *srv, struct http_txn *txn, struct lws *wsi)
{
    char *uri = NULL;
    int uri_len = 0, method = lws_http_get_uri_and_method(wsi, &uri, &uri_len), route;
    struct wss_http_request *req;

    txn->srv = srv;
    txn->wsi = wsi;
    txn->ready_turn = srv->turns;
    if (!lws_get_peer_simple(wsi, txn->remote, sizeof txn->remote))
        txn->remote[0] = '\0';
    /* A connection is kept alive only once its request's body has been read
     * whole (lws 4.1.6 would otherwise drop the rest itself and go on with
     * whatever follows it from its buffer: see "Pipelined requests"); a
     * request whose body is not read ends the connection after the answer. */
    txn->body_expected = declares_body(wsi, method);
    txn->in_callback = true;
    if (!http_method_name(method) || uri_len <= 0 || uri_len >= HTTP_PATH_MAX) {
        txn->close_after = true;
        answer_error(txn, 400, "bad_request", "unsupported method or URI too long");
        txn->in_callback = false;
        return 0;
    }
    req = request_new(srv);
    req->srv = srv;
    memcpy(req->path, uri, (size_t)uri_len);
    req->path[uri_len] = '\0';
    route = http_route_match(srv->prefixes, srv->n_routes, req->path);
    if (route < 0) {
        request_recycle(srv, req); /* not in the live list yet */
        answer_error(txn, 404, "not_found", "no such endpoint");
        txn->in_callback = false;
        return 0;
    }
    req->txn = txn;
    req->route = &srv->routes[route];
    req->method = http_method_name(method);
    memcpy(req->remote, txn->remote, sizeof req->remote);
    req->next = srv->live;
    if (req->next)
        req->next->prev = req;
    srv->live = req;
    txn->req = req;
    req->in_handler = true;
    req->route->handler(req, req->route->state);
    /* The handler may have answered: req is then freed, and txn->req NULL. */
    if (txn->req)
        txn->req->in_handler = false;
    txn->in_callback = false;
    after_controller(txn);
    return 0;
}

int http_on_body(struct http_txn *txn, const void *in, size_t len)
{
    struct wss_http_request *req = txn->req;

    if (!len || !req || !req->body_cb || txn->body_too_big)
        return 0; /* answered, not read, or past its bound: lws drains the rest */
    txn->in_callback = true;
    if (len > req->body_max - req->body_len) {
        txn->body_too_big = true;
        body_end(req, WSS_ERR_PAYLOAD_TOO_LARGE);
    } else {
        util_reserve(&req->body, &req->body_cap, req->body_len + len + 1, 256, req->body_max + 1);
        memcpy(req->body + req->body_len, in, len);
        req->body_len += len;
        req->body[req->body_len] = '\0';
    }
    txn->in_callback = false;
    return 0;
}

/*
 * Pipelined requests: bytes behind a request whose answer is not out yet.
 * lws 4.1.6 keeps them and, on every later turn of the loop, either repeats
 * HTTP_BODY_COMPLETION for the request without consuming anything (a POST),
 * or feeds them to a header parser that ignores them and runs the same
 * request again (a request without a body: http_on_rerun). Were it to parse
 * them as a new request after a keep-alive answer, it would take that
 * request's first bytes as its body and loop inside one call for ever. So a
 * connection that pipelines gets its first answer, with "connection:
 * close", and nothing more; and no answer leaves before lws has had a loop
 * turn to show such bytes (see answer_ready).
 */
static void note_pipelined(struct http_txn *txn)
{
    txn->pipelined = txn->close_after = true;
    log_limited(&txn->srv->pipeline_log, WSS_LOG_INFO,
                "event=http_pipelined remote=%s action=close_after_answer", txn->remote);
}

int http_on_body_done(struct http_txn *txn)
{
    struct timers *ts;

    if (txn->closing)
        return -1;
    if (!txn->srv)
        return 0;
    if (txn->body_done) {
        /* A repeat: another request's bytes wait behind this body. lws
         * repeats this on each loop turn until the answer is out (it offers
         * no way to stop it: a flow-controlled h1 connection is never given
         * WRITEABLE), so it is ignored, and the answer closes. */
        if (!txn->pipelined)
            note_pipelined(txn);
        return ++txn->body_repeats > BODY_REPEATS_MAX ? -1 : 0;
    }
    txn->body_done = true;
    txn->ready_turn = txn->srv->turns;
    if ((ts = txn->srv->svc->timers) != NULL)
        timers_disarm(ts, &txn->body_deadline);
    if (txn->answered) {
        lws_callback_on_writable(txn->wsi); /* an answer that waited for the body */
    } else if (txn->req && txn->req->body_cb && !txn->body_too_big) {
        txn->in_callback = true;
        body_end(txn->req, 0);
        txn->in_callback = false;
        after_controller(txn);
    }
    return 0;
}

int http_on_writable(struct http_txn *txn)
{
    if (!txn->srv)
        return 0;
    if (!txn->answered)
        return txn->close_after && !txn->req ? -1 : 0;
    switch (write_answer(txn)) {
    case WRITTEN_NOTHING:
    case WRITTEN_KEEP: return 0;
    case WRITTEN_CLOSE:
    case WRITTEN_FAILED: break;
    }
    return -1;
}

/*
 * A new request reaches this protocol's FILTER_HTTP_CONNECTION only while
 * the previous one still holds the connection (keep-alive rebinds the
 * fallback protocol first): lws is running that request again over the
 * bytes that followed it. Answer it if the answer is ready, and close; an
 * unanswered request is then aborted (its client is gone for good).
 */
int http_on_rerun(struct http_txn *txn)
{
    if (!txn || !txn->srv)
        return -1;
    note_pipelined(txn);
    if (txn->answered && !lws_partial_buffered(txn->wsi))
        write_answer(txn);
    return -1;
}

void http_on_detach(struct http_txn *txn)
{
    struct wss_http_request *req;

    if (!txn || !txn->srv)
        return;
    if (txn->srv->svc->timers)
        timers_disarm(txn->srv->svc->timers, &txn->body_deadline);
    txn_reset(txn);
    req = txn->req;
    txn->req = NULL;
    txn->srv = NULL;
    if (!req)
        return;
    /* The requester left: the request is gone, and its controller is told
     * (one that waits for the body, through the body callback). From here on
     * req does not reach this memory. */
    req->txn = NULL;
    if (req->body_cb)
        body_end(req, WSS_ERR_CONN_CLOSED);
    else if (req->abort_cb)
        req->abort_cb(req, req->abort_user);
}
