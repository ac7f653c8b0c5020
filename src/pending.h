/*
 * The pending table: request id -> pending sign request, with deadlines.
 * Owns its entries until they are taken out. No lws, no I/O: time is a
 * parameter, so tests drive expiry without sleeping.
 *
 * Costs: insert, find, take O(1) hash + O(log n) deadline heap; expire
 * O(k log n) for k expired entries; per-key listing O(entries of that key).
 */
#ifndef WSSIGND_PENDING_H
#define WSSIGND_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "timers.h"

#include <wssignd/service.h>

struct pending;

/* Per request: lives from wss_send_to_sign() until its one outcome. */
struct pending_req {
    /* The id index's handle beside the id it compares: one cache line pair per probe. */
    UT_hash_handle hh;
    char id[WSS_REQUEST_ID_BYTES];     /* UUID text */
    uint8_t key[WSS_PUBLIC_KEY_BYTES]; /* the signer's key */
    uint8_t *message;                  /* in this entry's own allocation */
    size_t message_len;
    uint64_t created_ms;         /* monotonic */
    uint64_t deadline_ms;        /* monotonic */
    uint64_t expires_at_unix_ms; /* what the signer is told */
    uint64_t conn_id;            /* connection it was sent to; 0: not sent */
    wss_sign_cb cb;
    void *user;
    char requester[96];      /* for the audit log */
    unsigned requester_slot; /* its requester's metrics slot; 0: none */
    char *label;             /* in this entry's allocation; NULL: none (what the signer is shown) */
    char requester_name[WSS_REQUESTER_NAME_MAX + 1]; /* "" : none */
    uint64_t wait_until_ms;                 /* may wait for its key until then; 0: may not */
    bool waiting;                           /* waiting for its key: sent nowhere */
    struct timer wait_timer;                /* armed while waiting (the service's) */
    struct wss_service *wait_svc;           /* whose timer it is */
    bool verifying;                         /* an answer is with the verifier pool */
    bool remote;                            /* last sent through another node */
    uint8_t signature[WSS_SIGNATURE_BYTES]; /* that answer's signature */

    /* Owned by the table; callers do not touch these. */
    struct pending_req *next; /* list returned by take_key/expire */
    struct pending_req *key_prev, *key_next;
    size_t heap_idx;

    /* The message, then the label with its NUL: one allocation per entry. */
    uint8_t data[];
};

/* Creates an empty table. Never NULL. */
struct pending *pending_new(void);

/*
 * Frees the table and every entry still in it, without calling callbacks.
 * The daemon ends every request (pending_take_all) before calling this.
 * NULL is a no-op.
 */
void pending_free(struct pending *p);

/*
 * Allocates an entry: copies key, message (message_len may be 0) and label
 * (NULL or "": none) into one allocation, sets id, created_ms and
 * deadline_ms. Never NULL. Free with pending_req_free, or hand it to
 * pending_insert.
 */
struct pending_req *pending_req_new(const char *id, const uint8_t key[WSS_PUBLIC_KEY_BYTES],
                                    const uint8_t *message, size_t message_len, const char *label,
                                    uint64_t created_ms, uint64_t deadline_ms);
/* Frees an entry that is not in a table. NULL is a no-op. */
void pending_req_free(struct pending_req *req);

/*
 * Inserts req, taking ownership of it in every case: on failure it is freed.
 * Its deadline_ms is read here; changing it later does not move the entry.
 * Returns 0, or WSS_ERR_EXISTS if an entry with the same id is present.
 */
int pending_insert_take(struct pending *p, struct pending_req *req);

/* Returns the entry with this id, still in the table (borrowed), or NULL. */
struct pending_req *pending_find(const struct pending *p, const char *id);

/* Unlinks the entry with this id and returns it; the caller owns it. NULL if absent. */
struct pending_req *pending_take(struct pending *p, const char *id);

/* Returns the first entry for key (oldest first; follow ->key_next), still in
 * the table, or NULL. The list must not be changed while it is walked. */
struct pending_req *pending_first_for_key(const struct pending *p,
                                          const uint8_t key[WSS_PUBLIC_KEY_BYTES]);

/* Unlinks every entry for key; returns them as a list (->next, oldest first)
 * that the caller owns. NULL if there are none. */
struct pending_req *pending_take_key(struct pending *p, const uint8_t key[WSS_PUBLIC_KEY_BYTES]);

/* Unlinks every entry whose deadline_ms <= now_ms; returns them as a list
 * (->next) in deadline order that the caller owns. NULL if none expired. */
struct pending_req *pending_expire(struct pending *p, uint64_t now_ms);

/* Unlinks every entry; returns them as a list (->next, oldest first) that
 * the caller owns. NULL if the table is empty. */
struct pending_req *pending_take_all(struct pending *p);

/* The earliest deadline in the table, or 0 if it is empty. O(1). */
uint64_t pending_next_deadline(const struct pending *p);

/* Number of entries, in all and for one key. O(1). */
size_t pending_count(const struct pending *p);
size_t pending_count_key(const struct pending *p, const uint8_t key[WSS_PUBLIC_KEY_BYTES]);

/* Per-key nodes kept for reuse after their key's last entry left (a bounded number). */
size_t pending_spare_keys(const struct pending *p);

#endif
