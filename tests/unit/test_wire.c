/*
 * Unit tests for wire.c: every encoder parsed back with jansson, headroom
 * placement, decoding of each client frame type, error codes, messages and
 * request_id echo, and wire_msg_cleanup; then both directions: every frame
 * type encoded by one side and decoded by the other, each side refusing its
 * own frame types, and wssign's decoding of server frames with its refusals.
 * The data-driven edge cases of client frames live in tests/proto/{valid,invalid}.
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

#include "crypto.h"
#include "wire.h"

#define HEADROOM 16 /* LWS_PRE on Debian's lws 4.1.6 */
#define MAX_MSG 1024
#define RID "0f8fad5b-d9cb-469f-a165-70867728950e"

static const size_t headrooms[] = {0, 1, HEADROOM, 4096};

/*
 * Checks an encoder's buffer: zeroed headroom, JSON starting right after it,
 * a NUL right after the counted length and no NUL inside; returns the
 * parsed object.
 */
static json_t *parse_frame(const char *buf, size_t headroom, size_t len)
{
    json_error_t jerr;
    json_t *obj;
    size_t i;

    assert_non_null(buf);
    for (i = 0; i < headroom; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[headroom], '{');
    assert_int_equal(buf[headroom + len - 1], '}');
    assert_int_equal(buf[headroom + len], '\0');
    assert_int_equal(strlen(buf + headroom), len);
    /* compact: no spaces after separators */
    assert_null(strstr(buf + headroom, ", "));
    assert_null(strstr(buf + headroom, "\": "));
    obj = json_loadb(buf + headroom, len, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(obj);
    assert_true(json_is_object(obj));
    return obj;
}

static void expect_str(json_t *obj, const char *key, const char *want)
{
    json_t *v = json_object_get(obj, key);

    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), want);
}

static void test_encode_challenge(void **state)
{
#define NONCE "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    static const char nonce[] = NONCE;
    size_t i, len = 0;

    for (i = 0; i < sizeof(headrooms) / sizeof(headrooms[0]); i++) {
        char *buf = wire_encode_challenge(headrooms[i], &len, nonce);
        json_t *obj = parse_frame(buf, headrooms[i], len);

        assert_int_equal(json_object_size(obj), 3);
        expect_str(obj, "type", "challenge");
        expect_str(obj, "nonce", nonce);
        expect_str(obj, "protocol", "wssign.v1");
        /* the exact bytes: compact, keys in insertion order */
        assert_string_equal(buf + headrooms[i], "{\"type\":\"challenge\",\"nonce\":\"" NONCE
                                                "\",\"protocol\":\"wssign.v1\"}");
        json_decref(obj);
        free(buf);
    }
}

static void test_encode_introduced(void **state)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], back[crypto_sign_PUBLICKEYBYTES];
    size_t i, len, n;
    char *buf;
    json_t *obj, *v;

    for (i = 0; i < sizeof(pk); i++)
        pk[i] = (uint8_t)(0xf0 + i);
    buf = wire_encode_introduced(HEADROOM, &len, pk, RID);
    obj = parse_frame(buf, HEADROOM, len);
    assert_int_equal(json_object_size(obj), 3);
    expect_str(obj, "type", "introduced");
    expect_str(obj, "session_id", RID);
    v = json_object_get(obj, "public_key");
    assert_true(json_is_string(v));
    assert_int_equal(json_string_length(v), 44);
    assert_int_equal(crypto_b64_decode(back, sizeof(back), &n, json_string_value(v), 44), 0);
    assert_int_equal(n, sizeof(pk));
    assert_memory_equal(back, pk, sizeof(pk));
    json_decref(obj);
    free(buf);
}

static void test_encode_sign_request(void **state)
{
    static const uint8_t msg[] = {0x00, 0xff, 'a', 'b', 0x00, 0x80};
    uint8_t back[16];
    size_t len, n;
    char *buf;
    json_t *obj, *v;

    buf = wire_encode_sign_request(HEADROOM, &len, RID, msg, sizeof(msg), 1767225600123ULL);
    obj = parse_frame(buf, HEADROOM, len);
    assert_int_equal(json_object_size(obj), 4);
    expect_str(obj, "type", "sign_request");
    expect_str(obj, "request_id", RID);
    v = json_object_get(obj, "message");
    assert_true(json_is_string(v));
    assert_int_equal(
        crypto_b64_decode(back, sizeof(back), &n, json_string_value(v), json_string_length(v)), 0);
    assert_int_equal(n, sizeof(msg));
    assert_memory_equal(back, msg, sizeof(msg));
    v = json_object_get(obj, "expires_at");
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 1767225600123LL);
    json_decref(obj);
    free(buf);

    /* an empty message is the empty string */
    buf = wire_encode_sign_request(0, &len, RID, NULL, 0, 0);
    obj = parse_frame(buf, 0, len);
    expect_str(obj, "message", "");
    assert_int_equal(json_integer_value(json_object_get(obj, "expires_at")), 0);
    json_decref(obj);
    free(buf);
}

/*
 * The sign request is written without jansson: its bytes must be exactly
 * what jansson's compact dump of the same object gives, for every message
 * length around the base64 padding cases and for the clamped timestamps.
 */
static void test_encode_sign_request_matches_jansson(void **state)
{
    static const uint64_t stamps[] = {
        0, 1, 1767225600123ULL, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    uint8_t msg[70];
    char b64[128];
    size_t len, i, n, k;

    (void)state;
    for (i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 37 + 11);
    for (n = 0; n <= sizeof msg; n++) {
        for (k = 0; k < sizeof stamps / sizeof stamps[0]; k++) {
            json_t *obj = json_object();
            char *want, *got;

            crypto_b64_encode(b64, sizeof b64, msg, n);
            json_object_set_new(obj, "type", json_string("sign_request"));
            json_object_set_new(obj, "request_id", json_string(RID));
            json_object_set_new(obj, "message", json_string(b64));
            json_object_set_new(
                obj, "expires_at",
                json_integer(stamps[k] > INT64_MAX ? INT64_MAX : (json_int_t)stamps[k]));
            want = json_dumps(obj, JSON_COMPACT);
            got = wire_encode_sign_request(HEADROOM, &len, RID, n ? msg : NULL, n, stamps[k]);
            assert_int_equal(len, strlen(want));
            assert_memory_equal(got + HEADROOM, want, len);
            assert_int_equal(got[HEADROOM + len], '\0');
            free(want);
            free(got);
            json_decref(obj);
        }
    }
}

/* An id that is not a request id never reaches the frame unescaped. */
static void test_encode_sign_request_odd_id(void **state)
{
    static const uint8_t msg[] = {1, 2, 3};
    size_t len;
    char *buf;
    json_t *obj;

    (void)state;
    buf = wire_encode_sign_request(0, &len, "\"},\"type\":\"x", msg, sizeof msg, 5);
    obj = parse_frame(buf, 0, len);
    assert_int_equal(json_object_size(obj), 4);
    expect_str(obj, "type", "sign_request");
    expect_str(obj, "request_id", "");
    json_decref(obj);
    free(buf);
}

static void test_encode_cancel(void **state)
{
    static const char *const reasons[] = {"timeout", "requester_cancelled", "shutting_down"};
    size_t i, len;

    for (i = 0; i < 3; i++) {
        char *buf = wire_encode_cancel(HEADROOM, &len, RID, reasons[i]);
        json_t *obj = parse_frame(buf, HEADROOM, len);

        assert_int_equal(json_object_size(obj), 3);
        expect_str(obj, "type", "cancel");
        expect_str(obj, "request_id", RID);
        expect_str(obj, "reason", reasons[i]);
        json_decref(obj);
        free(buf);
    }
}

static void test_encode_error(void **state)
{
    size_t len;
    char *buf;
    json_t *obj;

    buf = wire_encode_error(HEADROOM, &len, "bad_field",
                            "field 'signature' must decode to 64 bytes", RID);
    obj = parse_frame(buf, HEADROOM, len);
    assert_int_equal(json_object_size(obj), 4);
    expect_str(obj, "type", "error");
    expect_str(obj, "code", "bad_field");
    expect_str(obj, "message", "field 'signature' must decode to 64 bytes");
    expect_str(obj, "request_id", RID);
    json_decref(obj);
    free(buf);

    /* no request id: the field is omitted, for NULL and for "" */
    buf = wire_encode_error(HEADROOM, &len, "bad_json", "frame is not valid JSON", NULL);
    obj = parse_frame(buf, HEADROOM, len);
    assert_int_equal(json_object_size(obj), 3);
    assert_null(json_object_get(obj, "request_id"));
    json_decref(obj);
    free(buf);
    buf = wire_encode_error(HEADROOM, &len, "bad_json", "x", "");
    obj = parse_frame(buf, HEADROOM, len);
    assert_null(json_object_get(obj, "request_id"));
    json_decref(obj);
    free(buf);

    /* text needing escapes, and bytes that are not UTF-8, still give valid JSON */
    buf = wire_encode_error(HEADROOM, &len, "bad_field", "quote \" backslash \\ nl \n \xff end",
                            NULL);
    obj = parse_frame(buf, HEADROOM, len);
    expect_str(obj, "message", "quote \" backslash \\ nl \n ? end");
    json_decref(obj);
    free(buf);
}

/* Builds a frame from a printf format into a static buffer. */
static const char *frame(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *frame(const char *fmt, ...)
{
    static char buf[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return buf;
}

/* The daemon's decoder: frames a client sends. */
static int decode_n(const char *buf, size_t len, size_t max, struct wire_msg *m,
                    struct wire_error *e)
{
    return wire_decode(WIRE_FROM_CLIENT, buf, len, max, m, e);
}

static int decode(const char *text, struct wire_msg *m, struct wire_error *e)
{
    return decode_n(text, strlen(text), MAX_MSG, m, e);
}

/* Base64 of 32 bytes 0x01..0x20 and of 64 bytes 0x40..0x7f. */
#define KEY_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define SIG_B64 \
    "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+fw=="

static void test_decode_introduction(void **state)
{
    struct wire_msg m;
    struct wire_error e;
    size_t i;

    assert_int_equal(decode("{\"type\":\"introduction\",\"public_key\":\"" KEY_B64
                            "\",\"host\":\"signer.example.com\",\"proof\":\"" SIG_B64 "\"}",
                            &m, &e),
                     0);
    assert_int_equal(m.type, WIRE_INTRODUCTION);
    for (i = 0; i < 32; i++)
        assert_int_equal(m.public_key[i], i + 1);
    assert_string_equal(m.host, "signer.example.com");
    assert_true(m.has_proof);
    for (i = 0; i < 64; i++)
        assert_int_equal(m.proof[i], 0x40 + i);
    assert_null(m.message);
    assert_string_equal(m.request_id, "");
    wire_msg_cleanup(&m);

    /* without proof; field order does not matter */
    assert_int_equal(
        decode("{\"host\":\"h\",\"public_key\":\"" KEY_B64 "\",\"type\":\"introduction\"}", &m, &e),
        0);
    assert_int_equal(m.type, WIRE_INTRODUCTION);
    assert_false(m.has_proof);
    assert_string_equal(m.host, "h");
    for (i = 0; i < 64; i++)
        assert_int_equal(m.proof[i], 0);
    wire_msg_cleanup(&m);
}

/* introduction.proof "none": an introduction is type and public_key, nothing else; the
 * other client frames are decoded as for any client, and the strict rules stay. */
static void test_decode_minimal_introduction(void **state)
{
    static const char *const refused[][2] = {
        {"{\"type\":\"introduction\",\"public_key\":\"" KEY_B64 "\",\"host\":\"h\"}", "bad_field"},
        {"{\"type\":\"introduction\",\"public_key\":\"" KEY_B64 "\",\"proof\":\"" SIG_B64 "\"}",
         "bad_field"},
        {"{\"type\":\"introduction\",\"public_key\":\"" KEY_B64 "\",\"name\":\"x\"}", "bad_field"},
        {"{\"type\":\"introduction\"}", "missing_field"},
        {"{\"type\":\"introduction\",\"public_key\":\"AQID\"}", "bad_field"},
        {"{\"type\":\"introduction\",\"public_key\":null}", "bad_field"},
        {"{\"type\":\"introduction\",\"type\":\"introduction\",\"public_key\":\"" KEY_B64 "\"}",
         "bad_json"},
        {"{\"type\":\"challenge\",\"nonce\":\"" KEY_B64 "\",\"protocol\":\"wssign.v1\"}",
         "unknown_type"},
        {"{\"type\":\"sign_response\",\"request_id\":\"x\"}", "bad_field"},
    };
    const char *minimal = "{\"type\":\"introduction\",\"public_key\":\"" KEY_B64 "\"}";
    struct wire_msg m;
    struct wire_error e;

    assert_int_equal(
        wire_decode(WIRE_FROM_MINIMAL_CLIENT, minimal, strlen(minimal), MAX_MSG, &m, &e), 0);
    assert_int_equal(m.type, WIRE_INTRODUCTION);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(m.public_key[i], i + 1);
    assert_string_equal(m.host, "");
    assert_false(m.has_proof);
    wire_msg_cleanup(&m);

    /* The same frame stays refused from a client of the other modes. */
    assert_int_equal(decode(minimal, &m, &e), WSS_ERR_PROTO);
    assert_string_equal(e.code, "missing_field");
    assert_non_null(strstr(e.message, "'host'"));

    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = wire_decode(WIRE_FROM_MINIMAL_CLIENT, refused[i][0], strlen(refused[i][0]),
                             MAX_MSG, &m, &e);

        if (rc != WSS_ERR_PROTO || strcmp(e.code, refused[i][1]) != 0)
            fail_msg("%s: rc=%d code=%s, want %s", refused[i][0], rc, rc ? e.code : "-",
                     refused[i][1]);
    }
    /* A host or a proof is named, with the reason. */
    assert_int_equal(wire_decode(WIRE_FROM_MINIMAL_CLIENT, refused[1][0], strlen(refused[1][0]),
                                 MAX_MSG, &m, &e),
                     WSS_ERR_PROTO);
    assert_non_null(strstr(e.message, "field 'proof' is not accepted"));
    assert_non_null(strstr(e.message, "no challenge"));

    /* Answers decode as from any client. */
    {
        const char *resp = "{\"type\":\"sign_response\",\"request_id\":"
                           "\"01234567-89ab-4def-8123-456789abcdef\",\"message\":\"aGk=\","
                           "\"signature\":\"" SIG_B64 "\"}";
        const char *rej = "{\"type\":\"sign_reject\",\"request_id\":"
                          "\"01234567-89ab-4def-8123-456789abcdef\"}";

        assert_int_equal(wire_decode(WIRE_FROM_MINIMAL_CLIENT, resp, strlen(resp), MAX_MSG, &m, &e),
                         0);
        assert_int_equal(m.type, WIRE_SIGN_RESPONSE);
        assert_int_equal(m.message_len, 2);
        wire_msg_cleanup(&m);
        assert_int_equal(wire_decode(WIRE_FROM_MINIMAL_CLIENT, rej, strlen(rej), MAX_MSG, &m, &e),
                         0);
        assert_int_equal(m.type, WIRE_SIGN_REJECT);
        wire_msg_cleanup(&m);
    }
}

static void test_decode_sign_response(void **state)
{
    struct wire_msg m;
    struct wire_error e;
    size_t i;

    assert_int_equal(decode("{\"type\":\"sign_response\",\"request_id\":\"" RID
                            "\",\"message\":\"aGVsbG8=\",\"signature\":\"" SIG_B64 "\"}",
                            &m, &e),
                     0);
    assert_int_equal(m.type, WIRE_SIGN_RESPONSE);
    assert_string_equal(m.request_id, RID);
    assert_non_null(m.message);
    assert_int_equal(m.message_len, 5);
    assert_memory_equal(m.message, "hello", 5);
    for (i = 0; i < 64; i++)
        assert_int_equal(m.signature[i], 0x40 + i);
    wire_msg_cleanup(&m);
    /* cleanup zeroes the struct, and a second cleanup is harmless */
    assert_null(m.message);
    assert_int_equal(m.message_len, 0);
    assert_string_equal(m.request_id, "");
    wire_msg_cleanup(&m);
    wire_msg_cleanup(NULL);

    /* empty message */
    assert_int_equal(decode("{\"type\":\"sign_response\",\"request_id\":\"" RID
                            "\",\"message\":\"\",\"signature\":\"" SIG_B64 "\"}",
                            &m, &e),
                     0);
    assert_int_equal(m.message_len, 0);
    wire_msg_cleanup(&m);
}

static void test_decode_message_limit(void **state)
{
    static char b64[2048];
    uint8_t bin[MAX_MSG + 1];
    struct wire_msg m;
    struct wire_error e;

    memset(bin, 0x5a, sizeof(bin));
    /* exactly max_message */
    crypto_b64_encode(b64, sizeof(b64), bin, MAX_MSG);
    assert_int_equal(decode(frame("{\"type\":\"sign_response\",\"request_id\":\"" RID
                                  "\",\"message\":\"%s\",\"signature\":\"" SIG_B64 "\"}",
                                  b64),
                            &m, &e),
                     0);
    assert_int_equal(m.message_len, MAX_MSG);
    assert_memory_equal(m.message, bin, MAX_MSG);
    wire_msg_cleanup(&m);

    /* one byte over */
    crypto_b64_encode(b64, sizeof(b64), bin, MAX_MSG + 1);
    assert_int_equal(decode(frame("{\"type\":\"sign_response\",\"request_id\":\"" RID
                                  "\",\"message\":\"%s\",\"signature\":\"" SIG_B64 "\"}",
                                  b64),
                            &m, &e),
                     WSS_ERR_PROTO);
    assert_string_equal(e.code, "bad_field");
    assert_string_equal(e.message, "field 'message' must decode to at most 1024 bytes");
    assert_string_equal(e.request_id, RID);
    assert_null(m.message);

    /* max_message 0 admits only the empty message */
    {
        static const char one[] = "{\"type\":\"sign_response\",\"request_id\":\"" RID
                                  "\",\"message\":\"AA==\",\"signature\":\"" SIG_B64 "\"}";
        static const char none[] = "{\"type\":\"sign_response\",\"request_id\":\"" RID
                                   "\",\"message\":\"\",\"signature\":\"" SIG_B64 "\"}";

        assert_int_equal(decode_n(one, sizeof(one) - 1, 0, &m, &e), WSS_ERR_PROTO);
        assert_string_equal(e.code, "bad_field");
        assert_int_equal(decode_n(none, sizeof(none) - 1, 0, &m, &e), 0);
        wire_msg_cleanup(&m);
    }
}

static void test_decode_sign_reject(void **state)
{
    struct wire_msg m;
    struct wire_error e;

    assert_int_equal(decode("{\"type\":\"sign_reject\",\"request_id\":\"" RID
                            "\",\"reason\":\"user said no \\u00e9\"}",
                            &m, &e),
                     0);
    assert_int_equal(m.type, WIRE_SIGN_REJECT);
    assert_string_equal(m.request_id, RID);
    assert_string_equal(m.reason, "user said no \xc3\xa9");
    wire_msg_cleanup(&m);

    assert_int_equal(decode("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\"}", &m, &e), 0);
    assert_string_equal(m.reason, "");
    wire_msg_cleanup(&m);
}

/* One failing frame: the code, the exact message, and the echoed id. */
static void expect_error(const char *text, const char *code, const char *message,
                         const char *request_id)
{
    struct wire_msg m;
    struct wire_error e;

    memset(&m, 0x5a, sizeof(m));
    assert_int_equal(decode(text, &m, &e), WSS_ERR_PROTO);
    assert_non_null(e.code);
    if (strcmp(e.code, code) != 0 || (message && strcmp(e.message, message) != 0))
        print_error("frame %s\n  got %s: %s\n", text, e.code, e.message);
    assert_string_equal(e.code, code);
    if (message)
        assert_string_equal(e.message, message);
    assert_string_equal(e.request_id, request_id);
    /* nothing to free on failure: the struct is zeroed */
    assert_null(m.message);
    assert_int_equal(m.type, 0);
}

static void test_decode_errors(void **state)
{
    expect_error("", "bad_json", "frame is not valid JSON", "");
    expect_error("[]", "bad_json", "frame must be a JSON object", "");
    expect_error("\"x\"", "bad_json", "frame is not valid JSON", "");
    expect_error("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\"} x", "bad_json",
                 "frame has data after the JSON value", "");
    expect_error("{\"type\":\"sign_reject\",\"type\":\"sign_reject\",\"request_id\":\"" RID "\"}",
                 "bad_json", "frame has a duplicate key", "");
    expect_error("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\",\"reason\":1e999}",
                 "bad_json", "frame has a number out of range", "");
    expect_error("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\",\"reason\":\"\\u0000\"}",
                 "bad_json", "frame contains \\u0000", "");
    expect_error("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\",\"reason\":\"\xff\"}",
                 "bad_json", "frame is not valid UTF-8", "");
    expect_error("{}", "missing_field", "field 'type' is missing", "");
    expect_error("{\"type\":7}", "bad_field", "field 'type' must be a string", "");
    expect_error("{\"type\":\"introduce\"}", "unknown_type", "unknown frame type 'introduce'", "");
    expect_error("{\"type\":\"no such\"}", "unknown_type", "unknown frame type", "");
    expect_error("{\"type\":\"sign_response\",\"request_id\":\"" RID "\",\"message\":\"\"}",
                 "missing_field", "field 'signature' is missing", RID);
    expect_error("{\"type\":\"sign_response\",\"request_id\":\"" RID
                 "\",\"message\":\"\",\"signature\":\"AAAA\"}",
                 "bad_field", "field 'signature' must decode to 64 bytes", RID);
    expect_error("{\"type\":\"sign_response\",\"request_id\":\"" RID
                 "\",\"message\":\"\",\"signature\":\"AAA\"}",
                 "bad_field", "field 'signature' is not valid base64", RID);
    expect_error("{\"type\":\"sign_response\",\"request_id\":\"" RID
                 "\",\"message\":\"a b=\",\"signature\":\"" SIG_B64 "\"}",
                 "bad_field", "field 'message' is not valid base64", RID);
    expect_error("{\"type\":\"sign_response\",\"request_id\":\"" RID
                 "\",\"message\":1,\"signature\":\"" SIG_B64 "\"}",
                 "bad_field", "field 'message' must be a string", RID);
    expect_error("{\"type\":\"sign_response\",\"request_id\":\"" RID
                 "\",\"message\":\"\",\"signature\":\"" SIG_B64 "\",\"extra\":true}",
                 "bad_field", "unknown field 'extra' in sign_response", RID);
    expect_error("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\",\"a b\":1}", "bad_field",
                 "unknown field in sign_reject", RID);
    /* proof is not a field of a sign_response, public_key not one of a reject */
    expect_error("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\",\"public_key\":\"\"}",
                 "bad_field", "unknown field 'public_key' in sign_reject", RID);
    expect_error("{\"type\":\"introduction\",\"public_key\":\"" KEY_B64 "\"}", "missing_field",
                 "field 'host' is missing", "");
    expect_error("{\"type\":\"introduction\",\"public_key\":\"" KEY_B64 "\",\"host\":\"\"}",
                 "bad_field", "field 'host' must be 1..253 visible ASCII characters", "");
    expect_error("{\"type\":\"introduction\",\"public_key\":\"" KEY_B64
                 "\",\"host\":\"h\",\"proof\":null}",
                 "bad_field", "field 'proof' must be a string", "");
    expect_error("{\"type\":\"introduction\",\"host\":\"h\",\"public_key\":\"AAAA\"}", "bad_field",
                 "field 'public_key' must decode to 32 bytes", "");
}

static void test_request_id_echo(void **state)
{
    /* echoed whatever else is wrong, as long as the id itself is well formed */
    expect_error("{\"type\":\"sign_response\",\"request_id\":\"" RID "\"}", "missing_field",
                 "field 'message' is missing", RID);
    expect_error("{\"type\":\"bogus\",\"request_id\":\"" RID "\"}", "unknown_type", NULL, RID);
    expect_error("{\"request_id\":\"" RID "\"}", "missing_field", NULL, RID);
    /* not echoed when malformed: uppercase, short, long, no hyphens, braces */
    static const char *const bad_ids[] = {
        "0F8FAD5B-D9CB-469F-A165-70867728950E",  "0f8fad5b-d9cb-469f-a165-70867728950",
        "0f8fad5b-d9cb-469f-a165-70867728950ee", "0f8fad5bxd9cbx469fxa165x70867728950e",
        "{0f8fad5b-d9cb-469f-a165-70867728950}", "0f8fad5b-d9cb-469f-a165-70867728950g",
        "0f8fad5bd9cb-469f-a165-70867728950e-",  "",
    };
    size_t i;

    for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
        expect_error(frame("{\"type\":\"sign_reject\",\"request_id\":\"%s\"}", bad_ids[i]),
                     "bad_field", "field 'request_id' must be a lowercase UUID", "");
    expect_error("{\"type\":\"sign_reject\",\"request_id\":12}", "bad_field",
                 "field 'request_id' must be a string", "");
    /* a duplicate key is bad_json: nothing from that frame is trusted, not even the id */
    expect_error("{\"type\":\"sign_reject\",\"request_id\":\"" RID "\",\"request_id\":\"" RID "\"}",
                 "bad_json", NULL, "");
}

static void test_decode_null_err(void **state)
{
    struct wire_msg m;
    static const char bad[] = "{\"type\":1}";
    static const char good[] = "{\"type\":\"sign_reject\",\"request_id\":\"" RID "\"}";

    assert_int_equal(decode_n(bad, sizeof(bad) - 1, MAX_MSG, &m, NULL), WSS_ERR_PROTO);
    assert_int_equal(decode_n(good, sizeof(good) - 1, MAX_MSG, &m, NULL), 0);
    wire_msg_cleanup(&m);
    /* len is honoured: the frame is not read up to a NUL */
    assert_int_equal(decode_n(good, sizeof(good) - 2, MAX_MSG, &m, NULL), WSS_ERR_PROTO);
}

/* Encoders and decoder agree: a sign_request's message decodes the same way a
 * response carrying it does. Run under valgrind, the loop shows nothing leaks. */
static void test_round_trip_no_leak(void **state)
{
    uint8_t msg[300];
    size_t i, len;

    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    for (i = 0; i < 50; i++) {
        struct wire_msg m;
        struct wire_error e;
        char *req = wire_encode_sign_request(HEADROOM, &len, RID, msg, i * 6, 1);
        json_t *obj = parse_frame(req, HEADROOM, len);
        const char *text = frame("{\"type\":\"sign_response\",\"request_id\":\"" RID
                                 "\",\"message\":\"%s\",\"signature\":\"" SIG_B64 "\"}",
                                 json_string_value(json_object_get(obj, "message")));

        assert_int_equal(decode_n(text, strlen(text), MAX_MSG, &m, &e), 0);
        assert_int_equal(m.message_len, i * 6);
        assert_memory_equal(m.message, msg, i * 6);
        wire_msg_cleanup(&m);
        /* the failing path after the message was allocated frees it too */
        text = frame("{\"type\":\"sign_response\",\"request_id\":\"" RID
                     "\",\"message\":\"%s\",\"signature\":\"AAAA\"}",
                     json_string_value(json_object_get(obj, "message")));
        assert_int_equal(decode_n(text, strlen(text), MAX_MSG, &m, &e), WSS_ERR_PROTO);
        assert_null(m.message);
        json_decref(obj);
        free(req);
    }
}

/* ---- both directions: every frame type encoded, then decoded by the other side ---- */

/* Decodes what an encoder wrote (after its headroom), as the peer would. */
static void peer_decode(enum wire_from from, const char *buf, size_t headroom, size_t len,
                        struct wire_msg *m)
{
    struct wire_error e;

    json_decref(parse_frame(buf, headroom, len)); /* the layout checks */
    if (wire_decode(from, buf + headroom, len, MAX_MSG, m, &e) != 0)
        print_error("frame %s\n  refused %s: %s\n", buf + headroom, e.code, e.message);
    assert_null(e.code);
}

/* An encoder of a frame that carries a request id and a reason. */
typedef char *(*reason_encoder)(size_t headroom, size_t *len, const char *request_id,
                                const char *reason);

/* Each reason, encoded with enc, decodes on the peer (from) to a type frame with it. */
static void round_trip_reasons(reason_encoder enc, enum wire_from from, enum wire_type type,
                               const char *const *reasons, size_t n)
{
    struct wire_msg m;
    size_t i, len;
    char *buf;

    for (i = 0; i < n; i++) {
        buf = enc(HEADROOM, &len, RID, reasons[i]);
        peer_decode(from, buf, HEADROOM, len, &m);
        assert_int_equal(m.type, type);
        assert_string_equal(m.request_id, RID);
        assert_string_equal(m.reason, reasons[i]);
        wire_msg_cleanup(&m);
        free(buf);
    }
}

static void test_round_trip_server_frames(void **state)
{
    static const uint64_t stamps[] = {0, 1, 1767225600123ULL, (uint64_t)INT64_MAX, UINT64_MAX};
    static const char *const reasons[] = {"timeout", "requester_cancelled", "shutting_down"};
    uint8_t nonce[CRYPTO_NONCE_BYTES], pk[crypto_sign_PUBLICKEYBYTES], msg[MAX_MSG];
    char nonce_b64[CRYPTO_NONCE_B64_BYTES];
    struct wire_msg m;
    size_t i, n, len;
    char *buf;

    (void)state;
    crypto_new_nonce(nonce, nonce_b64);
    buf = wire_encode_challenge(HEADROOM, &len, nonce_b64);
    peer_decode(WIRE_FROM_SERVER, buf, HEADROOM, len, &m);
    assert_int_equal(m.type, WIRE_CHALLENGE);
    assert_string_equal(m.nonce_b64, nonce_b64);
    wire_msg_cleanup(&m);
    free(buf);

    for (i = 0; i < sizeof pk; i++)
        pk[i] = (uint8_t)(0xa0 + i);
    buf = wire_encode_introduced(HEADROOM, &len, pk, RID);
    peer_decode(WIRE_FROM_SERVER, buf, HEADROOM, len, &m);
    assert_int_equal(m.type, WIRE_INTRODUCED);
    assert_memory_equal(m.public_key, pk, sizeof pk);
    assert_string_equal(m.session_id, RID);
    wire_msg_cleanup(&m);
    free(buf);

    for (i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 13 + 5);
    for (n = 0; n <= sizeof msg; n += 97) {
        for (i = 0; i < sizeof stamps / sizeof stamps[0]; i++) {
            buf = wire_encode_sign_request(HEADROOM, &len, RID, n ? msg : NULL, n, stamps[i]);
            peer_decode(WIRE_FROM_SERVER, buf, HEADROOM, len, &m);
            assert_int_equal(m.type, WIRE_SIGN_REQUEST);
            assert_string_equal(m.request_id, RID);
            assert_int_equal(m.message_len, n);
            assert_non_null(m.message);
            if (n)
                assert_memory_equal(m.message, msg, n);
            /* past INT64_MAX the stamp is clamped */
            assert_true(m.expires_at == (stamps[i] > INT64_MAX ? INT64_MAX : (int64_t)stamps[i]));
            wire_msg_cleanup(&m);
            assert_null(m.message);
            free(buf);
        }
    }

    round_trip_reasons(wire_encode_cancel, WIRE_FROM_SERVER, WIRE_CANCEL, reasons,
                       sizeof reasons / sizeof reasons[0]);

    buf = wire_encode_error(HEADROOM, &len, "unknown_request",
                            "no such request pending on this connection", RID);
    peer_decode(WIRE_FROM_SERVER, buf, HEADROOM, len, &m);
    assert_int_equal(m.type, WIRE_ERROR);
    assert_string_equal(m.code, "unknown_request");
    assert_string_equal(m.text, "no such request pending on this connection");
    assert_string_equal(m.request_id, RID);
    wire_msg_cleanup(&m);
    free(buf);
    buf = wire_encode_error(0, &len, "superseded", "a newer connection proved the same key", NULL);
    peer_decode(WIRE_FROM_SERVER, buf, 0, len, &m);
    assert_int_equal(m.type, WIRE_ERROR);
    assert_string_equal(m.request_id, "");
    wire_msg_cleanup(&m);
    free(buf);
}

/* A label and a requester name travel with the request; a label needing escapes goes
 * through jansson, and the signer's side decodes what was sent. */
static void test_labelled_sign_request(void **state)
{
    static const char *const labels[] = {
        "Pay 12,50 EUR to ACME",
        "Pay 12,50 \xe2\x82\xac \"now\" \\ to \xf0\x9f\x8d\x95", /* quotes, backslash, UTF-8 */
        "",
    };
    uint8_t msg[] = {1, 2, 3};
    struct wire_msg m;
    char long_label[WIRE_LABEL_MAX + 2], *buf;
    size_t len;
    json_t *obj;

    (void)state;
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        buf = wire_encode_labelled_sign_request(HEADROOM, &len, RID, msg, sizeof msg, 77, labels[i],
                                                i == 2 ? NULL : "billing");
        obj = parse_frame(buf, HEADROOM, len);
        if (labels[i][0])
            expect_str(obj, "label", labels[i]);
        else
            assert_null(json_object_get(obj, "label"));
        if (i == 2)
            assert_null(json_object_get(obj, "requester"));
        json_decref(obj);
        peer_decode(WIRE_FROM_SERVER, buf, HEADROOM, len, &m);
        assert_int_equal(m.type, WIRE_SIGN_REQUEST);
        assert_string_equal(m.label, labels[i]);
        assert_string_equal(m.requester, i == 2 ? "" : "billing");
        assert_int_equal(m.expires_at, 77);
        wire_msg_cleanup(&m);
        free(buf);
    }
    /* The signer refuses a label it must not show. */
    memset(long_label, 'a', sizeof long_label - 1);
    long_label[sizeof long_label - 1] = '\0';
    {
        const char *bad[] = {"{\"type\":\"sign_request\",\"request_id\":\"" RID "\","
                             "\"message\":\"AQID\",\"expires_at\":1,\"label\":\"a\\nb\"}",
                             "{\"type\":\"sign_request\",\"request_id\":\"" RID "\","
                             "\"message\":\"AQID\",\"expires_at\":1,\"label\":\"a\\u0000b\"}",
                             "{\"type\":\"sign_request\",\"request_id\":\"" RID "\","
                             "\"message\":\"AQID\",\"expires_at\":1,\"label\":7}",
                             "{\"type\":\"sign_request\",\"request_id\":\"" RID "\","
                             "\"message\":\"AQID\",\"expires_at\":1,\"requester\":\"a b\"}"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            struct wire_error err;

            assert_int_not_equal(
                wire_decode(WIRE_FROM_SERVER, bad[i], strlen(bad[i]), MAX_MSG, &m, &err), 0);
            /* jansson itself refuses a NUL inside a string */
            assert_string_equal(err.code, i == 1 ? "bad_json" : "bad_field");
        }
    }
    buf = wire_encode_labelled_sign_request(0, &len, RID, msg, sizeof msg, 1, long_label, NULL);
    assert_int_not_equal(wire_decode(WIRE_FROM_SERVER, buf, len, MAX_MSG, &m, NULL), 0);
    free(buf);
}

static void test_round_trip_client_frames(void **state)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], proof[crypto_sign_BYTES], msg[MAX_MSG];
    char long_reason[WIRE_REASON_MAX + 1];
    const char *reasons[] = {"declined", "", long_reason};
    struct wire_msg m;
    size_t i, n, len;
    char *buf;

    (void)state;
    for (i = 0; i < sizeof pk; i++)
        pk[i] = (uint8_t)(0x10 + i);
    for (i = 0; i < sizeof proof; i++)
        proof[i] = (uint8_t)(0x90 + i);
    buf = wire_encode_introduction(HEADROOM, &len, pk, "signer.example.com", proof);
    peer_decode(WIRE_FROM_CLIENT, buf, HEADROOM, len, &m);
    assert_int_equal(m.type, WIRE_INTRODUCTION);
    assert_memory_equal(m.public_key, pk, sizeof pk);
    assert_string_equal(m.host, "signer.example.com");
    assert_true(m.has_proof);
    assert_memory_equal(m.proof, proof, sizeof proof);
    wire_msg_cleanup(&m);
    free(buf);

    for (i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    for (n = 0; n <= sizeof msg; n += 31) {
        buf = wire_encode_sign_response(HEADROOM, &len, RID, n ? msg : NULL, n, proof);
        peer_decode(WIRE_FROM_CLIENT, buf, HEADROOM, len, &m);
        assert_int_equal(m.type, WIRE_SIGN_RESPONSE);
        assert_string_equal(m.request_id, RID);
        assert_int_equal(m.message_len, n);
        if (n)
            assert_memory_equal(m.message, msg, n);
        assert_memory_equal(m.signature, proof, sizeof proof);
        wire_msg_cleanup(&m);
        free(buf);
    }

    memset(long_reason, 'r', WIRE_REASON_MAX);
    long_reason[WIRE_REASON_MAX] = '\0';
    round_trip_reasons(wire_encode_sign_reject, WIRE_FROM_CLIENT, WIRE_SIGN_REJECT, reasons,
                       sizeof reasons / sizeof reasons[0]);
}

/* Each side accepts only the other side's frames: a frame of its own kind is unknown. */
static void test_each_side_refuses_its_own_frames(void **state)
{
    uint8_t key[32] = {1}, sig[64] = {2};
    char *frames[8];
    size_t lens[8], i;
    struct wire_msg m;
    struct wire_error e;

    (void)state;
    frames[0] = wire_encode_challenge(0, &lens[0], NONCE);
    frames[1] = wire_encode_introduced(0, &lens[1], key, RID);
    frames[2] = wire_encode_sign_request(0, &lens[2], RID, key, 3, 5);
    frames[3] = wire_encode_cancel(0, &lens[3], RID, "timeout");
    frames[4] = wire_encode_error(0, &lens[4], "bad_json", "x", NULL);
    frames[5] = wire_encode_introduction(0, &lens[5], key, "h", sig);
    frames[6] = wire_encode_sign_response(0, &lens[6], RID, key, 3, sig);
    frames[7] = wire_encode_sign_reject(0, &lens[7], RID, "declined");
    for (i = 0; i < 8; i++) {
        enum wire_from own = i < 5 ? WIRE_FROM_CLIENT : WIRE_FROM_SERVER;

        assert_int_equal(wire_decode(own, frames[i], lens[i], MAX_MSG, &m, &e), WSS_ERR_PROTO);
        assert_string_equal(e.code, "unknown_type");
        assert_non_null(strstr(e.message, "unknown frame type '"));
        assert_int_equal(wire_decode(!own, frames[i], lens[i], MAX_MSG, &m, &e), 0);
        wire_msg_cleanup(&m);
        free(frames[i]);
    }
}

/* One server frame that wssign must refuse: the code and the exact message. */
static void expect_server_error(const char *text, const char *code, const char *message)
{
    struct wire_msg m;
    struct wire_error e;

    memset(&m, 0x5a, sizeof m);
    if (wire_decode(WIRE_FROM_SERVER, text, strlen(text), MAX_MSG, &m, &e) == 0)
        print_error("frame %s\n  decoded\n", text);
    assert_null(m.message);
    assert_non_null(e.code);
    if (strcmp(e.code, code) != 0 || strcmp(e.message, message) != 0)
        print_error("frame %s\n  got %s: %s\n", text, e.code, e.message);
    assert_string_equal(e.code, code);
    assert_string_equal(e.message, message);
    assert_null(m.message);
    assert_int_equal(m.type, 0);
}

#define CHALLENGE(nonce, protocol) \
    "{\"type\":\"challenge\",\"nonce\":\"" nonce "\",\"protocol\":\"" protocol "\"}"

static void test_decode_server_frame_errors(void **state)
{
    char text[2048];

    (void)state;
    expect_server_error("{\"type\":", "bad_json", "frame is not valid JSON");
    expect_server_error("[]", "bad_json", "frame must be a JSON object");
    expect_server_error("{\"type\":\"cancel\",\"type\":\"cancel\"}", "bad_json",
                        "frame has a duplicate key");
    expect_server_error("{}", "missing_field", "field 'type' is missing");
    expect_server_error(CHALLENGE(NONCE, "wssign.v2"), "bad_field",
                        "unsupported protocol (this client speaks wssign.v1)");
    expect_server_error(CHALLENGE("AAAA", "wssign.v1"), "bad_field",
                        "field 'nonce' must decode to 32 bytes");
    expect_server_error("{\"type\":\"challenge\",\"nonce\":\"" NONCE "\"}", "missing_field",
                        "field 'protocol' is missing");
    expect_server_error("{\"type\":\"challenge\",\"nonce\":\"" NONCE
                        "\",\"protocol\":\"wssign.v1\",\"x\":1}",
                        "bad_field", "unknown field 'x' in challenge");
    expect_server_error("{\"type\":\"introduced\",\"public_key\":\"" KEY_B64
                        "\",\"session_id\":\"\"}",
                        "bad_field", "field 'session_id' must be 1..64 visible ASCII characters");
    expect_server_error("{\"type\":\"introduced\",\"public_key\":\"" KEY_B64
                        "\",\"session_id\":\"a b\"}",
                        "bad_field", "field 'session_id' must be 1..64 visible ASCII characters");
    expect_server_error("{\"type\":\"introduced\",\"public_key\":\"" KEY_B64
                        "\",\"session_id\":\"0123456789012345678901234567890123456789012345678901"
                        "2345678901234\"}",
                        "bad_field", "field 'session_id' must be 1..64 visible ASCII characters");
    expect_server_error("{\"type\":\"sign_request\",\"request_id\":\"" RID
                        "\",\"message\":\"eA==\"}",
                        "missing_field", "field 'expires_at' is missing");
    expect_server_error("{\"type\":\"sign_request\",\"request_id\":\"" RID
                        "\",\"message\":\"eA==\",\"expires_at\":-1}",
                        "bad_field", "field 'expires_at' must be a non-negative integer");
    expect_server_error("{\"type\":\"sign_request\",\"request_id\":\"" RID
                        "\",\"message\":\"eA==\",\"expires_at\":1.5}",
                        "bad_field", "field 'expires_at' must be a non-negative integer");
    expect_server_error("{\"type\":\"sign_request\",\"request_id\":\"" RID
                        "\",\"message\":\"eA==\",\"expires_at\":\"5\"}",
                        "bad_field", "field 'expires_at' must be a non-negative integer");
    expect_server_error("{\"type\":\"sign_request\",\"request_id\":\"ABC\",\"message\":\"eA==\","
                        "\"expires_at\":5}",
                        "bad_field", "field 'request_id' must be a lowercase UUID");
    /* a message over max_message (1026 bytes of "AAAA") is refused before it is decoded */
    snprintf(text, sizeof text,
             "{\"type\":\"sign_request\",\"request_id\":\"" RID "\",\"expires_at\":5,"
             "\"message\":\"%0*d\"}",
             4 * (MAX_MSG + 2) / 3, 0);
    memset(strstr(text, "\"message\":\"") + 11, 'A', 4 * (MAX_MSG + 2) / 3);
    expect_server_error(text, "bad_field", "field 'message' must decode to at most 1024 bytes");
    expect_server_error("{\"type\":\"cancel\",\"request_id\":\"" RID "\"}", "missing_field",
                        "field 'reason' is missing");
    expect_server_error("{\"type\":\"error\",\"code\":\"bad code\",\"message\":\"m\"}", "bad_field",
                        "field 'code' must be 1..64 visible ASCII characters");
    expect_server_error("{\"type\":\"error\",\"code\":\"x\"}", "missing_field",
                        "field 'message' is missing");
    expect_server_error("{\"type\":\"error\",\"code\":\"x\",\"message\":\"m\",\"request_id\":7}",
                        "bad_field", "field 'request_id' must be a string");
}

/* Free text from the server (cancel reasons, error messages) is cut, not refused. */
static void test_decode_server_text_is_cut(void **state)
{
    char text[1024], big[301];
    struct wire_msg m;

    (void)state;
    memset(big, 'w', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(text, sizeof text,
             "{\"type\":\"cancel\",\"request_id\":\"" RID "\",\"reason\":\"%s\"}", big);
    assert_int_equal(wire_decode(WIRE_FROM_SERVER, text, strlen(text), MAX_MSG, &m, NULL), 0);
    assert_int_equal(strlen(m.reason), WIRE_REASON_MAX);
    wire_msg_cleanup(&m);
    snprintf(text, sizeof text, "{\"type\":\"error\",\"code\":\"x\",\"message\":\"%s\"}", big);
    assert_int_equal(wire_decode(WIRE_FROM_SERVER, text, strlen(text), MAX_MSG, &m, NULL), 0);
    assert_int_equal(strlen(m.text), WIRE_TEXT_MAX);
    wire_msg_cleanup(&m);
    /* the same length in a client's sign_reject is refused */
    snprintf(text, sizeof text,
             "{\"type\":\"sign_reject\",\"request_id\":\"" RID "\",\"reason\":\"%s\"}", big);
    assert_int_equal(decode(text, &m, NULL), WSS_ERR_PROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_challenge),
        cmocka_unit_test(test_encode_introduced),
        cmocka_unit_test(test_encode_sign_request),
        cmocka_unit_test(test_encode_sign_request_matches_jansson),
        cmocka_unit_test(test_encode_sign_request_odd_id),
        cmocka_unit_test(test_encode_cancel),
        cmocka_unit_test(test_encode_error),
        cmocka_unit_test(test_decode_introduction),
        cmocka_unit_test(test_decode_minimal_introduction),
        cmocka_unit_test(test_decode_sign_response),
        cmocka_unit_test(test_decode_message_limit),
        cmocka_unit_test(test_decode_sign_reject),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_request_id_echo),
        cmocka_unit_test(test_decode_null_err),
        cmocka_unit_test(test_round_trip_no_leak),
        cmocka_unit_test(test_round_trip_server_frames),
        cmocka_unit_test(test_labelled_sign_request),
        cmocka_unit_test(test_round_trip_client_frames),
        cmocka_unit_test(test_each_side_refuses_its_own_frames),
        cmocka_unit_test(test_decode_server_frame_errors),
        cmocka_unit_test(test_decode_server_text_is_cut),
    };

    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
