/*
 * wssign entry point: picks the subcommand, installs the signal handlers,
 * initialises libsodium and exits with the subcommand's status. Nothing else.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "cli.h"
#include "commands.h"
#include "crypto.h"
#include "version.h"

/* Set by SIGINT/SIGTERM/SIGHUP/SIGQUIT; the agent's loop polls it. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: wssign COMMAND [options]\n"
               "\n"
               "Signer-side tool for wssignd (protocol wssign.v1).\n"
               "\n"
               "Commands:\n"
               "  keygen   make an Ed25519 key file and print its public key\n"
               "  pubkey   print the public key of a key file\n"
               "  agent    connect to a daemon and answer sign requests\n"
               "  request  ask a daemon's control API for a signature\n"
               "  verify   check a signature offline\n"
               "\n"
               "Options:\n"
               "  -V, --version  print the version and exit\n"
               "  -h, --help     print this help and exit\n"
               "\n"
               "Run 'wssign COMMAND --help' for the options of a command.\n");
}

static int run_agent(int argc, char **argv)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: poll() in the event loop returns at once with EINTR.
     * Every signal that would otherwise end the process without its cleanup
     * (a hang-up, a quit from the terminal) ends it through the orderly
     * stop, which wipes the key. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    /* Writes to a closed socket or a --confirm command that stopped reading
     * must fail with EPIPE, not kill the agent. */
    signal(SIGPIPE, SIG_IGN);
    return agent_main(argc, argv, &stop_requested);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (!cmd)
        return cli_usage(NULL, "a command is required (keygen, pubkey, agent, request, verify)");
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("wssign %s (libwebsockets %s, libsodium %s)\n", WSSIGND_VERSION,
               lws_get_library_version(), sodium_version_string());
        return CLI_EXIT_OK;
    }
    if (crypto_init() != 0) {
        fprintf(stderr, "wssign: cannot initialise libsodium\n");
        return CLI_EXIT_FAIL;
    }
    /* Each subcommand sees argv starting at its own name. */
    if (!strcmp(cmd, "keygen"))
        return keygen_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "pubkey"))
        return pubkey_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "agent"))
        return run_agent(argc - 1, argv + 1);
    if (!strcmp(cmd, "request"))
        return request_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify"))
        return verify_main(argc - 1, argv + 1);
    return cli_usage(NULL, "unknown command '%s' (keygen, pubkey, agent, request, verify)", cmd);
}
