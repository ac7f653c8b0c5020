/*
 * The daemon's metrics and their Prometheus text rendering. Counting is a
 * few additions on the loop thread; rendering happens once per scrape.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include <wssignd/errors.h>

#include "util.h"
#include "version.h"

static const double bucket_le[METRICS_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

static const char *const intro_names[METRICS_INTRO_N] = {
    "ok", "bad_host", "bad_key", "bad_proof", "missing_proof", "timeout", "address_limit",
};

/* The outcomes a sign request can end with, in the order they are exported. */
static const int sign_outcomes[] = {
    WSS_OK,           WSS_ERR_INVAL,     WSS_ERR_NOT_CONNECTED, WSS_ERR_TIMEOUT,
    WSS_ERR_BAD_SIG,  WSS_ERR_CONN_CLOSED, WSS_ERR_REJECTED,    WSS_ERR_CANCELLED,
    WSS_ERR_SHUTTING_DOWN, WSS_ERR_OVERLOADED,
    /* refused by a controller before reaching the service */
    WSS_ERR_UNAUTHORIZED, WSS_ERR_TOO_MANY_REQUESTS, WSS_ERR_UNSUPPORTED_MEDIA_TYPE,
    WSS_ERR_PAYLOAD_TOO_LARGE, WSS_ERR_CLUSTER_UNAVAILABLE,
};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
    m->start_time = (double)util_unix_ms() / 1000.0;
}

static void observe(struct metrics_histogram *h, uint64_t ms)
{
    double s = (double)ms / 1000.0;

    for (int i = 0; i < METRICS_BUCKETS; i++)
        if (s <= bucket_le[i]) {
            h->buckets[i]++;
            break;
        }
    h->count++;
    h->sum += s;
}

void metrics_sign(struct metrics *m, int status, uint64_t latency_ms)
{
    if (status <= 0 && -status < (int)(sizeof m->sign / sizeof m->sign[0]))
        m->sign[-status]++;
    if (status == WSS_OK)
        observe(&m->latency, latency_ms);
}

void metrics_remote_sign(struct metrics *m, int status)
{
    if (status <= 0 && -status < (int)(sizeof m->remote_sign / sizeof m->remote_sign[0]))
        m->remote_sign[-status]++;
}

void metrics_cluster_round_trip(struct metrics *m, uint64_t ms)
{
    observe(&m->rtt, ms);
}

void metrics_proto_error(struct metrics *m, const char *code)
{
    int i;

    /* Codes are static strings from a small fixed set; the table never fills in practice. */
    for (i = 0; i < METRICS_PROTO_CODES_MAX && m->proto_codes[i]; i++)
        if (!strcmp(m->proto_codes[i], code))
            break;
    if (i == METRICS_PROTO_CODES_MAX)
        i = METRICS_PROTO_CODES_MAX - 1;
    else if (!m->proto_codes[i])
        m->proto_codes[i] = code;
    m->proto_counts[i]++;
}

/* Per render: a growing text buffer. */
struct out {
    char *buf;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len)
            break;
        o->cap *= 2;
        o->buf = xrealloc(o->buf, o->cap);
    }
    o->len += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct out *o, const char *name, const char *help,
                      const struct metrics_histogram *h)
{
    uint64_t cum = 0;

    family(o, name, "histogram", help);
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->buckets[i];
        put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i], (unsigned long long)cum);
    }
    put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    put(o, "%s_sum %.6f\n", name, h->sum);
    put(o, "%s_count %llu\n", name, (unsigned long long)h->count);
}

/* The cluster's families: state, remote outcomes, round trips, dropped messages. */
static void render_cluster(struct out *o, const struct metrics *m)
{
    static const char *const dropped[] = {"bad_tag", "bad_format", "replay"};
    size_t i;

    family(o, "wssignd_cluster_up", "gauge", "1 while this node reaches the cluster's Redis.");
    put(o, "wssignd_cluster_up %llu\n", (unsigned long long)m->cluster_up);
    family(o, "wssignd_cluster_nodes", "gauge", "Nodes heard from, this one included.");
    put(o, "wssignd_cluster_nodes %llu\n", (unsigned long long)m->cluster_nodes);
    family(o, "wssignd_cluster_remote_requests_total", "counter",
           "Sign requests answered through another node, by outcome.");
    for (i = 0; i < sizeof sign_outcomes / sizeof sign_outcomes[0]; i++)
        put(o, "wssignd_cluster_remote_requests_total{outcome=\"%s\"} %llu\n",
            wss_err_code(sign_outcomes[i]), (unsigned long long)m->remote_sign[-sign_outcomes[i]]);
    histogram(o, "wssignd_cluster_round_trip_seconds",
              "From a request published to another node to its answer back.", &m->rtt);
    family(o, "wssignd_cluster_dropped_messages_total", "counter",
           "Messages from the cluster's channels dropped: no valid tag, malformed, replayed.");
    for (i = 0; i < 3; i++)
        put(o, "wssignd_cluster_dropped_messages_total{reason=\"%s\"} %llu\n", dropped[i],
            (unsigned long long)m->cluster_dropped[i]);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t *len)
{
    struct out o = {.cap = 8192};
    size_t i;

    o.buf = xmalloc(o.cap);
    family(&o, "wssignd_build_info", "gauge", "Version of wssignd and of libwebsockets.");
    put(&o, "wssignd_build_info{version=\"%s\",lws=\"%s\"} 1\n", WSSIGND_VERSION,
        lws_get_library_version());
    family(&o, "wssignd_process_start_time_seconds", "gauge", "Start time of the process.");
    put(&o, "wssignd_process_start_time_seconds %.3f\n", m->start_time);
    family(&o, "wssignd_sockets", "gauge", "Accepted sockets on the signer listener.");
    put(&o, "wssignd_sockets %zu\n", g->sockets);
    family(&o, "wssignd_control_sockets", "gauge", "Accepted sockets on the control listener.");
    put(&o, "wssignd_control_sockets %llu\n", (unsigned long long)m->control_sockets);
    family(&o, "wssignd_connections_refused_total", "counter",
           "Sockets closed at accept by a connection cap.");
    put(&o, "wssignd_connections_refused_total %llu\n",
        (unsigned long long)m->connections_refused);
    family(&o, "wssignd_connections", "gauge", "Open signer WebSocket connections.");
    put(&o, "wssignd_connections %u\n", g->connections);
    family(&o, "wssignd_introduced_keys", "gauge", "Keys held by an introduced connection.");
    put(&o, "wssignd_introduced_keys %zu\n", g->introduced_keys);
    family(&o, "wssignd_pending_requests", "gauge", "Sign requests waiting for an answer.");
    put(&o, "wssignd_pending_requests %zu\n", g->pending);

    family(&o, "wssignd_handshakes_total", "counter", "WebSocket upgrades on the signer listener.");
    put(&o, "wssignd_handshakes_total{outcome=\"accepted\"} %llu\n",
        (unsigned long long)m->handshakes_accepted);
    put(&o, "wssignd_handshakes_total{outcome=\"refused\"} %llu\n",
        (unsigned long long)m->handshakes_refused);

    family(&o, "wssignd_introductions_total", "counter", "Introductions by outcome.");
    for (i = 0; i < METRICS_INTRO_N; i++)
        put(&o, "wssignd_introductions_total{outcome=\"%s\"} %llu\n", intro_names[i],
            (unsigned long long)m->intro[i]);

    family(&o, "wssignd_sign_requests_total", "counter", "Sign requests by final outcome.");
    for (i = 0; i < sizeof sign_outcomes / sizeof sign_outcomes[0]; i++)
        put(&o, "wssignd_sign_requests_total{outcome=\"%s\"} %llu\n",
            wss_err_code(sign_outcomes[i]), (unsigned long long)m->sign[-sign_outcomes[i]]);

    histogram(&o, "wssignd_sign_duration_seconds", "Time from request to verified signature.",
              &m->latency);

    family(&o, "wssignd_received_bytes_total", "counter",
           "WebSocket message bytes received from signers.");
    put(&o, "wssignd_received_bytes_total %llu\n", (unsigned long long)m->rx_bytes);
    family(&o, "wssignd_sent_bytes_total", "counter", "WebSocket message bytes sent to signers.");
    put(&o, "wssignd_sent_bytes_total %llu\n", (unsigned long long)m->tx_bytes);

    family(&o, "wssignd_protocol_errors_total", "counter", "Error frames sent to signers, by code.");
    for (i = 0; i < METRICS_PROTO_CODES_MAX && m->proto_codes[i]; i++)
        put(&o, "wssignd_protocol_errors_total{code=\"%s\"} %llu\n", m->proto_codes[i],
            (unsigned long long)m->proto_counts[i]);
    if (m->cluster_enabled)
        render_cluster(&o, m);

    if (len)
        *len = o.len;
    return o.buf;
}
