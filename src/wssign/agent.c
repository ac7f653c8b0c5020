/*
 * The agent subcommand: the lws client context, one WebSocket connection to
 * the daemon at a time, reconnects with backoff, keep-alive pings, frame
 * reassembly and the outgoing queue. Everything the frames mean is in
 * signer.c; the lws callbacks below only hand off to it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <wssignd/errors.h>

#include "addr.h"
#include "backoff.h"
#include "cli.h"
#include "commands.h"
#include "confirm.h"
#include "crypto.h"
#include "files.h"
#include "keyfile.h"
#include "log.h"
#include "log_lws.h"
#include "policy.h"
#include "signer.h"
#include "url.h"
#include "util.h"
#include "wire.h"

/* The WebSocket subprotocol asked for: the protocol version itself. */
#define AGENT_PROTOCOL WIRE_VERSION
#define DEFAULT_PATH "/v1/ws"
/* Largest frame reassembled: a sign_request for the largest message, plus slack. */
#define AGENT_RX_MAX (4 * (CLI_MESSAGE_MAX / 3 + 1) + 4096)
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_DEFAULT_MS 30000
#define CONFIRM_TIMEOUT_DEFAULT_MS 30000
#define PING_DEFAULT_S 30
#define CONNECT_TIMEOUT_DEFAULT_MS 30000
/* Outgoing bytes queued at most (answers the server has not read yet). */
#define QUEUE_DEFAULT_BYTES 4194304
#define QUEUE_MIN_BYTES 4096
#define QUEUE_MAX_BYTES 268435456
/* How often the stop flag is looked at, and confirmations polled while running. */
#define HOUSEKEEPING_MS 100
#define CONFIRM_POLL_MS 10
/* How long an orderly close may take on SIGINT/SIGTERM. */
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

/* Per process: the agent's settings from the command line. */
struct agent_opts {
    const char *url;
    const char *key_path;
    const char *ca;
    bool insecure;
    const char *confirm_cmd;
    uint64_t confirm_timeout_ms;
    uint64_t backoff_max_ms;
    uint64_t ping_s;
    uint64_t max_bytes;
    uint64_t connect_timeout_ms;
    uint64_t max_queued_bytes;
};

/* Per process: the agent, reachable from lws through lws_context_user(). */
struct agent {
    struct agent_opts opts;
    struct url url;
    char host_header[CRYPTO_HOST_MAX + 16];
    struct keypair *key; /* sodium_malloc'ed, read-only once loaded */
    struct policy policy;
    struct signer *signer;
    struct backoff backoff;
    lws_retry_bo_t keepalive;
    struct lws_context *ctx;
    struct lws *wsi; /* the connection, NULL between connections */
    bool established;
    bool introduced;  /* the daemon accepted this connection's introduction */
    lws_sorted_usec_list_t sul_connect;
    bool connect_scheduled;
    lws_sorted_usec_list_t sul_handshake; /* deadline for connect + introduction */
    lws_sorted_usec_list_t sul_housekeeping;
    lws_sorted_usec_list_t sul_confirm;
    char *rx; /* the message being reassembled */
    size_t rx_len, rx_cap;
    struct txbuf *tx_head, **tx_tail;
    size_t tx_bytes;       /* queued in tx_head..., not yet handed to lws */
    int close_code;        /* from the peer's close frame, 0 if none */
    char close_reason[128];
    const char *local_close; /* why we closed, NULL if the peer did */
    int closing_code;        /* close decided: the code to send, 0 if none */
    const char *closing_text; /* and its reason text */
    char tls_error[160];     /* certificate check failure of this attempt, "" if none */
    volatile sig_atomic_t *stop;
    bool stopping;
    uint64_t stop_deadline_ms;
    bool done;
    unsigned long attempts; /* connection attempts since start (for logs) */
};

static void schedule_connect(struct agent *a, const char *why);

/* ---- outgoing queue ---- */

static void tx_clear(struct agent *a)
{
    while (a->tx_head) {
        struct txbuf *t = a->tx_head;

        a->tx_head = t->next;
        free(t->buf);
        free(t);
    }
    a->tx_tail = &a->tx_head;
    a->tx_bytes = 0;
}

static void rx_clear(struct agent *a)
{
    free(a->rx);
    a->rx = NULL;
    a->rx_len = a->rx_cap = 0;
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
static void close_connection(struct agent *a, int code, const char *text, const char *why,
                             bool polite)
{
    if (!a->wsi || a->closing_code)
        return;
    a->closing_code = code;
    a->closing_text = text;
    a->local_close = why;
    rx_clear(a);
    tx_clear(a);
    if (polite) {
        lws_callback_on_writable(a->wsi);
        lws_set_timeout(a->wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_GRACE_S);
    } else {
        lws_set_timeout(a->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    }
}

/* signer hook: queue a frame and ask for a writable callback. */
static void agent_send(void *user, char *buf, size_t len)
{
    struct agent *a = user;
    struct txbuf *t;

    if (!a->wsi || !a->established || a->closing_code) {
        free(buf);
        return;
    }
    /* Bounded: a server that sends requests and never reads the answers
     * would otherwise grow the queue without limit. One frame is always
     * accepted into an empty queue, whatever its size. */
    if (a->tx_bytes && a->tx_bytes + len > a->opts.max_queued_bytes) {
        free(buf);
        log_warn("event=queue_full queued_bytes=%zu frame_bytes=%zu max_queued_bytes=%llu "
                 "message=\"the server does not read the answers\"",
                 a->tx_bytes, len, (unsigned long long)a->opts.max_queued_bytes);
        close_connection(a, LWS_CLOSE_STATUS_POLICY_VIOLATION, "queue full", "queue full",
                         false);
        return;
    }
    t = xcalloc(1, sizeof *t);
    t->buf = buf;
    t->len = len;
    *a->tx_tail = t;
    a->tx_tail = &t->next;
    a->tx_bytes += len;
    lws_callback_on_writable(a->wsi);
}

/* signer hook: a successful introduction ends the run of failures. */
static void agent_introduced(void *user, const char *session_id)
{
    struct agent *a = user;

    (void)session_id;
    a->introduced = true;
    lws_sul_cancel(&a->sul_handshake);
    backoff_reset(&a->backoff);
}

/* ---- timers ---- */

static void confirm_tick(lws_sorted_usec_list_t *sul)
{
    struct agent *a = lws_container_of(sul, struct agent, sul_confirm);

    signer_tick(a->signer, util_now_ms());
    if (signer_busy(a->signer))
        lws_sul_schedule(a->ctx, 0, &a->sul_confirm, confirm_tick,
                         (lws_usec_t)CONFIRM_POLL_MS * 1000);
}

static void begin_stop(struct agent *a)
{
    a->stopping = true;
    a->stop_deadline_ms = util_now_ms() + STOP_GRACE_MS;
    lws_sul_cancel(&a->sul_connect);
    a->connect_scheduled = false;
    log_notice("event=stopping");
    if (a->wsi && a->established) {
        /* Answer what is still waiting for a confirmation, then close with
         * 1001 from the writable callback once the queue has drained. */
        signer_reject_pending(a->signer, "agent_stopping");
        a->local_close = "agent stopping";
        lws_callback_on_writable(a->wsi);
    } else {
        /* Not connected, or still connecting: nothing to close politely;
         * lws_context_destroy drops a half-open connection. */
        a->done = true;
    }
}

static void housekeeping(lws_sorted_usec_list_t *sul)
{
    struct agent *a = lws_container_of(sul, struct agent, sul_housekeeping);

    /* The signal handler only sets a flag; a signal that lands just before
     * poll() would otherwise wait for the next network event. */
    if (*a->stop && !a->stopping)
        begin_stop(a);
    if (a->stopping && util_now_ms() >= a->stop_deadline_ms)
        a->done = true;
    lws_sul_schedule(a->ctx, 0, &a->sul_housekeeping, housekeeping,
                     (lws_usec_t)HOUSEKEEPING_MS * 1000);
}

/* A server that accepts the connection but never completes the handshake or
 * the introduction would otherwise hold the agent forever. */
static void handshake_expired(lws_sorted_usec_list_t *sul)
{
    struct agent *a = lws_container_of(sul, struct agent, sul_handshake);

    if (!a->wsi || a->introduced)
        return;
    log_warn("event=handshake_timeout url=%s timeout_ms=%u", a->opts.url,
             (unsigned)a->opts.connect_timeout_ms);
    a->local_close = "handshake timeout";
    /* Closed by lws on its next pass; the close callback schedules the retry. */
    lws_set_timeout(a->wsi, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE, LWS_TO_KILL_ASYNC);
}

static void connect_now(lws_sorted_usec_list_t *sul)
{
    struct agent *a = lws_container_of(sul, struct agent, sul_connect);
    struct lws_client_connect_info i;

    a->connect_scheduled = false;
    if (a->stopping || a->wsi)
        return;
    memset(&i, 0, sizeof i);
    i.context = a->ctx;
    i.address = a->url.host;
    i.port = a->url.port;
    i.path = a->url.path[0] ? a->url.path : DEFAULT_PATH;
    i.host = a->host_header;
    /* No Origin header: it is what browsers send, and the daemon refuses
     * WebSocket handshakes that carry one (cross-site WebSocket hijacking). */
    i.origin = NULL;
    i.protocol = AGENT_PROTOCOL;
    i.local_protocol_name = AGENT_PROTOCOL;
    i.pwsi = &a->wsi;
    i.retry_and_idle_policy = &a->keepalive;
    if (!strcmp(a->url.scheme, "wss")) {
        i.ssl_connection = LCCSCF_USE_SSL;
        if (a->opts.insecure)
            i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                                LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    }
    a->established = false;
    a->introduced = false;
    a->close_code = 0;
    a->close_reason[0] = '\0';
    a->local_close = NULL;
    a->closing_code = 0;
    a->closing_text = NULL;
    a->tls_error[0] = '\0';
    a->attempts++;
    log_info("event=connecting url=%s attempt=%lu", a->opts.url, a->attempts);
    /* On an immediate failure lws may already have called CONNECTION_ERROR
     * (which schedules the retry); schedule_connect ignores a second call. */
    if (!lws_client_connect_via_info(&i)) {
        a->wsi = NULL;
        schedule_connect(a, "connect failed");
        return;
    }
    if (a->wsi)
        lws_sul_schedule(a->ctx, 0, &a->sul_handshake, handshake_expired,
                         (lws_usec_t)a->opts.connect_timeout_ms * 1000);
}

static void schedule_connect(struct agent *a, const char *why)
{
    uint32_t delay, ceiling;

    if (a->stopping) {
        if (!a->wsi)
            a->done = true;
        return;
    }
    if (a->connect_scheduled)
        return;
    ceiling = backoff_ceiling(&a->backoff);
    delay = backoff_next(&a->backoff);
    a->connect_scheduled = true;
    log_info("event=reconnect_scheduled delay_ms=%u ceiling_ms=%u after=\"%s\"", delay, ceiling,
             why);
    lws_sul_schedule(a->ctx, 0, &a->sul_connect, connect_now, (lws_usec_t)delay * 1000);
}

/* ---- connection events (called from the lws callback) ---- */

static void reset_connection(struct agent *a)
{
    a->wsi = NULL;
    a->established = false;
    rx_clear(a);
    tx_clear(a);
    signer_on_close(a->signer);
    lws_sul_cancel(&a->sul_confirm);
    lws_sul_cancel(&a->sul_handshake);
}

static void agent_on_connection_error(struct agent *a, const char *why)
{
    char q[300], t[200];

    /* lws's own text for TLS failures is an opaque OpenSSL code; the
     * certificate check result recorded during the handshake says why. */
    if (a->tls_error[0])
        log_warn("event=connect_failed url=%s error=%s tls_error=%s hint=%s", a->opts.url,
                 log_quote(q, sizeof q, why && *why ? why : "unknown"),
                 log_quote(t, sizeof t, a->tls_error),
                 a->opts.ca ? "\"is the server certificate issued by --ca?\""
                            : "\"use --ca FILE to trust a private CA\"");
    else
        log_warn("event=connect_failed url=%s error=%s", a->opts.url,
                 log_quote(q, sizeof q, why && *why ? why : "unknown"));
    reset_connection(a);
    schedule_connect(a, "connect failed");
}

static void agent_on_established(struct agent *a, struct lws *wsi)
{
    a->wsi = wsi;
    a->established = true;
    log_info("event=connected url=%s", a->opts.url);
    signer_on_open(a->signer);
}

static void agent_on_peer_close(struct agent *a, const uint8_t *in, size_t len)
{
    char text[sizeof a->close_reason];

    if (len >= 2) {
        size_t n = len - 2 < sizeof text - 1 ? len - 2 : sizeof text - 1;

        a->close_code = (in[0] << 8) | in[1];
        memcpy(text, in + 2, n);
        text[n] = '\0';
        log_quote(a->close_reason, sizeof a->close_reason, text);
    }
}

static void agent_on_closed(struct agent *a)
{
    const char *why = "closed";

    if (a->close_code == CLOSE_SUPERSEDED) {
        /* Another connection introduced this key. Reconnecting at once would
         * take the key back and the two would push each other out in a loop:
         * wait a full backoff window instead. */
        log_warn("event=superseded close_code=%d message=\"another connection introduced the "
                 "same key; reconnecting after up to %u ms\"",
                 a->close_code, (unsigned)a->opts.backoff_max_ms);
        backoff_saturate(&a->backoff);
        why = "superseded";
    } else if (a->close_code == CLOSE_INTRO_TIMEOUT) {
        log_warn("event=disconnected close_code=%d reason=introduction_timeout", a->close_code);
    } else if (a->close_code && !a->introduced) {
        /* Closed before "introduced": the daemon refused the key or the
         * proof. Retrying will not help until its configuration changes,
         * so say what usually causes it. */
        log_warn("event=introduction_refused close_code=%d reason=%s host=%s hint=\"the URL "
                 "host must be in the daemon's server_names\"",
                 a->close_code, a->close_reason[0] ? a->close_reason : "\"\"", a->url.host);
        why = "introduction refused";
    } else if (a->close_code) {
        log_notice("event=disconnected close_code=%d reason=%s", a->close_code,
                   a->close_reason[0] ? a->close_reason : "\"\"");
    } else {
        log_notice("event=disconnected reason=\"%s\"",
                   a->local_close ? a->local_close : "connection lost");
    }
    reset_connection(a);
    if (a->stopping)
        a->done = true;
    else
        schedule_connect(a, why);
}

/*
 * The connection's wsi is being freed and neither CONNECTION_ERROR nor
 * CLIENT_CLOSED accounted for it: lws 4.1 closes a client that times out
 * during the HTTP upgrade without calling either. Retry as after a failure.
 */
static void agent_on_lost(struct agent *a)
{
    log_warn("event=connect_failed url=%s error=\"%s\"", a->opts.url,
             a->local_close ? a->local_close : "connection dropped during the handshake");
    reset_connection(a);
    schedule_connect(a, "connect failed");
}

/*
 * One piece of a message: in bytes, remaining more bytes of this frame to
 * come, last when the message ends with it. Always returns 0 (see
 * close_connection): a message that is refused is dropped piece by piece and
 * the connection closed from the writable callback.
 */
static int agent_on_rx(struct agent *a, const void *in, size_t len, size_t remaining, bool last,
                       bool binary)
{
    char err[300], q[320];

    /* Once a close is decided, nothing else the server sends is looked at. */
    if (a->closing_code)
        return 0;
    if (binary) {
        log_warn("event=frame_refused reason=binary close_code=%d",
                 LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE);
        close_connection(a, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text only", "binary frame",
                         true);
        return 0;
    }
    /* The frame header gives its length: refuse it before buffering any of it. */
    if (len > AGENT_RX_MAX - a->rx_len || remaining > AGENT_RX_MAX - a->rx_len - len) {
        log_warn("event=frame_refused reason=too_large limit=%d close_code=%d", AGENT_RX_MAX,
                 LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
        close_connection(a, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "too big", "frame too large",
                         true);
        return 0;
    }
    if (a->rx_len + len + 1 > a->rx_cap) {
        size_t cap = a->rx_cap ? a->rx_cap : 4096;

        while (cap < a->rx_len + len + 1)
            cap *= 2;
        if (cap > AGENT_RX_MAX + 1)
            cap = AGENT_RX_MAX + 1;
        a->rx = xrealloc(a->rx, cap);
        a->rx_cap = cap;
    }
    memcpy(a->rx + a->rx_len, in, len);
    a->rx_len += len;
    if (!last)
        return 0;
    if (signer_on_frame(a->signer, a->rx, a->rx_len, err, sizeof err) != 0) {
        log_warn("event=protocol_error error=%s", log_quote(q, sizeof q, err));
        close_connection(a, LWS_CLOSE_STATUS_PROTOCOL_ERR, "protocol error", "protocol error",
                         true);
        return 0;
    }
    /* An idle connection holds no receive buffer. */
    rx_clear(a);
    /* A confirmation may have started: poll it soon. */
    if (signer_busy(a->signer))
        lws_sul_schedule(a->ctx, 0, &a->sul_confirm, confirm_tick,
                         (lws_usec_t)CONFIRM_POLL_MS * 1000);
    return 0;
}

/* One lws_write per writable callback. Returns -1 to close. */
static int agent_on_writable(struct agent *a, struct lws *wsi)
{
    struct txbuf *t = a->tx_head;

    if (a->closing_code) {
        /* Returning -1 here, outside the receive path, is safe: lws resets
         * its parser buffer and ignores data frames while it closes. */
        lws_close_reason(wsi, (enum lws_close_status)a->closing_code,
                         (unsigned char *)a->closing_text, strlen(a->closing_text));
        return -1;
    }
    if (!t) {
        if (a->stopping) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)"agent stopping",
                             14);
            return -1;
        }
        return 0;
    }
    a->tx_head = t->next;
    if (!a->tx_head)
        a->tx_tail = &a->tx_head;
    a->tx_bytes -= t->len;
    if (lws_write(wsi, (unsigned char *)t->buf + LWS_PRE, t->len, LWS_WRITE_TEXT) < (int)t->len) {
        free(t->buf);
        free(t);
        a->local_close = "write failed";
        return -1;
    }
    free(t->buf);
    free(t);
    if (a->tx_head || a->stopping)
        lws_callback_on_writable(wsi);
    return 0;
}

static void agent_on_cert_error(struct agent *a, X509_STORE_CTX *store)
{
    int err = X509_STORE_CTX_get_error(store);

    if (err != X509_V_OK && !a->tls_error[0])
        snprintf(a->tls_error, sizeof a->tls_error, "%s (depth %d)",
                 X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(store));
}

static int callback_agent(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
    struct agent *a = lws_context_user(lws_get_context(wsi));

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
        /* Without --ca, trust the system's CA store. */
        if (a && !a->opts.ca && user)
            SSL_CTX_set_default_verify_paths((SSL_CTX *)user);
        return 0;
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /* user: the X509_STORE_CTX, len: OpenSSL's verdict. Only recorded;
         * returning 0 leaves the decision to OpenSSL. */
        if (a && !len && user)
            agent_on_cert_error(a, (X509_STORE_CTX *)user);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        agent_on_connection_error(a, in ? (const char *)in : NULL);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        agent_on_established(a, wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return agent_on_rx(a, in, len, lws_remaining_packet_payload(wsi),
                           lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi),
                           lws_frame_is_binary(wsi));
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return agent_on_writable(a, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        agent_on_peer_close(a, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        agent_on_closed(a);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (a && wsi == a->wsi)
            agent_on_lost(a);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols agent_protocols[] = {
    {AGENT_PROTOCOL, callback_agent, 0, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- command line ---- */

static const struct option agent_options[] = {
    {"url", required_argument, NULL, 'u'},
    {"key", required_argument, NULL, 'k'},
    {"ca", required_argument, NULL, 'C'},
    {"insecure", no_argument, NULL, 'I'},
    {"allow-prefix", required_argument, NULL, 'p'},
    {"max-bytes", required_argument, NULL, 'b'},
    {"confirm", required_argument, NULL, 'c'},
    {"confirm-timeout-ms", required_argument, NULL, 't'},
    {"backoff-max-ms", required_argument, NULL, 'B'},
    {"ping-secs", required_argument, NULL, 'P'},
    {"connect-timeout-ms", required_argument, NULL, 'T'},
    {"max-queued-bytes", required_argument, NULL, 'Q'},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void agent_help(void)
{
    printf(
        "Usage: wssign agent --url URL --key FILE [options]\n"
        "\n"
        "Connects to a wssignd daemon, introduces the key with a proof bound to the URL's\n"
        "host, and answers sign requests until SIGINT or SIGTERM. Reconnects after any\n"
        "disconnection with exponential backoff and full jitter.\n"
        "\n"
        "Options:\n"
        "  -u, --url URL             ws:// or wss:// URL of the daemon's signer endpoint,\n"
        "                            e.g. wss://signer.example.com:8443/v1/ws (the path\n"
        "                            defaults to /v1/ws). ws:// is refused for hosts other\n"
        "                            than localhost/127.0.0.0/8/::1 unless --insecure.\n"
        "                            ws:// authenticates no server, on loopback too: any\n"
        "                            local process holding the port gets signatures. Use\n"
        "                            wss:// with --ca wherever other users can run code.\n"
        "  -k, --key FILE            private key file (mode 0600; see below)\n"
        "      --ca FILE             trust the CA certificate(s) in this PEM file instead of\n"
        "                            the system store (wss:// only)\n"
        "      --insecure            do not verify the server's TLS certificate, and allow\n"
        "                            ws:// to non-loopback hosts; for test setups only\n"
        "  -p, --allow-prefix SPEC   sign only messages that start with one of the given\n"
        "                            prefixes (repeatable). SPEC is hex:0a0b (bytes in hex),\n"
        "                            str:TEXT (TEXT literally), or any other TEXT literally\n"
        "      --max-bytes N         refuse messages longer than N bytes (default and\n"
        "                            maximum %d)\n"
        "  -c, --confirm CMD         ask CMD (run with /bin/sh -c) before signing: exit\n"
        "                            status 0 approves, anything else declines. It gets the\n"
        "                            message on stdin and in its environment:\n"
        "                            WSSIGN_REQUEST_ID, WSSIGN_PUBLIC_KEY, WSSIGN_MESSAGE_BYTES,\n"
        "                            WSSIGN_MESSAGE_SHA256 and, for messages up to %d bytes,\n"
        "                            WSSIGN_MESSAGE_HEX and WSSIGN_MESSAGE_B64. Its stdout\n"
        "                            goes to stderr.\n"
        "      --confirm-timeout-ms N  kill CMD and decline after N ms (default %d)\n"
        "      --backoff-max-ms N    cap of the reconnect delay (default %d; the first\n"
        "                            delay is drawn from 0..%d ms, doubling per failure)\n"
        "      --ping-secs N         send a WebSocket ping after N idle seconds (default %d);\n"
        "                            drop the connection after 2N+10 s without an answer\n"
        "      --connect-timeout-ms N  give up on a connection attempt that has not been\n"
        "                            introduced after N ms (default %d)\n"
        "      --max-queued-bytes N  drop the connection when answers the server has not\n"
        "                            read would exceed N bytes (default %d, %d to %d;\n"
        "                            one answer is always accepted into an empty queue)\n"
        "      --log-level LEVEL     err, warn, notice, info (default) or debug\n"
        "  -h, --help                show this help\n"
        "\n"
        "Key files: PKCS#8 PEM (\"BEGIN PRIVATE KEY\", as written by 'wssign keygen' and\n"
        "'openssl genpkey -algorithm ed25519'; not encrypted), or a 32-byte Ed25519 seed\n"
        "as 64 hex digits. A key file accessible by group or others is refused.\n"
        "\n"
        "Messages starting with \"wssign-introduction-v1\" are always refused, and so\n"
        "are requests past their expires_at (\"expired\": keep the clock in sync) and\n"
        "request ids already answered on the connection (\"duplicate_request\").\n"
        "Every decision is logged on stderr (logfmt) with the request id, the message's\n"
        "length and SHA-256, never the message itself.\n"
        "\n"
        "The key is kept like ssh-agent keeps its keys: the process cannot be traced or\n"
        "dumped by other processes of the same user, core dumps are off, and the key\n"
        "sits in locked, read-only memory that is wiped on exit.\n"
        "\n"
        "Exit status: 0 after SIGINT, SIGTERM, SIGHUP or SIGQUIT, 1 start-up failure (key\n"
        "file, TLS setup), 2 usage error.\n",
        CLI_MESSAGE_MAX, CONFIRM_ENV_MESSAGE_MAX, CONFIRM_TIMEOUT_DEFAULT_MS,
        BACKOFF_MAX_DEFAULT_MS, BACKOFF_BASE_MS, PING_DEFAULT_S, CONNECT_TIMEOUT_DEFAULT_MS,
        QUEUE_DEFAULT_BYTES, QUEUE_MIN_BYTES, QUEUE_MAX_BYTES);
}

static int parse_args(struct agent *a, int argc, char **argv)
{
    struct agent_opts *o = &a->opts;
    char err[512];
    int opt, level;

    o->confirm_timeout_ms = CONFIRM_TIMEOUT_DEFAULT_MS;
    o->backoff_max_ms = BACKOFF_MAX_DEFAULT_MS;
    o->ping_s = PING_DEFAULT_S;
    o->max_bytes = CLI_MESSAGE_MAX;
    o->connect_timeout_ms = CONNECT_TIMEOUT_DEFAULT_MS;
    o->max_queued_bytes = QUEUE_DEFAULT_BYTES;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+u:k:p:c:h", agent_options, NULL)) != -1) {
        switch (opt) {
        case 'u':
            o->url = optarg;
            break;
        case 'k':
            o->key_path = optarg;
            break;
        case 'C':
            o->ca = optarg;
            break;
        case 'I':
            o->insecure = true;
            break;
        case 'p':
            if (policy_add_prefix(&a->policy, optarg, err, sizeof err) != 0)
                return cli_usage("agent", "--allow-prefix: %s", err);
            break;
        case 'b':
            if (!cli_parse_u64(optarg, 0, CLI_MESSAGE_MAX, &o->max_bytes))
                return cli_usage("agent", "--max-bytes must be an integer from 0 to %d",
                                 CLI_MESSAGE_MAX);
            break;
        case 'c':
            if (!optarg[0])
                return cli_usage("agent", "--confirm needs a command");
            o->confirm_cmd = optarg;
            break;
        case 't':
            if (!cli_parse_u64(optarg, 1, 3600000, &o->confirm_timeout_ms))
                return cli_usage("agent", "--confirm-timeout-ms must be an integer from 1 to "
                                          "3600000");
            break;
        case 'B':
            if (!cli_parse_u64(optarg, 1, 3600000, &o->backoff_max_ms))
                return cli_usage("agent", "--backoff-max-ms must be an integer from 1 to "
                                          "3600000");
            break;
        case 'P':
            if (!cli_parse_u64(optarg, 1, 3600, &o->ping_s))
                return cli_usage("agent", "--ping-secs must be an integer from 1 to 3600");
            break;
        case 'T':
            if (!cli_parse_u64(optarg, 100, 600000, &o->connect_timeout_ms))
                return cli_usage("agent", "--connect-timeout-ms must be an integer from 100 to "
                                          "600000");
            break;
        case 'Q':
            if (!cli_parse_u64(optarg, QUEUE_MIN_BYTES, QUEUE_MAX_BYTES, &o->max_queued_bytes))
                return cli_usage("agent", "--max-queued-bytes must be an integer from %d to %d",
                                 QUEUE_MIN_BYTES, QUEUE_MAX_BYTES);
            break;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0)
                return cli_usage("agent", "--log-level must be err, warn, notice, info or "
                                          "debug");
            log_set_level(level);
            break;
        case 'h':
            agent_help();
            return -1;
        default:
            return cli_usage("agent", "invalid option");
        }
    }
    if (optind < argc)
        return cli_usage("agent", "unexpected argument '%s'", argv[optind]);
    if (!o->url)
        return cli_usage("agent", "--url URL is required");
    if (!o->key_path)
        return cli_usage("agent", "--key FILE is required");
    if (url_parse(o->url, &a->url, err, sizeof err) != 0)
        return cli_usage("agent", "--url: %s", err);
    if (strcmp(a->url.scheme, "ws") && strcmp(a->url.scheme, "wss"))
        return cli_usage("agent", "--url must start with ws:// or wss://");
    if (!strcmp(a->url.scheme, "ws") && !addr_host_is_loopback(a->url.host) && !o->insecure)
        return cli_usage("agent", "refusing plain ws:// to %s: use wss://, or --insecure to "
                                  "send keys and messages in clear text",
                         a->url.host);
    if (o->ca && strcmp(a->url.scheme, "wss"))
        return cli_usage("agent", "--ca needs a wss:// URL");
    if (o->ca && o->insecure)
        return cli_usage("agent", "--ca and --insecure cannot be used together");
    if (o->ca) {
        /* Checked without blocking: a FIFO would hang the TLS set-up. */
        int fd = files_open(o->ca, false, "CA file", err, sizeof err), e = errno;

        if (fd == WSS_ERR_IO)
            return cli_usage("agent", "--ca: cannot read %s: %s", o->ca, strerror(e));
        if (fd < 0)
            return cli_usage("agent", "--ca: %s", err);
        close(fd);
    }
    return 0;
}

static void lws_log_emit(int level, const char *line)
{
    log_lws(level, line);
}

/*
 * What ssh-agent does before it holds a key: no core dumps (they would hold
 * the key), and not dumpable, which also keeps other processes of the same
 * user from ptrace-attaching or reading /proc/PID/mem. Returns 0, or
 * WSS_ERR_IO with the reason in err.
 */
static int protect_process(char *err, size_t errlen)
{
    const struct rlimit no_core = {0, 0};

    if (setrlimit(RLIMIT_CORE, &no_core) != 0) {
        snprintf(err, errlen, "cannot disable core dumps: %s", strerror(errno));
        return WSS_ERR_IO;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        snprintf(err, errlen, "cannot make the process non-dumpable: %s", strerror(errno));
        return WSS_ERR_IO;
    }
    return 0;
}

/* Loads the key into memory of its own, then makes that memory read-only. */
static int load_key(struct agent *a, char *err, size_t errlen)
{
    bool locked;
    int rc;

    a->key = keyfile_keypair_new(&locked);
    if (!a->key) {
        snprintf(err, errlen, "cannot allocate protected memory for the key");
        return WSS_ERR_IO;
    }
    if ((rc = keyfile_load(a->opts.key_path, a->key, err, errlen)) != 0)
        return rc;
    keyfile_keypair_seal(a->key);
    if (!locked)
        log_warn("event=key_not_locked message=\"the key memory could not be locked in RAM "
                 "(RLIMIT_MEMLOCK); it may be swapped out\"");
    return 0;
}

int agent_main(int argc, char **argv, volatile sig_atomic_t *stop)
{
    struct lws_context_creation_info info;
    struct agent *a = xcalloc(1, sizeof *a);
    struct signer_hooks hooks = {agent_send, agent_introduced};
    struct signer_cfg scfg;
    char err[512], pub[KEYFILE_PUB_B64_BYTES];
    int rc = CLI_EXIT_OK, lws_mask;

    a->stop = stop;
    a->tx_tail = &a->tx_head;
    policy_init(&a->policy, CLI_MESSAGE_MAX);
    if ((rc = parse_args(a, argc, argv)) != 0) {
        rc = rc < 0 ? CLI_EXIT_OK : rc;
        goto out;
    }
    a->policy.max_bytes = (size_t)a->opts.max_bytes;
    if (protect_process(err, sizeof err) != 0 || load_key(a, err, sizeof err) != 0) {
        cli_error("agent", "%s", err);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if (a->url.ipv6)
        snprintf(a->host_header, sizeof a->host_header, "[%s]:%d", a->url.host, a->url.port);
    else
        snprintf(a->host_header, sizeof a->host_header, "%s:%d", a->url.host, a->url.port);

    /* The daemon's idle checks and ours: lws pings after ping_s idle seconds
     * and hangs up when nothing valid (a pong) came back in time. */
    a->keepalive.secs_since_valid_ping = (uint16_t)a->opts.ping_s;
    a->keepalive.secs_since_valid_hangup = (uint16_t)(2 * a->opts.ping_s + 10);
    backoff_init(&a->backoff, BACKOFF_BASE_MS, (uint32_t)a->opts.backoff_max_ms);

    lws_mask = LLL_ERR | LLL_WARN;
    if (log_enabled(WSS_LOG_DEBUG))
        lws_mask |= LLL_NOTICE | LLL_INFO;
    lws_set_log_level(lws_mask, lws_log_emit);

    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = agent_protocols;
    info.user = a;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = a->opts.ca;
    info.fd_limit_per_thread = 16;
    info.connect_timeout_secs = 20;
    a->ctx = lws_create_context(&info);
    if (!a->ctx) {
        cli_error("agent", "cannot create the WebSocket client context%s",
                  a->opts.ca ? " (is --ca a readable PEM file?)" : "");
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    scfg.key = a->key;
    scfg.policy = &a->policy;
    scfg.confirm_cmd = a->opts.confirm_cmd;
    scfg.confirm_timeout_ms = (uint32_t)a->opts.confirm_timeout_ms;
    scfg.host = a->url.host;
    scfg.headroom = LWS_PRE;
    scfg.max_message = CLI_MESSAGE_MAX;
    a->signer = signer_new(&scfg, &hooks, a);

    log_notice("event=start public_key=%s url=%s tls=%s allow_prefixes=%zu max_bytes=%zu "
               "confirm=%s backoff_max_ms=%u",
               keyfile_pub_b64(pub, a->key), a->opts.url,
               strcmp(a->url.scheme, "wss") ? "off" : a->opts.insecure ? "unverified" : "verified",
               a->policy.n_allow, a->policy.max_bytes, a->opts.confirm_cmd ? "yes" : "no",
               (unsigned)a->opts.backoff_max_ms);
    if (a->opts.insecure)
        log_warn("event=insecure message=\"TLS certificate checks are off\"");
    if (!strcmp(a->url.scheme, "ws"))
        log_warn("event=insecure_transport message=\"ws:// authenticates no server, on "
                 "loopback too: whoever holds the port (any local user, e.g. while the daemon "
                 "restarts) gets signatures within the policy, and messages and answers travel "
                 "in clear text; use wss:// with --ca\"");

    lws_sul_schedule(a->ctx, 0, &a->sul_connect, connect_now, 1);
    a->connect_scheduled = true;
    lws_sul_schedule(a->ctx, 0, &a->sul_housekeeping, housekeeping,
                     (lws_usec_t)HOUSEKEEPING_MS * 1000);

    while (!a->done) {
        if (*stop && !a->stopping)
            begin_stop(a);
        if (a->done || lws_service(a->ctx, 0) < 0)
            break;
    }
    log_notice("event=stopped");
    /* Connections that lws_context_destroy closes must not schedule a reconnect. */
    a->stopping = true;
    rc = CLI_EXIT_OK;
out:
    if (a->ctx)
        lws_context_destroy(a->ctx);
    signer_free(a->signer);
    tx_clear(a);
    free(a->rx);
    policy_cleanup(&a->policy);
    keyfile_keypair_free(a->key);
    free(a);
    return rc;
}
