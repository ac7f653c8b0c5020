/*
 * The signing service as seen by controllers.
 *
 * A controller asks a connected key holder to sign bytes with
 * wss_send_to_sign() and learns the outcome through a callback. All calls
 * must be made on the daemon's loop thread (from a controller's init, from
 * an lws callback or from a sign callback); the service is not thread-safe.
 */
#ifndef WSSIGND_SERVICE_H
#define WSSIGND_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wssignd/errors.h>

#define WSS_PUBLIC_KEY_BYTES 32
#define WSS_SIGNATURE_BYTES 64
/* A request id is a lowercase UUID v4 in text form: 36 characters + NUL. */
#define WSS_REQUEST_ID_BYTES 37
/* Longest deadline a request may ask for, and the default one. */
#define WSS_TIMEOUT_MAX_MS 60000u
#define WSS_TIMEOUT_DEFAULT_MS 60000u
/* Bytes that a signer would sign to prove its key; never signed on request. */
#define WSS_INTRODUCTION_PREFIX "wssign-introduction-v1"

/* The daemon's signing service; one per daemon, owned by the daemon. */
struct wss_service;

/* Per call: options for one wss_send_to_sign(); borrowed for the call only. */
struct wss_sign_opts {
    uint32_t timeout_ms; /* 0: the configured default; above WSS_TIMEOUT_MAX_MS: INVAL */
    const char
        *requester; /* who asks, for the audit log (e.g. "http_api 127.0.0.1"); may be NULL */
    /* What the signer is told about the request (it shows them to whoever approves):
     * label, at most WSS_LABEL_MAX bytes of UTF-8 without control characters (else
     * INVAL); requester_name, a short name of who asks (the HTTP API's token name,
     * "billing"), at most WSS_REQUESTER_NAME_MAX visible ASCII characters (else
     * INVAL). Both may be NULL. requester_name is also the requester label of
     * wssignd_requester_sign_requests_total: 1 to 32 of A-Z a-z 0-9 _ . -; after 32
     * distinct names, and for any other text, counted as "other". Never a secret:
     * it appears in metrics and is shown to the signer. */
    const char *label;
    const char *requester_name;
    /* Up to this long, wait for the key to be introduced (on any node of a
     * cluster) instead of failing with WSS_ERR_NOT_CONNECTED at once; the request
     * then ends not_connected if the key has not come. 0: do not wait; at most
     * the request's timeout (else INVAL). */
    uint32_t wait_ms;
};

#define WSS_LABEL_MAX 256
#define WSS_REQUESTER_NAME_MAX 64

/* Per outcome: what a sign callback receives; valid only during the callback. */
struct wss_sign_result {
    int status;                /* WSS_OK or a negative enum wss_err */
    const char *request_id;    /* the id wss_send_to_sign() returned */
    const uint8_t *public_key; /* WSS_PUBLIC_KEY_BYTES */
    const uint8_t *message;    /* the bytes that were to be signed */
    size_t message_len;
    const uint8_t *signature; /* WSS_SIGNATURE_BYTES when status == WSS_OK, else NULL */
    const char *detail;       /* the signer's reason for WSS_ERR_REJECTED, else NULL */
    uint64_t latency_ms;      /* from the call to the outcome */
};

/* Called exactly once per accepted request, on the loop thread. */
typedef void (*wss_sign_cb)(const struct wss_sign_result *result, void *user);

/*
 * Asks the connection that owns public_key to sign message.
 *
 * The message is copied. On success the request id is written to request_id
 * (may be NULL if the caller does not need it) and cb runs exactly once,
 * later, on the loop thread, and never from inside this call. On failure
 * nothing was queued and cb never runs.
 *
 * Returns 0, or:
 *   WSS_ERR_INVAL          message is empty, too large, or begins with
 *                          WSS_INTRODUCTION_PREFIX; timeout too long; cb NULL
 *   WSS_ERR_NOT_CONNECTED  no introduced connection holds public_key
 *   WSS_ERR_OVERLOADED     the per-key or global in-flight cap is reached
 *   WSS_ERR_SHUTTING_DOWN  the daemon is draining
 *   WSS_ERR_CLUSTER_UNAVAILABLE  the key is not held here and the cluster
 *                          cannot be asked (its Redis is unreachable)
 */
__attribute__((warn_unused_result)) int
wss_send_to_sign(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                 const uint8_t *message, size_t message_len, const struct wss_sign_opts *opts,
                 wss_sign_cb cb, void *user, char request_id[WSS_REQUEST_ID_BYTES]);

/*
 * Records a sign request that a controller refused before calling
 * wss_send_to_sign() (a bad request body, a missing token, a throttled
 * client): writes its audit line (request_id=-) and counts status in
 * wssignd_sign_requests_total, as the service does for the requests it
 * refuses itself. public_key (WSS_PUBLIC_KEY_BYTES) and message (len bytes)
 * may be NULL when the request did not carry them in a usable form; only
 * their fingerprint, length and SHA-256 are logged. status is a negative
 * enum wss_err (WSS_ERR_INVAL, WSS_ERR_UNAUTHORIZED, ...); requester as in
 * struct wss_sign_opts (may be NULL). Borrows every pointer.
 */
void wss_audit_refused(struct wss_service *svc, const uint8_t *public_key, const uint8_t *message,
                       size_t len, int status, const char *requester);

/*
 * wss_audit_refused with the requester taken from opts (may be NULL):
 * opts->requester for the audit line, and opts->requester_name counts the
 * refusal in wssignd_requester_sign_requests_total too.
 */
void wss_audit_refused_opts(struct wss_service *svc, const uint8_t *public_key,
                            const uint8_t *message, size_t len, int status,
                            const struct wss_sign_opts *opts);

/*
 * Withdraws a pending request. Its callback runs once, with
 * WSS_ERR_CANCELLED, before this function returns, and the signer is sent a
 * "cancel" frame. Returns 0, or WSS_ERR_NOT_FOUND if the request has already
 * ended (its callback has already run).
 */
int wss_cancel(struct wss_service *svc, const char *request_id);

/* The largest message wss_send_to_sign() accepts (requests.max_message_bytes). */
size_t wss_max_message_bytes(struct wss_service *svc);

/* Longest node id of a cluster (docs/CLUSTER.md). */
#define WSS_NODE_ID_MAX 64

/* Per lookup: what wss_lookup_key() reports about one key. */
struct wss_presence {
    bool connected;
    uint64_t connected_at_ms; /* unix time in ms at which the key was introduced */
    char session_id[WSS_REQUEST_ID_BYTES];
    unsigned pending;               /* requests in flight for the key (on the node holding it) */
    char node[WSS_NODE_ID_MAX + 1]; /* the cluster node holding the key; "" on a single node */
};

/*
 * Reports whether an introduced connection on this daemon currently holds
 * public_key, answered at once from the registry. Fills *out (may be NULL)
 * and returns true if so; returns false otherwise (*out untouched).
 */
bool wss_lookup_key(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                    struct wss_presence *out);

/*
 * Called once per accepted wss_lookup_key_async(), on the loop thread.
 * status is WSS_OK, and presence says whether the key is connected
 * (presence->connected; the other fields are set only when it is); or
 * WSS_ERR_SHUTTING_DOWN when the daemon's loop ended first (presence then
 * reads not connected). presence is valid only during the call.
 */
typedef void (*wss_presence_cb)(int status, const struct wss_presence *presence, void *user);

/*
 * Asks whether public_key is connected, and answers later: cb runs exactly
 * once, on the loop thread, never from inside this call. A key held on this
 * daemon is answered from its registry on the next turn of the loop; in a
 * cluster, a key held on another node is answered by that node (presence
 * names it in node) within a Redis round trip, and a key held nowhere reads
 * as not connected (also when the cluster cannot be reached). The key is
 * copied; user must stay valid until cb has run.
 *
 * Returns 0, or (nothing queued, cb never runs):
 *   WSS_ERR_INVAL          public_key or cb NULL
 *   WSS_ERR_SHUTTING_DOWN  the daemon's loop is not running (a configuration
 *                          check, or the end of shutdown)
 */
int wss_lookup_key_async(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                         wss_presence_cb cb, void *user);

/*
 * The cluster this daemon belongs to: "up" or "down" (Redis reachable or
 * not), or NULL on a single node. For health checks.
 */
const char *wss_cluster_state(struct wss_service *svc);

/* What a key event reports. */
enum wss_key_event_type {
    WSS_KEY_CONNECTED = 1,    /* a connection proved the key and now holds it */
    WSS_KEY_DISCONNECTED = 2, /* the key's holder went away: no connection holds the key */
};

/* Per event: valid only during the callback. */
struct wss_key_event {
    enum wss_key_event_type type;
    const uint8_t *public_key; /* WSS_PUBLIC_KEY_BYTES */
    const char *session_id;    /* the holder's session: the new one, or the one that ended */
    uint64_t at_ms;            /* unix time in ms of the introduction or the departure */
    bool replaced;             /* CONNECTED only: it took the key over from a connection that
                                  held it (no DISCONNECTED came in between) */
};

/*
 * Called for every key event on this daemon, on the loop thread, inside the
 * introduction or close that caused it: for CONNECTED the key already
 * answers wss_lookup_key() and takes requests; for DISCONNECTED its
 * requests have already ended (connection_closed). The callback may call
 * any wss_ function, including (un)subscribing; a listener added during an
 * event first hears the next one.
 */
typedef void (*wss_key_event_cb)(const struct wss_key_event *ev, void *user);

/*
 * Adds a listener for key events; listeners are called in the order they
 * were added. Keys already connected are not replayed; a controller that
 * subscribes in its init hears every key, as the daemon starts controllers
 * before it accepts signers. Returns 0, WSS_ERR_INVAL (cb NULL) or
 * WSS_ERR_EXISTS (this cb and user are already listening).
 */
int wss_key_events_subscribe(struct wss_service *svc, wss_key_event_cb cb, void *user);

/*
 * Removes the listener added with cb and user; it hears no event from now
 * on, even one being delivered. A controller unsubscribes in its cleanup at
 * the latest. Returns 0 or WSS_ERR_NOT_FOUND.
 */
int wss_key_events_unsubscribe(struct wss_service *svc, wss_key_event_cb cb, void *user);

/*
 * Called once per accepted wss_disconnect_key(), on the loop thread, never
 * inside the call. status is WSS_OK when the key's connection was closed
 * (node: the node that held it in a cluster, else ""); WSS_ERR_NOT_CONNECTED
 * when no connection held the key; WSS_ERR_CLUSTER_UNAVAILABLE when the key
 * is not held here and the cluster could not be asked, or the node holding
 * it did not answer within a second; WSS_ERR_SHUTTING_DOWN when the loop
 * ended first. node is valid only during the call.
 */
typedef void (*wss_disconnect_cb)(int status, const char *node, void *user);

/*
 * Disconnects the connection that holds public_key, wherever it is in the
 * cluster: the signer is sent an error frame "denied" and closed with 4003,
 * its pending requests end WSS_ERR_CONN_CLOSED, and key-event listeners
 * hear WSS_KEY_DISCONNECTED. A key held on this daemon is disconnected
 * before this returns; a key held on another node is disconnected by that
 * node. The signer may introduce itself again (keys.deny_file keeps a key
 * out). requester (may be NULL) names who asked, for the log line
 * (event=key_disconnect). The key is copied; user must stay valid until cb
 * has run.
 *
 * Returns 0 (cb runs exactly once, later), or (nothing done, cb never runs):
 *   WSS_ERR_INVAL          public_key or cb NULL
 *   WSS_ERR_SHUTTING_DOWN  the daemon's loop is not running
 */
int wss_disconnect_key(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                       const char *requester, wss_disconnect_cb cb, void *user);

/* The most keys one wss_list_keys() page holds, and the most keys it may be limited to. */
#define WSS_LIST_MAX 1000
/* Longest remote address reported for a key. */
#define WSS_REMOTE_MAX 63

/* Per key of a listing: valid only during the callback. */
struct wss_key_entry {
    uint8_t public_key[WSS_PUBLIC_KEY_BYTES];
    uint64_t connected_at_ms;        /* unix time in ms at which the key was introduced */
    char remote[WSS_REMOTE_MAX + 1]; /* the signer's address, as the node holding it saw it */
    char node[WSS_NODE_ID_MAX + 1];  /* the cluster node holding the key; "" on a single node */
};

/* Per call: what wss_list_keys() lists; borrowed for the call only. */
struct wss_list_opts {
    /* WSS_PUBLIC_KEY_BYTES, or NULL: list the keys whose bytes sort after this one
     * (the last key of the previous page), or from the first. */
    const uint8_t *after;
    size_t limit; /* 1..WSS_LIST_MAX keys at most */
    /* If not NULL: list only keys among these n_only (1..WSS_LIST_MAX, any order). */
    const uint8_t (*only)[WSS_PUBLIC_KEY_BYTES];
    size_t n_only;
};

/*
 * Called once per accepted wss_list_keys(), on the loop thread, never inside
 * the call: status WSS_OK with keys[0..n-1] in ascending order of their
 * bytes, and more true when keys beyond the last one exist (ask again with
 * after = keys[n-1].public_key); or WSS_ERR_CLUSTER_UNAVAILABLE (the cluster
 * could not be asked, or a node did not answer within a second) or
 * WSS_ERR_SHUTTING_DOWN, with n 0. keys is valid only during the call.
 */
typedef void (*wss_key_list_cb)(int status, const struct wss_key_entry *keys, size_t n, bool more,
                                void *user);

/*
 * Lists the introduced keys, of this daemon or, in a cluster, of every node,
 * one page at a time in ascending order of their bytes. Paging by the last
 * key returned is stable under churn: a key connected from the first page to
 * the last is listed exactly once, whatever arrives or leaves in between.
 * The options are copied; user must stay valid until cb has run.
 *
 * Returns 0 (cb runs exactly once, later), or (cb never runs):
 *   WSS_ERR_INVAL          opts or cb NULL, limit or n_only out of range
 *   WSS_ERR_SHUTTING_DOWN  the daemon's loop is not running
 */
int wss_list_keys(struct wss_service *svc, const struct wss_list_opts *opts, wss_key_list_cb cb,
                  void *user);

/* A one-shot timer on the loop thread, for controllers that act on their own. */
struct wss_timer;
typedef void (*wss_timer_cb)(void *user);

/* Creates a stopped timer that will call fn(user) on the loop thread.
 * Never NULL; free with wss_timer_free. */
struct wss_timer *wss_timer_new(struct wss_service *svc, wss_timer_cb fn, void *user);
/* (Re)arms the timer to fire once, delay_ms from now (a timer fires once per
 * start; fn may start it again). Does nothing when the loop is not running
 * (a configuration check, or the end of shutdown). */
void wss_timer_start(struct wss_timer *t, uint32_t delay_ms);
/* Disarms the timer if it is armed; it can be started again. */
void wss_timer_stop(struct wss_timer *t);
/* Stops and frees the timer. NULL is a no-op. */
void wss_timer_free(struct wss_timer *t);

#endif
