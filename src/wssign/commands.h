/*
 * Entry points of the wssign subcommands. Each parses its own options
 * (argv[0] is the subcommand name), prints its own help and errors, and
 * returns the process exit status; only main() exits.
 */
#ifndef WSSIGN_COMMANDS_H
#define WSSIGN_COMMANDS_H

#include <signal.h>

/* keygen [-o FILE]: 0 ok, 1 cannot write the key, 2 usage. */
int keygen_main(int argc, char **argv);

/* pubkey --key FILE: prints the public key of a key file. 0 ok, 1 bad key file, 2 usage. */
int pubkey_main(int argc, char **argv);

/*
 * agent --url URL --key FILE [...]: runs until *stop becomes non-zero (set
 * from the SIGINT/SIGTERM handler). 0 after a signal, 1 on a fatal start-up
 * error (key file, TLS setup), 2 usage.
 */
int agent_main(int argc, char **argv, volatile sig_atomic_t *stop);

/* request ...: see request.c for the exit codes (0, 2..9). */
int request_main(int argc, char **argv);

/* verify ...: 0 valid, 1 invalid, 2 usage. */
int verify_main(int argc, char **argv);

#endif
