/*
 * An example in-process controller: every interval_ms it asks the key named
 * in its config to sign "<message> #<n>" through wss_send_to_sign() and logs
 * the outcome. It shows the whole controller contract in a few lines: options,
 * a timer, one request at a time, exactly one callback per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/controller.h>
#include <wssignd/util.h>

#define INTERVAL_DEFAULT_MS 1000

/* Per controller instance. */
struct example {
    struct wss_service *svc;
    struct wss_timer *timer;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    char *message;
    uint32_t interval_ms;
    unsigned long seq;
    bool in_flight;
};

static void on_result(const struct wss_sign_result *res, void *user)
{
    struct example *ex = user;

    ex->in_flight = false;
    wss_log(res->status == WSS_OK ? WSS_LOG_NOTICE : WSS_LOG_INFO,
            "event=example_outcome request_id=%s outcome=%s seq=%lu", res->request_id,
            wss_err_code(res->status), ex->seq);
    wss_timer_start(ex->timer, ex->interval_ms);
}

static void tick(void *user)
{
    struct example *ex = user;
    struct wss_sign_opts opts = {.requester = "example"};
    char msg[512];
    int n, rc;

    if (!wss_lookup_key(ex->svc, ex->key, NULL)) {
        wss_timer_start(ex->timer, ex->interval_ms);
        return;
    }
    n = snprintf(msg, sizeof msg, "%s #%lu", ex->message, ++ex->seq);
    rc = wss_send_to_sign(ex->svc, ex->key, (const uint8_t *)msg, (size_t)n, &opts, on_result, ex,
                          NULL);
    if (rc != 0) {
        wss_log(WSS_LOG_INFO, "event=example_outcome outcome=%s seq=%lu", wss_err_code(rc),
                ex->seq);
        wss_timer_start(ex->timer, ex->interval_ms);
        return;
    }
    ex->in_flight = true; /* on_result re-arms the timer */
}

static const struct wss_opt_spec example_opts[] = {
    {.key = "public_key", .type = WSS_OPT_STRING, .required = true},
    {.key = "interval_ms", .type = WSS_OPT_INTEGER, .min = 10, .max = 86400000,
     .def.i = INTERVAL_DEFAULT_MS},
    {.key = "message", .type = WSS_OPT_STRING, .max = 400, .def.s = "wssignd example"},
    {0},
};

static int example_init(struct wss_service *svc, const struct wss_opts *opts, void **state,
                        char *err, size_t errlen)
{
    const char *key_b64 = wss_opts_string(opts, example_opts, "public_key");
    const char *message = wss_opts_string(opts, example_opts, "message");
    long long interval = wss_opts_int(opts, example_opts, "interval_ms");
    struct example *ex;
    int rc;

    if ((rc = wss_opts_check(opts, example_opts, err, errlen)) != 0)
        return rc;
    ex = wss_calloc(1, sizeof *ex);
    if (wss_key_decode(ex->key, key_b64, strlen(key_b64)) != 0) {
        snprintf(err, errlen, "key 'controllers.example.public_key' must be base64 of 32 bytes");
        free(ex);
        return WSS_ERR_CONFIG;
    }
    ex->svc = svc;
    ex->interval_ms = (uint32_t)interval;
    ex->message = wss_strdup(message);
    ex->timer = wss_timer_new(svc, tick, ex);
    wss_timer_start(ex->timer, ex->interval_ms);
    *state = ex;
    return 0;
}

static void example_cleanup(void *state)
{
    struct example *ex = state;

    if (!ex)
        return;
    wss_timer_free(ex->timer);
    free(ex->message);
    free(ex);
}

const struct wss_controller example_controller = {
    .api_version = WSS_CONTROLLER_API_VERSION,
    .name = "example",
    .init = example_init,
    .cleanup = example_cleanup,
};
