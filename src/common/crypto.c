/*
 * libsodium wrappers: initialisation, strict base64, key and signature
 * checks, and the introduction-proof transcript. Owns no state beyond what
 * sodium_init() sets up; does no I/O and knows nothing of JSON or lws.
 */
#include "crypto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>
#include <wssignd/service.h>

#define PROOF_TAG WSS_INTRODUCTION_PREFIX "\n"
#define PROOF_TAG_LEN (sizeof(PROOF_TAG) - 1)
/* Longest transcript crypto_verify_proof builds: tag, host, '\n', 44-char nonce. */
#define PROOF_TRANSCRIPT_MAX (PROOF_TAG_LEN + CRYPTO_HOST_MAX + 1 + CRYPTO_NONCE_B64_BYTES - 1)

int crypto_init(void)
{
    /* 1 means "already initialised", which is fine. */
    return sodium_init() < 0 ? WSS_ERR_INVAL : 0;
}

size_t crypto_b64_len(size_t binlen)
{
    return sodium_base64_ENCODED_LEN(binlen, sodium_base64_VARIANT_ORIGINAL);
}

size_t crypto_b64_decoded_len(const char *b64, size_t len)
{
    size_t n;

    if (len % 4 != 0)
        return SIZE_MAX;
    n = len / 4 * 3;
    if (len && b64[len - 1] == '=')
        n--;
    if (len > 1 && b64[len - 2] == '=')
        n--;
    return n;
}

char *crypto_b64_encode(char *out, size_t outlen, const uint8_t *bin, size_t binlen)
{
    /* A short buffer is a programming error. Aborting (as libsodium's own
     * misuse handler would) beats handing a truncated nonce to a peer. */
    if (outlen < crypto_b64_len(binlen))
        abort();
    return sodium_bin2base64(out, outlen, bin, binlen, sodium_base64_VARIANT_ORIGINAL);
}

/*
 * One strict decode: no ignored characters, and the whole input must be
 * consumed (sodium_base642bin stops at the first byte it does not like and
 * reports where through b64_end). libsodium also refuses non-zero padding
 * bits and writes at most outmax bytes.
 */
static int decode(uint8_t *out, size_t outmax, size_t *outlen, const char *b64, size_t b64len,
                  int variant)
{
    const char *end = NULL;
    size_t n = 0;

    if (!outlen || (!b64 && b64len))
        return WSS_ERR_INVAL;
    *outlen = 0;
    /* libsodium 1.0.18 (Debian 12) passes each character on as a signed char,
     * and its range checks then read every byte from 0x80 up as the 64th
     * character ('/' or '_'), so "\xc3\xa9AA" would decode like "//AA". */
    for (size_t i = 0; i < b64len; i++)
        if ((unsigned char)b64[i] >= 0x80)
            return WSS_ERR_INVAL;
    /* Refuse text that cannot fit before reading it: valid base64 of b64len
     * characters decodes to at least 3 bytes per full group of 4, minus 2 for
     * padding. libsodium also stops at outmax, so this only saves work. */
    if (b64len >= 4 && b64len / 4 * 3 - 2 > outmax)
        return WSS_ERR_INVAL;
    if (b64len == 0)
        return 0;
    if (sodium_base642bin(out, outmax, b64, b64len, NULL, &n, &end, variant) != 0)
        return WSS_ERR_INVAL;
    if (end != b64 + b64len)
        return WSS_ERR_INVAL;
    *outlen = n;
    return 0;
}

int crypto_b64_decode(uint8_t *out, size_t outmax, size_t *outlen, const char *b64, size_t b64len)
{
    return decode(out, outmax, outlen, b64, b64len, sodium_base64_VARIANT_ORIGINAL);
}

int crypto_b64url_decode(uint8_t *out, size_t outmax, size_t *outlen, const char *b64,
                         size_t b64len)
{
    /* Padding is optional here: padded text is decoded by the padded variant
     * (which then demands exactly the right number of '='), anything else by
     * the unpadded one (which refuses any '='). */
    int variant = b64len && b64[b64len - 1] == '=' ? sodium_base64_VARIANT_URLSAFE
                                                   : sodium_base64_VARIANT_URLSAFE_NO_PADDING;

    return decode(out, outmax, outlen, b64, b64len, variant);
}

bool crypto_key_is_valid(const uint8_t pk[crypto_sign_PUBLICKEYBYTES])
{
    /* Canonical, on the curve, not of small order, and in the prime-order
     * subgroup. crypto_sign_verify_detached alone accepts mixed-order keys.
     * The subgroup check needs the CVE-2025-69277 fix (Debian 1.0.18-1+deb12u1). */
    return pk && crypto_core_ed25519_is_valid_point(pk) == 1;
}

int crypto_verify_sig(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const uint8_t *msg,
                      size_t msglen, const uint8_t *sig, size_t siglen)
{
    static const uint8_t empty[1];

    /* libsodium always reads exactly crypto_sign_BYTES from sig: a length
     * check here is the only thing that rejects short or long signatures. */
    if (!pk || !sig || siglen != crypto_sign_BYTES)
        return WSS_ERR_INVAL;
    if (!msg) {
        if (msglen)
            return WSS_ERR_INVAL;
        msg = empty;
    }
    if (crypto_sign_verify_detached(sig, msg, msglen, pk) != 0)
        return WSS_ERR_BAD_SIG;
    return 0;
}

void crypto_new_nonce(uint8_t nonce[CRYPTO_NONCE_BYTES], char nonce_b64[CRYPTO_NONCE_B64_BYTES])
{
    randombytes_buf(nonce, CRYPTO_NONCE_BYTES);
    crypto_b64_encode(nonce_b64, CRYPTO_NONCE_B64_BYTES, nonce, CRYPTO_NONCE_BYTES);
}

size_t crypto_proof_transcript(uint8_t *out, size_t outlen, const char *host, const char *nonce_b64)
{
    size_t hostlen, noncelen, total;

    if (!out || !host || !nonce_b64)
        return 0;
    hostlen = strnlen(host, CRYPTO_HOST_MAX + 1);
    if (hostlen > CRYPTO_HOST_MAX)
        return 0;
    /* Bounded by outlen: a nonce that long cannot fit with the tag anyway. */
    noncelen = strnlen(nonce_b64, outlen);
    /* '\n' separates the parts; letting it into either would make two
     * different (host, nonce) pairs produce the same transcript. */
    if (memchr(host, '\n', hostlen) || memchr(nonce_b64, '\n', noncelen))
        return 0;
    total = PROOF_TAG_LEN + hostlen + 1 + noncelen;
    if (total > outlen)
        return 0;
    memcpy(out, PROOF_TAG, PROOF_TAG_LEN);
    memcpy(out + PROOF_TAG_LEN, host, hostlen);
    out[PROOF_TAG_LEN + hostlen] = '\n';
    memcpy(out + PROOF_TAG_LEN + hostlen + 1, nonce_b64, noncelen);
    return total;
}

int crypto_verify_proof(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const char *host,
                        const char *nonce_b64, const uint8_t *sig, size_t siglen)
{
    uint8_t transcript[PROOF_TRANSCRIPT_MAX];
    size_t n;

    if (!pk || !sig || siglen != crypto_sign_BYTES)
        return WSS_ERR_INVAL;
    n = crypto_proof_transcript(transcript, sizeof(transcript), host, nonce_b64);
    if (n == 0)
        return WSS_ERR_INVAL;
    return crypto_verify_sig(pk, transcript, n, sig, siglen);
}

bool crypto_has_reserved_prefix(const uint8_t *msg, size_t len)
{
    static const char prefix[] = WSS_INTRODUCTION_PREFIX;

    return msg && len >= sizeof(prefix) - 1 && memcmp(msg, prefix, sizeof(prefix) - 1) == 0;
}
