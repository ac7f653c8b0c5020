/*
 * The libwebsockets layer: the context on the libuv loop, the signer vhost
 * (WebSocket on listen_path, /v1/ws by default) and the control vhost (HTTP
 * or HTTPS, served by controllers).
 * Callbacks only translate lws events into calls on conn.c and session.c.
 */
#ifndef WSSIGND_WS_H
#define WSSIGND_WS_H

#include <stdbool.h>

#include <libwebsockets.h>

#include "config.h"
#include "peers.h"
#include "tls.h"

struct wss_service;
struct http_server;

/* Per daemon: the lws objects and the tables they point into. */
struct ws {
    struct wss_service *svc; /* reached from callbacks through the context user */
    struct lws_context *ctx;
    struct lws_context *dying; /* destroyed once, freed by ws_finish_destroy */
    struct lws_vhost *signer;
    struct lws_vhost *control;
    int signer_port, control_port;           /* bound (the kernel's choice for port 0) */
    struct lws_protocols *control_protocols; /* owned: [0] the fallback, [1] controllers' HTTP */
    struct lws_http_mount *mounts;           /* owned: one per controller URL prefix */
    size_t n_mounts;
    char *signer_iface, *control_iface; /* owned copies: lws keeps the pointers */
    void *signer_tls;                   /* the wss vhost's SSL_CTX (owned by lws) */
    void *control_tls;                  /* the control vhost's, with control.tls */
    /* Session ticket keys of each listener, made once at start and installed in its
     * SSL_CTX: tickets survive reloads and die with the process. */
    unsigned char signer_ticket_keys[TLS_TICKET_KEYS_BYTES];
    unsigned char control_ticket_keys[TLS_TICKET_KEYS_BYTES];
    struct admission signer_admission;  /* sockets per client address and caps, each */
    struct admission control_admission; /* listener (peers.c) */
};

/* Creates the lws context on the libuv loop uv_loop (a uv_loop_t *).
 * svc is reachable from every callback through lws_context_user(). Returns 0
 * or WSS_ERR_IO with the reason in err. */
int ws_create_context(struct ws *ws, void *uv_loop, struct wss_service *svc, char *err,
                      size_t errlen);

/* Binds the signer listener as cfg says (ws, or wss with its TLS files);
 * ws->signer_port receives the port bound. */
int ws_listen_signer(struct ws *ws, const struct config *cfg, char *err, size_t errlen);

/*
 * Binds the control listener: a fallback protocol (404, no upgrades) and,
 * when http has routes, the controllers' HTTP protocol (http.c) mounted on
 * each route's prefix. http is borrowed and must outlive the context.
 */
int ws_listen_control(struct ws *ws, const struct config *cfg, struct http_server *http, char *err,
                      size_t errlen);

/* Applies the limits of cfg that take effect on running listeners (connection caps). */
void ws_apply_limits(struct ws *ws, const struct config *cfg);

/*
 * Loads the certificate chains and keys cfg names (tls.*, control.tls.*)
 * into the running listeners (tls_reload), after checking every file
 * first. Returns 0, or WSS_ERR_CONFIG with the reason in err.
 */
int ws_reload_tls(struct ws *ws, const struct config *cfg, char *err, size_t errlen);

/* Destroys the context, closing every connection. On the libuv loop the
 * destruction completes while the loop runs on; ws_finish_destroy then
 * frees what is left. */
void ws_destroy(struct ws *ws);

/* After the loop has run the close callbacks: the second lws_context_destroy
 * that lws 4.1.6 needs on a foreign loop to free the context. */
void ws_finish_destroy(struct ws *ws);

/* Frees the protocol and mount tables once the context is gone. */
void ws_free_tables(struct ws *ws);

#endif
