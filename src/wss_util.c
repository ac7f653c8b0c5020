/*
 * <wssignd/util.h> for controllers: thin wrappers over the daemon's own
 * allocation (util.c), clocks and strict base64 (crypto.c), so that a
 * controller needs no libsodium and shares the daemon's policies.
 */
#include <wssignd/util.h>

#include "crypto.h"
#include "util.h"

void *wss_malloc(size_t size)
{
    return xmalloc(size);
}

void *wss_calloc(size_t n, size_t size)
{
    return xcalloc(n, size);
}

void *wss_realloc(void *p, size_t size)
{
    return xrealloc(p, size);
}

char *wss_strdup(const char *s)
{
    return xstrdup(s);
}

uint64_t wss_now_ms(void)
{
    return util_now_ms();
}

uint64_t wss_unix_ms(void)
{
    return util_unix_ms();
}

char *wss_base64_encode(char *out, size_t outlen, const uint8_t *bin, size_t len)
{
    if (!out || outlen < crypto_b64_len(len))
        return NULL;
    return crypto_b64_encode(out, outlen, bin, len);
}

typedef int (*decode_fn)(uint8_t *out, size_t outmax, size_t *outlen, const char *b64,
                         size_t b64len);

/* The strict decoders leave a shorter text shorter: a key must fill all its bytes. */
static int key_decode(decode_fn decode, uint8_t key[WSS_PUBLIC_KEY_BYTES], const char *text,
                      size_t len)
{
    size_t n = 0;

    if (!text || decode(key, WSS_PUBLIC_KEY_BYTES, &n, text, len) != 0 || n != WSS_PUBLIC_KEY_BYTES)
        return WSS_ERR_INVAL;
    return 0;
}

int wss_key_decode(uint8_t key[WSS_PUBLIC_KEY_BYTES], const char *text, size_t len)
{
    return key_decode(crypto_b64_decode, key, text, len);
}

int wss_key_decode_url(uint8_t key[WSS_PUBLIC_KEY_BYTES], const char *text, size_t len)
{
    return key_decode(crypto_b64url_decode, key, text, len);
}
