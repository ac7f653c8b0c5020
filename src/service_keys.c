/*
 * The keys an operator manages: admission by the key lists, disconnection
 * on request or after a reload, and the paged listing. A listing selects the
 * limit smallest keys above the cursor with a bounded max-heap, so a page
 * costs one pass over the registry whatever its size. Answers to the
 * asynchronous calls come from a timer (or the cluster's callback), never
 * from inside the call.
 */
#include "service_keys.h"

#include <stdlib.h>
#include <string.h>

#include "keyset.h"
#include "link.h"
#include "log.h"
#include "registry.h"
#include "service.h"
#include "session.h"
#include "timers.h"
#include "util.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define REQUESTER_LOG_MAX 96

enum op_kind { OP_DISCONNECT = 1, OP_LIST };

/* Per wss_disconnect_key() or wss_list_keys() call: until its callback has run. */
struct service_op {
    struct timer t;
    struct wss_service *svc;
    struct service_op *prev, *next; /* svc->key_ops */
    enum op_kind kind;
    int status;
    void *user;
    /* OP_DISCONNECT */
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char node[WSS_NODE_ID_MAX + 1];
    char requester[REQUESTER_LOG_MAX];
    wss_disconnect_cb dcb;
    /* OP_LIST: the query (only points at the owned set), the other nodes' keys */
    struct service_list_query q;
    struct keyset only;
    wss_key_list_cb lcb;
    struct wss_key_entry *remote;
    size_t n_remote;
    bool remote_more;
};

bool service_key_admitted(const struct wss_service *svc, const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    const struct config *cfg = svc->cfg;

    if (cfg->keys_allow && !keyset_has(cfg->keys_allow, key))
        return false;
    return !keyset_has(cfg->keys_deny, key);
}

/* The local introduced session holding key, as the registry has it. */
static struct session *local_holder(struct wss_service *svc, const uint8_t *key)
{
    struct session *s = registry_find(svc->registry, key, NULL);

    return s && s->state == SESSION_INTRODUCED && !s->ops->remote ? s : NULL;
}

bool service_disconnect_holder(struct wss_service *svc, const uint8_t key[WSS_PUBLIC_KEY_BYTES],
                               const char *message, const char *reason)
{
    struct session *s = local_holder(svc, key);
    char fpr[UTIL_FPR_BYTES];

    if (!s)
        return false;
    log_notice("event=key_disconnected key=%s conn=%llu remote=%s reason=%s",
               util_key_fpr(fpr, s->key), (unsigned long long)s->id, s->remote, reason);
    link_send_error(s, &svc->metrics, "denied", message, NULL);
    /* Closing from now on: nothing it sends is taken, and it holds the key no more. Its
     * requests end now (connection_closed), not when the close handshake completes. */
    s->state = SESSION_CLOSING;
    service_unregister(svc, s);
    s->ops->close(s, LINK_CLOSE_DENIED, "denied");
    return true;
}

/* Per reload check: the sessions to disconnect, gathered before any is touched. */
struct refused {
    struct wss_service *svc;
    struct session **list;
    size_t n, cap;
};

static void gather_refused(struct session *s, void *arg)
{
    struct refused *r = arg;

    if (s->ops->remote || s->state != SESSION_INTRODUCED || service_key_admitted(r->svc, s->key))
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->list = xrealloc(r->list, r->cap * sizeof *r->list);
    }
    r->list[r->n++] = s;
}

size_t service_enforce_key_lists(struct wss_service *svc)
{
    struct refused r = {.svc = svc};
    size_t done = 0;

    if (!svc->cfg->keys_allow && !svc->cfg->keys_deny)
        return 0;
    /* The registry may not change while it is walked: collect, then disconnect. */
    registry_foreach(svc->registry, gather_refused, &r);
    for (size_t i = 0; i < r.n; i++)
        done += service_disconnect_holder(svc, r.list[i]->key,
                                          "this key is no longer allowed to connect", "denied");
    free(r.list);
    return done;
}

/* ---- listing ---- */

/* Per local listing: a max-heap of the limit smallest matching sessions. */
struct picker {
    struct wss_service *svc;
    const struct service_list_query *q;
    struct session **heap;
    size_t n;
    bool more;
};

static int key_cmp(const struct session *a, const struct session *b)
{
    return memcmp(a->key, b->key, WSS_PUBLIC_KEY_BYTES);
}

static void sift_down(struct session **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        struct session *tmp;

        if (l < n && key_cmp(h[l], h[big]) > 0)
            big = l;
        if (r < n && key_cmp(h[r], h[big]) > 0)
            big = r;
        if (big == i)
            return;
        tmp = h[i];
        h[i] = h[big];
        h[big] = tmp;
        i = big;
    }
}

static void sift_up(struct session **h, size_t i)
{
    while (i && key_cmp(h[i], h[(i - 1) / 2]) > 0) {
        struct session *tmp = h[i];

        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = tmp;
        i = (i - 1) / 2;
    }
}

static void pick(struct session *s, void *arg)
{
    struct picker *p = arg;
    const struct service_list_query *q = p->q;

    if (s->ops->remote || s->state != SESSION_INTRODUCED)
        return;
    if (q->has_after && memcmp(s->key, q->after, WSS_PUBLIC_KEY_BYTES) <= 0)
        return;
    if (q->only && !keyset_has(q->only, s->key))
        return;
    if (p->n < q->limit) {
        p->heap[p->n++] = s;
        sift_up(p->heap, p->n - 1);
        return;
    }
    /* The page is full: this key or the largest kept one is beyond it. */
    p->more = true;
    if (key_cmp(s, p->heap[0]) < 0) {
        p->heap[0] = s;
        sift_down(p->heap, p->n, 0);
    }
}

static int session_ptr_cmp(const void *a, const void *b)
{
    return key_cmp(*(struct session *const *)a, *(struct session *const *)b);
}

size_t service_list_local(struct wss_service *svc, const struct service_list_query *q,
                          const char *node, struct wss_key_entry *out, bool *more)
{
    struct picker p = {.svc = svc, .q = q};

    *more = false;
    if (!q->limit)
        return 0;
    p.heap = xmalloc(q->limit * sizeof *p.heap);
    registry_foreach(svc->registry, pick, &p);
    qsort(p.heap, p.n, sizeof *p.heap, session_ptr_cmp);
    for (size_t i = 0; i < p.n; i++) {
        struct wss_key_entry *e = &out[i];
        uint64_t at = 0;

        memset(e, 0, sizeof *e);
        memcpy(e->public_key, p.heap[i]->key, WSS_PUBLIC_KEY_BYTES);
        registry_find(svc->registry, p.heap[i]->key, &at);
        e->connected_at_ms = at;
        snprintf(e->remote, sizeof e->remote, "%s", p.heap[i]->remote);
        snprintf(e->node, sizeof e->node, "%s", node ? node : "");
    }
    free(p.heap);
    *more = p.more;
    return p.n;
}

static int entry_cmp(const void *a, const void *b)
{
    return memcmp(((const struct wss_key_entry *)a)->public_key,
                  ((const struct wss_key_entry *)b)->public_key, WSS_PUBLIC_KEY_BYTES);
}

size_t service_keys_merge(struct wss_key_entry *keys, size_t n, size_t limit, bool *more)
{
    size_t out = 0;

    qsort(keys, n, sizeof *keys, entry_cmp);
    for (size_t i = 0; i < n; i++) {
        if (out && !entry_cmp(&keys[out - 1], &keys[i])) {
            if (keys[i].connected_at_ms > keys[out - 1].connected_at_ms)
                keys[out - 1] = keys[i];
            continue;
        }
        if (out != i)
            keys[out] = keys[i];
        out++;
    }
    if (out > limit) {
        out = limit;
        *more = true;
    }
    return out;
}

/* ---- the asynchronous calls ---- */

static void op_unlink(struct wss_service *svc, struct service_op *op)
{
    if (op->prev)
        op->prev->next = op->next;
    else
        svc->key_ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
}

static struct service_op *op_new(struct wss_service *svc, enum op_kind kind, void *user)
{
    struct service_op *op = xcalloc(1, sizeof *op);

    op->svc = svc;
    op->kind = kind;
    op->user = user;
    op->next = svc->key_ops;
    if (op->next)
        op->next->prev = op;
    svc->key_ops = op;
    return op;
}

static void op_free(struct service_op *op)
{
    keyset_clear(&op->only);
    free(op->remote);
    free(op);
}

/* Ends op: unlinked and freed, then its callback runs (it may call again). */
static void op_answer(struct service_op *op)
{
    struct wss_service *svc = op->svc;
    char fpr[UTIL_FPR_BYTES], quoted[REQUESTER_LOG_MAX + 8];

    op_unlink(svc, op);
    if (op->kind == OP_DISCONNECT) {
        log_notice("event=key_disconnect key=%s outcome=%s node=%s requester=%s",
                   util_key_fpr(fpr, op->key), wss_err_code(op->status),
                   op->node[0] ? op->node : "-",
                   log_quote(quoted, sizeof quoted, op->requester[0] ? op->requester : "unknown"));
        op->dcb(op->status, op->node, op->user);
    } else {
        struct wss_key_entry *keys = NULL;
        size_t n = 0;
        bool more = op->remote_more;

        if (op->status == WSS_OK) {
            keys = xmalloc((op->q.limit + op->n_remote) * sizeof *keys);
            n = service_list_local(svc, &op->q, svc->cluster.node_id, keys, &more);
            more = more || op->remote_more;
            if (op->n_remote)
                memcpy(keys + n, op->remote, op->n_remote * sizeof *keys);
            n = service_keys_merge(keys, n + op->n_remote, op->q.limit, &more);
        } else {
            more = false;
        }
        op->lcb(op->status, keys, n, more, op->user);
        free(keys);
    }
    op_free(op);
}

static void on_op_timer(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    op_answer(container_of(t, struct service_op, t));
}

/* Answers op on the loop's next turn. */
static void answer_soon(struct service_op *op, int status)
{
    op->status = status;
    timers_arm(op->svc->timers, &op->t, util_now_ms(), on_op_timer);
}

static void on_kicked(void *user, int status, const char *node)
{
    struct service_op *op = user;

    op->status = status;
    snprintf(op->node, sizeof op->node, "%s", node ? node : "");
    op_answer(op);
}

int wss_disconnect_key(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                       const char *requester, wss_disconnect_cb cb, void *user)
{
    struct service_op *op;

    if (!public_key || !cb)
        return WSS_ERR_INVAL;
    if (!svc->timers)
        return WSS_ERR_SHUTTING_DOWN;
    op = op_new(svc, OP_DISCONNECT, user);
    op->dcb = cb;
    memcpy(op->key, public_key, sizeof op->key);
    snprintf(op->requester, sizeof op->requester, "%s", requester ? requester : "");
    if (service_disconnect_holder(svc, public_key, "disconnected by the operator", "requested")) {
        snprintf(op->node, sizeof op->node, "%s", svc->cluster.node_id ? svc->cluster.node_id : "");
        answer_soon(op, WSS_OK);
    } else if (svc->cluster.kick) {
        /* Held on another node, or nowhere: the cluster finds out and answers. */
        int rc = svc->cluster.kick(svc->cluster.arg, public_key, on_kicked, op);

        if (rc != 0)
            answer_soon(op, rc);
    } else {
        answer_soon(op, WSS_ERR_NOT_CONNECTED);
    }
    return 0;
}

static void on_listed(void *user, int status, const struct wss_key_entry *keys, size_t n, bool more)
{
    struct service_op *op = user;

    op->status = status;
    if (status == WSS_OK && n) {
        op->remote = xmalloc(n * sizeof *op->remote);
        memcpy(op->remote, keys, n * sizeof *op->remote);
        op->n_remote = n;
    }
    op->remote_more = status == WSS_OK && more;
    op_answer(op);
}

int wss_list_keys(struct wss_service *svc, const struct wss_list_opts *opts, wss_key_list_cb cb,
                  void *user)
{
    struct service_op *op;

    if (!opts || !cb || !opts->limit || opts->limit > WSS_LIST_MAX ||
        (opts->only && (!opts->n_only || opts->n_only > WSS_LIST_MAX)))
        return WSS_ERR_INVAL;
    if (!svc->timers)
        return WSS_ERR_SHUTTING_DOWN;
    op = op_new(svc, OP_LIST, user);
    op->lcb = cb;
    op->q.limit = opts->limit;
    if (opts->after) {
        op->q.has_after = true;
        memcpy(op->q.after, opts->after, sizeof op->q.after);
    }
    if (opts->only) {
        for (size_t i = 0; i < opts->n_only; i++)
            keyset_add(&op->only, opts->only[i]);
        keyset_sort(&op->only);
        op->q.only = &op->only;
    }
    if (svc->cluster.list) {
        int rc = svc->cluster.list(svc->cluster.arg, &op->q, on_listed, op);

        if (rc != 0)
            answer_soon(op, rc);
    } else {
        answer_soon(op, WSS_OK);
    }
    return 0;
}

void service_keys_stop(struct wss_service *svc, struct timers *old)
{
    if (old)
        for (struct service_op *op = svc->key_ops; op; op = op->next)
            timers_disarm(old, &op->t);
    while (svc->key_ops) {
        svc->key_ops->status = WSS_ERR_SHUTTING_DOWN;
        op_answer(svc->key_ops);
    }
}
