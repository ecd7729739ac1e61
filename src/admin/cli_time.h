/*
 * cli_time.h - the ISO 8601 times the CLI accepts (group reset-offsets
 * --to-datetime).
 */
#ifndef CHRONIK_ADMIN_CLI_TIME_H
#define CHRONIK_ADMIN_CLI_TIME_H

#include <stdbool.h>
#include <stdint.h>

/* "YYYY-MM-DDTHH:MM:SS" with an optional fraction (".m" to ".mmmmmmmmm",
 * kept to the millisecond) and an optional zone ("Z", "+HH:MM", "-HH:MM",
 * "+HHMM"); no zone means UTC. A space may stand for the 'T'. Into
 * milliseconds since the epoch; false for anything else (trailing bytes,
 * a field out of range, a year outside 1970-9999). */
bool cli_parse_iso8601(const char *s, int64_t *ms);

#endif
