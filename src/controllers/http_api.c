/*
 * The HTTP control API controller: POST /v1/sign, GET /v1/keys,
 * GET and DELETE /v1/keys/{key}, GET /metrics, GET /healthz, JSON in and
 * out, optional bearer tokens with scopes, key limits and rates
 * (http_api_auth.c). It asks for signatures only through
 * <wssignd/service.h> and serves HTTP only through <wssignd/http.h>: a sign
 * request is answered when its sign callback runs, so the loop never
 * waits, and a requester that leaves first has its request cancelled.
 * Bodies are parsed by http_api_parse.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <wssignd/controller.h>
#include <wssignd/util.h>

#include "http_api_auth.h"
#include "http_api_parse.h"

#define BODY_MAX_DEFAULT 65536
/* Failed authentications a client may make in a row; its allowance refills by one a second. */
#define AUTH_BURST_DEFAULT 20
#define KEYS_PATH "/v1/keys"
#define KEY_PATH "/v1/keys/"
#define REQUESTER_MAX 96
/* Keys per page of GET /v1/keys when the request names no limit. */
#define LIST_DEFAULT 100
/* A query argument's text: "after=" and a cursor, with room to spare. */
#define QUERY_ARG_MAX 128
/* A signature's answer up to this size is built on the stack (a message of up to
 * about 500 bytes); a larger one is allocated. */
#define SIGNED_ANSWER_STACK_BYTES 1024
/* Ended sign_wait records kept for the next sign requests. */
#define SPARE_WAITS_MAX 64

/* Per configuration: what the controller's section and its token file say;
 * made by init and by each reload. */
struct api_settings {
    size_t body_max;
    unsigned auth_burst;
    struct http_api_tokens tokens; /* handed to the checker when installed */
};

/* Per sign request in flight: from wss_send_to_sign to its callback. */
struct sign_wait {
    struct api *api;
    struct wss_http_request *r;
    char request_id[WSS_REQUEST_ID_BYTES];
    struct sign_wait *next_spare; /* in api.spare_waits, while unused */
};

/* Per controller instance: made by init, freed by cleanup. */
struct api {
    struct wss_service *svc;
    size_t body_max;
    struct http_api_auth *auth;
    struct sign_wait *spare_waits; /* ended sign_waits kept for reuse */
    size_t n_spare_waits;          /* at most SPARE_WAITS_MAX */
};

/* Per presence lookup or disconnection in flight. */
struct key_wait {
    struct wss_http_request *r;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
};

/* Per request past the token check: who asks, for the audit line and the metrics. */
struct caller {
    const struct http_api_token *token; /* NULL without a token file; borrowed for the call */
    char requester[REQUESTER_MAX];      /* "http_api billing 127.0.0.1" */
};

static unsigned status_for(int err)
{
    switch (err) {
    case WSS_OK: return 200;
    case WSS_ERR_INVAL: return 400;
    case WSS_ERR_NOT_CONNECTED: return 404;
    case WSS_ERR_NOT_FOUND: return 404;
    case WSS_ERR_REJECTED: return 422;
    case WSS_ERR_BAD_SIG: return 502;
    case WSS_ERR_CONN_CLOSED: return 502;
    case WSS_ERR_SHUTTING_DOWN: return 503;
    case WSS_ERR_OVERLOADED: return 503;
    case WSS_ERR_CLUSTER_UNAVAILABLE: return 503;
    case WSS_ERR_TIMEOUT: return 504;
    case WSS_ERR_UNAUTHORIZED: return 401;
    case WSS_ERR_TOO_MANY_REQUESTS: return 429;
    case WSS_ERR_UNSUPPORTED_MEDIA_TYPE: return 415;
    case WSS_ERR_PAYLOAD_TOO_LARGE: return 413;
    case WSS_ERR_FORBIDDEN: return 403;
    case WSS_ERR_FORBIDDEN_KEY: return 403;
    default: return 500;
    }
}

/* Answers r with body (a jansson object, taken) as compact JSON. */
static void respond_json(struct wss_http_request *r, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (!text) {
        /* jansson reports out-of-memory as NULL: an empty 500 rather than nothing. */
        wss_http_respond(r, 500, "application/json", NULL, 0);
        return;
    }
    wss_http_respond(r, status, "application/json", text, strlen(text));
    free(text);
}

static void respond_error(struct wss_http_request *r, unsigned status, const char *code,
                          const char *message, const char *request_id)
{
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);

    if (request_id && request_id[0])
        json_object_set_new(err, "request_id", json_string(request_id));
    respond_json(r, status, json_pack("{s:o}", "error", err));
}

static void respond_wss_error(struct wss_http_request *r, int err, const char *detail,
                              const char *request_id)
{
    char msg[320];

    if (detail)
        snprintf(msg, sizeof msg, "%s: %s", wss_strerror(err), detail);
    else
        snprintf(msg, sizeof msg, "%s", wss_strerror(err));
    respond_error(r, status_for(err), wss_err_code(err), msg, request_id);
}

static json_t *b64_string(const uint8_t *bin, size_t len)
{
    char *text = wss_malloc(WSS_BASE64_BYTES(len));
    json_t *s = json_string(wss_base64_encode(text, WSS_BASE64_BYTES(len), bin, len));

    free(text);
    return s;
}

/* Who asks: the token's name (when a token file is set) and the client's address. */
static void caller_of(struct wss_http_request *r, const struct http_api_token *token,
                      struct caller *who)
{
    who->token = token;
    if (token)
        snprintf(who->requester, sizeof who->requester, "http_api %s %s", token->name,
                 wss_http_remote(r));
    else
        snprintf(who->requester, sizeof who->requester, "http_api %s", wss_http_remote(r));
}

static struct wss_sign_opts sign_opts_of(const struct caller *who)
{
    return (struct wss_sign_opts){.requester = who->requester,
                                  .requester_name = who->token ? who->token->name : NULL};
}

/*
 * Refuses the request with err's status and code. A refused POST /v1/sign
 * (is_sign) is audited and counted like a sign request the service refuses
 * (key and msg, may be NULL, as far as the body was read); other refusals
 * of a client that got past the token check are logged (rate-limited).
 */
static void refuse_as(struct api *api, struct wss_http_request *r, bool is_sign,
                      const struct caller *who, int err, const char *message, const uint8_t *key,
                      const uint8_t *msg, size_t msglen)
{
    struct wss_sign_opts opts = sign_opts_of(who);

    if (is_sign)
        wss_audit_refused_opts(api->svc, key, msg, msglen, err, &opts);
    else if (err != WSS_ERR_UNAUTHORIZED)
        http_api_auth_log_refused(api->auth, r, wss_err_code(err), who->requester);
    respond_error(r, status_for(err), wss_err_code(err), message, NULL);
}

static void refuse(struct api *api, struct wss_http_request *r, bool is_sign, int err,
                   const char *message)
{
    struct caller who;

    caller_of(r, NULL, &who);
    refuse_as(api, r, is_sign, &who, err, message, NULL, NULL, 0);
}

/* Refuses a token without scope (any of the bits of want) for the endpoint. */
static bool lacks_scope(struct api *api, struct wss_http_request *r, bool is_sign,
                        const struct caller *who, unsigned want, const char *what)
{
    char msg[160];

    if (!who->token || (who->token->scopes & want))
        return false;
    snprintf(msg, sizeof msg, "this token lacks the scope %s", what);
    refuse_as(api, r, is_sign, who, WSS_ERR_FORBIDDEN, msg, NULL, NULL, 0);
    return true;
}

/* Copies n bytes of s to p; returns the end. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Writes "name":"<base64 of bin>" at p (room for it and a NUL is the caller's); returns the end. */
static char *put_b64_field(char *p, const char *name, const uint8_t *bin, size_t len)
{
    p = put(p, "\"", 1);
    p = put(p, name, strlen(name));
    p = put(p, "\":\"", 3);
    wss_base64_encode(p, WSS_BASE64_BYTES(len), bin, len);
    p += WSS_BASE64_BYTES(len) - 1;
    return put(p, "\"", 1);
}

/*
 * The 200 answer to a sign request, sent for every signature: written
 * straight into one buffer instead of through jansson. Its fields need no
 * escaping (base64, and a request id the daemon made of hex digits and
 * dashes, checked here). Same bytes as jansson's compact output. Returns
 * -1, having done nothing, if the id is not of that form.
 */
static int respond_signed(struct wss_http_request *r, const struct wss_sign_result *res)
{
    static const char head[] = "{\"request_id\":\"";
    size_t idlen = strlen(res->request_id), cap;
    char small[SIGNED_ANSWER_STACK_BYTES], *buf, *p;

    if (strspn(res->request_id, "0123456789abcdef-") != idlen)
        return -1;
    /* Per base64 field at most 16 bytes besides the base64: the name (public_key is the
     * longest), four quotes, a colon and the comma or closing brace after it. */
    cap = sizeof head + idlen + 2 + 3 * 16 + WSS_BASE64_BYTES(WSS_PUBLIC_KEY_BYTES) +
          WSS_BASE64_BYTES(res->message_len) + WSS_BASE64_BYTES(WSS_SIGNATURE_BYTES);
    buf = cap <= sizeof small ? small : wss_malloc(cap);
    p = put(buf, head, sizeof head - 1);
    p = put(p, res->request_id, idlen);
    p = put(p, "\",", 2);
    p = put_b64_field(p, "public_key", res->public_key, WSS_PUBLIC_KEY_BYTES);
    p = put(p, ",", 1);
    p = put_b64_field(p, "message", res->message, res->message_len);
    p = put(p, ",", 1);
    p = put_b64_field(p, "signature", res->signature, WSS_SIGNATURE_BYTES);
    p = put(p, "}", 1);
    wss_http_respond(r, 200, "application/json", buf, (size_t)(p - buf));
    if (buf != small)
        free(buf);
    return 0;
}

/* A zeroed sign_wait for api: a spare one if any. */
static struct sign_wait *wait_new(struct api *api)
{
    struct sign_wait *w = api->spare_waits;

    if (!w)
        return wss_calloc(1, sizeof *w);
    api->spare_waits = w->next_spare;
    api->n_spare_waits--;
    memset(w, 0, sizeof *w);
    return w;
}

/* Keeps w for reuse, up to the bound, or frees it. */
static void wait_free(struct api *api, struct sign_wait *w)
{
    if (api->n_spare_waits >= SPARE_WAITS_MAX) {
        free(w);
        return;
    }
    w->next_spare = api->spare_waits;
    api->spare_waits = w;
    api->n_spare_waits++;
}

/* Runs once per accepted sign request, never inside wss_send_to_sign. */
static void on_sign_result(const struct wss_sign_result *res, void *user)
{
    struct sign_wait *w = user;
    struct wss_http_request *r = w->r;

    wait_free(w->api, w);
    if (wss_http_gone(r)) {
        /* The requester left (on_requester_gone cancelled it): nothing to say. */
        wss_http_respond(r, 499, NULL, NULL, 0);
        return;
    }
    if (res->status != WSS_OK) {
        respond_wss_error(r, res->status, res->detail, res->request_id);
        return;
    }
    if (respond_signed(r, res) == 0)
        return;
    respond_json(r, 200,
                 json_pack("{s:s, s:o, s:o, s:o}", "request_id", res->request_id, "public_key",
                           b64_string(res->public_key, WSS_PUBLIC_KEY_BYTES), "message",
                           b64_string(res->message, res->message_len), "signature",
                           b64_string(res->signature, WSS_SIGNATURE_BYTES)));
}

/* The requester left while its request was in flight: withdraw it. Its
 * callback runs at once (cancelled) and ends the HTTP request. */
static void on_requester_gone(struct wss_http_request *r, void *user)
{
    struct sign_wait *w = user;

    wss_cancel(w->api->svc, w->request_id);
}

/* The body of POST /v1/sign is in: parse it and ask for the signature. */
static void start_sign(struct api *api, struct wss_http_request *r)
{
    struct http_api_sign_req req;
    size_t body_len = 0;
    const char *body = wss_http_body(r, &body_len), *why = NULL;
    const struct http_api_token *token;
    struct wss_sign_opts opts;
    struct caller who;
    struct sign_wait *w;
    int rc;

    /* The token is read again: a reload may have revoked it while the body came in. */
    rc = http_api_auth_identify(api->auth, r, &token);
    caller_of(r, token, &who);
    if (rc != 0) {
        refuse_as(api, r, true, &who, rc, "a valid bearer token is required", NULL, NULL, 0);
        return;
    }
    rc = http_api_parse_sign(body, body_len, wss_max_message_bytes(api->svc), &req, &why);
    if (rc != 0) {
        refuse_as(api, r, true, &who,
                  rc == HTTP_API_TOO_LARGE ? WSS_ERR_PAYLOAD_TOO_LARGE : WSS_ERR_INVAL, why, NULL,
                  NULL, 0);
        return;
    }
    /* Never not_connected for a key the token may not use: presence stays hidden. */
    if (!http_api_token_allows_key(token, req.key)) {
        refuse_as(api, r, true, &who, WSS_ERR_FORBIDDEN_KEY,
                  "this token may not ask this key (keys= in the token file)", req.key, req.msg,
                  req.msglen);
        free(req.msg);
        return;
    }
    opts = sign_opts_of(&who);
    opts.timeout_ms = req.timeout_ms;
    opts.wait_ms = req.wait_ms;
    opts.label = req.has_label ? req.label : NULL;
    w = wait_new(api);
    w->api = api;
    w->r = r;
    /* A refusal here is audited by the service itself. */
    rc = wss_send_to_sign(api->svc, req.key, req.msg, req.msglen, &opts, on_sign_result, w,
                          w->request_id);
    free(req.msg);
    if (rc != 0) {
        wait_free(api, w);
        respond_wss_error(r, rc,
                          rc == WSS_ERR_INVAL && req.wait_ms
                              ? "wait_ms must not exceed the request's timeout"
                              : NULL,
                          NULL);
        return;
    }
    wss_http_on_abort(r, on_requester_gone, w);
}

static void on_sign_body(struct wss_http_request *r, int status, void *state)
{
    struct api *api = state;

    switch (status) {
    case 0: start_sign(api, r); break;
    case WSS_ERR_PAYLOAD_TOO_LARGE:
        refuse(api, r, true, WSS_ERR_PAYLOAD_TOO_LARGE, "request body too large");
        break;
    case WSS_ERR_TIMEOUT:
        respond_error(r, 408, "request_timeout", "the request body did not arrive in time", NULL);
        break;
    default:
        /* The requester left before its body arrived: nothing was asked. */
        wss_http_respond(r, 499, NULL, NULL, 0);
        break;
    }
}

/* A body is JSON when it says so, or says nothing (curl -d says form-urlencoded). */
static bool json_content_type(struct wss_http_request *r)
{
    char ctype[128];
    int n = wss_http_header(r, "content-type", ctype, sizeof ctype);

    if (n == WSS_ERR_NOT_FOUND)
        return true;
    if (n < 0)
        return false;
    return !strncasecmp(ctype, "application/json", 16) &&
           (ctype[16] == '\0' || ctype[16] == ';' || ctype[16] == ' ');
}

static void handle_sign(struct api *api, struct wss_http_request *r, const struct caller *who)
{
    if (strcmp(wss_http_method(r), "POST")) {
        respond_error(r, 405, "method_not_allowed", "use POST", NULL);
        return;
    }
    if (lacks_scope(api, r, true, who, HTTP_API_SCOPE_SIGN, "sign"))
        return;
    if (!json_content_type(r)) {
        refuse_as(api, r, true, who, WSS_ERR_UNSUPPORTED_MEDIA_TYPE,
                  "send the body as application/json", NULL, NULL, 0);
        return;
    }
    switch (wss_http_read_body(r, api->body_max, on_sign_body)) {
    case 0: return; /* on_sign_body goes on */
    case WSS_ERR_PAYLOAD_TOO_LARGE:
        refuse_as(api, r, true, who, WSS_ERR_PAYLOAD_TOO_LARGE, "request body too large", NULL,
                  NULL, 0);
        return;
    default:
        start_sign(api, r); /* no body to read: an empty one, refused as such */
        return;
    }
}

static void on_presence(int status, const struct wss_presence *p, void *user)
{
    struct key_wait *kw = user;
    struct wss_http_request *r = kw->r;
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    json_t *body;

    memcpy(key, kw->key, sizeof key);
    free(kw);
    if (status != WSS_OK) {
        respond_wss_error(r, status, NULL, NULL);
        return;
    }
    if (!p->connected) {
        respond_error(r, 404, "not_connected", "no signer holding this key is connected", NULL);
        return;
    }
    body = json_pack("{s:o, s:b, s:I, s:s, s:I}", "public_key", b64_string(key, sizeof key),
                     "connected", 1, "connected_at", (json_int_t)p->connected_at_ms, "session_id",
                     p->session_id, "pending", (json_int_t)p->pending);
    /* In a cluster: the node that holds the key. */
    if (p->node[0])
        json_object_set_new(body, "node", json_string(p->node));
    respond_json(r, 200, body);
}

static void on_disconnected(int status, const char *node, void *user)
{
    struct key_wait *kw = user;
    struct wss_http_request *r = kw->r;

    free(kw);
    if (status == WSS_OK)
        wss_http_respond(r, 204, NULL, NULL, 0);
    else
        respond_wss_error(r, status, NULL, NULL);
}

/* GET /v1/keys/{key} (scope read), DELETE /v1/keys/{key} (scope admin). */
static void handle_key(struct api *api, struct wss_http_request *r, const struct caller *who,
                       const char *text)
{
    bool del = !strcmp(wss_http_method(r), "DELETE");
    struct key_wait *kw;
    int rc;

    if (strcmp(wss_http_method(r), "GET") && !del) {
        respond_error(r, 405, "method_not_allowed", "use GET or DELETE", NULL);
        return;
    }
    if (lacks_scope(api, r, false, who, del ? HTTP_API_SCOPE_ADMIN : HTTP_API_SCOPE_READ,
                    del ? "admin" : "read"))
        return;
    kw = wss_calloc(1, sizeof *kw);
    if (http_api_parse_key(text, strlen(text), kw->key) != 0) {
        free(kw);
        respond_error(r, 400, "bad_request", "key must be base64url of 32 bytes", NULL);
        return;
    }
    /* Outside the token's keys: 403 whether or not the key is connected. */
    if (!http_api_token_allows_key(who->token, kw->key)) {
        free(kw);
        refuse_as(api, r, false, who, WSS_ERR_FORBIDDEN_KEY,
                  "this token may not use this key (keys= in the token file)", NULL, NULL, 0);
        return;
    }
    kw->r = r;
    /* Asked of the whole key space the service knows; answered on a later turn. */
    if (del)
        rc = wss_disconnect_key(api->svc, kw->key, who->requester, on_disconnected, kw);
    else
        rc = wss_lookup_key_async(api->svc, kw->key, on_presence, kw);
    if (rc != 0) {
        free(kw);
        respond_wss_error(r, rc, NULL, NULL);
    }
}

static void on_listed(int status, const struct wss_key_entry *keys, size_t n, bool more, void *user)
{
    struct wss_http_request *r = user;
    json_t *list, *body;

    if (status != WSS_OK) {
        respond_wss_error(r, status, NULL, NULL);
        return;
    }
    list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_pack("{s:o, s:I, s:s}", "public_key",
                              b64_string(keys[i].public_key, WSS_PUBLIC_KEY_BYTES), "connected_at",
                              (json_int_t)keys[i].connected_at_ms, "remote", keys[i].remote);

        if (keys[i].node[0])
            json_object_set_new(e, "node", json_string(keys[i].node));
        json_array_append_new(list, e);
    }
    body = json_pack("{s:o}", "keys", list);
    /* The cursor is the last key listed: the next page starts after it. */
    if (more && n) {
        char cursor[WSS_PUBLIC_KEY_BASE64_BYTES];

        http_api_cursor(cursor, keys[n - 1].public_key);
        json_object_set_new(body, "next_cursor", json_string(cursor));
    }
    respond_json(r, 200, body);
}

/* The query of GET /v1/keys: limit=N (1..WSS_LIST_MAX) and after=CURSOR, each at most
 * once; anything else is refused. */
static int parse_list_query(struct wss_http_request *r, struct wss_list_opts *opts,
                            uint8_t after[WSS_PUBLIC_KEY_BYTES], const char **why)
{
    bool seen_limit = false, seen_after = false;
    char arg[QUERY_ARG_MAX];

    for (unsigned i = 0;; i++) {
        int n = wss_http_query_arg(r, i, arg, sizeof arg);

        if (n == WSS_ERR_NOT_FOUND)
            return 0;
        if (n < 0) {
            *why = "a query argument is too long";
            return -1;
        }
        if (!n)
            continue;
        if (!strncmp(arg, "limit=", 6) && !seen_limit) {
            seen_limit = true;
            if (http_api_parse_limit(arg + 6, (size_t)n - 6, &opts->limit) != 0) {
                *why = "limit must be a number from 1 to 1000";
                return -1;
            }
        } else if (!strncmp(arg, "after=", 6) && !seen_after) {
            seen_after = true;
            if (n == 6)
                continue; /* after= with nothing: from the first key */
            if (http_api_parse_key(arg + 6, (size_t)n - 6, after) != 0) {
                *why = "after must be a next_cursor from an earlier page";
                return -1;
            }
            opts->after = after;
        } else {
            *why = "the query takes limit=N and after=CURSOR, each at most once";
            return -1;
        }
    }
}

/* GET /v1/keys?limit=N&after=CURSOR (scope read): a page of the connected keys. */
static void handle_list(struct api *api, struct wss_http_request *r, const struct caller *who)
{
    uint8_t after[WSS_PUBLIC_KEY_BYTES];
    struct wss_list_opts opts = {.limit = LIST_DEFAULT};
    const char *why = NULL;
    int rc;

    if (strcmp(wss_http_method(r), "GET")) {
        respond_error(r, 405, "method_not_allowed", "use GET", NULL);
        return;
    }
    if (lacks_scope(api, r, false, who, HTTP_API_SCOPE_READ, "read"))
        return;
    if (parse_list_query(r, &opts, after, &why) != 0) {
        respond_error(r, 400, "bad_request", why, NULL);
        return;
    }
    /* A token limited to some keys lists those only: it learns nothing of the others. */
    if (who->token && who->token->keys) {
        opts.only = (const uint8_t(*)[WSS_PUBLIC_KEY_BYTES])(const void *)http_api_token_keys(
            who->token, &opts.n_only);
        if (!opts.n_only) {
            respond_json(r, 200, json_pack("{s:[]}", "keys"));
            return;
        }
    }
    if ((rc = wss_list_keys(api->svc, &opts, on_listed, r)) != 0)
        respond_wss_error(r, rc, NULL, NULL);
}

static void handle_metrics(struct api *api, struct wss_http_request *r, const struct caller *who)
{
    size_t len;
    char *text;

    if (strcmp(wss_http_method(r), "GET")) {
        respond_error(r, 405, "method_not_allowed", "use GET", NULL);
        return;
    }
    if (lacks_scope(api, r, false, who, HTTP_API_SCOPE_METRICS, "metrics"))
        return;
    text = wss_metrics_render(api->svc, &len);
    wss_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/* Every path of the control listener: /healthz needs no token, the rest does. */
static void api_handle(struct wss_http_request *r, void *state)
{
    struct api *api = state;
    const char *path = wss_http_path(r);
    bool is_sign = !strcmp(path, "/v1/sign") && !strcmp(wss_http_method(r), "POST");
    const struct http_api_token *token;
    struct caller who;
    unsigned retry = 0;
    int rc;

    if (!strcmp(path, "/healthz")) {
        if (strcmp(wss_http_method(r), "GET"))
            respond_error(r, 405, "method_not_allowed", "use GET", NULL);
        else if (wss_cluster_state(api->svc))
            respond_json(
                r, 200,
                json_pack("{s:s, s:s}", "status", "ok", "cluster", wss_cluster_state(api->svc)));
        else
            respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    switch ((rc = http_api_auth_check(api->auth, r, &token))) {
    case 0: break;
    case WSS_ERR_TOO_MANY_REQUESTS:
        /* One try a second comes back. */
        wss_http_retry_after(r, 1);
        refuse(api, r, is_sign, rc,
               "too many failed authentications from this client; "
               "retry later");
        return;
    default: refuse(api, r, is_sign, rc, "a valid bearer token is required"); return;
    }
    caller_of(r, token, &who);
    /* Every request of a token with a rate takes one from its bucket. */
    if (http_api_auth_take(api->auth, token, wss_now_ms(), &retry) != 0) {
        wss_http_retry_after(r, retry);
        refuse_as(api, r, is_sign, &who, WSS_ERR_TOO_MANY_REQUESTS,
                  "this token is over its rate (rate=, burst= in the token file); retry after "
                  "the Retry-After seconds",
                  NULL, NULL, 0);
        return;
    }
    if (!strcmp(path, "/v1/sign"))
        handle_sign(api, r, &who);
    else if (!strcmp(path, "/metrics"))
        handle_metrics(api, r, &who);
    else if (!strcmp(path, KEYS_PATH))
        handle_list(api, r, &who);
    else if (!strncmp(path, KEY_PATH, strlen(KEY_PATH)))
        handle_key(api, r, &who, path + strlen(KEY_PATH));
    else
        respond_error(r, 404, "not_found", "no such endpoint", NULL);
}

static const struct wss_opt_spec api_opts[] = {
    {.key = "token_file", .type = WSS_OPT_STRING},
    {.key = "max_body_bytes",
     .type = WSS_OPT_INTEGER,
     .min = 1024,
     .max = 16 * 1024 * 1024,
     .def.i = BODY_MAX_DEFAULT},
    {.key = "auth_failures_burst",
     .type = WSS_OPT_INTEGER,
     .min = 1,
     .max = 100000,
     .def.i = AUTH_BURST_DEFAULT},
    {0},
};

/* Reads the controller's section (and the token file it names) into *s. */
static int read_settings(struct wss_service *svc, const struct wss_opts *opts,
                         struct api_settings *s, char *err, size_t errlen)
{
    const char *token_file;
    int rc;

    memset(s, 0, sizeof *s);
    if ((rc = wss_opts_check(opts, api_opts, err, errlen)) != 0)
        return rc;
    token_file = wss_opts_string(opts, api_opts, "token_file");
    /* Without tokens anyone who reaches the listener can ask for signatures. */
    if (!token_file && !wss_control_is_local(svc)) {
        snprintf(err, errlen,
                 "the control listener is not loopback-only: set "
                 "controllers.http_api.token_file");
        return WSS_ERR_CONFIG;
    }
    s->body_max = (size_t)wss_opts_int(opts, api_opts, "max_body_bytes");
    s->auth_burst = (unsigned)wss_opts_int(opts, api_opts, "auth_failures_burst");
    return token_file ? http_api_tokens_load(&s->tokens, token_file, err, errlen) : 0;
}

/* Puts s in force (its tokens are taken). */
static void install(struct api *api, struct api_settings *s)
{
    api->body_max = s->body_max;
    http_api_auth_set(api->auth, &s->tokens, s->auth_burst);
}

static int api_init(struct wss_service *svc, const struct wss_opts *opts, void **state, char *err,
                    size_t errlen)
{
    struct api_settings s;
    struct api *api;
    int rc;

    if ((rc = read_settings(svc, opts, &s, err, errlen)) != 0)
        return rc;
    api = wss_calloc(1, sizeof *api);
    api->svc = svc;
    api->auth = http_api_auth_new();
    install(api, &s);
    *state = api;
    return 0;
}

/* A reload re-reads the section and the token file: a revoked token stops working at once. */
static int api_reload_prepare(void *state, const struct wss_opts *opts, void **next, char *err,
                              size_t errlen)
{
    struct api *api = state;
    struct api_settings *s = wss_calloc(1, sizeof *s);
    int rc;

    if ((rc = read_settings(api->svc, opts, s, err, errlen)) != 0) {
        free(s);
        return rc;
    }
    *next = s;
    return 0;
}

static void api_reload_commit(void *state, void *next, bool install_it)
{
    struct api *api = state;
    struct api_settings *s = next;

    if (!s)
        return;
    if (install_it) {
        install(api, s);
        wss_log(WSS_LOG_NOTICE, "event=controller_reloaded name=http_api tokens=%zu",
                http_api_auth_tokens(api->auth));
    } else {
        http_api_tokens_clear(&s->tokens);
    }
    free(s);
}

static void api_cleanup(void *state)
{
    struct api *api = state;
    struct sign_wait *w;

    if (!api)
        return;
    while ((w = api->spare_waits) != NULL) {
        api->spare_waits = w->next_spare;
        free(w);
    }
    http_api_auth_free(api->auth);
    free(api);
}

static const struct wss_http_route api_routes[] = {
    {"/", api_handle},
    {0},
};

const struct wss_controller http_api_controller = {
    .api_version = WSS_CONTROLLER_API_VERSION,
    .name = "http_api",
    .init = api_init,
    .cleanup = api_cleanup,
    .reload_prepare = api_reload_prepare,
    .reload_commit = api_reload_commit,
    .http_routes = api_routes,
    .opts_spec = api_opts,
};
