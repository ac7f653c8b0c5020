/*
 * Messages between the nodes of a cluster: the envelope and its
 * authentication. A message on a Redis channel is the 32-byte HMAC tag
 * (crypto_auth, HMAC-SHA-512-256 under the cluster secret) of a compact
 * JSON text, followed by that text:
 *
 *   {"v":1,"t":TYPE,"from":NODE,"seq":N, ...fields of the type}
 *
 * seq grows with every message a node sends (it starts at the unix time in
 * microseconds when the node starts), so a receiver drops replays by
 * remembering the highest seq per sender. The types and their fields:
 *
 *   req    requester -> "k:<key>"     k, id, exp, frame   a sign_request to forward
 *   ack    owner -> "n:<origin>"      k, id               forwarded to the key's connection
 *   gone   owner -> "n:<origin>"      k, id               the key is not held here
 *   fwd    requester -> "k:<key>"     k, id, frame        a cancel or error for a forwarded request
 *   ans    owner -> "n:<origin>"      k, id, frame        the signer's sign_response or sign_reject
 *   moved  owner -> "n:<origin>"      k, id               the key went to another node: send again
 *   closed owner -> "n:<origin>"      k, id               the key's connection closed
 *   intro  holder -> "k:<key>"        k, at               the key was introduced on this node at
 *                                                         unix ms at (the newest wins)
 *   who    asker -> "k:<key>"         k, id               who holds the key? (id names the query)
 *   here   holder -> "n:<asker>"      k, id, at, session, pending
 *   hb     -> "nodes"                 (none)              heartbeat, every CLUSTER_HB_MS
 *   bye    -> "nodes"                 (none)              the node is stopping
 *   hello  -> "nodes"                 (none)              the node (re)started: what an earlier
 *                                                         run of it held or asked for is gone
 *   arrived holder -> "w:<key>"       k                   the key is held here now (for the
 *                                                         nodes with requests waiting for it)
 *   kick   asker -> "k:<key>"         k, id               close the key's connection (4003)
 *   kicked holder -> "n:<asker>"      k, id, ok           ok: it was held here and is closed
 *   list   asker -> "nodes"           id, limit, after?, only?   your keys after `after`
 *   keys   node -> "n:<asker>"        id, more, keys      up to limit of them, in key order:
 *                                                         [[k, at, remote], ...]
 *
 * k is the key in lowercase hex; frame is a wssign.v1 frame's JSON text.
 * No I/O, no Redis.
 */
#ifndef WSSIGND_CLUSTER_MSG_H
#define WSSIGND_CLUSTER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include <wssignd/service.h>

#define CMSG_TAG_BYTES crypto_auth_hmacsha512256_BYTES
#define CMSG_KEY_BYTES crypto_auth_hmacsha512256_KEYBYTES
/* Longest node id: printable ASCII without spaces. */
#define CMSG_NODE_MAX 64
/* The largest message accepted whatever the frame limits: a "keys" answer of
 * WSS_LIST_MAX keys (about 160 bytes each) or a "list" naming as many. */
#define CMSG_LIST_BYTES_MAX (256 * 1024)

enum cmsg_type {
    CMSG_REQ = 1,
    CMSG_ACK,
    CMSG_GONE,
    CMSG_FWD,
    CMSG_ANS,
    CMSG_MOVED,
    CMSG_CLOSED,
    CMSG_INTRO,
    CMSG_WHO,
    CMSG_HERE,
    CMSG_HB,
    CMSG_BYE,
    CMSG_HELLO,
    CMSG_ARRIVED,
    CMSG_KICK,
    CMSG_KICKED,
    CMSG_LIST,
    CMSG_KEYS,
};

#define CMSG_TYPE_LAST CMSG_KEYS

/* Per message: one decoded (or to be encoded) message. */
struct cmsg {
    enum cmsg_type type;
    char from[CMSG_NODE_MAX + 1];
    uint64_t seq;
    bool has_key;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char id[WSS_REQUEST_ID_BYTES]; /* request id, or query id for who/here; "" if none */
    uint64_t exp;                  /* req: unix ms the request expires at */
    const char *frame;             /* req, fwd, ans: borrowed on encode; owned after decode */
    size_t frame_len;
    uint64_t at; /* intro, here: unix ms the key was introduced */
    char session[WSS_REQUEST_ID_BYTES];
    unsigned pending;
    bool ok; /* kicked: the key was held there and is disconnected */
    /* list: the page asked for; only is borrowed on encode, owned after decode */
    uint32_t limit; /* 1..WSS_LIST_MAX */
    bool has_after;
    uint8_t after[WSS_PUBLIC_KEY_BYTES];
    uint8_t (*only)[WSS_PUBLIC_KEY_BYTES]; /* NULL: every key; else n_only (1..WSS_LIST_MAX) */
    size_t n_only;
    /* keys: a node's answer (public_key, connected_at_ms, remote; node unused); borrowed
     * on encode, owned after decode */
    struct wss_key_entry *keys; /* n_keys (0..WSS_LIST_MAX) */
    size_t n_keys;
    bool more; /* the node holds more keys after the last one */
};

/* Why a message was dropped (a metric label). */
#define CMSG_BAD_TAG "bad_tag"
#define CMSG_BAD_FORMAT "bad_format"

/* The name of a type ("req"), or "?". */
const char *cmsg_type_name(enum cmsg_type t);

/* True if s is a usable node id: 1..CMSG_NODE_MAX visible ASCII characters. */
bool cmsg_node_id_valid(const char *s);

/*
 * Encodes m under key: a malloc'd buffer of *len bytes (tag, then JSON) that
 * the caller frees. Never fails (out-of-memory aborts).
 */
char *cmsg_encode(const struct cmsg *m, const uint8_t key[CMSG_KEY_BYTES], size_t *len);

/*
 * Checks the tag of buf (len bytes, at most max) under key, then decodes it
 * into *out. Returns 0 (then cmsg_cleanup), or -1 with *why set to
 * CMSG_BAD_TAG or CMSG_BAD_FORMAT; *out then holds nothing to free. A frame
 * is never decoded before its tag has been verified.
 */
int cmsg_decode(const char *buf, size_t len, size_t max, const uint8_t key[CMSG_KEY_BYTES],
                struct cmsg *out, const char **why);

/* Frees what cmsg_decode put in m (frame, only, keys). */
void cmsg_cleanup(struct cmsg *m);

#endif
