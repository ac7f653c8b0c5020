/*
 * The one log sink: logfmt lines on stderr ("level=info event=... key=...").
 * lws's own log output is routed here by log_lws.h. The level is process-wide.
 */
#ifndef WSSIGND_LOG_H
#define WSSIGND_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include <wssignd/log.h> /* enum wss_log_level, wss_log */

#include "util.h" /* util_now_ms, for log_limited */

/* Sets the level below which lines are dropped (WSS_LOG_ERR..WSS_LOG_DEBUG). */
void log_set_level(int level);

/* Whether lines start with "ts=<RFC 3339 UTC time>": auto (only when stderr
 * is not the journal, which stamps lines itself), always or never. */
enum log_timestamps { LOG_TIMESTAMPS_AUTO = 0, LOG_TIMESTAMPS_ON, LOG_TIMESTAMPS_OFF };

/* Parses "auto", "on" or "off". Returns the mode, or -1. */
int log_timestamps_parse(const char *name);
/* The name of a mode ("auto"); "unknown" if out of range. */
const char *log_timestamps_name(int mode);
void log_set_timestamps(enum log_timestamps mode);
int log_get_level(void);

/* Parses "err", "warn", "notice", "info" or "debug". Returns the level, or -1. */
int log_level_parse(const char *name);
/* The name of a level ("info"); "unknown" if out of range. */
const char *log_level_name(int level);

/* True if a line at level would be written; the macros below check it
 * before formatting anything. */
bool log_enabled(int level);

/* Formats one line: "level=<name> " followed by fmt, then a newline. */
void log_emit(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)                            \
    do {                                        \
        if (log_enabled(WSS_LOG_ERR))           \
            log_emit(WSS_LOG_ERR, __VA_ARGS__); \
    } while (0)
#define log_warn(...)                            \
    do {                                         \
        if (log_enabled(WSS_LOG_WARN))           \
            log_emit(WSS_LOG_WARN, __VA_ARGS__); \
    } while (0)
#define log_notice(...)                            \
    do {                                           \
        if (log_enabled(WSS_LOG_NOTICE))           \
            log_emit(WSS_LOG_NOTICE, __VA_ARGS__); \
    } while (0)
#define log_info(...)                            \
    do {                                         \
        if (log_enabled(WSS_LOG_INFO))           \
            log_emit(WSS_LOG_INFO, __VA_ARGS__); \
    } while (0)
#define log_debug(...)                            \
    do {                                          \
        if (log_enabled(WSS_LOG_DEBUG))           \
            log_emit(WSS_LOG_DEBUG, __VA_ARGS__); \
    } while (0)

/*
 * Per call site: a line that a peer can trigger at will (an unknown answer, a
 * refused connection, a failed token) is written at most once per
 * LOG_LIMIT_INTERVAL_MS; the next line written carries "suppressed=N", the
 * lines dropped since the last one. Zero-initialise; owned by whoever owns
 * the call site (a per-daemon struct, or static for process-wide lines).
 */
struct log_limit {
    uint64_t last_ms; /* when the last line was written; 0: never */
    unsigned long long suppressed;
};

#define LOG_LIMIT_INTERVAL_MS 1000

/* True if a line may be written at now_ms; *suppressed then receives the
 * number of lines dropped since the last one written (and the count restarts).
 * False counts one more suppressed line. */
bool log_limit_allow(struct log_limit *l, uint64_t now_ms, unsigned long long *suppressed);

/* Writes fmt with " suppressed=N" appended, within the limit l; fmt must be a
 * string literal followed by at least one argument. */
#define log_limited(l, level, fmt, ...)                                           \
    do {                                                                          \
        unsigned long long log_sup_;                                              \
        if (log_enabled(level) && log_limit_allow((l), util_now_ms(), &log_sup_)) \
            log_emit(level, fmt " suppressed=%llu", __VA_ARGS__, log_sup_);       \
    } while (0)

/*
 * Writes s as a logfmt value into out: bare if it has only safe characters,
 * otherwise double-quoted with \" \\ and non-printables escaped. Truncates
 * to fit outlen. Returns out. For peer-supplied short strings (hosts,
 * addresses, reasons); never for message bodies.
 */
char *log_quote(char *out, size_t outlen, const char *s);

#endif
