/*
 * Signing rules that need no human: domain separation from introduction
 * proofs, a size bound and a prefix allow-list. Owns the prefix list.
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "cli.h"
#include "crypto.h"
#include "util.h"

void policy_init(struct policy *p, size_t max_bytes)
{
    memset(p, 0, sizeof *p);
    p->max_bytes = max_bytes;
}

void policy_cleanup(struct policy *p)
{
    for (size_t i = 0; i < p->n_allow; i++)
        free(p->allow[i].bytes);
    free(p->allow);
    p->allow = NULL;
    p->n_allow = 0;
}

int policy_add_prefix(struct policy *p, const char *spec, char *err, size_t errlen)
{
    uint8_t *bytes = NULL;
    size_t len = 0;

    if (!strncmp(spec, "hex:", 4)) {
        char why[200];

        if (cli_parse_hex(spec + 4, CLI_MESSAGE_MAX, &bytes, &len, why, sizeof why) != 0) {
            snprintf(err, errlen, "bad hex prefix '%s': %s", spec, why);
            return WSS_ERR_INVAL;
        }
    } else {
        const char *text = strncmp(spec, "str:", 4) ? spec : spec + 4;

        len = strlen(text);
        bytes = xmemdup(text, len);
    }
    if (len == 0) {
        free(bytes);
        snprintf(err, errlen, "empty prefix '%s' (it would allow everything)", spec);
        return WSS_ERR_INVAL;
    }
    p->allow = xrealloc(p->allow, (p->n_allow + 1) * sizeof *p->allow);
    p->allow[p->n_allow].bytes = bytes;
    p->allow[p->n_allow].len = len;
    p->n_allow++;
    return 0;
}

const char *policy_check(const struct policy *p, const uint8_t *msg, size_t len)
{
    /* Checked first and unconditionally: signing bytes that look like an
     * introduction transcript would let the requester impersonate this key
     * to another server. No option turns this off. */
    if (crypto_has_reserved_prefix(msg, len))
        return "reserved_prefix";
    if (len > p->max_bytes)
        return "too_long";
    if (p->n_allow) {
        for (size_t i = 0; i < p->n_allow; i++)
            if (len >= p->allow[i].len && !memcmp(msg, p->allow[i].bytes, p->allow[i].len))
                return NULL;
        return "prefix_not_allowed";
    }
    return NULL;
}
