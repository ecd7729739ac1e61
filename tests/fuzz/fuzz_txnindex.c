/* fuzz_txnindex.c - libFuzzer target: arbitrary bytes as a segment's
 * .txnindex file (txnindex.c), read for a segment [base, end) that the
 * first 3 bytes choose (base = byte0 * 16, end = base + bytes 1-2 + 1).
 * Must never crash or leak; a file it accepts holds ordered entries inside
 * the segment, and encodes back to exactly the bytes it was read from. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "storage/storage.h"

#include "fuzz_quiet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    if (size < 3)
        return 0;
    int64_t base = (int64_t)data[0] * 16, end = base + ((int64_t)data[1] << 8 | data[2]) + 1;
    const uint8_t *p = data + 3;
    size_t n = size - 3;
    plog_aborted_txn_t *v = NULL;
    uint32_t k = 0;
    if (plog_txn_index_decode(p, n, base, end, &v, &k) != STORAGE_OK) {
        CK_ASSERT(v == NULL && k == 0);
        return 0;
    }
    CK_ASSERT((size_t)k * PLOG_TXN_ENTRY_BYTES == n);
    uint8_t e[PLOG_TXN_ENTRY_BYTES];
    for (uint32_t i = 0; i < k; i++) {
        CK_ASSERT(v[i].first_offset <= v[i].last_offset);
        CK_ASSERT(v[i].last_offset >= base && v[i].last_offset < end);
        CK_ASSERT(i == 0 || v[i - 1].last_offset < v[i].last_offset);
        plog_txn_entry_encode(&v[i], e);
        CK_ASSERT(memcmp(e, p + (size_t)i * PLOG_TXN_ENTRY_BYTES, sizeof e) == 0);
    }
    free(v);
    return 0;
}
