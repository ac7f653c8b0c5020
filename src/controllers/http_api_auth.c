/*
 * Token files and the bearer-token check of the HTTP control API. Tokens are
 * kept as BLAKE2b digests, compared with every digest without stopping
 * early, and wiped when replaced. Failures are throttled per client
 * (http_api_throttle.c) so that guessing stays slow for the guesser only.
 */
#include "http_api_auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>
#include <wssignd/util.h>

#include "files.h"
#include "log.h"
#include "http_api_throttle.h"

#define TOKEN_MIN_CHARS 16
#define TOKEN_LINE_MAX 512
/* The largest token file read (a few thousand tokens). */
#define TOKEN_FILE_MAX (1024 * 1024)
#define TOKEN_PATH_MAX 4096

/* Per controller instance: made with the controller, freed with it. */
struct http_api_auth {
    struct http_api_tokens tokens;
    struct http_api_throttle *throttle; /* failed authentications per client */
    struct log_limit fail_log;          /* a client can fail at will */
};

void http_api_tokens_clear(struct http_api_tokens *t)
{
    if (t->digests)
        sodium_memzero(t->digests, t->n * sizeof *t->digests);
    free(t->digests);
    t->digests = NULL;
    t->n = 0;
}

/* Adds the tokens of text (the token file at path, NUL-terminated) to t. */
static int parse_tokens(struct http_api_tokens *t, char *text, const char *path, char *err,
                        size_t errlen)
{
    unsigned lineno = 0;
    char *line, *next;

    for (line = text; line; line = next) {
        size_t n;

        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n = strlen(line);
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        if (!n || line[0] == '#')
            continue;
        if (n > TOKEN_LINE_MAX) {
            snprintf(err, errlen, "token file %s: line %u is longer than %d characters", path,
                     lineno, TOKEN_LINE_MAX);
            return WSS_ERR_CONFIG;
        }
        if (n < TOKEN_MIN_CHARS || strpbrk(line, " \t")) {
            snprintf(err, errlen, "token file %s: line %u: tokens must be at least %d characters "
                     "without spaces", path, lineno, TOKEN_MIN_CHARS);
            return WSS_ERR_CONFIG;
        }
        t->digests = wss_realloc(t->digests, (t->n + 1) * sizeof *t->digests);
        crypto_generichash(t->digests[t->n++], crypto_generichash_BYTES, (const uint8_t *)line,
                           n, NULL, 0);
    }
    return 0;
}

int http_api_tokens_load(struct http_api_tokens *t, const char *setting, char *err,
                         size_t errlen)
{
    char path[TOKEN_PATH_MAX], *text = NULL;
    size_t len = 0;
    int rc;

    memset(t, 0, sizeof *t);
    if ((rc = files_resolve(setting, path, sizeof path, err, errlen)) != 0 ||
        (rc = files_read(path, true, "token file", TOKEN_FILE_MAX, &text, &len, err, errlen)) != 0)
        return rc;
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "token file %s holds a NUL byte", path);
        rc = WSS_ERR_CONFIG;
    } else if ((rc = parse_tokens(t, text, path, err, errlen)) == 0 && !t->n) {
        snprintf(err, errlen, "token file %s holds no token", path);
        rc = WSS_ERR_CONFIG;
    }
    files_free_secret(text, len + 1);
    if (rc != 0)
        http_api_tokens_clear(t);
    return rc;
}

struct http_api_auth *http_api_auth_new(void)
{
    struct http_api_auth *a = wss_calloc(1, sizeof *a);

    a->throttle = http_api_throttle_new(HTTP_API_THROTTLE_MAX, 1);
    return a;
}

void http_api_auth_free(struct http_api_auth *a)
{
    if (!a)
        return;
    http_api_tokens_clear(&a->tokens);
    http_api_throttle_free(a->throttle);
    free(a);
}

void http_api_auth_set(struct http_api_auth *a, struct http_api_tokens *tokens, unsigned burst)
{
    http_api_tokens_clear(&a->tokens);
    a->tokens = *tokens;
    memset(tokens, 0, sizeof *tokens);
    http_api_throttle_set_burst(a->throttle, burst);
}

size_t http_api_auth_tokens(const struct http_api_auth *a)
{
    return a->tokens.n;
}

/* Who the request comes from, as the failed-authentication throttle counts clients. */
static void client_of(struct wss_http_request *req, struct http_api_client *who)
{
    struct wss_http_peer peer;

    /* A peer that cannot be read counts as the one shared "unknown" client. */
    wss_http_peer(req, &peer);
    http_api_client_of((const struct sockaddr *)&peer.addr, peer.has_uid ? &peer.uid : NULL,
                       who);
}

/* Constant-time check of "Authorization: Bearer <token>" against every token in force. */
static bool authorized(const struct http_api_auth *a, struct wss_http_request *req)
{
    char hdr[TOKEN_LINE_MAX + 16];
    uint8_t digest[crypto_generichash_BYTES];
    int n = wss_http_header(req, "authorization", hdr, sizeof hdr), match = 0;

    if (n <= 7 || strncmp(hdr, "Bearer ", 7)) {
        sodium_memzero(hdr, sizeof hdr);
        return false;
    }
    crypto_generichash(digest, sizeof digest, (const uint8_t *)hdr + 7, (size_t)n - 7, NULL, 0);
    /* Compare with every digest, without stopping early, so timing tells nothing. */
    for (size_t i = 0; i < a->tokens.n; i++)
        match |= sodium_memcmp(digest, a->tokens.digests[i], sizeof digest) == 0;
    sodium_memzero(hdr, sizeof hdr);
    return match;
}

int http_api_auth_check(struct http_api_auth *a, struct wss_http_request *req)
{
    struct http_api_client who;
    uint64_t now = wss_now_ms();

    if (!a->tokens.n)
        return 0;
    /* Clients with no failures have no entry: skip the address lookup for them. */
    if (http_api_throttle_count(a->throttle)) {
        client_of(req, &who);
        if (http_api_throttle_blocked(a->throttle, &who, now))
            return WSS_ERR_TOO_MANY_REQUESTS;
    }
    if (authorized(a, req))
        return 0;
    client_of(req, &who);
    http_api_throttle_fail(a->throttle, &who, now);
    log_limited(&a->fail_log, WSS_LOG_WARN, "event=auth_failed remote=%s", wss_http_remote(req));
    return WSS_ERR_UNAUTHORIZED;
}
