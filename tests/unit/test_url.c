/*
 * Unit tests for wssign's URL parser (url.c): the accepted shapes and their
 * parts, default ports, lowercasing, IPv6 literals, every refusal with its
 * reason, the length limits, and the loopback decision made on a parsed
 * host (addr_host_is_loopback) for ws:// and http:// in clear text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wssignd/errors.h>

#include "addr.h"
#include "url.h"

static void expect_url(const char *text, const char *scheme, const char *host, bool ipv6, int port,
                       const char *path)
{
    char err[512] = "";
    struct url u;

    if (url_parse(text, &u, err, sizeof err) != 0)
        print_error("%s: %s\n", text, err);
    assert_int_equal(url_parse(text, &u, err, sizeof err), 0);
    assert_string_equal(u.scheme, scheme);
    assert_string_equal(u.host, host);
    assert_int_equal(u.ipv6, ipv6);
    assert_int_equal(u.port, port);
    assert_string_equal(u.path, path);
}

/* Refused with "invalid URL '<text>': <why>". */
static void expect_refused(const char *text, const char *why)
{
    char err[2600], want[2600];
    struct url u;

    assert_int_equal(url_parse(text, &u, err, sizeof err), WSS_ERR_INVAL);
    snprintf(want, sizeof want, "invalid URL '%s': %s", text, why);
    assert_string_equal(err, want);
}

static void test_parts(void **state)
{
    (void)state;
    expect_url("ws://localhost:8080/v1/ws", "ws", "localhost", false, 8080, "/v1/ws");
    expect_url("wss://signer.example.com:8443/v1/ws?x=1&y", "wss", "signer.example.com", false,
               8443, "/v1/ws?x=1&y");
    expect_url("http://127.0.0.1:8081", "http", "127.0.0.1", false, 8081, "");
    expect_url("http://127.0.0.1:8081/", "http", "127.0.0.1", false, 8081, "/");
    expect_url("ws://a_b-c.d", "ws", "a_b-c.d", false, 80, "");
    /* any scheme is parsed (callers check it); both are lowercased */
    expect_url("WSS://Signer.EXAMPLE.com/P", "wss", "signer.example.com", false, 443, "/P");
    expect_url("ftp://h", "ftp", "h", false, 80, "");
    expect_url("https://h", "https", "h", false, 443, "");
    expect_url("ws://h:1", "ws", "h", false, 1, "");
    expect_url("ws://h:65535", "ws", "h", false, 65535, "");
}

static void test_ipv6(void **state)
{
    (void)state;
    expect_url("ws://[::1]:9000/v1/ws", "ws", "::1", true, 9000, "/v1/ws");
    expect_url("wss://[FE80::1]", "wss", "fe80::1", true, 443, "");
    expect_url("ws://[::ffff:127.0.0.1]", "ws", "::ffff:127.0.0.1", true, 80, "");
    expect_refused("ws://[::1", "missing ']' after an IPv6 address");
    expect_refused("ws://[::1]x", "unexpected text after the host");
    expect_refused("ws://[1.2.3.4]", "bad IPv6 address");
    expect_refused("ws://[::g]", "bad character in host");
    expect_refused("ws://[fe80::1%25eth0]", "bad character in host");
    expect_refused("ws://[]", "empty host");
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("", "expected scheme://host[:port][/path]");
    expect_refused("localhost:8080", "expected scheme://host[:port][/path]");
    expect_refused("://h", "expected scheme://host[:port][/path]");
    expect_refused("abcdefgh://h", "expected scheme://host[:port][/path]");
    expect_refused("w1s://h", "bad scheme");
    expect_refused("ws://user:pw@h", "user information is not supported");
    expect_refused("ws://", "empty host");
    expect_refused("ws://:80", "empty host");
    expect_refused("ws:///path", "empty host");
    expect_refused("ws://h:", "bad port");
    expect_refused("ws://h:-1", "bad port");
    expect_refused("ws://h:+1", "bad port");
    expect_refused("ws://h:0", "port must be 1 to 65535");
    expect_refused("ws://h:65536", "port must be 1 to 65535");
    expect_refused("ws://h:99999999999999999999", "port must be 1 to 65535");
    expect_refused("ws://h:80x", "port must be 1 to 65535");
    expect_refused("ws://h:80:81", "port must be 1 to 65535");
    expect_refused("ws://h$t", "bad character in host");
    expect_refused("ws://h.example/#frag", "fragments are not supported");
    expect_refused("ws://h#frag", "fragments are not supported");
    expect_refused("ws://h?q=1", "a query needs a path before it");
    expect_refused("ws://h /x", "spaces and control characters are not allowed");
    expect_refused("ws://h/\x01", "spaces and control characters are not allowed");
    expect_refused("ws://h/\x7f", "spaces and control characters are not allowed");
    expect_refused("ws://h\xc3\xa9.example", "spaces and control characters are not allowed");
}

static void test_limits(void **state)
{
    char text[2200], host[300];
    struct url u;
    char err[2600];

    (void)state;
    /* a host of CRYPTO_HOST_MAX bytes fits, one more does not */
    memset(host, 'h', CRYPTO_HOST_MAX);
    host[CRYPTO_HOST_MAX] = '\0';
    snprintf(text, sizeof text, "ws://%s:1/", host);
    assert_int_equal(url_parse(text, &u, err, sizeof err), 0);
    assert_int_equal(strlen(u.host), CRYPTO_HOST_MAX);
    snprintf(text, sizeof text, "ws://%sh:1/", host);
    expect_refused(text, "host name too long");
    /* a path of URL_PATH_MAX - 1 bytes fits, one more does not */
    memcpy(text, "ws://h", 6);
    text[6] = '/';
    memset(text + 7, 'p', URL_PATH_MAX - 2);
    text[7 + URL_PATH_MAX - 2] = '\0';
    assert_int_equal(url_parse(text, &u, err, sizeof err), 0);
    assert_int_equal(strlen(u.path), URL_PATH_MAX - 1);
    strcat(text, "p");
    expect_refused(text, "path too long");
}

static bool loopback(const char *text)
{
    char err[512];
    struct url u;

    assert_int_equal(url_parse(text, &u, err, sizeof err), 0);
    return addr_host_is_loopback(u.host);
}

/* The rule for ws:// and http:// in clear text: loopback hosts only. */
static void test_loopback(void **state)
{
    (void)state;
    assert_true(loopback("ws://localhost:8080"));
    assert_true(loopback("ws://LOCALHOST"));
    assert_true(loopback("http://127.0.0.1:8081"));
    assert_true(loopback("http://127.255.3.4"));
    assert_true(loopback("ws://[::1]:8080"));
    assert_true(loopback("ws://[0:0:0:0:0:0:0:1]"));
    assert_true(loopback("ws://[::ffff:127.0.0.1]"));
    assert_false(loopback("ws://128.0.0.1"));
    assert_false(loopback("ws://0.0.0.0"));
    assert_false(loopback("ws://[::]"));
    assert_false(loopback("ws://[::2]"));
    assert_false(loopback("ws://[::ffff:10.0.0.1]"));
    assert_false(loopback("ws://localhost.example.com"));
    assert_false(loopback("ws://127.0.0.1.example.com"));
    assert_false(loopback("ws://signer.example.com"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts),    cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_refusals), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_loopback),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
