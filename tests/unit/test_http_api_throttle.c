/*
 * The HTTP API's failed-authentication throttle: buckets per client (IPv4
 * address, IPv6 /64, Unix-socket user), refill over time, expiry of full
 * buckets, and the bound on the table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "controllers/http_api_throttle.h"

/* The client key of an address given as text (AF_INET or AF_INET6). */
static struct http_api_client client_at(int family, const char *text)
{
    struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
    void *addr = family == AF_INET ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
                                   : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    struct http_api_client c;

    assert_int_equal(inet_pton(family, text, addr), 1);
    assert_true(http_api_client_of((struct sockaddr *)&ss, NULL, &c));
    return c;
}

static struct http_api_client v4(const char *text)
{
    return client_at(AF_INET, text);
}

static struct http_api_client v6(const char *text)
{
    return client_at(AF_INET6, text);
}

static bool same(struct http_api_client a, struct http_api_client b)
{
    return !memcmp(&a, &b, sizeof a);
}

static void test_client_keys(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct sockaddr sa = {.sa_family = AF_APPLETALK};
    struct http_api_client c, d, unknown;
    uint32_t uid = 1000, other = 1001;

    assert_true(same(v4("10.0.0.1"), v4("10.0.0.1")));
    assert_false(same(v4("10.0.0.1"), v4("10.0.0.2")));
    /* IPv4-mapped IPv6 is its IPv4 address */
    assert_true(same(v6("::ffff:10.0.0.1"), v4("10.0.0.1")));
    /* IPv6 by /64 */
    assert_true(same(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff:ffff:ffff:ffff")));
    assert_false(same(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1")));
    assert_false(same(v6("::a00:1"), v4("10.0.0.1")));

    /* a Unix-socket peer is its user id */
    assert_true(http_api_client_of((struct sockaddr *)&sun, &uid, &c));
    assert_true(http_api_client_of((struct sockaddr *)&sun, &other, &d));
    assert_false(same(c, d));
    assert_false(same(c, v4("0.0.0.0")));
    /* without credentials, or of another family: the one shared unknown client */
    assert_false(http_api_client_of((struct sockaddr *)&sun, NULL, &unknown));
    assert_false(http_api_client_of(&sa, &uid, &c));
    assert_true(same(c, unknown));
}

static void test_per_client_buckets(void **state)
{
    struct http_api_throttle *t = http_api_throttle_new(16, 3);
    struct http_api_client a = v4("192.0.2.1"), b = v4("192.0.2.2");

    assert_false(http_api_throttle_blocked(t, &a, 1000));
    for (int i = 0; i < 3; i++) {
        assert_false(http_api_throttle_blocked(t, &a, 1000));
        http_api_throttle_fail(t, &a, 1000);
    }
    assert_true(http_api_throttle_blocked(t, &a, 1000));
    /* someone else is not affected */
    assert_false(http_api_throttle_blocked(t, &b, 1000));
    http_api_throttle_fail(t, &b, 1000);
    assert_false(http_api_throttle_blocked(t, &b, 1000));
    /* one failure back a second */
    assert_true(http_api_throttle_blocked(t, &a, 1999));
    assert_false(http_api_throttle_blocked(t, &a, 2000));
    http_api_throttle_fail(t, &a, 2000);
    assert_true(http_api_throttle_blocked(t, &a, 2000));
    assert_int_equal(http_api_throttle_count(t), 2);
    /* refilled buckets are forgotten */
    assert_false(http_api_throttle_blocked(t, &a, 10000));
    assert_false(http_api_throttle_blocked(t, &b, 10000));
    assert_int_equal(http_api_throttle_count(t), 0);
    http_api_throttle_free(t);
}

static void test_failures_while_blocked_do_not_deepen(void **state)
{
    struct http_api_throttle *t = http_api_throttle_new(16, 2);
    struct http_api_client a = v4("192.0.2.1");

    for (int i = 0; i < 50; i++)
        http_api_throttle_fail(t, &a, 0);
    assert_true(http_api_throttle_blocked(t, &a, 999));
    assert_false(http_api_throttle_blocked(t, &a, 1000));
    http_api_throttle_free(t);
}

static void test_table_bounded(void **state)
{
    struct http_api_throttle *t = http_api_throttle_new(8, 1);
    struct http_api_client c[20];
    char text[32];

    for (int i = 0; i < 20; i++) {
        snprintf(text, sizeof text, "198.51.100.%d", i + 1);
        c[i] = v4(text);
        http_api_throttle_fail(t, &c[i], (uint64_t)i);
        assert_true(http_api_throttle_count(t) <= 8);
    }
    /* the most recent failures are kept, the oldest forgotten */
    assert_true(http_api_throttle_blocked(t, &c[19], 20));
    assert_true(http_api_throttle_blocked(t, &c[12], 20));
    assert_false(http_api_throttle_blocked(t, &c[0], 20));
    /* a full table first drops what has refilled */
    http_api_throttle_fail(t, &c[0], 5000);
    assert_int_equal(http_api_throttle_count(t), 1);
    http_api_throttle_free(t);
}

static void test_burst_change(void **state)
{
    struct http_api_throttle *t = http_api_throttle_new(8, 10);
    struct http_api_client a = v4("192.0.2.1");

    http_api_throttle_fail(t, &a, 0);
    assert_false(http_api_throttle_blocked(t, &a, 0));
    http_api_throttle_set_burst(t, 1);
    /* 9 left, cut down to the new burst of 1: one more failure blocks */
    http_api_throttle_fail(t, &a, 0);
    assert_true(http_api_throttle_blocked(t, &a, 0));
    http_api_throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_keys),
        cmocka_unit_test(test_per_client_buckets),
        cmocka_unit_test(test_failures_while_blocked_do_not_deepen),
        cmocka_unit_test(test_table_bounded),
        cmocka_unit_test(test_burst_change),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
