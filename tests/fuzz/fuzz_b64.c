/*
 * libFuzzer target for the strict base64 decoders in crypto.c
 * (crypto_b64_decode, crypto_b64url_decode) and the hex writer in util.c.
 * Input: a flags byte, a size byte, then the text. The decoders are compared
 * with a small reference decoder written from RFC 4648, with each other at
 * two output limits, and with the encoder (strict text must re-encode to
 * itself).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "crypto.h"
#include "fuzz_check.h"
#include "util.h"

/* flags bit 0: the URL-safe decoder; bit 1: the size byte is the output limit. */
#define F_URL 0x01
#define F_LIMIT 0x02

static int sextet(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/*
 * Reference strict decoder. Standard: length a multiple of 4, at most two '='
 * and only at the end. URL-safe: the same when the text ends in '=';
 * otherwise no '=' at all and any length but 1 mod 4. In both, the bits
 * below the last whole byte must be zero. Returns the decoded length, or -1.
 */
static long ref_decode(const char *s, size_t len, bool url, uint8_t *out)
{
    size_t pad = 0, body, n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;

    if (len && s[len - 1] == '=') {
        if (len % 4)
            return -1;
        pad = (len >= 2 && s[len - 2] == '=') ? 2 : 1;
    } else if (!url && len % 4) {
        return -1;
    } else if (url && len % 4 == 1) {
        return -1;
    }
    body = len - pad;
    for (size_t i = 0; i < body; i++) {
        int v = sextet(s[i], url);

        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1; /* non-zero padding bits */
    /* A padded group of 4 carries 1 or 2 bytes: "xx==" or "xxx=". */
    if (pad && (body % 4) + pad != 4)
        return -1;
    return (long)n;
}

static int decode(bool url, uint8_t *out, size_t outmax, size_t *outlen, const char *s, size_t len)
{
    return url ? crypto_b64url_decode(out, outmax, outlen, s, len)
               : crypto_b64_decode(out, outmax, outlen, s, len);
}

static void check_hex(const uint8_t *in, size_t len, size_t outlen)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(outlen ? outlen : 1);
    size_t want;

    CHECK(out != NULL);
    CHECK(util_hex(out, outlen, in, len) == out);
    if (outlen) {
        /* As many whole bytes as fit before the NUL. */
        want = (outlen - 1) / 2 < len ? (outlen - 1) / 2 : len;
        CHECK(strlen(out) == 2 * want);
        for (size_t i = 0; i < want; i++)
            CHECK(out[2 * i] == digits[in[i] >> 4] && out[2 * i + 1] == digits[in[i] & 15]);
    }
    free(out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (crypto_init() != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t flags, *ref, *big, *small, *bin;
    size_t len, outmax, biglen = 0, smalllen = 0, n, textlen;
    const char *text;
    char *enc;
    bool url;
    long want;
    int rc_big, rc_small;

    if (size < 2)
        return 0;
    flags = data[0];
    url = flags & F_URL;
    text = (const char *)data + 2;
    len = size - 2;
    outmax = (flags & F_LIMIT) ? data[1] : len;

    /* Exact-size heap buffers, so any write past the limit is caught by ASan. */
    ref = malloc(len + 1);
    big = malloc(len);
    small = malloc(outmax);
    CHECK(ref && (big || !len) && (small || !outmax));

    want = ref_decode(text, len, url, ref);
    rc_big = decode(url, big, len, &biglen, text, len);
    CHECK(rc_big == 0 || rc_big == WSS_ERR_INVAL);
    /* Enough room: the verdict and the bytes match the reference. */
    CHECK((rc_big == 0) == (want >= 0));
    if (rc_big == 0)
        CHECK(biglen == (size_t)want && !memcmp(big, ref, biglen));
    else
        CHECK(biglen == 0);

    /* A limit only refuses what does not fit, and never changes the bytes. */
    rc_small = decode(url, small, outmax, &smalllen, text, len);
    CHECK(rc_small == 0 || rc_small == WSS_ERR_INVAL);
    if (rc_big == 0 && biglen <= outmax)
        CHECK(rc_small == 0 && smalllen == biglen && !memcmp(small, big, biglen));
    else
        CHECK(rc_small != 0 && smalllen == 0);

    /* Strict text is the only encoding of its bytes. */
    if (rc_big == 0) {
        int variant = !url                            ? sodium_base64_VARIANT_ORIGINAL
                      : (len && text[len - 1] == '=') ? sodium_base64_VARIANT_URLSAFE
                                                      : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
        n = sodium_base64_ENCODED_LEN(biglen, variant);
        enc = malloc(n);
        CHECK(enc != NULL);
        sodium_bin2base64(enc, n, big, biglen, variant);
        CHECK(strlen(enc) == len && !memcmp(enc, text, len));
        free(enc);
    }

    /* The input bytes themselves: encode, then decode back. */
    textlen = crypto_b64_len(len);
    enc = malloc(textlen);
    bin = malloc(len + 1);
    CHECK(enc && bin);
    CHECK(crypto_b64_encode(enc, textlen, (const uint8_t *)text, len) == enc);
    CHECK(strlen(enc) == textlen - 1);
    CHECK(crypto_b64_decode(bin, len, &n, enc, textlen - 1) == 0);
    CHECK(n == len && !memcmp(bin, text, len));
    free(enc);
    free(bin);

    check_hex((const uint8_t *)text, len, data[1]);

    free(ref);
    free(big);
    free(small);
    return 0;
}
