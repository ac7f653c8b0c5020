/*
 * Blocking HTTP/1.1 for `wssign request`, over TCP, TLS or a Unix socket.
 *
 * Why not the lws HTTP client: a command-line request is one POST and one
 * answer, with nothing else to do meanwhile. A non-blocking socket with
 * poll() for the deadline is a few hundred lines with no event loop, no
 * context and no callbacks; TLS is OpenSSL on that same socket, driven by
 * the same poll (SSL_ERROR_WANT_READ/WRITE). The answer is parsed by
 * httpc_parse.c as it arrives.
 */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <wssignd/errors.h>

#include "util.h"
#include "version.h"

/* Per call: the connection, and its TLS state over https://. */
struct stream {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

/* Waits until fd is ready for events or the deadline passes.
 * Returns 0 when ready, WSS_ERR_TIMEOUT or WSS_ERR_IO. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        uint64_t now = util_now_ms();
        int n;

        if (now >= deadline_ms)
            return WSS_ERR_TIMEOUT;
        n = poll(&p, 1, (int)(deadline_ms - now > 60000 ? 60000 : deadline_ms - now));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return WSS_ERR_IO;
    }
}

/* Connects to the Unix socket path. Returns the fd or a negative error. */
static int dial_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "the socket path %s is too long", path);
        return WSS_ERR_IO;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* A local connect completes at once or fails (EAGAIN: the backlog is full). */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot connect to unix:%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return WSS_ERR_IO;
    }
    return fd;
}

/* Connects to one of the addresses of u within the deadline. Returns the fd or a negative error. */
static int dial(const struct url *u, uint64_t deadline_ms, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[8];
    int fd = -1, rc, last = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", u->port);
    rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
        return WSS_ERR_IO;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        socklen_t sl = sizeof last;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno != EINPROGRESS) {
            last = errno;
        } else if ((rc = wait_fd(fd, POLLOUT, deadline_ms)) != 0) {
            close(fd);
            freeaddrinfo(res);
            snprintf(err, errlen, "connecting to %s:%d: %s", u->host, u->port,
                     rc == WSS_ERR_TIMEOUT ? "timed out" : strerror(errno));
            return rc;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &sl) == 0 && last == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", u->host, u->port,
                 last ? strerror(last) : "no address");
        return WSS_ERR_IO;
    }
    return fd;
}

/* Why the TLS handshake failed, for the error text: the certificate check's verdict
 * when there is one, else OpenSSL's first error. */
static void tls_failure(const struct stream *st, const struct httpc_target *t, char *err,
                        size_t errlen)
{
    long verdict = SSL_get_verify_result(st->ssl);
    char why[256] = "the connection closed during the handshake";

    if (verdict == X509_V_ERR_HOSTNAME_MISMATCH || verdict == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        snprintf(err, errlen,
                 "TLS to %s:%d: the server's certificate does not name %s (dial "
                 "a name or address it lists)",
                 t->url.host, t->url.port, t->url.host);
        return;
    }
    if (verdict != X509_V_OK) {
        snprintf(err, errlen, "TLS to %s:%d: the server's certificate is not trusted: %s (%s)",
                 t->url.host, t->url.port, X509_verify_cert_error_string(verdict),
                 t->ca_file ? "is it issued by the --ca file?"
                            : "use --ca FILE to trust a private CA");
        return;
    }
    if (ERR_peek_error())
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
    snprintf(err, errlen, "TLS to %s:%d: handshake failed: %s", t->url.host, t->url.port, why);
}

/*
 * After a non-blocking OpenSSL call returned r: waits for what it wants
 * (readable or writable) and returns 0 to try again, 1 for a clean end of
 * the stream, or an error (the caller writes the text for WSS_ERR_IO).
 */
static int tls_wait(const struct stream *st, int r, uint64_t deadline_ms)
{
    switch (SSL_get_error(st->ssl, r)) {
    case SSL_ERROR_WANT_READ: return wait_fd(st->fd, POLLIN, deadline_ms);
    case SSL_ERROR_WANT_WRITE: return wait_fd(st->fd, POLLOUT, deadline_ms);
    case SSL_ERROR_ZERO_RETURN: return 1;
    default: return WSS_ERR_IO;
    }
}

/* TLS 1.2+ over st->fd, the server's certificate checked against the CA store and the
 * host name of the URL (or its IP address). Returns 0 or an error with err. */
static int tls_start(struct stream *st, const struct httpc_target *t, uint64_t deadline_ms,
                     char *err, size_t errlen)
{
    const char *host = t->url.host;
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int r, rc;

    st->ctx = SSL_CTX_new(TLS_client_method());
    if (!st->ctx || SSL_CTX_set_min_proto_version(st->ctx, TLS1_2_VERSION) != 1) {
        snprintf(err, errlen, "cannot create a TLS context");
        return WSS_ERR_IO;
    }
    /* The answer's length is framed by HTTP; a TCP close without close_notify is an end. */
    SSL_CTX_set_options(st->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(st->ctx, SSL_VERIFY_PEER, NULL);
    if (t->ca_file ? SSL_CTX_load_verify_locations(st->ctx, t->ca_file, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(st->ctx) != 1) {
        snprintf(err, errlen, "cannot load the CA certificates%s%s", t->ca_file ? " of " : "",
                 t->ca_file ? t->ca_file : "");
        return WSS_ERR_IO;
    }
    st->ssl = SSL_new(st->ctx);
    if (!st->ssl || SSL_set_fd(st->ssl, st->fd) != 1) {
        snprintf(err, errlen, "cannot create a TLS connection");
        return WSS_ERR_IO;
    }
    X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(st->ssl), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    /* An address is matched against the certificate's IP entries, a name against its DNS
     * names (and sent as SNI, which is for names only). */
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(st->ssl), host) != 1
              : SSL_set1_host(st->ssl, host) != 1 || SSL_set_tlsext_host_name(st->ssl, host) != 1) {
        snprintf(err, errlen, "cannot set the TLS host name %s", host);
        return WSS_ERR_IO;
    }
    while ((r = SSL_connect(st->ssl)) != 1) {
        rc = tls_wait(st, r, deadline_ms);
        if (rc == WSS_ERR_TIMEOUT) {
            snprintf(err, errlen, "TLS to %s:%d: the handshake timed out", host, t->url.port);
            return rc;
        }
        if (rc != 0) {
            tls_failure(st, t, err, errlen);
            return WSS_ERR_IO;
        }
    }
    return 0;
}

static int stream_open(struct stream *st, const struct httpc_target *t, uint64_t deadline_ms,
                       char *err, size_t errlen)
{
    st->fd = t->unix_path[0] ? dial_unix(t->unix_path, err, errlen)
                             : dial(&t->url, deadline_ms, err, errlen);
    if (st->fd < 0)
        return st->fd;
    return t->tls ? tls_start(st, t, deadline_ms, err, errlen) : 0;
}

static void stream_close(struct stream *st)
{
    /* No close_notify: the request is answered, and the server closes anyway. */
    SSL_free(st->ssl);
    SSL_CTX_free(st->ctx);
    if (st->fd >= 0)
        close(st->fd);
    ERR_clear_error();
}

/*
 * One read (writing false) or write on the stream, once it can make
 * progress: *n bytes moved, or *eof for a read at the end of the stream.
 * Returns 0 or an error (errno holds the reason of a plain WSS_ERR_IO).
 */
static int stream_io(const struct stream *st, bool writing, char *buf, size_t len, size_t *n,
                     bool *eof, uint64_t deadline_ms)
{
    int chunk = len > INT_MAX ? INT_MAX : (int)len;

    *n = 0;
    for (;;) {
        ssize_t got;
        int r, rc;

        if (st->ssl) {
            /* OpenSSL moves whole records: a retry repeats the same call. */
            r = writing ? SSL_write(st->ssl, buf, chunk) : SSL_read(st->ssl, buf, chunk);
            if (r > 0) {
                *n = (size_t)r;
                return 0;
            }
            rc = tls_wait(st, r, deadline_ms);
            if (rc == 1 && !writing) {
                *eof = true;
                return 0;
            }
            if (rc != 0) {
                errno = writing ? EPIPE : ECONNRESET;
                return rc == 1 ? WSS_ERR_IO : rc;
            }
            continue;
        }
        got = writing ? send(st->fd, buf, len, MSG_NOSIGNAL) : recv(st->fd, buf, len, 0);
        if (got > 0) {
            *n = (size_t)got;
            return 0;
        }
        if (got == 0 && !writing) {
            *eof = true;
            return 0;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((rc = wait_fd(st->fd, writing ? POLLOUT : POLLIN, deadline_ms)) != 0)
                return rc;
            continue;
        }
        return WSS_ERR_IO;
    }
}

static int send_all(const struct stream *st, char *buf, size_t len, uint64_t deadline_ms, char *err,
                    size_t errlen)
{
    size_t done = 0, n = 0;
    bool eof = false;
    int rc;

    while (done < len) {
        if ((rc = stream_io(st, true, buf + done, len - done, &n, &eof, deadline_ms)) != 0) {
            snprintf(err, errlen, "sending the request: %s",
                     rc == WSS_ERR_TIMEOUT ? "timed out" : strerror(errno));
            return rc;
        }
        done += n;
    }
    return 0;
}

int httpc_post_json(const struct httpc_target *t, const char *path, const char *bearer,
                    const char *body, size_t body_len, uint64_t timeout_ms,
                    struct httpc_response *resp, char *err, size_t errlen)
{
    uint64_t deadline = util_now_ms() + timeout_ms;
    struct stream st = {.fd = -1};
    size_t cap = 8192, len = 0, head_len;
    char *req = NULL, *buf = NULL, host[CRYPTO_HOST_MAX + 16];
    bool eof = false;
    int rc, status = 0;

    memset(resp, 0, sizeof *resp);
    if ((rc = stream_open(&st, t, deadline, err, errlen)) != 0)
        goto out;
    if (t->unix_path[0])
        snprintf(host, sizeof host, "localhost");
    else if (t->url.ipv6)
        snprintf(host, sizeof host, "[%s]:%d", t->url.host, t->url.port);
    else
        snprintf(host, sizeof host, "%s:%d", t->url.host, t->url.port);

    head_len = strlen(path) + strlen(host) + (bearer ? strlen(bearer) : 0) + 256;
    req = xmalloc(head_len + body_len);
    head_len = (size_t)snprintf(req, head_len,
                                "POST %s HTTP/1.1\r\n"
                                "Host: %s\r\n"
                                "User-Agent: wssign/%s\r\n"
                                "Accept: application/json\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: %zu\r\n"
                                "%s%s%s"
                                "Connection: close\r\n"
                                "\r\n",
                                path, host, WSSIGND_VERSION, body_len,
                                bearer ? "Authorization: Bearer " : "", bearer ? bearer : "",
                                bearer ? "\r\n" : "");
    memcpy(req + head_len, body, body_len);
    rc = send_all(&st, req, head_len + body_len, deadline, err, errlen);
    if (bearer)
        sodium_memzero(req, head_len);
    free(req);
    if (rc)
        goto out;

    buf = xmalloc(cap + 1);
    for (;;) {
        size_t n = 0;

        if (len == cap) {
            if (cap >= HTTPC_RESPONSE_MAX + HTTPC_HEADER_MAX) {
                snprintf(err, errlen, "the answer is larger than %d bytes", HTTPC_RESPONSE_MAX);
                rc = WSS_ERR_PROTO;
                goto out;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        if ((rc = stream_io(&st, false, buf + len, cap - len, &n, &eof, deadline)) != 0) {
            if (rc == WSS_ERR_TIMEOUT)
                snprintf(err, errlen, "waiting for the answer: timed out");
            else
                snprintf(err, errlen, "reading the answer: %s", strerror(errno));
            goto out;
        }
        len += n;
        rc = httpc_parse_response(buf, &len, eof, &status, err, errlen);
        if (rc < 0)
            goto out;
        if (rc == 1)
            break;
    }
    resp->status = status;
    resp->body = buf;
    resp->body_len = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    stream_close(&st);
    return rc;
}

void httpc_response_cleanup(struct httpc_response *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}
