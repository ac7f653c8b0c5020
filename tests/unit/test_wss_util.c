/*
 * Unit tests for the controller helpers of <wssignd/util.h>: strict public
 * key decoding (base64 and base64url), base64 encoding with its buffer
 * check, the clocks and the allocation wrappers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>
#include <wssignd/util.h>

#include "crypto.h"

/* The RFC 8032 test 1 public key, in each spelling. */
static const char KEY_B64[] = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char KEY_URL[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const uint8_t KEY[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

static int decode(const char *text)
{
    uint8_t key[WSS_PUBLIC_KEY_BYTES];

    return wss_key_decode(key, text, strlen(text));
}

static int decode_url(const char *text)
{
    uint8_t key[WSS_PUBLIC_KEY_BYTES];

    return wss_key_decode_url(key, text, strlen(text));
}

static void test_key_decode(void **state)
{
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char url_padded[64];

    assert_int_equal(wss_key_decode(key, KEY_B64, strlen(KEY_B64)), 0);
    assert_memory_equal(key, KEY, sizeof key);
    /* Not NUL-terminated: only len characters are read. */
    snprintf(url_padded, sizeof url_padded, "%sgarbage", KEY_B64);
    assert_int_equal(wss_key_decode(key, url_padded, strlen(KEY_B64)), 0);
    assert_memory_equal(key, KEY, sizeof key);

    assert_int_equal(decode(""), WSS_ERR_INVAL);
    assert_int_equal(wss_key_decode(key, NULL, 0), WSS_ERR_INVAL);
    /* The padding is required, and must be right. */
    assert_int_equal(decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo"), WSS_ERR_INVAL);
    assert_int_equal(decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=="), WSS_ERR_INVAL);
    /* Non-zero bits in the padding: another text for the same key is refused. */
    assert_int_equal(decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp="), WSS_ERR_INVAL);
    /* Other alphabets, whitespace, bytes from 0x80 up. */
    assert_int_equal(decode(KEY_URL), WSS_ERR_INVAL);
    assert_int_equal(decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo="), WSS_ERR_INVAL);
    assert_int_equal(decode(" 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="), WSS_ERR_INVAL);
    assert_int_equal(decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"), WSS_ERR_INVAL);
    assert_int_equal(decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcH\xc3\xa9o="), WSS_ERR_INVAL);
    /* Other lengths: 31 and 33 bytes. */
    assert_int_equal(decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ=="), WSS_ERR_INVAL);
    assert_int_equal(decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURoA"), WSS_ERR_INVAL);
    assert_int_equal(decode("AAAA"), WSS_ERR_INVAL);

    /* base64url: padding optional, the standard alphabet's '+' and '/' refused. */
    memset(key, 0, sizeof key);
    assert_int_equal(wss_key_decode_url(key, KEY_URL, strlen(KEY_URL)), 0);
    assert_memory_equal(key, KEY, sizeof key);
    snprintf(url_padded, sizeof url_padded, "%s=", KEY_URL);
    assert_int_equal(decode_url(url_padded), 0);
    snprintf(url_padded, sizeof url_padded, "%s==", KEY_URL);
    assert_int_equal(decode_url(url_padded), WSS_ERR_INVAL);
    assert_int_equal(decode_url(KEY_B64), WSS_ERR_INVAL);
    assert_int_equal(decode_url(""), WSS_ERR_INVAL);
    assert_int_equal(decode_url("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp"), WSS_ERR_INVAL);
}

static void test_base64_encode(void **state)
{
    char out[WSS_PUBLIC_KEY_BASE64_BYTES], small[4] = "xyz";
    const uint8_t three[3] = {0xfb, 0xff, 0xfe};

    assert_int_equal(WSS_PUBLIC_KEY_BASE64_BYTES, 45);
    assert_int_equal(WSS_BASE64_BYTES(0), 1);
    assert_int_equal(WSS_BASE64_BYTES(1), 5);
    assert_int_equal(WSS_BASE64_BYTES(3), 5);
    assert_int_equal(WSS_BASE64_BYTES(4), 9);
    /* The same as the daemon's own encoder for every length it is asked for. */
    for (size_t n = 0; n < 100; n++)
        assert_int_equal(WSS_BASE64_BYTES(n), crypto_b64_len(n));

    assert_ptr_equal(wss_base64_encode(out, sizeof out, KEY, sizeof KEY), out);
    assert_string_equal(out, KEY_B64);
    assert_ptr_equal(wss_base64_encode(out, sizeof out, three, sizeof three), out);
    assert_string_equal(out, "+//+");
    assert_ptr_equal(wss_base64_encode(out, sizeof out, three, 1), out);
    assert_string_equal(out, "+w==");
    assert_ptr_equal(wss_base64_encode(out, 1, NULL, 0), out);
    assert_string_equal(out, "");
    /* Too small a buffer: NULL, and nothing written. */
    assert_null(wss_base64_encode(small, sizeof small, three, sizeof three));
    assert_string_equal(small, "xyz");
    assert_null(wss_base64_encode(out, sizeof out - 1, KEY, sizeof KEY));
    assert_null(wss_base64_encode(NULL, 0, KEY, sizeof KEY));
}

static void test_round_trip(void **state)
{
    uint8_t key[WSS_PUBLIC_KEY_BYTES], back[WSS_PUBLIC_KEY_BYTES];
    char text[WSS_PUBLIC_KEY_BASE64_BYTES];

    for (int i = 0; i < 200; i++) {
        randombytes_buf(key, sizeof key);
        assert_non_null(wss_base64_encode(text, sizeof text, key, sizeof key));
        assert_int_equal(wss_key_decode(back, text, strlen(text)), 0);
        assert_memory_equal(key, back, sizeof key);
    }
}

static void test_clocks(void **state)
{
    uint64_t a = wss_now_ms(), b = wss_now_ms(), u = wss_unix_ms();

    assert_true(b >= a);
    /* After 2020-01-01 and before 2100-01-01. */
    assert_true(u > 1577836800000ull && u < 4102444800000ull);
}

static void test_allocation(void **state)
{
    char *s = wss_strdup("abc"), *p = wss_malloc(0);
    int *z = wss_calloc(8, sizeof *z);

    assert_string_equal(s, "abc");
    assert_non_null(p);
    for (int i = 0; i < 8; i++)
        assert_int_equal(z[i], 0);
    z = wss_realloc(z, 1000 * sizeof *z);
    assert_int_equal(z[7], 0);
    free(s);
    free(p);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_decode), cmocka_unit_test(test_base64_encode),
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_allocation),
    };

    assert_int_equal(crypto_init(), 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
