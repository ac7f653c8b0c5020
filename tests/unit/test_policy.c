/*
 * Unit tests for the agent's signing policy (policy.c): the reserved
 * introduction prefix that no option allows, the size bound, the prefix
 * allow-list in its three spellings, the order of the checks, and the
 * refused specs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wssignd/errors.h>
#include <wssignd/service.h>

#include "policy.h"

static const char *check(const struct policy *p, const char *msg)
{
    return policy_check(p, (const uint8_t *)msg, strlen(msg));
}

static void add(struct policy *p, const char *spec)
{
    char err[256] = "";
    int rc = policy_add_prefix(p, spec, err, sizeof err);

    if (rc != 0)
        print_error("%s: %s\n", spec, err);
    assert_int_equal(rc, 0);
}

static void test_default_allows_everything(void **state)
{
    struct policy p;
    static const uint8_t binary[] = {0x00, 0xff, 0x80};

    (void)state;
    policy_init(&p, 64);
    assert_null(check(&p, "anything"));
    assert_null(check(&p, ""));
    assert_null(policy_check(&p, binary, sizeof binary));
    policy_cleanup(&p);
}

static void test_reserved_prefix(void **state)
{
    struct policy p;

    (void)state;
    policy_init(&p, 4096);
    assert_string_equal(check(&p, WSS_INTRODUCTION_PREFIX), "reserved_prefix");
    assert_string_equal(check(&p, WSS_INTRODUCTION_PREFIX "\nhost\nnonce"), "reserved_prefix");
    /* not even an allow-list entry naming it lets it through */
    add(&p, "str:" WSS_INTRODUCTION_PREFIX);
    assert_string_equal(check(&p, WSS_INTRODUCTION_PREFIX "\nhost\nnonce"), "reserved_prefix");
    /* a part of the prefix is not the prefix */
    policy_cleanup(&p);
    policy_init(&p, 4096);
    assert_null(check(&p, "wssign-introduction-v"));
    assert_null(check(&p, "x" WSS_INTRODUCTION_PREFIX));
    policy_cleanup(&p);
}

static void test_size_bound(void **state)
{
    struct policy p;

    (void)state;
    policy_init(&p, 5);
    assert_null(check(&p, "12345"));
    assert_string_equal(check(&p, "123456"), "too_long");
    p.max_bytes = 0;
    assert_null(check(&p, ""));
    assert_string_equal(check(&p, "1"), "too_long");
    /* the reserved prefix is named first, whatever the size */
    assert_string_equal(check(&p, WSS_INTRODUCTION_PREFIX), "reserved_prefix");
    policy_cleanup(&p);
}

static void test_prefixes(void **state)
{
    struct policy p;
    static const uint8_t hex_ok[] = {0x0a, 0x0b, 0x00, 0x01};
    static const uint8_t hex_short[] = {0x0a};

    (void)state;
    policy_init(&p, 100);
    add(&p, "hex:0a0B");
    add(&p, "tx:");
    add(&p, "str:hex:literal");
    assert_int_equal(p.n_allow, 3);
    assert_null(policy_check(&p, hex_ok, sizeof hex_ok));
    assert_string_equal(policy_check(&p, hex_short, sizeof hex_short), "prefix_not_allowed");
    assert_null(check(&p, "tx:"));
    assert_null(check(&p, "tx:pay 5"));
    assert_null(check(&p, "hex:literal and more"));
    assert_string_equal(check(&p, "hex:other"), "prefix_not_allowed");
    assert_string_equal(check(&p, "TX:pay"), "prefix_not_allowed");
    assert_string_equal(check(&p, ""), "prefix_not_allowed");
    /* too_long comes before the prefix check */
    p.max_bytes = 3;
    assert_string_equal(check(&p, "tx:pay"), "too_long");
    policy_cleanup(&p);
    assert_int_equal(p.n_allow, 0);
    assert_null(p.allow);
    /* cleanup leaves an empty list: everything is allowed again */
    assert_null(check(&p, "zz"));
}

static void expect_bad_spec(const char *spec, const char *why)
{
    struct policy p;
    char err[256];

    policy_init(&p, 100);
    assert_int_equal(policy_add_prefix(&p, spec, err, sizeof err), WSS_ERR_INVAL);
    if (!strstr(err, why))
        print_error("%s: %s\n", spec, err);
    assert_non_null(strstr(err, why));
    assert_int_equal(p.n_allow, 0);
    policy_cleanup(&p);
}

static void test_bad_specs(void **state)
{
    (void)state;
    expect_bad_spec("", "empty prefix");
    expect_bad_spec("str:", "empty prefix");
    expect_bad_spec("hex:", "empty prefix 'hex:'");
    expect_bad_spec("hex:abc", "bad hex prefix");
    expect_bad_spec("hex:0g", "bad hex prefix");
    expect_bad_spec("hex:0a 0b", "bad hex prefix");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_allows_everything),
        cmocka_unit_test(test_reserved_prefix),
        cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_bad_specs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
