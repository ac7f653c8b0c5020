/*
 * One node of a cluster. Owns the proxies (sessions for keys held on other
 * nodes), the requests it sent through them and not yet seen acknowledged,
 * the relays (requests of other nodes forwarded to keys held here), the keys
 * it announces, and what it knows of the other nodes (last heartbeat, last
 * sequence number). Redis is reached through redis.c only; the service
 * through its cluster hooks and the session functions, never its tables.
 */
#include "cluster.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include <wssignd/errors.h>

#include "files.h"
#include "keyset.h"
#include "link.h"
#include "log.h"
#include "service.h"
#include "service_keys.h"
#include "session.h"
#include "timers.h"
#include "util.h"

/* uthash's internal tables follow the project's abort-on-OOM rule. */
#define uthash_malloc(sz) xmalloc(sz)
#define uthash_free(ptr, sz) free(ptr)
#include <uthash.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Heartbeats: sent this often; a node silent this long is gone. */
#define HB_EVERY_MS 500
#define NODE_DEAD_MS 1500
/* A node's entry (and its last sequence number, against replays) is kept this long after it went. */
#define NODE_FORGET_MS (10 * 60 * 1000)
#define NODES_MAX 4096
/* A forwarded request not acknowledged within this long ends connection_closed. */
#define ACK_TIMEOUT_MS 2000
/* The housekeeping timer. */
#define TICK_MS 250
/* A presence query answered by nobody within this long: the key is not held. */
#define LOOKUP_TIMEOUT_MS 1000
/* An idle proxy (no requests for its key) is freed after this long. */
#define PROXY_IDLE_MS 1000
/* Longest channel name: prefix, "k:" (or "w:", "n:"), 64 hex digits. */
#define CHANNEL_MAX (CLUSTER_PREFIX_MAX + 80)

/* Per key held by another node and asked for here: a session over the cluster. */
struct proxy {
    struct session s;  /* ops = proxy_ops; state introduced */
    UT_hash_handle hh; /* by s.key */
    struct cluster *c;
    char owner[CMSG_NODE_MAX + 1]; /* the node that acknowledged last; "" unknown */
    bool closed;                   /* out of the registry, to be freed */
    uint64_t idle_since_ms;        /* 0: busy */
};

/* Per request sent through a proxy and not answered yet. */
struct outreq {
    UT_hash_handle hh; /* by id */
    char id[WSS_REQUEST_ID_BYTES];
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    uint64_t sent_ms;
    long long receivers; /* from PUBLISH; -1 until known */
    unsigned gones;
    bool acked;
    /* The node that acknowledged it: when that node goes, so does the request,
     * even if the key's later requests went to another node meanwhile. */
    char owner[CMSG_NODE_MAX + 1];
};

/* Per request of another node forwarded to a key held here. */
struct relay {
    UT_hash_handle hh; /* by id */
    char id[WSS_REQUEST_ID_BYTES];
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char origin[CMSG_NODE_MAX + 1];
    uint64_t exp; /* unix ms */
    char *frame;  /* the sign_request, kept to send again to a new connection */
    size_t frame_len;
    /* unix ms the signer's answer went back; 0: not answered. An answered relay is
     * kept a while for the requesting node's verdict (an invalid_signature error). */
    uint64_t answered_ms;
};

/* Per key held here: announced on its channel. */
struct held {
    UT_hash_handle hh; /* by key */
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    uint64_t at; /* unix ms of its introduction here: the newest holder wins */
};

/* Per node heard from. */
struct node {
    UT_hash_handle hh; /* by id */
    char id[CMSG_NODE_MAX + 1];
    uint64_t last_seq;
    uint64_t last_seen_ms;
    bool alive;
};

/* Per key that requests here wait for: its wait channel is subscribed. */
struct waitkey {
    UT_hash_handle hh; /* by key */
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    bool subscribed; /* Redis confirmed the subscription (since the last reconnect) */
};

/* Per presence query sent ("who") and not answered yet. */
struct query {
    UT_hash_handle hh; /* by id */
    char id[WSS_REQUEST_ID_BYTES];
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    uint64_t deadline_ms;
    cluster_lookup_cb cb;
    void *user;
};

/* Per kick or list sent and not answered yet. */
struct ask {
    UT_hash_handle hh; /* by id */
    char id[WSS_REQUEST_ID_BYTES];
    enum cmsg_type type;               /* CMSG_KICK or CMSG_LIST */
    uint8_t key[WSS_PUBLIC_KEY_BYTES]; /* kick: the key */
    size_t limit;                      /* list: the page size */
    uint64_t deadline_ms;
    long long receivers;        /* from PUBLISH (a list counts this node too); -1 unknown */
    unsigned answers;           /* kick: holders that did not hold it; list: nodes */
    struct wss_key_entry *keys; /* list: the nodes' keys merged so far (at most limit) */
    size_t n_keys;
    bool more;
    void (*kick_cb)(void *user, int status, const char *node);
    void (*list_cb)(void *user, int status, const struct wss_key_entry *keys, size_t n, bool more);
    void *user;
};

/* Per publish whose outcome matters. */
struct pubctx {
    struct cluster *c;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char id[WSS_REQUEST_ID_BYTES];
};

struct cluster {
    struct wss_service *svc;
    struct timers *timers;
    struct redis *redis;
    struct cluster_settings set;
    char inbox[CHANNEL_MAX], nodes_channel[CHANNEL_MAX];
    uint64_t seq;
    bool up, stopping;
    bool said_hello;
    struct proxy *proxies;
    struct outreq *outreqs;
    struct relay *relays;
    struct held *held;
    struct node *nodes;
    struct query *queries;
    struct waitkey *waits;
    struct ask *asks;
    struct timer tick;
    uint64_t last_hb_ms;
    struct log_limit drop_log;
};

static const struct link_ops proxy_ops;

/* ---- settings ---- */

static void trim(char *s, size_t *len)
{
    while (*len && (s[*len - 1] == '\n' || s[*len - 1] == '\r'))
        s[--*len] = '\0';
}

int cluster_settings_load(const struct config_cluster *cc, struct cluster_settings *out, char *err,
                          size_t errlen)
{
    char *buf = NULL, host[128];
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = redis_parse_url(cc->redis, &out->target, err, errlen)) != 0)
        goto fail;
    if (cc->password_file) {
        char *sp;

        if ((rc = files_read(cc->password_file, true, "cluster.password_file", 1024, &buf, &len,
                             err, errlen)) != 0)
            goto fail;
        trim(buf, &len);
        if (strchr(buf, '\n') || !len) {
            snprintf(err, errlen,
                     "cluster.password_file: one line, \"password\" or \"user password\"");
            rc = WSS_ERR_CONFIG;
            goto fail;
        }
        sp = strchr(buf, ' ');
        if (sp) {
            *sp++ = '\0';
            if (strlen(buf) >= sizeof out->target.user ||
                strlen(sp) >= sizeof out->target.password) {
                snprintf(err, errlen, "cluster.password_file: user or password too long");
                rc = WSS_ERR_CONFIG;
                goto fail;
            }
            snprintf(out->target.user, sizeof out->target.user, "%s", buf);
            snprintf(out->target.password, sizeof out->target.password, "%s", sp);
        } else {
            if (len >= sizeof out->target.password) {
                snprintf(err, errlen, "cluster.password_file: password too long");
                rc = WSS_ERR_CONFIG;
                goto fail;
            }
            snprintf(out->target.password, sizeof out->target.password, "%s", buf);
        }
        files_free_secret(buf, len);
        buf = NULL;
    }
    if ((rc = files_read(cc->secret_file, true, "cluster.secret_file", 65536, &buf, &len, err,
                         errlen)) != 0)
        goto fail;
    trim(buf, &len);
    if (len < CLUSTER_SECRET_MIN) {
        snprintf(err, errlen,
                 "cluster.secret_file %s holds %zu bytes: at least %d are needed "
                 "(e.g. head -c 32 /dev/urandom | base64 > FILE)",
                 cc->secret_file, len, CLUSTER_SECRET_MIN);
        rc = WSS_ERR_CONFIG;
        goto fail;
    }
    /* The key is a hash of the file's bytes: any length, any encoding, one key size. */
    crypto_generichash(out->secret, sizeof out->secret, (const uint8_t *)buf, len,
                       (const uint8_t *)"wssignd-cluster-v1", 18);
    files_free_secret(buf, len);
    buf = NULL;
    if (cc->node_id) {
        if (!cmsg_node_id_valid(cc->node_id)) {
            snprintf(err, errlen,
                     "cluster.node_id must be 1 to %d visible characters without "
                     "quotes or backslashes",
                     CMSG_NODE_MAX);
            rc = WSS_ERR_CONFIG;
            goto fail;
        }
        snprintf(out->node_id, sizeof out->node_id, "%s", cc->node_id);
    } else {
        uint8_t r[3];
        char hex[7];

        if (gethostname(host, sizeof host) != 0 || !host[0])
            snprintf(host, sizeof host, "node");
        host[sizeof host - 1] = '\0';
        for (char *p = host; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
                *p = '_';
        randombytes_buf(r, sizeof r);
        snprintf(out->node_id, sizeof out->node_id, "%.40s-%s", host,
                 util_hex(hex, sizeof hex, r, sizeof r));
    }
    if (cc->channel_prefix) {
        size_t n = strlen(cc->channel_prefix);

        if (n == 0 || n > CLUSTER_PREFIX_MAX || !cmsg_node_id_valid(cc->channel_prefix)) {
            snprintf(err, errlen, "cluster.channel_prefix must be 1 to %d visible characters",
                     CLUSTER_PREFIX_MAX);
            rc = WSS_ERR_CONFIG;
            goto fail;
        }
        snprintf(out->prefix, sizeof out->prefix, "%s", cc->channel_prefix);
    } else {
        snprintf(out->prefix, sizeof out->prefix, "wssign:");
    }
    return 0;
fail:
    files_free_secret(buf, len);
    cluster_settings_wipe(out);
    return rc;
}

void cluster_settings_wipe(struct cluster_settings *s)
{
    sodium_memzero(s, sizeof *s);
}

/* ---- sending ---- */

static void tagged_key_channel(const struct cluster *c, char out[CHANNEL_MAX], char tag,
                               const uint8_t *key)
{
    char hex[2 * WSS_PUBLIC_KEY_BYTES + 1];

    snprintf(out, CHANNEL_MAX, "%s%c:%s", c->set.prefix, tag,
             util_hex(hex, sizeof hex, key, WSS_PUBLIC_KEY_BYTES));
}

/* Where a key's holder listens: requests and presence queries for it. */
static void key_channel(const struct cluster *c, char out[CHANNEL_MAX], const uint8_t *key)
{
    tagged_key_channel(c, out, 'k', key);
}

/* Where the nodes with requests waiting for a key listen for its arrival. */
static void wait_channel(const struct cluster *c, char out[CHANNEL_MAX], const uint8_t *key)
{
    tagged_key_channel(c, out, 'w', key);
}

/* The key a key or wait channel names; false if it names none. */
static bool channel_key(const struct cluster *c, const char *channel,
                        uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    size_t plen = strlen(c->set.prefix) + 2, n = 0;

    return strlen(channel) == plen + 2 * WSS_PUBLIC_KEY_BYTES &&
           sodium_hex2bin(key, WSS_PUBLIC_KEY_BYTES, channel + plen, 2 * WSS_PUBLIC_KEY_BYTES, NULL,
                          &n, NULL) == 0 &&
           n == WSS_PUBLIC_KEY_BYTES;
}

static void node_channel(const struct cluster *c, char out[CHANNEL_MAX], const char *node)
{
    snprintf(out, CHANNEL_MAX, "%sn:%s", c->set.prefix, node);
}

/* Publishes m (its from and seq filled in here). Returns 0 or WSS_ERR_IO. */
static int publish(struct cluster *c, const char *channel, struct cmsg *m, redis_publish_cb cb,
                   void *arg)
{
    size_t len;
    char *buf;
    int rc;

    snprintf(m->from, sizeof m->from, "%s", c->set.node_id);
    m->seq = ++c->seq;
    buf = cmsg_encode(m, c->set.secret, &len);
    rc = redis_publish(c->redis, channel, buf, len, cb, arg);
    free(buf);
    return rc;
}

/* Sends a message about request id of key to node. */
static void tell(struct cluster *c, const char *node, enum cmsg_type t, const uint8_t *key,
                 const char *id)
{
    struct cmsg m = {.type = t, .has_key = true};
    char ch[CHANNEL_MAX];

    memcpy(m.key, key, sizeof m.key);
    snprintf(m.id, sizeof m.id, "%s", id);
    node_channel(c, ch, node);
    publish(c, ch, &m, NULL, NULL);
}

/* ---- the requesting side: proxies ---- */

static struct proxy *find_proxy(struct cluster *c, const uint8_t *key)
{
    struct proxy *p = NULL;

    HASH_FIND(hh, c->proxies, key, WSS_PUBLIC_KEY_BYTES, p);
    return p;
}

static struct outreq *find_outreq(struct cluster *c, const char *id)
{
    struct outreq *o = NULL;

    HASH_FIND_STR(c->outreqs, id, o);
    return o;
}

static void forget_outreq(struct cluster *c, struct outreq *o)
{
    HASH_DEL(c->outreqs, o);
    free(o);
}

/* The proxy leaves the registry; its requests end connection_closed. */
static void close_proxy(struct cluster *c, struct proxy *p)
{
    if (p->closed)
        return;
    p->closed = true;
    p->s.state = SESSION_CLOSING;
    service_unregister(c->svc, &p->s);
}

static void free_proxy(struct cluster *c, struct proxy *p)
{
    HASH_DEL(c->proxies, p);
    free(p);
}

/* A request sent through a proxy ends here with status, if it is still pending there.
 * key and id may point into the request's outreq, which this frees. */
static void end_request(struct cluster *c, const uint8_t *key, const char *id, int status)
{
    struct proxy *p = find_proxy(c, key);
    struct outreq *o = find_outreq(c, id);
    char rid[WSS_REQUEST_ID_BYTES];

    snprintf(rid, sizeof rid, "%s", id);
    if (o)
        forget_outreq(c, o);
    if (p && !p->closed)
        service_end_request(c->svc, &p->s, rid, status);
}

static void on_req_published(void *arg, long long receivers)
{
    struct pubctx *pc = arg;
    struct cluster *c = pc->c;
    struct outreq *o = find_outreq(c, pc->id);

    if (!c->stopping && o) {
        o->receivers = receivers;
        /* Nobody holds the key: not connected, at once. */
        if (receivers == 0)
            end_request(c, pc->key, pc->id, WSS_ERR_NOT_CONNECTED);
        else if (receivers < 0)
            end_request(c, pc->key, pc->id, WSS_ERR_CONN_CLOSED);
        else if (o->gones >= (unsigned long long)receivers)
            end_request(c, pc->key, pc->id, WSS_ERR_NOT_CONNECTED);
    }
    free(pc);
}

/*
 * A sign_request frame exactly as wire_encode_sign_request writes it, read
 * without a parse: {"type":"sign_request","request_id":ID,"message":BASE64,
 * "expires_at":N}, the id printable ASCII without escapes, N of at most 18
 * digits. What it accepts, jansson reads to the same fields; false for any
 * other text.
 */
static bool sign_request_fields(const char *text, size_t len, char id[WSS_REQUEST_ID_BYTES],
                                uint64_t *exp)
{
    static const char head[] = "{\"type\":\"sign_request\",\"request_id\":\"";
    static const char mid[] = "\",\"message\":\"";
    static const char tail[] = "\",\"expires_at\":";
    const char *p = text, *end = text + len, *start, *id_start;
    size_t id_len;
    uint64_t v = 0;

    if (len < sizeof head - 1 || memcmp(p, head, sizeof head - 1))
        return false;
    start = p += sizeof head - 1;
    while (p < end && *p != '"' && *p >= 0x20 && *p <= 0x7e && *p != '\\')
        p++;
    if (p == end || *p != '"' || p - start >= WSS_REQUEST_ID_BYTES)
        return false;
    id_start = start;
    id_len = (size_t)(p - start);
    if ((size_t)(end - p) < sizeof mid - 1 || memcmp(p, mid, sizeof mid - 1))
        return false;
    p += sizeof mid - 1;
    while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                       (*p >= '0' && *p <= '9') || *p == '+' || *p == '/' || *p == '='))
        p++;
    if ((size_t)(end - p) < sizeof tail - 1 || memcmp(p, tail, sizeof tail - 1))
        return false;
    start = p += sizeof tail - 1;
    while (p < end && *p >= '0' && *p <= '9' && p - start <= 18)
        v = v * 10 + (uint64_t)(*p++ - '0');
    if (p == start || p - start > 18 || (p - start > 1 && *start == '0') || end - p != 1 ||
        *p != '}')
        return false;
    memcpy(id, id_start, id_len);
    id[id_len] = '\0';
    *exp = v;
    return true;
}

/* Reads type, request_id and expires_at from a frame the service made. */
static bool frame_fields(const char *text, size_t len, char type[24], char id[WSS_REQUEST_ID_BYTES],
                         uint64_t *exp)
{
    json_t *o;
    const char *t, *r;
    bool ok;

    /* The one sent with every remote signature needs no parse. */
    if (sign_request_fields(text, len, id, exp)) {
        snprintf(type, 24, "sign_request");
        return true;
    }
    o = json_loadb(text, len, 0, NULL);
    t = json_string_value(json_object_get(o, "type"));
    r = json_string_value(json_object_get(o, "request_id"));
    ok = t && r && strlen(t) < 24 && strlen(r) < WSS_REQUEST_ID_BYTES;
    if (ok) {
        snprintf(type, 24, "%s", t);
        snprintf(id, WSS_REQUEST_ID_BYTES, "%s", r);
        *exp = (uint64_t)json_integer_value(json_object_get(o, "expires_at"));
    }
    json_decref(o);
    return ok;
}

/*
 * The proxy's send hook: a frame for the key's connection on another node.
 * sign_request goes out as "req" on the key's channel, cancel and
 * invalid_signature as "fwd"; frames about the connection itself
 * (superseded, ...) stay here: the owner node speaks for its connection.
 */
static void proxy_send(struct session *s, char *buf, size_t len)
{
    struct proxy *p = container_of(s, struct proxy, s);
    struct cluster *c = p->c;
    struct cmsg m = {.has_key = true};
    char type[24], ch[CHANNEL_MAX];
    uint64_t exp = 0;

    if (p->closed || c->stopping || !frame_fields(buf, len, type, m.id, &exp)) {
        free(buf);
        return;
    }
    memcpy(m.key, s->key, sizeof m.key);
    m.frame = buf;
    m.frame_len = len;
    key_channel(c, ch, s->key);
    if (!strcmp(type, "sign_request")) {
        struct outreq *o = find_outreq(c, m.id);
        struct pubctx *pc = xcalloc(1, sizeof *pc);

        if (!o) {
            o = xcalloc(1, sizeof *o);
            snprintf(o->id, sizeof o->id, "%s", m.id);
            HASH_ADD_STR(c->outreqs, id, o);
        }
        memcpy(o->key, s->key, sizeof o->key);
        o->sent_ms = util_now_ms();
        o->receivers = -1;
        o->gones = 0;
        o->acked = false;
        o->owner[0] = '\0';
        p->idle_since_ms = 0;
        m.type = CMSG_REQ;
        m.exp = exp;
        pc->c = c;
        memcpy(pc->key, s->key, sizeof pc->key);
        snprintf(pc->id, sizeof pc->id, "%s", m.id);
        if (publish(c, ch, &m, on_req_published, pc) != 0) {
            free(pc);
            /* Redis went away between the check and the send: the path is gone. */
            forget_outreq(c, o);
            free(buf);
            service_end_request(c->svc, s, m.id, WSS_ERR_CONN_CLOSED);
            return;
        }
    } else {
        struct outreq *o = find_outreq(c, m.id);

        if (o && !strcmp(type, "cancel"))
            forget_outreq(c, o);
        m.type = CMSG_FWD;
        publish(c, ch, &m, NULL, NULL);
    }
    free(buf);
}

static void proxy_close(struct session *s, int code, const char *reason)
{
    struct proxy *p = container_of(s, struct proxy, s);

    /* Superseded by a local connection (which holds the key in the registry already:
     * its node tells the old owner), too many refused answers, or shutdown. Out of the
     * registry now: the tick frees a closed proxy. */
    close_proxy(p->c, p);
}

static void proxy_drop(struct session *s)
{
    proxy_close(s, 0, NULL);
}

static const struct link_ops proxy_ops = {
    .kind = "cluster",
    .headroom = 0,
    .remote = true,
    .send = proxy_send,
    .close = proxy_close,
    .drop = proxy_drop,
    .ping = NULL, /* the owner node keeps its connection alive */
};

/*
 * A proxy for key, registered as the key's holder (an existing one is used
 * unless it is being freed). *old receives the session it replaced.
 */
static struct proxy *new_proxy(struct cluster *c, const uint8_t *key, struct session **old)
{
    struct proxy *p = find_proxy(c, key);

    *old = NULL;
    if (p && p->closed) {
        /* Out of the registry already: a fresh one takes the key. */
        free_proxy(c, p);
        p = NULL;
    }
    if (p)
        return p;
    p = xcalloc(1, sizeof *p);
    p->c = c;
    session_init(&p->s, c->svc, &proxy_ops, "cluster", NULL);
    memcpy(p->s.key, key, WSS_PUBLIC_KEY_BYTES);
    p->s.state = SESSION_INTRODUCED;
    HASH_ADD(hh, c->proxies, s.key, WSS_PUBLIC_KEY_BYTES, p);
    *old = service_register(c->svc, &p->s);
    return p;
}

/* The service's reach hook: a session for key on another node, made on demand. */
static struct session *reach(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES], int *status)
{
    struct cluster *c = arg;
    struct session *old;

    if (!c->up || c->stopping) {
        *status = WSS_ERR_CLUSTER_UNAVAILABLE;
        return NULL;
    }
    /* Called when no usable session holds the key here: one that is closing is replaced. */
    return &new_proxy(c, key, &old)->s;
}

/* ---- the owner side: relays and held keys ---- */

static struct relay *find_relay(struct cluster *c, const char *id)
{
    struct relay *r = NULL;

    HASH_FIND_STR(c->relays, id, r);
    return r;
}

static void forget_relay(struct cluster *c, struct relay *r)
{
    HASH_DEL(c->relays, r);
    free(r->frame);
    free(r);
}

static struct held *find_held(struct cluster *c, const uint8_t *key)
{
    struct held *h = NULL;

    HASH_FIND(hh, c->held, key, WSS_PUBLIC_KEY_BYTES, h);
    return h;
}

/* Sends frame to local session s (copied, with the transport's headroom). */
static void forward(struct session *s, const char *frame, size_t len)
{
    char *buf = xmalloc(s->ops->headroom + len);

    memcpy(buf + s->ops->headroom, frame, len);
    s->ops->send(s, buf, len);
}

/* Cancels a relayed request at the signer (its requester is gone). */
static void cancel_relay(struct cluster *c, struct relay *r)
{
    struct session *s = r->answered_ms ? NULL : service_holder(c->svc, r->key);

    if (s) {
        s->late_answers++;
        link_send_cancel(s, r->id, "requester_cancelled");
    }
    forget_relay(c, r);
}

/* The service's relay hook: an answer on local session s to a request of another node. */
static bool relay_answer(void *arg, struct session *s, const char *id, const char *frame,
                         size_t len)
{
    struct cluster *c = arg;
    struct relay *r = find_relay(c, id);
    struct cmsg m = {.type = CMSG_ANS, .has_key = true};
    char ch[CHANNEL_MAX];

    /* One answer per request: a second one is refused here, as for a local request. */
    if (!r || r->answered_ms || memcmp(r->key, s->key, sizeof r->key) != 0)
        return false;
    memcpy(m.key, r->key, sizeof m.key);
    snprintf(m.id, sizeof m.id, "%s", id);
    m.frame = frame;
    m.frame_len = len;
    node_channel(c, ch, r->origin);
    publish(c, ch, &m, NULL, NULL);
    /* The requesting node verifies the answer and may send its verdict back (fwd). */
    r->answered_ms = util_unix_ms();
    free(r->frame);
    r->frame = NULL;
    r->frame_len = 0;
    return true;
}

static void announce(struct cluster *c, const struct held *h)
{
    struct cmsg m = {.type = CMSG_INTRO, .has_key = true, .at = h->at};
    char ch[CHANNEL_MAX];
    const uint8_t *key = h->key;

    memcpy(m.key, key, sizeof m.key);
    key_channel(c, ch, key);
    publish(c, ch, &m, NULL, NULL);
}

static void on_key_subscribed(void *arg, const char *channel)
{
    struct cluster *c = arg;
    struct cmsg m = {.type = CMSG_ARRIVED, .has_key = true};
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char ch[CHANNEL_MAX];
    struct held *h;

    if (!channel_key(c, channel, key) || (h = find_held(c, key)) == NULL)
        return;
    /* Subscribed (again, after a reconnect): announce, so that an older holder
     * elsewhere yields, or a newer one makes us yield. */
    announce(c, h);
    /* Requests may wait for the key on other nodes: it can be reached here now. */
    memcpy(m.key, key, sizeof m.key);
    wait_channel(c, ch, key);
    publish(c, ch, &m, NULL, NULL);
}

/* ---- requests waiting for a key ---- */

static struct waitkey *find_wait(struct cluster *c, const uint8_t *key)
{
    struct waitkey *w = NULL;

    HASH_FIND(hh, c->waits, key, WSS_PUBLIC_KEY_BYTES, w);
    return w;
}

/* The key is held on another node now: the requests waiting for it here go there. */
static void arrived(struct cluster *c, const uint8_t *key)
{
    struct session *s;
    int status;

    if (c->stopping || !find_wait(c, key) || service_holder(c->svc, key))
        return;
    if ((s = reach(c, key, &status)) != NULL)
        service_send_waiting(c->svc, s);
}

/* Per presence query about a key waited for. */
struct waitq {
    struct cluster *c;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
};

static void on_wait_lookup(void *user, const struct wss_presence *p, const char *node)
{
    struct waitq *q = user;

    (void)node;
    if (p->connected)
        arrived(q->c, q->key);
    free(q);
}

/* Asks who holds key: it may have arrived before the wait channel was subscribed. */
static void check_arrival(struct cluster *c, const uint8_t *key)
{
    struct waitq *q = xcalloc(1, sizeof *q);

    q->c = c;
    memcpy(q->key, key, sizeof q->key);
    if (cluster_lookup(c, key, on_wait_lookup, q) != 0)
        free(q);
}

static void on_wait_subscribed(void *arg, const char *channel)
{
    struct cluster *c = arg;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    struct waitkey *w;

    if (!channel_key(c, channel, key) || (w = find_wait(c, key)) == NULL)
        return;
    w->subscribed = true;
    check_arrival(c, key);
}

/* The service's hook: a request here waits for key (another may already). */
static void wait_key(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    struct cluster *c = arg;
    struct waitkey *w = find_wait(c, key);
    char ch[CHANNEL_MAX];

    if (w) {
        /* Back to waiting (the node it was sent to no longer held the key): ask
         * again, as an arrival may have been missed meanwhile. */
        if (w->subscribed)
            check_arrival(c, key);
        return;
    }
    w = xcalloc(1, sizeof *w);
    memcpy(w->key, key, sizeof w->key);
    HASH_ADD(hh, c->waits, key, WSS_PUBLIC_KEY_BYTES, w);
    wait_channel(c, ch, key);
    redis_subscribe(c->redis, ch, on_wait_subscribed, c);
}

/* The service's hook: no request here waits for key any more. */
static void unwait_key(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES])
{
    struct cluster *c = arg;
    struct waitkey *w = find_wait(c, key);
    char ch[CHANNEL_MAX];

    if (!w)
        return;
    HASH_DEL(c->waits, w);
    free(w);
    wait_channel(c, ch, key);
    redis_unsubscribe(c->redis, ch);
}

/* The service's key hook: a local session now holds its key here, or no longer. */
static void key_event(void *arg, struct session *s, bool held)
{
    struct cluster *c = arg;
    struct held *h = find_held(c, s->key);
    struct relay *r, *tmp;
    char ch[CHANNEL_MAX];

    key_channel(c, ch, s->key);
    if (held) {
        if (!h) {
            h = xcalloc(1, sizeof *h);
            memcpy(h->key, s->key, sizeof h->key);
            h->at = util_unix_ms();
            HASH_ADD(hh, c->held, key, WSS_PUBLIC_KEY_BYTES, h);
            redis_subscribe(c->redis, ch, on_key_subscribed, c);
        } else {
            /* Introduced again here (a newer connection on this node): the newest wins
             * cluster-wide too, and relayed requests follow it, as local ones do. */
            h->at = util_unix_ms();
            if (c->up)
                announce(c, h);
        }
        HASH_ITER (hh, c->relays, r, tmp) {
            if (!r->answered_ms && !memcmp(r->key, s->key, sizeof r->key))
                forward(s, r->frame, r->frame_len);
        }
        return;
    }
    if (h) {
        HASH_DEL(c->held, h);
        free(h);
        redis_unsubscribe(c->redis, ch);
    }
    /* The key's connection is gone: the requesting nodes end their requests now. */
    HASH_ITER (hh, c->relays, r, tmp) {
        if (!memcmp(r->key, s->key, sizeof r->key)) {
            if (!r->answered_ms)
                tell(c, r->origin, CMSG_CLOSED, r->key, r->id);
            forget_relay(c, r);
        }
    }
}

/* Another node announced a key held here after our own announcement: it wins. */
static void yield_key(struct cluster *c, const uint8_t *key, const char *to)
{
    struct held *h = find_held(c, key);
    struct session *old;
    struct relay *r, *tmp;
    struct proxy *p;
    char ch[CHANNEL_MAX], fpr[UTIL_FPR_BYTES];

    log_info("event=cluster_superseded node=%s key=%s by=%s", c->set.node_id,
             util_key_fpr(fpr, key), to);
    if (h) {
        HASH_DEL(c->held, h);
        free(h);
    }
    key_channel(c, ch, key);
    redis_unsubscribe(c->redis, ch);
    /* As on one node: the key's requests here follow it (through a proxy to the new
     * owner) and the local connection is told and closed with 4001. */
    p = new_proxy(c, key, &old);
    snprintf(p->owner, sizeof p->owner, "%s", to);
    if (old && !old->ops->remote)
        session_supersede(old, &p->s);
    HASH_ITER (hh, c->relays, r, tmp) {
        if (!memcmp(r->key, key, sizeof r->key)) {
            if (!r->answered_ms)
                tell(c, r->origin, CMSG_MOVED, r->key, r->id);
            forget_relay(c, r);
        }
    }
}

/* ---- presence lookups ---- */

static struct query *find_query(struct cluster *c, const char *id)
{
    struct query *q = NULL;

    HASH_FIND_STR(c->queries, id, q);
    return q;
}

/* Ends a query: its callback runs once, with the holder's answer or nothing. */
static void answer_query(struct cluster *c, struct query *q, const struct cmsg *here)
{
    struct wss_presence p = {0};
    cluster_lookup_cb cb = q->cb;
    void *user = q->user;

    HASH_DEL(c->queries, q);
    free(q);
    if (here) {
        p.connected = true;
        p.connected_at_ms = here->at;
        snprintf(p.session_id, sizeof p.session_id, "%s", here->session);
        p.pending = here->pending;
    }
    cb(user, &p, here ? here->from : NULL);
}

static void on_who_published(void *arg, long long receivers)
{
    struct pubctx *pc = arg;
    struct query *q = find_query(pc->c, pc->id);

    /* Nobody subscribed to the key's channel: nobody holds it, and no answer will come. */
    if (q && receivers <= 0)
        answer_query(pc->c, q, NULL);
    free(pc);
}

int cluster_lookup(struct cluster *c, const uint8_t key[WSS_PUBLIC_KEY_BYTES], cluster_lookup_cb cb,
                   void *user)
{
    struct cmsg m = {.type = CMSG_WHO, .has_key = true};
    struct pubctx *pc;
    struct query *q;
    char ch[CHANNEL_MAX];

    if (!c->up || c->stopping)
        return WSS_ERR_CLUSTER_UNAVAILABLE;
    q = xcalloc(1, sizeof *q);
    util_uuid(q->id);
    memcpy(q->key, key, sizeof q->key);
    q->deadline_ms = util_now_ms() + LOOKUP_TIMEOUT_MS;
    q->cb = cb;
    q->user = user;
    HASH_ADD_STR(c->queries, id, q);
    memcpy(m.key, key, sizeof m.key);
    snprintf(m.id, sizeof m.id, "%s", q->id);
    pc = xcalloc(1, sizeof *pc);
    pc->c = c;
    snprintf(pc->id, sizeof pc->id, "%s", q->id);
    key_channel(c, ch, key);
    if (publish(c, ch, &m, on_who_published, pc) != 0) {
        free(pc);
        HASH_DEL(c->queries, q);
        free(q);
        return WSS_ERR_CLUSTER_UNAVAILABLE;
    }
    return 0;
}

/* A presence query for a key held here. */
static void on_who(struct cluster *c, const struct cmsg *m)
{
    struct session *s = service_holder(c->svc, m->key);
    struct cmsg r = {.type = CMSG_HERE, .has_key = true};
    struct wss_presence p;
    char ch[CHANNEL_MAX];

    if (!s || !wss_lookup_key(c->svc, m->key, &p))
        return;
    memcpy(r.key, m->key, sizeof r.key);
    snprintf(r.id, sizeof r.id, "%s", m->id);
    r.at = p.connected_at_ms;
    snprintf(r.session, sizeof r.session, "%s", p.session_id);
    r.pending = p.pending;
    node_channel(c, ch, m->from);
    publish(c, ch, &r, NULL, NULL);
}

/* ---- kicks and listings ---- */

/* A kick or a list asked of every node that may answer it within this long. */
#define ASK_TIMEOUT_MS 1000

static struct ask *find_ask(struct cluster *c, const char *id)
{
    struct ask *a = NULL;

    HASH_FIND_STR(c->asks, id, a);
    return a;
}

/* Ends an ask: its callback runs once, with status (and node, or the merged keys). */
static void finish_ask(struct cluster *c, struct ask *a, int status, const char *node)
{
    HASH_DEL(c->asks, a);
    if (a->type == CMSG_KICK)
        a->kick_cb(a->user, status, node);
    else
        a->list_cb(a->user, status, status == WSS_OK ? a->keys : NULL,
                   status == WSS_OK ? a->n_keys : 0, status == WSS_OK && a->more);
    free(a->keys);
    free(a);
}

/* Every node that received the ask has answered (one that held the key ends a kick early). */
static void ask_check(struct cluster *c, struct ask *a)
{
    if (a->receivers < 0)
        return;
    if (a->type == CMSG_KICK && a->answers >= (unsigned long long)a->receivers)
        finish_ask(c, a, WSS_ERR_NOT_CONNECTED, NULL);
    else if (a->type == CMSG_LIST && a->answers + 1 >= (unsigned long long)a->receivers)
        finish_ask(c, a, WSS_OK, NULL);
}

static void on_ask_published(void *arg, long long receivers)
{
    struct pubctx *pc = arg;
    struct ask *a = find_ask(pc->c, pc->id);

    if (a && !pc->c->stopping) {
        if (receivers < 0)
            finish_ask(pc->c, a, WSS_ERR_CLUSTER_UNAVAILABLE, NULL);
        else {
            a->receivers = receivers;
            ask_check(pc->c, a);
        }
    }
    free(pc);
}

/* Registers a and publishes m for it on channel. Returns 0, or WSS_ERR_CLUSTER_UNAVAILABLE
 * (a freed, no callback). */
static int ask(struct cluster *c, struct ask *a, const char *channel, struct cmsg *m)
{
    struct pubctx *pc;

    if (!c->up || c->stopping) {
        free(a);
        return WSS_ERR_CLUSTER_UNAVAILABLE;
    }
    util_uuid(a->id);
    a->deadline_ms = util_now_ms() + ASK_TIMEOUT_MS;
    a->receivers = -1;
    HASH_ADD_STR(c->asks, id, a);
    snprintf(m->id, sizeof m->id, "%s", a->id);
    pc = xcalloc(1, sizeof *pc);
    pc->c = c;
    snprintf(pc->id, sizeof pc->id, "%s", a->id);
    if (publish(c, channel, m, on_ask_published, pc) != 0) {
        free(pc);
        HASH_DEL(c->asks, a);
        free(a);
        return WSS_ERR_CLUSTER_UNAVAILABLE;
    }
    return 0;
}

/* The service's kick hook: disconnect key wherever another node holds it. */
static int kick_hook(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES],
                     void (*cb)(void *user, int status, const char *node), void *user)
{
    struct cluster *c = arg;
    struct cmsg m = {.type = CMSG_KICK, .has_key = true};
    struct ask *a = xcalloc(1, sizeof *a);
    char ch[CHANNEL_MAX];

    a->type = CMSG_KICK;
    memcpy(a->key, key, sizeof a->key);
    a->kick_cb = cb;
    a->user = user;
    memcpy(m.key, key, sizeof m.key);
    key_channel(c, ch, key);
    return ask(c, a, ch, &m);
}

/* The service's list hook: every other node's keys for the page q. */
static int list_hook(void *arg, const struct service_list_query *q,
                     void (*cb)(void *user, int status, const struct wss_key_entry *keys, size_t n,
                                bool more),
                     void *user)
{
    struct cluster *c = arg;
    struct cmsg m = {.type = CMSG_LIST, .limit = (uint32_t)q->limit, .has_after = q->has_after};
    struct ask *a = xcalloc(1, sizeof *a);

    a->type = CMSG_LIST;
    a->limit = q->limit;
    a->list_cb = cb;
    a->user = user;
    memcpy(m.after, q->after, sizeof m.after);
    if (q->only) {
        m.only = q->only->keys;
        m.n_only = q->only->n;
    }
    return ask(c, a, c->nodes_channel, &m);
}

/* A kick for a key held here: close its connection, and say whether there was one. */
static void on_kick(struct cluster *c, const struct cmsg *m)
{
    struct cmsg r = {.type = CMSG_KICKED, .has_key = true};
    char ch[CHANNEL_MAX];

    r.ok = service_disconnect_holder(c->svc, m->key, "disconnected by the operator", "requested");
    memcpy(r.key, m->key, sizeof r.key);
    snprintf(r.id, sizeof r.id, "%s", m->id);
    node_channel(c, ch, m->from);
    publish(c, ch, &r, NULL, NULL);
}

static void on_kicked(struct cluster *c, const struct cmsg *m)
{
    struct ask *a = find_ask(c, m->id);

    if (!a || a->type != CMSG_KICK || memcmp(a->key, m->key, sizeof a->key))
        return;
    if (m->ok) {
        finish_ask(c, a, WSS_OK, m->from);
        return;
    }
    a->answers++;
    ask_check(c, a);
}

/* A listing asked by another node: this node's keys of the page. */
static void on_list(struct cluster *c, const struct cmsg *m)
{
    struct cmsg r = {.type = CMSG_KEYS};
    struct service_list_query q = {.has_after = m->has_after, .limit = m->limit};
    struct keyset only = {0};
    char ch[CHANNEL_MAX];

    if (!strcmp(m->from, c->set.node_id))
        return; /* our own, heard on the nodes channel */
    memcpy(q.after, m->after, sizeof q.after);
    if (m->only) {
        for (size_t i = 0; i < m->n_only; i++)
            keyset_add(&only, m->only[i]);
        keyset_sort(&only);
        q.only = &only;
    }
    r.keys = xmalloc(q.limit * sizeof *r.keys);
    r.n_keys = service_list_local(c->svc, &q, NULL, r.keys, &r.more);
    snprintf(r.id, sizeof r.id, "%s", m->id);
    node_channel(c, ch, m->from);
    publish(c, ch, &r, NULL, NULL);
    free(r.keys);
    keyset_clear(&only);
}

static void on_keys(struct cluster *c, const struct cmsg *m)
{
    struct ask *a = find_ask(c, m->id);

    if (!a || a->type != CMSG_LIST)
        return;
    a->keys = xrealloc(a->keys, (a->n_keys + m->n_keys + 1) * sizeof *a->keys);
    for (size_t i = 0; i < m->n_keys; i++) {
        struct wss_key_entry *e = &a->keys[a->n_keys + i];

        *e = m->keys[i];
        snprintf(e->node, sizeof e->node, "%s", m->from);
    }
    a->more = a->more || m->more;
    a->n_keys = service_keys_merge(a->keys, a->n_keys + m->n_keys, a->limit, &a->more);
    a->answers++;
    ask_check(c, a);
}

/* Ends every ask with status (Redis went away, or the node stops). */
static void end_asks(struct cluster *c, int status)
{
    while (c->asks)
        finish_ask(c, c->asks, status, NULL);
}

/* ---- receiving ---- */

static struct node *find_node(struct cluster *c, const char *id)
{
    struct node *n = NULL;

    HASH_FIND_STR(c->nodes, id, n);
    return n;
}

/* Records a message from m->from; false if it is a replay (an old sequence number). */
static void node_gone(struct cluster *c, struct node *n, const char *why);

static bool heard(struct cluster *c, const struct cmsg *m, uint64_t now)
{
    struct node *n = find_node(c, m->from);
    bool other = strcmp(m->from, c->set.node_id) != 0, known = n != NULL;

    if (!n) {
        if (HASH_COUNT(c->nodes) >= NODES_MAX)
            return false;
        n = xcalloc(1, sizeof *n);
        snprintf(n->id, sizeof n->id, "%s", m->from);
        HASH_ADD_STR(c->nodes, id, n);
    } else if (m->seq <= n->last_seq) {
        return false;
    }
    n->last_seq = m->seq;
    n->last_seen_ms = now;
    /* "bye": it stops; "hello": it started again, so what its earlier run held or
     * asked for is gone even if its heartbeats never paused. */
    if (other && known && (m->type == CMSG_BYE || m->type == CMSG_HELLO) &&
        (n->alive || m->type == CMSG_HELLO))
        node_gone(c, n, m->type == CMSG_BYE ? "bye" : "restarted");
    if (m->type == CMSG_BYE) {
        n->alive = false;
        return true;
    }
    if (!n->alive && other)
        log_info("event=cluster_node_up node=%s peer=%s", c->set.node_id, n->id);
    n->alive = true;
    return true;
}

static void dropped(struct cluster *c, const char *why, const char *channel, size_t chlen)
{
    char ch[CHANNEL_MAX];

    c->svc->metrics.cluster_dropped[!strcmp(why, CMSG_BAD_TAG) ? 0
                                    : !strcmp(why, "replay")   ? 2
                                                               : 1]++;
    snprintf(ch, sizeof ch, "%.*s", (int)(chlen < sizeof ch - 1 ? chlen : sizeof ch - 1), channel);
    log_limited(&c->drop_log, WSS_LOG_WARN,
                "event=cluster_message_dropped node=%s reason=%s channel=%s", c->set.node_id, why,
                util_printable((char[UTIL_PRINTABLE_MAX + 8]){0}, UTIL_PRINTABLE_MAX + 8, ch));
}

/* A sign request of another node for a key held here. */
static void on_req(struct cluster *c, const struct cmsg *m, uint64_t now_unix)
{
    struct session *s = service_holder(c->svc, m->key);
    struct relay *r;

    if (!s || !find_held(c, m->key)) {
        tell(c, m->from, CMSG_GONE, m->key, m->id);
        return;
    }
    if (find_relay(c, m->id) || m->exp <= now_unix)
        return; /* seen already (a resend reaches a holder once), or expired */
    r = xcalloc(1, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", m->id);
    memcpy(r->key, m->key, sizeof r->key);
    snprintf(r->origin, sizeof r->origin, "%s", m->from);
    r->exp = m->exp;
    r->frame = xmemdup(m->frame, m->frame_len);
    r->frame_len = m->frame_len;
    HASH_ADD_STR(c->relays, id, r);
    forward(s, m->frame, m->frame_len);
    tell(c, m->from, CMSG_ACK, m->key, m->id);
}

/* A cancel or an error for a relayed request, from the node that sent it. */
static void on_fwd(struct cluster *c, const struct cmsg *m)
{
    struct relay *r = find_relay(c, m->id);
    struct session *s = service_holder(c->svc, m->key);
    char type[24], id[WSS_REQUEST_ID_BYTES];
    uint64_t exp;

    if (!r || strcmp(r->origin, m->from) || memcmp(r->key, m->key, sizeof r->key) || !s)
        return;
    if (!frame_fields(m->frame, m->frame_len, type, id, &exp) || strcmp(id, m->id))
        return;
    /* A link of the minimal protocol gets no cancel (link_send_cancel says the same). */
    if (strcmp(type, "cancel") != 0 || !s->minimal)
        forward(s, m->frame, m->frame_len);
    if (!strcmp(type, "cancel")) {
        if (!r->answered_ms)
            s->late_answers++;
        forget_relay(c, r);
    } else if (r->answered_ms) {
        forget_relay(c, r); /* the verdict on its answer: nothing more to come */
    }
}

static void on_answer(struct cluster *c, const struct cmsg *m)
{
    struct proxy *p = find_proxy(c, m->key);
    struct outreq *o = find_outreq(c, m->id);

    if (o) {
        metrics_cluster_round_trip(&c->svc->metrics, util_now_ms() - o->sent_ms);
        forget_outreq(c, o);
    }
    if (!p || p->closed)
        return;
    snprintf(p->owner, sizeof p->owner, "%s", m->from);
    /* Decoded and verified here, as any answer: a node never trusts another's verdict. */
    session_on_message(&p->s, m->frame, m->frame_len);
}

static void on_message(void *arg, const char *channel, size_t chlen, const char *payload,
                       size_t len)
{
    struct cluster *c = arg;
    const struct config *cfg = c->svc->cfg;
    /* A frame travels inside a JSON string, where its whitespace escapes to twice its
     * size: a signer's answer (up to limits.max_frame_bytes, relayed as received) or a
     * sign_request (the message in base64), plus the envelope. */
    size_t max = 2 * (cfg->max_frame_bytes > cfg->max_message_bytes ? cfg->max_frame_bytes
                                                                    : cfg->max_message_bytes) +
                 8192;
    struct cmsg m;
    const char *why;
    struct outreq *o;
    struct proxy *p;
    uint64_t now = util_now_ms();

    if (c->stopping)
        return;
    /* A listing's answer may hold WSS_LIST_MAX keys whatever the frame limits. */
    if (max < CMSG_LIST_BYTES_MAX)
        max = CMSG_LIST_BYTES_MAX;
    if (cmsg_decode(payload, len, max, c->set.secret, &m, &why) != 0) {
        dropped(c, why, channel, chlen);
        return;
    }
    if (!heard(c, &m, now)) {
        dropped(c, "replay", channel, chlen);
        cmsg_cleanup(&m);
        return;
    }
    switch (m.type) {
    case CMSG_REQ:
        if (strcmp(m.from, c->set.node_id))
            on_req(c, &m, util_unix_ms());
        break;
    case CMSG_FWD: on_fwd(c, &m); break;
    case CMSG_ACK:
        if ((o = find_outreq(c, m.id)) != NULL) {
            o->acked = true;
            snprintf(o->owner, sizeof o->owner, "%s", m.from);
        }
        if ((p = find_proxy(c, m.key)) != NULL)
            snprintf(p->owner, sizeof p->owner, "%s", m.from);
        break;
    case CMSG_GONE:
        if ((o = find_outreq(c, m.id)) != NULL && !o->acked && ++o->gones >= 1 &&
            o->receivers >= 0 && o->gones >= (unsigned long long)o->receivers)
            end_request(c, m.key, m.id, WSS_ERR_NOT_CONNECTED);
        break;
    case CMSG_ANS: on_answer(c, &m); break;
    case CMSG_MOVED:
        /* The key went to another node: our request follows it with its id. */
        if ((p = find_proxy(c, m.key)) != NULL && !p->closed)
            service_resend(c->svc, &p->s, m.id);
        break;
    case CMSG_CLOSED: end_request(c, m.key, m.id, WSS_ERR_CONN_CLOSED); break;
    case CMSG_INTRO: {
        struct held *h = find_held(c, m.key);
        int newer;

        if (!h || !strcmp(m.from, c->set.node_id))
            break;
        /* The newest introduction wins, by its time (node ids break a tie). A holder
         * that hears of an older one answers with its own announcement: the other
         * may have missed it (it subscribed after we published). */
        newer = m.at > h->at ? 1 : m.at < h->at ? -1 : strcmp(m.from, c->set.node_id);
        if (newer > 0)
            yield_key(c, m.key, m.from);
        else
            announce(c, h);
        break;
    }
    case CMSG_WHO: on_who(c, &m); break;
    case CMSG_HERE: {
        struct query *q = find_query(c, m.id);

        if (q && !memcmp(q->key, m.key, sizeof q->key))
            answer_query(c, q, &m);
        break;
    }
    case CMSG_ARRIVED:
        if (strcmp(m.from, c->set.node_id))
            arrived(c, m.key);
        break;
    case CMSG_KICK: on_kick(c, &m); break;
    case CMSG_KICKED: on_kicked(c, &m); break;
    case CMSG_LIST: on_list(c, &m); break;
    case CMSG_KEYS: on_keys(c, &m); break;
    case CMSG_HB:
    case CMSG_BYE:
    case CMSG_HELLO: break;
    }
    cmsg_cleanup(&m);
}

/* ---- liveness and housekeeping ---- */

/*
 * Ends connection_closed every request that node acknowledged. Collected
 * first: an outcome's callback may start or cancel other requests.
 */
static void end_taken_by(struct cluster *c, const char *node)
{
    struct taken {
        char id[WSS_REQUEST_ID_BYTES];
        uint8_t key[WSS_PUBLIC_KEY_BYTES];
    } *t;
    struct outreq *o, *otmp;
    size_t n = 0;

    if (!c->outreqs)
        return;
    t = xcalloc(HASH_COUNT(c->outreqs), sizeof *t);
    HASH_ITER (hh, c->outreqs, o, otmp) {
        if (o->acked && !strcmp(o->owner, node)) {
            memcpy(t[n].id, o->id, sizeof t[n].id);
            memcpy(t[n].key, o->key, sizeof t[n].key);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++)
        end_request(c, t[i].key, t[i].id, WSS_ERR_CONN_CLOSED);
    free(t);
}

/* Node n went (silent, said bye, or restarted: why). */
static void node_gone(struct cluster *c, struct node *n, const char *why)
{
    struct proxy *p, *ptmp;
    struct relay *r, *rtmp;

    log_warn("event=cluster_node_down node=%s peer=%s reason=%s", c->set.node_id, n->id, why);
    n->alive = false;
    /* Its keys' connections went with it: their requests end now, not at their deadline.
     * Each request it took, first: its key may have moved on to another node since. */
    end_taken_by(c, n->id);
    HASH_ITER (hh, c->proxies, p, ptmp) {
        if (!strcmp(p->owner, n->id))
            close_proxy(c, p);
    }
    HASH_ITER (hh, c->relays, r, rtmp) {
        if (!strcmp(r->origin, n->id))
            cancel_relay(c, r);
    }
}

static void heartbeat(struct cluster *c, uint64_t now)
{
    struct cmsg m = {.type = CMSG_HB};

    if (!c->up || now - c->last_hb_ms < HB_EVERY_MS)
        return;
    c->last_hb_ms = now;
    publish(c, c->nodes_channel, &m, NULL, NULL);
}

static void on_tick(struct timers *ts, struct timer *t, uint64_t now)
{
    struct cluster *c = container_of(t, struct cluster, tick);
    uint64_t now_unix = util_unix_ms();
    struct node *n, *ntmp;
    struct outreq *o, *otmp;
    struct relay *r, *rtmp;
    struct proxy *p, *ptmp;
    struct query *q, *qtmp;
    struct ask *a, *atmp;

    heartbeat(c, now);
    c->svc->metrics.cluster_nodes = cluster_nodes_alive(c);
    HASH_ITER (hh, c->nodes, n, ntmp) {
        if (n->alive && strcmp(n->id, c->set.node_id) && now - n->last_seen_ms > NODE_DEAD_MS)
            node_gone(c, n, "silent");
        if (!n->alive && now - n->last_seen_ms > NODE_FORGET_MS) {
            HASH_DEL(c->nodes, n);
            free(n);
        }
    }
    HASH_ITER (hh, c->outreqs, o, otmp) {
        if (!o->acked && now - o->sent_ms > ACK_TIMEOUT_MS)
            end_request(c, o->key, o->id, WSS_ERR_CONN_CLOSED);
        else if (o->acked && now - o->sent_ms > WSS_TIMEOUT_MAX_MS + ACK_TIMEOUT_MS)
            forget_outreq(c, o);
    }
    HASH_ITER (hh, c->relays, r, rtmp) {
        if (r->exp + ACK_TIMEOUT_MS < now_unix ||
            (r->answered_ms && r->answered_ms + ACK_TIMEOUT_MS < now_unix))
            forget_relay(c, r);
    }
    HASH_ITER (hh, c->queries, q, qtmp) {
        if (now >= q->deadline_ms)
            answer_query(c, q, NULL);
    }
    HASH_ITER (hh, c->asks, a, atmp) {
        if (now >= a->deadline_ms)
            finish_ask(c, a, WSS_ERR_CLUSTER_UNAVAILABLE, NULL);
    }
    HASH_ITER (hh, c->proxies, p, ptmp) {
        if (p->closed) {
            free_proxy(c, p);
            continue;
        }
        if (service_pending_for_key(c->svc, p->s.key)) {
            p->idle_since_ms = 0;
        } else if (!p->idle_since_ms) {
            p->idle_since_ms = now;
        } else if (now - p->idle_since_ms > PROXY_IDLE_MS) {
            close_proxy(c, p);
            free_proxy(c, p);
        }
    }
    timers_arm(ts, t, now + TICK_MS, on_tick);
}

/* ---- Redis up and down ---- */

static void on_up(void *arg)
{
    struct cluster *c = arg;
    struct cmsg hello = {.type = CMSG_HELLO};

    /* Once per start: an earlier run of this node that others still count on (one
     * killed and restarted within the heartbeat window) is gone. */
    if (!c->said_hello) {
        c->said_hello = true;
        publish(c, c->nodes_channel, &hello, NULL, NULL);
    }
    c->up = true;
    c->svc->metrics.cluster_up = 1;
    c->last_hb_ms = 0;
    log_notice("event=cluster_up node=%s keys=%u", c->set.node_id, HASH_COUNT(c->held));
    heartbeat(c, util_now_ms());
}

static void on_down(void *arg, const char *why)
{
    struct cluster *c = arg;
    struct proxy *p, *ptmp;
    struct outreq *o, *otmp;
    struct relay *r, *rtmp;
    char quoted[200];

    c->up = false;
    c->svc->metrics.cluster_up = 0;
    log_warn("event=cluster_down node=%s reason=%s", c->set.node_id,
             log_quote(quoted, sizeof quoted, why));
    /* No path to other nodes: what went through one ends now, with an outcome. */
    HASH_ITER (hh, c->outreqs, o, otmp) {
        forget_outreq(c, o);
    }
    HASH_ITER (hh, c->proxies, p, ptmp) {
        close_proxy(c, p);
    }
    HASH_ITER (hh, c->relays, r, rtmp) {
        cancel_relay(c, r);
    }
    while (c->queries)
        answer_query(c, c->queries, NULL);
    end_asks(c, WSS_ERR_CLUSTER_UNAVAILABLE);
}

/* ---- life cycle ---- */

/* The service's hooks take the cluster as a void pointer. */
static int lookup_hook(void *arg, const uint8_t key[WSS_PUBLIC_KEY_BYTES], cluster_lookup_cb cb,
                       void *user)
{
    return cluster_lookup(arg, key, cb, user);
}

static bool up_hook(const void *arg)
{
    return cluster_is_up(arg);
}

struct cluster *cluster_new(void *uv_loop, struct wss_service *svc, struct timers *timers,
                            const struct cluster_settings *s)
{
    struct cluster *c = xcalloc(1, sizeof *c);
    struct redis_events ev = {.up = on_up, .down = on_down, .message = on_message};

    c->svc = svc;
    c->timers = timers;
    c->set = *s;
    /* Never below what a restarted node sent before: microseconds of the wall clock. */
    c->seq = util_unix_ms() * 1000;
    node_channel(c, c->inbox, c->set.node_id);
    snprintf(c->nodes_channel, sizeof c->nodes_channel, "%snodes", c->set.prefix);
    svc->cluster.arg = c;
    svc->cluster.reach = reach;
    svc->cluster.relay = relay_answer;
    svc->cluster.key_event = key_event;
    svc->cluster.lookup = lookup_hook;
    svc->cluster.up = up_hook;
    svc->cluster.wait_key = wait_key;
    svc->cluster.unwait_key = unwait_key;
    svc->cluster.kick = kick_hook;
    svc->cluster.list = list_hook;
    svc->cluster.node_id = c->set.node_id;
    c->redis = redis_new(uv_loop, timers, &c->set.target, &ev, c);
    redis_subscribe(c->redis, c->inbox, NULL, NULL);
    redis_subscribe(c->redis, c->nodes_channel, NULL, NULL);
    timers_arm(timers, &c->tick, util_now_ms() + TICK_MS, on_tick);
    log_notice("event=cluster_start node=%s prefix=%s", c->set.node_id, c->set.prefix);
    return c;
}

void cluster_stop(struct cluster *c)
{
    struct cmsg m = {.type = CMSG_BYE};

    if (!c || c->stopping)
        return;
    if (c->up)
        publish(c, c->nodes_channel, &m, NULL, NULL);
    c->stopping = true;
}

void cluster_free(struct cluster *c)
{
    struct proxy *p, *ptmp;
    struct outreq *o, *otmp;
    struct relay *r, *rtmp;
    struct held *h, *htmp;
    struct node *n, *ntmp;
    struct waitkey *w, *wtmp;

    if (!c)
        return;
    c->stopping = true;
    timers_disarm(c->timers, &c->tick);
    redis_free(c->redis);
    /* Lookups still waiting for another node get their answer (not connected) first,
     * and kicks and listings theirs (shutting down). */
    while (c->queries)
        answer_query(c, c->queries, NULL);
    end_asks(c, WSS_ERR_SHUTTING_DOWN);
    memset(&c->svc->cluster, 0, sizeof c->svc->cluster);
    HASH_ITER (hh, c->proxies, p, ptmp) {
        close_proxy(c, p);
        free_proxy(c, p);
    }
    HASH_ITER (hh, c->outreqs, o, otmp) {
        forget_outreq(c, o);
    }
    HASH_ITER (hh, c->relays, r, rtmp) {
        forget_relay(c, r);
    }
    HASH_ITER (hh, c->held, h, htmp) {
        HASH_DEL(c->held, h);
        free(h);
    }
    HASH_ITER (hh, c->nodes, n, ntmp) {
        HASH_DEL(c->nodes, n);
        free(n);
    }
    HASH_ITER (hh, c->waits, w, wtmp) {
        HASH_DEL(c->waits, w);
        free(w);
    }
    while (c->queries)
        answer_query(c, c->queries, NULL);
    cluster_settings_wipe(&c->set);
    free(c);
}

void cluster_reload(struct cluster *c, const struct cluster_settings *s)
{
    bool moved = memcmp(&c->set.target, &s->target, sizeof s->target) != 0;

    memcpy(c->set.secret, s->secret, sizeof c->set.secret);
    if (moved) {
        c->set.target = s->target;
        log_notice("event=cluster_reconnect node=%s reason=reload", c->set.node_id);
        redis_retarget(c->redis, &c->set.target);
    }
}

bool cluster_is_up(const struct cluster *c)
{
    return c && c->up;
}

const char *cluster_node_id(const struct cluster *c)
{
    return c->set.node_id;
}

size_t cluster_nodes_alive(const struct cluster *c)
{
    const struct node *n, *tmp;
    size_t count = 1;

    HASH_ITER (hh, c->nodes, n, tmp) {
        if (n->alive && strcmp(n->id, c->set.node_id))
            count++;
    }
    return count;
}
