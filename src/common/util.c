/*
 * Allocation that aborts on out-of-memory, hex, clocks, UUIDs. Owns nothing
 * but a small per-thread pool of random bytes for UUIDs.
 */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <uuid/uuid.h>

static void oom(size_t size)
{
    fprintf(stderr, "level=err event=out_of_memory bytes=%zu\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        oom(size);
    return q;
}

void util_reserve(char **buf, size_t *cap, size_t need, size_t first, size_t max)
{
    size_t n = *cap ? *cap : first;

    if (need <= *cap)
        return;
    while (n < need)
        n *= 2;
    if (n > max)
        n = max;
    *buf = xrealloc(*buf, n);
    *cap = n;
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s) + 1);
}

void *xmemdup(const void *p, size_t len)
{
    void *q = xmalloc(len);
    if (len)
        memcpy(q, p, len);
    return q;
}

char *util_hex(char *out, size_t outlen, const uint8_t *in, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    if (!outlen)
        return out;
    for (i = 0; i < len && 2 * i + 2 < outlen; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * i] = '\0';
    return out;
}

char *util_key_fpr(char out[UTIL_FPR_BYTES], const uint8_t key[32])
{
    return util_hex(out, UTIL_FPR_BYTES, key, (UTIL_FPR_BYTES - 1) / 2);
}

uint64_t util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t util_unix_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * One id per sign request: the random bytes come from one randombytes_buf
 * (getrandom) call per 16 ids instead of libuuid's one call, and srandom
 * reseed, per id. Each thread has its own pool; bytes are wiped once used.
 */
void util_uuid(char out[37])
{
    static _Thread_local uint8_t pool[256];
    static _Thread_local size_t used = sizeof pool;
    uuid_t u;

    if (used == sizeof pool) {
        randombytes_buf(pool, sizeof pool);
        used = 0;
    }
    memcpy(u, pool + used, sizeof u);
    sodium_memzero(pool + used, sizeof u);
    used += sizeof u;
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_unparse_lower(u, out);
    sodium_memzero(u, sizeof u);
}

void util_printable_append(char *out, size_t outlen, size_t *n, const char *s)
{
    size_t i;

    for (i = 0; s[i] && i < UTIL_PRINTABLE_MAX && *n + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[(*n)++] = (c >= 0x20 && c < 0x7f && c != '\'' && c != '"') ? (char)c : '?';
    }
    if (s[i] && *n + 4 < outlen) {
        memcpy(out + *n, "...", 3);
        *n += 3;
    }
    out[*n] = '\0';
}

const char *util_printable(char *out, size_t outlen, const char *s)
{
    size_t n = 0;

    out[0] = '\0';
    util_printable_append(out, outlen, &n, s);
    return out;
}

size_t util_utf8_len(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] < 0xc2 || s[0] > 0xf4)
        return 0;
    len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    if (n < len)
        return 0;
    cp = s[0] & (0x7f >> len);
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

bool util_label_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    if (len > UTIL_LABEL_MAX)
        return false;
    while (p < end) {
        unsigned c = *p, n, i;
        uint32_t cp;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return false;
        if ((size_t)(end - p) <= n)
            return false;
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF, and the C1 controls */
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        p += n + 1;
    }
    return true;
}
