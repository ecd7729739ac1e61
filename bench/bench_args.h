/* bench_args.h - command-line number parsing shared by the benchmark programs. */
#ifndef CHRONIK_BENCH_ARGS_H
#define CHRONIK_BENCH_ARGS_H

#include <errno.h>
#include <stdlib.h>

/* The whole of s as a decimal number in [lo, hi] into *out: 0, or -1
 * (nothing written) when it is not one. */
static inline int bench_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

#endif
