/*
 * Per signer connection: message reassembly, the outgoing frame queue, the
 * close handshake, and the session fields the protocol layer fills in.
 * lws owns the memory (it is the protocol's per-session data); the registry
 * and the pending table refer to a connection by key and id, never own it.
 */
#ifndef WSSIGND_CONN_H
#define WSSIGND_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include <wssignd/service.h>

#include "crypto.h"
#include "wheel.h"

enum conn_state {
    CONN_CHALLENGED = 0, /* challenge sent, waiting for an introduction */
    CONN_INTRODUCED,     /* proved its key; registered */
    CONN_CLOSING,        /* a close is queued; nothing more is accepted */
};

/* Per outgoing frame: JSON with LWS_PRE bytes of headroom, queued FIFO. */
struct conn_tx {
    struct conn_tx *next;
    size_t len; /* bytes of payload after LWS_PRE */
    char *buf;  /* owned; payload starts at buf + LWS_PRE */
};

/* Per connection: lws's per-session data for the signer protocol. */
struct conn {
    struct lws *wsi;
    uint64_t id;                      /* unique for the daemon's life */
    enum conn_state state;
    bool superseded;                  /* a newer connection took the key */
    uint8_t nonce[CRYPTO_NONCE_BYTES];
    char nonce_b64[CRYPTO_NONCE_B64_BYTES];
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char session_id[WSS_REQUEST_ID_BYTES];
    char peer[64];                    /* remote address, for logs */
    struct peer *admission;           /* its count in the listener's peers table, or NULL */
    bool proven;                      /* counted there as introduced */

    char *rx;                         /* message being reassembled */
    size_t rx_len, rx_cap, rx_max;

    struct conn_tx *tx_head, *tx_tail;
    size_t tx_bytes, tx_max;
    uint64_t *tx_total;               /* the daemon's count of bytes written */
    bool in_message;                  /* handling a message from this peer */
    bool peer_closed;                 /* the peer sent a close: nothing more is sent */
    unsigned errors;                  /* refused frames so far */
    unsigned late_answers;            /* requests sent here that ended unanswered: answers to
                                         them may still come, and are not protocol errors */

    int close_code;                   /* sent once the queue has drained */
    char close_reason[64];
    bool close_ready;                 /* queue drained: close at the next TIMER */
    bool dropped;                     /* output queue overflowed: being killed */

    struct wheel_entry timer;         /* introduction deadline, then ping and hang-up */
    uint64_t intro_deadline_ms;
    uint64_t last_rx_ms;              /* last frame or pong from the peer */
    bool ping_sent;                   /* a ping is out since last_rx_ms */
    bool ping_due;                    /* write a ping at the next WRITEABLE */
};

/* Outcome of feeding a fragment to conn_on_rx. */
enum conn_rx {
    CONN_RX_MORE = 0,     /* wait for more fragments */
    CONN_RX_COMPLETE = 1, /* a whole message is ready */
    CONN_RX_TOO_BIG = -1, /* over max_bytes: the connection must close 1009 */
};

/* Sets up c for a new connection on wsi; rx_max bounds a reassembled message,
 * tx_max the output queued for a peer that does not read. */
void conn_init(struct conn *c, struct lws *wsi, uint64_t id, size_t rx_max, size_t tx_max,
               uint64_t *tx_total);

/*
 * Takes a piece of a message; final says it ends the message. On
 * CONN_RX_COMPLETE *msg and *msg_len give the whole message (not
 * NUL-terminated): in itself when it came in one piece, else the reassembly
 * buffer, valid until conn_rx_done().
 */
enum conn_rx conn_on_rx(struct conn *c, const void *in, size_t len, bool final, const char **msg,
                        size_t *msg_len);

/* Drops the connection without a close handshake (a peer that is gone or
 * does not read); it becomes CONN_CLOSING at once. Safe from any loop callback. */
void conn_kill(struct conn *c);

/* The peer sent a close frame: frames sent from now on are dropped (lws
 * answers the close itself). */
void conn_on_peer_close(struct conn *c);

/* A pong arrived: the peer is alive. */
void conn_on_pong(struct conn *c);

/* Queues a WebSocket ping, written ahead of queued frames. */
void conn_ping(struct conn *c);

/* Forgets the message just handled (after CONN_RX_COMPLETE) or a partial one. */
void conn_rx_done(struct conn *c);

/* Sends a frame built with LWS_PRE headroom (buf from a proto_encode_* call
 * with headroom LWS_PRE); takes ownership of buf. It is written at once when
 * nothing is waiting for the socket, else queued. Nothing is sent once a
 * close is pending. A peer whose queue would pass tx_max is not reading: it
 * is marked CONN_CLOSING and dropped without a close handshake. */
void conn_send_take(struct conn *c, char *buf, size_t len);

/* Queues a close with code and reason after whatever is already queued. The
 * connection stops accepting messages at once. Idempotent. */
void conn_close(struct conn *c, int code, const char *reason);

/* Writes one queued frame (SERVER_WRITEABLE) and counts its size in the
 * total given to conn_init. Returns 0, or -1 to close. */
int conn_on_writable(struct conn *c);

/* True once the close is due: the TIMER callback then returns -1. */
bool conn_close_ready(const struct conn *c);

/* Frees the queue and buffer (at LWS_CALLBACK_CLOSED). */
void conn_cleanup(struct conn *c);

#endif
