/*
 * The flat-object reader (jsonflat.h): one pass with a cursor, strings
 * borrowed from the input unless they hold escapes. Every rule below is one
 * of jansson 2.14's (load.c), applied only in the direction that keeps the
 * promise: what jansson refuses is never read, and what is unusual is left to
 * jansson rather than read. Owns no state; does no I/O.
 */
#include "jsonflat.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Longest integer read: 18 digits always fit jansson's 64-bit json_int_t. */
#define DIGITS_MAX 18

/* Per read: the text not read yet and where decoded strings go. */
struct rd {
    const char *p, *end;
    size_t len;  /* of the whole text: no decoded string set is longer */
    size_t used; /* of obj->buf */
    struct jsonflat *obj;
    unsigned flags;
};

/* JSON white space, as jansson skips it. */
static void skip_ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool hex4(const char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];

        if (c >= '0' && c <= '9')
            *v = *v << 4 | (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v = *v << 4 | (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v = *v << 4 | (uint32_t)(c - 'A' + 10);
        else
            return false;
    }
    return true;
}

/* Writes code point cp (valid, not a surrogate) as UTF-8; returns the end. */
static char *put_utf8(char *w, uint32_t cp)
{
    if (cp < 0x80) {
        *w++ = (char)cp;
    } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *w++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/*
 * \uXXXX at p (6 bytes or more left before end), with the low half of a
 * surrogate pair after it: the code point into *cp and the bytes used, or 0
 * for what jansson refuses (a lone or reversed surrogate, a bad digit).
 */
static size_t unicode_escape(const char *p, const char *end, uint32_t *cp)
{
    uint32_t lo;

    if (!hex4(p + 2, cp) || (*cp >= 0xdc00 && *cp <= 0xdfff))
        return 0;
    if (*cp < 0xd800 || *cp > 0xdbff)
        return 6;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &lo) || lo < 0xdc00 ||
        lo > 0xdfff)
        return 0;
    *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    return 12;
}

/*
 * The rest of a string with escapes, from q (inside the string, before the
 * first byte that needs care) into the object's buffer; the bytes from start
 * to q are copied first. Decoded text is never longer than its JSON form,
 * so the strings of one text fit in a buffer of its length.
 */
static bool escaped(struct rd *r, const char *start, const char *q, const char **s, size_t *n)
{
    const unsigned char *u;
    char *w, *w0;
    uint32_t cp;
    size_t k;

    if (!r->obj->buf)
        r->obj->buf = xmalloc(r->len);
    w = w0 = r->obj->buf + r->used;
    memcpy(w, start, (size_t)(q - start));
    w += q - start;
    for (;;) {
        if (q == r->end)
            return false; /* cut short */
        u = (const unsigned char *)q;
        if (*u == '"')
            break;
        if (*u < 0x20)
            return false; /* a control character must be escaped */
        if (*u >= 0x80) {
            if (!(k = util_utf8_len(u, (size_t)(r->end - q))))
                return false;
            memcpy(w, q, k);
            w += k;
            q += k;
            continue;
        }
        if (*u != '\\') {
            *w++ = *q++;
            continue;
        }
        if (r->end - q < 2)
            return false;
        switch (q[1]) {
        case '"':
        case '\\':
        case '/': *w++ = q[1]; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u':
            if (r->end - q < 6 || !(k = unicode_escape(q, r->end, &cp)))
                return false;
            if (cp == 0 && !(r->flags & JSONFLAT_ALLOW_NUL))
                return false;
            w = put_utf8(w, cp);
            q += k;
            continue;
        default: return false;
        }
        q += 2;
    }
    *s = w0;
    *n = (size_t)(w - w0);
    r->used += *n;
    r->p = q + 1;
    return true;
}

/* A string at r->p: borrowed from the text when it holds no escape and no
 * non-ASCII byte (the common case), else decoded by escaped(). */
static bool string(struct rd *r, const char **s, size_t *n)
{
    const char *start, *q;

    if (r->p == r->end || *r->p != '"')
        return false;
    start = q = r->p + 1;
    while (q < r->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20 &&
           (unsigned char)*q < 0x80)
        q++;
    if (q == r->end || *q != '"')
        return escaped(r, start, q, s, n);
    *s = start;
    *n = (size_t)(q - start);
    r->p = q + 1;
    return true;
}

/* An integer jansson reads the same way: no leading zero, no "-0", at most
 * DIGITS_MAX digits; what follows is checked by the caller (a fraction or an
 * exponent, or a 19th digit, is not a ',' or a '}'). */
static bool integer(struct rd *r, int64_t *v)
{
    bool neg = false;
    size_t n = 0;
    uint64_t u = 0;

    if (r->p < r->end && *r->p == '-') {
        neg = true;
        r->p++;
    }
    while (r->p + n < r->end && r->p[n] >= '0' && r->p[n] <= '9' && n <= DIGITS_MAX)
        u = u * 10 + (uint64_t)(r->p[n++] - '0');
    if (n == 0 || n > DIGITS_MAX || (r->p[0] == '0' && (n > 1 || neg)))
        return false;
    r->p += n;
    *v = neg ? -(int64_t)u : (int64_t)u;
    return true;
}

static bool value(struct rd *r, struct jsonflat_member *m)
{
    if (r->p == r->end)
        return false;
    if (*r->p == '"') {
        m->kind = JSONFLAT_STRING;
        return string(r, &m->str, &m->len);
    }
    m->kind = JSONFLAT_INTEGER;
    return integer(r, &m->num);
}

/* A new member's name: not NUL-bearing (jansson's keys are C strings), not a repeat. */
static bool name_ok(const struct jsonflat *obj, const struct jsonflat_member *m)
{
    if (memchr(m->name, '\0', m->name_len))
        return false;
    for (size_t i = 0; i < obj->n; i++)
        if (obj->m[i].name_len == m->name_len && !memcmp(obj->m[i].name, m->name, m->name_len))
            return false;
    return true;
}

static bool members(struct rd *r)
{
    struct jsonflat *obj = r->obj;
    struct jsonflat_member *m;
    unsigned flags = r->flags;
    bool ok;

    skip_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return true;
    }
    for (;;) {
        if (obj->n == JSONFLAT_MEMBERS_MAX)
            return false;
        m = &obj->m[obj->n];
        /* A name is a string that may never hold \u0000. */
        r->flags = flags & ~JSONFLAT_ALLOW_NUL;
        ok = string(r, &m->name, &m->name_len);
        r->flags = flags;
        if (!ok || !name_ok(obj, m))
            return false;
        skip_ws(r);
        if (r->p == r->end || *r->p++ != ':')
            return false;
        skip_ws(r);
        if (!value(r, m))
            return false;
        obj->n++;
        skip_ws(r);
        if (r->p == r->end)
            return false;
        if (*r->p == '}') {
            r->p++;
            return true;
        }
        if (*r->p++ != ',')
            return false;
        skip_ws(r);
    }
}

bool jsonflat_read(struct jsonflat *obj, const char *text, size_t len, unsigned flags)
{
    struct rd r = {.p = text, .end = text + len, .len = len, .obj = obj, .flags = flags};

    memset(obj, 0, sizeof *obj);
    if (!text || !len)
        return false;
    skip_ws(&r);
    if (r.p == r.end || *r.p++ != '{' || !members(&r))
        goto unsure;
    /* Only white space may follow the object. */
    skip_ws(&r);
    if (r.p == r.end)
        return true;
unsure:
    jsonflat_cleanup(obj);
    return false;
}

const struct jsonflat_member *jsonflat_get(const struct jsonflat *obj, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < obj->n; i++)
        if (obj->m[i].name_len == n && !memcmp(obj->m[i].name, name, n))
            return &obj->m[i];
    return NULL;
}

bool jsonflat_is_text(const struct jsonflat_member *m, const char *s)
{
    return m && m->kind == JSONFLAT_STRING && m->len == strlen(s) && !memcmp(m->str, s, m->len);
}

void jsonflat_cleanup(struct jsonflat *obj)
{
    free(obj->buf);
    memset(obj, 0, sizeof *obj);
}
