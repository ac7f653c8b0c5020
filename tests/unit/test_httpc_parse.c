/*
 * Unit tests for the parser of the control API's answers (httpc_parse.c):
 * Content-Length, chunked and read-to-close bodies, interim 1xx answers,
 * the same answer fed at once and byte by byte, and the refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <wssignd/errors.h>

#include "httpc_parse.h"

/* Per parse: the outcome of feeding one answer. */
struct outcome {
    int rc;
    int status;
    char body[512];
    size_t len;
    char err[256];
};

/* Feeds text in pieces of step bytes (0: all at once), then eof if still needed. */
static struct outcome feed(const char *text, size_t step)
{
    size_t total = strlen(text), fed = 0, len = 0;
    char *buf = malloc(total + 1);
    struct outcome o;

    memset(&o, 0, sizeof o);
    assert_non_null(buf);
    do {
        size_t n = step && total - fed > step ? step : total - fed;

        memcpy(buf + len, text + fed, n);
        len += n;
        fed += n;
        o.rc = httpc_parse_response(buf, &len, false, &o.status, o.err, sizeof o.err);
    } while (o.rc == 0 && fed < total);
    if (o.rc == 0)
        o.rc = httpc_parse_response(buf, &len, true, &o.status, o.err, sizeof o.err);
    if (o.rc == 1) {
        assert_true(len < sizeof o.body);
        assert_int_equal(buf[len], '\0');
        memcpy(o.body, buf, len + 1);
        o.len = len;
    }
    free(buf);
    return o;
}

/* The answer parses the same whichever way it arrives. */
static void expect_answer(const char *text, int status, const char *body)
{
    static const size_t steps[] = {0, 1, 2, 7};

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct outcome o = feed(text, steps[i]);

        if (o.rc != 1)
            print_error("step %zu: rc=%d %s\n", steps[i], o.rc, o.err);
        assert_int_equal(o.rc, 1);
        assert_int_equal(o.status, status);
        assert_int_equal(o.len, strlen(body));
        assert_string_equal(o.body, body);
    }
}

static void expect_refused(const char *text, int rc, const char *err)
{
    struct outcome o = feed(text, 0);

    assert_int_equal(o.rc, rc);
    assert_string_equal(o.err, err);
    o = feed(text, strlen(text) < 4096 ? 1 : 4096);
    assert_int_equal(o.rc, rc);
}

static void test_bodies(void **state)
{
    (void)state;
    expect_answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello");
    /* bytes past Content-Length are not part of the answer */
    expect_answer("HTTP/1.1 404 Not Found\r\ncontent-length:  2 \r\n\r\n{}trailing", 404, "{}");
    expect_answer("HTTP/1.0 204 No Content\r\nContent-Length: 0\r\n\r\n", 204, "");
    expect_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n1;ext=1\r\n,\r\nA\r\n world!!! \r\n0\r\n\r\n",
                  200, "hello, world!!! ");
    expect_answer("HTTP/1.1 503 x\r\nTRANSFER-ENCODING: gzip, chunked\r\n\r\n0\r\n\r\n", 503, "");
    /* neither: the body ends when the connection does */
    expect_answer("HTTP/1.1 500 Oops\r\nX-A: b\r\n\r\nuntil close", 500, "until close");
}

/* Interim answers are dropped, also when the final one arrives with them and
 * the connection closes at once. */
static void test_interim_answers(void **state)
{
    (void)state;
    expect_answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                  200, "ok");
    expect_answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 x\r\n\r\nno", 401, "no");
}

static void test_refusals(void **state)
{
    char *big;

    (void)state;
    expect_refused("SMTP/1.1 200 OK\r\n\r\n", WSS_ERR_PROTO, "the answer is not valid HTTP/1.1");
    expect_refused("HTTP/1.1 600 x\r\n\r\n", WSS_ERR_PROTO, "the answer is not valid HTTP/1.1");
    expect_refused("HTTP/1.1 2x0 x\r\n\r\n", WSS_ERR_PROTO, "the answer is not valid HTTP/1.1");
    expect_refused("HTTP/1.1 200\r\nno colon\r\n\r\n", WSS_ERR_PROTO,
                   "the answer is not valid HTTP/1.1");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", WSS_ERR_PROTO,
                   "the answer is not valid HTTP/1.1");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", WSS_ERR_PROTO,
                   "the answer is not valid HTTP/1.1");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", WSS_ERR_PROTO,
                   "the answer is not valid HTTP/1.1");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", WSS_ERR_PROTO,
                   "bad chunked encoding in the answer");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n",
                   WSS_ERR_PROTO, "bad chunked encoding in the answer");
    expect_refused("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", WSS_ERR_IO,
                   "the connection closed before the answer was complete");
    expect_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                   WSS_ERR_IO, "the connection closed before the answer was complete");
    expect_refused("HTTP/1.1 200 OK\r\n", WSS_ERR_IO,
                   "the connection closed before the answer was complete");
    expect_refused("", WSS_ERR_IO, "the connection closed before the answer was complete");
    /* a header block over the limit, whether its end has arrived or not */
    big = malloc(HTTPC_HEADER_MAX + 64);
    assert_non_null(big);
    memset(big, 'a', HTTPC_HEADER_MAX + 63);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    big[HTTPC_HEADER_MAX + 63] = '\0';
    expect_refused(big, WSS_ERR_PROTO, "the answer is not valid HTTP/1.1");
    memcpy(big + HTTPC_HEADER_MAX + 59, "\r\n\r\n", 4);
    expect_refused(big, WSS_ERR_PROTO, "the answer is not valid HTTP/1.1");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_interim_answers),
        cmocka_unit_test(test_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
