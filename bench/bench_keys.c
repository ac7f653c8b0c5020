/*
 * Deterministic benchmark keys (see bench_keys.h) and the clocks and signal
 * handling the bench tools share.
 */
#include "bench_keys.h"

#include <string.h>
#include <time.h>

volatile sig_atomic_t bench_stop_signal;

void bench_keypair(uint32_t index, uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                   uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
    uint8_t in[sizeof BENCH_KEY_DOMAIN - 1 + 4];
    uint8_t seed[crypto_sign_SEEDBYTES];

    memcpy(in, BENCH_KEY_DOMAIN, sizeof BENCH_KEY_DOMAIN - 1);
    in[sizeof in - 4] = (uint8_t)(index >> 24);
    in[sizeof in - 3] = (uint8_t)(index >> 16);
    in[sizeof in - 2] = (uint8_t)(index >> 8);
    in[sizeof in - 1] = (uint8_t)index;
    crypto_hash_sha256(seed, in, sizeof in);
    crypto_sign_seed_keypair(pk, sk, seed);
    sodium_memzero(seed, sizeof seed);
}

uint64_t bench_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t bench_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_stop_signal(int sig)
{
    bench_stop_signal = sig;
}

void bench_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
