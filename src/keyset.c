/*
 * Key sets and key files. A file is parsed line by line with its line
 * numbers in every error; keys are decoded with the protocol's strict
 * base64, so a key is written exactly as the daemon logs and sends it.
 */
#include "keyset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>
#include <wssignd/util.h>

#include "files.h"
#include "util.h"

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, KEYSET_KEY_BYTES);
}

void keyset_add(struct keyset *set, const uint8_t key[KEYSET_KEY_BYTES])
{
    if (set->n == set->cap) {
        set->cap = set->cap ? 2 * set->cap : 16;
        set->keys = xrealloc(set->keys, set->cap * sizeof *set->keys);
    }
    memcpy(set->keys[set->n++], key, KEYSET_KEY_BYTES);
}

void keyset_sort(struct keyset *set)
{
    size_t out = 0;

    if (set->n < 2)
        return;
    qsort(set->keys, set->n, sizeof *set->keys, cmp_key);
    for (size_t i = 0; i < set->n; i++)
        if (!out || memcmp(set->keys[out - 1], set->keys[i], KEYSET_KEY_BYTES))
            memmove(set->keys[out++], set->keys[i], KEYSET_KEY_BYTES);
    set->n = out;
}

bool keyset_has(const struct keyset *set, const uint8_t key[KEYSET_KEY_BYTES])
{
    return set && set->n && bsearch(key, set->keys, set->n, sizeof *set->keys, cmp_key);
}

struct keyset *keyset_dup(const struct keyset *set)
{
    struct keyset *d = xcalloc(1, sizeof *d);

    if (set && set->n) {
        d->keys = xmalloc(set->n * sizeof *d->keys);
        memcpy(d->keys, set->keys, set->n * sizeof *d->keys);
        d->n = d->cap = set->n;
    }
    return d;
}

void keyset_clear(struct keyset *set)
{
    free(set->keys);
    set->keys = NULL;
    set->n = set->cap = 0;
}

void keyset_free(struct keyset *set)
{
    if (!set)
        return;
    keyset_clear(set);
    free(set);
}

/* Parses text (NUL-terminated, its NULs already refused) into set. */
static int parse(struct keyset *set, char *text, const char *path, const char *what, char *err,
                 size_t errlen)
{
    unsigned lineno = 0;
    char *line, *next;

    for (line = text; line; line = next) {
        uint8_t key[KEYSET_KEY_BYTES];
        size_t n;

        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line += strspn(line, " \t\r");
        /* The key ends at the first blank; what follows may only be a comment. */
        n = strcspn(line, " \t\r");
        if (!n || line[0] == '#')
            continue;
        if (line[n]) {
            const char *rest = line + n + strspn(line + n, " \t\r");

            if (*rest && *rest != '#') {
                snprintf(err, errlen, "%s %s:%u: one key per line (a comment starts with #)", what,
                         path, lineno);
                return WSS_ERR_CONFIG;
            }
        }
        if (wss_key_decode(key, line, n) != 0) {
            snprintf(err, errlen,
                     "%s %s:%u: not a public key (standard base64 of 32 bytes, "
                     "44 characters)",
                     what, path, lineno);
            return WSS_ERR_CONFIG;
        }
        keyset_add(set, key);
    }
    return 0;
}

int keyset_load(struct keyset *set, const char *path, const char *what, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(set, 0, sizeof *set);
    if ((rc = files_read(path, false, what, KEYSET_FILE_MAX, &text, &len, err, errlen)) != 0)
        return rc;
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "%s %s holds a NUL byte", what, path);
        rc = WSS_ERR_CONFIG;
    } else {
        rc = parse(set, text, path, what, err, errlen);
    }
    free(text);
    if (rc != 0)
        keyset_clear(set);
    else
        keyset_sort(set);
    return rc;
}
