/*
 * The request subcommand: asks the daemon's control API (POST /v1/sign) for
 * a signature by a connected key, checks the answer locally, prints it and
 * turns the outcome into an exit code. HTTP transport in httpc.c, JSON in
 * api.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wssignd/errors.h>
#include <wssignd/service.h>

#include "addr.h"
#include "api.h"
#include "cli.h"
#include "commands.h"
#include "crypto.h"
#include "files.h"
#include "httpc.h"
#include "log.h"
#include "url.h"
#include "util.h"

/* Exit codes, one per outcome class (documented in --help and docs/WSSIGN.md). */
#define REQ_EXIT_OK 0
#define REQ_EXIT_USAGE 2
#define REQ_EXIT_NOT_CONNECTED 3
#define REQ_EXIT_TIMEOUT 4
#define REQ_EXIT_REJECTED 5
#define REQ_EXIT_INVALID_SIGNATURE 6
#define REQ_EXIT_CONNECTION_CLOSED 7
#define REQ_EXIT_UNAUTHORIZED 8
#define REQ_EXIT_OTHER 9

#define DEFAULT_CONTROL "http://127.0.0.1:8081"
#define SIGN_PATH "/v1/sign"
/* Extra time the HTTP exchange gets beyond the signing deadline itself. */
#define HTTP_SLACK_MS 5000
#define TOKEN_FILE_MAX 65536
#define TOKEN_MAX 4096

static const struct option request_options[] = {
    {"key", required_argument, NULL, 'k'},
    {"message", required_argument, NULL, 'm'},
    {"message-file", required_argument, NULL, 'f'},
    {"message-hex", required_argument, NULL, 'x'},
    {"control", required_argument, NULL, 'c'},
    {"token-file", required_argument, NULL, 'T'},
    {"timeout-ms", required_argument, NULL, 't'},
    {"wait-ms", required_argument, NULL, 'w'},
    {"wait", no_argument, NULL, 'W'},
    {"label", required_argument, NULL, 'l'},
    {"signature-only", no_argument, NULL, 's'},
    {"insecure", no_argument, NULL, 'I'},
    {"ca", required_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void request_help(void)
{
    printf("Usage: wssign request --key PUBKEY\n"
           "                      (--message TEXT | --message-file FILE | --message-hex HEX)\n"
           "                      [--control URL] [--ca FILE] [--token-file FILE]\n"
           "                      [--timeout-ms N] [--wait | --wait-ms N] [--label TEXT]\n"
           "                      [--signature-only] [--insecure]\n"
           "\n"
           "Asks a wssignd daemon (POST /v1/sign on its control API) to have the agent\n"
           "holding PUBKEY sign a message, checks the signature, and prints the result as\n"
           "one JSON line: {\"request_id\",\"public_key\",\"message\",\"signature\"}.\n"
           "\n"
           "Options:\n"
           "  -k, --key PUBKEY         public key of the signer, standard base64 of 32 bytes\n"
           "  -m, --message TEXT       the message is TEXT (its bytes, no newline added)\n"
           "  -f, --message-file FILE  the message is the contents of FILE ('-': stdin)\n"
           "  -x, --message-hex HEX    the message is these bytes in hex\n"
           "  -c, --control URL        the control API (default %s):\n"
           "                           https://HOST[:PORT] (the daemon's control.tls; its\n"
           "                           certificate must name HOST), unix:/PATH (the\n"
           "                           control socket, e.g. unix:/run/wssignd/control.sock),\n"
           "                           or http:// to localhost, 127.0.0.0/8 or ::1 (to\n"
           "                           another host only with --insecure)\n"
           "      --ca FILE            with https://: trust the CA certificate(s) in this\n"
           "                           PEM file instead of the system's CA store\n"
           "  -T, --token-file FILE    send the bearer token in FILE: its first line that is\n"
           "                           not empty and not a '#' comment. The file must not be\n"
           "                           accessible by group or others (chmod 600)\n"
           "  -t, --timeout-ms N       how long the daemon waits for the signer, 1 to %u\n"
           "                           (default: the daemon's requests.default_timeout_ms)\n"
           "  -w, --wait-ms N          if no agent holds PUBKEY yet, wait up to N ms (0 to\n"
           "                           the timeout) for one to connect, on any node of a\n"
           "                           cluster, instead of failing not_connected at once\n"
           "  -W, --wait               wait for the agent as long as the request may last:\n"
           "                           --timeout-ms, or 60000 ms (then also the timeout)\n"
           "  -l, --label TEXT         what the request is for, shown to the signer\n"
           "                           (--confirm, the browser's card): up to 256 bytes\n"
           "                           of UTF-8 without control characters\n"
           "  -s, --signature-only     print only the base64 signature\n"
           "      --insecure           allow an http:// URL to another host: the token,\n"
           "                           the message and the answer cross the network in\n"
           "                           clear text, readable and changeable on the way\n"
           "  -h, --help               show this help\n"
           "\n"
           "Exactly one of --message, --message-file and --message-hex is required.\n"
           "Messages are limited to %d bytes.\n"
           "\n"
           "Exit status:\n"
           "  0  signed; the signature was verified locally\n"
           "  2  usage error (bad options, unreadable message or token file)\n"
           "  3  not_connected: no agent holds this key (or none came within --wait-ms)\n"
           "  4  timeout: no answer before the deadline\n"
           "  5  rejected: the agent declined (policy or --confirm)\n"
           "  6  invalid_signature: the signature did not verify (daemon or local check)\n"
           "  7  connection_closed: the agent disconnected before answering\n"
           "  8  unauthorized: missing or wrong bearer token\n"
           "  9  any other error (daemon unreachable, TLS or certificate failure,\n"
           "     bad_request, shutting_down, overloaded, malformed answer)\n",
           DEFAULT_CONTROL, WSS_TIMEOUT_MAX_MS, CLI_MESSAGE_MAX);
}

/* The bearer token from a token file. Returns 0 or WSS_ERR_* with a reason in err. */
static int read_token(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    int rc;

    /* The same rules as the daemon's own token file, through the same module:
     * opened without blocking (a FIFO cannot hang the tool), a regular file
     * readable by its owner only. */
    rc = files_read(path, true, "token file", TOKEN_FILE_MAX, &buf, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = WSS_ERR_INVAL;
    for (char *line = buf, *next; line && *line; line = next) {
        size_t n;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (!n || line[0] == '#')
            continue;
        /* It goes into a header line: visible ASCII only, no spaces. */
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)line[i] <= ' ' || (unsigned char)line[i] >= 0x7f) {
                snprintf(err, errlen,
                         "token file %s: the token must be visible ASCII "
                         "without spaces",
                         path);
                goto out;
            }
        if (n >= outlen || n > TOKEN_MAX) {
            snprintf(err, errlen, "token file %s: the token is too long", path);
            goto out;
        }
        memcpy(out, line, n + 1);
        rc = 0;
        goto out;
    }
    snprintf(err, errlen, "token file %s holds no token", path);
out:
    files_free_secret(buf, len);
    return rc;
}

static int exit_for_code(const char *code)
{
    static const struct {
        const char *code;
        int exit;
    } map[] = {
        {"not_connected", REQ_EXIT_NOT_CONNECTED},
        {"timeout", REQ_EXIT_TIMEOUT},
        {"rejected", REQ_EXIT_REJECTED},
        {"invalid_signature", REQ_EXIT_INVALID_SIGNATURE},
        {"connection_closed", REQ_EXIT_CONNECTION_CLOSED},
        {"unauthorized", REQ_EXIT_UNAUTHORIZED},
    };

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(code, map[i].code))
            return map[i].exit;
    return REQ_EXIT_OTHER;
}

/* When the error body cannot be read, the status alone still tells the class. */
static int exit_for_status(int status)
{
    switch (status) {
    case 401: return REQ_EXIT_UNAUTHORIZED;
    case 404: return REQ_EXIT_NOT_CONNECTED;
    case 422: return REQ_EXIT_REJECTED;
    case 504: return REQ_EXIT_TIMEOUT;
    default: return REQ_EXIT_OTHER;
    }
}

static int report_error(const struct httpc_response *r)
{
    struct api_error e;
    char q[300];

    if (api_decode_error(r->body, r->body_len, &e) != 0) {
        cli_error("request", "the daemon answered HTTP %d without an error body", r->status);
        return exit_for_status(r->status);
    }
    cli_error("request", "%s: %s (HTTP %d%s%s)", e.code, log_quote(q, sizeof q, e.message),
              r->status, e.request_id[0] ? ", request_id=" : "", e.request_id);
    return exit_for_code(e.code);
}

/* Checks a 200 answer against what was asked. Returns an exit code. */
static int check_result(const struct httpc_response *r, const uint8_t *pk, const uint8_t *msg,
                        size_t msg_len, bool signature_only)
{
    struct api_sign_result res;
    struct wire_error err;
    char sig_b64[crypto_sign_BYTES * 2];
    int rc = REQ_EXIT_OK;

    if (api_decode_sign_result(r->body, r->body_len, CLI_MESSAGE_MAX, &res, &err) != 0) {
        cli_error("request", "malformed answer from the daemon: %s", err.message);
        return REQ_EXIT_OTHER;
    }
    /* The daemon verified the signature already; checking again here means a
     * caller never relies on a signature that does not match what it sent. */
    if (sodium_memcmp(res.public_key, pk, crypto_sign_PUBLICKEYBYTES) != 0 ||
        res.message_len != msg_len || (msg_len && memcmp(res.message, msg, msg_len) != 0)) {
        cli_error("request", "the answer is for another key or message (request_id=%s)",
                  res.request_id);
        rc = REQ_EXIT_INVALID_SIGNATURE;
    } else if (crypto_verify_sig(pk, msg, msg_len, res.signature, sizeof res.signature) != 0) {
        cli_error("request",
                  "invalid_signature: the returned signature does not verify "
                  "(request_id=%s)",
                  res.request_id);
        rc = REQ_EXIT_INVALID_SIGNATURE;
    } else if (signature_only) {
        printf("%s\n",
               crypto_b64_encode(sig_b64, sizeof sig_b64, res.signature, sizeof res.signature));
    } else {
        /* The daemon's compact JSON is one line already. */
        fwrite(r->body, 1, r->body_len, stdout);
        fputc('\n', stdout);
    }
    api_sign_result_cleanup(&res);
    if (fflush(stdout) != 0)
        rc = REQ_EXIT_OTHER;
    return rc;
}

/*
 * Where --control points: unix:/PATH (the rules of the daemon's own
 * control.listen), https:// or http://, with the checks each needs. Returns
 * 0, or a usage exit code having said why.
 */
static int parse_control(const char *control, const char *ca, bool insecure, struct httpc_target *t)
{
    char err[512];

    memset(t, 0, sizeof *t);
    if (!strncmp(control, "unix:", 5)) {
        struct addr_listen a;
        const char *why = addr_parse(control, &a);

        if (why)
            return cli_usage("request", "--control %s: %s", control, why);
        if (ca || insecure)
            return cli_usage("request",
                             "%s applies to https:// (--ca) or http:// (--insecure) "
                             "URLs, not to a Unix socket",
                             ca ? "--ca" : "--insecure");
        /* addr_parse allows ADDR_UNIX_PATH_MAX bytes: it fits. */
        if (strlen(a.host) >= sizeof t->unix_path)
            return cli_usage("request", "--control %s: the path is too long", control);
        memcpy(t->unix_path, a.host, strlen(a.host) + 1);
        return 0;
    }
    if (url_parse(control, &t->url, err, sizeof err) != 0)
        return cli_usage("request", "--control: %s", err);
    t->tls = !strcmp(t->url.scheme, "https");
    if (!t->tls && strcmp(t->url.scheme, "http") != 0)
        return cli_usage("request", "--control must be an https://, http:// or unix:/ URL");
    if (t->tls && insecure)
        return cli_usage("request", "--insecure does not turn certificate checks off; use --ca "
                                    "FILE to trust a private CA");
    if (ca && !t->tls)
        return cli_usage("request", "--ca needs an https:// URL");
    if (ca) {
        /* Checked without blocking: a FIFO would hang the TLS set-up. */
        int fd = files_open(ca, false, "CA file", err, sizeof err), e = errno;

        if (fd == WSS_ERR_IO)
            return cli_usage("request", "--ca: cannot read %s: %s", ca, strerror(e));
        if (fd < 0)
            return cli_usage("request", "--ca: %s", err);
        close(fd);
        t->ca_file = ca;
    }
    /* Plain HTTP to another machine shows the bearer token and the message to
     * anyone on the path, and lets them change the answer: the same rule as
     * the agent's ws:// URLs. */
    if (!t->tls && !addr_host_is_loopback(t->url.host) && !insecure)
        return cli_usage("request",
                         "refusing plain http:// to %s: the token and the message "
                         "would cross the network in clear text; use https:// (the "
                         "daemon's control.tls), reach the control API on loopback "
                         "(e.g. through an SSH tunnel), or pass --insecure",
                         t->url.host);
    return 0;
}

int request_main(int argc, char **argv)
{
    struct cli_message_args margs = {0};
    const char *key = NULL, *control = DEFAULT_CONTROL, *token_file = NULL, *ca = NULL;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], *msg = NULL;
    size_t msg_len = 0, body_len = 0;
    uint64_t timeout_ms = 0, wait_ms = 0;
    bool wait_all = false;
    const char *label = NULL;
    struct httpc_response resp = {0};
    char err[512], token[TOKEN_MAX + 1], path[URL_PATH_MAX + sizeof SIGN_PATH];
    char *body = NULL;
    bool signature_only = false, insecure = false;
    struct httpc_target target;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "+k:m:f:x:c:T:t:w:Wl:sh", request_options, NULL)) != -1) {
        switch (opt) {
        case 'k': key = optarg; break;
        case 'm':
        case 'f':
        case 'x': cli_message_arg(&margs, opt, optarg); break;
        case 'c': control = optarg; break;
        case 'T': token_file = optarg; break;
        case 't':
            if (!cli_parse_u64(optarg, 1, WSS_TIMEOUT_MAX_MS, &timeout_ms))
                return cli_usage("request", "--timeout-ms must be an integer from 1 to %u",
                                 WSS_TIMEOUT_MAX_MS);
            break;
        case 'w':
            if (!cli_parse_u64(optarg, 0, WSS_TIMEOUT_MAX_MS, &wait_ms))
                return cli_usage("request", "--wait-ms must be an integer from 0 to %u",
                                 WSS_TIMEOUT_MAX_MS);
            break;
        case 'W': wait_all = true; break;
        case 'l':
            if (!util_label_valid(optarg, strlen(optarg)))
                return cli_usage("request",
                                 "--label must be at most %d bytes of UTF-8 without "
                                 "control characters",
                                 UTIL_LABEL_MAX);
            label = optarg;
            break;
        case 's': signature_only = true; break;
        case 'I': insecure = true; break;
        case 'C': ca = optarg; break;
        case 'h': request_help(); return REQ_EXIT_OK;
        default: return cli_usage("request", "invalid option");
        }
    }
    if (optind < argc)
        return cli_usage("request", "unexpected argument '%s'", argv[optind]);
    if (!key)
        return cli_usage("request", "--key PUBKEY is required");
    if (wait_all && wait_ms)
        return cli_usage("request", "--wait and --wait-ms exclude each other");
    if (wait_all) {
        if (!timeout_ms)
            timeout_ms = WSS_TIMEOUT_MAX_MS;
        wait_ms = timeout_ms;
    }
    if (timeout_ms && wait_ms > timeout_ms)
        return cli_usage("request", "--wait-ms must not exceed --timeout-ms");
    if (cli_parse_pubkey(key, pk, err, sizeof err) != 0)
        return cli_usage("request", "--key: %s", err);
    if ((rc = parse_control(control, ca, insecure, &target)) != 0)
        return rc;
    if (token_file && read_token(token_file, token, sizeof token, err, sizeof err) != 0)
        return cli_usage("request", "%s", err);
    if (cli_message_load(&margs, &msg, &msg_len, err, sizeof err) != 0) {
        rc = cli_usage("request", "%s", err);
        goto out;
    }

    /* A base path in --control (a proxy prefix) is kept; a trailing '/' is not doubled. */
    {
        size_t n = strlen(target.url.path);

        while (n && target.url.path[n - 1] == '/')
            target.url.path[--n] = '\0';
        snprintf(path, sizeof path, "%s%s", target.url.path, SIGN_PATH);
    }
    body =
        api_encode_sign_call(&body_len, &(struct api_sign_call){.pk = pk,
                                                                .msg = msg,
                                                                .msg_len = msg_len,
                                                                .timeout_ms = (uint32_t)timeout_ms,
                                                                .wait_ms = (uint32_t)wait_ms,
                                                                .label = label});
    rc = httpc_post_json(&target, path, token_file ? token : NULL, body, body_len,
                         (timeout_ms ? timeout_ms : WSS_TIMEOUT_MAX_MS) + HTTP_SLACK_MS, &resp, err,
                         sizeof err);
    if (rc == WSS_ERR_TIMEOUT) {
        cli_error("request", "timeout: the control API at %s did not answer in time: %s", control,
                  err);
        rc = REQ_EXIT_TIMEOUT;
    } else if (rc) {
        cli_error("request", "control API at %s: %s", control, err);
        rc = REQ_EXIT_OTHER;
    } else if (resp.status == 200) {
        rc = check_result(&resp, pk, msg, msg_len, signature_only);
    } else {
        rc = report_error(&resp);
    }
out:
    sodium_memzero(token, sizeof token);
    httpc_response_cleanup(&resp);
    free(body);
    free(msg);
    return rc;
}
