/*
 * The keygen and pubkey subcommands: make a new Ed25519 key file, and show
 * the public key of an existing one. File formats live in keyfile.c.
 */
#include <getopt.h>
#include <stdio.h>

#include <wssignd/errors.h>

#include "cli.h"
#include "commands.h"
#include "crypto.h"
#include "keyfile.h"

static const struct option keygen_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void keygen_help(void)
{
    printf("Usage: wssign keygen [-o FILE]\n"
           "\n"
           "Makes a new Ed25519 key and prints its public key (standard base64).\n"
           "\n"
           "The private key is written in PKCS#8 PEM (\"BEGIN PRIVATE KEY\"), the format\n"
           "'openssl genpkey -algorithm ed25519' writes and 'openssl pkey' reads.\n"
           "\n"
           "Options:\n"
           "  -o, --output FILE  write the private key to FILE, created with mode 0600;\n"
           "                     an existing FILE is never overwritten. The public key\n"
           "                     is printed on stdout. Without -o the private key PEM\n"
           "                     goes to stdout and the public key to stderr.\n"
           "  -h, --help         show this help\n"
           "\n"
           "Exit status: 0 ok, 1 the key could not be written, 2 usage error.\n");
}

int keygen_main(int argc, char **argv)
{
    const char *output = NULL;
    char err[512], pub[KEYFILE_PUB_B64_BYTES];
    struct keypair kp;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "+o:h", keygen_options, NULL)) != -1) {
        switch (opt) {
        case 'o': output = optarg; break;
        case 'h': keygen_help(); return CLI_EXIT_OK;
        default: return cli_usage("keygen", "invalid option");
        }
    }
    if (optind < argc)
        return cli_usage("keygen", "unexpected argument '%s'", argv[optind]);
    if (output && !output[0])
        return cli_usage("keygen", "--output needs a file name");

    keyfile_generate(&kp);
    if (output)
        rc = keyfile_save(output, &kp, err, sizeof err);
    else
        rc = keyfile_write_pem(stdout, &kp, err, sizeof err);
    if (rc) {
        keyfile_wipe(&kp);
        cli_error("keygen", "%s", err);
        return CLI_EXIT_FAIL;
    }
    keyfile_pub_b64(pub, &kp);
    keyfile_wipe(&kp);
    if (output)
        printf("%s\n", pub);
    else
        fprintf(stderr, "public key: %s\n", pub);
    return CLI_EXIT_OK;
}

static const struct option pubkey_options[] = {
    {"key", required_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void pubkey_help(void)
{
    printf("Usage: wssign pubkey --key FILE\n"
           "\n"
           "Prints the public key (standard base64) of a private key file.\n"
           "\n"
           "Key files: PKCS#8 PEM (\"BEGIN PRIVATE KEY\", as written by 'wssign keygen' and\n"
           "'openssl genpkey -algorithm ed25519'; not encrypted), or a 32-byte Ed25519 seed\n"
           "as 64 hex digits. The file must not be accessible by group or others\n"
           "(chmod 600).\n"
           "\n"
           "Options:\n"
           "  -k, --key FILE  the private key file\n"
           "  -h, --help      show this help\n"
           "\n"
           "Exit status: 0 ok, 1 the key file was refused, 2 usage error.\n");
}

int pubkey_main(int argc, char **argv)
{
    const char *path = NULL;
    char err[512], pub[KEYFILE_PUB_B64_BYTES];
    struct keypair kp;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "+k:h", pubkey_options, NULL)) != -1) {
        switch (opt) {
        case 'k': path = optarg; break;
        case 'h': pubkey_help(); return CLI_EXIT_OK;
        default: return cli_usage("pubkey", "invalid option");
        }
    }
    if (optind < argc)
        return cli_usage("pubkey", "unexpected argument '%s'", argv[optind]);
    if (!path)
        return cli_usage("pubkey", "--key FILE is required");
    if (keyfile_load(path, &kp, err, sizeof err) != 0) {
        cli_error("pubkey", "%s", err);
        return CLI_EXIT_FAIL;
    }
    printf("%s\n", keyfile_pub_b64(pub, &kp));
    keyfile_wipe(&kp);
    return CLI_EXIT_OK;
}
