/*
 * Settings: embedded defaults, the JSON config file (read with jansson,
 * strictly: unknown keys and wrong types are errors naming the key), and
 * cross-field checks. Owns every string it holds. No lws, no I/O but the read.
 */
#ifndef WSSIGND_CONFIG_H
#define WSSIGND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct wss_opts;
struct keyset;

/* Longest "listen_path" (docs/CONFIG.md). */
#define CONFIG_LISTEN_PATH_MAX 128

/* "cluster.channel_prefix" when the file does not set it. */
#define CONFIG_CHANNEL_PREFIX_DEFAULT "wssign:"

/* What a password in "cluster.redis" is replaced with by config_dump. */
#define CONFIG_MASK "***"

/* Per controller section under "controllers". */
struct config_controller {
    char *name;
    bool enabled;
    struct wss_opts *opts; /* the section without "enabled"; owned */
};

/* "cluster": several daemons sharing one key space through Redis (docs/CLUSTER.md). */
struct config_cluster {
    bool enabled;        /* a "cluster" section is present; else a single node */
    char *redis;         /* "cluster.redis": redis://[user:password@]host:port[/db] or unix:/path */
    char *password_file; /* "cluster.password_file": resolved path, or NULL */
    char *node_id;       /* "cluster.node_id": NULL: the host name and a random suffix */
    char *secret_file;   /* "cluster.secret_file": resolved path (required) */
    char *channel_prefix; /* "cluster.channel_prefix": CONFIG_CHANNEL_PREFIX_DEFAULT */
};

/* Per daemon: every setting. Embedded in struct wssd. */
struct config {
    char *path; /* the file loaded, or NULL for built-in defaults */

    struct addr_listen listen; /* "listen": signer listener, default 127.0.0.1:8080 */
    char *listen_path;         /* "listen_path": the signer WebSocket's path, default "/v1/ws" */
    char *tls_cert;            /* "tls.cert": PEM path; with tls.key turns ws into wss */
    char *tls_key;             /* "tls.key" */
    bool insecure;             /* "insecure": allow a non-loopback listener without TLS */
    char **server_names;       /* "server_names": hosts accepted in introductions */
    size_t n_server_names;

    struct addr_listen control;   /* "control.listen": default 127.0.0.1:8081, or "unix:/path" */
    unsigned control_socket_mode; /* "control.socket_mode": octal string, default "0600" */
    char *control_tls_cert;       /* "control.tls.cert": PEM path; with the key turns the */
    char *control_tls_key;        /* "control.tls.key"   control listener into HTTPS */

    char **origins; /* "origins.allow": browser origins allowed; "*" for any */
    size_t n_origins;
    bool allow_missing_origin; /* "origins.allow_missing": default true (non-browser signers) */

    bool proof_required;       /* "introduction.proof": "required" (true) | "optional" */
    bool proof_none;           /* "introduction.proof": "none": no challenge, and an
                                     introduction of type and public_key only (the plan's
                                     minimal clients); proof_required is then false */
    uint32_t intro_timeout_ms; /* "introduction.timeout_ms": default 10000 */

    uint32_t default_timeout_ms; /* "requests.default_timeout_ms": default 60000 */
    size_t max_message_bytes;    /* "requests.max_message_bytes": bytes to sign, default 32768 */
    size_t max_pending;          /* "requests.max_pending": global in-flight cap, default 100000 */
    size_t max_pending_per_key;  /* "requests.max_pending_per_key": default 1024 */
    unsigned verify_threads;     /* "requests.verify_threads": 0 = verify on the loop thread */

    size_t max_frame_bytes;        /* "limits.max_frame_bytes": WS message, default 65536 */
    size_t max_queued_bytes;       /* "limits.max_queued_bytes": output per connection, 262144 */
    size_t max_connections;        /* "limits.max_connections": 0 = open-file limit less 64 */
    size_t max_connections_per_ip; /* "limits.max_connections_per_ip": unproven sockets per
                                      address (IPv6: per /64), default 64 */
    size_t max_introduced_per_ip;  /* "limits.max_introduced_per_ip": default 0 (no cap) */
    unsigned max_protocol_errors;  /* "limits.max_protocol_errors": refused frames before 1008, 3 */
    uint32_t ping_interval_ms;     /* "limits.ping_interval_ms": idle signer pinged, 30000 */
    uint32_t idle_timeout_ms;      /* "limits.idle_timeout_ms": hung up without pong, 60000 */

    uint32_t drain_ms; /* "shutdown.drain_ms": SIGTERM drain bound, default 5000 */

    int log_level;      /* "log_level": default "info" */
    int log_timestamps; /* "log_timestamps": enum log_timestamps, default "auto" */

    struct config_cluster cluster;

    /* "keys": which keys may introduce themselves (checked at introduction and on reload). */
    char *keys_allow_file;     /* "keys.allow_file": resolved path; NULL: every key */
    char *keys_deny_file;      /* "keys.deny_file": resolved path; NULL: none */
    struct keyset *keys_allow; /* the allow file's keys, read by config_load; NULL: no file */
    struct keyset *keys_deny;  /* the deny file's keys; NULL: no file */

    struct config_controller *controllers; /* "controllers": {name: {enabled, ...}} */
    size_t n_controllers;
};

/* Fills cfg with the embedded defaults (http_api enabled). Returns 0. */
int config_init(struct config *cfg);

/*
 * Reads the JSON file at path over the values already in cfg, and the key
 * files keys.allow_file and keys.deny_file name (keyset.h). Returns 0, or
 * WSS_ERR_CONFIG / WSS_ERR_IO with "FILE:LINE: ..." or "FILE: key 'x.y' ..."
 * in err. On failure cfg keeps valid (possibly partly updated) contents and
 * must still be cleaned up.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/*
 * Resolves host names in listen and control.listen to the numeric addresses
 * that will be bound (addr_resolve). Returns 0, or WSS_ERR_CONFIG with the
 * reason in err.
 */
int config_resolve(struct config *cfg, char *err, size_t errlen);

/*
 * Cross-field checks: tls cert and key both or neither (and so for
 * control.tls, which a unix: control listener cannot have); non-loopback
 * signer listener needs TLS unless insecure; listeners differ; timeouts in
 * range.
 * Returns 0, or WSS_ERR_CONFIG with the reason in err.
 */
int config_check(const struct config *cfg, char *err, size_t errlen);

/* Returns the section for controller name, or NULL. Borrowed. */
const struct config_controller *config_controller(const struct config *cfg, const char *name);

/*
 * Compares the settings a reload cannot change (listeners, TLS on or off on
 * either listener, insecure, controllers). A port of 0 in b matches whatever port a has (the
 * one bound at start-up). Returns NULL if a and b agree on all of them, else
 * the dotted name of the first that differs.
 */
const char *config_restart_key(const struct config *a, const struct config *b);

/*
 * The effective settings of cfg as the text of a config file (JSON, 4-space
 * indent, a final newline), in the keys and sections config_load reads:
 * every setting, defaults included, except those that are unset (tls,
 * control.tls, the keys files, cluster.password_file, cluster.node_id) and the
 * "cluster" section of a single node. Loading the text gives the same
 * settings, except that a password in cluster.redis is replaced with
 * CONFIG_MASK. Controller sections are printed as cfg holds them: the
 * options the file gave, and the defaults daemon_fill_defaults added. File settings are printed as
 * paths ("credential:NAME" for a file in $CREDENTIALS_DIRECTORY), never
 * what the files hold. Returns a malloc'd string; the caller frees it.
 * Never NULL (aborts on out-of-memory).
 */
char *config_dump(const struct config *cfg);

/*
 * A "cluster.redis" value with its password replaced by CONFIG_MASK
 * (redis://user:PASSWORD@host:port becomes redis://user:CONFIG_MASK@host:port,
 * and redis://PASSWORD@host:port becomes redis://CONFIG_MASK@host:port);
 * anything else is copied as is. Returns a malloc'd string; the caller frees it.
 */
char *config_redis_masked(const char *url);

/* Frees everything cfg owns and zeroes it. */
void config_cleanup(struct config *cfg);

#endif
