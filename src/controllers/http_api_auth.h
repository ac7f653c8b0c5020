/*
 * Bearer tokens for the HTTP control API: the token file (a path or a
 * systemd credential, private to its owner) read into named tokens with
 * their scopes, key limits and rates; the check of a request's
 * "Authorization: Bearer" header in constant time, throttled per client on
 * failure (http_api_throttle.h); and a token bucket per token name. Uses the
 * daemon's private-file reader, its key sets and its log rate limit beyond
 * include/wssignd/.
 */
#ifndef WSSIGND_HTTP_API_AUTH_H
#define WSSIGND_HTTP_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include <wssignd/http.h>

struct keyset;

/* What a token may do: one bit per group of endpoints. */
enum http_api_scope {
    HTTP_API_SCOPE_SIGN = 1,    /* POST /v1/sign */
    HTTP_API_SCOPE_READ = 2,    /* GET /v1/keys, GET /v1/keys/{key} */
    HTTP_API_SCOPE_METRICS = 4, /* GET /metrics */
    HTTP_API_SCOPE_ADMIN = 8,   /* DELETE /v1/keys/{key} */
    HTTP_API_SCOPE_ALL = 15,
};

/* Longest token name: 1 to 32 of A-Z a-z 0-9 _ . - */
#define HTTP_API_TOKEN_NAME_MAX 32
/* Most keys one token may be limited to (keys=). */
#define HTTP_API_TOKEN_KEYS_MAX 1000

/* Per token line of the file. */
struct http_api_token {
    char name[HTTP_API_TOKEN_NAME_MAX + 1]; /* "billing", or "token-N" for a bare line N */
    uint8_t digest[crypto_generichash_BYTES];
    unsigned scopes;     /* enum http_api_scope bits */
    struct keyset *keys; /* owned; NULL: any key */
    double rate;         /* requests a second; 0: no limit */
    double burst;        /* the bucket's size (with rate) */
};

/* Per configuration: the tokens of one token file (none: no token needed). */
struct http_api_tokens {
    struct http_api_token *list;
    size_t n;
};

/*
 * Reads the token file named by setting (a path, or "credential:NAME"): per
 * line a bare token (name "token-N", every scope) or "NAME TOKEN [OPTION...]"
 * with the options scopes=, keys=, rate=, burst= (docs/CONFIG.md); '#'
 * comments; the file must be private to its owner. Fills *t (emptied first)
 * and returns 0, or WSS_ERR_CONFIG / WSS_ERR_IO with the reason (file and
 * line, never a token) in err, t holding none. Free with
 * http_api_tokens_clear.
 */
int http_api_tokens_load(struct http_api_tokens *t, const char *setting, char *err, size_t errlen);

/* Wipes and frees the tokens of t; t then holds none. */
void http_api_tokens_clear(struct http_api_tokens *t);

/* Per controller: the tokens in force, the failure throttle, the token buckets. */
struct http_api_auth;

/* Makes a checker that needs no token yet. Never NULL; free with
 * http_api_auth_free (NULL is a no-op). */
struct http_api_auth *http_api_auth_new(void);
void http_api_auth_free(struct http_api_auth *a);

/* Installs tokens (taken: *tokens is left empty) and the burst of failed
 * authentications a client may make (at init and on each reload). A token
 * bucket is kept across a reload for a token of the same name and rate. */
void http_api_auth_set(struct http_api_auth *a, struct http_api_tokens *tokens, unsigned burst);

/* Number of tokens in force. */
size_t http_api_auth_tokens(const struct http_api_auth *a);

/* The token in force named name (borrowed until the next reload), or NULL. */
const struct http_api_token *http_api_auth_token(const struct http_api_auth *a, const char *name);

/*
 * Decides whether req may go on: 0 if no token is needed (*token NULL) or
 * its bearer token is one of those in force (*token points at it, borrowed
 * until the next reload: use it before returning to the loop);
 * WSS_ERR_TOO_MANY_REQUESTS if its client has used up its failures (its
 * token is then not looked at); WSS_ERR_UNAUTHORIZED otherwise, counted
 * against its client and logged (rate-limited). Call from the request's
 * handler (it reads a header).
 */
int http_api_auth_check(struct http_api_auth *a, struct wss_http_request *req,
                        const struct http_api_token **token);

/*
 * The token req carries, looked up again (from a body callback, after a
 * possible reload), without counting a failure: 0 with *token as for
 * http_api_auth_check, or WSS_ERR_UNAUTHORIZED (revoked meanwhile).
 */
int http_api_auth_identify(struct http_api_auth *a, struct wss_http_request *req,
                           const struct http_api_token **token);

/*
 * Takes one request from token's bucket at now_ms: 0, or
 * WSS_ERR_TOO_MANY_REQUESTS with *retry_after_s the whole seconds until one
 * is back. A token without a rate (or NULL) is never refused.
 */
int http_api_auth_take(struct http_api_auth *a, const struct http_api_token *token, uint64_t now_ms,
                       unsigned *retry_after_s);

/* The keys token is limited to (sorted, n of them), or NULL when it may use any. */
const uint8_t *http_api_token_keys(const struct http_api_token *token, size_t *n);

/*
 * Logs a request refused after the token check (a missing scope, a key
 * outside the token's keys, a rate) on an endpoint that is not audited as
 * a sign request: "event=request_refused", at most one line a second with a
 * count of those left out. code is the error code, requester who asked.
 */
void http_api_auth_log_refused(struct http_api_auth *a, struct wss_http_request *req,
                               const char *code, const char *requester);

/* True if token (NULL: no token file) may use key: it lists no keys, or key is one. */
bool http_api_token_allows_key(const struct http_api_token *token, const uint8_t key[32]);

#endif
