/*
 * group.h - the group coordinator, classic protocol: consumer groups, their
 * rebalances, and committed offsets kept in the internal compacted topic
 * __consumer_offsets.
 *
 * Three parts, one header:
 *   group_*        one group's state machine (group.c, rebalance.c,
 *                  offsets.c). Pure: no clock, no I/O, no threads, no
 *                  randomness. Inputs are requests and the current time;
 *                  outputs are completions for the requests that wait
 *                  (group_out), a request to persist the group's metadata
 *                  (out->store) and the next deadline (group_next_deadline).
 *   group_rec_*    the record formats of __consumer_offsets and the
 *                  group -> partition mapping (records.c).
 *   group_coord_*  the coordinator (coord.c, coord_log.c): every group of
 *                  this node behind one mutex, a thread that fires the
 *                  groups' deadlines, persistence in __consumer_offsets
 *                  (an offset commit is acknowledged once durable), and the
 *                  rebuild of every group from that topic at start-up.
 *
 * States (Kafka's names):
 *
 *     Empty --join--> PreparingRebalance --all joined / rebalance timeout-->
 *     CompletingRebalance --leader's SyncGroup, stored--> Stable
 *     Stable, CompletingRebalance --join of a new or changed member, leave,
 *     session timeout--> PreparingRebalance
 *     PreparingRebalance --nobody left--> Empty
 *     any --DeleteGroups, offsets expired--> Dead (removed)
 *
 * Invariants (group_check):
 *   1. Empty and Dead groups have no members; only PreparingRebalance has
 *      members waiting in JoinGroup; only CompletingRebalance has members
 *      waiting in SyncGroup.
 *   2. The leader, when set, is a member; a group with members has a leader.
 *   3. A static member's instance id maps to exactly one member.
 *   4. Every waiter handed in is completed exactly once (via group_out).
 */
#ifndef CHRONIK_GROUP_GROUP_H
#define CHRONIK_GROUP_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/hmap.h"

#define GROUP_TOPIC "__consumer_offsets"
#define GROUP_MEMBERS_MAX 4096           /* members per group (GROUP_MAX_SIZE_REACHED) */
#define GROUP_PROTOCOLS_MAX 64           /* protocols per member */
#define GROUP_OFFSET_METADATA_MAX 4096   /* offset.metadata.max.bytes */
#define GROUP_RETENTION_CHECK_MS 600000  /* offsets.retention.check.interval.ms */
#define GROUP_RETENTION_CHECK_MIN_MS 1000
#define GROUP_NO_DEADLINE INT64_MAX

typedef enum group_state {
    GROUP_EMPTY,
    GROUP_PREPARING_REBALANCE,
    GROUP_COMPLETING_REBALANCE,
    GROUP_STABLE,
    GROUP_DEAD,
} group_state;

#define GROUP_STATE_COUNT 5

/* "Empty", "PreparingRebalance", ...; parse is case-insensitive. */
const char *group_state_name(group_state s);
bool group_state_parse(const char *s, size_t len, group_state *out);

/* Limits and timings from the broker's configuration. */
typedef struct group_config {
    int32_t min_session_timeout_ms;      /* group.min.session.timeout.ms */
    int32_t max_session_timeout_ms;      /* group.max.session.timeout.ms */
    int32_t initial_rebalance_delay_ms;  /* group.initial.rebalance.delay.ms */
    int32_t offsets_topic_partitions;    /* offsets.topic.num.partitions */
    int16_t offsets_topic_replication_factor; /* offsets.topic.replication.factor */
    int64_t offsets_retention_ms;        /* offsets.retention.minutes, in ms */
    int64_t offsets_retention_check_ms;  /* offsets.retention.check.interval.ms; 0: the default */
} group_config;

/* ---- results handed back to waiting requests ------------------------------ */

typedef struct group_result_member {
    char *member_id;
    char *instance_id;       /* NULL: dynamic member */
    uint8_t *metadata;       /* the selected protocol's metadata */
    int32_t metadata_len;
} group_result_member;

typedef struct group_result {
    int16_t error;
    /* JoinGroup */
    int32_t generation;      /* -1 on errors */
    char *member_id;         /* "" when none */
    char *protocol_type;     /* NULL: none */
    char *protocol_name;     /* NULL: none */
    char *leader;            /* "" when none */
    bool skip_assignment;
    int32_t nmembers;        /* the leader's copy of the members, else 0 */
    group_result_member *members;
    /* SyncGroup */
    uint8_t *assignment;
    int32_t assignment_len;
} group_result;

/* A request waiting for a JoinGroup or SyncGroup result. done() is called
 * exactly once, without any coordinator lock held, on any thread; res is
 * valid only during the call. */
typedef struct group_waiter group_waiter;
struct group_waiter {
    void (*done)(group_waiter *w, const group_result *res);
};

typedef struct group_done {
    struct group_done *next;
    group_waiter *w;
    group_result res;
} group_done;

/* What a state-machine call leaves for its caller. */
typedef struct group_out {
    group_done *head, **tail;
    bool store;              /* persist the group's metadata record now */
} group_out;

void group_out_init(group_out *out);
/* Calls each completion's waiter in order and frees them. */
void group_out_deliver(group_out *out);
bool group_out_empty(const group_out *out);

/* ---- members -------------------------------------------------------------- */

typedef struct group_protocol {
    char *name;
    uint8_t *metadata;
    int32_t metadata_len;
} group_protocol;

typedef struct group_member {
    char *id;
    char *instance_id;       /* NULL: dynamic */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    int32_t nprotocols;
    group_protocol *protocols;
    uint8_t *assignment;
    int32_t assignment_len;
    group_waiter *join_waiter;  /* in JoinGroup */
    group_waiter *sync_waiter;  /* in SyncGroup */
    bool synced;                /* sent SyncGroup in this generation */
    int64_t session_deadline_ms;
} group_member;

typedef struct group_pending {
    char *id;
    int64_t deadline_ms;
} group_pending;

/* ---- committed offsets ------------------------------------------------------ */

typedef struct group_offset {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;    /* -1: unknown */
    char *metadata;          /* never NULL */
    int64_t commit_ts_ms;
    int64_t expire_ts_ms;    /* -1: by the retention of the group */
    int64_t record_offset;   /* position of its record in __consumer_offsets, -1: none */
} group_offset;

/* An offset a transactional producer committed (TxnOffsetCommit), waiting
 * for its transaction's marker on the group's __consumer_offsets partition:
 * COMMIT makes it the committed offset, ABORT drops it (KIP-98, KIP-447). */
typedef struct group_txn_offset {
    int64_t producer_id;
    group_offset o;          /* record_offset: where its record is */
} group_txn_offset;

/* ---- the group ----------------------------------------------------------- */

typedef struct group {
    char *id;
    const group_config *cfg;
    group_state state;
    int64_t state_ts_ms;     /* when the state last changed; -1: unknown */
    int32_t generation;
    char *protocol_type;     /* NULL: none (a group that only commits offsets) */
    char *protocol;          /* selected protocol, NULL: none */
    char *leader;            /* member id, NULL: none */
    int32_t nmembers;
    group_member **members;  /* in joining order */
    hmap by_id;              /* member id -> group_member* */
    int32_t awaiting_join;   /* members with a join_waiter */
    int32_t npending;
    group_pending *pending;  /* ids handed out by MEMBER_ID_REQUIRED */
    int64_t join_start_ms;
    int64_t join_deadline_ms;  /* PreparingRebalance: the join phase ends */
    bool initial_delay;        /* first rebalance of an empty group: wait for more */
    int64_t sync_deadline_ms;  /* members must send SyncGroup by then */
    bool store_pending;        /* the leader's assignment is being stored */
    group_done *deferred;      /* JoinGroup answers sent once the group is stored */
    group_done **deferred_tail;
    bool has_metadata;         /* a metadata record exists in the log */
    hmap offsets;              /* "topic\0" + partition -> group_offset* */
    int32_t ntxn;              /* pending transactional offsets */
    group_txn_offset *txn;
} group;

group *group_new(const char *id, const group_config *cfg, int64_t now_ms);
/* Frees g; every waiter must have been completed (group_cancel). */
void group_free(group *g);
void group_check(const group *g);

group_member *group_member_find(const group *g, const char *member_id);
/* The member with this static instance id, or NULL. */
group_member *group_static_member(const group *g, const char *instance_id);
/* The member's metadata for the selected protocol (NULL, 0 when none). */
const uint8_t *group_member_metadata(const group *g, const group_member *m, int32_t *len);

/* Earliest time group_tick has something to do; GROUP_NO_DEADLINE if never. */
int64_t group_next_deadline(const group *g);

/* ---- the rebalance protocol ------------------------------------------------------ */

typedef struct group_protocol_in {
    const char *name;
    const uint8_t *metadata;
    int32_t metadata_len;
} group_protocol_in;

typedef struct group_join_req {
    const char *member_id;       /* "" on a first join */
    const char *instance_id;     /* NULL: dynamic member */
    const char *client_id;
    const char *client_host;
    const char *protocol_type;
    const char *fresh_id;        /* the id a new member gets (the caller makes it unique) */
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    int32_t nprotocols;
    const group_protocol_in *protocols;
    bool require_known_member;   /* JoinGroup v4+: MEMBER_ID_REQUIRED first */
    bool skip_assignment_ok;     /* JoinGroup v9+ */
    group_waiter *waiter;
} group_join_req;

typedef struct group_assignment_in {
    const char *member_id;
    const uint8_t *assignment;
    int32_t assignment_len;
} group_assignment_in;

typedef struct group_sync_req {
    const char *member_id;
    const char *instance_id;     /* NULL when not given */
    const char *protocol_type;   /* NULL when not given (SyncGroup < v5) */
    const char *protocol_name;
    int32_t generation;
    int32_t nassignments;
    const group_assignment_in *assignments;
    group_waiter *waiter;
} group_sync_req;

/* JoinGroup: req->waiter is completed now or when the rebalance ends. */
void group_join(group *g, const group_join_req *req, int64_t now_ms, group_out *out);
/* SyncGroup: req->waiter is completed now, or once the leader's assignment
 * is stored (out->store asks for that; the caller reports with group_stored). */
void group_sync(group *g, const group_sync_req *req, int64_t now_ms, group_out *out);
/* The metadata record asked for by out->store is durable (err 0) or failed. */
void group_stored(group *g, int32_t generation, int16_t err, int64_t now_ms, group_out *out);
int16_t group_heartbeat(group *g, const char *member_id, const char *instance_id, int32_t generation,
                        int64_t now_ms);
/* LeaveGroup of one member (by member id, or by instance id when member_id is ""). */
int16_t group_leave(group *g, const char *member_id, const char *instance_id, int64_t now_ms, group_out *out);
/* May this member commit offsets? Refreshes its session when it may. */
int16_t group_commit_check(group *g, const char *member_id, const char *instance_id, int32_t generation,
                           int64_t now_ms);
/* Fire what is due: expired sessions and pending ids, the end of the join
 * phase, members that never sent SyncGroup. */
void group_tick(group *g, int64_t now_ms, group_out *out);
/* Answer every waiting request with err (shutdown, deletion). */
void group_cancel(group *g, int16_t err, group_out *out);
/* Rebuild from a stored metadata record (start-up): members as Stable. */
typedef struct group_loaded_member {
    const char *id, *instance_id, *client_id, *client_host;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    const uint8_t *subscription, *assignment;
    int32_t subscription_len, assignment_len;
} group_loaded_member;
void group_load(group *g, const char *protocol_type, const char *protocol, const char *leader, int32_t generation,
                int64_t state_ts_ms, const group_loaded_member *members, int32_t n, int64_t now_ms);
/* A tombstone for the metadata record: forget members and generation. */
void group_unload(group *g);

/* ---- offsets (offsets.c) ------------------------------------------------------ */

const group_offset *group_offset_get(const group *g, const char *topic, size_t topic_len, int32_t partition);
/* Insert or replace (strings are copied), unless the stored entry comes
 * from a later record (record_offset). */
void group_offset_put(group *g, const group_offset *o);
/* Remove, unless the stored entry comes from a later record. */
void group_offset_delete(group *g, const char *topic, size_t topic_len, int32_t partition, int64_t record_offset);
size_t group_offset_count(const group *g);
/* A transactional offset of producer_id: pending (replacing the producer's
 * earlier one for the same partition) until group_txn_offsets_end. */
void group_txn_offset_put(group *g, int64_t producer_id, const group_offset *o);
/* The producer's transaction ended: its pending offsets are committed
 * (unless a later record holds the partition's offset) or dropped.
 * Returns how many it had. */
int32_t group_txn_offsets_end(group *g, int64_t producer_id, bool commit);
/* Whether any producer has an offset of topic-partition pending. */
bool group_txn_offset_pending(const group *g, const char *topic, int32_t partition);
/* for (size_t it = 0; (o = group_offset_next(g, &it));) ... */
const group_offset *group_offset_next(const group *g, size_t *iter);
/* Offsets past retention (Empty groups, groups that only commit offsets,
 * and explicit expire timestamps): calls fn for each, then removes them.
 * Returns how many went. */
typedef void (*group_offset_fn)(void *arg, const group_offset *o);
int32_t group_offsets_expire(group *g, int64_t now_ms, group_offset_fn fn, void *arg);
/* Whether a member of a consumer group subscribes to topic (OffsetDelete);
 * unreadable subscriptions count as subscribing to everything. */
bool group_subscribes(const group *g, const char *topic, size_t topic_len);

/* ---- __consumer_offsets records (records.c) ------------------------------------ */

/* abs(Java String.hashCode(group_id)) mod npartitions, Kafka's mapping. */
int32_t group_rec_partition(const char *group_id, size_t len, int32_t npartitions);

/* Key and value bytes (version int16 then the body) appended to out. */
void group_rec_offset_key(buf_t *out, const char *group_id, const char *topic, int32_t partition);
void group_rec_offset_value(buf_t *out, const group_offset *o);
void group_rec_group_key(buf_t *out, const char *group_id);
void group_rec_group_value(buf_t *out, const group *g, int64_t now_ms);

typedef enum group_rec_kind { GROUP_REC_OFFSET, GROUP_REC_GROUP, GROUP_REC_OTHER } group_rec_kind;

/* A decoded record; strings are NUL-terminated copies in the arena. */
typedef struct group_rec {
    group_rec_kind kind;
    char *group_id;
    bool tombstone;
    /* GROUP_REC_OFFSET */
    group_offset offset;
    /* GROUP_REC_GROUP */
    char *protocol_type, *protocol, *leader;
    int32_t generation;
    int64_t state_ts_ms;
    int32_t nmembers;
    group_loaded_member *members;
} group_rec;

struct arena;
/* Returns 0, or -1 for bytes that are no record this coordinator knows
 * (an unknown key version is GROUP_REC_OTHER, not an error). */
int group_rec_decode(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len,
                     struct arena *a, group_rec *out);

/* ---- the coordinator (coord.c) ----------------------------------------------------- */

typedef struct group_coord group_coord;
struct meta;
struct replica_mgr;

/* Rebuilds every group from __consumer_offsets (when it exists) and starts
 * the deadline thread. */
group_coord *group_coord_start(const group_config *cfg, struct meta *meta, struct replica_mgr *replicas);
/* Answers every waiting request (NOT_COORDINATOR), stops the thread and
 * drops the caller's reference; appends still in flight keep the rest
 * alive until they complete. Call after the network has stopped. */
void group_coord_stop(group_coord *c);

/* FindCoordinator: true when __consumer_offsets exists. Otherwise its
 * creation is started and done(arg, err) runs later on another thread. */
typedef void (*group_coord_ready_fn)(void *arg, int16_t err);
bool group_coord_ensure(group_coord *c, group_coord_ready_fn done, void *arg);

/* The member id for a new member: "<instance id or client id>-<uuid>". */
void group_coord_new_member_id(const char *client_id, const char *instance_id, char *out, size_t n);

void group_coord_join(group_coord *c, const char *group_id, group_join_req *req);
void group_coord_sync(group_coord *c, const char *group_id, group_sync_req *req);
int16_t group_coord_heartbeat(group_coord *c, const char *group_id, const char *member_id, const char *instance_id,
                              int32_t generation);

typedef struct group_leave_in {
    const char *member_id;   /* "" to leave by instance id */
    const char *instance_id;
    int16_t error;           /* out */
} group_leave_in;
/* Returns the group-level error; per-member errors in ms[i].error. */
int16_t group_coord_leave(group_coord *c, const char *group_id, group_leave_in *ms, int32_t n);

typedef struct group_commit_in {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    const char *metadata;    /* NULL: "" */
    int64_t commit_ts_ms;    /* -1: now */
    int16_t error;           /* in: already failed (skipped); out: the result */
} group_commit_in;

typedef struct group_commit_req {
    const char *member_id;
    const char *instance_id;
    int32_t generation;
    int64_t retention_ms;    /* -1: the broker's retention */
    int32_t n;
    group_commit_in *parts;
    void (*done)(void *arg); /* once every part has its error; any thread */
    void *arg;
} group_commit_req;
void group_coord_commit(group_coord *c, const char *group_id, group_commit_req *req);

/*
 * TxnOffsetCommit (KIP-98, KIP-447): req's offsets are written to the
 * group's partition of __consumer_offsets as a transactional batch of
 * producer_id at producer_epoch, then held pending in the group (not
 * visible to OffsetFetch) until the transaction's marker. req->generation
 * -1 skips the member check (producers before KIP-447); retention_ms is
 * not used. req->done runs once durable, as for group_coord_commit.
 */
void group_coord_txn_commit(group_coord *c, const char *group_id, group_commit_req *req, int64_t producer_id,
                            int16_t producer_epoch);

/*
 * The marker of producer_id's transaction has been appended to partition
 * `partition` of __consumer_offsets (the WriteTxnMarkers handler calls this
 * after its append of the control batch to that partition succeeded, on
 * any thread, holding no partition lock). COMMIT makes the producer's
 * pending offsets of the groups in that partition their committed offsets
 * (unless a later record already replaced one), ABORT drops them. A no-op
 * when this node does not coordinate that partition: a coordinator that
 * loads it later replays the control batch from the log.
 */
void group_coord_txn_marker(group_coord *c, int32_t partition, int64_t producer_id, int16_t producer_epoch,
                            bool commit);

/* Read access under the coordinator lock: fn must copy what it keeps and
 * must not call the coordinator. g is NULL for an unknown group. fn is not
 * called when this node does not coordinate the group: the error says why
 * (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE). */
typedef void (*group_view_fn)(void *arg, const group *g);
int16_t group_coord_view(group_coord *c, const char *group_id, group_view_fn fn, void *arg);
void group_coord_each(group_coord *c, group_view_fn fn, void *arg);

/* DeleteGroups: errs[i] for ids[i]; done(arg) once the tombstones are durable. */
void group_coord_delete_groups(group_coord *c, const char *const *ids, int16_t *errs, int32_t n,
                               void (*done)(void *arg), void *arg);

typedef struct group_offset_del {
    const char *topic;
    int32_t partition;
    int16_t error;           /* in: already failed (skipped); out */
} group_offset_del;
/* OffsetDelete: *top_err gets the group-level error; done(arg) once durable. */
void group_coord_offset_delete(group_coord *c, const char *group_id, group_offset_del *parts, int32_t n,
                               int16_t *top_err, void (*done)(void *arg), void *arg);

#endif
