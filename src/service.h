/*
 * The signing service inside the daemon: the one owner of the registry (key
 * -> the session holding it) and of the pending table (request id -> sign
 * request). Implements <wssignd/service.h> for controllers, and takes
 * introductions, answers, verdicts and closes from the session layer. The
 * take -> complete -> reschedule sequence of a request's end lives here
 * only. No lws: frames go out through the links' hooks.
 */
#ifndef WSSIGND_SERVICE_CORE_H
#define WSSIGND_SERVICE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wssignd/service.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "timers.h"

struct session;
struct registry;
struct pending;
struct peers;
struct verifier;

/* Per key-event listener (wss_key_events_subscribe); cb NULL: removed while
 * events were being delivered, compacted afterwards. */
struct service_listener {
    wss_key_event_cb cb;
    void *user;
};

struct service_lookup;
struct service_list_query;
struct service_op;

/*
 * The cluster's hooks into the service, filled in by the cluster link
 * (cluster/cluster.c); all NULL on a single node.
 */
struct service_cluster {
    void *arg;
    /* A session that reaches key on another node, made and registered on demand;
     * NULL with *status set (WSS_ERR_CLUSTER_UNAVAILABLE) when it cannot be asked. */
    struct session *(*reach)(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES], int *status);
    /* An answer (its raw frame) on local session s to a request this node does not
     * hold: true if it was a request of another node, relayed back to it. */
    bool (*relay)(void *arg, struct session *s, const char *request_id, const char *frame,
                  size_t len);
    /* Local session s holds its key here from now on (held), or no longer. */
    void (*key_event)(void *arg, struct session *s, bool held);
    /* Which node holds key (not held here): 0, and cb runs once later with the
     * answer and the holder's node id (NULL when nobody holds it); or an error
     * (cb does not run). */
    int (*lookup)(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES],
                  void (*cb)(void *user, const struct wss_presence *p, const char *node),
                  void *user);
    /* Disconnects key where another node holds it (a "kick"): 0, and cb runs once later
     * with WSS_OK and the holder's node id, WSS_ERR_NOT_CONNECTED (node NULL) or
     * WSS_ERR_CLUSTER_UNAVAILABLE; or an error (cb does not run). */
    int (*kick)(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES],
                void (*cb)(void *user, int status, const char *node), void *user);
    /* Lists the keys the other nodes hold (a "list"): 0, and cb runs once later with
     * WSS_OK and their keys after q->after (at most q->limit, sorted, more set when a
     * node holds keys beyond them) or WSS_ERR_CLUSTER_UNAVAILABLE; or an error. */
    int (*list)(void *arg, const struct service_list_query *q,
                void (*cb)(void *user, int status, const struct wss_key_entry *keys, size_t n,
                           bool more),
                void *user);
    /* True while the cluster's Redis is reachable. */
    bool (*up)(const void *arg);
    /* Requests here wait for key (wait_key), or no longer (unwait_key): the cluster
     * watches for the key's arrival on any node and then reaches it. */
    void (*wait_key)(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES]);
    void (*unwait_key)(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES]);
    const char *node_id; /* this node's id */
};

/* Per daemon: the state every sign request and signer session works on. */
struct wss_service {
    const struct config *cfg;  /* borrowed from the daemon */
    struct timers *timers;     /* the loop's timer substrate; NULL when not running */
    struct registry *registry; /* key -> the introduced session holding it */
    struct pending *pending;   /* request id -> pending request */
    struct timer expiry;       /* armed for the earliest pending deadline */
    uint64_t next_session_id;
    unsigned signers; /* open signer sessions */
    size_t sockets;   /* accepted sockets on the signer listener */
    bool draining;
    bool control_local; /* control listener is loopback-only */
    struct metrics metrics;
    struct verifier *verifier;           /* NULL: signatures are verified on the loop thread */
    struct peers *peers;                 /* the signer listener's admission table (owned by ws) */
    struct log_limit unknown_answer_log; /* peers can send unknown answers at will */
    struct service_listener *listeners;  /* key events, in subscription order (owned) */
    size_t n_listeners, cap_listeners;
    unsigned delivering;            /* events being delivered (nested calls count) */
    struct service_lookup *lookups; /* wss_lookup_key_async answers still due (owned) */
    struct service_cluster cluster;
    size_t remote_sessions;     /* registered sessions that are other nodes' (proxies) */
    struct service_op *key_ops; /* disconnections and listings still to answer (owned) */
};

/* Sets up svc over cfg. Returns 0. */
int service_init(struct wss_service *svc, const struct config *cfg);

/* Binds the service to the loop's timers once they exist; NULL detaches it
 * (the loop is ending: timers are no longer armed, and presence lookups
 * still due are answered WSS_ERR_SHUTTING_DOWN). */
void service_attach(struct wss_service *svc, struct timers *timers);

/*
 * Ends every pending request with WSS_ERR_SHUTTING_DOWN, telling each signer
 * "cancel", and refuses new requests from now on.
 */
void service_drain(struct wss_service *svc);

/* Frees what service_init made; every request must have ended. */
void service_cleanup(struct wss_service *svc);

/* Calls fn for every registered session (shutdown closes them). fn must not
 * register or unregister. */
void service_foreach_session(struct wss_service *svc, void (*fn)(struct session *s, void *arg),
                             void *arg);

/* Number of introduced keys and of pending requests. */
size_t service_key_count(const struct wss_service *svc);
size_t service_pending_count(const struct wss_service *svc);

/*
 * s has proved its key: it becomes the key's holder. Returns the session it
 * replaced, or NULL; the replaced session's pending requests (except those
 * whose answer is being verified) are re-sent to s with the same ids, and
 * the caller closes the replaced one. Key-event listeners hear
 * WSS_KEY_CONNECTED before this returns.
 */
struct session *service_register(struct wss_service *svc, struct session *s);

/*
 * The requests waiting for s's key (wss_sign_opts.wait_ms) go to s now. For
 * the cluster, when the key arrives on another node; a local session's
 * registration does it itself.
 */
void service_send_waiting(struct wss_service *svc, struct session *s);

/*
 * s is gone. If it holds its key, the key is unregistered, every request
 * sent for the key ends with WSS_ERR_CONN_CLOSED (those waiting for the key
 * keep waiting), and then key-event listeners
 * hear WSS_KEY_DISCONNECTED; a superseded session or one that never
 * introduced changes nothing. Returns true if s held its key.
 */
bool service_unregister(struct wss_service *svc, struct session *s);

/*
 * An answer from s. Returns WSS_ERR_NOT_FOUND if no such request is pending
 * on s (unknown, ended, sent elsewhere, or already answered): nothing
 * changes. Otherwise returns 0: the answer is checked against the bytes
 * that were sent and verified (now, or by the verifier pool), and the
 * request ends ok or invalid_signature (s is then told with an error frame).
 */
int service_on_answer(struct wss_service *svc, struct session *s, const char *request_id,
                      const uint8_t *message, size_t message_len,
                      const uint8_t signature[WSS_SIGNATURE_BYTES]);

/* A reject from s: 0 (the request ends rejected, with reason as detail when
 * not empty) or WSS_ERR_NOT_FOUND as for service_on_answer. */
int service_on_reject(struct wss_service *svc, struct session *s, const char *request_id,
                      const char *reason);

/*
 * An answer on local session s that no request here is waiting for: true if
 * the cluster relayed it to the node whose request it answers. frame is the
 * message as received.
 */
bool service_relay(struct wss_service *svc, struct session *s, const char *request_id,
                   const char *frame, size_t len);

/* The local session holding key (not another node's), or NULL. */
struct session *service_holder(struct wss_service *svc, const uint8_t key[WSS_PUBLIC_KEY_BYTES]);

/* Requests pending for key. */
size_t service_pending_for_key(const struct wss_service *svc,
                               const uint8_t key[WSS_PUBLIC_KEY_BYTES]);

/*
 * Ends the request id with status if it was sent to s: the cluster's way to
 * end a request its path lost (not_connected when nobody holds the key,
 * connection_closed when the node holding it went away). A request that may
 * still wait for its key (wss_sign_opts.wait_ms) waits instead of ending
 * not_connected. Returns 0 or WSS_ERR_NOT_FOUND.
 */
int service_end_request(struct wss_service *svc, struct session *s, const char *request_id,
                        int status);

/* Sends the request id to s again (the key moved between nodes). Returns 0 or
 * WSS_ERR_NOT_FOUND when it is not pending on s. */
int service_resend(struct wss_service *svc, struct session *s, const char *request_id);

/* A verdict from the verifier pool (a verifier_done_cb; arg is svc). */
void service_on_verdict(const char *request_id, int verdict, void *arg);

#endif
