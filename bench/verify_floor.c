/*
 * verify_floor: the cost of one crypto_sign_verify_detached call on this
 * machine, the floor under the daemon's CPU cost per sign round trip. Times
 * RUNS batches of ITERS verifications of one valid signature over a message
 * of the requester's size and prints the median batch, in microseconds per
 * verification. Single-threaded, like the daemon's loop. The figure is
 * thread CPU time, as the daemon's cost is measured (utime + stime), so other
 * load on the machine does not inflate it; the wall-clock median is printed
 * beside it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "bench_keys.h"

/* This thread's CPU time in microseconds. */
static uint64_t cpu_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    unsigned runs = 7, iters = 20000;
    size_t msg_bytes = 32;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t sig[crypto_sign_BYTES], *msg;
    double *us, *wall;
    unsigned fails = 0;
    int o;

    while ((o = getopt(argc, argv, "r:i:m:h")) != -1) {
        switch (o) {
        case 'r': runs = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'i': iters = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'm': msg_bytes = strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: %s [-r RUNS] [-i ITERS_PER_RUN] [-m MESSAGE_BYTES]\n", argv[0]);
            return o == 'h' ? 0 : 2;
        }
    }
    if (!runs || runs > 1000 || !iters || iters > 10000000 || !msg_bytes || msg_bytes > 1048576)
        return 2;
    if (sodium_init() < 0)
        return 1;
    msg = malloc(msg_bytes);
    us = calloc(runs, sizeof *us);
    wall = calloc(runs, sizeof *wall);
    if (!msg || !us || !wall)
        return 1;
    memset(msg, 'm', msg_bytes);
    bench_keypair(0, pk, sk);
    crypto_sign_detached(sig, NULL, msg, msg_bytes, sk);

    /* One untimed batch first: page in the code and let the clock settle. */
    for (unsigned i = 0; i < iters / 10 + 1; i++)
        fails += crypto_sign_verify_detached(sig, msg, msg_bytes, pk) != 0;
    for (unsigned r = 0; r < runs; r++) {
        uint64_t c0 = cpu_now_us(), t0 = bench_now_us();

        for (unsigned i = 0; i < iters; i++)
            fails += crypto_sign_verify_detached(sig, msg, msg_bytes, pk) != 0;
        us[r] = (double)(cpu_now_us() - c0) / iters;
        wall[r] = (double)(bench_now_us() - t0) / iters;
    }
    qsort(us, runs, sizeof *us, cmp_double);
    qsort(wall, runs, sizeof *wall, cmp_double);
    printf("verify_floor_us=%.2f min_us=%.2f max_us=%.2f wall_median_us=%.2f runs=%u iters=%u "
           "msg_bytes=%zu failures=%u\n",
           us[runs / 2], us[0], us[runs - 1], wall[runs / 2], runs, iters, msg_bytes, fails);
    free(wall);
    free(msg);
    free(us);
    return fails ? 1 : 0;
}
