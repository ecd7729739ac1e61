/* fuzz_snapshot.c - libFuzzer target: arbitrary bytes as a metadata
 * snapshot payload (snapshot.c), loaded with the end offset its header
 * claims. Byte 0 picks the mode: even, the rest as it is (framing and CRC
 * checks); odd, the rest with its body length and CRC fixed up first, so
 * that mutations reach the records inside. Must never crash or leak; loading either succeeds or refuses with
 * a reason; an image it loads encodes again (unless its broker epochs cannot
 * be rebuilt, which encoding refuses) to a payload that loads back to the
 * same bytes: decode -> encode -> decode -> encode is stable. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/util.h"
#include "meta/meta_int.h"

#include "fuzz_quiet.h"

static void round_trip(const meta_image *img, int64_t end, int64_t created)
{
    buf_t a, b;
    buf_init(&a);
    buf_init(&b);
    char err[512] = "";
    if (meta_snapshot_encode(img, created, &a, err, sizeof err) == 0) {
        meta_image *again = NULL;
        CK_ASSERT(meta_snapshot_decode(a.data, a.len, end, &again, NULL, err, sizeof err) == 0);
        CK_ASSERT(meta_snapshot_encode(again, created, &b, err, sizeof err) == 0);
        CK_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        meta_image_release(again);
    } else {
        CK_ASSERT(err[0] != 0);
    }
    buf_free(&a);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size < 1)
        return 0;
    bool fix = data[0] & 1;
    size--;
    uint8_t *p = xmalloc(size + 1);
    memcpy(p, data + 1, size);
    if (fix && size >= 44) {
        be64_store(p + 32, size - 44);
        be32_store(p + size - 4, crc32c(0, p, size - 4));
    }
    int64_t end = size >= 24 ? (int64_t)be64_load(p + 16) : 1;
    if (end <= 0 || end > INT64_MAX / 2)
        end = 1;
    meta_image *img = NULL;
    int64_t created = 0;
    char err[512] = "";
    int rc = meta_snapshot_decode(p, size, end, &img, &created, err, sizeof err);
    CK_ASSERT(rc == 0 || (err[0] != 0 && img == NULL)); /* a refusal always says why */
    if (rc == 0) {
        CK_ASSERT(img->offset == end);
        round_trip(img, end, created);
        meta_image_release(img);
    }
    free(p);
    return 0;
}
