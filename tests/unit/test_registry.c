/*
 * Unit tests for the registry: key -> session mapping, replacement,
 * guarded removal, iteration and scale. Sessions are stand-ins: the
 * registry never looks inside struct session.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"
#include "util.h"

#include <wssignd/errors.h>

/* Per test: a stand-in for a session. */
struct session {
    int n;
};

#define MANY_KEYS 100000

/* Deterministic key for index i: the index up front keeps keys distinct, the
 * rest is mixed so the hash sees realistic, random-looking bytes. */
static void make_key(uint8_t key[REGISTRY_KEY_BYTES], uint32_t i)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);

    for (int b = 0; b < REGISTRY_KEY_BYTES; b++) {
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        key[b] = (uint8_t)(x >> 56);
    }
    memcpy(key, &i, sizeof(i));
}

static void add_find_remove(void **state)
{
    struct registry *reg = registry_new();
    struct session a = {1}, b = {2};
    uint8_t ka[REGISTRY_KEY_BYTES], kb[REGISTRY_KEY_BYTES], kc[REGISTRY_KEY_BYTES];
    struct session *replaced = &b;

    make_key(ka, 1);
    make_key(kb, 2);
    make_key(kc, 3);
    assert_null(registry_find(reg, ka, NULL));
    assert_int_equal(registry_add(reg, ka, &a, 1000, &replaced), 0);
    assert_null(replaced);
    assert_int_equal(registry_add(reg, kb, &b, 2000, NULL), 0);

    assert_ptr_equal(registry_find(reg, ka, NULL), &a);
    assert_ptr_equal(registry_find(reg, kb, NULL), &b);
    assert_null(registry_find(reg, kc, NULL));

    assert_int_equal(registry_remove(reg, ka, &a), 0);
    assert_null(registry_find(reg, ka, NULL));
    assert_ptr_equal(registry_find(reg, kb, NULL), &b);
    assert_int_equal(registry_remove(reg, ka, &a), WSS_ERR_NOT_FOUND);
    assert_int_equal(registry_remove(reg, kc, &a), WSS_ERR_NOT_FOUND);
    assert_int_equal(registry_remove(reg, kb, &b), 0);
    assert_int_equal(registry_count(reg), 0);
    registry_free(reg);
}

static void replace_returns_old(void **state)
{
    struct registry *reg = registry_new();
    struct session a = {1}, b = {2};
    uint8_t k[REGISTRY_KEY_BYTES];
    struct session *replaced = NULL;
    uint64_t at = 0;

    make_key(k, 7);
    assert_int_equal(registry_add(reg, k, &a, 100, &replaced), 0);
    assert_null(replaced);
    assert_int_equal(registry_add(reg, k, &b, 200, &replaced), 0);
    assert_ptr_equal(replaced, &a);
    assert_ptr_equal(registry_find(reg, k, &at), &b);
    assert_int_equal(at, 200);
    assert_int_equal(registry_count(reg), 1);

    /* Re-adding the current holder only refreshes the time. */
    replaced = &a;
    assert_int_equal(registry_add(reg, k, &b, 300, &replaced), 0);
    assert_null(replaced);
    assert_ptr_equal(registry_find(reg, k, &at), &b);
    assert_int_equal(at, 300);
    assert_int_equal(registry_count(reg), 1);
    registry_free(reg);
}

static void remove_by_stale_conn_keeps_entry(void **state)
{
    struct registry *reg = registry_new();
    struct session old = {1}, cur = {2};
    uint8_t k[REGISTRY_KEY_BYTES];
    struct session *replaced = NULL;
    uint64_t at = 0;

    make_key(k, 9);
    assert_int_equal(registry_add(reg, k, &old, 10, NULL), 0);
    assert_int_equal(registry_add(reg, k, &cur, 20, &replaced), 0);
    assert_ptr_equal(replaced, &old);

    /* The superseded connection closes late: the successor must stay. */
    assert_int_equal(registry_remove(reg, k, &old), WSS_ERR_NOT_FOUND);
    assert_ptr_equal(registry_find(reg, k, &at), &cur);
    assert_int_equal(at, 20);
    assert_int_equal(registry_count(reg), 1);
    assert_int_equal(registry_remove(reg, k, NULL), WSS_ERR_NOT_FOUND);
    assert_int_equal(registry_count(reg), 1);

    assert_int_equal(registry_remove(reg, k, &cur), 0);
    assert_null(registry_find(reg, k, NULL));
    assert_int_equal(registry_count(reg), 0);
    registry_free(reg);
}

static void connected_at_returned(void **state)
{
    struct registry *reg = registry_new();
    struct session a = {1}, b = {2};
    uint8_t ka[REGISTRY_KEY_BYTES], kb[REGISTRY_KEY_BYTES];
    uint64_t at = 12345;

    make_key(ka, 1);
    make_key(kb, 2);
    assert_int_equal(registry_add(reg, ka, &a, UINT64_C(1700000000123), NULL), 0);
    assert_int_equal(registry_add(reg, kb, &b, UINT64_C(1700000000999), NULL), 0);
    assert_ptr_equal(registry_find(reg, ka, &at), &a);
    assert_int_equal(at, UINT64_C(1700000000123));
    assert_ptr_equal(registry_find(reg, kb, &at), &b);
    assert_int_equal(at, UINT64_C(1700000000999));

    /* A miss leaves the output untouched. */
    at = 42;
    registry_remove(reg, ka, &a);
    assert_null(registry_find(reg, ka, &at));
    assert_int_equal(at, 42);
    registry_free(reg);
}

static void count_tracks_operations(void **state)
{
    struct registry *reg = registry_new();
    struct session c[10];
    uint8_t k[REGISTRY_KEY_BYTES];

    assert_int_equal(registry_count(reg), 0);
    for (uint32_t i = 0; i < 10; i++) {
        make_key(k, i);
        registry_add(reg, k, &c[i], i, NULL);
        assert_int_equal(registry_count(reg), i + 1);
    }
    /* Replacing does not change the count. */
    make_key(k, 3);
    registry_add(reg, k, &c[0], 99, NULL);
    assert_int_equal(registry_count(reg), 10);
    /* A refused removal does not either. */
    assert_int_equal(registry_remove(reg, k, &c[3]), WSS_ERR_NOT_FOUND);
    assert_int_equal(registry_count(reg), 10);
    for (uint32_t i = 0; i < 10; i++) {
        make_key(k, i);
        assert_int_equal(registry_remove(reg, k, i == 3 ? &c[0] : &c[i]), 0);
        assert_int_equal(registry_count(reg), 9 - i);
    }
    registry_free(reg);
}

/* Per foreach test: how often each stand-in connection was visited. */
struct visits {
    int seen[16];
    size_t calls;
    struct session *base;
};

static void visit(struct session *s, void *arg)
{
    struct visits *v = arg;
    size_t i = (size_t)(s - v->base);

    assert_true(i < 16);
    v->seen[i]++;
    v->calls++;
}

static void foreach_visits_each_once(void **state)
{
    struct registry *reg = registry_new();
    struct session c[16];
    struct visits v = {.base = c};
    uint8_t k[REGISTRY_KEY_BYTES];

    registry_foreach(reg, visit, &v);
    assert_int_equal(v.calls, 0);
    for (uint32_t i = 0; i < 16; i++) {
        make_key(k, i);
        registry_add(reg, k, &c[i], i, NULL);
    }
    make_key(k, 5);
    registry_remove(reg, k, &c[5]);

    registry_foreach(reg, visit, &v);
    assert_int_equal(v.calls, 15);
    for (int i = 0; i < 16; i++)
        assert_int_equal(v.seen[i], i == 5 ? 0 : 1);
    registry_free(reg);
}

static void many_keys(void **state)
{
    struct registry *reg = registry_new();
    struct session *c = xcalloc(MANY_KEYS, sizeof(*c));
    uint8_t k[REGISTRY_KEY_BYTES];
    uint64_t at;

    for (uint32_t i = 0; i < MANY_KEYS; i++) {
        struct session *replaced = &c[0];

        make_key(k, i);
        assert_int_equal(registry_add(reg, k, &c[i], 1000 + i, &replaced), 0);
        assert_null(replaced);
    }
    assert_int_equal(registry_count(reg), MANY_KEYS);
    for (uint32_t i = 0; i < MANY_KEYS; i++) {
        make_key(k, i);
        assert_ptr_equal(registry_find(reg, k, &at), &c[i]);
        assert_int_equal(at, 1000 + i);
    }
    /* Keys that were never added are not found. */
    for (uint32_t i = MANY_KEYS; i < MANY_KEYS + 1000; i++) {
        make_key(k, i);
        assert_null(registry_find(reg, k, NULL));
    }
    /* Remove every other key; the rest stay reachable. */
    for (uint32_t i = 0; i < MANY_KEYS; i += 2) {
        make_key(k, i);
        assert_int_equal(registry_remove(reg, k, &c[i]), 0);
    }
    assert_int_equal(registry_count(reg), MANY_KEYS / 2);
    for (uint32_t i = 0; i < MANY_KEYS; i++) {
        make_key(k, i);
        if (i % 2)
            assert_ptr_equal(registry_find(reg, k, NULL), &c[i]);
        else
            assert_null(registry_find(reg, k, NULL));
    }
    /* Free with entries left: the registry frees only its own index entries. */
    registry_free(reg);
    free(c);
}

static void free_null_is_noop(void **state)
{
    registry_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_find_remove),
        cmocka_unit_test(replace_returns_old),
        cmocka_unit_test(remove_by_stale_conn_keeps_entry),
        cmocka_unit_test(connected_at_returned),
        cmocka_unit_test(count_tracks_operations),
        cmocka_unit_test(foreach_visits_each_once),
        cmocka_unit_test(many_keys),
        cmocka_unit_test(free_null_is_noop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
