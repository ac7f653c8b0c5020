/*
 * Bearer tokens for the HTTP control API: the token file (a path or a
 * systemd credential, one token per line, private to its owner) read into
 * digests, and the check of a request's "Authorization: Bearer" header in
 * constant time, throttled per client (http_api_throttle.h). Uses the
 * daemon's private-file reader and its log rate limit beyond
 * include/wssignd/.
 */
#ifndef WSSIGND_HTTP_API_AUTH_H
#define WSSIGND_HTTP_API_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include <wssignd/http.h>

/* Per configuration: digests of the accepted tokens (none: no token needed). */
struct http_api_tokens {
    uint8_t (*digests)[crypto_generichash_BYTES];
    size_t n;
};

/*
 * Reads the token file named by setting (a path, or "credential:NAME"): one
 * token of at least 16 characters without spaces per line, '#' comments;
 * the file must be private to its owner. Fills *t (zeroed first) and
 * returns 0, or returns WSS_ERR_CONFIG / WSS_ERR_IO with the reason (file
 * and line) in err, t holding none. Free with http_api_tokens_clear.
 */
int http_api_tokens_load(struct http_api_tokens *t, const char *setting, char *err,
                         size_t errlen);

/* Wipes and frees the digests of t; t then holds none. */
void http_api_tokens_clear(struct http_api_tokens *t);

/* Per controller: the tokens in force, the failure throttle and its log limit. */
struct http_api_auth;

/* Makes a checker that needs no token yet. Never NULL; free with
 * http_api_auth_free (NULL is a no-op). */
struct http_api_auth *http_api_auth_new(void);
void http_api_auth_free(struct http_api_auth *a);

/* Installs tokens (taken: *tokens is left empty) and the burst of failed
 * authentications a client may make (at init and on each reload). */
void http_api_auth_set(struct http_api_auth *a, struct http_api_tokens *tokens, unsigned burst);

/* Number of tokens in force. */
size_t http_api_auth_tokens(const struct http_api_auth *a);

/*
 * Decides whether req may go on: 0 if no token is needed or its bearer
 * token is one of those in force; WSS_ERR_TOO_MANY_REQUESTS if its client
 * has used up its failures (its token is then not looked at);
 * WSS_ERR_UNAUTHORIZED otherwise, counted against its client and logged
 * (rate-limited). Call from the request's handler (it reads a header).
 */
int http_api_auth_check(struct http_api_auth *a, struct wss_http_request *req);

#endif
