/*
 * The small files wssignd and wssign read their secrets and settings from:
 * TLS keys, token files, key files, shared secrets. One set of rules for all
 * of them: a file is opened without blocking (a FIFO or a device cannot hang
 * the reader), checked on the open descriptor (the file checked is the file
 * read) to be a regular file, and, when it holds a secret, to be accessible
 * by its owner only. A setting may name a systemd credential
 * ("credential:NAME", read from $CREDENTIALS_DIRECTORY/NAME). No lws.
 */
#ifndef WSSIGND_FILES_H
#define WSSIGND_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The prefix of a setting that names a systemd credential (LoadCredential=). */
#define FILES_CREDENTIAL_PREFIX "credential:"

/*
 * Turns a file setting into the path to open: "credential:NAME" becomes
 * "$CREDENTIALS_DIRECTORY/NAME"; anything else is copied as is. NAME must be
 * a plain file name (no '/', not "." or ".."). Returns 0, or WSS_ERR_CONFIG
 * with the reason in err (CREDENTIALS_DIRECTORY unset, a bad NAME, or a
 * result that does not fit outlen).
 */
int files_resolve(const char *value, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Opens path for reading (O_NONBLOCK, O_CLOEXEC, O_NOCTTY) and checks the open descriptor: a regular file, and when
 * secret is true, no permission bits for group or others. what names the file
 * in error text ("token file"). Returns the descriptor (the caller closes
 * it), or a negative enum wss_err: WSS_ERR_IO (cannot open) or WSS_ERR_CONFIG
 * (not a regular file, too open), with the reason in err.
 */
int files_open(const char *path, bool secret, const char *what, char *err, size_t errlen);

/*
 * Reads a whole file of at most max bytes through files_open. On success
 * *out is a malloc'd buffer of *len bytes plus a NUL (not counted) that the
 * caller frees, with files_free_secret when it held a secret. Returns 0, or
 * WSS_ERR_IO / WSS_ERR_CONFIG (also for a file longer than max) with the
 * reason in err; *out is then NULL.
 */
int files_read(const char *path, bool secret, const char *what, size_t max, char **out, size_t *len,
               char *err, size_t errlen);

/* Wipes len bytes of buf and frees it. NULL is a no-op. */
void files_free_secret(char *buf, size_t len);

#endif
