/* scan.c - reading a whole partition log batch by batch, for the
 * coordinators that rebuild their state from an internal topic
 * (replica.h). */
#include "replica/replica.h"

int partition_scan(partition *p, size_t chunk_bytes, partition_batch_fn fn, void *arg, int64_t *at)
{
    int64_t off = plog_log_start_offset(p->log), end = plog_log_end_offset(p->log);
    int rc = STORAGE_OK;
    buf_t b;
    buf_init(&b);
    while (off < end) {
        buf_reset(&b);
        int64_t next = off;
        rc = plog_read_copy(p->log, off, INT64_MAX, chunk_bytes, &b, &next);
        if (rc != STORAGE_OK) {
            *at = off;
            break;
        }
        for (size_t pos = 0; pos + BATCH_LOG_OVERHEAD <= b.len;) {
            batch_info_t bi;
            if (batch_parse_header(b.data + pos, b.len - pos, &bi) != BATCH_ERR_OK)
                break;
            fn(arg, &bi, b.data + pos);
            pos += bi.size;
        }
        if (next <= off)
            break;
        off = next;
    }
    buf_free(&b);
    return rc;
}
