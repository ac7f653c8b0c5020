/*
 * Unit tests for api.c, the HTTP API bodies: the POST /v1/sign body, the 200
 * answer (written without jansson, so pinned to jansson's bytes here) and the
 * error body, each encoded and decoded back, and the decoders' refusals.
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

#include <wssignd/errors.h>

#include "api.h"
#include "crypto.h"

#define RID "0f8fad5b-d9cb-469f-a165-70867728950e"
#define MAX_MSG 1024

static const size_t headrooms[] = {0, 1, 16, 4096};

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 37 + seed);
}

/* Zeroed headroom, the JSON, then a NUL not counted in len. */
static void check_layout(const char *buf, size_t headroom, size_t len)
{
    for (size_t i = 0; i < headroom; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[headroom], '{');
    assert_int_equal(buf[headroom + len], '\0');
    assert_int_equal(strlen(buf + headroom), len);
}

static json_t *b64_json(const uint8_t *bin, size_t n)
{
    char *text = malloc(crypto_b64_len(n));
    json_t *v;

    assert_non_null(text);
    crypto_b64_encode(text, crypto_b64_len(n), bin, n);
    v = json_string(text);
    free(text);
    return v;
}

static void test_sign_call(void **state)
{
    uint8_t pk[32], msg[5];
    char pk_b64[64], msg_b64[16], want[256];
    size_t len;
    char *body;

    (void)state;
    fill(pk, sizeof pk, 1);
    fill(msg, sizeof msg, 2);
    crypto_b64_encode(pk_b64, sizeof pk_b64, pk, sizeof pk);
    crypto_b64_encode(msg_b64, sizeof msg_b64, msg, sizeof msg);
    body = api_encode_sign_call(
        &len,
        &(struct api_sign_call){.pk = pk, .msg = msg, .msg_len = sizeof msg, .timeout_ms = 2500});
    snprintf(want, sizeof want, "{\"public_key\":\"%s\",\"message\":\"%s\",\"timeout_ms\":2500}",
             pk_b64, msg_b64);
    assert_string_equal(body, want);
    assert_int_equal(strlen(body), len);
    free(body);
    /* wait_ms and the label, escaped as JSON wants */
    body = api_encode_sign_call(&len, &(struct api_sign_call){.pk = pk,
                                                              .msg = msg,
                                                              .msg_len = sizeof msg,
                                                              .wait_ms = 30000,
                                                              .label = "Pay \"5\" \xe2\x82\xac"});
    snprintf(want, sizeof want,
             "{\"public_key\":\"%s\",\"message\":\"%s\",\"wait_ms\":30000,"
             "\"label\":\"Pay \\\"5\\\" \xe2\x82\xac\"}",
             pk_b64, msg_b64);
    assert_string_equal(body, want);
    free(body);
    /* timeout_ms 0 leaves the field out; an empty message is "" */
    body = api_encode_sign_call(&len, &(struct api_sign_call){.pk = pk});
    snprintf(want, sizeof want, "{\"public_key\":\"%s\",\"message\":\"\"}", pk_b64);
    assert_string_equal(body, want);
    free(body);
}

/*
 * The 200 answer is written without jansson: its bytes must be exactly
 * jansson's compact dump of the same object, for every message length around
 * the base64 padding cases, at every headroom, and for ids that need escaping
 * (then jansson writes it).
 */
static void test_sign_result_matches_jansson(void **state)
{
    static const char *const ids[] = {
        RID,    "",        "plain-but-not-a-uuid", "q\"uote", "back\\slash",
        "nl\n", "del\x7f", "utf8-\xc3\xa9"};
    uint8_t pk[32], sig[64], msg[70];
    size_t n, h, k, len;

    (void)state;
    fill(pk, sizeof pk, 3);
    fill(sig, sizeof sig, 4);
    fill(msg, sizeof msg, 5);
    for (k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        for (n = 0; n <= sizeof msg; n++) {
            json_t *obj = json_object();
            char *want, *got;

            json_object_set_new(obj, "request_id", json_string(ids[k]));
            json_object_set_new(obj, "public_key", b64_json(pk, sizeof pk));
            json_object_set_new(obj, "message", b64_json(msg, n));
            json_object_set_new(obj, "signature", b64_json(sig, sizeof sig));
            want = json_dumps(obj, JSON_COMPACT);
            for (h = 0; h < sizeof headrooms / sizeof headrooms[0]; h++) {
                got =
                    api_encode_sign_result(headrooms[h], &len, ids[k], pk, n ? msg : NULL, n, sig);
                check_layout(got, headrooms[h], len);
                assert_int_equal(len, strlen(want));
                assert_memory_equal(got + headrooms[h], want, len);
                free(got);
            }
            free(want);
            json_decref(obj);
        }
    }
}

/* An id that is not valid UTF-8 still gives a JSON answer. */
static void test_sign_result_odd_id(void **state)
{
    uint8_t pk[32] = {0}, sig[64] = {0};
    json_t *obj;
    size_t len;
    char *buf;

    (void)state;
    buf = api_encode_sign_result(0, &len, "bad\xff", pk, NULL, 0, sig);
    obj = json_loadb(buf, len, 0, NULL);
    assert_non_null(obj);
    assert_string_equal(json_string_value(json_object_get(obj, "request_id")), "bad?");
    json_decref(obj);
    free(buf);
}

static void test_sign_result_round_trip(void **state)
{
    uint8_t pk[32], sig[64], msg[300];
    struct api_sign_result r;
    struct wire_error e;
    size_t n, len;
    char *buf;

    (void)state;
    fill(pk, sizeof pk, 6);
    fill(sig, sizeof sig, 7);
    fill(msg, sizeof msg, 8);
    for (n = 0; n <= sizeof msg; n += 13) {
        buf = api_encode_sign_result(16, &len, RID, pk, msg, n, sig);
        assert_int_equal(api_decode_sign_result(buf + 16, len, MAX_MSG, &r, &e), 0);
        assert_string_equal(r.request_id, RID);
        assert_memory_equal(r.public_key, pk, sizeof pk);
        assert_memory_equal(r.signature, sig, sizeof sig);
        assert_int_equal(r.message_len, n);
        assert_non_null(r.message);
        if (n)
            assert_memory_equal(r.message, msg, n);
        /* max_message is inclusive */
        api_sign_result_cleanup(&r);
        assert_null(r.message);
        assert_int_equal(api_decode_sign_result(buf + 16, len, n, &r, NULL), 0);
        api_sign_result_cleanup(&r);
        if (n) {
            assert_int_equal(api_decode_sign_result(buf + 16, len, n - 1, &r, &e), WSS_ERR_PROTO);
            assert_string_equal(e.code, "bad_field");
            assert_null(r.message);
        }
        free(buf);
    }
    api_sign_result_cleanup(NULL);
}

#define PK_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define SIG_B64 \
    "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+fw=="

static void expect_refused(const char *text, const char *code, const char *message)
{
    struct api_sign_result r;
    struct wire_error e;

    memset(&r, 0x5a, sizeof r);
    assert_int_equal(api_decode_sign_result(text, strlen(text), MAX_MSG, &r, &e), WSS_ERR_PROTO);
    if (strcmp(e.code, code) != 0 || strcmp(e.message, message) != 0)
        print_error("answer %s\n  got %s: %s\n", text, e.code, e.message);
    assert_string_equal(e.code, code);
    assert_string_equal(e.message, message);
    assert_null(r.message);
    assert_int_equal(r.request_id[0], '\0');
}

static void test_sign_result_refused(void **state)
{
    struct api_sign_result r;
    static const char extra[] =
        "{\"request_id\":\"" RID "\",\"public_key\":\"" PK_B64
        "\",\"message\":\"eA==\",\"signature\":\"" SIG_B64 "\",\"added_later\":[1,2]}";

    (void)state;
    expect_refused("", "bad_json", "answer is not valid JSON");
    expect_refused("[1]", "bad_json", "answer must be a JSON object");
    expect_refused("{\"request_id\":\"" RID "\",\"request_id\":\"" RID "\"}", "bad_json",
                   "answer has a duplicate key");
    expect_refused("{}", "missing_field", "field 'request_id' is missing");
    expect_refused("{\"request_id\":\"" RID "x\"}", "bad_field",
                   "field 'request_id' must be a lowercase UUID");
    expect_refused("{\"request_id\":\"" RID "\",\"public_key\":\"AAAA\"}", "bad_field",
                   "field 'public_key' must decode to 32 bytes");
    expect_refused("{\"request_id\":\"" RID "\",\"public_key\":\"" PK_B64
                   "\",\"signature\":\"" SIG_B64 "\",\"message\":\"e A=\"}",
                   "bad_field", "field 'message' is not valid base64");
    expect_refused("{\"request_id\":\"" RID "\",\"public_key\":\"" PK_B64
                   "\",\"signature\":\"" SIG_B64 "\"}",
                   "missing_field", "field 'message' is missing");
    /* fields a newer daemon adds are ignored */
    assert_int_equal(api_decode_sign_result(extra, strlen(extra), MAX_MSG, &r, NULL), 0);
    assert_int_equal(r.message_len, 1);
    assert_int_equal(r.message[0], 'x');
    api_sign_result_cleanup(&r);
}

/* The error body has the shape the HTTP controller has always sent. */
static void test_error_body(void **state)
{
    size_t len, h;
    char *buf;

    (void)state;
    for (h = 0; h < sizeof headrooms / sizeof headrooms[0]; h++) {
        buf = api_encode_error(headrooms[h], &len, "timeout", "signer did not answer", RID);
        check_layout(buf, headrooms[h], len);
        assert_string_equal(buf + headrooms[h],
                            "{\"error\":{\"code\":\"timeout\",\"message\":\"signer did not "
                            "answer\",\"request_id\":\"" RID "\"}}");
        free(buf);
    }
    buf = api_encode_error(0, &len, "not_found", "no such endpoint", NULL);
    assert_string_equal(buf,
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint\"}}");
    free(buf);
    buf = api_encode_error(0, &len, "bad_request", "quote \" nl \n", "");
    assert_string_equal(buf, "{\"error\":{\"code\":\"bad_request\",\"message\":\"quote \\\" nl "
                             "\\n\"}}");
    free(buf);
}

static void test_error_round_trip(void **state)
{
    struct api_error e;
    size_t len;
    char *buf;

    (void)state;
    buf = api_encode_error(0, &len, "rejected", "signer rejected the request: declined", RID);
    assert_int_equal(api_decode_error(buf, len, &e), 0);
    assert_string_equal(e.code, "rejected");
    assert_string_equal(e.message, "signer rejected the request: declined");
    assert_string_equal(e.request_id, RID);
    free(buf);
    buf = api_encode_error(0, &len, "unauthorized", "a valid bearer token is required", NULL);
    assert_int_equal(api_decode_error(buf, len, &e), 0);
    assert_string_equal(e.code, "unauthorized");
    assert_string_equal(e.request_id, "");
    free(buf);
}

static void expect_error_body(const char *text, int rc)
{
    struct api_error e;

    memset(&e, 0x5a, sizeof e);
    assert_int_equal(api_decode_error(text, strlen(text), &e), rc);
    if (rc) {
        assert_int_equal(e.code[0], '\0');
        assert_int_equal(e.message[0], '\0');
        assert_int_equal(e.request_id[0], '\0');
    }
}

static void test_error_decode_rules(void **state)
{
    struct api_error e;
    char long_text[600];
    char body[800];

    (void)state;
    expect_error_body("", WSS_ERR_PROTO);
    expect_error_body("[]", WSS_ERR_PROTO);
    expect_error_body("{\"error\":\"timeout\"}", WSS_ERR_PROTO);
    expect_error_body("{\"error\":{}}", WSS_ERR_PROTO);
    expect_error_body("{\"error\":{\"code\":\"\"}}", WSS_ERR_PROTO);
    expect_error_body("{\"error\":{\"code\":\"two words\"}}", WSS_ERR_PROTO);
    expect_error_body("{\"error\":{\"code\":\"x\",\"code\":\"y\"}}", WSS_ERR_PROTO);
    expect_error_body("{\"error\":{\"code\":"
                      "\"a234567890123456789012345678901234567890123456789012345678901234\"}}",
                      0);
    expect_error_body("{\"error\":{\"code\":"
                      "\"a2345678901234567890123456789012345678901234567890123456789012345\"}}",
                      WSS_ERR_PROTO);
    /* message and request_id are optional; a malformed id is dropped, not fatal */
    snprintf(body, sizeof body, "%s",
             "{\"error\":{\"code\":\"x\",\"message\":7,\"request_id\":\"NOT-A-UUID\"}}");
    assert_int_equal(api_decode_error(body, strlen(body), &e), 0);
    assert_string_equal(e.code, "x");
    assert_string_equal(e.message, "");
    assert_string_equal(e.request_id, "");
    /* a long message is cut, not refused */
    memset(long_text, 'm', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    snprintf(body, sizeof body, "{\"error\":{\"code\":\"x\",\"message\":\"%s\"}}", long_text);
    assert_int_equal(api_decode_error(body, strlen(body), &e), 0);
    assert_int_equal(strlen(e.message), WIRE_TEXT_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_call),
        cmocka_unit_test(test_sign_result_matches_jansson),
        cmocka_unit_test(test_sign_result_odd_id),
        cmocka_unit_test(test_sign_result_round_trip),
        cmocka_unit_test(test_sign_result_refused),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_error_round_trip),
        cmocka_unit_test(test_error_decode_rules),
    };

    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
