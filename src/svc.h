/*
 * The signing service's internal interface, shared by service.c (sign
 * requests: send, complete, expire, cancel) and session.c (the signer side
 * of the wssign.v1 protocol). The daemon creates one per process.
 */
#ifndef WSSIGND_SVC_H
#define WSSIGND_SVC_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include <wssignd/service.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "peers.h"
#include "pending.h"
#include "registry.h"
#include "wheel.h"

struct conn;

/* Per daemon: the state every sign request and signer session works on. */
struct wss_service {
    const struct config *cfg;      /* borrowed from the daemon */
    struct lws_context *ctx;       /* for timers */
    struct registry *registry;     /* key -> introduced connection */
    struct pending *pending;       /* request id -> pending request */
    lws_sorted_usec_list_t expiry; /* fires at the earliest pending deadline */
    uint64_t expiry_at_ms;         /* when it is armed for; 0: not armed */
    uint64_t next_conn_id;
    unsigned signers;              /* open signer connections */
    size_t sockets;                /* accepted sockets on the signer listener */
    bool draining;
    bool control_local;            /* control listener is loopback-only */
    struct metrics metrics;
    struct peers *peers;           /* the signer listener's admission table (owned by ws) */
    struct verifier *verifier;     /* NULL: signatures are verified on the loop thread */
    struct log_limit unknown_answer_log; /* peers can send unknown answers at will */
    struct wheel conn_timers;      /* per-connection deadlines, advanced by session_on_tick */
};

/* Resolution of the per-connection timers; session_on_tick runs this often. */
#define SERVICE_TICK_MS 50

/* Sets up svc over cfg. Returns 0. */
int service_init(struct wss_service *svc, const struct config *cfg);
/* Binds the service to the lws context once it exists (timers need it). */
void service_attach(struct wss_service *svc, struct lws_context *ctx);
/*
 * Ends every pending request with WSS_ERR_SHUTTING_DOWN, telling each signer
 * "cancel", and refuses new requests from now on.
 */
void service_drain(struct wss_service *svc);
/* Frees what service_init made; every request must have ended. */
void service_cleanup(struct wss_service *svc);

/*
 * Ends req (already taken out of the pending table) with status: writes the
 * audit line, tells the signer "cancel" for timeout/cancelled/shutting_down,
 * runs the callback once, and frees req.
 */
void service_complete(struct wss_service *svc, struct pending_req *req, int status,
                      const uint8_t *signature, const char *detail);

/* Re-arms the expiry timer if the earliest deadline moved. */
void service_schedule(struct wss_service *svc);

/* Sends req's sign_request to conn and records that it went there. */
void service_send_request(struct wss_service *svc, struct conn *conn, struct pending_req *req);

/* Signer session events, from the transport (session.c). */
void session_on_open(struct wss_service *svc, struct conn *c);
/* Handles one complete text message. Returns 0, or -1 if the connection must close now. */
int session_on_message(struct wss_service *svc, struct conn *c, const char *buf, size_t len);
/* Advances the per-connection timers to now_ms: introduction deadlines,
 * keep-alive pings, idle hang-ups. Called every SERVICE_TICK_MS. */
void session_on_tick(struct wss_service *svc, uint64_t now_ms);
/* A verdict from the verifier pool (a verifier_done_cb; arg is svc). */
void session_on_verdict(const char *request_id, int verdict, void *arg);
/* The connection is gone: unregister it and fail or keep its requests. */
void session_on_close(struct wss_service *svc, struct conn *c);

#endif
