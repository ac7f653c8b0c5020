/*
 * Command-line helpers shared by the subcommands: error printing, strict
 * number/key/hex parsing and bounded reads of message files. Holds no state.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "crypto.h"
#include "util.h"

static void vprint(const char *sub, const char *fmt, va_list ap)
{
    char text[1024];

    vsnprintf(text, sizeof text, fmt, ap);
    fprintf(stderr, "wssign%s%s: %s\n", sub ? " " : "", sub ? sub : "", text);
}

int cli_usage(const char *sub, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint(sub, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'wssign%s%s --help' for more information.\n", sub ? " " : "",
            sub ? sub : "");
    return CLI_EXIT_USAGE;
}

void cli_error(const char *sub, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprint(sub, fmt, ap);
    va_end(ap);
}

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    unsigned long long v;
    char *end;

    /* strtoull accepts leading spaces and a minus sign; an option value must not. */
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int cli_parse_pubkey(const char *b64, uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *err,
                     size_t errlen)
{
    size_t n = 0;

    if (crypto_b64_decode(pk, crypto_sign_PUBLICKEYBYTES, &n, b64, strlen(b64)) != 0 ||
        n != crypto_sign_PUBLICKEYBYTES) {
        snprintf(err, errlen, "a public key must be standard base64 (with padding) of %d bytes",
                 crypto_sign_PUBLICKEYBYTES);
        return WSS_ERR_INVAL;
    }
    return 0;
}

int cli_parse_hex(const char *hex, size_t max, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    size_t n = strlen(hex), got = 0;
    const char *end = NULL;
    uint8_t *buf;

    if (n % 2) {
        snprintf(err, errlen, "hex must have an even number of digits");
        return WSS_ERR_INVAL;
    }
    if (n / 2 > max) {
        snprintf(err, errlen, "hex value longer than %zu bytes", max);
        return WSS_ERR_INVAL;
    }
    buf = xmalloc(n / 2 + 1);
    /* No ignored characters: the whole string must be hex digits. */
    if (sodium_hex2bin(buf, n / 2 + 1, hex, n, NULL, &got, &end) != 0 || end != hex + n ||
        got != n / 2) {
        free(buf);
        snprintf(err, errlen, "not a hex string (digits 0-9, a-f only)");
        return WSS_ERR_INVAL;
    }
    *out = buf;
    *len = got;
    return 0;
}

int cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len, char *err,
                  size_t errlen)
{
    bool is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    size_t cap = 4096, n = 0;
    uint8_t *buf;
    int rc = 0;

    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return WSS_ERR_IO;
    }
    buf = xmalloc(cap);
    for (;;) {
        size_t got;

        if (n == cap) {
            /* Read one byte past max at most, to tell "exactly max" from "too long". */
            if (cap > max) {
                snprintf(err, errlen, "%s is longer than %zu bytes", is_stdin ? "stdin" : path,
                         max);
                rc = WSS_ERR_INVAL;
                break;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "cannot read %s: %s", is_stdin ? "stdin" : path,
                         strerror(errno));
                rc = WSS_ERR_IO;
            }
            break;
        }
    }
    if (!rc && n > max) {
        snprintf(err, errlen, "%s is longer than %zu bytes", is_stdin ? "stdin" : path, max);
        rc = WSS_ERR_INVAL;
    }
    if (!is_stdin)
        fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf = xrealloc(buf, n + 1);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void cli_message_arg(struct cli_message_args *m, int opt, const char *value)
{
    m->count++;
    if (opt == 'm')
        m->text = value;
    else if (opt == 'f')
        m->file = value;
    else
        m->hex = value;
}

int cli_message_load(const struct cli_message_args *m, uint8_t **out, size_t *len, char *err,
                     size_t errlen)
{
    if (m->count != 1) {
        snprintf(err, errlen, "%s",
                 m->count ? "give only one of --message, --message-file and "
                            "--message-hex"
                          : "a message is required: --message TEXT, "
                            "--message-file FILE or --message-hex HEX");
        return WSS_ERR_INVAL;
    }
    if (m->text) {
        size_t n = strlen(m->text);

        if (n > CLI_MESSAGE_MAX) {
            snprintf(err, errlen, "--message is longer than %d bytes", CLI_MESSAGE_MAX);
            return WSS_ERR_INVAL;
        }
        *out = xmemdup(m->text, n);
        *len = n;
        return 0;
    }
    if (m->file)
        return cli_read_file(m->file, CLI_MESSAGE_MAX, out, len, err, errlen);
    if (cli_parse_hex(m->hex, CLI_MESSAGE_MAX, out, len, err, errlen) != 0) {
        char why[200];

        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "--message-hex: %s", why);
        return WSS_ERR_INVAL;
    }
    return 0;
}
