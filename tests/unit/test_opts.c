/*
 * Unit tests for controller option sections (opts.c, <wssignd/opts.h>):
 * typed getters with the table's defaults, and wss_opts_check's types,
 * ranges, required keys and error text naming the key in full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <wssignd/errors.h>

#include "opts.h"

#define ERR_BYTES 256

/* A section of controller "t" holding the JSON object text. */
static struct wss_opts *section(const char *text)
{
    json_error_t e;
    json_t *obj = json_loads(text, 0, &e);

    assert_non_null(obj);
    return opts_new_take("t", obj);
}

static const struct wss_opt_spec spec[] = {
    {.key = "s", .type = WSS_OPT_STRING, .def.s = "dflt"},
    {.key = "short", .type = WSS_OPT_STRING, .min = 2, .max = 4},
    {.key = "i", .type = WSS_OPT_INTEGER, .min = -10, .max = 100, .def.i = 7},
    {.key = "any", .type = WSS_OPT_INTEGER},
    {.key = "b", .type = WSS_OPT_BOOLEAN, .def.b = true},
    {0},
};

static void test_getters_and_defaults(void **state)
{
    struct wss_opts *o = section("{\"s\": \"str\", \"i\": -7, \"b\": false}");

    assert_string_equal(wss_opts_string(o, spec, "s"), "str");
    assert_int_equal(wss_opts_int(o, spec, "i"), -7);
    assert_false(wss_opts_bool(o, spec, "b"));
    /* Absent keys give the table's defaults. */
    assert_null(wss_opts_string(o, spec, "short"));
    assert_int_equal(wss_opts_int(o, spec, "any"), 0);
    opts_free(o);

    o = section("{}");
    assert_string_equal(wss_opts_string(o, spec, "s"), "dflt");
    assert_int_equal(wss_opts_int(o, spec, "i"), 7);
    assert_true(wss_opts_bool(o, spec, "b"));
    assert_false(wss_opts_has(o, "s"));
    /* A key the table does not list, or lists with another type: a controller bug. */
    assert_null(wss_opts_string(o, spec, "nope"));
    assert_null(wss_opts_string(o, spec, "i"));
    assert_int_equal(wss_opts_int(o, spec, "s"), 0);
    assert_false(wss_opts_bool(o, spec, "s"));
    assert_null(wss_opts_string(o, spec, NULL));
    opts_free(o);

    /* No section at all: the defaults. */
    assert_string_equal(wss_opts_string(NULL, spec, "s"), "dflt");
    assert_int_equal(wss_opts_int(NULL, spec, "i"), 7);
    assert_true(wss_opts_bool(NULL, spec, "b"));
    assert_false(wss_opts_has(NULL, "s"));
}

static void test_wrong_type_reads_default(void **state)
{
    /* Unchecked, a value of another type is not taken: the default is. */
    struct wss_opts *o = section("{\"s\": 1, \"i\": \"7\", \"b\": 1, \"any\": 1.5}");

    assert_string_equal(wss_opts_string(o, spec, "s"), "dflt");
    assert_int_equal(wss_opts_int(o, spec, "i"), 7);
    assert_true(wss_opts_bool(o, spec, "b"));
    assert_int_equal(wss_opts_int(o, spec, "any"), 0);
    assert_true(wss_opts_has(o, "any"));
    opts_free(o);
}

/* Checks text against table: the return code, and err when refused. */
static void check_case(const struct wss_opt_spec *table, const char *text, int rc, const char *want)
{
    struct wss_opts *o = section(text);
    char err[ERR_BYTES] = "";
    int got = wss_opts_check(o, table, err, sizeof err);

    if (got != rc)
        fail_msg("%s: returned %d, want %d (%s)", text, got, rc, err);
    if (want && strcmp(err, want))
        fail_msg("%s: error '%s', want '%s'", text, err, want);
    opts_free(o);
}

static void test_check(void **state)
{
    check_case(spec, "{}", 0, NULL);
    check_case(spec, "{\"s\": \"\", \"short\": \"ab\", \"i\": -10, \"any\": -99999, \"b\": true}",
               0, NULL);
    check_case(spec, "{\"short\": \"abcd\", \"i\": 100}", 0, NULL);
    check_case(spec, "{\"x\": 1}", WSS_ERR_CONFIG, "key 'controllers.t.x' is not known");
    check_case(spec, "{\"s\": 1}", WSS_ERR_CONFIG, "key 'controllers.t.s' must be a string");
    check_case(spec, "{\"i\": \"1\"}", WSS_ERR_CONFIG, "key 'controllers.t.i' must be an integer");
    check_case(spec, "{\"i\": 1.0}", WSS_ERR_CONFIG, "key 'controllers.t.i' must be an integer");
    check_case(spec, "{\"b\": 0}", WSS_ERR_CONFIG, "key 'controllers.t.b' must be a boolean");
    check_case(spec, "{\"b\": null}", WSS_ERR_CONFIG, "key 'controllers.t.b' must be a boolean");
    /* Ranges are inclusive, for integers by value and for strings by length. */
    check_case(spec, "{\"i\": 101}", WSS_ERR_CONFIG,
               "key 'controllers.t.i' must be between -10 and 100");
    check_case(spec, "{\"i\": -11}", WSS_ERR_CONFIG,
               "key 'controllers.t.i' must be between -10 and 100");
    check_case(spec, "{\"short\": \"a\"}", WSS_ERR_CONFIG,
               "key 'controllers.t.short' must be between 2 and 4 bytes long");
    check_case(spec, "{\"short\": \"abcde\"}", WSS_ERR_CONFIG,
               "key 'controllers.t.short' must be between 2 and 4 bytes long");
    /* A key from the file is echoed printable and cut. */
    check_case(spec, "{\"a\\nb\\\"c\": 1}", WSS_ERR_CONFIG,
               "key 'controllers.t.a?b?c' is not known");
}

static void test_check_required_and_max_only(void **state)
{
    static const struct wss_opt_spec req[] = {
        {.key = "public_key", .type = WSS_OPT_STRING, .required = true},
        {.key = "message", .type = WSS_OPT_STRING, .max = 3},
        {0},
    };
    char err[ERR_BYTES] = "";

    check_case(req, "{\"public_key\": \"k\"}", 0, NULL);
    check_case(req, "{}", WSS_ERR_CONFIG, "key 'controllers.t.public_key' is required");
    check_case(req, "{\"public_key\": \"k\", \"message\": \"abcd\"}", WSS_ERR_CONFIG,
               "key 'controllers.t.message' must be at most 3 bytes");
    /* No section: a required key is still missing. */
    assert_int_equal(wss_opts_check(NULL, req, err, sizeof err), WSS_ERR_CONFIG);
    assert_string_equal(err, "key 'public_key' is required");
    assert_int_equal(wss_opts_check(NULL, spec, NULL, 0), 0);
}

static void test_broken_table(void **state)
{
    static const struct wss_opt_spec bad_type[] = {{.key = "s", .type = 9}, {0}};
    static const struct wss_opt_spec no_type[] = {{.key = "s"}, {0}};
    static const struct wss_opt_spec empty_range[] = {
        {.key = "i", .type = WSS_OPT_INTEGER, .min = 5, .max = 1}, {0}};

    /* Refused even when the section does not use the entry: the table is wrong. */
    check_case(bad_type, "{}", WSS_ERR_INVAL,
               "key 'controllers.t.s' has an unknown type 9 in the controller's option list");
    check_case(no_type, "{}", WSS_ERR_INVAL, NULL);
    check_case(empty_range, "{}", WSS_ERR_INVAL,
               "key 'controllers.t.i' has an empty range in the controller's option list");
    /* No err buffer: only the code. */
    {
        struct wss_opts *o = section("{\"zz\": 1}");

        assert_int_equal(wss_opts_check(o, spec, NULL, 0), WSS_ERR_CONFIG);
        opts_free(o);
    }
}

static void test_copy_and_compare(void **state)
{
    struct wss_opts *a = section("{\"s\": \"x\", \"i\": 3}"), *b = opts_dup(a), *c;

    assert_true(opts_equal(a, b));
    c = section("{\"s\": \"x\", \"i\": 4}");
    assert_false(opts_equal(a, c));
    opts_free(a);
    /* The copy owns its values. */
    assert_string_equal(wss_opts_string(b, spec, "s"), "x");
    opts_free(b);
    opts_free(c);
    opts_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getters_and_defaults),
        cmocka_unit_test(test_wrong_type_reads_default),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_required_and_max_only),
        cmocka_unit_test(test_broken_table),
        cmocka_unit_test(test_copy_and_compare),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
