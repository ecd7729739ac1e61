/* api_describe_producers.c - DescribeProducers (key 61) v0: for each
 * partition asked, the producers its state holds (txn.h): id, epoch, last
 * sequence and time stamp. There are no transactions, so the coordinator
 * epoch is -1 and no transaction is open (start offset -1). A topic needs
 * READ (else its partitions TOPIC_AUTHORIZATION_FAILED). */
#include <string.h>

#include "broker/broker_int.h"

typedef struct fill_ctx {
    DescribeProducersResponse_ProducerState *items;
    int32_t n, cap;
} fill_ctx;

static void fill_one(void *arg, const txn_producer_info *info)
{
    fill_ctx *c = arg;
    CK_ASSERT(c->n < c->cap);
    DescribeProducersResponse_ProducerState *ps = &c->items[c->n++];
    ps->ProducerId = info->producer_id;
    ps->ProducerEpoch = info->epoch;
    ps->LastSequence = info->last_sequence;
    ps->LastTimestamp = info->last_timestamp;
    ps->CoordinatorEpoch = info->coordinator_epoch;
    ps->CurrentTxnStartOffset = info->txn_first_offset;
}

static void list_producers(breq *r, partition *p, DescribeProducersResponse_PartitionResponse *out)
{
    pthread_mutex_lock(&p->produce_lock);
    int32_t n = txn_state_count(p->producers);
    fill_ctx c = {breq_items(r, &DescribeProducersResponse_ProducerState_desc, n), 0, n};
    txn_state_each(p->producers, fill_one, &c);
    pthread_mutex_unlock(&p->produce_lock);
    CK_ASSERT(c.n == n);
    out->ActiveProducers.count = n;
    out->ActiveProducers.items = c.items;
}

static void describe_partition(breq *r, const meta_topic *mt, int16_t denied, int32_t index,
                               DescribeProducersResponse_PartitionResponse *out)
{
    out->PartitionIndex = index;
    out->ActiveProducers.count = 0;
    if ((out->ErrorCode = denied) != KERR_NONE)
        return;
    partition *p = broker_leader_partition(r->b, mt, index, -1, &out->ErrorCode);
    if (!p)
        return;
    list_producers(r, p, out);
    partition_put(p);
}

breq_rc api_describe_producers(breq *r)
{
    const DescribeProducersRequest *req = r->req;
    DescribeProducersResponse *resp = r->resp;
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    resp->Topics.count = nt;
    resp->Topics.items = breq_items(r, &DescribeProducersResponse_TopicResponse_desc, nt);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < nt; i++) {
        const DescribeProducersRequest_TopicRequest *t = &req->Topics.items[i];
        DescribeProducersResponse_TopicResponse *to = &resp->Topics.items[i];
        int32_t np = t->PartitionIndexes.count > 0 ? t->PartitionIndexes.count : 0;
        to->Name = t->Name;
        to->Partitions.count = np;
        to->Partitions.items = breq_items(r, &DescribeProducersResponse_PartitionResponse_desc, np);
        const meta_topic *mt =
            t->Name.len > 0 ? meta_image_topic(img, t->Name.ptr, (size_t)t->Name.len) : NULL;
        int16_t denied = broker_topic_denied(r, img, ACL_OP_READ, t->Name);
        for (int32_t j = 0; j < np; j++)
            describe_partition(r, mt, denied, t->PartitionIndexes.items[j], &to->Partitions.items[j]);
    }
    meta_image_release(img);
    return BREQ_DONE;
}
