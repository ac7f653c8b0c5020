/*
 * A strict reader for the one JSON shape read with every signature: a flat
 * object whose members are strings and integers (the POST /v1/sign body, the
 * signer's sign_response frame). It reads only text it is sure of, and says
 * so; for anything else (nesting, true/false/null, fractions, exponents, -0,
 * integers of more than 18 digits, duplicate or NUL-bearing keys, more than
 * JSONFLAT_MEMBERS_MAX members, and every malformed text) it declines, and the
 * caller hands the text to jansson, which stays the judge.
 *
 * The promise: whatever it reads, json_loadb with JSON_REJECT_DUPLICATES (and
 * JSON_ALLOW_NUL when asked) also accepts, as an object with the same members
 * in the same order holding the same bytes and values. No I/O, no state.
 */
#ifndef WSSIGND_JSONFLAT_H
#define WSSIGND_JSONFLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most members read; an object with more is left to jansson. */
#define JSONFLAT_MEMBERS_MAX 8

/* jsonflat_read flag: \u0000 may appear in string values (jansson's JSON_ALLOW_NUL). */
#define JSONFLAT_ALLOW_NUL 1u

/* What a member holds. JSONFLAT_OTHER is never read here: callers that turn a
 * jansson object into members use it for every other JSON type. */
enum jsonflat_kind { JSONFLAT_STRING = 1, JSONFLAT_INTEGER, JSONFLAT_OTHER };

/* Per member of a read object. Texts are borrowed from the input or from the
 * object's buffer, and are not NUL-terminated. */
struct jsonflat_member {
    const char *name;
    size_t name_len;
    enum jsonflat_kind kind;
    const char *str; /* JSONFLAT_STRING: the decoded bytes (may hold NUL with JSONFLAT_ALLOW_NUL) */
    size_t len;
    int64_t num; /* JSONFLAT_INTEGER */
};

/* Per read: the members in text order, and the decoded text of escaped strings. */
struct jsonflat {
    size_t n;
    struct jsonflat_member m[JSONFLAT_MEMBERS_MAX];
    char *buf; /* owned; jsonflat_cleanup frees it */
};

/*
 * Reads len bytes of text (not NUL-terminated) as one flat object into *obj.
 * flags: 0 or JSONFLAT_ALLOW_NUL. Returns true when read: the members borrow
 * from text and obj, so both must outlive their use; release obj with
 * jsonflat_cleanup. Returns false when not sure (the text may still be valid
 * JSON): obj then holds nothing to free.
 */
bool jsonflat_read(struct jsonflat *obj, const char *text, size_t len, unsigned flags);

/* The member named name (a C string), or NULL. */
const struct jsonflat_member *jsonflat_get(const struct jsonflat *obj, const char *name);

/* True if m is a string member equal to the C string s. m may be NULL. */
bool jsonflat_is_text(const struct jsonflat_member *m, const char *s);

/* Frees what jsonflat_read allocated and zeroes obj. */
void jsonflat_cleanup(struct jsonflat *obj);

#endif
