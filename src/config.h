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

struct wss_opts;

#define CONFIG_HOST_MAX 255

/* Longest Unix socket path (sun_path holds 108 bytes with the NUL). */
#define CONFIG_UNIX_PATH_MAX 107

/* Per listener: where to bind. */
struct config_listen {
    char host[CONFIG_HOST_MAX + 1]; /* "127.0.0.1", "::1", "0.0.0.0", "::"; or the socket path */
    int port;                       /* 1..65535; 0 for a Unix socket */
    bool is_unix;                   /* "unix:/path": host holds the path */
};

/* Per controller section under "controllers". */
struct config_controller {
    char *name;
    bool enabled;
    struct wss_opts *opts; /* the section without "enabled"; owned */
};

/* Per daemon: every setting. Embedded in struct wssd. */
struct config {
    char *path; /* the file loaded, or NULL for built-in defaults */

    struct config_listen listen;  /* "listen": signer listener, default 127.0.0.1:8080 */
    char *tls_cert;               /* "tls.cert": PEM path; with tls.key turns ws into wss */
    char *tls_key;                /* "tls.key" */
    bool insecure;                /* "insecure": allow a non-loopback listener without TLS */
    char **server_names;          /* "server_names": hosts accepted in introductions */
    size_t n_server_names;

    struct config_listen control; /* "control.listen": default 127.0.0.1:8081, or "unix:/path" */
    unsigned control_socket_mode; /* "control.socket_mode": octal string, default "0600" */

    char **origins;               /* "origins.allow": browser origins allowed; "*" for any */
    size_t n_origins;
    bool allow_missing_origin;    /* "origins.allow_missing": default true (non-browser signers) */

    bool proof_required;          /* "introduction.proof": "required" (true) | "optional" */
    uint32_t intro_timeout_ms;    /* "introduction.timeout_ms": default 10000 */

    uint32_t default_timeout_ms;  /* "requests.default_timeout_ms": default 60000 */
    size_t max_message_bytes;     /* "requests.max_message_bytes": bytes to sign, default 32768 */
    size_t max_pending;           /* "requests.max_pending": global in-flight cap, default 100000 */
    size_t max_pending_per_key;   /* "requests.max_pending_per_key": default 1024 */
    unsigned verify_threads;      /* "requests.verify_threads": 0 = verify on the loop thread */

    size_t max_frame_bytes;       /* "limits.max_frame_bytes": WS message, default 65536 */
    size_t max_queued_bytes;      /* "limits.max_queued_bytes": output per connection, 262144 */
    size_t max_connections;       /* "limits.max_connections": 0 = open-file limit less 64 */
    size_t max_connections_per_ip; /* "limits.max_connections_per_ip": default 64 */
    unsigned max_protocol_errors; /* "limits.max_protocol_errors": refused frames before 1008, 3 */
    uint32_t ping_interval_ms;    /* "limits.ping_interval_ms": idle signer pinged, 30000 */
    uint32_t idle_timeout_ms;     /* "limits.idle_timeout_ms": hung up without pong, 60000 */

    uint32_t drain_ms;            /* "shutdown.drain_ms": SIGTERM drain bound, default 5000 */

    int log_level;                /* "log_level": default "info" */

    struct config_controller *controllers; /* "controllers": {name: {enabled, ...}} */
    size_t n_controllers;
};

/* Fills cfg with the embedded defaults (http_api enabled). Returns 0. */
int config_init(struct config *cfg);

/*
 * Reads the JSON file at path over the values already in cfg. Returns 0, or
 * WSS_ERR_CONFIG / WSS_ERR_IO with "FILE:LINE: ..." or "FILE: key 'x.y' ..."
 * in err. On failure cfg keeps valid (possibly partly updated) contents and
 * must still be cleaned up.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Parses "HOST:PORT" or "[V6]:PORT" into *out. Returns 0 or WSS_ERR_CONFIG. */
int config_parse_listen(const char *s, struct config_listen *out, char *err, size_t errlen);

/* Writes l as "host:port", "[v6]:port" or "unix:/path" into out. Returns out. */
const char *config_listen_str(char *out, size_t outlen, const struct config_listen *l);

/* True if host names a loopback address ("127.x.x.x", "::1", "localhost"). */
bool config_host_is_loopback(const char *host);

/*
 * Cross-field checks: tls cert and key both or neither; non-loopback signer
 * listener needs TLS unless insecure; listeners differ; timeouts in range.
 * Returns 0, or WSS_ERR_CONFIG with the reason in err.
 */
int config_check(const struct config *cfg, char *err, size_t errlen);

/* Returns the section for controller name, or NULL. Borrowed. */
const struct config_controller *config_controller(const struct config *cfg, const char *name);

/*
 * Compares the settings a reload cannot change (listeners, TLS on or off,
 * insecure, controllers). Returns NULL if a and b agree on all of them, else
 * the dotted name of the first that differs.
 */
const char *config_restart_key(const struct config *a, const struct config *b);

/* Frees everything cfg owns and zeroes it. */
void config_cleanup(struct config *cfg);

#endif
