/*
 * libFuzzer target for the config loader: each input is a whole config file,
 * written to a memfd that config_load() reads through /proc/self/fd/N (it
 * takes a path). Runs config_init/config_load/config_check/config_cleanup,
 * loads the file a second time over the result, and reads every controller
 * section the way a controller would. The same bytes are also parsed as a
 * --listen argument (addr_parse_listen). Checks that the verdict does not
 * depend on the error buffer's size, that error text is a bounded C string,
 * and that loading a good file twice gives the same settings as loading it
 * once.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <wssignd/controller.h>
#include <wssignd/errors.h>

#include "config.h"
#include "fuzz_check.h"

/* The memfd the inputs are written to, and the path config_load() opens. */
static int fd = -1;
static char path[64];

/* Options the http_api controller accepts (src/controllers/http_api.c). */
static const struct wss_opt_spec api_opts[] = {
    {.key = "token_file", .type = WSS_OPT_STRING},
    {.key = "max_body_bytes",
     .type = WSS_OPT_INTEGER,
     .min = 1024,
     .max = 16777216,
     .def.i = 65536},
    {.key = "auth_failures_burst", .type = WSS_OPT_INTEGER, .min = 1, .max = 100000, .def.i = 20},
    {.key = "enabled", .type = WSS_OPT_BOOLEAN},
    {0},
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fd = memfd_create("wssignd-fuzz-config", MFD_CLOEXEC);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    size_t off = 0;

    CHECK(ftruncate(fd, 0) == 0);
    while (off < size) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);

        CHECK(n > 0);
        off += (size_t)n;
    }
}

/* After a failure, err holds a non-empty NUL-terminated string within its buffer. */
static void check_err(const char *err, size_t errlen, bool failed)
{
    if (failed)
        CHECK(memchr(err, '\0', errlen) != NULL && err[0] != '\0');
}

/* Reads every section as a controller would; none of it may crash. */
static void read_controllers(const struct config *cfg)
{
    char err[256];

    for (size_t i = 0; i < cfg->n_controllers; i++) {
        const struct config_controller *c = &cfg->controllers[i];
        int rc;

        CHECK(c->name != NULL && c->opts != NULL);
        CHECK(config_controller(cfg, c->name) != NULL);
        err[0] = '\0';
        rc = wss_opts_check(c->opts, api_opts, err, sizeof err);
        CHECK(rc == 0 || rc == WSS_ERR_CONFIG);
        check_err(err, sizeof err, rc != 0);
        (void)wss_opts_string(c->opts, api_opts, "token_file");
        (void)wss_opts_int(c->opts, api_opts, "max_body_bytes");
        (void)wss_opts_int(c->opts, api_opts, "auth_failures_burst");
        (void)wss_opts_bool(c->opts, api_opts, "enabled");
        (void)wss_opts_has(c->opts, "enabled");
    }
}

/* The same bytes as a --listen or --control argument (an argv string ends at a NUL). */
static void parse_listen_arg(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), err[160];
    struct addr_listen l;
    int rc;

    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    memset(&l, 0xa5, sizeof l);
    rc = addr_parse_listen(s, &l, "listen", err, sizeof err);
    CHECK(rc == 0 || rc == WSS_ERR_CONFIG);
    if (rc == 0) {
        CHECK(memchr(l.host, '\0', sizeof l.host) != NULL);
        if (l.is_unix)
            CHECK(l.host[0] == '/' && strlen(l.host) <= ADDR_UNIX_PATH_MAX && l.port == 0);
        else
            CHECK(l.host[0] != '\0' && l.port >= 0 && l.port <= 65535);
        (void)addr_host_is_loopback(l.host);
    }
    check_err(err, sizeof err, rc != 0);
    (void)addr_host_is_loopback(s);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg, defaults, again;
    char err[512], small[8];
    int rc, rc2;

    write_input(data, size);
    config_init(&cfg);
    config_init(&defaults);

    memset(err, 0, sizeof err);
    rc = config_load(&cfg, path, err, sizeof err);
    CHECK(rc == 0 || rc == WSS_ERR_CONFIG || rc == WSS_ERR_IO);
    check_err(err, sizeof err, rc != 0);
    if (rc == 0)
        CHECK(cfg.path != NULL && strcmp(cfg.path, path) == 0);

    /* The same file with a tiny error buffer: same verdict, text cut to fit. */
    config_init(&again);
    memset(small, 'x', sizeof small);
    rc2 = config_load(&again, path, small, sizeof small);
    CHECK(rc2 == rc);
    check_err(small, sizeof small, rc2 != 0);
    config_cleanup(&again);

    memset(err, 0, sizeof err);
    rc2 = config_check(&cfg, err, sizeof err);
    CHECK(rc2 == 0 || rc2 == WSS_ERR_CONFIG);
    check_err(err, sizeof err, rc2 != 0);
    read_controllers(&cfg);

    if (rc == 0) {
        /* Loading the same file over its own result changes nothing a reload checks. */
        config_init(&again);
        CHECK(config_load(&again, path, err, sizeof err) == 0);
        CHECK(config_load(&again, path, err, sizeof err) == 0);
        CHECK(config_restart_key(&cfg, &again) == NULL);
        CHECK(again.n_server_names == cfg.n_server_names);
        CHECK(again.max_message_bytes == cfg.max_message_bytes);
        config_cleanup(&again);
        (void)config_restart_key(&cfg, &defaults);
    }

    config_cleanup(&defaults);
    config_cleanup(&cfg);
    parse_listen_arg(data, size);
    return 0;
}
