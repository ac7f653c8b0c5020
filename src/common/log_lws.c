/*
 * lws's log lines, mapped onto the log sink's levels. Holds no state.
 */
#include "log_lws.h"

#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "log.h"

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
    if (!log_enabled(level))
        return;

    /* lws prefixes its own timestamp and ends with a newline; keep the text only. */
    snprintf(text, sizeof text, "%s", line);
    n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    log_emit(level, "event=lws msg=%s", log_quote(quoted, sizeof quoted, text));
}
