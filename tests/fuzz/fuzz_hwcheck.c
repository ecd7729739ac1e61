/* fuzz_hwcheck.c - libFuzzer target: arbitrary bytes as a
 * replication-offset-checkpoint file (hwcheck_format.c). Must never crash
 * or leak; a file that parses gives entries that read back. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "replica/hwcheck_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    hmap map;
    hmap_init(&map);
    if (hwcheck_parse(text, &map)) {
        int64_t hw;
        CK_ASSERT(!hwcheck_get(&map, "", 0, &hw)); /* empty topic names never parse */
    }
    hwcheck_free(&map);
    free(text);
    return 0;
}
