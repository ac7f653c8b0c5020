/*
 * The cluster's message envelope: every type round-trips, a message is
 * refused before decoding when its tag does not verify (wrong key, a flipped
 * bit, truncation), and malformed JSON behind a valid tag is refused too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msg.h"

static const uint8_t key[CMSG_KEY_BYTES] = {7, 7, 7};
static const uint8_t other[CMSG_KEY_BYTES] = {8, 8, 8};

static struct cmsg sample(enum cmsg_type t)
{
    struct cmsg m = {.type = t, .seq = 1733312345000000ull, .has_key = true, .exp = 42, .limit = 5};

    strcpy(m.from, "node-1");
    for (size_t i = 0; i < sizeof m.key; i++)
        m.key[i] = (uint8_t)i;
    strcpy(m.id, "35ffb1df-7c3a-445e-9e07-b74b740d5d02");
    m.frame = "{\"type\":\"sign_request\"}";
    m.frame_len = strlen(m.frame);
    m.at = 99;
    strcpy(m.session, "s-1");
    m.pending = 3;
    return m;
}

static void test_every_type_round_trips(void **state)
{
    for (int t = CMSG_REQ; t <= CMSG_TYPE_LAST; t++) {
        struct cmsg m = sample((enum cmsg_type)t), d;
        const char *why;
        size_t len;
        char *buf = cmsg_encode(&m, key, &len);

        assert_int_equal(cmsg_decode(buf, len, 1 << 16, key, &d, &why), 0);
        assert_int_equal(d.type, t);
        assert_string_equal(d.from, "node-1");
        assert_true(d.seq == m.seq);
        assert_string_not_equal(cmsg_type_name(d.type), "?");
        if (t == CMSG_REQ || t == CMSG_FWD || t == CMSG_ANS) {
            assert_int_equal(d.frame_len, m.frame_len);
            assert_memory_equal(d.frame, m.frame, m.frame_len);
        } else {
            assert_null(d.frame);
        }
        if (t == CMSG_HB || t == CMSG_BYE || t == CMSG_HELLO || t == CMSG_LIST || t == CMSG_KEYS) {
            assert_false(d.has_key);
        } else {
            assert_true(d.has_key);
            assert_memory_equal(d.key, m.key, sizeof m.key);
        }
        if (t == CMSG_HERE || t == CMSG_INTRO)
            assert_true(d.at == 99);
        if (t == CMSG_HERE) {
            assert_string_equal(d.session, "s-1");
            assert_int_equal(d.pending, 3);
        }
        cmsg_cleanup(&d);
        free(buf);
    }
}

/* The operator's messages: kick, kicked, and a listing's question and answer. */
static void test_kick_and_list_fields(void **state)
{
    uint8_t only[2][WSS_PUBLIC_KEY_BYTES] = {{1}, {2}};
    struct wss_key_entry keys[2] = {{.public_key = {3}, .connected_at_ms = 1795000000000ull},
                                    {.public_key = {4}, .connected_at_ms = 7}};
    struct cmsg m = sample(CMSG_KICKED), d;
    const char *why;
    size_t len;
    char *buf;

    snprintf(keys[0].remote, sizeof keys[0].remote, "2001:db8::7");
    snprintf(keys[1].remote, sizeof keys[1].remote, "a \"quoted\" name");
    m.ok = true;
    buf = cmsg_encode(&m, key, &len);
    assert_int_equal(cmsg_decode(buf, len, 1 << 16, key, &d, &why), 0);
    assert_true(d.ok);
    cmsg_cleanup(&d);
    free(buf);

    m = sample(CMSG_LIST);
    m.limit = 1000;
    m.has_after = true;
    memset(m.after, 0xab, sizeof m.after);
    m.only = only;
    m.n_only = 2;
    buf = cmsg_encode(&m, key, &len);
    assert_int_equal(cmsg_decode(buf, len, 1 << 16, key, &d, &why), 0);
    assert_int_equal(d.limit, 1000);
    assert_true(d.has_after);
    assert_memory_equal(d.after, m.after, sizeof m.after);
    assert_int_equal(d.n_only, 2);
    assert_memory_equal(d.only, only, sizeof only);
    cmsg_cleanup(&d);
    free(buf);
    m.has_after = false;
    m.only = NULL;
    m.n_only = 0;
    buf = cmsg_encode(&m, key, &len);
    assert_int_equal(cmsg_decode(buf, len, 1 << 16, key, &d, &why), 0);
    assert_false(d.has_after);
    assert_null(d.only);
    cmsg_cleanup(&d);
    free(buf);

    m = sample(CMSG_KEYS);
    m.keys = keys;
    m.n_keys = 2;
    m.more = true;
    buf = cmsg_encode(&m, key, &len);
    assert_int_equal(cmsg_decode(buf, len, 1 << 16, key, &d, &why), 0);
    assert_true(d.more);
    assert_int_equal(d.n_keys, 2);
    assert_memory_equal(d.keys[0].public_key, keys[0].public_key, WSS_PUBLIC_KEY_BYTES);
    assert_true(d.keys[0].connected_at_ms == keys[0].connected_at_ms);
    assert_string_equal(d.keys[0].remote, "2001:db8::7");
    /* What a remote address may not carry is replaced on the way. */
    assert_string_equal(d.keys[1].remote, "a _quoted_ name");
    cmsg_cleanup(&d);
    free(buf);
}

static void test_tag_checked_first(void **state)
{
    struct cmsg m = sample(CMSG_REQ), d;
    const char *why;
    size_t len;
    char *buf = cmsg_encode(&m, key, &len);

    assert_int_equal(cmsg_decode(buf, len, 1 << 16, other, &d, &why), -1);
    assert_string_equal(why, CMSG_BAD_TAG);
    buf[len - 2] ^= 1; /* a flipped bit in the JSON */
    assert_int_equal(cmsg_decode(buf, len, 1 << 16, key, &d, &why), -1);
    assert_string_equal(why, CMSG_BAD_TAG);
    buf[len - 2] ^= 1;
    buf[3] ^= 0x80; /* and in the tag */
    assert_int_equal(cmsg_decode(buf, len, 1 << 16, key, &d, &why), -1);
    assert_string_equal(why, CMSG_BAD_TAG);
    buf[3] ^= 0x80;
    assert_int_equal(cmsg_decode(buf, len - 1, 1 << 16, key, &d, &why), -1);
    assert_int_equal(cmsg_decode(buf, CMSG_TAG_BYTES, 1 << 16, key, &d, &why), -1);
    assert_string_equal(why, CMSG_BAD_FORMAT);
    /* over the size bound: refused before anything is computed */
    assert_int_equal(cmsg_decode(buf, len, len - 1, key, &d, &why), -1);
    assert_string_equal(why, CMSG_BAD_FORMAT);
    assert_int_equal(cmsg_decode(buf, len, len, key, &d, &why), 0);
    cmsg_cleanup(&d);
    free(buf);
}

/* Signs text with key as a node would, and decodes it. */
static int decode_signed(const char *text, struct cmsg *d, const char **why)
{
    size_t n = strlen(text);
    char *buf = malloc(CMSG_TAG_BYTES + n);
    int rc;

    crypto_auth_hmacsha512256((uint8_t *)buf, (const uint8_t *)text, n, key);
    memcpy(buf + CMSG_TAG_BYTES, text, n);
    rc = cmsg_decode(buf, CMSG_TAG_BYTES + n, 1 << 16, key, d, why);
    free(buf);
    return rc;
}

#define ZKEY "0000000000000000000000000000000000000000000000000000000000000000"

static void test_malformed_behind_a_valid_tag(void **state)
{
    static const char *const bad[] = {
        "[]",
        "{\"v\":2,\"t\":\"hb\",\"from\":\"a\",\"seq\":1}",
        "{\"v\":1,\"t\":\"nope\",\"from\":\"a\",\"seq\":1}",
        "{\"v\":1,\"t\":\"hb\",\"from\":\"has space\",\"seq\":1}",
        "{\"v\":1,\"t\":\"hb\",\"from\":\"a\",\"seq\":-1}",
        "{\"v\":1,\"t\":\"hb\",\"from\":\"a\"}",
        "{\"v\":1,\"t\":\"ack\",\"from\":\"a\",\"seq\":1,\"k\":\"zz\",\"id\":\"x\"}",
        "{\"v\":1,\"t\":\"ack\",\"from\":\"a\",\"seq\":1,\"id\":\"x\"}",
        "{\"v\":1,\"t\":\"req\",\"from\":\"a\",\"seq\":1,\"k\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"id\":\"x\",\"exp\":1}",
        "{\"v\":1,\"t\":\"hb\",\"from\":\"a\",\"seq\":1,\"seq\":2}",
        "{\"v\":1,\"t\":\"hb\",\"from\":\"a\",\"seq\":1} trailing",
        "{\"v\":1,\"t\":\"kicked\",\"from\":\"a\",\"seq\":1,\"k\":\"" ZKEY "\",\"id\":\"x\"}",
        "{\"v\":1,\"t\":\"list\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"limit\":0}",
        "{\"v\":1,\"t\":\"list\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"limit\":1001}",
        "{\"v\":1,\"t\":\"list\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"limit\":5,"
        "\"after\":\"zz\"}",
        "{\"v\":1,\"t\":\"list\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"limit\":5,"
        "\"only\":[]}",
        "{\"v\":1,\"t\":\"keys\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"more\":1,"
        "\"keys\":[]}",
        "{\"v\":1,\"t\":\"keys\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"more\":false,"
        "\"keys\":[[\"" ZKEY "\",-1,\"r\"]]}",
        "{\"v\":1,\"t\":\"keys\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"more\":false,"
        "\"keys\":[[\"" ZKEY "\",1,\"bad\\\"quote\"]]}",
        "{\"v\":1,\"t\":\"keys\",\"from\":\"a\",\"seq\":1,\"id\":\"x\",\"more\":false,"
        "\"keys\":[[\"" ZKEY "\",1]]}",
    };
    struct cmsg d;
    const char *why;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (decode_signed(bad[i], &d, &why) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_string_equal(why, CMSG_BAD_FORMAT);
    }
    assert_int_equal(decode_signed("{\"v\":1,\"t\":\"hb\",\"from\":\"a\",\"seq\":1}", &d, &why), 0);
    cmsg_cleanup(&d);
}

static void test_node_ids(void **state)
{
    char long_id[CMSG_NODE_MAX + 2];

    assert_true(cmsg_node_id_valid("node-1.example_a"));
    assert_false(cmsg_node_id_valid(""));
    assert_false(cmsg_node_id_valid("a b"));
    assert_false(cmsg_node_id_valid("quote\""));
    memset(long_id, 'n', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_false(cmsg_node_id_valid(long_id));
    long_id[CMSG_NODE_MAX] = '\0';
    assert_true(cmsg_node_id_valid(long_id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_kick_and_list_fields),
        cmocka_unit_test(test_tag_checked_first),
        cmocka_unit_test(test_malformed_behind_a_valid_tag),
        cmocka_unit_test(test_node_ids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
