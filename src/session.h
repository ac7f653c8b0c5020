/*
 * The signer side of wssign.v1 for one link: the challenge, the
 * proof-of-possession introduction, the introduction deadline, keep-alive
 * pings and idle hang-ups, refused frames and their limit, and the dispatch
 * of answers to the signing service. Knows nothing of lws: it talks to its
 * connection only through the link's hooks (link.h), and to sign requests
 * only through service.h.
 */
#ifndef WSSIGND_SESSION_H
#define WSSIGND_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wssignd/service.h>

#include "crypto.h"
#include "link.h"
#include "timers.h"

struct peer;

enum session_state {
    SESSION_CHALLENGED = 0, /* challenge sent, waiting for an introduction */
    SESSION_INTRODUCED,     /* proved its key; the key's holder or superseded */
    SESSION_CLOSING,        /* a close or drop is under way; nothing more is accepted */
};

/* Longest remote address or node name kept for logs. */
#define SESSION_REMOTE_MAX 64

/* Per link: embedded by the transport in its per-connection state, set up by
 * session_init and torn down by session_on_close. */
struct session {
    const struct link_ops *ops;
    struct wss_service *svc;
    uint64_t id; /* unique for the daemon's life, never 0 */
    enum session_state state;
    bool superseded;                 /* a newer link proved the same key */
    bool proven;                     /* counted as introduced in the admission table */
    bool minimal;                    /* opened with introduction.proof "none": the minimal
                                         protocol (no challenge, introduced or cancel frame) */
    char remote[SESSION_REMOTE_MAX]; /* peer address (or node), for logs */
    struct peer *admission;          /* its count in the listener's peers table, or NULL */
    uint8_t nonce[CRYPTO_NONCE_BYTES];
    char nonce_b64[CRYPTO_NONCE_B64_BYTES];
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char session_id[WSS_REQUEST_ID_BYTES];
    unsigned errors;       /* refused frames so far */
    unsigned late_answers; /* requests sent here that ended unanswered: answers to
                                         them may still come and are no protocol errors */
    struct timer timer;    /* introduction deadline, then ping and hang-up */
    uint64_t last_rx_ms;   /* last frame or pong from the peer */
    bool ping_sent;        /* a ping is out since last_rx_ms */
};

/*
 * Sets up s for a new link of transport ops on svc: a fresh id, the remote
 * address for logs (copied, may be NULL) and the link's admission count
 * (may be NULL). Nothing is sent until session_on_open.
 */
void session_init(struct session *s, struct wss_service *svc, const struct link_ops *ops,
                  const char *remote, struct peer *admission);

/* The link is open: sends the challenge (none with introduction.proof "none",
 * which then holds for the link's life) and arms the introduction deadline. */
void session_on_open(struct session *s);

/*
 * Handles one complete text message of len bytes (not NUL-terminated). Bad
 * frames are refused with an error frame; past limits.max_protocol_errors
 * the link is closed with 1008. Returns 0.
 */
int session_on_message(struct session *s, const char *buf, size_t len);

/* A frame or a pong arrived: the peer is alive. */
void session_on_activity(struct session *s);

/* A newer session (by, local or on another node) holds old's key: old is told
 * with an error frame "superseded" and closed with 4001. */
void session_supersede(struct session *old, struct session *by);

/* The link is gone: its timer stops, and if it held its key, the key is
 * unregistered and its requests end connection_closed. Call once. */
void session_on_close(struct session *s);

#endif
