/*
 * The table of compiled-in controllers. Adding one means writing its file
 * under src/controllers/ and listing its struct here.
 */
#include "controllers.h"

#include <string.h>

extern const struct wss_controller http_api_controller;
extern const struct wss_controller example_controller;

const struct wss_controller *const controllers_table[] = {
    &http_api_controller,
    &example_controller,
    NULL,
};

const struct wss_controller *controllers_find(const char *name)
{
    for (size_t i = 0; controllers_table[i]; i++)
        if (!strcmp(controllers_table[i]->name, name))
            return controllers_table[i];
    return NULL;
}
