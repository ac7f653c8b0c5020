/*
 * The flat reader's two users against jansson: http_api_parse_sign against
 * http_api_parse_sign_json, and wire_decode against wire_decode_json (from a
 * client and from a minimal client), over a seeded corpus of generated
 * bodies and frames, each also mutated byte by byte. Every input must have
 * the same outcome both ways: the same values, or the same status, error
 * code, message and echoed id. The corpus is deterministic; a failure prints
 * the case number and the input.
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

#include "controllers/http_api_parse.h"
#include "crypto.h"
#include "jsonflat.h"
#include "wire.h"

/* Generated cases per user, each decoded both ways (mutations included).
 * WSSIGND_JSONFLAT_DIFF_CASES sets fewer (or more), e.g. under valgrind. */
#define CASES 120000
#define MAX_MESSAGE 48
#define TEXT_MAX 1024

static size_t cases = CASES;

/* Per run: a splitmix64 stream, so every run sees the same corpus. */
static uint64_t seed;

static uint64_t rnd(void)
{
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t pick(size_t n)
{
    return (size_t)(rnd() % n);
}

/* Per text being generated. */
struct text {
    char s[TEXT_MAX];
    size_t len;
};

static void add(struct text *t, const char *s)
{
    size_t n = strlen(s);

    if (t->len + n < TEXT_MAX) {
        memcpy(t->s + t->len, s, n);
        t->len += n;
    }
}

static void ws(struct text *t)
{
    static const char *const spaces[] = {"", "", "", "", "", "", " ", "\n", "\t", "\r\n "};

    /* Now and then a byte that is not JSON white space. */
    add(t, pick(400) ? spaces[pick(sizeof spaces / sizeof spaces[0])] : "\f");
}

/* Quoted base64 of n random bytes, sometimes spoiled. */
static void b64_value(struct text *t, size_t n)
{
    uint8_t bin[96];
    char text[200];

    for (size_t i = 0; i < n; i++)
        bin[i] = (uint8_t)rnd();
    if (pick(8) == 0 && n >= 22) /* the reserved prefix the HTTP API refuses */
        memcpy(bin, WSS_INTRODUCTION_PREFIX, 22);
    crypto_b64_encode(text, sizeof text, bin, n);
    switch (*text ? pick(16) : 16) { /* an empty text has nothing to spoil */
    case 0: text[strlen(text) / 2] = '-'; break;  /* not standard base64 */
    case 1: text[strlen(text) - 1] = '\0'; break; /* unpadded */
    case 2:
        if (strchr(text, '/')) /* an escaped slash reads the same */
            *strchr(text, '/') = '\x01';
        break;
    default: break;
    }
    add(t, "\"");
    for (char *p = text; *p; p++) {
        char c[2] = {*p, 0};
        add(t, *p == '\x01' ? "\\/" : c);
    }
    add(t, "\"");
}

static void uuid_value(struct text *t)
{
    static const char *const ids[] = {
        "\"0f8fad5b-d9cb-469f-a165-70867728950e\"",
        "\"0F8FAD5B-D9CB-469F-A165-70867728950E\"",
        "\"0f8fad5b-d9cb-469f-a165-70867728950\"",
        "\"0f8fad5b\\u002dd9cb-469f-a165-70867728950e\"",
        "\"\"",
    };
    char id[40];

    if (pick(2) == 0) {
        add(t, ids[pick(sizeof ids / sizeof ids[0])]);
        return;
    }
    for (int i = 0; i < 36; i++)
        id[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : "0123456789abcdef"[pick(16)];
    id[36] = '\0';
    add(t, "\"");
    add(t, id);
    add(t, "\"");
}

/* A value of any kind the bodies might carry. */
static void other_value(struct text *t)
{
    static const char *const values[] = {
        "0",
        "1",
        "-1",
        "60000",
        "60001",
        "59999",
        "-0",
        "007",
        "1.0",
        "1e3",
        "30000",
        "999999999999999999",
        "1000000000000000000",
        "9223372036854775807",
        "-9223372036854775809",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        "[1,\"a\"]",
        "{\"a\":1}",
        "\"\"",
        "\"x\"",
        "\"caf\xc3\xa9\"",
        "\"\\u00e9\\n\"",
        "\"a\\u0000b\"",
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\x01\"",
        "\"\\\"\\\\\\/\\b\\f\\r\\t\"",
        "\"\xff\"",
        "\"\xed\xa0\x80\"",
        "\"sign_response\"",
        "\"sign_reject\"",
        "\"introduction\"",
    };

    add(t, values[pick(sizeof values / sizeof values[0])]);
}

static void name(struct text *t, const char *n)
{
    /* Sometimes spelled with an escape: the same name. */
    if (pick(24) == 0 && n[0]) {
        char esc[8];

        snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)n[0]);
        add(t, "\"");
        add(t, esc);
        add(t, n + 1);
        add(t, "\"");
        return;
    }
    add(t, "\"");
    add(t, n);
    add(t, "\"");
}

/* Per field of a generated object: its name and how its good value is made. */
struct gen_field {
    const char *name;
    void (*good)(struct text *t);
};

static void key_good(struct text *t)
{
    b64_value(t, pick(10) ? 32 : pick(40));
}
static void msg_good(struct text *t)
{
    b64_value(t, pick(10) ? 1 + pick(MAX_MESSAGE) : pick(MAX_MESSAGE + 20));
}
static void sig_good(struct text *t)
{
    b64_value(t, pick(10) ? 64 : pick(70));
}
static void timeout_good(struct text *t)
{
    char n[24];

    snprintf(n, sizeof n, "%zu", pick(70000));
    add(t, n);
}
static void label_good(struct text *t)
{
    static const char *const labels[] = {
        "\"deploy v1.2\"",       "\"caf\xc3\xa9 \\u20ac\"",
        "\"\\ud83d\\ude00 ok\"", "\"tab\\there\"",
        "\"nul\\u0000\"",        "\"\"",
        "\"\\\"quoted\\\"\"",    "\"\xc2\x85\"",
    };

    add(t, labels[pick(sizeof labels / sizeof labels[0])]);
}
static void type_good(struct text *t)
{
    add(t, pick(8) ? "\"sign_response\"" : "\"sign_\\u0072esponse\"");
}

/* An object of some of fields in random order, with extra, repeated or odd members. */
static void object(struct text *t, const struct gen_field *f, size_t n)
{
    size_t order[8], count = 0;
    static const char *const strays[] = {"extra", "Type", "public_key ", "", "reason", "host"};

    for (size_t i = 0; i < n; i++)
        if (pick(12) != 0)
            order[count++] = i;
    for (size_t i = count; i > 1; i--) {
        size_t j = pick(i), tmp = order[i - 1];

        order[i - 1] = order[j];
        order[j] = tmp;
    }
    if (count && pick(30) == 0)
        order[count++] = order[0]; /* a duplicate */
    ws(t);
    add(t, "{");
    for (size_t i = 0; i < count; i++) {
        if (i)
            add(t, ",");
        ws(t);
        name(t, f[order[i]].name);
        ws(t);
        add(t, ":");
        ws(t);
        if (pick(14) == 0)
            other_value(t);
        else
            f[order[i]].good(t);
        ws(t);
    }
    if (pick(20) == 0) {
        add(t, count ? "," : "");
        name(t, strays[pick(sizeof strays / sizeof strays[0])]);
        add(t, ":");
        other_value(t);
    }
    add(t, "}");
    ws(t);
}

/* A few random edits: flips, inserted structural bytes, deletions, a cut. */
static void mutate(struct text *t)
{
    static const char bytes[] = "{}[]\":,\\u0 \n-e.1\x80\xc3\xff\x00";
    size_t edits = 1 + pick(3);

    for (size_t e = 0; e < edits && t->len; e++) {
        size_t at = pick(t->len);

        switch (pick(4)) {
        case 0: t->s[at] ^= (char)(1u << pick(8)); break;
        case 1:
            if (t->len + 1 < TEXT_MAX) {
                memmove(t->s + at + 1, t->s + at, t->len - at);
                t->s[at] = bytes[pick(sizeof bytes - 1)];
                t->len++;
            }
            break;
        case 2:
            memmove(t->s + at, t->s + at + 1, t->len - at - 1);
            t->len--;
            break;
        default: t->len = at; break;
        }
    }
}

static void dump(size_t i, const struct text *t)
{
    fprintf(stderr, "case %zu (%zu bytes): ", i, t->len);
    for (size_t k = 0; k < t->len; k++)
        fprintf(stderr,
                (unsigned char)t->s[k] < 0x20 || (unsigned char)t->s[k] >= 0x7f ? "\\x%02x" : "%c",
                (unsigned char)t->s[k]);
    fprintf(stderr, "\n");
}

/* The text in a heap block of its own size, so ASan and valgrind see any overread. */
static char *exact_copy(const struct text *t)
{
    char *p = malloc(t->len ? t->len : 1);

    assert_non_null(p);
    memcpy(p, t->s, t->len);
    return p;
}

static bool same_req(int rc, const struct http_api_sign_req *a, const struct http_api_sign_req *b)
{
    if (rc != 0)
        return a->msg == NULL && b->msg == NULL && !memcmp(a, b, sizeof *a);
    return !memcmp(a->key, b->key, sizeof a->key) && a->msglen == b->msglen &&
           !memcmp(a->msg, b->msg, a->msglen) && a->timeout_ms == b->timeout_ms &&
           a->wait_ms == b->wait_ms && a->has_label == b->has_label &&
           !memcmp(a->label, b->label, sizeof a->label);
}

static void test_http_body_both_ways(void **state)
{
    static const struct gen_field fields[] = {
        {"public_key", key_good},  {"message", msg_good}, {"timeout_ms", timeout_good},
        {"wait_ms", timeout_good}, {"label", label_good},
    };
    size_t accepted = 0, flat = 0;

    (void)state;
    seed = 16;
    for (size_t i = 0; i < cases; i++) {
        struct http_api_sign_req a, b;
        const char *wa = NULL, *wb = NULL;
        struct jsonflat obj;
        struct text t = {.len = 0};
        char *body;
        int ra, rb;

        object(&t, fields, pick(3) ? 2 : 5);
        if (i % 2)
            mutate(&t);
        body = exact_copy(&t);
        if (jsonflat_read(&obj, body, t.len, JSONFLAT_ALLOW_NUL)) {
            flat++;
            jsonflat_cleanup(&obj);
        }
        ra = http_api_parse_sign(body, t.len, MAX_MESSAGE, &a, &wa);
        rb = http_api_parse_sign_json(body, t.len, MAX_MESSAGE, &b, &wb);
        if (ra != rb || (wa == NULL) != (wb == NULL) || (wa && strcmp(wa, wb)) ||
            !same_req(ra, &a, &b)) {
            dump(i, &t);
            fail_msg("fast: %d %s; jansson: %d %s", ra, wa ? wa : "-", rb, wb ? wb : "-");
        }
        accepted += ra == 0;
        free(a.msg);
        free(b.msg);
        free(body);
    }
    print_message("%zu bodies: %zu accepted, %zu read by the flat reader\n", cases, accepted, flat);
    /* The corpus must exercise both outcomes and the reader itself. */
    assert_true(accepted > cases / 20 && flat > cases / 3);
}

static bool same_msg(int rc, const struct wire_msg *a, const struct wire_msg *b)
{
    struct wire_msg x = *a, y = *b;

    if (rc != 0)
        return a->message == NULL && b->message == NULL && !memcmp(a, b, sizeof *a);
    if (a->message_len != b->message_len ||
        (a->message_len && memcmp(a->message, b->message, a->message_len)))
        return false;
    x.message = y.message = NULL;
    return !memcmp(&x, &y, sizeof x);
}

static bool same_err(const struct wire_error *a, const struct wire_error *b)
{
    if ((a->code == NULL) != (b->code == NULL) || (a->code && strcmp(a->code, b->code)))
        return false;
    return !strcmp(a->message, b->message) && !strcmp(a->request_id, b->request_id);
}

static void test_sign_response_both_ways(void **state)
{
    static const struct gen_field fields[] = {
        {"type", type_good},
        {"request_id", uuid_value},
        {"message", msg_good},
        {"signature", sig_good},
    };
    static const enum wire_from froms[] = {WIRE_FROM_CLIENT, WIRE_FROM_MINIMAL_CLIENT};
    size_t accepted = 0, flat = 0;

    (void)state;
    seed = 1616;
    for (size_t i = 0; i < cases; i++) {
        struct text t = {.len = 0};
        struct jsonflat obj;
        char *frame;

        object(&t, fields, 4);
        if (i % 2)
            mutate(&t);
        frame = exact_copy(&t);
        if (jsonflat_read(&obj, frame, t.len, 0)) {
            flat++;
            jsonflat_cleanup(&obj);
        }
        for (size_t f = 0; f < 2; f++) {
            struct wire_msg a, b;
            struct wire_error ea, eb;
            int ra = wire_decode(froms[f], frame, t.len, MAX_MESSAGE, &a, &ea);
            int rb = wire_decode_json(froms[f], frame, t.len, MAX_MESSAGE, &b, &eb);

            if (ra != rb || !same_msg(ra, &a, &b) || !same_err(&ea, &eb)) {
                dump(i, &t);
                fail_msg("from %zu: fast %d %s (%s); jansson %d %s (%s)", f, ra,
                         ea.code ? ea.code : "-", ea.message, rb, eb.code ? eb.code : "-",
                         eb.message);
            }
            accepted += ra == 0 && f == 0;
            wire_msg_cleanup(&a);
            wire_msg_cleanup(&b);
        }
        free(frame);
    }
    print_message("%zu frames: %zu accepted, %zu read by the flat reader\n", cases, accepted, flat);
    assert_true(accepted > cases / 20 && flat > cases / 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_body_both_ways),
        cmocka_unit_test(test_sign_response_both_ways),
    };
    const char *env = getenv("WSSIGND_JSONFLAT_DIFF_CASES");

    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);

        if (*end || v < 100 || v > 100000000) {
            fprintf(stderr, "WSSIGND_JSONFLAT_DIFF_CASES: a number from 100 to 100000000\n");
            return 2;
        }
        cases = (size_t)v;
    }

    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
