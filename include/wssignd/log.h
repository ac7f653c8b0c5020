/*
 * Logging for controllers: the daemon's one log sink and its levels.
 *
 * Lines are logfmt ("level=info event=... key=value") on stderr, or syslog
 * when configured. Each level includes the ones above it; the daemon's
 * configured level (log_level, --log-level) decides which lines are written.
 */
#ifndef WSSIGND_LOG_PUBLIC_H
#define WSSIGND_LOG_PUBLIC_H

/* Log levels, most severe first; the same as the daemon's own. */
enum wss_log_level {
    WSS_LOG_ERR = 0,    /* the daemon or a controller cannot go on as configured */
    WSS_LOG_WARN = 1,   /* something is wrong but handled (a failed token, a refused reload) */
    WSS_LOG_NOTICE = 2, /* events an operator wants by default (start, stop, sign outcomes) */
    WSS_LOG_INFO = 3,   /* per-connection and per-request events */
    WSS_LOG_DEBUG = 4,  /* detail for a developer */
};

/*
 * Writes one logfmt line at level through the daemon's log sink; nothing
 * when level is below the configured one (the arguments are then still
 * evaluated, but nothing is formatted). fmt should produce key=value pairs
 * ("event=http_request path=/v1/sign"), lowercase, without a trailing
 * newline. Never pass a message body, a signature or a secret. Loop thread
 * only; never fails.
 */
void wss_log(enum wss_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
