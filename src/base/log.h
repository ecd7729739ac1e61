/*
 * log.h - one line per event on stderr:
 *   2026-11-26T04:20:01.123Z INFO net listening addr=127.0.0.1:9092
 * i.e. `time level component message key=value ...`. The message and the
 * key=value pairs are the caller's format string. Thread-safe (one write(2)
 * per line).
 *
 * Repeated warnings (a failing accept, a flood of bad clients) go through a
 * log_ratelimit: at most one line per interval, and the line that ends a
 * quiet spell says how many were suppressed before it (`suppressed=N`).
 */
#ifndef CHRONIK_BASE_LOG_H
#define CHRONIK_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_write(enum log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One limiter per call site (static, zero-initialised but for interval_ms).
 * Thread-safe: lock-free on atomics. */
typedef struct log_ratelimit {
    int64_t interval_ms;
    _Atomic int64_t next_ms;            /* first time a line may go out again */
    _Atomic uint64_t suppressed;        /* lines dropped since the last one */
} log_ratelimit;

#define LOG_RATELIMIT_INIT(ms) {(ms), 0, 0}
#define LOG_RATELIMIT_DEFAULT_MS 10000

/* May a line go out at now_ms? If so, *suppressed gets (and the limiter
 * forgets) the number of lines refused since the previous one; if not, the
 * refusal is counted. */
bool log_ratelimit_allow(log_ratelimit *rl, int64_t now_ms, uint64_t *suppressed);

/* log_write through rl: appends " suppressed=N" when N > 0. */
void log_write_limited(log_ratelimit *rl, enum log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(comp, ...) log_write(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...) log_write(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_write(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_write(LOG_ERROR, comp, __VA_ARGS__)
#define log_warn_limited(rl, comp, ...) log_write_limited(rl, LOG_WARN, comp, __VA_ARGS__)
#define log_info_limited(rl, comp, ...) log_write_limited(rl, LOG_INFO, comp, __VA_ARGS__)

#endif
