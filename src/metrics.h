/*
 * Counters, gauges and the sign latency histogram the daemon exports in the
 * Prometheus text format. Plain numbers owned by the daemon and updated on
 * the loop thread; no lws, no I/O.
 */
#ifndef WSSIGND_METRICS_H
#define WSSIGND_METRICS_H

#include <stdbool.h>
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
    METRICS_INTRO_DENIED,        /* keys.allow_file / keys.deny_file refused the key */
    METRICS_INTRO_N,
};

/* Error codes sent to signers in "error" frames; anything else counts as "other". */
#define METRICS_PROTO_CODES_MAX 24
/* Upper bounds (seconds) of the latency histogram's buckets, +Inf implied. */
#define METRICS_BUCKETS 16
/* HTTP statuses counted one by one on the control listener; others count as "other". */
#define METRICS_HTTP_CODES 17

/* Requester names counted one by one (wss_sign_opts.requester_name); the rest count as "other". */
#define METRICS_REQUESTERS_MAX 32
/* Longest requester name counted as itself: 1 to 32 of A-Z a-z 0-9 _ . - */
#define METRICS_REQUESTER_NAME_MAX 32

/* Per histogram of durations in seconds (buckets METRICS_BUCKETS, +Inf implied). */
struct metrics_histogram {
    uint64_t buckets[METRICS_BUCKETS]; /* not cumulative: summed at render time */
    uint64_t count;
    double sum;
};

/* Per daemon: every exported number. Zero-initialise, then metrics_init. */
struct metrics {
    double start_time; /* unix seconds */
    uint64_t handshakes_accepted, handshakes_refused;
    uint64_t connections_refused; /* turned away at accept by a cap */
    uint64_t control_sockets;     /* gauge: accepted sockets on the control listener */
    uint64_t intro[METRICS_INTRO_N];
    uint64_t sign[1 - WSS_ERR_MIN];                    /* indexed by -enum wss_err (0 = ok) */
    struct metrics_histogram latency[1 - WSS_ERR_MIN]; /* request to outcome, by outcome */
    uint64_t http[METRICS_HTTP_CODES];                 /* control listener answers, by status */
    uint64_t auth_failures;                            /* answers 401: a missing or unknown token */
    bool reload_ok;                                    /* the last reload (or start) succeeded */
    double reload_ok_time;                             /* unix seconds of the last success */
    double tls_expiry;          /* unix seconds the certificate expires; 0: no TLS */
    uint64_t tls_handshakes[2]; /* signer listener's TLS handshakes: full, resumed */
    uint64_t rx_bytes, tx_bytes;
    const char *proto_codes[METRICS_PROTO_CODES_MAX];
    uint64_t proto_counts[METRICS_PROTO_CODES_MAX];
    /* The cluster (rendered only when it is configured). */
    bool cluster_enabled;
    uint64_t cluster_up;                   /* gauge: 1 while Redis is reachable */
    uint64_t cluster_nodes;                /* gauge: nodes heard from, this one included */
    uint64_t cluster_dropped[3];           /* bad_tag, bad_format, replay */
    uint64_t remote_sign[1 - WSS_ERR_MIN]; /* requests through another node, by outcome */
    struct metrics_histogram rtt;          /* cross-node round trip, publish to answer */
    /* Sign requests by requester name and outcome. Slot 1 is "other", slots 2.. the
     * names in the order first seen; slot 0 is never counted (no name given). */
    char requester_names[METRICS_REQUESTERS_MAX + 2][METRICS_REQUESTER_NAME_MAX + 1];
    unsigned n_requester_slots; /* slots in use, "other" included */
    uint64_t requester_sign[METRICS_REQUESTERS_MAX + 2][1 - WSS_ERR_MIN];
};

/* Gauges read from the live state when rendering. */
struct metrics_gauges {
    size_t sockets; /* accepted sockets on the signer listener, upgraded or not */
    unsigned connections;
    size_t introduced_keys;
    size_t pending;
};

void metrics_init(struct metrics *m);

/* Counts a request that went through another node, by its outcome. */
void metrics_remote_sign(struct metrics *m, int status);

/* Records one cross-node round trip (a request published, its answer back). */
void metrics_cluster_round_trip(struct metrics *m, uint64_t ms);

/* Counts one sign request ended with status (WSS_OK or a negative enum wss_err)
 * and records latency_ms in that outcome's histogram. */
void metrics_sign(struct metrics *m, int status, uint64_t latency_ms);

/*
 * The slot that counts sign requests of requester name: 0 (not counted) for
 * NULL or "", 1 ("other") for a name that is not 1 to
 * METRICS_REQUESTER_NAME_MAX of A-Z a-z 0-9 _ . - or that comes when
 * METRICS_REQUESTERS_MAX names are counted already, else the name's own
 * (added if new). The number of label values stays bounded.
 */
unsigned metrics_requester_slot(struct metrics *m, const char *name);

/* Counts one sign request of requester slot (from metrics_requester_slot)
 * ended with status. Slot 0 counts nothing. */
void metrics_requester_sign(struct metrics *m, unsigned slot, int status);

/* Counts one answer of the control listener with HTTP status. */
void metrics_http(struct metrics *m, unsigned status);

/* Records a reload's (or start-up's) outcome at unix time now_s. */
void metrics_reload(struct metrics *m, bool ok, double now_s);

/* Counts one "error" frame sent with code (a static string). */
void metrics_proto_error(struct metrics *m, const char *code);

/* Renders the Prometheus text exposition (format 0.0.4). Returns a malloc'd
 * NUL-terminated buffer; *len is the text length. The caller frees it. */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t *len);

#endif
