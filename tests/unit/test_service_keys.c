/*
 * The keys an operator manages, without sockets: admission by the key
 * lists, disconnecting a key (its requests end, the signer is told and
 * closed with 4003, the answer comes on a later turn), the reload check,
 * paging through thousands of keys with no repeat and no gap (also while
 * keys come and go between pages, and limited to a set), the merge of
 * several nodes' pages, and the bound on requester names in the metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "config.h"
#include "keyset.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "service_keys.h"
#include "session.h"
#include "timers.h"
#include "util.h"

/* Per test link: a session and what the core did to it. */
struct fake {
    struct session s;
    int close_code;
    unsigned frames;
    char last_error[32];
};

static void fake_send(struct session *s, char *buf, size_t len)
{
    struct fake *f = (struct fake *)(void *)s;
    const char *code = strstr(buf + s->ops->headroom, "\"code\":\"");

    f->frames++;
    if (code) {
        code += 8;
        snprintf(f->last_error, sizeof f->last_error, "%.*s", (int)strcspn(code, "\""), code);
    }
    free(buf);
}

static void fake_close(struct session *s, int code, const char *reason)
{
    struct fake *f = (struct fake *)(void *)s;

    if (!f->close_code)
        f->close_code = code;
}

static void fake_drop(struct session *s)
{
}

static const struct link_ops fake_ops = {
    .kind = "fake", .send = fake_send, .close = fake_close, .drop = fake_drop};
static const struct link_ops remote_ops = {
    .kind = "cluster", .remote = true, .send = fake_send, .close = fake_close, .drop = fake_drop};

/* Per test: a service on default settings, a loopless timer substrate, its links. */
struct world {
    struct config cfg;
    struct timers timers;
    struct wss_service svc;
    struct fake **links;
    size_t n_links;
};

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);

    assert_int_equal(sodium_init() >= 0, 1);
    log_set_level(WSS_LOG_ERR);
    config_init(&w->cfg);
    timers_init(&w->timers, NULL);
    service_init(&w->svc, &w->cfg);
    service_attach(&w->svc, &w->timers);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;

    service_drain(&w->svc);
    for (size_t i = 0; i < w->n_links; i++) {
        service_unregister(&w->svc, &w->links[i]->s);
        free(w->links[i]);
    }
    free(w->links);
    service_cleanup(&w->svc);
    timers_cleanup(&w->timers);
    config_cleanup(&w->cfg);
    free(w);
    return 0;
}

/* A link holding key (random when NULL), introduced and registered. */
static struct fake *connect_key(struct world *w, const uint8_t *key, bool remote)
{
    struct fake *f = calloc(1, sizeof *f);

    session_init(&f->s, &w->svc, remote ? &remote_ops : &fake_ops, "192.0.2.7", NULL);
    if (key)
        memcpy(f->s.key, key, sizeof f->s.key);
    else
        randombytes_buf(f->s.key, sizeof f->s.key);
    f->s.state = SESSION_INTRODUCED;
    util_uuid(f->s.session_id);
    service_register(&w->svc, &f->s);
    w->links = realloc(w->links, (w->n_links + 1) * sizeof *w->links);
    w->links[w->n_links++] = f;
    return f;
}

/* The link leaves (its entry stays in w->links, unregistered). */
static void leave(struct world *w, struct fake *f)
{
    f->s.state = SESSION_CLOSING;
    service_unregister(&w->svc, &f->s);
}

static struct keyset *set_of(const uint8_t *key)
{
    struct keyset *k = calloc(1, sizeof *k);

    keyset_add(k, key);
    keyset_sort(k);
    return k;
}

static void test_admission(void **state)
{
    struct world *w = *state;
    uint8_t a[32] = {1}, b[32] = {2};

    assert_true(service_key_admitted(&w->svc, a));
    w->cfg.keys_deny = set_of(a);
    assert_false(service_key_admitted(&w->svc, a));
    assert_true(service_key_admitted(&w->svc, b));
    w->cfg.keys_allow = set_of(b);
    assert_true(service_key_admitted(&w->svc, b));
    keyset_add(w->cfg.keys_allow, a);
    keyset_sort(w->cfg.keys_allow);
    /* Listed in both: the deny list wins. */
    assert_false(service_key_admitted(&w->svc, a));
    keyset_free(w->cfg.keys_deny);
    w->cfg.keys_deny = NULL;
    assert_true(service_key_admitted(&w->svc, a));
}

static int outcomes, last_status;

static void on_result(const struct wss_sign_result *res, void *user)
{
    outcomes++;
    last_status = res->status;
}

static int disc_calls, disc_status;

static void on_disconnect(int status, const char *node, void *user)
{
    disc_calls++;
    disc_status = status;
    assert_string_equal(node, "");
}

static void test_disconnect(void **state)
{
    struct world *w = *state;
    struct fake *f = connect_key(w, NULL, false);
    struct wss_sign_opts opts = {.requester = "test"};
    char id[WSS_REQUEST_ID_BYTES];

    outcomes = disc_calls = 0;
    assert_int_equal(
        wss_send_to_sign(&w->svc, f->s.key, (const uint8_t *)"m", 1, &opts, on_result, w, id), 0);
    assert_int_equal(wss_disconnect_key(&w->svc, NULL, NULL, on_disconnect, NULL), WSS_ERR_INVAL);
    assert_int_equal(wss_disconnect_key(&w->svc, f->s.key, "ops", on_disconnect, NULL), 0);
    /* Done before the call returns: the request ended, the signer was told and closed. */
    assert_int_equal(outcomes, 1);
    assert_int_equal(last_status, WSS_ERR_CONN_CLOSED);
    assert_int_equal(f->close_code, LINK_CLOSE_DENIED);
    assert_string_equal(f->last_error, "denied");
    assert_false(wss_lookup_key(&w->svc, f->s.key, NULL));
    /* The answer comes on a later turn, never inside the call. */
    assert_int_equal(disc_calls, 0);
    timers_run(&w->timers, util_now_ms());
    assert_int_equal(disc_calls, 1);
    assert_int_equal(disc_status, WSS_OK);
    /* Nobody holds it now. */
    assert_int_equal(wss_disconnect_key(&w->svc, f->s.key, "ops", on_disconnect, NULL), 0);
    timers_run(&w->timers, util_now_ms());
    assert_int_equal(disc_calls, 2);
    assert_int_equal(disc_status, WSS_ERR_NOT_CONNECTED);
    /* The loop ends with an answer still due: it is answered, shutting down. */
    assert_int_equal(wss_disconnect_key(&w->svc, f->s.key, "ops", on_disconnect, NULL), 0);
    service_attach(&w->svc, NULL);
    assert_int_equal(disc_calls, 3);
    assert_int_equal(disc_status, WSS_ERR_SHUTTING_DOWN);
    assert_int_equal(wss_disconnect_key(&w->svc, f->s.key, "ops", on_disconnect, NULL),
                     WSS_ERR_SHUTTING_DOWN);
}

static void test_enforce_after_reload(void **state)
{
    struct world *w = *state;
    struct fake *a = connect_key(w, NULL, false), *b = connect_key(w, NULL, false);

    connect_key(w, NULL, true); /* another node's: not ours to close */
    assert_int_equal(service_enforce_key_lists(&w->svc), 0);
    w->cfg.keys_deny = set_of(b->s.key);
    assert_int_equal(service_enforce_key_lists(&w->svc), 1);
    assert_int_equal(a->close_code, 0);
    assert_int_equal(b->close_code, LINK_CLOSE_DENIED);
    assert_string_equal(b->last_error, "denied");
    assert_true(wss_lookup_key(&w->svc, a->s.key, NULL));
    assert_false(wss_lookup_key(&w->svc, b->s.key, NULL));
    /* An allow list without a's key closes it too. */
    w->cfg.keys_allow = set_of(b->s.key);
    assert_int_equal(service_enforce_key_lists(&w->svc), 1);
    assert_int_equal(a->close_code, LINK_CLOSE_DENIED);
}

static int key_cmp(const void *x, const void *y)
{
    return memcmp(x, y, 32);
}

/* Pages through the local keys with limit; returns the keys seen, in order. The keys
 * held throughout are checked by the caller. churn (may be NULL) runs between pages. */
static size_t page_through(struct world *w, size_t limit, const struct keyset *only,
                           uint8_t (*seen)[32], size_t cap, void (*churn)(struct world *))
{
    struct service_list_query q = {.limit = limit, .only = only};
    struct wss_key_entry *page = calloc(limit, sizeof *page);
    size_t n_seen = 0;
    bool more;

    do {
        size_t n = service_list_local(&w->svc, &q, "", page, &more);

        assert_true(n <= limit);
        assert_true(more ? n == limit : true);
        for (size_t i = 0; i < n; i++) {
            if (i)
                assert_true(memcmp(page[i - 1].public_key, page[i].public_key, 32) < 0);
            if (q.has_after)
                assert_true(memcmp(q.after, page[i].public_key, 32) < 0);
            assert_string_equal(page[i].remote, "192.0.2.7");
            assert_true(page[i].connected_at_ms > 0);
            assert_true(n_seen < cap);
            memcpy(seen[n_seen++], page[i].public_key, 32);
        }
        if (n) {
            q.has_after = true;
            memcpy(q.after, page[n - 1].public_key, 32);
        }
        if (churn)
            churn(w);
    } while (more);
    free(page);
    return n_seen;
}

#define MANY 2500

static void test_list_pages(void **state)
{
    struct world *w = *state;
    uint8_t(*keys)[32] = calloc(MANY, 32), (*seen)[32] = calloc(MANY + 10, 32);
    static const size_t limits[] = {1, 7, 100, 999, 1000};
    struct keyset only = {0};

    for (size_t i = 0; i < MANY; i++)
        memcpy(keys[i], connect_key(w, NULL, false)->s.key, 32);
    for (size_t i = 0; i < 5; i++)
        connect_key(w, NULL, true); /* proxies for other nodes' keys: never listed here */
    qsort(keys, MANY, 32, key_cmp);
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
        size_t n = page_through(w, limits[l], NULL, seen, MANY + 10, NULL);

        assert_int_equal(n, MANY);
        assert_memory_equal(seen, keys, MANY * 32);
    }
    /* Limited to a set: only its connected keys, in order. */
    for (size_t i = 0; i < MANY; i += 10)
        keyset_add(&only, keys[i]);
    keyset_add(&only, (uint8_t[32]){0xff, 0xff}); /* not connected */
    keyset_sort(&only);
    assert_int_equal(page_through(w, 7, &only, seen, MANY + 10, NULL), MANY / 10);
    for (size_t i = 0; i < MANY / 10; i++)
        assert_memory_equal(seen[i], keys[10 * i], 32);
    keyset_clear(&only);
    free(keys);
    free(seen);
}

static size_t churn_next;

/* Between pages: one original key leaves and two new ones arrive. */
static void churn(struct world *w)
{
    while (churn_next < w->n_links && w->links[churn_next]->s.state != SESSION_INTRODUCED)
        churn_next++;
    if (churn_next < 300) /* the first 300 links are the ones that may leave */
        leave(w, w->links[churn_next++]);
    connect_key(w, NULL, false);
    connect_key(w, NULL, false);
}

static void test_list_pages_under_churn(void **state)
{
    struct world *w = *state;
    uint8_t(*seen)[32] = calloc(2 * MANY, 32);
    size_t n, steady = 0;

    for (size_t i = 0; i < MANY; i++)
        connect_key(w, NULL, false);
    churn_next = 0;
    n = page_through(w, 10, NULL, seen, 2 * MANY, churn);
    /* No key twice, ... */
    qsort(seen, n, 32, key_cmp);
    for (size_t i = 1; i < n; i++)
        assert_true(memcmp(seen[i - 1], seen[i], 32) < 0);
    /* ... and every key held from the first page to the last (links 300..) once. */
    for (size_t i = 300; i < MANY; i++) {
        assert_non_null(bsearch(w->links[i]->s.key, seen, n, 32, key_cmp));
        steady++;
    }
    assert_int_equal(steady, MANY - 300);
    free(seen);
}

static void test_merge(void **state)
{
    struct wss_key_entry e[5] = {0};
    bool more = false;

    e[0].public_key[0] = 3;
    e[1].public_key[0] = 1;
    e[1].connected_at_ms = 10;
    snprintf(e[1].node, sizeof e[1].node, "old");
    e[2].public_key[0] = 1;
    e[2].connected_at_ms = 20;
    snprintf(e[2].node, sizeof e[2].node, "new");
    e[3].public_key[0] = 2;
    e[4].public_key[0] = 4;
    /* A key on two nodes at once (it moved): listed once, where it arrived last. */
    assert_int_equal(service_keys_merge(e, 5, 10, &more), 4);
    assert_false(more);
    assert_int_equal(e[0].public_key[0], 1);
    assert_string_equal(e[0].node, "new");
    assert_int_equal(e[3].public_key[0], 4);
    assert_int_equal(service_keys_merge(e, 4, 2, &more), 2);
    assert_true(more);
    assert_int_equal(e[1].public_key[0], 2);
}

static int list_calls, list_status;
static size_t list_n;
static bool list_more;

static void on_list(int status, const struct wss_key_entry *keys, size_t n, bool more, void *user)
{
    list_calls++;
    list_status = status;
    list_n = n;
    list_more = more;
}

static void test_list_async(void **state)
{
    struct world *w = *state;
    struct wss_list_opts opts = {.limit = 2};
    uint8_t only[2][32];

    list_calls = 0;
    for (int i = 0; i < 3; i++)
        memcpy(only[i % 2], connect_key(w, NULL, false)->s.key, 32);
    assert_int_equal(wss_list_keys(&w->svc, NULL, on_list, NULL), WSS_ERR_INVAL);
    opts.limit = 0;
    assert_int_equal(wss_list_keys(&w->svc, &opts, on_list, NULL), WSS_ERR_INVAL);
    opts.limit = WSS_LIST_MAX + 1;
    assert_int_equal(wss_list_keys(&w->svc, &opts, on_list, NULL), WSS_ERR_INVAL);
    opts.limit = 2;
    assert_int_equal(wss_list_keys(&w->svc, &opts, on_list, NULL), 0);
    assert_int_equal(list_calls, 0);
    timers_run(&w->timers, util_now_ms());
    assert_int_equal(list_calls, 1);
    assert_int_equal(list_status, WSS_OK);
    assert_int_equal(list_n, 2);
    assert_true(list_more);
    opts.only = (const uint8_t(*)[32])only;
    opts.n_only = 2;
    assert_int_equal(wss_list_keys(&w->svc, &opts, on_list, NULL), 0);
    timers_run(&w->timers, util_now_ms());
    assert_int_equal(list_n, 2);
    assert_false(list_more);
    assert_int_equal(wss_list_keys(&w->svc, &opts, on_list, NULL), 0);
    service_attach(&w->svc, NULL);
    assert_int_equal(list_calls, 3);
    assert_int_equal(list_status, WSS_ERR_SHUTTING_DOWN);
    assert_int_equal(list_n, 0);
}

static void test_requester_slots(void **state)
{
    struct metrics m;
    char name[40];
    unsigned first;

    metrics_init(&m);
    assert_int_equal(metrics_requester_slot(&m, NULL), 0);
    assert_int_equal(metrics_requester_slot(&m, ""), 0);
    first = metrics_requester_slot(&m, "billing");
    assert_true(first >= 2);
    assert_int_equal(metrics_requester_slot(&m, "billing"), first);
    /* Not a label value to trust: counted as "other". */
    assert_int_equal(metrics_requester_slot(&m, "bad\"name"), 1);
    assert_int_equal(metrics_requester_slot(&m, "a-name-of-more-than-thirty-two-chars"), 1);
    for (int i = 1; i < METRICS_REQUESTERS_MAX; i++) {
        snprintf(name, sizeof name, "r%d", i);
        assert_true(metrics_requester_slot(&m, name) >= 2);
    }
    /* The table is full: a new name is "other", the known ones keep their slots. */
    assert_int_equal(metrics_requester_slot(&m, "one-too-many"), 1);
    assert_int_equal(metrics_requester_slot(&m, "billing"), first);
    metrics_requester_sign(&m, first, WSS_OK);
    metrics_requester_sign(&m, 1, WSS_ERR_FORBIDDEN_KEY);
    metrics_requester_sign(&m, 0, WSS_OK);
    assert_int_equal(m.requester_sign[first][0], 1);
    assert_int_equal(m.requester_sign[1][-WSS_ERR_FORBIDDEN_KEY], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enforce_after_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages_under_churn, setup, teardown),
        cmocka_unit_test(test_merge),
        cmocka_unit_test_setup_teardown(test_list_async, setup, teardown),
        cmocka_unit_test(test_requester_slots),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
