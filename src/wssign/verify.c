/*
 * The verify subcommand: checks an Ed25519 signature offline, with the same
 * strict decoding and verification (crypto_verify_sig) the daemon uses.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "cli.h"
#include "commands.h"
#include "crypto.h"

static const struct option verify_options[] = {
    {"key", required_argument, NULL, 'k'},
    {"message", required_argument, NULL, 'm'},
    {"message-file", required_argument, NULL, 'f'},
    {"message-hex", required_argument, NULL, 'x'},
    {"signature", required_argument, NULL, 's'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void verify_help(void)
{
    printf("Usage: wssign verify --key PUBKEY --signature B64\n"
           "                     (--message TEXT | --message-file FILE | --message-hex HEX)\n"
           "\n"
           "Checks an Ed25519 signature offline.\n"
           "\n"
           "Options:\n"
           "  -k, --key PUBKEY          public key, standard base64 of 32 bytes\n"
           "  -s, --signature B64       signature, standard base64 of 64 bytes\n"
           "  -m, --message TEXT        the message is TEXT (its bytes, no newline added)\n"
           "  -f, --message-file FILE   the message is the contents of FILE ('-': stdin)\n"
           "  -x, --message-hex HEX     the message is these bytes in hex\n"
           "  -q, --quiet               print nothing; only the exit status tells\n"
           "  -h, --help                show this help\n"
           "\n"
           "Exactly one of --message, --message-file and --message-hex is required.\n"
           "Messages are limited to %d bytes.\n"
           "\n"
           "Exit status: 0 valid, 1 invalid, 2 usage error (including a key or signature\n"
           "that is not well-formed base64 of the right length).\n",
           CLI_MESSAGE_MAX);
}

int verify_main(int argc, char **argv)
{
    struct cli_message_args margs = {0};
    const char *key = NULL, *sig_b64 = NULL;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sig[crypto_sign_BYTES];
    uint8_t *msg = NULL;
    size_t msg_len = 0, sig_len = 0;
    char err[512];
    bool quiet = false;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "+k:m:f:x:s:qh", verify_options, NULL)) != -1) {
        switch (opt) {
        case 'k': key = optarg; break;
        case 'm':
        case 'f':
        case 'x': cli_message_arg(&margs, opt, optarg); break;
        case 's': sig_b64 = optarg; break;
        case 'q': quiet = true; break;
        case 'h': verify_help(); return CLI_EXIT_OK;
        default: return cli_usage("verify", "invalid option");
        }
    }
    if (optind < argc)
        return cli_usage("verify", "unexpected argument '%s'", argv[optind]);
    if (!key)
        return cli_usage("verify", "--key PUBKEY is required");
    if (!sig_b64)
        return cli_usage("verify", "--signature B64 is required");
    if (cli_parse_pubkey(key, pk, err, sizeof err) != 0)
        return cli_usage("verify", "--key: %s", err);
    if (crypto_b64_decode(sig, sizeof sig, &sig_len, sig_b64, strlen(sig_b64)) != 0 ||
        sig_len != sizeof sig)
        return cli_usage("verify",
                         "--signature must be standard base64 (with padding) of %d "
                         "bytes",
                         crypto_sign_BYTES);
    if (cli_message_load(&margs, &msg, &msg_len, err, sizeof err) != 0)
        return cli_usage("verify", "%s", err);

    rc = crypto_verify_sig(pk, msg, msg_len, sig, sig_len);
    free(msg);
    if (rc == 0) {
        if (!quiet)
            printf("valid\n");
        return CLI_EXIT_OK;
    }
    if (!quiet)
        fprintf(stderr, "wssign verify: invalid: the signature does not match this key and "
                        "message\n");
    return CLI_EXIT_FAIL;
}
