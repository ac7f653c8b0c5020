/*
 * A binary min-heap of struct timer pointers ordered by due_ms, each entry
 * knowing its own slot so that disarming is O(log n), and the libuv timer
 * re-armed only when the earliest due time moves.
 */
#include "timers.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void timer_init(struct timer *t)
{
    memset(t, 0, sizeof *t);
}

bool timer_armed(const struct timer *t)
{
    return t->slot != 0;
}

static void on_uv(uv_timer_t *h)
{
    struct timers *ts = h->data;

    ts->uv_due_ms = 0;
    timers_run(ts, util_now_ms());
}

/* Keeps the libuv timer on the earliest due time. */
static void sync_uv(struct timers *ts)
{
    uint64_t next = timers_next(ts), now;

    if (!ts->has_loop || ts->running || next == ts->uv_due_ms)
        return;
    ts->uv_due_ms = next;
    if (!next) {
        uv_timer_stop(&ts->uv);
        return;
    }
    now = util_now_ms();
    /* libuv's clock is cached per loop turn: refresh it so the delay is measured from now. */
    uv_update_time(ts->uv.loop);
    uv_timer_start(&ts->uv, on_uv, next > now ? next - now : 0, 0);
}

int timers_init(struct timers *ts, void *loop)
{
    int rc;

    memset(ts, 0, sizeof *ts);
    if (!loop)
        return 0;
    if ((rc = uv_timer_init(loop, &ts->uv)) != 0)
        return rc;
    ts->uv.data = ts;
    ts->has_loop = true;
    return 0;
}

static void place(struct timers *ts, size_t i, struct timer *t)
{
    ts->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(struct timers *ts, size_t i)
{
    struct timer *t = ts->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (ts->heap[parent]->due_ms <= t->due_ms)
            break;
        place(ts, i, ts->heap[parent]);
        i = parent;
    }
    place(ts, i, t);
}

static void sift_down(struct timers *ts, size_t i)
{
    struct timer *t = ts->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= ts->n)
            break;
        if (c + 1 < ts->n && ts->heap[c + 1]->due_ms < ts->heap[c]->due_ms)
            c++;
        if (t->due_ms <= ts->heap[c]->due_ms)
            break;
        place(ts, i, ts->heap[c]);
        i = c;
    }
    place(ts, i, t);
}

/* Takes t out of the heap without touching the libuv timer. */
static void unlink_timer(struct timers *ts, struct timer *t)
{
    size_t i = t->slot - 1;
    struct timer *last = ts->heap[--ts->n];

    t->slot = 0;
    if (i == ts->n)
        return;
    ts->heap[i] = last;
    last->slot = i + 1;
    if (i > 0 && ts->heap[(i - 1) / 2]->due_ms > last->due_ms)
        sift_up(ts, i);
    else
        sift_down(ts, i);
}

void timers_arm(struct timers *ts, struct timer *t, uint64_t due_ms, timer_cb cb)
{
    if (t->slot)
        unlink_timer(ts, t);
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 64;
        ts->heap = xrealloc(ts->heap, ts->cap * sizeof *ts->heap);
    }
    t->due_ms = due_ms;
    t->cb = cb;
    ts->heap[ts->n++] = t;
    sift_up(ts, ts->n - 1);
    sync_uv(ts);
}

void timers_disarm(struct timers *ts, struct timer *t)
{
    if (!t->slot)
        return;
    unlink_timer(ts, t);
    sync_uv(ts);
}

uint64_t timers_next(const struct timers *ts)
{
    /* A due time of 0 is kept as 1 so that 0 can mean "nothing armed". */
    return ts->n ? (ts->heap[0]->due_ms ? ts->heap[0]->due_ms : 1) : 0;
}

size_t timers_count(const struct timers *ts)
{
    return ts->n;
}

void timers_run(struct timers *ts, uint64_t now_ms)
{
    ts->running = true;
    while (ts->n && ts->heap[0]->due_ms <= now_ms) {
        struct timer *t = ts->heap[0];

        unlink_timer(ts, t);
        t->cb(ts, t, now_ms);
    }
    ts->running = false;
    sync_uv(ts);
}

void timers_cleanup(struct timers *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        ts->heap[i]->slot = 0;
    free(ts->heap);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
    if (ts->has_loop) {
        uv_timer_stop(&ts->uv);
        if (!uv_is_closing((uv_handle_t *)&ts->uv))
            uv_close((uv_handle_t *)&ts->uv, NULL);
    }
    ts->has_loop = false;
}
