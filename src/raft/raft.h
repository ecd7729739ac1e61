/*
 * raft.h - Chronik's Raft core: the metadata quorum's consensus as a pure,
 * single-partition state machine (KIP-595 KRaft, with KIP-996 pre-vote and
 * the dissertation's check-quorum).
 *
 * Pure means: no clock reads, no sockets, no files, no threads, and
 * randomness only from the seed in raft_config_t. Every input carries the
 * current time. The host (src/meta in production, tests/sim in the
 * simulator) feeds inputs and executes outputs:
 *
 *   inputs                                outputs (raft_ready)
 *   raft_recv      a message arrived      msgs     messages to send
 *   raft_tick      time passed            ops      durable I/O, in order
 *   raft_propose   append a record        committed entries to apply
 *   raft_io_done   ops up to seq durable  restore_snapshot, want_snapshot
 *   raft_snapshot_taken, _skipped         role / epoch / leader changes
 *   raft_resign
 *
 * Protocol, in short. Terms are leader epochs, log positions are offsets.
 * Replication is pull-based: followers and observers send Fetch to the
 * leader with (FetchOffset, LastFetchedEpoch); the leader checks them
 * against its log and answers with records, with DivergingEpoch (the
 * follower truncates and refetches) or with SnapshotId (the follower
 * fetched below the leader's log start and must FetchSnapshot first). The
 * leader learns each voter's durable position from its fetch offsets and
 * advances the high watermark to the offset a majority of voters hold,
 * but only once that includes an entry of its own epoch (a new leader
 * appends a leader-change control entry first). Followers learn the high
 * watermark from fetch responses. BeginQuorumEpoch announces a new leader;
 * EndQuorumEpoch hands leadership over on shutdown, naming the most
 * caught-up voters as preferred successors.
 *
 * Elections. A voter that loses its leader (no successful fetch for
 * fetch_timeout_ms) or finds none (unattached for a randomised election
 * timeout) first becomes PROSPECTIVE and asks for pre-votes: a Vote with
 * pre_vote set for epoch+1, which changes no state anywhere. Voters refuse
 * pre-votes while they have heard from a live leader within the fetch
 * timeout, so a restarted or healed node cannot depose a healthy leader.
 * With a majority of pre-votes it becomes CANDIDATE: epoch+1, votes for
 * itself, asks for real votes. Votes follow the up-to-date rule (compare
 * last epoch, then log end offset) and one vote per epoch. A candidate
 * asked for its vote by a rival candidate of its own epoch (a split vote)
 * gives the round up at once and retries after a random backoff. A leader that
 * has not been fetched from by a majority of voters within fetch_timeout_ms
 * steps down (check-quorum).
 *
 * Durability contract (what the host must do with raft_ready.ops):
 *  1. Execute ops in the order given, across readies. Each op has a seq,
 *     increasing by one. Report raft_io_done(seq) when every op <= seq is
 *     durable (one fsync may cover many ops).
 *  2. PERSIST_STATE writes the quorum-state record (epoch, voted id, leader
 *     id) atomically. The core never lets a message leave while a state
 *     write is unacknowledged: nothing observable ever reflects a vote or
 *     an epoch that a crash could forget.
 *  3. A crash may keep any prefix of the unacknowledged ops (an APPEND may
 *     be cut between entries), never a later op without an earlier one.
 *  4. At start the host passes back what is durable (raft_disk_state_t).
 * The core holds the unsnapshotted log suffix in memory (the metadata log
 * is small by construction: snapshots bound it), serves fetches from it
 * and hands out committed entries from it.
 *
 * Pointer lifetime: everything a raft_ready_t points to stays valid until
 * the next call into the core that takes a now_ms argument or the next
 * raft_ready. Messages passed to raft_recv are copied as needed before it
 * returns.
 */
#ifndef CHRONIK_RAFT_RAFT_H
#define CHRONIK_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits ------------------------------------------------------------ */
#define RAFT_VOTERS_MAX 16            /* static voter set size */
#define RAFT_PEERS_MAX 64             /* voters + observers a leader tracks */
#define RAFT_ENTRY_BYTES_MAX (1u << 20)
#define RAFT_FETCH_ENTRIES_MAX 4096   /* records in one fetch response */
#define RAFT_SNAPSHOT_BYTES_MAX ((size_t)256 << 20)

/* ---- configuration defaults (Kafka's names in comments) ----------------- */
#define RAFT_ELECTION_TIMEOUT_MS_DEFAULT 1000     /* quorum.election.timeout.ms */
#define RAFT_ELECTION_BACKOFF_MAX_MS_DEFAULT 1000 /* quorum.election.backoff.max.ms */
#define RAFT_FETCH_TIMEOUT_MS_DEFAULT 2000        /* quorum.fetch.timeout.ms */
#define RAFT_REQUEST_TIMEOUT_MS_DEFAULT 2000      /* quorum.request.timeout.ms */
#define RAFT_RETRY_BACKOFF_MS_DEFAULT 20          /* quorum.retry.backoff.ms */
#define RAFT_FETCH_MAX_WAIT_MS_DEFAULT 500        /* long-poll of an idle fetch */
#define RAFT_FETCH_MAX_BYTES_DEFAULT (1 << 20)
#define RAFT_SNAPSHOT_CHUNK_BYTES_DEFAULT (1 << 20)

#define RAFT_NO_NODE (-1)
#define RAFT_NO_EPOCH (-1)

/* ---- Kafka error codes the Raft APIs use -------------------------------- */
#define RAFT_ERRORS(X)                 \
    X(NONE, 0)                         \
    X(NOT_LEADER_OR_FOLLOWER, 6)       \
    X(BROKER_NOT_AVAILABLE, 8)         \
    X(INVALID_REQUEST, 42)             \
    X(FENCED_LEADER_EPOCH, 74)         \
    X(UNKNOWN_LEADER_EPOCH, 75)        \
    X(INCONSISTENT_VOTER_SET, 94)      \
    X(SNAPSHOT_NOT_FOUND, 98)          \
    X(POSITION_OUT_OF_RANGE, 99)       \
    X(INCONSISTENT_CLUSTER_ID, 104)

enum raft_error {
#define RAFT_ERROR_ENUM(name, code) RAFT_ERR_##name = code,
    RAFT_ERRORS(RAFT_ERROR_ENUM)
#undef RAFT_ERROR_ENUM
};
const char *raft_error_name(int16_t code);

/* Results of local calls (not wire codes). */
typedef enum raft_status {
    RAFT_OK = 0,
    RAFT_NOT_LEADER,    /* propose on a non-leader (or a resigning leader) */
    RAFT_TOO_LARGE,     /* entry above RAFT_ENTRY_BYTES_MAX */
    RAFT_RETRY_LATER,   /* snapshot offset not yet durable locally */
    RAFT_INVALID,       /* arguments make no sense (offset out of range) */
} raft_status_t;

typedef enum raft_role {
    RAFT_UNATTACHED = 0, /* no known leader in this epoch */
    RAFT_FOLLOWER,       /* replicating from leader_id (voters and observers) */
    RAFT_PROSPECTIVE,    /* asking for pre-votes, epoch unchanged */
    RAFT_CANDIDATE,      /* asking for votes in its own new epoch */
    RAFT_LEADER,
    RAFT_RESIGNED,       /* leader handing over: serves fetches, takes no proposals */
} raft_role_t;
const char *raft_role_name(raft_role_t role);

/* ---- log entries --------------------------------------------------------- */
enum raft_entry_kind {
    RAFT_ENTRY_DATA = 0,          /* a proposal; applied by the state machine */
    RAFT_ENTRY_LEADER_CHANGE = 1, /* control record a new leader appends; its data
                                     is a Kafka LeaderChangeMessage v0 */
};

typedef struct raft_entry {
    int64_t offset;
    int32_t epoch;
    uint8_t kind;          /* enum raft_entry_kind */
    uint32_t len;
    const uint8_t *data;
} raft_entry_t;

typedef struct raft_snapshot_id {
    int64_t end_offset; /* first offset not in the snapshot; 0 = no snapshot */
    int32_t epoch;      /* epoch of the entry at end_offset - 1 */
} raft_snapshot_id_t;

typedef struct raft_epoch_end {
    int32_t epoch;
    int64_t end_offset;
} raft_epoch_end_t;

typedef struct raft_leader_epoch {
    int32_t leader_id;
    int32_t leader_epoch;
} raft_leader_epoch_t;

/* ---- messages: the one-partition fields of the Kafka Raft APIs ------------ */
typedef enum raft_msg_type {
    RAFT_MSG_VOTE_REQ = 0,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_BEGIN_EPOCH_REQ,
    RAFT_MSG_BEGIN_EPOCH_RESP,
    RAFT_MSG_END_EPOCH_REQ,
    RAFT_MSG_END_EPOCH_RESP,
    RAFT_MSG_FETCH_REQ,
    RAFT_MSG_FETCH_RESP,
    RAFT_MSG_FETCH_SNAPSHOT_REQ,
    RAFT_MSG_FETCH_SNAPSHOT_RESP,
    RAFT_MSG_TYPE_COUNT,
} raft_msg_type_t;
const char *raft_msg_type_name(raft_msg_type_t t);

typedef struct raft_vote_req {
    int32_t candidate_epoch;   /* for a pre-vote: the epoch it would take */
    int32_t candidate_id;
    int32_t last_offset_epoch; /* epoch of the candidate's last entry */
    int64_t last_offset;       /* the candidate's log end offset */
    bool pre_vote;
} raft_vote_req_t;

typedef struct raft_vote_resp {
    int16_t error_code;
    int32_t leader_id;
    int32_t leader_epoch;
    bool vote_granted;
} raft_vote_resp_t;

typedef struct raft_begin_epoch_req {
    int32_t leader_id;
    int32_t leader_epoch;
} raft_begin_epoch_req_t;

typedef struct raft_epoch_resp { /* BeginQuorumEpoch and EndQuorumEpoch */
    int16_t error_code;
    int32_t leader_id;
    int32_t leader_epoch;
} raft_epoch_resp_t;

typedef struct raft_end_epoch_req {
    int32_t leader_id;
    int32_t leader_epoch;
    int32_t n_preferred;
    int32_t preferred_successors[RAFT_VOTERS_MAX];
} raft_end_epoch_req_t;

typedef struct raft_fetch_req {
    int32_t replica_id;
    int32_t max_wait_ms;
    int32_t current_leader_epoch;
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int64_t log_start_offset;
} raft_fetch_req_t;

typedef struct raft_fetch_resp {
    int16_t error_code;
    int64_t high_watermark;
    int64_t log_start_offset;
    raft_epoch_end_t diverging_epoch;  /* epoch -1: absent */
    raft_leader_epoch_t current_leader;
    raft_snapshot_id_t snapshot_id;    /* end_offset -1: absent */
    size_t n_records;
    const raft_entry_t *records;
} raft_fetch_resp_t;

typedef struct raft_fetch_snapshot_req {
    int32_t replica_id;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    raft_snapshot_id_t snapshot_id;
    int64_t position;
} raft_fetch_snapshot_req_t;

typedef struct raft_fetch_snapshot_resp {
    int16_t error_code;
    raft_snapshot_id_t snapshot_id;
    raft_leader_epoch_t current_leader;
    int64_t size;
    int64_t position;
    size_t n_bytes;
    const uint8_t *bytes;
} raft_fetch_snapshot_resp_t;

typedef struct raft_msg {
    raft_msg_type_t type;
    int32_t from;
    int32_t to;
    /* Requests: chosen by the sender. Responses: the request's corr, so the
     * requester can drop stale or duplicated answers. On the wire this is
     * the Kafka correlation id (the host keeps the mapping). */
    uint64_t corr;
    const char *cluster_id; /* requests only; NULL = not checked */
    union {
        raft_vote_req_t vote_req;
        raft_vote_resp_t vote_resp;
        raft_begin_epoch_req_t begin_req;
        raft_end_epoch_req_t end_req;
        raft_epoch_resp_t epoch_resp;
        raft_fetch_req_t fetch_req;
        raft_fetch_resp_t fetch_resp;
        raft_fetch_snapshot_req_t snap_req;
        raft_fetch_snapshot_resp_t snap_resp;
    } u;
} raft_msg_t;

/* ---- durable state ------------------------------------------------------- */
/* The quorum-state record (QuorumStateData: LeaderEpoch, VotedId, LeaderId). */
typedef struct raft_qstate {
    int32_t epoch;
    int32_t voted_id;
    int32_t leader_id;
} raft_qstate_t;

typedef enum raft_op_kind {
    RAFT_OP_PERSIST_STATE = 0, /* write qstate atomically */
    RAFT_OP_TRUNCATE,          /* drop log entries at offsets >= truncate_to */
    RAFT_OP_APPEND,            /* append entries at the log end */
    RAFT_OP_SNAPSHOT_SAVE,     /* store snapshot; drop log entries below its end */
    RAFT_OP_SNAPSHOT_INSTALL,  /* store snapshot; replace the whole log by it */
} raft_op_kind_t;

typedef struct raft_op {
    raft_op_kind_t kind;
    uint64_t seq;
    raft_qstate_t state;
    int64_t truncate_to;
    const raft_entry_t *entries;
    size_t n_entries;
    raft_snapshot_id_t snapshot_id;
    const uint8_t *snapshot;
    size_t snapshot_len;
} raft_op_t;

/* What the host read back from disk at start. */
typedef struct raft_disk_state {
    raft_qstate_t qstate;           /* {0, -1, -1} for a fresh node */
    raft_snapshot_id_t snapshot_id; /* {0, -1}: no snapshot */
    const uint8_t *snapshot;
    size_t snapshot_len;
    const raft_entry_t *entries;    /* offsets snapshot_id.end_offset, +1, ... */
    size_t n_entries;
} raft_disk_state_t;

/* ---- configuration ------------------------------------------------------- */
typedef struct raft_config {
    int32_t node_id;
    int32_t voters[RAFT_VOTERS_MAX]; /* static voter set, same on all nodes */
    int n_voters;
    const char *cluster_id;          /* NULL: not checked; must outlive the core */
    int32_t election_timeout_ms;
    int32_t election_backoff_max_ms;
    int32_t fetch_timeout_ms;
    int32_t request_timeout_ms;
    int32_t retry_backoff_ms;
    int32_t fetch_max_wait_ms;
    int32_t fetch_max_bytes;
    int32_t snapshot_chunk_bytes;
    int64_t snapshot_min_entries; /* ask for a snapshot once this many committed
                                     entries sit in the log; 0 = never ask */
    int64_t snapshot_min_bytes;   /* ...or once the committed entries since the
                                     last snapshot hold this many bytes
                                     (metadata.log.max.record.bytes.between.snapshots);
                                     0 = never ask */
    int64_t snapshot_interval_ms; /* ...or once this long has passed since the
                                     last snapshot and something new is
                                     committed (metadata.log.max.snapshot.interval.ms);
                                     0 = never ask. Checked at each raft_ready. */
    uint64_t random_seed;
} raft_config_t;

void raft_config_defaults(raft_config_t *cfg);

/* ---- outputs ------------------------------------------------------------- */
typedef struct raft_ready {
    const raft_op_t *ops;
    size_t n_ops;
    const raft_msg_t *msgs;
    size_t n_msgs;
    /* The state machine must first restore this snapshot (a follower
     * installed one from the leader), then apply `committed` in order. */
    bool restore_snapshot;
    raft_snapshot_id_t snapshot_id;
    const uint8_t *snapshot;
    size_t snapshot_len;
    const raft_entry_t *committed;
    size_t n_committed;
    int64_t high_watermark;
    /* Please call raft_snapshot_taken with a snapshot of the applied state. */
    bool want_snapshot;
    bool role_changed; /* role, epoch or leader differ from the last ready */
    raft_role_t role;
    int32_t epoch;
    int32_t leader_id;
} raft_ready_t;

typedef struct raft_replica_info {
    int32_t replica_id;
    int64_t log_end_offset;     /* -1 unknown */
    int64_t last_fetch_ms;      /* -1 unknown */
} raft_replica_info_t;

typedef struct raft_quorum_info { /* DescribeQuorum, answered by the leader */
    int32_t leader_id;
    int32_t leader_epoch;
    int64_t high_watermark;
    int n_voters;
    raft_replica_info_t voters[RAFT_VOTERS_MAX];
    int n_observers;
    raft_replica_info_t observers[RAFT_PEERS_MAX];
} raft_quorum_info_t;

typedef struct raft_stats {
    uint64_t elections;      /* times this node became candidate */
    uint64_t prevote_rounds;
    uint64_t step_downs;     /* check-quorum resignations */
    uint64_t split_votes;    /* rounds given up to a rival candidate of the same epoch */
    uint64_t truncations;
    uint64_t snapshots_installed;
    uint64_t snapshots_taken;     /* raft_snapshot_taken accepted */
    uint64_t msgs_ignored;   /* stale, duplicated or malformed */
    uint64_t protocol_violations; /* messages no correct peer sends */
} raft_stats_t;

/* ---- the core ------------------------------------------------------------ */
typedef struct raft raft_t;

raft_t *raft_new(const raft_config_t *cfg, const raft_disk_state_t *disk, int64_t now_ms);
void raft_free(raft_t *r);

void raft_tick(raft_t *r, int64_t now_ms);
void raft_recv(raft_t *r, const raft_msg_t *m, int64_t now_ms);
raft_status_t raft_propose(raft_t *r, const void *data, size_t len, int64_t now_ms,
                           int64_t *offset_out);
void raft_io_done(raft_t *r, uint64_t seq, int64_t now_ms);
/* The state machine's snapshot covering offsets < end_offset (<= what was
 * applied). RAFT_RETRY_LATER when end_offset is not yet durable here. */
raft_status_t raft_snapshot_taken(raft_t *r, int64_t end_offset, const void *data, size_t len,
                                  int64_t now_ms);
/* The host could not take the snapshot it was asked for: ask again only
 * after another full threshold (bytes or interval) has passed. */
void raft_snapshot_skipped(raft_t *r, int64_t now_ms);
/* Graceful shutdown: a leader stops taking proposals and sends
 * EndQuorumEpoch naming its most caught-up voters. No-op otherwise. */
void raft_resign(raft_t *r, int64_t now_ms);
/* True once a shutdown may proceed: not leading, or a newer epoch seen. */
bool raft_resign_done(const raft_t *r);

/* Collect the outputs accumulated since the previous call. */
const raft_ready_t *raft_ready(raft_t *r);
/* Earliest time at which raft_tick has work to do (INT64_MAX: none). */
int64_t raft_next_deadline(const raft_t *r);

/* ---- introspection ------------------------------------------------------- */
raft_role_t raft_role(const raft_t *r);
int32_t raft_epoch(const raft_t *r);
int32_t raft_leader_id(const raft_t *r);
int32_t raft_voted_id(const raft_t *r);
int64_t raft_high_watermark(const raft_t *r);
int64_t raft_log_start(const raft_t *r);
int64_t raft_log_end(const raft_t *r);
int32_t raft_last_epoch(const raft_t *r);
/* A leader: the offset of its epoch's first entry (its leader change);
 * every entry below it is committed once that one is. -1 otherwise. */
int64_t raft_epoch_start(const raft_t *r);
raft_snapshot_id_t raft_snapshot_id(const raft_t *r);
const raft_entry_t *raft_entry_at(const raft_t *r, int64_t offset); /* NULL outside the log */
bool raft_is_voter(const raft_t *r);
const raft_stats_t *raft_stats(const raft_t *r);
bool raft_describe(const raft_t *r, raft_quorum_info_t *out); /* false unless leader */

#endif
