/*
 * Unit tests for the configuration files the project ships and for file
 * settings naming systemd credentials: config/wssignd.json (the default,
 * installed as wssignd.json: loopback only, no file needed),
 * config/wssignd.production.json (the example for a service with
 * LoadCredential=), and "credential:NAME" in tls.cert and tls.key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wssignd/controller.h>
#include <wssignd/errors.h>

#include "config.h"

#define ERR_BYTES 512
#define CREDS "/run/credentials/wssignd.service"

static const struct wss_opt_spec http_spec[] = {
    {.key = "token_file", .type = WSS_OPT_STRING},
    {.key = "max_body_bytes", .type = WSS_OPT_INTEGER},
    {.key = "auth_failures_burst", .type = WSS_OPT_INTEGER},
    {0},
};

/* Loads text through a temp file under /tmp. */
static int load_text(struct config *cfg, const char *text, char *err, size_t errlen)
{
    char path[64];
    size_t len = strlen(text);
    int fd, rc;

    snprintf(path, sizeof path, "/tmp/wssignd-test-shipped-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    rc = config_load(cfg, path, err, errlen);
    unlink(path);
    return rc;
}

/* The default starts as is: loopback listeners, no TLS, no token file. */
static void test_default_file(void **state)
{
    struct config cfg;
    const struct config_controller *c;
    char err[ERR_BYTES] = "";

    unsetenv("CREDENTIALS_DIRECTORY");
    config_init(&cfg);
    if (config_load(&cfg, WSSIGND_TEST_DATA_DIR "/../config/wssignd.json", err, sizeof err) != 0)
        fail_msg("config/wssignd.json: %s", err);
    if (config_check(&cfg, err, sizeof err) != 0)
        fail_msg("config/wssignd.json: %s", err);
    assert_string_equal(cfg.listen.host, "127.0.0.1");
    assert_int_equal(cfg.listen.port, 8080);
    assert_true(addr_host_is_loopback(cfg.listen.host));
    assert_string_equal(cfg.control.host, "127.0.0.1");
    assert_int_equal(cfg.control.port, 8081);
    assert_true(addr_host_is_loopback(cfg.control.host));
    assert_null(cfg.tls_cert);
    assert_null(cfg.tls_key);
    assert_false(cfg.insecure);
    c = config_controller(&cfg, "http_api");
    assert_non_null(c);
    assert_true(c->enabled);
    assert_null(wss_opts_string(c->opts, http_spec, "token_file"));
    config_cleanup(&cfg);
}

/* The production example: wss on every address, the key and the tokens
 * from LoadCredential=, the certificate from /etc. */
static void test_production_example(void **state)
{
    struct config cfg;
    const struct config_controller *c;
    char err[ERR_BYTES] = "";
    const char *path = WSSIGND_TEST_DATA_DIR "/../config/wssignd.production.json";

    setenv("CREDENTIALS_DIRECTORY", CREDS, 1);
    config_init(&cfg);
    if (config_load(&cfg, path, err, sizeof err) != 0)
        fail_msg("config/wssignd.production.json: %s", err);
    if (config_check(&cfg, err, sizeof err) != 0)
        fail_msg("config/wssignd.production.json: %s", err);
    assert_string_equal(cfg.listen.host, "0.0.0.0");
    assert_int_equal(cfg.listen.port, 8443);
    assert_false(cfg.insecure);
    assert_string_equal(cfg.tls_cert, "/etc/wssignd/tls.crt");
    assert_string_equal(cfg.tls_key, CREDS "/tls.key");
    assert_true(addr_host_is_loopback(cfg.control.host));
    assert_int_equal(cfg.n_server_names, 1);
    assert_string_equal(cfg.server_names[0], "signer.example.com");
    c = config_controller(&cfg, "http_api");
    assert_non_null(c);
    assert_true(c->enabled);
    /* the controller resolves its own file setting */
    assert_string_equal(wss_opts_string(c->opts, http_spec, "token_file"), "credential:tokens");
    assert_int_equal(wss_opts_check(c->opts, http_spec, err, sizeof err), 0);
    config_cleanup(&cfg);

    /* Outside the service the example says what is missing, naming the key. */
    unsetenv("CREDENTIALS_DIRECTORY");
    config_init(&cfg);
    assert_int_equal(config_load(&cfg, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "key 'tls.key'"));
    assert_non_null(strstr(err, "CREDENTIALS_DIRECTORY"));
    assert_non_null(strstr(err, "LoadCredential=tls.key:"));
    config_cleanup(&cfg);
}

/* tls.cert and tls.key resolve at load, so every later use sees the path opened. */
static void test_tls_credentials(void **state)
{
    struct config cfg;
    char err[ERR_BYTES] = "";

    setenv("CREDENTIALS_DIRECTORY", "/run/creds", 1);
    config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"tls\":{\"cert\":\"credential:cert.pem\","
                               "\"key\":\"credential:key.pem\"}}",
                               err, sizeof err),
                     0);
    assert_string_equal(cfg.tls_cert, "/run/creds/cert.pem");
    assert_string_equal(cfg.tls_key, "/run/creds/key.pem");
    config_cleanup(&cfg);

    /* a plain path is kept as written */
    config_init(&cfg);
    assert_int_equal(load_text(&cfg, "{\"tls\":{\"cert\":\"/etc/a.crt\",\"key\":\"credential:k\"}}",
                               err, sizeof err),
                     0);
    assert_string_equal(cfg.tls_cert, "/etc/a.crt");
    assert_string_equal(cfg.tls_key, "/run/creds/k");
    config_cleanup(&cfg);

    /* a name that is not a plain file name is refused, naming the key */
    config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"tls\":{\"cert\":\"credential:../etc/shadow\","
                               "\"key\":\"credential:k\"}}",
                               err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "key 'tls.cert'"));
    assert_non_null(strstr(err, "plain file name"));
    config_cleanup(&cfg);

    /* no credentials directory: refused, naming the key and the unit setting */
    unsetenv("CREDENTIALS_DIRECTORY");
    config_init(&cfg);
    assert_int_equal(load_text(&cfg, "{\"tls\":{\"cert\":\"/etc/a.crt\",\"key\":\"credential:k\"}}",
                               err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "key 'tls.key'"));
    assert_non_null(strstr(err, "LoadCredential=k:"));
    config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_file),
        cmocka_unit_test(test_production_example),
        cmocka_unit_test(test_tls_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
