/*
 * Deterministic benchmark keys and small shared helpers of the bench tools.
 * Signer i's seed is SHA-256("wssign-bench" || i as 4 bytes big-endian), so
 * the signer and requester tools agree on every public key without sharing
 * files. Nothing here touches the network.
 */
#ifndef WSSIGND_BENCH_KEYS_H
#define WSSIGND_BENCH_KEYS_H

#include <signal.h>
#include <stdint.h>

#include <sodium.h>

/* The domain string hashed in front of the index. */
#define BENCH_KEY_DOMAIN "wssign-bench"

/* Derives signer index's Ed25519 key pair. sodium_init() must have run. */
void bench_keypair(uint32_t index, uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                   uint8_t sk[crypto_sign_SECRETKEYBYTES]);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t bench_now_us(void);

/* CLOCK_REALTIME in milliseconds (for lining up events across processes). */
uint64_t bench_unix_ms(void);

/* The number of the last SIGINT or SIGTERM caught, 0 before any. */
extern volatile sig_atomic_t bench_stop_signal;

/* Catches SIGINT and SIGTERM into bench_stop_signal; ignores SIGPIPE. */
void bench_catch_signals(void);

#endif
