/* hwcheck_format.h - the high watermark checkpoint's text format (hwcheck.c). */
#ifndef CHRONIK_REPLICA_HWCHECK_FORMAT_H
#define CHRONIK_REPLICA_HWCHECK_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/hmap.h"

#define HWCHECK_FILE "replication-offset-checkpoint"
#define HWCHECK_TOPIC_MAX 255

/* Parses the whole file (text is modified) into map (topic\0index ->
 * int64_t*, malloc'ed). False when any part is malformed: map may then hold
 * some entries; free it with hwcheck_free. */
bool hwcheck_parse(char *text, hmap *map);
bool hwcheck_get(const hmap *map, const char *topic, int32_t index, int64_t *hw);
/* Frees the entries and the map. */
void hwcheck_free(hmap *map);

#endif
