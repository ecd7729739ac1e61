/* fuzz_batch.c - libFuzzer target: batch_validate and friends on arbitrary
 * bytes. Valid uncompressed batches are rebuilt from their records with the
 * builder and must decode to the same records. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "proto/batch.h"
#include "../unit/batch_oracle.h"

#define FUZZ_MAX_BATCHES 16

/* Rebuilds an uncompressed batch from its records and compares them. */
static void round_trip(const batch_info_t *info)
{
    batch_iter_t a, b;
    batch_record_t ra, rb;
    buf_t out;
    if (!batch_iter_init(&a, info->data, info->size))
        return;
    buf_init(&out);
    batch_builder_t bb;
    batch_build_begin(&bb, &out, info->base_offset, (int16_t)(info->attributes & ~BATCH_ATTR_CODEC_MASK),
                      info->base_timestamp, info->producer_id, info->producer_epoch, info->base_sequence);
    while (batch_iter_next(&a, &ra))
        batch_build_add(&bb, ra.timestamp, ra.key, ra.key_len, ra.value, ra.value_len, NULL, 0);
    CK_ASSERT(!a.failed);
    batch_build_end(&bb);
    batch_info_t again;
    CK_ASSERT(batch_check(out.data, out.len, &again) == BATCH_OK);
    CK_ASSERT(again.records_count == info->records_count);
    CK_ASSERT(batch_iter_init(&a, info->data, info->size) && batch_iter_init(&b, out.data, out.len));
    while (batch_iter_next(&a, &ra)) {
        CK_ASSERT(batch_iter_next(&b, &rb));
        CK_ASSERT(ra.offset == rb.offset && ra.timestamp == rb.timestamp);
        CK_ASSERT(ra.key_len == rb.key_len && ra.value_len == rb.value_len);
        CK_ASSERT(ra.key_len <= 0 || memcmp(ra.key, rb.key, (size_t)ra.key_len) == 0);
        CK_ASSERT(ra.value_len <= 0 || memcmp(ra.value, rb.value, (size_t)ra.value_len) == 0);
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy so the patch helpers may write */
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    batch_info_t head;
    if (batch_parse_header(p, size, &head) == BATCH_OK && head.codec == BATCH_CODEC_NONE)
        CK_ASSERT(batch_check_records(p, &head) == iter_verdict(p, &head));
    batch_info_t infos[FUZZ_MAX_BATCHES];
    batch_summary_t sum;
    size_t pos;
    enum batch_err e = batch_validate(p, size, NULL, infos, FUZZ_MAX_BATCHES, &sum, &pos);
    CK_ASSERT(pos <= size);
    CK_ASSERT(batch_strerror(e) != NULL);
    if (e == BATCH_OK) {
        CK_ASSERT(sum.bytes == size);
        for (int i = 0; i < sum.batches; i++) {
            uint8_t *b = (uint8_t *)infos[i].data;
            round_trip(&infos[i]);
            batch_set_base_offset(b, 12345); /* what the leader does */
            batch_set_leader_epoch(b, 9);
            CK_ASSERT(batch_crc_ok(b, infos[i].size));
            CK_ASSERT(batch_check_stored(b, infos[i].size, &infos[i]) == BATCH_OK);
        }
    }
    batch_info_t one;
    if (batch_parse_header(p, size, &one) == BATCH_OK) {
        CK_ASSERT(one.size <= size);
        batch_iter_t it;
        batch_record_t r;
        if (batch_iter_init(&it, p, one.size))
            while (batch_iter_next(&it, &r))
                CK_ASSERT(r.key_len < 0 || r.key + r.key_len <= p + one.size);
    }
    free(p);
    return 0;
}
