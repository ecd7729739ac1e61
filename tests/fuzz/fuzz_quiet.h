/* fuzz_quiet.h - for the fuzz targets: errors only in the log, from the
 * first input on (a target's refusals are expected, not news). */
#ifndef CHRONIK_FUZZ_QUIET_H
#define CHRONIK_FUZZ_QUIET_H

#include <stdbool.h>

#include "base/log.h"

static inline void fuzz_quiet(void)
{
    static bool quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = true;
    }
}

#endif
