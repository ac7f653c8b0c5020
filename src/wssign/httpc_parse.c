/*
 * HTTP/1.1 answers for `wssign request`, parsed as they arrive. Deliberately
 * narrow: a status line, Content-Length or a chunked body, everything
 * bounded. Works in the caller's buffer; holds no state.
 */
#include "httpc_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <wssignd/errors.h>

/* Per response: what the header block said. */
struct head {
    int status;
    size_t header_len; /* bytes up to and including the blank line */
    bool has_length;
    size_t content_length;
    bool chunked;
};

/* Parses the header block in buf[0..len). Returns 1 if complete, 0 if more
 * bytes are needed, WSS_ERR_PROTO if malformed. */
static int parse_head(const char *buf, size_t len, struct head *h)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4), *line, *eol;

    memset(h, 0, sizeof *h);
    if (!end)
        return len > HTTPC_HEADER_MAX ? WSS_ERR_PROTO : 0;
    h->header_len = (size_t)(end - buf) + 4;
    if (h->header_len > HTTPC_HEADER_MAX)
        return WSS_ERR_PROTO;
    if (h->header_len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[9] < '1' ||
        buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' || buf[11] > '9')
        return WSS_ERR_PROTO;
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    for (line = memmem(buf, h->header_len, "\r\n", 2) + 2; line < end; line = eol + 2) {
        const char *colon, *v;
        size_t vlen;

        eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            return WSS_ERR_PROTO;
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        vlen = (size_t)(eol - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if ((size_t)(colon - line) == 14 && !strncasecmp(line, "Content-Length", 14)) {
            size_t n = 0;

            if (!vlen)
                return WSS_ERR_PROTO;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9' || n > HTTPC_RESPONSE_MAX)
                    return WSS_ERR_PROTO;
                n = n * 10 + (size_t)(v[i] - '0');
            }
            h->has_length = true;
            h->content_length = n;
        } else if ((size_t)(colon - line) == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
            h->chunked = vlen >= 7 && !strncasecmp(v + vlen - 7, "chunked", 7);
        }
    }
    return 1;
}

/*
 * Decodes a chunked body into out (NULL: only check that it is complete).
 * Returns the decoded length when the final chunk has arrived, 0 with
 * *need_more set when it has not, or WSS_ERR_PROTO.
 */
static long dechunk(const char *in, size_t len, char *out, bool *need_more)
{
    size_t pos = 0, o = 0;

    *need_more = false;
    for (;;) {
        const char *eol = memmem(in + pos, len - pos, "\r\n", 2);
        size_t size = 0, digits = 0;

        if (!eol) {
            *need_more = true;
            return 0;
        }
        for (const char *p = in + pos; p < eol && *p != ';'; p++, digits++) {
            int d = *p >= '0' && *p <= '9'   ? *p - '0'
                    : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                    : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                             : -1;

            if (d < 0 || size > HTTPC_RESPONSE_MAX)
                return WSS_ERR_PROTO;
            size = size * 16 + (size_t)d;
        }
        if (!digits)
            return WSS_ERR_PROTO;
        pos = (size_t)(eol - in) + 2;
        if (size == 0) {
            /* Trailers are not used by the daemon; wait for the blank line. */
            if (len - pos < 2) {
                *need_more = true;
                return 0;
            }
            return (long)o;
        }
        if (len - pos < size + 2) {
            *need_more = true;
            return 0;
        }
        /* out may be in itself, before it: o never passes pos. */
        if (out)
            memmove(out + o, in + pos, size);
        o += size;
        pos += size + 2;
    }
}

int httpc_parse_response(char *buf, size_t *len, bool eof, int *status, char *err, size_t errlen)
{
    struct head h;
    size_t have;
    bool more;
    long n;
    int got;

    for (;;) {
        got = parse_head(buf, *len, &h);
        if (got < 0) {
            snprintf(err, errlen, "the answer is not valid HTTP/1.1");
            return WSS_ERR_PROTO;
        }
        if (got == 0 || h.status >= 200)
            break;
        /* Interim 1xx answers are dropped (none are expected: no Expect header is sent). */
        memmove(buf, buf + h.header_len, *len - h.header_len);
        *len -= h.header_len;
    }
    if (got == 1) {
        have = *len - h.header_len;
        if (h.chunked) {
            n = dechunk(buf + h.header_len, have, NULL, &more);
            if (n < 0) {
                snprintf(err, errlen, "bad chunked encoding in the answer");
                return WSS_ERR_PROTO;
            }
            if (!more) {
                /* Complete: decoded to the front of buf (decoding never grows it). */
                *len = (size_t)dechunk(buf + h.header_len, have, buf, &more);
                goto done;
            }
        } else if (h.has_length && have >= h.content_length) {
            memmove(buf, buf + h.header_len, h.content_length);
            *len = h.content_length;
            goto done;
        } else if (!h.has_length && eof) {
            memmove(buf, buf + h.header_len, have);
            *len = have;
            goto done;
        }
    }
    if (eof) {
        snprintf(err, errlen, "the connection closed before the answer was complete");
        return WSS_ERR_IO;
    }
    return 0;
done:
    buf[*len] = '\0';
    *status = h.status;
    return 1;
}
