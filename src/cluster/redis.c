/*
 * Redis through hiredis's asynchronous API on the daemon's libuv loop. Owns
 * the two hiredis contexts, the set of channels to keep subscribed to, and
 * the reconnect and ping timers. hiredis frees a context itself after its
 * disconnect callback, so a context pointer is cleared before anything that
 * can free it.
 */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sodium.h>

#include <wssignd/errors.h>

#include "addr.h"
#include "log.h"
#include "timers.h"
#include "util.h"

/* uthash's internal tables follow the project's abort-on-OOM rule. */
#define uthash_malloc(sz) xmalloc(sz)
#define uthash_free(ptr, sz) free(ptr)
#include <uthash.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Reconnect backoff: doubles from the first step up to the cap, with jitter. */
#define RETRY_FIRST_MS 100
#define RETRY_CAP_MS 1000
/* A Redis that does not answer a ping within this long is treated as gone. */
#define PING_EVERY_MS 500
#define PING_TIMEOUT_MS 1000
/*
 * A connection not up within this long is dropped and tried again. hiredis
 * 0.14.1's libuv adapter ignores a poll error (libuv reports a refused
 * connect or a reset socket as status UV_EBADF and stops the handle), so such
 * a failure would otherwise never reach hiredis: the deadline and the pings
 * are what notice it.
 */
#define CONNECT_TIMEOUT_MS 500

/* Per channel in the subscription set. */
struct sub {
    UT_hash_handle hh;
    char *channel; /* owned; the hash key */
    redis_subscribed_cb cb;
    void *arg;
};

/* Per publish in flight. */
struct pub {
    redis_publish_cb cb;
    void *arg;
};

/* Per link. */
struct redis {
    uv_loop_t *loop;
    struct timers *timers;
    struct redis_target target;
    struct redis_events ev;
    void *arg;
    redisAsyncContext *cmd, *sub; /* NULL while not connected */
    bool cmd_ready, sub_ready;    /* connected and authenticated (and SELECTed) */
    bool up;
    struct sub *subs; /* the subscription set */
    struct timer retry, ping;
    unsigned attempt; /* failed attempts since the last time it was up */
    bool ping_out;
    uint64_t ping_sent_ms;
    char why[128]; /* why the last connection went down */
};

static void connect_both(struct redis *r);
static void drop(struct redis *r, const char *why);

int redis_parse_url(const char *url, struct redis_target *out, char *err, size_t errlen)
{
    char buf[1024], shown[UTIL_PRINTABLE_MAX + 8];
    const char *hostport;
    char *at, *slash, *cred;
    struct addr_listen l;
    size_t n;

    memset(out, 0, sizeof *out);
    if (!url || strlen(url) >= sizeof buf) {
        snprintf(err, errlen, "cluster.redis: missing or too long");
        return WSS_ERR_CONFIG;
    }
    if (!strncmp(url, "unix:", 5)) {
        const char *path = url + 5;

        if (path[0] != '/' || strlen(path) > ADDR_UNIX_PATH_MAX) {
            snprintf(err, errlen, "cluster.redis: a Unix socket is unix:/absolute/path");
            return WSS_ERR_CONFIG;
        }
        snprintf(out->host, sizeof out->host, "%s", path);
        out->is_unix = true;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen,
                 "cluster.redis: expected redis://[user:password@]host:port[/db] or "
                 "unix:/path, got '%s'",
                 util_printable(shown, sizeof shown, url));
        return WSS_ERR_CONFIG;
    }
    snprintf(buf, sizeof buf, "%s", url + 8);
    /* The password may hold any character but '@' ends it at the last one. */
    at = strrchr(buf, '@');
    hostport = at ? at + 1 : buf;
    if (at) {
        *at = '\0';
        cred = strchr(buf, ':');
        if (cred) {
            *cred++ = '\0';
            n = strlen(buf);
            if (n >= sizeof out->user || strlen(cred) >= sizeof out->password) {
                snprintf(err, errlen, "cluster.redis: user or password too long");
                return WSS_ERR_CONFIG;
            }
            memcpy(out->user, buf, n + 1);
            snprintf(out->password, sizeof out->password, "%s", cred);
        } else {
            if (strlen(buf) >= sizeof out->password) {
                snprintf(err, errlen, "cluster.redis: password too long");
                return WSS_ERR_CONFIG;
            }
            snprintf(out->password, sizeof out->password, "%s", buf);
        }
    }
    slash = strchr(hostport, '/');
    if (slash) {
        char *end;
        long db;

        *slash = '\0';
        db = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || db < 0 || db > 1000000) {
            snprintf(err, errlen, "cluster.redis: the database is a number from 0");
            return WSS_ERR_CONFIG;
        }
        out->db = (int)db;
    }
    if (addr_parse_listen(hostport, &l, "cluster.redis", err, errlen) != 0 ||
        addr_resolve(&l, "cluster.redis", err, errlen) != 0)
        goto fail;
    if (l.port == 0) {
        snprintf(err, errlen, "cluster.redis: the port must be from 1 to 65535");
        goto fail;
    }
    snprintf(out->host, sizeof out->host, "%s", l.host);
    out->port = l.port;
    sodium_memzero(buf, sizeof buf);
    return 0;
fail:
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(out, sizeof *out);
    return WSS_ERR_CONFIG;
}

/* ---- timers ---- */

static void on_retry(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    connect_both(container_of(t, struct redis, retry));
}

static void schedule_retry(struct redis *r)
{
    uint64_t base = RETRY_FIRST_MS << (r->attempt < 8 ? r->attempt : 8), delay;

    if (base > RETRY_CAP_MS)
        base = RETRY_CAP_MS;
    /* Full jitter over the upper half: nodes that lost Redis together do not return together. */
    delay = base / 2 + randombytes_uniform((uint32_t)(base / 2) + 1);
    r->attempt++;
    timers_arm(r->timers, &r->retry, util_now_ms() + delay, on_retry);
}

static void on_pong(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = priv;

    if (reply && ac == r->cmd)
        r->ping_out = false;
}

static void on_ping_timer(struct timers *ts, struct timer *t, uint64_t now_ms)
{
    struct redis *r = container_of(t, struct redis, ping);

    if (!r->up) {
        drop(r, r->why[0] ? r->why : "no connection within the deadline");
        return;
    }
    if (!r->cmd)
        return;
    if (r->ping_out && now_ms - r->ping_sent_ms >= PING_TIMEOUT_MS) {
        drop(r, "no answer to a ping");
        return;
    }
    if (!r->ping_out && redisAsyncCommand(r->cmd, on_pong, r, "PING") == REDIS_OK) {
        r->ping_out = true;
        r->ping_sent_ms = now_ms;
    }
    timers_arm(ts, t, now_ms + PING_EVERY_MS / 2, on_ping_timer);
}

/* ---- state ---- */

static void check_up(struct redis *r)
{
    if (r->up || !r->cmd_ready || !r->sub_ready)
        return;
    r->up = true;
    r->attempt = 0;
    r->ping_out = false;
    timers_arm(r->timers, &r->ping, util_now_ms() + PING_EVERY_MS, on_ping_timer);
    if (r->ev.up)
        r->ev.up(r->arg);
}

/* Frees a context we still hold; its callbacks see the pointer already gone. */
static void release(struct redis *r, redisAsyncContext **slot)
{
    redisAsyncContext *ac = *slot;

    *slot = NULL;
    if (ac)
        redisAsyncFree(ac);
}

/* One connection failed or was lost: both go, and the link reconnects. */
static void drop(struct redis *r, const char *why)
{
    bool was_up = r->up;
    char reason[sizeof r->why];

    snprintf(reason, sizeof reason, "%s", why); /* why may be r->why itself */
    memcpy(r->why, reason, sizeof r->why);
    r->up = r->cmd_ready = r->sub_ready = false;
    timers_disarm(r->timers, &r->ping);
    release(r, &r->cmd);
    release(r, &r->sub);
    if (!timer_armed(&r->retry))
        schedule_retry(r);
    if (was_up && r->ev.down)
        r->ev.down(r->arg, r->why);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;

    /* A context we released ourselves: already handled. */
    if (ac != r->cmd && ac != r->sub)
        return;
    if (ac == r->cmd)
        r->cmd = NULL;
    else
        r->sub = NULL;
    drop(r, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;

    if (status == REDIS_OK || (ac != r->cmd && ac != r->sub))
        return;
    /* hiredis frees a context whose connect failed, without a disconnect callback. */
    if (ac == r->cmd)
        r->cmd = NULL;
    else
        r->sub = NULL;
    drop(r, ac->errstr[0] ? ac->errstr : "cannot connect");
}

/* ---- subscriptions ---- */

static struct sub *find_sub(const struct redis *r, const char *channel, size_t len)
{
    struct sub *s = NULL;

    HASH_FIND(hh, r->subs, channel, len, s);
    return s;
}

/* Every reply on the subscription connection: confirmations and messages. */
static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = priv;
    redisReply *rep = reply;
    const redisReply *kind, *chan;
    struct sub *s;

    if (!rep || ac != r->sub || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
        return;
    kind = rep->element[0];
    chan = rep->element[1];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING)
        return;
    if (!strcasecmp(kind->str, "message")) {
        if (rep->element[2]->type == REDIS_REPLY_STRING && r->ev.message)
            r->ev.message(r->arg, chan->str, chan->len, rep->element[2]->str, rep->element[2]->len);
        return;
    }
    if (!strcasecmp(kind->str, "subscribe")) {
        s = find_sub(r, chan->str, chan->len);
        if (s && s->cb)
            s->cb(s->arg, s->channel);
    }
}

static void send_subscribe(struct redis *r, const char *channel)
{
    if (r->sub && r->sub_ready)
        redisAsyncCommand(r->sub, on_sub_reply, r, "SUBSCRIBE %b", channel, strlen(channel));
}

int redis_subscribe(struct redis *r, const char *channel, redis_subscribed_cb on_subscribed,
                    void *arg)
{
    struct sub *s = find_sub(r, channel, strlen(channel));

    if (s)
        return 0;
    s = xcalloc(1, sizeof *s);
    s->channel = xstrdup(channel);
    s->cb = on_subscribed;
    s->arg = arg;
    HASH_ADD_KEYPTR(hh, r->subs, s->channel, strlen(s->channel), s);
    send_subscribe(r, channel);
    return 0;
}

int redis_unsubscribe(struct redis *r, const char *channel)
{
    struct sub *s = find_sub(r, channel, strlen(channel));

    if (!s)
        return WSS_ERR_NOT_FOUND;
    HASH_DEL(r->subs, s);
    if (r->sub && r->sub_ready)
        redisAsyncCommand(r->sub, on_sub_reply, r, "UNSUBSCRIBE %b", channel, strlen(channel));
    free(s->channel);
    free(s);
    return 0;
}

size_t redis_subscriptions(const struct redis *r)
{
    return HASH_COUNT(r->subs);
}

/* ---- connecting ---- */

/* A reply that must be +OK (AUTH, SELECT); anything else drops the link. */
static bool reply_ok(struct redis *r, redisAsyncContext *ac, void *reply, const char *what)
{
    redisReply *rep = reply;
    char why[160];

    if (ac != r->cmd && ac != r->sub)
        return false;
    if (rep && rep->type != REDIS_REPLY_ERROR)
        return true;
    /* The reply text names the failure (WRONGPASS ...); it never holds the password. */
    snprintf(why, sizeof why, "%s failed: %.100s", what, rep ? rep->str : "no reply");
    log_warn("event=cluster_redis_refused what=%s", what);
    drop(r, why);
    return false;
}

static void on_cmd_select(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = priv;

    if (!reply_ok(r, ac, reply, "SELECT"))
        return;
    r->cmd_ready = true;
    check_up(r);
}

static void on_cmd_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = priv;

    if (!reply_ok(r, ac, reply, "AUTH"))
        return;
    if (r->target.db) {
        redisAsyncCommand(r->cmd, on_cmd_select, r, "SELECT %d", r->target.db);
        return;
    }
    r->cmd_ready = true;
    check_up(r);
}

static void on_sub_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = priv;
    struct sub *s, *tmp;

    if (!reply_ok(r, ac, reply, "AUTH"))
        return;
    r->sub_ready = true;
    HASH_ITER (hh, r->subs, s, tmp) {
        send_subscribe(r, s->channel);
    }
    check_up(r);
}

/* Sends AUTH (or a PING standing in for it) so that one reply means "ready". */
static void authenticate(struct redis *r, redisAsyncContext *ac, redisCallbackFn *done)
{
    const struct redis_target *t = &r->target;

    if (t->user[0])
        redisAsyncCommand(ac, done, r, "AUTH %b %b", t->user, strlen(t->user), t->password,
                          strlen(t->password));
    else if (t->password[0])
        redisAsyncCommand(ac, done, r, "AUTH %b", t->password, strlen(t->password));
    else
        redisAsyncCommand(ac, done, r, "PING");
}

/*
 * hiredis calls its event hooks at every command (add write) and after every
 * read and write (add read), and the libuv adapter restarts its poll at each
 * call: under libuv an epoll_ctl DEL at once and an ADD at the next poll,
 * whether the events waited for changed or not (about four per remote
 * signature). The adapter stays; these let a call through only when it
 * changes them: change_events calls hook, one of the adapter's, unless the
 * poll already waits for flag (want) or already does not (!want).
 */
static void change_events(void *privdata, int flag, bool want, void (*hook)(void *))
{
    if (!(((redisLibuvEvents *)privdata)->events & flag) == want)
        hook(privdata);
}

static void add_read(void *privdata)
{
    change_events(privdata, UV_READABLE, true, redisLibuvAddRead);
}

static void del_read(void *privdata)
{
    change_events(privdata, UV_READABLE, false, redisLibuvDelRead);
}

static void add_write(void *privdata)
{
    change_events(privdata, UV_WRITABLE, true, redisLibuvAddWrite);
}

static void del_write(void *privdata)
{
    change_events(privdata, UV_WRITABLE, false, redisLibuvDelWrite);
}

static redisAsyncContext *open_one(struct redis *r)
{
    redisAsyncContext *ac = r->target.is_unix ? redisAsyncConnectUnix(r->target.host)
                                              : redisAsyncConnect(r->target.host, r->target.port);

    if (!ac)
        return NULL;
    if (ac->err) {
        snprintf(r->why, sizeof r->why, "%s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) {
        snprintf(r->why, sizeof r->why, "cannot attach to the event loop");
        redisAsyncFree(ac);
        return NULL;
    }
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void connect_both(struct redis *r)
{
    r->cmd = open_one(r);
    r->sub = r->cmd ? open_one(r) : NULL;
    if (!r->cmd || !r->sub) {
        drop(r, r->why[0] ? r->why : "cannot connect");
        return;
    }
    /* Commands queue until the connect completes: the first reply says all is well. */
    authenticate(r, r->cmd, on_cmd_auth);
    authenticate(r, r->sub, on_sub_auth);
    snprintf(r->why, sizeof r->why, "no connection within %d ms", CONNECT_TIMEOUT_MS);
    timers_arm(r->timers, &r->ping, util_now_ms() + CONNECT_TIMEOUT_MS, on_ping_timer);
}

struct redis *redis_new(void *uv_loop, struct timers *timers, const struct redis_target *target,
                        const struct redis_events *ev, void *arg)
{
    struct redis *r = xcalloc(1, sizeof *r);

    r->loop = uv_loop;
    r->timers = timers;
    r->target = *target;
    r->ev = *ev;
    r->arg = arg;
    connect_both(r);
    return r;
}

void redis_retarget(struct redis *r, const struct redis_target *target)
{
    sodium_memzero(&r->target, sizeof r->target);
    r->target = *target;
    r->attempt = 0;
    drop(r, "new address");
    /* Reconnect now rather than after a backoff step. */
    timers_disarm(r->timers, &r->retry);
    connect_both(r);
}

bool redis_is_up(const struct redis *r)
{
    return r->up;
}

static void on_published(redisAsyncContext *ac, void *reply, void *priv)
{
    struct pub *p = priv;
    redisReply *rep = reply;

    if (p->cb)
        p->cb(p->arg, rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1);
    free(p);
}

/* Writes a RESP length line: kind (* or $), n, CRLF. */
static char *put_len(char *out, char kind, size_t n)
{
    char digits[24];
    int k = 0;

    *out++ = kind;
    do
        digits[k++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    while (k)
        *out++ = digits[--k];
    *out++ = '\r';
    *out++ = '\n';
    return out;
}

/* Appends a RESP bulk string of n bytes. */
static char *put_bulk(char *out, const void *s, size_t n)
{
    out = put_len(out, '$', n);
    memcpy(out, s, n);
    out += n;
    *out++ = '\r';
    *out++ = '\n';
    return out;
}

int redis_publish(struct redis *r, const char *channel, const void *payload, size_t len,
                  redis_publish_cb cb, void *arg)
{
    size_t chlen = strlen(channel);
    char *cmd, *end;
    struct pub *p;
    int rc;

    if (!r->up || !r->cmd)
        return WSS_ERR_IO;
    /* The command in RESP, written here: the same bytes as hiredis's
     * printf-like formatting of "PUBLISH %b %b", at a small part of its cost.
     * Three length lines of at most 23 bytes ("*3", the channel's, the
     * payload's), "$7\r\nPUBLISH\r\n", and a CRLF after each string. */
    cmd = xmalloc(3 * 23 + 13 + 2 * 2 + chlen + len);
    end = put_bulk(put_bulk(put_bulk(put_len(cmd, '*', 3), "PUBLISH", 7), channel, chlen), payload,
                   len);
    p = xmalloc(sizeof *p);
    p->cb = cb;
    p->arg = arg;
    rc = redisAsyncFormattedCommand(r->cmd, on_published, p, cmd, (size_t)(end - cmd));
    free(cmd);
    if (rc != REDIS_OK) {
        free(p);
        return WSS_ERR_IO;
    }
    return 0;
}

void redis_free(struct redis *r)
{
    struct sub *s, *tmp;

    if (!r)
        return;
    r->up = false; /* no down event while closing on purpose */
    timers_disarm(r->timers, &r->ping);
    timers_disarm(r->timers, &r->retry);
    release(r, &r->cmd);
    release(r, &r->sub);
    HASH_ITER (hh, r->subs, s, tmp) {
        HASH_DEL(r->subs, s);
        free(s->channel);
        free(s);
    }
    sodium_memzero(&r->target, sizeof r->target);
    free(r);
}
