/*
 * An example in-process controller, written against include/wssignd/ only
 * (a test compiles it with nothing else on the include path). While the key
 * named in its config is connected, it asks that key every interval_ms to
 * sign "<message> #<n>" and logs each outcome. It learns that the key came
 * to this daemon from key events; in a cluster the key may be held on
 * another node, which raises no event here, so while the key is not held
 * here it asks where it is (an asynchronous lookup) once an interval. GET /example answers with the
 * key's presence (an asynchronous lookup) and its own counts, on a
 * loopback-only control listener. It shows the
 * whole contract in one file: typed options, a timer, key events, one sign
 * request at a time with exactly one callback each, and an HTTP route
 * answered later. docs/CONTROLLERS.md walks through it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/controller.h>
#include <wssignd/util.h>

#define INTERVAL_DEFAULT_MS 1000
#define MESSAGE_MAX 400

/* Per controller instance: made by init, freed by cleanup. */
struct example {
    struct wss_service *svc;
    struct wss_timer *timer;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char key_b64[WSS_PUBLIC_KEY_BASE64_BYTES];
    char *message;
    uint32_t interval_ms;
    unsigned long seq; /* requests asked so far */
    unsigned long signed_ok;
    int last_status; /* outcome of the last request; 1 before the first */
    bool connected;  /* the key is held on this daemon (key events) */
    bool looking;    /* a presence lookup is out: its answer re-arms the timer */
    bool in_flight;  /* a request is pending: on_result re-arms the timer */
};

/* Exactly once per accepted request, on the loop thread, never inside wss_send_to_sign. */
static void on_result(const struct wss_sign_result *res, void *user)
{
    struct example *ex = user;

    ex->in_flight = false;
    ex->last_status = res->status;
    if (res->status == WSS_OK)
        ex->signed_ok++;
    /* The signature (res->signature) is borrowed: a real controller would copy it here. */
    wss_log(res->status == WSS_OK ? WSS_LOG_NOTICE : WSS_LOG_INFO,
            "event=example_outcome request_id=%s outcome=%s seq=%lu", res->request_id,
            wss_err_code(res->status), ex->seq);
    wss_timer_start(ex->timer, ex->interval_ms);
}

/* Asks the key to sign the next message. */
static void ask(struct example *ex)
{
    struct wss_sign_opts opts = {.requester = "example"};
    char msg[MESSAGE_MAX + 32];
    int n, rc;

    n = snprintf(msg, sizeof msg, "%s #%lu", ex->message, ++ex->seq);
    /* The message is copied: msg may go when this returns. */
    rc = wss_send_to_sign(ex->svc, ex->key, (const uint8_t *)msg, (size_t)n, &opts, on_result, ex,
                          NULL);
    if (rc != 0) {
        /* Refused at once (overloaded, say): no callback will come. Try again later. */
        ex->last_status = rc;
        wss_log(WSS_LOG_INFO, "event=example_outcome outcome=%s seq=%lu", wss_err_code(rc),
                ex->seq);
        wss_timer_start(ex->timer, ex->interval_ms);
        return;
    }
    ex->in_flight = true;
}

/* Where the key is, when it is not held here: on another node of a cluster, ask it. */
static void on_where(int status, const struct wss_presence *p, void *user)
{
    struct example *ex = user;

    ex->looking = false;
    if (status == WSS_OK && p->connected && !ex->in_flight)
        ask(ex);
    else if (!ex->in_flight)
        wss_timer_start(ex->timer, ex->interval_ms);
}

static void tick(void *user)
{
    struct example *ex = user;

    if (ex->in_flight || ex->looking)
        return;
    if (ex->connected) {
        ask(ex);
        return;
    }
    ex->looking = wss_lookup_key_async(ex->svc, ex->key, on_where, ex) == 0;
}

/* The key came to this daemon (a signer proved it) or went: ask now, or look for it. */
static void on_key_event(const struct wss_key_event *ev, void *user)
{
    struct example *ex = user;

    if (memcmp(ev->public_key, ex->key, sizeof ex->key))
        return;
    ex->connected = ev->type == WSS_KEY_CONNECTED;
    if (ex->connected && !ex->in_flight && !ex->looking)
        wss_timer_start(ex->timer, ex->interval_ms);
}

/* Per GET /example: the request, answered once the lookup is back. */
struct status_query {
    struct example *ex;
    struct wss_http_request *req;
};

static void on_presence(int status, const struct wss_presence *p, void *user)
{
    struct status_query *q = user;
    struct example *ex = q->ex;
    char body[256];
    int n;

    /* q->req stays valid until answered, even if its client has gone meanwhile
     * (the answer is then discarded). */
    n = snprintf(body, sizeof body,
                 "{\"public_key\":\"%s\",\"connected\":%s,\"asked\":%lu,\"signed\":%lu,"
                 "\"last_outcome\":\"%s\"}",
                 ex->key_b64, status == WSS_OK && p->connected ? "true" : "false", ex->seq,
                 ex->signed_ok, ex->last_status > 0 ? "none" : wss_err_code(ex->last_status));
    wss_http_respond(q->req, 200, "application/json", body, (size_t)n);
    free(q);
}

/* Every request under /example: state is what example_init made. */
static void handle_http(struct wss_http_request *req, void *state)
{
    static const char not_found[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such "
                                    "endpoint\"}}";
    struct status_query *q;

    /* It asks for no token: it exists only where no token is needed, on a
     * loopback-only control listener. */
    if (strcmp(wss_http_path(req), "/example") || strcmp(wss_http_method(req), "GET") ||
        !wss_control_is_local(((struct example *)state)->svc)) {
        wss_http_respond(req, 404, "application/json", not_found, sizeof not_found - 1);
        return;
    }
    q = wss_malloc(sizeof *q); /* never NULL: an allocation failure aborts */
    q->ex = state;
    q->req = req;
    if (wss_lookup_key_async(q->ex->svc, q->ex->key, on_presence, q) != 0) {
        /* Only while the daemon stops: answer now. */
        free(q);
        wss_http_respond(req, 503, "application/json", NULL, 0);
    }
}

static const struct wss_opt_spec example_opts[] = {
    {.key = "public_key", .type = WSS_OPT_STRING, .required = true},
    {.key = "interval_ms",
     .type = WSS_OPT_INTEGER,
     .min = 10,
     .max = 86400000,
     .def.i = INTERVAL_DEFAULT_MS},
    {.key = "message", .type = WSS_OPT_STRING, .max = MESSAGE_MAX, .def.s = "wssignd example"},
    {0},
};

static int example_init(struct wss_service *svc, const struct wss_opts *opts, void **state,
                        char *err, size_t errlen)
{
    const char *key_b64;
    struct example *ex;
    int rc;

    /* Types, ranges and unknown keys first: each error names the key. */
    if ((rc = wss_opts_check(opts, example_opts, err, errlen)) != 0)
        return rc;
    key_b64 = wss_opts_string(opts, example_opts, "public_key");
    ex = wss_calloc(1, sizeof *ex);
    if (wss_key_decode(ex->key, key_b64, strlen(key_b64)) != 0) {
        snprintf(err, errlen, "key 'controllers.example.public_key' must be base64 of 32 bytes");
        free(ex);
        return WSS_ERR_CONFIG;
    }
    wss_base64_encode(ex->key_b64, sizeof ex->key_b64, ex->key, sizeof ex->key);
    ex->svc = svc;
    ex->interval_ms = (uint32_t)wss_opts_int(opts, example_opts, "interval_ms");
    /* Option strings are borrowed until init returns: keep a copy. */
    ex->message = wss_strdup(wss_opts_string(opts, example_opts, "message"));
    ex->last_status = 1;
    ex->timer = wss_timer_new(svc, tick, ex);
    /* Subscribed before any signer can connect: no event is missed. */
    (void)wss_key_events_subscribe(svc, on_key_event, ex);
    /* Looks for the key now and then until it comes (it may be held on another node). */
    wss_timer_start(ex->timer, ex->interval_ms);
    *state = ex;
    return 0;
}

static void example_cleanup(void *state)
{
    struct example *ex = state;

    if (!ex)
        return;
    (void)wss_key_events_unsubscribe(ex->svc, on_key_event, ex);
    wss_timer_free(ex->timer);
    free(ex->message);
    free(ex);
}

static const struct wss_http_route example_routes[] = {
    {"/example", handle_http},
    {0},
};

const struct wss_controller example_controller = {
    .api_version = WSS_CONTROLLER_API_VERSION,
    .name = "example",
    .init = example_init,
    .cleanup = example_cleanup,
    .http_routes = example_routes,
    .opts_spec = example_opts,
};
