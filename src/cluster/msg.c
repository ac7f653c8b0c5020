/*
 * The cluster envelope: libsodium for the tag; the JSON is written by hand
 * (one buffer, the tag's room first: three messages go out per remote
 * signature). A message laid out as cmsg_encode writes it is read without a
 * parse; any other text is read with jansson. Decoding is strict (known type,
 * required fields of the right JSON type and size) and happens only after
 * the tag has verified.
 */
#include "msg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

static const char *const type_names[] = {
    [CMSG_REQ] = "req",       [CMSG_ACK] = "ack",         [CMSG_GONE] = "gone",
    [CMSG_FWD] = "fwd",       [CMSG_ANS] = "ans",         [CMSG_MOVED] = "moved",
    [CMSG_CLOSED] = "closed", [CMSG_INTRO] = "intro",     [CMSG_WHO] = "who",
    [CMSG_HERE] = "here",     [CMSG_HB] = "hb",           [CMSG_BYE] = "bye",
    [CMSG_HELLO] = "hello",   [CMSG_ARRIVED] = "arrived", [CMSG_KICK] = "kick",
    [CMSG_KICKED] = "kicked", [CMSG_LIST] = "list",       [CMSG_KEYS] = "keys",
};

#define N_TYPES (sizeof type_names / sizeof type_names[0])

const char *cmsg_type_name(enum cmsg_type t)
{
    return (size_t)t < N_TYPES && type_names[t] ? type_names[t] : "?";
}

bool cmsg_node_id_valid(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (s[n] < 0x21 || s[n] > 0x7e || s[n] == '"' || s[n] == '\\')
            return false;
    return n >= 1 && n <= CMSG_NODE_MAX;
}

/* The fields each type carries, beyond v, t, from and seq. */
enum {
    F_K = 1,
    F_ID = 2,
    F_EXP = 4,
    F_FRAME = 8,
    F_HERE = 16,
    F_AT = 32,
    F_OK = 64,
    F_LIST = 128,
    F_KEYS = 256
};

static unsigned fields_of(enum cmsg_type t)
{
    switch (t) {
    case CMSG_REQ: return F_K | F_ID | F_EXP | F_FRAME;
    case CMSG_FWD:
    case CMSG_ANS: return F_K | F_ID | F_FRAME;
    case CMSG_ACK:
    case CMSG_GONE:
    case CMSG_MOVED:
    case CMSG_CLOSED:
    case CMSG_WHO:
    case CMSG_KICK: return F_K | F_ID;
    case CMSG_KICKED: return F_K | F_ID | F_OK;
    case CMSG_LIST: return F_ID | F_LIST;
    case CMSG_KEYS: return F_ID | F_KEYS;
    case CMSG_ARRIVED: return F_K;
    case CMSG_HERE: return F_K | F_ID | F_AT | F_HERE;
    case CMSG_INTRO: return F_K | F_AT;
    default: return 0;
    }
}

/* Per encode: the message being written, the tag's room first. */
struct out {
    char *buf;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->cap - o->len < n) {
        while (o->cap - o->len < n)
            o->cap *= 2;
        o->buf = xrealloc(o->buf, o->cap);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_lit(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A JSON string as jansson's compact dump writes it: '"', '\\' and control
 * characters escaped, the rest as is. Text that is not valid UTF-8 aborts,
 * as jansson's refusal of it did: every string here is the daemon's own or
 * was decoded from JSON already. */
static void put_str(struct out *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run, k;
    char esc[8];

    put(o, "\"", 1);
    while (i < n) {
        for (run = i; run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\';
             run++)
            ;
        put(o, s + i, run - i);
        if ((i = run) == n)
            break;
        if (u[i] >= 0x80) {
            if (!(k = util_utf8_len(u + i, n - i)))
                abort();
            put(o, s + i, k);
            i += k;
            continue;
        }
        switch (u[i]) {
        case '"': put(o, "\\\"", 2); break;
        case '\\': put(o, "\\\\", 2); break;
        case '\b': put(o, "\\b", 2); break;
        case '\f': put(o, "\\f", 2); break;
        case '\n': put(o, "\\n", 2); break;
        case '\r': put(o, "\\r", 2); break;
        case '\t': put(o, "\\t", 2); break;
        default: snprintf(esc, sizeof esc, "\\u%04X", u[i]); put(o, esc, 6);
        }
        i++;
    }
    put(o, "\"", 1);
}

/* ,"name": */
static void put_key(struct out *o, const char *name)
{
    put(o, ",\"", 2);
    put_lit(o, name);
    put(o, "\":", 2);
}

/* A JSON integer: jansson's are signed 64-bit, and so were the values it wrote. */
static void put_int(struct out *o, const char *name, uint64_t v)
{
    char num[24];

    put_key(o, name);
    put(o, num, (size_t)snprintf(num, sizeof num, "%" PRId64, (int64_t)v));
}

static void put_str_field(struct out *o, const char *name, const char *s, size_t n)
{
    put_key(o, name);
    put_str(o, s, n);
}

static void put_bool(struct out *o, const char *name, bool v)
{
    put_key(o, name);
    put_lit(o, v ? "true" : "false");
}

/* A key as a JSON string of lowercase hex. */
static void put_hex_key(struct out *o, const uint8_t *key)
{
    char hex[2 * WSS_PUBLIC_KEY_BYTES + 1];

    put_str(o, util_hex(hex, sizeof hex, key, WSS_PUBLIC_KEY_BYTES), 2 * WSS_PUBLIC_KEY_BYTES);
}

static void encode_list(struct out *o, const struct cmsg *m)
{
    put_int(o, "limit", m->limit);
    if (m->has_after) {
        put_key(o, "after");
        put_hex_key(o, m->after);
    }
    if (m->only) {
        put_key(o, "only");
        for (size_t i = 0; i < m->n_only; i++) {
            put(o, i ? "," : "[", 1);
            put_hex_key(o, m->only[i]);
        }
        put(o, "]", 1);
    }
}

/* A remote address travels as printable ASCII without quotes or backslashes. */
static bool remote_char_ok(char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

static void encode_keys(struct out *o, const struct cmsg *m)
{
    char num[24];

    put_bool(o, "more", m->more);
    put_key(o, "keys");
    put(o, "[", 1);
    for (size_t i = 0; i < m->n_keys; i++) {
        const struct wss_key_entry *e = &m->keys[i];
        char remote[WSS_REMOTE_MAX + 1];

        snprintf(remote, sizeof remote, "%s", e->remote);
        for (char *p = remote; *p; p++)
            if (!remote_char_ok(*p))
                *p = '_';
        put(o, i ? ",[" : "[", i ? 2 : 1);
        put_hex_key(o, e->public_key);
        put(o, num,
            (size_t)snprintf(num, sizeof num, ",%" PRId64 ",", (int64_t)e->connected_at_ms));
        put_str(o, remote, strlen(remote));
        put(o, "]", 1);
    }
    put(o, "]", 1);
}

char *cmsg_encode(const struct cmsg *m, const uint8_t key[CMSG_KEY_BYTES], size_t *len)
{
    unsigned f = fields_of(m->type);
    struct out o = {.cap = CMSG_TAG_BYTES + 256 + 2 * m->frame_len};
    char hex[2 * WSS_PUBLIC_KEY_BYTES + 1];

    o.buf = xmalloc(o.cap);
    o.len = CMSG_TAG_BYTES;
    /* The fields in one fixed order: the one decode_fast reads. */
    put_lit(&o, "{\"v\":1,\"t\":");
    put_str(&o, cmsg_type_name(m->type), strlen(cmsg_type_name(m->type)));
    put_str_field(&o, "from", m->from, strlen(m->from));
    put_int(&o, "seq", m->seq);
    if (f & F_K)
        put_str_field(&o, "k", util_hex(hex, sizeof hex, m->key, sizeof m->key), 2 * sizeof m->key);
    if (f & F_ID)
        put_str_field(&o, "id", m->id, strlen(m->id));
    if (f & F_EXP)
        put_int(&o, "exp", m->exp);
    if (f & F_FRAME)
        put_str_field(&o, "frame", m->frame, m->frame_len);
    if (f & F_AT)
        put_int(&o, "at", m->at);
    if (f & F_HERE) {
        put_str_field(&o, "session", m->session, strlen(m->session));
        put_int(&o, "pending", m->pending);
    }
    if (f & F_OK)
        put_bool(&o, "ok", m->ok);
    if (f & F_LIST)
        encode_list(&o, m);
    if (f & F_KEYS)
        encode_keys(&o, m);
    put(&o, "}", 1);
    crypto_auth_hmacsha512256((uint8_t *)o.buf, (const uint8_t *)o.buf + CMSG_TAG_BYTES,
                              o.len - CMSG_TAG_BYTES, key);
    *len = o.len;
    return o.buf;
}

/* The type named t (n bytes), or 0. */
static enum cmsg_type type_of(const char *t, size_t n)
{
    for (size_t i = 1; i < N_TYPES; i++)
        if (type_names[i] && strlen(type_names[i]) == n && !memcmp(type_names[i], t, n))
            return (enum cmsg_type)i;
    return 0;
}

/* The key from its hex text (n bytes). */
static bool key_of(const char *hex, size_t n, uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    size_t len = 0;

    return n == 2 * WSS_PUBLIC_KEY_BYTES &&
           sodium_hex2bin(key, WSS_PUBLIC_KEY_BYTES, hex, n, NULL, &len, NULL) == 0 &&
           len == WSS_PUBLIC_KEY_BYTES;
}

static bool get_string(json_t *o, const char *k, char *out, size_t outlen)
{
    json_t *v = json_object_get(o, k);

    if (!json_is_string(v) || json_string_length(v) >= outlen ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static bool get_u64(json_t *o, const char *k, uint64_t *out)
{
    json_t *v = json_object_get(o, k);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool get_key(json_t *o, uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    char hex[2 * WSS_PUBLIC_KEY_BYTES + 1];

    return get_string(o, "k", hex, sizeof hex) && key_of(hex, strlen(hex), key);
}

static bool hex_to_key(json_t *v, uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    return json_is_string(v) && key_of(json_string_value(v), json_string_length(v), key);
}

static int decode_list(json_t *o, struct cmsg *m)
{
    json_t *after = json_object_get(o, "after"), *only = json_object_get(o, "only"), *v;
    uint64_t limit = 0;
    size_t i;

    if (!get_u64(o, "limit", &limit) || !limit || limit > WSS_LIST_MAX)
        return -1;
    m->limit = (uint32_t)limit;
    if (after && !(m->has_after = hex_to_key(after, m->after)))
        return -1;
    if (!only)
        return 0;
    if (!json_is_array(only) || !json_array_size(only) || json_array_size(only) > WSS_LIST_MAX)
        return -1;
    m->only = xcalloc(json_array_size(only), sizeof *m->only);
    json_array_foreach (only, i, v) {
        if (!hex_to_key(v, m->only[i]))
            return -1;
        m->n_only++;
    }
    return 0;
}

static int decode_keys(json_t *o, struct cmsg *m)
{
    json_t *more = json_object_get(o, "more"), *keys = json_object_get(o, "keys"), *v;
    size_t i;

    if (!json_is_boolean(more) || !json_is_array(keys) || json_array_size(keys) > WSS_LIST_MAX)
        return -1;
    m->more = json_is_true(more);
    if (!json_array_size(keys))
        return 0;
    m->keys = xcalloc(json_array_size(keys), sizeof *m->keys);
    json_array_foreach (keys, i, v) {
        struct wss_key_entry *e = &m->keys[i];
        json_t *at = json_array_get(v, 1), *remote = json_array_get(v, 2);
        size_t len = json_string_length(remote);

        if (!json_is_array(v) || json_array_size(v) != 3 ||
            !hex_to_key(json_array_get(v, 0), e->public_key) || !json_is_integer(at) ||
            json_integer_value(at) < 0 || !json_is_string(remote) || len > WSS_REMOTE_MAX)
            return -1;
        for (size_t j = 0; j < len; j++)
            if (!remote_char_ok(json_string_value(remote)[j]))
                return -1;
        e->connected_at_ms = (uint64_t)json_integer_value(at);
        memcpy(e->remote, json_string_value(remote), len + 1);
        m->n_keys++;
    }
    return 0;
}

static int decode_fields(json_t *o, struct cmsg *m)
{
    char t[16];
    uint64_t v = 0, pending = 0;
    unsigned f;

    if (!get_u64(o, "v", &v) || v != 1 || !get_string(o, "t", t, sizeof t) ||
        !get_string(o, "from", m->from, sizeof m->from) || !cmsg_node_id_valid(m->from) ||
        !get_u64(o, "seq", &m->seq))
        return -1;
    if (!(m->type = type_of(t, strlen(t))))
        return -1;
    f = fields_of(m->type);
    if ((f & F_K) && !(m->has_key = get_key(o, m->key)))
        return -1;
    if ((f & F_ID) && !get_string(o, "id", m->id, sizeof m->id))
        return -1;
    if ((f & F_EXP) && !get_u64(o, "exp", &m->exp))
        return -1;
    if ((f & F_AT) && !get_u64(o, "at", &m->at))
        return -1;
    if (f & F_HERE) {
        if (!get_string(o, "session", m->session, sizeof m->session) ||
            !get_u64(o, "pending", &pending) || pending > UINT32_MAX)
            return -1;
        m->pending = (unsigned)pending;
    }
    if (f & F_OK) {
        json_t *ok = json_object_get(o, "ok");

        if (!json_is_boolean(ok))
            return -1;
        m->ok = json_is_true(ok);
    }
    if ((f & F_LIST) && decode_list(o, m) != 0)
        return -1;
    if ((f & F_KEYS) && decode_keys(o, m) != 0)
        return -1;
    if (f & F_FRAME) {
        json_t *fr = json_object_get(o, "frame");

        if (!json_is_string(fr) || json_string_length(fr) == 0)
            return -1;
        m->frame_len = json_string_length(fr);
        m->frame = xmemdup(json_string_value(fr), m->frame_len);
    }
    return 0;
}

/*
 * The fast reading: a message exactly as cmsg_encode writes it (its fields in
 * that order, no white space, strings of printable ASCII without escapes
 * except the frame's \" and \\, integers of at most 18 digits). What it
 * accepts, jansson reads to the same fields; anything else (another layout,
 * another escape, a bad field) goes to the jansson reading, which decides.
 */

/* Per fast read: the text not read yet. */
struct rd {
    const char *p, *end;
};

static bool lit(struct rd *r, const char *s)
{
    size_t n = strlen(s);

    if ((size_t)(r->end - r->p) < n || memcmp(r->p, s, n))
        return false;
    r->p += n;
    return true;
}

static bool num(struct rd *r, uint64_t *v)
{
    size_t n = 0;

    for (*v = 0; r->p + n < r->end && r->p[n] >= '0' && r->p[n] <= '9' && n < 19; n++)
        *v = *v * 10 + (uint64_t)(r->p[n] - '0');
    if (n == 0 || n > 18 || (n > 1 && r->p[0] == '0'))
        return false;
    r->p += n;
    return true;
}

/* A string without escapes into out (outlen bytes, NUL-terminated), or borrowed (out NULL). */
static bool plain(struct rd *r, char *out, size_t outlen, const char **s, size_t *n)
{
    const char *q;

    if (r->p == r->end || *r->p != '"')
        return false;
    for (q = ++r->p; q < r->end && *q != '"'; q++)
        if (*q < 0x20 || *q > 0x7e || *q == '\\')
            return false;
    if (q == r->end || (out && (size_t)(q - r->p) >= outlen))
        return false;
    *s = r->p;
    *n = (size_t)(q - r->p);
    if (out) {
        memcpy(out, r->p, *n);
        out[*n] = '\0';
    }
    r->p = q + 1;
    return true;
}

/* The frame: a non-empty string whose only escapes are \" and \\, unescaped into m. */
static bool frame_str(struct rd *r, struct cmsg *m)
{
    const char *q;
    char *f, *w;

    if (r->p == r->end || *r->p != '"')
        return false;
    w = f = xmalloc((size_t)(r->end - r->p));
    for (q = r->p + 1; q < r->end && *q != '"'; q++) {
        if (*q == '\\' && q + 1 < r->end && (q[1] == '"' || q[1] == '\\'))
            q++;
        else if (*q < 0x20 || *q > 0x7e || *q == '\\')
            break;
        *w++ = *q;
    }
    if (q == r->end || *q != '"' || w == f) {
        free(f);
        return false;
    }
    m->frame = f;
    m->frame_len = (size_t)(w - f);
    r->p = q + 1;
    return true;
}

static bool decode_fast(const char *text, size_t len, struct cmsg *m)
{
    struct rd r = {text, text + len};
    const char *s;
    size_t n;
    uint64_t pending;
    unsigned f;

    if (!lit(&r, "{\"v\":1,\"t\":") || !plain(&r, NULL, 0, &s, &n) || !(m->type = type_of(s, n)) ||
        !lit(&r, ",\"from\":") || !plain(&r, m->from, sizeof m->from, &s, &n) ||
        !cmsg_node_id_valid(m->from) || !lit(&r, ",\"seq\":") || !num(&r, &m->seq))
        return false;
    f = fields_of(m->type);
    if (f & (F_OK | F_LIST | F_KEYS))
        return false; /* the operator's messages: rare, jansson reads them */
    if ((f & F_K) && (!lit(&r, ",\"k\":") || !plain(&r, NULL, 0, &s, &n) ||
                      !(m->has_key = key_of(s, n, m->key))))
        return false;
    if ((f & F_ID) && (!lit(&r, ",\"id\":") || !plain(&r, m->id, sizeof m->id, &s, &n)))
        return false;
    if ((f & F_EXP) && (!lit(&r, ",\"exp\":") || !num(&r, &m->exp)))
        return false;
    if ((f & F_FRAME) && (!lit(&r, ",\"frame\":") || !frame_str(&r, m)))
        return false;
    if ((f & F_AT) && (!lit(&r, ",\"at\":") || !num(&r, &m->at)))
        return false;
    if (f & F_HERE) {
        if (!lit(&r, ",\"session\":") || !plain(&r, m->session, sizeof m->session, &s, &n) ||
            !lit(&r, ",\"pending\":") || !num(&r, &pending) || pending > UINT32_MAX)
            return false;
        m->pending = (unsigned)pending;
    }
    return lit(&r, "}") && r.p == r.end;
}

int cmsg_decode(const char *buf, size_t len, size_t max, const uint8_t key[CMSG_KEY_BYTES],
                struct cmsg *out, const char **why)
{
    json_error_t jerr;
    json_t *o;

    memset(out, 0, sizeof *out);
    *why = CMSG_BAD_FORMAT;
    if (len <= CMSG_TAG_BYTES || len > max)
        return -1;
    if (crypto_auth_hmacsha512256_verify((const uint8_t *)buf,
                                         (const uint8_t *)buf + CMSG_TAG_BYTES,
                                         len - CMSG_TAG_BYTES, key) != 0) {
        *why = CMSG_BAD_TAG;
        return -1;
    }
    if (decode_fast(buf + CMSG_TAG_BYTES, len - CMSG_TAG_BYTES, out))
        return 0;
    cmsg_cleanup(out);
    o = json_loadb(buf + CMSG_TAG_BYTES, len - CMSG_TAG_BYTES, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o) || decode_fields(o, out) != 0) {
        json_decref(o);
        cmsg_cleanup(out);
        return -1;
    }
    json_decref(o);
    return 0;
}

void cmsg_cleanup(struct cmsg *m)
{
    free((void *)m->frame);
    free(m->only);
    free(m->keys);
    memset(m, 0, sizeof *m);
}
