/*
 * Settings: the embedded defaults, the strict JSON config reader and the
 * cross-field checks. Each controller's section is kept as a struct wss_opts
 * (opts.c) for the controller to read. Owns every string and jansson value it
 * holds. Knows no controller by name and binds nothing; the daemon acts on
 * the result.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

#include <wssignd/errors.h>
#include <wssignd/service.h>

#include "files.h"
#include "keyset.h"
#include "log.h"
#include "opts.h"
#include "util.h"

/* Ranges of the numeric settings; docs/CONFIG.md lists the same values. */
#define INTRO_TIMEOUT_MIN 100
#define INTRO_TIMEOUT_MAX 600000
#define REQ_TIMEOUT_MIN 1
#define REQ_TIMEOUT_MAX ((long long)WSS_TIMEOUT_MAX_MS) /* service.h: the hard cap */
#define MESSAGE_MIN 1
#define MESSAGE_MAX 1048576
#define FRAME_MIN 1024
#define FRAME_MAX 16777216
#define VERIFY_THREADS_MAX 64
#define DRAIN_MIN 0
#define DRAIN_MAX 600000
#define QUEUE_MIN 4096
#define QUEUE_MAX 16777216
#define CONN_MAX 1000000
#define PROTO_ERRORS_MAX 1000
#define PING_MIN 1000
#define PING_MAX 3600000
#define ORIGIN_MAX 253
#define SERVER_NAME_MAX 253
#define CONTROLLER_NAME_MAX OPTS_NAME_MAX
/* Upper bound of the "at least 1" counters: whatever both json_int_t and size_t hold. */
#define COUNT_MAX                                                             \
    ((long long)((unsigned long long)SIZE_MAX < (unsigned long long)LLONG_MAX \
                     ? (unsigned long long)SIZE_MAX                           \
                     : (unsigned long long)LLONG_MAX))

#define KEY_BUF OPTS_KEY_BYTES

static const char *const default_server_names[] = {"localhost", "127.0.0.1", "::1"};

/* ---- error text ---- */

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- defaults, copies and cleanup ---- */

int config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);

    snprintf(cfg->listen.host, sizeof cfg->listen.host, "127.0.0.1");
    cfg->listen.port = 8080;
    cfg->listen_path = xstrdup("/v1/ws");
    cfg->n_server_names = sizeof default_server_names / sizeof default_server_names[0];
    cfg->server_names = xcalloc(cfg->n_server_names, sizeof *cfg->server_names);
    for (size_t i = 0; i < cfg->n_server_names; i++)
        cfg->server_names[i] = xstrdup(default_server_names[i]);

    snprintf(cfg->control.host, sizeof cfg->control.host, "127.0.0.1");
    cfg->control.port = 8081;
    cfg->control_socket_mode = 0600;
    cfg->allow_missing_origin = true;

    cfg->proof_required = true;
    cfg->intro_timeout_ms = 10000;
    cfg->default_timeout_ms = 60000;
    cfg->max_message_bytes = 32768;
    cfg->max_pending = 100000;
    cfg->max_pending_per_key = 1024;
    cfg->max_frame_bytes = 65536;
    cfg->drain_ms = 5000;
    cfg->max_queued_bytes = 262144;
    cfg->max_connections = 0;
    cfg->max_connections_per_ip = 64;
    cfg->max_protocol_errors = 3;
    cfg->ping_interval_ms = 30000;
    cfg->idle_timeout_ms = 60000;
    cfg->log_level = WSS_LOG_INFO;

    cfg->n_controllers = 1;
    cfg->controllers = xcalloc(1, sizeof *cfg->controllers);
    cfg->controllers[0].name = xstrdup("http_api");
    cfg->controllers[0].enabled = true;
    cfg->controllers[0].opts = opts_new_take("http_api", json_object());
    return 0;
}

static void free_server_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void config_cleanup(struct config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->listen_path);
    free(cfg->control_tls_cert);
    free(cfg->control_tls_key);
    free(cfg->cluster.redis);
    free(cfg->cluster.password_file);
    free(cfg->cluster.node_id);
    free(cfg->cluster.secret_file);
    free(cfg->cluster.channel_prefix);
    free(cfg->keys_allow_file);
    free(cfg->keys_deny_file);
    keyset_free(cfg->keys_allow);
    keyset_free(cfg->keys_deny);
    free_server_names(cfg->server_names, cfg->n_server_names);
    free_server_names(cfg->origins, cfg->n_origins);
    for (size_t i = 0; i < cfg->n_controllers; i++) {
        free(cfg->controllers[i].name);
        opts_free(cfg->controllers[i].opts);
    }
    free(cfg->controllers);
    memset(cfg, 0, sizeof *cfg);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* Deep copy, so config_load can work on a draft and leave cfg alone on failure. */
static void config_copy(struct config *dst, const struct config *src)
{
    *dst = *src;
    dst->path = dup_or_null(src->path);
    dst->tls_cert = dup_or_null(src->tls_cert);
    dst->tls_key = dup_or_null(src->tls_key);
    dst->listen_path = dup_or_null(src->listen_path);
    dst->control_tls_cert = dup_or_null(src->control_tls_cert);
    dst->control_tls_key = dup_or_null(src->control_tls_key);
    dst->cluster.redis = dup_or_null(src->cluster.redis);
    dst->cluster.password_file = dup_or_null(src->cluster.password_file);
    dst->cluster.node_id = dup_or_null(src->cluster.node_id);
    dst->cluster.secret_file = dup_or_null(src->cluster.secret_file);
    dst->cluster.channel_prefix = dup_or_null(src->cluster.channel_prefix);
    dst->keys_allow_file = dup_or_null(src->keys_allow_file);
    dst->keys_deny_file = dup_or_null(src->keys_deny_file);
    dst->keys_allow = src->keys_allow ? keyset_dup(src->keys_allow) : NULL;
    dst->keys_deny = src->keys_deny ? keyset_dup(src->keys_deny) : NULL;
    dst->server_names = NULL;
    if (src->n_server_names) {
        dst->server_names = xcalloc(src->n_server_names, sizeof *dst->server_names);
        for (size_t i = 0; i < src->n_server_names; i++)
            dst->server_names[i] = xstrdup(src->server_names[i]);
    }
    dst->origins = NULL;
    if (src->n_origins) {
        dst->origins = xcalloc(src->n_origins, sizeof *dst->origins);
        for (size_t i = 0; i < src->n_origins; i++)
            dst->origins[i] = xstrdup(src->origins[i]);
    }
    dst->controllers = NULL;
    if (src->n_controllers) {
        dst->controllers = xcalloc(src->n_controllers, sizeof *dst->controllers);
        for (size_t i = 0; i < src->n_controllers; i++) {
            const struct config_controller *c = &src->controllers[i];

            dst->controllers[i].name = xstrdup(c->name);
            dst->controllers[i].enabled = c->enabled;
            dst->controllers[i].opts =
                c->opts ? opts_dup(c->opts) : opts_new_take(c->name, json_object());
        }
    }
}

const struct config_controller *config_controller(const struct config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->n_controllers; i++)
        if (!strcmp(cfg->controllers[i].name, name))
            return &cfg->controllers[i];
    return NULL;
}

/* ---- the file reader ---- */

/* Per config_load call: where results and error text go. */
struct loader {
    struct config *cfg;
    const char *path;
    char *err;
    size_t errlen;
};

static int fail(const struct loader *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes "PATH: " and the formatted reason into the caller's buffer. */
static int fail(const struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!ld->err || !ld->errlen)
        return WSS_ERR_CONFIG;
    n = snprintf(ld->err, ld->errlen, "%s: ", ld->path);
    if (n < 0 || (size_t)n >= ld->errlen)
        return WSS_ERR_CONFIG;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return WSS_ERR_CONFIG;
}

static int unknown(const struct loader *ld, const char *key)
{
    return fail(ld, "unknown key '%s'", key);
}

static int want_object(const struct loader *ld, const char *key, const json_t *v)
{
    return json_is_object(v) ? 0 : fail(ld, "key '%s' must be an object", key);
}

static int want_bool(const struct loader *ld, const char *key, const json_t *v, bool *out)
{
    if (!json_is_boolean(v))
        return fail(ld, "key '%s' must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

/* Integers only: 10.0 and "10" are refused, so a typo cannot become a number. */
static int want_int(const struct loader *ld, const char *key, const json_t *v, long long min,
                    long long max, long long *out)
{
    long long x;

    if (!json_is_integer(v))
        return fail(ld, "key '%s' must be an integer", key);
    x = json_integer_value(v);
    if (x < min || x > max) {
        if (max == COUNT_MAX)
            return fail(ld, "key '%s' must be at least %lld (got %lld)", key, min, x);
        return fail(ld, "key '%s' must be between %lld and %lld (got %lld)", key, min, max, x);
    }
    *out = x;
    return 0;
}

/* A non-empty string without NUL bytes, returned borrowed. */
static int want_string(const struct loader *ld, const char *key, const json_t *v, const char **out)
{
    if (!json_is_string(v))
        return fail(ld, "key '%s' must be a string", key);
    if (json_string_length(v) == 0)
        return fail(ld, "key '%s' must not be empty", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(ld, "key '%s' must not contain a NUL character", key);
    *out = json_string_value(v);
    return 0;
}

static int want_listen(const struct loader *ld, const char *key, const json_t *v,
                       struct addr_listen *out)
{
    char shown[UTIL_PRINTABLE_MAX + 8];
    const char *s, *why;
    int rc;

    if ((rc = want_string(ld, key, v, &s)) != 0)
        return rc;
    if ((why = addr_parse(s, out)) != NULL)
        return fail(ld, "key '%s' has an invalid address '%s': %s", key,
                    util_printable(shown, sizeof shown, s), why);
    return 0;
}

static void replace_string(char **slot, const char *s)
{
    free(*slot);
    *slot = xstrdup(s);
}

/*
 * Per integer setting: its section and name, its range, and where it lives
 * in struct config. One table serves the file reader and config_check, so a
 * range is written once.
 */
struct int_key {
    const char *section;
    const char *name;
    long long min, max;
    size_t offset;
    size_t size; /* sizeof the field: uint32_t/unsigned or size_t */
};

#define INT_KEY(sec, nm, lo, hi, field)                                                      \
    {                                                                                        \
        sec, nm, lo, hi, offsetof(struct config, field), sizeof(((struct config *)0)->field) \
    }

static const struct int_key int_keys[] = {
    INT_KEY("introduction", "timeout_ms", INTRO_TIMEOUT_MIN, INTRO_TIMEOUT_MAX, intro_timeout_ms),
    INT_KEY("requests", "default_timeout_ms", REQ_TIMEOUT_MIN, REQ_TIMEOUT_MAX, default_timeout_ms),
    INT_KEY("requests", "max_message_bytes", MESSAGE_MIN, MESSAGE_MAX, max_message_bytes),
    INT_KEY("requests", "max_pending", 1, COUNT_MAX, max_pending),
    INT_KEY("requests", "max_pending_per_key", 1, COUNT_MAX, max_pending_per_key),
    INT_KEY("requests", "verify_threads", 0, VERIFY_THREADS_MAX, verify_threads),
    INT_KEY("limits", "max_frame_bytes", FRAME_MIN, FRAME_MAX, max_frame_bytes),
    INT_KEY("limits", "max_queued_bytes", QUEUE_MIN, QUEUE_MAX, max_queued_bytes),
    INT_KEY("limits", "max_connections", 0, CONN_MAX, max_connections),
    INT_KEY("limits", "max_connections_per_ip", 1, CONN_MAX, max_connections_per_ip),
    INT_KEY("limits", "max_introduced_per_ip", 0, CONN_MAX, max_introduced_per_ip),
    INT_KEY("limits", "max_protocol_errors", 1, PROTO_ERRORS_MAX, max_protocol_errors),
    INT_KEY("limits", "ping_interval_ms", PING_MIN, PING_MAX, ping_interval_ms),
    INT_KEY("limits", "idle_timeout_ms", PING_MIN, PING_MAX, idle_timeout_ms),
    INT_KEY("shutdown", "drain_ms", DRAIN_MIN, DRAIN_MAX, drain_ms),
};

static const struct int_key *find_int_key(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++)
        if (!strcmp(int_keys[i].section, section) && !strcmp(int_keys[i].name, name))
            return &int_keys[i];
    return NULL;
}

static long long get_int(const struct config *cfg, const struct int_key *ik)
{
    const char *p = (const char *)cfg + ik->offset;

    if (ik->size == sizeof(uint32_t))
        return *(const uint32_t *)(const void *)p;
    return (long long)*(const size_t *)(const void *)p;
}

static void set_int(struct config *cfg, const struct int_key *ik, long long v)
{
    char *p = (char *)cfg + ik->offset;

    if (ik->size == sizeof(uint32_t))
        *(uint32_t *)(void *)p = (uint32_t)v;
    else
        *(size_t *)(void *)p = (size_t)v;
}

/* Loads section.k if it is an integer setting; WSS_ERR_NOT_FOUND if it is not one. */
static int load_int(const struct loader *ld, const char *section, const char *k, const char *key,
                    const json_t *v)
{
    const struct int_key *ik = find_int_key(section, k);
    long long x = 0;
    int rc;

    if (!ik)
        return WSS_ERR_NOT_FOUND;
    if ((rc = want_int(ld, key, v, ik->min, ik->max, &x)) != 0)
        return rc;
    set_int(ld->cfg, ik, x);
    return 0;
}

/* A section made of integer settings only. */
static int load_int_section(const struct loader *ld, const char *section, json_t *obj)
{
    char key[KEY_BUF];
    const char *k;
    json_t *v;
    int rc;

    json_object_foreach (obj, k, v) {
        opts_key_name(key, sizeof key, section, k);
        if ((rc = load_int(ld, section, k, key, v)) == WSS_ERR_NOT_FOUND)
            return unknown(ld, key);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * A file setting, resolved here so that every later use, the check included,
 * sees the path that is opened: "credential:NAME" is the systemd credential
 * $CREDENTIALS_DIRECTORY/NAME (LoadCredential=), anything else a path.
 */
static int want_file(const struct loader *ld, const char *key, const json_t *v, char **out)
{
    char path[PATH_MAX], why[256];
    const char *s;
    int rc;

    if ((rc = want_string(ld, key, v, &s)) != 0)
        return rc;
    if (files_resolve(s, path, sizeof path, why, sizeof why) != 0)
        return fail(ld, "key '%s': %s", key, why);
    replace_string(out, path);
    return 0;
}

/* A section of two file settings (tls: cert and key; keys: allow_file and deny_file). */
static int load_file_pair(const struct loader *ld, json_t *obj, const char *section,
                          const char *name_a, char **a, const char *name_b, char **b)
{
    char key[KEY_BUF];
    const char *k;
    json_t *v;
    int rc;

    json_object_foreach (obj, k, v) {
        opts_key_name(key, sizeof key, section, k);
        if (!strcmp(k, name_a))
            rc = want_file(ld, key, v, a);
        else if (!strcmp(k, name_b))
            rc = want_file(ld, key, v, b);
        else
            rc = unknown(ld, key);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A TLS section ("tls", "control.tls"): its certificate chain and key files. */
static int load_tls(const struct loader *ld, const char *section, json_t *obj, char **cert,
                    char **tls_key)
{
    return load_file_pair(ld, obj, section, "cert", cert, "key", tls_key);
}

/* The cluster section: names and files here; the URL, the secret and the node id
 * are checked when the cluster starts (and by --check-config). */
static int load_cluster(const struct loader *ld, json_t *obj)
{
    struct config_cluster *c = &ld->cfg->cluster;
    char key[KEY_BUF];
    const char *k, *s;
    json_t *v;
    int rc;

    c->enabled = true;
    json_object_foreach (obj, k, v) {
        opts_key_name(key, sizeof key, "cluster", k);
        if (!strcmp(k, "password_file")) {
            rc = want_file(ld, key, v, &c->password_file);
        } else if (!strcmp(k, "secret_file")) {
            rc = want_file(ld, key, v, &c->secret_file);
        } else if (!strcmp(k, "redis") || !strcmp(k, "node_id") || !strcmp(k, "channel_prefix")) {
            if ((rc = want_string(ld, key, v, &s)) == 0)
                replace_string(!strcmp(k, "redis")     ? &c->redis
                               : !strcmp(k, "node_id") ? &c->node_id
                                                       : &c->channel_prefix,
                               s);
        } else {
            rc = unknown(ld, key);
        }
        if (rc != 0)
            return rc;
    }
    if (!c->redis)
        return fail(ld, "key 'cluster.redis' is required in a cluster section");
    if (!c->secret_file)
        return fail(ld, "key 'cluster.secret_file' is required in a cluster section");
    if (!c->channel_prefix)
        c->channel_prefix = xstrdup(CONFIG_CHANNEL_PREFIX_DEFAULT);
    return 0;
}

/* The keys section: the files are named here and read once the whole file has loaded. */
static int load_keys(const struct loader *ld, json_t *obj)
{
    return load_file_pair(ld, obj, "keys", "allow_file", &ld->cfg->keys_allow_file, "deny_file",
                          &ld->cfg->keys_deny_file);
}

/* (Re)reads the key file at path (none: *set NULL) into *set. */
static int load_key_file(const struct loader *ld, const char *path, const char *what,
                         struct keyset **set)
{
    char why[512];

    keyset_free(*set);
    *set = NULL;
    if (!path)
        return 0;
    *set = xcalloc(1, sizeof **set);
    return keyset_load(*set, path, what, why, sizeof why) != 0 ? fail(ld, "%s", why) : 0;
}

/* (Re)reads the key files the configuration names into their sets. */
static int load_key_files(const struct loader *ld)
{
    struct config *cfg = ld->cfg;
    int rc = load_key_file(ld, cfg->keys_allow_file, "keys.allow_file", &cfg->keys_allow);

    return rc ? rc : load_key_file(ld, cfg->keys_deny_file, "keys.deny_file", &cfg->keys_deny);
}

static int load_control(const struct loader *ld, json_t *obj)
{
    char key[KEY_BUF];
    const char *k;
    json_t *v;
    int rc;

    json_object_foreach (obj, k, v) {
        opts_key_name(key, sizeof key, "control", k);
        if (!strcmp(k, "listen")) {
            if ((rc = want_listen(ld, key, v, &ld->cfg->control)) != 0)
                return rc;
        } else if (!strcmp(k, "socket_mode")) {
            const char *s;
            char *end;
            unsigned long mode;

            if ((rc = want_string(ld, key, v, &s)) != 0)
                return rc;
            mode = strtoul(s, &end, 8);
            if (!*s || *end || mode > 0777 || (mode & 0007))
                return fail(ld,
                            "key '%s' must be an octal mode such as \"0660\", with no "
                            "access for others",
                            key);
            ld->cfg->control_socket_mode = (unsigned)mode;
        } else if (!strcmp(k, "tls")) {
            if ((rc = want_object(ld, key, v)) != 0 ||
                (rc = load_tls(ld, key, v, &ld->cfg->control_tls_cert,
                               &ld->cfg->control_tls_key)) != 0)
                return rc;
        } else {
            return unknown(ld, key);
        }
    }
    return 0;
}

static int load_introduction(const struct loader *ld, json_t *obj)
{
    char key[KEY_BUF];
    const char *k, *s;
    json_t *v;
    int rc;

    json_object_foreach (obj, k, v) {
        opts_key_name(key, sizeof key, "introduction", k);
        if (!strcmp(k, "proof")) {
            if ((rc = want_string(ld, key, v, &s)) != 0)
                return rc;
            if (!strcmp(s, "required") || !strcmp(s, "optional") || !strcmp(s, "none")) {
                ld->cfg->proof_required = !strcmp(s, "required");
                ld->cfg->proof_none = !strcmp(s, "none");
            } else {
                return fail(ld, "key '%s' must be \"required\", \"optional\" or \"none\"", key);
            }
        } else if ((rc = load_int(ld, "introduction", k, key, v)) != WSS_ERR_NOT_FOUND) {
            if (rc != 0)
                return rc;
        } else {
            return unknown(ld, key);
        }
    }
    return 0;
}

static int load_origins(const struct loader *ld, json_t *obj)
{
    char key[KEY_BUF];
    const char *k;
    json_t *v, *item;
    size_t i;
    int rc;

    json_object_foreach (obj, k, v) {
        opts_key_name(key, sizeof key, "origins", k);
        if (!strcmp(k, "allow_missing")) {
            if ((rc = want_bool(ld, key, v, &ld->cfg->allow_missing_origin)) != 0)
                return rc;
        } else if (!strcmp(k, "allow")) {
            char **list;

            if (!json_is_array(v))
                return fail(ld, "key '%s' must be an array of strings", key);
            json_array_foreach (v, i, item) {
                size_t n = json_is_string(item) ? json_string_length(item) : 0;
                const char *s = json_is_string(item) ? json_string_value(item) : "";

                if (!json_is_string(item) || n == 0 || n > ORIGIN_MAX || strlen(s) != n)
                    return fail(ld, "key '%s' must hold origins of 1..%d characters", key,
                                ORIGIN_MAX);
                /* An origin is "*" or scheme://host[:port], never a path. */
                if (strcmp(s, "*") && (!strstr(s, "://") || strchr(strstr(s, "://") + 3, '/')))
                    return fail(ld, "key '%s': '%s' is not an origin (scheme://host[:port])", key,
                                s);
            }
            list = xcalloc(json_array_size(v) + 1, sizeof *list);
            json_array_foreach (v, i, item)
                list[i] = xstrdup(json_string_value(item));
            free_server_names(ld->cfg->origins, ld->cfg->n_origins);
            ld->cfg->origins = list;
            ld->cfg->n_origins = json_array_size(v);
        } else {
            return unknown(ld, key);
        }
    }
    return 0;
}

/*
 * Server names end up in the introduction transcript, which is split on
 * newlines, and are compared byte for byte with what clients send: allow only
 * lowercase host characters so neither side can be ambiguous.
 */
static const char *server_name_problem(const char *s, size_t len)
{
    if (len == 0 || len > SERVER_NAME_MAX)
        return "must be 1 to 253 characters long";
    if (strlen(s) != len)
        return "must not contain a NUL character";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c >= 'A' && c <= 'Z')
            return "must be lowercase";
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_' || c == ':' || c == '[' || c == ']'))
            return "has a character outside a-z 0-9 . - _ : [ ]";
    }
    return NULL;
}

static int load_server_names(const struct loader *ld, const char *key, const json_t *arr)
{
    struct config *cfg = ld->cfg;
    char **names;
    size_t n, i;
    json_t *v;

    if (!json_is_array(arr))
        return fail(ld, "key '%s' must be an array of strings", key);
    n = json_array_size(arr);
    if (n == 0)
        return fail(ld, "key '%s' must not be empty", key);
    json_array_foreach (arr, i, v) {
        const char *why;

        if (!json_is_string(v))
            return fail(ld, "key '%s' item %zu must be a string", key, i);
        if ((why = server_name_problem(json_string_value(v), json_string_length(v))) != NULL)
            return fail(ld, "key '%s' item %zu %s", key, i, why);
    }
    names = xcalloc(n, sizeof *names);
    json_array_foreach (arr, i, v)
        names[i] = xstrdup(json_string_value(v));
    free_server_names(cfg->server_names, cfg->n_server_names);
    cfg->server_names = names;
    cfg->n_server_names = n;
    return 0;
}

/*
 * The signer path is compared byte for byte with the request line's path,
 * which lws has already cleaned of "//" and dot segments: allow only what
 * needs no escaping and stays the same after that cleaning.
 */
static const char *listen_path_problem(const char *s, size_t len)
{
    if (len == 0 || len > CONFIG_LISTEN_PATH_MAX || strlen(s) != len)
        return "must be 1 to 128 characters long";
    if (s[0] != '/')
        return "must start with '/'";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '/'))
            return "has a character outside A-Z a-z 0-9 - . _ ~ /";
        if (c == '/' && i + 1 < len && s[i + 1] == '/')
            return "must not contain an empty segment ('//')";
        if (c == '/' && s[i + 1] == '.' &&
            (s[i + 2] == '/' || !s[i + 2] || (s[i + 2] == '.' && (s[i + 3] == '/' || !s[i + 3]))))
            return "must not contain a '.' or '..' segment";
    }
    return NULL;
}

static int load_listen_path(const struct loader *ld, const char *key, const json_t *v)
{
    const char *why;

    if (!json_is_string(v))
        return fail(ld, "key '%s' must be a string", key);
    if ((why = listen_path_problem(json_string_value(v), json_string_length(v))) != NULL)
        return fail(ld, "key '%s' %s", key, why);
    replace_string(&ld->cfg->listen_path, json_string_value(v));
    return 0;
}

/* Controller names become key prefixes in error text and log lines: keep them plain. */
static bool valid_controller_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > CONTROLLER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/*
 * Each named section replaces the entry of that name or adds one; entries
 * the file does not name keep their values. "enabled" defaults to true, and
 * everything else is kept for the controller to check with wss_opts_check.
 */
static int load_controllers(const struct loader *ld, json_t *obj)
{
    struct config *cfg = ld->cfg;
    char key[KEY_BUF];
    const char *name;
    json_t *sec;

    /* Validate every section before changing anything. */
    json_object_foreach (obj, name, sec) {
        json_t *en;

        opts_key_name(key, sizeof key, "controllers", name);
        if (!valid_controller_name(name))
            return fail(ld, "key '%s': controller names are 1 to %d characters of a-z 0-9 _ -", key,
                        CONTROLLER_NAME_MAX);
        if (!json_is_object(sec))
            return fail(ld, "key '%s' must be an object", key);
        en = json_object_get(sec, "enabled");
        /* The name passed valid_controller_name, so it is safe to print as is. */
        if (en && !json_is_boolean(en))
            return fail(ld, "key 'controllers.%s.enabled' must be a boolean", name);
    }

    json_object_foreach (obj, name, sec) {
        json_t *en = json_object_get(sec, "enabled");
        bool enabled = en ? json_is_true(en) : true;
        json_t *copy = json_deep_copy(sec);
        struct config_controller *c = NULL;

        if (!copy) {
            fprintf(stderr, "level=err event=out_of_memory where=config\n");
            abort();
        }
        json_object_del(copy, "enabled");
        for (size_t i = 0; i < cfg->n_controllers; i++)
            if (!strcmp(cfg->controllers[i].name, name))
                c = &cfg->controllers[i];
        if (!c) {
            cfg->controllers =
                xrealloc(cfg->controllers, (cfg->n_controllers + 1) * sizeof *cfg->controllers);
            c = &cfg->controllers[cfg->n_controllers++];
            c->name = xstrdup(name);
            c->opts = NULL;
        }
        opts_free(c->opts);
        c->opts = opts_new_take(name, copy);
        c->enabled = enabled;
    }
    return 0;
}

/* Applies the top-level object root to ld->cfg, key by key, in file order. */
static int load_root(const struct loader *ld, json_t *root)
{
    struct config *cfg = ld->cfg;
    char key[KEY_BUF];
    const char *k, *s;
    json_t *v;
    int rc;

    if (!json_is_object(root))
        return fail(ld, "the top level must be a JSON object");

    json_object_foreach (root, k, v) {
        opts_key_name(key, sizeof key, NULL, k);
        if (!strcmp(k, "listen")) {
            rc = want_listen(ld, key, v, &cfg->listen);
        } else if (!strcmp(k, "listen_path")) {
            rc = load_listen_path(ld, key, v);
        } else if (!strcmp(k, "server_names")) {
            rc = load_server_names(ld, key, v);
        } else if (!strcmp(k, "insecure")) {
            rc = want_bool(ld, key, v, &cfg->insecure);
        } else if (!strcmp(k, "tls")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_tls(ld, "tls", v, &cfg->tls_cert, &cfg->tls_key);
        } else if (!strcmp(k, "control")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_control(ld, v);
        } else if (!strcmp(k, "introduction")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_introduction(ld, v);
        } else if (!strcmp(k, "requests")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_int_section(ld, "requests", v);
        } else if (!strcmp(k, "limits")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_int_section(ld, "limits", v);
        } else if (!strcmp(k, "origins")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_origins(ld, v);
        } else if (!strcmp(k, "shutdown")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_int_section(ld, "shutdown", v);
        } else if (!strcmp(k, "log_timestamps")) {
            int mode = -1;

            if ((rc = want_string(ld, key, v, &s)) == 0 && (mode = log_timestamps_parse(s)) < 0)
                rc = fail(ld, "key '%s' must be one of auto, on, off", key);
            if (rc == 0)
                cfg->log_timestamps = mode;
        } else if (!strcmp(k, "log_level")) {
            int level = -1;

            if ((rc = want_string(ld, key, v, &s)) == 0 && (level = log_level_parse(s)) < 0)
                rc = fail(ld, "key '%s' must be one of err, warn, notice, info, debug", key);
            if (rc == 0)
                cfg->log_level = level;
        } else if (!strcmp(k, "controllers")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_controllers(ld, v);
        } else if (!strcmp(k, "cluster")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_cluster(ld, v);
        } else if (!strcmp(k, "keys")) {
            if ((rc = want_object(ld, key, v)) == 0)
                rc = load_keys(ld, v);
        } else {
            rc = unknown(ld, key);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    struct config draft;
    struct loader ld;
    json_error_t jerr;
    json_t *root;
    struct stat st;
    int rc;

    if (!path || !*path) {
        errf(err, errlen, "no config file named");
        return WSS_ERR_CONFIG;
    }
    /*
     * jansson would open a directory and then report a syntax error at 1:0;
     * look first so the operator sees the real reason.
     */
    if (stat(path, &st) != 0) {
        errf(err, errlen, "%s: %s", path, strerror(errno));
        return WSS_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        errf(err, errlen, "%s: %s", path,
             S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
        return WSS_ERR_IO;
    }

    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_cannot_open_file) {
            /* jansson's text already carries the path and strerror(). */
            errf(err, errlen, "%s", jerr.text);
            return WSS_ERR_IO;
        }
        errf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return WSS_ERR_CONFIG;
    }

    /* Work on a copy: cfg is replaced only when the whole file is good. */
    config_copy(&draft, cfg);
    ld.cfg = &draft;
    ld.path = path;
    ld.err = err;
    ld.errlen = errlen;
    rc = load_root(&ld, root);
    json_decref(root);
    if (rc == 0)
        rc = load_key_files(&ld);
    if (rc != 0) {
        config_cleanup(&draft);
        return rc;
    }
    free(draft.path);
    draft.path = xstrdup(path);
    config_cleanup(cfg);
    *cfg = draft;
    return 0;
}

/* ---- cross-field checks ---- */

static int range_error(char *err, size_t errlen, const char *key, long long v, long long min,
                       long long max)
{
    if (v >= min && v <= max)
        return 0;
    if (max == COUNT_MAX)
        errf(err, errlen, "%s must be at least %lld (is %lld)", key, min, v);
    else
        errf(err, errlen, "%s must be between %lld and %lld (is %lld)", key, min, max, v);
    return WSS_ERR_CONFIG;
}

int config_resolve(struct config *cfg, char *err, size_t errlen)
{
    int rc;

    if ((rc = addr_resolve(&cfg->listen, "listen", err, errlen)) != 0)
        return rc;
    return addr_resolve(&cfg->control, "control.listen", err, errlen);
}

int config_check(const struct config *cfg, char *err, size_t errlen)
{
    char a[ADDR_STR_MAX], b[ADDR_STR_MAX];
    int rc;

    if (!cfg->tls_cert != !cfg->tls_key) {
        errf(err, errlen, "tls.cert and tls.key must be set together (only tls.%s is set)",
             cfg->tls_cert ? "cert" : "key");
        return WSS_ERR_CONFIG;
    }
    if ((cfg->tls_cert && !*cfg->tls_cert) || (cfg->tls_key && !*cfg->tls_key)) {
        errf(err, errlen, "tls.cert and tls.key must not be empty");
        return WSS_ERR_CONFIG;
    }
    if (!cfg->control_tls_cert != !cfg->control_tls_key) {
        errf(err, errlen,
             "control.tls.cert and control.tls.key must be set together (only "
             "control.tls.%s is set)",
             cfg->control_tls_cert ? "cert" : "key");
        return WSS_ERR_CONFIG;
    }
    if (cfg->control_tls_cert && cfg->control.is_unix) {
        errf(err, errlen,
             "control.tls needs a TCP control.listen: a unix: socket is reached "
             "only on this host, and its file mode (control.socket_mode) decides who may");
        return WSS_ERR_CONFIG;
    }
    if (!cfg->listen_path || listen_path_problem(cfg->listen_path, strlen(cfg->listen_path))) {
        errf(err, errlen, "listen_path must be a path such as \"/v1/ws\"");
        return WSS_ERR_CONFIG;
    }
    if (cfg->listen.is_unix || !cfg->listen.host[0] || cfg->listen.port < 0 ||
        cfg->listen.port > 65535) {
        errf(err, errlen, "listen must be a host and a port from 0 to 65535");
        return WSS_ERR_CONFIG;
    }
    if (!cfg->control.host[0] ||
        (!cfg->control.is_unix && (cfg->control.port < 0 || cfg->control.port > 65535))) {
        errf(err, errlen, "control.listen must be a host and a port from 0 to 65535");
        return WSS_ERR_CONFIG;
    }
    /* Keys and signatures must not cross the network in clear text by accident. */
    if (!cfg->tls_cert && !cfg->insecure && !addr_host_is_loopback(cfg->listen.host)) {
        errf(err, errlen,
             "listen %s is not a loopback address and no TLS is configured: set tls.cert and "
             "tls.key, or pass --insecure (\"insecure\": true) to allow plain ws",
             addr_str(a, sizeof a, &cfg->listen));
        return WSS_ERR_CONFIG;
    }
    if (addr_clash(&cfg->listen, &cfg->control)) {
        errf(err, errlen, "listen %s and control.listen %s must not use the same address and port",
             addr_str(a, sizeof a, &cfg->listen), addr_str(b, sizeof b, &cfg->control));
        return WSS_ERR_CONFIG;
    }
    if (cfg->idle_timeout_ms <= cfg->ping_interval_ms) {
        errf(err, errlen,
             "limits.idle_timeout_ms (%u) must be longer than limits.ping_interval_ms "
             "(%u)",
             cfg->idle_timeout_ms, cfg->ping_interval_ms);
        return WSS_ERR_CONFIG;
    }
    if (cfg->n_server_names == 0) {
        errf(err, errlen, "server_names must not be empty");
        return WSS_ERR_CONFIG;
    }
    /* The file reader enforces these too; command-line overrides do not pass through it. */
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++) {
        const struct int_key *ik = &int_keys[i];
        char name[64];

        snprintf(name, sizeof name, "%s.%s", ik->section, ik->name);
        if ((rc = range_error(err, errlen, name, get_int(cfg, ik), ik->min, ik->max)) != 0)
            return rc;
    }
    if ((rc = range_error(err, errlen, "log_level", cfg->log_level, WSS_LOG_ERR, WSS_LOG_DEBUG)) !=
        0)
        return rc;
    return 0;
}

static bool same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

const char *config_restart_key(const struct config *a, const struct config *b)
{
    if (a->listen.is_unix != b->listen.is_unix || a->control.is_unix != b->control.is_unix)
        return "listen";
    if (a->control_socket_mode != b->control_socket_mode)
        return "control.socket_mode";
    if (a->verify_threads != b->verify_threads)
        return "requests.verify_threads";
    /* Port 0 in the new settings means "the port bound at start-up". */
    if (strcmp(a->listen.host, b->listen.host) ||
        (b->listen.port && a->listen.port != b->listen.port))
        return "listen";
    if (strcmp(a->control.host, b->control.host) ||
        (b->control.port && a->control.port != b->control.port))
        return "control.listen";
    if (!a->tls_cert != !b->tls_cert)
        return "tls";
    if (!a->control_tls_cert != !b->control_tls_cert)
        return "control.tls";
    if (a->insecure != b->insecure)
        return "insecure";
    /* A cluster's Redis address and secret reload by reconnecting; these do not. */
    if (a->cluster.enabled != b->cluster.enabled)
        return "cluster";
    if (!same_string(a->cluster.node_id, b->cluster.node_id))
        return "cluster.node_id";
    if (!same_string(a->cluster.channel_prefix, b->cluster.channel_prefix))
        return "cluster.channel_prefix";
    if (a->n_controllers != b->n_controllers)
        return "controllers";
    for (size_t i = 0; i < a->n_controllers; i++) {
        const struct config_controller *x = &a->controllers[i], *y = &b->controllers[i];

        if (!same_string(x->name, y->name) || x->enabled != y->enabled ||
            !opts_equal(x->opts, y->opts))
            return "controllers";
    }
    return NULL;
}

/* ---- the effective settings as a config file ---- */

/* Aborts on out-of-memory, as xmalloc does: jansson reports it only as NULL. */
static json_t *must(json_t *v)
{
    if (!v) {
        fprintf(stderr, "level=err event=out_of_memory where=config\n");
        abort();
    }
    return v;
}

static void put(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, must(v)) != 0)
        must(NULL);
}

/* The object obj[key], made (empty, at the end) if absent. */
static json_t *section(json_t *obj, const char *key)
{
    json_t *sec = json_object_get(obj, key);

    if (!sec) {
        sec = must(json_object());
        put(obj, key, sec);
    }
    return sec;
}

static void put_string(json_t *obj, const char *key, const char *s)
{
    if (s)
        put(obj, key, json_string(s));
}

/* A file setting as the configuration would name it: config_load stores the
 * resolved path, and a file in $CREDENTIALS_DIRECTORY was "credential:NAME". */
static void put_file(json_t *obj, const char *key, const char *path)
{
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    size_t n = dir ? strlen(dir) : 0;
    char *shown;

    if (!path)
        return;
    if (n && !strncmp(path, dir, n) && path[n] == '/' && path[n + 1] &&
        !strchr(path + n + 1, '/') && strcmp(path + n + 1, ".") && strcmp(path + n + 1, "..")) {
        shown = xmalloc(strlen(FILES_CREDENTIAL_PREFIX) + strlen(path + n + 1) + 1);
        strcpy(shown, FILES_CREDENTIAL_PREFIX);
        strcat(shown, path + n + 1);
        put(obj, key, json_string(shown));
        free(shown);
        return;
    }
    put(obj, key, json_string(path));
}

static json_t *string_array(char *const *items, size_t n)
{
    json_t *arr = must(json_array());

    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, must(json_string(items[i]))) != 0)
            must(NULL);
    return arr;
}

static void put_tls(json_t *obj, const char *key, const char *cert, const char *tls_key)
{
    json_t *tls;

    if (!cert && !tls_key)
        return;
    tls = section(obj, key);
    put_file(tls, "cert", cert);
    put_file(tls, "key", tls_key);
}

char *config_redis_masked(const char *url)
{
    const char *user, *at, *colon;
    char *out;

    if (!url)
        return NULL;
    if (strncmp(url, "redis://", 8) != 0 || !(at = strrchr(url, '@')))
        return xstrdup(url);
    /* As the cluster's parser reads it: user:password@ or password@, the last '@' ending it. */
    user = url + 8;
    colon = memchr(user, ':', (size_t)(at - user));
    out = xmalloc(strlen(url) + sizeof CONFIG_MASK + 1);
    snprintf(out, strlen(url) + sizeof CONFIG_MASK + 1, "redis://%.*s%s%s",
             colon ? (int)(colon - user) : 0, user, colon ? ":" CONFIG_MASK : CONFIG_MASK, at);
    return out;
}

char *config_dump(const struct config *cfg)
{
    json_t *root = must(json_object()), *sec;
    char addr[ADDR_STR_MAX], mode[16];
    char *text, *dumped, *redis;

    /* In docs/CONFIG.md's order. Sections of integers come from int_keys. */
    put(root, "listen", json_string(addr_str(addr, sizeof addr, &cfg->listen)));
    put_string(root, "listen_path", cfg->listen_path);
    put(root, "server_names", string_array(cfg->server_names, cfg->n_server_names));
    put(root, "insecure", json_boolean(cfg->insecure));
    put_tls(root, "tls", cfg->tls_cert, cfg->tls_key);

    sec = section(root, "control");
    put(sec, "listen", json_string(addr_str(addr, sizeof addr, &cfg->control)));
    snprintf(mode, sizeof mode, "%04o", cfg->control_socket_mode);
    put(sec, "socket_mode", json_string(mode));
    put_tls(sec, "tls", cfg->control_tls_cert, cfg->control_tls_key);

    sec = section(root, "origins");
    put(sec, "allow", string_array(cfg->origins, cfg->n_origins));
    put(sec, "allow_missing", json_boolean(cfg->allow_missing_origin));

    put(section(root, "introduction"), "proof",
        json_string(cfg->proof_none       ? "none"
                    : cfg->proof_required ? "required"
                                          : "optional"));
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++)
        put(section(root, int_keys[i].section), int_keys[i].name,
            json_integer((json_int_t)get_int(cfg, &int_keys[i])));

    put(root, "log_level", json_string(log_level_name(cfg->log_level)));
    put(root, "log_timestamps", json_string(log_timestamps_name(cfg->log_timestamps)));

    sec = section(root, "controllers");
    for (size_t i = 0; i < cfg->n_controllers; i++) {
        const struct config_controller *c = &cfg->controllers[i];
        json_t *ctl = must(json_object());

        put(ctl, "enabled", json_boolean(c->enabled));
        if (c->opts) {
            json_t *opts = must(json_deep_copy(opts_json(c->opts)));

            if (json_object_update(ctl, opts) != 0)
                must(NULL);
            json_decref(opts);
        }
        put(sec, c->name, ctl);
    }

    if (cfg->keys_allow_file || cfg->keys_deny_file) {
        sec = section(root, "keys");
        put_file(sec, "allow_file", cfg->keys_allow_file);
        put_file(sec, "deny_file", cfg->keys_deny_file);
    }

    if (cfg->cluster.enabled) {
        sec = section(root, "cluster");
        redis = config_redis_masked(cfg->cluster.redis);
        put_string(sec, "redis", redis);
        free(redis);
        put_file(sec, "password_file", cfg->cluster.password_file);
        put_file(sec, "secret_file", cfg->cluster.secret_file);
        put_string(sec, "node_id", cfg->cluster.node_id);
        put_string(sec, "channel_prefix",
                   cfg->cluster.channel_prefix ? cfg->cluster.channel_prefix
                                               : CONFIG_CHANNEL_PREFIX_DEFAULT);
    }

    dumped = json_dumps(root, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!dumped)
        must(NULL);
    text = xmalloc(strlen(dumped) + 2);
    strcpy(text, dumped);
    strcat(text, "\n");
    free(dumped);
    return text;
}
