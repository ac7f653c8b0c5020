/*
 * util: request and session ids are lowercase RFC 4122 version 4 UUIDs,
 * fresh every time, including across the refills of the random pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"
#include "util.h"

#define IDS 1000 /* many pool refills (16 ids each) */

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_uuid_v4_format(void **state)
{
    char id[37];

    (void)state;
    for (int i = 0; i < IDS; i++) {
        memset(id, 'x', sizeof id);
        util_uuid(id);
        assert_int_equal(strlen(id), 36);
        assert_true(wire_is_request_id(id, strlen(id)));
        assert_int_equal(id[14], '4');           /* version */
        assert_non_null(strchr("89ab", id[19])); /* variant */
    }
}

static void test_uuid_unique(void **state)
{
    char(*ids)[37] = calloc(IDS, sizeof *ids);

    (void)state;
    assert_non_null(ids);
    for (int i = 0; i < IDS; i++)
        util_uuid(ids[i]);
    qsort(ids, IDS, sizeof *ids, cmp_id);
    for (int i = 1; i < IDS; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

/* The random part is not stuck: every hex digit position but the fixed ones varies. */
static void test_uuid_bits_vary(void **state)
{
    char first[37], id[37];
    int varied[36] = {0};

    (void)state;
    util_uuid(first);
    for (int i = 0; i < 64; i++) {
        util_uuid(id);
        for (int k = 0; k < 36; k++)
            varied[k] |= id[k] != first[k];
    }
    for (int k = 0; k < 36; k++) {
        if (k == 8 || k == 13 || k == 14 || k == 18 || k == 23)
            assert_int_equal(varied[k], 0); /* dashes and the version digit */
        else
            assert_int_equal(varied[k], 1);
    }
}

static void test_label_valid(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"Pay 12,50 \xe2\x82\xac to ACME #7", 24, true},
        {"\xf0\x9f\x8d\x95 pizza", 10, true},
        {"\xc2\xa0", 2, true},   /* U+00A0: printable */
        {"tab\there", 8, false}, /* C0 controls */
        {"nl\n", 3, false},
        {"nul\0x", 5, false},
        {"del\x7f", 4, false},
        {"\xc2\x85", 2, false},         /* U+0085: a C1 control */
        {"\xc3\x28", 2, false},         /* a bad continuation */
        {"\xc0\xaf", 2, false},         /* an overlong '/' */
        {"\xed\xa0\x80", 3, false},     /* a surrogate */
        {"\xf4\x90\x80\x80", 4, false}, /* past U+10FFFF */
        {"\xe2\x82", 2, false},         /* cut short */
    };
    char big[UTIL_LABEL_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(util_label_valid(cases[i].s, cases[i].len), cases[i].ok);
    memset(big, 'a', sizeof big);
    assert_true(util_label_valid(big, UTIL_LABEL_MAX));
    assert_false(util_label_valid(big, UTIL_LABEL_MAX + 1));
}

/* util_reserve doubles from the first size, never past the maximum, and keeps
 * a buffer that is large enough. */
static void test_reserve(void **state)
{
    char *buf = NULL, *kept;
    size_t cap = 0;

    (void)state;
    util_reserve(&buf, &cap, 10, 4, 1000);
    assert_non_null(buf);
    assert_int_equal(cap, 16);
    memset(buf, 'x', 10);
    kept = buf;
    util_reserve(&buf, &cap, 16, 4, 1000);
    assert_ptr_equal(buf, kept);
    assert_int_equal(cap, 16);
    util_reserve(&buf, &cap, 17, 4, 1000);
    assert_int_equal(cap, 32);
    assert_memory_equal(buf, "xxxxxxxxxx", 10);
    util_reserve(&buf, &cap, 600, 4, 1000);
    assert_int_equal(cap, 1000);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_v4_format), cmocka_unit_test(test_uuid_unique),
        cmocka_unit_test(test_uuid_bits_vary), cmocka_unit_test(test_label_valid),
        cmocka_unit_test(test_reserve),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
