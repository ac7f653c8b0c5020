/*
 * Start-up, reload and shutdown order of the daemon's parts, the libuv loop
 * they share, signal handling (on the loop, through uv_signal) and the
 * service manager's notifications. Holds no protocol logic.
 */
#include "daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "controllers/controllers.h"
#include "crypto.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "opts.h"
#include "service.h"
#include "service_keys.h"
#include "session.h"
#include "timers.h"
#include "tls.h"
#include "cluster/cluster.h"
#include "util.h"
#include "verifier.h"
#include "uvpoll.h"
#include "version.h"
#include "ws.h"

#define DRAIN_POLL_MS 20
/* STATUS= is refreshed this often even without a watchdog. */
#define STATUS_EVERY_MS 2000

/* Per enabled controller. */
struct ctl_instance {
    const struct wss_controller *ctl;
    void *state;
};

/* Per daemon. */
struct wssd {
    struct config cfg; /* owned; replaced in place by a reload */
    daemon_load_fn load;
    void *load_arg;
    uv_loop_t loop;
    bool loop_ready;
    struct uvpoll poll_shim; /* fewer epoll_ctl calls for lws's connections */
    struct ws ws;
    struct wss_service svc;
    struct http_server *http; /* the controllers' routes on the control listener */
    struct cluster *cluster;  /* NULL on a single node */
    struct ctl_instance *ctls;
    size_t n_ctls;
    uv_signal_t sig_term, sig_int, sig_hup;
    struct timers timers; /* the one timer substrate, shared with the service */
    struct timer drain, tick;
    uint64_t drain_started_ms, tick_ms, last_status_ms;
    bool timers_ready;  /* the timer substrate is initialised */
    bool signals_ready; /* the signal handles are initialised */
    bool stopping;
};

static bool control_is_local(const struct config *cfg)
{
    return cfg->control.is_unix || addr_host_is_loopback(cfg->control.host);
}

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void close_signer(struct session *s, void *arg)
{
    s->state = SESSION_CLOSING;
    s->ops->close(s, LINK_CLOSE_GOING_AWAY, "shutting down");
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static const char *status_line(struct wssd *d, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s: %u signers, %zu pending", d->stopping ? "draining" : "serving",
                     d->svc.signers, service_pending_count(&d->svc));

    if (d->cluster && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", cluster %s (%zu nodes)",
                 cluster_is_up(d->cluster) ? "up" : "down", cluster_nodes_alive(d->cluster));
    return buf;
}

/* Ends the loop: lws closes its handles, then ours go; uv_run then returns. */
static void finish(struct wssd *d)
{
    ws_destroy(&d->ws);
    uvpoll_disable(&d->poll_shim);
    http_server_stop(d->http);
    cluster_free(d->cluster);
    d->cluster = NULL;
    service_attach(&d->svc, NULL); /* no more deadlines: the loop is ending */
    /* Every request has ended; the pool's async handle must close for the loop to end. */
    verifier_free(d->svc.verifier);
    d->svc.verifier = NULL;
    if (d->timers_ready)
        timers_cleanup(&d->timers);
    d->timers_ready = false;
    if (!d->signals_ready)
        return;
    close_handle((uv_handle_t *)&d->sig_term);
    close_handle((uv_handle_t *)&d->sig_int);
    close_handle((uv_handle_t *)&d->sig_hup);
}

static void on_drain_tick(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct wssd *d = container_of(t, struct wssd, drain);
    uint64_t waited = now_ms - d->drain_started_ms;

    /* Give answers already queued a tick to leave, then stop once every signer has gone. */
    if ((d->svc.signers == 0 && waited >= DRAIN_POLL_MS) || waited >= d->cfg.drain_ms) {
        log_notice("event=stopped signers_left=%u waited_ms=%llu", d->svc.signers,
                   (unsigned long long)waited);
        finish(d);
        return;
    }
    timers_arm(ts, t, now_ms + DRAIN_POLL_MS, on_drain_tick);
}

static void begin_stop(struct wssd *d, int signum)
{
    if (d->stopping)
        return;
    d->stopping = true;
    notify_stopping();
    log_notice("event=shutdown signal=%d pending=%zu signers=%u drain_ms=%u", signum,
               service_pending_count(&d->svc), d->svc.signers, d->cfg.drain_ms);
    service_drain(&d->svc);
    /* After the drain, so that the cancels of requests sent through other nodes go out. */
    cluster_stop(d->cluster);
    service_foreach_session(&d->svc, close_signer, NULL);
    d->drain_started_ms = util_now_ms();
    timers_arm(&d->timers, &d->drain, d->drain_started_ms, on_drain_tick);
}

/* Installs (or discards) what each controller prepared for a reload; next[i] is the i-th's. */
static void commit_controllers(struct wssd *d, void **next, size_t n, bool install)
{
    for (size_t i = 0; i < n; i++)
        if (d->ctls[i].ctl->reload_commit)
            d->ctls[i].ctl->reload_commit(d->ctls[i].state, next[i], install);
}

/* Offers each running controller its section of cfg. Returns 0 with next[] filled, or the
 * first refusal (with its reason in err) having discarded what the others prepared. */
static int prepare_controllers(struct wssd *d, const struct config *cfg, void **next, char *err,
                               size_t errlen)
{
    for (size_t i = 0; i < d->n_ctls; i++) {
        const struct wss_controller *ctl = d->ctls[i].ctl;
        const struct config_controller *cc = config_controller(cfg, ctl->name);
        char cerr[256] = "";
        int rc;

        if (!ctl->reload_prepare || !cc)
            continue;
        if ((rc = ctl->reload_prepare(d->ctls[i].state, cc->opts, &next[i], cerr, sizeof cerr))) {
            snprintf(err, errlen, "controller %s: %s", ctl->name,
                     cerr[0] ? cerr : wss_strerror(rc));
            commit_controllers(d, next, i, false);
            return rc;
        }
    }
    return 0;
}

/*
 * SIGHUP: a fresh configuration from main (file + command line), refused as a
 * whole if it does not load, changes what needs a restart, names TLS files
 * that do not load, or is refused by a controller (a token file that no
 * longer reads, say); otherwise it replaces the running one and each
 * controller installs what it prepared from it.
 */
static void reload(struct wssd *d)
{
    struct config next;
    struct cluster_settings cs;
    char err[512] = "", quoted[600], status[96];
    void **ctl_next = xcalloc(d->n_ctls ? d->n_ctls : 1, sizeof *ctl_next);
    bool prepared = false;
    const char *key;
    int rc;

    notify_reloading();
    memset(&next, 0, sizeof next);
    memset(&cs, 0, sizeof cs);
    if (!d->load) {
        snprintf(err, sizeof err, "no configuration to reload");
        rc = -1;
    } else if ((rc = d->load(&next, err, sizeof err, d->load_arg)) == 0) {
        if ((key = config_restart_key(&d->cfg, &next)) != NULL) {
            snprintf(err, sizeof err, "changing '%s' requires a restart", key);
            rc = -1;
        } else if (next.cluster.enabled &&
                   cluster_settings_load(&next.cluster, &cs, err, sizeof err) != 0) {
            rc = -1;
        } else if (prepare_controllers(d, &next, ctl_next, err, sizeof err) != 0) {
            rc = -1;
        } else {
            prepared = true;
            if (ws_reload_tls(&d->ws, &next, err, sizeof err) != 0)
                rc = -1;
        }
    }
    if (rc != 0) {
        cluster_settings_wipe(&cs);
        if (prepared)
            commit_controllers(d, ctl_next, d->n_ctls, false);
        free(ctl_next);
        config_cleanup(&next);
        log_err("event=reload outcome=refused msg=%s", log_quote(quoted, sizeof quoted, err));
        metrics_reload(&d->svc.metrics, false, (double)util_unix_ms() / 1000.0);
        notify_ready(status_line(d, status, sizeof status));
        return;
    }
    commit_controllers(d, ctl_next, d->n_ctls, true);
    free(ctl_next);
    /* A changed Redis address or secret: the cluster reconnects. */
    if (d->cluster)
        cluster_reload(d->cluster, &cs);
    cluster_settings_wipe(&cs);
    /* The listeners keep the ports bound at start-up (port 0 asked for any). */
    next.listen.port = d->ws.signer_port;
    if (!next.control.is_unix)
        next.control.port = d->ws.control_port;
    /* In place: the service and the listeners keep pointing at d->cfg. */
    config_cleanup(&d->cfg);
    d->cfg = next;
    log_set_level(d->cfg.log_level);
    log_set_timestamps((enum log_timestamps)d->cfg.log_timestamps);
    ws_apply_limits(&d->ws, &d->cfg);
    /* A key the new key lists refuse loses its connection now (4003). */
    service_enforce_key_lists(&d->svc);
    metrics_reload(&d->svc.metrics, true, (double)util_unix_ms() / 1000.0);
    d->svc.metrics.tls_expiry = d->cfg.tls_cert ? tls_cert_expiry(d->cfg.tls_cert) : 0;
    log_notice("event=reload outcome=ok log_level=%s tls=%s control_tls=%s",
               log_level_name(d->cfg.log_level), d->cfg.tls_cert ? "reloaded" : "no",
               d->cfg.control_tls_cert ? "reloaded" : "no");
    notify_ready(status_line(d, status, sizeof status));
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct wssd *d = h->data;

    if (signum == SIGHUP) {
        if (!d->stopping)
            reload(d);
        return;
    }
    begin_stop(d, signum);
}

/* Watchdog pings and STATUS= updates, from the loop itself: a stuck loop sends none. */
static void on_tick(struct timers *ts, struct timer *t, uint64_t now)
{
    struct wssd *d = container_of(t, struct wssd, tick);
    char status[96];

    notify_watchdog();
    if (now - d->last_status_ms >= STATUS_EVERY_MS) {
        d->last_status_ms = now;
        notify_status(status_line(d, status, sizeof status));
    }
    timers_arm(ts, t, now + d->tick_ms, on_tick);
}

/*
 * Looks up the controller a config section names and, if it is enabled,
 * starts it on svc. *ctl is NULL for a disabled one. Returns 0, or an error
 * with the reason in err.
 */
static int init_controller(struct wss_service *svc, const struct config_controller *cc,
                           const struct wss_controller **ctl, void **state, char *err,
                           size_t errlen)
{
    char cerr[256] = "";
    int rc;

    *ctl = controllers_find(cc->name);
    if (!*ctl) {
        snprintf(err, errlen, "unknown controller 'controllers.%s'", cc->name);
        return WSS_ERR_CONFIG;
    }
    if (!cc->enabled) {
        *ctl = NULL;
        return 0;
    }
    if ((rc = controllers_check(*ctl, err, errlen)) != 0) {
        *ctl = NULL;
        return rc;
    }
    if ((rc = (*ctl)->init(svc, cc->opts, state, cerr, sizeof cerr)) != 0) {
        snprintf(err, errlen, "controller %s: %s", cc->name, cerr[0] ? cerr : wss_strerror(rc));
        *ctl = NULL;
        return rc;
    }
    return 0;
}

/* Starts each enabled controller, in config order. */
static int start_controllers(struct wssd *d, char *err, size_t errlen)
{
    const struct config *cfg = &d->cfg;

    d->ctls = xcalloc(cfg->n_controllers ? cfg->n_controllers : 1, sizeof *d->ctls);
    for (size_t i = 0; i < cfg->n_controllers; i++) {
        struct ctl_instance *ci = &d->ctls[d->n_ctls];
        int rc = init_controller(&d->svc, &cfg->controllers[i], &ci->ctl, &ci->state, err, errlen);

        if (rc != 0)
            return rc;
        if (!ci->ctl)
            continue;
        d->n_ctls++;
        log_info("event=controller_started name=%s", cfg->controllers[i].name);
    }
    return 0;
}

void daemon_fill_defaults(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_controllers; i++) {
        const struct wss_controller *ctl = controllers_find(cfg->controllers[i].name);

        if (ctl && ctl->opts_spec && cfg->controllers[i].opts)
            opts_fill_defaults(cfg->controllers[i].opts, ctl->opts_spec);
    }
}

int daemon_check(const struct config *cfg, char *err, size_t errlen)
{
    struct wss_service svc;
    struct addr_listen any;
    int rc = 0;

    if (crypto_init() != 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return WSS_ERR_IO;
    }
    if (cfg->tls_cert &&
        (rc = tls_check_files(cfg->tls_cert, cfg->tls_key, "tls", err, errlen)) != 0)
        return rc;
    if (cfg->control_tls_cert && (rc = tls_check_files(cfg->control_tls_cert, cfg->control_tls_key,
                                                       "control.tls", err, errlen)) != 0)
        return rc;
    /* The addresses must exist on this host; the ports may be in use by a running daemon. */
    any = cfg->listen;
    any.port = 0;
    if ((rc = addr_probe_bind(&any, err, errlen)) != 0)
        return rc;
    any = cfg->control;
    any.port = 0;
    if ((rc = addr_probe_bind(&any, err, errlen)) != 0)
        return rc;
    if (cfg->cluster.enabled) {
        struct cluster_settings cs;

        rc = cluster_settings_load(&cfg->cluster, &cs, err, errlen);
        cluster_settings_wipe(&cs);
        if (rc != 0)
            return rc;
    }
    service_init(&svc, cfg);
    svc.control_local = control_is_local(cfg);
    for (size_t i = 0; i < cfg->n_controllers && rc == 0; i++) {
        const struct wss_controller *ctl;
        void *state = NULL;

        rc = init_controller(&svc, &cfg->controllers[i], &ctl, &state, err, errlen);
        if (ctl && ctl->cleanup)
            ctl->cleanup(state);
    }
    service_cleanup(&svc);
    return rc;
}

/* Joins the controllers' URL prefixes to the control listener. */
static int listen_control(struct wssd *d, char *err, size_t errlen)
{
    char rerr[256];
    int rc;

    d->http = http_server_new(&d->svc, &d->loop);
    for (size_t i = 0; i < d->n_ctls; i++) {
        const struct wss_controller *ctl = d->ctls[i].ctl;

        for (size_t j = 0; ctl->http_routes && ctl->http_routes[j].prefix; j++) {
            rc = http_server_add_route(d->http, ctl->http_routes[j].prefix,
                                       ctl->http_routes[j].handler, d->ctls[i].state, rerr,
                                       sizeof rerr);
            if (rc != 0) {
                snprintf(err, errlen, "controller %s: %s", ctl->name, rerr);
                return rc;
            }
        }
    }
    return ws_listen_control(&d->ws, &d->cfg, d->http, err, errlen);
}

static int start_handles(struct wssd *d)
{
    uint64_t wd = notify_watchdog_interval_ms();

    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    uv_signal_init(&d->loop, &d->sig_term);
    uv_signal_init(&d->loop, &d->sig_int);
    uv_signal_init(&d->loop, &d->sig_hup);
    d->signals_ready = true;
    d->tick_ms = wd && wd < STATUS_EVERY_MS ? wd : STATUS_EVERY_MS;
    if (uv_signal_start(&d->sig_term, on_signal, SIGTERM) ||
        uv_signal_start(&d->sig_int, on_signal, SIGINT) ||
        uv_signal_start(&d->sig_hup, on_signal, SIGHUP))
        return WSS_ERR_IO;
    timers_arm(&d->timers, &d->tick, util_now_ms() + d->tick_ms, on_tick);
    return 0;
}

struct wssd *daemon_new_take(struct config *cfg, daemon_load_fn load, void *load_arg, char *err,
                             size_t errlen)
{
    struct wssd *d = xcalloc(1, sizeof *d);
    char status[96], a[ADDR_STR_MAX], b[ADDR_STR_MAX];

    d->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    d->load = load;
    d->load_arg = load_arg;
    if (crypto_init() != 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        goto fail;
    }
    if (uv_loop_init(&d->loop)) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    d->loop_ready = true;
    uvpoll_enable(&d->poll_shim, &d->loop); /* without it the loop works as before */
    if (timers_init(&d->timers, &d->loop) != 0) {
        snprintf(err, errlen, "cannot create the loop's timer");
        goto fail;
    }
    d->timers_ready = true;
    service_init(&d->svc, &d->cfg);
    d->svc.control_local = control_is_local(&d->cfg);
    service_attach(&d->svc, &d->timers);
    if (ws_create_context(&d->ws, &d->loop, &d->svc, err, errlen) != 0)
        goto fail;
    if (d->cfg.verify_threads) {
        d->svc.verifier =
            verifier_new(&d->loop, d->cfg.verify_threads, service_on_verdict, &d->svc);
        if (!d->svc.verifier) {
            snprintf(err, errlen, "cannot start %u verification threads", d->cfg.verify_threads);
            goto fail;
        }
    }
    if (d->cfg.cluster.enabled) {
        struct cluster_settings cs;

        if (cluster_settings_load(&d->cfg.cluster, &cs, err, errlen) != 0)
            goto fail;
        d->svc.metrics.cluster_enabled = true;
        d->cluster = cluster_new(&d->loop, &d->svc, &d->timers, &cs);
        cluster_settings_wipe(&cs);
    }
    if (start_controllers(d, err, errlen) != 0)
        goto fail;
    d->svc.metrics.tls_expiry = d->cfg.tls_cert ? tls_cert_expiry(d->cfg.tls_cert) : 0;
    if (ws_listen_signer(&d->ws, &d->cfg, err, errlen) != 0 || listen_control(d, err, errlen) != 0)
        goto fail;
    d->svc.peers = d->ws.signer_admission.peers;
    /* Port 0 asked for any free port: from now on the settings name the one bound. */
    d->cfg.listen.port = d->ws.signer_port;
    if (!d->cfg.control.is_unix)
        d->cfg.control.port = d->ws.control_port;
    if (start_handles(d) != 0) {
        snprintf(err, errlen, "cannot install signal handlers and timers");
        goto fail;
    }
    /* Allowed with a token file, but the token then crosses the network readable. */
    if (!d->svc.control_local && !d->cfg.control_tls_cert)
        log_warn("event=control_cleartext control=%s msg=\"the control listener is not "
                 "loopback-only and has no control.tls: bearer tokens and messages cross the "
                 "network in clear text\"",
                 addr_str(b, sizeof b, &d->cfg.control));
    log_notice("event=ready version=%s listen=%s tls=%s control=%s control_tls=%s "
               "controllers=%zu watchdog_ms=%llu",
               WSSIGND_VERSION, addr_str(a, sizeof a, &d->cfg.listen),
               d->cfg.tls_cert ? "yes" : "no", addr_str(b, sizeof b, &d->cfg.control),
               d->cfg.control_tls_cert ? "yes" : "no", d->n_ctls,
               (unsigned long long)notify_watchdog_interval_ms());
    d->last_status_ms = util_now_ms();
    notify_ready(status_line(d, status, sizeof status));
    return d;

fail:
    daemon_free(d);
    return NULL;
}

int daemon_run(struct wssd *d)
{
    uv_run(&d->loop, UV_RUN_DEFAULT);
    return 0;
}

void daemon_free(struct wssd *d)
{
    if (!d)
        return;
    /* Requests end before the parts they call into go away. */
    if (d->svc.pending)
        service_drain(&d->svc);
    finish(d);
    /* Lets lws and our handles complete their close callbacks, then frees the context. */
    if (d->loop_ready)
        uv_run(&d->loop, UV_RUN_DEFAULT);
    ws_finish_destroy(&d->ws);
    if (d->loop_ready)
        uv_run(&d->loop, UV_RUN_DEFAULT);
    ws_free_tables(&d->ws);
    for (size_t i = d->n_ctls; i-- > 0;)
        if (d->ctls[i].ctl->cleanup)
            d->ctls[i].ctl->cleanup(d->ctls[i].state);
    free(d->ctls);
    http_server_free(d->http);
    if (d->svc.pending)
        service_cleanup(&d->svc);
    if (d->loop_ready && uv_loop_close(&d->loop) != 0)
        log_warn("event=loop_close_failed");
    config_cleanup(&d->cfg);
    free(d);
}
