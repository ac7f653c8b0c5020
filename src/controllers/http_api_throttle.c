/*
 * Per-client buckets of failed authentications in a bounded uthash table.
 * An entry exists only while its bucket is below the burst: a client that
 * never fails, or has waited long enough, costs nothing.
 */
#include "http_api_throttle.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <uthash.h>

/* Kind tags: the first byte of a client key. */
enum { CLIENT_UNKNOWN = 0, CLIENT_IPV4 = 4, CLIENT_IPV6 = 6, CLIENT_UID = 'u' };

/* Per client with a bucket below the burst. */
struct entry {
    struct http_api_client client;
    double allowance;     /* failures still allowed */
    uint64_t refilled_ms; /* when allowance was last brought up to date */
    UT_hash_handle hh;
};

/* Per controller. */
struct http_api_throttle {
    struct entry *by_client;
    size_t count, max;
    double burst;
};

struct http_api_throttle *http_api_throttle_new(size_t max, unsigned burst)
{
    struct http_api_throttle *t = calloc(1, sizeof *t);

    if (!t)
        abort();
    t->max = max ? max : 1;
    t->burst = burst ? burst : 1;
    return t;
}

static void drop(struct http_api_throttle *t, struct entry *e)
{
    HASH_DEL(t->by_client, e);
    free(e);
    t->count--;
}

void http_api_throttle_free(struct http_api_throttle *t)
{
    struct entry *e, *tmp;

    if (!t)
        return;
    HASH_ITER (hh, t->by_client, e, tmp)
        drop(t, e);
    free(t);
}

void http_api_throttle_set_burst(struct http_api_throttle *t, unsigned burst)
{
    struct entry *e, *tmp;

    t->burst = burst ? burst : 1;
    HASH_ITER (hh, t->by_client, e, tmp)
        if (e->allowance > t->burst)
            e->allowance = t->burst;
}

bool http_api_client_of(const struct sockaddr *sa, const uint32_t *uid,
                        struct http_api_client *client)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(client, 0, sizeof *client);
    switch (sa->sa_family) {
    case AF_INET:
        client->bytes[0] = CLIENT_IPV4;
        memcpy(client->bytes + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    case AF_INET6: {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

        if (!memcmp(a, mapped, sizeof mapped)) {
            client->bytes[0] = CLIENT_IPV4;
            memcpy(client->bytes + 1, a + 12, 4);
        } else {
            /* One host usually holds a whole /64: counting addresses would
             * give it 2^64 buckets. */
            client->bytes[0] = CLIENT_IPV6;
            memcpy(client->bytes + 1, a, 8);
        }
        return true;
    }
    case AF_UNIX:
        /* Whoever may open the socket is a local user: users do not share a bucket. */
        if (!uid)
            return false;
        client->bytes[0] = CLIENT_UID;
        memcpy(client->bytes + 1, uid, sizeof *uid);
        return true;
    default: return false;
    }
}

/* What e's bucket holds at now_ms. */
static double level(const struct entry *e, uint64_t now_ms)
{
    return now_ms > e->refilled_ms ? e->allowance + (double)(now_ms - e->refilled_ms) / 1000.0
                                   : e->allowance;
}

/* The entry of client brought up to date at now_ms, or NULL (a full bucket). */
static struct entry *find(struct http_api_throttle *t, const struct http_api_client *client,
                          uint64_t now_ms)
{
    struct entry *e = NULL;

    HASH_FIND(hh, t->by_client, client, sizeof *client, e);
    if (!e)
        return NULL;
    e->allowance = level(e, now_ms);
    if (now_ms > e->refilled_ms)
        e->refilled_ms = now_ms;
    if (e->allowance >= t->burst) {
        drop(t, e); /* refilled: as if it had never failed */
        return NULL;
    }
    return e;
}

bool http_api_throttle_blocked(struct http_api_throttle *t, const struct http_api_client *client,
                               uint64_t now_ms)
{
    struct entry *e = find(t, client, now_ms);

    return e && e->allowance < 1.0;
}

/* Makes room for one entry: drops the refilled ones, else the one failing least recently. */
static void make_room(struct http_api_throttle *t, uint64_t now_ms)
{
    struct entry *e, *tmp, *oldest = NULL;

    HASH_ITER (hh, t->by_client, e, tmp) {
        if (level(e, now_ms) >= t->burst)
            drop(t, e);
        else if (!oldest || e->refilled_ms < oldest->refilled_ms)
            oldest = e;
    }
    if (t->count >= t->max && oldest)
        drop(t, oldest);
}

void http_api_throttle_fail(struct http_api_throttle *t, const struct http_api_client *client,
                            uint64_t now_ms)
{
    struct entry *e = find(t, client, now_ms);

    if (!e) {
        if (t->count >= t->max)
            make_room(t, now_ms);
        e = calloc(1, sizeof *e);
        if (!e)
            abort();
        e->client = *client;
        e->allowance = t->burst;
        e->refilled_ms = now_ms;
        HASH_ADD(hh, t->by_client, client, sizeof e->client, e);
        t->count++;
    }
    e->allowance -= 1.0;
    if (e->allowance < 0)
        e->allowance = 0; /* failures while blocked are not counted: none is checked */
}

size_t http_api_throttle_count(const struct http_api_throttle *t)
{
    return t->count;
}
