/*
 * HTTP on the control listener, for controllers.
 *
 * A controller serves URL prefixes by listing struct wss_http_route entries
 * in its struct wss_controller. The daemon parses each request (method,
 * path, headers), routes it by path to one handler, reads its body on
 * request (bounded in size and in time), and writes the answer with its
 * headers, keep-alive or close. The daemon's HTTP library and its quirks
 * stay behind this interface: a pipelining client gets its first answer
 * with "connection: close"; a request whose body is not read whole ends its
 * connection after the answer; an answer that becomes ready while the
 * connection is idle is written at once. Everything runs on the loop thread.
 *
 * Lifetime of a request: the handler receives a struct wss_http_request
 * that the controller answers exactly once with wss_http_respond(), from
 * the handler itself or later (from a sign callback, a timer, a lookup).
 * The request stays valid until that call, whatever happens to its
 * connection: if the client goes away first, the request is "gone", the
 * abort callback (wss_http_on_abort) runs, and the eventual answer is
 * discarded. A controller that never answers a request leaks it until the
 * daemon stops.
 */
#ifndef WSSIGND_HTTP_H
#define WSSIGND_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Per HTTP request on the control listener; owned by the daemon. */
struct wss_http_request;

/*
 * Called once per request whose path the route owns, with the controller's
 * state from init. It answers now or later (wss_http_respond), and may read
 * the body first (wss_http_read_body).
 */
typedef void (*wss_http_handler_cb)(struct wss_http_request *req, void *state);

/* Per URL prefix: constant, listed by a controller; the list ends with {0}. */
struct wss_http_route {
    /* "/healthz", "/v1", or "/" for every path: a prefix matches the path
     * itself and the paths below it ("/v1" matches "/v1" and "/v1/sign", not
     * "/v10"); the longest matching prefix of all controllers wins. Two
     * controllers may not list the same prefix. */
    const char *prefix;
    wss_http_handler_cb handler;
};

/* The request line: the method ("GET", "POST", "PUT", "PATCH", "DELETE",
 * "OPTIONS", "HEAD", "CONNECT") and the path, decoded and without the query
 * string ("/v1/keys/abc"). Valid until the request is answered. */
const char *wss_http_method(const struct wss_http_request *req);
const char *wss_http_path(const struct wss_http_request *req);

/* The client's address for logs ("127.0.0.1", "::1"; empty on a Unix
 * socket). Valid until the request is answered. */
const char *wss_http_remote(const struct wss_http_request *req);

/* Per request: who sent it, as read from its socket. */
struct wss_http_peer {
    struct sockaddr_storage addr; /* the socket's peer; ss_family AF_UNSPEC when unknown */
    socklen_t addr_len;
    bool has_uid; /* a Unix socket: uid is the connecting process's user */
    uint32_t uid;
};

/*
 * Reads the peer of req's connection (getpeername, and SO_PEERCRED on a
 * Unix socket) into *out. Returns 0, or WSS_ERR_NOT_FOUND when the client
 * has gone (*out then reads AF_UNSPEC). Costs two system calls: call it
 * when needed, not for every request.
 */
int wss_http_peer(const struct wss_http_request *req, struct wss_http_peer *out);

/*
 * Copies the value of the request header name (case-insensitive, without
 * the colon: "authorization", "content-type") and a NUL into buf. Returns
 * its length; WSS_ERR_NOT_FOUND when the request has no such header (or
 * one with an empty value, which reads as absent); WSS_ERR_INVAL when the value does not fit len bytes with
 * its NUL (buf is then empty), or when called outside the handler and the
 * body callback (the headers are gone).
 */
int wss_http_header(const struct wss_http_request *req, const char *name, char *buf, size_t len);

/*
 * Copies the index-th argument of the request's query string (0 first;
 * "limit=10" of "/v1/keys?limit=10&after=x"), percent-decoded with '+' read
 * as a space, and a NUL into buf. Arguments are separated by '&' or ';'; an
 * empty one ("a=1&&b=2") reads as "". Returns its length;
 * WSS_ERR_NOT_FOUND past the last argument (at index 0: no query string);
 * WSS_ERR_INVAL when it does not fit len bytes with its NUL (buf is then
 * empty), or when called outside the handler and the body callback.
 */
int wss_http_query_arg(const struct wss_http_request *req, unsigned index, char *buf, size_t len);

/*
 * Called once when the body has arrived whole (status 0: wss_http_body()
 * gives it), has passed max_bytes (WSS_ERR_PAYLOAD_TOO_LARGE; the rest is
 * not read), has not arrived within 10 s of wss_http_read_body
 * (WSS_ERR_TIMEOUT), or when the client went away first
 * (WSS_ERR_CONN_CLOSED: the request is gone, and the abort callback does
 * not run). In every case the callback (or a later call) answers the
 * request; after an error the connection closes after the answer.
 */
typedef void (*wss_http_body_cb)(struct wss_http_request *req, int status, void *state);

/*
 * Reads the request's body, at most max_bytes of it, then calls cb (with
 * the route's state) once, later, never from inside this call. Call it at
 * most once per request, from the handler. Returns 0, or (cb never runs;
 * answer the request now):
 *   WSS_ERR_PAYLOAD_TOO_LARGE  the declared Content-Length exceeds
 *                              max_bytes (nothing of it was read)
 *   WSS_ERR_NOT_FOUND          the request declares no body
 *   WSS_ERR_INVAL              called twice, outside the handler, or cb NULL
 */
int wss_http_read_body(struct wss_http_request *req, size_t max_bytes, wss_http_body_cb cb);

/* The body read by wss_http_read_body (len bytes, not NUL-terminated; NULL
 * and 0 before it has arrived). Valid until the request is answered. */
const char *wss_http_body(const struct wss_http_request *req, size_t *len);

/*
 * Called at most once, when req's client goes away (or the daemon closes
 * its connection) before req is answered, unless its body was still being
 * read (the body callback is told instead). req stays valid and must still
 * be answered with wss_http_respond(), which then only frees it; the
 * callback may answer it itself, or withdraw the work the answer waits for
 * (wss_cancel) so that its callback answers. Setting it again replaces it.
 */
typedef void (*wss_http_abort_cb)(struct wss_http_request *req, void *user);
void wss_http_on_abort(struct wss_http_request *req, wss_http_abort_cb cb, void *user);

/* Adds "Retry-After: seconds" (at most 86400) to the answer req will get
 * (a 429 or 503); 0 removes it. Call before wss_http_respond. */
void wss_http_retry_after(struct wss_http_request *req, unsigned seconds);

/* True once req's client has gone: an answer would be discarded. */
bool wss_http_gone(const struct wss_http_request *req);

/*
 * Answers req and ends it: req is invalid once this returns. status is the
 * HTTP status (200..599; anything else is sent as 500); content_type a
 * header value (copied; cut at 95 characters or at a control character);
 * body len bytes (copied; NULL when len is 0). The daemon adds
 * content-length, "cache-control: no-store", and "connection: close" when
 * the connection is to close after the answer; a 204 goes without a body,
 * a content type or a length. Call it exactly once per
 * request, from the handler, a body or abort callback, or any later loop
 * callback (a sign result, a timer). If the client has gone, the answer is
 * discarded. Never fails.
 */
void wss_http_respond(struct wss_http_request *req, unsigned status, const char *content_type,
                      const void *body, size_t len);

#endif
