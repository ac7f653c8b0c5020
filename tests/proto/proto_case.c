/*
 * Runs one data-driven codec case: proto_case <case-dir>.
 *
 * A case directory holds input.json (one client frame, bytes as sent) and
 * either:
 *   expected  - the frame must decode, and the one-line rendering below must
 *               equal this file's text (trailing whitespace ignored);
 *   error     - the frame must fail to decode with this error code
 *               (e.g. "bad_json"), and, if a file named request_id is also
 *               present, err->request_id must equal its text.
 * Decoding uses max_message = 1024. A file named mode holding "none" decodes
 * as the daemon does with introduction.proof "none" (WIRE_FROM_MINIMAL_CLIENT);
 * without it, as in the other modes (WIRE_FROM_CLIENT).
 *
 * Rendering (fields separated by one space, binary as lowercase hex):
 *   type=introduction public_key=<hex> host=<host> proof=<hex or ->
 *   type=sign_response request_id=<id> message_len=<n> message=<hex> signature=<hex>
 *   type=sign_reject request_id=<id> reason="<text>"
 * where <text> keeps printable ASCII, writes \" and \\ for quote and
 * backslash, and \xNN for every other byte.
 *
 * Exit status: 0 pass, 1 fail, 2 unusable case directory.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "wire.h"
#include "util.h"

#define MAX_MESSAGE 1024
#define INPUT_MAX (1024 * 1024)

/* Reads a whole file (at most INPUT_MAX bytes); NULL if absent or unreadable. */
static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    FILE *f;
    char *buf;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf = xmalloc(INPUT_MAX + 1);
    n = fread(buf, 1, INPUT_MAX + 1, f);
    if (ferror(f) || n > INPUT_MAX) {
        fprintf(stderr, "%s: unreadable or larger than %d bytes\n", path, INPUT_MAX);
        fclose(f);
        free(buf);
        exit(2);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void trim(char *s)
{
    size_t n = strlen(s);

    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

/* Growing output string. */
struct text {
    char *buf;
    size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->buf = xrealloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void puts_(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_hex(struct text *t, const uint8_t *bin, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        char h[2] = {digits[bin[i] >> 4], digits[bin[i] & 15]};
        put(t, h, 2);
    }
}

static void put_quoted(struct text *t, const char *s)
{
    char esc[5];

    puts_(t, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(t, esc, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            put(t, (const char *)&c, 1);
        } else {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put(t, esc, 4);
        }
    }
    puts_(t, "\"");
}

static char *render(const struct wire_msg *m)
{
    struct text t = {NULL, 0, 0};
    char num[32];

    switch (m->type) {
    case WIRE_INTRODUCTION:
        puts_(&t, "type=introduction public_key=");
        put_hex(&t, m->public_key, sizeof(m->public_key));
        puts_(&t, " host=");
        puts_(&t, m->host);
        puts_(&t, " proof=");
        if (m->has_proof)
            put_hex(&t, m->proof, sizeof(m->proof));
        else
            puts_(&t, "-");
        break;
    case WIRE_SIGN_RESPONSE:
        puts_(&t, "type=sign_response request_id=");
        puts_(&t, m->request_id);
        snprintf(num, sizeof(num), " message_len=%zu", m->message_len);
        puts_(&t, num);
        puts_(&t, " message=");
        put_hex(&t, m->message, m->message_len);
        puts_(&t, " signature=");
        put_hex(&t, m->signature, sizeof(m->signature));
        break;
    case WIRE_SIGN_REJECT:
        puts_(&t, "type=sign_reject request_id=");
        puts_(&t, m->request_id);
        puts_(&t, " reason=");
        put_quoted(&t, m->reason);
        break;
    default: puts_(&t, "type=?"); break;
    }
    return t.buf;
}

int main(int argc, char **argv)
{
    const char *dir;
    char *input, *expected, *error, *request_id, *mode, *got = NULL;
    enum wire_from from = WIRE_FROM_CLIENT;
    struct wire_msg msg;
    struct wire_error err;
    size_t len = 0;
    int rc, status = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <case-dir>\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    if (crypto_init() != 0)
        return 2;
    input = read_file(dir, "input.json", &len);
    expected = read_file(dir, "expected", NULL);
    error = read_file(dir, "error", NULL);
    request_id = read_file(dir, "request_id", NULL);
    mode = read_file(dir, "mode", NULL);
    if (!input || !expected == !error) {
        fprintf(stderr, "%s: needs input.json and exactly one of expected, error\n", dir);
        status = 2;
        goto out;
    }
    if (mode) {
        trim(mode);
        if (strcmp(mode, "none") != 0) {
            fprintf(stderr, "%s: mode must be \"none\"\n", dir);
            status = 2;
            goto out;
        }
        from = WIRE_FROM_MINIMAL_CLIENT;
    }

    rc = wire_decode(from, input, len, MAX_MESSAGE, &msg, &err);
    if (expected) {
        trim(expected);
        if (rc != 0) {
            fprintf(stderr, "%s: expected success, got %s: %s\n", dir, err.code, err.message);
            goto out;
        }
        got = render(&msg);
        wire_msg_cleanup(&msg);
        if (strcmp(got, expected) != 0) {
            fprintf(stderr, "%s: rendering differs\n  expected: %s\n  got:      %s\n", dir,
                    expected, got);
            goto out;
        }
    } else {
        trim(error);
        if (rc == 0) {
            got = render(&msg);
            wire_msg_cleanup(&msg);
            fprintf(stderr, "%s: expected error %s, decoded: %s\n", dir, error, got);
            goto out;
        }
        if (rc != WSS_ERR_PROTO || !err.code || strcmp(err.code, error) != 0) {
            fprintf(stderr, "%s: expected error %s, got rc=%d %s: %s\n", dir, error, rc,
                    err.code ? err.code : "(null)", err.message);
            goto out;
        }
        if (request_id) {
            trim(request_id);
            if (strcmp(err.request_id, request_id) != 0) {
                fprintf(stderr, "%s: expected request_id '%s', got '%s'\n", dir, request_id,
                        err.request_id);
                goto out;
            }
        }
        printf("%s: %s: %s\n", dir, err.code, err.message);
    }
    status = 0;

out:
    free(input);
    free(expected);
    free(error);
    free(request_id);
    free(mode);
    free(got);
    return status;
}
