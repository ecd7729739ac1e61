/* api_delete_records.c - DeleteRecords (key 21) v0-v2: raise partitions'
 * log start offsets. Offset -1 means the high watermark; an offset past the
 * high watermark (or any other negative one) is OFFSET_OUT_OF_RANGE; one
 * below the current start changes nothing. The answer's LowWatermark is the
 * log start offset afterwards (-1 with an error). Reads below it fail with
 * OFFSET_OUT_OF_RANGE at once; the answer waits until the new start is
 * durable (a flusher round writes the checkpoint; the reactor does no
 * I/O). Segments entirely below it go at the next retention pass. A topic
 * needs DELETE (else its partitions TOPIC_AUTHORIZATION_FAILED). */
#include <string.h>

#include "broker/broker_int.h"

enum { DELETE_TO_HIGH_WATERMARK = -1 };

typedef struct del_ctx {
    breq *r;
    _Atomic int pending; /* partitions not yet durable, plus the handler */
} del_ctx;

typedef struct del_wait {
    del_ctx *dc;
    DeleteRecordsResponse_DeleteRecordsPartitionResult *out;
} del_wait;

static void del_release(del_ctx *dc)
{
    if (atomic_fetch_sub(&dc->pending, 1) == 1)
        breq_finish(dc->r);
}

static void del_durable(void *arg, int16_t err)
{
    del_wait *w = arg;
    if (err != KERR_NONE) {
        w->out->ErrorCode = err;
        w->out->LowWatermark = -1;
    }
    del_release(w->dc);
}

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

static void delete_topic(breq *r, del_ctx *dc, const meta_image *img,
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
    int16_t denied = broker_topic_denied(r, img, ACL_OP_DELETE, t->Name);
    for (int32_t j = 0; j < np; j++) {
        const DeleteRecordsRequest_DeleteRecordsPartition *pin = &t->Partitions.items[j];
        DeleteRecordsResponse_DeleteRecordsPartitionResult *out = &to->Partitions.items[j];
        out->PartitionIndex = pin->PartitionIndex;
        out->LowWatermark = -1;
        if ((out->ErrorCode = denied) != KERR_NONE)
            continue;
        partition *p = broker_leader_partition(r->b, mt, pin->PartitionIndex, -1, &out->ErrorCode);
        if (!p)
            continue;
        out->ErrorCode = delete_one(p, pin->Offset, &out->LowWatermark);
        if (out->ErrorCode == KERR_NONE) {
            del_wait *w = arena_alloc(&r->arena, sizeof *w);
            *w = (del_wait){dc, out};
            atomic_fetch_add(&dc->pending, 1);
            partition_sync(p, del_durable, w);
        }
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
    del_ctx *dc = arena_alloc(&r->arena, sizeof *dc);
    dc->r = r;
    atomic_init(&dc->pending, 1);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < nt; i++)
        delete_topic(r, dc, img, &req->Topics.items[i], &resp->Topics.items[i]);
    meta_image_release(img);
    if (atomic_fetch_sub(&dc->pending, 1) == 1)
        return BREQ_DONE; /* nothing to wait for */
    return BREQ_PARKED;
}
