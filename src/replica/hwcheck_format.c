/* hwcheck_format.c - parsing replication-offset-checkpoint (the format is
 * described in hwcheck.c); pure, so the fuzzer can drive it alone. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "replica/hwcheck_format.h"

static size_t hw_key(char *key, size_t cap, const char *topic, int32_t index)
{
    size_t len = strlen(topic);
    if (len + 1 + sizeof index > cap)
        return 0;
    memcpy(key, topic, len);
    key[len] = 0;
    memcpy(key + len + 1, &index, sizeof index);
    return len + 1 + sizeof index;
}

/* Parses one "<topic> <partition> <offset>" line into map. */
static bool parse_line(char *line, hmap *map)
{
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line)
        return false;
    *sp1 = 0;
    char *end;
    long part = strtol(sp1 + 1, &end, 10);
    if (end != sp2 || part < 0 || part > INT32_MAX)
        return false;
    long long off = strtoll(sp2 + 1, &end, 10);
    if (*end != 0 || off < 0 || end == sp2 + 1)
        return false;
    char key[HWCHECK_TOPIC_MAX + 16];
    size_t kl = hw_key(key, sizeof key, line, (int32_t)part);
    if (!kl)
        return false;
    int64_t *v = xmalloc(sizeof *v);
    *v = off;
    free(hmap_put(map, key, kl, v));
    return true;
}

bool hwcheck_parse(char *text, hmap *map)
{
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    if (!line || strcmp(line, "0") != 0)
        return false;
    line = strtok_r(NULL, "\n", &save);
    char *end;
    long n = line ? strtol(line, &end, 10) : -1;
    if (!line || *end != 0 || n < 0)
        return false;
    long seen = 0;
    while ((line = strtok_r(NULL, "\n", &save))) {
        if (!parse_line(line, map))
            return false;
        seen++;
    }
    return seen == n;
}

void hwcheck_free(hmap *map)
{
    size_t it = 0;
    void *v;
    while (hmap_next(map, &it, NULL, NULL, &v))
        free(v);
    hmap_free(map);
}

bool hwcheck_get(const hmap *map, const char *topic, int32_t index, int64_t *hw)
{
    char key[HWCHECK_TOPIC_MAX + 16];
    size_t kl = hw_key(key, sizeof key, topic, index);
    int64_t *v = kl ? hmap_get((hmap *)map, key, kl) : NULL;
    if (v)
        *hw = *v;
    return v != NULL;
}

