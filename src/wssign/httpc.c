/*
 * Blocking HTTP/1.1 over a plain socket, for `wssign request`.
 *
 * Why not the lws HTTP client: a command-line request is one POST and one
 * answer, with nothing else to do meanwhile. A socket with poll() for the
 * deadline is a few hundred lines with no event loop, no context and no
 * callbacks, and the control API is plain HTTP on loopback, so nothing here
 * needs TLS. The parser is deliberately narrow: status line, Content-Length
 * or chunked body, everything bounded by HTTPC_RESPONSE_MAX.
 */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wssignd/errors.h>

#include "util.h"
#include "version.h"

/* Room for the status line and headers on top of the body. */
#define HEADER_MAX 65536

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

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
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

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline_ms, char *err,
                    size_t errlen)
{
    size_t done = 0;
    int rc;

    while (done < len) {
        ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);

        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((rc = wait_fd(fd, POLLOUT, deadline_ms)) != 0) {
                snprintf(err, errlen, "sending the request: %s",
                         rc == WSS_ERR_TIMEOUT ? "timed out" : strerror(errno));
                return rc;
            }
            continue;
        }
        snprintf(err, errlen, "sending the request: %s", strerror(errno));
        return WSS_ERR_IO;
    }
    return 0;
}

/* Per response: what the header block said. */
struct head {
    int status;
    size_t header_len;     /* bytes up to and including the blank line */
    bool has_length;
    size_t content_length;
    bool chunked;
};

/* Parses the header block in buf[0..len). Returns 1 if complete, 0 if more
 * bytes are needed, WSS_ERR_PROTO if malformed. */
static int parse_head(const char *buf, size_t len, struct head *h)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *line, *eol;

    memset(h, 0, sizeof *h);
    if (!end)
        return len > HEADER_MAX ? WSS_ERR_PROTO : 0;
    h->header_len = (size_t)(end - buf) + 4;
    if (h->header_len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
        buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
        buf[11] > '9')
        return WSS_ERR_PROTO;
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    for (line = memmem(buf, h->header_len, "\r\n", 2) + 2; line < end; line = eol + 2) {
        const char *colon, *v;
        size_t vlen;

        eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            return WSS_ERR_PROTO;
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        vlen = (size_t)(eol - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if ((size_t)(colon - line) == 14 && !strncasecmp(line, "Content-Length", 14)) {
            size_t n = 0;

            if (!vlen)
                return WSS_ERR_PROTO;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || n > HTTPC_RESPONSE_MAX)
                    return WSS_ERR_PROTO;
                n = n * 10 + (size_t)(v[i] - '0');
            }
            h->has_length = true;
            h->content_length = n;
        } else if ((size_t)(colon - line) == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
            h->chunked = vlen >= 7 && !strncasecmp(v + vlen - 7, "chunked", 7);
        }
    }
    return 1;
}

/*
 * Decodes a chunked body into out (NULL: only check that it is complete).
 * Returns the decoded length when the final chunk has arrived, 0 with
 * *need_more set when it has not, or WSS_ERR_PROTO.
 */
static long dechunk(const char *in, size_t len, char *out, bool *need_more)
{
    size_t pos = 0, o = 0;

    *need_more = false;
    for (;;) {
        const char *eol = memmem(in + pos, len - pos, "\r\n", 2);
        size_t size = 0, digits = 0;

        if (!eol) {
            *need_more = true;
            return 0;
        }
        for (const char *p = in + pos; p < eol && *p != ';'; p++, digits++) {
            int d = *p >= '0' && *p <= '9'   ? *p - '0'
                    : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                    : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                             : -1;

            if (d < 0 || size > HTTPC_RESPONSE_MAX)
                return WSS_ERR_PROTO;
            size = size * 16 + (size_t)d;
        }
        if (!digits)
            return WSS_ERR_PROTO;
        pos = (size_t)(eol - in) + 2;
        if (size == 0) {
            /* Trailers are not used by the daemon; wait for the blank line. */
            if (len - pos < 2) {
                *need_more = true;
                return 0;
            }
            return (long)o;
        }
        if (len - pos < size + 2) {
            *need_more = true;
            return 0;
        }
        if (out)
            memcpy(out + o, in + pos, size);
        o += size;
        pos += size + 2;
    }
}

int httpc_post_json(const struct url *u, const char *path, const char *bearer, const char *body,
                    size_t body_len, uint64_t timeout_ms, struct httpc_response *resp, char *err,
                    size_t errlen)
{
    uint64_t deadline = util_now_ms() + timeout_ms;
    size_t cap = 8192, len = 0, head_len;
    char *req = NULL, *buf = NULL, host[CRYPTO_HOST_MAX + 16];
    struct head h;
    bool eof = false;
    int fd, rc, got_head = 0;

    memset(resp, 0, sizeof *resp);
    memset(&h, 0, sizeof h);
    fd = dial(u, deadline, err, errlen);
    if (fd < 0)
        return fd;
    if (u->ipv6)
        snprintf(host, sizeof host, "[%s]:%d", u->host, u->port);
    else
        snprintf(host, sizeof host, "%s:%d", u->host, u->port);

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
    rc = send_all(fd, req, head_len + body_len, deadline, err, errlen);
    if (bearer)
        sodium_memzero(req, head_len);
    free(req);
    if (rc)
        goto out;

    buf = xmalloc(cap + 1);
    for (;;) {
        ssize_t n;

        if (len == cap) {
            if (cap >= HTTPC_RESPONSE_MAX + HEADER_MAX) {
                snprintf(err, errlen, "the answer is larger than %d bytes", HTTPC_RESPONSE_MAX);
                rc = WSS_ERR_PROTO;
                goto out;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        n = recv(fd, buf + len, cap - len, 0);
        if (n > 0) {
            len += (size_t)n;
        } else if (n == 0) {
            eof = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if ((rc = wait_fd(fd, POLLIN, deadline)) != 0) {
                snprintf(err, errlen, "waiting for the answer: %s",
                         rc == WSS_ERR_TIMEOUT ? "timed out" : strerror(errno));
                goto out;
            }
            continue;
        } else {
            snprintf(err, errlen, "reading the answer: %s", strerror(errno));
            rc = WSS_ERR_IO;
            goto out;
        }

        got_head = parse_head(buf, len, &h);
        if (got_head < 0) {
            snprintf(err, errlen, "the answer is not valid HTTP/1.1");
            rc = WSS_ERR_PROTO;
            goto out;
        }
        /* Skip interim 1xx answers (none are expected: no Expect header is sent). */
        if (got_head == 1 && h.status < 200) {
            memmove(buf, buf + h.header_len, len - h.header_len);
            len -= h.header_len;
            if (!eof)
                continue;
            got_head = 0;
        }
        if (got_head == 1) {
            size_t have = len - h.header_len;

            if (h.chunked) {
                bool more;
                long m = dechunk(buf + h.header_len, have, NULL, &more);

                if (m < 0) {
                    snprintf(err, errlen, "bad chunked encoding in the answer");
                    rc = WSS_ERR_PROTO;
                    goto out;
                }
                if (!more) {
                    /* Complete: decode into a fresh buffer (the body never
                     * grows by decoding, so have + 1 bytes suffice). */
                    char *plain = xmalloc(have + 1);

                    len = (size_t)dechunk(buf + h.header_len, have, plain, &more);
                    free(buf);
                    buf = plain;
                    break;
                }
            } else if (h.has_length && have >= h.content_length) {
                memmove(buf, buf + h.header_len, h.content_length);
                len = h.content_length;
                break;
            } else if (!h.has_length && eof) {
                memmove(buf, buf + h.header_len, have);
                len = have;
                break;
            }
        }
        if (eof) {
            snprintf(err, errlen, "the connection closed before the answer was complete");
            rc = WSS_ERR_IO;
            goto out;
        }
    }
    buf[len] = '\0';
    resp->status = h.status;
    resp->body = buf;
    resp->body_len = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    close(fd);
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
