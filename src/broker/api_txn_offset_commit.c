/* api_txn_offset_commit.c - TxnOffsetCommit (key 28) v0-v4: a
 * transactional producer commits a group's offsets inside its transaction
 * (sendOffsetsToTransaction). The group coordinator stores them as a
 * transactional batch and keeps them pending until the transaction's
 * marker (group_coord_txn_commit). v3+ carries the consumer's generation
 * and member id (KIP-447), checked when given. Partitions of unknown
 * topics get UNKNOWN_TOPIC_OR_PARTITION. When this node also coordinates
 * the transactional id, the producer is verified first (KIP-890 part 1, a
 * local AddPartitionsToTxn VerifyOnly): a fenced producer, or one whose
 * transaction does not hold the group (no AddOffsetsToTxn), is refused.
 * PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v3. Authorization, as
 * Kafka: WRITE on the transactional id, then READ on the group (else every
 * partition gets TRANSACTIONAL_ID_ or GROUP_AUTHORIZATION_FAILED), then
 * READ on each topic (TOPIC_AUTHORIZATION_FAILED for its partitions). */
#include <string.h>

#include "broker/broker_int.h"

enum { FENCED_ERROR_VERSION = 3 };

typedef struct tcommit_ctx {
    breq *r;
    group_commit_req cr;
    TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition **outs; /* per cr.parts */
} tcommit_ctx;

static void committed(void *arg)
{
    tcommit_ctx *cc = arg;
    for (int32_t i = 0; i < cc->cr.n; i++)
        cc->outs[i]->ErrorCode = broker_fenced_error(cc->r, cc->cr.parts[i].error, FENCED_ERROR_VERSION);
    breq_finish(cc->r);
}

static void collect_topic(breq *r, tcommit_ctx *cc, const meta_image *img,
                          const TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic *t,
                          TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic *to)
{
    int32_t np = MAX(t->Partitions.count, 0);
    to->Name = t->Name;
    to->Partitions.count = np;
    to->Partitions.items = breq_items(r, &TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition_desc, np);
    const char *topic = breq_strdup(r, t->Name);
    for (int32_t j = 0; j < np; j++) {
        const TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition *p = &t->Partitions.items[j];
        cc->cr.parts[cc->cr.n] = broker_commit_in(r, img, topic, t->Name, p->PartitionIndex, p->CommittedOffset,
                                                  p->CommittedLeaderEpoch, p->CommittedMetadata, -1);
        to->Partitions.items[j].PartitionIndex = p->PartitionIndex;
        cc->outs[cc->cr.n++] = &to->Partitions.items[j];
    }
}

/* One group_commit_in per request partition, mirrored in the response. */
static void collect(breq *r, tcommit_ctx *cc)
{
    const TxnOffsetCommitRequest *req = r->req;
    TxnOffsetCommitResponse *resp = r->resp;
    int32_t nt = MAX(req->Topics.count, 0), n = 0;
    for (int32_t i = 0; i < nt; i++)
        n += MAX(req->Topics.items[i].Partitions.count, 0);
    cc->cr.parts = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *cc->cr.parts);
    cc->outs = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *cc->outs);
    resp->Topics.count = nt;
    resp->Topics.items = breq_items(r, &TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic_desc, nt);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < nt; i++)
        collect_topic(r, cc, img, &req->Topics.items[i], &resp->Topics.items[i]);
    meta_image_release(img);
}

/* The transaction coordinator's verdict when it runs here; KERR_NONE when
 * it runs elsewhere (or cannot say yet). */
static int16_t verify_locally(breq *r)
{
    const TxnOffsetCommitRequest *req = r->req;
    int32_t n = meta_topic_partitions(r->b->meta, GROUP_TOPIC);
    if (n <= 0 || req->TransactionalId.len <= 0)
        return KERR_NONE;
    tcoord_tp tp = {(char *)GROUP_TOPIC, group_rec_partition(req->GroupId.ptr ? req->GroupId.ptr : "",
                                                              (size_t)MAX(req->GroupId.len, 0), n)};
    int16_t err;
    tcoord_verify(r->b->txns, breq_strdup(r, req->TransactionalId), req->ProducerId, req->ProducerEpoch, &tp, 1, &err);
    return err == KERR_NOT_COORDINATOR || err == KERR_COORDINATOR_NOT_AVAILABLE ? KERR_NONE : err;
}

breq_rc api_txn_offset_commit(breq *r)
{
    const TxnOffsetCommitRequest *req = r->req;
    tcommit_ctx *cc = arena_alloc(&r->arena, sizeof *cc);
    memset(cc, 0, sizeof *cc);
    cc->r = r;
    collect(r, cc);
    int16_t denied = broker_txn_denied(r, req->TransactionalId);
    if (denied == KERR_NONE)
        denied = broker_group_denied(r, ACL_OP_READ, req->GroupId);
    if (denied != KERR_NONE) {
        for (int32_t i = 0; i < cc->cr.n; i++)
            cc->outs[i]->ErrorCode = denied;
        return BREQ_DONE;
    }
    int16_t verdict = verify_locally(r);
    for (int32_t i = 0; verdict && i < cc->cr.n; i++)
        cc->cr.parts[i].error = cc->cr.parts[i].error ? cc->cr.parts[i].error : verdict;
    bool member = r->hdr.api_version >= 3 && req->GenerationId >= 0;
    cc->cr.member_id = member ? breq_strdup(r, req->MemberId) : "";
    cc->cr.instance_id = member && req->GroupInstanceId.len > 0 ? breq_strdup(r, req->GroupInstanceId) : NULL;
    cc->cr.generation = member ? req->GenerationId : -1;
    cc->cr.retention_ms = -1;
    cc->cr.done = committed;
    cc->cr.arg = cc;
    group_coord_txn_commit(r->b->groups, breq_strdup(r, req->GroupId), &cc->cr, req->ProducerId, req->ProducerEpoch);
    return BREQ_PARKED; /* committed() answers, maybe already */
}
