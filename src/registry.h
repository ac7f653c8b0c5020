/*
 * The registry: public key (32 raw bytes) -> the live, introduced connection
 * that holds it. Owns only its index entries: connections are owned by the
 * transport, which removes a connection's entry when it closes.
 */
#ifndef WSSIGND_REGISTRY_H
#define WSSIGND_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define REGISTRY_KEY_BYTES 32

struct registry;
struct conn;

/* Creates an empty registry. Never NULL. Free with registry_free (NULL is a no-op). */
struct registry *registry_new(void);
void registry_free(struct registry *reg);

/*
 * Maps key to conn, introduced at unix time now_ms. If another connection held
 * the key, it is replaced and returned in *replaced (else *replaced = NULL);
 * replaced may be NULL if the caller does not care. Mapping the same conn
 * again only updates the time. Returns 0.
 */
int registry_add(struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES], struct conn *conn,
                 uint64_t now_ms, struct conn **replaced);

/* Returns the connection holding key, or NULL. If found and connected_at_ms
 * is not NULL, it receives the time given to registry_add. O(1). */
struct conn *registry_find(const struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES],
                           uint64_t *connected_at_ms);

/*
 * Removes key's entry only if it maps to conn (a superseded connection that
 * closes must not remove its successor). Returns 0, or WSS_ERR_NOT_FOUND.
 */
int registry_remove(struct registry *reg, const uint8_t key[REGISTRY_KEY_BYTES],
                    const struct conn *conn);

/* Number of keys registered. */
size_t registry_count(const struct registry *reg);

/* Calls fn for every (key, conn). fn must not add or remove entries. */
void registry_foreach(const struct registry *reg,
                      void (*fn)(const uint8_t *key, struct conn *conn, void *arg), void *arg);

#endif
