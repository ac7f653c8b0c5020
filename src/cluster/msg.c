/*
 * The cluster envelope: jansson for the JSON, libsodium for the tag. Decoding
 * is strict (known type, required fields of the right JSON type and size)
 * and happens only after the tag has verified.
 */
#include "msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

static const char *const type_names[] = {
    [CMSG_REQ] = "req",     [CMSG_ACK] = "ack",       [CMSG_GONE] = "gone",
    [CMSG_FWD] = "fwd",     [CMSG_ANS] = "ans",       [CMSG_MOVED] = "moved",
    [CMSG_CLOSED] = "closed", [CMSG_INTRO] = "intro", [CMSG_WHO] = "who",
    [CMSG_HERE] = "here",   [CMSG_HB] = "hb",         [CMSG_BYE] = "bye",
    [CMSG_HELLO] = "hello", [CMSG_KICK] = "kick",     [CMSG_KICKED] = "kicked",
    [CMSG_LIST] = "list",   [CMSG_KEYS] = "keys",
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
enum { F_K = 1, F_ID = 2, F_EXP = 4, F_FRAME = 8, F_HERE = 16, F_AT = 32, F_OK = 64,
       F_LIST = 128, F_KEYS = 256 };

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
    case CMSG_HERE: return F_K | F_ID | F_AT | F_HERE;
    case CMSG_INTRO: return F_K | F_AT;
    default: return 0;
    }
}

static void set_new(json_t *o, const char *k, json_t *v)
{
    if (!v || json_object_set_new(o, k, v) != 0) {
        /* jansson reports out-of-memory as failure; the project aborts on it. */
        abort();
    }
}

static json_t *hex_key(const uint8_t *key)
{
    char hex[2 * WSS_PUBLIC_KEY_BYTES + 1];

    return json_string(util_hex(hex, sizeof hex, key, WSS_PUBLIC_KEY_BYTES));
}

static void append_new(json_t *a, json_t *v)
{
    if (!v || json_array_append_new(a, v) != 0)
        abort();
}

static void encode_list(json_t *o, const struct cmsg *m)
{
    set_new(o, "limit", json_integer((json_int_t)m->limit));
    if (m->has_after)
        set_new(o, "after", hex_key(m->after));
    if (m->only) {
        json_t *a = json_array();

        if (!a)
            abort();
        for (size_t i = 0; i < m->n_only; i++)
            append_new(a, hex_key(m->only[i]));
        set_new(o, "only", a);
    }
}

/* A remote address travels as printable ASCII without quotes or backslashes. */
static bool remote_char_ok(char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

static void encode_keys(json_t *o, const struct cmsg *m)
{
    json_t *a = json_array();

    if (!a)
        abort();
    set_new(o, "more", json_boolean(m->more));
    for (size_t i = 0; i < m->n_keys; i++) {
        const struct wss_key_entry *e = &m->keys[i];
        char remote[WSS_REMOTE_MAX + 1];

        snprintf(remote, sizeof remote, "%s", e->remote);
        for (char *p = remote; *p; p++)
            if (!remote_char_ok(*p))
                *p = '_';
        append_new(a, json_pack("[o, I, s]", hex_key(e->public_key),
                                (json_int_t)e->connected_at_ms, remote));
    }
    set_new(o, "keys", a);
}

char *cmsg_encode(const struct cmsg *m, const uint8_t key[CMSG_KEY_BYTES], size_t *len)
{
    unsigned f = fields_of(m->type);
    json_t *o = json_object();
    char hex[2 * WSS_PUBLIC_KEY_BYTES + 1], *text, *out;
    size_t n;

    if (!o)
        abort();
    set_new(o, "v", json_integer(1));
    set_new(o, "t", json_string(cmsg_type_name(m->type)));
    set_new(o, "from", json_string(m->from));
    set_new(o, "seq", json_integer((json_int_t)m->seq));
    if (f & F_K)
        set_new(o, "k", json_string(util_hex(hex, sizeof hex, m->key, sizeof m->key)));
    if (f & F_ID)
        set_new(o, "id", json_string(m->id));
    if (f & F_EXP)
        set_new(o, "exp", json_integer((json_int_t)m->exp));
    if (f & F_FRAME)
        set_new(o, "frame", json_stringn(m->frame, m->frame_len));
    if (f & F_AT)
        set_new(o, "at", json_integer((json_int_t)m->at));
    if (f & F_HERE) {
        set_new(o, "session", json_string(m->session));
        set_new(o, "pending", json_integer((json_int_t)m->pending));
    }
    if (f & F_OK)
        set_new(o, "ok", json_boolean(m->ok));
    if (f & F_LIST)
        encode_list(o, m);
    if (f & F_KEYS)
        encode_keys(o, m);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        abort();
    n = strlen(text);
    out = xmalloc(CMSG_TAG_BYTES + n);
    crypto_auth_hmacsha512256((uint8_t *)out, (const uint8_t *)text, n, key);
    memcpy(out + CMSG_TAG_BYTES, text, n);
    free(text);
    *len = CMSG_TAG_BYTES + n;
    return out;
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


static bool hex_to_key(json_t *v, uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    size_t n = 0;

    return json_is_string(v) && json_string_length(v) == 2 * WSS_PUBLIC_KEY_BYTES &&
           sodium_hex2bin(key, WSS_PUBLIC_KEY_BYTES, json_string_value(v),
                          2 * WSS_PUBLIC_KEY_BYTES, NULL, &n, NULL) == 0 &&
           n == WSS_PUBLIC_KEY_BYTES;
}

static bool get_key(json_t *o, uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    return hex_to_key(json_object_get(o, "k"), key);
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
    json_array_foreach(only, i, v) {
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
    json_array_foreach(keys, i, v) {
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
        memcpy(e->remote, json_string_value(remote), json_string_length(remote) + 1);
        m->n_keys++;
    }
    return 0;
}

static int decode_fields(json_t *o, struct cmsg *m)
{
    char t[16];
    uint64_t v = 0, pending = 0;
    unsigned f;
    size_t i;

    if (!get_u64(o, "v", &v) || v != 1 || !get_string(o, "t", t, sizeof t) ||
        !get_string(o, "from", m->from, sizeof m->from) || !cmsg_node_id_valid(m->from) ||
        !get_u64(o, "seq", &m->seq))
        return -1;
    for (i = 1; i < N_TYPES; i++)
        if (type_names[i] && !strcmp(type_names[i], t))
            break;
    if (i == N_TYPES)
        return -1;
    m->type = (enum cmsg_type)i;
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

int cmsg_decode(const char *buf, size_t len, size_t max, const uint8_t key[CMSG_KEY_BYTES],
                struct cmsg *out, const char **why)
{
    json_error_t jerr;
    json_t *o;

    memset(out, 0, sizeof *out);
    *why = CMSG_BAD_FORMAT;
    if (len <= CMSG_TAG_BYTES || len > max)
        return -1;
    if (crypto_auth_hmacsha512256_verify((const uint8_t *)buf, (const uint8_t *)buf + CMSG_TAG_BYTES,
                                         len - CMSG_TAG_BYTES, key) != 0) {
        *why = CMSG_BAD_TAG;
        return -1;
    }
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
