/*
 * bench_signers: opens N signer WebSocket connections to wssignd from one
 * libwebsockets client context (libuv loop), introduces each with the
 * challenge/proof exchange and answers every sign_request. A fraction of
 * requests can be left unanswered, rejected or answered with a corrupted
 * signature. Reconnects after a close, so a daemon restart turns into a
 * reconnect storm whose duration it reports; SIGUSR1 cuts every introduced
 * connection at once (shutdown(2), no TLS or WebSocket close) for a storm
 * without a restart. With --resume (and --tls) each slot keeps its TLS
 * session and offers it when it reconnects. Stops by itself after
 * --duration seconds, or on SIGINT/SIGTERM.
 *
 * Output (stdout, one line per event, key=value):
 *   event=introduced n=N ms=T       every connection introduced for the first time
 *   event=reintroduced n=N ms=T ... all introduced again after connections were lost
 *   event=stats ...                 counters, at exit
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "bench_keys.h"
#include <wssignd/service.h>

#include "crypto.h"

/* Longest incoming message accepted; the daemon's frames are far smaller. */
#define RX_MAX 65536
/* Room for a sign_response: id, message (up to RX_MAX of base64) and signature. */
#define TX_EXTRA 512
#define TICK_US (50 * LWS_US_PER_MS)
#define RETRY_SLOT_US (10 * LWS_US_PER_MS)

enum sstate { S_IDLE, S_CONNECTING, S_OPEN, S_INTRODUCED };

/* Per outgoing frame: LWS_PRE headroom, then len bytes of text. */
struct frame {
    struct frame *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
};

struct bench;

/* Per signer slot: lives for the whole run; a connection comes and goes in it. */
struct sconn {
    struct bench *b;
    uint32_t index;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    char pk_b64[CRYPTO_NONCE_B64_BYTES];
    struct lws *wsi;
    enum sstate state;
    char *rx;
    size_t rx_len;
    struct frame *tx_head, *tx_tail;
    struct sconn *retry_next;      /* next in the same retry slot */
    bool retrying;                 /* in a retry slot */
    uint64_t started_us;           /* when the current connection attempt began */
    bool queued;                   /* in the connect queue */
    SSL_SESSION *session;          /* --resume: a copy of the last session with a ticket */
    const SSL_SESSION *session_of; /* the connection's session it copies (compared only) */
};

/* Per process: the options, the slots and the counters. */
struct bench {
    struct lws_context *ctx;
    const char *host;
    int port;
    bool tls;
    bool resume; /* keep each slot's TLS session and offer it on reconnect */
    uint32_t first, count;
    unsigned inflight_max, inflight;
    double silent, reject, bad_sig;
    unsigned retry_ms;
    uint64_t handshake_us; /* an attempt not introduced by then is abandoned */
    uint64_t deadline_us;
    struct sconn *conns;

    /* connect queue: ring of slot numbers */
    uint32_t *queue;
    uint32_t q_head, q_len;

    uint32_t introduced;
    bool all_once; /* every slot has been introduced at least once */
    uint64_t start_us;
    uint64_t lost_us;      /* first close after all were introduced; 0: none */
    uint64_t back_us;      /* first handshake completed after lost_us */
    unsigned storm_errors; /* connection errors after back_us, during a storm */
    lws_sorted_usec_list_t tick;

    /*
     * Retries wait in a ring of RETRY_SLOT_US slots rather than one lws
     * timer each: lws keeps its timers in a sorted list, so 10 000 closes
     * at once would cost O(n^2) insertions.
     */
    struct sconn **retry_slots;
    unsigned retry_nslots;
    uint64_t retry_done;  /* every slot up to this absolute slot number has run */
    unsigned retry_count; /* connections waiting in the ring */
    lws_sorted_usec_list_t retry_sul;
    bool stopping;

    unsigned long long requests, signed_ok, rejected, silenced, corrupted, cancels, errors_rx;
    unsigned long long conn_errors, intro_failures, closes, connects, handshake_timeouts;
    unsigned long long tls_full, tls_resumed, cut;
    unsigned storm_resumed; /* resumed handshakes since lost_us */
};

static volatile sig_atomic_t stop_signal, cut_signal;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        cut_signal = 1;
    else
        stop_signal = sig;
}

static void queue_push(struct bench *b, struct sconn *c)
{
    if (c->queued)
        return;
    c->queued = true;
    b->queue[(b->q_head + b->q_len++) % b->count] = (uint32_t)(c - b->conns);
}

static void tx_take(struct sconn *c, struct frame *f)
{
    f->next = NULL;
    if (c->tx_tail)
        c->tx_tail->next = f;
    else
        c->tx_head = f;
    c->tx_tail = f;
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

static struct frame *frame_new(size_t cap)
{
    struct frame *f = malloc(sizeof *f + LWS_PRE + cap);

    if (!f)
        abort();
    return f;
}

static void tx_clear(struct sconn *c)
{
    while (c->tx_head) {
        struct frame *f = c->tx_head;

        c->tx_head = f->next;
        free(f);
    }
    c->tx_tail = NULL;
    free(c->rx);
    c->rx = NULL;
    c->rx_len = 0;
}

static void start_some(struct bench *b);

/* Moves every connection whose retry slot is due to the connect queue. */
static void on_retry_tick(lws_sorted_usec_list_t *sul)
{
    struct bench *b = lws_container_of(sul, struct bench, retry_sul);
    uint64_t now_slot = bench_now_us() / RETRY_SLOT_US;
    uint64_t n = now_slot > b->retry_done ? now_slot - b->retry_done : 0;

    if (n > b->retry_nslots)
        n = b->retry_nslots;
    for (uint64_t s = b->retry_done + 1; n--; s++) {
        struct sconn **slot = &b->retry_slots[s % b->retry_nslots];

        while (*slot) {
            struct sconn *c = *slot;

            *slot = c->retry_next;
            c->retry_next = NULL;
            c->retrying = false;
            b->retry_count--;
            if (!b->stopping)
                queue_push(b, c);
        }
    }
    if (now_slot > b->retry_done)
        b->retry_done = now_slot;
    if (b->retry_count)
        lws_sul_schedule(b->ctx, 0, &b->retry_sul, on_retry_tick, RETRY_SLOT_US);
    start_some(b);
}

/* The slot is free again: try it later (jittered, so retries spread out). */
static void schedule_retry(struct sconn *c)
{
    struct bench *b = c->b;
    uint64_t us = (uint64_t)b->retry_ms * LWS_US_PER_MS;
    uint64_t slot, now;

    c->wsi = NULL;
    c->state = S_IDLE;
    tx_clear(c);
    if (b->stopping || c->retrying)
        return;
    c->retrying = true;
    us += randombytes_uniform((uint32_t)(us / 2 + 1));
    now = bench_now_us();
    /* An empty ring has not been ticking: its slots up to now are done. */
    if (!b->retry_count)
        b->retry_done = now / RETRY_SLOT_US;
    slot = (now + us) / RETRY_SLOT_US;
    if (slot <= b->retry_done)
        slot = b->retry_done + 1;
    c->retry_next = b->retry_slots[slot % b->retry_nslots];
    b->retry_slots[slot % b->retry_nslots] = c;
    if (!b->retry_count++)
        lws_sul_schedule(b->ctx, 0, &b->retry_sul, on_retry_tick, RETRY_SLOT_US);
}

static const lws_retry_bo_t no_validity_checks = {.secs_since_valid_ping = 0,
                                                  .secs_since_valid_hangup = 0};

static void connect_one(struct bench *b, struct sconn *c)
{
    struct lws_client_connect_info i;

    memset(&i, 0, sizeof i);
    i.context = b->ctx;
    i.address = b->host;
    i.port = b->port;
    i.path = "/v1/ws";
    i.host = b->host;
    /* No Origin header: a native signer is not a browser (the daemon checks browser origins). */
    i.origin = NULL;
    i.protocol = NULL;
    i.local_protocol_name = "bench-signer";
    i.opaque_user_data = c;
    if (b->tls)
        i.ssl_connection =
            LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
    i.pwsi = &c->wsi;
    /* No lws validity timer per connection (its default pings after 300 s): lws keeps
     * them in one sorted list, and each connection established would walk all of them. */
    i.retry_and_idle_policy = &no_validity_checks;

    c->state = S_CONNECTING;
    c->started_us = bench_now_us();
    b->inflight++;
    b->connects++;
    /* On failure lws may already have called CONNECTION_ERROR (state is then S_IDLE). */
    if (!lws_client_connect_via_info(&i) && c->state == S_CONNECTING) {
        b->inflight--;
        b->conn_errors++;
        schedule_retry(c);
    }
}

/* --resume: keeps a copy of the connection's session once it carries the daemon's
 * ticket (the connection's own object is made unresumable by an abrupt close). */
static void keep_session(struct sconn *c)
{
    SSL *ssl = c->wsi ? lws_get_ssl(c->wsi) : NULL;
    SSL_SESSION *s = ssl ? SSL_get0_session(ssl) : NULL, *copy;

    if (!s || s == c->session_of || !SSL_SESSION_is_resumable(s) || !(copy = SSL_SESSION_dup(s)))
        return;
    SSL_SESSION_free(c->session);
    c->session = copy;
    c->session_of = s;
}

/* The client SSL_CTX's info callback: as a handshake starts, offer the slot's session. */
static void on_tls_info(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl;
    struct bench *b = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    struct lws *wsi;
    struct sconn *c;
    int fd = SSL_get_fd(ssl);

    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_START) || !b || fd < 0)
        return;
    /* lws's own lookup of a socket's connection (what its SSL info callback uses). */
    wsi = wsi_from_fd(b->ctx, fd);
    c = wsi && lws_get_ssl(wsi) == ssl ? lws_get_opaque_user_data(wsi) : NULL;
    if (c && c->session)
        SSL_set_session(ssl, c->session);
}

/* SIGUSR1: every introduced connection is cut as a dropped network path would be. */
static void cut_all(struct bench *b)
{
    unsigned long long before = b->cut;

    for (uint32_t k = 0; k < b->count; k++) {
        struct sconn *c = &b->conns[k];

        if (c->state == S_INTRODUCED && c->wsi) {
            shutdown((int)lws_get_socket_fd(c->wsi), SHUT_RDWR);
            b->cut++;
        }
    }
    printf("event=cut n=%llu t_unix_ms=%llu\n", b->cut - before,
           (unsigned long long)bench_unix_ms());
    fflush(stdout);
}

/* Starts queued connections while fewer than inflight_max handshakes are open. */
static void start_some(struct bench *b)
{
    while (!b->stopping && b->q_len && b->inflight < b->inflight_max) {
        struct sconn *c = &b->conns[b->queue[b->q_head]];

        b->q_head = (b->q_head + 1) % b->count;
        b->q_len--;
        c->queued = false;
        if (c->state == S_IDLE)
            connect_one(b, c);
    }
}

static void send_introduction(struct sconn *c, const char *nonce_b64)
{
    uint8_t
        transcript[sizeof WSS_INTRODUCTION_PREFIX + CRYPTO_HOST_MAX + CRYPTO_NONCE_B64_BYTES + 4];
    uint8_t proof[crypto_sign_BYTES];
    char proof_b64[96];
    size_t tlen = crypto_proof_transcript(transcript, sizeof transcript, c->b->host, nonce_b64);
    struct frame *f = frame_new(TX_EXTRA);
    int n;

    if (!tlen) {
        free(f);
        return;
    }
    crypto_sign_detached(proof, NULL, transcript, tlen, c->sk);
    crypto_b64_encode(proof_b64, sizeof proof_b64, proof, sizeof proof);
    n = snprintf((char *)f->buf + LWS_PRE, TX_EXTRA,
                 "{\"type\":\"introduction\",\"public_key\":\"%s\",\"host\":\"%s\","
                 "\"proof\":\"%s\"}",
                 c->pk_b64, c->b->host, proof_b64);
    f->len = (size_t)n;
    tx_take(c, f);
}

/* Picks what to do with one request: 0 sign, 1 silent, 2 reject, 3 bad signature. */
static int pick_mode(const struct bench *b)
{
    double r;

    if (b->silent <= 0 && b->reject <= 0 && b->bad_sig <= 0)
        return 0;
    r = randombytes_uniform(1000000) / 1e6;
    if (r < b->silent)
        return 1;
    if (r < b->silent + b->reject)
        return 2;
    if (r < b->silent + b->reject + b->bad_sig)
        return 3;
    return 0;
}

static void answer(struct sconn *c, const char *id, const char *msg_b64)
{
    struct bench *b = c->b;
    size_t mlen_b64 = strlen(msg_b64), mlen;
    uint8_t *msg;
    uint8_t sig[crypto_sign_BYTES];
    char sig_b64[96];
    struct frame *f;
    int mode = pick_mode(b), n;

    b->requests++;
    if (mode == 1) {
        b->silenced++;
        return;
    }
    f = frame_new(mlen_b64 + TX_EXTRA);
    if (mode == 2) {
        n = snprintf((char *)f->buf + LWS_PRE, mlen_b64 + TX_EXTRA,
                     "{\"type\":\"sign_reject\",\"request_id\":\"%s\",\"reason\":\"bench\"}", id);
        f->len = (size_t)n;
        b->rejected++;
        tx_take(c, f);
        return;
    }
    msg = malloc(mlen_b64 + 1);
    if (!msg || crypto_b64_decode(msg, mlen_b64 + 1, &mlen, msg_b64, mlen_b64)) {
        free(msg);
        free(f);
        b->errors_rx++;
        return;
    }
    crypto_sign_detached(sig, NULL, msg, mlen, c->sk);
    free(msg);
    if (mode == 3) {
        sig[0] ^= 0x01;
        b->corrupted++;
    } else {
        b->signed_ok++;
    }
    crypto_b64_encode(sig_b64, sizeof sig_b64, sig, sizeof sig);
    n = snprintf((char *)f->buf + LWS_PRE, mlen_b64 + TX_EXTRA,
                 "{\"type\":\"sign_response\",\"request_id\":\"%s\",\"message\":\"%s\","
                 "\"signature\":\"%s\"}",
                 id, msg_b64, sig_b64);
    f->len = (size_t)n;
    tx_take(c, f);
}

static void report_introduced(struct bench *b)
{
    uint64_t now = bench_now_us();

    if (!b->all_once) {
        b->all_once = true;
        printf("event=introduced n=%u ms=%.1f t_unix_ms=%llu\n", b->count,
               (now - b->start_us) / 1000.0, (unsigned long long)bench_unix_ms());
    } else if (b->lost_us) {
        printf("event=reintroduced n=%u ms=%.1f ms_since_lost=%.1f errors_while_up=%u "
               "resumed=%u t_unix_ms=%llu\n",
               b->count, b->back_us ? (now - b->back_us) / 1000.0 : 0.0,
               (now - b->lost_us) / 1000.0, b->storm_errors, b->storm_resumed,
               (unsigned long long)bench_unix_ms());
        b->lost_us = b->back_us = 0;
        b->storm_errors = 0;
        b->storm_resumed = 0;
    }
    fflush(stdout);
}

static void on_message(struct sconn *c)
{
    struct bench *b = c->b;
    json_error_t jerr;
    json_t *obj = json_loadb(c->rx, c->rx_len, 0, &jerr);
    const char *type = json_string_value(json_object_get(obj, "type"));

    if (!type) {
        b->errors_rx++;
    } else if (!strcmp(type, "sign_request")) {
        const char *id = json_string_value(json_object_get(obj, "request_id"));
        const char *msg = json_string_value(json_object_get(obj, "message"));

        if (id && msg && strlen(id) < 64)
            answer(c, id, msg);
        else
            b->errors_rx++;
    } else if (!strcmp(type, "challenge")) {
        const char *nonce = json_string_value(json_object_get(obj, "nonce"));

        if (nonce && strlen(nonce) < CRYPTO_NONCE_B64_BYTES)
            send_introduction(c, nonce);
        else
            b->errors_rx++;
    } else if (!strcmp(type, "introduced")) {
        if (c->state == S_OPEN) {
            if (b->resume)
                keep_session(c);
            c->state = S_INTRODUCED;
            b->inflight--;
            if (++b->introduced == b->count)
                report_introduced(b);
            start_some(b);
        }
    } else if (!strcmp(type, "cancel")) {
        b->cancels++;
    } else {
        b->errors_rx++;
    }
    json_decref(obj);
}

/* A connection that had started is gone: fix the counters and plan a retry. */
static void on_gone(struct bench *b, struct sconn *c, bool connect_error)
{
    if (c->state == S_INTRODUCED) {
        b->introduced--;
        b->closes++;
        if (b->all_once && !b->lost_us) {
            b->lost_us = bench_now_us();
            b->back_us = 0;
        }
    } else if (c->state == S_CONNECTING || c->state == S_OPEN) {
        b->inflight--;
        if (connect_error)
            b->conn_errors++;
        else
            b->intro_failures++;
        /* Only attempts begun after the daemon answered again count as failed handshakes. */
        if (b->lost_us && b->back_us && c->started_us >= b->back_us)
            b->storm_errors++;
    }
    schedule_retry(c);
    start_some(b);
}

/*
 * Abandons attempts that are neither introduced nor failed after
 * handshake_us. Seen with lws 4.1 + libuv: connections accepted by a daemon
 * that is shutting down can stay silent after it exits, with no callback.
 * The wsi is detached from its slot and killed; the slot starts over.
 */
static void reap_stuck(struct bench *b, uint64_t now)
{
    for (uint32_t k = 0; k < b->count; k++) {
        struct sconn *c = &b->conns[k];

        if ((c->state != S_CONNECTING && c->state != S_OPEN) ||
            now - c->started_us < b->handshake_us)
            continue;
        b->handshake_timeouts++;
        if (c->wsi) {
            lws_set_opaque_user_data(c->wsi, NULL);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        }
        on_gone(b, c, true);
    }
}

static int callback_signer(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    struct sconn *c;
    struct bench *b;
    struct frame *f;

    /* The client SSL_CTX, made with the context (a stand-in wsi: no slot). */
    if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS) {
        b = lws_context_user(lws_get_context(wsi));
        if (b && b->resume && user) {
            SSL_CTX_set_app_data((SSL_CTX *)user, b);
            SSL_CTX_set_info_callback((SSL_CTX *)user, on_tls_info);
        }
        return 0;
    }
    c = lws_get_opaque_user_data(wsi);
    b = c ? c->b : NULL;
    /* A detached (abandoned) connection: only let it go. */
    if (!c)
        return reason == LWS_CALLBACK_CLIENT_RECEIVE || reason == LWS_CALLBACK_CLIENT_WRITEABLE ||
                       reason == LWS_CALLBACK_CLIENT_ESTABLISHED
                   ? -1
                   : 0;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c->state != S_IDLE)
            on_gone(b, c, true);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->state = S_OPEN;
        if (b->lost_us && !b->back_us)
            b->back_us = bench_now_us();
        if (lws_get_ssl(wsi)) {
            bool resumed = SSL_session_reused(lws_get_ssl(wsi)) == 1;

            b->tls_resumed += resumed;
            b->tls_full += !resumed;
            if (b->lost_us)
                b->storm_resumed += resumed;
        }
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (c->rx_len + len > RX_MAX)
            return -1;
        c->rx = realloc(c->rx, c->rx_len + len + 1);
        if (!c->rx)
            abort();
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            on_message(c);
            c->rx_len = 0;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        f = c->tx_head;
        if (!f)
            return 0;
        c->tx_head = f->next;
        if (!c->tx_head)
            c->tx_tail = NULL;
        if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len) {
            free(f);
            return -1;
        }
        free(f);
        if (c->tx_head)
            lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c->state != S_IDLE)
            on_gone(b, c, false);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /*
         * During a storm lws 4.1 can free a connecting wsi with neither
         * CONNECTION_ERROR nor CLOSED: the slot must not keep the pointer.
         */
        if (c->wsi == wsi) {
            c->wsi = NULL;
            if (c->state != S_IDLE)
                on_gone(b, c, c->state == S_CONNECTING);
        }
        return 0;
    default: return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"bench-signer", callback_signer, 0, RX_MAX, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};

static void print_stats(const struct bench *b)
{
    printf("event=stats first=%u count=%u introduced=%u connects=%llu conn_errors=%llu "
           "intro_failures=%llu handshake_timeouts=%llu closes=%llu requests=%llu signed=%llu "
           "rejected=%llu silent=%llu bad_sig=%llu cancels=%llu rx_errors=%llu tls_full=%llu "
           "tls_resumed=%llu cut=%llu\n",
           b->first, b->count, b->introduced, b->connects, b->conn_errors, b->intro_failures,
           b->handshake_timeouts, b->closes, b->requests, b->signed_ok, b->rejected, b->silenced,
           b->corrupted, b->cancels, b->errors_rx, b->tls_full, b->tls_resumed, b->cut);
    fflush(stdout);
}

/*
 * Prints the counters and exits without tearing the lws context down: with
 * lws 4.1 + libuv, destroying a context that holds thousands of connections,
 * some half-closed, can spin for minutes. The kernel closes the sockets.
 */
static void finish(struct bench *b)
{
    b->stopping = true;
    print_stats(b);
    _exit(0);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    struct bench *b = lws_container_of(sul, struct bench, tick);

    if (stop_signal || bench_now_us() >= b->deadline_us)
        finish(b);
    if (cut_signal) {
        cut_signal = 0;
        cut_all(b);
    }
    reap_stuck(b, bench_now_us());
    start_some(b);
    lws_sul_schedule(b->ctx, 0, &b->tick, on_tick, TICK_US);
}

static void usage(const char *argv0)
{
    fprintf(
        stderr,
        "usage: %s --port PORT [--host 127.0.0.1] [--tls [--resume]] [--first I] [--count N]\n"
        "          [--inflight K] [--duration S] [--retry-ms MS]\n"
        "          [--silent F] [--reject F] [--bad-sig F] [--handshake-ms MS] [--lws-log MASK]\n"
        "Opens N signer connections with keys I..I+N-1 (seed SHA-256(\"%s\" || be32 index)).\n",
        argv0, BENCH_KEY_DOMAIN);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"host", required_argument, NULL, 'H'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"tls", no_argument, NULL, 't'},
                                         {"first", required_argument, NULL, 'f'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"inflight", required_argument, NULL, 'k'},
                                         {"duration", required_argument, NULL, 'd'},
                                         {"retry-ms", required_argument, NULL, 'r'},
                                         {"silent", required_argument, NULL, 's'},
                                         {"reject", required_argument, NULL, 'j'},
                                         {"bad-sig", required_argument, NULL, 'b'},
                                         {"lws-log", required_argument, NULL, 'L'},
                                         {"handshake-ms", required_argument, NULL, 'T'},
                                         {"resume", no_argument, NULL, 'R'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct bench b;
    struct lws_context_creation_info info;
    struct sigaction sa;
    double duration = 60;
    int o, lws_log = LLL_ERR;

    memset(&b, 0, sizeof b);
    b.host = "127.0.0.1";
    b.count = 1;
    b.inflight_max = 256;
    b.retry_ms = 100;
    b.handshake_us = 5000000;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'H': b.host = optarg; break;
        case 'p': b.port = atoi(optarg); break;
        case 't': b.tls = true; break;
        case 'R': b.resume = true; break;
        case 'f': b.first = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'n': b.count = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'k': b.inflight_max = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'd': duration = atof(optarg); break;
        case 'r': b.retry_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': b.silent = atof(optarg); break;
        case 'j': b.reject = atof(optarg); break;
        case 'b': b.bad_sig = atof(optarg); break;
        case 'L': lws_log = atoi(optarg); break;
        case 'T': b.handshake_us = strtoull(optarg, NULL, 10) * 1000u; break;
        default: usage(argv[0]); return o == 'h' ? 0 : 2;
        }
    }
    if (b.port <= 0 || b.port > 65535 || !b.count || !b.inflight_max || duration <= 0 ||
        duration > 86400) {
        usage(argv[0]);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;

    b.conns = calloc(b.count, sizeof *b.conns);
    b.queue = calloc(b.count, sizeof *b.queue);
    /* The longest retry is 1.5 x retry_ms: the ring covers it with room to spare. */
    b.retry_nslots = (unsigned)((uint64_t)b.retry_ms * LWS_US_PER_MS * 3 / 2 / RETRY_SLOT_US) + 4;
    b.retry_slots = calloc(b.retry_nslots, sizeof *b.retry_slots);
    if (!b.conns || !b.queue || !b.retry_slots)
        return 1;

    for (uint32_t k = 0; k < b.count; k++) {
        struct sconn *c = &b.conns[k];

        c->b = &b;
        c->index = b.first + k;
        bench_keypair(c->index, c->pk, c->sk);
        crypto_b64_encode(c->pk_b64, sizeof c->pk_b64, c->pk, sizeof c->pk);
        queue_push(&b, c);
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lws_set_log_level(lws_log, NULL);
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    /* A fault must crash, not spin in lws's libuv SIGSEGV watcher. */
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                   LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    /* No fd_limit_per_thread: below the open-file limit, lws 4.1.6 would find a socket's
     * connection by scanning its whole table on every event (wsi_from_fd), a third of
     * this tool's CPU in a storm of 10 000. At the limit it indexes the table by fd. */
    info.user = &b;
    b.ctx = lws_create_context(&info);
    if (!b.ctx) {
        fprintf(stderr, "bench_signers: cannot create the lws context\n");
        return 1;
    }
    b.start_us = bench_now_us();
    b.retry_done = b.start_us / RETRY_SLOT_US;
    b.deadline_us = b.start_us + (uint64_t)(duration * 1e6);
    start_some(&b);
    lws_sul_schedule(b.ctx, 0, &b.tick, on_tick, TICK_US);

    /*
     * With libuv, lws_service() runs the loop until it stops: lws's own
     * SIGINT/SIGTERM watcher stops it; on_tick exits directly.
     */
    lws_service(b.ctx, 0);
    finish(&b);
    return 0;
}
