/*
 * Unit tests for the parts of the control listener's HTTP plumbing
 * (http.c) that need no socket: routing by whole path segments, header
 * names to lws tokens, method names, answer content types, declared
 * lengths, and the route table's refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <wssignd/errors.h>

#include "http.h"

static int match(const char *path)
{
    static const char *const prefixes[] = {"/", "/v1", "/v1/keys/", "/healthz"};

    return http_route_match(prefixes, 4, path);
}

static void test_route_match(void **state)
{
    static const char *const no_root[] = {"/v1", "/metrics"};

    assert_int_equal(match("/healthz"), 3);
    assert_int_equal(match("/v1"), 1);
    assert_int_equal(match("/v1/sign"), 1);
    /* Whole segments only: "/v1" does not own "/v10", which falls to "/". */
    assert_int_equal(match("/v10"), 0);
    assert_int_equal(match("/healthzz"), 0);
    assert_int_equal(match("/healthz/x"), 3);
    /* A prefix ending in '/' owns what follows it; the longest match wins. */
    assert_int_equal(match("/v1/keys/abc"), 2);
    assert_int_equal(match("/v1/keys"), 1);
    assert_int_equal(match("/"), 0);
    assert_int_equal(match("/anything/else"), 0);
    /* Without "/" a path no prefix owns has no route. */
    assert_int_equal(http_route_match(no_root, 2, "/v1/sign"), 0);
    assert_int_equal(http_route_match(no_root, 2, "/metrics"), 1);
    assert_int_equal(http_route_match(no_root, 2, "/metricsx"), -1);
    assert_int_equal(http_route_match(no_root, 2, "/"), -1);
    assert_int_equal(http_route_match(no_root, 0, "/v1"), -1);
}

static void test_header_tokens(void **state)
{
    assert_int_equal(http_header_token("authorization"), WSI_TOKEN_HTTP_AUTHORIZATION);
    assert_int_equal(http_header_token("Authorization"), WSI_TOKEN_HTTP_AUTHORIZATION);
    assert_int_equal(http_header_token("CONTENT-TYPE"), WSI_TOKEN_HTTP_CONTENT_TYPE);
    assert_int_equal(http_header_token("content-length"), WSI_TOKEN_HTTP_CONTENT_LENGTH);
    assert_int_equal(http_header_token("host"), WSI_TOKEN_HOST);
    /* Request-line tokens and pseudo-headers are not headers. */
    assert_int_equal(http_header_token("get"), -1);
    assert_int_equal(http_header_token("post "), -1);
    assert_int_equal(http_header_token(":path"), -1);
    assert_int_equal(http_header_token("path"), -1);
    /* Names lws does not know are custom headers; nonsense is no token. */
    assert_int_equal(http_header_token("x-request-id"), -1);
    assert_int_equal(http_header_token("authorization:"), -1);
    assert_int_equal(http_header_token(""), -1);
    assert_int_equal(http_header_token(NULL), -1);
    {
        char long_name[200];

        memset(long_name, 'a', sizeof long_name - 1);
        long_name[sizeof long_name - 1] = '\0';
        assert_int_equal(http_header_token(long_name), -1);
    }
}

static void test_method_names(void **state)
{
    assert_string_equal(http_method_name(LWSHUMETH_GET), "GET");
    assert_string_equal(http_method_name(LWSHUMETH_POST), "POST");
    assert_string_equal(http_method_name(LWSHUMETH_DELETE), "DELETE");
    assert_string_equal(http_method_name(LWSHUMETH_HEAD), "HEAD");
    /* lws's h2 ":path" pseudo-method and anything out of range: none. */
    assert_null(http_method_name(LWSHUMETH_COLON_PATH));
    assert_null(http_method_name(-1));
    assert_null(http_method_name(99));
}

static void test_content_type(void **state)
{
    char out[HTTP_CTYPE_MAX], long_type[200];

    assert_string_equal(http_content_type(out, "application/json"), "application/json");
    assert_string_equal(http_content_type(out, "text/plain; version=0.0.4; charset=utf-8"),
                        "text/plain; version=0.0.4; charset=utf-8");
    /* A control character would end the header: the value stops before it. */
    assert_string_equal(http_content_type(out, "text/plain\r\nset-cookie: x"), "text/plain");
    assert_string_equal(http_content_type(out, "a\x7f"
                                               "b"),
                        "a");
    assert_string_equal(http_content_type(out, ""), "application/octet-stream");
    assert_string_equal(http_content_type(out, NULL), "application/octet-stream");
    memset(long_type, 'x', sizeof long_type - 1);
    long_type[sizeof long_type - 1] = '\0';
    assert_int_equal(strlen(http_content_type(out, long_type)), HTTP_CTYPE_MAX - 1);
}

static void test_length_exceeds(void **state)
{
    assert_false(http_length_exceeds("0", 0));
    assert_true(http_length_exceeds("1", 0));
    assert_false(http_length_exceeds("65536", 65536));
    assert_true(http_length_exceeds("65537", 65536));
    assert_true(http_length_exceeds("000000000000000000000000065537", 65536));
    assert_true(http_length_exceeds("99999999999999999999999999999", SIZE_MAX - 1));
    /* Not a length: lws refuses it itself; no verdict here. */
    assert_false(http_length_exceeds("", 10));
    assert_false(http_length_exceeds("12a", 10));
    assert_false(http_length_exceeds("-5", 10));
    assert_false(http_length_exceeds(" 5", 1));
}

static void handler(struct wss_http_request *req, void *state)
{
}

static void test_routes_table(void **state)
{
    struct http_server *srv = http_server_new(NULL, NULL);
    char err[128] = "";

    assert_int_equal(http_server_add_route(srv, "/", handler, NULL, err, sizeof err), 0);
    assert_int_equal(http_server_add_route(srv, "/v1", handler, NULL, err, sizeof err), 0);
    assert_int_equal(http_server_add_route(srv, "/v1", handler, NULL, err, sizeof err),
                     WSS_ERR_EXISTS);
    assert_string_equal(err, "two controllers serve the HTTP prefix /v1");
    assert_int_equal(http_server_add_route(srv, "v1", handler, NULL, err, sizeof err),
                     WSS_ERR_INVAL);
    assert_int_equal(http_server_add_route(srv, "/x", NULL, NULL, err, sizeof err), WSS_ERR_INVAL);
    assert_int_equal(http_server_route_count(srv), 2);
    assert_string_equal(http_server_route_prefix(srv, 1), "/v1");
    assert_int_equal(http_server_route_count(NULL), 0);
    http_server_stop(srv);
    http_server_free(srv);
    http_server_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_match),    cmocka_unit_test(test_header_tokens),
        cmocka_unit_test(test_method_names),   cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_length_exceeds), cmocka_unit_test(test_routes_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
