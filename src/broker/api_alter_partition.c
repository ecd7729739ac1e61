/* api_alter_partition.c - AlterPartition (key 56) v0-v3 on the controller
 * listener: a partition leader asks to change its ISR. At the quorum
 * leader every partition becomes a META_OP_ALTER_PARTITION (the rules are
 * src/meta/alter_partition.c's), answered once committed; any other node
 * answers NOT_CONTROLLER. Topics are named by name up to v1, by id from
 * v2; v3 gives each new member's broker epoch. A sender that is not
 * registered at its broker epoch gets STALE_BROKER_EPOCH for the whole
 * request, as Kafka's controller answers. */
#include <string.h>

#include "broker/broker_int.h"

#define AP_PARTITIONS_MAX 10000 /* per request */

typedef struct ap_slot {
    breq *r;
    _Atomic int *pending;
    AlterPartitionResponse_PartitionData *out;
    meta_op *op;
    int32_t isr_cap;           /* out->Isr.items holds this many: the committed ISR is the asked set */
} ap_slot;

static breq_rc ap_finish(breq *r)
{
    AlterPartitionResponse *resp = r->resp;
    for (int32_t i = 0; i < resp->Topics.count; i++)
        for (int32_t j = 0; j < resp->Topics.items[i].Partitions.count; j++)
            if (resp->Topics.items[i].Partitions.items[j].ErrorCode == KERR_STALE_BROKER_EPOCH)
                resp->ErrorCode = KERR_STALE_BROKER_EPOCH;
    if (resp->ErrorCode != KERR_NONE)
        resp->Topics.count = 0;
    return BREQ_DONE;
}

/* Controller thread: the op's outcome into its response slot, whose memory
 * was allocated before any op was submitted (the arena is the reactor's). */
static void ap_slot_done(void *arg, int16_t err, const char *msg)
{
    ap_slot *s = arg;
    const meta_alter_op *a = &s->op->alter;
    UNUSED(msg);
    s->out->ErrorCode = err;
    if (err == KERR_NONE) {
        CK_ASSERT(a->out_nisr <= s->isr_cap);
        s->out->LeaderId = a->out_leader;
        s->out->LeaderEpoch = a->out_leader_epoch;
        s->out->PartitionEpoch = a->out_partition_epoch;
        memcpy(s->out->Isr.items, a->out_isr, (size_t)a->out_nisr * sizeof *a->out_isr);
        s->out->Isr.count = a->out_nisr;
    }
    if (atomic_fetch_sub(s->pending, 1) == 1)
        breq_resume(s->r, ap_finish);
}

static meta_op *ap_op(const breq *r, const AlterPartitionRequest_TopicData *t,
                      const AlterPartitionRequest_PartitionData *p)
{
    const AlterPartitionRequest *req = r->req;
    int16_t v = r->hdr.api_version;
    meta_op *op = v < 2 ? meta_op_new(META_OP_ALTER_PARTITION, t->TopicName.ptr, (size_t)t->TopicName.len)
                        : meta_op_new(META_OP_ALTER_PARTITION, NULL, 0);
    op->topic_id = t->TopicId;
    meta_alter_op *a = &op->alter;
    *a = (meta_alter_op){.index = p->PartitionIndex, .broker_id = req->BrokerId, .broker_epoch = req->BrokerEpoch,
                         .leader_epoch = p->LeaderEpoch, .partition_epoch = p->PartitionEpoch,
                         .ineligible_v1 = v >= 1};
    a->nisr = v >= 3 ? p->NewIsrWithEpochs.count : MAX(p->NewIsr.count, 0);
    a->isr = xmalloc((size_t)(a->nisr + 1) * sizeof *a->isr);
    if (v >= 3)
        a->isr_epochs = xmalloc((size_t)(a->nisr + 1) * sizeof *a->isr_epochs);
    for (int32_t i = 0; i < a->nisr; i++) {
        a->isr[i] = v >= 3 ? p->NewIsrWithEpochs.items[i].BrokerId : p->NewIsr.items[i];
        if (v >= 3)
            a->isr_epochs[i] = p->NewIsrWithEpochs.items[i].BrokerEpoch;
    }
    return op;
}

static int32_t count_partitions(const AlterPartitionRequest *req)
{
    int64_t n = 0;
    for (int32_t i = 0; i < req->Topics.count; i++)
        n += req->Topics.items[i].Partitions.count;
    return (int32_t)MIN(n, INT32_MAX);
}

/* The response mirrors the request: one topic and partition per asked. */
static void ap_shape(breq *r)
{
    const AlterPartitionRequest *req = r->req;
    AlterPartitionResponse *resp = r->resp;
    resp->Topics.count = req->Topics.count;
    resp->Topics.items = arena_alloc(&r->arena, (size_t)(req->Topics.count + 1) * sizeof *resp->Topics.items);
    for (int32_t i = 0; i < req->Topics.count; i++) {
        const AlterPartitionRequest_TopicData *t = &req->Topics.items[i];
        AlterPartitionResponse_TopicData *o = &resp->Topics.items[i];
        *o = (AlterPartitionResponse_TopicData){.TopicName = t->TopicName, .TopicId = t->TopicId};
        o->Partitions.count = t->Partitions.count;
        o->Partitions.items = arena_alloc(&r->arena, (size_t)(t->Partitions.count + 1) * sizeof *o->Partitions.items);
        for (int32_t j = 0; j < t->Partitions.count; j++)
            o->Partitions.items[j] = (AlterPartitionResponse_PartitionData){
                .PartitionIndex = t->Partitions.items[j].PartitionIndex, .LeaderId = -1, .LeaderEpoch = -1,
                .Isr = {0, NULL}, .PartitionEpoch = -1};
    }
}

breq_rc api_alter_partition(breq *r)
{
    const AlterPartitionRequest *req = r->req;
    AlterPartitionResponse *resp = r->resp;
    if (meta_controller_id(r->b->meta) != r->b->cfg.node_id) {
        resp->ErrorCode = KERR_NOT_CONTROLLER;
        return BREQ_DONE;
    }
    if (count_partitions(req) > AP_PARTITIONS_MAX) {
        resp->ErrorCode = KERR_INVALID_REQUEST;
        return BREQ_DONE;
    }
    ap_shape(r);
    int32_t n = count_partitions(req), k = 0;
    ap_slot *slots = arena_alloc(&r->arena, (size_t)(n + 1) * sizeof *slots);
    _Atomic int *pending = arena_alloc(&r->arena, sizeof *pending);
    atomic_store(pending, n + 1);
    for (int32_t i = 0; i < req->Topics.count; i++) {
        const AlterPartitionRequest_TopicData *t = &req->Topics.items[i];
        for (int32_t j = 0; j < t->Partitions.count; j++, k++) {
            ap_slot *s = &slots[k];
            *s = (ap_slot){r, pending, &resp->Topics.items[i].Partitions.items[j], NULL, 0};
            s->op = ap_op(r, t, &t->Partitions.items[j]);
            s->op->done = ap_slot_done;
            s->op->arg = s;
            s->isr_cap = s->op->alter.nisr;
            s->out->Isr.items = arena_alloc(&r->arena, (size_t)(s->isr_cap + 1) * sizeof *s->out->Isr.items);
        }
    }
    for (k = 0; k < n; k++) /* the arena is complete before any op can answer */
        meta_submit(r->b->meta, slots[k].op);
    if (atomic_fetch_sub(pending, 1) == 1)
        return ap_finish(r);
    return BREQ_PARKED;
}
