/* api_offset_for_leader_epoch.c - OffsetForLeaderEpoch (key 23) v0-v4: for
 * each partition, the largest leader epoch at or below the one asked for
 * and the offset where it ended in this leader's log (the next epoch's
 * start, or the log end for the current epoch), from the log's
 * leader-epoch-checkpoint. Consumers use it to validate their position
 * after a leader change (KIP-320); followers may use it to find where to
 * truncate (KIP-101; Chronik's own followers use Fetch's DivergingEpoch).
 * Only the leader answers; an epoch newer than the leader's gives
 * UNDEFINED (-1, -1), as in Kafka. CLUSTER_ACTION (a follower) or DESCRIBE
 * on a topic is needed (else its partitions TOPIC_AUTHORIZATION_FAILED). */
#include <string.h>

#include "broker/broker_int.h"

static void epoch_end(breq *r, const meta_topic *mt, int16_t denied,
                      const OffsetForLeaderEpochRequest_OffsetForLeaderPartition *in,
                      OffsetForLeaderEpochResponse_EpochEndOffset *out)
{
    out->Partition = in->Partition;
    out->LeaderEpoch = -1;
    out->EndOffset = -1;
    if ((out->ErrorCode = denied) != KERR_NONE)
        return;
    partition *p = broker_leader_partition(r->b, mt, in->Partition, in->CurrentLeaderEpoch, &out->ErrorCode);
    if (!p)
        return;
    if (in->LeaderEpoch <= atomic_load(&p->leader_epoch))
        plog_epoch_end_offset(p->log, in->LeaderEpoch, &out->LeaderEpoch, &out->EndOffset);
    partition_put(p);
}

breq_rc api_offset_for_leader_epoch(breq *r)
{
    const OffsetForLeaderEpochRequest *req = r->req;
    OffsetForLeaderEpochResponse *resp = r->resp;
    int32_t nt = MAX(req->Topics.count, 0);
    resp->Topics.count = nt;
    resp->Topics.items = breq_items(r, &OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_desc, nt);
    bool cluster = broker_allowed_cluster_action(r);
    meta_image *img = meta_acquire(r->b->meta);
    for (int32_t i = 0; i < nt; i++) {
        const OffsetForLeaderEpochRequest_OffsetForLeaderTopic *t = &req->Topics.items[i];
        OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *to = &resp->Topics.items[i];
        int32_t np = MAX(t->Partitions.count, 0);
        to->Topic = t->Topic;
        to->Partitions.count = np;
        to->Partitions.items = breq_items(r, &OffsetForLeaderEpochResponse_EpochEndOffset_desc, np);
        const meta_topic *mt = t->Topic.len > 0 ? meta_image_topic(img, t->Topic.ptr, (size_t)t->Topic.len) : NULL;
        int16_t denied = cluster ? KERR_NONE : broker_topic_denied(r, img, ACL_OP_DESCRIBE, t->Topic);
        for (int32_t j = 0; j < np; j++)
            epoch_end(r, mt, denied, &t->Partitions.items[j], &to->Partitions.items[j]);
    }
    meta_image_release(img);
    return BREQ_DONE;
}
