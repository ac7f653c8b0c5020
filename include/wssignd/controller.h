/*
 * The controller interface: in-process modules that ask for signatures.
 * docs/CONTROLLERS.md is the guide; this header is the contract.
 *
 * A controller is one constant struct wss_controller, compiled in and named
 * in the CMake list WSSIGND_CONTROLLERS. The daemon checks its API version,
 * calls init for each controller enabled in the config once the signing
 * service exists and before any signer can connect, offers each a reload's
 * new configuration (reload_prepare/reload_commit), and calls cleanup in
 * reverse order at shutdown. A controller may serve HTTP on the control
 * listener by listing the URL prefixes it owns (<wssignd/http.h>).
 *
 * Every function of include/wssignd/ runs on the daemon's loop thread only
 * (the helpers of <wssignd/util.h> excepted), and so does every callback
 * the daemon makes into a controller; none of them blocks. Allocation
 * failures abort the process (<wssignd/util.h>).
 */
#ifndef WSSIGND_CONTROLLER_H
#define WSSIGND_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wssignd/errors.h>
#include <wssignd/http.h>
#include <wssignd/log.h>
#include <wssignd/opts.h>
#include <wssignd/service.h>

/*
 * The version of this interface. A controller sets api_version to the value
 * of the headers it was built with; the daemon refuses to start a
 * controller whose version differs from its own, with an error naming both.
 * It changes whenever a struct, a prototype or a documented rule of
 * include/wssignd/ changes in a way a built controller would notice.
 */
#define WSS_CONTROLLER_API_VERSION 4

/* Per controller type: constant, compiled in. */
struct wss_controller {
    int api_version;  /* WSS_CONTROLLER_API_VERSION */
    const char *name; /* matches its section under "controllers" in the config */
    /*
     * Sets the controller up: checks opts (wss_opts_check), and may start
     * timers, subscribe to key events and ask for signatures. *state
     * receives the controller's private state; it is passed to cleanup, to
     * the reload hooks and to its HTTP handlers. Returns 0, or a negative
     * enum wss_err with a message in err (errlen bytes); the daemon then
     * does not start. --check-config runs init and cleanup on a scratch
     * service that is never served: timers never fire there.
     */
    int (*init)(struct wss_service *svc, const struct wss_opts *opts, void **state, char *err,
                size_t errlen);
    /* Frees what init made. Called once, after every sign request has ended,
     * every HTTP connection has closed and presence lookups have been
     * answered; may be NULL. */
    void (*cleanup)(void *state);
    /*
     * Optional, both or neither: a reload (SIGHUP) in two steps, so that a
     * reload is taken or refused as a whole. Once the new configuration has
     * loaded and passed the daemon's checks, reload_prepare reads the
     * controller's section of it (opts, borrowed for the call) and anything
     * it names (a token file, say) without changing the running state. It
     * returns 0 with *next set to what it would install (NULL if nothing),
     * or a negative enum wss_err with the reason in err: the daemon then
     * refuses the whole reload and everything keeps running as before. When
     * every part of the reload is ready, the daemon calls
     * reload_commit(state, next, true) to install next; if another part
     * failed, reload_commit(state, next, false) to discard it. reload_commit
     * takes ownership of next and cannot fail. Not called for a controller
     * the new configuration disables (that needs a restart).
     */
    int (*reload_prepare)(void *state, const struct wss_opts *opts, void **next, char *err,
                          size_t errlen);
    void (*reload_commit)(void *state, void *next, bool install);
    /* Optional: the URL prefixes the controller serves on the control
     * listener (<wssignd/http.h>), ending with {0}; each handler receives
     * the state init made. */
    const struct wss_http_route *http_routes;
    /* Optional: the table init checks the section against (wss_opts_check).
     * wssignd --dump-config prints each key it lists that the section leaves
     * out, at its default (a key without one, required or a NULL string, is
     * left out). NULL: the section is printed as written. */
    const struct wss_opt_spec *opts_spec;
};

/*
 * Renders the daemon's metrics in the Prometheus text exposition format
 * (version 0.0.4). Returns a malloc'd NUL-terminated buffer of *len bytes of
 * text (len may be NULL); the caller frees it with free(). Never NULL.
 */
char *wss_metrics_render(struct wss_service *svc, size_t *len);

/* True when the control listener is bound to loopback or a Unix socket only. */
bool wss_control_is_local(struct wss_service *svc);

#endif
