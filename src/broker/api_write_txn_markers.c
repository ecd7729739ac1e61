/* api_write_txn_markers.c - WriteTxnMarkers (key 27) v0-v1: the
 * transaction coordinator ends a transaction (KIP-98) in each partition it
 * touched. For every partition this node leads, a control batch (COMMIT or
 * ABORT, with the producer id and epoch and the coordinator epoch) goes
 * through the partition's one append path (replica.h), checked there
 * against the producer state (INVALID_PRODUCER_EPOCH for an epoch older
 * than the partition knows, TRANSACTION_COORDINATOR_FENCED for an older
 * coordinator), and each partition is answered once the marker is
 * acknowledged with acks=all semantics (the high watermark passed it with
 * the ISR at min.insync.replicas), as Kafka writes markers. A partition
 * led elsewhere gets NOT_LEADER_OR_FOLLOWER, an unknown one
 * UNKNOWN_TOPIC_OR_PARTITION. A marker acknowledged on __consumer_offsets
 * is handed to the group coordinator (group_coord_txn_marker). The sender
 * needs CLUSTER_ACTION (else every partition CLUSTER_AUTHORIZATION_FAILED). */
#include <string.h>

#include "base/log.h"
#include "broker/broker_int.h"
#include "group/group.h"
#include "proto/batch.h"

#define WTM_ACK_TIMEOUT_MS 30000 /* Kafka's request.timeout.ms for marker writes */

typedef struct wtm_ctx {
    breq *r;
    _Atomic int pending; /* partitions not yet acknowledged, plus the handler */
    int16_t denied;      /* CLUSTER_AUTHORIZATION_FAILED for every partition */
} wtm_ctx;

typedef struct wtm_ack {
    wtm_ctx *c;
    WriteTxnMarkersResponse_WritableTxnMarkerPartitionResult *out;
    const WriteTxnMarkersRequest_WritableTxnMarker *m;
    bool group_topic;
} wtm_ack;

static void wtm_release(wtm_ctx *c)
{
    if (atomic_fetch_sub(&c->pending, 1) == 1)
        breq_finish(c->r);
}

static void marker_acked(void *arg, int16_t err)
{
    wtm_ack *a = arg;
    a->out->ErrorCode = err;
    if (err == KERR_NONE && a->group_topic && a->c->r->b->groups)
        group_coord_txn_marker(a->c->r->b->groups, a->out->PartitionIndex, a->m->ProducerId, a->m->ProducerEpoch,
                               a->m->TransactionResult);
    wtm_release(a->c);
}

/* Appends m's marker to p; on success the answer comes with the ack. */
static int16_t write_marker(breq *r, wtm_ctx *c, partition *p, const meta_topic *t,
                            const WriteTxnMarkersRequest_WritableTxnMarker *m,
                            WriteTxnMarkersResponse_WritableTxnMarkerPartitionResult *out)
{
    if (m->ProducerId < 0 || m->ProducerEpoch < 0)
        return KERR_INVALID_REQUEST;
    buf_t batch;
    buf_init(&batch);
    batch_build_marker(&batch, m->ProducerId, m->ProducerEpoch, m->TransactionResult, m->CoordinatorEpoch,
                       clock_wall_ms());
    batch_info_t first;
    enum batch_err be = batch_parse_header(batch.data, batch.len, &first);
    CK_ASSERT(be == BATCH_ERR_OK && first.control);
    int32_t min_isr = broker_min_insync(&r->b->cfg, t, p->index);
    partition_append_req rq = {.data = batch.data, .len = batch.len, .first = &first, .expected_epoch = -1,
                               .acks = -1, .min_isr = min_isr};
    partition_append_res res;
    partition_append(p, &rq, &res);
    buf_free(&batch);
    if (res.err != KERR_NONE) {
        if (res.err != KERR_INVALID_PRODUCER_EPOCH && res.err != KERR_NOT_LEADER_OR_FOLLOWER)
            log_warn("broker", "transaction marker refused topic=%s partition=%d producer_id=%lld err=%s", p->topic,
                     p->index, (long long)m->ProducerId, kerr_name(res.err));
        return res.err;
    }
    wtm_ack *a = arena_alloc(&r->arena, sizeof *a);
    *a = (wtm_ack){c, out, m, strcmp(p->topic, GROUP_TOPIC) == 0};
    atomic_fetch_add(&c->pending, 1);
    partition_await(p, res.res.log_end_offset, -1, min_isr, WTM_ACK_TIMEOUT_MS, marker_acked, a);
    partition_note_append(p, rq.len);
    return KERR_NONE;
}

static void marker_topic(breq *r, wtm_ctx *c, const meta_image *img, const WriteTxnMarkersRequest_WritableTxnMarker *m,
                         const WriteTxnMarkersRequest_WritableTxnMarkerTopic *tin,
                         WriteTxnMarkersResponse_WritableTxnMarkerTopicResult *tout)
{
    int32_t n = MAX(tin->PartitionIndexes.count, 0);
    tout->Name = tin->Name;
    tout->Partitions.count = n;
    tout->Partitions.items = breq_items(r, &WriteTxnMarkersResponse_WritableTxnMarkerPartitionResult_desc, n);
    const meta_topic *t = tin->Name.len > 0 ? meta_image_topic(img, tin->Name.ptr, (size_t)tin->Name.len) : NULL;
    for (int32_t i = 0; i < n; i++) {
        WriteTxnMarkersResponse_WritableTxnMarkerPartitionResult *out = &tout->Partitions.items[i];
        out->PartitionIndex = tin->PartitionIndexes.items[i];
        if ((out->ErrorCode = c->denied) != KERR_NONE)
            continue;
        partition *p = broker_leader_partition(r->b, t, out->PartitionIndex, -1, &out->ErrorCode);
        if (!p)
            continue;
        out->ErrorCode = write_marker(r, c, p, t, m, out);
        partition_put(p);
    }
}

breq_rc api_write_txn_markers(breq *r)
{
    const WriteTxnMarkersRequest *req = r->req;
    WriteTxnMarkersResponse *resp = r->resp;
    int32_t nm = MAX(req->Markers.count, 0);
    resp->Markers.count = nm;
    resp->Markers.items = breq_items(r, &WriteTxnMarkersResponse_WritableTxnMarkerResult_desc, nm);
    wtm_ctx *c = arena_alloc(&r->arena, sizeof *c);
    c->r = r;
    atomic_store(&c->pending, 1);
    c->denied = broker_allowed_cluster_action(r) ? KERR_NONE : KERR_CLUSTER_AUTHORIZATION_FAILED;
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < nm; i++) {
        const WriteTxnMarkersRequest_WritableTxnMarker *m = &req->Markers.items[i];
        WriteTxnMarkersResponse_WritableTxnMarkerResult *mo = &resp->Markers.items[i];
        int32_t nt = MAX(m->Topics.count, 0);
        mo->ProducerId = m->ProducerId;
        mo->Topics.count = nt;
        mo->Topics.items = breq_items(r, &WriteTxnMarkersResponse_WritableTxnMarkerTopicResult_desc, nt);
        for (int32_t j = 0; j < nt; j++)
            marker_topic(r, c, img, m, &m->Topics.items[j], &mo->Topics.items[j]);
    }
    meta_image_release(img);
    if (atomic_fetch_sub(&c->pending, 1) == 1)
        return BREQ_DONE;
    return BREQ_PARKED;
}
