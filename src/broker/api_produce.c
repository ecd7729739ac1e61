/* api_produce.c - Produce (key 0) v0-v9: validate each partition's record
 * batches (magic 2, CRC-32C, counts), append them with broker-assigned
 * offsets and the leader epoch through the partition's one append path
 * (replica.h: leadership checked there), and acknowledge as acks asks:
 * 0 no response, 1 once durable on this leader (the group-committed fsync),
 * -1 once the high watermark passes the batch with the ISR at
 * min.insync.replicas or more.
 * Topics that do not exist are created first when auto-creation is on.
 *
 * Idempotent batches (producerId >= 0, KIP-98) come one per partition and
 * are checked against the partition's producer state (txn.h) under its
 * produce lock, together with the append and the state update: a retry of
 * one of the producer's last batches is answered with its original offset
 * once that is durable, and not appended again; a bad epoch or sequence is
 * refused with INVALID_PRODUCER_EPOCH or OUT_OF_ORDER_SEQUENCE_NUMBER.
 * A transactional batch (KIP-98) opens its producer's transaction in the
 * partition, which holds back the last stable offset until the
 * coordinator's marker (api_write_txn_markers.c) closes it. */
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"
#include "proto/batch.h"

typedef struct produce_ctx {
    breq *r;
    _Atomic int pending; /* partitions not yet acknowledged, plus the handler */
} produce_ctx;

typedef struct part_ack {
    produce_ctx *pc;
    ProduceResponse_PartitionProduceResponse *out;
} part_ack;

static void produce_release(produce_ctx *pc)
{
    if (atomic_fetch_sub(&pc->pending, 1) == 1)
        breq_finish(pc->r);
}

static void part_acked(void *arg, int16_t err)
{
    part_ack *a = arg;
    if (err != KERR_NONE) {
        /* e.g. deleted or moved before the write was acknowledged: the
         * client refreshes its metadata and retries */
        a->out->ErrorCode = err;
        if (err != KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND)
            a->out->BaseOffset = -1;
    }
    produce_release(a->pc);
}

/* The header of the payload's first batch; refuses idempotent batches that
 * do not come alone, and control batches from idempotent producers. */
static int16_t first_batch(kbytes_t recs, int32_t batches, batch_info_t *first, kstr_t *msg)
{
    size_t pos = 0;
    bool idempotent = false;
    for (int32_t i = 0; i < batches; i++) {
        batch_info_t bi;
        enum batch_err be = batch_parse_header(recs.ptr + pos, (size_t)recs.len - pos, &bi);
        CK_ASSERT(be == BATCH_ERR_OK); /* batch_validate accepted the payload */
        if (i == 0)
            *first = bi;
        idempotent |= bi.producer_id >= 0;
        pos += bi.size;
    }
    if (idempotent && batches != 1)
        *msg = kstr_from("an idempotent producer sends one record batch per partition");
    else if (idempotent && first->control)
        *msg = kstr_from("control batches are written by the broker only");
    else
        return KERR_NONE;
    return KERR_INVALID_RECORD;
}

/* Validates a partition's payload: batches, keys of a compacted topic, and
 * the idempotence rules; first gets the first batch's header. */
static int16_t check_records(breq *r, const meta_topic *t, kbytes_t recs, batch_summary_t *sum,
                             batch_info_t *first, ProduceResponse_PartitionProduceResponse *out)
{
    if (recs.len <= 0)
        return KERR_INVALID_RECORD;
    batch_limits_t lim = {.max_batch_bytes = (uint32_t)topic_config_long(&r->b->cfg, t, "max.message.bytes")};
    enum batch_err be = batch_validate(recs.ptr, (size_t)recs.len, &lim, NULL, 0, sum, NULL);
    if (be != BATCH_ERR_OK) {
        out->ErrorMessage = kstr_from(batch_strerror(be));
        return batch_err_kafka_code(be);
    }
    const char *policy = t ? meta_topic_config(t, "cleanup.policy") : NULL;
    enum plog_keys keys = policy && strstr(policy, "compact") ? plog_compact_check_keys(recs.ptr, (size_t)recs.len)
                                                               : PLOG_KEYS_OK;
    if (keys == PLOG_KEYS_MISSING) {
        out->ErrorMessage = kstr_from("a compacted topic needs a key on every record");
        return KERR_INVALID_RECORD;
    }
    if (keys == PLOG_KEYS_UNREADABLE) {
        out->ErrorMessage = kstr_from("the compressed records could not be read");
        return KERR_CORRUPT_MESSAGE;
    }
    return first_batch(recs, sum->batches, first, &out->ErrorMessage);
}

/* LogAppendTime topics: every batch of the payload gets the broker's clock
 * as its timestamp (attribute bit and maxTimestamp, CRC resealed), as
 * Kafka does; consumers then read that time for each record. Returns the
 * time given, or -1 for CreateTime topics. */
static int64_t stamp_append_time(breq *r, const meta_topic *t, kbytes_t recs, int32_t batches)
{
    if (!topic_config_log_append_time(&r->b->cfg, t))
        return -1;
    int64_t now_ms = clock_wall_ms();
    size_t pos = 0;
    for (int32_t i = 0; i < batches; i++) {
        batch_info_t bi;
        enum batch_err be = batch_parse_header(recs.ptr + pos, (size_t)recs.len - pos, &bi);
        CK_ASSERT(be == BATCH_ERR_OK); /* batch_validate accepted the payload */
        batch_set_log_append_time((uint8_t *)recs.ptr + pos, bi.size, now_ms);
        pos += bi.size;
    }
    return now_ms;
}

/* The storage error behind a failed append, as Produce reports it. */
static int16_t append_error(partition *p, const partition_append_res *res, ProduceResponse_PartitionProduceResponse *out)
{
    int rc = res->storage_rc;
    if (res->msg)
        out->ErrorMessage = kstr_from(res->msg);
    if (rc == STORAGE_OK || rc == STORAGE_ERR_DELETED)
        return res->err;
    if (rc == STORAGE_ERR_TOO_LARGE) {
        /* Larger than segment.bytes: final, as in Kafka (a retry cannot fit). */
        out->ErrorMessage = kstr_from("record batch larger than the topic's segment.bytes");
        return KERR_RECORD_LIST_TOO_LARGE;
    }
    if (rc != STORAGE_ERR_NO_SPACE && rc != STORAGE_ERR_DAMAGED) /* those are logged once by the log */
        log_error("broker", "append failed topic=%s partition=%d err=\"%s\"", p->topic, p->index,
                  storage_strerror(rc));
    out->ErrorMessage = kstr_from(storage_strerror(rc));
    return KERR_KAFKA_STORAGE_ERROR;
}

/* min.insync.replicas: the topic's own value, else the broker's, and at
 * least 2 for partitions with three or more replicas (never more than the
 * replicas). */
int32_t broker_min_insync(const config *cfg, const meta_topic *t, int32_t index)
{
    int32_t rf = t && index >= 0 && index < t->npartitions ? t->partitions[index].nreplicas : 1;
    if (t && meta_topic_config(t, "min.insync.replicas"))
        return (int32_t)topic_config_long(cfg, t, "min.insync.replicas");
    int32_t v = (int32_t)topic_config_long(cfg, t, "min.insync.replicas");
    if (rf >= 3)
        v = MAX(v, 2);
    return MAX(MIN(v, rf), 1);
}

static int16_t append_partition(breq *r, produce_ctx *pc, partition *p, const meta_topic *t,
                                kbytes_t recs, ProduceResponse_PartitionProduceResponse *out)
{
    const ProduceRequest *req = r->req;
    batch_summary_t sum;
    batch_info_t first;
    int16_t err = check_records(r, t, recs, &sum, &first, out);
    if (err != KERR_NONE)
        return err;
    int64_t append_time_ms = stamp_append_time(r, t, recs, sum.batches);
    int32_t min_isr = broker_min_insync(&r->b->cfg, t, p->index);
    /* The records are a view into this request's own receive buffer:
     * patching offsets and epochs in place is safe. */
    partition_append_req rq = {.data = (uint8_t *)recs.ptr, .len = (size_t)recs.len,
                               .first = first.producer_id >= 0 ? &first : NULL, .expected_epoch = -1,
                               .acks = req->Acks, .min_isr = min_isr};
    partition_append_res res;
    partition_append(p, &rq, &res);
    if (res.err != KERR_NONE)
        return append_error(p, &res, out);
    /* A duplicate is acknowledged with its original offsets once those are
     * durable (the first attempt may still be waiting for its sync). */
    out->BaseOffset = res.res.base_offset;
    out->LogAppendTimeMs = res.duplicate ? -1 : append_time_ms;
    out->LogStartOffset = res.res.log_start_offset;
    if (req->Acks == 0) {
        partition_await(p, res.res.log_end_offset, 0, 0, 0, NULL, NULL);
    } else {
        part_ack *a = arena_alloc(&r->arena, sizeof *a);
        *a = (part_ack){pc, out};
        atomic_fetch_add(&pc->pending, 1);
        partition_await(p, res.res.log_end_offset, req->Acks, min_isr, MAX(req->TimeoutMs, 0), part_acked, a);
    }
    if (!res.duplicate)
        partition_note_append(p, (size_t)recs.len);
    return KERR_NONE;
}

static void produce_topic(breq *r, produce_ctx *pc, const meta_image *img,
                          const ProduceRequest_TopicProduceData *td, ProduceResponse_TopicProduceResponse *tr)
{
    const ProduceRequest *req = r->req;
    int32_t n = td->PartitionData.count > 0 ? td->PartitionData.count : 0;
    tr->Name = td->Name;
    tr->PartitionResponses.count = n;
    tr->PartitionResponses.items = breq_items(r, &ProduceResponse_PartitionProduceResponse_desc, n);
    const meta_topic *t = td->Name.len > 0 ? meta_image_topic(img, td->Name.ptr, (size_t)td->Name.len) : NULL;
    bool valid_name = td->Name.len > 0 && meta_valid_topic_name(td->Name.ptr, (size_t)td->Name.len);
    /* Kafka: WRITE on the transactional id first, then on the topic. */
    int16_t denied = !kstr_is_null(req->TransactionalId) ? broker_txn_denied(r, req->TransactionalId) : KERR_NONE;
    if (denied == KERR_NONE)
        denied = broker_topic_denied(r, img, ACL_OP_WRITE, td->Name);
    for (int32_t i = 0; i < n; i++) {
        const ProduceRequest_PartitionProduceData *pd = &td->PartitionData.items[i];
        ProduceResponse_PartitionProduceResponse *out = &tr->PartitionResponses.items[i];
        out->Index = pd->Index;
        out->BaseOffset = -1;
        if (req->Acks != 0 && req->Acks != 1 && req->Acks != -1) {
            out->ErrorCode = KERR_INVALID_REQUIRED_ACKS;
            continue;
        }
        if (denied != KERR_NONE) {
            out->ErrorCode = denied;
            continue;
        }
        partition *p = broker_leader_partition(r->b, t, pd->Index, -1, &out->ErrorCode);
        if (!p) {
            if (!valid_name)
                out->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
            continue;
        }
        out->ErrorCode = append_partition(r, pc, p, t, pd->Records, out);
        partition_put(p);
    }
}

static breq_rc produce_run(breq *r)
{
    const ProduceRequest *req = r->req;
    ProduceResponse *resp = r->resp;
    int32_t n = req->TopicData.count > 0 ? req->TopicData.count : 0;
    resp->Responses.count = n;
    resp->Responses.items = breq_items(r, &ProduceResponse_TopicProduceResponse_desc, n);
    bool ack = req->Acks != 0;
    produce_ctx *pc = arena_alloc(&r->arena, sizeof *pc);
    pc->r = r;
    atomic_store(&pc->pending, 1);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < n; i++)
        produce_topic(r, pc, img, &req->TopicData.items[i], &resp->Responses.items[i]);
    meta_image_release(img);
    if (!ack)
        return BREQ_NO_RESPONSE;
    if (atomic_fetch_sub(&pc->pending, 1) == 1)
        return BREQ_DONE;
    return BREQ_PARKED;
}

breq_rc api_produce(breq *r)
{
    const ProduceRequest *req = r->req;
    broker_quota_produce(r, r->body_len); /* counted as it arrives (quota.c) */
    int32_t n = req->TopicData.count > 0 ? req->TopicData.count : 0;
    kstr_t *names = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *names);
    for (int32_t i = 0; i < n; i++)
        names[i] = req->TopicData.items[i].Name;
    if (broker_autocreate(r, names, n, produce_run))
        return BREQ_PARKED;
    return produce_run(r);
}
