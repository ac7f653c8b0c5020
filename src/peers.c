/*
 * Per-address connection counts in a uthash table keyed by the 16-byte
 * address (IPv4 as IPv4-mapped IPv6, IPv6 cut to its /64), so the
 * accept-time check is O(1). Each address counts its unproven sockets and
 * its introduced ones apart.
 */
#include "peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "util.h"

/* Per client address with at least one connection. */
struct peer {
    uint8_t addr[16];
    size_t count;  /* all sockets from the address */
    size_t proven; /* of which introduced a key */
    UT_hash_handle hh;
};

/* Per listener set: the table and the total. */
struct peers {
    struct peer *by_addr;
    size_t total;
};

struct peers *peers_new(void)
{
    return xcalloc(1, sizeof(struct peers));
}

void peers_free(struct peers *p)
{
    struct peer *e, *tmp;

    if (!p)
        return;
    HASH_ITER (hh, p->by_addr, e, tmp) {
        HASH_DEL(p->by_addr, e);
        free(e);
    }
    free(p);
}

/* The 16-byte key of sa; false if it is not an internet address. */
static bool key_of(const struct sockaddr *sa, uint8_t key[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (sa->sa_family == AF_INET) {
        memcpy(key, mapped, sizeof mapped);
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        /* One host usually holds a whole /64: count it as one address. An
         * IPv4-mapped address stays whole (it is one IPv4 host). */
        if (memcmp(key, mapped, sizeof mapped) != 0)
            memset(key + 8, 0, 8);
        return true;
    }
    return false;
}

static struct peer *find(const struct peers *p, const struct sockaddr *sa)
{
    struct peer *e = NULL;
    uint8_t key[16];

    if (key_of(sa, key))
        HASH_FIND(hh, p->by_addr, key, sizeof key, e);
    return e;
}

bool peers_admit(const struct peers *p, const struct sockaddr *sa, size_t max_total,
                 size_t max_unproven_per_ip)
{
    const struct peer *e = find(p, sa);

    if (max_total && p->total >= max_total)
        return false;
    return !e || e->count - e->proven < max_unproven_per_ip;
}

bool peers_prove(struct peers *p, struct peer *e, size_t max_proven_per_ip)
{
    if (!e)
        return true;
    if (max_proven_per_ip && e->proven >= max_proven_per_ip)
        return false;
    e->proven++;
    return true;
}

void peers_unprove(struct peers *p, struct peer *e)
{
    if (e && e->proven)
        e->proven--;
}

struct peer *peers_add(struct peers *p, const struct sockaddr *sa)
{
    struct peer *e = find(p, sa);
    uint8_t key[16];

    if (!e) {
        if (!key_of(sa, key))
            return NULL;
        e = xcalloc(1, sizeof *e);
        memcpy(e->addr, key, sizeof key);
        HASH_ADD(hh, p->by_addr, addr, sizeof e->addr, e);
    }
    e->count++;
    p->total++;
    return e;
}

void peers_release(struct peers *p, struct peer *e)
{
    if (!e)
        return;
    p->total--;
    if (--e->count == 0) {
        HASH_DEL(p->by_addr, e);
        free(e);
    }
}

size_t peers_total(const struct peers *p)
{
    return p->total;
}

size_t peers_count(const struct peers *p, const struct sockaddr *sa)
{
    const struct peer *e = find(p, sa);

    return e ? e->count : 0;
}

size_t peers_count_proven(const struct peers *p, const struct sockaddr *sa)
{
    const struct peer *e = find(p, sa);

    return e ? e->proven : 0;
}

/* ---- per-listener admission ---- */

/* The handle of a Unix-socket client: peers cannot key it. */
static char unix_client;

void admission_init(struct admission *a, const char *listener, uint64_t *refused, size_t *gauge)
{
    memset(a, 0, sizeof *a);
    a->peers = peers_new();
    a->listener = listener;
    a->refused = refused;
    a->gauge = gauge;
}

void admission_cleanup(struct admission *a)
{
    peers_free(a->peers);
    a->peers = NULL;
}

size_t admission_total(const struct admission *a)
{
    return peers_total(a->peers) + a->unix_clients;
}

bool admission_accept(struct admission *a, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "local";

    if (sa->sa_family == AF_UNIX) {
        if (!a->max_total || admission_total(a) < a->max_total)
            return true;
    } else if ((!a->max_total || admission_total(a) < a->max_total) &&
               peers_admit(a->peers, sa, 0,
                           a->max_unproven_per_ip ? a->max_unproven_per_ip : SIZE_MAX)) {
        return true;
    }
    if (a->refused)
        (*a->refused)++;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
    /* A flood must not turn into a flood of log lines: one a second, with a count. */
    log_limited(&a->refusal_log, WSS_LOG_WARN,
                "event=connection_refused listener=%s reason=limit remote=%s sockets=%zu",
                a->listener, host, admission_total(a));
    return false;
}

void *admission_count(struct admission *a, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    void *handle = NULL;

    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return NULL;
    if (ss.ss_family == AF_UNIX) {
        a->unix_clients++;
        handle = &unix_client;
    } else {
        handle = peers_add(a->peers, (struct sockaddr *)&ss);
    }
    if (handle && a->gauge)
        (*a->gauge)++;
    return handle;
}

void admission_release(struct admission *a, void *handle)
{
    if (!handle)
        return;
    if (handle == &unix_client)
        a->unix_clients--;
    else
        peers_release(a->peers, handle);
    if (a->gauge)
        (*a->gauge)--;
}

struct peer *admission_peer(const struct admission *a, void *handle)
{
    return handle == &unix_client ? NULL : handle;
}
