/*
 * HTTP on the control listener: the daemon's side of <wssignd/http.h>.
 * Routes requests by path to the controllers' handlers; parses the request
 * line and headers through lws; reads bodies within a size bound and a
 * deadline (on the timer substrate); writes answers with their headers
 * (wsio.h decides between at once and WRITEABLE); keeps a connection alive
 * or closes it; shields controllers from lws 4.1.6's pipelining quirks; and
 * keeps a request a controller holds valid after its connection is gone.
 * ws.c's callback for the control protocol hands each lws event here.
 */
#ifndef WSSIGND_HTTP_INTERNAL_H
#define WSSIGND_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include <wssignd/http.h>

#include "log.h"
#include "timers.h"

struct wss_service;
struct http_server;

/* Longest path taken (with its NUL); a longer one is refused with 400. */
#define HTTP_PATH_MAX 256
/* Longest content type kept for an answer (with its NUL). */
#define HTTP_CTYPE_MAX 96
/* A body must arrive whole within this long of wss_http_read_body. */
#define HTTP_BODY_DEADLINE_MS 10000
/* Room in front of an answer's body for LWS_PRE and the headers, so that headers and
 * body leave in one write. */
#define HTTP_HEADERS_MAX 384
#define HTTP_RESP_HEAD_BYTES (LWS_PRE + HTTP_HEADERS_MAX)
/* The longest answer body written from the transaction's own storage; a longer one
 * is allocated. A signature's answer with a message of up to about 400 bytes fits. */
#define HTTP_RESP_INLINE_MAX 1024
/* Request records (struct wss_http_request) kept for reuse once answered, and the
 * largest body buffer such a record keeps. */
#define HTTP_SPARE_REQUESTS_MAX 32
#define HTTP_BODY_KEEP_MAX 2048

/*
 * Per HTTP transaction: lws's per-session data of the control protocol.
 * lws frees it whenever it rebinds the connection's protocol, which it does
 * between two requests on a keep-alive connection, so it lives for one
 * request and its answer; the struct wss_http_request given to the
 * controller is separate and may outlive it.
 */
struct http_txn {
    struct http_server *srv; /* NULL until the request line arrived */
    struct lws *wsi;
    struct wss_http_request *req; /* the controller's request until answered, else NULL */
    char remote[64];
    uint64_t ready_turn;        /* the loop turn in which the request was read whole */
    bool in_callback;           /* inside one of this connection's lws callbacks */
    bool body_expected;         /* a body follows: lws reads it, then BODY_COMPLETION */
    bool body_done;             /* BODY_COMPLETION was handled */
    bool body_too_big;          /* past the controller's bound: the rest is ignored */
    bool pipelined;             /* bytes of another request followed this one */
    unsigned body_repeats;      /* BODY_COMPLETIONs lws repeated since */
    struct timer body_deadline; /* armed while a body is read */
    bool answered;              /* resp holds the answer, not written yet */
    unsigned status;
    char ctype[HTTP_CTYPE_MAX];
    unsigned retry_after; /* seconds for a Retry-After header; 0: none */
    char *resp; /* HTTP_RESP_HEAD bytes of headroom, then resp_len bytes: resp_inline or owned */
    size_t resp_len;
    bool close_after; /* close instead of keeping the connection alive */
    bool closing;     /* the last answer is out; lws is to close the connection */
    /* An answer up to HTTP_RESP_INLINE_MAX bytes of body is kept here: lws allocates
     * this struct for each request anyway, and frees it between requests. */
    char resp_inline[HTTP_RESP_HEAD_BYTES + HTTP_RESP_INLINE_MAX];
};

/*
 * Makes the HTTP server of svc's control listener. loop (a uv_loop_t *, may
 * be NULL in tests) gets a prepare handle that counts the loop's turns.
 * Never NULL; free with http_server_free.
 */
struct http_server *http_server_new(struct wss_service *svc, void *loop);

/*
 * Adds a route: prefix (borrowed: a controller's constant) served by
 * handler with state. Returns 0, WSS_ERR_INVAL (a prefix that does not
 * begin with '/', or no handler) or WSS_ERR_EXISTS (the prefix is taken),
 * with the reason in err.
 */
int http_server_add_route(struct http_server *srv, const char *prefix, wss_http_handler_cb handler,
                          void *state, char *err, size_t errlen);

/* Number of routes, and the prefix of route i, for the listener's mounts. */
size_t http_server_route_count(const struct http_server *srv);
const char *http_server_route_prefix(const struct http_server *srv, size_t i);

/* Answered request records kept for reuse (at most HTTP_SPARE_REQUESTS_MAX), and
 * in *body_bytes (may be NULL) the body buffer bytes they keep. */
size_t http_server_spare_requests(const struct http_server *srv, size_t *body_bytes);

/* Stops counting loop turns (the loop is ending; its handle is closed). */
void http_server_stop(struct http_server *srv);

/* Frees srv, and any request a controller never answered (logged). NULL is a no-op. */
void http_server_free(struct http_server *srv);

/* The lws events of one transaction (see the ws.c control callback); each
 * returns what the callback returns (-1: close the connection). */
int http_on_request(struct http_server *srv, struct http_txn *txn, struct lws *wsi);
int http_on_body(struct http_txn *txn, const void *in, size_t len);
int http_on_body_done(struct http_txn *txn);
int http_on_writable(struct http_txn *txn);
/* lws runs a request again over the bytes that followed it (pipelining). */
int http_on_rerun(struct http_txn *txn);
/* The transaction's memory is about to go (close, or a protocol rebind). */
void http_on_detach(struct http_txn *txn);

/* ---- pure helpers, exposed for the unit tests ---- */

/*
 * The index of the route whose prefix matches path best (the longest one
 * that is path itself, or a prefix of it ending at a '/' of path, or "/"),
 * among n prefixes; -1 if none matches.
 */
int http_route_match(const char *const *prefixes, size_t n, const char *path);

/* The lws header token for a header name (case-insensitive, no colon), or
 * -1 when lws keeps it as a custom header. Request-line and pseudo-header
 * tokens are never returned. */
int http_header_token(const char *name);

/* The name of an lws method index (LWSHUMETH_*), or NULL. */
const char *http_method_name(int method);

/* Copies a content type for an answer into out (HTTP_CTYPE_MAX bytes), cut
 * at the first control character or at the end of out; empty becomes
 * "application/octet-stream". Returns out. */
char *http_content_type(char out[HTTP_CTYPE_MAX], const char *ctype);

/* True if text (the value of a Content-Length header, NUL-terminated) is a
 * decimal length above max; false for a valid one within it, and for
 * anything else (lws refuses a malformed length itself). */
bool http_length_exceeds(const char *text, size_t max);

#endif
