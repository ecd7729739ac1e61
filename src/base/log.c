/* log.c - one line per event on stderr, and rate-limited repeats (log.h). */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

static _Atomic int g_level = LOG_INFO;
static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(enum log_level lvl) { atomic_store(&g_level, (int)lvl); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&g_level); }

static bool level_on(enum log_level lvl) { return (int)lvl >= atomic_load(&g_level); }

/* Format one line (prefix, message, optional suffix) and write it at once. */
static void log_vwrite(enum log_level lvl, const char *component, const char *suffix, const char *fmt,
                       va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[lvl], component);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    if (suffix != NULL) {
        int k = snprintf(line + len, sizeof line - len - 1, "%s", suffix);
        len = MIN(len + (size_t)(k < 0 ? 0 : k), sizeof line - 2);
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_write(enum log_level lvl, const char *component, const char *fmt, ...)
{
    if (!level_on(lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, component, NULL, fmt, ap);
    va_end(ap);
}

bool log_ratelimit_allow(log_ratelimit *rl, int64_t now_ms, uint64_t *suppressed)
{
    int64_t next = atomic_load_explicit(&rl->next_ms, memory_order_relaxed);
    if (now_ms < next ||
        !atomic_compare_exchange_strong(&rl->next_ms, &next, now_ms + MAX(rl->interval_ms, 1))) {
        atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
        return false;
    }
    *suppressed = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
    return true;
}

void log_write_limited(log_ratelimit *rl, enum log_level lvl, const char *component, const char *fmt, ...)
{
    uint64_t suppressed;
    if (!level_on(lvl) || !log_ratelimit_allow(rl, clock_mono_ms(), &suppressed))
        return;
    char suffix[40] = "";
    if (suppressed > 0)
        snprintf(suffix, sizeof suffix, " suppressed=%llu", (unsigned long long)suppressed);
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, component, suffix, fmt, ap);
    va_end(ap);
}
