/*
 * The compiled-in controller table (compare nginx's ngx_modules[]).
 */
#ifndef WSSIGND_CONTROLLERS_H
#define WSSIGND_CONTROLLERS_H

#include <wssignd/controller.h>

/* NULL-terminated list of every controller built into this binary. */
extern const struct wss_controller *const controllers_table[];

/* Returns the controller called name, or NULL. */
const struct wss_controller *controllers_find(const char *name);

#endif
