/*
 * bench_requester: drives POST /v1/sign on wssignd's control listener with C
 * concurrent HTTP/1.1 keep-alive connections for D seconds (plain
 * non-blocking sockets and epoll, one request in flight per connection).
 * Keys are the deterministic bench keys (bench_keys.h), taken round-robin.
 * Records the latency of every request completed in the measured window and,
 * given the daemon's pid, the daemon's CPU time over that window. Several
 * --daemon-pid (the nodes of a cluster) are summed; --watch-pid processes
 * (Redis) are reported apart.
 *
 * Closed loop (the default): each connection sends its next request as soon
 * as the answer to the last one is in. Open loop (--rate R): requests are due
 * at a constant R per second, each goes out on the first free connection once
 * due, and its latency runs from the time it was due, not from when it was
 * sent, so the time a request waits for a free connection counts (as wrk2
 * measures). Every request due in the measured window is counted, however
 * late it completes (within the drain time).
 *
 * Output: one line, key=value (see print_summary).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "bench_keys.h"

#define RX_BUF 16384
#define TX_BUF 4096
#define MSG_MAX 2048
/* After D seconds, requests still in flight get this long to finish. */
#define DRAIN_US (5 * 1000000ull)
/* Processes whose CPU time is read: --daemon-pid and --watch-pid, each. */
#define PIDS_MAX 8

/* Per HTTP connection: lives for the whole run (reopened if the server closes it). */
struct hconn {
    int fd;
    uint32_t key; /* key index of the request in flight */
    uint64_t sent_us;
    bool busy;
    char tx[TX_BUF];
    size_t tx_len, tx_off;
    char rx[RX_BUF];
    size_t rx_len;
};

/* Per process: options, keys and results. */
struct req_bench {
    struct sockaddr_in addr;
    const char *host;
    unsigned conns;
    double duration, warmup;
    uint32_t first, nkeys, next_key;
    size_t msg_bytes;
    unsigned timeout_ms;
    int daemon_pid[PIDS_MAX], watch_pid[PIDS_MAX];
    unsigned n_daemon, n_watch;
    bool verify;
    char (*pk_b64)[48];
    uint8_t (*pk)[crypto_sign_PUBLICKEYBYTES];
    int ep;

    double rate;               /* open loop: requests per second; 0: closed loop */
    uint64_t due0;             /* open loop: when request 0 was due */
    uint64_t k_next;           /* open loop: the next request to send */
    uint64_t max_lag_us;       /* open loop: the longest a due request waited for a connection */
    unsigned long long unsent; /* open loop: requests due in the window never sent */

    uint64_t t_start, t_end; /* measured window */
    bool measuring, issuing;
    uint32_t *lat_us;
    size_t lat_len, lat_cap;
    unsigned long long ok, non200, by_status[6], reconnects, bad_body, completed_total;
    unsigned long long cpu_start[PIDS_MAX], cpu_end[PIDS_MAX];     /* daemons */
    unsigned long long watch_start[PIDS_MAX], watch_end[PIDS_MAX]; /* watched */
    unsigned long long msg_seq;
    size_t resp_bytes; /* the size of the last 200 response, headers included */
};

/* utime + stime of pid in clock ticks, or 0 if it cannot be read. */
static unsigned long long proc_cpu_ticks(int pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return 0;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* comm may hold spaces: fields after it are counted from the last ')'. */
    if (!(p = strrchr(buf, ')')))
        return 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return ut + st;
}

/* Reads the CPU time of every daemon and watched process into dst and wdst. */
static void sample_cpu(const struct req_bench *r, unsigned long long *dst, unsigned long long *wdst)
{
    for (unsigned i = 0; i < r->n_daemon; i++)
        dst[i] = proc_cpu_ticks(r->daemon_pid[i]);
    for (unsigned i = 0; i < r->n_watch; i++)
        wdst[i] = proc_cpu_ticks(r->watch_pid[i]);
}

/* Prints " name=v1,v2,..." : CPU microseconds per request of each process. */
static void print_each(const char *name, const unsigned long long *start,
                       const unsigned long long *end, unsigned n, unsigned long long done)
{
    long hz = sysconf(_SC_CLK_TCK);

    printf(" %s=", name);
    for (unsigned i = 0; i < n; i++)
        printf("%s%.2f", i ? "," : "",
               done ? (double)(end[i] - start[i]) * 1e6 / (double)hz / (double)done : 0);
}

static int open_conn(struct req_bench *r, struct hconn *h)
{
    struct epoll_event ev;
    int one = 1;

    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        return -1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(h->fd, (struct sockaddr *)&r->addr, sizeof r->addr) < 0 && errno != EINPROGRESS) {
        close(h->fd);
        h->fd = -1;
        return -1;
    }
    h->busy = false;
    h->rx_len = 0;
    h->tx_len = h->tx_off = 0;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.ptr = h;
    return epoll_ctl(r->ep, EPOLL_CTL_ADD, h->fd, &ev);
}

static void close_conn(struct req_bench *r, struct hconn *h)
{
    if (h->fd >= 0) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, h->fd, NULL);
        close(h->fd);
    }
    h->fd = -1;
    h->busy = false;
}

static void set_events(struct req_bench *r, struct hconn *h, uint32_t events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.ptr = h;
    epoll_ctl(r->ep, EPOLL_CTL_MOD, h->fd, &ev);
}

/* Builds the next request into h->tx. */
static void build_request(struct req_bench *r, struct hconn *h)
{
    uint8_t msg[MSG_MAX];
    char msg_b64[MSG_MAX * 4 / 3 + 8], body[MSG_MAX * 4 / 3 + 256], timeout[48] = "";
    unsigned long long seq = r->msg_seq++;
    int blen;

    /* A distinct message per request: a sequence number, then filler. */
    memset(msg, 'm', r->msg_bytes);
    memcpy(msg, &seq, r->msg_bytes < sizeof seq ? r->msg_bytes : sizeof seq);
    sodium_bin2base64(msg_b64, sizeof msg_b64, msg, r->msg_bytes, sodium_base64_VARIANT_ORIGINAL);
    if (r->timeout_ms)
        snprintf(timeout, sizeof timeout, ",\"timeout_ms\":%u", r->timeout_ms);
    h->key = r->first + r->next_key;
    r->next_key = (r->next_key + 1) % r->nkeys;
    blen = snprintf(body, sizeof body, "{\"public_key\":\"%s\",\"message\":\"%s\"%s}",
                    r->pk_b64[h->key - r->first], msg_b64, timeout);
    h->tx_len = (size_t)snprintf(h->tx, sizeof h->tx,
                                 "POST /v1/sign HTTP/1.1\r\nHost: %s\r\n"
                                 "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                                 r->host, blen, body);
    h->tx_off = 0;
}

/*
 * Whether a request sent (or, open loop, due) at sent_us and complete at now
 * counts: sent after the warm-up and answered before the end; open loop:
 * due within the window, whenever it completes.
 */
static bool in_window(const struct req_bench *r, uint64_t sent_us, uint64_t now)
{
    if (r->rate > 0)
        return sent_us >= r->t_start && sent_us < r->t_end;
    return r->measuring && sent_us >= r->t_start && now <= r->t_end;
}

static void record(struct req_bench *r, uint64_t sent_us, uint64_t now)
{
    if (r->lat_len == r->lat_cap) {
        r->lat_cap = r->lat_cap ? r->lat_cap * 2 : 65536;
        r->lat_us = realloc(r->lat_us, r->lat_cap * sizeof *r->lat_us);
        if (!r->lat_us)
            abort();
    }
    r->lat_us[r->lat_len++] = (uint32_t)(now - sent_us);
}

/* Checks one 200 body: fields present and, with --verify, the signature. */
static bool body_ok(struct req_bench *r, const struct hconn *h, const char *body, size_t len)
{
    const char *s;
    char sig_b64[96];
    uint8_t sig[crypto_sign_BYTES];
    size_t siglen, n;

    if (!memmem(body, len, "\"request_id\"", 12) ||
        !(s = memmem(body, len, "\"signature\":\"", 13)))
        return false;
    if (!r->verify)
        return true;
    s += 13;
    for (n = 0; n < sizeof sig_b64 - 1 && s + n < body + len && s[n] != '"'; n++)
        sig_b64[n] = s[n];
    sig_b64[n] = '\0';
    if (sodium_base642bin(sig, sizeof sig, sig_b64, n, NULL, &siglen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) ||
        siglen != sizeof sig)
        return false;
    /* The response echoes the message; check the signature over it with the request's key. */
    {
        const char *m = memmem(body, len, "\"message\":\"", 11);
        char mb64[MSG_MAX * 4 / 3 + 8];
        uint8_t msg[MSG_MAX];
        size_t mlen;

        if (!m)
            return false;
        m += 11;
        for (n = 0; n < sizeof mb64 - 1 && m + n < body + len && m[n] != '"'; n++)
            mb64[n] = m[n];
        mb64[n] = '\0';
        if (sodium_base642bin(msg, sizeof msg, mb64, n, NULL, &mlen, NULL,
                              sodium_base64_VARIANT_ORIGINAL))
            return false;
        return crypto_sign_verify_detached(sig, msg, mlen, r->pk[h->key - r->first]) == 0;
    }
}

/*
 * Parses complete responses out of h->rx. Returns 1 when one response was
 * consumed, 0 when more bytes are needed, -1 on a protocol error.
 */
static int parse_response(struct req_bench *r, struct hconn *h, uint64_t now)
{
    char *end, *cl;
    unsigned status;
    size_t hlen, clen, total;
    bool keep = true;

    h->rx[h->rx_len] = '\0';
    if (!(end = strstr(h->rx, "\r\n\r\n")))
        return h->rx_len >= RX_BUF - 1 ? -1 : 0;
    hlen = (size_t)(end - h->rx) + 4;
    if (sscanf(h->rx, "HTTP/1.%*c %u", &status) != 1)
        return -1;
    if (!(cl = strcasestr(h->rx, "\r\ncontent-length:")) || cl > end)
        return -1;
    clen = strtoul(cl + 17, NULL, 10);
    if (strcasestr(h->rx, "\r\nconnection: close") &&
        strcasestr(h->rx, "\r\nconnection: close") < end)
        keep = false;
    total = hlen + clen;
    if (total > RX_BUF - 1)
        return -1;
    if (h->rx_len < total)
        return 0;

    r->completed_total++;
    if (status == 200)
        r->resp_bytes = total;
    if (in_window(r, h->sent_us, now)) {
        if (status == 200 && body_ok(r, h, h->rx + hlen, clen)) {
            r->ok++;
        } else {
            if (status == 200)
                r->bad_body++;
            r->non200++;
        }
        r->by_status[status / 100 < 6 ? status / 100 : 0]++;
        record(r, h->sent_us, now);
    }
    memmove(h->rx, h->rx + total, h->rx_len - total);
    h->rx_len -= total;
    h->busy = false;
    return keep ? 1 : -1;
}

/* Open loop: when request k is due. */
static uint64_t due_us(const struct req_bench *r, uint64_t k)
{
    return r->due0 + (uint64_t)((double)k * 1e6 / r->rate);
}

/*
 * Sends the next request on h if h is free: closed loop at once; open loop
 * only when one is due, with the time it was due as its start. Returns
 * whether it sent one.
 */
static bool issue(struct req_bench *r, struct hconn *h)
{
    uint64_t now, start;

    if (!r->issuing || h->busy || h->fd < 0)
        return false;
    now = bench_now_us();
    start = now;
    if (r->rate > 0) {
        start = due_us(r, r->k_next);
        if (start > now || start >= r->t_end)
            return false;
        r->k_next++;
        if (now - start > r->max_lag_us)
            r->max_lag_us = now - start;
    }
    build_request(r, h);
    h->busy = true;
    h->sent_us = start;
    set_events(r, h, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    return true;
}

static void on_event(struct req_bench *r, struct hconn *h, uint32_t events)
{
    uint64_t now;
    ssize_t n;
    int rc;

    if (events & EPOLLOUT) {
        while (h->busy && h->tx_off < h->tx_len) {
            n = send(h->fd, h->tx + h->tx_off, h->tx_len - h->tx_off, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (n <= 0)
                goto reopen;
            h->tx_off += (size_t)n;
        }
        if (!h->busy)
            issue(r, h);
        else if (h->tx_off == h->tx_len)
            set_events(r, h, EPOLLIN | EPOLLRDHUP);
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            n = recv(h->fd, h->rx + h->rx_len, RX_BUF - 1 - h->rx_len, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (n <= 0)
                goto reopen;
            h->rx_len += (size_t)n;
            now = bench_now_us();
            while (h->busy && (rc = parse_response(r, h, now)) != 0) {
                if (rc < 0)
                    goto reopen;
                issue(r, h);
            }
        }
    }
    return;

reopen:
    /* A request lost with its connection counts as a failure. */
    if (h->busy && in_window(r, h->sent_us, bench_now_us())) {
        r->non200++;
        r->by_status[0]++;
    }
    close_conn(r, h);
    r->reconnects++;
    if (r->issuing && open_conn(r, h) == 0)
        issue(r, h);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static double pct_ms(const struct req_bench *r, double p)
{
    size_t i;

    if (!r->lat_len)
        return 0;
    i = (size_t)(p * (double)(r->lat_len - 1) + 0.5);
    return r->lat_us[i] / 1000.0;
}

static void print_summary(struct req_bench *r)
{
    double secs = (r->t_end - r->t_start) / 1e6;
    unsigned long long done = r->ok + r->non200;
    long hz = sysconf(_SC_CLK_TCK);
    unsigned long long ticks = 0;
    double cpu_us;

    for (unsigned i = 0; i < r->n_daemon; i++)
        ticks += r->cpu_end[i] - r->cpu_start[i];
    cpu_us = (double)ticks * 1e6 / (double)hz;

    qsort(r->lat_us, r->lat_len, sizeof *r->lat_us, cmp_u32);
    printf("requests=%llu ok=%llu non200=%llu s2xx=%llu s4xx=%llu s5xx=%llu s_conn=%llu "
           "bad_body=%llu rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
           "window_s=%.3f reconnects=%llu resp_bytes=%zu",
           done, r->ok, r->non200, r->by_status[2], r->by_status[4], r->by_status[5],
           r->by_status[0], r->bad_body, secs > 0 ? done / secs : 0, pct_ms(r, 0.50),
           pct_ms(r, 0.90), pct_ms(r, 0.99), pct_ms(r, 0.999),
           r->lat_len ? r->lat_us[r->lat_len - 1] / 1000.0 : 0, secs, r->reconnects, r->resp_bytes);
    if (r->rate > 0)
        printf(" mode=open rate=%.1f max_lag_ms=%.3f unsent=%llu", r->rate, r->max_lag_us / 1000.0,
               r->unsent);
    if (r->n_daemon)
        printf(" daemon_cpu_us=%.0f daemon_cpu_pct=%.1f cpu_us_per_req=%.2f", cpu_us,
               secs > 0 ? cpu_us / (secs * 1e4) : 0, done ? cpu_us / (double)done : 0);
    if (r->n_daemon > 1)
        print_each("cpu_us_per_req_each", r->cpu_start, r->cpu_end, r->n_daemon, done);
    if (r->n_watch)
        print_each("watch_cpu_us_per_req", r->watch_start, r->watch_end, r->n_watch, done);
    printf("\n");
    fflush(stdout);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port CONTROL_PORT [--host 127.0.0.1] [-c CONNS] [-d SECONDS]\n"
            "          [--warmup S] [--first I] [--keys N] [--msg-bytes B] [--timeout-ms MS]\n"
            "          [--daemon-pid PID]... [--watch-pid PID]... [--verify] [--rate R]\n"
            "  --rate: open loop, R requests per second due at constant intervals; latency\n"
            "          from when each was due (default: closed loop)\n"
            "  --daemon-pid: CPU time summed into cpu_us_per_req (repeat for a cluster's nodes)\n"
            "  --watch-pid:  CPU time reported apart, per process (watch_cpu_us_per_req)\n",
            argv0);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"host", required_argument, NULL, 'H'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"conns", required_argument, NULL, 'c'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"warmup", required_argument, NULL, 'w'},
                                         {"first", required_argument, NULL, 'f'},
                                         {"keys", required_argument, NULL, 'n'},
                                         {"msg-bytes", required_argument, NULL, 'm'},
                                         {"timeout-ms", required_argument, NULL, 'T'},
                                         {"daemon-pid", required_argument, NULL, 'P'},
                                         {"watch-pid", required_argument, NULL, 'W'},
                                         {"verify", no_argument, NULL, 'V'},
                                         {"rate", required_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct req_bench r;
    struct hconn *hc;
    struct epoll_event evs[256];
    uint64_t t0, t_issue_end;
    bool cpu_end_taken = false;
    unsigned next_conn = 0;
    int port = 0, o;

    memset(&r, 0, sizeof r);
    r.host = "127.0.0.1";
    r.conns = 16;
    r.duration = 10;
    r.warmup = 1;
    r.nkeys = 1;
    r.msg_bytes = 32;
    while ((o = getopt_long(argc, argv, "c:d:n:h", opts, NULL)) != -1) {
        switch (o) {
        case 'H': r.host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': r.conns = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': r.duration = atof(optarg); break;
        case 'w': r.warmup = atof(optarg); break;
        case 'f': r.first = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'n': r.nkeys = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': r.msg_bytes = strtoul(optarg, NULL, 10); break;
        case 'T': r.timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'P':
        case 'W': {
            int *pids = o == 'P' ? r.daemon_pid : r.watch_pid;
            unsigned *n = o == 'P' ? &r.n_daemon : &r.n_watch;

            if (*n == PIDS_MAX || atoi(optarg) <= 0) {
                usage(argv[0]);
                return 2;
            }
            pids[(*n)++] = atoi(optarg);
            break;
        }
        case 'V': r.verify = true; break;
        case 'R': r.rate = atof(optarg); break;
        default: usage(argv[0]); return o == 'h' ? 0 : 2;
        }
    }
    if (port <= 0 || port > 65535 || !r.conns || r.conns > 4096 || r.duration <= 0 ||
        r.duration > 3600 || r.warmup < 0 || r.warmup > 600 || !r.nkeys || !r.msg_bytes ||
        r.msg_bytes > MSG_MAX || r.rate < 0 || r.rate > 1e6) {
        usage(argv[0]);
        return 2;
    }
    memset(&r.addr, 0, sizeof r.addr);
    r.addr.sin_family = AF_INET;
    r.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, r.host, &r.addr.sin_addr) != 1) {
        fprintf(stderr, "bench_requester: --host must be an IPv4 address\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;

    r.pk_b64 = calloc(r.nkeys, sizeof *r.pk_b64);
    r.pk = calloc(r.nkeys, sizeof *r.pk);
    hc = calloc(r.conns, sizeof *hc);
    if (!r.pk_b64 || !r.pk || !hc)
        return 1;
    for (uint32_t k = 0; k < r.nkeys; k++) {
        uint8_t sk[crypto_sign_SECRETKEYBYTES];

        bench_keypair(r.first + k, r.pk[k], sk);
        sodium_memzero(sk, sizeof sk);
        sodium_bin2base64(r.pk_b64[k], sizeof r.pk_b64[k], r.pk[k], sizeof r.pk[k],
                          sodium_base64_VARIANT_ORIGINAL);
    }

    bench_catch_signals();

    r.ep = epoll_create1(EPOLL_CLOEXEC);
    r.issuing = true;
    t0 = bench_now_us();
    r.due0 = t0;
    r.t_start = t0 + (uint64_t)(r.warmup * 1e6);
    r.t_end = r.t_start + (uint64_t)(r.duration * 1e6);
    t_issue_end = r.t_end;
    for (unsigned i = 0; i < r.conns; i++) {
        if (open_conn(&r, &hc[i]) < 0) {
            fprintf(stderr, "bench_requester: connect: %s\n", strerror(errno));
            return 1;
        }
        issue(&r, &hc[i]);
    }

    for (;;) {
        uint64_t now = bench_now_us();
        struct timespec wait = {0, 10 * 1000000L};
        int n, busy = 0;

        if (!r.measuring && now >= r.t_start) {
            r.measuring = true;
            sample_cpu(&r, r.cpu_start, r.watch_start);
        }
        /*
         * Open loop: the last request due in the window has gone out, or the drain time is
         * over too (a server that fell that far behind); closed: time is up.
         */
        if (r.issuing && (bench_stop_signal || now >= t_issue_end + DRAIN_US ||
                          (r.rate > 0 ? due_us(&r, r.k_next) >= r.t_end : now >= t_issue_end))) {
            r.issuing = false;
            if (r.rate <= 0 || bench_stop_signal) {
                sample_cpu(&r, r.cpu_end, r.watch_end);
                cpu_end_taken = true;
            }
            if (bench_stop_signal)
                r.t_end = now;
        }
        if (!r.issuing) {
            for (unsigned i = 0; i < r.conns; i++)
                busy += hc[i].busy;
            if (!busy || now >= t_issue_end + DRAIN_US || bench_stop_signal > 1)
                break;
        }
        if (r.issuing && r.rate > 0) {
            /* Due requests onto free connections; then sleep until the next is due. */
            bool free_conn = false;

            /* Round-robin, so that no connection sits idle long enough to be closed. */
            for (unsigned k = 0; k < r.conns; k++) {
                struct hconn *h = &hc[(next_conn + k) % r.conns];

                if (h->busy || h->fd < 0)
                    continue;
                if (!issue(&r, h)) {
                    free_conn = true;
                    break;
                }
                next_conn = (next_conn + k + 1) % r.conns;
                k = (unsigned)-1;
            }
            if (free_conn) {
                uint64_t due = due_us(&r, r.k_next);

                now = bench_now_us();
                wait.tv_nsec = due > now ? (long)(due - now) * 1000L : 0;
                if (wait.tv_nsec > 10 * 1000000L)
                    wait.tv_nsec = 10 * 1000000L;
            }
        }
        n = epoll_pwait2(r.ep, evs, 256, &wait, NULL);
        for (int i = 0; i < n; i++)
            on_event(&r, evs[i].data.ptr, evs[i].events);
    }
    /* Open loop: the CPU window closes when the last request of the window is answered. */
    if (!cpu_end_taken)
        sample_cpu(&r, r.cpu_end, r.watch_end);
    /* Open loop: a request of the window still unanswered, or never sent, failed. */
    if (r.rate > 0 && !bench_stop_signal) {
        /* The first request due at or after the window's end, as issue() decides it. */
        uint64_t k_end = (uint64_t)((double)(r.t_end - r.due0) * r.rate / 1e6);

        while (due_us(&r, k_end) < r.t_end)
            k_end++;
        while (k_end > 0 && due_us(&r, k_end - 1) >= r.t_end)
            k_end--;

        for (unsigned i = 0; i < r.conns; i++) {
            if (hc[i].busy && in_window(&r, hc[i].sent_us, 0)) {
                r.non200++;
                r.by_status[0]++;
            }
        }
        if (k_end > r.k_next) {
            r.unsent = k_end - r.k_next;
            r.non200 += r.unsent;
            r.by_status[0] += r.unsent;
        }
    }
    if (!r.measuring) /* stopped during the warm-up */
        r.t_start = r.t_end;
    for (unsigned i = 0; i < r.conns; i++)
        close_conn(&r, &hc[i]);
    close(r.ep);
    print_summary(&r);
    free(hc);
    free(r.pk);
    free(r.pk_b64);
    free(r.lat_us);
    return 0;
}
