/*
 * The loop's poll shim (see uvpoll.h): libuv's uv_poll_start, uv_poll_stop
 * and uv_close, wrapped.
 */
#include "uvpoll.h"

#include <dlfcn.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define NONE ((size_t)-1)
#define POLL_BATCH 64 /* sockets asked per poll(2) */

/* libuv's own linux event bits for UV_DISCONNECT and UV_PRIORITIZED (src/unix/internal.h). */
#define UVPOLL_RDHUP 0x2000
#define UVPOLL_PRI POLLPRI

typedef int (*poll_start_fn)(uv_poll_t *, int, uv_poll_cb);
typedef int (*poll_stop_fn)(uv_poll_t *);
typedef void (*close_fn)(uv_handle_t *, uv_close_cb);

/* libuv's functions, found once. */
static poll_start_fn real_poll_start;
static poll_stop_fn real_poll_stop;
static close_fn real_close;

/* The enabled shim; owned by the daemon. libuv's calls carry no context. */
static struct uvpoll *shim;

static void *find_real(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);

    if (!f) {
        /* Without libuv's own function no handle could be started: nothing can go on. */
        fprintf(stderr, "wssignd: %s not found in libuv: %s\n", name, dlerror());
        abort();
    }
    return f;
}

static void resolve(void)
{
    if (real_poll_start)
        return;
    real_poll_stop = (poll_stop_fn)find_real("uv_poll_stop");
    real_close = (close_fn)find_real("uv_close");
    real_poll_start = (poll_start_fn)find_real("uv_poll_start");
}

/* The event mask libuv keeps for a uv_poll_start(events) (src/unix/poll.c). */
static unsigned pevents_of(int events)
{
    unsigned e = 0;

    if (events & UV_READABLE)
        e |= POLLIN;
    if (events & UV_WRITABLE)
        e |= POLLOUT;
    if (events & UV_DISCONNECT)
        e |= UVPOLL_RDHUP;
    if (events & UV_PRIORITIZED)
        e |= UVPOLL_PRI;
    return e;
}

static size_t find(const struct uvpoll *p, const uv_poll_t *h)
{
    for (size_t i = 0; i < p->n_held; i++)
        if (p->held[i].h == h)
            return i;
    return NONE;
}

/* Takes entry i off the held list. While the prepare callback runs it
 * becomes a hole, which that callback removes, so indices stay valid. */
static void unhold(struct uvpoll *p, size_t i)
{
    if (p->running) {
        p->held[i].h = NULL;
        return;
    }
    p->held[i] = p->held[--p->n_held];
    if (!p->n_held)
        uv_prepare_stop(&p->prepare);
}

static void drop(struct uvpoll *p, const uv_poll_t *h)
{
    size_t i = find(p, h);

    if (i != NONE)
        unhold(p, i);
}

static void on_prepare(uv_prepare_t *ph);

static void hold(struct uvpoll *p, uv_poll_t *h, int events, size_t i)
{
    if (i == NONE) {
        if (p->n_held == p->cap_held) {
            p->cap_held = p->cap_held ? 2 * p->cap_held : 16;
            p->held = xrealloc(p->held, p->cap_held * sizeof *p->held);
        }
        i = p->n_held++;
        p->held[i].h = h;
        p->stats.held++;
        if (p->n_held == 1)
            uv_prepare_start(&p->prepare, on_prepare);
    }
    p->held[i].events = events;
}

int uv_poll_start(uv_poll_t *h, int events, uv_poll_cb cb)
{
    struct uvpoll *p = shim;

    resolve();
    if (p && h->loop == p->loop) {
        size_t i = find(p, h);

        if (uv_is_active((uv_handle_t *)h) && cb == h->poll_cb) {
            unsigned now = h->io_watcher.pevents, want = pevents_of(events);

            if (want == now) {
                if (i != NONE)
                    unhold(p, i);
                p->stats.unchanged++;
                return 0;
            }
            if (want == (now | POLLOUT)) {
                hold(p, h, events, i);
                return 0;
            }
        }
        if (i != NONE)
            unhold(p, i);
    }
    return real_poll_start(h, events, cb);
}

int uv_poll_stop(uv_poll_t *h)
{
    resolve();
    if (shim && h->loop == shim->loop)
        drop(shim, h);
    return real_poll_stop(h);
}

void uv_close(uv_handle_t *h, uv_close_cb cb)
{
    resolve();
    if (shim && h->type == UV_POLL && h->loop == shim->loop)
        drop(shim, (uv_poll_t *)h);
    real_close(h, cb);
}

/* Hands entry i to libuv after all: from now on epoll reports it. */
static void pass_on(struct uvpoll *p, size_t i)
{
    uv_poll_t *h = p->held[i].h;

    p->held[i].h = NULL;
    p->stats.passed_on++;
    real_poll_start(h, p->held[i].events, h->poll_cb);
}

/* Runs one held entry: its socket's poll(2) result is revents. */
static void run_held(struct uvpoll *p, size_t i, short revents)
{
    uv_poll_t *h = p->held[i].h;

    /* libuv itself stops a handle whose socket reported an error. */
    if (!uv_is_active((uv_handle_t *)h)) {
        p->held[i].h = NULL;
        return;
    }
    /* Not writable, or an error or hang-up: libuv reports it as it would have. */
    if (revents != POLLOUT) {
        pass_on(p, i);
        return;
    }
    p->stats.writable++;
    /* Only what was held is answered here. Input waiting on the socket is
     * reported by libuv's poll, as before: lws reads in the poll phase only,
     * which the control listener's loop-turn count relies on (http.c). The
     * entry stays while the callback runs: dropping UV_WRITABLE (as lws does
     * once it has written) makes it a hole, asking again keeps it. */
    h->poll_cb(h, 0, UV_WRITABLE);
    /* Still wanted (lws keeps POLLOUT after a pong, or a partial write): as
     * with level-triggered epoll it must be reported again, so libuv takes it. */
    if (p->held[i].h == h)
        pass_on(p, i);
}

/*
 * Before the loop polls: asks every held socket at once whether it is
 * writable. Callbacks may hold, drop or close any handle meanwhile (entries
 * removed become holes). Whatever is still held at the end, an entry added
 * by a callback or one still wanted after its callback, goes to libuv: the
 * loop may block in its poll next, and only libuv's poll would wake it.
 */
static void on_prepare(uv_prepare_t *ph)
{
    struct uvpoll *p = ph->data;
    size_t n = p->n_held;

    p->running = true;
    for (size_t base = 0; base < n; base += POLL_BATCH) {
        struct pollfd fds[POLL_BATCH];
        size_t idx[POLL_BATCH], k = 0;

        for (size_t i = base; i < n && i < base + POLL_BATCH; i++) {
            uv_os_fd_t fd;

            if (!p->held[i].h)
                continue;
            if (uv_fileno((uv_handle_t *)p->held[i].h, &fd) != 0) {
                /* Closing: libuv's close takes it from here. */
                p->held[i].h = NULL;
                continue;
            }
            fds[k].fd = fd;
            fds[k].events = POLLOUT;
            fds[k].revents = 0;
            idx[k++] = i;
        }
        if (k == 0)
            continue;
        if (poll(fds, (nfds_t)k, 0) < 0)
            for (size_t j = 0; j < k; j++)
                fds[j].revents = 0; /* ask libuv instead */
        for (size_t j = 0; j < k; j++)
            if (p->held[idx[j]].h)
                run_held(p, idx[j], fds[j].revents);
    }
    for (size_t i = n; i < p->n_held; i++)
        if (p->held[i].h && uv_is_active((uv_handle_t *)p->held[i].h))
            pass_on(p, i);
    p->running = false;
    p->n_held = 0;
    uv_prepare_stop(ph);
}

/* Does this libuv keep a poll handle's events where uvpoll.h says? Checked
 * on a loop of its own, so nothing of the caller's runs. */
static bool layout_holds(void)
{
    uv_loop_t loop;
    uv_poll_t h;
    int sv[2];
    bool ok;

    if (uv_loop_init(&loop) != 0)
        return false;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        uv_loop_close(&loop);
        return false;
    }
    ok = uv_poll_init(&loop, &h, sv[0]) == 0;
    if (ok) {
        ok = real_poll_start(&h, UV_READABLE | UV_WRITABLE, NULL) == 0 &&
             h.io_watcher.fd == sv[0] &&
             h.io_watcher.pevents == pevents_of(UV_READABLE | UV_WRITABLE) &&
             real_poll_start(&h, UV_READABLE | UV_DISCONNECT, NULL) == 0 &&
             h.io_watcher.pevents == pevents_of(UV_READABLE | UV_DISCONNECT);
        real_close((uv_handle_t *)&h, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    close(sv[0]);
    close(sv[1]);
    if (uv_loop_close(&loop) != 0)
        ok = false;
    return ok;
}

int uvpoll_enable(struct uvpoll *p, uv_loop_t *loop)
{
    *p = (struct uvpoll){0};
    resolve();
    if (shim || !layout_holds()) {
        log_warn("event=poll_shim_disabled");
        return -1;
    }
    if (uv_prepare_init(loop, &p->prepare) != 0)
        return -1;
    p->loop = loop;
    p->prepare.data = p;
    /* Started and stopped as entries come and go; it never keeps the loop alive. */
    uv_unref((uv_handle_t *)&p->prepare);
    shim = p;
    return 0;
}

bool uvpoll_enabled(const struct uvpoll *p)
{
    return p && shim == p;
}

void uvpoll_disable(struct uvpoll *p)
{
    if (!uvpoll_enabled(p))
        return;
    shim = NULL;
    for (size_t i = 0; i < p->n_held; i++) {
        uv_poll_t *h = p->held[i].h;

        if (h && uv_is_active((uv_handle_t *)h))
            real_poll_start(h, p->held[i].events, h->poll_cb);
    }
    free(p->held);
    p->held = NULL;
    p->n_held = p->cap_held = 0;
    real_close((uv_handle_t *)&p->prepare, NULL);
}
