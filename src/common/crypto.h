/*
 * libsodium: initialisation, base64 codecs, key checks, signature and
 * introduction-proof verification. No I/O, no lws, no JSON.
 */
#ifndef WSSIGND_CRYPTO_H
#define WSSIGND_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

/* Bytes of the random challenge nonce sent to each new connection. */
#define CRYPTO_NONCE_BYTES 32
/* Its base64 text: 44 characters + NUL. */
#define CRYPTO_NONCE_B64_BYTES 45
/* Longest host name accepted in an introduction. */
#define CRYPTO_HOST_MAX 253

/* Calls sodium_init(). Returns 0, or WSS_ERR_INVAL if libsodium cannot start. */
int crypto_init(void);

/* Bytes needed for the base64 text (standard alphabet, padded) of binlen bytes,
 * including the terminating NUL. */
size_t crypto_b64_len(size_t binlen);

/* Decoded length of strict padded base64 text of len characters, or SIZE_MAX
 * if the length alone rules the text out; lets callers check sizes first. */
size_t crypto_b64_decoded_len(const char *b64, size_t len);

/* Writes the standard padded base64 of bin into out (outlen >= crypto_b64_len(binlen);
 * a shorter buffer is a programming error and aborts). Returns out. */
char *crypto_b64_encode(char *out, size_t outlen, const uint8_t *bin, size_t binlen);

/*
 * Decodes b64 (b64len characters, not necessarily NUL-terminated) in the
 * standard alphabet with padding, strictly: no whitespace, no missing or extra
 * padding, no URL-safe characters. At most outmax bytes are written.
 * Returns 0 and sets *outlen, or WSS_ERR_INVAL (bad text, or the decoded
 * length would exceed outmax).
 */
int crypto_b64_decode(uint8_t *out, size_t outmax, size_t *outlen, const char *b64, size_t b64len);

/* The same for the URL-safe alphabet, padding optional (for URL paths). */
int crypto_b64url_decode(uint8_t *out, size_t outmax, size_t *outlen, const char *b64,
                         size_t b64len);

/*
 * True if pk is a key the daemon will register: canonical, on the curve, in
 * the prime-order subgroup, not of small order
 * (crypto_core_ed25519_is_valid_point).
 */
bool crypto_key_is_valid(const uint8_t pk[crypto_sign_PUBLICKEYBYTES]);

/*
 * Verifies an Ed25519 signature of siglen bytes over msg. A signature of any
 * length other than crypto_sign_BYTES is refused before libsodium sees it.
 * Returns 0 if valid, WSS_ERR_INVAL on a wrong length, WSS_ERR_BAD_SIG otherwise.
 */
__attribute__((warn_unused_result)) int
crypto_verify_sig(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const uint8_t *msg, size_t msglen,
                  const uint8_t *sig, size_t siglen);

/* Fills nonce with random bytes and writes its base64 text to nonce_b64. */
void crypto_new_nonce(uint8_t nonce[CRYPTO_NONCE_BYTES], char nonce_b64[CRYPTO_NONCE_B64_BYTES]);

/*
 * Builds the introduction transcript:
 *   "wssign-introduction-v1\n" || host || "\n" || nonce_b64
 * into out (no NUL is written). Returns the length, or 0 if it does not fit
 * outlen, host is longer than CRYPTO_HOST_MAX, or host or nonce_b64 contains
 * a '\n' (the separator).
 */
size_t crypto_proof_transcript(uint8_t *out, size_t outlen, const char *host,
                               const char *nonce_b64);

/*
 * Verifies an introduction proof: a signature by pk over the transcript for
 * host and nonce_b64. Does not check the key itself (see crypto_key_is_valid).
 * Returns 0, WSS_ERR_INVAL (signature not crypto_sign_BYTES long, no
 * transcript can be built for host, or nonce_b64 longer than
 * CRYPTO_NONCE_B64_BYTES - 1) or WSS_ERR_BAD_SIG.
 */
__attribute__((warn_unused_result)) int
crypto_verify_proof(const uint8_t pk[crypto_sign_PUBLICKEYBYTES], const char *host,
                    const char *nonce_b64, const uint8_t *sig, size_t siglen);

/* True if msg begins with WSS_INTRODUCTION_PREFIX (such bytes are never signed on request). */
bool crypto_has_reserved_prefix(const uint8_t *msg, size_t len);

#endif
