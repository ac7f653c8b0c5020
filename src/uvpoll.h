/*
 * The loop's poll shim: fewer epoll_ctl calls for lws on libuv.
 *
 * lws's libuv plugin restarts a connection's uv_poll_t at every change of
 * interest, and also when nothing changes (lws asks for POLLIN it already
 * has when a keep-alive request arrives, and drops POLLOUT twice after a
 * write). libuv turns every uv_poll_start() into an epoll_ctl DEL at once
 * and an ADD at its next poll. And lws asks for POLLOUT after every HTTP
 * answer (lws_http_transaction_completed), only to learn that the socket
 * is writable, which costs an ADD with POLLOUT, a wake-up, a DEL and an
 * ADD without it. Per signature that made 7 epoll_ctl calls.
 *
 * The daemon defines uv_poll_start, uv_poll_stop and uv_close itself and
 * exports them, so lws's plugin (and hiredis's adapter) bind to these
 * wrappers, which call libuv's own (dlsym RTLD_NEXT). While the shim is
 * enabled on a loop:
 *  - a uv_poll_start() that would leave a handle exactly as it is (active,
 *    same events, same callback) returns at once;
 *  - a uv_poll_start() that only adds UV_WRITABLE to an active handle is
 *    held back; just before the loop next polls (a prepare handle) one
 *    poll(2) with a zero timeout asks all such sockets at once whether they
 *    are writable, and the callback of each writable one runs with
 *    UV_WRITABLE (only: input is left to libuv's poll, so lws reads in the
 *    poll phase as before) as libuv would have run it. If the callback drops
 *    UV_WRITABLE again, as lws does, epoll never saw the change. A socket
 *    that is not writable, has an error or a hang-up pending, gets its
 *    UV_WRITABLE registered with libuv after all, which then reports it.
 * Everything else goes straight to libuv. Disabled (the default, and in
 * every program but the daemon) the wrappers only pass the calls on.
 *
 * The shim reads a handle's current events from libuv's uv_poll_t
 * (io_watcher.pevents, in uv/unix.h); uvpoll_enable() checks that layout
 * on a real handle first and stays disabled if it does not hold.
 */
#ifndef WSSIGND_UVPOLL_H
#define WSSIGND_UVPOLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* A handle whose UV_WRITABLE is held back. */
struct uvpoll_held {
    uv_poll_t *h; /* NULL: taken off while the prepare callback runs */
    int events;   /* what the caller asked for */
};

/* Counters, for tests and the benchmark. */
struct uvpoll_stats {
    uint64_t unchanged; /* starts that changed nothing: returned at once */
    uint64_t held;      /* UV_WRITABLE held back */
    uint64_t writable;  /* of those, found writable and called back */
    uint64_t passed_on; /* of those, registered with libuv after all */
};

/* Owned by the daemon (embedded in struct wssd); the shim keeps a pointer
 * to the enabled one, since libuv's calls carry no context of ours. */
struct uvpoll {
    uv_loop_t *loop;
    uv_prepare_t prepare;
    struct uvpoll_held *held;
    size_t n_held, cap_held;
    bool running; /* inside the prepare callback: entries leave as holes */
    struct uvpoll_stats stats;
};

/*
 * Enables the shim for the handles of loop (one loop per process). Returns
 * 0, or -1 when it stays disabled (libuv's functions not found, another
 * shim enabled, or a uv_poll_t laid out otherwise than this build expects);
 * the loop then works as without it.
 */
int uvpoll_enable(struct uvpoll *p, uv_loop_t *loop);

/* Whether p is the enabled shim. */
bool uvpoll_enabled(const struct uvpoll *p);

/*
 * Disables the shim: handles held back get their UV_WRITABLE registered
 * with libuv, and the prepare handle is closed (its close completes in the
 * loop's next run, before uv_loop_close).
 */
void uvpoll_disable(struct uvpoll *p);

#endif
