/*
 * Key files. Owns the on-disk formats and the permission rules; the key
 * material it returns belongs to the caller. OpenSSL parses and writes the
 * PKCS#8 PEM so files interoperate with `openssl genpkey`/`openssl pkey`;
 * everything after loading uses libsodium.
 */
#include "keyfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <wssignd/errors.h>

#include "crypto.h"
#include "files.h"

#define SEED_BYTES crypto_sign_SEEDBYTES
#define PEM_MARK "-----BEGIN "

/* A passphrase callback that supplies none: encrypted keys fail to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static void openssl_reason(char *out, size_t outlen)
{
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, out, outlen);
    else
        snprintf(out, outlen, "no details");
    ERR_clear_error();
}

/* PKCS#8 (or any PEM OpenSSL reads) holding an Ed25519 key -> 32-byte seed. */
static int seed_from_pem(const uint8_t *text, size_t len, uint8_t seed[SEED_BYTES],
                         const char *path, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *pkey = NULL;
    size_t n = SEED_BYTES;
    char why[256];
    int rc = WSS_ERR_INVAL;

    if (!bio) {
        snprintf(err, errlen, "%s: out of memory", path);
        return WSS_ERR_IO;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!pkey) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen,
                 "%s: not an unencrypted PEM private key (%s); expected PKCS#8 PEM as written "
                 "by 'openssl genpkey -algorithm ed25519'",
                 path, why);
        goto out;
    }
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        snprintf(err, errlen, "%s: the key type is %s; only Ed25519 keys are supported", path,
                 EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "non-Ed25519");
        goto out;
    }
    if (EVP_PKEY_get_raw_private_key(pkey, seed, &n) != 1 || n != SEED_BYTES) {
        openssl_reason(why, sizeof why);
        snprintf(err, errlen, "%s: cannot read the Ed25519 private key (%s)", path, why);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* 64 hex digits, optionally surrounded by white space. */
static int seed_from_hex(const uint8_t *text, size_t len, uint8_t seed[SEED_BYTES],
                         const char *path, char *err, size_t errlen)
{
    const char *s = (const char *)text, *end = NULL;
    size_t got = 0;

    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    while (len && isspace((unsigned char)*s))
        s++, len--;
    if (len != 2 * SEED_BYTES || sodium_hex2bin(seed, SEED_BYTES, s, len, NULL, &got, &end) != 0 ||
        got != SEED_BYTES || end != s + len) {
        snprintf(err, errlen,
                 "%s: unrecognised key format; expected PKCS#8 PEM ('openssl genpkey -algorithm "
                 "ed25519') or a 32-byte seed as 64 hex digits",
                 path);
        return WSS_ERR_INVAL;
    }
    return 0;
}

int keyfile_load(const char *path, struct keypair *kp, char *err, size_t errlen)
{
    uint8_t seed[SEED_BYTES];
    char *text;
    size_t len;
    int rc;

    /* files_read opens without blocking (a FIFO or a device at path cannot
     * hang the tool), checks the open descriptor (a regular file, no access
     * for group or others: like ssh, a private key others can read may
     * already be compromised) and bounds the size. */
    rc = files_read(path, true, "key file", KEYFILE_SIZE_MAX, &text, &len, err, errlen);
    if (rc != 0)
        return rc;
    if (memmem(text, len, PEM_MARK, strlen(PEM_MARK)))
        rc = seed_from_pem((const uint8_t *)text, len, seed, path, err, errlen);
    else
        rc = seed_from_hex((const uint8_t *)text, len, seed, path, err, errlen);
    if (rc == 0)
        crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
    sodium_memzero(seed, sizeof seed);
    files_free_secret(text, len);
    return rc;
}

struct keypair *keyfile_keypair_new(bool *locked)
{
    struct keypair *kp = sodium_malloc(sizeof *kp);

    if (!kp)
        return NULL;
    /* sodium_malloc already tries to lock the pages and to keep them out of
     * core dumps; locking again reports whether RLIMIT_MEMLOCK allowed it. */
    *locked = sodium_mlock(kp, sizeof *kp) == 0;
    sodium_memzero(kp, sizeof *kp);
    return kp;
}

void keyfile_keypair_seal(struct keypair *kp)
{
    sodium_mprotect_readonly(kp);
}

void keyfile_keypair_free(struct keypair *kp)
{
    /* sodium_free makes the pages writable again, zeroes and unlocks them. */
    if (kp)
        sodium_free(kp);
}

void keyfile_generate(struct keypair *kp)
{
    crypto_sign_keypair(kp->pk, kp->sk);
}

/* The PEM text of kp in a memory BIO (caller frees with BIO_free), or NULL. */
static BIO *pem_bio(const struct keypair *kp, char *err, size_t errlen)
{
    uint8_t seed[SEED_BYTES];
    EVP_PKEY *pkey;
    BIO *bio = NULL;
    char why[256];

    crypto_sign_ed25519_sk_to_seed(seed, kp->sk);
    pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SEED_BYTES);
    sodium_memzero(seed, sizeof seed);
    if (!pkey)
        goto fail;
    bio = BIO_new(BIO_s_secmem());
    if (!bio || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        bio = NULL;
    }
    EVP_PKEY_free(pkey);
    if (bio)
        return bio;
fail:
    openssl_reason(why, sizeof why);
    snprintf(err, errlen, "cannot encode the key as PEM: %s", why);
    return NULL;
}

int keyfile_write_pem(FILE *f, const struct keypair *kp, char *err, size_t errlen)
{
    BIO *bio = pem_bio(kp, err, errlen);
    char *text;
    long n;
    int rc = 0;

    if (!bio)
        return WSS_ERR_INVAL;
    n = BIO_get_mem_data(bio, &text);
    if (n <= 0 || fwrite(text, 1, (size_t)n, f) != (size_t)n || fflush(f) != 0) {
        snprintf(err, errlen, "cannot write the key: %s", strerror(errno));
        rc = WSS_ERR_IO;
    }
    BIO_free(bio);
    return rc;
}

int keyfile_save(const char *path, const struct keypair *kp, char *err, size_t errlen)
{
    BIO *bio;
    char *text;
    long n;
    size_t done = 0;
    int fd, rc = 0;

    /* O_EXCL: never replace an existing key; O_NOFOLLOW: never write through
     * a symlink someone planted at path. 0600 from the start, so the key is
     * never readable by others even for a moment. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (refusing to overwrite an existing file)" : "");
        return errno == EEXIST ? WSS_ERR_EXISTS : WSS_ERR_IO;
    }
    bio = pem_bio(kp, err, errlen);
    if (!bio) {
        rc = WSS_ERR_INVAL;
        goto out;
    }
    n = BIO_get_mem_data(bio, &text);
    while (n > 0 && done < (size_t)n) {
        ssize_t w = write(fd, text + done, (size_t)n - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            rc = WSS_ERR_IO;
            break;
        }
        done += (size_t)w;
    }
    BIO_free(bio);
    if (!rc && fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = WSS_ERR_IO;
    }
out:
    if (close(fd) != 0 && !rc) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = WSS_ERR_IO;
    }
    if (rc)
        unlink(path);
    return rc;
}

char *keyfile_pub_b64(char out[KEYFILE_PUB_B64_BYTES], const struct keypair *kp)
{
    return crypto_b64_encode(out, KEYFILE_PUB_B64_BYTES, kp->pk, sizeof kp->pk);
}

void keyfile_wipe(struct keypair *kp)
{
    sodium_memzero(kp, sizeof *kp);
}
