/*
 * pending_bench: per-operation cost of the daemon's pending table
 * (src/pending.h) at a small and a large number of pending requests, and
 * whether expiry is on time. Time is a parameter of the table, so the
 * simulated clock advances in ticks and every entry must come out at the
 * first tick at or after its deadline. Wall-clock costs are measured with
 * CLOCK_MONOTONIC around each phase.
 *
 * Phases per size n: insert n (pending_req_new + pending_insert_take), find
 * every id in random order, n take+reinsert pairs (a request ending and a new
 * one arriving), then expire all of them tick by tick.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bench_keys.h"
#include "pending.h"

/* Requests per signer key: the daemon's per-key cap is far above this. */
#define REQS_PER_KEY 16

/* Results for one table size. */
struct result {
    size_t n;
    double insert_ns, find_ns, cycle_ns, expire_ns, max_tick_ms;
    uint64_t max_late_ms;
    size_t expired, early, late;
};

static void make_id(char id[WSS_REQUEST_ID_BYTES], uint64_t k)
{
    snprintf(id, WSS_REQUEST_ID_BYTES, "%08x-0000-4000-8000-%012llx", (unsigned)(k >> 48),
             (unsigned long long)(k & 0xffffffffffffull));
}

static void make_key(uint8_t key[WSS_PUBLIC_KEY_BYTES], uint64_t k)
{
    uint64_t g = k / REQS_PER_KEY;

    memset(key, 0, WSS_PUBLIC_KEY_BYTES);
    memcpy(key, &g, sizeof g);
}

static void insert_one(struct pending *p, uint64_t k, uint64_t now, uint64_t deadline)
{
    static const uint8_t msg[32] = {1};
    char id[WSS_REQUEST_ID_BYTES];
    uint8_t key[WSS_PUBLIC_KEY_BYTES];

    make_id(id, k);
    make_key(key, k);
    if (pending_insert_take(p, pending_req_new(id, key, msg, sizeof msg, NULL, now, deadline))) {
        fprintf(stderr, "pending_bench: duplicate id\n");
        exit(1);
    }
}

static struct result run(size_t n, uint64_t timeout_ms, uint64_t spread_ms, uint64_t tick_ms)
{
    struct result res;
    struct pending *p = pending_new();
    uint64_t *order = malloc(n * sizeof *order);
    uint64_t t0, base = 1000000, now, next_k = n;
    char id[WSS_REQUEST_ID_BYTES];

    if (!order)
        abort();
    memset(&res, 0, sizeof res);
    res.n = n;

    /* Arrivals spread evenly over spread_ms, each with the same timeout. */
    t0 = bench_now_us();
    for (size_t i = 0; i < n; i++) {
        uint64_t created = base + (uint64_t)i * spread_ms / n;

        insert_one(p, i, created, created + timeout_ms);
    }
    res.insert_ns = (bench_now_us() - t0) * 1000.0 / n;

    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = randombytes_uniform((uint32_t)(i + 1));
        uint64_t t = order[i];

        order[i] = order[j];
        order[j] = t;
    }
    t0 = bench_now_us();
    for (size_t i = 0; i < n; i++) {
        make_id(id, order[i]);
        if (!pending_find(p, id))
            abort();
    }
    res.find_ns = (bench_now_us() - t0) * 1000.0 / n;

    /* Steady state: each answered request leaves, a new one takes its place. */
    t0 = bench_now_us();
    for (size_t i = 0; i < n; i++) {
        struct pending_req *r;
        uint64_t created = base + spread_ms;

        make_id(id, order[i]);
        if (!(r = pending_take(p, id)))
            abort();
        pending_req_free(r);
        insert_one(p, next_k++, created, created + timeout_ms);
    }
    res.cycle_ns = (bench_now_us() - t0) * 1000.0 / n;

    /* Expiry: the loop's timer fires every tick_ms; nothing may leave early or a tick late. */
    now = base;
    t0 = bench_now_us();
    while (pending_count(p)) {
        uint64_t next = pending_next_deadline(p), c0;
        struct pending_req *list;

        now = next > now + tick_ms ? next : now + tick_ms;
        /* Real timers fire on tick boundaries: round up to the next one. */
        now = (now + tick_ms - 1) / tick_ms * tick_ms;
        c0 = bench_now_us();
        list = pending_expire(p, now);
        c0 = bench_now_us() - c0;
        if (c0 / 1000.0 > res.max_tick_ms)
            res.max_tick_ms = c0 / 1000.0;
        while (list) {
            struct pending_req *next_req = list->next;
            uint64_t late = now - list->deadline_ms;

            if (list->deadline_ms > now)
                res.early++;
            else if (late >= tick_ms)
                res.late++;
            if (list->deadline_ms <= now && late > res.max_late_ms)
                res.max_late_ms = late;
            res.expired++;
            pending_req_free(list);
            list = next_req;
        }
    }
    res.expire_ns = (bench_now_us() - t0) * 1000.0 / n;
    pending_free(p);
    free(order);
    return res;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Sorts v and returns its median. */
static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    size_t small = 1000, large = 200000;
    uint64_t timeout_ms = 30000, spread_ms = 10000, tick_ms = 10;
    unsigned runs = 5;
    struct result agg[2];
    int o, rc = 0;

    while ((o = getopt(argc, argv, "s:l:t:w:k:r:h")) != -1) {
        switch (o) {
        case 's': small = strtoul(optarg, NULL, 10); break;
        case 'l': large = strtoul(optarg, NULL, 10); break;
        case 't': timeout_ms = strtoull(optarg, NULL, 10); break;
        case 'w': spread_ms = strtoull(optarg, NULL, 10); break;
        case 'k': tick_ms = strtoull(optarg, NULL, 10); break;
        case 'r': runs = (unsigned)strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr,
                    "usage: %s [-s SMALL_N] [-l LARGE_N] [-t TIMEOUT_MS] "
                    "[-w ARRIVAL_SPREAD_MS] [-k TICK_MS] [-r RUNS]\n",
                    argv[0]);
            return o == 'h' ? 0 : 2;
        }
    }
    if (!small || !large || large > 50000000 || !tick_ms || !runs || runs > 100)
        return 2;
    if (sodium_init() < 0)
        return 1;

    for (int s = 0; s < 2; s++) {
        size_t n = s ? large : small;
        /* The small table is repeated so that both sizes time a similar number of operations. */
        size_t scale = large / small + 1 < 200 ? large / small + 1 : 200;
        unsigned reps = s ? runs : runs * (unsigned)scale;
        double *v[4];
        struct result *w = &agg[s];

        for (int k = 0; k < 4; k++)
            if (!(v[k] = malloc(reps * sizeof(double))))
                abort();
        memset(w, 0, sizeof *w);
        w->n = n;
        w->expired = n;
        /* One untimed run first, so that the heap already holds the memory the table needs. */
        run(n, timeout_ms, spread_ms, tick_ms);
        for (unsigned r = 0; r < reps; r++) {
            struct result x = run(n, timeout_ms, spread_ms, tick_ms);

            v[0][r] = x.insert_ns;
            v[1][r] = x.find_ns;
            v[2][r] = x.cycle_ns;
            v[3][r] = x.expire_ns;
            /* Correctness is the worst case over all repetitions. */
            w->early += x.early;
            w->late += x.late;
            if (x.expired < w->expired)
                w->expired = x.expired;
            if (x.max_late_ms > w->max_late_ms)
                w->max_late_ms = x.max_late_ms;
            if (x.max_tick_ms > w->max_tick_ms)
                w->max_tick_ms = x.max_tick_ms;
        }
        w->insert_ns = median(v[0], reps);
        w->find_ns = median(v[1], reps);
        w->cycle_ns = median(v[2], reps);
        w->expire_ns = median(v[3], reps);
        for (int k = 0; k < 4; k++)
            free(v[k]);
        printf("pending n=%zu insert_ns=%.0f find_ns=%.0f take_insert_ns=%.0f expire_ns=%.0f "
               "expired=%zu early=%zu late=%zu max_late_ms=%llu max_expire_call_ms=%.2f "
               "tick_ms=%llu reps=%u\n",
               n, w->insert_ns, w->find_ns, w->cycle_ns, w->expire_ns, w->expired, w->early,
               w->late, (unsigned long long)w->max_late_ms, w->max_tick_ms,
               (unsigned long long)tick_ms, reps);
        if (w->expired != n || w->early || w->late)
            rc = 1;
    }
    printf("pending ratio large/small insert=%.2f find=%.2f take_insert=%.2f expire=%.2f\n",
           agg[1].insert_ns / agg[0].insert_ns, agg[1].find_ns / agg[0].find_ns,
           agg[1].cycle_ns / agg[0].cycle_ns, agg[1].expire_ns / agg[0].expire_ns);
    return rc;
}
