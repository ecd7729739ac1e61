/* api_offset_commit.c - OffsetCommit (key 8) v0-v9: a group's consumed
 * positions, stored as records of __consumer_offsets and acknowledged once
 * durable. READ on the group (else every partition GROUP_AUTHORIZATION_FAILED)
 * and on each topic (else its partitions TOPIC_AUTHORIZATION_FAILED). Members commit with their generation (v1+); groups that only
 * store offsets commit with generation -1. v1 carries a commit timestamp
 * per partition, v2-v4 a retention time. Partitions of unknown topics get
 * UNKNOWN_TOPIC_OR_PARTITION. */
#include <string.h>

#include "broker/broker_int.h"

typedef struct commit_ctx {
    breq *r;
    group_commit_req cr;
    OffsetCommitResponse_OffsetCommitResponsePartition **outs; /* per cr.parts */
} commit_ctx;

static void commit_done(void *arg)
{
    commit_ctx *cc = arg;
    for (int32_t i = 0; i < cc->cr.n; i++)
        cc->outs[i]->ErrorCode = cc->cr.parts[i].error;
    breq_finish(cc->r);
}

group_commit_in broker_commit_in(breq *r, const meta_image *img, const char *topic, kstr_t name, int32_t index,
                                 int64_t offset, int32_t leader_epoch, kstr_t metadata, int64_t commit_ts_ms)
{
    int16_t err = broker_topic_denied(r, img, ACL_OP_READ, name);
    if (err == KERR_NONE && !broker_partition_exists(img, name, index))
        err = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    return (group_commit_in){
        .topic = topic,
        .partition = index,
        .offset = offset,
        .leader_epoch = leader_epoch,
        .metadata = metadata.len >= 0 ? breq_strdup(r, metadata) : NULL,
        .commit_ts_ms = commit_ts_ms,
        .error = err,
    };
}

/* One group_commit_in per request partition, mirrored in the response. */
static void collect(breq *r, commit_ctx *cc, const meta_image *img)
{
    const OffsetCommitRequest *req = r->req;
    OffsetCommitResponse *resp = r->resp;
    int32_t nt = MAX(req->Topics.count, 0), n = 0;
    for (int32_t i = 0; i < nt; i++)
        n += MAX(req->Topics.items[i].Partitions.count, 0);
    cc->cr.parts = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *cc->cr.parts);
    cc->outs = arena_alloc(&r->arena, (size_t)MAX(n, 1) * sizeof *cc->outs);
    resp->Topics.count = nt;
    resp->Topics.items = breq_items(r, &OffsetCommitResponse_OffsetCommitResponseTopic_desc, nt);
    for (int32_t i = 0; i < nt; i++) {
        const OffsetCommitRequest_OffsetCommitRequestTopic *t = &req->Topics.items[i];
        OffsetCommitResponse_OffsetCommitResponseTopic *to = &resp->Topics.items[i];
        int32_t np = MAX(t->Partitions.count, 0);
        to->Name = t->Name;
        to->Partitions.count = np;
        to->Partitions.items = breq_items(r, &OffsetCommitResponse_OffsetCommitResponsePartition_desc, np);
        const char *topic = breq_strdup(r, t->Name);
        for (int32_t j = 0; j < np; j++) {
            const OffsetCommitRequest_OffsetCommitRequestPartition *p = &t->Partitions.items[j];
            cc->cr.parts[cc->cr.n] = broker_commit_in(r, img, topic, t->Name, p->PartitionIndex, p->CommittedOffset,
                                                      p->CommittedLeaderEpoch, p->CommittedMetadata,
                                                      p->CommitTimestamp);
            to->Partitions.items[j].PartitionIndex = p->PartitionIndex;
            cc->outs[cc->cr.n++] = &to->Partitions.items[j];
        }
    }
}

breq_rc api_offset_commit(breq *r)
{
    const OffsetCommitRequest *req = r->req;
    commit_ctx *cc = arena_alloc(&r->arena, sizeof *cc);
    cc->r = r;
    meta_image *img = meta_acquire(r->b->meta);
    collect(r, cc, img);
    meta_image_release(img);
    int16_t denied = broker_group_denied(r, ACL_OP_READ, req->GroupId);
    if (denied != KERR_NONE) {
        for (int32_t i = 0; i < cc->cr.n; i++)
            cc->outs[i]->ErrorCode = denied;
        return BREQ_DONE;
    }
    cc->cr.member_id = breq_strdup(r, req->MemberId);
    cc->cr.instance_id = req->GroupInstanceId.len > 0 ? breq_strdup(r, req->GroupInstanceId) : NULL;
    cc->cr.generation = req->GenerationIdOrMemberEpoch;
    cc->cr.retention_ms = req->RetentionTimeMs;
    cc->cr.done = commit_done;
    cc->cr.arg = cc;
    group_coord_commit(r->b->groups, breq_strdup(r, req->GroupId), &cc->cr);
    return BREQ_PARKED; /* commit_done answers, maybe already */
}
