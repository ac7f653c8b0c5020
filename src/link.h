/*
 * The transport seam: how the protocol core (session.c, service.c) reaches a
 * key holder's connection, wherever it lives. A transport fills in one
 * struct link_ops and embeds a struct session (session.h) in its own
 * per-connection state; the core never learns which transport it talks to.
 * Implementations: conn.c (a WebSocket connection through lws), the cluster
 * link (a connection on another node), and the unit tests' fake.
 *
 * The frame helpers below encode one server frame with the headroom the
 * transport asks for and hand it to its send hook.
 */
#ifndef WSSIGND_LINK_H
#define WSSIGND_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct metrics;

/* Per transport: constant. Every hook runs on the loop thread. */
struct link_ops {
    const char *kind; /* "ws", "cluster", "fake": for logs */
    size_t headroom;  /* bytes the transport wants free in front of each frame */
    bool remote;      /* the connection lives on another node (the cluster's proxies) */
    /*
     * Sends one text frame: buf holds headroom bytes, then len bytes of JSON.
     * Takes buf (free()) in every case. Frames sent after close or drop are
     * discarded. A transport whose peer does not read may drop the link
     * instead (it then reports the close as for any other).
     */
    void (*send)(struct session *s, char *buf, size_t len);
    /* Sends what is queued, then closes with a WebSocket close code and
     * reason (at most 123 bytes, of static storage: it is kept, not copied).
     * Idempotent. */
    void (*close)(struct session *s, int code, const char *reason);
    /* Ends the link at once, without a close handshake (a peer that does not
     * read or answer). */
    void (*drop)(struct session *s);
    /* Sends a keep-alive ping. NULL: the transport keeps the link alive itself. */
    void (*ping)(struct session *s);
};

/* Close codes of the protocol (RFC 6455 1000-1015, application 4000-4999). */
#define LINK_CLOSE_GOING_AWAY 1001
#define LINK_CLOSE_POLICY 1008
#define LINK_CLOSE_SUPERSEDED 4001
#define LINK_CLOSE_INTRO_TIMEOUT 4002
/* The key may not connect here (keys.allow_file, keys.deny_file) or an operator
 * disconnected it (DELETE /v1/keys/{key}, wss_disconnect_key). */
#define LINK_CLOSE_DENIED 4003

/* Sends {"type":"error",...}; request_id may be NULL. Counts it in m. */
void link_send_error(struct session *s, struct metrics *m, const char *code, const char *message,
                     const char *request_id);
/* Sends the challenge with the session's nonce. */
void link_send_challenge(struct session *s);
/* Sends "introduced" for the session's key and session id. */
void link_send_introduced(struct session *s);
/* Sends a sign_request; label and requester (the asker's name) may be NULL. */
void link_send_sign_request(struct session *s, const char *request_id, const uint8_t *message,
                            size_t message_len, uint64_t expires_at_ms, const char *label,
                            const char *requester);
/* Sends a cancel; reason is "timeout", "requester_cancelled" or "shutting_down".
 * Nothing on a link that speaks the minimal protocol (session.h). */
void link_send_cancel(struct session *s, const char *request_id, const char *reason);

#endif
