/*
 * Per signer WebSocket connection: the lws side of the transport seam.
 * Bounded reassembly of fragmented messages, the outgoing frame queue, the
 * close handshake and its grace period, and the struct link_ops that lets
 * the protocol core (session.c, service.c) send on it. lws owns the memory
 * (it is the protocol's per-session data); the registry and the pending
 * table refer to a connection by key and session id, never own it.
 */
#ifndef WSSIGND_CONN_H
#define WSSIGND_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "session.h"
#include "timers.h"

/* Per outgoing frame: JSON with LWS_PRE bytes of headroom, queued FIFO. */
struct conn_tx {
    struct conn_tx *next;
    size_t len; /* bytes of payload after LWS_PRE */
    char *buf;  /* owned; payload starts at buf + LWS_PRE */
};

/* Per connection: lws's per-session data for the signer protocol. */
struct conn {
    struct session session; /* the protocol state; its ops are conn_link_ops */
    struct lws *wsi;

    char *rx; /* message being reassembled */
    size_t rx_len, rx_cap, rx_max;

    struct conn_tx *tx_head, *tx_tail;
    size_t tx_bytes, tx_max;
    uint64_t *tx_total; /* the daemon's count of bytes written */
    bool in_message;    /* handling a message from this peer */
    bool peer_closed;   /* the peer sent a close: nothing more is sent */

    int close_code;           /* sent once the queue has drained */
    const char *close_reason; /* static storage (link_ops.close) */
    bool close_ready;         /* queue drained: close at the next TIMER */
    bool dropped;             /* dropped: being killed */
    bool ping_due;            /* write a ping at the next WRITEABLE */
    struct timer grace;       /* a close that cannot be flushed is forced */
};

/* The link hooks of a signer WebSocket (send, close, drop, ping). */
extern const struct link_ops conn_link_ops;

/* Outcome of feeding a fragment to conn_on_rx. */
enum conn_rx {
    CONN_RX_MORE = 0,     /* wait for more fragments */
    CONN_RX_COMPLETE = 1, /* a whole message is ready */
    CONN_RX_TOO_BIG = -1, /* over max_bytes: the connection must close 1009 */
};

/* Sets up c for a new connection on wsi, with its session on svc (remote
 * address and admission count from the socket); rx_max bounds a reassembled
 * message, tx_max the output queued for a peer that does not read. */
void conn_init(struct conn *c, struct lws *wsi, struct wss_service *svc, size_t rx_max,
               size_t tx_max, uint64_t *tx_total, struct peer *admission);

/*
 * Takes a piece of a message; final says it ends the message. On
 * CONN_RX_COMPLETE *msg and *msg_len give the whole message (not
 * NUL-terminated): in itself when it came in one piece, else the reassembly
 * buffer, valid until conn_rx_done().
 */
enum conn_rx conn_on_rx(struct conn *c, const void *in, size_t len, bool final, const char **msg,
                        size_t *msg_len);

/* The peer sent a close frame: frames sent from now on are dropped (lws
 * answers the close itself). */
void conn_on_peer_close(struct conn *c);

/* Forgets the message just handled (after CONN_RX_COMPLETE) or a partial one. */
void conn_rx_done(struct conn *c);

/* Writes one queued frame (SERVER_WRITEABLE) and counts its size in the
 * total given to conn_init. Returns 0, or -1 to close. */
int conn_on_writable(struct conn *c);

/* True once the close is due: the TIMER callback then returns -1. */
bool conn_close_ready(const struct conn *c);

/* Frees the queue and buffer, and stops the grace timer (at LWS_CALLBACK_CLOSED). */
void conn_cleanup(struct conn *c);

#endif
