/*
 * The connection admission table: per-address and global caps, IPv4-mapped
 * addresses counted as their IPv4 address, entries freed at zero.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "peers.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

    memset(&ss, 0, sizeof ss);
    sin->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof ss);
    sin6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

static void test_per_ip_cap(void **state)
{
    struct peers *p = peers_new();
    struct sockaddr_storage a = v4("127.0.0.2"), b = v4("127.0.0.3");
    struct peer *held[3];

    for (int i = 0; i < 3; i++) {
        assert_true(peers_admit(p, SA(a), 0, 3));
        held[i] = peers_add(p, SA(a));
        assert_non_null(held[i]);
    }
    assert_false(peers_admit(p, SA(a), 0, 3));
    assert_true(peers_admit(p, SA(b), 0, 3)); /* another address is not affected */
    assert_int_equal(peers_count(p, SA(a)), 3);
    peers_release(p, held[0]);
    assert_true(peers_admit(p, SA(a), 0, 3));
    peers_release(p, held[1]);
    peers_release(p, held[2]);
    assert_int_equal(peers_count(p, SA(a)), 0);
    assert_int_equal(peers_total(p), 0);
    peers_free(p);
}

static void test_global_cap(void **state)
{
    struct peers *p = peers_new();
    struct sockaddr_storage a = v4("10.0.0.1"), b = v6("2001:db8::1");

    peers_add(p, SA(a));
    peers_add(p, SA(b));
    assert_int_equal(peers_total(p), 2);
    assert_false(peers_admit(p, SA(a), 2, 100));
    assert_true(peers_admit(p, SA(a), 3, 100));
    assert_true(peers_admit(p, SA(a), 0, 100)); /* 0: no global cap */
    peers_free(p);                              /* frees entries still counted */
}

static void test_mapped_v4_counts_as_v4(void **state)
{
    struct peers *p = peers_new();
    struct sockaddr_storage a = v4("192.0.2.7"), m = v6("::ffff:192.0.2.7");
    struct peer *x = peers_add(p, SA(a)), *y = peers_add(p, SA(m));

    assert_ptr_equal(x, y);
    assert_int_equal(peers_count(p, SA(a)), 2);
    assert_false(peers_admit(p, SA(m), 0, 2));
    peers_release(p, x);
    peers_release(p, y);
    peers_release(p, NULL); /* no-op */
    assert_int_equal(peers_total(p), 0);
    peers_free(p);
}

static void test_non_inet_not_counted(void **state)
{
    struct peers *p = peers_new();
    struct sockaddr_storage u;

    memset(&u, 0, sizeof u);
    u.ss_family = AF_UNIX;
    assert_null(peers_add(p, SA(u)));
    assert_int_equal(peers_total(p), 0);
    peers_free(p);
    peers_free(NULL);
}

static void test_v6_counts_per_64(void **state)
{
    struct peers *p = peers_new();
    struct sockaddr_storage a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9"),
                            c = v6("2001:db8:1:3::1");
    struct peer *x = peers_add(p, SA(a)), *y = peers_add(p, SA(b));

    assert_ptr_equal(x, y); /* one /64, one entry */
    assert_false(peers_admit(p, SA(b), 0, 2));
    assert_true(peers_admit(p, SA(c), 0, 2)); /* the next /64 is another host */
    peers_release(p, x);
    peers_release(p, y);
    peers_free(p);
}

static void test_proven_do_not_count_toward_the_cap(void **state)
{
    struct peers *p = peers_new();
    struct sockaddr_storage a = v4("198.51.100.4");
    struct peer *e[4];

    for (int i = 0; i < 2; i++)
        e[i] = peers_add(p, SA(a));
    assert_false(peers_admit(p, SA(a), 0, 2));
    /* Both introduce a key: the address may open two more unproven sockets. */
    assert_true(peers_prove(p, e[0], 0));
    assert_true(peers_prove(p, e[1], 0));
    assert_int_equal(peers_count_proven(p, SA(a)), 2);
    assert_true(peers_admit(p, SA(a), 0, 2));
    e[2] = peers_add(p, SA(a));
    e[3] = peers_add(p, SA(a));
    assert_false(peers_admit(p, SA(a), 0, 2));
    /* The introduced cap: two proven already, a third is refused and not counted. */
    assert_false(peers_prove(p, e[2], 2));
    assert_int_equal(peers_count_proven(p, SA(a)), 2);
    assert_true(peers_prove(p, e[2], 3));
    assert_true(peers_prove(p, NULL, 1)); /* nothing counted, nothing refused */
    for (int i = 0; i < 3; i++)
        peers_unprove(p, e[i]);
    assert_int_equal(peers_count_proven(p, SA(a)), 0);
    for (int i = 0; i < 4; i++)
        peers_release(p, e[i]);
    assert_int_equal(peers_total(p), 0);
    peers_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_ip_cap),
        cmocka_unit_test(test_global_cap),
        cmocka_unit_test(test_mapped_v4_counts_as_v4),
        cmocka_unit_test(test_non_inet_not_counted),
        cmocka_unit_test(test_v6_counts_per_64),
        cmocka_unit_test(test_proven_do_not_count_toward_the_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
