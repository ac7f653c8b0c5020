/*
 * io_peer: io_floor's peer, the signers' stand-in. Opens --count connections
 * to io_floor's WebSocket port (at most --inflight connecting at once), sends
 * each the fixed upgrade request and waits for the 101, then answers every
 * frame it gets with one masked text frame of --ans-frame payload bytes whose
 * first 4 bytes echo the first 4 of the frame answered. No JSON, no crypto.
 *
 * Output: "event=ready n=N ms=T" once every connection is upgraded, and
 * "event=stats ..." on SIGTERM or SIGINT.
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
#include <sys/socket.h>
#include <unistd.h>

#include "bench_keys.h"

#define RX_BUF 4096
#define FRAME_MAX 8192

struct pconn {
    int fd;
    bool upgraded;
    char rx[RX_BUF];
    size_t rx_len;
};

struct io_peer {
    struct sockaddr_in addr;
    int ep;
    struct pconn *pc;
    unsigned count, inflight, opened, connecting, upgraded;
    size_t ans_frame;
    uint8_t answer[FRAME_MAX + 8];
    size_t answer_len;
    unsigned long long answers, errors;
};

static const char upgrade_request[] =
    "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: wssign.v1\r\n\r\n";

static int open_one(struct io_peer *p, struct pconn *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&p->addr, sizeof p->addr) < 0 && errno != EINPROGRESS)
        return -1;
    c->upgraded = false;
    c->rx_len = 0;
    p->connecting++;
    return epoll_ctl(p->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Opens connections until --inflight are connecting or all --count are open. */
static int open_more(struct io_peer *p)
{
    while (p->opened < p->count && p->connecting < p->inflight) {
        if (open_one(p, &p->pc[p->opened]) < 0) {
            fprintf(stderr, "io_peer: connect: %s\n", strerror(errno));
            return -1;
        }
        p->opened++;
    }
    return 0;
}

/* Answers every complete server frame in c->rx. Returns -1 on a broken stream. */
static int answer_frames(struct io_peer *p, struct pconn *c)
{
    for (;;) {
        const uint8_t *b = (const uint8_t *)c->rx;
        size_t h = 2, len;

        if (c->rx_len < 2)
            return 0;
        len = b[1] & 0x7f;
        if (b[1] & 0x80 || len == 127)
            return -1;
        if (len == 126) {
            if (c->rx_len < 4)
                return 0;
            len = (size_t)b[2] << 8 | b[3];
            h = 4;
        }
        if (len < 4 || h + len > RX_BUF - 1)
            return -1;
        if (c->rx_len < h + len)
            return 0;
        /* The echoed tag goes in masked; the mask is all zero bytes but the first. */
        memcpy(p->answer + p->answer_len - p->ans_frame, b + h, 4);
        p->answer[p->answer_len - p->ans_frame] ^= 0x5a;
        if (send(c->fd, p->answer, p->answer_len, MSG_NOSIGNAL) != (ssize_t)p->answer_len)
            return -1;
        p->answers++;
        memmove(c->rx, c->rx + h + len, c->rx_len - h - len);
        c->rx_len -= h + len;
    }
}

static int on_event(struct io_peer *p, struct pconn *c, uint32_t events, uint64_t t0)
{
    ssize_t n;

    if (!c->upgraded && (events & EPOLLOUT) && !c->rx_len) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        int err = 0;
        socklen_t elen = sizeof err;

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err ||
            send(c->fd, upgrade_request, sizeof upgrade_request - 1, MSG_NOSIGNAL) !=
                (ssize_t)(sizeof upgrade_request - 1))
            return -1;
        epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return 0;
    n = recv(c->fd, c->rx + c->rx_len, RX_BUF - 1 - c->rx_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    c->rx_len += (size_t)n;
    if (!c->upgraded) {
        char *end;

        c->rx[c->rx_len] = '\0';
        if (!(end = strstr(c->rx, "\r\n\r\n")))
            return c->rx_len >= RX_BUF - 1 ? -1 : 0;
        if (strncmp(c->rx, "HTTP/1.1 101 ", 13))
            return -1;
        c->upgraded = true;
        memmove(c->rx, end + 4, c->rx_len - (size_t)(end + 4 - c->rx));
        c->rx_len -= (size_t)(end + 4 - c->rx);
        p->connecting--;
        if (++p->upgraded == p->count) {
            printf("event=ready n=%u ms=%.1f\n", p->count, (bench_now_us() - t0) / 1000.0);
            fflush(stdout);
        }
        if (open_more(p) < 0)
            return -1;
    }
    return answer_frames(p, c);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --port WS_PORT --count N --ans-frame B [--inflight K]\n"
            "  --ans-frame: payload bytes of each answer frame (io_floor's --ans-frame)\n",
            argv0);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"count", required_argument, NULL, 'n'},
                                         {"ans-frame", required_argument, NULL, 'a'},
                                         {"inflight", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct io_peer p;
    struct epoll_event evs[256];
    uint64_t t0;
    int port = 0, o, rc = 0;

    memset(&p, 0, sizeof p);
    p.inflight = 256;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'n': p.count = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'a': p.ans_frame = strtoul(optarg, NULL, 10); break;
        case 'i': p.inflight = (unsigned)strtoul(optarg, NULL, 10); break;
        default: usage(argv[0]); return o == 'h' ? 0 : 2;
        }
    }
    if (port <= 0 || port > 65535 || !p.count || p.count > 1000000 || p.ans_frame < 4 ||
        p.ans_frame > FRAME_MAX || !p.inflight) {
        usage(argv[0]);
        return 2;
    }
    p.addr.sin_family = AF_INET;
    p.addr.sin_port = htons((uint16_t)port);
    p.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* The answer frame: FIN + text, MASK + length, the 4-byte mask, then the payload. */
    p.answer[0] = 0x81;
    if (p.ans_frame < 126) {
        p.answer[1] = (uint8_t)(0x80 | p.ans_frame);
        p.answer_len = 2;
    } else {
        p.answer[1] = 0x80 | 126;
        p.answer[2] = (uint8_t)(p.ans_frame >> 8);
        p.answer[3] = (uint8_t)(p.ans_frame & 0xff);
        p.answer_len = 4;
    }
    memcpy(p.answer + p.answer_len, "\x5a\0\0\0", 4);
    p.answer_len += 4;
    memset(p.answer + p.answer_len, 'a', p.ans_frame);
    for (size_t i = 0; i < p.ans_frame; i += 4)
        p.answer[p.answer_len + i] ^= 0x5a;
    p.answer_len += p.ans_frame;

    if (!(p.pc = calloc(p.count, sizeof *p.pc)))
        return 1;
    bench_catch_signals();

    t0 = bench_now_us();
    p.ep = epoll_create1(EPOLL_CLOEXEC);
    if (p.ep < 0 || open_more(&p) < 0)
        return 1;
    while (!bench_stop_signal) {
        int n = epoll_wait(p.ep, evs, 256, 100);

        for (int i = 0; i < n; i++) {
            struct pconn *c = evs[i].data.ptr;

            if (on_event(&p, c, evs[i].events, t0) < 0) {
                p.errors++;
                epoll_ctl(p.ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                if (!c->upgraded)
                    p.connecting--;
                else
                    p.upgraded--;
                c->upgraded = false;
                /* Not reopened: a lost connection is counted and shows in the stats. */
            }
        }
    }
    printf("event=stats count=%u upgraded=%u answers=%llu errors=%llu\n", p.count, p.upgraded,
           p.answers, p.errors);
    for (unsigned i = 0; i < p.opened; i++)
        if (p.pc[i].fd >= 0)
            close(p.pc[i].fd);
    close(p.ep);
    free(p.pc);
    return rc;
}
