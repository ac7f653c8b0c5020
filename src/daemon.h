/*
 * The daemon: owns the configuration, the event loop, the lws layer, the
 * signing service and the enabled controllers, and orders their start-up,
 * reload and shutdown.
 */
#ifndef WSSIGND_DAEMON_H
#define WSSIGND_DAEMON_H

#include <stddef.h>

#include "config.h"

struct wssd;

/*
 * Produces a fresh, checked configuration for a reload (main re-reads the
 * file and applies the command line). Returns 0, or non-zero with the reason
 * in err; out must be cleaned up by the caller either way.
 */
typedef int (*daemon_load_fn)(struct config *out, char *err, size_t errlen, void *arg);

/*
 * Starts everything cfg describes: the loop, both listeners (bound when this
 * returns) and the enabled controllers. Takes ownership of cfg's contents
 * (cfg is left zeroed), also on failure. load (may be NULL: no reload) is
 * called on SIGHUP. Returns NULL with the reason in err on failure; nothing
 * is then left listening.
 */
struct wssd *daemon_new_take(struct config *cfg, daemon_load_fn load, void *load_arg, char *err,
                             size_t errlen);

/*
 * Runs every check start-up runs, short of binding the listeners and
 * starting the loop: TLS certificate and key (readable, private, matching),
 * listen addresses that exist on this host, every controller section (known
 * name, its options, the files it loads: each enabled controller is started
 * on a scratch service and stopped again). Returns 0 if cfg will start, or a
 * negative enum wss_err with the reason in err.
 */
int daemon_check(const struct config *cfg, char *err, size_t errlen);

/*
 * Writes into each controller section of cfg the defaults of the options it
 * leaves out, from the controller's option table (opts_fill_defaults), so
 * that config_dump shows them. Sections of controllers without a table, or
 * not built in, are left as they are.
 */
void daemon_fill_defaults(struct config *cfg);

/* Serves until SIGTERM or SIGINT has been handled and the drain finished.
 * Returns the process exit code (0 after a clean shutdown). */
int daemon_run(struct wssd *d);

/* Frees the daemon. NULL is a no-op. */
void daemon_free(struct wssd *d);

#endif
