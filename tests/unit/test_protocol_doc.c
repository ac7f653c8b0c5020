/*
 * Checks the worked vectors in docs/PROTOCOL.md against the daemon's own
 * transcript builder and verifier, so the document cannot drift from the code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"

#define DOC_PATH WSSIGND_TEST_DATA_DIR "/../docs/PROTOCOL.md"
#define FIELD_MAX 12

/* Per vector: "key: value" lines of one ```vector block. */
struct vector {
    char keys[FIELD_MAX][32];
    char values[FIELD_MAX][512];
    int n;
};

static const char *get(const struct vector *v, const char *key)
{
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->keys[i], key))
            return v->values[i];
    return NULL;
}

static int read_vectors(struct vector *out, int max)
{
    FILE *f = fopen(DOC_PATH, "r");
    char line[1024];
    int n = 0, in_block = 0;

    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!strcmp(line, "```vector")) {
            assert_true(n < max);
            memset(&out[n], 0, sizeof out[n]);
            in_block = 1;
        } else if (in_block && !strcmp(line, "```")) {
            in_block = 0;
            n++;
        } else if (in_block) {
            char *colon = strstr(line, ": ");
            struct vector *v = &out[n];

            assert_non_null(colon);
            assert_true(v->n < FIELD_MAX);
            *colon = '\0';
            assert_true(strlen(line) < sizeof v->keys[0]);
            assert_true(strlen(colon + 2) < sizeof v->values[0]);
            memcpy(v->keys[v->n], line, strlen(line) + 1);
            memcpy(v->values[v->n], colon + 2, strlen(colon + 2) + 1);
            v->n++;
        }
    }
    fclose(f);
    return n;
}

static size_t unhex(uint8_t *out, size_t max, const char *hex)
{
    size_t len = 0;

    assert_int_equal(sodium_hex2bin(out, max, hex, strlen(hex), NULL, &len, NULL), 0);
    return len;
}

static void keypair(const struct vector *v, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[32];
    char b64[64];

    assert_int_equal(unhex(seed, sizeof seed, get(v, "seed")), 32);
    crypto_sign_seed_keypair(pk, sk, seed);
    assert_string_equal(crypto_b64_encode(b64, sizeof b64, pk, 32), get(v, "public_key"));
}

static void check_introduction(const struct vector *v)
{
    uint8_t pk[32], sk[64], nonce[32], transcript[512], expect[512], sig[64];
    char nonce_b64[CRYPTO_NONCE_B64_BYTES], sig_b64[100];
    size_t tlen, elen;

    keypair(v, pk, sk);
    assert_int_equal(unhex(nonce, sizeof nonce, get(v, "nonce_bytes")), 32);
    crypto_b64_encode(nonce_b64, sizeof nonce_b64, nonce, sizeof nonce);
    assert_string_equal(nonce_b64, get(v, "nonce"));

    tlen = crypto_proof_transcript(transcript, sizeof transcript, get(v, "host"), nonce_b64);
    elen = unhex(expect, sizeof expect, get(v, "transcript_hex"));
    assert_int_equal(tlen, elen);
    assert_memory_equal(transcript, expect, tlen);

    crypto_sign_detached(sig, NULL, transcript, tlen, sk);
    assert_string_equal(crypto_b64_encode(sig_b64, sizeof sig_b64, sig, sizeof sig),
                        get(v, "proof"));
    assert_int_equal(crypto_verify_proof(pk, get(v, "host"), nonce_b64, sig, sizeof sig), 0);
    /* The same proof is worthless for another host: the binding holds. */
    assert_int_not_equal(crypto_verify_proof(pk, "evil.example", nonce_b64, sig, sizeof sig), 0);
}

static void check_sign(const struct vector *v)
{
    uint8_t pk[32], sk[64], msg[256], sig[64];
    char sig_b64[100];
    size_t mlen = 0;

    keypair(v, pk, sk);
    assert_int_equal(
        crypto_b64_decode(msg, sizeof msg, &mlen, get(v, "message"), strlen(get(v, "message"))), 0);
    crypto_sign_detached(sig, NULL, msg, mlen, sk);
    assert_string_equal(crypto_b64_encode(sig_b64, sizeof sig_b64, sig, sizeof sig),
                        get(v, "signature"));
    assert_int_equal(crypto_verify_sig(pk, msg, mlen, sig, sizeof sig), 0);
}

static void test_vectors(void **state)
{
    struct vector vs[8];
    int n = read_vectors(vs, 8), intro = 0, sign = 0;

    assert_int_equal(crypto_init(), 0);
    for (int i = 0; i < n; i++) {
        if (get(&vs[i], "host")) {
            check_introduction(&vs[i]);
            intro++;
        } else {
            assert_non_null(get(&vs[i], "signature"));
            check_sign(&vs[i]);
            sign++;
        }
    }
    assert_int_equal(intro, 2);
    assert_int_equal(sign, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
