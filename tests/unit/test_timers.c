/*
 * The timer substrate: order of firing, re-arming and disarming (also from
 * inside a callback), and the earliest deadline, with time as a parameter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "timers.h"
#include "util.h"

#define N 1000

struct item {
    struct timer t;
    int id;
    int fired;
};

static int order[N * 2], n_order;
static struct item *rearm_target;
static struct timer *disarm_target;

static void on_fire(struct timers *ts, struct timer *t, uint64_t now)
{
    struct item *it = (struct item *)t;

    assert_true(t->due_ms <= now);
    assert_false(timer_armed(t));
    it->fired++;
    order[n_order++] = it->id;
    if (it == rearm_target) {
        rearm_target = NULL;
        timers_arm(ts, t, now + 10, on_fire);
    }
    if (disarm_target) {
        timers_disarm(ts, disarm_target);
        disarm_target = NULL;
    }
}

static void test_fires_in_due_order(void **state)
{
    struct timers ts;
    struct item *items = calloc(N, sizeof *items);
    uint64_t last = 0;

    assert_int_equal(timers_init(&ts, NULL), 0);
    n_order = 0;
    for (int i = 0; i < N; i++) {
        items[i].id = i;
        timers_arm(&ts, &items[i].t, 1000 + (uint64_t)((i * 7919) % N), on_fire);
    }
    assert_int_equal(timers_count(&ts), N);
    assert_int_equal(timers_next(&ts), 1000);
    timers_run(&ts, 999);
    assert_int_equal(n_order, 0);
    timers_run(&ts, 1000 + N / 2 - 1);
    assert_int_equal(n_order, N / 2);
    timers_run(&ts, 1000 + N);
    assert_int_equal(n_order, N);
    for (int i = 0; i < N; i++) {
        uint64_t due = items[order[i]].t.due_ms;

        assert_true(due >= last);
        last = due;
        assert_int_equal(items[i].fired, 1);
    }
    assert_int_equal(timers_count(&ts), 0);
    assert_int_equal(timers_next(&ts), 0);
    timers_cleanup(&ts);
    free(items);
}

static void test_rearm_and_disarm(void **state)
{
    struct timers ts;
    struct item a = {.id = 1}, b = {.id = 2}, c = {.id = 3};

    timers_init(&ts, NULL);
    n_order = 0;
    timers_arm(&ts, &a.t, 100, on_fire);
    timers_arm(&ts, &b.t, 200, on_fire);
    timers_arm(&ts, &c.t, 300, on_fire);
    timers_arm(&ts, &a.t, 250, on_fire); /* moves a after b */
    assert_int_equal(timers_count(&ts), 3);
    assert_int_equal(timers_next(&ts), 200);
    timers_disarm(&ts, &c.t);
    timers_disarm(&ts, &c.t); /* twice is harmless */
    assert_false(timer_armed(&c.t));
    timers_run(&ts, 1000);
    assert_int_equal(n_order, 2);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 1);
    assert_int_equal(c.fired, 0);
    timers_cleanup(&ts);
}

static void test_callbacks_may_arm_and_disarm(void **state)
{
    struct timers ts;
    struct item a = {.id = 1}, b = {.id = 2}, c = {.id = 3};

    timers_init(&ts, NULL);
    n_order = 0;
    timers_arm(&ts, &a.t, 10, on_fire);
    timers_arm(&ts, &b.t, 20, on_fire);
    timers_arm(&ts, &c.t, 30, on_fire);
    rearm_target = &a;    /* a re-arms itself for now + 10 */
    disarm_target = &c.t; /* and disarms c */
    timers_run(&ts, 25);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 1);
    assert_int_equal(c.fired, 0);
    assert_true(timer_armed(&a.t));
    assert_int_equal(a.t.due_ms, 35);
    timers_run(&ts, 35);
    assert_int_equal(a.fired, 2);
    assert_int_equal(timers_count(&ts), 0);
    timers_cleanup(&ts);
}

static void test_on_a_real_loop(void **state)
{
    uv_loop_t loop;
    struct timers ts;
    struct item a = {.id = 1};
    uint64_t t0 = util_now_ms();

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(timers_init(&ts, &loop), 0);
    n_order = 0;
    timers_arm(&ts, &a.t, t0 + 20, on_fire);
    uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.fired, 1);
    assert_true(util_now_ms() >= t0 + 20);
    timers_cleanup(&ts);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_in_due_order),
        cmocka_unit_test(test_rearm_and_disarm),
        cmocka_unit_test(test_callbacks_may_arm_and_disarm),
        cmocka_unit_test(test_on_a_real_loop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
