/* batch_oracle.h - the reference verdict for batch_check_records, shared
 * by the unit test and the batch fuzzer: the records walked one by one with
 * batch_iter. */
#ifndef CHRONIK_TEST_BATCH_ORACLE_H
#define CHRONIK_TEST_BATCH_ORACLE_H

#include "base/util.h"
#include "proto/batch.h"

/* The verdict of walking the records with batch_iter (the reference). */
static inline enum batch_err iter_verdict(const uint8_t *p, const batch_info_t *b)
{
    batch_iter_t it;
    batch_record_t rec;
    int32_t n = 0;
    CK_ASSERT(batch_iter_init(&it, p, b->size));
    while (batch_iter_next(&it, &rec)) {
        if (rec.offset_delta != n)
            return BATCH_ERR_OFFSET_DELTA;
        n++;
    }
    if (it.failed)
        return BATCH_ERR_RECORD;
    return n != b->records_count || rd_left(&it.r) != 0 ? BATCH_ERR_COUNT : BATCH_OK;
}

#endif
