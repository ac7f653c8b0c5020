/*
 * Unit tests for config_dump (wssignd --dump-config): the text it prints
 * loads back into the same effective settings, field by field, for the
 * defaults and for a file that sets every key to a value other than its
 * default; it names every setting docs/CONFIG.md's summary lists; secrets
 * (a password in cluster.redis) are masked. Temp files go under /tmp.
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

#include <jansson.h>

#include <wssignd/log.h>

#include "config.h"
#include "daemon.h"
#include "keyset.h"
#include "opts.h"

#define ERR_BYTES 512

#if defined(__x86_64__)
/* A new field in struct config is a new setting: dump it in config_dump,
 * compare it in same_config below, set it in full_json, then update this size. */
_Static_assert(sizeof(struct config) == 832, "struct config changed: see the comment above");
#endif

static const char key_a[] = "iCe97YQKCGfkyWp91avTuIoesbd81rt1EVwhzIsc4W4=";
static const char key_b[] = "lJkAJgYt51jndb/lF6DqFdeq5TwppYnra+XQJgGkr0Q=";

/* Per test: a scratch directory for the files a configuration names. */
static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/wssignd-test-dump-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* credential: settings resolve under here, and are printed as credential:NAME again */
    return setenv("CREDENTIALS_DIRECTORY", dir, 1);
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to dir/name; path receives its name. */
static void write_file(char *path, size_t pathlen, const char *name, const char *text)
{
    FILE *f;

    snprintf(path, pathlen, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads text (a whole config file) over the defaults into cfg. */
static void load_text(struct config *cfg, const char *name, const char *text)
{
    char path[128], err[ERR_BYTES] = "";

    write_file(path, sizeof path, name, text);
    assert_int_equal(config_init(cfg), 0);
    if (config_load(cfg, path, err, sizeof err) != 0)
        fail_msg("%s: %s\n%s", name, err, text);
}

static void same_string(const char *what, const char *a, const char *b)
{
    if (!a || !b) {
        if (a != b)
            fail_msg("%s: '%s' against '%s'", what, a ? a : "(unset)", b ? b : "(unset)");
        return;
    }
    if (strcmp(a, b))
        fail_msg("%s: '%s' against '%s'", what, a, b);
}

static void same_strings(const char *what, char *const *a, size_t na, char *const *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        same_string(what, a[i], b[i]);
}

static void same_listen(const struct addr_listen *a, const struct addr_listen *b)
{
    assert_string_equal(a->host, b->host);
    assert_int_equal(a->port, b->port);
    assert_int_equal(a->is_unix, b->is_unix);
}

static void same_keyset(const struct keyset *a, const struct keyset *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->keys, b->keys, a->n * sizeof a->keys[0]);
}

/* Every field of struct config but path (the file each was read from). */
static void same_config(const struct config *a, const struct config *b)
{
    same_listen(&a->listen, &b->listen);
    same_string("listen_path", a->listen_path, b->listen_path);
    same_string("tls.cert", a->tls_cert, b->tls_cert);
    same_string("tls.key", a->tls_key, b->tls_key);
    assert_int_equal(a->insecure, b->insecure);
    same_strings("server_names", a->server_names, a->n_server_names, b->server_names,
                 b->n_server_names);
    same_listen(&a->control, &b->control);
    assert_int_equal(a->control_socket_mode, b->control_socket_mode);
    same_string("control.tls.cert", a->control_tls_cert, b->control_tls_cert);
    same_string("control.tls.key", a->control_tls_key, b->control_tls_key);
    same_strings("origins.allow", a->origins, a->n_origins, b->origins, b->n_origins);
    assert_int_equal(a->allow_missing_origin, b->allow_missing_origin);
    assert_int_equal(a->proof_required, b->proof_required);
    assert_int_equal(a->proof_none, b->proof_none);
    assert_int_equal(a->intro_timeout_ms, b->intro_timeout_ms);
    assert_int_equal(a->default_timeout_ms, b->default_timeout_ms);
    assert_int_equal(a->max_message_bytes, b->max_message_bytes);
    assert_int_equal(a->max_pending, b->max_pending);
    assert_int_equal(a->max_pending_per_key, b->max_pending_per_key);
    assert_int_equal(a->verify_threads, b->verify_threads);
    assert_int_equal(a->max_frame_bytes, b->max_frame_bytes);
    assert_int_equal(a->max_queued_bytes, b->max_queued_bytes);
    assert_int_equal(a->max_connections, b->max_connections);
    assert_int_equal(a->max_connections_per_ip, b->max_connections_per_ip);
    assert_int_equal(a->max_introduced_per_ip, b->max_introduced_per_ip);
    assert_int_equal(a->max_protocol_errors, b->max_protocol_errors);
    assert_int_equal(a->ping_interval_ms, b->ping_interval_ms);
    assert_int_equal(a->idle_timeout_ms, b->idle_timeout_ms);
    assert_int_equal(a->drain_ms, b->drain_ms);
    assert_int_equal(a->log_level, b->log_level);
    assert_int_equal(a->log_timestamps, b->log_timestamps);
    assert_int_equal(a->cluster.enabled, b->cluster.enabled);
    same_string("cluster.redis", a->cluster.redis, b->cluster.redis);
    same_string("cluster.password_file", a->cluster.password_file, b->cluster.password_file);
    same_string("cluster.node_id", a->cluster.node_id, b->cluster.node_id);
    same_string("cluster.secret_file", a->cluster.secret_file, b->cluster.secret_file);
    same_string("cluster.channel_prefix", a->cluster.channel_prefix, b->cluster.channel_prefix);
    same_string("keys.allow_file", a->keys_allow_file, b->keys_allow_file);
    same_string("keys.deny_file", a->keys_deny_file, b->keys_deny_file);
    same_keyset(a->keys_allow, b->keys_allow);
    same_keyset(a->keys_deny, b->keys_deny);
    assert_int_equal(a->n_controllers, b->n_controllers);
    for (size_t i = 0; i < a->n_controllers; i++) {
        const struct config_controller *x = &a->controllers[i], *y = &b->controllers[i];

        same_string("controllers", x->name, y->name);
        assert_int_equal(x->enabled, y->enabled);
        assert_true(opts_equal(x->opts, y->opts));
    }
}

/*
 * Dumps cfg, loads the dump over the defaults, and checks that the result
 * has cfg's settings and dumps to the same text. redis_masked: what
 * cluster.redis must read back as when the dump masks a password (NULL: as
 * in cfg). Returns the dump (caller frees).
 */
static char *round_trip(const struct config *cfg, const char *redis_masked)
{
    char *text = config_dump(cfg), *again;
    struct config back;
    json_error_t jerr;
    json_t *root;

    root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        fail_msg("not JSON (%s):\n%s", jerr.text, text);
    assert_true(json_is_object(root));
    json_decref(root);
    assert_int_equal(text[strlen(text) - 1], '\n');
    load_text(&back, "dumped.json", text);
    again = config_dump(&back);
    assert_string_equal(again, text);
    free(again);
    if (redis_masked) {
        /* the mask is the only difference: put the password back and all agrees */
        same_string("cluster.redis", back.cluster.redis, redis_masked);
        free(back.cluster.redis);
        back.cluster.redis = strdup(cfg->cluster.redis);
    }
    same_config(cfg, &back);
    config_cleanup(&back);
    return text;
}

/* Checks that text holds each of the NULL-terminated has, and none of lacks. */
static void holds(const char *text, const char *const *has, const char *const *lacks)
{
    for (; has && *has; has++)
        if (!strstr(text, *has))
            fail_msg("no %s in:\n%s", *has, text);
    for (; lacks && *lacks; lacks++)
        if (strstr(text, *lacks))
            fail_msg("%s in:\n%s", *lacks, text);
}

/* ---- the defaults ---- */

static void test_defaults_round_trip(void **state)
{
    struct config def;
    char *text;

    (void)state;
    assert_int_equal(config_init(&def), 0);
    text = round_trip(&def, NULL);
    /* the defaults are written out, not left to the reader; unset settings and a single
     * node's cluster are left out */
    holds(text,
          (const char *const[]){"\"listen\": \"127.0.0.1:8080\"", "\"max_pending\": 100000",
                                "\"socket_mode\": \"0600\"", "\"proof\": \"required\"",
                                "\"log_timestamps\": \"auto\"", NULL},
          (const char *const[]){"\"tls\"", "\"cluster\"", "\"keys\"", NULL});
    free(text);
    config_cleanup(&def);
}

/* ---- every key set, none at its default ---- */

static const char full_json[] =
    "{\n"
    "  \"listen\": \"127.0.0.1:9443\",\n"
    "  \"listen_path\": \"/signer\",\n"
    "  \"server_names\": [\"signer.example.com\", \"localhost\"],\n"
    "  \"insecure\": true,\n"
    "  \"tls\": {\"cert\": \"/etc/wssignd/tls.crt\", \"key\": \"credential:tls.key\"},\n"
    "  \"control\": {\"listen\": \"127.0.0.1:9444\", \"socket_mode\": \"0660\",\n"
    "              \"tls\": {\"cert\": \"credential:control.crt\", \"key\": \"/k/control.key\"}},\n"
    "  \"origins\": {\"allow\": [\"https://a.example\", \"http://b.example:8080\"],\n"
    "              \"allow_missing\": false},\n"
    "  \"introduction\": {\"proof\": \"optional\", \"timeout_ms\": 2500},\n"
    "  \"requests\": {\"default_timeout_ms\": 30000, \"max_message_bytes\": 1000,\n"
    "               \"max_pending\": 50, \"max_pending_per_key\": 5, \"verify_threads\": 2},\n"
    "  \"limits\": {\"max_frame_bytes\": 4096, \"max_queued_bytes\": 8192,\n"
    "             \"max_connections\": 500, \"max_connections_per_ip\": 7,\n"
    "             \"max_introduced_per_ip\": 3, \"max_protocol_errors\": 9,\n"
    "             \"ping_interval_ms\": 5000, \"idle_timeout_ms\": 12000},\n"
    "  \"shutdown\": {\"drain_ms\": 250},\n"
    "  \"log_level\": \"debug\",\n"
    "  \"log_timestamps\": \"off\",\n"
    "  \"controllers\": {\n"
    "    \"http_api\": {\"enabled\": false, \"token_file\": \"credential:tokens\",\n"
    "                 \"max_body_bytes\": 2048, \"auth_failures_burst\": 5},\n"
    "    \"example\": {\"public_key\": \"%s\", \"interval_ms\": 50, \"message\": \"hi\"}\n"
    "  },\n"
    "  \"keys\": {\"allow_file\": \"%s\", \"deny_file\": \"credential:deny\"},\n"
    "  \"cluster\": {\"redis\": \"redis://10.0.0.1:6380/3\",\n"
    "              \"password_file\": \"credential:redis.password\",\n"
    "              \"secret_file\": \"/etc/wssignd/cluster.secret\",\n"
    "              \"node_id\": \"node-a\", \"channel_prefix\": \"wss-test:\"}\n"
    "}\n";

/* Loads full_json (with its key files) into cfg. */
static void load_full(struct config *cfg)
{
    char allow[128], deny[128], text[sizeof full_json + 256];

    write_file(allow, sizeof allow, "allow", key_a);
    write_file(deny, sizeof deny, "deny", key_b);
    snprintf(text, sizeof text, full_json, key_a, allow);
    load_text(cfg, "full.json", text);
}

static void test_full_round_trip(void **state)
{
    struct config def, full;
    char *text;

    (void)state;
    load_full(&full);
    /* the file leaves no setting at its default (but path), so the comparison below covers
     * every field: one the dump left out would come back at its default */
    assert_int_equal(config_init(&def), 0);
    assert_int_not_equal(full.listen.port, def.listen.port);
    assert_true(full.proof_required != def.proof_required);
    assert_true(full.keys_allow && full.keys_allow->n == 1);
    assert_true(full.keys_deny && full.keys_deny->n == 1);
    config_cleanup(&def);

    text = round_trip(&full, NULL);
    /* file settings as written, never what the files hold */
    holds(text,
          (const char *const[]){
              "\"key\": \"credential:tls.key\"", "\"cert\": \"credential:control.crt\"",
              "\"deny_file\": \"credential:deny\"", "\"token_file\": \"credential:tokens\"", NULL},
          (const char *const[]){key_b, dir, NULL});
    free(text);
    config_cleanup(&full);
}

/* The third value of introduction.proof and a Unix control socket. */
static void test_proof_none_unix_round_trip(void **state)
{
    struct config cfg;
    char *text;

    (void)state;
    load_text(&cfg, "none.json",
              "{\"introduction\": {\"proof\": \"none\"},"
              " \"control\": {\"listen\": \"unix:/run/wssignd/control.sock\"},"
              " \"log_timestamps\": \"on\"}");
    assert_true(cfg.proof_none);
    text = round_trip(&cfg, NULL);
    holds(text, (const char *const[]){"\"listen\": \"unix:/run/wssignd/control.sock\"", NULL},
          NULL);
    free(text);
    config_cleanup(&cfg);
}

/* Controller options the file leaves out are printed at their defaults. */
static void test_controller_defaults(void **state)
{
    struct config cfg;
    char text_in[512], *text;

    (void)state;
    snprintf(text_in, sizeof text_in,
             "{\"controllers\": {\"example\": {\"public_key\": \"%s\"},"
             " \"http_api\": {\"max_body_bytes\": 4096}, \"other\": {\"x\": 1}}}",
             key_a);
    load_text(&cfg, "controllers.json", text_in);
    daemon_fill_defaults(&cfg);
    daemon_fill_defaults(&cfg); /* twice changes nothing */
    text = round_trip(&cfg, NULL);
    /* the option given, the defaults, and no value for a key without a default; a section of
     * a controller that is not built in stays as written */
    holds(text,
          (const char *const[]){"\"max_body_bytes\": 4096", "\"auth_failures_burst\": 20",
                                "\"interval_ms\": 1000", "\"message\": \"wssignd example\"",
                                "\"other\": {\n            \"enabled\": true,\n"
                                "            \"x\": 1\n",
                                NULL},
          (const char *const[]){"token_file", NULL});
    free(text);
    config_cleanup(&cfg);
}

/* ---- the dump names every documented setting ---- */

/* Adds the dotted names of obj's leaves (arrays are leaves) to keys. */
static void flatten(json_t *keys, const char *prefix, json_t *obj)
{
    const char *k;
    json_t *v;

    json_object_foreach (obj, k, v) {
        char name[256];

        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (json_is_object(v) && json_object_size(v))
            flatten(keys, name, v);
        else
            json_object_set_new(keys, name, json_true());
    }
}

/* The keys in the first column of docs/CONFIG.md's summary table. */
static json_t *documented_keys(void)
{
    char line[1024], path[512];
    json_t *keys = json_object();
    bool in_summary = false;
    FILE *f;

    snprintf(path, sizeof path, "%s/../docs/CONFIG.md", WSSIGND_TEST_DATA_DIR);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        char *end;

        if (!strncmp(line, "## ", 3)) {
            in_summary = !strcmp(line, "## Summary\n");
            continue;
        }
        if (!in_summary || strncmp(line, "| `", 3) || !(end = strchr(line + 3, '`')))
            continue;
        *end = '\0';
        json_object_set_new(keys, line + 3, json_true());
    }
    fclose(f);
    return keys;
}

static void test_dump_names_documented_keys(void **state)
{
    struct config full;
    json_t *root, *dumped = json_object(), *documented = documented_keys();
    const char *k;
    json_t *v;
    char *text;

    (void)state;
    assert_true(json_object_size(documented) > 30);
    load_full(&full);
    text = config_dump(&full);
    root = json_loads(text, 0, NULL);
    assert_non_null(root);
    flatten(dumped, "", root);
    /* "controllers" and "controllers.NAME.enabled" stand for each controller's section */
    json_object_del(documented, "controllers");
    json_object_del(documented, "controllers.NAME.enabled");
    json_object_foreach (documented, k, v)
        if (!json_object_get(dumped, k))
            fail_msg("docs/CONFIG.md documents '%s' but --dump-config does not print it", k);
    json_object_foreach (dumped, k, v) {
        size_t n = strlen(k);

        if (!strncmp(k, "controllers.", 12) && n > 8 && !strcmp(k + n - 8, ".enabled"))
            continue;
        if (!json_object_get(documented, k))
            fail_msg("--dump-config prints '%s', which docs/CONFIG.md's summary lacks", k);
    }
    json_decref(root);
    json_decref(dumped);
    json_decref(documented);
    free(text);
    config_cleanup(&full);
}

/* ---- secrets ---- */

static void test_redis_password_masked(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"redis://user:s3cret@127.0.0.1:6379/1", "redis://user:" CONFIG_MASK "@127.0.0.1:6379/1"},
        {"redis://s3cret@127.0.0.1:6379", "redis://" CONFIG_MASK "@127.0.0.1:6379"},
        {"redis://:s3cret@[::1]:6379", "redis://:" CONFIG_MASK "@[::1]:6379"},
        /* the cluster's parser ends the password at the last '@' */
        {"redis://user:s3@c:ret@host:6379", "redis://user:" CONFIG_MASK "@host:6379"},
        {"redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2"},
        {"unix:/run/redis/redis.sock", "unix:/run/redis/redis.sock"},
    };
    struct config cfg;
    char *text, *masked;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        masked = config_redis_masked(cases[i].in);
        assert_string_equal(masked, cases[i].out);
        free(masked);
    }

    load_text(&cfg, "redis.json",
              "{\"cluster\": {\"redis\": \"redis://wssignd:p4ss-w0rd@127.0.0.1:6379/4\","
              " \"secret_file\": \"/etc/wssignd/cluster.secret\"}}");
    text = round_trip(&cfg, "redis://wssignd:" CONFIG_MASK "@127.0.0.1:6379/4");
    holds(text, (const char *const[]){"redis://wssignd:" CONFIG_MASK "@127.0.0.1:6379/4", NULL},
          (const char *const[]){"p4ss-w0rd", NULL});
    free(text);
    config_cleanup(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proof_none_unix_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controller_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_names_documented_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_password_masked, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
