/*
 * Unit tests for the pending table: id lookup, per-key lists, the deadline
 * heap and ownership of entries. The clock is a plain number that the tests
 * advance, and a random workload is checked against a simple reference model.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pending.h"
#include "util.h"

#include <wssignd/errors.h>

#define KEY_BYTES WSS_PUBLIC_KEY_BYTES

/* ---- helpers ---- */

/* Per test: a seeded generator (splitmix64), so every run is the same. */
struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* Key number k: distinct for every k < 256 and differs from its neighbours in every byte. */
static void make_key(uint8_t key[KEY_BYTES], unsigned k)
{
    for (int i = 0; i < KEY_BYTES; i++)
        key[i] = (uint8_t)(k * 131 + i * 7);
}

static void make_id(char id[WSS_REQUEST_ID_BYTES], uint64_t n)
{
    snprintf(id, WSS_REQUEST_ID_BYTES, "req-%012" PRIx64, n);
}

/* A request with id number n for key number k; conn_id carries n so tests can
 * tell entries apart without parsing ids. */
static struct pending_req *mk(uint64_t n, unsigned k, uint64_t deadline)
{
    char id[WSS_REQUEST_ID_BYTES];
    uint8_t key[KEY_BYTES];
    uint8_t msg[8];
    struct pending_req *r;

    make_id(id, n);
    make_key(key, k);
    memcpy(msg, &n, sizeof(msg));
    r = pending_req_new(id, key, msg, sizeof(msg), NULL, deadline > 10 ? deadline - 10 : 0,
                        deadline);
    r->conn_id = n;
    return r;
}

static void insert_ok(struct pending *p, uint64_t n, unsigned k, uint64_t deadline)
{
    assert_int_equal(pending_insert_take(p, mk(n, k, deadline)), 0);
}

static size_t count_key(const struct pending *p, unsigned k)
{
    uint8_t key[KEY_BYTES];

    make_key(key, k);
    return pending_count_key(p, key);
}

static struct pending_req *take_id(struct pending *p, uint64_t n)
{
    char id[WSS_REQUEST_ID_BYTES];

    make_id(id, n);
    return pending_take(p, id);
}

static struct pending_req *find_id(const struct pending *p, uint64_t n)
{
    char id[WSS_REQUEST_ID_BYTES];

    make_id(id, n);
    return pending_find(p, id);
}

/* Checks that the ->next list holds exactly the entries numbered want[0..n). */
static void expect_list(const struct pending_req *list, const uint64_t *want, size_t n)
{
    size_t i = 0;

    for (; list; list = list->next, i++) {
        assert_true(i < n);
        assert_int_equal(list->conn_id, want[i]);
    }
    assert_int_equal(i, n);
}

/* Checks the per-key list of key k, forwards and backwards. */
static void expect_key_list(const struct pending *p, unsigned k, const uint64_t *want, size_t n)
{
    uint8_t key[KEY_BYTES];
    const struct pending_req *r, *prev = NULL;
    size_t i = 0;

    make_key(key, k);
    for (r = pending_first_for_key(p, key); r; prev = r, r = r->key_next, i++) {
        assert_true(i < n);
        assert_int_equal(r->conn_id, want[i]);
        assert_ptr_equal(r->key_prev, prev);
        assert_memory_equal(r->key, key, KEY_BYTES);
    }
    assert_int_equal(i, n);
    assert_int_equal(pending_count_key(p, key), n);
}

static void free_list(struct pending_req *list)
{
    struct pending_req *next;

    for (; list; list = next) {
        next = list->next;
        pending_req_free(list);
    }
}

static size_t list_len(const struct pending_req *list)
{
    size_t n = 0;

    for (; list; list = list->next)
        n++;
    return n;
}

/* ---- basic operations ---- */

static void insert_find_take(void **state)
{
    struct pending *p = pending_new();
    uint8_t key[KEY_BYTES];
    uint8_t msg[] = {1, 2, 3, 4, 5};
    struct pending_req *r, *got;

    make_key(key, 3);
    r = pending_req_new("6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e2f", key, msg, sizeof(msg), NULL, 100,
                        5100);
    assert_string_equal(r->id, "6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e2f");
    assert_memory_equal(r->key, key, KEY_BYTES);
    assert_int_equal(r->message_len, sizeof(msg));
    assert_ptr_not_equal(r->message, msg);
    assert_memory_equal(r->message, msg, sizeof(msg));
    assert_int_equal(r->created_ms, 100);
    assert_int_equal(r->deadline_ms, 5100);
    /* The entry holds copies: changing the caller's buffers changes nothing. */
    msg[0] = 99;
    key[0] ^= 0xff;
    assert_int_equal(r->message[0], 1);

    assert_int_equal(pending_count(p), 0);
    assert_int_equal(pending_next_deadline(p), 0);
    assert_int_equal(pending_insert_take(p, r), 0);
    insert_ok(p, 1, 3, 7000);
    insert_ok(p, 2, 4, 6000);
    assert_int_equal(pending_count(p), 3);
    assert_int_equal(pending_next_deadline(p), 5100);

    got = pending_find(p, "6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e2f");
    assert_ptr_equal(got, r);
    assert_null(pending_find(p, "6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e20"));
    assert_null(pending_find(p, ""));
    assert_int_equal(find_id(p, 1)->deadline_ms, 7000);
    assert_int_equal(find_id(p, 2)->deadline_ms, 6000);

    got = pending_take(p, "6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e2f");
    assert_ptr_equal(got, r);
    assert_null(got->next);
    assert_null(got->key_next);
    assert_null(got->key_prev);
    assert_null(pending_find(p, "6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e2f"));
    assert_null(pending_take(p, "6f1c2a3e-0d4b-4c5a-9e8f-7a6b5c4d3e2f"));
    assert_int_equal(pending_count(p), 2);
    assert_int_equal(count_key(p, 3), 1);
    assert_int_equal(pending_next_deadline(p), 6000);
    pending_req_free(got);

    /* An id can be used again once its entry is gone. */
    got = take_id(p, 2);
    assert_non_null(got);
    pending_req_free(got);
    insert_ok(p, 2, 5, 8000);
    assert_int_equal(count_key(p, 4), 0);
    assert_int_equal(count_key(p, 5), 1);
    assert_int_equal(pending_next_deadline(p), 7000);
    pending_free(p);
}

static void duplicate_id_rejected(void **state)
{
    struct pending *p = pending_new();
    struct pending_req *dup;

    insert_ok(p, 1, 1, 1000);
    dup = mk(1, 2, 10);
    /* The rejected entry is freed by the table (valgrind proves no leak). */
    assert_int_equal(pending_insert_take(p, dup), WSS_ERR_EXISTS);
    assert_int_equal(pending_count(p), 1);
    assert_int_equal(count_key(p, 1), 1);
    assert_int_equal(count_key(p, 2), 0);
    assert_int_equal(pending_next_deadline(p), 1000);
    assert_int_equal(find_id(p, 1)->deadline_ms, 1000);
    /* The original entry is still the one in the table. */
    assert_null(pending_expire(p, 999));
    pending_free(p);
}

static void req_new_edge_cases(void **state)
{
    uint8_t key[KEY_BYTES] = {0};
    char long_id[100];
    struct pending_req *r;

    r = pending_req_new("x", key, NULL, 0, NULL, 1, 2);
    assert_int_equal(r->message_len, 0);
    assert_string_equal(r->id, "x");
    assert_int_equal(r->conn_id, 0);
    assert_null(r->cb);
    assert_null(r->user);
    assert_string_equal(r->requester, "");
    pending_req_free(r);

    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    r = pending_req_new(long_id, key, (const uint8_t *)"m", 1, NULL, 1, 2);
    assert_int_equal(strlen(r->id), WSS_REQUEST_ID_BYTES - 1);
    pending_req_free(r);

    pending_req_free(NULL);
    pending_free(NULL);
}

/* Message and label live in the entry's one allocation; "" is no label. */
static void req_new_label(void **state)
{
    uint8_t key[KEY_BYTES] = {0};
    char label[] = "Pay 12.50 EUR to ACME";
    uint8_t msg[] = {9, 8, 7};
    struct pending_req *r;

    r = pending_req_new("l", key, msg, sizeof(msg), label, 1, 2);
    assert_non_null(r->label);
    assert_string_equal(r->label, "Pay 12.50 EUR to ACME");
    assert_ptr_not_equal(r->label, label);
    assert_memory_equal(r->message, msg, sizeof(msg));
    /* Copies: the caller's buffers may change or go. */
    label[0] = 'X';
    msg[0] = 0;
    assert_string_equal(r->label, "Pay 12.50 EUR to ACME");
    assert_int_equal(r->message[0], 9);
    pending_req_free(r);

    r = pending_req_new("e", key, msg, sizeof(msg), "", 1, 2);
    assert_null(r->label);
    pending_req_free(r);
    r = pending_req_new("n", key, NULL, 0, "only a label", 1, 2);
    assert_int_equal(r->message_len, 0);
    assert_string_equal(r->label, "only a label");
    pending_req_free(r);
}

/* A key whose last entry leaves keeps its node for the next key, up to a bound. */
static void key_nodes_reused_with_bound(void **state)
{
    struct pending *p = pending_new();
    uint64_t two[] = {2}, many[] = {3, 4}, last[] = {405};
    uint8_t key1[KEY_BYTES];
    struct pending_req *list;

    assert_int_equal(pending_spare_keys(p), 0);
    insert_ok(p, 1, 1, 100);
    pending_req_free(take_id(p, 1));
    assert_int_equal(pending_spare_keys(p), 1);
    expect_key_list(p, 1, NULL, 0);
    /* Another key takes the spare node, and starts empty. */
    insert_ok(p, 2, 2, 100);
    assert_int_equal(pending_spare_keys(p), 0);
    expect_key_list(p, 2, two, 1);
    expect_key_list(p, 1, NULL, 0);
    insert_ok(p, 3, 1, 100);
    insert_ok(p, 4, 1, 100);
    expect_key_list(p, 1, many, 2);
    make_key(key1, 1);
    list = pending_take_key(p, key1);
    assert_int_equal(list_len(list), 2);
    free_list(list);
    assert_int_equal(pending_spare_keys(p), 1);
    pending_req_free(take_id(p, 2));
    assert_int_equal(pending_spare_keys(p), 2);

    /* 200 keys at once: 64 nodes are kept when they all leave, the rest freed. */
    for (uint64_t n = 0; n < 200; n++)
        insert_ok(p, 100 + n, (unsigned)(100 + n), 100 + n);
    free_list(pending_expire(p, 1000));
    assert_int_equal(pending_count(p), 0);
    assert_int_equal(pending_spare_keys(p), 64);
    /* The spares serve new keys; ASan and valgrind check that pending_free frees them. */
    for (uint64_t n = 0; n < 10; n++)
        insert_ok(p, 400 + n, (unsigned)(400 + n), 5000);
    assert_int_equal(pending_spare_keys(p), 54);
    expect_key_list(p, 405, last, 1);
    pending_free(p);
}

/* A table that empties and fills again, over and over (its hashes' tables are reused). */
static void empty_and_refill(void **state)
{
    struct pending *p = pending_new();

    for (uint64_t round = 0; round < 1000; round++) {
        uint64_t base = round * 10, want[2] = {base + 1, base + 2};
        unsigned k = (unsigned)(round % 7);

        insert_ok(p, base + 1, k, 100);
        insert_ok(p, base + 2, k, 50);
        insert_ok(p, base + 3, k + 7, 75);
        assert_int_equal(pending_count(p), 3);
        expect_key_list(p, k, want, 2);
        assert_non_null(find_id(p, base + 3));
        pending_req_free(take_id(p, base + 1));
        assert_null(find_id(p, base + 1));
        assert_int_equal(pending_next_deadline(p), 50);
        if (round % 2) {
            free_list(pending_take_all(p));
        } else {
            pending_req_free(take_id(p, base + 2));
            pending_req_free(take_id(p, base + 3));
        }
        assert_int_equal(pending_count(p), 0);
        assert_null(find_id(p, base + 2));
        assert_int_equal(pending_count_key(p, (const uint8_t[KEY_BYTES]){0}), 0);
    }
    pending_free(p);
}

static void key_list_order_and_unlink(void **state)
{
    struct pending *p = pending_new();
    const uint64_t all[] = {10, 11, 12, 13, 14};
    const uint64_t no_mid[] = {10, 11, 13, 14};
    const uint64_t no_ends[] = {11, 13};
    uint8_t key[KEY_BYTES];

    for (size_t i = 0; i < 5; i++) {
        insert_ok(p, all[i], 7, 1000 - i); /* later entries have earlier deadlines */
        insert_ok(p, 100 + i, 8, 500);
    }
    expect_key_list(p, 7, all, 5);
    pending_req_free(take_id(p, 12));
    expect_key_list(p, 7, no_mid, 4);
    pending_req_free(take_id(p, 10));
    pending_req_free(take_id(p, 14));
    expect_key_list(p, 7, no_ends, 2);
    /* A new entry goes after the new tail. */
    insert_ok(p, 15, 7, 1);
    expect_key_list(p, 7, (const uint64_t[]){11, 13, 15}, 3);
    pending_req_free(take_id(p, 15));
    pending_req_free(take_id(p, 11));
    pending_req_free(take_id(p, 13));
    make_key(key, 7);
    assert_null(pending_first_for_key(p, key));
    assert_int_equal(pending_count_key(p, key), 0);
    assert_int_equal(count_key(p, 8), 5);
    assert_int_equal(pending_count(p), 5);

    /* The key's node was freed with its last entry; a new entry starts a fresh list. */
    insert_ok(p, 20, 7, 1);
    expect_key_list(p, 7, (const uint64_t[]){20}, 1);
    pending_free(p);
}

static void take_key_only_that_key(void **state)
{
    struct pending *p = pending_new();
    uint8_t key[KEY_BYTES];
    struct pending_req *list;
    const uint64_t k1[] = {0, 3, 6, 9};
    const uint64_t k2[] = {1, 4, 7, 10};
    const uint64_t k3[] = {2, 5, 8, 11};
    const uint64_t rest_by_deadline[] = {11, 9, 8, 6, 5, 3, 2, 0};

    /* Interleave three keys; deadlines fall as ids rise so the heap order
     * differs from the insertion order. */
    for (uint64_t n = 0; n < 12; n++)
        insert_ok(p, n, 1 + n % 3, 1000 - n);
    assert_int_equal(pending_next_deadline(p), 989);

    make_key(key, 2);
    list = pending_take_key(p, key);
    expect_list(list, k2, 4);
    for (const struct pending_req *r = list; r; r = r->next) {
        assert_null(r->key_next);
        assert_null(r->key_prev);
        assert_null(find_id(p, r->conn_id));
    }
    free_list(list);

    assert_int_equal(pending_count(p), 8);
    assert_int_equal(count_key(p, 2), 0);
    assert_null(pending_first_for_key(p, key));
    assert_null(pending_take_key(p, key));
    expect_key_list(p, 1, k1, 4);
    expect_key_list(p, 3, k3, 4);
    for (uint64_t n = 0; n < 12; n++) {
        if (n % 3 != 1)
            assert_non_null(find_id(p, n));
    }

    /* The heap lost the taken entries too: only the others expire. */
    assert_int_equal(pending_next_deadline(p), 989);
    list = pending_expire(p, 1000);
    expect_list(list, rest_by_deadline, 8);
    free_list(list);
    assert_int_equal(pending_count(p), 0);
    pending_free(p);
}

static void expire_controlled_clock(void **state)
{
    struct pending *p = pending_new();
    struct pending_req *list;
    const uint64_t first[] = {1, 3};
    const uint64_t ties[] = {0, 2, 4, 6};
    const uint64_t last[] = {5, 7};

    insert_ok(p, 0, 1, 100);
    insert_ok(p, 1, 2, 50);
    insert_ok(p, 2, 1, 100);
    insert_ok(p, 3, 3, 75);
    insert_ok(p, 4, 2, 100);
    insert_ok(p, 5, 1, 200);
    insert_ok(p, 6, 3, 100);
    insert_ok(p, 7, 1, 200);

    assert_null(pending_expire(p, 0));
    assert_null(pending_expire(p, 49));
    assert_int_equal(pending_count(p), 8);
    assert_int_equal(pending_next_deadline(p), 50);

    /* A deadline equal to now is due. */
    list = pending_expire(p, 75);
    expect_list(list, first, 2);
    free_list(list);
    assert_int_equal(pending_count(p), 6);
    assert_int_equal(count_key(p, 2), 1);
    assert_int_equal(count_key(p, 3), 1);
    assert_int_equal(pending_next_deadline(p), 100);

    assert_null(pending_expire(p, 99));

    /* Equal deadlines come out in insertion order. */
    list = pending_expire(p, 199);
    expect_list(list, ties, 4);
    free_list(list);
    assert_int_equal(pending_count(p), 2);
    assert_int_equal(count_key(p, 1), 2);
    assert_int_equal(count_key(p, 2), 0);
    assert_int_equal(count_key(p, 3), 0);
    assert_int_equal(pending_next_deadline(p), 200);

    list = pending_expire(p, UINT64_MAX);
    expect_list(list, last, 2);
    free_list(list);
    assert_int_equal(pending_count(p), 0);
    assert_int_equal(count_key(p, 1), 0);
    assert_int_equal(pending_next_deadline(p), 0);
    assert_null(pending_expire(p, UINT64_MAX));
    pending_free(p);
}

static void next_deadline_after_middle_takes(void **state)
{
    enum { N = 2000 };
    struct pending *p = pending_new();
    struct rng rng = {42};
    uint64_t deadline[N];
    bool alive[N];
    size_t left = N;

    for (uint64_t n = 0; n < N; n++) {
        deadline[n] = 1 + rng_below(&rng, 500); /* plenty of ties */
        alive[n] = true;
        insert_ok(p, n, (unsigned)(n % 16), deadline[n]);
    }
    while (left > 0) {
        uint64_t min = UINT64_MAX, n;
        struct pending_req *r;

        for (uint64_t i = 0; i < N; i++) {
            if (alive[i] && deadline[i] < min)
                min = deadline[i];
        }
        assert_int_equal(pending_next_deadline(p), min);

        /* Mostly take from the middle of the heap, sometimes its root. */
        if (rng_below(&rng, 8) == 0) {
            r = pending_expire(p, min);
            assert_non_null(r);
            n = r->conn_id;
            /* Put back everything after the first; only the root leaves. */
            while (r->next) {
                struct pending_req *again = r->next;

                r->next = again->next;
                again->next = NULL;
                assert_int_equal(again->deadline_ms, min);
                assert_int_equal(pending_insert_take(p, again), 0);
            }
        } else {
            do
                n = rng_below(&rng, N);
            while (!alive[n]);
            r = take_id(p, n);
            assert_non_null(r);
        }
        assert_int_equal(r->conn_id, n);
        assert_int_equal(r->deadline_ms, deadline[n]);
        pending_req_free(r);
        alive[n] = false;
        left--;
        assert_int_equal(pending_count(p), left);
    }
    assert_int_equal(pending_next_deadline(p), 0);
    pending_free(p);
}

static void counts_through_operations(void **state)
{
    struct pending *p = pending_new();
    struct pending_req *list;
    uint8_t key[KEY_BYTES];

    assert_int_equal(pending_count(p), 0);
    assert_int_equal(count_key(p, 1), 0);
    for (uint64_t n = 0; n < 9; n++) {
        insert_ok(p, n, (unsigned)(n % 3), 100 * (n + 1));
        assert_int_equal(pending_count(p), n + 1);
        assert_int_equal(count_key(p, (unsigned)(n % 3)), n / 3 + 1);
    }
    /* A rejected duplicate changes no count. */
    assert_int_equal(pending_insert_take(p, mk(4, 2, 1)), WSS_ERR_EXISTS);
    assert_int_equal(pending_count(p), 9);
    assert_int_equal(count_key(p, 2), 3);
    /* Nor does a miss. */
    assert_null(take_id(p, 99));
    make_key(key, 9);
    assert_null(pending_take_key(p, key));
    assert_int_equal(pending_count(p), 9);

    pending_req_free(take_id(p, 4)); /* key 1 */
    assert_int_equal(pending_count(p), 8);
    assert_int_equal(count_key(p, 0), 3);
    assert_int_equal(count_key(p, 1), 2);
    assert_int_equal(count_key(p, 2), 3);

    list = pending_expire(p, 300); /* ids 0, 1, 2 */
    assert_int_equal(list_len(list), 3);
    free_list(list);
    assert_int_equal(pending_count(p), 5);
    assert_int_equal(count_key(p, 0), 2);
    assert_int_equal(count_key(p, 1), 1);
    assert_int_equal(count_key(p, 2), 2);

    make_key(key, 0);
    list = pending_take_key(p, key); /* ids 3, 6 */
    assert_int_equal(list_len(list), 2);
    free_list(list);
    assert_int_equal(pending_count(p), 3);
    assert_int_equal(count_key(p, 0), 0);
    assert_int_equal(count_key(p, 1), 1);
    assert_int_equal(count_key(p, 2), 2);

    list = pending_take_all(p);
    assert_int_equal(list_len(list), 3);
    free_list(list);
    assert_int_equal(pending_count(p), 0);
    for (unsigned k = 0; k < 3; k++)
        assert_int_equal(count_key(p, k), 0);
    pending_free(p);
}

static void take_all_empties_table(void **state)
{
    enum { N = 1000 };
    struct pending *p = pending_new();
    struct rng rng = {7};
    struct pending_req *list;
    uint64_t want[N];
    size_t n_want = 0;
    uint8_t key[KEY_BYTES];

    assert_null(pending_take_all(p));
    for (uint64_t n = 0; n < N; n++)
        insert_ok(p, n, (unsigned)(n % 10), 1 + rng_below(&rng, 100000));
    /* Holes in the middle: the rest still come back, oldest first. */
    for (uint64_t n = 0; n < N; n++) {
        if (n % 7 == 3)
            pending_req_free(take_id(p, n));
        else
            want[n_want++] = n;
    }

    list = pending_take_all(p);
    expect_list(list, want, n_want);
    for (const struct pending_req *r = list; r; r = r->next) {
        assert_null(r->key_next);
        assert_null(r->key_prev);
    }
    free_list(list);
    assert_int_equal(pending_count(p), 0);
    assert_int_equal(pending_next_deadline(p), 0);
    assert_null(pending_expire(p, UINT64_MAX));
    for (unsigned k = 0; k < 10; k++) {
        make_key(key, k);
        assert_null(pending_first_for_key(p, key));
        assert_int_equal(pending_count_key(p, key), 0);
    }
    assert_null(find_id(p, 0));
    assert_null(pending_take_all(p));

    /* The table works normally afterwards, with the same ids. */
    insert_ok(p, 0, 1, 30);
    insert_ok(p, 1, 1, 20);
    assert_int_equal(pending_count(p), 2);
    assert_int_equal(count_key(p, 1), 2);
    assert_int_equal(pending_next_deadline(p), 20);
    list = pending_expire(p, 30);
    expect_list(list, (const uint64_t[]){1, 0}, 2);
    free_list(list);
    pending_free(p);
}

static void free_with_entries_left(void **state)
{
    struct pending *p = pending_new();
    uint8_t key[KEY_BYTES];
    uint8_t big[4096];

    memset(big, 0x5a, sizeof(big));
    make_key(key, 200);
    for (uint64_t n = 0; n < 500; n++)
        insert_ok(p, n, (unsigned)(n % 13), 1000 + n % 17);
    assert_int_equal(
        pending_insert_take(p, pending_req_new("big", key, big, sizeof(big), NULL, 0, 5)), 0);
    pending_req_free(take_id(p, 250));
    /* Valgrind checks that the entries, their messages, the per-key nodes
     * and the heap are all released here. */
    pending_free(p);
}

/* ---- scale: 100 000 entries expired in order ---- */

static void expire_100k_in_order(void **state)
{
    enum { N = 100000, KEYS = 256, SPAN = 50000 };
    struct pending *p = pending_new();
    struct rng rng = {20240601};
    uint64_t *deadline = xcalloc(N, sizeof(*deadline));
    bool *seen = xcalloc(N, sizeof(*seen));
    size_t kcount[KEYS] = {0};
    uint64_t now = 0, prev_now;
    size_t total = 0, batches = 0;

    for (uint64_t n = 0; n < N; n++) {
        /* SPAN < N forces many equal deadlines, exercising the FIFO rule. */
        deadline[n] = 1 + rng_below(&rng, SPAN);
        insert_ok(p, n, (unsigned)(n % KEYS), deadline[n]);
        kcount[n % KEYS]++;
    }
    assert_int_equal(pending_count(p), N);

    while (total < N) {
        struct pending_req *list, *r, *prev = NULL;

        prev_now = now;
        now += 1 + rng_below(&rng, 997);
        list = pending_expire(p, now);
        for (r = list; r; prev = r, r = r->next) {
            uint64_t n = r->conn_id;

            assert_true(n < N);
            assert_false(seen[n]);
            seen[n] = true;
            assert_int_equal(r->deadline_ms, deadline[n]);
            /* Due now, and was not due at the previous call (nothing early, nothing missed). */
            assert_true(r->deadline_ms <= now);
            assert_true(r->deadline_ms > prev_now);
            /* Sorted by deadline, then insertion order. */
            if (prev) {
                assert_true(prev->deadline_ms <= r->deadline_ms);
                if (prev->deadline_ms == r->deadline_ms)
                    assert_true(prev->conn_id < r->conn_id);
            }
            kcount[n % KEYS]--;
            total++;
        }
        free_list(list);
        batches++;
        assert_int_equal(pending_count(p), N - total);
        assert_true(pending_next_deadline(p) == 0 || pending_next_deadline(p) > now);
        for (unsigned k = 0; k < KEYS; k++)
            assert_int_equal(count_key(p, k), kcount[k]);
    }
    assert_int_equal(total, N);
    assert_true(batches > 10);
    assert_int_equal(pending_next_deadline(p), 0);
    assert_null(pending_expire(p, UINT64_MAX));
    for (uint64_t n = 0; n < N; n++)
        assert_true(seen[n]);
    free(deadline);
    free(seen);
    pending_free(p);
}

/* ---- random workload against a reference model ---- */

enum { MODEL_OPS = 200000, MODEL_KEYS = 48 };

/* Per model run: what the table should hold, kept the slow, obvious way. */
struct model {
    struct {
        uint64_t deadline, seq;
        unsigned k;
        bool alive;
        size_t pos; /* index in alive[] while alive */
    } * rec;
    size_t n_rec;
    size_t *alive; /* record numbers of the live entries, unordered */
    size_t n_alive;
    size_t kcount[MODEL_KEYS];
    uint64_t seq;
};

/* Per expected entry: sortable copy of a model record. */
struct expect {
    uint64_t a, b; /* sort fields */
    size_t rec;
};

static int cmp_expect(const void *x, const void *y)
{
    const struct expect *l = x, *r = y;

    if (l->a != r->a)
        return l->a < r->a ? -1 : 1;
    if (l->b != r->b)
        return l->b < r->b ? -1 : 1;
    return 0;
}

static void model_kill(struct model *m, size_t rec)
{
    size_t pos = m->rec[rec].pos;

    assert_true(m->rec[rec].alive);
    m->rec[rec].alive = false;
    m->alive[pos] = m->alive[--m->n_alive];
    m->rec[m->alive[pos]].pos = pos;
    m->kcount[m->rec[rec].k]--;
}

/* Collects live records that pass filter into exp (sorted); returns how many. */
static size_t model_select(const struct model *m, struct expect *exp, bool by_deadline,
                           uint64_t now, int key)
{
    size_t n = 0;

    for (size_t i = 0; i < m->n_alive; i++) {
        size_t rec = m->alive[i];

        if (by_deadline && m->rec[rec].deadline > now)
            continue;
        if (key >= 0 && m->rec[rec].k != (unsigned)key)
            continue;
        exp[n].a = by_deadline ? m->rec[rec].deadline : m->rec[rec].seq;
        exp[n].b = m->rec[rec].seq;
        exp[n].rec = rec;
        n++;
    }
    qsort(exp, n, sizeof(*exp), cmp_expect);
    return n;
}

/* Checks a list the table returned against exp, then frees it. */
static void check_and_free(struct model *m, struct pending_req *list, const struct expect *exp,
                           size_t n)
{
    size_t i = 0;
    struct pending_req *next;

    for (; list; list = next, i++) {
        next = list->next;
        assert_true(i < n);
        assert_int_equal(list->conn_id, exp[i].rec);
        assert_int_equal(list->deadline_ms, m->rec[exp[i].rec].deadline);
        model_kill(m, exp[i].rec);
        pending_req_free(list);
    }
    assert_int_equal(i, n);
}

static void random_workload_vs_model(void **state)
{
    struct pending *p = pending_new();
    struct rng rng = {0x5eed};
    struct model m = {0};
    struct expect *exp = xcalloc(MODEL_OPS, sizeof(*exp));
    uint64_t now = 1000;
    size_t max_alive = 0, expired = 0, taken = 0, taken_by_key = 0, dups = 0;
    uint8_t key[KEY_BYTES];

    m.rec = xcalloc(MODEL_OPS, sizeof(*m.rec));
    m.alive = xcalloc(MODEL_OPS, sizeof(*m.alive));

    for (size_t op = 0; op < MODEL_OPS; op++) {
        unsigned dice = (unsigned)rng_below(&rng, 100);
        int touched = -1;

        if (dice < 45) {
            /* Insert; a coarse grid of offsets makes equal deadlines common. */
            size_t rec = m.n_rec++;
            unsigned k = (unsigned)rng_below(&rng, MODEL_KEYS);
            uint64_t deadline = now + 100 * rng_below(&rng, 200);

            insert_ok(p, rec, k, deadline);
            m.rec[rec].deadline = deadline;
            m.rec[rec].seq = m.seq++;
            m.rec[rec].k = k;
            m.rec[rec].alive = true;
            m.rec[rec].pos = m.n_alive;
            m.alive[m.n_alive++] = rec;
            m.kcount[k]++;
            touched = (int)k;
        } else if (dice < 49) {
            /* Duplicate of a live id: refused, table unchanged. */
            if (m.n_alive > 0) {
                size_t rec = m.alive[rng_below(&rng, m.n_alive)];

                assert_int_equal(pending_insert_take(p, mk(rec, 0, 1)), WSS_ERR_EXISTS);
                assert_ptr_not_equal(find_id(p, rec), NULL);
                assert_int_equal(find_id(p, rec)->deadline_ms, m.rec[rec].deadline);
                dups++;
            }
        } else if (dice < 66) {
            /* Take by id: mostly live ids, sometimes ones already gone. */
            if (m.n_rec > 0) {
                size_t rec = (m.n_alive > 0 && rng_below(&rng, 4) != 0)
                                 ? m.alive[rng_below(&rng, m.n_alive)]
                                 : (size_t)rng_below(&rng, m.n_rec);
                struct pending_req *r = take_id(p, rec);

                if (m.rec[rec].alive) {
                    assert_non_null(r);
                    assert_int_equal(r->conn_id, rec);
                    assert_int_equal(r->deadline_ms, m.rec[rec].deadline);
                    assert_null(find_id(p, rec));
                    touched = (int)m.rec[rec].k;
                    model_kill(&m, rec);
                    pending_req_free(r);
                    taken++;
                } else {
                    assert_null(r);
                }
            }
        } else if (dice < 76) {
            /* Find: present exactly when the model says it is live. */
            if (m.n_rec > 0) {
                size_t rec = (size_t)rng_below(&rng, m.n_rec);
                struct pending_req *r = find_id(p, rec);

                if (m.rec[rec].alive) {
                    assert_non_null(r);
                    assert_int_equal(r->conn_id, rec);
                } else {
                    assert_null(r);
                }
            }
        } else if (dice < 90) {
            /* Advance the clock and expire. */
            size_t n;

            now += rng_below(&rng, 40);
            n = model_select(&m, exp, true, now, -1);
            check_and_free(&m, pending_expire(p, now), exp, n);
            expired += n;
            assert_true(pending_next_deadline(p) == 0 || pending_next_deadline(p) > now);
        } else if (dice < 91) {
            /* Take a key's entries: its list first, then the take. */
            unsigned k = (unsigned)rng_below(&rng, MODEL_KEYS);
            size_t n = model_select(&m, exp, false, 0, (int)k);
            const struct pending_req *r;
            size_t i = 0;

            make_key(key, k);
            for (r = pending_first_for_key(p, key); r; r = r->key_next, i++) {
                assert_true(i < n);
                assert_int_equal(r->conn_id, exp[i].rec);
            }
            assert_int_equal(i, n);
            check_and_free(&m, pending_take_key(p, key), exp, n);
            taken_by_key += n;
            touched = (int)k;
        } else {
            /* Walk one key's list without changing anything. */
            unsigned k = (unsigned)rng_below(&rng, MODEL_KEYS);
            size_t n = model_select(&m, exp, false, 0, (int)k);
            const struct pending_req *r, *prev = NULL;
            size_t i = 0;

            make_key(key, k);
            for (r = pending_first_for_key(p, key); r; prev = r, r = r->key_next, i++) {
                assert_true(i < n);
                assert_int_equal(r->conn_id, exp[i].rec);
                assert_ptr_equal(r->key_prev, prev);
            }
            assert_int_equal(i, n);
            touched = (int)k;
        }

        assert_int_equal(pending_count(p), m.n_alive);
        if (touched >= 0)
            assert_int_equal(count_key(p, (unsigned)touched), m.kcount[touched]);
        if (m.n_alive > max_alive)
            max_alive = m.n_alive;
        if (op % 64 == 0) {
            uint64_t min = 0;

            for (size_t i = 0; i < m.n_alive; i++) {
                uint64_t d = m.rec[m.alive[i]].deadline;

                if (i == 0 || d < min)
                    min = d;
            }
            assert_int_equal(pending_next_deadline(p), min);
            for (unsigned k = 0; k < MODEL_KEYS; k++)
                assert_int_equal(count_key(p, k), m.kcount[k]);
        }
    }

    /* Every path was exercised, at a size where the heap has depth. */
    assert_true(max_alive > 500);
    assert_true(expired > 10000);
    assert_true(taken > 10000);
    assert_true(taken_by_key > 1000);
    assert_true(dups > 1000);

    /* What is left comes back in insertion order. */
    check_and_free(&m, pending_take_all(p), exp, model_select(&m, exp, false, 0, -1));
    assert_int_equal(m.n_alive, 0);
    assert_int_equal(pending_count(p), 0);
    free(m.rec);
    free(m.alive);
    free(exp);
    pending_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(insert_find_take),
        cmocka_unit_test(duplicate_id_rejected),
        cmocka_unit_test(req_new_edge_cases),
        cmocka_unit_test(req_new_label),
        cmocka_unit_test(key_nodes_reused_with_bound),
        cmocka_unit_test(empty_and_refill),
        cmocka_unit_test(key_list_order_and_unlink),
        cmocka_unit_test(take_key_only_that_key),
        cmocka_unit_test(expire_controlled_clock),
        cmocka_unit_test(next_deadline_after_middle_takes),
        cmocka_unit_test(counts_through_operations),
        cmocka_unit_test(take_all_empties_table),
        cmocka_unit_test(free_with_entries_left),
        cmocka_unit_test(expire_100k_in_order),
        cmocka_unit_test(random_workload_vs_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
