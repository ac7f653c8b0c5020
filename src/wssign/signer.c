/*
 * Per-connection protocol state of the agent and the signing decisions.
 * Owns the pending confirmations (each with a copy of its message); borrows
 * the key and the policy. Frames are decoded by wire.c and sent
 * through the transport's hook; no lws here.
 */
#include "signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>
#include <wssignd/service.h>

#include "confirm.h"
#include "crypto.h"
#include "log.h"
#include "util.h"
#include "wire.h"

/* Longest transcript: tag, host, '\n', nonce text. */
#define TRANSCRIPT_MAX (sizeof(WSS_INTRODUCTION_PREFIX) + CRYPTO_HOST_MAX + CRYPTO_NONCE_B64_BYTES)

enum signer_state {
    STATE_IDLE,             /* no connection */
    STATE_AWAIT_CHALLENGE,  /* connected, nothing received yet */
    STATE_AWAIT_INTRODUCED, /* introduction sent */
    STATE_READY,            /* introduced: sign requests may arrive */
};

/* Per request waiting for its --confirm command. */
struct pending {
    struct pending *next;
    char request_id[WIRE_REQUEST_ID_MAX + 1];
    int64_t expires_at; /* unix ms, from the request */
    uint8_t *msg;
    size_t len;
    char digest[2 * crypto_hash_sha256_BYTES + 1];
    struct confirm *confirm;
};

/* Per agent: the signer (its state resets with each connection). */
struct signer {
    struct signer_cfg cfg;
    struct signer_hooks hooks;
    void *user;
    enum signer_state state;
    char pub_b64[KEYFILE_PUB_B64_BYTES];
    struct pending *pending;
    size_t n_pending;
    /* The ids this connection's requests were answered under, oldest
     * overwritten first: a repeated id is refused, not signed again. */
    char answered[SIGNER_ANSWERED_MAX][WIRE_REQUEST_ID_MAX + 1];
    size_t n_answered; /* answers so far on this connection */
    /* Lines a server can repeat at will without any decision being made. */
    struct log_limit lim_duplicate, lim_cancel, lim_error;
};

struct signer *signer_new(const struct signer_cfg *cfg, const struct signer_hooks *hooks,
                          void *user)
{
    struct signer *s = xcalloc(1, sizeof *s);

    s->cfg = *cfg;
    s->hooks = *hooks;
    s->user = user;
    s->state = STATE_IDLE;
    keyfile_pub_b64(s->pub_b64, cfg->key);
    return s;
}

static void pending_free(struct pending *p)
{
    confirm_free(p->confirm);
    sodium_memzero(p->msg, p->len);
    free(p->msg);
    free(p);
}

/* Unlinks p from the list (p must be on it). */
static void pending_unlink(struct signer *s, struct pending *p)
{
    for (struct pending **pp = &s->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            s->n_pending--;
            return;
        }
    }
}

static void drop_all_pending(struct signer *s)
{
    while (s->pending) {
        struct pending *p = s->pending;

        pending_unlink(s, p);
        log_info("event=confirm_dropped request_id=%s pid=%d reason=disconnected", p->request_id,
                 confirm_pid(p->confirm));
        pending_free(p);
    }
}

void signer_free(struct signer *s)
{
    if (!s)
        return;
    drop_all_pending(s);
    free(s);
}

/* Request ids are per connection: the daemon sends a request again, with the
 * same id, on the connection that supersedes the one it was first sent to. */
static void forget_answered(struct signer *s)
{
    s->n_answered = 0;
}

void signer_on_open(struct signer *s)
{
    drop_all_pending(s);
    forget_answered(s);
    s->state = STATE_AWAIT_CHALLENGE;
}

void signer_on_close(struct signer *s)
{
    drop_all_pending(s);
    forget_answered(s);
    s->state = STATE_IDLE;
}

bool signer_busy(const struct signer *s)
{
    return s->pending != NULL;
}

static void digest_hex(char out[2 * crypto_hash_sha256_BYTES + 1], const uint8_t *msg, size_t len)
{
    uint8_t d[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(d, msg, len);
    util_hex(out, 2 * crypto_hash_sha256_BYTES + 1, d, sizeof d);
}

/*
 * One line per decision. The message itself never appears: only its length
 * and SHA-256, enough to match a decision with what a requester sent.
 *   decision=signed    the request was signed
 *   decision=refused   an automatic rule (policy.c) said no
 *   decision=rejected  the --confirm command declined, timed out or could not run
 */
static void log_decision(const char *decision, const char *reason, const char *request_id,
                         const char *digest, size_t len, int status)
{
    char extra[64] = "";

    if (status >= 0)
        snprintf(extra, sizeof extra, " confirm_status=%d", status);
    log_info("event=sign_decision decision=%s reason=%s request_id=%s bytes=%zu sha256=%s%s",
             decision, reason, request_id, len, digest, extra);
}

static bool was_answered(const struct signer *s, const char *request_id)
{
    size_t n = s->n_answered < SIGNER_ANSWERED_MAX ? s->n_answered : SIGNER_ANSWERED_MAX;

    for (size_t i = 0; i < n; i++)
        if (!strcmp(s->answered[i], request_id))
            return true;
    return false;
}

static void remember_answered(struct signer *s, const char *request_id)
{
    snprintf(s->answered[s->n_answered % SIGNER_ANSWERED_MAX], sizeof s->answered[0], "%s",
             request_id);
    s->n_answered++;
}

static void queue_reject(struct signer *s, const char *request_id, const char *reason)
{
    size_t len;
    char *buf = wire_encode_sign_reject(s->cfg.headroom, &len, request_id, reason);

    s->hooks.send(s->user, buf, len);
}

static void send_reject(struct signer *s, const char *request_id, const char *reason)
{
    remember_answered(s, request_id);
    queue_reject(s, request_id, reason);
}

static void send_signature(struct signer *s, const char *request_id, const uint8_t *msg, size_t len)
{
    uint8_t sig[crypto_sign_BYTES];
    size_t n;
    char *buf;

    crypto_sign_detached(sig, NULL, msg, len, s->cfg.key->sk);
    buf = wire_encode_sign_response(s->cfg.headroom, &n, request_id, msg, len, sig);
    remember_answered(s, request_id);
    s->hooks.send(s->user, buf, n);
}

/* True if a request that expires at expires_at (unix ms) has: the daemon has
 * given up on it, so a signature could only be of use to someone else. */
static bool has_expired(int64_t expires_at)
{
    return expires_at <= 0 || (uint64_t)expires_at <= util_unix_ms();
}

static int on_challenge(struct signer *s, const struct wire_msg *m, char *err, size_t errlen)
{
    uint8_t transcript[TRANSCRIPT_MAX], proof[crypto_sign_BYTES];
    size_t n, len;
    char *buf;

    if (s->state != STATE_AWAIT_CHALLENGE) {
        snprintf(err, errlen, "unexpected challenge");
        return WSS_ERR_PROTO;
    }
    /* The proof binds the key to this nonce and to the host this agent
     * dialled, so the daemon can tell it was made for this service. */
    n = crypto_proof_transcript(transcript, sizeof transcript, s->cfg.host, m->nonce_b64);
    if (n == 0) {
        snprintf(err, errlen, "cannot build the introduction transcript");
        return WSS_ERR_PROTO;
    }
    crypto_sign_detached(proof, NULL, transcript, n, s->cfg.key->sk);
    buf = wire_encode_introduction(s->cfg.headroom, &len, s->cfg.key->pk, s->cfg.host, proof);
    s->hooks.send(s->user, buf, len);
    s->state = STATE_AWAIT_INTRODUCED;
    log_debug("event=introduction_sent host=%s", s->cfg.host);
    return 0;
}

static int on_introduced(struct signer *s, const struct wire_msg *m, char *err, size_t errlen)
{
    if (s->state != STATE_AWAIT_INTRODUCED) {
        snprintf(err, errlen, "unexpected introduced frame");
        return WSS_ERR_PROTO;
    }
    if (sodium_memcmp(m->public_key, s->cfg.key->pk, sizeof m->public_key) != 0) {
        snprintf(err, errlen, "introduced frame names another public key");
        return WSS_ERR_PROTO;
    }
    s->state = STATE_READY;
    log_notice("event=introduced public_key=%s session_id=%s", s->pub_b64, m->session_id);
    if (s->hooks.introduced)
        s->hooks.introduced(s->user, m->session_id);
    return 0;
}

static struct pending *find_pending(struct signer *s, const char *request_id)
{
    for (struct pending *p = s->pending; p; p = p->next)
        if (!strcmp(p->request_id, request_id))
            return p;
    return NULL;
}

static void start_confirm(struct signer *s, const struct wire_msg *m, const char *digest)
{
    char err[256];
    struct pending *p;

    if (s->n_pending >= SIGNER_CONFIRM_MAX) {
        log_decision("refused", "busy", m->request_id, digest, m->message_len, -1);
        send_reject(s, m->request_id, "busy");
        return;
    }
    p = xcalloc(1, sizeof *p);
    snprintf(p->request_id, sizeof p->request_id, "%s", m->request_id);
    p->expires_at = m->expires_at;
    snprintf(p->digest, sizeof p->digest, "%s", digest);
    p->msg = xmemdup(m->message, m->message_len);
    p->len = m->message_len;
    p->confirm = confirm_start(s->cfg.confirm_cmd,
                               &(struct confirm_request){.msg = p->msg,
                                                         .len = p->len,
                                                         .request_id = p->request_id,
                                                         .public_key_b64 = s->pub_b64,
                                                         .label = m->label,
                                                         .requester = m->requester},
                               util_now_ms() + s->cfg.confirm_timeout_ms, err, sizeof err);
    if (!p->confirm) {
        char q[300];

        log_err("event=confirm_failed request_id=%s error=%s", p->request_id,
                log_quote(q, sizeof q, err));
        log_decision("rejected", "confirm_failed", p->request_id, digest, p->len, -1);
        send_reject(s, p->request_id, "confirm_failed");
        pending_free(p);
        return;
    }
    log_info("event=confirm_started request_id=%s pid=%d bytes=%zu sha256=%s", p->request_id,
             confirm_pid(p->confirm), p->len, digest);
    p->next = s->pending;
    s->pending = p;
    s->n_pending++;
}

static int on_sign_request(struct signer *s, const struct wire_msg *m, char *err, size_t errlen)
{
    char digest[2 * crypto_hash_sha256_BYTES + 1];
    const char *why;

    if (s->state != STATE_READY) {
        snprintf(err, errlen, "sign_request before the introduction completed");
        return WSS_ERR_PROTO;
    }
    digest_hex(digest, m->message, m->message_len);
    if (find_pending(s, m->request_id)) {
        /* Its confirmation is running and will answer it once. */
        log_limited(&s->lim_duplicate, WSS_LOG_WARN,
                    "event=duplicate_request request_id=%s pending=true", m->request_id);
        return 0;
    }
    /* The daemon never reuses an id on a connection: a repeated one is a
     * replay, answered but never signed again. */
    if (was_answered(s, m->request_id)) {
        log_decision("refused", "duplicate_request", m->request_id, digest, m->message_len, -1);
        /* Not remembered again: repeats of one id must not push others out. */
        queue_reject(s, m->request_id, "duplicate_request");
        return 0;
    }
    if (has_expired(m->expires_at)) {
        log_decision("refused", "expired", m->request_id, digest, m->message_len, -1);
        send_reject(s, m->request_id, "expired");
        return 0;
    }
    why = policy_check(s->cfg.policy, m->message, m->message_len);
    if (why) {
        log_decision("refused", why, m->request_id, digest, m->message_len, -1);
        send_reject(s, m->request_id, why);
        return 0;
    }
    if (s->cfg.confirm_cmd) {
        start_confirm(s, m, digest);
        return 0;
    }
    send_signature(s, m->request_id, m->message, m->message_len);
    log_decision("signed", "policy", m->request_id, digest, m->message_len, -1);
    return 0;
}

static void on_cancel(struct signer *s, const struct wire_msg *m)
{
    struct pending *p = find_pending(s, m->request_id);
    char q[300];

    log_quote(q, sizeof q, m->reason);
    if (!p) {
        /* Already answered (or never seen): nothing to stop. */
        log_limited(&s->lim_cancel, WSS_LOG_INFO,
                    "event=cancel request_id=%s reason=%s pending=false", m->request_id, q);
        return;
    }
    pending_unlink(s, p);
    log_info("event=cancel request_id=%s reason=%s pending=true pid=%d", m->request_id, q,
             confirm_pid(p->confirm));
    /* No answer is sent: the daemon has already settled the request. */
    pending_free(p);
}

int signer_on_frame(struct signer *s, const char *buf, size_t len, char *err, size_t errlen)
{
    struct wire_msg m;
    struct wire_error e;
    char q1[300], q2[300];
    int rc;

    if (wire_decode(WIRE_FROM_SERVER, buf, len, s->cfg.max_message, &m, &e) != 0) {
        snprintf(err, errlen, "%s", e.message);
        return WSS_ERR_PROTO;
    }
    switch (m.type) {
    case WIRE_CHALLENGE: rc = on_challenge(s, &m, err, errlen); break;
    case WIRE_INTRODUCED: rc = on_introduced(s, &m, err, errlen); break;
    case WIRE_SIGN_REQUEST: rc = on_sign_request(s, &m, err, errlen); break;
    case WIRE_CANCEL:
        on_cancel(s, &m);
        rc = 0;
        break;
    case WIRE_ERROR:
        /* Reported, not acted on: when the error is fatal the daemon closes
         * the connection and the reconnect logic takes over. */
        log_limited(&s->lim_error, WSS_LOG_WARN, "event=server_error code=%s message=%s%s%s",
                    log_quote(q1, sizeof q1, m.code), log_quote(q2, sizeof q2, m.text),
                    m.request_id[0] ? " request_id=" : "", m.request_id);
        rc = 0;
        break;
    default: rc = 0; break;
    }
    wire_msg_cleanup(&m);
    return rc;
}

void signer_tick(struct signer *s, uint64_t now_ms)
{
    struct pending *p = s->pending, *next;

    for (; p; p = next) {
        enum confirm_result r;
        int status = 0;

        next = p->next;
        r = confirm_poll(p->confirm, now_ms, &status);
        if (r == CONFIRM_RUNNING)
            continue;
        /* Unlink before answering, so a re-entrant close finds nothing stale. */
        pending_unlink(s, p);
        if (r == CONFIRM_APPROVED && has_expired(p->expires_at)) {
            /* Approved too late: the request expired while the command ran. */
            log_decision("rejected", "expired", p->request_id, p->digest, p->len, status);
            send_reject(s, p->request_id, "expired");
        } else if (r == CONFIRM_APPROVED) {
            send_signature(s, p->request_id, p->msg, p->len);
            log_decision("signed", "confirmed", p->request_id, p->digest, p->len, status);
        } else if (r == CONFIRM_TIMED_OUT) {
            log_decision("rejected", "confirm_timeout", p->request_id, p->digest, p->len, status);
            send_reject(s, p->request_id, "confirm_timeout");
        } else {
            log_decision("rejected", "declined", p->request_id, p->digest, p->len, status);
            send_reject(s, p->request_id, "declined");
        }
        pending_free(p);
    }
}

void signer_reject_pending(struct signer *s, const char *reason)
{
    while (s->pending) {
        struct pending *p = s->pending;

        pending_unlink(s, p);
        log_decision("rejected", reason, p->request_id, p->digest, p->len, -1);
        send_reject(s, p->request_id, reason);
        pending_free(p);
    }
}
