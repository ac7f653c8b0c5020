/*
 * The signer side of wssign.v1: challenge, proof-of-possession introduction,
 * superseding, and the handling of sign_response / sign_reject. Decoding is
 * proto.c's, verification crypto.c's; requests end through service.c.
 */
#include <string.h>

#include "conn.h"
#include "crypto.h"
#include "log.h"
#include "proto.h"
#include "svc.h"
#include "util.h"
#include "verifier.h"

/* Close codes of the protocol (RFC 6455 1000-1015, application 4000-4999). */
#define CLOSE_POLICY 1008
#define CLOSE_SUPERSEDED 4001
#define CLOSE_INTRO_TIMEOUT 4002

static void send_error(struct wss_service *svc, struct conn *c, const char *code,
                       const char *message, const char *request_id)
{
    size_t len;
    char *buf = proto_encode_error(LWS_PRE, &len, code, message, request_id);

    metrics_proto_error(&svc->metrics, code);
    conn_send_take(c, buf, len);
}

/*
 * Refuses one frame: the peer is told why and the connection stays open,
 * until it has sent more than limits.max_protocol_errors refused frames.
 */
static void refuse_frame(struct wss_service *svc, struct conn *c, const char *code,
                         const char *message, const char *request_id)
{
    send_error(svc, c, code, message, request_id);
    if (++c->errors > svc->cfg->max_protocol_errors) {
        log_info("event=protocol_errors conn=%llu remote=%s errors=%u", (unsigned long long)c->id,
                 c->peer, c->errors);
        conn_close(c, CLOSE_POLICY, "too many protocol errors");
    }
}

/* Refuses an introduction: tell the peer why, count and log it, and close with 1008. */
static void refuse(struct wss_service *svc, struct conn *c, enum metrics_intro outcome,
                   const char *code, const char *message)
{
    svc->metrics.intro[outcome]++;
    log_info("event=introduction_refused reason=%s conn=%llu remote=%s", code,
             (unsigned long long)c->id, c->peer);
    send_error(svc, c, code, message, NULL);
    conn_close(c, CLOSE_POLICY, code);
}

void session_on_open(struct wss_service *svc, struct conn *c)
{
    size_t len;
    char *buf;

    svc->signers++;
    crypto_new_nonce(c->nonce, c->nonce_b64);
    buf = proto_encode_challenge(LWS_PRE, &len, c->nonce_b64);
    conn_send_take(c, buf, len);
    c->intro_deadline_ms = util_now_ms() + svc->cfg->intro_timeout_ms;
    wheel_arm(&svc->conn_timers, &c->timer, c->intro_deadline_ms);
    log_debug("event=connected conn=%llu remote=%s", (unsigned long long)c->id, c->peer);
}

static void intro_timeout(struct wss_service *svc, struct conn *c)
{
    svc->metrics.intro[METRICS_INTRO_TIMEOUT]++;
    log_info("event=introduction_timeout conn=%llu remote=%s", (unsigned long long)c->id, c->peer);
    send_error(svc, c, "introduction_timeout", "no introduction before the deadline", NULL);
    conn_close(c, CLOSE_INTRO_TIMEOUT, "introduction timeout");
}

/*
 * An introduced connection's timer: ping it once it has been quiet for
 * ping_interval_ms, hang up once it has sent nothing valid for
 * idle_timeout_ms. Traffic only moves last_rx_ms; the timer is re-armed here.
 */
static void keepalive(struct wss_service *svc, struct conn *c, uint64_t now)
{
    const struct config *cfg = svc->cfg;
    uint64_t quiet = now - c->last_rx_ms;

    if (quiet >= cfg->idle_timeout_ms) {
        log_info("event=idle_hangup conn=%llu remote=%s quiet_ms=%llu", (unsigned long long)c->id,
                 c->peer, (unsigned long long)quiet);
        conn_kill(c);
        return;
    }
    if (quiet >= cfg->ping_interval_ms) {
        if (!c->ping_sent)
            conn_ping(c);
        wheel_arm(&svc->conn_timers, &c->timer, c->last_rx_ms + cfg->idle_timeout_ms);
        return;
    }
    wheel_arm(&svc->conn_timers, &c->timer, c->last_rx_ms + cfg->ping_interval_ms);
}

void session_on_tick(struct wss_service *svc, uint64_t now_ms)
{
    struct wheel_entry *e, *next;

    for (e = wheel_advance(&svc->conn_timers, now_ms); e; e = next) {
        struct conn *c = lws_container_of(e, struct conn, timer);

        next = e->next;
        if (c->state == CONN_CHALLENGED)
            intro_timeout(svc, c);
        else if (c->state == CONN_INTRODUCED)
            keepalive(svc, c, now_ms);
    }
}

static bool host_allowed(const struct config *cfg, const char *host)
{
    for (size_t i = 0; i < cfg->n_server_names; i++)
        if (!strcmp(cfg->server_names[i], host))
            return true;
    return false;
}

/* Hands the older connection's place to c: it is told, closed, and its requests move. */
static void supersede(struct wss_service *svc, struct conn *old, struct conn *c)
{
    struct pending_req *req;

    old->superseded = true;
    send_error(svc, old, "superseded", "a newer connection proved the same key", NULL);
    conn_close(old, CLOSE_SUPERSEDED, "superseded");
    for (req = pending_first_for_key(svc->pending, c->key); req; req = req->key_next)
        if (!req->verifying) /* already answered: its verdict is on the way */
            service_send_request(svc, c, req);
}

static void introduce(struct wss_service *svc, struct conn *c, const struct proto_msg *m)
{
    const struct config *cfg = svc->cfg;
    struct conn *old = NULL;
    char fpr[UTIL_FPR_BYTES], host[80];
    size_t len;
    char *buf;

    if (c->state == CONN_INTRODUCED) {
        refuse_frame(svc, c, "already_introduced", "this connection has already introduced a key",
                     NULL);
        return;
    }
    if (!host_allowed(cfg, m->host)) {
        log_info("event=bad_host host=%s conn=%llu", log_quote(host, sizeof host, m->host),
                 (unsigned long long)c->id);
        refuse(svc, c, METRICS_INTRO_BAD_HOST, "bad_host", "host is not one of this server's names");
        return;
    }
    /* Only keys of prime order are registered (mixed-order keys pass plain verify). */
    if (!crypto_key_is_valid(m->public_key)) {
        refuse(svc, c, METRICS_INTRO_BAD_KEY, "bad_key", "public_key is not a valid Ed25519 key");
        return;
    }
    if (!m->has_proof) {
        if (cfg->proof_required) {
            refuse(svc, c, METRICS_INTRO_MISSING_PROOF, "missing_proof", "introduction must carry a proof");
            return;
        }
    } else if (crypto_verify_proof(m->public_key, m->host, c->nonce_b64, m->proof,
                                   sizeof m->proof) != 0) {
        refuse(svc, c, METRICS_INTRO_BAD_PROOF, "bad_proof", "proof does not verify for this key, host and challenge");
        return;
    }

    /* Sockets that have not proved a key are capped per address at accept; proven
     * ones have their own cap (off by default: a balancer gives them one address). */
    if (!c->proven && !peers_prove(svc->peers, c->admission, cfg->max_introduced_per_ip)) {
        refuse(svc, c, METRICS_INTRO_ADDRESS_LIMIT, "too_many_connections",
               "this address holds limits.max_introduced_per_ip introduced connections");
        return;
    }
    c->proven = true;
    svc->metrics.intro[METRICS_INTRO_OK]++;
    memcpy(c->key, m->public_key, sizeof c->key);
    util_uuid(c->session_id);
    c->state = CONN_INTRODUCED;
    c->last_rx_ms = util_now_ms();
    wheel_arm(&svc->conn_timers, &c->timer, c->last_rx_ms + cfg->ping_interval_ms);
    registry_add(svc->registry, c->key, c, util_unix_ms(), &old);

    buf = proto_encode_introduced(LWS_PRE, &len, c->key, c->session_id);
    conn_send_take(c, buf, len);
    log_info("event=introduced key=%s conn=%llu session=%s remote=%s proof=%s",
             util_key_fpr(fpr, c->key), (unsigned long long)c->id, c->session_id, c->peer,
             m->has_proof ? "yes" : "legacy");
    if (old && old != c) {
        log_info("event=superseded key=%s old_conn=%llu conn=%llu", fpr,
                 (unsigned long long)old->id, (unsigned long long)c->id);
        supersede(svc, old, c);
    }
}

/* The request this connection may answer, or NULL (unknown, ended, or sent elsewhere). */
static struct pending_req *own_request(struct wss_service *svc, struct conn *c, const char *id)
{
    struct pending_req *req = pending_find(svc->pending, id);

    return req && req->conn_id == c->id ? req : NULL;
}

/*
 * An answer to a request that is not pending here: late, repeated, misrouted
 * or made up. It changes nothing; it is refused and logged (rate-limited: a
 * peer can send any number). An honest signer answers late only requests
 * that were sent to it and ended (timeout, cancel) before its answer came:
 * that many answers are forgiven; any other counts toward
 * limits.max_protocol_errors, as every refused frame does.
 */
static void unknown_answer(struct wss_service *svc, struct conn *c, const char *request_id)
{
    bool late = c->late_answers > 0;

    log_limited(&svc->unknown_answer_log, WSS_LOG_INFO,
                "event=unknown_answer request_id=%s conn=%llu remote=%s late=%s", request_id,
                (unsigned long long)c->id, c->peer, late ? "yes" : "no");
    if (late) {
        c->late_answers--;
        send_error(svc, c, "unknown_request", "no such request pending on this connection",
                   request_id);
        return;
    }
    refuse_frame(svc, c, "unknown_request", "no such request pending on this connection",
                 request_id);
}

/* Ends an answered request (already taken out of the table) with its verdict. */
static void finish_answer(struct wss_service *svc, struct conn *c, struct pending_req *req,
                          int verdict, const uint8_t *signature, const char *why)
{
    if (verdict != 0) {
        if (c)
            send_error(svc, c, "invalid_signature", why, req->id);
        service_complete(svc, req, WSS_ERR_BAD_SIG, NULL, NULL);
    } else {
        service_complete(svc, req, WSS_OK, signature, NULL);
    }
    service_schedule(svc);
}

static void on_response(struct wss_service *svc, struct conn *c, const struct proto_msg *m)
{
    struct pending_req *req = own_request(svc, c, m->request_id);
    int verdict;

    /* One answer per request: a second one while the first is verified is refused too. */
    if (!req || req->verifying) {
        unknown_answer(svc, c, m->request_id);
        return;
    }
    /* Verify against the bytes the daemon sent, never against the echo. */
    if (m->message_len != req->message_len || memcmp(m->message, req->message, req->message_len)) {
        finish_answer(svc, c, pending_take(svc->pending, m->request_id), WSS_ERR_BAD_SIG, NULL,
                      "message differs from the one requested");
        return;
    }
    if (svc->verifier) {
        req->verifying = true;
        memcpy(req->signature, m->signature, sizeof req->signature);
        verifier_submit(svc->verifier, req->id, req->key, req->message, req->message_len,
                        req->signature);
        return;
    }
    verdict = crypto_verify_sig(req->key, req->message, req->message_len, m->signature,
                                sizeof m->signature) == 0 ? 0 : WSS_ERR_BAD_SIG;
    finish_answer(svc, c, pending_take(svc->pending, m->request_id), verdict, m->signature,
                  "signature does not verify");
}

void session_on_verdict(const char *request_id, int verdict, void *arg)
{
    struct wss_service *svc = arg;
    struct pending_req *req = pending_find(svc->pending, request_id);
    struct conn *c;

    /* The request may have ended meanwhile (deadline, disconnect, cancel): nothing to do. */
    if (!req || !req->verifying)
        return;
    c = registry_find(svc->registry, req->key, NULL);
    if (c && c->id != req->conn_id)
        c = NULL;
    req = pending_take(svc->pending, request_id);
    finish_answer(svc, c, req, verdict, req->signature, "signature does not verify");
}

static void on_reject(struct wss_service *svc, struct conn *c, const struct proto_msg *m)
{
    struct pending_req *req = own_request(svc, c, m->request_id);

    if (!req || req->verifying) {
        unknown_answer(svc, c, m->request_id);
        return;
    }
    req = pending_take(svc->pending, m->request_id);
    service_complete(svc, req, WSS_ERR_REJECTED, NULL, m->reason[0] ? m->reason : NULL);
    service_schedule(svc);
}

int session_on_message(struct wss_service *svc, struct conn *c, const char *buf, size_t len)
{
    struct proto_msg m;
    struct proto_error e;

    if (c->state == CONN_CLOSING)
        return 0;
    if (proto_decode(buf, len, svc->cfg->max_message_bytes, &m, &e) != 0) {
        log_debug("event=bad_frame code=%s conn=%llu", e.code, (unsigned long long)c->id);
        refuse_frame(svc, c, e.code, e.message, e.request_id);
        return 0;
    }
    if (m.type != PROTO_INTRODUCTION && c->state != CONN_INTRODUCED) {
        refuse_frame(svc, c, "not_introduced", "introduce a key first", m.request_id);
        proto_msg_cleanup(&m);
        return 0;
    }
    switch (m.type) {
    case PROTO_INTRODUCTION:
        introduce(svc, c, &m);
        break;
    case PROTO_SIGN_RESPONSE:
        on_response(svc, c, &m);
        break;
    case PROTO_SIGN_REJECT:
        on_reject(svc, c, &m);
        break;
    }
    proto_msg_cleanup(&m);
    return 0;
}

void session_on_close(struct wss_service *svc, struct conn *c)
{
    struct pending_req *req, *next;
    char fpr[UTIL_FPR_BYTES];

    svc->signers--;
    wheel_disarm(&svc->conn_timers, &c->timer);
    if (c->proven)
        peers_unprove(svc->peers, c->admission);
    c->proven = false;
    if (c->state == CONN_CHALLENGED || c->superseded)
        return;
    /* Only the key's current holder unregisters; its requests fail now, not at the deadline. */
    if (registry_remove(svc->registry, c->key, c) != 0)
        return;
    log_info("event=disconnected key=%s conn=%llu remote=%s", util_key_fpr(fpr, c->key),
             (unsigned long long)c->id, c->peer);
    for (req = pending_take_key(svc->pending, c->key); req; req = next) {
        next = req->next;
        service_complete(svc, req, WSS_ERR_CONN_CLOSED, NULL, NULL);
    }
    service_schedule(svc);
}
