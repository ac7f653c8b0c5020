/*
 * Counters, gauges and the sign latency histogram the daemon exports in the
 * Prometheus text format. Plain numbers owned by the daemon and updated on
 * the loop thread; no lws, no I/O.
 */
#ifndef WSSIGND_METRICS_H
#define WSSIGND_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <wssignd/errors.h>

/* Outcomes of an introduction attempt. */
enum metrics_intro {
    METRICS_INTRO_OK = 0,
    METRICS_INTRO_BAD_HOST,
    METRICS_INTRO_BAD_KEY,
    METRICS_INTRO_BAD_PROOF,
    METRICS_INTRO_MISSING_PROOF,
    METRICS_INTRO_TIMEOUT,
    METRICS_INTRO_ADDRESS_LIMIT, /* limits.max_introduced_per_ip reached */
    METRICS_INTRO_N,
};

/* Error codes sent to signers in "error" frames; anything else counts as "other". */
#define METRICS_PROTO_CODES_MAX 24
/* Upper bounds (seconds) of the latency histogram's buckets, +Inf implied. */
#define METRICS_BUCKETS 15

/* Per daemon: every exported number. Zero-initialise, then metrics_init. */
struct metrics {
    double start_time;                       /* unix seconds */
    uint64_t handshakes_accepted, handshakes_refused;
    uint64_t connections_refused;            /* turned away at accept by a cap */
    uint64_t control_sockets;                /* gauge: accepted sockets on the control listener */
    uint64_t intro[METRICS_INTRO_N];
    uint64_t sign[1 - WSS_ERR_MIN];          /* indexed by -enum wss_err (0 = ok) */
    uint64_t latency_buckets[METRICS_BUCKETS]; /* cumulative at render time */
    uint64_t latency_count;
    double latency_sum;
    uint64_t rx_bytes, tx_bytes;
    const char *proto_codes[METRICS_PROTO_CODES_MAX];
    uint64_t proto_counts[METRICS_PROTO_CODES_MAX];
};

/* Gauges read from the live state when rendering. */
struct metrics_gauges {
    size_t sockets;       /* accepted sockets on the signer listener, upgraded or not */
    unsigned connections;
    size_t introduced_keys;
    size_t pending;
};

void metrics_init(struct metrics *m);

/* Counts one sign request ended with status (WSS_OK or a negative enum wss_err);
 * latency_ms is recorded in the histogram when status is WSS_OK. */
void metrics_sign(struct metrics *m, int status, uint64_t latency_ms);

/* Counts one "error" frame sent with code (a static string). */
void metrics_proto_error(struct metrics *m, const char *code);

/* Renders the Prometheus text exposition (format 0.0.4). Returns a malloc'd
 * NUL-terminated buffer; *len is the text length. The caller frees it. */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t *len);

#endif
