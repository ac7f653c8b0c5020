/*
 * wssignd entry point: command line, config, run, exit code. Nothing else.
 */
#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "log_lws.h"
#include "version.h"

#define EXIT_USAGE 2

static const char usage[] =
    "Usage: wssignd [options]\n"
    "\n"
    "WebSocket signing daemon: routes sign requests to connected Ed25519 key holders.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE       read settings from the JSON file FILE\n"
    "      --listen ADDR:PORT  signer listener (overrides \"listen\"; default 127.0.0.1:8080)\n"
    "      --control ADDR:PORT control listener (overrides \"control.listen\"; default "
    "127.0.0.1:8081)\n"
    "      --log-level LEVEL   err, warn, notice, info or debug (overrides \"log_level\")\n"
    "      --insecure          allow a non-loopback signer listener without TLS\n"
    "      --check-config      check the configuration and exit (0: valid, 1: invalid)\n"
    "      --dump-config       check the configuration as --check-config does, then print\n"
    "                          the effective settings as JSON (no secrets) and exit\n"
    "  -V, --version           print the version and exit\n"
    "  -h, --help              print this help and exit\n"
    "\n"
    "Exit status: 0 after a clean shutdown, or when --check-config or --dump-config\n"
    "finds the configuration valid; 1 on a configuration or start-up error; 2 on wrong usage.\n"
    "\n"
    "Signals: SIGHUP reloads the configuration file without dropping connections;\n"
    "SIGTERM and SIGINT drain (pending requests end shutting_down) and exit.\n"
    "\n"
    "See man wssignd (options, signals, files) and man wssignd.json (every setting).\n";

enum { OPT_LISTEN = 256, OPT_CONTROL, OPT_LOG_LEVEL, OPT_INSECURE, OPT_CHECK, OPT_DUMP };

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"dump-config", no_argument, NULL, OPT_DUMP},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Command-line values, checked when parsed and applied over the config file. */
struct cli {
    const char *config;
    struct addr_listen listen, control;
    bool has_listen, has_control;
    int log_level; /* -1: not given */
    int insecure, check, dump;
};

/* A bad value of a flag is a usage error (exit 2), like an unknown flag. */
static int bad_value(const char *msg)
{
    fprintf(stderr, "wssignd: %s\n%s", msg, usage);
    return -1;
}

static int parse_cli(int argc, char **argv, struct cli *cli)
{
    int opt;

    char err[512];

    memset(cli, 0, sizeof *cli);
    cli->log_level = -1;
    while ((opt = getopt_long(argc, argv, "c:Vh", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c': cli->config = optarg; break;
        case OPT_LISTEN:
            if (addr_parse_listen(optarg, &cli->listen, "--listen", err, sizeof err) != 0)
                return bad_value(err);
            cli->has_listen = true;
            break;
        case OPT_CONTROL:
            if (addr_parse_listen(optarg, &cli->control, "--control", err, sizeof err) != 0)
                return bad_value(err);
            cli->has_control = true;
            break;
        case OPT_LOG_LEVEL:
            if ((cli->log_level = log_level_parse(optarg)) < 0) {
                snprintf(err, sizeof err,
                         "--log-level: unknown level '%.64s' (err, warn, notice, "
                         "info or debug)",
                         optarg);
                return bad_value(err);
            }
            break;
        case OPT_INSECURE: cli->insecure = 1; break;
        case OPT_CHECK: cli->check = 1; break;
        case OPT_DUMP: cli->dump = 1; break;
        case 'V':
            printf("wssignd %s (libwebsockets %s)\n", WSSIGND_VERSION, lws_get_library_version());
            exit(0);
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wssignd: unexpected argument '%s'\n%s", argv[optind], usage);
        return -1;
    }
    return 0;
}

static void apply_cli(struct config *cfg, const struct cli *cli)
{
    if (cli->has_listen)
        cfg->listen = cli->listen;
    if (cli->has_control)
        cfg->control = cli->control;
    if (cli->log_level >= 0)
        cfg->log_level = cli->log_level;
    if (cli->insecure)
        cfg->insecure = true;
}

/* Per process: what a reload needs to rebuild the configuration. */
struct loader {
    struct cli cli;
};

/* Builds a checked configuration from the file and the command line. */
static int load_config(struct config *cfg, char *err, size_t errlen, void *arg)
{
    const struct loader *ld = arg;

    config_init(cfg);
    if (ld->cli.config && config_load(cfg, ld->cli.config, err, errlen) != 0)
        return -1;
    apply_cli(cfg, &ld->cli);
    if (config_resolve(cfg, err, errlen) != 0 || config_check(cfg, err, errlen) != 0)
        return -1;
    return 0;
}

/* --dump-config: the checked settings, controller defaults filled in, on
 * stdout. Returns the exit status. */
static int dump_config(struct config *cfg)
{
    char *text;
    int rc;

    daemon_fill_defaults(cfg);
    text = config_dump(cfg);
    rc = fputs(text, stdout) == EOF || fflush(stdout) != 0 ? 1 : 0;

    free(text);
    if (rc)
        log_err("event=dump_failed msg=\"cannot write to stdout\"");
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct loader ld;
    struct wssd *d;
    char err[512] = "", quoted[600];
    int rc = 1;

    if (parse_cli(argc, argv, &ld.cli) != 0)
        return EXIT_USAGE;
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR | LLL_WARN, log_lws);

    if (load_config(&cfg, err, sizeof err, &ld) != 0) {
        log_err("event=config_error msg=%s", log_quote(quoted, sizeof quoted, err));
        goto out;
    }
    log_set_level(cfg.log_level);
    log_set_timestamps((enum log_timestamps)cfg.log_timestamps);
    if (ld.cli.check || ld.cli.dump) {
        if (daemon_check(&cfg, err, sizeof err) != 0) {
            log_err("event=config_error msg=%s", log_quote(quoted, sizeof quoted, err));
            goto out;
        }
        rc = ld.cli.dump ? dump_config(&cfg) : (printf("configuration ok\n"), 0);
        goto out;
    }

    d = daemon_new_take(&cfg, load_config, &ld, err, sizeof err);
    if (!d) {
        log_err("event=startup_failed msg=%s", log_quote(quoted, sizeof quoted, err));
        goto out;
    }
    rc = daemon_run(d);
    daemon_free(d);
out:
    config_cleanup(&cfg);
    return rc;
}
