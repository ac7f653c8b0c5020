/*
 * The log sink's rate limit for peer-triggered lines, and logfmt quoting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libwebsockets.h>

#include "log.h"
#include "log_lws.h"

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

/* Runs fn with stderr going to a temporary file; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    long len;
    char *out;

    assert_non_null(tmp);
    fflush(stderr);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn();
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    len = ftell(tmp);
    assert_true(len >= 0);
    out = calloc(1, (size_t)len + 1);
    assert_non_null(out);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    return out;
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* lws retrying accept() with EMFILE: the same error thousands of times a second. */
static void lws_flood(void)
{
    char line[64];

    for (int i = 0; i < 5000; i++) {
        snprintf(line, sizeof line, "accept: errno %d\n", 23 + i % 2);
        log_lws(LLL_ERR, line);
    }
    log_lws(LLL_ERR, "init server failed\n");
    log_lws(LLL_WARN, "some warning 1\n");
    log_lws(LLL_WARN, "some warning 2\n");
}

static void test_lws_errors_limited_per_kind(void **state)
{
    char *out = capture_stderr(lws_flood);

    /* One line for the flood (digits aside, one kind), one for each other kind. */
    assert_int_equal(count(out, "event=lws"), 3);
    assert_int_equal(count(out, "msg=\"accept: errno 23\" suppressed=0"), 1);
    assert_int_equal(count(out, "msg=\"init server failed\""), 1);
    assert_int_equal(count(out, "level=warn event=lws msg=\"some warning 1\""), 1);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_one_line_per_interval),
        cmocka_unit_test(test_limit_at_time_zero),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_lws_errors_limited_per_kind),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
