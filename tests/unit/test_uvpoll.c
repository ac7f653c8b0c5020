/*
 * The poll shim on a real loop and real sockets: starts that change nothing,
 * UV_WRITABLE answered without epoll when the socket is writable and through
 * libuv when it is not, handles stopped or closed while held, a callback
 * asking again, and the shim disabled.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "uvpoll.h"

struct fixture {
    uv_loop_t loop;
    struct uvpoll shim;
    uv_poll_t h;
    int sv[2];
    int calls, first_events, last_status, last_events, closed;
    int rearm; /* callbacks that ask for UV_WRITABLE again */
    int keep;  /* callbacks that leave UV_WRITABLE as it is (lws after a pong) */
};

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct fixture *f = h->data;

    if (!f->calls++)
        f->first_events = events;
    f->last_status = status;
    f->last_events = events;
    if (f->keep > 0) {
        f->keep--;
    } else if (f->rearm > 0) {
        f->rearm--;
        uv_poll_start(h, UV_READABLE | UV_WRITABLE, on_poll);
    } else {
        uv_poll_start(h, UV_READABLE, on_poll); /* as lws does: POLLOUT is one-shot */
    }
}

static void on_closed(uv_handle_t *h)
{
    ((struct fixture *)h->data)->closed++;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->sv), 0);
    assert_int_equal(uv_poll_init(&f->loop, &f->h, f->sv[0]), 0);
    f->h.data = f;
    assert_int_equal(uvpoll_enable(&f->shim, &f->loop), 0);
    assert_true(uvpoll_enabled(&f->shim));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    uvpoll_disable(&f->shim);
    if (!uv_is_closing((uv_handle_t *)&f->h))
        uv_close((uv_handle_t *)&f->h, on_closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    close(f->sv[0]);
    close(f->sv[1]);
    free(f);
    return 0;
}

/* Fills the socket's send buffer until it would block. */
static void fill(int fd)
{
    char buf[4096] = {0};

    while (send(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void drain(int fd)
{
    char buf[4096];

    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        ;
}

static void test_unchanged_start_returns_at_once(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(f->shim.stats.unchanged, 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(f->shim.stats.unchanged, 2);
    /* Readable data still comes through libuv. */
    assert_int_equal(write(f->sv[1], "x", 1), 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->last_status, 0);
    assert_int_equal(f->last_events, UV_READABLE);
}

static void test_writable_answered_before_the_poll(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    assert_int_equal(f->shim.stats.held, 1);
    assert_int_equal(f->calls, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->last_events, UV_WRITABLE);
    assert_int_equal(f->shim.stats.writable, 1);
    assert_int_equal(f->shim.stats.passed_on, 0);
    /* The callback dropped UV_WRITABLE: libuv never registered it. */
    assert_int_equal(f->h.io_watcher.pevents & 4 /* POLLOUT */, 0);
    assert_int_equal(f->shim.n_held, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 1);
}

static void test_readable_and_writable_together(void **state)
{
    struct fixture *f = *state;

    /* Input waits too: before the poll only writability is answered; the
     * input comes from libuv's poll after it, in the same turn. */
    assert_int_equal(write(f->sv[1], "x", 1), 1);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 2);
    assert_int_equal(f->first_events, UV_WRITABLE);
    assert_int_equal(f->last_events, UV_READABLE);
    assert_int_equal(f->shim.stats.writable, 1);
    drain(f->sv[0]);
}

static void test_not_writable_goes_to_libuv(void **state)
{
    struct fixture *f = *state;

    fill(f->sv[0]);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 0);
    assert_int_equal(f->shim.stats.passed_on, 1);
    assert_int_not_equal(f->h.io_watcher.pevents & 4 /* POLLOUT */, 0);
    /* Once the peer reads, libuv reports it writable. */
    drain(f->sv[1]);
    uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->calls, 1);
    assert_true(f->last_events & UV_WRITABLE);
    assert_int_equal(f->shim.stats.writable, 0);
}

static void test_hang_up_goes_to_libuv(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    close(f->sv[1]);
    f->sv[1] = -1;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->shim.stats.passed_on, 1);
    assert_int_equal(f->shim.stats.writable, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(f->calls >= 1);
}

static void test_stopped_while_held(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    assert_int_equal(uv_poll_stop(&f->h), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 0);
    assert_int_equal(f->shim.n_held, 0);
}

static void test_withdrawn_while_held(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 0);
    assert_int_equal(f->shim.stats.writable, 0);
}

static void test_closed_while_held(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    uv_close((uv_handle_t *)&f->h, on_closed);
    assert_int_equal(f->shim.n_held, 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 0);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->shim.n_held, 0);
}

static void test_asking_again_goes_to_libuv(void **state)
{
    struct fixture *f = *state;

    f->rearm = 2;
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    /* The shim's call, then libuv's in the same turn: the socket is writable. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->shim.stats.writable, 1);
    assert_int_equal(f->shim.stats.passed_on, 1);
    assert_int_equal(f->calls, 2);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 3);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 3);
    assert_int_equal(f->h.io_watcher.pevents & 4 /* POLLOUT */, 0);
}

/* lws leaves POLLOUT on after it wrote a pong, for the write that waits
 * behind it: the writable report must come again. */
static void test_kept_writable_reported_again(void **state)
{
    struct fixture *f = *state;

    f->keep = 1;
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 2);
    assert_true(f->last_events & UV_WRITABLE);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->calls, 2);
}

static void test_many_held_at_once(void **state)
{
    struct fixture *f = *state;
    enum { K = 150 }; /* more than one poll(2) batch */
    uv_poll_t hs[K];
    int sv[K][2];

    for (int i = 0; i < K; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]), 0);
        if (i % 3 == 0)
            fill(sv[i][0]);
        assert_int_equal(uv_poll_init(&f->loop, &hs[i], sv[i][0]), 0);
        hs[i].data = f;
        assert_int_equal(uv_poll_start(&hs[i], UV_READABLE, on_poll), 0);
        assert_int_equal(uv_poll_start(&hs[i], UV_READABLE | UV_WRITABLE, on_poll), 0);
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->shim.stats.writable, K - (K + 2) / 3);
    assert_int_equal(f->shim.stats.passed_on, (K + 2) / 3);
    assert_int_equal(f->calls, K - (K + 2) / 3);
    for (int i = 0; i < K; i++)
        uv_close((uv_handle_t *)&hs[i], NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < K; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
}

static void test_disabled_passes_everything_on(void **state)
{
    struct fixture *f = *state;

    uvpoll_disable(&f->shim);
    assert_false(uvpoll_enabled(&f->shim));
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    assert_int_not_equal(f->h.io_watcher.pevents & 4 /* POLLOUT */, 0);
    uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->calls, 1);
    assert_true(f->last_events & UV_WRITABLE);
    assert_int_equal(f->shim.stats.held, 0);
}

static void test_disable_registers_what_is_held(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(uv_poll_start(&f->h, UV_READABLE, on_poll), 0);
    assert_int_equal(uv_poll_start(&f->h, UV_READABLE | UV_WRITABLE, on_poll), 0);
    uvpoll_disable(&f->shim);
    assert_int_not_equal(f->h.io_watcher.pevents & 4 /* POLLOUT */, 0);
    uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->calls, 1);
    assert_true(f->last_events & UV_WRITABLE);
}

static void test_one_shim_per_process(void **state)
{
    struct fixture *f = *state;
    struct uvpoll other;

    assert_int_equal(uvpoll_enable(&other, &f->loop), -1);
    assert_false(uvpoll_enabled(&other));
    assert_true(uvpoll_enabled(&f->shim));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_unchanged_start_returns_at_once),
        T(test_writable_answered_before_the_poll),
        T(test_readable_and_writable_together),
        T(test_not_writable_goes_to_libuv),
        T(test_hang_up_goes_to_libuv),
        T(test_stopped_while_held),
        T(test_withdrawn_while_held),
        T(test_closed_while_held),
        T(test_asking_again_goes_to_libuv),
        T(test_kept_writable_reported_again),
        T(test_many_held_at_once),
        T(test_disabled_passes_everything_on),
        T(test_disable_registers_what_is_held),
        T(test_one_shim_per_process),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
