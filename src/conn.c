/*
 * The signer WebSocket transport: bounded reassembly of fragmented messages,
 * outgoing frames (written at once when nothing is waiting, else a FIFO
 * written one per WRITEABLE callback), a close that waits for the queue to
 * drain (forced after a grace period), and the link hooks the protocol core
 * calls. Knows nothing of JSON.
 */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service.h"
#include "util.h"
#include "wsio.h"

/* A close that cannot be flushed (peer not reading) is forced after this. */
#define CONN_CLOSE_GRACE_MS 5000

#define conn_of(s) ((struct conn *)(void *)((char *)(s)-offsetof(struct conn, session)))

void conn_init(struct conn *c, struct lws *wsi, struct wss_service *svc, size_t rx_max,
               size_t tx_max, uint64_t *tx_total, struct peer *admission)
{
    char peer[SESSION_REMOTE_MAX];

    memset(c, 0, sizeof *c);
    c->wsi = wsi;
    c->tx_total = tx_total;
    c->rx_max = rx_max;
    c->tx_max = tx_max;
    if (lws_get_peer_simple(wsi, peer, sizeof peer) == NULL)
        peer[0] = '\0';
    session_init(&c->session, svc, &conn_link_ops, peer, admission);
}

/* Drops the connection without a close handshake (a peer that is gone or
 * does not read). Safe from any loop callback. */
static void kill_conn(struct conn *c)
{
    c->dropped = true;
    c->session.state = SESSION_CLOSING;
    wsio_kill(c->wsi);
}

void conn_on_peer_close(struct conn *c)
{
    c->peer_closed = true;
}

enum conn_rx conn_on_rx(struct conn *c, const void *in, size_t len, bool final, const char **msg,
                        size_t *msg_len)
{
    session_on_activity(&c->session); /* any frame shows the peer is alive */
    /* Count across fragments: lws delivers any size in rx_buffer_size pieces. */
    if (len > c->rx_max - c->rx_len)
        return CONN_RX_TOO_BIG;
    /* The usual case, a message in one piece, is used where lws put it. */
    if (final && c->rx_len == 0) {
        *msg = in;
        *msg_len = len;
        c->in_message = true;
        return CONN_RX_COMPLETE;
    }
    util_reserve(&c->rx, &c->rx_cap, c->rx_len + len + 1, 1024, c->rx_max + 1);
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    c->rx[c->rx_len] = '\0';
    if (!final)
        return CONN_RX_MORE;
    *msg = c->rx;
    *msg_len = c->rx_len;
    c->in_message = true;
    return CONN_RX_COMPLETE;
}

void conn_rx_done(struct conn *c)
{
    c->in_message = false;
    /* Fragmented messages are rare: an idle connection holds no buffer. */
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

/* Writes one text frame (payload after LWS_PRE in buf) and counts it; -1 if the socket failed. */
static int write_text(struct conn *c, char *buf, size_t len)
{
    if (lws_write(c->wsi, (unsigned char *)buf + LWS_PRE, len, LWS_WRITE_TEXT) < (int)len)
        return -1;
    *c->tx_total += len;
    return 0;
}

static void link_send(struct session *s, char *buf, size_t len)
{
    struct conn *c = conn_of(s);
    struct conn_tx *tx;

    if (c->close_code || c->dropped || c->peer_closed) {
        free(buf);
        return;
    }
    if (len > c->tx_max - c->tx_bytes || c->tx_bytes > c->tx_max) {
        /* A slow or stalled reader: its queue is bounded, so it goes. */
        free(buf);
        log_info("event=slow_reader conn=%llu remote=%s queued=%zu", (unsigned long long)s->id,
                 s->remote, c->tx_bytes);
        kill_conn(c);
        return;
    }
    /*
     * Sent from outside this connection's receive path (a sign request from
     * the HTTP API, a cancel from a timer), with nothing queued: written now
     * if lws allows (wsio.h). Answers to the peer's own messages wait for
     * WRITEABLE, behind any pong lws owes it.
     */
    if (wsio_write_now(c->wsi, !c->in_message && !c->tx_head && !c->ping_due)) {
        int rc = write_text(c, buf, len);

        free(buf);
        if (rc != 0)
            kill_conn(c);
        return;
    }
    tx = xmalloc(sizeof *tx);
    tx->buf = buf;
    tx->len = len;
    tx->next = NULL;
    if (c->tx_tail)
        c->tx_tail->next = tx;
    else
        c->tx_head = tx;
    c->tx_tail = tx;
    c->tx_bytes += len;
}

static void on_grace(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct conn *c = (struct conn *)(void *)((char *)t - offsetof(struct conn, grace));

    log_info("event=close_forced conn=%llu remote=%s", (unsigned long long)c->session.id,
             c->session.remote);
    kill_conn(c);
}

static void link_close(struct session *s, int code, const char *reason)
{
    struct conn *c = conn_of(s);
    struct timers *ts = s->svc->timers;

    if (c->close_code)
        return;
    s->state = SESSION_CLOSING;
    c->close_code = code;
    c->close_reason = reason ? reason : "";
    if (ts)
        timers_arm(ts, &c->grace, util_now_ms() + CONN_CLOSE_GRACE_MS, on_grace);
    lws_callback_on_writable(c->wsi);
}

static void link_drop(struct session *s)
{
    kill_conn(conn_of(s));
}

static void link_ping(struct session *s)
{
    struct conn *c = conn_of(s);

    c->ping_due = true;
    lws_callback_on_writable(c->wsi);
    /* Asked from a timer: wake lws so it acts on the request now. */
    lws_cancel_service(lws_get_context(c->wsi));
    log_debug("event=ping conn=%llu", (unsigned long long)s->id);
}

const struct link_ops conn_link_ops = {
    .kind = "ws",
    .headroom = LWS_PRE,
    .send = link_send,
    .close = link_close,
    .drop = link_drop,
    .ping = link_ping,
};

int conn_on_writable(struct conn *c)
{
    struct conn_tx *tx = c->tx_head;
    /* A ping with a payload: lws 4.1.6 does not report an empty pong. */
    unsigned char ping[LWS_PRE + 4] = {[LWS_PRE] = 'w', 's', 's', 'd'};

    if (c->ping_due && !c->close_code) {
        c->ping_due = false;
        if (lws_write(c->wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 4)
            return -1;
        if (tx)
            lws_callback_on_writable(c->wsi);
        return 0;
    }

    if (!tx) {
        if (!c->close_code)
            return 0;
        /*
         * lws 4.1 marks the socket unusable, and sends no close frame, when
         * WRITEABLE or a pending timeout ends a connection; a TIMER callback
         * returning -1 goes through the close handshake with the code set here.
         */
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        c->close_ready = true;
        /* Not a deadline: lws's TIMER callback is the one place where returning
         * -1 ends the connection with its close frame, so ask for it now. */
        lws_set_timer_usecs(c->wsi, 1);
        return 0;
    }
    if (write_text(c, tx->buf, tx->len) != 0)
        return -1;
    c->tx_head = tx->next;
    if (!c->tx_head)
        c->tx_tail = NULL;
    c->tx_bytes -= tx->len;
    free(tx->buf);
    free(tx);
    if (c->tx_head || c->close_code)
        lws_callback_on_writable(c->wsi);
    return 0;
}

bool conn_close_ready(const struct conn *c)
{
    return c->close_ready;
}

void conn_cleanup(struct conn *c)
{
    struct conn_tx *tx, *next;

    if (c->session.svc->timers)
        timers_disarm(c->session.svc->timers, &c->grace);
    for (tx = c->tx_head; tx; tx = next) {
        next = tx->next;
        free(tx->buf);
        free(tx);
    }
    c->tx_head = c->tx_tail = NULL;
    c->tx_bytes = 0;
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}
