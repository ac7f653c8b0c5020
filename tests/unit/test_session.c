/*
 * The protocol core through the transport seam, without sockets: session.c
 * and service.c driven over a fake link that records every frame, close and
 * drop. Covers introduction (proof, bad key, replayed proof, wrong host,
 * deadline), superseding with the re-send of pending requests, answers and
 * their verification, rejects, cancel, expiry, a signer that goes away, and
 * the limit on refused frames; key events and asynchronous presence
 * lookups; labels, and requests that wait for their key. Time is a parameter: deadlines fire through timers_run().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "crypto.h"
#include "link.h"
#include "log.h"
#include "service.h"
#include "session.h"
#include "timers.h"
#include "util.h"

#define FRAMES_MAX 32

/* Per test link: what the core sent it. */
struct fake {
    struct session s;
    json_t *frames[FRAMES_MAX];
    size_t n_frames, next;
    int close_code;
    bool dropped;
    unsigned pings;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
};

static struct fake *fake_of(struct session *s)
{
    return (struct fake *)(void *)s;
}

static void fake_send(struct session *s, char *buf, size_t len)
{
    struct fake *f = fake_of(s);
    json_error_t e;
    json_t *j = json_loadb(buf + s->ops->headroom, len, 0, &e);

    assert_non_null(j);
    assert_true(f->n_frames < FRAMES_MAX);
    /* As a transport does: nothing goes out once the link is closing. */
    if (f->close_code || f->dropped)
        json_decref(j);
    else
        f->frames[f->n_frames++] = j;
    free(buf);
}

static void fake_close(struct session *s, int code, const char *reason)
{
    if (!fake_of(s)->close_code)
        fake_of(s)->close_code = code;
}

static void fake_drop(struct session *s)
{
    fake_of(s)->dropped = true;
}

static void fake_ping(struct session *s)
{
    fake_of(s)->pings++;
}

/* Some headroom, as lws wants, to show that the core honours it. */
static const struct link_ops fake_ops = {
    .kind = "fake",
    .headroom = 16,
    .send = fake_send,
    .close = fake_close,
    .drop = fake_drop,
    .ping = fake_ping,
};

/* Per test: a service on default settings and a timer substrate without a loop. */
struct world {
    struct config cfg;
    struct timers timers;
    struct wss_service svc;
    int outcomes;
    struct {
        int status;
        char id[WSS_REQUEST_ID_BYTES];
        uint8_t sig[WSS_SIGNATURE_BYTES];
        bool has_sig;
        char detail[64];
    } last;
};

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof *w);

    assert_int_equal(crypto_init(), 0);
    log_set_level(WSS_LOG_ERR);
    config_init(&w->cfg);
    w->cfg.max_protocol_errors = 3;
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
    service_cleanup(&w->svc);
    timers_cleanup(&w->timers);
    config_cleanup(&w->cfg);
    free(w);
    return 0;
}

static void fake_free_frames(struct fake *f)
{
    for (size_t i = 0; i < f->n_frames; i++)
        json_decref(f->frames[i]);
    f->n_frames = f->next = 0;
}

/* The next frame the core sent to f, which must be of type; borrowed. */
static json_t *expect_frame(struct fake *f, const char *type)
{
    json_t *j;

    if (f->next >= f->n_frames)
        fail_msg("expected a '%s' frame, got none", type);
    j = f->frames[f->next++];
    if (strcmp(json_string_value(json_object_get(j, "type")), type)) {
        char *text = json_dumps(j, JSON_COMPACT);

        fail_msg("expected a '%s' frame, got %s", type, text);
    }
    return j;
}

static void expect_error(struct fake *f, const char *code)
{
    json_t *j = expect_frame(f, "error");

    assert_string_equal(json_string_value(json_object_get(j, "code")), code);
}

static void expect_no_frame(struct fake *f)
{
    if (f->next < f->n_frames) {
        char *text = json_dumps(f->frames[f->next], JSON_COMPACT);

        fail_msg("unexpected frame %s", text);
    }
}

static const char *str(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* A link that has been opened: it holds its challenge. */
static struct fake *open_link(struct world *w, const uint8_t *seed)
{
    struct fake *f = calloc(1, sizeof *f);
    uint8_t s32[32];

    if (seed)
        memcpy(s32, seed, 32);
    else
        randombytes_buf(s32, sizeof s32);
    crypto_sign_seed_keypair(f->pk, f->sk, s32);
    session_init(&f->s, &w->svc, &fake_ops, "fake-peer", NULL);
    session_on_open(&f->s);
    assert_int_equal(json_string_length(json_object_get(expect_frame(f, "challenge"), "nonce")),
                     44);
    return f;
}

static void close_link(struct fake *f)
{
    session_on_close(&f->s);
    fake_free_frames(f);
    free(f);
}

/* Sends obj (taken) to the core as a text frame from f. */
static void deliver(struct fake *f, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);

    json_decref(obj);
    session_on_message(&f->s, text, strlen(text));
    free(text);
}

static json_t *b64_of(const uint8_t *bin, size_t len)
{
    char *b = xmalloc(crypto_b64_len(len));
    json_t *s;

    crypto_b64_encode(b, crypto_b64_len(len), bin, len);
    s = json_string(b);
    free(b);
    return s;
}

/* The introduction frame f would send, proving its key for host with nonce. */
static json_t *intro_frame(struct fake *f, const char *host, const char *nonce_b64)
{
    uint8_t transcript[512], proof[crypto_sign_BYTES];
    size_t n = crypto_proof_transcript(transcript, sizeof transcript, host, nonce_b64);

    crypto_sign_detached(proof, NULL, transcript, n, f->sk);
    return json_pack("{s:s, s:o, s:s, s:o}", "type", "introduction", "public_key",
                     b64_of(f->pk, sizeof f->pk), "host", host, "proof",
                     b64_of(proof, sizeof proof));
}

static void introduce(struct fake *f)
{
    deliver(f, intro_frame(f, "localhost", f->s.nonce_b64));
    expect_frame(f, "introduced");
    assert_int_equal(f->s.state, SESSION_INTRODUCED);
}

static void on_result(const struct wss_sign_result *res, void *user)
{
    struct world *w = user;

    w->outcomes++;
    w->last.status = res->status;
    snprintf(w->last.id, sizeof w->last.id, "%s", res->request_id);
    w->last.has_sig = res->signature != NULL;
    if (res->signature)
        memcpy(w->last.sig, res->signature, WSS_SIGNATURE_BYTES);
    snprintf(w->last.detail, sizeof w->last.detail, "%s", res->detail ? res->detail : "");
}

static void ask(struct world *w, struct fake *f, const char *msg, uint32_t timeout_ms, char *id)
{
    struct wss_sign_opts opts = {.timeout_ms = timeout_ms, .requester = "test"};

    assert_int_equal(wss_send_to_sign(&w->svc, f->pk, (const uint8_t *)msg, strlen(msg), &opts,
                                      on_result, w, id),
                     0);
}

/* f answers the sign_request req honestly (or with another key's signature). */
static void answer(struct fake *f, json_t *req, const uint8_t *sk)
{
    uint8_t msg[256], sig[crypto_sign_BYTES];
    size_t len;

    assert_int_equal(
        crypto_b64_decode(msg, sizeof msg, &len, str(req, "message"), strlen(str(req, "message"))),
        0);
    crypto_sign_detached(sig, NULL, msg, len, sk ? sk : f->sk);
    deliver(f, json_pack("{s:s, s:s, s:s, s:o}", "type", "sign_response", "request_id",
                         str(req, "request_id"), "message", str(req, "message"), "signature",
                         b64_of(sig, sizeof sig)));
}

/* ---- introduction ---- */

static void test_introduction_ok(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    struct wss_presence p;

    assert_false(wss_lookup_key(&w->svc, f->pk, NULL));
    introduce(f);
    assert_true(wss_lookup_key(&w->svc, f->pk, &p));
    assert_int_equal(p.pending, 0);
    assert_string_equal(p.session_id, f->s.session_id);
    assert_int_equal(w->svc.metrics.intro[METRICS_INTRO_OK], 1);
    assert_int_equal(f->close_code, 0);
    close_link(f);
    assert_false(wss_lookup_key(&w->svc, (uint8_t[32]){0}, NULL));
}

static void test_introduction_refusals(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL), *g;
    uint8_t small_order[32] = {1}; /* the identity point: of small order */
    char nonce[CRYPTO_NONCE_B64_BYTES];
    json_t *j;

    /* A proof for another challenge (a replay from another connection). */
    g = open_link(w, NULL);
    deliver(f, intro_frame(f, "localhost", g->s.nonce_b64));
    expect_error(f, "bad_proof");
    assert_int_equal(f->close_code, LINK_CLOSE_POLICY);
    assert_false(wss_lookup_key(&w->svc, f->pk, NULL));
    close_link(f);

    /* A host that is not one of the server's names. */
    deliver(g, intro_frame(g, "evil.example", g->s.nonce_b64));
    expect_error(g, "bad_host");
    assert_int_equal(g->close_code, LINK_CLOSE_POLICY);
    close_link(g);

    /* A key of small order, with a "proof" made by another key. */
    f = open_link(w, NULL);
    snprintf(nonce, sizeof nonce, "%s", f->s.nonce_b64);
    j = intro_frame(f, "localhost", nonce);
    json_object_set_new(j, "public_key", b64_of(small_order, sizeof small_order));
    deliver(f, j);
    expect_error(f, "bad_key");
    close_link(f);

    /* No proof while proofs are required. */
    f = open_link(w, NULL);
    j = intro_frame(f, "localhost", f->s.nonce_b64);
    json_object_del(j, "proof");
    deliver(f, j);
    expect_error(f, "missing_proof");
    close_link(f);
    assert_int_equal(w->svc.metrics.intro[METRICS_INTRO_BAD_PROOF], 1);
    assert_int_equal(w->svc.metrics.intro[METRICS_INTRO_BAD_HOST], 1);
    assert_int_equal(w->svc.metrics.intro[METRICS_INTRO_BAD_KEY], 1);
    assert_int_equal(w->svc.metrics.intro[METRICS_INTRO_MISSING_PROOF], 1);
}

static void test_introduction_replayed_on_the_same_link(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);

    introduce(f);
    deliver(f, intro_frame(f, "localhost", f->s.nonce_b64));
    expect_error(f, "already_introduced");
    assert_int_equal(f->close_code, 0); /* a refused frame, not a refused introduction */
    close_link(f);
}

static void test_introduction_deadline(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    uint64_t due = util_now_ms() + w->cfg.intro_timeout_ms;

    timers_run(&w->timers, due - 1000);
    expect_no_frame(f);
    timers_run(&w->timers, due + 1);
    expect_error(f, "introduction_timeout");
    assert_int_equal(f->close_code, LINK_CLOSE_INTRO_TIMEOUT);
    assert_int_equal(w->svc.metrics.intro[METRICS_INTRO_TIMEOUT], 1);
    close_link(f);
}

static void test_keepalive_ping_then_hangup(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    uint64_t t0;

    introduce(f);
    t0 = f->s.last_rx_ms;
    timers_run(&w->timers, t0 + w->cfg.ping_interval_ms + 1);
    assert_int_equal(f->pings, 1);
    assert_false(f->dropped);
    timers_run(&w->timers, t0 + w->cfg.idle_timeout_ms + 1);
    assert_true(f->dropped);
    close_link(f);
}

/* ---- requests ---- */

static void test_answer_verified(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    char id[WSS_REQUEST_ID_BYTES];
    json_t *req;

    introduce(f);
    ask(w, f, "pay 42", 0, id);
    req = expect_frame(f, "sign_request");
    assert_string_equal(str(req, "request_id"), id);
    assert_int_equal(w->outcomes, 0); /* never from inside wss_send_to_sign */
    answer(f, req, NULL);
    assert_int_equal(w->outcomes, 1);
    assert_int_equal(w->last.status, WSS_OK);
    assert_true(w->last.has_sig);
    assert_int_equal(
        crypto_verify_sig(f->pk, (const uint8_t *)"pay 42", 6, w->last.sig, sizeof w->last.sig), 0);
    /* The same answer again is refused: the request has ended. */
    answer(f, req, NULL);
    expect_error(f, "unknown_request");
    assert_int_equal(w->outcomes, 1);
    close_link(f);
}

static void test_answer_bad_signature_and_echo(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL), *other = open_link(w, NULL);
    char id[WSS_REQUEST_ID_BYTES];
    json_t *req;

    introduce(f);
    ask(w, f, "pay 1", 0, id);
    req = expect_frame(f, "sign_request");
    answer(f, req, other->sk); /* signed by another key */
    expect_error(f, "invalid_signature");
    assert_int_equal(w->last.status, WSS_ERR_BAD_SIG);
    assert_false(w->last.has_sig);

    ask(w, f, "pay 2", 0, id);
    req = expect_frame(f, "sign_request");
    /* A valid signature over other bytes than the ones requested. */
    json_object_set_new(req, "message", json_string("cGF5IDM=")); /* "pay 3" */
    answer(f, req, NULL);
    expect_error(f, "invalid_signature");
    assert_int_equal(w->last.status, WSS_ERR_BAD_SIG);
    assert_int_equal(w->outcomes, 2);
    close_link(other);
    close_link(f);
}

static void test_reject_and_wrong_link(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL), *g = open_link(w, NULL);
    char id[WSS_REQUEST_ID_BYTES];

    introduce(f);
    introduce(g);
    ask(w, f, "x", 0, id);
    expect_frame(f, "sign_request");
    /* g may not answer a request sent to f */
    deliver(g,
            json_pack("{s:s, s:s, s:s}", "type", "sign_reject", "request_id", id, "reason", "no"));
    expect_error(g, "unknown_request");
    assert_int_equal(w->outcomes, 0);
    deliver(f, json_pack("{s:s, s:s, s:s}", "type", "sign_reject", "request_id", id, "reason",
                         "user said no"));
    assert_int_equal(w->outcomes, 1);
    assert_int_equal(w->last.status, WSS_ERR_REJECTED);
    assert_string_equal(w->last.detail, "user said no");
    close_link(g);
    close_link(f);
}

static void test_cancel_and_expiry_tell_the_signer(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    char id[WSS_REQUEST_ID_BYTES], id2[WSS_REQUEST_ID_BYTES];
    json_t *c;

    introduce(f);
    ask(w, f, "a", 0, id);
    expect_frame(f, "sign_request");
    assert_int_equal(wss_cancel(&w->svc, id), 0);
    assert_int_equal(w->last.status, WSS_ERR_CANCELLED);
    c = expect_frame(f, "cancel");
    assert_string_equal(str(c, "reason"), "requester_cancelled");
    assert_int_equal(wss_cancel(&w->svc, id), WSS_ERR_NOT_FOUND);

    ask(w, f, "b", 500, id2);
    expect_frame(f, "sign_request");
    assert_int_equal(timers_next(&w->timers) <= util_now_ms() + 500, true);
    timers_run(&w->timers, util_now_ms() + 501);
    assert_int_equal(w->outcomes, 2);
    assert_int_equal(w->last.status, WSS_ERR_TIMEOUT);
    assert_string_equal(w->last.id, id2);
    c = expect_frame(f, "cancel");
    assert_string_equal(str(c, "reason"), "timeout");
    /* the late answer crossed the cancel: refused, but no protocol error */
    deliver(f, json_pack("{s:s, s:s, s:s}", "type", "sign_reject", "request_id", id2, "reason",
                         "late"));
    expect_error(f, "unknown_request");
    assert_int_equal(f->s.errors, 0);
    close_link(f);
}

/* introduction.proof "none": the minimal protocol. No challenge, an introduction of the
 * key alone, no "introduced", no cancel, and a late answer ends quietly. */
static void test_minimal_protocol(void **state)
{
    struct world *w = *state;
    struct fake *f = calloc(1, sizeof *f), *g;
    char id[WSS_REQUEST_ID_BYTES], id2[WSS_REQUEST_ID_BYTES];
    json_t *req;

    w->cfg.proof_none = true;
    w->cfg.proof_required = false;
    crypto_sign_keypair(f->pk, f->sk);
    session_init(&f->s, &w->svc, &fake_ops, "fake-peer", NULL);
    session_on_open(&f->s);
    expect_no_frame(f);
    /* A proof has nothing to sign here: refused as a bad field, the link stays open. */
    deliver(f, intro_frame(f, "localhost", f->s.nonce_b64));
    expect_error(f, "bad_field");
    assert_int_equal(f->s.state, SESSION_CHALLENGED);
    assert_int_equal(f->close_code, 0);
    deliver(f, json_pack("{s:s, s:o}", "type", "introduction", "public_key",
                         b64_of(f->pk, sizeof f->pk)));
    expect_no_frame(f);
    assert_int_equal(f->s.state, SESSION_INTRODUCED);
    assert_true(wss_lookup_key(&w->svc, f->pk, NULL));

    ask(w, f, "minimal", 0, id);
    answer(f, expect_frame(f, "sign_request"), NULL);
    assert_int_equal(w->last.status, WSS_OK);
    expect_no_frame(f);

    /* Cancelled, then expired: the signer hears of neither, and its late answers are
     * dropped without an error frame or a protocol error. */
    ask(w, f, "a", 0, id);
    req = expect_frame(f, "sign_request");
    assert_int_equal(wss_cancel(&w->svc, id), 0);
    ask(w, f, "b", 500, id2);
    expect_frame(f, "sign_request");
    timers_run(&w->timers, util_now_ms() + 501);
    assert_int_equal(w->last.status, WSS_ERR_TIMEOUT);
    expect_no_frame(f);
    answer(f, req, NULL);
    deliver(f, json_pack("{s:s, s:s}", "type", "sign_reject", "request_id", id2));
    expect_no_frame(f);
    assert_int_equal(f->s.errors, 1); /* the refused introduction only */

    /* Anyone who knows the key takes it over: the weakness of this mode. */
    g = calloc(1, sizeof *g);
    memcpy(g->pk, f->pk, sizeof g->pk);
    session_init(&g->s, &w->svc, &fake_ops, "impostor", NULL);
    session_on_open(&g->s);
    deliver(g, json_pack("{s:s, s:o}", "type", "introduction", "public_key",
                         b64_of(g->pk, sizeof g->pk)));
    expect_error(f, "superseded");
    assert_int_equal(f->close_code, LINK_CLOSE_SUPERSEDED);
    /* ...but cannot sign falsely: its answer is verified against the key. */
    ask(w, g, "forged", 0, id);
    answer(g, expect_frame(g, "sign_request"), (uint8_t[crypto_sign_SECRETKEYBYTES]){0});
    assert_int_equal(w->last.status, WSS_ERR_BAD_SIG);
    close_link(g);
    close_link(f);

    /* A link opened after the mode went back to "required" gets a challenge again and
     * must name its host. */
    w->cfg.proof_none = false;
    w->cfg.proof_required = true;
    f = open_link(w, NULL);
    deliver(f, json_pack("{s:s, s:o}", "type", "introduction", "public_key",
                         b64_of(f->pk, sizeof f->pk)));
    expect_error(f, "missing_field");
    assert_int_equal(f->s.state, SESSION_CHALLENGED);
    close_link(f);
}

static void test_supersede_resends_pending(void **state)
{
    struct world *w = *state;
    uint8_t seed[32];
    struct fake *old, *cur;
    char id[WSS_REQUEST_ID_BYTES];
    json_t *req;

    randombytes_buf(seed, sizeof seed);
    old = open_link(w, seed);
    introduce(old);
    ask(w, old, "moving", 0, id);
    expect_frame(old, "sign_request");
    cur = open_link(w, seed);
    introduce(cur);
    /* the old link is told and closed; the request follows the key with its id */
    expect_error(old, "superseded");
    assert_int_equal(old->close_code, LINK_CLOSE_SUPERSEDED);
    req = expect_frame(cur, "sign_request");
    assert_string_equal(str(req, "request_id"), id);
    /* the old link closing now changes nothing for the new holder */
    close_link(old);
    assert_true(wss_lookup_key(&w->svc, cur->pk, NULL));
    assert_int_equal(w->outcomes, 0);
    answer(cur, req, NULL);
    assert_int_equal(w->last.status, WSS_OK);
    close_link(cur);
}

static void test_signer_gone_ends_its_requests(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    char id[WSS_REQUEST_ID_BYTES];
    uint8_t pk[32];

    introduce(f);
    memcpy(pk, f->pk, sizeof pk);
    ask(w, f, "1", 0, id);
    ask(w, f, "2", 0, id);
    close_link(f);
    assert_int_equal(w->outcomes, 2);
    assert_int_equal(w->last.status, WSS_ERR_CONN_CLOSED);
    assert_false(wss_lookup_key(&w->svc, pk, NULL));
    assert_int_equal(
        wss_send_to_sign(&w->svc, pk, (const uint8_t *)"3", 1, NULL, on_result, w, NULL),
        WSS_ERR_NOT_CONNECTED);
}

static void test_refused_frames_limit(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);

    introduce(f);
    for (int i = 0; i < 3; i++) {
        deliver(f, json_pack("{s:s}", "type", "nonsense"));
        expect_error(f, "unknown_type");
        assert_int_equal(f->close_code, 0);
    }
    deliver(f, json_pack("{s:s}", "type", "nonsense"));
    expect_error(f, "unknown_type");
    assert_int_equal(f->close_code, LINK_CLOSE_POLICY);
    /* a closing link accepts nothing more */
    deliver(f, json_pack("{s:s}", "type", "nonsense"));
    expect_no_frame(f);
    close_link(f);
}

static void test_drain_ends_everything(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    char id[WSS_REQUEST_ID_BYTES];
    json_t *c;

    introduce(f);
    ask(w, f, "z", 0, id);
    expect_frame(f, "sign_request");
    service_drain(&w->svc);
    assert_int_equal(w->last.status, WSS_ERR_SHUTTING_DOWN);
    c = expect_frame(f, "cancel");
    assert_string_equal(str(c, "reason"), "shutting_down");
    assert_int_equal(
        wss_send_to_sign(&w->svc, f->pk, (const uint8_t *)"y", 1, NULL, on_result, w, NULL),
        WSS_ERR_SHUTTING_DOWN);
    close_link(f);
}

/* ---- key events ---- */

#define EVENTS_MAX 8

/* Per listener: the events it heard, and what it does when it hears one. */
struct listener {
    struct world *w;
    unsigned n;
    struct {
        enum wss_key_event_type type;
        uint8_t key[WSS_PUBLIC_KEY_BYTES];
        char session_id[WSS_REQUEST_ID_BYTES];
        bool replaced, held;
        uint64_t at_ms;
    } ev[EVENTS_MAX];
    int outcomes_at_event;
    struct listener *drop_other; /* unsubscribes this one at its first event */
    struct listener *add_other;  /* subscribes this one at its first event */
};

static void on_key_event(const struct wss_key_event *ev, void *user)
{
    struct listener *l = user;

    assert_true(l->n < EVENTS_MAX);
    l->ev[l->n].type = ev->type;
    memcpy(l->ev[l->n].key, ev->public_key, WSS_PUBLIC_KEY_BYTES);
    snprintf(l->ev[l->n].session_id, WSS_REQUEST_ID_BYTES, "%s", ev->session_id);
    l->ev[l->n].replaced = ev->replaced;
    l->ev[l->n].at_ms = ev->at_ms;
    /* What the service says about the key while the event is delivered. */
    l->ev[l->n].held = wss_lookup_key(&l->w->svc, ev->public_key, NULL);
    l->outcomes_at_event = l->w->outcomes;
    if (l->n++ == 0) {
        if (l->drop_other)
            assert_int_equal(wss_key_events_unsubscribe(&l->w->svc, on_key_event, l->drop_other),
                             0);
        if (l->add_other)
            assert_int_equal(wss_key_events_subscribe(&l->w->svc, on_key_event, l->add_other), 0);
    }
}

static void test_key_events(void **state)
{
    struct world *w = *state;
    struct listener a = {.w = w}, b = {.w = w};
    uint8_t seed[32];
    struct fake *old, *cur;
    char id[WSS_REQUEST_ID_BYTES];
    uint64_t t0 = util_unix_ms();

    assert_int_equal(wss_key_events_subscribe(&w->svc, on_key_event, &a), 0);
    assert_int_equal(wss_key_events_subscribe(&w->svc, on_key_event, &b), 0);
    assert_int_equal(wss_key_events_subscribe(&w->svc, on_key_event, &a), WSS_ERR_EXISTS);
    assert_int_equal(wss_key_events_subscribe(&w->svc, NULL, &a), WSS_ERR_INVAL);

    randombytes_buf(seed, sizeof seed);
    old = open_link(w, seed);
    assert_int_equal(a.n, 0); /* a link that has not proved a key is no event */
    introduce(old);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_int_equal(a.ev[0].type, WSS_KEY_CONNECTED);
    assert_memory_equal(a.ev[0].key, old->pk, WSS_PUBLIC_KEY_BYTES);
    assert_string_equal(a.ev[0].session_id, old->s.session_id);
    assert_false(a.ev[0].replaced);
    assert_true(a.ev[0].held); /* usable from inside the event */
    assert_true(a.ev[0].at_ms >= t0);

    /* A newer link takes the key over: one CONNECTED, replaced, no DISCONNECTED. */
    cur = open_link(w, seed);
    introduce(cur);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.ev[1].type, WSS_KEY_CONNECTED);
    assert_true(a.ev[1].replaced);
    assert_string_equal(a.ev[1].session_id, cur->s.session_id);
    close_link(old);
    assert_int_equal(a.n, 2);

    /* The holder goes: its requests have ended by the time listeners hear it. */
    ask(w, cur, "pending at the end", 0, id);
    close_link(cur);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.ev[2].type, WSS_KEY_DISCONNECTED);
    assert_memory_equal(a.ev[2].key, a.ev[0].key, WSS_PUBLIC_KEY_BYTES);
    assert_string_equal(a.ev[2].session_id, a.ev[1].session_id);
    assert_false(a.ev[2].held);
    assert_int_equal(a.outcomes_at_event, 1);
    assert_int_equal(w->last.status, WSS_ERR_CONN_CLOSED);
    assert_int_equal(b.n, 3);

    /* Unsubscribed: nothing more. */
    assert_int_equal(wss_key_events_unsubscribe(&w->svc, on_key_event, &a), 0);
    assert_int_equal(wss_key_events_unsubscribe(&w->svc, on_key_event, &a), WSS_ERR_NOT_FOUND);
    old = open_link(w, NULL);
    introduce(old);
    close_link(old);
    assert_int_equal(a.n, 3);
    assert_int_equal(b.n, 5);
}

static void test_key_events_change_listeners_inside(void **state)
{
    struct world *w = *state;
    struct listener a = {.w = w}, b = {.w = w}, c = {.w = w};
    struct fake *f;

    /* a, at its first event, removes b (listed after it) and adds c. */
    a.drop_other = &b;
    a.add_other = &c;
    assert_int_equal(wss_key_events_subscribe(&w->svc, on_key_event, &a), 0);
    assert_int_equal(wss_key_events_subscribe(&w->svc, on_key_event, &b), 0);
    f = open_link(w, NULL);
    introduce(f);
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 0); /* removed before its turn: not called */
    assert_int_equal(c.n, 0); /* added during the event: hears the next one */
    close_link(f);
    assert_int_equal(a.n, 2);
    assert_int_equal(b.n, 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ev[0].type, WSS_KEY_DISCONNECTED);
    assert_int_equal(w->svc.n_listeners, 2);
}

/* A key held on another node, as the cluster registers it: a remote link. */
static const struct link_ops remote_ops = {
    .kind = "fake-remote",
    .remote = true,
    .headroom = 16,
    .send = fake_send,
    .close = fake_close,
    .drop = fake_drop,
};

static struct fake *remote_holder(struct world *w, const uint8_t *key, struct session **old)
{
    struct fake *r = calloc(1, sizeof *r);

    session_init(&r->s, &w->svc, &remote_ops, "cluster", NULL);
    memcpy(r->s.key, key, WSS_PUBLIC_KEY_BYTES);
    r->s.state = SESSION_INTRODUCED;
    *old = service_register(&w->svc, &r->s);
    return r;
}

static void test_key_events_are_this_daemons(void **state)
{
    struct world *w = *state;
    struct listener a = {.w = w};
    struct session *old;
    struct fake *remote, *local;
    uint8_t seed[32];

    assert_int_equal(wss_key_events_subscribe(&w->svc, on_key_event, &a), 0);
    randombytes_buf(seed, sizeof seed);
    local = open_link(w, seed);
    /* A key held elsewhere is no event, coming or going. */
    remote = remote_holder(w, local->pk, &old);
    assert_null(old);
    assert_int_equal(a.n, 0);
    /* Proved here, it is an arrival, not a takeover. */
    introduce(local);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.ev[0].type, WSS_KEY_CONNECTED);
    assert_false(a.ev[0].replaced);
    session_on_close(&remote->s);
    assert_int_equal(a.n, 1);
    /* A remote link taking the key over from this daemon's closing holder: it left here. */
    local->s.state = SESSION_CLOSING;
    fake_free_frames(remote);
    free(remote);
    remote = remote_holder(w, local->pk, &old);
    assert_ptr_equal(old, &local->s);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.ev[1].type, WSS_KEY_DISCONNECTED);
    assert_string_equal(a.ev[1].session_id, local->s.session_id);
    close_link(local);
    assert_true(service_unregister(&w->svc, &remote->s));
    assert_int_equal(a.n, 2);
    fake_free_frames(remote);
    free(remote);
}

/* ---- labels and waiting for a key ---- */

static void ask_opts(struct world *w, const uint8_t *pk, const char *msg,
                     const struct wss_sign_opts *opts, char *id, int want)
{
    assert_int_equal(
        wss_send_to_sign(&w->svc, pk, (const uint8_t *)msg, strlen(msg), opts, on_result, w, id),
        want);
}

static void test_label_and_requester_reach_the_signer(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    struct wss_sign_opts opts = {.label = "Pay 12,50 \xe2\x82\xac to ACME",
                                 .requester_name = "billing"};
    char id[WSS_REQUEST_ID_BYTES], big[WSS_LABEL_MAX + 2];
    json_t *req;

    introduce(f);
    ask_opts(w, f->pk, "x", &opts, id, 0);
    req = expect_frame(f, "sign_request");
    assert_string_equal(str(req, "label"), opts.label);
    assert_string_equal(str(req, "requester"), "billing");
    /* Without them, the frame is as it always was. */
    ask(w, f, "y", 0, id);
    req = expect_frame(f, "sign_request");
    assert_null(json_object_get(req, "label"));
    assert_null(json_object_get(req, "requester"));
    /* Refused: control characters, bad UTF-8, too long, a bad requester name. */
    opts.label = "line\nbreak";
    ask_opts(w, f->pk, "z", &opts, NULL, WSS_ERR_INVAL);
    opts.label = "\xc3\x28";
    ask_opts(w, f->pk, "z", &opts, NULL, WSS_ERR_INVAL);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    opts.label = big;
    ask_opts(w, f->pk, "z", &opts, NULL, WSS_ERR_INVAL);
    big[WSS_LABEL_MAX] = '\0'; /* exactly the limit */
    ask_opts(w, f->pk, "z", &opts, NULL, 0);
    expect_frame(f, "sign_request");
    opts.label = NULL;
    opts.requester_name = "two words";
    ask_opts(w, f->pk, "z", &opts, NULL, WSS_ERR_INVAL);
    expect_no_frame(f);
    close_link(f);
}

static void test_wait_for_a_key_that_comes(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    struct wss_sign_opts opts = {.timeout_ms = 5000, .wait_ms = 1000};
    char id[WSS_REQUEST_ID_BYTES];
    json_t *req;

    /* Beyond the request's own timeout: refused. */
    opts.wait_ms = 5001;
    ask_opts(w, f->pk, "m", &opts, NULL, WSS_ERR_INVAL);
    /* Without waiting: not connected at once. */
    opts.wait_ms = 0;
    ask_opts(w, f->pk, "m", &opts, NULL, WSS_ERR_NOT_CONNECTED);
    opts.wait_ms = 1000;
    ask_opts(w, f->pk, "m", &opts, id, 0);
    assert_int_equal(w->outcomes, 0);
    /* It counts against the key's pending limit, as any request. */
    assert_int_equal(service_pending_for_key(&w->svc, f->pk), 1);
    timers_run(&w->timers, util_now_ms() + 500);
    assert_int_equal(w->outcomes, 0);
    introduce(f);
    req = expect_frame(f, "sign_request");
    assert_string_equal(str(req, "request_id"), id);
    /* Sent: the wait is over, and its end changes nothing. */
    timers_run(&w->timers, util_now_ms() + 1500);
    assert_int_equal(w->outcomes, 0);
    answer(f, req, NULL);
    assert_int_equal(w->outcomes, 1);
    assert_int_equal(w->last.status, WSS_OK);
    close_link(f);
}

static void test_wait_for_a_key_that_does_not_come(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL), *g;
    struct wss_sign_opts opts = {.timeout_ms = 5000, .wait_ms = 300};
    char id[WSS_REQUEST_ID_BYTES], id2[WSS_REQUEST_ID_BYTES];

    ask_opts(w, f->pk, "m", &opts, id, 0);
    /* Another key's arrival sends nothing. */
    g = open_link(w, NULL);
    introduce(g);
    expect_no_frame(g);
    timers_run(&w->timers, util_now_ms() + 301);
    assert_int_equal(w->outcomes, 1);
    assert_int_equal(w->last.status, WSS_ERR_NOT_CONNECTED);
    assert_string_equal(w->last.id, id);
    assert_int_equal(service_pending_for_key(&w->svc, f->pk), 0);
    /* Waiting up to the whole timeout: the deadline ends it not_connected too. */
    opts.wait_ms = 5000;
    ask_opts(w, f->pk, "m", &opts, id2, 0);
    timers_run(&w->timers, util_now_ms() + 5001);
    assert_int_equal(w->outcomes, 2);
    assert_int_equal(w->last.status, WSS_ERR_NOT_CONNECTED);
    /* A cancelled waiting request ends cancelled, once. */
    ask_opts(w, f->pk, "m", &opts, id2, 0);
    assert_int_equal(wss_cancel(&w->svc, id2), 0);
    assert_int_equal(w->last.status, WSS_ERR_CANCELLED);
    timers_run(&w->timers, util_now_ms() + 6000);
    assert_int_equal(w->outcomes, 3);
    /* The arrival after all of that finds nothing to send. */
    introduce(f);
    expect_no_frame(f);
    close_link(f);
    close_link(g);
}

static void test_waiting_survives_another_holder_leaving(void **state)
{
    struct world *w = *state;
    struct wss_sign_opts opts = {.timeout_ms = 5000, .wait_ms = 2000};
    uint8_t seed[32];
    struct session *old;
    struct fake *remote, *f;
    char sent[WSS_REQUEST_ID_BYTES], waits[WSS_REQUEST_ID_BYTES];
    json_t *req;

    randombytes_buf(seed, sizeof seed);
    f = open_link(w, seed);
    /* The key is held on another node: the request goes there. */
    remote = remote_holder(w, f->pk, &old);
    ask_opts(w, f->pk, "first", &opts, sent, 0);
    req = json_incref(expect_frame(remote, "sign_request"));
    /* ... which says nobody holds it after all: it waits instead. */
    assert_int_equal(service_end_request(&w->svc, &remote->s, sent, WSS_ERR_NOT_CONNECTED), 0);
    assert_int_equal(w->outcomes, 0);
    /* A request sent and not waiting ends when its holder goes; the waiting one stays. */
    ask(w, f, "second", 0, waits);
    expect_frame(remote, "sign_request");
    assert_true(service_unregister(&w->svc, &remote->s));
    assert_int_equal(w->outcomes, 1);
    assert_int_equal(w->last.status, WSS_ERR_CONN_CLOSED);
    assert_string_equal(w->last.id, waits);
    introduce(f);
    json_decref(req);
    req = expect_frame(f, "sign_request");
    assert_string_equal(str(req, "request_id"), sent);
    answer(f, req, NULL);
    assert_int_equal(w->outcomes, 2);
    assert_int_equal(w->last.status, WSS_OK);
    fake_free_frames(remote);
    free(remote);
    close_link(f);
}

/* ---- asynchronous presence lookups ---- */

/* Per lookup: what its callback was told. */
struct lookup_seen {
    struct world *w;
    unsigned calls;
    int status, reask_rc;
    struct wss_presence p;
    bool reask; /* asks again from the callback */
};

static void on_presence(int status, const struct wss_presence *p, void *user)
{
    struct lookup_seen *seen = user;
    uint8_t key[WSS_PUBLIC_KEY_BYTES] = {2};

    seen->calls++;
    seen->status = status;
    seen->p = *p;
    if (seen->reask)
        seen->reask_rc = wss_lookup_key_async(&seen->w->svc, key, on_presence, seen);
}

static void test_lookup_async(void **state)
{
    struct world *w = *state;
    struct fake *f = open_link(w, NULL);
    struct lookup_seen held = {0}, absent = {0};
    uint8_t other[WSS_PUBLIC_KEY_BYTES] = {7};

    introduce(f);
    assert_int_equal(wss_lookup_key_async(&w->svc, f->pk, on_presence, &held), 0);
    assert_int_equal(wss_lookup_key_async(&w->svc, other, on_presence, &absent), 0);
    /* Never from inside the call. */
    assert_int_equal(held.calls, 0);
    assert_int_equal(absent.calls, 0);
    assert_int_equal(wss_lookup_key_async(&w->svc, NULL, on_presence, &held), WSS_ERR_INVAL);
    assert_int_equal(wss_lookup_key_async(&w->svc, f->pk, NULL, &held), WSS_ERR_INVAL);

    /* The next turn of the loop answers both, once each. */
    timers_run(&w->timers, util_now_ms());
    assert_int_equal(held.calls, 1);
    assert_int_equal(held.status, WSS_OK);
    assert_true(held.p.connected);
    assert_string_equal(held.p.session_id, f->s.session_id);
    assert_int_equal(absent.calls, 1);
    assert_int_equal(absent.status, WSS_OK);
    assert_false(absent.p.connected);
    timers_run(&w->timers, util_now_ms() + 1000);
    assert_int_equal(held.calls, 1);

    /* The answer is the state on the turn it is given: the key left meanwhile. */
    assert_int_equal(wss_lookup_key_async(&w->svc, f->pk, on_presence, &held), 0);
    close_link(f);
    timers_run(&w->timers, util_now_ms());
    assert_int_equal(held.calls, 2);
    assert_false(held.p.connected);
}

static void test_lookup_async_at_the_end(void **state)
{
    struct world *w = *state;
    struct lookup_seen seen = {.w = w, .reask = true};
    uint8_t key[WSS_PUBLIC_KEY_BYTES] = {1};

    /* A lookup still due when the loop ends is answered then, shutting_down;
     * one asked again from that callback is refused, not queued. */
    assert_int_equal(wss_lookup_key_async(&w->svc, key, on_presence, &seen), 0);
    service_attach(&w->svc, NULL);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.reask_rc, WSS_ERR_SHUTTING_DOWN);
    seen.reask = false;
    assert_int_equal(seen.status, WSS_ERR_SHUTTING_DOWN);
    assert_false(seen.p.connected);
    assert_int_equal(timers_count(&w->timers), 0);
    /* Without a loop nothing is accepted. */
    assert_int_equal(wss_lookup_key_async(&w->svc, key, on_presence, &seen), WSS_ERR_SHUTTING_DOWN);
    assert_int_equal(seen.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_introduction_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introduction_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_introduction_replayed_on_the_same_link, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_introduction_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_ping_then_hangup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_bad_signature_and_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_and_wrong_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_expiry_tell_the_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minimal_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_supersede_resends_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_gone_ends_its_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_frames_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_ends_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_events_change_listeners_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_events_are_this_daemons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_and_requester_reach_the_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_a_key_that_comes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_a_key_that_does_not_come, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting_survives_another_holder_leaving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lookup_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_async_at_the_end, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
