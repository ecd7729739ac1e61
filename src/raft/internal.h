/*
 * internal.h - state shared by the files of the Raft core. Not part of the
 * module's interface (that is raft.h); nothing outside src/raft includes it.
 *
 * Invariants (checked by raft_check_invariants after every input):
 *  I1 log.start <= hw <= log end; applied <= hw.
 *  I2 epochs in the log never decrease; the last one is <= epoch.
 *  I3 a leader's log ends in its own epoch and epoch_start_offset is the
 *     offset of its leader-change entry.
 *  I4 durable_end <= log end.
 *  I5 voted_id is set whenever role is CANDIDATE or LEADER (to self).
 */
#ifndef CHRONIK_RAFT_INTERNAL_H
#define CHRONIK_RAFT_INTERNAL_H

#include "raft/raft.h"

#include <stdint.h>

#define NEVER_MS INT64_MIN
#define FOREVER_MS INT64_MAX
/* A fetch unanswered this long past its max wait is resent. */
#define FETCH_RESPONSE_GRACE_MS 500

/* ---- the in-memory log (log.c) ------------------------------------------ */
typedef struct epoch_start {
    int32_t epoch;
    int64_t start;
} epoch_start_t;

typedef struct raft_log {
    raft_entry_t *ents;  /* ents[head .. head+count) hold offsets start.. */
    size_t head, count, cap;
    int64_t start;       /* log start offset == snapshot end offset */
    int32_t start_epoch; /* epoch of entry start-1 (the snapshot's), -1 none */
    epoch_start_t *epochs; /* leader-epoch cache for the entries in the log */
    size_t n_epochs, cap_epochs;
} raft_log_t;

typedef enum fetch_check {
    FETCH_VALID = 0,
    FETCH_DIVERGING,
    FETCH_SNAPSHOT,
} fetch_check_t;

void raft_log_init(raft_log_t *l, raft_snapshot_id_t snap);
void raft_log_free(raft_log_t *l);
int64_t raft_log_end_offset(const raft_log_t *l);
int32_t raft_log_last_epoch(const raft_log_t *l);
const raft_entry_t *raft_log_get(const raft_log_t *l, int64_t offset);
/* Entries [from, to) as one contiguous array. */
const raft_entry_t *raft_log_slice(const raft_log_t *l, int64_t from, int64_t to);
void raft_log_append(raft_log_t *l, int32_t epoch, uint8_t kind, const void *data, uint32_t len);
void raft_log_truncate(raft_log_t *l, int64_t offset);
void raft_log_drop_prefix(raft_log_t *l, int64_t offset);
void raft_log_reset(raft_log_t *l, raft_snapshot_id_t snap);
/* Largest epoch <= epoch in the log and the offset where it ends; false
 * when that is unknowable (the epoch is older than the snapshot). */
bool raft_log_end_for_epoch(const raft_log_t *l, int32_t epoch, raft_epoch_end_t *out);
fetch_check_t raft_log_validate(const raft_log_t *l, int64_t offset, int32_t epoch,
                                raft_epoch_end_t *diverging);
/* Where a follower truncates on DivergingEpoch (KRaft's rule). */
int64_t raft_log_truncation_point(const raft_log_t *l, raft_epoch_end_t diverging);

/* ---- small growable arrays ------------------------------------------------ */
#define VEC_PUSH(arr, n, cap)                                                  \
    do {                                                                       \
        if ((n) == (cap)) {                                                    \
            (cap) = (cap) ? (cap) * 2 : 8;                                     \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                   \
        }                                                                      \
    } while (0)

/* ---- the core's state ----------------------------------------------------- */
typedef struct peer {
    int32_t id;
    bool used;
    bool voter;
    int64_t end_offset;      /* last validated fetch offset; -1 unknown */
    int64_t last_fetch_ms;   /* last Fetch/FetchSnapshot in this epoch */
    int64_t last_sent_hw;    /* high watermark in our last answer */
    bool begin_acked;        /* BeginQuorumEpoch acknowledged or fetching */
    int64_t begin_sent_ms;
    bool parked;             /* a fetch waits for data or its deadline */
    bool answer_now;
    uint64_t corr;
    raft_fetch_req_t req;
    int64_t park_deadline;
} peer_t;

typedef struct intent { /* an op not yet handed to the host */
    raft_op_kind_t kind;
    int64_t from, to;
    raft_snapshot_id_t snap;
} intent_t;

typedef struct pending_io { /* an op handed out, durability not yet known */
    uint64_t seq;
    bool is_state;
    uint32_t gen;  /* is_state: the state generation it persists */
    int64_t end;   /* log op: durable log end once done */
} pending_io_t;

typedef struct outmsg {
    raft_msg_t msg;
    uint32_t gate; /* state generation that must be durable first */
} outmsg_t;

typedef struct snap_req { /* a FetchSnapshot answered at the next ready */
    int32_t from;
    uint64_t corr;
    raft_fetch_snapshot_req_t req;
} snap_req_t;

struct raft {
    raft_config_t cfg;
    int self_voter;          /* index in cfg.voters, -1 for an observer */
    int majority;
    uint64_t rng;
    int64_t now;

    /* quorum state: persisted through PERSIST_STATE */
    int32_t epoch, voted_id, leader_id;
    uint32_t state_gen;      /* bumped at every change of the three above
                                (but leader_id = self, never persisted) */
    uint32_t durable_gen;    /* the generation known durable */
    raft_role_t role;

    raft_log_t log;
    int64_t hw, applied;
    uint8_t *snap;           /* the current snapshot's bytes */
    size_t snap_len;
    bool restore_pending;    /* restore_snapshot at the next ready */
    bool snapshot_asked;
    int64_t snap_bytes;      /* bytes of entries committed (handed out) since
                                the last snapshot: the byte trigger */
    int64_t snap_taken_ms;   /* when the last snapshot was taken, installed or
                                loaded (or the core started): the interval trigger */

    /* timers and election state */
    int64_t deadline;        /* election / fetch timeout of the current role */
    int64_t last_leader_ms;  /* last proof of a live leader (pre-vote refusal) */
    bool leader_resigned;    /* EndQuorumEpoch seen for this epoch */
    int backoff_attempts;
    bool round_active;       /* prospective/candidate: requests out */
    uint64_t vote_corr[RAFT_VOTERS_MAX];
    int8_t vote_state[RAFT_VOTERS_MAX]; /* 0 none, 1 granted, -1 rejected */

    /* follower side */
    bool fetch_inflight;
    uint64_t fetch_corr;
    int32_t fetch_target;
    int64_t fetch_expiry;
    int64_t fetch_not_before; /* retry backoff */
    bool sf_active;           /* fetching a snapshot */
    raft_snapshot_id_t sf_id;
    uint8_t *sf_buf;
    size_t sf_len, sf_size;
    int observer_probe;       /* round-robin voter index for discovery */

    /* leader side */
    peer_t peers[RAFT_PEERS_MAX];
    int64_t epoch_start_offset;
    snap_req_t *snap_reqs;
    size_t n_snap_reqs, cap_snap_reqs;

    /* I/O */
    intent_t *intents;
    size_t n_intents, cap_intents;
    pending_io_t *pend;
    size_t pend_head, n_pend, cap_pend;
    uint64_t next_seq, done_seq;
    int64_t durable_end;

    /* messages */
    uint64_t next_corr;
    outmsg_t *outbox;
    size_t n_outbox, cap_outbox;

    /* the ready handed out */
    raft_ready_t rd;
    raft_op_t *rd_ops;
    size_t n_rd_ops, cap_rd_ops;
    raft_msg_t *rd_msgs;
    size_t n_rd_msgs, cap_rd_msgs;
    raft_role_t rep_role;
    int32_t rep_epoch, rep_leader;

    raft_stats_t stats;
};

/* raft.c: transitions, timers, shared helpers */
uint64_t raft_rand(raft_t *r);
int64_t raft_election_timeout(raft_t *r);
int64_t raft_backoff(raft_t *r);
int raft_voter_index(const raft_t *r, int32_t id);
bool raft_cluster_ok(const raft_t *r, const raft_msg_t *m);
void raft_send(raft_t *r, raft_msg_t *m);
void raft_persist_state(raft_t *r);
void raft_grant_vote(raft_t *r, int32_t candidate);
void raft_become_unattached(raft_t *r, int32_t epoch);
void raft_become_follower(raft_t *r, int32_t epoch, int32_t leader, bool contact);
void raft_become_prospective(raft_t *r);
void raft_become_candidate(raft_t *r);
void raft_become_leader(raft_t *r);
bool raft_observe_epoch(raft_t *r, int32_t epoch, int32_t leader);
bool raft_leader_alive(const raft_t *r);
void raft_set_hw(raft_t *r, int64_t hw);
void raft_check_invariants(const raft_t *r);

/* io.c: intents, ops, durability */
void raft_intent(raft_t *r, raft_op_kind_t kind, int64_t from, int64_t to, raft_snapshot_id_t snap);
void raft_io_truncate(raft_t *r, int64_t offset);
void raft_io_install(raft_t *r, raft_snapshot_id_t id);
void raft_io_materialize(raft_t *r);
bool raft_io_idle(const raft_t *r);

/* election.c */
void raft_start_prevote(raft_t *r);
void raft_recv_vote_req(raft_t *r, const raft_msg_t *m);
void raft_recv_vote_resp(raft_t *r, const raft_msg_t *m);

/* epoch.c: BeginQuorumEpoch, EndQuorumEpoch */
void raft_send_begin_epoch(raft_t *r, peer_t *p);
void raft_recv_begin_epoch_req(raft_t *r, const raft_msg_t *m);
void raft_recv_end_epoch_req(raft_t *r, const raft_msg_t *m);
void raft_recv_epoch_resp(raft_t *r, const raft_msg_t *m);
void raft_send_end_epoch(raft_t *r);

/* leader.c: serving fetches, the high watermark, check-quorum */
peer_t *raft_peer(raft_t *r, int32_t id, bool create);
void raft_leader_reset_peers(raft_t *r);
void raft_recv_fetch_req(raft_t *r, const raft_msg_t *m);
void raft_recv_fetch_snapshot_req(raft_t *r, const raft_msg_t *m);
void raft_leader_update_hw(raft_t *r);
void raft_leader_answer_fetches(raft_t *r);
/* A leader leaving its role answers every fetch it parked with an error
 * naming the epoch it knows now (FENCED_LEADER_EPOCH, or NOT_LEADER_OR_FOLLOWER
 * in the same epoch): a dropped one would hold up, until the requester's
 * timeout, what the requester sent after it on the same connection. */
void raft_leader_release_fetches(raft_t *r);
void raft_leader_tick(raft_t *r);
int64_t raft_leader_deadline(const raft_t *r);

/* follower.c: fetching, truncation, snapshots */
void raft_follower_maybe_fetch(raft_t *r);
void raft_recv_fetch_resp(raft_t *r, const raft_msg_t *m);
void raft_recv_fetch_snapshot_resp(raft_t *r, const raft_msg_t *m);
void raft_follower_reset(raft_t *r);

/* out.c: the ready */
void raft_push_msg(raft_t *r, const raft_msg_t *m); /* waits for durable state */
void raft_emit(raft_t *r, const raft_msg_t *m);     /* into the ready being built */

#endif
