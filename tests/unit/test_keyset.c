/*
 * Key sets and key files: comments and blank lines, a comment after a key,
 * repeats, lookups, and every refusal naming its file and line: a key that
 * is not the strict base64 of 32 bytes, two keys on a line, a NUL byte, a
 * missing file. Key files hold no secret: mode 0644 is fine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <wssignd/errors.h>

#include "crypto.h"
#include "keyset.h"

static char dir[64], path[128];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/wssignd-keyset-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/keys", dir);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

static void write_keys(const char *text, size_t len)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, 0644), 0);
}

/* The base64 of the key whose bytes are all b. */
static const char *key_text(uint8_t b, char out[45])
{
    uint8_t key[32];

    memset(key, b, sizeof key);
    return crypto_b64_encode(out, 45, key, sizeof key);
}

static void test_load_and_lookup(void **state)
{
    char a[45], b[45], c[45], text[512], err[256];
    uint8_t key[32];
    struct keyset set;

    key_text(1, a);
    key_text(2, b);
    key_text(3, c);
    snprintf(text, sizeof text, "# signers allowed here\n\n%s\n  %s   # the backup\r\n%s\n%s", b, a,
             b, c);
    write_keys(text, strlen(text));
    assert_int_equal(keyset_load(&set, path, "keys.allow_file", err, sizeof err), 0);
    assert_int_equal(set.n, 3); /* b twice counts once */
    for (uint8_t i = 1; i <= 3; i++) {
        memset(key, i, sizeof key);
        assert_true(keyset_has(&set, key));
    }
    memset(key, 4, sizeof key);
    assert_false(keyset_has(&set, key));
    assert_false(keyset_has(NULL, key));
    keyset_clear(&set);
    assert_int_equal(set.n, 0);

    /* Only comments: an empty set, not an error. */
    write_keys("# nobody yet\n", 13);
    assert_int_equal(keyset_load(&set, path, "keys.allow_file", err, sizeof err), 0);
    assert_int_equal(set.n, 0);
    keyset_clear(&set);
}

static void expect_refused(const char *text, size_t len, const char *where, const char *why)
{
    char err[256];
    struct keyset set;

    if (text)
        write_keys(text, len);
    assert_int_not_equal(keyset_load(&set, path, "keys.deny_file", err, sizeof err), 0);
    assert_int_equal(set.n, 0);
    assert_null(set.keys);
    assert_non_null(strstr(err, "keys.deny_file"));
    if (where)
        assert_non_null(strstr(err, where));
    assert_non_null(strstr(err, why));
}

static void test_refusals(void **state)
{
    char a[45], text[256], where[160];

    key_text(7, a);
    snprintf(where, sizeof where, "%s:3:", path);
    snprintf(text, sizeof text, "%s\n# ok so far\nnot-a-key\n", a);
    expect_refused(text, strlen(text), where, "not a public key");
    /* URL-safe, unpadded, too short, too long: the strict form only. */
    snprintf(where, sizeof where, "%s:1:", path);
    expect_refused("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n", 45, where, "not a public key");
    expect_refused("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo\n", 44, where, "not a public key");
    expect_refused("AAAA\n", 5, where, "not a public key");
    snprintf(text, sizeof text, "%s %s\n", a, a);
    expect_refused(text, strlen(text), where, "one key per line");
    expect_refused("x\0y\n", 4, NULL, "NUL byte");
    unlink(path);
    expect_refused(NULL, 0, NULL, "No such file");
}

static void test_dup(void **state)
{
    struct keyset set = {0}, *copy;
    uint8_t key[32] = {9};

    keyset_add(&set, key);
    keyset_sort(&set);
    copy = keyset_dup(&set);
    keyset_clear(&set);
    assert_true(keyset_has(copy, key));
    keyset_free(copy);
    keyset_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_and_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test(test_dup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
