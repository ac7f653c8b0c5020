/*
 * Helpers shared by the wssign subcommands: exit codes, usage errors, number
 * and key parsing, bounded file reads and the --message/--message-file/
 * --message-hex trio. No network, no lws.
 */
#ifndef WSSIGN_CLI_H
#define WSSIGN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

/* Exit codes shared by every subcommand. request adds its own (see request.h). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1  /* verify: invalid signature; agent/keygen: a runtime failure */
#define CLI_EXIT_USAGE 2 /* bad options or unusable input */

/* Largest message any subcommand handles: the daemon's own upper bound
 * for requests.max_message_bytes. */
#define CLI_MESSAGE_MAX 1048576

/* Per command line: the message options as given, before loading. */
struct cli_message_args {
    const char *text; /* --message */
    const char *file; /* --message-file ("-" is stdin) */
    const char *hex;  /* --message-hex */
    int count;        /* how many of the three were given (repeats included) */
};

/*
 * Prints "wssign SUB: <formatted text>" and a hint to run "wssign SUB --help"
 * on stderr. Returns CLI_EXIT_USAGE so callers can `return cli_usage(...)`.
 */
int cli_usage(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "wssign SUB: <formatted text>" on stderr. */
void cli_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Parses a decimal unsigned integer in [min, max] (no sign, no spaces, no
 * suffix). Returns true and sets *out, or false.
 */
bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * Decodes a public key given as standard padded base64 of 32 bytes.
 * Returns 0, or WSS_ERR_INVAL with a reason in err.
 */
int cli_parse_pubkey(const char *b64, uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *err,
                     size_t errlen);

/*
 * Decodes hex (either case, even length, no separators) into a new buffer of
 * at most max bytes. Returns 0 and sets *out (caller frees with free()) and
 * *len, or WSS_ERR_INVAL with a reason in err.
 */
int cli_parse_hex(const char *hex, size_t max, uint8_t **out, size_t *len, char *err,
                  size_t errlen);

/*
 * Reads a whole file ("-" is stdin) of at most max bytes into a new buffer
 * (NUL-terminated for convenience; the NUL is not counted in *len). Returns 0
 * (caller frees with free()), WSS_ERR_IO (cannot open or read) or
 * WSS_ERR_INVAL (longer than max), with a reason in err.
 */
int cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len, char *err,
                  size_t errlen);

/* Records one of the message options; opt is 'm' (text), 'f' (file) or 'x' (hex). */
void cli_message_arg(struct cli_message_args *m, int opt, const char *value);

/*
 * Loads the message named by exactly one of the three options. Returns 0 and
 * sets *out (caller frees with free()) and *len, or WSS_ERR_INVAL /
 * WSS_ERR_IO with a reason in err (none or several options given, unreadable
 * file, bad hex, longer than CLI_MESSAGE_MAX).
 */
int cli_message_load(const struct cli_message_args *m, uint8_t **out, size_t *len, char *err,
                     size_t errlen);

#endif
