/* api_produce.c - Produce (key 0) v0-v9: validate each partition's record
 * batches (magic 2, CRC-32C, counts), append them with broker-assigned
 * offsets and the leader epoch, and acknowledge once the data is durable
 * (acks=1/-1: after the group-committed fsync; acks=0: no response).
 * Topics that do not exist are created first when auto-creation is on.
 *
 * Idempotent batches (producerId >= 0, KIP-98) come one per partition and
 * are checked against the partition's producer state (txn.h) under its
 * produce lock, together with the append and the state update: a retry of
 * one of the producer's last batches is answered with its original offset
 * once that is durable, and not appended again; a bad epoch or sequence is
 * refused with INVALID_PRODUCER_EPOCH or OUT_OF_ORDER_SEQUENCE_NUMBER. */
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

static void part_acked(void *arg, int err)
{
    part_ack *a = arg;
    if (err != STORAGE_OK) {
        /* deleted before the write was durable: the client refreshes its metadata */
        a->out->ErrorCode = err == STORAGE_ERR_DELETED ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_KAFKA_STORAGE_ERROR;
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

/* Check, append and record an idempotent batch as one step under the
 * partition's produce lock. A duplicate or a refused batch is not appended
 * (v says which). */
static int append_idempotent(partition *p, kbytes_t recs, const batch_info_t *b, txn_verdict *v,
                             plog_append_result_t *res)
{
    int rc = STORAGE_OK;
    pthread_mutex_lock(&p->produce_lock);
    *v = txn_state_check(p->producers, b);
    if (v->err == KERR_NONE && !v->duplicate) {
        rc = plog_append(p->log, (uint8_t *)recs.ptr, (size_t)recs.len, p->leader_epoch, res);
        if (rc == STORAGE_OK)
            txn_state_apply(p->producers, b, res->base_offset, res->last_offset);
    }
    pthread_mutex_unlock(&p->produce_lock);
    return rc;
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

static int16_t append_partition(breq *r, produce_ctx *pc, partition *p, const meta_topic *t,
                                kbytes_t recs, ProduceResponse_PartitionProduceResponse *out, bool ack)
{
    batch_summary_t sum;
    batch_info_t first;
    int16_t err = check_records(r, t, recs, &sum, &first, out);
    if (err != KERR_NONE)
        return err;
    int64_t append_time_ms = stamp_append_time(r, t, recs, sum.batches);
    plog_append_result_t res = {0};
    txn_verdict v = {0};
    /* The records are a view into this request's own receive buffer:
     * patching offsets and epochs in place is safe. */
    int rc = first.producer_id >= 0
                 ? append_idempotent(p, recs, &first, &v, &res)
                 : plog_append(p->log, (uint8_t *)recs.ptr, (size_t)recs.len, p->leader_epoch, &res);
    if (v.err != KERR_NONE) {
        out->ErrorMessage = kstr_from(v.msg);
        return v.err;
    }
    if (rc == STORAGE_ERR_TOO_LARGE) {
        /* Larger than segment.bytes: final, as in Kafka (a retry cannot fit). */
        out->ErrorMessage = kstr_from("record batch larger than the topic's segment.bytes");
        return KERR_RECORD_LIST_TOO_LARGE;
    }
    if (rc == STORAGE_ERR_DELETED)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (rc == STORAGE_ERR_NO_SPACE || rc == STORAGE_ERR_DAMAGED) { /* logged once by the log */
        out->ErrorMessage = kstr_from(storage_strerror(rc));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    if (rc != STORAGE_OK) {
        log_error("broker", "append failed topic=%s partition=%d err=\"%s\"", p->topic, p->index,
                  storage_strerror(rc));
        out->ErrorMessage = kstr_from(storage_strerror(rc));
        return KERR_KAFKA_STORAGE_ERROR;
    }
    /* A duplicate is acknowledged with its original offsets once those are
     * durable (the first attempt may still be waiting for its sync). */
    int64_t upto = v.duplicate ? v.last_offset + 1 : res.log_end_offset;
    out->BaseOffset = v.duplicate ? v.first_offset : res.base_offset;
    out->LogAppendTimeMs = v.duplicate ? -1 : append_time_ms;
    out->LogStartOffset = v.duplicate ? plog_log_start_offset(p->log) : res.log_start_offset;
    if (!ack) {
        partition_appended(p, upto, NULL, NULL);
    } else {
        part_ack *a = arena_alloc(&r->arena, sizeof *a);
        *a = (part_ack){pc, out};
        atomic_fetch_add(&pc->pending, 1);
        partition_appended(p, upto, part_acked, a);
    }
    if (!v.duplicate)
        partition_note_append(p, (size_t)recs.len);
    return KERR_NONE;
}

static void produce_topic(breq *r, produce_ctx *pc, const meta_image *img,
                          const ProduceRequest_TopicProduceData *td, ProduceResponse_TopicProduceResponse *tr,
                          bool ack)
{
    const ProduceRequest *req = r->req;
    int32_t n = td->PartitionData.count > 0 ? td->PartitionData.count : 0;
    tr->Name = td->Name;
    tr->PartitionResponses.count = n;
    tr->PartitionResponses.items = breq_items(r, &ProduceResponse_PartitionProduceResponse_desc, n);
    const meta_topic *t = td->Name.len > 0 ? meta_image_topic(img, td->Name.ptr, (size_t)td->Name.len) : NULL;
    bool valid_name = td->Name.len > 0 && meta_valid_topic_name(td->Name.ptr, (size_t)td->Name.len);
    for (int32_t i = 0; i < n; i++) {
        const ProduceRequest_PartitionProduceData *pd = &td->PartitionData.items[i];
        ProduceResponse_PartitionProduceResponse *out = &tr->PartitionResponses.items[i];
        out->Index = pd->Index;
        out->BaseOffset = -1;
        if (req->Acks != 0 && req->Acks != 1 && req->Acks != -1) {
            out->ErrorCode = KERR_INVALID_REQUIRED_ACKS;
            continue;
        }
        partition *p = t ? replica_get(r->b->replicas, t->name, strlen(t->name), pd->Index) : NULL;
        if (!p) {
            out->ErrorCode = valid_name ? broker_partition_elsewhere(t, pd->Index) : KERR_INVALID_TOPIC_EXCEPTION;
            continue;
        }
        out->ErrorCode = append_partition(r, pc, p, t, pd->Records, out, ack);
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
        produce_topic(r, pc, img, &req->TopicData.items[i], &resp->Responses.items[i], ack);
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
    int32_t n = req->TopicData.count > 0 ? req->TopicData.count : 0;
    kstr_t *names = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *names);
    for (int32_t i = 0; i < n; i++)
        names[i] = req->TopicData.items[i].Name;
    if (broker_autocreate(r, names, n, produce_run))
        return BREQ_PARKED;
    return produce_run(r);
}
