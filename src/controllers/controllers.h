/*
 * The compiled-in controller table (compare nginx's ngx_modules[]), made
 * from the CMake list WSSIGND_CONTROLLERS.
 */
#ifndef WSSIGND_CONTROLLERS_H
#define WSSIGND_CONTROLLERS_H

#include <stddef.h>

#include <wssignd/controller.h>

/* NULL-terminated list of every controller built into this binary. */
extern const struct wss_controller *const controllers_table[];

/* Returns the controller called name, or NULL (also for name NULL). */
const struct wss_controller *controllers_find(const char *name);

/*
 * Checks that ctl can be started by this daemon: built for
 * WSS_CONTROLLER_API_VERSION, with a name and an init, and both reload
 * hooks or neither. Returns 0, or WSS_ERR_CONFIG with the reason in err.
 */
int controllers_check(const struct wss_controller *ctl, char *err, size_t errlen);

#endif
