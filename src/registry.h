/*
 * The registry: public key (32 raw bytes) -> the introduced session that
 * holds it. Owns only its index entries: sessions are owned by their
 * transports, and the signing service removes a session's entry when it
 * closes. Never dereferences a session.
 */
#ifndef WSSIGND_REGISTRY_H
#define WSSIGND_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define REGISTRY_KEY_BYTES 32

struct registry;
struct session;

/* Creates an empty registry. Never NULL. Free with registry_free (NULL is a no-op). */
struct registry *registry_new(void);
void registry_free(struct registry *reg);

/*
 * Maps key to s, introduced at unix time now_ms. If another session held the
 * key, it is replaced and returned in *replaced (else *replaced = NULL);
 * replaced may be NULL if the caller does not care. Mapping the same session
 * again only updates the time. Returns 0.
 */
int registry_add(struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES], struct session *s,
                 uint64_t now_ms, struct session **replaced);

/* Returns the session holding key, or NULL. If found and connected_at_ms
 * is not NULL, it receives the time given to registry_add. O(1). */
struct session *registry_find(const struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES],
                              uint64_t *connected_at_ms);

/*
 * Removes key's entry only if it maps to s (a superseded session that
 * closes must not remove its successor). Returns 0, or WSS_ERR_NOT_FOUND.
 */
int registry_remove(struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES],
                    const struct session *s);

/* Number of keys registered. */
size_t registry_count(const struct registry *reg);

/* Calls fn for every registered session. fn must not add or remove entries. */
void registry_foreach(const struct registry *reg, void (*fn)(struct session *s, void *arg),
                      void *arg);

#endif
