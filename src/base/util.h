/*
 * util.h - assertions, allocation, clocks, small helpers used everywhere.
 *
 * Programmer errors abort through CK_ASSERT (always on, with context);
 * operating errors are returned as values. xmalloc and friends abort on
 * out-of-memory: a broker that cannot allocate a few bytes cannot keep any
 * promise, so it stops loudly instead of limping.
 */
#ifndef CHRONIK_BASE_UTIL_H
#define CHRONIK_BASE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CHRONIK_VERSION "0.1.0"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define UNUSED(x) ((void)(x))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

_Noreturn void ck_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CK_ASSERT(cond)                                                        \
    do {                                                                       \
        if (UNLIKELY(!(cond)))                                                 \
            ck_panic(__FILE__, __LINE__, "assertion failed: %s", #cond);       \
    } while (0)
#define CK_PANIC(...) ck_panic(__FILE__, __LINE__, __VA_ARGS__)

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Clocks. mono: CLOCK_MONOTONIC; wall: CLOCK_REALTIME (Kafka timestamps). */
int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);
/* The CLOCK_REALTIME instant ms from now, for pthread_cond_timedwait. */
struct timespec clock_abstime_after_ms(int64_t ms);
int64_t clock_wall_ms(void);

#endif
