/*
 * The libwebsockets layer. Owns the lws context and the protocol and mount
 * tables the vhosts point into. Each callback case hands off to conn.c or
 * session.c in a line or three; no JSON, crypto, registry or pending logic
 * lives here.
 */
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "crypto.h"
#include "files.h"
#include "http.h"
#include "log.h"
#include "peers.h"
#include "service.h"
#include "tls.h"
#include "util.h"

/* lws reads WebSocket payload in pieces of this size, into a buffer it keeps per
 * connection; larger messages are reassembled. Small keeps idle connections small. */
#define SIGNER_RX_BYTES 1024
/* The most sockets the control listener holds (fewer when descriptors are short). */
#define CONTROL_SOCKETS_MAX 256
static struct ws *ws_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

static struct wss_service *service_of(struct lws *wsi)
{
    return ws_of(wsi)->svc;
}

/* Answers a plain HTTP request with 404; returns what the HTTP callback returns. */
static int not_found(struct lws *wsi)
{
    if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL) ||
        lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

/* Browsers always send Origin; it must be on the allow-list (or "*" be there). */
static bool origin_allowed(const struct config *cfg, struct lws *wsi, char *origin, size_t len)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);

    origin[0] = '\0';
    if (n <= 0)
        return cfg->allow_missing_origin;
    if (n >= (int)len || lws_hdr_copy(wsi, origin, (int)len, WSI_TOKEN_ORIGIN) != n)
        return false;
    for (size_t i = 0; i < cfg->n_origins; i++)
        if (!strcmp(cfg->origins[i], "*") || !strcasecmp(cfg->origins[i], origin))
            return true;
    return false;
}

/*
 * RFC 6455 §4.2.1 checks lws 4.1.6 leaves out: version 13 and a key that is
 * base64 of 16 bytes. (The request's HTTP version is not visible through the
 * lws 4.1 API: see docs/SECURITY.md.)
 */
static bool handshake_valid(struct lws *wsi)
{
    char version[8], key[32];
    uint8_t raw[18];
    size_t raw_len = 0;

    if (lws_hdr_total_length(wsi, WSI_TOKEN_VERSION) != 2 ||
        lws_hdr_copy(wsi, version, sizeof version, WSI_TOKEN_VERSION) != 2 || strcmp(version, "13"))
        return false;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_KEY) != 24 ||
        lws_hdr_copy(wsi, key, sizeof key, WSI_TOKEN_KEY) != 24 ||
        crypto_b64_decode(raw, sizeof raw, &raw_len, key, 24) != 0 || raw_len != 16)
        return false;
    return true;
}

/* Only a GET of listen_path (default /v1/ws) from an allowed origin may become a
 * signer WebSocket. */
static int filter_upgrade(struct wss_service *svc, struct lws *wsi)
{
    const char *path = svc->cfg->listen_path;
    char uri[CONFIG_LISTEN_PATH_MAX + 2], origin[256], quoted[300];

    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) != (int)strlen(path) ||
        lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 || strcmp(uri, path)) {
        /* As a plain GET of a wrong path is answered: never an empty reply. */
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
        return -1;
    }
    if (!handshake_valid(wsi)) {
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST, NULL);
        return -1;
    }
    if (!origin_allowed(svc->cfg, wsi, origin, sizeof origin)) {
        char remote[64];

        if (!lws_get_peer_simple(wsi, remote, sizeof remote))
            snprintf(remote, sizeof remote, "unknown");
        log_warn("event=origin_refused origin=%s remote=%s",
                 log_quote(quoted, sizeof quoted, origin[0] ? origin : "-"), remote);
        /* Answer 403 before the upgrade, as the cross-site hijacking defence requires. */
        lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
        return -1;
    }
    return 0;
}

/* Accept-time admission (peers.c): caps per address and in all, so a flood from
 * one source is turned away before it holds descriptors that honest clients need. */
static int admit(struct ws *ws, struct admission *a,
                 const struct lws_filter_network_conn_args *args)
{
    if (ws->svc->draining)
        return -1;
    return admission_accept(a, (const struct sockaddr *)&args->cli_addr) ? 0 : -1;
}

/* Counts an accepted socket until lws destroys it; the handle rides in lws's
 * opaque user data, which protocol rebinding leaves alone. */
static void count_socket(struct admission *a, struct lws *wsi)
{
    lws_set_opaque_user_data(wsi, admission_count(a, (int)lws_get_socket_fd(wsi)));
}

static void uncount_socket(struct admission *a, struct lws *wsi)
{
    admission_release(a, lws_get_opaque_user_data(wsi));
    lws_set_opaque_user_data(wsi, NULL);
}

static int on_receive(struct wss_service *svc, struct conn *c, struct lws *wsi, void *in,
                      size_t len)
{
    const char *msg = NULL;
    size_t msg_len = 0;
    int n;

    svc->metrics.rx_bytes += len;
    if (lws_frame_is_binary(wsi)) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                         (unsigned char *)"text frames only", 16);
        return -1;
    }
    switch (conn_on_rx(c, in, len, lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi),
                       &msg, &msg_len)) {
    case CONN_RX_MORE: return 0;
    case CONN_RX_TOO_BIG:
        log_info("event=message_too_big conn=%llu remote=%s", (unsigned long long)c->session.id,
                 c->session.remote);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message too big", 15);
        return -1;
    case CONN_RX_COMPLETE: break;
    }
    n = session_on_message(&c->session, msg, msg_len);
    conn_rx_done(c);
    return n;
}

/*
 * A close from the peer: lws 4.1.6 echoes its payload, even a code that RFC
 * 6455 §7.4 forbids on the wire. Such a code is answered with 1002 instead,
 * written over the code in the payload that lws echoes.
 */
static int on_peer_close(void *in, size_t len)
{
    unsigned char *p = in;
    unsigned code;

    if (len == 1)
        return -1; /* no valid close payload has one byte: drop without an echo */
    if (len < 2)
        return 0;
    code = (unsigned)p[0] << 8 | p[1];
    if ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
        (code >= 3000 && code <= 4999))
        return 0;
    p[0] = LWS_CLOSE_STATUS_PROTOCOL_ERR >> 8;
    p[1] = LWS_CLOSE_STATUS_PROTOCOL_ERR & 0xff;
    return 0;
}

static int callback_signer(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    struct wss_service *svc = service_of(wsi);
    struct conn *c = user;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* The wss vhost's SSL_CTX, kept so a reload can change its certificate. */
        ws_of(wsi)->signer_tls = user;
        tls_tune_context(user, ws_of(wsi)->signer_ticket_keys);
        return 0;
    case LWS_CALLBACK_SSL_INFO:
        /* Only SSL_CB_HANDSHAKE_DONE is asked for (ws_listen_signer). */
        svc->metrics.tls_handshakes[tls_session_reused(lws_get_ssl(wsi)) ? 1 : 0]++;
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return admit(ws_of(wsi), &ws_of(wsi)->signer_admission, user);
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        count_socket(&ws_of(wsi)->signer_admission, wsi);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY: uncount_socket(&ws_of(wsi)->signer_admission, wsi); return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* Only "websocket": no h2c. in is read as a C string and nothing beyond it. */
        return in && !strcmp(in, "websocket") ? 0 : -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (filter_upgrade(svc, wsi) == 0)
            return 0;
        svc->metrics.handshakes_refused++;
        return -1;
    case LWS_CALLBACK_HTTP: return not_found(wsi); /* the signer listener serves no plain HTTP */
    case LWS_CALLBACK_ESTABLISHED:
        svc->metrics.handshakes_accepted++;
        conn_init(c, wsi, svc, svc->cfg->max_frame_bytes, svc->cfg->max_queued_bytes,
                  &svc->metrics.tx_bytes,
                  admission_peer(&ws_of(wsi)->signer_admission, lws_get_opaque_user_data(wsi)));
        session_on_open(&c->session);
        return 0;
    case LWS_CALLBACK_RECEIVE: return on_receive(svc, c, wsi, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE: return conn_on_writable(c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: conn_on_peer_close(c); return on_peer_close(in, len);
    case LWS_CALLBACK_RECEIVE_PONG: session_on_activity(&c->session); return 0;
    case LWS_CALLBACK_TIMER:
        /* Used only to end a connection whose close frame is due (see conn.c). */
        return conn_close_ready(c) ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
        if (!c || !c->wsi)
            return 0;
        session_on_close(&c->session);
        conn_cleanup(c);
        return 0;
    default: return 0;
    }
}

static const struct lws_protocols signer_protocols[] = {
    {"wssign.v1", callback_signer, sizeof(struct conn), SIGNER_RX_BYTES, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* The controllers' HTTP on the control listener: each event goes to http.c. */
static int callback_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct http_txn *txn = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return -1; /* reached only when lws runs a request again: see http_on_rerun */
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION: return http_on_rerun(txn);
    case LWS_CALLBACK_HTTP: return http_on_request(lws_get_protocol(wsi)->user, txn, wsi);
    case LWS_CALLBACK_HTTP_BODY: return http_on_body(txn, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: return http_on_body_done(txn);
    case LWS_CALLBACK_HTTP_WRITEABLE: return http_on_writable(txn);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP: http_on_detach(txn); return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

#define HTTP_PROTOCOL "wssignd-http"

/* The control listener's fallback: no upgrades, 404 for paths no controller owns. */
static int callback_control(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                            size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* With control.tls: the control vhost's SSL_CTX, kept for reloads. */
        ws_of(wsi)->control_tls = user;
        tls_tune_context(user, ws_of(wsi)->control_ticket_keys);
        return 0;
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return admit(ws_of(wsi), &ws_of(wsi)->control_admission, user);
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        /* Counted from accept until WSI_DESTROY, which reaches protocols[0] once per
         * socket whatever protocol the socket was bound to meanwhile. */
        count_socket(&ws_of(wsi)->control_admission, wsi);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY: uncount_socket(&ws_of(wsi)->control_admission, wsi); return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* Answer, then close: no WebSocket or h2c here. */
        lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                               "the control listener does not upgrade connections");
        return -1;
    case LWS_CALLBACK_HTTP: return not_found(wsi);
    default: return 0;
    }
}

int ws_create_context(struct ws *ws, void *uv_loop, struct wss_service *svc, char *err,
                      size_t errlen)
{
    struct lws_context_creation_info info;
    void *loops[1] = {uv_loop};

    memset(ws, 0, sizeof *ws);
    ws->svc = svc;
    if (tls_new_ticket_keys(ws->signer_ticket_keys) != 0 ||
        tls_new_ticket_keys(ws->control_ticket_keys) != 0) {
        snprintf(err, errlen, "cannot make TLS session ticket keys (no randomness)");
        return WSS_ERR_IO;
    }
    admission_init(&ws->signer_admission, "signer", &svc->metrics.connections_refused,
                   &svc->sockets);
    admission_init(&ws->control_admission, "control", &svc->metrics.connections_refused,
                   &svc->metrics.control_sockets);
    memset(&info, 0, sizeof info);
    /* lws 4.1.6 reads VALIDATE_UTF8 from the context only, whatever its header says. */
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.foreign_loops = loops;
    info.user = ws;
    /* HTTP/2 stays unreachable: lws 4.1.6 would offer h2 by ALPN otherwise. */
    info.alpn = "http/1.1";
    ws->ctx = lws_create_context(&info);
    if (!ws->ctx) {
        snprintf(err, errlen, "cannot create the libwebsockets context (libuv event library)");
        return WSS_ERR_IO;
    }
    return 0;
}

/* Fills the bind fields of info so the listener binds exactly host:port. */
static void bind_exactly(struct lws_context_creation_info *info, const struct addr_listen *l,
                         char **iface)
{
    struct in_addr a4;

    free(*iface);
    *iface = xstrdup(l->host);
    info->port = l->port;
    info->iface = *iface;
    /* lws 4.1.6 binds the dual-stack wildcard for an IPv4 iface unless IPv6 is off. */
    if (inet_pton(AF_INET, l->host, &a4) == 1)
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
}

/*
 * No lws validity timers on accepted connections: the daemon pings and times
 * out its connections itself (session.c, one timing wheel). lws 4.1.6's default
 * policy (ping after 300 s) would keep one entry per connection in its sorted
 * timer list, and every connection established then walks the whole list: at
 * 10 000 connections that insertion was two thirds of the daemon's CPU in a
 * reconnect storm.
 */
static const lws_retry_bo_t no_validity_checks = {.secs_since_valid_ping = 0,
                                                  .secs_since_valid_hangup = 0};

static void common_vhost_info(struct lws_context_creation_info *info)
{
    info->retry_and_idle_policy = &no_validity_checks;
    info->alpn = "http/1.1";
    info->timeout_secs = 10;
    info->timeout_secs_ah_idle = 10;
}

int ws_reload_tls(struct ws *ws, const struct config *cfg, char *err, size_t errlen)
{
    /* Both pairs are checked before either is installed. */
    if (cfg->control_tls_cert && tls_check_files(cfg->control_tls_cert, cfg->control_tls_key,
                                                 "control.tls", err, errlen) != 0)
        return WSS_ERR_CONFIG;
    if (cfg->tls_cert &&
        tls_reload(ws->signer_tls, cfg->tls_cert, cfg->tls_key, "tls", err, errlen) != 0)
        return WSS_ERR_CONFIG;
    if (cfg->control_tls_cert && tls_reload(ws->control_tls, cfg->control_tls_cert,
                                            cfg->control_tls_key, "control.tls", err, errlen) != 0)
        return WSS_ERR_CONFIG;
    return 0;
}

/* Fills the TLS fields of a listener's info from a checked certificate and key:
 * the one policy of tls.h. Returns 0, or WSS_ERR_CONFIG with the reason in err. */
static int tls_vhost_info(struct lws_context_creation_info *info, const char *cert, const char *key,
                          const char *section, char *err, size_t errlen)
{
    if (tls_check_files(cert, key, section, err, errlen) != 0)
        return WSS_ERR_CONFIG;
    info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info->ssl_cert_filepath = cert;
    info->ssl_private_key_filepath = key;
    info->ssl_cipher_list = TLS12_CIPHERS;
    info->ssl_options_set = (long)tls_server_options();
    return 0;
}

void ws_apply_limits(struct ws *ws, const struct config *cfg)
{
    struct rlimit rl;
    size_t nofile = 0, budget, control_max, max_connections;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        nofile = (size_t)rl.rlim_cur;
    /*
     * The descriptors are shared out: 64 for listeners, TLS files and logs,
     * up to a quarter (at most 256) for the control listener, the rest for
     * signers. A configured signer cap is kept within the same budget.
     */
    control_max = nofile ? nofile / 4 : CONTROL_SOCKETS_MAX;
    if (control_max > CONTROL_SOCKETS_MAX)
        control_max = CONTROL_SOCKETS_MAX;
    budget = nofile > 64 + control_max ? nofile - 64 - control_max : nofile / 2;
    max_connections = cfg->max_connections;
    if (nofile && (!max_connections || max_connections > budget))
        max_connections = budget;
    ws->control_admission.max_total = control_max;
    ws->signer_admission.max_total = max_connections;
    ws->signer_admission.max_unproven_per_ip = cfg->max_connections_per_ip;
}

int ws_listen_signer(struct ws *ws, const struct config *cfg, char *err, size_t errlen)
{
    struct lws_context_creation_info info;

    ws_apply_limits(ws, cfg);
    memset(&info, 0, sizeof info);
    info.vhost_name = "signer";
    info.protocols = signer_protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    common_vhost_info(&info);
    bind_exactly(&info, &cfg->listen, &ws->signer_iface);
    if (cfg->tls_cert &&
        tls_vhost_info(&info, cfg->tls_cert, cfg->tls_key, "tls", err, errlen) != 0)
        return WSS_ERR_CONFIG;
    /* Each completed TLS handshake, full or resumed, for wssignd_tls_handshakes_total. */
    if (cfg->tls_cert)
        info.ssl_info_event_mask = SSL_CB_HANDSHAKE_DONE;
    if (addr_probe_bind(&cfg->listen, err, errlen) != 0)
        return WSS_ERR_IO;
    ws->signer = lws_create_vhost(ws->ctx, &info);
    if (!ws->signer) {
        snprintf(err, errlen, "cannot listen on %s:%d%s", cfg->listen.host, cfg->listen.port,
                 cfg->tls_cert ? " (or cannot load the TLS certificate and key)" : "");
        return WSS_ERR_IO;
    }
    ws->signer_port = lws_get_vhost_listen_port(ws->signer);
    return 0;
}

int ws_listen_control(struct ws *ws, const struct config *cfg, struct http_server *http, char *err,
                      size_t errlen)
{
    struct lws_context_creation_info info;
    size_t i, nmounts = http_server_route_count(http);

    /* [0] the fallback, [1] the controllers' HTTP when they serve any, the terminator. */
    ws->control_protocols = xcalloc(3, sizeof *ws->control_protocols);
    ws->control_protocols[0] =
        (struct lws_protocols){"wssignd-control", callback_control, 0, 0, 0, NULL, 0};
    if (nmounts)
        ws->control_protocols[1] = (struct lws_protocols){
            HTTP_PROTOCOL, callback_http, sizeof(struct http_txn), 0, 0, http, 0};
    ws->mounts = xcalloc(nmounts ? nmounts : 1, sizeof *ws->mounts);
    ws->n_mounts = nmounts;
    for (i = 0; i < nmounts; i++) {
        struct lws_http_mount *m = &ws->mounts[i];

        m->mount_next = i + 1 < nmounts ? &ws->mounts[i + 1] : NULL;
        m->mountpoint = http_server_route_prefix(http, i);
        m->mountpoint_len = (unsigned char)strlen(m->mountpoint);
        m->origin = HTTP_PROTOCOL;
        m->origin_protocol = LWSMPRO_CALLBACK;
    }

    memset(&info, 0, sizeof info);
    info.vhost_name = "control";
    info.protocols = ws->control_protocols;
    info.mounts = nmounts ? ws->mounts : NULL;
    common_vhost_info(&info);
    if (cfg->control.is_unix) {
        free(ws->control_iface);
        ws->control_iface = xstrdup(cfg->control.host);
        info.iface = ws->control_iface;
        info.options |= LWS_SERVER_OPTION_UNIX_SOCK;
        unlink(cfg->control.host); /* a socket left by an earlier run */
    } else {
        bind_exactly(&info, &cfg->control, &ws->control_iface);
        if (cfg->control_tls_cert &&
            tls_vhost_info(&info, cfg->control_tls_cert, cfg->control_tls_key, "control.tls", err,
                           errlen) != 0)
            return WSS_ERR_CONFIG;
        if (addr_probe_bind(&cfg->control, err, errlen) != 0)
            return WSS_ERR_IO;
    }
    ws->control = lws_create_vhost(ws->ctx, &info);
    if (!ws->control) {
        char where[ADDR_STR_MAX];

        snprintf(err, errlen, "cannot listen on %s (control)%s",
                 addr_str(where, sizeof where, &cfg->control),
                 cfg->control_tls_cert ? " (or cannot load the control.tls certificate and key)"
                                       : "");
        return WSS_ERR_IO;
    }
    ws->control_port = cfg->control.is_unix ? 0 : lws_get_vhost_listen_port(ws->control);
    if (cfg->control.is_unix && chmod(cfg->control.host, cfg->control_socket_mode) != 0) {
        snprintf(err, errlen, "cannot set the mode of %s: %s", cfg->control.host, strerror(errno));
        return WSS_ERR_IO;
    }
    return 0;
}

void ws_destroy(struct ws *ws)
{
    if (ws->ctx) {
        lws_context_destroy(ws->ctx);
        ws->dying = ws->ctx;
    }
    ws->ctx = NULL;
    ws->signer_tls = ws->control_tls = NULL;
    tls_forget_ticket_keys(ws->signer_ticket_keys);
    tls_forget_ticket_keys(ws->control_ticket_keys);
}

void ws_finish_destroy(struct ws *ws)
{
    if (ws->dying)
        lws_context_destroy(ws->dying);
    ws->dying = NULL;
}

void ws_free_tables(struct ws *ws)
{
    free(ws->control_protocols);
    free(ws->mounts);
    free(ws->signer_iface);
    free(ws->control_iface);
    admission_cleanup(&ws->signer_admission);
    admission_cleanup(&ws->control_admission);
    ws->control_protocols = NULL;
    ws->mounts = NULL;
    ws->signer_iface = ws->control_iface = NULL;
}
