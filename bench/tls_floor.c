/*
 * tls_floor: the heap that OpenSSL itself keeps for one idle server-side TLS
 * connection, the floor under the daemon's memory per wss connection. Makes
 * N TLS connections over socketpairs inside this process, with the daemon's
 * server settings (TLS 1.2 minimum, its TLS 1.2 cipher list, no
 * renegotiation, SSL_MODE_RELEASE_BUFFERS), exchanges one record each way so
 * the handshake is over and the buffers are released, frees the client ends
 * and reports the heap in use (glibc mallinfo2) per server connection.
 *
 * With -H K it measures instead what a TLS handshake costs the server side in
 * CPU time (this thread's, around the server's OpenSSL calls only: SSL_new,
 * the handshake, the ticket it issues, one record, SSL_free): K full
 * handshakes, then K resumed from a session ticket of the same context, as
 * `wssign agent` and `bench_signers --resume` offer them.
 */
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "tls.h"

static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();

    return m.uordblks + m.hblkhd;
}

/* Drives both ends until the handshake is done and one record went each way. */
static int connect_pair(SSL *srv, SSL *cli)
{
    char buf[16];
    int k, got_s = 0, got_c = 0;

    for (k = 0; k < 200 && !(got_s && got_c); k++) {
        if (!SSL_is_init_finished(cli))
            SSL_do_handshake(cli);
        if (!SSL_is_init_finished(srv))
            SSL_do_handshake(srv);
        if (SSL_is_init_finished(cli) && SSL_is_init_finished(srv)) {
            if (k % 2 == 0) {
                SSL_write(cli, "x", 1);
                SSL_write(srv, "y", 1);
            }
            got_s |= SSL_read(srv, buf, sizeof buf) > 0;
            got_c |= SSL_read(cli, buf, sizeof buf) > 0;
        }
    }
    return got_s && got_c ? 0 : -1;
}

static double thread_cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * One handshake over a socketpair, the client offering session (NULL: none).
 * Adds the server side's CPU time to *srv_us; returns the client's session
 * (with the server's ticket; caller frees) and sets *resumed, or NULL.
 */
static SSL_SESSION *timed_handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *session,
                                    double *srv_us, int *resumed)
{
    char buf[16];
    int sv[2], k, got = 0;
    double t0;
    SSL *srv, *cli;
    SSL_SESSION *out = NULL;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return NULL;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    cli = SSL_new(cctx);
    SSL_set_fd(cli, sv[1]);
    SSL_set_connect_state(cli);
    if (session)
        SSL_set_session(cli, session);
    t0 = thread_cpu_us();
    srv = SSL_new(sctx);
    SSL_set_fd(srv, sv[0]);
    SSL_set_accept_state(srv);
    *srv_us += thread_cpu_us() - t0;
    for (k = 0; k < 200 && !got; k++) {
        if (!SSL_is_init_finished(cli))
            SSL_do_handshake(cli);
        t0 = thread_cpu_us();
        if (!SSL_is_init_finished(srv))
            SSL_do_handshake(srv);
        else if (k % 2 == 0)
            SSL_write(srv, "y", 1);
        *srv_us += thread_cpu_us() - t0;
        if (SSL_is_init_finished(cli))
            got = SSL_read(cli, buf, sizeof buf) > 0;
    }
    if (got) {
        *resumed = SSL_session_reused(srv) == 1;
        /* A copy: freeing cli without a TLS close makes its own session unresumable. */
        out = SSL_SESSION_dup(SSL_get0_session(cli));
    }
    SSL_free(cli);
    t0 = thread_cpu_us();
    SSL_free(srv);
    *srv_us += thread_cpu_us() - t0;
    close(sv[0]);
    close(sv[1]);
    return out;
}

/* -H K: the server's CPU per full and per resumed handshake. */
static int measure_handshakes(SSL_CTX *sctx, SSL_CTX *cctx, int k)
{
    double full_us = 0, resumed_us = 0;
    int i, resumed = 0, n_resumed = 0;
    SSL_SESSION *session = NULL, *s;

    for (i = 0; i < k; i++) {
        if (!(s = timed_handshake(sctx, cctx, NULL, &full_us, &resumed)))
            return fprintf(stderr, "tls_floor: full handshake %d failed\n", i), 1;
        SSL_SESSION_free(session);
        session = s;
    }
    for (i = 0; i < k; i++) {
        resumed = 0;
        if (!(s = timed_handshake(sctx, cctx, session, &resumed_us, &resumed)))
            return fprintf(stderr, "tls_floor: resumed handshake %d failed\n", i), 1;
        n_resumed += resumed;
        SSL_SESSION_free(session);
        session = s;
    }
    SSL_SESSION_free(session);
    printf("tls_handshake_full_us=%.1f tls_handshake_resumed_us=%.1f ratio=%.2f resumed=%d/%d "
           "handshakes=%d\n",
           full_us / k, resumed_us / k, resumed_us > 0 ? full_us / resumed_us : 0.0, n_resumed, k,
           k);
    return n_resumed == k ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int n = 500, o, i, handshakes = 0;
    unsigned char keys[TLS_TICKET_KEYS_BYTES];
    SSL_CTX *sctx, *cctx;
    SSL **srv, **cli;
    size_t before, after;

    while ((o = getopt(argc, argv, "c:k:n:H:h")) != -1) {
        switch (o) {
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'H': handshakes = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s -c CERT.pem -k KEY.pem [-n CONNECTIONS | -H HANDSHAKES]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!cert || !key || n < 1 || handshakes < 0)
        return fprintf(stderr, "tls_floor: -c and -k are required\n"), 2;
    sctx = SSL_CTX_new(TLS_server_method());
    cctx = SSL_CTX_new(TLS_client_method());
    srv = calloc((size_t)n, sizeof *srv);
    cli = calloc((size_t)n, sizeof *cli);
    if (!sctx || !cctx || !srv || !cli || SSL_CTX_use_certificate_chain_file(sctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1)
        return fprintf(stderr, "tls_floor: cannot set up TLS with %s / %s\n", cert, key), 1;
    SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(sctx, TLS12_CIPHERS);
    SSL_CTX_set_options(sctx, SSL_OP_NO_RENEGOTIATION);
    /* The daemon's own tuning: released buffers, tickets only, one ticket each. */
    if (tls_new_ticket_keys(keys) != 0)
        return fprintf(stderr, "tls_floor: no randomness for ticket keys\n"), 1;
    tls_tune_context(sctx, keys);
    SSL_CTX_set_mode(cctx, SSL_MODE_RELEASE_BUFFERS);
    if (handshakes)
        return measure_handshakes(sctx, cctx, handshakes);

    before = heap_in_use();
    for (i = 0; i < n; i++) {
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            return perror("tls_floor: socketpair"), 1;
        fcntl(sv[0], F_SETFL, O_NONBLOCK);
        fcntl(sv[1], F_SETFL, O_NONBLOCK);
        srv[i] = SSL_new(sctx);
        cli[i] = SSL_new(cctx);
        SSL_set_fd(srv[i], sv[0]);
        SSL_set_fd(cli[i], sv[1]);
        SSL_set_accept_state(srv[i]);
        SSL_set_connect_state(cli[i]);
        if (connect_pair(srv[i], cli[i]) != 0)
            return fprintf(stderr, "tls_floor: handshake %d failed\n", i), 1;
        SSL_free(cli[i]);
        close(sv[1]);
    }
    after = heap_in_use();
    printf("tls_floor_kib=%.2f version=%s cipher=%s connections=%d\n",
           (double)(after - before) / n / 1024.0, SSL_get_version(srv[0]),
           SSL_get_cipher_name(srv[0]), n);
    for (i = 0; i < n; i++) {
        close(SSL_get_fd(srv[i]));
        SSL_free(srv[i]);
    }
    free(srv);
    free(cli);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
