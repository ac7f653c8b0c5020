/*
 * The agent's WebSocket client, through lws: one connection to the daemon at
 * a time, reconnects with backoff and full jitter, the deadline for the
 * handshake and the introduction, keep-alive pings, message reassembly with a
 * size bound, the outgoing queue with its bound, and closing (politely, or at
 * once for a server that does not read). Knows nothing of the command line
 * or of what the frames mean: whole text messages go to its user through
 * hooks, and frames come back through agent_conn_send.
 */
#ifndef WSSIGN_AGENT_CONN_H
#define WSSIGN_AGENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "url.h"

/* Per agent: settings. Pointers are borrowed and must outlive the connection. */
struct agent_conn_cfg {
    const char *url_text;        /* the URL as given, for logs */
    const struct url *url;       /* ws:// or wss:// */
    const char *ca;              /* wss://: PEM file of trusted CAs; NULL: the system store */
    bool insecure;               /* wss://: no certificate checks */
    uint32_t backoff_base_ms;    /* the first reconnect delay is drawn from 0..base */
    uint32_t backoff_max_ms;     /* cap of the reconnect delay */
    uint32_t ping_s;             /* ping after this many idle seconds, hang up after 2N+10 */
    uint32_t connect_timeout_ms; /* connect + handshake + introduction, at most */
    size_t max_queued_bytes;     /* unread answers queued at most (one always fits) */
    size_t max_message;          /* largest message a frame may carry (bounds reassembly) */
};

/* Per agent: how the connection talks to its user (user is the pointer given
 * to agent_conn_new). Every hook runs on the loop, inside agent_conn_service. */
struct agent_conn_hooks {
    /* A connection is established: a challenge is next. */
    void (*on_open)(void *user);
    /* One whole text message of len bytes (not NUL-terminated). Returns 0, or
     * non-zero with a reason in err: the connection is then closed (1002). */
    int (*on_message)(void *user, const char *buf, size_t len, char *err, size_t errlen);
    /* A connection, or an attempt at one, is over (after a failed attempt
     * too, when on_open never ran). */
    void (*on_close)(void *user);
    /* True while the user has work to advance: tick is then called about
     * every 10 ms until it is false. */
    bool (*busy)(void *user);
    void (*tick)(void *user, uint64_t now_ms);
    /* An orderly stop begins on an open connection: last answers may be sent
     * now; the close (1001) follows once the queue has drained. */
    void (*on_stopping)(void *user);
};

struct agent_conn;

/*
 * Creates the lws client context; nothing connects before agent_conn_start.
 * lws's log goes to the log sink (its debug lines at log level debug only).
 * Returns NULL with the reason in err if the context cannot be made (for
 * wss://, an unreadable or malformed cfg->ca is the usual cause).
 */
struct agent_conn *agent_conn_new(const struct agent_conn_cfg *cfg,
                                  const struct agent_conn_hooks *hooks, void *user, char *err,
                                  size_t errlen);

/* Closes any connection without reconnecting (on_close still runs), destroys
 * the context and frees c. NULL is a no-op. */
void agent_conn_free(struct agent_conn *c);

/* Bytes to leave free in front of each frame given to agent_conn_send (LWS_PRE). */
size_t agent_conn_headroom(void);

/* Schedules the first connection attempt. */
void agent_conn_start(struct agent_conn *c);

/*
 * Queues one text frame: buf holds agent_conn_headroom() bytes, then len
 * bytes. Takes buf (free()) in every case. Dropped when no connection is
 * established or one is closing. A frame that would take the queue past
 * max_queued_bytes (a server that does not read) drops the connection.
 */
void agent_conn_send(struct agent_conn *c, char *buf, size_t len);

/* The daemon accepted the introduction: the connection deadline is off and
 * the reconnect backoff starts again from its base. */
void agent_conn_introduced(struct agent_conn *c);

/*
 * Begins an orderly stop; later calls do nothing. On an open connection
 * on_stopping runs, then the connection closes with 1001 once its queue has
 * drained; the agent is done when it is closed, or after 2 s in any case.
 * No reconnect follows.
 */
void agent_conn_stop(struct agent_conn *c);

/* Runs the loop once: waits for network events or timers (at most about
 * 100 ms) and handles them. Returns false once the agent is done (stopped,
 * or the loop failed). */
bool agent_conn_service(struct agent_conn *c);

#endif
