/*
 * The cluster: several daemons share one key space through Redis pub/sub.
 * A key whose connection lives on another node is reached through a proxy
 * session, one more implementation of the transport seam (link.h): the
 * session and service logic is the same for a remote key as for a local
 * one, and the requesting node verifies every signature itself. The node
 * that holds a key relays frames between its connection and the requesting
 * nodes. docs/CLUSTER.md has the design, the channels, the message format
 * (msg.h) and the failure table. Only redis.c speaks Redis.
 */
#ifndef WSSIGND_CLUSTER_H
#define WSSIGND_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "msg.h"
#include "redis.h"

struct wss_service;
struct timers;
struct cluster;

/* Longest channel prefix. */
#define CLUSTER_PREFIX_MAX 64
/* Smallest shared secret accepted, in bytes. */
#define CLUSTER_SECRET_MIN 32

/* Per cluster configuration, resolved: the files read and the address parsed. */
struct cluster_settings {
    struct redis_target target;
    char node_id[CMSG_NODE_MAX + 1];
    char prefix[CLUSTER_PREFIX_MAX + 1];
    uint8_t secret[CMSG_KEY_BYTES]; /* derived from the secret file's bytes */
};

/*
 * Resolves a cluster section: parses the Redis URL (resolving a host name),
 * reads the password file (0600; "password" or "user password" on its first
 * line) and the secret file (0600, at least CLUSTER_SECRET_MIN bytes), checks
 * or makes the node id (default: the host name and a random suffix) and the
 * channel prefix. Returns 0, or WSS_ERR_CONFIG / WSS_ERR_IO with the reason
 * in err; the secrets never appear in err. Wipe out with
 * cluster_settings_wipe.
 */
int cluster_settings_load(const struct config_cluster *cc, struct cluster_settings *out, char *err,
                          size_t errlen);

/* Zeroes what cluster_settings_load filled in (it holds secrets). */
void cluster_settings_wipe(struct cluster_settings *s);

/*
 * Starts the cluster link of this node on the libuv loop uv_loop, joined to
 * svc (it sets the service's cluster hooks). Connects to Redis at once and
 * keeps reconnecting. Never NULL.
 */
struct cluster *cluster_new(void *uv_loop, struct wss_service *svc, struct timers *timers,
                            const struct cluster_settings *s);

/* Orderly stop: tells the other nodes ("bye") and ends proxied requests.
 * Called at the start of the shutdown drain. */
void cluster_stop(struct cluster *c);

/* Frees the link (the loop must run once more for Redis's handles to close).
 * NULL is a no-op. */
void cluster_free(struct cluster *c);

/* SIGHUP: applies a changed Redis address, credentials or secret by
 * reconnecting. The node id and the prefix need a restart. */
void cluster_reload(struct cluster *c, const struct cluster_settings *s);

struct wss_presence;

/* The answer to a presence lookup: p->connected false when no node holds the
 * key; node names the node that does (NULL otherwise). */
typedef void (*cluster_lookup_cb)(void *user, const struct wss_presence *p, const char *node);

/*
 * Asks the cluster which node holds key (a "who" on the key's channel). cb
 * runs once, later, on the loop thread: with the holder's answer, or not
 * connected when nobody holds the key (at once) or nobody answers within a
 * second. Returns 0, or WSS_ERR_CLUSTER_UNAVAILABLE (cb does not run).
 */
int cluster_lookup(struct cluster *c, const uint8_t key[32], cluster_lookup_cb cb, void *user);

/* True while Redis is reachable. */
bool cluster_is_up(const struct cluster *c);

/* This node's id. */
const char *cluster_node_id(const struct cluster *c);

/* Nodes heard from within the liveness window, this one included. */
size_t cluster_nodes_alive(const struct cluster *c);

#endif
