/*
 * lws's log lines, mapped onto the log sink's levels; errors and warnings
 * rate-limited per kind. Holds the per-kind limits (process-wide).
 */
#include "log_lws.h"

#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "log.h"

/* Distinct lws error and warning lines limited separately; more share the least recent slot. */
#define LWS_LIMIT_SLOTS 16
#define LWS_LIMIT_KEY 48

/* Per kind of lws line (its text with digits left out): its rate limit. Process-wide. */
static struct {
    char key[LWS_LIMIT_KEY];
    struct log_limit limit;
} lws_limits[LWS_LIMIT_SLOTS];

/* The limit for text's kind: "accept: errno 24" and "accept: errno 23" are one kind. */
static struct log_limit *lws_limit_of(const char *text)
{
    char key[LWS_LIMIT_KEY];
    size_t k = 0, i, slot = 0;

    for (const char *p = text; *p && k < sizeof key - 1; p++)
        if (*p < '0' || *p > '9')
            key[k++] = *p;
    key[k] = '\0';
    for (i = 0; i < LWS_LIMIT_SLOTS; i++) {
        if (!strcmp(lws_limits[i].key, key))
            return &lws_limits[i].limit;
        if (lws_limits[i].limit.last_ms < lws_limits[slot].limit.last_ms)
            slot = i;
    }
    memset(&lws_limits[slot], 0, sizeof lws_limits[slot]);
    memcpy(lws_limits[slot].key, key, k + 1);
    return &lws_limits[slot].limit;
}

void log_lws(int lws_level, const char *line)
{
    char text[1024], quoted[1100];
    size_t n;
    int level;

    if (lws_level & LLL_ERR)
        level = WSS_LOG_ERR;
    else if (lws_level & LLL_WARN)
        level = WSS_LOG_WARN;
    else if (lws_level & (LLL_NOTICE | LLL_USER))
        level = WSS_LOG_NOTICE;
    else if (lws_level & LLL_INFO)
        level = WSS_LOG_INFO;
    else
        level = WSS_LOG_DEBUG;
    /* lws warns this whenever a filter callback refuses an upgrade; the daemon has
     * already logged why (origin_refused, 404, 400), once, with the peer's address. */
    if (strstr(line, "User code denied connection"))
        level = WSS_LOG_DEBUG;
    if (!log_enabled(level))
        return;

    /* lws prefixes its own timestamp and ends with a newline; keep the text only. */
    snprintf(text, sizeof text, "%s", line);
    n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    /* A peer can make lws repeat an error at will (accept() failing with
     * EMFILE is retried at once, for ever): one line a second per kind. */
    if (level <= WSS_LOG_WARN)
        log_limited(lws_limit_of(text), level, "event=lws msg=%s",
                    log_quote(quoted, sizeof quoted, text));
    else
        log_emit(level, "event=lws msg=%s", log_quote(quoted, sizeof quoted, text));
}
