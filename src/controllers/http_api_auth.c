/*
 * Token files and the bearer-token check of the HTTP control API. A line is
 * a bare token or a named one with its scopes, keys and rate; tokens are
 * kept as BLAKE2b digests, compared with every digest without stopping
 * early, and wiped when replaced. Error text names the file and line, never
 * a token. Failures are throttled per client (http_api_throttle.c) so that
 * guessing stays slow for the guesser only; a token with a rate has a token
 * bucket of its own.
 */
#include "http_api_auth.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>
#include <wssignd/util.h>

#include "files.h"
#include "keyset.h"
#include "log.h"
#include "http_api_throttle.h"

#define TOKEN_MIN_CHARS 16
#define TOKEN_MAX_CHARS 512
/* A line holds a name, a token and its options; keys= may list HTTP_API_TOKEN_KEYS_MAX keys. */
#define TOKEN_LINE_MAX (64 * 1024)
/* The largest token file read (a few thousand tokens). */
#define TOKEN_FILE_MAX (1024 * 1024)
#define TOKEN_PATH_MAX 4096
/* Options of a line, and the largest rate or burst. */
#define TOKEN_FIELDS_MAX 8
#define RATE_MAX 1000000

/* Per named token with a rate: its bucket, kept across reloads by name. */
struct bucket {
    char name[HTTP_API_TOKEN_NAME_MAX + 1];
    double rate, burst;
    double level;   /* requests still allowed */
    uint64_t at_ms; /* when level was brought up to date; 0: full */
};

/* Per controller instance: made with the controller, freed with it. */
struct http_api_auth {
    struct http_api_tokens tokens;
    struct bucket *buckets;             /* one per token, same index */
    struct http_api_throttle *throttle; /* failed authentications per client */
    struct log_limit fail_log;          /* a client can fail at will */
    struct log_limit refused_log;       /* and a token can be refused at will */
};

void http_api_tokens_clear(struct http_api_tokens *t)
{
    for (size_t i = 0; i < t->n; i++)
        keyset_free(t->list[i].keys);
    if (t->list)
        sodium_memzero(t->list, t->n * sizeof *t->list);
    free(t->list);
    t->list = NULL;
    t->n = 0;
}

/* Per line being parsed: where its errors go. */
struct line_ctx {
    const char *path;
    unsigned lineno;
    char *err;
    size_t errlen;
};

static int line_error(const struct line_ctx *lc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "token file PATH:LINE: reason". The reason never quotes the line: it may hold a token. */
static int line_error(const struct line_ctx *lc, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(lc->err, lc->errlen, "token file %s:%u: ", lc->path, lc->lineno);

    if (n >= 0 && (size_t)n < lc->errlen) {
        va_start(ap, fmt);
        vsnprintf(lc->err + n, lc->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return WSS_ERR_CONFIG;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (!n || n > HTTP_API_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* A decimal integer 1..RATE_MAX spanning all of s[0..len). */
static bool parse_count(const char *s, size_t len, double *out)
{
    unsigned long v = 0;

    if (!len || len > 7)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (!v || v > RATE_MAX)
        return false;
    *out = (double)v;
    return true;
}

static int parse_scopes(const struct line_ctx *lc, const char *v, unsigned *scopes)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"sign", HTTP_API_SCOPE_SIGN},
                 {"read", HTTP_API_SCOPE_READ},
                 {"metrics", HTTP_API_SCOPE_METRICS},
                 {"admin", HTTP_API_SCOPE_ADMIN}};

    *scopes = 0;
    for (;;) {
        size_t n = strcspn(v, ","), i;

        /* An empty item (a doubled or trailing comma) matches no name either. */
        for (i = 0; i < sizeof names / sizeof names[0]; i++)
            if (n == strlen(names[i].name) && !strncmp(v, names[i].name, n))
                break;
        if (i == sizeof names / sizeof names[0])
            return line_error(lc, "scopes= takes sign, read, metrics and admin, separated by "
                                  "commas");
        *scopes |= names[i].bit;
        if (!v[n])
            return 0;
        v += n + 1;
    }
}

static int parse_keys(const struct line_ctx *lc, const char *v, struct keyset **out)
{
    struct keyset *set = xcalloc(1, sizeof *set);
    unsigned item = 0;

    for (;;) {
        size_t n = strcspn(v, ",");
        uint8_t key[KEYSET_KEY_BYTES];

        item++;
        if (item > HTTP_API_TOKEN_KEYS_MAX || wss_key_decode(key, v, n) != 0) {
            keyset_free(set);
            if (item > HTTP_API_TOKEN_KEYS_MAX)
                return line_error(lc, "keys= lists more than %d keys", HTTP_API_TOKEN_KEYS_MAX);
            return line_error(lc,
                              "keys= item %u is not a public key (standard base64 of 32 "
                              "bytes, 44 characters; keys separated by commas)",
                              item);
        }
        keyset_add(set, key);
        if (!v[n])
            break;
        v += n + 1;
    }
    keyset_sort(set);
    *out = set;
    return 0;
}

/* "N/s" or "N/m": requests a second. */
static int parse_rate(const struct line_ctx *lc, const char *v, double *rate)
{
    const char *slash = strchr(v, '/');

    if (!slash || !parse_count(v, (size_t)(slash - v), rate) ||
        (strcmp(slash, "/s") && strcmp(slash, "/m")))
        return line_error(lc, "rate= takes N/s or N/m, N from 1 to %d", RATE_MAX);
    if (!strcmp(slash, "/m"))
        *rate /= 60.0;
    return 0;
}

/* The options of a named line: fields[0..n) are "key=value". */
static int parse_options(const struct line_ctx *lc, char **fields, size_t n,
                         struct http_api_token *tok)
{
    bool seen_scopes = false, seen_rate = false, seen_burst = false;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        char *eq = strchr(fields[i], '='), *v;

        if (!eq)
            return line_error(lc, "field %zu is not an option (scopes=, keys=, rate=, burst=)",
                              i + 3);
        *eq = '\0';
        v = eq + 1;
        if (!strcmp(fields[i], "scopes") && !seen_scopes) {
            seen_scopes = true;
            rc = parse_scopes(lc, v, &tok->scopes);
        } else if (!strcmp(fields[i], "keys") && !tok->keys) {
            rc = parse_keys(lc, v, &tok->keys);
        } else if (!strcmp(fields[i], "rate") && !seen_rate) {
            seen_rate = true;
            rc = parse_rate(lc, v, &tok->rate);
        } else if (!strcmp(fields[i], "burst") && !seen_burst) {
            seen_burst = true;
            if (!parse_count(v, strlen(v), &tok->burst))
                rc = line_error(lc, "burst= takes a number from 1 to %d", RATE_MAX);
        } else if (!strcmp(fields[i], "scopes") || !strcmp(fields[i], "keys") ||
                   !strcmp(fields[i], "rate") || !strcmp(fields[i], "burst")) {
            rc = line_error(lc, "option %s= is given twice", fields[i]);
        } else {
            rc =
                line_error(lc, "field %zu is not an option (scopes=, keys=, rate=, burst=)", i + 3);
        }
    }
    if (rc == 0 && seen_burst && !seen_rate)
        rc = line_error(lc, "burst= needs rate=");
    /* Without burst=, a second's worth of requests (at least one). */
    if (rc == 0 && seen_rate && !seen_burst)
        tok->burst = tok->rate < 1.0 ? 1.0 : (double)(unsigned long)(tok->rate + 0.999);
    return rc;
}

/* One non-comment line (trimmed, NUL-terminated) into *tok. */
static int parse_line(const struct line_ctx *lc, char *line, struct http_api_token *tok)
{
    char *fields[TOKEN_FIELDS_MAX + 1], *p = line, *token;
    size_t n = 0;

    memset(tok, 0, sizeof *tok);
    while (*p) {
        if (n == TOKEN_FIELDS_MAX + 1)
            return line_error(lc, "more than %d fields (name, token, options)", TOKEN_FIELDS_MAX);
        fields[n++] = p;
        p += strcspn(p, " \t");
        if (*p) {
            *p++ = '\0';
            p += strspn(p, " \t");
        }
    }
    if (n > TOKEN_FIELDS_MAX)
        return line_error(lc, "more than %d fields (name, token, options)", TOKEN_FIELDS_MAX);
    if (n == 1) {
        /* A bare token: full access, named after its line. */
        token = fields[0];
        snprintf(tok->name, sizeof tok->name, "token-%u", lc->lineno);
        tok->scopes = HTTP_API_SCOPE_ALL;
    } else {
        if (!name_ok(fields[0]))
            return line_error(lc,
                              "a line is a token, or a name (1 to %d of A-Z a-z 0-9 _ . -), "
                              "a token and options",
                              HTTP_API_TOKEN_NAME_MAX);
        snprintf(tok->name, sizeof tok->name, "%s", fields[0]);
        token = fields[1];
        tok->scopes = HTTP_API_SCOPE_ALL;
    }
    if (strlen(token) < TOKEN_MIN_CHARS || strlen(token) > TOKEN_MAX_CHARS)
        return line_error(lc, "tokens must be %d to %d characters without spaces", TOKEN_MIN_CHARS,
                          TOKEN_MAX_CHARS);
    crypto_generichash(tok->digest, sizeof tok->digest, (const uint8_t *)token, strlen(token), NULL,
                       0);
    return n > 2 ? parse_options(lc, fields + 2, n - 2, tok) : 0;
}

/* Adds the tokens of text (the token file at path, NUL-terminated) to t. */
static int parse_tokens(struct http_api_tokens *t, char *text, const char *path, char *err,
                        size_t errlen)
{
    struct line_ctx lc = {.path = path, .err = err, .errlen = errlen};
    unsigned *linenos = NULL;
    char *line, *next;
    int rc = 0;

    for (line = text; line && rc == 0; line = next) {
        struct http_api_token tok;
        size_t n;

        lc.lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        n = strlen(line);
        if (n > TOKEN_LINE_MAX) {
            rc = line_error(&lc, "the line is longer than %d characters", TOKEN_LINE_MAX);
            break;
        }
        while (n && isspace((unsigned char)line[n - 1]))
            line[--n] = '\0';
        line += strspn(line, " \t");
        if (!*line || line[0] == '#')
            continue;
        if ((rc = parse_line(&lc, line, &tok)) != 0) {
            keyset_free(tok.keys);
            break;
        }
        /* Names and tokens are one a line each: a repeat is a mistake, not an alias. */
        for (size_t i = 0; i < t->n && rc == 0; i++) {
            if (!strcmp(t->list[i].name, tok.name))
                rc = line_error(&lc, "the name is already used on line %u", linenos[i]);
            else if (!sodium_memcmp(t->list[i].digest, tok.digest, sizeof tok.digest))
                rc = line_error(&lc, "the same token as line %u", linenos[i]);
        }
        if (rc != 0) {
            keyset_free(tok.keys);
            sodium_memzero(&tok, sizeof tok);
            break;
        }
        t->list = xrealloc(t->list, (t->n + 1) * sizeof *t->list);
        linenos = xrealloc(linenos, (t->n + 1) * sizeof *linenos);
        linenos[t->n] = lc.lineno;
        t->list[t->n++] = tok;
        sodium_memzero(&tok, sizeof tok);
    }
    free(linenos);
    return rc;
}

int http_api_tokens_load(struct http_api_tokens *t, const char *setting, char *err, size_t errlen)
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
    free(a->buckets);
    http_api_throttle_free(a->throttle);
    free(a);
}

void http_api_auth_set(struct http_api_auth *a, struct http_api_tokens *tokens, unsigned burst)
{
    struct bucket *next = wss_calloc(tokens->n ? tokens->n : 1, sizeof *next);

    /* A reload does not refill a bucket: a token keeps its level if its limit stays. */
    for (size_t i = 0; i < tokens->n; i++) {
        const struct http_api_token *t = &tokens->list[i];
        struct bucket *b = &next[i];

        snprintf(b->name, sizeof b->name, "%s", t->name);
        b->rate = t->rate;
        b->burst = t->burst;
        b->level = t->burst;
        for (size_t j = 0; j < a->tokens.n; j++)
            if (!strcmp(a->buckets[j].name, t->name) && a->buckets[j].rate == t->rate &&
                a->buckets[j].burst == t->burst) {
                b->level = a->buckets[j].level;
                b->at_ms = a->buckets[j].at_ms;
            }
    }
    http_api_tokens_clear(&a->tokens);
    free(a->buckets);
    a->tokens = *tokens;
    a->buckets = next;
    memset(tokens, 0, sizeof *tokens);
    http_api_throttle_set_burst(a->throttle, burst);
}

size_t http_api_auth_tokens(const struct http_api_auth *a)
{
    return a->tokens.n;
}

const struct http_api_token *http_api_auth_token(const struct http_api_auth *a, const char *name)
{
    for (size_t i = 0; i < a->tokens.n; i++)
        if (!strcmp(a->tokens.list[i].name, name))
            return &a->tokens.list[i];
    return NULL;
}

/* Who the request comes from, as the failed-authentication throttle counts clients. */
static void client_of(struct wss_http_request *req, struct http_api_client *who)
{
    struct wss_http_peer peer;

    /* A peer that cannot be read counts as the one shared "unknown" client. */
    wss_http_peer(req, &peer);
    http_api_client_of((const struct sockaddr *)&peer.addr, peer.has_uid ? &peer.uid : NULL, who);
}

/* Constant-time lookup of "Authorization: Bearer <token>" among every token in force:
 * the matching token, or NULL. */
static const struct http_api_token *authorized(const struct http_api_auth *a,
                                               struct wss_http_request *req)
{
    char hdr[TOKEN_MAX_CHARS + 16];
    uint8_t digest[crypto_generichash_BYTES];
    int n = wss_http_header(req, "authorization", hdr, sizeof hdr);
    size_t found = a->tokens.n;

    if (n <= 7 || strncmp(hdr, "Bearer ", 7)) {
        sodium_memzero(hdr, sizeof hdr);
        return NULL;
    }
    crypto_generichash(digest, sizeof digest, (const uint8_t *)hdr + 7, (size_t)n - 7, NULL, 0);
    /* Compare with every digest, without stopping early, so timing tells nothing. */
    for (size_t i = 0; i < a->tokens.n; i++) {
        size_t eq = (size_t)(sodium_memcmp(digest, a->tokens.list[i].digest, sizeof digest) == 0);

        found = (found & (eq - 1)) | (i & (0 - eq));
    }
    sodium_memzero(hdr, sizeof hdr);
    return found < a->tokens.n ? &a->tokens.list[found] : NULL;
}

int http_api_auth_check(struct http_api_auth *a, struct wss_http_request *req,
                        const struct http_api_token **token)
{
    struct http_api_client who;
    uint64_t now = wss_now_ms();

    *token = NULL;
    if (!a->tokens.n)
        return 0;
    /* Clients with no failures have no entry: skip the address lookup for them. */
    if (http_api_throttle_count(a->throttle)) {
        client_of(req, &who);
        if (http_api_throttle_blocked(a->throttle, &who, now))
            return WSS_ERR_TOO_MANY_REQUESTS;
    }
    if ((*token = authorized(a, req)) != NULL)
        return 0;
    client_of(req, &who);
    http_api_throttle_fail(a->throttle, &who, now);
    log_limited(&a->fail_log, WSS_LOG_WARN, "event=auth_failed remote=%s", wss_http_remote(req));
    return WSS_ERR_UNAUTHORIZED;
}

int http_api_auth_identify(struct http_api_auth *a, struct wss_http_request *req,
                           const struct http_api_token **token)
{
    *token = NULL;
    if (!a->tokens.n)
        return 0;
    *token = authorized(a, req);
    return *token ? 0 : WSS_ERR_UNAUTHORIZED;
}

int http_api_auth_take(struct http_api_auth *a, const struct http_api_token *token, uint64_t now_ms,
                       unsigned *retry_after_s)
{
    struct bucket *b;
    double wait;

    if (!token || !token->rate || token < a->tokens.list || token >= a->tokens.list + a->tokens.n)
        return 0;
    b = &a->buckets[token - a->tokens.list];
    if (!b->at_ms) {
        b->level = b->burst;
    } else if (now_ms > b->at_ms) {
        b->level += (double)(now_ms - b->at_ms) / 1000.0 * b->rate;
        if (b->level > b->burst)
            b->level = b->burst;
    }
    b->at_ms = now_ms ? now_ms : 1;
    if (b->level >= 1.0) {
        b->level -= 1.0;
        return 0;
    }
    /* Whole seconds until one request's worth is back, at least one. */
    wait = (1.0 - b->level) / b->rate;
    *retry_after_s = wait < 1.0 ? 1 : (unsigned)(wait + 0.999);
    return WSS_ERR_TOO_MANY_REQUESTS;
}

bool http_api_token_allows_key(const struct http_api_token *token, const uint8_t key[32])
{
    return !token || !token->keys || keyset_has(token->keys, key);
}

const uint8_t *http_api_token_keys(const struct http_api_token *token, size_t *n)
{
    *n = token && token->keys ? token->keys->n : 0;
    return token && token->keys ? token->keys->keys[0] : NULL;
}

void http_api_auth_log_refused(struct http_api_auth *a, struct wss_http_request *req,
                               const char *code, const char *requester)
{
    char path[80], who[120];

    log_limited(&a->refused_log, WSS_LOG_NOTICE,
                "event=request_refused method=%s path=%s outcome=%s requester=%s",
                wss_http_method(req), log_quote(path, sizeof path, wss_http_path(req)), code,
                log_quote(who, sizeof who, requester));
}
