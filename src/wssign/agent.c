/*
 * The agent subcommand: its options and help, the key (loaded into protected
 * memory), the process hardening, and the loop until a signal stops it. The
 * connection is agent_conn.c's, what the frames mean signer.c's; this file
 * joins the two.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <wssignd/errors.h>

#include "addr.h"
#include "agent_conn.h"
#include "cli.h"
#include "commands.h"
#include "confirm.h"
#include "files.h"
#include "keyfile.h"
#include "log.h"
#include "policy.h"
#include "signer.h"
#include "url.h"
#include "util.h"

#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_DEFAULT_MS 30000
#define CONFIRM_TIMEOUT_DEFAULT_MS 30000
#define PING_DEFAULT_S 30
#define CONNECT_TIMEOUT_DEFAULT_MS 30000
/* Outgoing bytes queued at most (answers the server has not read yet). */
#define QUEUE_DEFAULT_BYTES 4194304
#define QUEUE_MIN_BYTES 4096
#define QUEUE_MAX_BYTES 268435456

/* Per process: the agent's settings from the command line. */
struct agent_opts {
    const char *url;
    const char *key_path;
    const char *ca;
    bool insecure;
    const char *confirm_cmd;
    uint64_t confirm_timeout_ms;
    uint64_t backoff_max_ms;
    uint64_t ping_s;
    uint64_t max_bytes;
    uint64_t connect_timeout_ms;
    uint64_t max_queued_bytes;
};

/* Per process: the agent. */
struct agent {
    struct agent_opts opts;
    struct url url;
    struct keypair *key; /* sodium_malloc'ed, read-only once loaded */
    struct policy policy;
    struct signer *signer;
    struct agent_conn *conn;
};

/* ---- the signer's hooks: frames out, introduction accepted ---- */

static void on_signer_send(void *user, char *buf, size_t len)
{
    struct agent *a = user;

    agent_conn_send(a->conn, buf, len);
}

/* A successful introduction ends the run of failures. */
static void on_signer_introduced(void *user, const char *session_id)
{
    struct agent *a = user;

    (void)session_id;
    agent_conn_introduced(a->conn);
}

/* ---- the connection's hooks: to and from the signer ---- */

static void on_conn_open(void *user)
{
    struct agent *a = user;

    signer_on_open(a->signer);
}

static int on_conn_message(void *user, const char *buf, size_t len, char *err, size_t errlen)
{
    struct agent *a = user;

    return signer_on_frame(a->signer, buf, len, err, errlen);
}

static void on_conn_close(void *user)
{
    struct agent *a = user;

    signer_on_close(a->signer);
}

static bool on_conn_busy(void *user)
{
    struct agent *a = user;

    return signer_busy(a->signer);
}

static void on_conn_tick(void *user, uint64_t now_ms)
{
    struct agent *a = user;

    signer_tick(a->signer, now_ms);
}

/* Answers what is still waiting for a confirmation before the close. */
static void on_conn_stopping(void *user)
{
    struct agent *a = user;

    signer_reject_pending(a->signer, "agent_stopping");
}

/* ---- command line ---- */

static const struct option agent_options[] = {
    {"url", required_argument, NULL, 'u'},
    {"key", required_argument, NULL, 'k'},
    {"ca", required_argument, NULL, 'C'},
    {"insecure", no_argument, NULL, 'I'},
    {"allow-prefix", required_argument, NULL, 'p'},
    {"max-bytes", required_argument, NULL, 'b'},
    {"confirm", required_argument, NULL, 'c'},
    {"confirm-timeout-ms", required_argument, NULL, 't'},
    {"backoff-max-ms", required_argument, NULL, 'B'},
    {"ping-secs", required_argument, NULL, 'P'},
    {"connect-timeout-ms", required_argument, NULL, 'T'},
    {"max-queued-bytes", required_argument, NULL, 'Q'},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void agent_help(void)
{
    printf(
        "Usage: wssign agent --url URL --key FILE [options]\n"
        "\n"
        "Connects to a wssignd daemon, introduces the key with a proof bound to the URL's\n"
        "host, and answers sign requests until SIGINT or SIGTERM. Reconnects after any\n"
        "disconnection with exponential backoff and full jitter.\n"
        "\n"
        "Options:\n"
        "  -u, --url URL             ws:// or wss:// URL of the daemon's signer endpoint,\n"
        "                            e.g. wss://signer.example.com:8443/v1/ws (the path\n"
        "                            defaults to /v1/ws). ws:// is refused for hosts other\n"
        "                            than localhost/127.0.0.0/8/::1 unless --insecure.\n"
        "                            ws:// authenticates no server, on loopback too: any\n"
        "                            local process holding the port gets signatures. Use\n"
        "                            wss:// with --ca wherever other users can run code.\n"
        "  -k, --key FILE            private key file (mode 0600; see below)\n"
        "      --ca FILE             trust the CA certificate(s) in this PEM file instead of\n"
        "                            the system store (wss:// only)\n"
        "      --insecure            do not verify the server's TLS certificate, and allow\n"
        "                            ws:// to non-loopback hosts; for test setups only\n"
        "  -p, --allow-prefix SPEC   sign only messages that start with one of the given\n"
        "                            prefixes (repeatable). SPEC is hex:0a0b (bytes in hex),\n"
        "                            str:TEXT (TEXT literally), or any other TEXT literally\n"
        "      --max-bytes N         refuse messages longer than N bytes (default and\n"
        "                            maximum %d)\n"
        "  -c, --confirm CMD         ask CMD (run with /bin/sh -c) before signing: exit\n"
        "                            status 0 approves, anything else declines. It gets the\n"
        "                            message on stdin and in its environment:\n"
        "                            WSSIGN_REQUEST_ID, WSSIGN_PUBLIC_KEY, WSSIGN_MESSAGE_BYTES,\n"
        "                            WSSIGN_MESSAGE_SHA256 and, for messages up to %d bytes,\n"
        "                            WSSIGN_MESSAGE_HEX and WSSIGN_MESSAGE_B64. Its stdout\n"
        "                            goes to stderr.\n"
        "      --confirm-timeout-ms N  kill CMD and decline after N ms (default %d)\n"
        "      --backoff-max-ms N    cap of the reconnect delay (default %d; the first\n"
        "                            delay is drawn from 0..%d ms, doubling per failure)\n"
        "      --ping-secs N         send a WebSocket ping after N idle seconds (default %d);\n"
        "                            drop the connection after 2N+10 s without an answer\n"
        "      --connect-timeout-ms N  give up on a connection attempt that has not been\n"
        "                            introduced after N ms (default %d)\n"
        "      --max-queued-bytes N  drop the connection when answers the server has not\n"
        "                            read would exceed N bytes (default %d, %d to %d;\n"
        "                            one answer is always accepted into an empty queue)\n"
        "      --log-level LEVEL     err, warn, notice, info (default) or debug\n"
        "  -h, --help                show this help\n"
        "\n"
        "Key files: PKCS#8 PEM (\"BEGIN PRIVATE KEY\", as written by 'wssign keygen' and\n"
        "'openssl genpkey -algorithm ed25519'; not encrypted), or a 32-byte Ed25519 seed\n"
        "as 64 hex digits. A key file accessible by group or others is refused.\n"
        "\n"
        "Messages starting with \"wssign-introduction-v1\" are always refused, and so\n"
        "are requests past their expires_at (\"expired\": keep the clock in sync) and\n"
        "request ids already answered on the connection (\"duplicate_request\").\n"
        "Every decision is logged on stderr (logfmt) with the request id, the message's\n"
        "length and SHA-256, never the message itself.\n"
        "\n"
        "The key is kept like ssh-agent keeps its keys: the process cannot be traced or\n"
        "dumped by other processes of the same user, core dumps are off, and the key\n"
        "sits in locked, read-only memory that is wiped on exit.\n"
        "\n"
        "Exit status: 0 after SIGINT, SIGTERM, SIGHUP or SIGQUIT, 1 start-up failure (key\n"
        "file, TLS setup), 2 usage error.\n",
        CLI_MESSAGE_MAX, CONFIRM_ENV_MESSAGE_MAX, CONFIRM_TIMEOUT_DEFAULT_MS,
        BACKOFF_MAX_DEFAULT_MS, BACKOFF_BASE_MS, PING_DEFAULT_S, CONNECT_TIMEOUT_DEFAULT_MS,
        QUEUE_DEFAULT_BYTES, QUEUE_MIN_BYTES, QUEUE_MAX_BYTES);
}

static int parse_args(struct agent *a, int argc, char **argv)
{
    struct agent_opts *o = &a->opts;
    char err[512];
    int opt, level;

    o->confirm_timeout_ms = CONFIRM_TIMEOUT_DEFAULT_MS;
    o->backoff_max_ms = BACKOFF_MAX_DEFAULT_MS;
    o->ping_s = PING_DEFAULT_S;
    o->max_bytes = CLI_MESSAGE_MAX;
    o->connect_timeout_ms = CONNECT_TIMEOUT_DEFAULT_MS;
    o->max_queued_bytes = QUEUE_DEFAULT_BYTES;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+u:k:p:c:h", agent_options, NULL)) != -1) {
        switch (opt) {
        case 'u': o->url = optarg; break;
        case 'k': o->key_path = optarg; break;
        case 'C': o->ca = optarg; break;
        case 'I': o->insecure = true; break;
        case 'p':
            if (policy_add_prefix(&a->policy, optarg, err, sizeof err) != 0)
                return cli_usage("agent", "--allow-prefix: %s", err);
            break;
        case 'b':
            if (!cli_parse_u64(optarg, 0, CLI_MESSAGE_MAX, &o->max_bytes))
                return cli_usage("agent", "--max-bytes must be an integer from 0 to %d",
                                 CLI_MESSAGE_MAX);
            break;
        case 'c':
            if (!optarg[0])
                return cli_usage("agent", "--confirm needs a command");
            o->confirm_cmd = optarg;
            break;
        case 't':
            if (!cli_parse_u64(optarg, 1, 3600000, &o->confirm_timeout_ms))
                return cli_usage("agent", "--confirm-timeout-ms must be an integer from 1 to "
                                          "3600000");
            break;
        case 'B':
            if (!cli_parse_u64(optarg, 1, 3600000, &o->backoff_max_ms))
                return cli_usage("agent", "--backoff-max-ms must be an integer from 1 to "
                                          "3600000");
            break;
        case 'P':
            if (!cli_parse_u64(optarg, 1, 3600, &o->ping_s))
                return cli_usage("agent", "--ping-secs must be an integer from 1 to 3600");
            break;
        case 'T':
            if (!cli_parse_u64(optarg, 100, 600000, &o->connect_timeout_ms))
                return cli_usage("agent", "--connect-timeout-ms must be an integer from 100 to "
                                          "600000");
            break;
        case 'Q':
            if (!cli_parse_u64(optarg, QUEUE_MIN_BYTES, QUEUE_MAX_BYTES, &o->max_queued_bytes))
                return cli_usage("agent", "--max-queued-bytes must be an integer from %d to %d",
                                 QUEUE_MIN_BYTES, QUEUE_MAX_BYTES);
            break;
        case 'l':
            if ((level = log_level_parse(optarg)) < 0)
                return cli_usage("agent", "--log-level must be err, warn, notice, info or "
                                          "debug");
            log_set_level(level);
            break;
        case 'h': agent_help(); return -1;
        default: return cli_usage("agent", "invalid option");
        }
    }
    if (optind < argc)
        return cli_usage("agent", "unexpected argument '%s'", argv[optind]);
    if (!o->url)
        return cli_usage("agent", "--url URL is required");
    if (!o->key_path)
        return cli_usage("agent", "--key FILE is required");
    if (url_parse(o->url, &a->url, err, sizeof err) != 0)
        return cli_usage("agent", "--url: %s", err);
    if (strcmp(a->url.scheme, "ws") && strcmp(a->url.scheme, "wss"))
        return cli_usage("agent", "--url must start with ws:// or wss://");
    if (!strcmp(a->url.scheme, "ws") && !addr_host_is_loopback(a->url.host) && !o->insecure)
        return cli_usage("agent",
                         "refusing plain ws:// to %s: use wss://, or --insecure to "
                         "send keys and messages in clear text",
                         a->url.host);
    if (o->ca && strcmp(a->url.scheme, "wss"))
        return cli_usage("agent", "--ca needs a wss:// URL");
    if (o->ca && o->insecure)
        return cli_usage("agent", "--ca and --insecure cannot be used together");
    if (o->ca) {
        /* Checked without blocking: a FIFO would hang the TLS set-up. */
        int fd = files_open(o->ca, false, "CA file", err, sizeof err), e = errno;

        if (fd == WSS_ERR_IO)
            return cli_usage("agent", "--ca: cannot read %s: %s", o->ca, strerror(e));
        if (fd < 0)
            return cli_usage("agent", "--ca: %s", err);
        close(fd);
    }
    return 0;
}

/*
 * What ssh-agent does before it holds a key: no core dumps (they would hold
 * the key), and not dumpable, which also keeps other processes of the same
 * user from ptrace-attaching or reading /proc/PID/mem. Returns 0, or
 * WSS_ERR_IO with the reason in err.
 */
static int protect_process(char *err, size_t errlen)
{
    const struct rlimit no_core = {0, 0};

    if (setrlimit(RLIMIT_CORE, &no_core) != 0) {
        snprintf(err, errlen, "cannot disable core dumps: %s", strerror(errno));
        return WSS_ERR_IO;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        snprintf(err, errlen, "cannot make the process non-dumpable: %s", strerror(errno));
        return WSS_ERR_IO;
    }
    return 0;
}

/* Loads the key into memory of its own, then makes that memory read-only. */
static int load_key(struct agent *a, char *err, size_t errlen)
{
    bool locked;
    int rc;

    a->key = keyfile_keypair_new(&locked);
    if (!a->key) {
        snprintf(err, errlen, "cannot allocate protected memory for the key");
        return WSS_ERR_IO;
    }
    if ((rc = keyfile_load(a->opts.key_path, a->key, err, errlen)) != 0)
        return rc;
    keyfile_keypair_seal(a->key);
    if (!locked)
        log_warn("event=key_not_locked message=\"the key memory could not be locked in RAM "
                 "(RLIMIT_MEMLOCK); it may be swapped out\"");
    return 0;
}

int agent_main(int argc, char **argv, volatile sig_atomic_t *stop)
{
    static const struct signer_hooks signer_hooks = {on_signer_send, on_signer_introduced};
    static const struct agent_conn_hooks conn_hooks = {
        on_conn_open, on_conn_message, on_conn_close, on_conn_busy, on_conn_tick, on_conn_stopping,
    };
    struct agent *a = xcalloc(1, sizeof *a);
    struct agent_conn_cfg ccfg;
    struct signer_cfg scfg;
    char err[512], pub[KEYFILE_PUB_B64_BYTES];
    int rc = CLI_EXIT_OK;

    policy_init(&a->policy, CLI_MESSAGE_MAX);
    if ((rc = parse_args(a, argc, argv)) != 0) {
        rc = rc < 0 ? CLI_EXIT_OK : rc;
        goto out;
    }
    a->policy.max_bytes = (size_t)a->opts.max_bytes;
    if (protect_process(err, sizeof err) != 0 || load_key(a, err, sizeof err) != 0) {
        cli_error("agent", "%s", err);
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    memset(&ccfg, 0, sizeof ccfg);
    ccfg.url_text = a->opts.url;
    ccfg.url = &a->url;
    ccfg.ca = a->opts.ca;
    ccfg.insecure = a->opts.insecure;
    ccfg.backoff_base_ms = BACKOFF_BASE_MS;
    ccfg.backoff_max_ms = (uint32_t)a->opts.backoff_max_ms;
    ccfg.ping_s = (uint32_t)a->opts.ping_s;
    ccfg.connect_timeout_ms = (uint32_t)a->opts.connect_timeout_ms;
    ccfg.max_queued_bytes = (size_t)a->opts.max_queued_bytes;
    ccfg.max_message = CLI_MESSAGE_MAX;
    a->conn = agent_conn_new(&ccfg, &conn_hooks, a, err, sizeof err);
    if (!a->conn) {
        cli_error("agent", "%s%s", err, a->opts.ca ? " (is --ca a readable PEM file?)" : "");
        rc = CLI_EXIT_FAIL;
        goto out;
    }

    scfg.key = a->key;
    scfg.policy = &a->policy;
    scfg.confirm_cmd = a->opts.confirm_cmd;
    scfg.confirm_timeout_ms = (uint32_t)a->opts.confirm_timeout_ms;
    scfg.host = a->url.host;
    scfg.headroom = agent_conn_headroom();
    scfg.max_message = CLI_MESSAGE_MAX;
    a->signer = signer_new(&scfg, &signer_hooks, a);

    log_notice("event=start public_key=%s url=%s tls=%s allow_prefixes=%zu max_bytes=%zu "
               "confirm=%s backoff_max_ms=%u",
               keyfile_pub_b64(pub, a->key), a->opts.url,
               strcmp(a->url.scheme, "wss") ? "off"
               : a->opts.insecure           ? "unverified"
                                            : "verified",
               a->policy.n_allow, a->policy.max_bytes, a->opts.confirm_cmd ? "yes" : "no",
               (unsigned)a->opts.backoff_max_ms);
    if (a->opts.insecure)
        log_warn("event=insecure message=\"TLS certificate checks are off\"");
    if (!strcmp(a->url.scheme, "ws"))
        log_warn("event=insecure_transport message=\"ws:// authenticates no server, on "
                 "loopback too: whoever holds the port (any local user, e.g. while the daemon "
                 "restarts) gets signatures within the policy, and messages and answers travel "
                 "in clear text; use wss:// with --ca\"");

    /* The signal handler only sets the flag; the connection's loop wakes at
     * least every 100 ms, so it is seen without a network event. */
    agent_conn_start(a->conn);
    do {
        if (*stop)
            agent_conn_stop(a->conn);
    } while (agent_conn_service(a->conn));
    log_notice("event=stopped");
    rc = CLI_EXIT_OK;
out:
    /* The connection first: closing it may still call into the signer. */
    agent_conn_free(a->conn);
    signer_free(a->signer);
    policy_cleanup(&a->policy);
    keyfile_keypair_free(a->key);
    free(a);
    return rc;
}
