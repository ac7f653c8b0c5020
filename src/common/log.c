/*
 * The log sink: one logfmt line per event on stderr (lws's own lines come
 * through log_lws.c). Holds only the process-wide level. No lws here.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int current_level = WSS_LOG_INFO;
/* 1 when stderr is the journal's stream: lines then carry a syslog priority. */
static int to_journal = -1;
static enum log_timestamps timestamps = LOG_TIMESTAMPS_AUTO;

static const char *const names[] = {"err", "warn", "notice", "info", "debug"};

void log_set_level(int level)
{
    if (level >= WSS_LOG_ERR && level <= WSS_LOG_DEBUG)
        current_level = level;
}

int log_get_level(void)
{
    return current_level;
}

int log_level_parse(const char *name)
{
    for (int i = 0; i <= WSS_LOG_DEBUG; i++)
        if (name && !strcmp(name, names[i]))
            return i;
    return -1;
}

const char *log_level_name(int level)
{
    if (level < WSS_LOG_ERR || level > WSS_LOG_DEBUG)
        return "unknown";
    return names[level];
}

static const char *const timestamp_modes[] = {"auto", "on", "off"};

int log_timestamps_parse(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, timestamp_modes[i]))
            return i;
    return -1;
}

const char *log_timestamps_name(int mode)
{
    return mode >= 0 && mode < 3 ? timestamp_modes[mode] : "unknown";
}

void log_set_timestamps(enum log_timestamps mode)
{
    timestamps = mode;
}

/* Writes "ts=YYYY-MM-DDTHH:MM:SS.mmmZ " (RFC 3339, UTC, milliseconds) into out. */
static int put_timestamp(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return snprintf(out, len, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000);
}

bool log_enabled(int level)
{
    return level <= current_level;
}

/*
 * systemd sets JOURNAL_STREAM to "<dev>:<inode>" of the stream it gave us;
 * it only applies while stderr is still that stream.
 */
static bool stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    return env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
           (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void vemit(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void vemit(int level, const char *fmt, va_list ap)
{
    /* syslog priorities: err 3, warning 4, notice 5, info 6, debug 7 */
    static const int priority[] = {3, 4, 5, 6, 7};
    char line[2048];
    int n;

    if (level < WSS_LOG_ERR || level > WSS_LOG_DEBUG)
        level = level < WSS_LOG_ERR ? WSS_LOG_ERR : WSS_LOG_DEBUG;
    if (to_journal < 0)
        to_journal = stderr_is_journal();
    /* The journal reads the priority from the very start of the line, and stamps each
     * line itself; anywhere else the line carries its time. */
    n = to_journal ? snprintf(line, sizeof line, "<%d>", priority[level]) : 0;
    if (timestamps == LOG_TIMESTAMPS_ON || (timestamps == LOG_TIMESTAMPS_AUTO && !to_journal))
        n += put_timestamp(line + n, sizeof line - (size_t)n);
    n += snprintf(line + n, sizeof line - (size_t)n, "level=%s ", log_level_name(level));
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* One write per line so concurrent writers to the journal do not interleave. */
    fprintf(stderr, "%s\n", line);
}

void log_emit(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vemit(level, fmt, ap);
    va_end(ap);
}

void wss_log(enum wss_log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vemit(level, fmt, ap);
    va_end(ap);
}

bool log_limit_allow(struct log_limit *l, uint64_t now_ms, unsigned long long *suppressed)
{
    if (l->last_ms && now_ms < l->last_ms + LOG_LIMIT_INTERVAL_MS) {
        l->suppressed++;
        return false;
    }
    /* now_ms 0 would read as "never written": the next call must still be limited. */
    l->last_ms = now_ms ? now_ms : 1;
    *suppressed = l->suppressed;
    l->suppressed = 0;
    return true;
}

char *log_quote(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    bool bare = *s != '\0';

    for (const char *p = s; *p && bare; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p >= 0x7f)
            bare = false;
    if (bare) {
        snprintf(out, outlen, "%s", s);
        return out;
    }
    if (outlen < 3) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t n;

        if (*p == '"' || *p == '\\')
            n = (size_t)snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p < ' ' || *p >= 0x7f)
            n = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
        else
            n = (size_t)snprintf(esc, sizeof esc, "%c", *p);
        if (o + n + 2 > outlen)
            break;
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
