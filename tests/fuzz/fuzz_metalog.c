/* fuzz_metalog.c - libFuzzer target: arbitrary bytes as record batches of the
 * metadata log, replayed into an empty image (metalog.c). Must never crash
 * or leak; a replay either applies every record or stops with a reason. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = true;
    }
    meta_image *img = meta_image_new();
    char err[512] = "";
    int rc = meta_log_replay_bytes(data, size, img, err, sizeof err);
    CK_ASSERT(rc == 0 || err[0] != 0); /* a stop always says why */
    meta_image_release(img);
    return 0;
}
