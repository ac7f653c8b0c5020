/*
 * The daemon: owns the event loop, the lws layer, the signing service and
 * the enabled controllers, and orders their start-up and shutdown.
 */
#ifndef WSSIGND_DAEMON_H
#define WSSIGND_DAEMON_H

#include <stddef.h>

#include "config.h"

struct wssd;

/*
 * Starts everything cfg describes: the loop, both listeners (bound when this
 * returns) and the enabled controllers. cfg is borrowed and must outlive the
 * daemon. Returns NULL with the reason in err on failure (nothing is left
 * listening).
 */
struct wssd *daemon_new(const struct config *cfg, char *err, size_t errlen);

/* Serves until SIGTERM or SIGINT has been handled and the drain finished.
 * Returns the process exit code (0 after a clean shutdown). */
int daemon_run(struct wssd *d);

/* Frees the daemon. NULL is a no-op. */
void daemon_free(struct wssd *d);

#endif
