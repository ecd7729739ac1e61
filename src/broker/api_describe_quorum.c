/* api_describe_quorum.c - DescribeQuorum (key 55) v0-v1 on both listeners:
 * the metadata quorum's leader, epoch, high watermark and each voter's log
 * end, for the one partition __cluster_metadata-0 (what Kafka's
 * kafka-metadata-quorum and Admin.describeMetadataQuorum read).
 *
 * The answer is the leader's view (meta_quorum_status_get): each voter's log
 * end and last fetch. On the client listener, a node that does not lead the
 * quorum forwards the request as it came to the leader's controller
 * listener (meta_send_to_leader) and relays the answer, as Kafka's brokers
 * forward it to the active controller: kafka-metadata-quorum works against
 * any node. On the controller listener, and when the leader cannot be
 * asked (none known, the request failed), a node that does not lead answers
 * NOT_LEADER_OR_FOLLOWER with the leader it knows, as Kafka's controllers
 * do. A request naming another partition gets UNKNOWN_TOPIC_OR_PARTITION
 * for it. */
#include <string.h>

#include "base/util.h"
#include "broker/broker_int.h"

static void fill_partition(breq *r, DescribeQuorumResponse_PartitionData *pd, int32_t index)
{
    pd->PartitionIndex = index;
    pd->LeaderId = -1;
    pd->LeaderEpoch = -1;
    pd->HighWatermark = -1;
    meta_quorum_status q;
    if (index == 0)
        meta_quorum_status_get(r->b->meta, &q);
    if (index != 0 || !q.leader_view) {
        /* not the metadata partition, or not its leader: Kafka answers only at the leader */
        pd->ErrorCode = index != 0 ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_NOT_LEADER_OR_FOLLOWER;
        if (index == 0) {
            pd->LeaderId = q.leader_id;
            pd->LeaderEpoch = q.epoch;
        }
        return;
    }
    int64_t now = clock_wall_ms();
    pd->ErrorCode = KERR_NONE;
    pd->LeaderId = q.leader_id;
    pd->LeaderEpoch = q.epoch;
    pd->HighWatermark = q.high_watermark;
    DescribeQuorumResponse_ReplicaState *v = arena_alloc(&r->arena, (size_t)(q.n_replicas + 1) * sizeof *v);
    for (int i = 0; i < q.n_replicas; i++) {
        const meta_quorum_replica *x = &q.replicas[i];
        bool self = x->id == q.node_id;
        /* the leader: LastFetchTimestamp -1, LastCaughtUpTimestamp now (Kafka's convention) */
        v[i] = (DescribeQuorumResponse_ReplicaState){
            .ReplicaId = x->id, .LogEndOffset = x->log_end_offset,
            .LastFetchTimestamp = self || x->last_fetch_ms_ago < 0 ? -1 : now - x->last_fetch_ms_ago,
            .LastCaughtUpTimestamp = self ? now : x->last_fetch_ms_ago < 0 ? -1 : now - x->last_fetch_ms_ago};
    }
    pd->CurrentVoters.count = q.n_replicas;
    pd->CurrentVoters.items = v;
    DescribeQuorumResponse_ReplicaState *ob = arena_alloc(&r->arena, (size_t)(q.n_observers + 1) * sizeof *ob);
    for (int i = 0; i < q.n_observers; i++) {
        const meta_quorum_replica *x = &q.observers[i];
        int64_t at = x->last_fetch_ms_ago < 0 ? -1 : now - x->last_fetch_ms_ago;
        ob[i] = (DescribeQuorumResponse_ReplicaState){.ReplicaId = x->id, .LogEndOffset = x->log_end_offset,
                                                      .LastFetchTimestamp = at, .LastCaughtUpTimestamp = at};
    }
    pd->Observers.count = q.n_observers;
    pd->Observers.items = ob;
}

#define FORWARD_TIMEOUT_MS 10000

static breq_rc answer_here(breq *r)
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

/* The leader's answer, relayed as it is (encoded before the kclient
 * response goes); any failure gets this node's own answer instead. */
static void leader_answered(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    breq *r = arg;
    UNUSED(resp);
    if (err == KCLIENT_OK && response) {
        *(DescribeQuorumResponse *)r->resp = *(const DescribeQuorumResponse *)response;
        breq_finish(r);
        return;
    }
    answer_here(r);
    breq_finish(r);
}

breq_rc api_describe_quorum(breq *r)
{
    if (r->table == &broker_client_api && meta_controller_id(r->b->meta) != r->b->cfg.node_id &&
        meta_send_to_leader(r->b->meta, API_DESCRIBE_QUORUM, r->hdr.api_version, r->req, FORWARD_TIMEOUT_MS,
                            leader_answered, r) == 0)
        return BREQ_PARKED;
    return answer_here(r);
}
