/*
 * The HTTP API's token file: bare tokens (full access, named after their
 * line) beside named ones with scopes, keys, rate and burst; every
 * malformed line refused with its file and line, and never with the token
 * in the message; and the token bucket of a token with a rate, kept across
 * a reload of the same limit. Time is a parameter.
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

#include "controllers/http_api_auth.h"
#include "crypto.h"
#include "keyset.h"
#include "log.h"

#define SECRET "s3cr3t-t0ken-0123456789"
#define KEY_A "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define KEY_B "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="

static char dir[64], path[128];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/wssignd-tokens-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokens", dir);
    log_set_level(WSS_LOG_ERR);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    rmdir(dir);
    return 0;
}

static void write_tokens(const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

static const struct http_api_token *named(const struct http_api_tokens *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->list[i].name, name))
            return &t->list[i];
    fail_msg("no token named %s", name);
    return NULL;
}

static void test_bare_and_named(void **state)
{
    struct http_api_tokens t;
    const struct http_api_token *k;
    char err[256];
    uint8_t key[32];

    write_tokens("# name token options\n"
                 "bare-token-without-a-name-0001\n"
                 "\n"
                 "billing " SECRET " scopes=sign keys=" KEY_A "," KEY_B " rate=50/s burst=100\n"
                 "  monitor\tmonitor-token-0123456789   scopes=read,metrics  \n"
                 "slow slow-token-0123456789abc rate=10/m\n"
                 "all all-token-0123456789abcd\n");
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), 0);
    assert_int_equal(t.n, 5);
    k = named(&t, "token-2");
    assert_int_equal(k->scopes, HTTP_API_SCOPE_ALL);
    assert_null(k->keys);
    assert_true(k->rate == 0);
    k = named(&t, "billing");
    assert_int_equal(k->scopes, HTTP_API_SCOPE_SIGN);
    assert_int_equal(k->keys->n, 2);
    assert_int_equal(crypto_b64_decode(key, sizeof key, &(size_t){0}, KEY_B, 44), 0);
    assert_true(http_api_token_allows_key(k, key));
    key[0] ^= 1;
    assert_false(http_api_token_allows_key(k, key));
    assert_true(http_api_token_allows_key(NULL, key));
    assert_true(k->rate == 50 && k->burst == 100);
    k = named(&t, "monitor");
    assert_int_equal(k->scopes, HTTP_API_SCOPE_READ | HTTP_API_SCOPE_METRICS);
    k = named(&t, "slow");
    assert_true(k->rate > 0.16 && k->rate < 0.17);
    assert_true(k->burst == 1); /* a second's worth, at least one */
    k = named(&t, "all");
    assert_int_equal(k->scopes, HTTP_API_SCOPE_ALL);
    http_api_tokens_clear(&t);
    assert_int_equal(t.n, 0);
}

/* Each malformed line is refused with the file and its line, and without the token. */
static void test_malformed_lines(void **state)
{
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"short", "16 to 512 characters"},
        {"billing short", "16 to 512 characters"},
        {"bad/name " SECRET, "a line is a token, or a name"},
        {"a-name-that-is-far-too-long-to-be-a-label " SECRET, "a line is a token, or a name"},
        {"billing " SECRET " scopes=sign,bogus", "scopes= takes sign, read, metrics and admin"},
        {"billing " SECRET " scopes=", "scopes= takes"},
        {"billing " SECRET " scopes=sign,", "scopes= takes"},
        {"billing " SECRET " scopes=sign scopes=read", "option scopes= is given twice"},
        {"billing " SECRET " keys=" KEY_A ",nope", "keys= item 2 is not a public key"},
        {"billing " SECRET " keys=", "keys= item 1 is not a public key"},
        {"billing " SECRET " rate=0/s", "rate= takes N/s or N/m"},
        {"billing " SECRET " rate=5/h", "rate= takes N/s or N/m"},
        {"billing " SECRET " rate=five/s", "rate= takes N/s or N/m"},
        {"billing " SECRET " burst=10", "burst= needs rate="},
        {"billing " SECRET " rate=5/s burst=0", "burst= takes a number"},
        {"billing " SECRET " " SECRET "=x", "field 3 is not an option"},
        {"billing " SECRET " trailing-word", "field 3 is not an option"},
        {"billing " SECRET " a=1 b=2 c=3 d=4 e=5 f=6 g=7", "more than 8 fields"},
    };
    char err[512], text[1024], where[160];
    struct http_api_tokens t;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "good good-token-0123456789ab\n# comment\n%s\n", bad[i].line);
        write_tokens(text);
        err[0] = '\0';
        if (http_api_tokens_load(&t, path, err, sizeof err) != WSS_ERR_CONFIG)
            fail_msg("accepted: %s", bad[i].line);
        assert_int_equal(t.n, 0);
        snprintf(where, sizeof where, "token file %s:3: ", path);
        if (!strstr(err, where) || !strstr(err, bad[i].why))
            fail_msg("line %s: message %s", bad[i].line, err);
        assert_null(strstr(err, SECRET));
        assert_null(strstr(err, "good-token"));
    }
}

static void test_repeats_and_limits(void **state)
{
    struct http_api_tokens t;
    char err[512], *text;
    size_t n;

    write_tokens("a " SECRET "\nb " SECRET "\n");
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, ":2: the same token as line 1"));
    assert_null(strstr(err, SECRET));
    write_tokens("a " SECRET "\na other-token-0123456789\n");
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, ":2: the name is already used on line 1"));
    /* A bare line N is token-N: a named line cannot take that name too. */
    write_tokens("token-2 " SECRET "\nbare-token-0123456789abc\n");
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, ":2: the name is already used on line 1"));
    write_tokens("# revoked everyone\n");
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "holds no token"));

    /* keys= takes up to 1000 keys; 1001 is refused. */
    text = malloc(64 * 1024 + 64);
    n = (size_t)sprintf(text, "many " SECRET " keys=");
    for (int i = 0; i < 1001; i++) {
        uint8_t key[32] = {(uint8_t)i, (uint8_t)(i >> 8)};

        crypto_b64_encode(text + n, 45, key, sizeof key);
        n += 44;
        text[n++] = i < 1000 ? ',' : '\n';
    }
    text[n] = '\0';
    write_tokens(text);
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "more than 1000 keys"));
    text[n - 46] = '\n';
    text[n - 45] = '\0';
    write_tokens(text);
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), 0);
    assert_int_equal(t.list[0].keys->n, 1000);
    http_api_tokens_clear(&t);
    free(text);

    /* The file stays private to its owner. */
    write_tokens("ok-token-0123456789abcdef\n");
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_not_equal(http_api_tokens_load(&t, path, err, sizeof err), 0);
}

static void test_rate(void **state)
{
    struct http_api_auth *a = http_api_auth_new();
    struct http_api_tokens t;
    const struct http_api_token *k;
    unsigned retry = 0;
    char err[256];

    write_tokens("r r-token-0123456789abcdef rate=1/s burst=2\nfree free-token-0123456789ab\n");
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), 0);
    http_api_auth_set(a, &t, 20);
    k = http_api_auth_token(a, "r");
    assert_int_equal(http_api_auth_take(a, k, 10000, &retry), 0);
    assert_int_equal(http_api_auth_take(a, k, 10000, &retry), 0);
    assert_int_equal(http_api_auth_take(a, k, 10000, &retry), WSS_ERR_TOO_MANY_REQUESTS);
    assert_int_equal(retry, 1);
    assert_int_equal(http_api_auth_take(a, k, 10500, &retry), WSS_ERR_TOO_MANY_REQUESTS);
    assert_int_equal(http_api_auth_take(a, k, 11000, &retry), 0);
    /* A token without a rate, or no token at all, is never refused. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(http_api_auth_take(a, http_api_auth_token(a, "free"), 11000, &retry), 0);
    assert_int_equal(http_api_auth_take(a, NULL, 11000, &retry), 0);
    /* A reload with the same limit keeps the empty bucket; a new limit starts full. */
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), 0);
    http_api_auth_set(a, &t, 20);
    k = http_api_auth_token(a, "r");
    assert_int_equal(http_api_auth_take(a, k, 11000, &retry), WSS_ERR_TOO_MANY_REQUESTS);
    write_tokens("r r-token-0123456789abcdef rate=1/s burst=3\n");
    assert_int_equal(http_api_tokens_load(&t, path, err, sizeof err), 0);
    http_api_auth_set(a, &t, 20);
    k = http_api_auth_token(a, "r");
    assert_int_equal(http_api_auth_take(a, k, 11000, &retry), 0);
    assert_null(http_api_auth_token(a, "free"));
    http_api_auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bare_and_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeats_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
