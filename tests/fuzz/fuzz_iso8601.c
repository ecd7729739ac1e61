/* fuzz_iso8601.c - libFuzzer target: cli_parse_iso8601 on arbitrary bytes.
 * An accepted time is printed back in the canonical form (UTC, "Z",
 * milliseconds) and must parse to the same instant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/cli_time.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[64];
    if (size >= sizeof s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    int64_t ms;
    if (!cli_parse_iso8601(s, &ms))
        return 0;
    CK_ASSERT(ms >= 0);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    CK_ASSERT(gmtime_r(&secs, &tm) != NULL);
    char again[64];
    snprintf(again, sizeof again, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    int64_t back;
    if (tm.tm_year + 1900 <= 9999) {
        CK_ASSERT(cli_parse_iso8601(again, &back));
        CK_ASSERT(back == ms);
    }
    return 0;
}
