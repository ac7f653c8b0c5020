/*
 * Unit tests for the compiled-in controller table (generated from the CMake
 * list WSSIGND_CONTROLLERS) and the checks a controller passes before the
 * daemon starts it: the API version above all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "controllers/controllers.h"

static int init_ok(struct wss_service *svc, const struct wss_opts *opts, void **state, char *err,
                   size_t errlen)
{
    return 0;
}

static int prepare_ok(void *state, const struct wss_opts *opts, void **next, char *err,
                      size_t errlen)
{
    return 0;
}

static void test_table(void **state)
{
    char names[512] = "";
    size_t n;

    assert_null(controllers_find("nope"));
    assert_null(controllers_find(NULL));
    for (n = 0; controllers_table[n]; n++) {
        char err[256] = "";

        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", n ? "," : "",
                 controllers_table[n]->name);

        /* Every compiled-in controller passes its own checks. */
        if (controllers_check(controllers_table[n], err, sizeof err) != 0)
            fail_msg("%s: %s", controllers_table[n]->name, err);
        assert_ptr_equal(controllers_find(controllers_table[n]->name), controllers_table[n]);
    }
    /* The table is the CMake list WSSIGND_CONTROLLERS, in its order (commas for semicolons). */
    assert_string_equal(names, WSSIGND_CONTROLLERS_LIST);
}

static void test_version_refused(void **state)
{
    struct wss_controller old = {
        .api_version = WSS_CONTROLLER_API_VERSION - 1, .name = "old", .init = init_ok};
    struct wss_controller unset = {.name = "unset", .init = init_ok};
    char err[256] = "";

    assert_int_equal(controllers_check(&old, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "controller old was built for controller API version 3"));
    assert_non_null(strstr(err, "this wssignd speaks version 4"));
    /* A controller written before the field existed reads as version 0. */
    assert_int_equal(controllers_check(&unset, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "API version 0"));
    old.api_version = WSS_CONTROLLER_API_VERSION + 1;
    assert_int_equal(controllers_check(&old, err, sizeof err), WSS_ERR_CONFIG);
    old.api_version = WSS_CONTROLLER_API_VERSION;
    assert_int_equal(controllers_check(&old, err, sizeof err), 0);
}

static void test_incomplete_refused(void **state)
{
    struct wss_controller c = {.api_version = WSS_CONTROLLER_API_VERSION, .name = "c"};
    char err[256] = "";

    assert_int_equal(controllers_check(&c, err, sizeof err), WSS_ERR_CONFIG);
    assert_string_equal(err, "controller c has no init");
    c.init = init_ok;
    c.reload_prepare = prepare_ok;
    assert_int_equal(controllers_check(&c, err, sizeof err), WSS_ERR_CONFIG);
    assert_string_equal(err, "controller c has only one of reload_prepare and reload_commit");
    c.name = NULL;
    c.reload_prepare = NULL;
    assert_int_equal(controllers_check(&c, err, sizeof err), WSS_ERR_CONFIG);
    assert_string_equal(err, "controller (unnamed) has no name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_version_refused),
        cmocka_unit_test(test_incomplete_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
