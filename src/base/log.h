/*
 * log.h - one line per event on stderr:
 *   2026-11-26T04:20:01.123Z INFO net listening addr=127.0.0.1:9092
 * i.e. `time level component message key=value ...`. The message and the
 * key=value pairs are the caller's format string. Thread-safe (one write(2)
 * per line).
 */
#ifndef CHRONIK_BASE_LOG_H
#define CHRONIK_BASE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_write(enum log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(comp, ...) log_write(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...) log_write(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_write(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_write(LOG_ERROR, comp, __VA_ARGS__)

#endif
