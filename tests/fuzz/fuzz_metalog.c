/* fuzz_metalog.c - libFuzzer target: arbitrary bytes as a committed entry of
 * the metadata log (metalog.c), applied to an empty image. Byte 0 picks the
 * entry's epoch (even: 0, an adopted single record; odd: 1, a round); the
 * rest is the entry. Must never crash or leak; applying either succeeds or
 * stops with a reason. */
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"

#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size < 1)
        return 0;
    meta_image *img = meta_image_new();
    char err[512] = "";
    int rc = meta_log_apply_entry(img, 7, data[0] & 1, data + 1, size - 1, err, sizeof err);
    CK_ASSERT(rc == 0 || err[0] != 0); /* a stop always says why */
    CK_ASSERT(rc != 0 || img->offset == 8);
    meta_image_release(img);
    return 0;
}
