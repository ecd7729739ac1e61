/*
 * wire_msgs.c - core messages <-> generated Kafka structs, one pair of
 * functions per message type. The field mapping is one to one (names in
 * raft.h follow the schemas); what the core leaves out is set to the
 * schema default. See wire.h for versions and the pre-vote tag.
 */
#include "raft/wire.h"

#include "base/util.h"

#include <string.h>

#define NEW_ONE(a, arr, T) ((T *)proto_array_init((a), &(arr), 1, sizeof(T), &T##_desc))

/* The single element of a decoded array, or NULL. */
#define ONLY(arr) ((arr).count == 1 ? &(arr).items[0] : NULL)

static const char *cluster_id(arena_t *a, kstr_t s)
{
    return kstr_is_null(s) ? NULL : arena_strndup(a, s.ptr, (size_t)s.len);
}

static bool topic_ok(kstr_t name, const raft_wire_topic_t *tp) { return kstr_eq(name, tp->name); }

/* ---- Vote ------------------------------------------------------------------ */

static void *vote_req_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    const raft_vote_req_t *q = &m->u.vote_req;
    VoteRequest *k = proto_new(a, &VoteRequest_desc);
    k->ClusterId = kstr_from(m->cluster_id);
    VoteRequest_TopicData *t = NEW_ONE(a, k->Topics, VoteRequest_TopicData);
    t->TopicName = kstr_from(tp->name);
    VoteRequest_PartitionData *p = NEW_ONE(a, t->Partitions, VoteRequest_PartitionData);
    p->PartitionIndex = tp->partition;
    p->CandidateEpoch = q->candidate_epoch;
    p->CandidateId = q->candidate_id;
    p->LastOffsetEpoch = q->last_offset_epoch;
    p->LastOffset = q->last_offset;
    return k; /* pre_vote: a tagged field added by raft_wire_encode */
}

static const char *vote_req_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                 raft_msg_t *m)
{
    const VoteRequest *k = kv;
    const VoteRequest_TopicData *t = ONLY(k->Topics);
    const VoteRequest_PartitionData *p = t ? ONLY(t->Partitions) : NULL;
    if (!p || !topic_ok(t->TopicName, tp) || p->PartitionIndex != tp->partition)
        return "not exactly the metadata partition";
    m->cluster_id = cluster_id(a, k->ClusterId);
    m->u.vote_req = (raft_vote_req_t){.candidate_epoch = p->CandidateEpoch,
                                      .candidate_id = p->CandidateId,
                                      .last_offset_epoch = p->LastOffsetEpoch,
                                      .last_offset = p->LastOffset};
    return NULL;
}

static void *vote_resp_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    const raft_vote_resp_t *v = &m->u.vote_resp;
    VoteResponse *k = proto_new(a, &VoteResponse_desc);
    VoteResponse_TopicData *t = NEW_ONE(a, k->Topics, VoteResponse_TopicData);
    t->TopicName = kstr_from(tp->name);
    VoteResponse_PartitionData *p = NEW_ONE(a, t->Partitions, VoteResponse_PartitionData);
    p->PartitionIndex = tp->partition;
    p->ErrorCode = v->error_code;
    p->LeaderId = v->leader_id;
    p->LeaderEpoch = v->leader_epoch;
    p->VoteGranted = v->vote_granted;
    return k;
}

static const char *vote_resp_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                  raft_msg_t *m)
{
    UNUSED(a);
    const VoteResponse *k = kv;
    const VoteResponse_TopicData *t = ONLY(k->Topics);
    const VoteResponse_PartitionData *p = t ? ONLY(t->Partitions) : NULL;
    if (k->ErrorCode != RAFT_ERR_NONE && k->Topics.count <= 0) { /* whole request refused */
        m->u.vote_resp = (raft_vote_resp_t){.error_code = k->ErrorCode, .leader_id = -1,
                                            .leader_epoch = -1};
        return NULL;
    }
    if (!p || !topic_ok(t->TopicName, tp) || p->PartitionIndex != tp->partition)
        return "not exactly the metadata partition";
    m->u.vote_resp = (raft_vote_resp_t){.error_code = p->ErrorCode,
                                        .leader_id = p->LeaderId,
                                        .leader_epoch = p->LeaderEpoch,
                                        .vote_granted = p->VoteGranted};
    return NULL;
}

/* ---- BeginQuorumEpoch, EndQuorumEpoch ---------------------------------------- */

static void *begin_req_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    BeginQuorumEpochRequest *k = proto_new(a, &BeginQuorumEpochRequest_desc);
    k->ClusterId = kstr_from(m->cluster_id);
    BeginQuorumEpochRequest_TopicData *t = NEW_ONE(a, k->Topics, BeginQuorumEpochRequest_TopicData);
    t->TopicName = kstr_from(tp->name);
    BeginQuorumEpochRequest_PartitionData *p =
        NEW_ONE(a, t->Partitions, BeginQuorumEpochRequest_PartitionData);
    p->PartitionIndex = tp->partition;
    p->LeaderId = m->u.begin_req.leader_id;
    p->LeaderEpoch = m->u.begin_req.leader_epoch;
    return k;
}

static const char *begin_req_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                  raft_msg_t *m)
{
    const BeginQuorumEpochRequest *k = kv;
    const BeginQuorumEpochRequest_TopicData *t = ONLY(k->Topics);
    const BeginQuorumEpochRequest_PartitionData *p = t ? ONLY(t->Partitions) : NULL;
    if (!p || !topic_ok(t->TopicName, tp) || p->PartitionIndex != tp->partition)
        return "not exactly the metadata partition";
    m->cluster_id = cluster_id(a, k->ClusterId);
    m->u.begin_req = (raft_begin_epoch_req_t){.leader_id = p->LeaderId,
                                              .leader_epoch = p->LeaderEpoch};
    return NULL;
}

static void *end_req_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    const raft_end_epoch_req_t *q = &m->u.end_req;
    EndQuorumEpochRequest *k = proto_new(a, &EndQuorumEpochRequest_desc);
    k->ClusterId = kstr_from(m->cluster_id);
    EndQuorumEpochRequest_TopicData *t = NEW_ONE(a, k->Topics, EndQuorumEpochRequest_TopicData);
    t->TopicName = kstr_from(tp->name);
    EndQuorumEpochRequest_PartitionData *p =
        NEW_ONE(a, t->Partitions, EndQuorumEpochRequest_PartitionData);
    p->PartitionIndex = tp->partition;
    p->LeaderId = q->leader_id;
    p->LeaderEpoch = q->leader_epoch;
    int32_t *ids = proto_array_init(a, &p->PreferredSuccessors, q->n_preferred, sizeof(int32_t), NULL);
    for (int i = 0; i < q->n_preferred; i++)
        ids[i] = q->preferred_successors[i];
    return k;
}

static const char *end_req_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                raft_msg_t *m)
{
    const EndQuorumEpochRequest *k = kv;
    const EndQuorumEpochRequest_TopicData *t = ONLY(k->Topics);
    const EndQuorumEpochRequest_PartitionData *p = t ? ONLY(t->Partitions) : NULL;
    if (!p || !topic_ok(t->TopicName, tp) || p->PartitionIndex != tp->partition)
        return "not exactly the metadata partition";
    if (p->PreferredSuccessors.count > RAFT_VOTERS_MAX)
        return "more preferred successors than voters";
    m->cluster_id = cluster_id(a, k->ClusterId);
    raft_end_epoch_req_t *q = &m->u.end_req;
    *q = (raft_end_epoch_req_t){.leader_id = p->LeaderId, .leader_epoch = p->LeaderEpoch};
    for (int32_t i = 0; i < p->PreferredSuccessors.count; i++)
        q->preferred_successors[q->n_preferred++] = p->PreferredSuccessors.items[i];
    return NULL;
}

/* Both epoch responses have the same shape; one macro writes both ways. */
#define EPOCH_RESP_CODEC(API)                                                              \
    static void *API##_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)    \
    {                                                                                      \
        API *k = proto_new(a, &API##_desc);                                                \
        API##_TopicData *t = NEW_ONE(a, k->Topics, API##_TopicData);                       \
        t->TopicName = kstr_from(tp->name);                                                \
        API##_PartitionData *p = NEW_ONE(a, t->Partitions, API##_PartitionData);           \
        p->PartitionIndex = tp->partition;                                                 \
        p->ErrorCode = m->u.epoch_resp.error_code;                                         \
        p->LeaderId = m->u.epoch_resp.leader_id;                                           \
        p->LeaderEpoch = m->u.epoch_resp.leader_epoch;                                     \
        return k;                                                                          \
    }                                                                                      \
    static const char *API##_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a, \
                                  raft_msg_t *m)                                           \
    {                                                                                      \
        UNUSED(a);                                                                         \
        const API *k = kv;                                                                 \
        const API##_TopicData *t = ONLY(k->Topics);                                        \
        const API##_PartitionData *p = t ? ONLY(t->Partitions) : NULL;                     \
        if (k->ErrorCode != RAFT_ERR_NONE && k->Topics.count <= 0) {                       \
            m->u.epoch_resp = (raft_epoch_resp_t){k->ErrorCode, -1, -1};                   \
            return NULL;                                                                   \
        }                                                                                  \
        if (!p || !topic_ok(t->TopicName, tp) || p->PartitionIndex != tp->partition)       \
            return "not exactly the metadata partition";                                   \
        m->u.epoch_resp = (raft_epoch_resp_t){p->ErrorCode, p->LeaderId, p->LeaderEpoch};  \
        return NULL;                                                                       \
    }
EPOCH_RESP_CODEC(BeginQuorumEpochResponse)
EPOCH_RESP_CODEC(EndQuorumEpochResponse)

/* ---- Fetch ------------------------------------------------------------------ */

static void *fetch_req_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    const raft_fetch_req_t *q = &m->u.fetch_req;
    FetchRequest *k = proto_new(a, &FetchRequest_desc);
    k->ClusterId = kstr_from(m->cluster_id);
    k->ReplicaState.ReplicaId = q->replica_id;
    k->MaxWaitMs = q->max_wait_ms;
    k->MinBytes = 1;
    FetchRequest_FetchTopic *t = NEW_ONE(a, k->Topics, FetchRequest_FetchTopic);
    t->TopicId = tp->id;
    FetchRequest_FetchPartition *p = NEW_ONE(a, t->Partitions, FetchRequest_FetchPartition);
    p->Partition = tp->partition;
    p->CurrentLeaderEpoch = q->current_leader_epoch;
    p->FetchOffset = q->fetch_offset;
    p->LastFetchedEpoch = q->last_fetched_epoch;
    p->LogStartOffset = q->log_start_offset;
    p->PartitionMaxBytes = INT32_MAX;
    return k;
}

static const char *fetch_req_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                  raft_msg_t *m)
{
    const FetchRequest *k = kv;
    const FetchRequest_FetchTopic *t = ONLY(k->Topics);
    const FetchRequest_FetchPartition *p = t ? ONLY(t->Partitions) : NULL;
    if (!p || memcmp(&t->TopicId, &tp->id, sizeof(kuuid_t)) != 0 || p->Partition != tp->partition)
        return "not exactly the metadata partition";
    m->cluster_id = cluster_id(a, k->ClusterId);
    m->u.fetch_req = (raft_fetch_req_t){.replica_id = k->ReplicaState.ReplicaId,
                                        .max_wait_ms = k->MaxWaitMs,
                                        .current_leader_epoch = p->CurrentLeaderEpoch,
                                        .fetch_offset = p->FetchOffset,
                                        .last_fetched_epoch = p->LastFetchedEpoch,
                                        .log_start_offset = p->LogStartOffset};
    return NULL;
}

static void *fetch_resp_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    const raft_fetch_resp_t *f = &m->u.fetch_resp;
    FetchResponse *k = proto_new(a, &FetchResponse_desc);
    FetchResponse_FetchableTopicResponse *t =
        NEW_ONE(a, k->Responses, FetchResponse_FetchableTopicResponse);
    t->TopicId = tp->id;
    FetchResponse_PartitionData *p = NEW_ONE(a, t->Partitions, FetchResponse_PartitionData);
    p->PartitionIndex = tp->partition;
    p->ErrorCode = f->error_code;
    p->HighWatermark = f->high_watermark;
    p->LogStartOffset = f->log_start_offset;
    p->DivergingEpoch = (FetchResponse_EpochEndOffset){f->diverging_epoch.epoch,
                                                       f->diverging_epoch.end_offset};
    p->CurrentLeader = (FetchResponse_LeaderIdAndEpoch){f->current_leader.leader_id,
                                                        f->current_leader.leader_epoch};
    p->SnapshotId = (FetchResponse_SnapshotId){f->snapshot_id.end_offset, f->snapshot_id.epoch};
    buf_t b;
    buf_init(&b);
    raft_wire_records_encode(f->records, f->n_records, &b);
    uint8_t *bytes = b.len ? arena_alloc(a, b.len) : NULL;
    if (b.len)
        memcpy(bytes, b.data, b.len);
    p->Records = (kbytes_t){bytes, (int32_t)b.len};
    buf_free(&b);
    return k;
}

static const char *fetch_resp_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                   raft_msg_t *m)
{
    const FetchResponse *k = kv;
    const FetchResponse_FetchableTopicResponse *t = ONLY(k->Responses);
    const FetchResponse_PartitionData *p = t ? ONLY(t->Partitions) : NULL;
    raft_fetch_resp_t *f = &m->u.fetch_resp;
    if (k->ErrorCode != RAFT_ERR_NONE && k->Responses.count <= 0) {
        *f = (raft_fetch_resp_t){.error_code = k->ErrorCode, .high_watermark = -1,
                                 .log_start_offset = -1, .diverging_epoch = {-1, -1},
                                 .current_leader = {-1, -1}, .snapshot_id = {-1, -1}};
        return NULL;
    }
    if (!p || memcmp(&t->TopicId, &tp->id, sizeof(kuuid_t)) != 0 ||
        p->PartitionIndex != tp->partition)
        return "not exactly the metadata partition";
    *f = (raft_fetch_resp_t){
        .error_code = p->ErrorCode, .high_watermark = p->HighWatermark,
        .log_start_offset = p->LogStartOffset,
        .diverging_epoch = {p->DivergingEpoch.Epoch, p->DivergingEpoch.EndOffset},
        .current_leader = {p->CurrentLeader.LeaderId, p->CurrentLeader.LeaderEpoch},
        .snapshot_id = {p->SnapshotId.EndOffset, p->SnapshotId.Epoch}};
    const char *why = NULL;
    if (p->Records.len > 0 && raft_wire_records_decode(p->Records.ptr, (size_t)p->Records.len, a,
                                                       &f->records, &f->n_records, &why) < 0)
        return why;
    return NULL;
}

/* ---- FetchSnapshot -------------------------------------------------------------- */

static void *snap_req_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    const raft_fetch_snapshot_req_t *q = &m->u.snap_req;
    FetchSnapshotRequest *k = proto_new(a, &FetchSnapshotRequest_desc);
    k->ClusterId = kstr_from(m->cluster_id);
    k->ReplicaId = q->replica_id;
    k->MaxBytes = q->max_bytes;
    FetchSnapshotRequest_TopicSnapshot *t = NEW_ONE(a, k->Topics, FetchSnapshotRequest_TopicSnapshot);
    t->Name = kstr_from(tp->name);
    FetchSnapshotRequest_PartitionSnapshot *p =
        NEW_ONE(a, t->Partitions, FetchSnapshotRequest_PartitionSnapshot);
    p->Partition = tp->partition;
    p->CurrentLeaderEpoch = q->current_leader_epoch;
    p->SnapshotId = (FetchSnapshotRequest_SnapshotId){q->snapshot_id.end_offset, q->snapshot_id.epoch};
    p->Position = q->position;
    return k;
}

static const char *snap_req_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                 raft_msg_t *m)
{
    const FetchSnapshotRequest *k = kv;
    const FetchSnapshotRequest_TopicSnapshot *t = ONLY(k->Topics);
    const FetchSnapshotRequest_PartitionSnapshot *p = t ? ONLY(t->Partitions) : NULL;
    if (!p || !topic_ok(t->Name, tp) || p->Partition != tp->partition)
        return "not exactly the metadata partition";
    m->cluster_id = cluster_id(a, k->ClusterId);
    m->u.snap_req = (raft_fetch_snapshot_req_t){
        .replica_id = k->ReplicaId, .max_bytes = k->MaxBytes,
        .current_leader_epoch = p->CurrentLeaderEpoch,
        .snapshot_id = {p->SnapshotId.EndOffset, p->SnapshotId.Epoch}, .position = p->Position};
    return NULL;
}

static void *snap_resp_to(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    const raft_fetch_snapshot_resp_t *s = &m->u.snap_resp;
    FetchSnapshotResponse *k = proto_new(a, &FetchSnapshotResponse_desc);
    FetchSnapshotResponse_TopicSnapshot *t =
        NEW_ONE(a, k->Topics, FetchSnapshotResponse_TopicSnapshot);
    t->Name = kstr_from(tp->name);
    FetchSnapshotResponse_PartitionSnapshot *p =
        NEW_ONE(a, t->Partitions, FetchSnapshotResponse_PartitionSnapshot);
    p->Index = tp->partition;
    p->ErrorCode = s->error_code;
    p->SnapshotId = (FetchSnapshotResponse_SnapshotId){s->snapshot_id.end_offset, s->snapshot_id.epoch};
    p->CurrentLeader = (FetchSnapshotResponse_LeaderIdAndEpoch){s->current_leader.leader_id,
                                                                s->current_leader.leader_epoch};
    p->Size = s->size;
    p->Position = s->position;
    p->UnalignedRecords = (kbytes_t){s->bytes, (int32_t)s->n_bytes};
    return k;
}

static const char *snap_resp_from(const void *kv, const raft_wire_topic_t *tp, arena_t *a,
                                  raft_msg_t *m)
{
    UNUSED(a);
    const FetchSnapshotResponse *k = kv;
    const FetchSnapshotResponse_TopicSnapshot *t = ONLY(k->Topics);
    const FetchSnapshotResponse_PartitionSnapshot *p = t ? ONLY(t->Partitions) : NULL;
    raft_fetch_snapshot_resp_t *s = &m->u.snap_resp;
    if (k->ErrorCode != RAFT_ERR_NONE && k->Topics.count <= 0) {
        *s = (raft_fetch_snapshot_resp_t){.error_code = k->ErrorCode, .snapshot_id = {-1, -1},
                                          .current_leader = {-1, -1}};
        return NULL;
    }
    if (!p || !topic_ok(t->Name, tp) || p->Index != tp->partition)
        return "not exactly the metadata partition";
    int32_t n = MAX(p->UnalignedRecords.len, 0);
    *s = (raft_fetch_snapshot_resp_t){
        .error_code = p->ErrorCode, .snapshot_id = {p->SnapshotId.EndOffset, p->SnapshotId.Epoch},
        .current_leader = {p->CurrentLeader.LeaderId, p->CurrentLeader.LeaderEpoch},
        .size = p->Size, .position = p->Position, .n_bytes = (size_t)n,
        .bytes = n ? p->UnalignedRecords.ptr : NULL};
    return NULL;
}

/* ---- dispatch ------------------------------------------------------------------- */

typedef void *(*to_fn)(const raft_msg_t *, const raft_wire_topic_t *, arena_t *);
typedef const char *(*from_fn)(const void *, const raft_wire_topic_t *, arena_t *, raft_msg_t *);

static const struct {
    to_fn to;
    from_fn from;
} CODECS[RAFT_MSG_TYPE_COUNT] = {
    [RAFT_MSG_VOTE_REQ] = {vote_req_to, vote_req_from},
    [RAFT_MSG_VOTE_RESP] = {vote_resp_to, vote_resp_from},
    [RAFT_MSG_BEGIN_EPOCH_REQ] = {begin_req_to, begin_req_from},
    [RAFT_MSG_BEGIN_EPOCH_RESP] = {BeginQuorumEpochResponse_to, BeginQuorumEpochResponse_from},
    [RAFT_MSG_END_EPOCH_REQ] = {end_req_to, end_req_from},
    [RAFT_MSG_END_EPOCH_RESP] = {EndQuorumEpochResponse_to, EndQuorumEpochResponse_from},
    [RAFT_MSG_FETCH_REQ] = {fetch_req_to, fetch_req_from},
    [RAFT_MSG_FETCH_RESP] = {fetch_resp_to, fetch_resp_from},
    [RAFT_MSG_FETCH_SNAPSHOT_REQ] = {snap_req_to, snap_req_from},
    [RAFT_MSG_FETCH_SNAPSHOT_RESP] = {snap_resp_to, snap_resp_from},
};

void *raft_wire_to_kafka(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a)
{
    CK_ASSERT((unsigned)m->type < RAFT_MSG_TYPE_COUNT);
    return CODECS[m->type].to(m, tp, a);
}

bool raft_wire_from_kafka(raft_msg_type_t type, const void *k, const raft_wire_topic_t *tp,
                          arena_t *a, raft_msg_t *out, const char **why)
{
    CK_ASSERT((unsigned)type < RAFT_MSG_TYPE_COUNT);
    memset(out, 0, sizeof(*out));
    out->type = type;
    const char *w = CODECS[type].from(k, tp, a, out);
    if (why)
        *why = w;
    return w == NULL;
}
