/*
 * wire.h - the Raft core's messages (raft.h) as the Kafka Raft APIs: to and
 * from the generated structs of src/proto, message bodies in bytes, and log
 * entries as record batches. The host (src/meta) adds request/response
 * headers and keeps the correlation ids; from, to and corr of a raft_msg_t
 * are its business, everything else is here.
 *
 * Versions: the ones Kafka 3.8 controllers speak: Vote v0, BeginQuorumEpoch
 * v0, EndQuorumEpoch v0, Fetch v16 (ReplicaState, topic ids), FetchSnapshot
 * v0. Every message names exactly one topic and one partition, the
 * metadata log's (raft_wire_topic_t); anything else fails to decode.
 *
 * Pre-vote. Vote v0 has no PreVote field (KIP-996 adds one in Vote v2),
 * but it is a flexible version, so a pre-vote travels as a tagged field
 * that older peers skip: tag RAFT_WIRE_PREVOTE_TAG in the tagged-field
 * section of the request's PartitionData, one byte, value 1. The generated
 * codec skips tags it does not know, so raft_wire_encode appends it after
 * the struct is encoded and raft_wire_decode looks for it in the bytes.
 * A Kafka 3.8 voter that skips it answers as for a real vote (it moves to
 * epoch+1 and may vote): still one vote per epoch, so safe, but a mixed
 * cluster loses the no-disruption guarantee of pre-vote.
 *
 * Records. Entries travel (in Fetch responses, and on disk) as uncompressed
 * record batches magic v2: consecutive data entries of one epoch share a
 * batch (baseOffset = first offset, partitionLeaderEpoch = epoch, one
 * record per entry, value = entry bytes, null key); a leader-change entry
 * is a control batch holding one LEADER_CHANGE control record (key: int16
 * version 0, int16 type 2; value: the LeaderChangeMessage).
 */
#ifndef CHRONIK_RAFT_WIRE_H
#define CHRONIK_RAFT_WIRE_H

#include "base/arena.h"
#include "base/buf.h"
#include "proto/proto.h"
#include "raft/raft.h"

#define RAFT_WIRE_PREVOTE_TAG 0x4350      /* in VoteRequest PartitionData */
#define RAFT_WIRE_BATCH_RECORDS_MAX 1024  /* data entries per record batch */
#define RAFT_WIRE_CONTROL_LEADER_CHANGE 2 /* Kafka's ControlRecordType */
#define RAFT_WIRE_WHY_MAX 160

typedef struct raft_wire_topic {
    const char *name;  /* "__cluster_metadata" */
    kuuid_t id;        /* its topic id (Fetch v13+ names topics by id) */
    int32_t partition; /* 0 */
} raft_wire_topic_t;

typedef struct raft_wire_api {
    int16_t api_key;
    int16_t version;
    bool response;
    const proto_struct_desc *desc; /* the request or response struct */
} raft_wire_api_t;

/* The Kafka API, version and struct that carry a message type. */
raft_wire_api_t raft_wire_api(raft_msg_type_t type);

/* m as the generated struct of its API (allocated in a, views into m). */
void *raft_wire_to_kafka(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a);
/* A decoded struct of type's API as a core message (from/to/corr zero).
 * Strings, records and bytes are views into k or come from a. Returns
 * false, with *why, when it does not name exactly our one partition. */
bool raft_wire_from_kafka(raft_msg_type_t type, const void *k, const raft_wire_topic_t *tp,
                          arena_t *a, raft_msg_t *out, const char **why);

/* The body of m in its API's version (no header, no size prefix). */
void raft_wire_encode(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a, buf_t *w);
/* Decodes a body of `type`: 0, or -1 with a reason in why. Views point
 * into body and a. */
int raft_wire_decode(raft_msg_type_t type, const uint8_t *body, size_t n,
                     const raft_wire_topic_t *tp, arena_t *a, raft_msg_t *out, char *why,
                     size_t why_len);

/* Entries (consecutive offsets) as record batches, appended to w. */
void raft_wire_records_encode(const raft_entry_t *e, size_t n, buf_t *w);
/* Record batches back into entries (views into p, array from a). A
 * truncated batch at the end is ignored, as Kafka fetchers do. */
int raft_wire_records_decode(const uint8_t *p, size_t n, arena_t *a, const raft_entry_t **out,
                             size_t *count, const char **why);

#endif
