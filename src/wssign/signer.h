/*
 * The signer's side of wssign.v1 for one connection at a time: answers the
 * challenge with the host-bound proof, then decides each sign_request (expiry,
 * repeated ids, policy, optional --confirm command) and answers it. Logs every
 * decision. Knows nothing of lws: frames come in as text and go out through a
 * hook.
 */
#ifndef WSSIGN_SIGNER_H
#define WSSIGN_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keyfile.h"
#include "policy.h"

/* Confirmations allowed to run at once; more requests are refused as "busy". */
#define SIGNER_CONFIRM_MAX 32
/* Answered request ids remembered per connection (the most recent ones): a
 * sign_request with one of them is refused as "duplicate_request". */
#define SIGNER_ANSWERED_MAX 1024

/* Per agent: fixed settings. Pointers are borrowed and must outlive the signer. */
struct signer_cfg {
    const struct keypair *key;
    const struct policy *policy;
    const char *confirm_cmd;     /* NULL: sign whatever the policy allows */
    uint32_t confirm_timeout_ms; /* a confirmation running longer is killed and declined */
    const char *host;            /* the URL host, signed into the introduction proof */
    size_t headroom;             /* bytes to leave free before each outgoing frame */
    size_t max_message;          /* largest sign_request message decoded */
};

/* Per agent: how the signer talks back to its transport. */
struct signer_hooks {
    /* Queues one text frame. Takes buf (free()): headroom bytes, then len bytes of JSON. */
    void (*send)(void *user, char *buf, size_t len);
    /* The daemon accepted the introduction. */
    void (*introduced)(void *user, const char *session_id);
};

struct signer;

/* Returns a new signer (free with signer_free). Never NULL. */
struct signer *signer_new(const struct signer_cfg *cfg, const struct signer_hooks *hooks,
                          void *user);

/* Drops every pending confirmation (killing its command) and frees s. NULL is a no-op. */
void signer_free(struct signer *s);

/* A new connection is open: expect a challenge. */
void signer_on_open(struct signer *s);

/* The connection is gone: kill and forget pending confirmations (their
 * requests died with the connection) and wait for the next open. */
void signer_on_close(struct signer *s);

/*
 * Handles one complete text frame of len bytes. Returns 0, or WSS_ERR_PROTO
 * with a reason in err when the frame is malformed or out of order; the
 * caller then closes the connection.
 */
int signer_on_frame(struct signer *s, const char *buf, size_t len, char *err, size_t errlen);

/* True while confirmations are running (the caller should call signer_tick soon). */
bool signer_busy(const struct signer *s);

/* Advances running confirmations; answers the requests whose outcome is known. */
void signer_tick(struct signer *s, uint64_t now_ms);

/* Answers every pending confirmation with sign_reject (reason) and kills the
 * commands, for an orderly shutdown while still connected. */
void signer_reject_pending(struct signer *s, const char *reason);

#endif
