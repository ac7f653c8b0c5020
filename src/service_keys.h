/*
 * Which keys the service holds, as an operator sees them: the admission of
 * a key at introduction (keys.allow_file, keys.deny_file), closing a key's
 * connection on request or when the lists change, and listing the keys one
 * page at a time. Implements wss_disconnect_key() and wss_list_keys() of
 * <wssignd/service.h>; in a cluster the other nodes are asked through the
 * service's cluster hooks (kick, list). No lws.
 */
#ifndef WSSIGND_SERVICE_KEYS_H
#define WSSIGND_SERVICE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wssignd/service.h>

struct keyset;
struct timers;

/* Per listing: the page a node fills from its own keys (and asks of the others). */
struct service_list_query {
    bool has_after;
    uint8_t after[WSS_PUBLIC_KEY_BYTES]; /* list keys whose bytes sort after this one */
    size_t limit;                        /* 1..WSS_LIST_MAX */
    const struct keyset *only;           /* NULL: every key; else only these */
};

/* True if key may introduce itself: listed in keys.allow_file when one is
 * set, and not listed in keys.deny_file. */
bool service_key_admitted(const struct wss_service *svc, const uint8_t key[WSS_PUBLIC_KEY_BYTES]);

/*
 * After a reload: every connection on this daemon whose key the key lists
 * no longer admit is disconnected as service_disconnect_holder does
 * (reason "denied"). Returns how many.
 */
size_t service_enforce_key_lists(struct wss_service *svc);

/*
 * Disconnects the connection on this daemon that holds key, if any: it is
 * sent an error frame "denied" with message, unregistered at once (its
 * requests end connection_closed, key-event listeners and the cluster hear
 * of it) and closed with 4003. reason ("requested", "denied") goes to the
 * log line. Returns true if a connection here held the key.
 */
bool service_disconnect_holder(struct wss_service *svc, const uint8_t key[WSS_PUBLIC_KEY_BYTES],
                               const char *message, const char *reason);

/*
 * Fills out (room for q->limit entries) with the keys held on this daemon
 * that match q, in ascending order of their bytes; *more is set when more
 * keys match than were written. node is written into each entry (may be
 * NULL: ""). Returns the number written.
 */
size_t service_list_local(struct wss_service *svc, const struct service_list_query *q,
                          const char *node, struct wss_key_entry *out, bool *more);

/*
 * Sorts keys[0..n) by their bytes, keeps one entry per key (the latest
 * introduction: a key moving between nodes may be listed by both), and
 * cuts the list to limit entries, setting *more when it cut any. Returns
 * the number kept.
 */
size_t service_keys_merge(struct wss_key_entry *keys, size_t n, size_t limit, bool *more);

/* The loop is ending: disarms every answer still due on old (the timers
 * being detached) and answers each WSS_ERR_SHUTTING_DOWN. */
void service_keys_stop(struct wss_service *svc, struct timers *old);

#endif
