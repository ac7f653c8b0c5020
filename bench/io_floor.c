/*
 * io_floor: the transport floor of one signature. A server on plain epoll
 * with no JSON, no crypto and no libwebsockets that moves the same bytes
 * through the same kind of sockets as wssignd does for one POST /v1/sign:
 *
 *   1. reads an HTTP/1.1 request on a keep-alive connection (headers and a
 *      Content-Length body);
 *   2. writes one WebSocket text frame of --req-frame payload bytes to a
 *      connected peer (io_peer), the peers taken round-robin;
 *   3. reads that peer's masked frame of --ans-frame payload bytes (unmasks it);
 *   4. writes an HTTP response of --resp-bytes bytes in all.
 *
 * The peers open their connections with a fixed pre-agreed upgrade request
 * (read up to its blank line) and get a fixed 101 answer. The first 4 bytes
 * of each request frame's payload carry the HTTP connection's descriptor; the
 * peer echoes them at the start of its answer, which is how an answer finds
 * its HTTP connection. Driven by bench_requester like the daemon, its CPU time
 * per round trip is the floor that run.sh prints as io_floor_us.
 *
 * Prints "event=listening ctl_port=P ws_port=Q" once both listeners are up
 * (port 0: the kernel picks), and runs until SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench_keys.h"

#define RX_BUF 16384
#define FRAME_MAX 8192
#define RESP_MAX 8192

enum kind { K_FREE, K_LISTEN_CTL, K_LISTEN_WS, K_HTTP, K_PEER_HANDSHAKE, K_PEER };

/* Per descriptor: what it is, its unread bytes and its unsent bytes. */
struct conn {
    enum kind kind;
    char *rx;
    size_t rx_len;
    char *tx; /* bytes a full socket did not take; EPOLLOUT is on while tx_len > 0 */
    size_t tx_len;
};

struct io_floor {
    int ep;
    struct conn *conns; /* indexed by descriptor */
    int max_fd;
    int *peers; /* upgraded peer descriptors, in the order they came */
    size_t n_peers, next_peer;
    size_t req_frame, ans_frame, resp_bytes;
    char req_hdr[4];
    size_t req_hdr_len;
    char resp[RESP_MAX];
    size_t resp_len;
    unsigned long long requests, answers, dropped;
};

static const char upgrade_answer[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    "Sec-WebSocket-Protocol: wssign.v1\r\n\r\n";

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--ctl-port P] [--ws-port Q] --req-frame B --ans-frame B --resp-bytes B\n"
            "  --req-frame:  payload bytes of the frame written to a peer per request\n"
            "  --ans-frame:  payload bytes of the peer's answer (what io_peer --ans-frame sends)\n"
            "  --resp-bytes: bytes of each HTTP response, headers included\n",
            argv0);
}

static void conn_close(struct io_floor *f, int fd)
{
    struct conn *c = &f->conns[fd];

    if (c->kind == K_PEER) {
        for (size_t i = 0; i < f->n_peers; i++) {
            if (f->peers[i] == fd) {
                f->peers[i] = f->peers[--f->n_peers];
                break;
            }
        }
    }
    epoll_ctl(f->ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(c->rx);
    free(c->tx);
    memset(c, 0, sizeof *c);
}

static void set_events(struct io_floor *f, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};

    epoll_ctl(f->ep, EPOLL_CTL_MOD, fd, &ev);
}

/*
 * Writes len bytes to fd: straight to the socket, whatever it does not take
 * into the connection's tx buffer (then EPOLLOUT until it drains). Returns -1
 * when the connection had to be closed.
 */
static int conn_write(struct io_floor *f, int fd, const void *a, size_t alen, const void *b,
                      size_t blen)
{
    struct conn *c = &f->conns[fd];
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
    ssize_t n = 0;
    size_t rest;
    char *tx;

    if (!c->tx_len) {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            conn_close(f, fd);
            return -1;
        }
        if (n < 0)
            n = 0;
        if ((size_t)n == alen + blen)
            return 0;
    }
    rest = alen + blen - (size_t)n;
    if (!(tx = realloc(c->tx, c->tx_len + rest))) {
        conn_close(f, fd);
        return -1;
    }
    c->tx = tx;
    for (int i = 0; i < 2; i++) {
        size_t skip = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;

        memcpy(c->tx + c->tx_len, (char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        c->tx_len += iov[i].iov_len - skip;
        n -= (ssize_t)skip;
    }
    set_events(f, fd, EPOLLIN | EPOLLOUT);
    return 0;
}

static void conn_flush(struct io_floor *f, int fd)
{
    struct conn *c = &f->conns[fd];
    ssize_t n = send(fd, c->tx, c->tx_len, MSG_NOSIGNAL);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(f, fd);
        return;
    }
    memmove(c->tx, c->tx + n, c->tx_len - (size_t)n);
    c->tx_len -= (size_t)n;
    if (!c->tx_len)
        set_events(f, fd, EPOLLIN);
}

static int conn_add(struct io_floor *f, int fd, enum kind kind)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    struct conn *c;

    if (fd > f->max_fd) {
        close(fd);
        return -1;
    }
    c = &f->conns[fd];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    if (kind != K_LISTEN_CTL && kind != K_LISTEN_WS && !(c->rx = malloc(RX_BUF))) {
        close(fd);
        return -1;
    }
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        free(c->rx);
        c->rx = NULL;
        c->kind = K_FREE;
        close(fd);
        return -1;
    }
    return 0;
}

static void on_accept(struct io_floor *f, int lfd, enum kind kind)
{
    int one = 1, fd;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_add(f, fd, kind);
    }
}

/*
 * Appends what the socket has to the connection's rx buffer. Returns false
 * when nothing new arrived, or the connection was closed (then it is gone).
 */
static bool conn_recv(struct io_floor *f, int fd)
{
    struct conn *c = &f->conns[fd];
    ssize_t n = recv(fd, c->rx + c->rx_len, RX_BUF - 1 - c->rx_len, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return false;
    if (n <= 0) {
        conn_close(f, fd);
        return false;
    }
    c->rx_len += (size_t)n;
    return true;
}

/* One complete HTTP request at the start of c->rx: its length, 0 if incomplete, -1 if bad. */
static long http_request_len(struct conn *c)
{
    char *end, *cl;
    unsigned long clen = 0;

    c->rx[c->rx_len] = '\0';
    if (!(end = strstr(c->rx, "\r\n\r\n")))
        return c->rx_len >= RX_BUF - 1 ? -1 : 0;
    if ((cl = strcasestr(c->rx, "\r\ncontent-length:")) && cl < end)
        clen = strtoul(cl + 17, NULL, 10);
    if ((size_t)(end - c->rx) + 4 + clen > RX_BUF - 1)
        return -1;
    if ((size_t)(end - c->rx) + 4 + clen > c->rx_len)
        return 0;
    return (long)((size_t)(end - c->rx) + 4 + clen);
}

/* Sends one request frame to the next peer, tagged with the HTTP connection's descriptor. */
static void forward(struct io_floor *f, int http_fd)
{
    static char payload[FRAME_MAX];
    uint32_t tag = (uint32_t)http_fd;
    int peer;

    if (!f->n_peers) {
        f->dropped++;
        return;
    }
    peer = f->peers[f->next_peer++ % f->n_peers];
    memcpy(payload, &tag, sizeof tag);
    f->requests++;
    conn_write(f, peer, f->req_hdr, f->req_hdr_len, payload, f->req_frame);
}

static void on_http(struct io_floor *f, int fd)
{
    struct conn *c = &f->conns[fd];
    long len;

    if (!conn_recv(f, fd))
        return;
    while ((len = http_request_len(c)) != 0) {
        if (len < 0) {
            conn_close(f, fd);
            return;
        }
        memmove(c->rx, c->rx + len, c->rx_len - (size_t)len);
        c->rx_len -= (size_t)len;
        forward(f, fd);
    }
}

static void on_peer_handshake(struct io_floor *f, int fd)
{
    struct conn *c = &f->conns[fd];
    char *end;

    if (!conn_recv(f, fd))
        return;
    c->rx[c->rx_len] = '\0';
    if (!(end = strstr(c->rx, "\r\n\r\n"))) {
        if (c->rx_len >= RX_BUF - 1)
            conn_close(f, fd);
        return;
    }
    if (strncmp(c->rx, "GET ", 4) || (size_t)(end + 4 - c->rx) != c->rx_len) {
        conn_close(f, fd);
        return;
    }
    c->rx_len = 0;
    c->kind = K_PEER;
    f->peers[f->n_peers++] = fd;
    conn_write(f, fd, upgrade_answer, sizeof upgrade_answer - 1, NULL, 0);
}

/* One complete masked client frame at the start of c->rx: its length, 0 if incomplete, -1 if bad. */
static long ws_frame_len(const struct conn *c, size_t *hdr, size_t *plen)
{
    const uint8_t *p = (const uint8_t *)c->rx;
    size_t h = 2, len;

    if (c->rx_len < 2)
        return 0;
    if (!(p[1] & 0x80)) /* a client frame is always masked */
        return -1;
    len = p[1] & 0x7f;
    if (len == 126) {
        if (c->rx_len < 4)
            return 0;
        len = (size_t)p[2] << 8 | p[3];
        h = 4;
    } else if (len == 127) {
        return -1;
    }
    h += 4;
    if (h + len > RX_BUF - 1)
        return -1;
    if (c->rx_len < h + len)
        return 0;
    *hdr = h;
    *plen = len;
    return (long)(h + len);
}

static void on_peer(struct io_floor *f, int fd)
{
    struct conn *c = &f->conns[fd];
    size_t hdr = 0, plen = 0;
    long len;

    if (!conn_recv(f, fd))
        return;
    while ((len = ws_frame_len(c, &hdr, &plen)) != 0) {
        uint8_t *mask = (uint8_t *)c->rx + hdr - 4, *pl = mask + 4;
        uint32_t tag;
        int http_fd;

        if (len < 0 || plen < sizeof tag) {
            conn_close(f, fd);
            return;
        }
        /* What a WebSocket server does with every client frame: unmask it. */
        for (size_t i = 0; i < plen; i++)
            pl[i] ^= mask[i & 3];
        memcpy(&tag, pl, sizeof tag);
        http_fd = (int)tag;
        memmove(c->rx, c->rx + len, c->rx_len - (size_t)len);
        c->rx_len -= (size_t)len;
        f->answers++;
        if (http_fd >= 0 && http_fd <= f->max_fd && f->conns[http_fd].kind == K_HTTP)
            conn_write(f, http_fd, f->resp, f->resp_len, NULL, 0);
        else
            f->dropped++;
    }
}

static int listen_on(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;

    if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    return ntohs(a.sin_port);
}

/* The fixed HTTP response: headers, then a body padded with filler to resp_bytes in all. */
static int build_response(struct io_floor *f)
{
    static const char head_fmt[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n";
    static const char body_head[] = "{\"request_id\":\"0\",\"signature\":\"";
    size_t head_len = 0, body_len = 0;

    if (f->resp_bytes > RESP_MAX)
        return -1;
    /* The header's length depends on the digits of the body's: try each count of digits. */
    for (size_t digits = 1; digits < 6 && !head_len; digits++) {
        size_t h = (size_t)snprintf(NULL, 0, head_fmt, (size_t)0) - 1 + digits;

        if (f->resp_bytes >= h && (size_t)snprintf(NULL, 0, "%zu", f->resp_bytes - h) == digits) {
            head_len = h;
            body_len = f->resp_bytes - h;
        }
    }
    if (!head_len || body_len < sizeof body_head + 2)
        return -1;
    snprintf(f->resp, sizeof f->resp, head_fmt, body_len);
    memcpy(f->resp + head_len, body_head, sizeof body_head - 1);
    memset(f->resp + head_len + sizeof body_head - 1, 'A', body_len - (sizeof body_head - 1) - 2);
    memcpy(f->resp + f->resp_bytes - 2, "\"}", 2);
    f->resp_len = f->resp_bytes;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"ctl-port", required_argument, NULL, 'c'},
                                         {"ws-port", required_argument, NULL, 'w'},
                                         {"req-frame", required_argument, NULL, 'q'},
                                         {"ans-frame", required_argument, NULL, 'a'},
                                         {"resp-bytes", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct io_floor f;
    struct epoll_event evs[256];
    struct rlimit rl;
    int ctl_port = 0, ws_port = 0, lctl, lws, o;

    memset(&f, 0, sizeof f);
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': ctl_port = atoi(optarg); break;
        case 'w': ws_port = atoi(optarg); break;
        case 'q': f.req_frame = strtoul(optarg, NULL, 10); break;
        case 'a': f.ans_frame = strtoul(optarg, NULL, 10); break;
        case 'r': f.resp_bytes = strtoul(optarg, NULL, 10); break;
        default: usage(argv[0]); return o == 'h' ? 0 : 2;
        }
    }
    if (ctl_port < 0 || ctl_port > 65535 || ws_port < 0 || ws_port > 65535 || f.req_frame < 4 ||
        f.req_frame > 65535 || f.req_frame > FRAME_MAX || f.ans_frame < 4 || f.ans_frame > 65535 ||
        build_response(&f) < 0) {
        usage(argv[0]);
        return 2;
    }
    /* The server frame's header: FIN + text, then the 7- or 16-bit length, unmasked. */
    f.req_hdr[0] = (char)0x81;
    if (f.req_frame < 126) {
        f.req_hdr[1] = (char)f.req_frame;
        f.req_hdr_len = 2;
    } else {
        f.req_hdr[1] = 126;
        f.req_hdr[2] = (char)(f.req_frame >> 8);
        f.req_hdr[3] = (char)(f.req_frame & 0xff);
        f.req_hdr_len = 4;
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1 << 22)
        rl.rlim_cur = 1 << 20;
    f.max_fd = (int)rl.rlim_cur - 1;
    f.conns = calloc((size_t)f.max_fd + 1, sizeof *f.conns);
    f.peers = calloc((size_t)f.max_fd + 1, sizeof *f.peers);
    if (!f.conns || !f.peers)
        return 1;

    bench_catch_signals();

    f.ep = epoll_create1(EPOLL_CLOEXEC);
    lctl = listen_on(ctl_port);
    lws = listen_on(ws_port);
    if (f.ep < 0 || lctl < 0 || lws < 0 || conn_add(&f, lctl, K_LISTEN_CTL) < 0 ||
        conn_add(&f, lws, K_LISTEN_WS) < 0) {
        fprintf(stderr, "io_floor: cannot listen: %s\n", strerror(errno));
        return 1;
    }
    printf("event=listening ctl_port=%d ws_port=%d\n", bound_port(lctl), bound_port(lws));
    fflush(stdout);

    while (!bench_stop_signal) {
        int n = epoll_wait(f.ep, evs, 256, -1);

        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            struct conn *c = &f.conns[fd];

            if ((evs[i].events & EPOLLOUT) && c->tx_len) {
                conn_flush(&f, fd);
                if (c->kind == K_FREE)
                    continue;
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            switch (c->kind) {
            case K_LISTEN_CTL: on_accept(&f, fd, K_HTTP); break;
            case K_LISTEN_WS: on_accept(&f, fd, K_PEER_HANDSHAKE); break;
            case K_HTTP: on_http(&f, fd); break;
            case K_PEER_HANDSHAKE: on_peer_handshake(&f, fd); break;
            case K_PEER: on_peer(&f, fd); break;
            case K_FREE: break;
            }
        }
    }
    printf("event=stats peers=%zu requests=%llu answers=%llu dropped=%llu\n", f.n_peers, f.requests,
           f.answers, f.dropped);
    for (int fd = 0; fd <= f.max_fd; fd++)
        if (f.conns[fd].kind != K_FREE)
            conn_close(&f, fd);
    close(f.ep);
    free(f.conns);
    free(f.peers);
    return 0;
}
