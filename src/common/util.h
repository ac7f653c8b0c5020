/*
 * Small helpers shared by every module: allocation that aborts on
 * out-of-memory, hex encoding, clocks and key fingerprints.
 */
#ifndef WSSIGND_UTIL_H
#define WSSIGND_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation wrappers: never return NULL; abort the process on out-of-memory.
 * Free with free(). xmemdup copies len bytes (len 0 gives a 1-byte block). */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Makes room for need bytes in *buf (capacity *cap): doubles from first, at
 * most to max (the caller has checked need <= max). Aborts on out-of-memory. */
void util_reserve(char **buf, size_t *cap, size_t need, size_t first, size_t max);
char *xstrdup(const char *s);
void *xmemdup(const void *p, size_t len);

/* Writes 2*len lowercase hex digits and a NUL to out (outlen >= 2*len+1).
 * Returns out. Output is truncated to fit outlen if it is too small. */
char *util_hex(char *out, size_t outlen, const uint8_t *in, size_t len);

/* Size of a key fingerprint: the first 8 bytes of the key in hex, plus NUL. */
#define UTIL_FPR_BYTES 17
/* Writes the short fingerprint of a 32-byte public key used in logs. */
char *util_key_fpr(char out[UTIL_FPR_BYTES], const uint8_t key[32]);

/* Monotonic clock in milliseconds (for deadlines and latency). */
uint64_t util_now_ms(void);
/* Wall clock: unix time in milliseconds (for what peers are told). */
uint64_t util_unix_ms(void);

/* Writes a fresh random lowercase UUID v4 (36 chars + NUL) to out. */
void util_uuid(char out[37]);

/* Longest label a requester may attach to a sign request, in bytes. */
#define UTIL_LABEL_MAX 256

/*
 * True if s (len bytes) is a usable label: at most UTIL_LABEL_MAX bytes of
 * valid UTF-8 (shortest forms, no surrogates) without control characters
 * (U+0000..U+001F, U+007F..U+009F). The empty label is valid.
 */
bool util_label_valid(const char *s, size_t len);

/* Length of the UTF-8 sequence at s (n >= 1 bytes left), or 0 if it is not
 * valid UTF-8: overlong, a surrogate, above U+10FFFF, or cut short. */
size_t util_utf8_len(const unsigned char *s, size_t n);

/* Longest part of a peer- or file-supplied string echoed into error text. */
#define UTIL_PRINTABLE_MAX 64

/*
 * Appends s to out (at *n) as printable ASCII for error text: control bytes,
 * non-ASCII bytes and quotes become '?', and anything past UTIL_PRINTABLE_MAX
 * is cut with "...". File contents end up in log lines; this keeps them one
 * line. util_printable writes a fresh copy and returns out.
 */
void util_printable_append(char *out, size_t outlen, size_t *n, const char *s);
const char *util_printable(char *out, size_t outlen, const char *s);

#endif
