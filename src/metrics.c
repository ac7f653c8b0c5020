/*
 * The daemon's metrics and their Prometheus text rendering. Counting is a
 * few additions on the loop thread; rendering happens once per scrape.
 */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libwebsockets.h>

#include <wssignd/errors.h>

#include "util.h"
#include "version.h"

static const double bucket_le[METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

/* The statuses the control listener answers with, each its own label value. */
static const unsigned http_codes[METRICS_HTTP_CODES - 1] = {
    200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 502, 503, 504,
};

/* Every code an "error" frame can carry: each label exists from the start. */
static const char *const proto_error_codes[] = {
    "bad_json",
    "unknown_type",
    "missing_field",
    "bad_field",
    "not_introduced",
    "already_introduced",
    "unknown_request",
    "invalid_signature",
    "bad_host",
    "missing_proof",
    "bad_proof",
    "bad_key",
    "too_many_connections",
    "superseded",
    "introduction_timeout",
    "denied",
};

static const char *const intro_names[METRICS_INTRO_N] = {
    "ok", "bad_host", "bad_key", "bad_proof", "missing_proof", "timeout", "address_limit", "denied",
};

/* The outcomes a sign request can end with, in the order they are exported. */
static const int sign_outcomes[] = {
    WSS_OK,
    WSS_ERR_INVAL,
    WSS_ERR_NOT_CONNECTED,
    WSS_ERR_TIMEOUT,
    WSS_ERR_BAD_SIG,
    WSS_ERR_CONN_CLOSED,
    WSS_ERR_REJECTED,
    WSS_ERR_CANCELLED,
    WSS_ERR_SHUTTING_DOWN,
    WSS_ERR_OVERLOADED,
    /* refused by a controller before reaching the service */
    WSS_ERR_UNAUTHORIZED,
    WSS_ERR_TOO_MANY_REQUESTS,
    WSS_ERR_UNSUPPORTED_MEDIA_TYPE,
    WSS_ERR_PAYLOAD_TOO_LARGE,
    WSS_ERR_CLUSTER_UNAVAILABLE,
    WSS_ERR_FORBIDDEN,
    WSS_ERR_FORBIDDEN_KEY,
};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
    m->start_time = (double)util_unix_ms() / 1000.0;
    m->reload_ok = true;
    m->reload_ok_time = m->start_time;
    for (size_t i = 0; i < sizeof proto_error_codes / sizeof proto_error_codes[0]; i++)
        m->proto_codes[i] = proto_error_codes[i];
}

void metrics_http(struct metrics *m, unsigned status)
{
    size_t i;

    for (i = 0; i < METRICS_HTTP_CODES - 1 && http_codes[i] != status; i++)
        ;
    m->http[i]++;
    if (status == 401)
        m->auth_failures++;
}

void metrics_reload(struct metrics *m, bool ok, double now_s)
{
    m->reload_ok = ok;
    if (ok)
        m->reload_ok_time = now_s;
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
    if (status > 0 || -status >= (int)(sizeof m->sign / sizeof m->sign[0]))
        return;
    m->sign[-status]++;
    observe(&m->latency[-status], latency_ms);
}

static bool requester_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (!n || n > METRICS_REQUESTER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

unsigned metrics_requester_slot(struct metrics *m, const char *name)
{
    unsigned i;

    if (!name || !name[0])
        return 0;
    if (!m->n_requester_slots) {
        snprintf(m->requester_names[1], sizeof m->requester_names[1], "other");
        m->n_requester_slots = 2;
    }
    if (!requester_name_ok(name))
        return 1;
    for (i = 2; i < m->n_requester_slots; i++)
        if (!strcmp(m->requester_names[i], name))
            return i;
    if (m->n_requester_slots == METRICS_REQUESTERS_MAX + 2)
        return 1;
    snprintf(m->requester_names[i], sizeof m->requester_names[i], "%s", name);
    m->n_requester_slots++;
    return i;
}

void metrics_requester_sign(struct metrics *m, unsigned slot, int status)
{
    if (slot && slot < m->n_requester_slots && status <= 0 && status >= WSS_ERR_MIN)
        m->requester_sign[slot][-status]++;
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

/* One histogram's samples; label is "" or 'outcome="ok",' (with the comma). */
static void histogram_samples(struct out *o, const char *name, const char *label,
                              const struct metrics_histogram *h)
{
    uint64_t cum = 0;
    size_t n = strlen(label);

    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->buckets[i];
        put(o, "%s_bucket{%sle=\"%g\"} %llu\n", name, label, bucket_le[i], (unsigned long long)cum);
    }
    put(o, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, label, (unsigned long long)h->count);
    /* _sum and _count take the label without its trailing comma. */
    put(o, n ? "%s_sum{%.*s} %.6f\n" : "%s_sum%.*s %.6f\n", name, (int)(n ? n - 1 : 0), label,
        h->sum);
    put(o, n ? "%s_count{%.*s} %llu\n" : "%s_count%.*s %llu\n", name, (int)(n ? n - 1 : 0), label,
        (unsigned long long)h->count);
}

static void histogram(struct out *o, const char *name, const char *help,
                      const struct metrics_histogram *h)
{
    family(o, name, "histogram", help);
    histogram_samples(o, name, "", h);
}

/* The process's own series (the names every Prometheus client library exports). */
static void render_process(struct out *o, const struct metrics *m)
{
    unsigned long long utime = 0, stime = 0, vsize = 0;
    long long rss = 0;
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char buf[1024], *p;
    size_t fds = 0;
    struct rlimit rl;
    struct dirent *e;
    FILE *f;
    DIR *d;

    if ((f = fopen("/proc/self/stat", "r")) != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);

        buf[n] = '\0';
        fclose(f);
        /* After the command name (which may hold spaces): fields 14, 15, 23 and 24. */
        if ((p = strrchr(buf, ')')) != NULL)
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d "
                   "%*d %*d %*d %*u %llu %lld",
                   &utime, &stime, &vsize, &rss);
    }
    if ((d = opendir("/proc/self/fd")) != NULL) {
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory's own descriptor */
    }
    family(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
    put(o, "process_cpu_seconds_total %.2f\n",
        ticks > 0 ? (double)(utime + stime) / (double)ticks : 0.0);
    family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    put(o, "process_resident_memory_bytes %lld\n", rss * (page > 0 ? page : 4096));
    family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    put(o, "process_virtual_memory_bytes %llu\n", vsize);
    family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
    put(o, "process_open_fds %zu\n", fds);
    family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    put(o, "process_max_fds %llu\n",
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
            ? (unsigned long long)rl.rlim_cur
            : 0ULL);
    family(o, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    put(o, "process_start_time_seconds %.3f\n", m->start_time);
}

/* The lws version without trailing punctuation ("4.1.6-" has a dash and no tag). */
static const char *lws_version(char *out, size_t len)
{
    size_t n;

    snprintf(out, len, "%s", lws_get_library_version());
    n = strlen(out);
    while (n &&
           !((out[n - 1] >= '0' && out[n - 1] <= '9') || (out[n - 1] >= 'a' && out[n - 1] <= 'z') ||
             (out[n - 1] >= 'A' && out[n - 1] <= 'Z')))
        out[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] == '"' || out[i] == '\\' || out[i] < 0x20)
            out[i] = '_';
    return out;
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
    struct out o = {.cap = 16384};
    char ver[64];
    size_t i;

    o.buf = xmalloc(o.cap);
    family(&o, "wssignd_build_info", "gauge", "Version of wssignd and of libwebsockets.");
    put(&o, "wssignd_build_info{version=\"%s\",lws=\"%s\"} 1\n", WSSIGND_VERSION,
        lws_version(ver, sizeof ver));
    render_process(&o, m);
    family(&o, "wssignd_config_last_reload_successful", "gauge",
           "1 if the last reload (or the start) succeeded, 0 if it was refused.");
    put(&o, "wssignd_config_last_reload_successful %d\n", m->reload_ok ? 1 : 0);
    family(&o, "wssignd_config_last_reload_success_timestamp_seconds", "gauge",
           "Unix time of the last successful reload (or of the start).");
    put(&o, "wssignd_config_last_reload_success_timestamp_seconds %.3f\n", m->reload_ok_time);
    if (m->tls_expiry > 0) {
        family(&o, "wssignd_tls_certificate_expiry_timestamp_seconds", "gauge",
               "Unix time at which the signer listener's certificate expires.");
        put(&o, "wssignd_tls_certificate_expiry_timestamp_seconds %.0f\n", m->tls_expiry);
        family(&o, "wssignd_tls_handshakes_total", "counter",
               "TLS handshakes completed on the signer listener: resumed from a session "
               "ticket, or full.");
        put(&o, "wssignd_tls_handshakes_total{resumed=\"false\"} %llu\n",
            (unsigned long long)m->tls_handshakes[0]);
        put(&o, "wssignd_tls_handshakes_total{resumed=\"true\"} %llu\n",
            (unsigned long long)m->tls_handshakes[1]);
    }
    family(&o, "wssignd_http_requests_total", "counter",
           "Answers of the control listener, by HTTP status.");
    for (i = 0; i < METRICS_HTTP_CODES - 1; i++)
        put(&o, "wssignd_http_requests_total{code=\"%u\"} %llu\n", http_codes[i],
            (unsigned long long)m->http[i]);
    put(&o, "wssignd_http_requests_total{code=\"other\"} %llu\n",
        (unsigned long long)m->http[METRICS_HTTP_CODES - 1]);
    family(&o, "wssignd_auth_failures_total", "counter",
           "Control requests refused for a missing or unknown bearer token.");
    put(&o, "wssignd_auth_failures_total %llu\n", (unsigned long long)m->auth_failures);
    family(&o, "wssignd_process_start_time_seconds", "gauge", "Start time of the process.");
    put(&o, "wssignd_process_start_time_seconds %.3f\n", m->start_time);
    family(&o, "wssignd_sockets", "gauge", "Accepted sockets on the signer listener.");
    put(&o, "wssignd_sockets %zu\n", g->sockets);
    family(&o, "wssignd_control_sockets", "gauge", "Accepted sockets on the control listener.");
    put(&o, "wssignd_control_sockets %llu\n", (unsigned long long)m->control_sockets);
    family(&o, "wssignd_connections_refused_total", "counter",
           "Sockets closed at accept by a connection cap.");
    put(&o, "wssignd_connections_refused_total %llu\n", (unsigned long long)m->connections_refused);
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

    family(&o, "wssignd_sign_duration_seconds", "histogram",
           "Time from a sign request to its outcome, by outcome.");
    for (i = 0; i < sizeof sign_outcomes / sizeof sign_outcomes[0]; i++) {
        char label[64];

        snprintf(label, sizeof label, "outcome=\"%s\",", wss_err_code(sign_outcomes[i]));
        histogram_samples(&o, "wssignd_sign_duration_seconds", label,
                          &m->latency[-sign_outcomes[i]]);
    }

    family(&o, "wssignd_received_bytes_total", "counter",
           "WebSocket message bytes received from signers.");
    put(&o, "wssignd_received_bytes_total %llu\n", (unsigned long long)m->rx_bytes);
    family(&o, "wssignd_sent_bytes_total", "counter", "WebSocket message bytes sent to signers.");
    put(&o, "wssignd_sent_bytes_total %llu\n", (unsigned long long)m->tx_bytes);

    family(&o, "wssignd_protocol_errors_total", "counter",
           "Error frames sent to signers, by code.");
    for (i = 0; i < METRICS_PROTO_CODES_MAX && m->proto_codes[i]; i++)
        put(&o, "wssignd_protocol_errors_total{code=\"%s\"} %llu\n", m->proto_codes[i],
            (unsigned long long)m->proto_counts[i]);
    /* Requesters appear once they have asked; "other" once a name did not fit. */
    if (m->n_requester_slots) {
        family(&o, "wssignd_requester_sign_requests_total", "counter",
               "Sign requests by requester name (the HTTP API's token names) and final outcome.");
        for (unsigned r = 2; r < m->n_requester_slots + 1; r++) {
            unsigned slot = r < m->n_requester_slots ? r : 1;
            uint64_t any = 0;

            for (i = 0; i < sizeof sign_outcomes / sizeof sign_outcomes[0]; i++)
                any |= m->requester_sign[slot][-sign_outcomes[i]];
            if (slot == 1 && !any)
                continue;
            for (i = 0; i < sizeof sign_outcomes / sizeof sign_outcomes[0]; i++)
                put(&o,
                    "wssignd_requester_sign_requests_total{requester=\"%s\",outcome=\"%s\"} "
                    "%llu\n",
                    m->requester_names[slot], wss_err_code(sign_outcomes[i]),
                    (unsigned long long)m->requester_sign[slot][-sign_outcomes[i]]);
        }
    }
    if (m->cluster_enabled)
        render_cluster(&o, m);

    if (len)
        *len = o.len;
    return o.buf;
}
