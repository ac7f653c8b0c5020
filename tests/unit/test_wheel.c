/*
 * The timing wheel: entries come due once, not early, not lost across turns,
 * re-arming and disarming move them, and a long gap catches up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wheel.h"

static size_t count_list(struct wheel_entry *e)
{
    size_t n = 0;

    for (; e; e = e->next)
        n++;
    return n;
}

static void test_due_once_not_early(void **state)
{
    struct wheel w;
    struct wheel_entry a = {0}, b = {0};

    wheel_init(&w, 100, 1000);
    wheel_arm(&w, &a, 1250);
    wheel_arm(&w, &b, 1900);
    assert_int_equal(w.count, 2);
    assert_null(wheel_advance(&w, 1199));
    assert_null(wheel_advance(&w, 1249)); /* same slot, not yet due */
    assert_ptr_equal(wheel_advance(&w, 1250), &a);
    assert_false(a.armed);
    assert_null(wheel_advance(&w, 1899 - 100));
    assert_ptr_equal(wheel_advance(&w, 1900), &b);
    assert_null(wheel_advance(&w, 5000));
    assert_int_equal(w.count, 0);
}

static void test_rearm_and_disarm(void **state)
{
    struct wheel w;
    struct wheel_entry a = {0};

    wheel_init(&w, 10, 0);
    wheel_arm(&w, &a, 50);
    wheel_arm(&w, &a, 500); /* moved, not duplicated */
    assert_int_equal(w.count, 1);
    assert_null(wheel_advance(&w, 100));
    wheel_disarm(&w, &a);
    wheel_disarm(&w, &a); /* idempotent */
    assert_int_equal(w.count, 0);
    assert_null(wheel_advance(&w, 1000));
    /* A time in the past comes due at the next advance. */
    wheel_arm(&w, &a, 5);
    assert_ptr_equal(wheel_advance(&w, 1010), &a);
}

static void test_later_turns_stay(void **state)
{
    struct wheel w;
    struct wheel_entry far = {0}, near = {0};
    uint64_t turn = (uint64_t)WHEEL_SLOTS * 10;

    wheel_init(&w, 10, 0);
    wheel_arm(&w, &far, 3 * turn + 55); /* same slot as near, three turns later */
    wheel_arm(&w, &near, 55);
    assert_ptr_equal(wheel_advance(&w, 60), &near);
    for (uint64_t t = 100; t < 3 * turn + 50; t += 1000)
        assert_null(wheel_advance(&w, t));
    assert_ptr_equal(wheel_advance(&w, 3 * turn + 60), &far);
}

static void test_long_gap_catches_up(void **state)
{
    struct wheel w;
    struct wheel_entry *e = calloc(5000, sizeof *e);
    size_t got = 0;

    wheel_init(&w, 10, 0);
    for (int i = 0; i < 5000; i++)
        wheel_arm(&w, &e[i], (uint64_t)(rand() % 100000) + 1);
    /* Advance by irregular steps, some longer than a turn. */
    for (uint64_t t = 0; t <= 200000; t += (uint64_t)(rand() % 30000)) {
        struct wheel_entry *due = wheel_advance(&w, t);

        for (struct wheel_entry *x = due; x; x = x->next) {
            assert_true(x->due_ms <= t); /* never early */
            got++;
        }
    }
    got += count_list(wheel_advance(&w, 200001));
    assert_int_equal(got, 5000);
    assert_int_equal(w.count, 0);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_once_not_early),
        cmocka_unit_test(test_rearm_and_disarm),
        cmocka_unit_test(test_later_turns_stay),
        cmocka_unit_test(test_long_gap_catches_up),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
