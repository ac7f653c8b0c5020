/*
 * Blocking HTTP/1.1 over a plain socket, for `wssign request`.
 *
 * Why not the lws HTTP client: a command-line request is one POST and one
 * answer, with nothing else to do meanwhile. A socket with poll() for the
 * deadline is a few hundred lines with no event loop, no context and no
 * callbacks, and the control API is plain HTTP on loopback, so nothing here
 * needs TLS. The answer is parsed by httpc_parse.c as it arrives.
 */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wssignd/errors.h>

#include "util.h"
#include "version.h"

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

int httpc_post_json(const struct url *u, const char *path, const char *bearer, const char *body,
                    size_t body_len, uint64_t timeout_ms, struct httpc_response *resp, char *err,
                    size_t errlen)
{
    uint64_t deadline = util_now_ms() + timeout_ms;
    size_t cap = 8192, len = 0, head_len;
    char *req = NULL, *buf = NULL, host[CRYPTO_HOST_MAX + 16];
    bool eof = false;
    int fd, rc, status = 0;

    memset(resp, 0, sizeof *resp);
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
            if (cap >= HTTPC_RESPONSE_MAX + HTTPC_HEADER_MAX) {
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
