/*
 * Ed25519 private key files: loading (PKCS#8 PEM as written by
 * `openssl genpkey -algorithm ed25519`, or a 32-byte seed as 64 hex digits)
 * and saving (PKCS#8 PEM, created 0600 and never over an existing file).
 * Uses OpenSSL only to parse and write PEM; the key itself lives in libsodium form.
 */
#ifndef WSSIGN_KEYFILE_H
#define WSSIGN_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sodium.h>

/* Largest key file read (a PEM Ed25519 key is about 120 bytes). */
#define KEYFILE_SIZE_MAX 16384

/* Per process: one loaded key. Wipe with keyfile_wipe() when done, or hold it in
 * keyfile_keypair_new() memory. */
struct keypair {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* libsodium layout: seed || pk */
};

/*
 * Loads the private key in path into kp. The file is opened without
 * blocking (files_read) and must be a regular file of at most
 * KEYFILE_SIZE_MAX bytes with no permission bits for group or others; a file
 * that is not is refused before its contents are read. Every copy of the
 * key other than kp is wiped before returning.
 * Returns 0, or with a one-line reason in err:
 *   WSS_ERR_IO      the file cannot be opened or read
 *   WSS_ERR_CONFIG  group/other permission bits set, not a regular file (a
 *                   FIFO, a device, a directory), too long
 *   WSS_ERR_INVAL   not a supported format, not Ed25519, encrypted
 */
__attribute__((warn_unused_result)) int keyfile_load(const char *path, struct keypair *kp,
                                                     char *err, size_t errlen);

/*
 * Returns a zeroed keypair in memory of its own (sodium_malloc: guard pages
 * around it, left out of core dumps), or NULL if it cannot be mapped.
 * *locked tells whether the pages are also locked in RAM (never swapped);
 * RLIMIT_MEMLOCK can forbid it. Free with keyfile_keypair_free.
 */
struct keypair *keyfile_keypair_new(bool *locked);

/* Makes kp read-only (any later write to it faults) once it is loaded. */
void keyfile_keypair_seal(struct keypair *kp);

/* Wipes, unlocks and frees a keypair from keyfile_keypair_new (sealed or
 * not). NULL is a no-op. */
void keyfile_keypair_free(struct keypair *kp);

/* Fills kp with a fresh random key. */
void keyfile_generate(struct keypair *kp);

/*
 * Writes kp as PKCS#8 PEM ("BEGIN PRIVATE KEY") to a new file at path,
 * created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600. An existing path is
 * never overwritten. Returns 0, WSS_ERR_EXISTS (path exists), WSS_ERR_IO or
 * WSS_ERR_INVAL (OpenSSL could not encode the key), with a reason in err.
 * On failure after the file was created, the partial file is removed.
 */
int keyfile_save(const char *path, const struct keypair *kp, char *err, size_t errlen);

/* Writes kp as PKCS#8 PEM to an open stream. Returns 0 or WSS_ERR_IO. */
int keyfile_write_pem(FILE *f, const struct keypair *kp, char *err, size_t errlen);

/* Writes the base64 text of kp's public key into out (at least
 * KEYFILE_PUB_B64_BYTES bytes). Returns out. */
#define KEYFILE_PUB_B64_BYTES 45
char *keyfile_pub_b64(char out[KEYFILE_PUB_B64_BYTES], const struct keypair *kp);

/* Zeroes kp. */
void keyfile_wipe(struct keypair *kp);

#endif
