/*
 * The cluster's link to Redis: the only module that speaks Redis. Two
 * asynchronous hiredis connections on the daemon's libuv loop (adapters/
 * libuv.h): one for commands (PUBLISH), one for subscriptions. It
 * authenticates, keeps the set of channels to be subscribed to across
 * reconnects, pings to find a Redis that stopped answering, and reconnects
 * with capped, jittered backoff. Never blocks the loop: the address is
 * numeric (resolved at start-up and reload) or a Unix socket.
 *
 * Moving to Redis 7 sharded pub/sub (SPUBLISH/SSUBSCRIBE in a Redis Cluster)
 * changes this module only.
 */
#ifndef WSSIGND_CLUSTER_REDIS_H
#define WSSIGND_CLUSTER_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timers;
struct redis;

#define REDIS_HOST_MAX 255
#define REDIS_CRED_MAX 256

/* Per link: where and how to connect. Copied by redis_new. */
struct redis_target {
    char host[REDIS_HOST_MAX + 1]; /* numeric address, or the socket path */
    int port;                      /* 0 with a Unix socket */
    bool is_unix;
    int db;                        /* SELECT on the command connection; 0: none */
    char user[REDIS_CRED_MAX];     /* "" : AUTH password only (or no AUTH) */
    char password[REDIS_CRED_MAX]; /* "" : no AUTH */
};

/* Per link: what it reports. Every callback runs on the loop thread. */
struct redis_events {
    /* Both connections are up, authenticated and subscribed again. */
    void (*up)(void *arg);
    /* The link went down (why: a short reason). It is already reconnecting. */
    void (*down)(void *arg, const char *why);
    /* A message on a subscribed channel. Both buffers are valid during the call only. */
    void (*message)(void *arg, const char *channel, size_t channel_len, const char *payload,
                    size_t len);
};

/*
 * Parses a cluster.redis value: "redis://[user:password@]host:port[/db]" or
 * "unix:/path". A host name is resolved to its address here (start-up and
 * reload only). Returns 0, or WSS_ERR_CONFIG with the reason in err; the
 * error text never carries the password.
 */
int redis_parse_url(const char *url, struct redis_target *out, char *err, size_t errlen);

/* Starts a link on the libuv loop uv_loop with the daemon's timers; it
 * connects at once and reconnects on its own. Never NULL. */
struct redis *redis_new(void *uv_loop, struct timers *timers, const struct redis_target *target,
                        const struct redis_events *ev, void *arg);

/* Closes both connections (pending publishes complete with -1) and frees
 * the link. The loop must run once more for the handles to close. NULL is a
 * no-op. */
void redis_free(struct redis *r);

/* Reconnects to a new target (SIGHUP). */
void redis_retarget(struct redis *r, const struct redis_target *target);

/* True while both connections are up. */
bool redis_is_up(const struct redis *r);

/* Result of a publish: the number of subscribers that received it, or -1
 * when it could not be sent (the link is down or went down meanwhile). */
typedef void (*redis_publish_cb)(void *arg, long long receivers);

/*
 * Publishes len bytes on channel. cb (may be NULL) runs once, later, on the
 * loop thread. Returns 0, or WSS_ERR_IO when the link is down (cb does not
 * run).
 */
int redis_publish(struct redis *r, const char *channel, const void *payload, size_t len,
                  redis_publish_cb cb, void *arg);

/* Called once the subscription is in force (and again after each reconnect). */
typedef void (*redis_subscribed_cb)(void *arg, const char *channel);

/*
 * Adds channel to the set the link keeps subscribed to (from now on and
 * after every reconnect). on_subscribed (may be NULL) runs each time Redis
 * confirms it. Subscribing twice is a no-op. Returns 0.
 */
int redis_subscribe(struct redis *r, const char *channel, redis_subscribed_cb on_subscribed,
                    void *arg);

/* Removes channel from the set and unsubscribes. Returns 0, or
 * WSS_ERR_NOT_FOUND if it was not in the set. */
int redis_unsubscribe(struct redis *r, const char *channel);

/* Number of channels in the set. */
size_t redis_subscriptions(const struct redis *r);

#endif
