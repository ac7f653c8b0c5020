/*
 * The table of compiled-in controllers, generated from the CMake list
 * WSSIGND_CONTROLLERS (controllers_list.h), and the checks a controller
 * passes before the daemon starts it. Adding a controller means writing its
 * files under src/controllers/ and naming it in that list.
 */
#include "controllers.h"

#include <stdio.h>
#include <string.h>

#define WSS_CONTROLLER(name) extern const struct wss_controller name##_controller;
#include "controllers_list.h"
#undef WSS_CONTROLLER

const struct wss_controller *const controllers_table[] = {
#define WSS_CONTROLLER(name) &name##_controller,
#include "controllers_list.h"
#undef WSS_CONTROLLER
    NULL,
};

const struct wss_controller *controllers_find(const char *name)
{
    for (size_t i = 0; name && controllers_table[i]; i++)
        if (!strcmp(controllers_table[i]->name, name))
            return controllers_table[i];
    return NULL;
}

int controllers_check(const struct wss_controller *ctl, char *err, size_t errlen)
{
    const char *name = ctl->name ? ctl->name : "(unnamed)";

    if (ctl->api_version != WSS_CONTROLLER_API_VERSION) {
        snprintf(err, errlen,
                 "controller %s was built for controller API version %d, but this wssignd "
                 "speaks version %d: rebuild it against this wssignd's include/wssignd/",
                 name, ctl->api_version, WSS_CONTROLLER_API_VERSION);
        return WSS_ERR_CONFIG;
    }
    if (!ctl->name || !ctl->init) {
        snprintf(err, errlen, "controller %s has no %s", name, ctl->name ? "init" : "name");
        return WSS_ERR_CONFIG;
    }
    if (!ctl->reload_prepare != !ctl->reload_commit) {
        snprintf(err, errlen, "controller %s has only one of reload_prepare and reload_commit",
                 name);
        return WSS_ERR_CONFIG;
    }
    return 0;
}
