/*
 * libFuzzer target for the parser of the control API's answers
 * (httpc_parse_response in src/wssign/httpc_parse.c): whatever answers at
 * `wssign request --control` reaches it. Each input is the whole byte stream
 * of one answer. It is parsed twice: at once, then in pieces whose sizes the
 * input's own bytes choose, as reads from a socket would deliver it. Besides
 * ASan/UBSan, it checks that both give the same outcome, that a complete
 * answer's body is NUL-terminated and no longer than the input, and that
 * eof always ends the parse.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "fuzz_check.h"
#include "httpc_parse.h"

/* Per parse: its outcome; body points into buf (freed by the caller). */
struct outcome {
    int rc;
    int status;
    char *buf;
    size_t len;
};

/* Feeds data in pieces: each piece is 1 + (the byte at its start) % 64 long
 * (all at once when whole), then eof if the parser still wants more. */
static struct outcome feed(const uint8_t *data, size_t size, bool whole)
{
    struct outcome o = {0, 0, malloc(size + 1), 0};
    char err[256];
    size_t fed = 0;

    CHECK(o.buf != NULL);
    do {
        size_t n = whole ? size : 1 + data[fed] % 64;

        if (n > size - fed)
            n = size - fed;
        memcpy(o.buf + o.len, data + fed, n);
        o.len += n;
        fed += n;
        err[0] = '\0';
        o.rc = httpc_parse_response(o.buf, &o.len, false, &o.status, err, sizeof err);
        CHECK(o.rc == 0 || o.rc == 1 || (o.rc == WSS_ERR_PROTO && err[0]));
    } while (o.rc == 0 && fed < size);
    if (o.rc == 0) {
        err[0] = '\0';
        o.rc = httpc_parse_response(o.buf, &o.len, true, &o.status, err, sizeof err);
        /* eof ends it one way or another */
        CHECK(o.rc == 1 || ((o.rc == WSS_ERR_PROTO || o.rc == WSS_ERR_IO) && err[0]));
    }
    if (o.rc == 1) {
        CHECK(o.len <= size && o.buf[o.len] == '\0');
        CHECK(o.status >= 200 && o.status <= 599);
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome a = feed(data, size, true), b = feed(data, size, false);

    CHECK(a.rc == b.rc);
    if (a.rc == 1) {
        CHECK(a.status == b.status && a.len == b.len);
        CHECK(memcmp(a.buf, b.buf, a.len) == 0);
    }
    free(a.buf);
    free(b.buf);
    return 0;
}
