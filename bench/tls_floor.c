/*
 * tls_floor: the heap that OpenSSL itself keeps for one idle server-side TLS
 * connection, the floor under the daemon's memory per wss connection. Makes
 * N TLS connections over socketpairs inside this process, with the daemon's
 * server settings (TLS 1.2 minimum, its TLS 1.2 cipher list, no
 * renegotiation, SSL_MODE_RELEASE_BUFFERS), exchanges one record each way so
 * the handshake is over and the buffers are released, frees the client ends
 * and reports the heap in use (glibc mallinfo2) per server connection.
 */
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
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

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    int n = 500, o, i;
    SSL_CTX *sctx, *cctx;
    SSL **srv, **cli;
    size_t before, after;

    while ((o = getopt(argc, argv, "c:k:n:h")) != -1) {
        switch (o) {
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'n': n = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s -c CERT.pem -k KEY.pem [-n CONNECTIONS]\n", argv[0]);
            return 2;
        }
    }
    if (!cert || !key || n < 1)
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
    SSL_CTX_set_mode(sctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_mode(cctx, SSL_MODE_RELEASE_BUFFERS);

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
