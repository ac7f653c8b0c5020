/*
 * The agent's automatic signing rules: the reserved introduction prefix,
 * the size limit and the allowed prefixes. Pure functions of the message;
 * the --confirm command (confirm.c) is asked only after these pass.
 */
#ifndef WSSIGN_POLICY_H
#define WSSIGN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per agent: the rules from the command line. */
struct policy {
    size_t max_bytes; /* longest message signed */
    struct policy_prefix {
        uint8_t *bytes;
        size_t len;
    } * allow; /* when n_allow > 0, a message must start with one of these */
    size_t n_allow;
};

/* Sets the defaults: max_bytes as given, no prefix list (any prefix allowed). */
void policy_init(struct policy *p, size_t max_bytes);

/* Frees the prefix list. */
void policy_cleanup(struct policy *p);

/*
 * Adds an allowed prefix from its command-line form:
 *   hex:0a0b  the bytes 0a 0b (hex digits, even count, at least one byte)
 *   str:TEXT  the bytes of TEXT, taken literally (for text starting with "hex:")
 *   TEXT      anything else: the bytes of TEXT
 * Returns 0, or WSS_ERR_INVAL with a reason in err (empty prefix, bad hex).
 */
int policy_add_prefix(struct policy *p, const char *spec, char *err, size_t errlen);

/*
 * Decides whether msg may be signed without asking anyone else. Returns NULL
 * when it may, or the reason it is refused, checked in this order:
 *   "reserved_prefix"     msg starts with "wssign-introduction-v1"
 *   "too_long"            msg is longer than max_bytes
 *   "prefix_not_allowed"  a prefix list is set and msg starts with none of them
 * The reason is a static string, sent to the daemon in sign_reject.
 */
const char *policy_check(const struct policy *p, const uint8_t *msg, size_t len);

#endif
