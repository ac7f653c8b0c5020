/*
 * The signer side of wssign.v1: challenge, proof-of-possession introduction,
 * superseding, keep-alive, refused frames, and the dispatch of sign_response
 * / sign_reject to the signing service. Decoding is wire.c's, verification
 * crypto.c's; requests and the registry are service.c's.
 */
#include "session.h"

#include <string.h>

#include "log.h"
#include "peers.h"
#include "service.h"
#include "service_keys.h"
#include "util.h"
#include "wire.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void on_timer(struct timers *ts, struct timer *t, uint64_t now_ms);

/* Arms the session's one timer, when the service runs on a loop. */
static void arm(struct session *s, uint64_t due_ms)
{
    if (s->svc->timers)
        timers_arm(s->svc->timers, &s->timer, due_ms, on_timer);
}

/* Closes the link: nothing more is accepted from it. */
static void close_link(struct session *s, int code, const char *reason)
{
    s->state = SESSION_CLOSING;
    s->ops->close(s, code, reason);
}

/*
 * Refuses one frame: the peer is told why and the link stays open, until it
 * has sent more than limits.max_protocol_errors refused frames.
 */
static void refuse_frame(struct session *s, const char *code, const char *message,
                         const char *request_id)
{
    struct wss_service *svc = s->svc;

    link_send_error(s, &svc->metrics, code, message, request_id);
    if (++s->errors > svc->cfg->max_protocol_errors) {
        log_info("event=protocol_errors conn=%llu remote=%s errors=%u", (unsigned long long)s->id,
                 s->remote, s->errors);
        close_link(s, LINK_CLOSE_POLICY, "too many protocol errors");
    }
}

/* Refuses an introduction: tell the peer why, count and log it (once, with detail
 * when there is one: "host=..."), and close with 1008. */
static void refuse_detail(struct session *s, enum metrics_intro outcome, const char *code,
                          const char *message, const char *detail)
{
    s->svc->metrics.intro[outcome]++;
    log_info("event=introduction_refused reason=%s%s%s conn=%llu remote=%s", code,
             detail ? " " : "", detail ? detail : "", (unsigned long long)s->id, s->remote);
    link_send_error(s, &s->svc->metrics, code, message, NULL);
    close_link(s, LINK_CLOSE_POLICY, code);
}

static void refuse(struct session *s, enum metrics_intro outcome, const char *code,
                   const char *message)
{
    refuse_detail(s, outcome, code, message, NULL);
}

/* The key lists (keys.allow_file, keys.deny_file) refuse the key: "denied", close 4003. */
static void refuse_denied(struct session *s)
{
    s->svc->metrics.intro[METRICS_INTRO_DENIED]++;
    log_info("event=introduction_refused reason=denied conn=%llu remote=%s",
             (unsigned long long)s->id, s->remote);
    link_send_error(s, &s->svc->metrics, "denied", "this key may not connect here", NULL);
    close_link(s, LINK_CLOSE_DENIED, "denied");
}

void session_init(struct session *s, struct wss_service *svc, const struct link_ops *ops,
                  const char *remote, struct peer *admission)
{
    memset(s, 0, sizeof *s);
    s->ops = ops;
    s->svc = svc;
    s->id = ++svc->next_session_id;
    s->admission = admission;
    s->last_rx_ms = util_now_ms();
    snprintf(s->remote, sizeof s->remote, "%s", remote && *remote ? remote : "unknown");
}

void session_on_open(struct session *s)
{
    s->svc->signers++;
    /* The plan's minimal clients know no challenge: none is sent, and none can be proved. */
    s->minimal = s->svc->cfg->proof_none;
    crypto_new_nonce(s->nonce, s->nonce_b64);
    if (!s->minimal)
        link_send_challenge(s);
    arm(s, util_now_ms() + s->svc->cfg->intro_timeout_ms);
    log_debug("event=connected conn=%llu remote=%s", (unsigned long long)s->id, s->remote);
}

void session_on_activity(struct session *s)
{
    s->last_rx_ms = util_now_ms();
    s->ping_sent = false;
}

static void intro_timeout(struct session *s)
{
    s->svc->metrics.intro[METRICS_INTRO_TIMEOUT]++;
    log_info("event=introduction_timeout conn=%llu remote=%s", (unsigned long long)s->id,
             s->remote);
    link_send_error(s, &s->svc->metrics, "introduction_timeout",
                    "no introduction before the deadline", NULL);
    close_link(s, LINK_CLOSE_INTRO_TIMEOUT, "introduction timeout");
}

/*
 * An introduced link's timer: ping it once it has been quiet for
 * ping_interval_ms, hang up once it has sent nothing for idle_timeout_ms.
 * Traffic only moves last_rx_ms; the timer is re-armed here.
 */
static void keepalive(struct session *s, uint64_t now)
{
    const struct config *cfg = s->svc->cfg;
    uint64_t quiet = now - s->last_rx_ms;

    if (quiet >= cfg->idle_timeout_ms) {
        log_info("event=idle_hangup conn=%llu remote=%s quiet_ms=%llu", (unsigned long long)s->id,
                 s->remote, (unsigned long long)quiet);
        s->state = SESSION_CLOSING;
        s->ops->drop(s);
        return;
    }
    if (quiet >= cfg->ping_interval_ms) {
        if (!s->ping_sent) {
            s->ping_sent = true;
            s->ops->ping(s);
        }
        arm(s, s->last_rx_ms + cfg->idle_timeout_ms);
        return;
    }
    arm(s, s->last_rx_ms + cfg->ping_interval_ms);
}

static void on_timer(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct session *s = container_of(t, struct session, timer);

    if (s->state == SESSION_CHALLENGED)
        intro_timeout(s);
    else if (s->state == SESSION_INTRODUCED && s->ops->ping)
        keepalive(s, now_ms);
}

static bool host_allowed(const struct config *cfg, const char *host)
{
    for (size_t i = 0; i < cfg->n_server_names; i++)
        if (!strcmp(cfg->server_names[i], host))
            return true;
    return false;
}

void session_supersede(struct session *old, struct session *s)
{
    char fpr[UTIL_FPR_BYTES];

    log_info("event=superseded key=%s old_conn=%llu conn=%llu", util_key_fpr(fpr, s->key),
             (unsigned long long)old->id, (unsigned long long)s->id);
    old->superseded = true;
    link_send_error(old, &s->svc->metrics, "superseded", "a newer connection proved the same key",
                    NULL);
    close_link(old, LINK_CLOSE_SUPERSEDED, "superseded");
}

static void introduce(struct session *s, const struct wire_msg *m)
{
    struct wss_service *svc = s->svc;
    const struct config *cfg = svc->cfg;
    struct session *old;
    char fpr[UTIL_FPR_BYTES], host[80];

    if (s->state == SESSION_INTRODUCED) {
        refuse_frame(s, "already_introduced", "this connection has already introduced a key", NULL);
        return;
    }
    /* A minimal introduction names no host: there is no proof for it to bind. */
    if (!s->minimal && !host_allowed(cfg, m->host)) {
        char detail[sizeof host + 8];

        snprintf(detail, sizeof detail, "host=%s", log_quote(host, sizeof host, m->host));
        refuse_detail(s, METRICS_INTRO_BAD_HOST, "bad_host",
                      "host is not one of this server's names", detail);
        return;
    }
    /* Only keys of prime order are registered (mixed-order keys pass plain verify). */
    if (!crypto_key_is_valid(m->public_key)) {
        refuse(s, METRICS_INTRO_BAD_KEY, "bad_key", "public_key is not a valid Ed25519 key");
        return;
    }
    if (!m->has_proof) {
        if (cfg->proof_required && !s->minimal) {
            refuse(s, METRICS_INTRO_MISSING_PROOF, "missing_proof",
                   "introduction must carry a proof");
            return;
        }
    } else if (crypto_verify_proof(m->public_key, m->host, s->nonce_b64, m->proof,
                                   sizeof m->proof) != 0) {
        refuse(s, METRICS_INTRO_BAD_PROOF, "bad_proof",
               "proof does not verify for this key, host and challenge");
        return;
    }
    /* After the proof: only the key's holder learns that the key lists refuse it. */
    if (!service_key_admitted(svc, m->public_key)) {
        refuse_denied(s);
        return;
    }
    /* Sockets that have not proved a key are capped per address at accept; proven
     * ones have their own cap (off by default: a balancer gives them one address). */
    if (!s->proven && !peers_prove(svc->peers, s->admission, cfg->max_introduced_per_ip)) {
        refuse(s, METRICS_INTRO_ADDRESS_LIMIT, "too_many_connections",
               "this address holds limits.max_introduced_per_ip introduced connections");
        return;
    }
    s->proven = true;
    svc->metrics.intro[METRICS_INTRO_OK]++;
    memcpy(s->key, m->public_key, sizeof s->key);
    util_uuid(s->session_id);
    s->state = SESSION_INTRODUCED;
    s->last_rx_ms = util_now_ms();
    arm(s, s->last_rx_ms + cfg->ping_interval_ms);

    if (!s->minimal)
        link_send_introduced(s);
    log_info("event=introduced key=%s conn=%llu session=%s remote=%s proof=%s",
             util_key_fpr(fpr, s->key), (unsigned long long)s->id, s->session_id, s->remote,
             s->minimal     ? "none"
             : m->has_proof ? "yes"
                            : "legacy");
    old = service_register(svc, s);
    if (old)
        session_supersede(old, s);
}

/*
 * An answer to a request that is not pending here: late, repeated, misrouted
 * or made up. It changes nothing; it is refused and logged (rate-limited: a
 * peer can send any number). An honest signer answers late only requests
 * that were sent to it and ended (timeout, cancel) before its answer came:
 * that many answers are forgiven; any other counts toward
 * limits.max_protocol_errors, as every refused frame does.
 */
static void unknown_answer(struct session *s, const char *request_id)
{
    bool late = s->late_answers > 0;

    log_limited(&s->svc->unknown_answer_log, WSS_LOG_INFO,
                "event=unknown_answer request_id=%s conn=%llu remote=%s late=%s", request_id,
                (unsigned long long)s->id, s->remote, late ? "yes" : "no");
    if (late) {
        s->late_answers--;
        /* A minimal client was sent no cancel, so its late answer is expected: no error. */
        if (!s->minimal)
            link_send_error(s, &s->svc->metrics, "unknown_request",
                            "no such request pending on this connection", request_id);
        return;
    }
    refuse_frame(s, "unknown_request", "no such request pending on this connection", request_id);
}

int session_on_message(struct session *s, const char *buf, size_t len)
{
    struct wire_msg m;
    struct wire_error e;
    int rc = 0;

    if (s->state == SESSION_CLOSING)
        return 0;
    if (wire_decode(s->minimal ? WIRE_FROM_MINIMAL_CLIENT : WIRE_FROM_CLIENT, buf, len,
                    s->svc->cfg->max_message_bytes, &m, &e) != 0) {
        log_debug("event=bad_frame code=%s conn=%llu", e.code, (unsigned long long)s->id);
        refuse_frame(s, e.code, e.message, e.request_id);
        return 0;
    }
    if (m.type != WIRE_INTRODUCTION && s->state != SESSION_INTRODUCED) {
        refuse_frame(s, "not_introduced", "introduce a key first", m.request_id);
        wire_msg_cleanup(&m);
        return 0;
    }
    switch (m.type) {
    case WIRE_INTRODUCTION: introduce(s, &m); break;
    case WIRE_SIGN_RESPONSE:
        rc = service_on_answer(s->svc, s, m.request_id, m.message, m.message_len, m.signature);
        break;
    case WIRE_SIGN_REJECT: rc = service_on_reject(s->svc, s, m.request_id, m.reason); break;
    default: /* wire_decode gives only the frames a client sends */ break;
    }
    /* Not ours: a request of another node of the cluster, or unknown. */
    if (rc == WSS_ERR_NOT_FOUND && !service_relay(s->svc, s, m.request_id, buf, len))
        unknown_answer(s, m.request_id);
    wire_msg_cleanup(&m);
    return 0;
}

void session_on_close(struct session *s)
{
    s->svc->signers--;
    if (s->svc->timers)
        timers_disarm(s->svc->timers, &s->timer);
    if (s->proven)
        peers_unprove(s->svc->peers, s->admission);
    s->proven = false;
    /* Only the key's current holder unregisters; its requests fail now, not at the deadline. */
    service_unregister(s->svc, s);
    s->state = SESSION_CLOSING;
}
