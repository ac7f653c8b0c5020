/*
 * Helpers for controllers: allocation, clocks, public keys and base64.
 *
 * Allocation-failure policy: wssignd does not handle out-of-memory at each
 * call site. Every allocation in the daemon, and every wss_ function that
 * allocates, aborts the process with a log line when memory runs out
 * (redis's zmalloc and ttyd's xmalloc do the same); systemd then restarts
 * the service (Restart=on-failure). Controllers allocate with wss_malloc
 * and its siblings, which follow the policy, so they never see NULL either.
 * What a peer can make the daemon allocate is bounded before it is
 * allocated (message, body and frame limits).
 *
 * Every function here may be called from any thread; none keeps state.
 */
#ifndef WSSIGND_UTIL_PUBLIC_H
#define WSSIGND_UTIL_PUBLIC_H

#include <stddef.h>
#include <stdint.h>

#include <wssignd/service.h> /* WSS_PUBLIC_KEY_BYTES */

/*
 * malloc, calloc, realloc and strdup that never return NULL: they abort on
 * out-of-memory. Free with free(). wss_malloc(0) returns a unique pointer.
 */
void *wss_malloc(size_t size);
void *wss_calloc(size_t n, size_t size);
void *wss_realloc(void *p, size_t size);
char *wss_strdup(const char *s);

/* Monotonic clock in milliseconds (for deadlines and latencies; its epoch is arbitrary). */
uint64_t wss_now_ms(void);
/* Wall clock: unix time in milliseconds (what struct wss_presence reports). */
uint64_t wss_unix_ms(void);

/* Bytes of the standard base64 text of n bytes, padded, with its NUL. */
#define WSS_BASE64_BYTES(n) ((((size_t)(n) + 2) / 3) * 4 + 1)
/* The base64 text of a public key: 44 characters and a NUL. */
#define WSS_PUBLIC_KEY_BASE64_BYTES WSS_BASE64_BYTES(WSS_PUBLIC_KEY_BYTES)

/*
 * Writes the standard padded base64 of len bytes of bin, and a NUL, into
 * out. Returns out, or NULL (out untouched) when outlen is below
 * WSS_BASE64_BYTES(len).
 */
char *wss_base64_encode(char *out, size_t outlen, const uint8_t *bin, size_t len);

/*
 * Decodes a public key from len characters of text (not necessarily
 * NUL-terminated), strictly: the standard alphabet with its padding (as in
 * the wire protocol and the config file), no whitespace or other
 * characters, exactly WSS_PUBLIC_KEY_BYTES bytes. Only the one canonical
 * text of a key is taken. Returns 0 with key filled, or WSS_ERR_INVAL (key
 * may then be partly written). It checks the encoding only: whether the
 * bytes are a usable Ed25519 key is the introduction's business.
 */
int wss_key_decode(uint8_t key[WSS_PUBLIC_KEY_BYTES], const char *text, size_t len);

/* The same for the URL-safe alphabet, padding optional (a key in a URL path). */
int wss_key_decode_url(uint8_t key[WSS_PUBLIC_KEY_BYTES], const char *text, size_t len);

#endif
