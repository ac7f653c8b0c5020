/*
 * Unit tests for crypto.c: RFC 8032, Wycheproof and speccheck vectors through
 * the daemon's own wrappers, the CVE-2025-69277 key check, strict base64,
 * the introduction transcript and proof, and the reserved prefix.
 * Vectors are read at run time from WSSIGND_TEST_DATA_DIR "/vectors".
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

#ifndef WSSIGND_TEST_DATA_DIR
#error "WSSIGND_TEST_DATA_DIR must name the tests/ directory"
#endif

#define VECTOR_DIR WSSIGND_TEST_DATA_DIR "/vectors/"

static json_t *load_vectors(const char *name)
{
    char path[1024];
    json_error_t jerr;
    json_t *root;

    snprintf(path, sizeof(path), "%s%s", VECTOR_DIR, name);
    root = json_load_file(path, 0, &jerr);
    if (!root)
        print_error("cannot load %s: %s (line %d)\n", path, jerr.text, jerr.line);
    assert_non_null(root);
    return root;
}

/* Decodes a hex string field into a fresh buffer (never NULL); returns its length. */
static size_t hex_field(json_t *obj, const char *key, uint8_t **out)
{
    json_t *v = json_object_get(obj, key);
    const char *hex;
    size_t hexlen, binlen = 0;

    assert_true(json_is_string(v));
    hex = json_string_value(v);
    hexlen = json_string_length(v);
    assert_int_equal(hexlen % 2, 0);
    *out = malloc(hexlen / 2 + 1);
    assert_non_null(*out);
    assert_int_equal(sodium_hex2bin(*out, hexlen / 2 + 1, hex, hexlen, NULL, &binlen, NULL), 0);
    assert_int_equal(binlen, hexlen / 2);
    return binlen;
}

static void hex_fixed(json_t *obj, const char *key, uint8_t *out, size_t n)
{
    uint8_t *buf;

    assert_int_equal(hex_field(obj, key, &buf), n);
    memcpy(out, buf, n);
    free(buf);
}

static void test_init(void **state)
{
    assert_int_equal(crypto_init(), 0);
    /* A second call reports "already initialised", which is still success. */
    assert_int_equal(crypto_init(), 0);
}

/* RFC 8032 section 7.1: 5 vectors, reproduced and verified byte for byte. */
static void test_rfc8032(void **state)
{
    json_t *root = load_vectors("rfc8032_ed25519.json");
    json_t *vectors = json_object_get(root, "vectors"), *vec;
    uint8_t other_pk[crypto_sign_PUBLICKEYBYTES];
    size_t i, checked = 0;

    assert_true(json_is_array(vectors));
    assert_int_equal(json_array_size(vectors), 5);
    /* "Wrong key": the last vector's key, used against every other one. */
    hex_fixed(json_array_get(vectors, 4), "public_key", other_pk, sizeof(other_pk));

    json_array_foreach (vectors, i, vec) {
        uint8_t seed[crypto_sign_SEEDBYTES], want_pk[crypto_sign_PUBLICKEYBYTES];
        uint8_t want_sig[crypto_sign_BYTES], pk[crypto_sign_PUBLICKEYBYTES];
        uint8_t sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
        uint8_t wrong_pk[crypto_sign_PUBLICKEYBYTES], *msg, *longer;
        size_t msglen;

        hex_fixed(vec, "secret_key", seed, sizeof(seed));
        hex_fixed(vec, "public_key", want_pk, sizeof(want_pk));
        hex_fixed(vec, "signature", want_sig, sizeof(want_sig));
        msglen = hex_field(vec, "message", &msg);

        assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
        assert_memory_equal(pk, want_pk, sizeof(pk));
        assert_true(crypto_key_is_valid(pk));
        assert_int_equal(crypto_sign_detached(sig, NULL, msg, msglen, sk), 0);
        assert_memory_equal(sig, want_sig, sizeof(sig));

        assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, sizeof(sig)), 0);

        /* One flipped bit anywhere in the signature: first, middle, last byte. */
        sig[0] ^= 0x01;
        assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, sizeof(sig)), WSS_ERR_BAD_SIG);
        sig[0] ^= 0x01;
        sig[32] ^= 0x80;
        assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, sizeof(sig)), WSS_ERR_BAD_SIG);
        sig[32] ^= 0x80;
        sig[63] ^= 0x02;
        assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, sizeof(sig)), WSS_ERR_BAD_SIG);
        sig[63] ^= 0x02;

        /* A changed message: a flipped bit, or one extra byte. */
        if (msglen) {
            msg[msglen - 1] ^= 0x01;
            assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, sizeof(sig)), WSS_ERR_BAD_SIG);
            msg[msglen - 1] ^= 0x01;
        }
        longer = malloc(msglen + 1);
        assert_non_null(longer);
        memcpy(longer, msg, msglen);
        longer[msglen] = 0;
        assert_int_equal(crypto_verify_sig(pk, longer, msglen + 1, sig, sizeof(sig)),
                         WSS_ERR_BAD_SIG);
        free(longer);

        /* The wrong key, and the right key with one bit flipped. */
        if (i != 4)
            assert_int_equal(crypto_verify_sig(other_pk, msg, msglen, sig, sizeof(sig)),
                             WSS_ERR_BAD_SIG);
        memcpy(wrong_pk, pk, sizeof(pk));
        wrong_pk[0] ^= 0x01;
        assert_int_not_equal(crypto_verify_sig(wrong_pk, msg, msglen, sig, sizeof(sig)), 0);

        /* Truncated or extended signatures never reach libsodium. */
        assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, 63), WSS_ERR_INVAL);
        assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, 0), WSS_ERR_INVAL);
        assert_int_equal(crypto_verify_sig(pk, msg, msglen, NULL, 64), WSS_ERR_INVAL);
        {
            uint8_t sig65[crypto_sign_BYTES + 1];

            memcpy(sig65, sig, sizeof(sig));
            sig65[64] = 0;
            assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig65, sizeof(sig65)),
                             WSS_ERR_INVAL);
        }

        /* Still accepted after all the above (nothing was left modified). */
        assert_int_equal(crypto_verify_sig(pk, msg, msglen, sig, sizeof(sig)), 0);
        free(msg);
        checked++;
    }
    assert_int_equal(checked, 5);
    json_decref(root);
}

/* Wycheproof ed25519_test.json: every case through crypto_verify_sig. */
static void test_wycheproof(void **state)
{
    json_t *root = load_vectors("wycheproof_ed25519_test.json");
    json_t *groups = json_object_get(root, "testGroups"), *group, *tests, *tc;
    size_t gi, ti, total = 0, valid = 0, invalid = 0, other = 0, disagree = 0, by_length = 0;

    assert_true(json_is_array(groups));
    assert_int_equal(json_integer_value(json_object_get(root, "numberOfTests")), 151);
    json_array_foreach (groups, gi, group) {
        uint8_t pk[crypto_sign_PUBLICKEYBYTES];

        hex_fixed(json_object_get(group, "publicKey"), "pk", pk, sizeof(pk));
        tests = json_object_get(group, "tests");
        assert_true(json_is_array(tests));
        json_array_foreach (tests, ti, tc) {
            const char *result = json_string_value(json_object_get(tc, "result"));
            uint8_t *msg, *sig;
            size_t msglen = hex_field(tc, "msg", &msg);
            size_t siglen = hex_field(tc, "sig", &sig);
            int rc = crypto_verify_sig(pk, msg, msglen, sig, siglen);
            bool want;

            assert_non_null(result);
            if (strcmp(result, "valid") == 0) {
                valid++;
                want = true;
            } else if (strcmp(result, "invalid") == 0) {
                invalid++;
                want = false;
            } else {
                other++;
                want = false;
            }
            if (siglen != crypto_sign_BYTES) {
                assert_int_equal(rc, WSS_ERR_INVAL);
                by_length++;
            } else {
                assert_true(rc == 0 || rc == WSS_ERR_BAD_SIG);
            }
            if ((rc == 0) != want) {
                print_error("wycheproof tcId %lld: expected %s, got rc=%d\n",
                            (long long)json_integer_value(json_object_get(tc, "tcId")), result, rc);
                disagree++;
            }
            total++;
            free(msg);
            free(sig);
        }
    }
    assert_int_equal(total, 151);
    assert_int_equal(valid, 88);
    assert_int_equal(invalid, 63);
    assert_int_equal(other, 0);
    assert_int_equal(disagree, 0);
    /* The length check alone rejects 12 of the invalid cases. */
    assert_int_equal(by_length, 12);
    json_decref(root);
}

/*
 * ed25519-speccheck: the 12 edge cases. The daemon's rule is "key valid at
 * introduction, and signature verifies"; it must reject all 12. libsodium's
 * verify alone accepts case 3 (mixed-order key), which the key check catches.
 */
static void test_speccheck(void **state)
{
    json_t *root = load_vectors("ed25519_speccheck_cases.json"), *c;
    size_t i, rejected = 0, key_rejected = 0;
    bool verify_accepts[12], key_ok[12];

    assert_true(json_is_array(root));
    assert_int_equal(json_array_size(root), 12);
    json_array_foreach (root, i, c) {
        uint8_t pk[crypto_sign_PUBLICKEYBYTES], *msg, *sig;
        size_t msglen = hex_field(c, "message", &msg);
        size_t siglen = hex_field(c, "signature", &sig);

        hex_fixed(c, "pub_key", pk, sizeof(pk));
        key_ok[i] = crypto_key_is_valid(pk);
        verify_accepts[i] = crypto_verify_sig(pk, msg, msglen, sig, siglen) == 0;
        if (!(key_ok[i] && verify_accepts[i]))
            rejected++;
        if (!key_ok[i])
            key_rejected++;
        free(msg);
        free(sig);
    }
    assert_int_equal(rejected, 12);

    /* Case 3: the signature verifies, only the key check stops it. */
    assert_true(verify_accepts[3]);
    assert_false(key_ok[3]);
    /* libsodium's verify rejects every other case by itself. */
    for (i = 0; i < 12; i++)
        if (i != 3)
            assert_false(verify_accepts[i]);
    /* The key check passes only the keys of cases 6 and 7 (valid keys with
     * bad signatures). */
    for (i = 0; i < 12; i++)
        assert_int_equal(key_ok[i], i == 6 || i == 7);
    assert_int_equal(key_rejected, 10);
    json_decref(root);
}

/*
 * CVE-2025-69277: crypto_core_ed25519_is_valid_point used to accept pk + T,
 * with T = (0,-1) the point of order 2, because its subgroup check was
 * incomplete. With the fix, the sum is refused. T is encoded as y = p - 1
 * (ec ff .. ff 7f) with the x sign bit clear (x = 0).
 */
static void test_mixed_order_key(void **state)
{
    uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES], t[32], sum[32], back[32];
    bool rejected;
    int rc;

    memset(seed, 0x42, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    assert_true(crypto_key_is_valid(pk));

    memset(t, 0xff, sizeof(t));
    t[0] = 0xec;
    t[31] = 0x7f;
    /* T itself is of small order. */
    assert_false(crypto_key_is_valid(t));

    /* If the addition itself failed there would be no point to register,
     * so that outcome also keeps the key out; it is reported, though,
     * because then the fix was not exercised. */
    rc = crypto_core_ed25519_add(sum, pk, t);
    if (rc != 0)
        print_message("note: crypto_core_ed25519_add(pk, (0,-1)) failed; key check not reached\n");
    rejected = rc != 0 || !crypto_key_is_valid(sum);
    assert_true(rejected);

    if (rc == 0) {
        /* The sum is a real, different point: adding T again gives pk back. */
        assert_memory_not_equal(sum, pk, sizeof(pk));
        assert_int_equal(crypto_core_ed25519_add(back, sum, t), 0);
        assert_memory_equal(back, pk, sizeof(pk));
    }
}

/* The remaining non-canonical and small-order key shapes. */
static void test_key_shapes(void **state)
{
    uint8_t k[32];

    memset(k, 0, sizeof(k)); /* y = 0: on the curve, order 4 */
    assert_false(crypto_key_is_valid(k));
    k[0] = 1; /* the identity (0,1) */
    assert_false(crypto_key_is_valid(k));
    memset(k, 0xff, sizeof(k)); /* y >= p: not canonical */
    assert_false(crypto_key_is_valid(k));
    assert_false(crypto_key_is_valid(NULL));
}

static void test_b64_strict(void **state)
{
    uint8_t out[64];
    size_t n = 99;

    /* good */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbG8=", 8), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbA==", 8), 0);
    assert_int_equal(n, 4);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVs", 4), 0);
    assert_int_equal(n, 3);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "", 0), 0);
    assert_int_equal(n, 0);
    /* not NUL-terminated: only b64len characters count */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbG8=junk", 8), 0);
    assert_int_equal(n, 5);
    /* "+/" are standard-alphabet characters */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "+/8=", 4), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);

    /* whitespace anywhere */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVs bG8=", 9), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbG8=\n", 9), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, " aGVsbG8=", 9), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVs\r\nbG8=", 10), WSS_ERR_INVAL);
    /* missing, short or extra padding */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbG8", 7), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbA=", 7), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbG8==", 9), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVs====", 8), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "=", 1), WSS_ERR_INVAL);
    /* URL-safe characters */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "-_8=", 4), WSS_ERR_INVAL);
    /* non-zero padding bits (a second encoding of the same bytes) */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbG9=", 8), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsbB==", 8), WSS_ERR_INVAL);
    /* an embedded NUL inside the counted length */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVs\0bG8=", 9), WSS_ERR_INVAL);
    /* a lone trailing character */
    assert_int_equal(crypto_b64_decode(out, sizeof(out), &n, "aGVsb", 5), WSS_ERR_INVAL);

    /* outmax: exact fit is fine, one byte short fails and writes nothing past it */
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(crypto_b64_decode(out, 5, &n, "aGVsbG8=", 8), 0);
    assert_int_equal(n, 5);
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(crypto_b64_decode(out, 4, &n, "aGVsbG8=", 8), WSS_ERR_INVAL);
    assert_int_equal(out[4], 0xaa);
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(crypto_b64_decode(out, 0, &n, "aGVsbG8=", 8), WSS_ERR_INVAL);
    assert_int_equal(out[0], 0xaa);
    {
        /* 96 bytes of text into a 64-byte buffer */
        char big[129];

        memset(big, 'A', 128);
        big[128] = '\0';
        assert_int_equal(crypto_b64_decode(out, 64, &n, big, 128), WSS_ERR_INVAL);
        assert_int_equal(crypto_b64_decode(out, 64, &n, big, 84), 0);
        assert_int_equal(n, 63);
    }
    assert_int_equal(crypto_b64_decode(out, sizeof(out), NULL, "aGVs", 4), WSS_ERR_INVAL);
}

static void test_b64url(void **state)
{
    uint8_t out[16];
    size_t n;

    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "-_8=", 4), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "-_8", 3), 0);
    assert_int_equal(n, 2);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "aGVsbG8", 7), 0);
    assert_int_equal(n, 5);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "aGVsbA", 6), 0);
    assert_int_equal(n, 4);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "aGVs", 4), 0);
    assert_int_equal(n, 3);

    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "+/8=", 4), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "-_8==", 5), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "aGVsbA=", 7), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "aGVs bG8", 8), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "aGVsbG8\n", 8), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64url_decode(out, sizeof(out), &n, "aGVsbG9", 7), WSS_ERR_INVAL);
    assert_int_equal(crypto_b64url_decode(out, 4, &n, "aGVsbG8", 7), WSS_ERR_INVAL);
}

static void test_b64_encode(void **state)
{
    uint8_t bin[64], back[64];
    char text[89];
    size_t n, i;

    assert_int_equal(crypto_b64_len(0), 1);
    assert_int_equal(crypto_b64_len(1), 5);
    assert_int_equal(crypto_b64_len(32), 45);
    assert_int_equal(crypto_b64_len(64), 89);
    assert_int_equal(crypto_b64_len(CRYPTO_NONCE_BYTES), CRYPTO_NONCE_B64_BYTES);

    assert_string_equal(crypto_b64_encode(text, sizeof(text), (const uint8_t *)"hello", 5),
                        "aGVsbG8=");
    for (i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)(i * 37 + 11);
    for (i = 0; i <= sizeof(bin); i++) {
        crypto_b64_encode(text, crypto_b64_len(i), bin, i);
        assert_int_equal(strlen(text), crypto_b64_len(i) - 1);
        assert_int_equal(crypto_b64_decode(back, sizeof(back), &n, text, strlen(text)), 0);
        assert_int_equal(n, i);
        assert_memory_equal(back, bin, i);
    }
}

static void test_nonce(void **state)
{
    uint8_t a[CRYPTO_NONCE_BYTES], b[CRYPTO_NONCE_BYTES], back[CRYPTO_NONCE_BYTES];
    char a64[CRYPTO_NONCE_B64_BYTES], b64[CRYPTO_NONCE_B64_BYTES];
    size_t n;

    crypto_new_nonce(a, a64);
    crypto_new_nonce(b, b64);
    assert_int_equal(strlen(a64), CRYPTO_NONCE_B64_BYTES - 1);
    assert_int_equal(crypto_b64_decode(back, sizeof(back), &n, a64, strlen(a64)), 0);
    assert_int_equal(n, CRYPTO_NONCE_BYTES);
    assert_memory_equal(back, a, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_string_not_equal(a64, b64);
}

#define NONCE_0_31 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static void test_transcript(void **state)
{
    static const char want[] = "wssign-introduction-v1\nsigner.example.com\n" NONCE_0_31;
    uint8_t nonce[CRYPTO_NONCE_BYTES], out[512];
    char nonce_b64[CRYPTO_NONCE_B64_BYTES], host[CRYPTO_HOST_MAX + 2];
    size_t i, n;

    for (i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)i;
    crypto_b64_encode(nonce_b64, sizeof(nonce_b64), nonce, sizeof(nonce));
    assert_string_equal(nonce_b64, NONCE_0_31);

    memset(out, 0xaa, sizeof(out));
    n = crypto_proof_transcript(out, sizeof(out), "signer.example.com", nonce_b64);
    assert_int_equal(n, sizeof(want) - 1);
    assert_int_equal(n, 23 + 18 + 1 + 44);
    assert_memory_equal(out, want, n);
    assert_int_equal(out[n], 0xaa); /* no NUL written */
    assert_true(crypto_has_reserved_prefix(out, n));

    /* exact fit, and one byte short */
    assert_int_equal(crypto_proof_transcript(out, n, "signer.example.com", nonce_b64), n);
    assert_int_equal(crypto_proof_transcript(out, n - 1, "signer.example.com", nonce_b64), 0);
    assert_int_equal(crypto_proof_transcript(out, 0, "signer.example.com", nonce_b64), 0);

    /* host length bounds: CRYPTO_HOST_MAX fits, one more does not */
    memset(host, 'h', CRYPTO_HOST_MAX);
    host[CRYPTO_HOST_MAX] = '\0';
    assert_int_equal(crypto_proof_transcript(out, sizeof(out), host, nonce_b64),
                     23 + CRYPTO_HOST_MAX + 1 + 44);
    host[CRYPTO_HOST_MAX] = 'h';
    host[CRYPTO_HOST_MAX + 1] = '\0';
    assert_int_equal(crypto_proof_transcript(out, sizeof(out), host, nonce_b64), 0);

    /* separators cannot be smuggled in */
    assert_int_equal(crypto_proof_transcript(out, sizeof(out), "a\nb", nonce_b64), 0);
    assert_int_equal(crypto_proof_transcript(out, sizeof(out), "a", "x\ny"), 0);
    assert_int_equal(crypto_proof_transcript(out, sizeof(out), NULL, nonce_b64), 0);
    assert_int_equal(crypto_proof_transcript(out, sizeof(out), "a", NULL), 0);
}

static void test_proof(void **state)
{
    static const char host[] = "signer.example.com";
    uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES], pk2[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk2[crypto_sign_SECRETKEYBYTES], t[512], sig[crypto_sign_BYTES];
    uint8_t other_sig[crypto_sign_BYTES];
    char other_nonce[CRYPTO_NONCE_B64_BYTES], long_host[CRYPTO_HOST_MAX + 2];
    uint8_t nonce[CRYPTO_NONCE_BYTES];
    size_t n;

    memset(seed, 7, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
    memset(seed, 8, sizeof(seed));
    assert_int_equal(crypto_sign_seed_keypair(pk2, sk2, seed), 0);

    n = crypto_proof_transcript(t, sizeof(t), host, NONCE_0_31);
    assert_true(n > 0);
    assert_int_equal(crypto_sign_detached(sig, NULL, t, n, sk), 0);

    assert_int_equal(crypto_verify_proof(pk, host, NONCE_0_31, sig, sizeof(sig)), 0);
    /* wrong host (including a case change: hosts are compared as bytes) */
    assert_int_equal(crypto_verify_proof(pk, "evil.example", NONCE_0_31, sig, sizeof(sig)),
                     WSS_ERR_BAD_SIG);
    assert_int_equal(crypto_verify_proof(pk, "Signer.example.com", NONCE_0_31, sig, sizeof(sig)),
                     WSS_ERR_BAD_SIG);
    /* wrong nonce */
    crypto_new_nonce(nonce, other_nonce);
    assert_int_equal(crypto_verify_proof(pk, host, other_nonce, sig, sizeof(sig)), WSS_ERR_BAD_SIG);
    /* wrong key */
    assert_int_equal(crypto_verify_proof(pk2, host, NONCE_0_31, sig, sizeof(sig)), WSS_ERR_BAD_SIG);
    /* signed by the other key */
    assert_int_equal(crypto_sign_detached(other_sig, NULL, t, n, sk2), 0);
    assert_int_equal(crypto_verify_proof(pk, host, NONCE_0_31, other_sig, sizeof(other_sig)),
                     WSS_ERR_BAD_SIG);
    /* short proof */
    assert_int_equal(crypto_verify_proof(pk, host, NONCE_0_31, sig, 63), WSS_ERR_INVAL);
    assert_int_equal(crypto_verify_proof(pk, host, NONCE_0_31, sig, 0), WSS_ERR_INVAL);
    /* a signature over the bare host and nonce (no tag) is not a proof */
    {
        static const char bare[] = "signer.example.com\n" NONCE_0_31;
        uint8_t bare_sig[crypto_sign_BYTES];

        assert_int_equal(
            crypto_sign_detached(bare_sig, NULL, (const uint8_t *)bare, sizeof(bare) - 1, sk), 0);
        assert_int_equal(crypto_verify_proof(pk, host, NONCE_0_31, bare_sig, sizeof(bare_sig)),
                         WSS_ERR_BAD_SIG);
    }
    /* host too long */
    memset(long_host, 'h', CRYPTO_HOST_MAX + 1);
    long_host[CRYPTO_HOST_MAX + 1] = '\0';
    assert_int_equal(crypto_verify_proof(pk, long_host, NONCE_0_31, sig, sizeof(sig)),
                     WSS_ERR_INVAL);
    /* flipped proof bit */
    sig[10] ^= 0x04;
    assert_int_equal(crypto_verify_proof(pk, host, NONCE_0_31, sig, sizeof(sig)), WSS_ERR_BAD_SIG);
}

static void test_reserved_prefix(void **state)
{
    static const char prefix[] = "wssign-introduction-v1";

    assert_true(crypto_has_reserved_prefix((const uint8_t *)prefix, sizeof(prefix) - 1));
    assert_true(crypto_has_reserved_prefix((const uint8_t *)"wssign-introduction-v1\nx", 24));
    assert_true(crypto_has_reserved_prefix((const uint8_t *)"wssign-introduction-v1x", 23));
    assert_false(crypto_has_reserved_prefix((const uint8_t *)prefix, sizeof(prefix) - 2));
    assert_false(crypto_has_reserved_prefix((const uint8_t *)"xwssign-introduction-v1", 23));
    assert_false(crypto_has_reserved_prefix((const uint8_t *)"Wssign-introduction-v1", 22));
    assert_false(crypto_has_reserved_prefix((const uint8_t *)"", 0));
    assert_false(crypto_has_reserved_prefix(NULL, 0));
    assert_false(crypto_has_reserved_prefix((const uint8_t *)"hello", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_rfc8032),
        cmocka_unit_test(test_wycheproof),
        cmocka_unit_test(test_speccheck),
        cmocka_unit_test(test_mixed_order_key),
        cmocka_unit_test(test_key_shapes),
        cmocka_unit_test(test_b64_strict),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_b64_encode),
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_transcript),
        cmocka_unit_test(test_proof),
        cmocka_unit_test(test_reserved_prefix),
    };

    if (crypto_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
