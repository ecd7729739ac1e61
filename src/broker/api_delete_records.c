/* api_delete_records.c - DeleteRecords (key 21) v0-v2: raise partitions'
 * log start offsets. Offset -1 means the high watermark; an offset past the
 * high watermark (or any other negative one) is OFFSET_OUT_OF_RANGE; one
 * below the current start changes nothing. The answer's LowWatermark is the
 * log start offset afterwards (-1 with an error). Segments entirely below it go at the next
 * retention pass; reads below it fail with OFFSET_OUT_OF_RANGE at once.
 * With one replica there is no follower to wait for, so the answer is
 * immediate. */
#include <string.h>

#include "broker/broker_int.h"

enum { DELETE_TO_HIGH_WATERMARK = -1 };

static int16_t delete_one(partition *p, int64_t offset, int64_t *low)
{
    int64_t hw = atomic_load(&p->high_watermark);
    if (offset == DELETE_TO_HIGH_WATERMARK)
        offset = hw;
    if (offset < 0 || offset > hw)
        return KERR_OFFSET_OUT_OF_RANGE;
    int rc = plog_delete_records(p->log, offset);
    if (rc == STORAGE_ERR_OUT_OF_RANGE)
        return KERR_OFFSET_OUT_OF_RANGE;
    if (rc != STORAGE_OK)
        return KERR_KAFKA_STORAGE_ERROR;
    *low = plog_log_start_offset(p->log);
    return KERR_NONE;
}

static void delete_topic(breq *r, const meta_image *img,
                         const DeleteRecordsRequest_DeleteRecordsTopic *t,
                         DeleteRecordsResponse_DeleteRecordsTopicResult *to)
{
    int32_t np = MAX(t->Partitions.count, 0);
    to->Name = t->Name;
    to->Partitions.count = np;
    to->Partitions.items =
        breq_items(r, &DeleteRecordsResponse_DeleteRecordsPartitionResult_desc, np);
    const meta_topic *mt =
        t->Name.len > 0 ? meta_image_topic(img, t->Name.ptr, (size_t)t->Name.len) : NULL;
    for (int32_t j = 0; j < np; j++) {
        const DeleteRecordsRequest_DeleteRecordsPartition *pin = &t->Partitions.items[j];
        DeleteRecordsResponse_DeleteRecordsPartitionResult *out = &to->Partitions.items[j];
        out->PartitionIndex = pin->PartitionIndex;
        out->LowWatermark = -1;
        partition *p =
            mt ? replica_get(r->b->replicas, mt->name, strlen(mt->name), pin->PartitionIndex)
               : NULL;
        if (!p) {
            out->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        out->ErrorCode = delete_one(p, pin->Offset, &out->LowWatermark);
        partition_put(p);
    }
}

breq_rc api_delete_records(breq *r)
{
    const DeleteRecordsRequest *req = r->req;
    DeleteRecordsResponse *resp = r->resp;
    int32_t nt = MAX(req->Topics.count, 0);
    resp->Topics.count = nt;
    resp->Topics.items = breq_items(r, &DeleteRecordsResponse_DeleteRecordsTopicResult_desc, nt);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < nt; i++)
        delete_topic(r, img, &req->Topics.items[i], &resp->Topics.items[i]);
    meta_image_release(img);
    return BREQ_DONE;
}
