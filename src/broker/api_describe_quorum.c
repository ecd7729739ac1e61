/* api_describe_quorum.c - DescribeQuorum (key 55) v0-v1 on both listeners:
 * the metadata quorum's leader, epoch, high watermark and each voter's log
 * end, for the one partition __cluster_metadata-0 (what Kafka's
 * kafka-metadata-quorum and Admin.describeMetadataQuorum read).
 *
 * In this version a node is a single-voter quorum: it is the leader of the
 * metadata log, whose high watermark is its durable end, and the voter set
 * is this node. A request naming another partition gets
 * UNKNOWN_TOPIC_OR_PARTITION for it. */
#include <string.h>

#include "base/util.h"
#include "broker/broker_int.h"

static void fill_partition(breq *r, DescribeQuorumResponse_PartitionData *pd, int32_t index)
{
    pd->PartitionIndex = index;
    if (index != 0) {
        pd->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        pd->LeaderId = -1;
        pd->LeaderEpoch = -1;
        pd->HighWatermark = -1;
        return;
    }
    meta_image *img = meta_acquire(r->b->meta);
    int64_t end = img->offset, now = clock_wall_ms();
    meta_image_release(img);
    pd->ErrorCode = KERR_NONE;
    pd->LeaderId = r->b->cfg.node_id;
    pd->LeaderEpoch = 0; /* one voter, never an election */
    pd->HighWatermark = end;
    DescribeQuorumResponse_ReplicaState *v = arena_alloc(&r->arena, sizeof *v);
    /* the leader: LastFetchTimestamp -1, LastCaughtUpTimestamp now (Kafka's convention) */
    *v = (DescribeQuorumResponse_ReplicaState){.ReplicaId = r->b->cfg.node_id, .LogEndOffset = end,
                                               .LastFetchTimestamp = -1, .LastCaughtUpTimestamp = now};
    pd->CurrentVoters.count = 1;
    pd->CurrentVoters.items = v;
    pd->Observers.count = 0;
}

breq_rc api_describe_quorum(breq *r)
{
    const DescribeQuorumRequest *req = r->req;
    DescribeQuorumResponse *resp = r->resp;
    int32_t n = req->Topics.count;
    resp->ErrorCode = KERR_NONE;
    resp->Topics.count = n;
    resp->Topics.items = arena_alloc(&r->arena, (size_t)(n ? n : 1) * sizeof *resp->Topics.items);
    for (int32_t i = 0; i < n; i++) {
        const DescribeQuorumRequest_TopicData *td = &req->Topics.items[i];
        DescribeQuorumResponse_TopicData *out = &resp->Topics.items[i];
        memset(out, 0, sizeof *out);
        out->TopicName = td->TopicName;
        bool ours = td->TopicName.len == (int32_t)strlen(META_TOPIC_NAME) &&
                    memcmp(td->TopicName.ptr, META_TOPIC_NAME, strlen(META_TOPIC_NAME)) == 0;
        int32_t np = td->Partitions.count;
        out->Partitions.count = np;
        out->Partitions.items = arena_alloc(&r->arena, (size_t)(np ? np : 1) * sizeof *out->Partitions.items);
        for (int32_t j = 0; j < np; j++) {
            memset(&out->Partitions.items[j], 0, sizeof out->Partitions.items[j]);
            fill_partition(r, &out->Partitions.items[j], ours ? td->Partitions.items[j].PartitionIndex : -1);
        }
    }
    return BREQ_DONE;
}
