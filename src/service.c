/*
 * Sign requests from start to their one outcome: wss_send_to_sign(),
 * cancellation, expiry at the deadline, completion with the audit line, and
 * draining at shutdown. Requests live in the pending table; connections are
 * found through the registry by key on every use.
 */
#include "svc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "crypto.h"
#include "log.h"
#include "proto.h"
#include "util.h"

/* Per controller timer: an lws sul owned by the controller that made it. */
struct wss_timer {
    lws_sorted_usec_list_t sul; /* first: the sul callback gets its address */
    struct wss_service *svc;
    wss_timer_cb fn;
    void *user;
};

int service_init(struct wss_service *svc, const struct config *cfg)
{
    memset(svc, 0, sizeof *svc);
    svc->cfg = cfg;
    svc->registry = registry_new();
    svc->pending = pending_new();
    metrics_init(&svc->metrics);
    wheel_init(&svc->conn_timers, SERVICE_TICK_MS, util_now_ms());
    return 0;
}

void service_attach(struct wss_service *svc, struct lws_context *ctx)
{
    svc->ctx = ctx;
}

void service_cleanup(struct wss_service *svc)
{
    /* service_drain() has ended every request, so the expiry timer is idle. */
    pending_free(svc->pending);
    registry_free(svc->registry);
    svc->pending = NULL;
    svc->registry = NULL;
}

/* The live connection a request was sent to, if it is still the key's holder. */
static struct conn *request_conn(struct wss_service *svc, const struct pending_req *req)
{
    struct conn *c = registry_find(svc->registry, req->key, NULL);

    return c && c->id == req->conn_id ? c : NULL;
}

static void send_cancel(struct wss_service *svc, const struct pending_req *req, const char *reason)
{
    struct conn *c = request_conn(svc, req);
    size_t len;
    char *buf;

    if (!c)
        return;
    /* The signer may answer before it reads the cancel: one late answer is owed grace. */
    c->late_answers++;
    buf = proto_encode_cancel(LWS_PRE, &len, req->id, reason);
    conn_send_take(c, buf, len);
}

/*
 * Counts an outcome and writes its audit line: who asked whom for what (by
 * length and digest, never the bytes), and how it ended. id is "-" for a
 * request refused before it was queued.
 */
static void audit(struct wss_service *svc, const char *id, const uint8_t *key,
                  const uint8_t *message, size_t message_len, int status, uint64_t latency_ms,
                  const char *requester)
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    char fpr[UTIL_FPR_BYTES] = "-", dhex[2 * sizeof digest + 1] = "-", who[80];

    metrics_sign(&svc->metrics, status, latency_ms);
    if (!log_enabled(WSS_LOG_NOTICE))
        return;
    if (key)
        util_key_fpr(fpr, key);
    if (message) {
        crypto_hash_sha256(digest, message, message_len);
        util_hex(dhex, sizeof dhex, digest, sizeof digest);
    }
    log_notice("event=sign_outcome request_id=%s key=%s outcome=%s msg_len=%zu msg_sha256=%s "
               "latency_ms=%llu requester=%s",
               id, fpr, wss_err_code(status), message ? message_len : 0, dhex,
               (unsigned long long)latency_ms,
               log_quote(who, sizeof who, requester && requester[0] ? requester : "unknown"));
}

void service_complete(struct wss_service *svc, struct pending_req *req, int status,
                      const uint8_t *signature, const char *detail)
{
    struct wss_sign_result res;
    uint64_t latency = util_now_ms() - req->created_ms;

    switch (status) {
    case WSS_ERR_TIMEOUT:
        send_cancel(svc, req, "timeout");
        break;
    case WSS_ERR_CANCELLED:
        send_cancel(svc, req, "requester_cancelled");
        break;
    case WSS_ERR_SHUTTING_DOWN:
        send_cancel(svc, req, "shutting_down");
        break;
    default:
        break;
    }

    audit(svc, req->id, req->key, req->message, req->message_len, status, latency, req->requester);
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

static void on_expiry(lws_sorted_usec_list_t *sul)
{
    struct wss_service *svc = lws_container_of(sul, struct wss_service, expiry);
    struct pending_req *req, *next;

    svc->expiry_at_ms = 0;
    for (req = pending_expire(svc->pending, util_now_ms()); req; req = next) {
        next = req->next;
        service_complete(svc, req, WSS_ERR_TIMEOUT, NULL, NULL);
    }
    service_schedule(svc);
}

void service_schedule(struct wss_service *svc)
{
    uint64_t next = pending_next_deadline(svc->pending), now;

    if (!svc->ctx)
        return;
    if (!next) {
        if (svc->expiry_at_ms)
            lws_sul_cancel(&svc->expiry);
        svc->expiry_at_ms = 0;
        return;
    }
    /* Re-arming is only needed when the earliest deadline moved. */
    if (svc->expiry_at_ms == next)
        return;
    now = util_now_ms();
    svc->expiry_at_ms = next;
    lws_sul_schedule(svc->ctx, 0, &svc->expiry, on_expiry,
                     next > now ? (lws_usec_t)(next - now) * LWS_US_PER_MS : 1);
}

void service_send_request(struct wss_service *svc, struct conn *conn, struct pending_req *req)
{
    size_t len;
    char *buf = proto_encode_sign_request(LWS_PRE, &len, req->id, req->message, req->message_len,
                                          req->expires_at_unix_ms);

    req->conn_id = conn->id;
    conn_send_take(conn, buf, len);
}

/* Decides whether a request can be queued: 0, or the outcome it is refused with. */
static int admit(struct wss_service *svc, const uint8_t *public_key, const uint8_t *message,
                 size_t message_len, uint32_t timeout, wss_sign_cb cb, struct conn **out)
{
    const struct config *cfg = svc->cfg;
    struct conn *c;

    if (svc->draining)
        return WSS_ERR_SHUTTING_DOWN;
    if (!cb || !public_key || !message || !message_len || message_len > cfg->max_message_bytes ||
        timeout > WSS_TIMEOUT_MAX_MS)
        return WSS_ERR_INVAL;
    /* Domain separation: the signing oracle never produces introduction proofs. */
    if (crypto_has_reserved_prefix(message, message_len))
        return WSS_ERR_INVAL;
    c = registry_find(svc->registry, public_key, NULL);
    if (!c || c->state != CONN_INTRODUCED)
        return WSS_ERR_NOT_CONNECTED;
    if (pending_count(svc->pending) >= cfg->max_pending ||
        pending_count_key(svc->pending, public_key) >= cfg->max_pending_per_key)
        return WSS_ERR_OVERLOADED;
    *out = c;
    return 0;
}

int wss_send_to_sign(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                     const uint8_t *message, size_t message_len, const struct wss_sign_opts *opts,
                     wss_sign_cb cb, void *user, char request_id[WSS_REQUEST_ID_BYTES])
{
    uint32_t timeout = opts && opts->timeout_ms ? opts->timeout_ms : svc->cfg->default_timeout_ms;
    struct pending_req *req;
    struct conn *c = NULL;
    char id[WSS_REQUEST_ID_BYTES];
    uint64_t now;
    int rc = admit(svc, public_key, message, message_len, timeout, cb, &c);

    if (rc != 0) {
        audit(svc, "-", public_key, message, message_len, rc, 0, opts ? opts->requester : NULL);
        return rc;
    }

    util_uuid(id);
    now = util_now_ms();
    req = pending_req_new(id, public_key, message, message_len, now, now + timeout);
    req->expires_at_unix_ms = util_unix_ms() + timeout;
    req->cb = cb;
    req->user = user;
    if (opts && opts->requester)
        snprintf(req->requester, sizeof req->requester, "%s", opts->requester);
    /* A collision of 122 random bits is not expected; refuse rather than overwrite. */
    if (pending_insert_take(svc->pending, req) != 0)
        return WSS_ERR_INVAL;
    service_send_request(svc, c, req);
    service_schedule(svc);
    if (request_id)
        memcpy(request_id, id, WSS_REQUEST_ID_BYTES);
    return 0;
}

void wss_audit_refused(struct wss_service *svc, const uint8_t *public_key, const uint8_t *message,
                       size_t len, int status, const char *requester)
{
    audit(svc, "-", public_key, message, len, status, 0, requester);
}

int wss_cancel(struct wss_service *svc, const char *request_id)
{
    struct pending_req *req = pending_take(svc->pending, request_id);

    if (!req)
        return WSS_ERR_NOT_FOUND;
    service_complete(svc, req, WSS_ERR_CANCELLED, NULL, NULL);
    service_schedule(svc);
    return 0;
}

bool wss_lookup_key(struct wss_service *svc, const uint8_t public_key[WSS_PUBLIC_KEY_BYTES],
                    struct wss_presence *out)
{
    uint64_t at = 0;
    struct conn *c = registry_find(svc->registry, public_key, &at);

    if (!c || c->state != CONN_INTRODUCED)
        return false;
    if (out) {
        out->connected = true;
        out->connected_at_ms = at;
        memcpy(out->session_id, c->session_id, sizeof out->session_id);
        out->pending = (unsigned)pending_count_key(svc->pending, public_key);
    }
    return true;
}

size_t wss_max_message_bytes(struct wss_service *svc)
{
    return svc->cfg->max_message_bytes;
}

char *wss_metrics_render(struct wss_service *svc, size_t headroom, size_t *len)
{
    struct metrics_gauges g = {
        .sockets = svc->sockets,
        .connections = svc->signers,
        .introduced_keys = registry_count(svc->registry),
        .pending = pending_count(svc->pending),
    };

    return metrics_render(&svc->metrics, &g, headroom, len);
}

bool wss_control_is_local(struct wss_service *svc)
{
    return svc->control_local;
}

void service_drain(struct wss_service *svc)
{
    struct pending_req *req, *next;

    svc->draining = true;
    for (req = pending_take_all(svc->pending); req; req = next) {
        next = req->next;
        service_complete(svc, req, WSS_ERR_SHUTTING_DOWN, NULL, NULL);
    }
    service_schedule(svc);
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    struct wss_timer *t = lws_container_of(sul, struct wss_timer, sul);

    t->fn(t->user);
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
    if (!t->svc->ctx)
        return; /* shutting down: the loop no longer runs timers */
    lws_sul_schedule(t->svc->ctx, 0, &t->sul, on_timer, (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

void wss_timer_free(struct wss_timer *t)
{
    if (!t)
        return;
    if (t->svc->ctx)
        lws_sul_cancel(&t->sul);
    free(t);
}
