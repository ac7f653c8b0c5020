/*
 * Unit tests for jsonflat.c, the flat-object reader. Every text is also
 * given to jansson with the flags the reader stands in for: what the reader
 * reads, jansson must accept with the same members in the same order, and
 * what jansson refuses, the reader must decline. The cases: the common
 * shapes, white space, every escape, \u0000 with and without
 * JSONFLAT_ALLOW_NUL, invalid UTF-8 and surrogates, duplicates, truncation,
 * and the numbers left to jansson (big, leading zeros, -0, fractions,
 * exponents).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "jsonflat.h"

/* jansson's flags for the reader's. */
static size_t jansson_flags(unsigned flags)
{
    return JSON_REJECT_DUPLICATES | ((flags & JSONFLAT_ALLOW_NUL) ? JSON_ALLOW_NUL : 0);
}

/* The reader's result for len bytes of text, checked against jansson's. */
static bool read_checked(struct jsonflat *obj, const char *text, size_t len, unsigned flags)
{
    bool ok = jsonflat_read(obj, text, len, flags);
    json_t *root = json_loadb(text, len, jansson_flags(flags), NULL);
    const char *key;
    json_t *v;
    size_t i = 0;

    if (!ok) {
        json_decref(root);
        return false;
    }
    assert_non_null(root);
    assert_true(json_is_object(root));
    assert_int_equal(json_object_size(root), obj->n);
    json_object_foreach (root, key, v) {
        const struct jsonflat_member *m = &obj->m[i++];

        assert_int_equal(strlen(key), m->name_len);
        assert_memory_equal(key, m->name, m->name_len);
        if (m->kind == JSONFLAT_STRING) {
            assert_true(json_is_string(v));
            assert_int_equal(json_string_length(v), m->len);
            if (m->len)
                assert_memory_equal(json_string_value(v), m->str, m->len);
        } else {
            assert_int_equal(m->kind, JSONFLAT_INTEGER);
            assert_true(json_is_integer(v));
            assert_true(json_integer_value(v) == m->num);
        }
    }
    json_decref(root);
    return true;
}

static bool reads(struct jsonflat *obj, const char *text, unsigned flags)
{
    return read_checked(obj, text, strlen(text), flags);
}

/* The reader declines text; whether jansson takes it is given by valid. */
static void declines(const char *text, size_t len, unsigned flags, bool valid)
{
    struct jsonflat obj;
    json_t *root;

    assert_false(read_checked(&obj, text, len, flags));
    assert_int_equal(obj.n, 0);
    assert_null(obj.buf);
    root = json_loadb(text, len, jansson_flags(flags), NULL);
    if (valid != (root != NULL))
        fail_msg("jansson %s: %.*s", root ? "accepts" : "refuses", (int)len, text);
    json_decref(root);
}

static void declines_s(const char *text, unsigned flags, bool valid)
{
    declines(text, strlen(text), flags, valid);
}

static void test_common_shapes(void **state)
{
    struct jsonflat obj;
    const struct jsonflat_member *m;
    const char *body = "{\"public_key\":\"AAAA\",\"message\":\"aGk=\",\"timeout_ms\":5000}";

    (void)state;
    assert_true(reads(&obj, body, JSONFLAT_ALLOW_NUL));
    assert_int_equal(obj.n, 3);
    assert_null(obj.buf); /* nothing escaped: every text borrowed */
    assert_true(jsonflat_is_text(jsonflat_get(&obj, "public_key"), "AAAA"));
    assert_true(obj.m[1].str > body && obj.m[1].str < body + strlen(body));
    m = jsonflat_get(&obj, "timeout_ms");
    assert_non_null(m);
    assert_int_equal(m->kind, JSONFLAT_INTEGER);
    assert_int_equal(m->num, 5000);
    assert_null(jsonflat_get(&obj, "label"));
    assert_null(jsonflat_get(&obj, "timeout"));
    assert_false(jsonflat_is_text(jsonflat_get(&obj, "timeout_ms"), "5000"));
    assert_false(jsonflat_is_text(NULL, ""));
    jsonflat_cleanup(&obj);
    assert_null(obj.buf);

    /* Any order, empty strings, an empty object. */
    assert_true(reads(&obj, "{\"b\":\"\",\"a\":-7}", 0));
    assert_int_equal(obj.n, 2);
    assert_int_equal(obj.m[0].len, 0);
    assert_int_equal(obj.m[1].num, -7);
    jsonflat_cleanup(&obj);
    assert_true(reads(&obj, "{}", 0));
    assert_int_equal(obj.n, 0);
    jsonflat_cleanup(&obj);
}

static void test_white_space(void **state)
{
    struct jsonflat obj;

    (void)state;
    assert_true(reads(&obj, " \t\r\n{ \"a\" :\n\"x\" ,\r\"b\"\t:\t12 } \n\t\r", 0));
    assert_int_equal(obj.n, 2);
    assert_true(jsonflat_is_text(&obj.m[0], "x"));
    assert_int_equal(obj.m[1].num, 12);
    jsonflat_cleanup(&obj);
    assert_true(reads(&obj, "{ }", 0));
    jsonflat_cleanup(&obj);
    /* Other bytes are not white space to JSON. */
    declines_s("\f{}", 0, false);
    declines_s("{}\v", 0, false);
    declines_s("\xc2\xa0{}", 0, false);
    declines_s("\xef\xbb\xbf{}", 0, false); /* a byte order mark */
}

static void test_escapes(void **state)
{
    static const struct {
        const char *json, *bytes;
        size_t len;
    } cases[] = {
        {"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "\"\\/\b\f\n\r\t", 8},
        {"{\"s\":\"a\\u0041\\u00e9\\u20AC\"}", "aA\xc3\xa9\xe2\x82\xac", 7},
        {"{\"s\":\"\\ud83d\\ude00!\"}", "\xf0\x9f\x98\x80!", 5},
        {"{\"s\":\"\\uDBFF\\uDFFF\"}", "\xf4\x8f\xbf\xbf", 4},
        {"{\"s\":\"\\u007f\\u0080\\u07FF\\u0800\\uffff\"}",
         "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 11},
        /* Raw UTF-8 is kept as it is, escaped or not around it. */
        {"{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
         9},
        {"{\"s\":\"\xc3\xa9\\n\"}", "\xc3\xa9\n", 3},
        {"{\"s\":\"\x7f\"}", "\x7f", 1},
    };
    struct jsonflat obj;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(reads(&obj, cases[i].json, 0));
        assert_int_equal(obj.m[0].len, cases[i].len);
        assert_memory_equal(obj.m[0].str, cases[i].bytes, cases[i].len);
        jsonflat_cleanup(&obj);
    }
    /* Escaped names are names: "\u0061" is "a", so this is a duplicate. */
    assert_true(reads(&obj, "{\"\\u0061b\":1}", 0));
    assert_int_equal(obj.m[0].name_len, 2);
    assert_memory_equal(obj.m[0].name, "ab", 2);
    jsonflat_cleanup(&obj);
    declines_s("{\"a\":1,\"\\u0061\":2}", 0, false);

    /* What jansson refuses. */
    declines_s("{\"s\":\"\\x41\"}", 0, false);
    declines_s("{\"s\":\"\\U0041\"}", 0, false);
    declines_s("{\"s\":\"\\u004\"}", 0, false);
    declines_s("{\"s\":\"\\u00g1\"}", 0, false);
    declines_s("{\"s\":\"\\ud83d\"}", 0, false);         /* lone high surrogate */
    declines_s("{\"s\":\"\\ude00\"}", 0, false);         /* lone low surrogate */
    declines_s("{\"s\":\"\\ude00\\ud83d\"}", 0, false);  /* reversed */
    declines_s("{\"s\":\"\\ud83d\\ud83d\"}", 0, false);  /* two high halves */
    declines_s("{\"s\":\"\\ud83dx\\ude00\"}", 0, false); /* split */
    declines_s("{\"s\":\"\\ud83d\\n\"}", 0, false);      /* followed by another escape */
    declines_s("{\"s\":\"a\tb\"}", 0, false);            /* raw control characters */
    declines_s("{\"s\":\"a\nb\"}", 0, false);
    declines_s("{\"s\":\"\x1f\"}", 0, false);
    declines("{\"s\":\"a\0b\"}", 11, 0, false); /* a raw NUL byte */
    declines("{\"s\":\"a\0b\"}", 11, JSONFLAT_ALLOW_NUL, false);
}

static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "\x80",             /* a lone continuation byte */
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* a surrogate, encoded */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80",
        "\xff",
        "\xc3",
        "\xe2\x82",
        "\xc3\x28",
    };
    char text[64];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "{\"s\":\"%s\"}", bad[i]);
        declines_s(text, 0, false);
        snprintf(text, sizeof text, "{\"s\":\"\\n%s\"}", bad[i]);
        declines_s(text, 0, false);
        snprintf(text, sizeof text, "{\"%s\":1}", bad[i]);
        declines_s(text, 0, false);
    }
}

static void test_nul(void **state)
{
    struct jsonflat obj;

    (void)state;
    /* Without JSONFLAT_ALLOW_NUL, as jansson without JSON_ALLOW_NUL: refused. */
    declines_s("{\"s\":\"a\\u0000b\"}", 0, false);
    /* With it: read, the NUL kept inside the value. */
    assert_true(reads(&obj, "{\"s\":\"a\\u0000b\"}", JSONFLAT_ALLOW_NUL));
    assert_int_equal(obj.m[0].len, 3);
    assert_memory_equal(obj.m[0].str, "a\0b", 3);
    jsonflat_cleanup(&obj);
    /* Never in a name: left to jansson whatever it makes of it. */
    declines_s("{\"a\\u0000\":1}", JSONFLAT_ALLOW_NUL, false);
    declines_s("{\"a\\u0000\":1}", 0, false);
}

static void test_duplicates(void **state)
{
    struct jsonflat obj;

    (void)state;
    declines_s("{\"a\":1,\"a\":1}", 0, false);
    declines_s("{\"a\":\"x\",\"b\":2,\"a\":\"y\"}", 0, false);
    declines_s("{\"message\":\"aGk=\",\"message\":\"aGk=\"}", JSONFLAT_ALLOW_NUL, false);
    /* Prefixes are not duplicates. */
    assert_true(reads(&obj, "{\"a\":1,\"ab\":2,\"\":3}", 0));
    assert_int_equal(obj.n, 3);
    jsonflat_cleanup(&obj);
}

static void test_structure(void **state)
{
    struct jsonflat obj;
    char many[256];

    (void)state;
    declines(NULL, 0, 0, false);
    declines("", 0, 0, false);
    declines_s("   ", 0, false);
    declines_s("{", 0, false);
    declines_s("}", 0, false);
    declines_s("{\"a\":1,}", 0, false);
    declines_s("{,\"a\":1}", 0, false);
    declines_s("{\"a\":1 \"b\":2}", 0, false);
    declines_s("{\"a\" 1}", 0, false);
    declines_s("{\"a\":}", 0, false);
    declines_s("{a:1}", 0, false);
    declines_s("{'a':1}", 0, false);
    declines_s("{\"a\":1}x", 0, false);
    declines_s("{\"a\":1}{}", 0, false);
    declines_s("\"a\"", 0, false);
    declines_s("12", 0, false);
    /* Valid, but not flat or not string and integer: jansson reads them. */
    declines_s("[]", 0, true);
    declines_s("{\"a\":{}}", 0, true);
    declines_s("{\"a\":[1]}", 0, true);
    declines_s("{\"a\":true}", 0, true);
    declines_s("{\"a\":false}", 0, true);
    declines_s("{\"a\":null}", 0, true);
    /* More members than it keeps. */
    strcpy(many, "{");
    for (int i = 0; i < JSONFLAT_MEMBERS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"k%d\":%d", i ? "," : "", i,
                 i);
    strcat(many, "}");
    assert_true(reads(&obj, many, 0));
    assert_int_equal(obj.n, JSONFLAT_MEMBERS_MAX);
    jsonflat_cleanup(&obj);
    many[strlen(many) - 1] = '\0';
    strcat(many, ",\"last\":1}");
    declines_s(many, 0, true);
}

static void test_truncation(void **state)
{
    static const char *const texts[] = {
        "{\"public_key\":\"AAAA\",\"message\":\"aGk=\",\"timeout_ms\":5000,\"label\":\"x\"}",
        "{ \"s\" : \"\\ud83d\\ude00\\u00e9\\n\\u0041\" , \"n\" : -12 }",
    };

    (void)state;
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        size_t len = strlen(texts[t]);
        struct jsonflat obj;

        for (size_t n = 0; n < len; n++) {
            /* A prefix in a heap block of its own size: ASan sees any read past it. */
            char *cut = malloc(n ? n : 1);

            memcpy(cut, texts[t], n);
            declines(cut, n, 0, false); /* every proper prefix is cut short */
            free(cut);
        }
        assert_true(reads(&obj, texts[t], 0));
        jsonflat_cleanup(&obj);
    }
}

static void test_numbers(void **state)
{
    static const struct {
        const char *json;
        int64_t v;
    } good[] = {
        {"{\"n\":0}", 0},
        {"{\"n\":7}", 7},
        {"{\"n\":-1}", -1},
        {"{\"n\":60000}", 60000},
        {"{\"n\":999999999999999999}", 999999999999999999},
        {"{\"n\":-999999999999999999}", -999999999999999999},
        {"{\"n\":12 }", 12},
    };
    static const char *const jansson_reads[] = {
        "{\"n\":-0}",
        "{\"n\":1000000000000000000}", /* 19 digits */
        "{\"n\":9223372036854775807}",
        "{\"n\":-9223372036854775808}",
        "{\"n\":1.0}",
        "{\"n\":1e3}",
        "{\"n\":1E3}",
        "{\"n\":1e+3}",
        "{\"n\":0.5}",
        "{\"n\":-0.0}",
        "{\"n\":1.5e-3}",
    };
    static const char *const jansson_refuses[] = {
        "{\"n\":01}",       "{\"n\":-01}", "{\"n\":00}",  "{\"n\":-}",
        "{\"n\":+1}",       "{\"n\":1.}",  "{\"n\":.5}",  "{\"n\":1e}",
        "{\"n\":0x1}",      "{\"n\":1a}",  "{\"n\":--1}", "{\"n\":9223372036854775808}",
        "{\"n\":Infinity}", "{\"n\":NaN}",
    };
    struct jsonflat obj;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(reads(&obj, good[i].json, 0));
        assert_int_equal(obj.m[0].kind, JSONFLAT_INTEGER);
        assert_true(obj.m[0].num == good[i].v);
        jsonflat_cleanup(&obj);
    }
    for (size_t i = 0; i < sizeof jansson_reads / sizeof jansson_reads[0]; i++)
        declines_s(jansson_reads[i], 0, true);
    for (size_t i = 0; i < sizeof jansson_refuses / sizeof jansson_refuses[0]; i++)
        declines_s(jansson_refuses[i], 0, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_shapes), cmocka_unit_test(test_white_space),
        cmocka_unit_test(test_escapes),       cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_nul),           cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_structure),     cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_numbers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
