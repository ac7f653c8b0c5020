/*
 * The registry: a uthash index from a 32-byte public key to the session
 * that introduced it. Owns only its small index entries; sessions are owned
 * by their transports and are never dereferenced here.
 */
#include "util.h"

/* uthash's internal tables follow the project's abort-on-OOM rule. */
#define uthash_malloc(sz) xmalloc(sz)
#define uthash_free(ptr, sz) free(ptr)

#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include <wssignd/errors.h>

/* Per registered key: lives from registry_add until registry_remove. */
struct reg_entry {
    uint8_t key[REGISTRY_KEY_BYTES];
    struct session *s; /* borrowed */
    uint64_t connected_at_ms;
    UT_hash_handle hh;
};

/* Per daemon: owned by the daemon. */
struct registry {
    struct reg_entry *entries; /* uthash head */
};

static struct reg_entry *lookup(const struct registry *reg, const uint8_t *key)
{
    struct reg_entry *e;

    HASH_FIND(hh, reg->entries, key, REGISTRY_KEY_BYTES, e);
    return e;
}

struct registry *registry_new(void)
{
    return xcalloc(1, sizeof(struct registry));
}

void registry_free(struct registry *reg)
{
    struct reg_entry *e, *tmp;

    if (!reg)
        return;
    HASH_ITER (hh, reg->entries, e, tmp) {
        HASH_DEL(reg->entries, e);
        free(e);
    }
    free(reg);
}

int registry_add(struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES], struct session *s,
                 uint64_t now_ms, struct session **replaced)
{
    struct reg_entry *e = lookup(reg, key);
    struct session *old = NULL;

    if (e) {
        /* The newest introduction wins; the caller closes the old holder. */
        if (e->s != s)
            old = e->s;
        e->s = s;
        e->connected_at_ms = now_ms;
    } else {
        e = xcalloc(1, sizeof(*e));
        memcpy(e->key, key, REGISTRY_KEY_BYTES);
        e->s = s;
        e->connected_at_ms = now_ms;
        HASH_ADD(hh, reg->entries, key, REGISTRY_KEY_BYTES, e);
    }
    if (replaced)
        *replaced = old;
    return 0;
}

struct session *registry_find(const struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES],
                              uint64_t *connected_at_ms)
{
    struct reg_entry *e = lookup(reg, key);

    if (!e)
        return NULL;
    if (connected_at_ms)
        *connected_at_ms = e->connected_at_ms;
    return e->s;
}

int registry_remove(struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES],
                    const struct session *s)
{
    struct reg_entry *e = lookup(reg, key);

    /* Only the current holder may drop the mapping: a superseded connection
     * closing late must not unregister the connection that replaced it. */
    if (!e || e->s != s)
        return WSS_ERR_NOT_FOUND;
    HASH_DEL(reg->entries, e);
    free(e);
    return 0;
}

size_t registry_count(const struct registry *reg)
{
    return HASH_COUNT(reg->entries);
}

void registry_foreach(const struct registry *reg, void (*fn)(struct session *s, void *arg),
                      void *arg)
{
    struct reg_entry *e, *tmp;

    HASH_ITER (hh, reg->entries, e, tmp) {
        fn(e->s, arg);
    }
}
