/*
 * The log sink's rate limit for peer-triggered lines, and logfmt quoting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static void test_limit_one_line_per_interval(void **state)
{
    struct log_limit l = {0};
    unsigned long long sup = 99;

    assert_true(log_limit_allow(&l, 5000, &sup));
    assert_int_equal(sup, 0);
    for (int i = 0; i < 1000; i++)
        assert_false(log_limit_allow(&l, 5000 + (uint64_t)i % LOG_LIMIT_INTERVAL_MS, &sup));
    /* The next line after the interval tells how many were dropped. */
    assert_true(log_limit_allow(&l, 5000 + LOG_LIMIT_INTERVAL_MS, &sup));
    assert_int_equal(sup, 1000);
    assert_false(log_limit_allow(&l, 5000 + LOG_LIMIT_INTERVAL_MS + 1, &sup));
    assert_true(log_limit_allow(&l, 5000 + 3 * LOG_LIMIT_INTERVAL_MS, &sup));
    assert_int_equal(sup, 1);
}

static void test_limit_at_time_zero(void **state)
{
    struct log_limit l = {0};
    unsigned long long sup;

    assert_true(log_limit_allow(&l, 0, &sup));
    assert_false(log_limit_allow(&l, 0, &sup));
    assert_false(log_limit_allow(&l, 10, &sup));
}

static void test_quote(void **state)
{
    char out[64];

    assert_string_equal(log_quote(out, sizeof out, "plain"), "plain");
    assert_string_equal(log_quote(out, sizeof out, "a b"), "\"a b\"");
    assert_string_equal(log_quote(out, sizeof out, "x=\"y\"\n"), "\"x=\\\"y\\\"\\x0a\"");
    assert_string_equal(log_quote(out, sizeof out, ""), "\"\"");
    assert_string_equal(log_quote(out, 8, "a very long value"), "\"a ver\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_one_line_per_interval),
        cmocka_unit_test(test_limit_at_time_zero),
        cmocka_unit_test(test_quote),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
