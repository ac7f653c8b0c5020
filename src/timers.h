/*
 * The daemon's one timer substrate: every deadline (sign-request expiry,
 * introduction timeouts, keep-alive pings and hang-ups, close grace, HTTP
 * body deadlines, controller timers, the drain and the watchdog) is an entry
 * embedded in the object it times, kept in one min-heap and driven by one
 * libuv timer armed for the earliest entry. Compare redis ae's time events.
 *
 * Entries are owned by whoever embeds them; the heap only points at them.
 * Time is a parameter of timers_run(), so tests fire timers without waiting
 * (timers_init with no loop). Costs: arm, disarm O(log n); the earliest
 * deadline O(1).
 */
#ifndef WSSIGND_TIMERS_H
#define WSSIGND_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct timer;
struct timers;

/* Runs on the loop thread when t comes due; t is disarmed first, so the
 * callback may arm it again (or free what embeds it). now_ms is the time of
 * this run. */
typedef void (*timer_cb)(struct timers *ts, struct timer *t, uint64_t now_ms);

/* Per timed object: embed one, zero it (or timer_init) before first use. */
struct timer {
    uint64_t due_ms; /* monotonic (util_now_ms) */
    size_t slot;     /* 1 + its index in the heap; 0: not armed */
    timer_cb cb;
};

/* Per daemon: the heap and the libuv timer that serves it. */
struct timers {
    struct timer **heap;
    size_t n, cap;
    uv_timer_t uv;
    bool has_loop;
    uint64_t uv_due_ms; /* what uv is armed for; 0: not armed */
    bool running;       /* in timers_run: uv is synced once at its end */
};

/* Zeroes an entry: not armed. */
void timer_init(struct timer *t);

/* True if t is armed. */
bool timer_armed(const struct timer *t);

/* Sets up an empty substrate on loop (a uv_loop_t *), or, with loop NULL,
 * one that only timers_run() drives (tests). Returns 0 or a libuv error. */
int timers_init(struct timers *ts, void *loop);

/* Arms t (re-arming it if armed) to call cb at due_ms; a time already past
 * fires at the next run. */
void timers_arm(struct timers *ts, struct timer *t, uint64_t due_ms, timer_cb cb);

/* Disarms t if it is armed. */
void timers_disarm(struct timers *ts, struct timer *t);

/* The earliest due time, or 0 when nothing is armed. */
uint64_t timers_next(const struct timers *ts);

/* Number of armed entries. */
size_t timers_count(const struct timers *ts);

/* Fires every entry due at or before now_ms, earliest first (entries armed
 * for now_ms or earlier by a callback fire in the same run). */
void timers_run(struct timers *ts, uint64_t now_ms);

/* Stops the libuv timer and closes its handle (the loop must run once more
 * for the close to finish), and frees the heap. Armed entries are forgotten,
 * not fired. */
void timers_cleanup(struct timers *ts);

#endif
