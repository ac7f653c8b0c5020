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
        assert_int_equal(id[14], '4');               /* version */
        assert_non_null(strchr("89ab", id[19]));     /* variant */
    }
}

static void test_uuid_unique(void **state)
{
    char (*ids)[37] = calloc(IDS, sizeof *ids);

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_v4_format),
        cmocka_unit_test(test_uuid_unique),
        cmocka_unit_test(test_uuid_bits_vary),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
