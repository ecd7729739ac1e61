/* api_list_offsets.c - ListOffsets (key 2) v1-v7: the earliest offset
 * (-2), the latest (-1, the high watermark; for read_committed, IsolationLevel
 * 1, the last stable offset), the offset of the largest timestamp (-3), or
 * the first offset whose timestamp is >= the one asked (none at or past
 * the visible end). */
#include <string.h>

#include "broker/broker_int.h"

enum { TS_LATEST = -1, TS_EARLIEST = -2, TS_MAX_TIMESTAMP = -3 };

static void lookup(partition *p, int64_t ts, bool committed, ListOffsetsResponse_ListOffsetsPartitionResponse *out)
{
    int64_t off = -1, found_ts = -1;
    int64_t visible = committed ? partition_last_stable_offset(p) : atomic_load(&p->high_watermark);
    out->LeaderEpoch = p->leader_epoch;
    if (ts == TS_EARLIEST) {
        off = plog_log_start_offset(p->log);
    } else if (ts == TS_LATEST) {
        off = visible;
    } else if (ts == TS_MAX_TIMESTAMP) {
        plog_max_timestamp(p->log, &found_ts, &off);
    } else if (ts >= 0) {
        if (plog_offset_for_timestamp(p->log, ts, &off, &found_ts) != STORAGE_OK)
            out->ErrorCode = KERR_KAFKA_STORAGE_ERROR;
        if (off >= visible)
            off = -1, found_ts = -1; /* not yet visible to consumers */
    } else {
        out->ErrorCode = KERR_INVALID_REQUEST;
    }
    out->Offset = off;
    out->Timestamp = found_ts;
}

breq_rc api_list_offsets(breq *r)
{
    const ListOffsetsRequest *req = r->req;
    ListOffsetsResponse *resp = r->resp;
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    resp->Topics.count = nt;
    resp->Topics.items = breq_items(r, &ListOffsetsResponse_ListOffsetsTopicResponse_desc, nt);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < nt; i++) {
        const ListOffsetsRequest_ListOffsetsTopic *t = &req->Topics.items[i];
        ListOffsetsResponse_ListOffsetsTopicResponse *to = &resp->Topics.items[i];
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        to->Name = t->Name;
        to->Partitions.count = np;
        to->Partitions.items = breq_items(r, &ListOffsetsResponse_ListOffsetsPartitionResponse_desc, np);
        const meta_topic *mt = t->Name.len > 0 ? meta_image_topic(img, t->Name.ptr, (size_t)t->Name.len) : NULL;
        int16_t denied = broker_topic_denied(r, img, ACL_OP_DESCRIBE, t->Name);
        for (int32_t j = 0; j < np; j++) {
            const ListOffsetsRequest_ListOffsetsPartition *pin = &t->Partitions.items[j];
            ListOffsetsResponse_ListOffsetsPartitionResponse *out = &to->Partitions.items[j];
            out->PartitionIndex = pin->PartitionIndex;
            if ((out->ErrorCode = denied) != KERR_NONE)
                continue;
            partition *p = broker_leader_partition(r->b, mt, pin->PartitionIndex, pin->CurrentLeaderEpoch,
                                                   &out->ErrorCode);
            if (!p)
                continue;
            lookup(p, pin->Timestamp, req->IsolationLevel == 1, out);
            partition_put(p);
        }
    }
    meta_image_release(img);
    return BREQ_DONE;
}
