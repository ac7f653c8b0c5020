/*
 * Unit tests for config.c: defaults, the strict file reader (every key, and
 * the errors for unknown keys, wrong types, ranges, duplicates and syntax),
 * listen parsing, loopback detection, cross-field checks, controller
 * sections and the wss_opts accessors. Temp files go under /tmp.
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

#include <wssignd/errors.h>
#include <wssignd/opts.h>

#include "config.h"
#include "log.h"

#define ERR_BYTES 512

/* A section's string, integer or boolean value of key (NULL, 0 or false when absent),
 * read through a one-entry option table. */
static const char *opt_str(const struct wss_opts *o, const char *key)
{
    const struct wss_opt_spec spec[] = {{.key = key, .type = WSS_OPT_STRING}, {0}};

    return wss_opts_string(o, spec, key);
}

static long long opt_int(const struct wss_opts *o, const char *key)
{
    const struct wss_opt_spec spec[] = {{.key = key, .type = WSS_OPT_INTEGER}, {0}};

    return wss_opts_int(o, spec, key);
}

/* Writes text to a new file under /tmp; path receives its name. */
static void write_tmp(char path[64], const char *text)
{
    size_t len = strlen(text);
    int fd;

    snprintf(path, 64, "/tmp/wssignd-test-config-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* Loads text over cfg through a temp file; path receives the name used. */
static int load_text(struct config *cfg, const char *text, char path[64], char *err, size_t errlen)
{
    int rc;

    write_tmp(path, text);
    rc = config_load(cfg, path, err, errlen);
    unlink(path);
    return rc;
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    struct config cfg;
    const struct config_controller *c;
    char err[ERR_BYTES] = "";

    assert_int_equal(config_init(&cfg), 0);
    assert_null(cfg.path);
    assert_string_equal(cfg.listen.host, "127.0.0.1");
    assert_int_equal(cfg.listen.port, 8080);
    assert_int_equal(cfg.n_server_names, 3);
    assert_string_equal(cfg.server_names[0], "localhost");
    assert_string_equal(cfg.server_names[1], "127.0.0.1");
    assert_string_equal(cfg.server_names[2], "::1");
    assert_false(cfg.insecure);
    assert_null(cfg.tls_cert);
    assert_null(cfg.tls_key);
    assert_string_equal(cfg.control.host, "127.0.0.1");
    assert_int_equal(cfg.control.port, 8081);
    assert_true(cfg.proof_required);
    assert_false(cfg.proof_none);
    assert_string_equal(cfg.listen_path, "/v1/ws");
    assert_null(cfg.control_tls_cert);
    assert_null(cfg.control_tls_key);
    assert_int_equal(cfg.intro_timeout_ms, 10000);
    assert_int_equal(cfg.default_timeout_ms, 60000);
    assert_int_equal(cfg.max_message_bytes, 32768);
    assert_int_equal(cfg.max_pending, 100000);
    assert_int_equal(cfg.max_pending_per_key, 1024);
    assert_int_equal(cfg.max_frame_bytes, 65536);
    assert_int_equal(cfg.log_level, WSS_LOG_INFO);
    assert_int_equal(cfg.n_controllers, 1);
    c = config_controller(&cfg, "http_api");
    assert_non_null(c);
    assert_true(c->enabled);
    assert_non_null(c->opts);
    assert_null(opt_str(c->opts, "token_file"));
    assert_null(config_controller(&cfg, "nope"));
    assert_null(config_controller(&cfg, NULL));

    /* The defaults pass the cross-field checks. */
    assert_int_equal(config_check(&cfg, err, sizeof err), 0);

    config_cleanup(&cfg);
    assert_null(cfg.server_names);
    assert_null(cfg.controllers);
    assert_int_equal(cfg.n_controllers, 0);
    /* Cleaning twice (and NULL) is harmless. */
    config_cleanup(&cfg);
    config_cleanup(NULL);
}

/* ---- a file with every key ---- */

static const char full_json[] =
    "{\n"
    "  \"listen\": \"[::]:9443\",\n"
    "  \"server_names\": [\"signer.example.com\", \"10.1.2.3\"],\n"
    "  \"insecure\": true,\n"
    "  \"tls\": {\"cert\": \"/etc/x/cert.pem\", \"key\": \"/etc/x/key.pem\"},\n"
    "  \"control\": {\"listen\": \"127.0.0.1:9081\"},\n"
    "  \"introduction\": {\"proof\": \"optional\", \"timeout_ms\": 5000},\n"
    "  \"requests\": {\"default_timeout_ms\": 30000, \"max_message_bytes\": 4096,\n"
    "               \"max_pending\": 500, \"max_pending_per_key\": 16},\n"
    "  \"limits\": {\"max_frame_bytes\": 131072},\n"
    "  \"log_level\": \"debug\",\n"
    "  \"controllers\": {\"http_api\": {\"enabled\": false, \"token_file\": \"/t\"},\n"
    "                  \"extra\": {\"n\": 3}}\n"
    "}\n";

static void test_full_file(void **state)
{
    struct config cfg;
    const struct config_controller *c;
    char err[ERR_BYTES] = "", path[64];

    config_init(&cfg);
    assert_int_equal(load_text(&cfg, full_json, path, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.path, path);
    assert_string_equal(cfg.listen.host, "::");
    assert_int_equal(cfg.listen.port, 9443);
    assert_int_equal(cfg.n_server_names, 2);
    assert_string_equal(cfg.server_names[0], "signer.example.com");
    assert_string_equal(cfg.server_names[1], "10.1.2.3");
    assert_true(cfg.insecure);
    assert_string_equal(cfg.tls_cert, "/etc/x/cert.pem");
    assert_string_equal(cfg.tls_key, "/etc/x/key.pem");
    assert_string_equal(cfg.control.host, "127.0.0.1");
    assert_int_equal(cfg.control.port, 9081);
    assert_false(cfg.proof_required);
    assert_int_equal(cfg.intro_timeout_ms, 5000);
    assert_int_equal(cfg.default_timeout_ms, 30000);
    assert_int_equal(cfg.max_message_bytes, 4096);
    assert_int_equal(cfg.max_pending, 500);
    assert_int_equal(cfg.max_pending_per_key, 16);
    assert_int_equal(cfg.max_frame_bytes, 131072);
    assert_int_equal(cfg.log_level, WSS_LOG_DEBUG);

    assert_int_equal(cfg.n_controllers, 2);
    c = config_controller(&cfg, "http_api");
    assert_non_null(c);
    assert_false(c->enabled);
    assert_string_equal(opt_str(c->opts, "token_file"), "/t");
    /* "enabled" is consumed by config.c and not passed on to the controller. */
    assert_false(wss_opts_has(c->opts, "enabled"));
    c = config_controller(&cfg, "extra");
    assert_non_null(c);
    assert_true(c->enabled);
    assert_int_equal(opt_int(c->opts, "n"), 3);

    assert_int_equal(config_check(&cfg, err, sizeof err), 0);
    config_cleanup(&cfg);
}

/* Range ends are inclusive. */
static void test_range_bounds(void **state)
{
    struct config cfg;
    char err[ERR_BYTES] = "", path[64];

    config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"introduction\": {\"timeout_ms\": 100},"
                               " \"requests\": {\"default_timeout_ms\": 1,"
                               "  \"max_message_bytes\": 1,"
                               "  \"max_pending\": 1, \"max_pending_per_key\": 1},"
                               " \"limits\": {\"max_frame_bytes\": 1024}}",
                               path, err, sizeof err),
                     0);
    assert_int_equal(cfg.intro_timeout_ms, 100);
    assert_int_equal(cfg.default_timeout_ms, 1);
    assert_int_equal(cfg.max_message_bytes, 1);
    assert_int_equal(cfg.max_pending, 1);
    assert_int_equal(cfg.max_pending_per_key, 1);
    assert_int_equal(cfg.max_frame_bytes, 1024);
    assert_int_equal(config_check(&cfg, err, sizeof err), 0);

    assert_int_equal(load_text(&cfg,
                               "{\"introduction\": {\"timeout_ms\": 600000},"
                               " \"requests\": {\"default_timeout_ms\": 60000,"
                               "  \"max_message_bytes\": 1048576, \"max_pending\": 9000000000},"
                               " \"limits\": {\"max_frame_bytes\": 16777216}}",
                               path, err, sizeof err),
                     0);
    assert_int_equal(cfg.intro_timeout_ms, 600000);
    assert_int_equal(cfg.default_timeout_ms, 60000);
    assert_int_equal(cfg.max_message_bytes, 1048576);
    assert_true(cfg.max_pending == 9000000000ULL);
    assert_int_equal(cfg.max_frame_bytes, 16777216);
    /* Keys absent from the second file keep the first file's values. */
    assert_int_equal(cfg.max_pending_per_key, 1);
    assert_int_equal(config_check(&cfg, err, sizeof err), 0);
    config_cleanup(&cfg);
}

static void test_server_name_length(void **state)
{
    struct config cfg;
    char err[ERR_BYTES] = "", path[64];
    char name[260], json[400];

    memset(name, 'a', sizeof name);
    name[253] = '\0';
    snprintf(json, sizeof json, "{\"server_names\": [\"%s\"]}", name);
    config_init(&cfg);
    assert_int_equal(load_text(&cfg, json, path, err, sizeof err), 0);
    assert_int_equal(cfg.n_server_names, 1);
    assert_int_equal(strlen(cfg.server_names[0]), 253);

    name[253] = 'a';
    name[254] = '\0';
    snprintf(json, sizeof json, "{\"server_names\": [\"%s\"]}", name);
    assert_int_equal(load_text(&cfg, json, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "key 'server_names' item 0 must be 1 to 253"));
    config_cleanup(&cfg);
}

/* ---- files that must be refused ---- */

/* Per case: a file and what its error must contain; line > 0 also requires "PATH:line:". */
struct bad_case {
    const char *json;
    const char *expect;
    int line;
};

static const struct bad_case bad_cases[] = {
    /* unknown keys */
    {"{\"lisen\": \"127.0.0.1:80\"}", "unknown key 'lisen'", 0},
    {"{\"requests\": {\"max_pendng\": 1}}", "unknown key 'requests.max_pendng'", 0},
    {"{\"tls\": {\"cert\": \"/a\", \"crt\": \"/b\"}}", "unknown key 'tls.crt'", 0},
    {"{\"control\": {\"port\": 1}}", "unknown key 'control.port'", 0},
    {"{\"introduction\": {\"proofs\": \"required\"}}", "unknown key 'introduction.proofs'", 0},
    {"{\"limits\": {\"max_frame\": 2048}}", "unknown key 'limits.max_frame'", 0},
    {"{\"controls\": {}}", "unknown key 'controls'", 0},
    {"{\"Listen\": \"127.0.0.1:80\"}", "unknown key 'Listen'", 0},
    /* A valid key before the bad one: the whole file is still refused. */
    {"{\"listen\": \"0.0.0.0:9000\", \"nope\": 1}", "unknown key 'nope'", 0},
    /* wrong types */
    {"{\"listen\": 8080}", "key 'listen' must be a string", 0},
    {"{\"insecure\": \"yes\"}", "key 'insecure' must be a boolean", 0},
    {"{\"insecure\": 1}", "key 'insecure' must be a boolean", 0},
    {"{\"tls\": \"x\"}", "key 'tls' must be an object", 0},
    {"{\"tls\": null}", "key 'tls' must be an object", 0},
    {"{\"tls\": {\"cert\": 1}}", "key 'tls.cert' must be a string", 0},
    {"{\"tls\": {\"key\": \"\"}}", "key 'tls.key' must not be empty", 0},
    {"{\"control\": []}", "key 'control' must be an object", 0},
    {"{\"control\": {\"listen\": 8081}}", "key 'control.listen' must be a string", 0},
    {"{\"introduction\": {\"timeout_ms\": \"100\"}}",
     "key 'introduction.timeout_ms' must be an integer", 0},
    {"{\"introduction\": {\"timeout_ms\": 1000.0}}",
     "key 'introduction.timeout_ms' must be an integer", 0},
    {"{\"introduction\": {\"proof\": true}}", "key 'introduction.proof' must be a string", 0},
    {"{\"requests\": {\"max_pending\": true}}", "key 'requests.max_pending' must be an integer", 0},
    {"{\"limits\": {\"max_frame_bytes\": null}}", "key 'limits.max_frame_bytes' must be an integer",
     0},
    {"{\"log_level\": 3}", "key 'log_level' must be a string", 0},
    {"{\"requests\": 5}", "key 'requests' must be an object", 0},
    {"{\"server_names\": \"localhost\"}", "key 'server_names' must be an array", 0},
    {"{\"server_names\": [1]}", "key 'server_names' item 0 must be a string", 0},
    /* bad values and ranges */
    {"{\"introduction\": {\"timeout_ms\": 99}}",
     "key 'introduction.timeout_ms' must be between 100 and 600000", 0},
    {"{\"introduction\": {\"timeout_ms\": 600001}}",
     "key 'introduction.timeout_ms' must be between 100 and 600000", 0},
    {"{\"introduction\": {\"proof\": \"maybe\"}}",
     "key 'introduction.proof' must be \"required\", \"optional\" or \"none\"", 0},
    {"{\"introduction\": {\"proof\": \"None\"}}", "key 'introduction.proof' must be", 0},
    /* listen_path */
    {"{\"listen_path\": \"v1/ws\"}", "key 'listen_path' must start with '/'", 0},
    {"{\"listen_path\": \"\"}", "key 'listen_path' must be 1 to 128 characters long", 0},
    {"{\"listen_path\": 7}", "key 'listen_path' must be a string", 0},
    {"{\"listen_path\": \"/a b\"}", "key 'listen_path' has a character outside", 0},
    {"{\"listen_path\": \"/ws?x=1\"}", "key 'listen_path' has a character outside", 0},
    {"{\"listen_path\": \"/ws%20\"}", "key 'listen_path' has a character outside", 0},
    {"{\"listen_path\": \"/a//b\"}", "key 'listen_path' must not contain an empty segment", 0},
    {"{\"listen_path\": \"/a/../b\"}", "key 'listen_path' must not contain a '.' or '..'", 0},
    {"{\"listen_path\": \"/a/.\"}", "key 'listen_path' must not contain a '.' or '..'", 0},
    {"{\"listen_path\": \"/..\"}", "key 'listen_path' must not contain a '.' or '..'", 0},
    {"{\"listen_path\": \"/"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
     "key 'listen_path' must be 1 to 128 characters long", 0},
    /* control.tls */
    {"{\"control\": {\"tls\": true}}", "key 'control.tls' must be an object", 0},
    {"{\"control\": {\"tls\": {\"crt\": \"/c\"}}}", "unknown key 'control.tls.crt'", 0},
    {"{\"control\": {\"tls\": {\"cert\": \"\"}}}", "key 'control.tls.cert' must not be empty", 0},
    {"{\"control\": {\"tls\": {\"key\": 1}}}", "key 'control.tls.key' must be a string", 0},
    {"{\"requests\": {\"default_timeout_ms\": 0}}",
     "key 'requests.default_timeout_ms' must be between 1 and 60000", 0},
    {"{\"requests\": {\"default_timeout_ms\": 60001}}",
     "key 'requests.default_timeout_ms' must be between 1 and 60000", 0},
    {"{\"requests\": {\"max_message_bytes\": 0}}",
     "key 'requests.max_message_bytes' must be between 1 and 1048576", 0},
    {"{\"requests\": {\"max_message_bytes\": 1048577}}",
     "key 'requests.max_message_bytes' must be between 1 and 1048576", 0},
    {"{\"requests\": {\"max_pending\": 0}}", "key 'requests.max_pending' must be at least 1", 0},
    {"{\"requests\": {\"max_pending_per_key\": -5}}",
     "key 'requests.max_pending_per_key' must be at least 1", 0},
    {"{\"limits\": {\"max_frame_bytes\": 1023}}",
     "key 'limits.max_frame_bytes' must be between 1024 and 16777216", 0},
    {"{\"limits\": {\"max_frame_bytes\": 16777217}}",
     "key 'limits.max_frame_bytes' must be between 1024 and 16777216", 0},
    {"{\"log_level\": \"verbose\"}",
     "key 'log_level' must be one of err, warn, notice, info, debug", 0},
    {"{\"log_level\": \"INFO\"}", "key 'log_level' must be one of", 0},
    {"{\"server_names\": []}", "key 'server_names' must not be empty", 0},
    {"{\"server_names\": [\"Signer.example.com\"]}", "key 'server_names' item 0 must be lowercase",
     0},
    {"{\"server_names\": [\"ok.example\", \"\"]}", "key 'server_names' item 1 must be 1 to 253", 0},
    {"{\"server_names\": [\"a b\"]}", "key 'server_names' item 0 has a character outside", 0},
    {"{\"server_names\": [\"a\\nb\"]}", "key 'server_names' item 0 has a character outside", 0},
    {"{\"listen\": \"abc\"}", "key 'listen' has an invalid address 'abc'", 0},
    {"{\"listen\": \"1.2.3.4:65536\"}", "key 'listen' has an invalid address", 0},
    {"{\"control\": {\"listen\": \"::1:80\"}}",
     "key 'control.listen' has an invalid address '::1:80': "
     "an IPv6 address must be in brackets",
     0},
    /* controllers */
    {"{\"controllers\": []}", "key 'controllers' must be an object", 0},
    {"{\"controllers\": {\"http_api\": true}}", "key 'controllers.http_api' must be an object", 0},
    {"{\"controllers\": {\"http_api\": {\"enabled\": \"no\"}}}",
     "key 'controllers.http_api.enabled' must be a boolean", 0},
    {"{\"controllers\": {\"Bad.Name\": {}}}", "key 'controllers.Bad.Name': controller names are",
     0},
    {"{\"controllers\": {\"\": {}}}", "controller names are", 0},
    /* the top level */
    {"[]", "the top level must be a JSON object", 0},
    /* duplicate keys (JSON_REJECT_DUPLICATES), reported with file:line:col */
    {"{\"listen\": \"127.0.0.1:1\",\n \"listen\": \"127.0.0.1:2\"}", "duplicate object key", 2},
    {"{\"requests\": {\n \"max_pending\": 1,\n \"max_pending\": 2}}", "duplicate object key", 3},
    {"{\"controllers\": {\"a\": {}, \"a\": {}}}", "duplicate object key", 1},
    /* syntax errors */
    {"{\"listen\": }", "", 1},
    {"{\"insecure\": true,}", "", 1},
    {"{\n\n  \"insecure\": tru\n}", "invalid token", 3},
    {"", "", 1},
    {"{} trailing", "end of file expected", 1},
    {"{\"tls\": {\"cert\": \"a\\u0000b\"}}", "", 1},
    {"{\"max\": 99999999999999999999999}", "too big integer", 1},
    {"{// comment\n}", "", 1},
};

static void test_bad_files(void **state)
{
    size_t n = sizeof bad_cases / sizeof bad_cases[0];

    assert_true(n >= 25);
    for (size_t i = 0; i < n; i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct config cfg;
        char err[ERR_BYTES] = "", path[64], prefix[96];
        int rc;

        config_init(&cfg);
        rc = load_text(&cfg, bc->json, path, err, sizeof err);
        if (rc != WSS_ERR_CONFIG)
            fail_msg("case %zu (%s): rc=%d err=%s", i, bc->json, rc, err);
        if (!strstr(err, bc->expect))
            fail_msg("case %zu (%s): err '%s' lacks '%s'", i, bc->json, err, bc->expect);
        if (bc->line > 0)
            snprintf(prefix, sizeof prefix, "%s:%d:", path, bc->line);
        else
            snprintf(prefix, sizeof prefix, "%s: ", path);
        if (strncmp(err, prefix, strlen(prefix)) != 0)
            fail_msg("case %zu (%s): err '%s' does not start with '%s'", i, bc->json, err, prefix);
        /* A refused file changes nothing. */
        assert_null(cfg.path);
        assert_string_equal(cfg.listen.host, "127.0.0.1");
        assert_int_equal(cfg.listen.port, 8080);
        assert_int_equal(cfg.n_server_names, 3);
        assert_int_equal(cfg.n_controllers, 1);
        assert_true(cfg.controllers[0].enabled);
        config_cleanup(&cfg);
    }
}

/* Keys from the file are shown printable and cut short in error text. */
static void test_error_text_sanitised(void **state)
{
    struct config cfg;
    char err[ERR_BYTES] = "", path[64], json[400], key[200];

    memset(key, 'k', sizeof key);
    key[sizeof key - 1] = '\0';
    snprintf(json, sizeof json, "{\"a\\nb\": 1, \"%s\": 2}", key);
    config_init(&cfg);
    assert_int_equal(load_text(&cfg, json, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "unknown key 'a?b'"));
    assert_null(strchr(err, '\n'));

    snprintf(json, sizeof json, "{\"%s\": 2}", key);
    assert_int_equal(load_text(&cfg, json, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "...'"));
    assert_true(strlen(err) < strlen(path) + 100);

    /* A tiny or absent buffer is not overrun. */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    assert_int_equal(load_text(&cfg, "{\"nope\": 1}", path, tiny, sizeof tiny), WSS_ERR_CONFIG);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    assert_int_equal(load_text(&cfg, "{\"nope\": 1}", path, NULL, 0), WSS_ERR_CONFIG);
    assert_int_equal(load_text(&cfg, "{", path, NULL, 0), WSS_ERR_CONFIG);
    config_cleanup(&cfg);
}

static void test_missing_and_unreadable(void **state)
{
    struct config cfg;
    char err[ERR_BYTES] = "";
    char dir[] = "/tmp/wssignd-test-config-dir-XXXXXX";

    config_init(&cfg);
    assert_int_equal(config_load(&cfg, "/nonexistent/wssignd.json", err, sizeof err), WSS_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/wssignd.json"));
    assert_non_null(strstr(err, "No such file or directory"));

    assert_non_null(mkdtemp(dir));
    assert_int_equal(config_load(&cfg, dir, err, sizeof err), WSS_ERR_IO);
    assert_non_null(strstr(err, dir));
    assert_non_null(strstr(err, "Is a directory"));
    rmdir(dir);

    assert_int_equal(config_load(&cfg, "", err, sizeof err), WSS_ERR_CONFIG);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof err), WSS_ERR_CONFIG);

    /* Defaults survive. */
    assert_null(cfg.path);
    assert_int_equal(cfg.listen.port, 8080);
    config_cleanup(&cfg);
}

/* ---- listen addresses ---- */

/* Per case: an address and the parse result (host NULL: refused). */
struct listen_case {
    const char *in;
    const char *host;
    int port;
};

static const struct listen_case listen_cases[] = {
    {"127.0.0.1:8080", "127.0.0.1", 8080},
    {"0.0.0.0:1", "0.0.0.0", 1},
    {"10.20.30.40:65535", "10.20.30.40", 65535},
    {"[::1]:443", "::1", 443},
    {"[::]:8443", "::", 8443},
    {"[2001:db8::1]:80", "2001:db8::1", 80},
    {"[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80},
    {"localhost:9000", "localhost", 9000},
    {"signer.example.com:8443", "signer.example.com", 8443},
    {"lo:8081", "lo", 8081},
    {"abc", NULL, 0},
    {":80", NULL, 0},
    {"1.2.3.4:99999", NULL, 0},
    {"1.2.3.4:65536", NULL, 0},
    {"1.2.3.4:123456", NULL, 0},
    {"::1:80", NULL, 0},
    {"::1", NULL, 0},
    {"", NULL, 0},
    {"1.2.3.4:", NULL, 0},
    {"1.2.3.4:80x", NULL, 0},
    {"1.2.3.4:-1", NULL, 0},
    {"1.2.3.4:+80", NULL, 0},
    {"1.2.3.4: 80", NULL, 0},
    {" 1.2.3.4:80", NULL, 0},
    {"[::1]80", NULL, 0},
    {"[::1]:", NULL, 0},
    {"[::1:80", NULL, 0},
    {"[]:80", NULL, 0},
    {"[1.2.3.4]:80", NULL, 0},
    {"[fe80::1%eth0]:80", NULL, 0},
    {"1.2.3:80", NULL, 0},
    {"256.1.1.1:80", NULL, 0},
    {"host name:80", NULL, 0},
    {"unix:/run/wssignd/control.sock", "/run/wssignd/control.sock", 0},
    {"unix:relative/path", NULL, 0},
    {"unix:", NULL, 0},
    {"unix:/run/has space", NULL, 0},
    {"host/x:80", NULL, 0},
};

static void test_parse_listen(void **state)
{
    for (size_t i = 0; i < sizeof listen_cases / sizeof listen_cases[0]; i++) {
        const struct listen_case *lc = &listen_cases[i];
        struct addr_listen out = {"untouched", 7, false};
        char err[ERR_BYTES] = "";
        int rc = addr_parse_listen(lc->in, &out, "listen", err, sizeof err);

        if (lc->host) {
            if (rc != 0)
                fail_msg("'%s' refused: %s", lc->in, err);
            assert_string_equal(out.host, lc->host);
            assert_int_equal(out.port, lc->port);
            assert_int_equal(out.is_unix, lc->port == 0);
        } else {
            if (rc != WSS_ERR_CONFIG)
                fail_msg("'%s' accepted as %s port %d", lc->in, out.host, out.port);
            assert_non_null(strstr(err, "listen: invalid address"));
            /* The output is left alone on failure. */
            assert_string_equal(out.host, "untouched");
            assert_int_equal(out.port, 7);
        }
    }
}

static void test_parse_listen_lengths(void **state)
{
    struct addr_listen out;
    char err[ERR_BYTES];
    char s[ADDR_STR_MAX];

    memset(s, 'h', ADDR_HOST_MAX);
    snprintf(s + ADDR_HOST_MAX, sizeof s - ADDR_HOST_MAX, ":80");
    assert_int_equal(addr_parse_listen(s, &out, "listen", err, sizeof err), 0);
    assert_int_equal(strlen(out.host), ADDR_HOST_MAX);
    assert_int_equal(out.port, 80);

    memset(s, 'h', ADDR_HOST_MAX + 1);
    snprintf(s + ADDR_HOST_MAX + 1, sizeof s - ADDR_HOST_MAX - 1, ":80");
    assert_int_equal(addr_parse_listen(s, &out, "listen", err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "too long"));
    /* The address is echoed cut short. */
    assert_non_null(strstr(err, "hhh...'"));

    assert_int_equal(addr_parse_listen(NULL, &out, "listen", err, sizeof err), WSS_ERR_CONFIG);
    assert_int_equal(addr_parse_listen("x", &out, "listen", NULL, 0), WSS_ERR_CONFIG);
}

/* ---- loopback ---- */

/* Per case: a host and whether it is loopback. */
struct loopback_case {
    const char *host;
    bool loopback;
};

static const struct loopback_case loopback_cases[] = {
    {"127.0.0.1", true},
    {"127.0.0.2", true},
    {"127.255.255.254", true},
    {"127.1.2.3", true},
    {"localhost", true},
    {"LocalHost", true},
    {"::1", true},
    {"[::1]", true},
    {"0:0:0:0:0:0:0:1", true},
    {"::ffff:127.0.0.1", true},
    {"128.0.0.1", false},
    {"126.255.255.255", false},
    {"0.0.0.0", false},
    {"::", false},
    {"::2", false},
    {"10.0.0.1", false},
    {"1.127.0.0", false},
    {"127.0.0", false},
    {"127.0.0.1.example.com", false},
    {"localhost.example.com", false},
    {"localhost:80", false},
    {"::ffff:10.0.0.1", false},
    {"signer.example.com", false},
    {"", false},
    {NULL, false},
};

static void test_loopback(void **state)
{
    for (size_t i = 0; i < sizeof loopback_cases / sizeof loopback_cases[0]; i++) {
        const struct loopback_case *lc = &loopback_cases[i];

        if (addr_host_is_loopback(lc->host) != lc->loopback)
            fail_msg("'%s' should%s be loopback", lc->host ? lc->host : "(null)",
                     lc->loopback ? "" : " not");
    }
}

/* ---- cross-field checks ---- */

static void set_listen(struct addr_listen *l, const char *host, int port)
{
    snprintf(l->host, sizeof l->host, "%s", host);
    l->port = port;
}

static void set_tls(struct config *cfg, bool cert, bool key)
{
    if (cert)
        cfg->tls_cert = strdup("/c.pem");
    if (key)
        cfg->tls_key = strdup("/k.pem");
}

static void ck_none(struct config *c)
{
    (void)c;
}
static void ck_cert_only(struct config *c)
{
    set_tls(c, true, false);
}
static void ck_key_only(struct config *c)
{
    set_tls(c, false, true);
}
static void ck_both(struct config *c)
{
    set_tls(c, true, true);
}
static void ck_public_plain(struct config *c)
{
    set_listen(&c->listen, "0.0.0.0", 8080);
}
static void ck_public_v6_plain(struct config *c)
{
    set_listen(&c->listen, "::", 8080);
}
static void ck_public_host_plain(struct config *c)
{
    set_listen(&c->listen, "10.0.0.5", 8080);
}
static void ck_public_insecure(struct config *c)
{
    set_listen(&c->listen, "0.0.0.0", 8080);
    c->insecure = true;
}
static void ck_public_tls(struct config *c)
{
    set_listen(&c->listen, "0.0.0.0", 8443);
    set_tls(c, true, true);
}
static void ck_localhost_plain(struct config *c)
{
    set_listen(&c->listen, "localhost", 9000);
}
static void ck_v6_loopback_plain(struct config *c)
{
    set_listen(&c->listen, "::1", 9000);
}
static void ck_same(struct config *c)
{
    set_listen(&c->control, "127.0.0.1", 8080);
}
static void ck_same_v6(struct config *c)
{
    set_listen(&c->listen, "::1", 7000);
    set_listen(&c->control, "0:0::1", 7000);
}
static void ck_wildcard_clash(struct config *c)
{
    set_listen(&c->listen, "0.0.0.0", 8443);
    set_tls(c, true, true);
    set_listen(&c->control, "127.0.0.1", 8443);
}
static void ck_loopback_clash(struct config *c)
{
    set_listen(&c->control, "::1", 8080);
}
static void ck_different_hosts(struct config *c)
{
    set_listen(&c->listen, "10.0.0.1", 8443);
    set_tls(c, true, true);
    set_listen(&c->control, "127.0.0.1", 8443);
}
static void ck_other_port(struct config *c)
{
    set_listen(&c->control, "127.0.0.1", 9999);
}
static void ck_req_timeout_high(struct config *c)
{
    c->default_timeout_ms = 60001;
}
static void ck_req_timeout_zero(struct config *c)
{
    c->default_timeout_ms = 0;
}
static void ck_intro_low(struct config *c)
{
    c->intro_timeout_ms = 99;
}
static void ck_frame_low(struct config *c)
{
    c->max_frame_bytes = 1023;
}
static void ck_message_high(struct config *c)
{
    c->max_message_bytes = 1048577;
}
static void ck_pending_zero(struct config *c)
{
    c->max_pending = 0;
}
static void ck_per_key_zero(struct config *c)
{
    c->max_pending_per_key = 0;
}
static void ck_log_level(struct config *c)
{
    c->log_level = 7;
}
static void ck_no_names(struct config *c)
{
    c->n_server_names = 0;
}
static void ck_port_neg(struct config *c)
{
    c->control.port = -1;
}
static void ck_control_cert_only(struct config *c)
{
    c->control_tls_cert = strdup("/c.pem");
}
static void ck_control_key_only(struct config *c)
{
    c->control_tls_key = strdup("/k.pem");
}
static void ck_control_tls(struct config *c)
{
    ck_control_cert_only(c);
    ck_control_key_only(c);
}
static void ck_control_tls_unix(struct config *c)
{
    ck_control_tls(c);
    c->control.is_unix = true;
    snprintf(c->control.host, sizeof c->control.host, "/run/w.sock");
}
static void ck_listen_path_bad(struct config *c)
{
    free(c->listen_path);
    c->listen_path = strdup("ws");
}
/* Port 0 (any free port) on both listeners is no clash. */
static void ck_port_zero(struct config *c)
{
    c->control.port = 0;
    c->listen.port = 0;
}

/* Per case: a change to the defaults and the expected outcome. */
struct check_case {
    const char *name;
    void (*apply)(struct config *cfg);
    int rc;
    const char *expect;
};

static const struct check_case check_cases[] = {
    {"defaults", ck_none, 0, NULL},
    {"cert only", ck_cert_only, WSS_ERR_CONFIG, "tls.cert and tls.key must be set together"},
    {"key only", ck_key_only, WSS_ERR_CONFIG, "tls.cert and tls.key must be set together"},
    {"cert and key", ck_both, 0, NULL},
    {"public plain", ck_public_plain, WSS_ERR_CONFIG, "--insecure"},
    {"public v6 plain", ck_public_v6_plain, WSS_ERR_CONFIG, "set tls.cert and tls.key"},
    {"public host plain", ck_public_host_plain, WSS_ERR_CONFIG, "10.0.0.5:8080 is not a loopback"},
    {"public insecure", ck_public_insecure, 0, NULL},
    {"public tls", ck_public_tls, 0, NULL},
    {"localhost plain", ck_localhost_plain, 0, NULL},
    {"::1 plain", ck_v6_loopback_plain, 0, NULL},
    {"same listener", ck_same, WSS_ERR_CONFIG, "must not use the same address and port"},
    {"same v6 listener", ck_same_v6, WSS_ERR_CONFIG, "[::1]:7000"},
    {"wildcard clash", ck_wildcard_clash, WSS_ERR_CONFIG, "must not use the same"},
    {"loopback clash", ck_loopback_clash, WSS_ERR_CONFIG, "must not use the same"},
    {"different hosts", ck_different_hosts, 0, NULL},
    {"other port", ck_other_port, 0, NULL},
    {"request timeout high", ck_req_timeout_high, WSS_ERR_CONFIG, "requests.default_timeout_ms"},
    {"request timeout zero", ck_req_timeout_zero, WSS_ERR_CONFIG, "requests.default_timeout_ms"},
    {"intro timeout low", ck_intro_low, WSS_ERR_CONFIG, "introduction.timeout_ms"},
    {"frame low", ck_frame_low, WSS_ERR_CONFIG, "limits.max_frame_bytes"},
    {"message high", ck_message_high, WSS_ERR_CONFIG, "requests.max_message_bytes"},
    {"pending zero", ck_pending_zero, WSS_ERR_CONFIG, "requests.max_pending must be at least 1"},
    {"per key zero", ck_per_key_zero, WSS_ERR_CONFIG, "requests.max_pending_per_key"},
    {"log level", ck_log_level, WSS_ERR_CONFIG, "log_level"},
    {"no server names", ck_no_names, WSS_ERR_CONFIG, "server_names"},
    {"port negative", ck_port_neg, WSS_ERR_CONFIG, "control.listen"},
    {"port zero", ck_port_zero, 0, NULL},
    {"control cert only", ck_control_cert_only, WSS_ERR_CONFIG,
     "control.tls.cert and control.tls.key must be set together (only control.tls.cert"},
    {"control key only", ck_control_key_only, WSS_ERR_CONFIG, "(only control.tls.key is set)"},
    {"control tls", ck_control_tls, 0, NULL},
    {"control tls on a unix socket", ck_control_tls_unix, WSS_ERR_CONFIG,
     "control.tls needs a TCP control.listen"},
    {"listen_path without a slash", ck_listen_path_bad, WSS_ERR_CONFIG, "listen_path"},
};

static void test_check(void **state)
{
    for (size_t i = 0; i < sizeof check_cases / sizeof check_cases[0]; i++) {
        const struct check_case *cc = &check_cases[i];
        struct config cfg;
        char err[ERR_BYTES] = "";
        size_t names;
        int rc;

        config_init(&cfg);
        names = cfg.n_server_names;
        cc->apply(&cfg);
        rc = config_check(&cfg, err, sizeof err);
        if (rc != cc->rc)
            fail_msg("%s: rc=%d, want %d (%s)", cc->name, rc, cc->rc, err);
        if (cc->expect && !strstr(err, cc->expect))
            fail_msg("%s: err '%s' lacks '%s'", cc->name, err, cc->expect);
        cfg.n_server_names = names;
        config_cleanup(&cfg);
    }
}

/* ---- the signer path, proof "none", control.tls ---- */

static void test_transport_keys(void **state)
{
    static const char *const good_paths[] = {"/",      "/v1/ws", "/signer", "/a.b/c_d~e-f/",
                                             "/.well", "/a/..b"};
    struct config cfg;
    char err[ERR_BYTES] = "", path[64], text[256];

    for (size_t i = 0; i < sizeof good_paths / sizeof good_paths[0]; i++) {
        config_init(&cfg);
        snprintf(text, sizeof text, "{\"listen_path\": \"%s\"}", good_paths[i]);
        if (load_text(&cfg, text, path, err, sizeof err) != 0)
            fail_msg("%s refused: %s", good_paths[i], err);
        assert_string_equal(cfg.listen_path, good_paths[i]);
        assert_int_equal(config_check(&cfg, err, sizeof err), 0);
        config_cleanup(&cfg);
    }

    /* "none", then back: each value sets both flags. */
    config_init(&cfg);
    assert_int_equal(
        load_text(&cfg, "{\"introduction\": {\"proof\": \"none\"}}", path, err, sizeof err), 0);
    assert_true(cfg.proof_none);
    assert_false(cfg.proof_required);
    assert_int_equal(
        load_text(&cfg, "{\"introduction\": {\"proof\": \"required\"}}", path, err, sizeof err), 0);
    assert_false(cfg.proof_none);
    assert_true(cfg.proof_required);
    assert_int_equal(
        load_text(&cfg, "{\"introduction\": {\"proof\": \"optional\"}}", path, err, sizeof err), 0);
    assert_false(cfg.proof_none);
    assert_false(cfg.proof_required);
    config_cleanup(&cfg);

    config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"control\": {\"listen\": \"127.0.0.1:9443\", "
                               "\"tls\": {\"cert\": \"/e/c.pem\", \"key\": \"/e/k.pem\"}}}",
                               path, err, sizeof err),
                     0);
    assert_string_equal(cfg.control_tls_cert, "/e/c.pem");
    assert_string_equal(cfg.control_tls_key, "/e/k.pem");
    assert_null(cfg.tls_cert);
    assert_int_equal(config_check(&cfg, err, sizeof err), 0);
    {
        struct config plain;

        /* Turning control TLS on or off needs a restart; the signer path does not. */
        config_init(&plain);
        plain.control = cfg.control;
        assert_string_equal(config_restart_key(&plain, &cfg), "control.tls");
        assert_string_equal(config_restart_key(&cfg, &plain), "control.tls");
        free(plain.listen_path);
        plain.listen_path = strdup("/other");
        plain.control_tls_cert = strdup("/x.pem");
        plain.control_tls_key = strdup("/y.pem");
        assert_null(config_restart_key(&cfg, &plain));
        config_cleanup(&plain);
    }
    config_cleanup(&cfg);
}

/* ---- controllers ---- */

static void test_controllers_merge(void **state)
{
    struct config cfg;
    const struct config_controller *c;
    char err[ERR_BYTES] = "", path[64];

    config_init(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"controllers\": {"
                               " \"http_api\": {\"token_file\": \"/x\", \"max_body\": 10},"
                               " \"audit\": {\"enabled\": false, \"path\": \"/y\"},"
                               " \"third\": {}}}",
                               path, err, sizeof err),
                     0);
    assert_int_equal(cfg.n_controllers, 3);
    /* Entries keep their order: defaults first, then new names in file order. */
    assert_string_equal(cfg.controllers[0].name, "http_api");
    assert_string_equal(cfg.controllers[1].name, "audit");
    assert_string_equal(cfg.controllers[2].name, "third");
    c = config_controller(&cfg, "http_api");
    assert_true(c->enabled); /* named without "enabled": enabled */
    assert_string_equal(opt_str(c->opts, "token_file"), "/x");
    assert_int_equal(opt_int(c->opts, "max_body"), 10);
    c = config_controller(&cfg, "audit");
    assert_false(c->enabled);
    assert_string_equal(opt_str(c->opts, "path"), "/y");
    assert_false(wss_opts_has(c->opts, "enabled"));
    c = config_controller(&cfg, "third");
    assert_true(c->enabled);

    /* A second file replaces the sections it names and keeps the others. */
    assert_int_equal(load_text(&cfg,
                               "{\"controllers\": {\"http_api\": {\"enabled\": false},"
                               " \"audit\": {\"enabled\": true}}}",
                               path, err, sizeof err),
                     0);
    assert_int_equal(cfg.n_controllers, 3);
    c = config_controller(&cfg, "http_api");
    assert_false(c->enabled);
    assert_null(opt_str(c->opts, "token_file"));
    c = config_controller(&cfg, "audit");
    assert_true(c->enabled);
    assert_null(opt_str(c->opts, "path"));
    assert_non_null(config_controller(&cfg, "third"));

    /* An empty "controllers" object changes nothing. */
    assert_int_equal(load_text(&cfg, "{\"controllers\": {}}", path, err, sizeof err), 0);
    assert_int_equal(cfg.n_controllers, 3);

    /* A refused file leaves every section as it was. */
    assert_int_equal(load_text(&cfg,
                               "{\"controllers\": {\"http_api\": {\"enabled\": true},"
                               " \"new\": {}}, \"bad\": 1}",
                               path, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_int_equal(cfg.n_controllers, 3);
    assert_false(config_controller(&cfg, "http_api")->enabled);
    assert_null(config_controller(&cfg, "new"));
    config_cleanup(&cfg);
}

/* ---- controller sections ---- */

/* A section's errors name the controller and the key; opts.c's own cases are in test_opts.c. */
static void test_controller_section_names(void **state)
{
    static const struct wss_opt_spec http_spec[] = {{.key = "token_file", .type = WSS_OPT_STRING},
                                                    {0}};
    struct config cfg;
    const struct wss_opts *o;
    char err[ERR_BYTES] = "", path[64], name[80], json[200], want[200];

    config_init(&cfg);
    /* The default (empty) section passes. */
    assert_int_equal(
        wss_opts_check(config_controller(&cfg, "http_api")->opts, http_spec, err, sizeof err), 0);
    assert_int_equal(load_text(&cfg, "{\"controllers\": {\"http_api\": {\"token_fil\": \"/t\"}}}",
                               path, err, sizeof err),
                     0);
    o = config_controller(&cfg, "http_api")->opts;
    assert_int_equal(wss_opts_check(o, http_spec, err, sizeof err), WSS_ERR_CONFIG);
    assert_string_equal(err, "key 'controllers.http_api.token_fil' is not known");

    /* The longest controller name is kept whole in the message; a longer one is refused. */
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(json, sizeof json, "{\"controllers\": {\"%s\": {\"zz\": 1}}}", name);
    assert_int_equal(load_text(&cfg, json, path, err, sizeof err), 0);
    o = config_controller(&cfg, name)->opts;
    assert_int_equal(wss_opts_check(o, http_spec, err, sizeof err), WSS_ERR_CONFIG);
    snprintf(want, sizeof want, "key 'controllers.%s.zz' is not known", name);
    assert_string_equal(err, want);

    name[64] = 'n';
    name[65] = '\0';
    snprintf(json, sizeof json, "{\"controllers\": {\"%s\": {}}}", name);
    assert_int_equal(load_text(&cfg, json, path, err, sizeof err), WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "controller names are 1 to 64"));
    config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_range_bounds),
        cmocka_unit_test(test_server_name_length),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_error_text_sanitised),
        cmocka_unit_test(test_missing_and_unreadable),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_parse_listen_lengths),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_transport_keys),
        cmocka_unit_test(test_controllers_merge),
        cmocka_unit_test(test_controller_section_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
