/*
 * Sign requests from start to their one outcome: wss_send_to_sign(),
 * answers, verdicts, cancellation, expiry at the deadline, completion with
 * the audit line, and draining at shutdown; the registry of which session
 * holds which key, with its presence lookups and key events. Requests live
 * in the pending table; the session a request was sent to is found through
 * the registry by key on every use.
 */
#include "service.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "link.h"
#include "log.h"
#include "pending.h"
#include "registry.h"
#include "service_keys.h"
#include "session.h"
#include "util.h"
#include "verifier.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Per controller timer: an entry of the loop's timer substrate. */
struct wss_timer {
    struct timer t;
    struct wss_service *svc;
    wss_timer_cb fn;
    void *user;
};

/* Per wss_lookup_key_async() call: answered from a timer on the next loop turn. */
struct service_lookup {
    struct timer t;
    struct wss_service *svc;
    struct service_lookup *prev, *next; /* svc->lookups */
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    wss_presence_cb cb;
    void *user;
};

static void answer_lookups(struct wss_service *svc, int status);

int service_init(struct wss_service *svc, const struct config *cfg)
{
    memset(svc, 0, sizeof *svc);
    svc->cfg = cfg;
    svc->registry = registry_new();
    svc->pending = pending_new();
    metrics_init(&svc->metrics);
    return 0;
}

void service_attach(struct wss_service *svc, struct timers *timers)
{
    struct timers *old = svc->timers;

    if (!timers && svc->timers) {
        timers_disarm(svc->timers, &svc->expiry);
        for (struct service_lookup *l = svc->lookups; l; l = l->next)
            timers_disarm(svc->timers, &l->t);
    }
    svc->timers = timers;
    /* No loop turn is coming: a lookup still due is answered now (one asked
     * again from its callback is refused, as the loop is gone). */
    if (!timers) {
        answer_lookups(svc, WSS_ERR_SHUTTING_DOWN);
        service_keys_stop(svc, old);
    }
}

void service_cleanup(struct wss_service *svc)
{
    /* service_drain() has ended every request, so the expiry timer is idle. */
    service_attach(svc, NULL);
    free(svc->listeners);
    svc->listeners = NULL;
    svc->n_listeners = svc->cap_listeners = 0;
    pending_free(svc->pending);
    registry_free(svc->registry);
    svc->pending = NULL;
    svc->registry = NULL;
}

size_t service_key_count(const struct wss_service *svc)
{
    return registry_count(svc->registry);
}

size_t service_pending_count(const struct wss_service *svc)
{
    return pending_count(svc->pending);
}

/* The session holding key, if it is usable for requests (local or another node's). */
static struct session *holder(struct wss_service *svc, const uint8_t *key)
{
    struct session *s = registry_find(svc->registry, key, NULL);

    return s && s->state == SESSION_INTRODUCED ? s : NULL;
}

struct session *service_holder(struct wss_service *svc, const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    struct session *s = holder(svc, key);

    return s && !s->ops->remote ? s : NULL;
}

size_t service_pending_for_key(const struct wss_service *svc,
                               const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    return pending_count_key(svc->pending, key);
}

/* The session a request was sent to, if it still holds the request's key. */
static struct session *request_session(struct wss_service *svc, const struct pending_req *req)
{
    struct session *s = registry_find(svc->registry, req->key, NULL);

    return s && s->id == req->conn_id ? s : NULL;
}

static void send_cancel(struct wss_service *svc, const struct pending_req *req, const char *reason)
{
    struct session *s = request_session(svc, req);

    if (!s)
        return;
    /* The signer may answer before it reads the cancel: one late answer is owed grace. */
    s->late_answers++;
    link_send_cancel(s, req->id, reason);
}

/*
 * Counts an outcome and writes its audit line: who asked whom for what (by
 * length and digest, never the bytes), and how it ended. id is "-" for a
 * request refused before it was queued.
 */
static void audit(struct wss_service *svc, const char *id, const uint8_t *key,
                  const uint8_t *message, size_t message_len, int status, uint64_t latency_ms,
                  const char *requester, const char *label)
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    char fpr[UTIL_FPR_BYTES] = "-", dhex[2 * sizeof digest + 1] = "-", who[80];
    char lhex[2 * sizeof digest + 1] = "-";

    /* A request the signer's side failed is a warning; every other outcome a notice. */
    int level =
        status == WSS_ERR_TIMEOUT || status == WSS_ERR_BAD_SIG || status == WSS_ERR_CONN_CLOSED
            ? WSS_LOG_WARN
            : WSS_LOG_NOTICE;

    metrics_sign(&svc->metrics, status, latency_ms);
    if (!log_enabled(level))
        return;
    if (key)
        util_key_fpr(fpr, key);
    if (message) {
        crypto_hash_sha256(digest, message, message_len);
        util_hex(dhex, sizeof dhex, digest, sizeof digest);
    }
    /* The label by length and digest too: it is the requester's text. */
    if (label && *label) {
        crypto_hash_sha256(digest, (const uint8_t *)label, strlen(label));
        util_hex(lhex, sizeof lhex, digest, sizeof digest);
    }
    log_emit(level,
             "event=sign_outcome request_id=%s key=%s outcome=%s msg_len=%zu msg_sha256=%s "
             "label_len=%zu label_sha256=%s latency_ms=%llu requester=%s",
             id, fpr, wss_err_code(status), message ? message_len : 0, dhex,
             label ? strlen(label) : 0, lhex, (unsigned long long)latency_ms,
             log_quote(who, sizeof who, requester && requester[0] ? requester : "unknown"));
}

static void stop_waiting(struct wss_service *svc, struct pending_req *req);
static void on_expiry(struct timers *ts, struct timer *t, uint64_t now_ms);

/* Keeps the expiry timer on the earliest pending deadline. */
static void schedule(struct wss_service *svc)
{
    uint64_t next = pending_next_deadline(svc->pending);

    if (!svc->timers)
        return;
    if (!next)
        timers_disarm(svc->timers, &svc->expiry);
    else if (!timer_armed(&svc->expiry) || svc->expiry.due_ms != next)
        timers_arm(svc->timers, &svc->expiry, next, on_expiry);
}

/*
 * Ends req (already taken out of the pending table) with status: writes the
 * audit line, tells the signer "cancel" for timeout/cancelled/shutting_down,
 * runs the callback once, and frees req. The caller reschedules.
 */
static void complete(struct wss_service *svc, struct pending_req *req, int status,
                     const uint8_t *signature, const char *detail)
{
    struct wss_sign_result res;
    uint64_t latency = util_now_ms() - req->created_ms;

    switch (status) {
    case WSS_ERR_TIMEOUT: send_cancel(svc, req, "timeout"); break;
    case WSS_ERR_CANCELLED: send_cancel(svc, req, "requester_cancelled"); break;
    case WSS_ERR_SHUTTING_DOWN: send_cancel(svc, req, "shutting_down"); break;
    default: break;
    }

    /* Never sent: it waited for a key that did not come. */
    if (req->waiting) {
        stop_waiting(svc, req);
        if (status == WSS_ERR_TIMEOUT)
            status = WSS_ERR_NOT_CONNECTED;
    }
    audit(svc, req->id, req->key, req->message, req->message_len, status, latency, req->requester,
          req->label);
    metrics_requester_sign(&svc->metrics, req->requester_slot, status);
    if (req->remote)
        metrics_remote_sign(&svc->metrics, status);
    memset(&res, 0, sizeof res);
    res.status = status;
    res.request_id = req->id;
    res.public_key = req->key;
    res.message = req->message;
    res.message_len = req->message_len;
    res.signature = status == WSS_OK ? signature : NULL;
    res.detail = detail;
    res.latency_ms = latency;
    req->cb(&res, req->user);
    pending_req_free(req);
}

/* Ends every request of a list (->next) with status, then reschedules. */
static void complete_all(struct wss_service *svc, struct pending_req *list, int status)
{
    struct pending_req *req, *next;

    for (req = list; req; req = next) {
        next = req->next;
        complete(svc, req, status, NULL, NULL);
    }
    schedule(svc);
}

/* Takes the request with this id out of the table and ends it. */
static void finish(struct wss_service *svc, const char *id, int status, const uint8_t *signature,
                   const char *detail)
{
    complete(svc, pending_take(svc->pending, id), status, signature, detail);
    schedule(svc);
}

static void on_expiry(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct wss_service *svc = container_of(t, struct wss_service, expiry);

    complete_all(svc, pending_expire(svc->pending, now_ms), WSS_ERR_TIMEOUT);
}

static void send_request(struct session *s, struct pending_req *req)
{
    if (req->waiting)
        stop_waiting(s->svc, req);
    req->conn_id = s->id;
    req->remote = s->ops->remote;
    link_send_sign_request(s, req->id, req->message, req->message_len, req->expires_at_unix_ms,
                           req->label, req->requester_name);
}

/* True if another request for the key still waits for it. */
static bool others_wait(struct wss_service *svc, const struct pending_req *req)
{
    for (const struct pending_req *r = pending_first_for_key(svc->pending, req->key); r;
         r = r->key_next)
        if (r != req && r->waiting)
            return true;
    return false;
}

static void on_wait_over(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct pending_req *req = container_of(t, struct pending_req, wait_timer);
    char id[WSS_REQUEST_ID_BYTES];

    /* The key did not come in time: not connected, as without waiting. */
    memcpy(id, req->id, sizeof id);
    finish(req->wait_svc, id, WSS_ERR_NOT_CONNECTED, NULL, NULL);
}

/* req waits for its key, sent nowhere, until its wait ends. */
static void start_waiting(struct wss_service *svc, struct pending_req *req)
{
    req->waiting = true;
    req->conn_id = 0;
    req->remote = false;
    req->wait_svc = svc;
    if (svc->timers)
        timers_arm(svc->timers, &req->wait_timer, req->wait_until_ms, on_wait_over);
    /* In a cluster, the key may arrive on any node: the cluster watches for it. */
    if (svc->cluster.wait_key)
        svc->cluster.wait_key(svc->cluster.arg, req->key);
}

/* req no longer waits for its key (it is sent, or it ends). */
static void stop_waiting(struct wss_service *svc, struct pending_req *req)
{
    req->waiting = false;
    if (svc->timers)
        timers_disarm(svc->timers, &req->wait_timer);
    if (svc->cluster.unwait_key && !others_wait(svc, req))
        svc->cluster.unwait_key(svc->cluster.arg, req->key);
}

void service_send_waiting(struct wss_service *svc, struct session *s)
{
    struct pending_req *req;

    for (req = pending_first_for_key(svc->pending, s->key); req; req = req->key_next)
        if (req->waiting)
            send_request(s, req);
}

/* Takes the key's requests that were sent (not those waiting for it), oldest first. */
static struct pending_req *take_sent(struct wss_service *svc, const uint8_t *key)
{
    struct pending_req *r, *next, *head = NULL, **tail = &head;

    for (r = pending_first_for_key(svc->pending, key); r && !r->waiting; r = r->key_next)
        ;
    if (!r)
        return pending_take_key(svc->pending, key);
    for (r = pending_first_for_key(svc->pending, key); r; r = next) {
        next = r->key_next;
        if (r->waiting)
            continue;
        pending_take(svc->pending, r->id);
        r->next = NULL;
        *tail = r;
        tail = &r->next;
    }
    return head;
}

/* Drops the listeners removed while events were delivered, keeping the order. */
static void compact_listeners(struct wss_service *svc)
{
    size_t kept = 0;

    for (size_t i = 0; i < svc->n_listeners; i++)
        if (svc->listeners[i].cb)
            svc->listeners[kept++] = svc->listeners[i];
    svc->n_listeners = kept;
}

/*
 * Tells every listener about one key event. Listeners may (un)subscribe
 * meanwhile: the array may move, so it is indexed afresh for each call; a
 * removed one is blanked (and skipped), and one added now hears the next event.
 */
static void key_event(struct wss_service *svc, enum wss_key_event_type type,
                      const struct session *s, uint64_t at_ms, bool replaced)
{
    struct wss_key_event ev = {
        .type = type,
        .public_key = s->key,
        .session_id = s->session_id,
        .at_ms = at_ms,
        .replaced = replaced,
    };
    size_t n = svc->n_listeners;

    svc->delivering++;
    for (size_t i = 0; i < n; i++)
        if (svc->listeners[i].cb)
            svc->listeners[i].cb(&ev, svc->listeners[i].user);
    if (--svc->delivering == 0)
        compact_listeners(svc);
}

int wss_key_events_subscribe(struct wss_service *svc, wss_key_event_cb cb, void *user)
{
    if (!cb)
        return WSS_ERR_INVAL;
    for (size_t i = 0; i < svc->n_listeners; i++)
        if (svc->listeners[i].cb == cb && svc->listeners[i].user == user)
            return WSS_ERR_EXISTS;
    if (svc->n_listeners == svc->cap_listeners) {
        svc->cap_listeners = svc->cap_listeners ? 2 * svc->cap_listeners : 4;
        svc->listeners = xrealloc(svc->listeners, svc->cap_listeners * sizeof *svc->listeners);
    }
    svc->listeners[svc->n_listeners++] = (struct service_listener){cb, user};
    return 0;
}

int wss_key_events_unsubscribe(struct wss_service *svc, wss_key_event_cb cb, void *user)
{
    for (size_t i = 0; cb && i < svc->n_listeners; i++) {
        if (svc->listeners[i].cb != cb || svc->listeners[i].user != user)
            continue;
        svc->listeners[i].cb = NULL;
        if (!svc->delivering)
            compact_listeners(svc);
        return 0;
    }
    return WSS_ERR_NOT_FOUND;
}

struct session *service_register(struct wss_service *svc, struct session *s)
{
    struct session *old = NULL;
    struct pending_req *req;
    uint64_t at = util_unix_ms();

    registry_add(svc->registry, s->key, s, at, &old);
    /* Requests that waited for the key go to it now. */
    service_send_waiting(svc, s);
    if (s->ops->remote)
        svc->remote_sessions++;
    if (old && old->ops->remote)
        svc->remote_sessions--;
    if (!s->ops->remote && svc->cluster.key_event)
        svc->cluster.key_event(svc->cluster.arg, s, true);
    if (old) {
        /* The newest introduction wins: the key's requests follow it, with their ids. */
        for (req = pending_first_for_key(svc->pending, s->key); req; req = req->key_next)
            if (!req->verifying && req->conn_id != s->id) /* answered: its verdict is on the way */
                send_request(s, req);
    }
    /* Key events are this daemon's: a key held on another node (a remote link)
     * is none, and taking a key over from one is a plain arrival. */
    if (!s->ops->remote)
        key_event(svc, WSS_KEY_CONNECTED, s, at, old && !old->ops->remote);
    else if (old && !old->ops->remote)
        key_event(svc, WSS_KEY_DISCONNECTED, old, at, false);
    return old;
}

bool service_unregister(struct wss_service *svc, struct session *s)
{
    char fpr[UTIL_FPR_BYTES];

    if (registry_remove(svc->registry, s->key, s) != 0)
        return false;
    if (s->ops->remote) {
        svc->remote_sessions--;
    } else {
        log_info("event=disconnected key=%s conn=%llu remote=%s", util_key_fpr(fpr, s->key),
                 (unsigned long long)s->id, s->remote);
        if (svc->cluster.key_event)
            svc->cluster.key_event(svc->cluster.arg, s, false);
    }
    /* Requests waiting for the key keep waiting: they were sent to no one. */
    complete_all(svc, take_sent(svc, s->key), WSS_ERR_CONN_CLOSED);
    if (!s->ops->remote)
        key_event(svc, WSS_KEY_DISCONNECTED, s, util_unix_ms(), false);
    return true;
}

void service_foreach_session(struct wss_service *svc, void (*fn)(struct session *s, void *arg),
                             void *arg)
{
    registry_foreach(svc->registry, fn, arg);
}

/* The request with this id if it was sent to s and is not answered yet, else NULL. */
static struct pending_req *open_request(struct wss_service *svc, struct session *s, const char *id)
{
    struct pending_req *req = pending_find(svc->pending, id);

    /* One answer per request: a second one while the first is verified is refused too. */
    return req && req->conn_id == s->id && !req->verifying ? req : NULL;
}

/* Ends an answered request with its verdict; a bad one is also told to s (if given). */
static void verdict_reached(struct wss_service *svc, struct session *s, const char *id, int verdict,
                            const uint8_t *signature, const char *why)
{
    if (verdict == 0) {
        finish(svc, id, WSS_OK, signature, NULL);
        return;
    }
    if (s)
        link_send_error(s, &svc->metrics, "invalid_signature", why, id);
    finish(svc, id, WSS_ERR_BAD_SIG, NULL, NULL);
}

int service_on_answer(struct wss_service *svc, struct session *s, const char *request_id,
                      const uint8_t *message, size_t message_len,
                      const uint8_t signature[WSS_SIGNATURE_BYTES])
{
    struct pending_req *req = open_request(svc, s, request_id);
    int verdict;

    if (!req)
        return WSS_ERR_NOT_FOUND;
    /* Verify against the bytes the daemon sent, never against the echo. */
    if (message_len != req->message_len || memcmp(message, req->message, message_len)) {
        verdict_reached(svc, s, request_id, WSS_ERR_BAD_SIG, NULL,
                        "message differs from the one requested");
        return 0;
    }
    if (svc->verifier) {
        req->verifying = true;
        memcpy(req->signature, signature, sizeof req->signature);
        verifier_submit(svc->verifier, req->id, req->key, req->message, req->message_len,
                        req->signature);
        return 0;
    }
    verdict = crypto_verify_sig(req->key, req->message, req->message_len, signature,
                                WSS_SIGNATURE_BYTES) == 0
                  ? 0
                  : WSS_ERR_BAD_SIG;
    verdict_reached(svc, s, request_id, verdict, signature, "signature does not verify");
    return 0;
}

void service_on_verdict(const char *request_id, int verdict, void *arg)
{
    struct wss_service *svc = arg;
    struct pending_req *req = pending_find(svc->pending, request_id);
    uint8_t signature[WSS_SIGNATURE_BYTES];

    /* The request may have ended meanwhile (deadline, disconnect, cancel): nothing to do. */
    if (!req || !req->verifying)
        return;
    memcpy(signature, req->signature, sizeof signature);
    verdict_reached(svc, request_session(svc, req), request_id, verdict, signature,
                    "signature does not verify");
}

int service_on_reject(struct wss_service *svc, struct session *s, const char *request_id,
                      const char *reason)
{
    if (!open_request(svc, s, request_id))
        return WSS_ERR_NOT_FOUND;
    finish(svc, request_id, WSS_ERR_REJECTED, NULL, reason && reason[0] ? reason : NULL);
    return 0;
}

bool service_relay(struct wss_service *svc, struct session *s, const char *request_id,
                   const char *frame, size_t len)
{
    return svc->cluster.relay && svc->cluster.relay(svc->cluster.arg, s, request_id, frame, len);
}

int service_end_request(struct wss_service *svc, struct session *s, const char *request_id,
                        int status)
{
    struct pending_req *req = pending_find(svc->pending, request_id);

    if (!req || req->conn_id != s->id)
        return WSS_ERR_NOT_FOUND;
    /* No node holds the key after all: a request that may wait waits for it. */
    if (status == WSS_ERR_NOT_CONNECTED && req->wait_until_ms > util_now_ms() && !req->verifying) {
        start_waiting(svc, req);
        return 0;
    }
    finish(svc, request_id, status, NULL, NULL);
    return 0;
}

int service_resend(struct wss_service *svc, struct session *s, const char *request_id)
{
    struct pending_req *req = pending_find(svc->pending, request_id);

    if (!req || req->conn_id != s->id || req->verifying)
        return WSS_ERR_NOT_FOUND;
    send_request(s, req);
    return 0;
}

/* True if name is a usable requester name: 1..WSS_REQUESTER_NAME_MAX visible ASCII. */
static bool requester_name_valid(const char *name)
{
    size_t n = 0;

    for (; name[n]; n++)
        if (name[n] < 0x21 || name[n] > 0x7e || n >= WSS_REQUESTER_NAME_MAX)
            return false;
    return n > 0;
}

/*
 * Decides whether a request can be queued: 0, or the outcome it is refused
 * with. *out is the session to send it to, or NULL when it is to wait for its key.
 */
static int admit(struct wss_service *svc, const uint8_t *public_key, const uint8_t *message,
                 size_t message_len, uint32_t timeout, const struct wss_sign_opts *opts,
                 wss_sign_cb cb, struct session **out)
{
    const struct config *cfg = svc->cfg;
    struct session *s;

    if (svc->draining)
        return WSS_ERR_SHUTTING_DOWN;
    if (!cb || !public_key || !message || !message_len || message_len > cfg->max_message_bytes ||
        timeout > WSS_TIMEOUT_MAX_MS)
        return WSS_ERR_INVAL;
    if (opts && ((opts->label && !util_label_valid(opts->label, strlen(opts->label))) ||
                 (opts->requester_name && !requester_name_valid(opts->requester_name)) ||
                 opts->wait_ms > timeout))
        return WSS_ERR_INVAL;
    /* Domain separation: the signing oracle never produces introduction proofs. */
    if (crypto_has_reserved_prefix(message, message_len))
        return WSS_ERR_INVAL;
    if (pending_count(svc->pending) >= cfg->max_pending ||
        pending_count_key(svc->pending, public_key) >= cfg->max_pending_per_key)
        return WSS_ERR_OVERLOADED;
    if (!(s = holder(svc, public_key))) {
        int status = WSS_ERR_NOT_CONNECTED;

        /* Not held here: another node of a cluster may hold it. */
        if (svc->cluster.reach)
            s = svc->cluster.reach(svc->cluster.arg, public_key, &status);
        /* Held nowhere we can reach and the requester waits: the request waits for
         * the key (counted against the same limits), wherever it arrives. */
        if (!s && !(opts && opts->wait_ms))
            return status;
    }
    *out = s;
    return 0;
}

int wss_send_to_sign(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                     const uint8_t *message, size_t message_len, const struct wss_sign_opts *opts,
                     wss_sign_cb cb, void *user, char request_id[WSS_REQUEST_ID_BYTES])
{
    uint32_t timeout = opts && opts->timeout_ms ? opts->timeout_ms : svc->cfg->default_timeout_ms;
    struct pending_req *req;
    struct session *s = NULL;
    char id[WSS_REQUEST_ID_BYTES];
    uint64_t now;
    int rc = admit(svc, public_key, message, message_len, timeout, opts, cb, &s);
    unsigned slot = metrics_requester_slot(&svc->metrics, opts ? opts->requester_name : NULL);

    if (rc != 0) {
        audit(svc, "-", public_key, message, message_len, rc, 0, opts ? opts->requester : NULL,
              opts ? opts->label : NULL);
        metrics_requester_sign(&svc->metrics, slot, rc);
        return rc;
    }

    util_uuid(id);
    now = util_now_ms();
    req = pending_req_new(id, public_key, message, message_len, opts ? opts->label : NULL, now,
                          now + timeout);
    req->expires_at_unix_ms = util_unix_ms() + timeout;
    req->cb = cb;
    req->user = user;
    if (opts && opts->requester)
        snprintf(req->requester, sizeof req->requester, "%s", opts->requester);
    if (opts && opts->requester_name)
        snprintf(req->requester_name, sizeof req->requester_name, "%s", opts->requester_name);
    req->requester_slot = slot;
    /* A collision of 122 random bits is not expected; refuse rather than overwrite. */
    if (pending_insert_take(svc->pending, req) != 0)
        return WSS_ERR_INVAL;
    if (opts && opts->wait_ms)
        req->wait_until_ms = now + opts->wait_ms;
    if (s)
        send_request(s, req);
    else
        start_waiting(svc, req);
    schedule(svc);
    if (request_id)
        memcpy(request_id, id, WSS_REQUEST_ID_BYTES);
    return 0;
}

void wss_audit_refused(struct wss_service *svc, const uint8_t *public_key, const uint8_t *message,
                       size_t len, int status, const char *requester)
{
    audit(svc, "-", public_key, message, len, status, 0, requester, NULL);
}

void wss_audit_refused_opts(struct wss_service *svc, const uint8_t *public_key,
                            const uint8_t *message, size_t len, int status,
                            const struct wss_sign_opts *opts)
{
    unsigned slot = metrics_requester_slot(&svc->metrics, opts ? opts->requester_name : NULL);

    audit(svc, "-", public_key, message, len, status, 0, opts ? opts->requester : NULL,
          opts ? opts->label : NULL);
    metrics_requester_sign(&svc->metrics, slot, status);
}

int wss_cancel(struct wss_service *svc, const char *request_id)
{
    if (!pending_find(svc->pending, request_id))
        return WSS_ERR_NOT_FOUND;
    finish(svc, request_id, WSS_ERR_CANCELLED, NULL, NULL);
    return 0;
}

bool wss_lookup_key(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                    struct wss_presence *out)
{
    uint64_t at = 0;
    struct session *s = registry_find(svc->registry, public_key, &at);

    if (!s || s->state != SESSION_INTRODUCED || s->ops->remote)
        return false;
    if (out) {
        out->connected = true;
        out->connected_at_ms = at;
        memcpy(out->session_id, s->session_id, sizeof out->session_id);
        out->pending = (unsigned)pending_count_key(svc->pending, public_key);
    }
    return true;
}

static void lookup_unlink(struct wss_service *svc, struct service_lookup *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else
        svc->lookups = l->next;
    if (l->next)
        l->next->prev = l->prev;
}

/* Unlinks and frees l, then calls its callback (which may ask again) with p
 * (or, when p is NULL, what this daemon's registry says). */
static void lookup_answer(struct wss_service *svc, struct service_lookup *l, int status,
                          const struct wss_presence *p)
{
    struct wss_presence local = {0};
    wss_presence_cb cb = l->cb;
    void *user = l->user;

    if (status == WSS_OK && !p && wss_lookup_key(svc, l->key, &local) && svc->cluster.node_id)
        snprintf(local.node, sizeof local.node, "%s", svc->cluster.node_id);
    lookup_unlink(svc, l);
    free(l);
    cb(status, p ? p : &local, user);
}

/* The cluster's answer for a key held on another node (or nowhere). */
static void on_remote_presence(void *user, const struct wss_presence *p, const char *node)
{
    struct service_lookup *l = user;
    struct wss_presence copy = *p;

    if (node)
        snprintf(copy.node, sizeof copy.node, "%s", node);
    lookup_answer(l->svc, l, WSS_OK, &copy);
}

static void on_lookup(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct service_lookup *l = container_of(t, struct service_lookup, t);
    struct wss_service *svc = l->svc;

    /* Not held here: in a cluster, the node that holds it answers (l waits for it). */
    if (!service_holder(svc, l->key) && svc->cluster.lookup &&
        svc->cluster.lookup(svc->cluster.arg, l->key, on_remote_presence, l) == 0)
        return;
    lookup_answer(svc, l, WSS_OK, NULL);
}

const char *wss_cluster_state(struct wss_service *svc)
{
    if (!svc->cluster.up)
        return NULL;
    return svc->cluster.up(svc->cluster.arg) ? "up" : "down";
}

/* Answers every lookup still due with status, their timers disarmed (the loop is gone). */
static void answer_lookups(struct wss_service *svc, int status)
{
    while (svc->lookups)
        lookup_answer(svc, svc->lookups, status, NULL);
}

int wss_lookup_key_async(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                         wss_presence_cb cb, void *user)
{
    struct service_lookup *l;

    if (!public_key || !cb)
        return WSS_ERR_INVAL;
    if (!svc->timers)
        return WSS_ERR_SHUTTING_DOWN;
    l = xcalloc(1, sizeof *l);
    l->svc = svc;
    memcpy(l->key, public_key, sizeof l->key);
    l->cb = cb;
    l->user = user;
    l->next = svc->lookups;
    if (l->next)
        l->next->prev = l;
    svc->lookups = l;
    /* Due now: the timer substrate runs it on the loop's next turn, never inside this call. */
    timers_arm(svc->timers, &l->t, util_now_ms(), on_lookup);
    return 0;
}

size_t wss_max_message_bytes(struct wss_service *svc)
{
    return svc->cfg->max_message_bytes;
}

char *wss_metrics_render(struct wss_service *svc, size_t *len)
{
    struct metrics_gauges g = {
        .sockets = svc->sockets,
        .connections = svc->signers,
        .introduced_keys = registry_count(svc->registry) - svc->remote_sessions,
        .pending = pending_count(svc->pending),
    };

    return metrics_render(&svc->metrics, &g, len);
}

bool wss_control_is_local(struct wss_service *svc)
{
    return svc->control_local;
}

void service_drain(struct wss_service *svc)
{
    svc->draining = true;
    complete_all(svc, pending_take_all(svc->pending), WSS_ERR_SHUTTING_DOWN);
}

static void on_timer(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct wss_timer *wt = container_of(t, struct wss_timer, t);

    wt->fn(wt->user);
}

struct wss_timer *wss_timer_new(struct wss_service *svc, wss_timer_cb fn, void *user)
{
    struct wss_timer *t = xcalloc(1, sizeof *t);

    t->svc = svc;
    t->fn = fn;
    t->user = user;
    return t;
}

void wss_timer_start(struct wss_timer *t, uint32_t delay_ms)
{
    if (!t->svc->timers)
        return; /* not running (a configuration check) or shutting down */
    timers_arm(t->svc->timers, &t->t, util_now_ms() + delay_ms, on_timer);
}

void wss_timer_stop(struct wss_timer *t)
{
    if (t->svc->timers)
        timers_disarm(t->svc->timers, &t->t);
}

void wss_timer_free(struct wss_timer *t)
{
    if (!t)
        return;
    wss_timer_stop(t);
    free(t);
}
