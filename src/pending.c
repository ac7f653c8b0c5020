/*
 * The pending table. Owns its entries from pending_insert_take until they
 * are taken out, and three indexes over them: id -> entry (uthash), key ->
 * that key's entries oldest first (uthash of small per-key nodes), and a
 * binary min-heap on (deadline_ms, seq). Knows nothing of connections, lws,
 * callbacks or clocks.
 */
#include "util.h"

/*
 * uthash's internal tables follow the project's abort-on-OOM rule, and are
 * kept for reuse: a hash that empties frees its table and bucket array, and
 * its next insertion makes them again, which with one request in flight at a
 * time was four allocations per request. The macros reach the table through
 * the variable p (struct pending *) that every function here that changes an
 * index has in scope.
 */
struct pending;
static void *table_alloc(struct pending *p, size_t size);
static void table_free(struct pending *p, void *ptr, size_t size);
#define uthash_malloc(sz) table_alloc(p, sz)
#define uthash_free(ptr, sz) table_free(p, ptr, sz)

#include "pending.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

/* Marks an entry that is in no heap (new, or taken out). */
#define NO_HEAP_IDX SIZE_MAX
/* The heap array never shrinks below this many slots. */
#define HEAP_MIN_CAP 16
/* Key nodes kept for reuse once their last entry has left (a key with one request in
 * flight at a time would otherwise allocate and free one per request). */
#define KEY_SPARES_MAX 64
/* uthash blocks kept: a table and a first bucket array for each of the two hashes. */
#define TABLE_SPARES 2
#define TABLE_BUCKETS_BYTES (HASH_INITIAL_NUM_BUCKETS * sizeof(UT_hash_bucket))

/* Per key with entries in the table: freed when its last entry leaves. */
struct key_node {
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    struct pending_req *head, *tail; /* oldest first, via key_next/key_prev */
    size_t count;
    UT_hash_handle hh;
    struct key_node *next_spare; /* in pending.spare_keys, while unused */
};

/*
 * Per heap slot: the entry and a copy of its ordering key, so that sifting
 * compares within the heap array instead of loading each entry it passes.
 */
struct heap_node {
    uint64_t deadline_ms;
    uint64_t seq; /* insertion order: equal deadlines expire first in, first out */
    struct pending_req *req;
};

/* Per daemon: owned by the daemon. */
struct pending {
    struct pending_req *by_id; /* uthash head, keyed by id */
    struct key_node *by_key;   /* uthash head, keyed by the 32-byte key */
    struct heap_node *heap;    /* min-heap on (deadline_ms, seq); entries know their heap_idx */
    size_t heap_len, heap_cap;
    uint64_t next_seq;
    struct key_node *spare_keys; /* unused key nodes, at most KEY_SPARES_MAX */
    size_t n_spare_keys;
    /* uthash's tables and first bucket arrays given back by the two hashes, for reuse. */
    void *spare_tables[TABLE_SPARES], *spare_buckets[TABLE_SPARES];
    size_t n_spare_tables, n_spare_buckets;
};

/* A block of uthash's of a size kept for reuse: from the spares if any, else allocated. */
static void *table_alloc(struct pending *p, size_t size)
{
    if (size == sizeof(UT_hash_table) && p->n_spare_tables)
        return p->spare_tables[--p->n_spare_tables];
    if (size == TABLE_BUCKETS_BYTES && p->n_spare_buckets)
        return p->spare_buckets[--p->n_spare_buckets];
    return xmalloc(size);
}

/* Keeps a block of a size table_alloc reuses, up to TABLE_SPARES of each; frees the rest. */
static void table_free(struct pending *p, void *ptr, size_t size)
{
    if (size == sizeof(UT_hash_table) && p->n_spare_tables < TABLE_SPARES)
        p->spare_tables[p->n_spare_tables++] = ptr;
    else if (size == TABLE_BUCKETS_BYTES && p->n_spare_buckets < TABLE_SPARES)
        p->spare_buckets[p->n_spare_buckets++] = ptr;
    else
        free(ptr);
}

/* ---- deadline heap ---- */

static bool before(const struct heap_node *a, const struct heap_node *b)
{
    if (a->deadline_ms != b->deadline_ms)
        return a->deadline_ms < b->deadline_ms;
    return a->seq < b->seq;
}

static void heap_place(struct pending *p, size_t i, const struct heap_node *node)
{
    p->heap[i] = *node;
    node->req->heap_idx = i;
}

static void sift_up(struct pending *p, size_t i)
{
    struct heap_node node = p->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!before(&node, &p->heap[parent]))
            break;
        heap_place(p, i, &p->heap[parent]);
        i = parent;
    }
    heap_place(p, i, &node);
}

static void sift_down(struct pending *p, size_t i)
{
    struct heap_node node = p->heap[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= p->heap_len)
            break;
        if (child + 1 < p->heap_len && before(&p->heap[child + 1], &p->heap[child]))
            child++;
        if (!before(&p->heap[child], &node))
            break;
        heap_place(p, i, &p->heap[child]);
        i = child;
    }
    heap_place(p, i, &node);
}

static void heap_push(struct pending *p, struct pending_req *r)
{
    struct heap_node node = {r->deadline_ms, p->next_seq++, r};

    if (p->heap_len == p->heap_cap) {
        p->heap_cap = p->heap_cap ? 2 * p->heap_cap : HEAP_MIN_CAP;
        p->heap = xrealloc(p->heap, p->heap_cap * sizeof(*p->heap));
    }
    heap_place(p, p->heap_len++, &node);
    sift_up(p, p->heap_len - 1);
}

static void heap_remove(struct pending *p, struct pending_req *r)
{
    size_t i = r->heap_idx;

    r->heap_idx = NO_HEAP_IDX;
    if (i != --p->heap_len) {
        /* The former last leaf fills the hole and moves whichever way restores order. */
        heap_place(p, i, &p->heap[p->heap_len]);
        if (i > 0 && before(&p->heap[i], &p->heap[(i - 1) / 2]))
            sift_up(p, i);
        else
            sift_down(p, i);
    }
    /* Give memory back after a burst, with slack so that a steady load does not thrash. */
    if (p->heap_cap > HEAP_MIN_CAP && p->heap_len <= p->heap_cap / 4) {
        p->heap_cap /= 2;
        p->heap = xrealloc(p->heap, p->heap_cap * sizeof(*p->heap));
    }
}

/* ---- per-key lists ---- */

static struct key_node *key_lookup(const struct pending *p, const uint8_t *key)
{
    struct key_node *n;

    HASH_FIND(hh, p->by_key, key, WSS_PUBLIC_KEY_BYTES, n);
    return n;
}

static void key_append(struct pending *p, struct pending_req *r)
{
    struct key_node *n = key_lookup(p, r->key);

    if (!n) {
        if ((n = p->spare_keys) != NULL) {
            p->spare_keys = n->next_spare;
            p->n_spare_keys--;
            memset(n, 0, sizeof(*n));
        } else {
            n = xcalloc(1, sizeof(*n));
        }
        memcpy(n->key, r->key, WSS_PUBLIC_KEY_BYTES);
        HASH_ADD(hh, p->by_key, key, WSS_PUBLIC_KEY_BYTES, n);
    }
    r->key_prev = n->tail;
    r->key_next = NULL;
    if (n->tail)
        n->tail->key_next = r;
    else
        n->head = r;
    n->tail = r;
    n->count++;
}

/* Takes n (out of by_key) back: kept for reuse up to the bound, else freed. */
static void key_release(struct pending *p, struct key_node *n)
{
    if (p->n_spare_keys >= KEY_SPARES_MAX) {
        free(n);
        return;
    }
    n->next_spare = p->spare_keys;
    p->spare_keys = n;
    p->n_spare_keys++;
}

static void key_unlink(struct pending *p, struct pending_req *r)
{
    struct key_node *n = key_lookup(p, r->key);

    if (r->key_prev)
        r->key_prev->key_next = r->key_next;
    else
        n->head = r->key_next;
    if (r->key_next)
        r->key_next->key_prev = r->key_prev;
    else
        n->tail = r->key_prev;
    r->key_prev = r->key_next = NULL;
    if (--n->count == 0) {
        HASH_DEL(p->by_key, n);
        key_release(p, n);
    }
}

/* Removes r from all three indexes; the caller owns it afterwards. */
static void detach(struct pending *p, struct pending_req *r)
{
    HASH_DEL(p->by_id, r);
    key_unlink(p, r);
    heap_remove(p, r);
    r->next = NULL;
}

/* ---- public ---- */

struct pending *pending_new(void)
{
    return xcalloc(1, sizeof(struct pending));
}

void pending_free(struct pending *p)
{
    struct pending_req *r, *next;
    struct key_node *n;

    if (!p)
        return;
    for (r = pending_take_all(p); r; r = next) {
        next = r->next;
        pending_req_free(r);
    }
    while ((n = p->spare_keys) != NULL) {
        p->spare_keys = n->next_spare;
        free(n);
    }
    while (p->n_spare_tables)
        free(p->spare_tables[--p->n_spare_tables]);
    while (p->n_spare_buckets)
        free(p->spare_buckets[--p->n_spare_buckets]);
    free(p->heap);
    free(p);
}

struct pending_req *pending_req_new(const char *id, const uint8_t key[WSS_PUBLIC_KEY_BYTES],
                                    const uint8_t *message, size_t message_len, const char *label,
                                    uint64_t created_ms, uint64_t deadline_ms)
{
    size_t label_size = label && *label ? strlen(label) + 1 : 0;
    struct pending_req *r = xmalloc(sizeof(*r) + message_len + label_size);
    size_t id_len = strnlen(id, sizeof(r->id) - 1);

    memset(r, 0, sizeof(*r));
    /* An over-long id is cut to fit; well-formed ids (UUID text) always fit. */
    memcpy(r->id, id, id_len);
    r->id[id_len] = '\0';
    memcpy(r->key, key, WSS_PUBLIC_KEY_BYTES);
    r->message = r->data;
    if (message_len)
        memcpy(r->data, message, message_len);
    r->message_len = message_len;
    if (label_size) {
        r->label = (char *)r->data + message_len;
        memcpy(r->label, label, label_size);
    }
    r->created_ms = created_ms;
    r->deadline_ms = deadline_ms;
    r->heap_idx = NO_HEAP_IDX;
    return r;
}

void pending_req_free(struct pending_req *req)
{
    free(req);
}

int pending_insert_take(struct pending *p, struct pending_req *req)
{
    size_t id_len = strlen(req->id);
    struct pending_req *dup;
    unsigned hashv;

    /* Hash the id once for both the duplicate check and the insertion. */
    HASH_VALUE(req->id, id_len, hashv);
    HASH_FIND_BYHASHVALUE(hh, p->by_id, req->id, id_len, hashv, dup);
    if (dup) {
        /* Ownership passed to us with the call, so a rejected entry is ours to free. */
        pending_req_free(req);
        return WSS_ERR_EXISTS;
    }
    req->next = NULL;
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, p->by_id, req->id, id_len, hashv, req);
    key_append(p, req);
    heap_push(p, req);
    return 0;
}

struct pending_req *pending_find(const struct pending *p, const char *id)
{
    struct pending_req *r;

    HASH_FIND_STR(p->by_id, id, r);
    return r;
}

struct pending_req *pending_take(struct pending *p, const char *id)
{
    struct pending_req *r = pending_find(p, id);

    if (r)
        detach(p, r);
    return r;
}

struct pending_req *pending_first_for_key(const struct pending *p,
                                          const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    struct key_node *n = key_lookup(p, key);

    return n ? n->head : NULL;
}

struct pending_req *pending_take_key(struct pending *p, const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    struct key_node *n = key_lookup(p, key);
    struct pending_req *r, *next, *list;

    if (!n)
        return NULL;
    /* The key list is already oldest first: reuse its order for ->next and
     * drop the whole node at once instead of unlinking entry by entry. */
    list = n->head;
    for (r = list; r; r = next) {
        next = r->key_next;
        HASH_DEL(p->by_id, r);
        heap_remove(p, r);
        r->key_prev = r->key_next = NULL;
        r->next = next;
    }
    HASH_DEL(p->by_key, n);
    key_release(p, n);
    return list;
}

struct pending_req *pending_expire(struct pending *p, uint64_t now_ms)
{
    struct pending_req *head = NULL, **tail = &head;

    while (p->heap_len > 0 && p->heap[0].deadline_ms <= now_ms) {
        struct pending_req *r = p->heap[0].req;

        detach(p, r);
        *tail = r;
        tail = &r->next;
    }
    return head;
}

struct pending_req *pending_take_all(struct pending *p)
{
    struct pending_req *head = NULL, **tail = &head, *r, *tmp;
    struct key_node *n, *ntmp;

    /* uthash keeps insertion order across deletions, so the list is oldest first. */
    HASH_ITER (hh, p->by_id, r, tmp) {
        r->key_prev = r->key_next = NULL;
        r->heap_idx = NO_HEAP_IDX;
        *tail = r;
        tail = &r->next;
    }
    *tail = NULL;
    /* The entries survive HASH_CLEAR: it frees only uthash's bucket table. */
    HASH_CLEAR(hh, p->by_id);
    HASH_ITER (hh, p->by_key, n, ntmp) {
        HASH_DEL(p->by_key, n);
        free(n);
    }
    free(p->heap);
    p->heap = NULL;
    p->heap_len = p->heap_cap = 0;
    return head;
}

uint64_t pending_next_deadline(const struct pending *p)
{
    return p->heap_len > 0 ? p->heap[0].deadline_ms : 0;
}

size_t pending_count(const struct pending *p)
{
    return p->heap_len;
}

size_t pending_count_key(const struct pending *p, const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    struct key_node *n = key_lookup(p, key);

    return n ? n->count : 0;
}

size_t pending_spare_keys(const struct pending *p)
{
    return p->n_spare_keys;
}
