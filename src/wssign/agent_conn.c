/*
 * The agent's lws client: the context, one WebSocket connection to the
 * daemon at a time, reconnects with backoff, keep-alive pings, frame
 * reassembly and the outgoing queue. Owns the lws context, the receive
 * buffer and the queued frames; what the frames mean is its user's (signer.c
 * through agent.c). The lws callbacks below only hand off.
 */
#include "agent_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "backoff.h"
#include "crypto.h"
#include "log.h"
#include "log_lws.h"
#include "util.h"
#include "wire.h"

/* The WebSocket subprotocol asked for: the protocol version itself. */
#define AGENT_PROTOCOL WIRE_VERSION
#define DEFAULT_PATH "/v1/ws"
/* Slack on top of the base64 of the largest message: the rest of a sign_request. */
#define RX_SLACK 4096
/* How often the stop deadline is looked at, and the user's work polled while busy. */
#define HOUSEKEEPING_MS 100
#define TICK_MS 10
/* How long an orderly close may take once a stop begins. */
#define STOP_GRACE_MS 2000
/* How long a close frame may wait for a server that does not read. */
#define CLOSE_GRACE_S 5
/* Close codes the daemon uses for its own reasons. */
#define CLOSE_SUPERSEDED 4001
#define CLOSE_INTRO_TIMEOUT 4002

/* Per message: one queued outgoing frame (LWS_PRE headroom, then len bytes). */
struct txbuf {
    struct txbuf *next;
    char *buf;
    size_t len;
};

/* Per agent: the client, reachable from lws through lws_context_user(). */
struct agent_conn {
    struct agent_conn_cfg cfg;
    struct agent_conn_hooks hooks;
    void *user;
    size_t rx_max; /* largest message reassembled */
    char host_header[CRYPTO_HOST_MAX + 16];
    struct backoff backoff;
    lws_retry_bo_t keepalive;
    struct lws_context *ctx;
    struct lws *wsi; /* the connection, NULL between connections */
    bool established;
    bool introduced; /* the daemon accepted this connection's introduction */
    lws_sorted_usec_list_t sul_connect;
    bool connect_scheduled;
    lws_sorted_usec_list_t sul_handshake; /* deadline for connect + introduction */
    lws_sorted_usec_list_t sul_housekeeping;
    lws_sorted_usec_list_t sul_tick;
    char *rx; /* the message being reassembled */
    size_t rx_len, rx_cap;
    struct txbuf *tx_head, **tx_tail;
    size_t tx_bytes; /* queued in tx_head..., not yet handed to lws */
    int close_code;  /* from the peer's close frame, 0 if none */
    char close_reason[128];
    const char *local_close;  /* why we closed, NULL if the peer did */
    int closing_code;         /* close decided: the code to send, 0 if none */
    const char *closing_text; /* and its reason text */
    char tls_error[160];      /* certificate check failure of this attempt, "" if none */
    /* wss://: the daemon's last session ticket, offered on the next connection so the
     * daemon resumes the session instead of a full handshake; NULL before the first. */
    SSL_SESSION *tls_session;
    const SSL_SESSION *tls_seen; /* the connection's session tls_session copies */
    bool stopping;
    uint64_t stop_deadline_ms;
    bool done;
    unsigned long attempts; /* connection attempts since start (for logs) */
};

static void schedule_connect(struct agent_conn *c, const char *why);

/* ---- outgoing queue ---- */

static void tx_clear(struct agent_conn *c)
{
    while (c->tx_head) {
        struct txbuf *t = c->tx_head;

        c->tx_head = t->next;
        free(t->buf);
        free(t);
    }
    c->tx_tail = &c->tx_head;
    c->tx_bytes = 0;
}

static void rx_clear(struct agent_conn *c)
{
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

/*
 * Ends the connection for a reason of ours, from anywhere (the receive path
 * included): nothing more is read or sent on it, and the close frame (code,
 * text) goes out from the next writable callback. A server that does not
 * read never makes the connection writable: lws drops it after
 * CLOSE_GRACE_S. With polite false it is dropped at once, without a close
 * frame (there is no point queueing one behind what the server did not read).
 *
 * Why not return -1 from the receive callback: lws 4.1.6's client parser
 * (lws_ws_client_rx_sm) skips resetting its buffer index when the callback
 * returns non-zero, and goes on reading the connection during the close
 * handshake; the rest of a frame larger than the receive buffer is then
 * written past the end of the buffer.
 */
static void close_connection(struct agent_conn *c, int code, const char *text, const char *why,
                             bool polite)
{
    if (!c->wsi || c->closing_code)
        return;
    c->closing_code = code;
    c->closing_text = text;
    c->local_close = why;
    rx_clear(c);
    tx_clear(c);
    if (polite) {
        lws_callback_on_writable(c->wsi);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_GRACE_S);
    } else {
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    }
}

/* ---- TLS session resumption ---- */

/*
 * Keeps a copy of the connection's TLS session once the daemon has sent a
 * ticket for it (TLS 1.3 tickets come after the handshake: by the WebSocket
 * upgrade's answer they have arrived from wssignd, and the introduction looks
 * again). A copy, because OpenSSL marks the connection's own session object
 * not resumable when the connection ends without a TLS close (a dropped
 * network path, a killed daemon), which since TLS 1.1 need not stop a
 * resumption and is exactly when reconnecting quickly matters.
 */
static void keep_session(struct agent_conn *c, struct lws *wsi)
{
    SSL *ssl = lws_get_ssl(wsi);
    SSL_SESSION *s = ssl ? SSL_get0_session(ssl) : NULL, *copy;

    if (!s || s == c->tls_seen || !SSL_SESSION_is_resumable(s))
        return;
    if (!(copy = SSL_SESSION_dup(s))) {
        ERR_clear_error();
        return;
    }
    SSL_SESSION_free(c->tls_session);
    c->tls_session = copy;
    c->tls_seen = s; /* compared only, never dereferenced */
}

/*
 * The client SSL_CTX's info callback: as a connection's handshake starts,
 * before its ClientHello is made, offer the kept session. lws 4.1.6 has no
 * hook between creating a connection's SSL and SSL_connect, and its own
 * LWS_CALLBACK_SSL_INFO cannot be used on a client connection (it reads the
 * client SSL_CTX's lws data as a context).
 */
static void on_tls_info(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl; /* the connection's own SSL, given const by OpenSSL */
    struct agent_conn *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_START) || !c || !c->tls_session)
        return;
    if (SSL_set_session(ssl, c->tls_session) != 1)
        ERR_clear_error(); /* a full handshake then */
}

size_t agent_conn_headroom(void)
{
    return LWS_PRE;
}

void agent_conn_send(struct agent_conn *c, char *buf, size_t len)
{
    struct txbuf *t;

    if (!c->wsi || !c->established || c->closing_code) {
        free(buf);
        return;
    }
    /* Bounded: a server that sends requests and never reads the answers
     * would otherwise grow the queue without limit. One frame is always
     * accepted into an empty queue, whatever its size. */
    if (c->tx_bytes && c->tx_bytes + len > c->cfg.max_queued_bytes) {
        free(buf);
        log_warn("event=queue_full queued_bytes=%zu frame_bytes=%zu max_queued_bytes=%zu "
                 "message=\"the server does not read the answers\"",
                 c->tx_bytes, len, c->cfg.max_queued_bytes);
        close_connection(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "queue full", "queue full", false);
        return;
    }
    t = xcalloc(1, sizeof *t);
    t->buf = buf;
    t->len = len;
    *c->tx_tail = t;
    c->tx_tail = &t->next;
    c->tx_bytes += len;
    lws_callback_on_writable(c->wsi);
}

void agent_conn_introduced(struct agent_conn *c)
{
    if (c->wsi)
        keep_session(c, c->wsi);
    c->introduced = true;
    lws_sul_cancel(&c->sul_handshake);
    backoff_reset(&c->backoff);
}

/* ---- timers ---- */

static void tick(lws_sorted_usec_list_t *sul)
{
    struct agent_conn *c = lws_container_of(sul, struct agent_conn, sul_tick);

    c->hooks.tick(c->user, util_now_ms());
    if (c->hooks.busy(c->user))
        lws_sul_schedule(c->ctx, 0, &c->sul_tick, tick, (lws_usec_t)TICK_MS * 1000);
}

void agent_conn_stop(struct agent_conn *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    c->stop_deadline_ms = util_now_ms() + STOP_GRACE_MS;
    lws_sul_cancel(&c->sul_connect);
    c->connect_scheduled = false;
    log_notice("event=stopping");
    if (c->wsi && c->established) {
        /* Last answers first, then close with 1001 from the writable
         * callback once the queue has drained. */
        c->hooks.on_stopping(c->user);
        c->local_close = "agent stopping";
        lws_callback_on_writable(c->wsi);
    } else {
        /* Not connected, or still connecting: nothing to close politely;
         * lws_context_destroy drops a half-open connection. */
        c->done = true;
    }
}

/* Wakes the loop at least every HOUSEKEEPING_MS: a stop requested by a signal
 * that lands just before poll() would otherwise wait for the next network
 * event, and the stop deadline must be seen without one. */
static void housekeeping(lws_sorted_usec_list_t *sul)
{
    struct agent_conn *c = lws_container_of(sul, struct agent_conn, sul_housekeeping);

    if (c->stopping && util_now_ms() >= c->stop_deadline_ms)
        c->done = true;
    lws_sul_schedule(c->ctx, 0, &c->sul_housekeeping, housekeeping,
                     (lws_usec_t)HOUSEKEEPING_MS * 1000);
}

/* A server that accepts the connection but never completes the handshake or
 * the introduction would otherwise hold the agent forever. */
static void handshake_expired(lws_sorted_usec_list_t *sul)
{
    struct agent_conn *c = lws_container_of(sul, struct agent_conn, sul_handshake);

    if (!c->wsi || c->introduced)
        return;
    log_warn("event=handshake_timeout url=%s timeout_ms=%u", c->cfg.url_text,
             (unsigned)c->cfg.connect_timeout_ms);
    c->local_close = "handshake timeout";
    /* Closed by lws on its next pass; the close callback schedules the retry. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, LWS_TO_KILL_ASYNC);
}

static void connect_now(lws_sorted_usec_list_t *sul)
{
    struct agent_conn *c = lws_container_of(sul, struct agent_conn, sul_connect);
    const struct url *u = c->cfg.url;
    struct lws_client_connect_info i;

    c->connect_scheduled = false;
    if (c->stopping || c->wsi)
        return;
    memset(&i, 0, sizeof i);
    i.context = c->ctx;
    i.address = u->host;
    i.port = u->port;
    i.path = u->path[0] ? u->path : DEFAULT_PATH;
    i.host = c->host_header;
    /* No Origin header: it is what browsers send, and the daemon refuses
     * WebSocket handshakes that carry one (cross-site WebSocket hijacking). */
    i.origin = NULL;
    i.protocol = AGENT_PROTOCOL;
    i.local_protocol_name = AGENT_PROTOCOL;
    i.pwsi = &c->wsi;
    i.retry_and_idle_policy = &c->keepalive;
    if (!strcmp(u->scheme, "wss")) {
        i.ssl_connection = LCCSCF_USE_SSL;
        if (c->cfg.insecure)
            i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    c->established = false;
    c->introduced = false;
    c->close_code = 0;
    c->close_reason[0] = '\0';
    c->local_close = NULL;
    c->closing_code = 0;
    c->closing_text = NULL;
    c->tls_error[0] = '\0';
    c->attempts++;
    log_info("event=connecting url=%s attempt=%lu", c->cfg.url_text, c->attempts);
    /* On an immediate failure lws may already have called CONNECTION_ERROR
     * (which schedules the retry); schedule_connect ignores a second call. */
    if (!lws_client_connect_via_info(&i)) {
        c->wsi = NULL;
        schedule_connect(c, "connect failed");
        return;
    }
    if (c->wsi)
        lws_sul_schedule(c->ctx, 0, &c->sul_handshake, handshake_expired,
                         (lws_usec_t)c->cfg.connect_timeout_ms * 1000);
}

static void schedule_connect(struct agent_conn *c, const char *why)
{
    uint32_t delay, ceiling;

    if (c->stopping) {
        if (!c->wsi)
            c->done = true;
        return;
    }
    if (c->connect_scheduled)
        return;
    ceiling = backoff_ceiling(&c->backoff);
    delay = backoff_next(&c->backoff);
    c->connect_scheduled = true;
    log_info("event=reconnect_scheduled delay_ms=%u ceiling_ms=%u after=\"%s\"", delay, ceiling,
             why);
    lws_sul_schedule(c->ctx, 0, &c->sul_connect, connect_now, (lws_usec_t)delay * 1000);
}

void agent_conn_start(struct agent_conn *c)
{
    lws_sul_schedule(c->ctx, 0, &c->sul_connect, connect_now, 1);
    c->connect_scheduled = true;
    lws_sul_schedule(c->ctx, 0, &c->sul_housekeeping, housekeeping,
                     (lws_usec_t)HOUSEKEEPING_MS * 1000);
}

/* ---- connection events (called from the lws callback) ---- */

static void reset_connection(struct agent_conn *c)
{
    c->wsi = NULL;
    c->tls_seen = NULL;
    c->established = false;
    rx_clear(c);
    tx_clear(c);
    c->hooks.on_close(c->user);
    lws_sul_cancel(&c->sul_tick);
    lws_sul_cancel(&c->sul_handshake);
}

static void on_connection_error(struct agent_conn *c, const char *why)
{
    char q[300], t[200];

    /* lws's own text for TLS failures is an opaque OpenSSL code; the
     * certificate check result recorded during the handshake says why. */
    if (c->tls_error[0])
        log_warn("event=connect_failed url=%s error=%s tls_error=%s hint=%s", c->cfg.url_text,
                 log_quote(q, sizeof q, why && *why ? why : "unknown"),
                 log_quote(t, sizeof t, c->tls_error),
                 c->cfg.ca ? "\"is the server certificate issued by --ca?\""
                           : "\"use --ca FILE to trust a private CA\"");
    else
        log_warn("event=connect_failed url=%s error=%s", c->cfg.url_text,
                 log_quote(q, sizeof q, why && *why ? why : "unknown"));
    reset_connection(c);
    schedule_connect(c, "connect failed");
}

static void on_established(struct agent_conn *c, struct lws *wsi)
{
    SSL *ssl = lws_get_ssl(wsi);

    c->wsi = wsi;
    c->established = true;
    if (ssl) {
        log_info("event=connected url=%s tls=%s resumed=%s", c->cfg.url_text, SSL_get_version(ssl),
                 SSL_session_reused(ssl) == 1 ? "yes" : "no");
        keep_session(c, wsi);
    } else {
        log_info("event=connected url=%s", c->cfg.url_text);
    }
    c->hooks.on_open(c->user);
}

static void on_peer_close(struct agent_conn *c, const uint8_t *in, size_t len)
{
    char text[sizeof c->close_reason];

    if (len >= 2) {
        size_t n = len - 2 < sizeof text - 1 ? len - 2 : sizeof text - 1;

        c->close_code = (in[0] << 8) | in[1];
        memcpy(text, in + 2, n);
        text[n] = '\0';
        log_quote(c->close_reason, sizeof c->close_reason, text);
    }
}

static void on_closed(struct agent_conn *c)
{
    const char *why = "closed";

    if (c->close_code == CLOSE_SUPERSEDED) {
        /* Another connection introduced this key. Reconnecting at once would
         * take the key back and the two would push each other out in a loop:
         * wait a full backoff window instead. */
        log_warn("event=superseded close_code=%d message=\"another connection introduced the "
                 "same key; reconnecting after up to %u ms\"",
                 c->close_code, (unsigned)c->cfg.backoff_max_ms);
        backoff_saturate(&c->backoff);
        why = "superseded";
    } else if (c->close_code == CLOSE_INTRO_TIMEOUT) {
        log_warn("event=disconnected close_code=%d reason=introduction_timeout", c->close_code);
    } else if (c->close_code && !c->introduced) {
        /* Closed before "introduced": the daemon refused the key or the
         * proof. Retrying will not help until its configuration changes,
         * so say what usually causes it. */
        log_warn("event=introduction_refused close_code=%d reason=%s host=%s hint=\"the URL "
                 "host must be in the daemon's server_names\"",
                 c->close_code, c->close_reason[0] ? c->close_reason : "\"\"", c->cfg.url->host);
        why = "introduction refused";
    } else if (c->close_code) {
        log_notice("event=disconnected close_code=%d reason=%s", c->close_code,
                   c->close_reason[0] ? c->close_reason : "\"\"");
    } else {
        log_notice("event=disconnected reason=\"%s\"",
                   c->local_close ? c->local_close : "connection lost");
    }
    reset_connection(c);
    if (c->stopping)
        c->done = true;
    else
        schedule_connect(c, why);
}

/*
 * The connection's wsi is being freed and neither CONNECTION_ERROR nor
 * CLIENT_CLOSED accounted for it: lws 4.1 closes a client that times out
 * during the HTTP upgrade without calling either. Retry as after a failure.
 */
static void on_lost(struct agent_conn *c)
{
    log_warn("event=connect_failed url=%s error=\"%s\"", c->cfg.url_text,
             c->local_close ? c->local_close : "connection dropped during the handshake");
    reset_connection(c);
    schedule_connect(c, "connect failed");
}

/*
 * One piece of a message: in bytes, remaining more bytes of this frame to
 * come, last when the message ends with it. Always returns 0 (see
 * close_connection): a message that is refused is dropped piece by piece and
 * the connection closed from the writable callback.
 */
static int on_rx(struct agent_conn *c, const void *in, size_t len, size_t remaining, bool last,
                 bool binary)
{
    char err[300], q[320];

    /* Once a close is decided, nothing else the server sends is looked at. */
    if (c->closing_code)
        return 0;
    if (binary) {
        log_warn("event=frame_refused reason=binary close_code=%d",
                 LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
        close_connection(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text only", "binary frame",
                         true);
        return 0;
    }
    /* The frame header gives its length: refuse it before buffering any of it. */
    if (len > c->rx_max - c->rx_len || remaining > c->rx_max - c->rx_len - len) {
        log_warn("event=frame_refused reason=too_large limit=%zu close_code=%d", c->rx_max,
                 LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
        close_connection(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "too big", "frame too large", true);
        return 0;
    }
    util_reserve(&c->rx, &c->rx_cap, c->rx_len + len + 1, 4096, c->rx_max + 1);
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!last)
        return 0;
    if (c->hooks.on_message(c->user, c->rx, c->rx_len, err, sizeof err) != 0) {
        log_warn("event=protocol_error error=%s", log_quote(q, sizeof q, err));
        close_connection(c, LWS_CLOSE_STATUS_PROTOCOL_ERR, "protocol error", "protocol error",
                         true);
        return 0;
    }
    /* An idle connection holds no receive buffer. */
    rx_clear(c);
    /* The message may have started work (a confirmation): poll it soon. */
    if (c->hooks.busy(c->user))
        lws_sul_schedule(c->ctx, 0, &c->sul_tick, tick, (lws_usec_t)TICK_MS * 1000);
    return 0;
}

/* One lws_write per writable callback. Returns -1 to close. */
static int on_writable(struct agent_conn *c, struct lws *wsi)
{
    struct txbuf *t = c->tx_head;

    if (c->closing_code) {
        /* Returning -1 here, outside the receive path, is safe: lws resets
         * its parser buffer and ignores data frames while it closes. */
        lws_close_reason(wsi, (enum lws_close_status)c->closing_code,
                         (unsigned char *)c->closing_text, strlen(c->closing_text));
        return -1;
    }
    if (!t) {
        if (c->stopping) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"agent stopping",
                             14);
            return -1;
        }
        return 0;
    }
    c->tx_head = t->next;
    if (!c->tx_head)
        c->tx_tail = &c->tx_head;
    c->tx_bytes -= t->len;
    if (lws_write(wsi, (unsigned char *)t->buf + LWS_PRE, t->len, LWS_WRITE_TEXT) < (int)t->len) {
        free(t->buf);
        free(t);
        c->local_close = "write failed";
        return -1;
    }
    free(t->buf);
    free(t);
    if (c->tx_head || c->stopping)
        lws_callback_on_writable(wsi);
    return 0;
}

static void on_cert_error(struct agent_conn *c, X509_STORE_CTX *store)
{
    int err = X509_STORE_CTX_get_error(store);

    if (err != X509_V_OK && !c->tls_error[0])
        snprintf(c->tls_error, sizeof c->tls_error, "%s (depth %d)",
                 X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(store));
}

static int callback_agent(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct agent_conn *c = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
        /* The client SSL_CTX, made once per agent. Without a CA file, trust the
         * system's CA store. Each handshake offers the session kept from the last. */
        if (c && !c->cfg.ca && user)
            SSL_CTX_set_default_verify_paths((SSL_CTX *)user);
        if (c && user) {
            SSL_CTX_set_app_data((SSL_CTX *)user, c);
            SSL_CTX_set_info_callback((SSL_CTX *)user, on_tls_info);
        }
        return 0;
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* user: the X509_STORE_CTX, len: OpenSSL's verdict. Only recorded;
         * returning 0 leaves the decision to OpenSSL. */
        if (c && !len && user)
            on_cert_error(c, (X509_STORE_CTX *)user);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        on_connection_error(c, in ? (const char *)in : NULL);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED: on_established(c, wsi); return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_rx(c, in, len, lws_remaining_packet_payload(wsi),
                     lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi),
                     lws_frame_is_binary(wsi));
    case LWS_CALLBACK_CLIENT_WRITEABLE: return on_writable(c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: on_peer_close(c, in, len); return 0;
    case LWS_CALLBACK_CLIENT_CLOSED: on_closed(c); return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c && wsi == c->wsi)
            on_lost(c);
        return 0;
    default: return 0;
    }
}

static const struct lws_protocols agent_protocols[] = {
    {AGENT_PROTOCOL, callback_agent, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct agent_conn *agent_conn_new(const struct agent_conn_cfg *cfg,
                                  const struct agent_conn_hooks *hooks, void *user, char *err,
                                  size_t errlen)
{
    struct lws_context_creation_info info;
    struct agent_conn *c = xcalloc(1, sizeof *c);
    int lws_mask;

    c->cfg = *cfg;
    c->hooks = *hooks;
    c->user = user;
    c->tx_tail = &c->tx_head;
    /* A sign_request for the largest message (its base64, rounded up), plus slack. */
    c->rx_max = 4 * (cfg->max_message / 3 + 1) + RX_SLACK;
    if (cfg->url->ipv6)
        snprintf(c->host_header, sizeof c->host_header, "[%s]:%d", cfg->url->host, cfg->url->port);
    else
        snprintf(c->host_header, sizeof c->host_header, "%s:%d", cfg->url->host, cfg->url->port);
    /* The daemon's idle checks and ours: lws pings after ping_s idle seconds
     * and hangs up when nothing valid (a pong) came back in time. */
    c->keepalive.secs_since_valid_ping = (uint16_t)cfg->ping_s;
    c->keepalive.secs_since_valid_hangup = (uint16_t)(2 * cfg->ping_s + 10);
    backoff_init(&c->backoff, cfg->backoff_base_ms, cfg->backoff_max_ms);

    lws_mask = LLL_ERR | LLL_WARN;
    if (log_enabled(WSS_LOG_DEBUG))
        lws_mask |= LLL_NOTICE | LLL_INFO;
    lws_set_log_level(lws_mask, log_lws);

    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = agent_protocols;
    info.user = c;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = cfg->ca;
    info.fd_limit_per_thread = 16;
    info.connect_timeout_secs = 20;
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        snprintf(err, errlen, "cannot create the WebSocket client context");
        free(c);
        return NULL;
    }
    return c;
}

void agent_conn_free(struct agent_conn *c)
{
    if (!c)
        return;
    /* Connections that lws_context_destroy closes must not schedule a reconnect. */
    c->stopping = true;
    lws_context_destroy(c->ctx);
    SSL_SESSION_free(c->tls_session);
    tx_clear(c);
    free(c->rx);
    free(c);
}

bool agent_conn_service(struct agent_conn *c)
{
    if (c->done || lws_service(c->ctx, 0) < 0)
        return false;
    return !c->done;
}
