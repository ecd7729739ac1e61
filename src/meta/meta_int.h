/* meta_int.h - shared by the files of src/meta only. */
#ifndef CHRONIK_META_INT_H
#define CHRONIK_META_INT_H

#include "kclient/kclient.h"
#include "meta/meta.h"
#include "raft/raft.h"
#include "raft/wire.h"

/* Metadata record types (the schemas' apiKey). */
enum {
    META_REC_REGISTER_BROKER = 0,
    META_REC_UNREGISTER_BROKER = 1,
    META_REC_TOPIC = 2,
    META_REC_PARTITION = 3,
    META_REC_CONFIG = 4,
    META_REC_PARTITION_CHANGE = 5,
    META_REC_FENCE_BROKER = 7,
    META_REC_UNFENCE_BROKER = 8,
    META_REC_REMOVE_TOPIC = 9,
    META_REC_CLIENT_QUOTA = 14,
    META_REC_PRODUCER_IDS = 15,
    META_REC_BROKER_REGISTRATION_CHANGE = 17,
    META_REC_ACCESS_CONTROL_ENTRY = 18,
    META_REC_REMOVE_ACCESS_CONTROL_ENTRY = 19,
    META_REC_USER_SCRAM_CREDENTIAL = 11,
    META_REC_REMOVE_USER_SCRAM_CREDENTIAL = 22,
};
#define META_RESOURCE_TOPIC 2 /* ConfigRecord.ResourceType */
#define META_RESOURCE_BROKER 4
#define META_FRAME_VERSION 1

/* ---- endpoints.c: the listeners a broker registers ------------------------------ */
bool meta_endpoints_equal(const meta_endpoint *a, int32_t na, const meta_endpoint *b, int32_t nb);
/* KERR_NONE, or INVALID_REQUEST with *msg when a registration's listeners
 * are not acceptable (none, too many, a bad or repeated name). */
int16_t meta_endpoints_check(const meta_endpoint *e, int32_t n, const char **msg);
/* The record's endpoints (a repeated name keeps its first), malloc'ed. */
meta_endpoint *meta_endpoints_from_record(const RegisterBrokerRecord *r, int32_t *n);
/* items (n of them, the caller's) filled from e and returned as the
 * record's array; its strings point into e. */
RegisterBrokerRecord_BrokerEndpoint_array meta_endpoints_to_record(const meta_endpoint *e, int32_t n,
                                                                   RegisterBrokerRecord_BrokerEndpoint *items);

meta_image *meta_image_new(void);
meta_image *meta_image_copy(const meta_image *src);
/* ---- metalog.c: what a committed entry holds ------------------------------------ */
/* Applies one committed data entry (metalog.c's format: a single framed
 * record at epoch 0, a round of them from epoch 1 on) to img; -1 with the
 * offset and reason in err when any record of it cannot be applied (then
 * img may hold part of it: the caller stops). */
int meta_log_apply_entry(meta_image *img, int64_t offset, int32_t epoch, const uint8_t *data, size_t len,
                         char *err, size_t errlen);
/* A round under construction: framed records appended one by one. */
typedef struct meta_round_blob {
    buf_t body;
    uint32_t count;
} meta_round_blob;
void meta_round_init(meta_round_blob *b);
void meta_round_add(meta_round_blob *b, const uint8_t *framed, size_t len);
/* The entry bytes (count, then each record with its length). */
void meta_round_encode(const meta_round_blob *b, buf_t *out);
void meta_round_free(meta_round_blob *b);

/* ---- snapshot.c: metadata snapshots (format essay there) ------------------------ */
#define META_SNAPSHOT_KEEP 2       /* snapshots kept on disk */
#define META_SNAPSHOT_LIST_MAX 64
/* The payload of a snapshot of img (end offset img->offset); -1 with a
 * reason when the image cannot be written as records. */
int meta_snapshot_encode(const meta_image *img, int64_t created_ms, buf_t *out, char *err, size_t errlen);
/* A fresh image (offset end_offset) from a payload; -1 with a reason when
 * it is torn, corrupt, of another version or does not apply. */
int meta_snapshot_decode(const uint8_t *p, size_t len, int64_t end_offset, meta_image **out, int64_t *created_ms,
                         char *err, size_t errlen);
void meta_snapshot_name(char *out, size_t n, raft_snapshot_id_t id);
/* When the payload's snapshot was taken (wall ms), -1 when not a payload. */
int64_t meta_snapshot_created_ms(const uint8_t *p, size_t len);
/* The snapshots in dir, newest first (at most max); -errno on failure. */
int meta_snapshot_list(sfs_t *fs, const char *dir, raft_snapshot_id_t *ids, int max);
int meta_snapshot_write(sfs_t *fs, const char *dir, raft_snapshot_id_t id, const uint8_t *p, size_t len);
/* Reads a whole snapshot file (malloc'ed); -errno on failure. */
int meta_snapshot_read(sfs_t *fs, const char *dir, raft_snapshot_id_t id, uint8_t **out, size_t *len);
/* Renames a bad snapshot to <name>.bad, loudly. */
void meta_snapshot_set_aside(sfs_t *fs, const char *dir, raft_snapshot_id_t id);
/* Deletes all but the newest keep snapshots, and those ending below
 * min_end (the log start: unusable). Returns how many it deleted. */
int meta_snapshot_prune(sfs_t *fs, const char *dir, int keep, int64_t min_end);

/* ---- quorum.c: the metadata quorum on a disk ----------------------------------- */
enum { QUORUM_OK = 0, QUORUM_NOT_LEADER, QUORUM_TOO_LARGE, QUORUM_CLOSED };
typedef void (*quorum_done_fn)(void *arg, int err, int64_t offset);
typedef struct quorum_cb {
    /* A committed data entry, in offset order (quorum thread). */
    void (*apply)(void *arg, const raft_entry_t *e);
    /* After a ready's entries: everything below next_offset is applied. */
    void (*applied)(void *arg, int64_t next_offset);
    void (*role)(void *arg, raft_role_t role, int32_t epoch, int32_t leader_id);
    void (*send)(void *send_arg, const raft_msg_t *m); /* to a peer (NULL: a single voter) */
    void (*tick)(void *arg, int64_t now_ms);      /* every loop of the quorum thread */
    /* The image below end_offset (a loaded or installed snapshot) replaces
     * the state machine's; it takes img (quorum thread, or quorum_open). */
    void (*restore)(void *arg, meta_image *img);
    /* Encode a snapshot of the published image into out, its end offset in
     * *end_offset (the snapshot thread); -1 when none can be taken. NULL:
     * this node takes no snapshots. */
    int (*snapshot)(void *arg, buf_t *out, int64_t *end_offset);
    void *arg;      /* of every callback but send */
    void *send_arg;
} quorum_cb_t;
typedef struct quorum_info {
    raft_role_t role;
    int32_t epoch, leader_id;
    int64_t high_watermark, log_end;
    int64_t last_change_ms; /* wall clock of the last role change */
    raft_stats_t stats;
    bool have_describe;     /* leader only */
    raft_quorum_info_t describe;
    int64_t snapshot_end;   /* newest snapshot's end offset, 0 none */
    int64_t snapshot_ms;    /* wall clock when it was taken, -1 none */
    int64_t log_start;      /* first offset the disk log holds */
    int64_t epoch_start;    /* leader: offset of its epoch's first entry; -1 otherwise */
} quorum_info_t;
typedef struct quorum quorum_t;
/* Reads quorum-state and the log's entries and builds the core; -1 with a
 * reason when the disk cannot be trusted. The log stays the caller's. */
int quorum_open(plog_t *log, sfs_t *fs, const raft_config_t *cfg, const quorum_cb_t *cb, quorum_t **out, char *err,
                size_t errlen);
void quorum_start(quorum_t *q);
/* done(arg, err, offset) on the quorum thread once the entry is committed
 * and applied (after cb.applied), or with an error. */
void quorum_propose(quorum_t *q, const void *data, size_t len, quorum_done_fn done, void *arg);
void quorum_get_info(quorum_t *q, quorum_info_t *out);
/* A leader hands over (raft_resign: EndQuorumEpoch to the most caught-up
 * voters) and takes no more proposals; nothing otherwise. Any thread. */
void quorum_resign(quorum_t *q);
/* A message for the core from another thread. Its pointers must stay valid
 * until the core has taken it: resp (a kept kclient response they point
 * into, may be NULL) is freed by the quorum thread after raft_recv. The
 * cluster id is not carried (not checked). */
void quorum_recv(quorum_t *q, const raft_msg_t *m, kclient_resp_t *resp);
void quorum_close(quorum_t *q);

/* ---- qnet.c: the quorum's messages on the network ------------------------------- */
typedef struct qnet qnet_t;
typedef struct qnet_peer_addr {
    int32_t id;
    char hostport[300];
} qnet_peer_addr;
/* The core's answer to an inbound request (quorum thread), or NULL when it
 * gave none in time. */
typedef void (*qnet_reply_fn)(void *arg, const raft_msg_t *resp);
qnet_t *qnet_new(int32_t self, const qnet_peer_addr *peers, int n);
void qnet_attach(qnet_t *t, quorum_t *q);
void qnet_connect(qnet_t *t, net_t *net, const kclient_security *sec); /* after net_start */
void qnet_free(qnet_t *t);
void qnet_send(void *arg, const raft_msg_t *m); /* quorum_cb.send */
int qnet_request(qnet_t *t, raft_msg_type_t type, const uint8_t *body, size_t len, arena_t *a,
                 qnet_reply_fn reply, void *arg, const char **why);
void qnet_expire(qnet_t *t, int64_t now_ms);
const raft_wire_topic_t *qnet_topic(void);
/* The client for forwarded changes to voter id's controller listener (its own
 * connection, not the quorum's), or NULL. */
kclient_t *qnet_client(qnet_t *t, int32_t id);

/* ---- forward.c: changes made at a node that does not lead ------------------------ */
/* Sends what can be forwarded of the round to leader (NULL: none known),
 * waits for the answers and for this node's image to show them; errs and
 * msgs get one result per op. */
void meta_forward_round(meta_t *m, int32_t self, kclient_t *leader, meta_op *ops, int16_t *errs, const char **msgs,
                        int n);
/* Waits until pred(published image, arg) holds (woken by each publish) or
 * the monotonic deadline passes; the result of the last check. */
bool meta_wait_image(meta_t *m, bool (*pred)(const meta_image *img, const void *arg), const void *arg,
                     int64_t deadline_ms);
/* Why applying a decoded record would break an image invariant (a
 * partition's replicas, ISR and leader), or NULL: a record read from disk
 * or the network is checked before it is applied. */
const char *meta_image_record_error(const meta_image *img, int16_t type, const void *rec);
/* Apply one decoded record (type = schema apiKey) to a private image. */
void meta_image_apply(meta_image *img, int16_t type, const void *rec);
/* Whether broker id x is among v[0..n). */
static inline bool meta_ids_has(const int32_t *v, int32_t n, int32_t x)
{
    for (int32_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Abort unless the image keeps its invariants (image.c's essay). */
void meta_image_check(const meta_image *img);

/* Sanitizer and checking builds re-check the invariants a record could break
 * after every apply (CHRONIK_CHECKS forces it on). */
#if defined(__SANITIZE_ADDRESS__) || defined(CHRONIK_CHECKS)
#define META_CHECKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define META_CHECKS 1
#endif
#endif
#ifndef META_CHECKS
#define META_CHECKS 0
#endif

/* ---- brokers (brokers.c) ------------------------------------------------- */

void meta_brokers_copy(meta_image *dst, const meta_image *src);
void meta_brokers_free(meta_image *img);
/* Apply a broker record (Register/Unregister/Fence/Unfence/RegistrationChange). */
void meta_brokers_apply(meta_image *img, int16_t type, const void *rec);
void meta_brokers_check(const meta_image *img);

/* Where the controller's logic writes records: emit encodes one record and
 * applies it to img (the round's private image) before returning, so the
 * next decision sees it. Tests plug in an emitter that only applies. */
typedef struct meta_writer {
    meta_image *img;
    bool unclean_leader_election; /* the broker setting of unclean.leader.election.enable */
    void (*emit)(void *ctx, int16_t type, const proto_struct_desc *d, const void *rec);
    void *ctx;
} meta_writer;
void meta_write(const meta_writer *w, int16_t type, const proto_struct_desc *d, const void *rec);

/* What the controller remembers of each broker outside the image, as
 * Kafka's BrokerHeartbeatManager does: lost on a controller change, when
 * every broker's clock restarts from the first tick. */
typedef struct meta_liveness_entry {
    int32_t id;
    int64_t last_heartbeat_ms;
    int64_t register_offset;   /* metadata offset of its RegisterBrokerRecord */
} meta_liveness_entry;
typedef struct meta_liveness {
    bool has_suspect;          /* suspect's clock starts at suspect_heard_ms, not now */
    int32_t suspect;
    int64_t suspect_heard_ms;
    int32_t n;
    meta_liveness_entry v[META_BROKERS_MAX]; /* sorted by id, registered brokers only */
} meta_liveness;

typedef struct meta_registration {
    int32_t id;
    kuuid_t incarnation;
    int32_t nendpoints;        /* its listeners (meta_endpoints_check) */
    const meta_endpoint *endpoints;
    const char *rack;          /* NULL: none */
} meta_registration;

/* Register a broker (at most META_BROKERS_MAX are). A new broker or a new
 * incarnation gets the next broker epoch and comes up fenced; the same
 * incarnation again with the same listeners and rack is a retry and gets
 * its epoch back with nothing written (with other listeners it registers
 * anew, fenced, as a new incarnation does). offset: where the round's next
 * record lands. Returns a Kafka error code; *epoch_out the broker epoch. */
int16_t meta_broker_register(const meta_writer *w, meta_liveness *lv, const meta_registration *reg,
                             int64_t offset, int64_t now_ms, int64_t *epoch_out, const char **msg);

typedef struct meta_heartbeat {
    int32_t id;
    int64_t epoch;
    int64_t metadata_offset;   /* how far the broker has applied the metadata log */
    bool wants_fence;
    bool wants_shutdown;
} meta_heartbeat;
typedef struct meta_heartbeat_reply {
    bool caught_up;
    bool fenced;
    bool should_shut_down;
} meta_heartbeat_reply;
int16_t meta_broker_heartbeat(const meta_writer *w, meta_liveness *lv, const meta_heartbeat *hb,
                              int64_t now_ms, meta_heartbeat_reply *out, const char **msg);

/* Count registered broker id as heard from at now_ms (the controller's own
 * node: its process is running the controller). */
void meta_broker_alive(meta_liveness *lv, const meta_image *img, int32_t id, int64_t now_ms);
/* Fence every unfenced broker silent for longer than session_timeout_ms and
 * move its leaderships. Returns how many it fenced. */
int32_t meta_brokers_tick(const meta_writer *w, meta_liveness *lv, int64_t now_ms,
                          int64_t session_timeout_ms);

/* Fence broker id at epoch and move leadership off it (PartitionChangeRecords). */
void meta_broker_fence(const meta_writer *w, int32_t id, int64_t epoch);

/* Frees an op and everything it owns (it is not queued). */
void meta_op_free(meta_op *op);

/* ---- decide.c: the controller's decisions, without threads, sockets or clocks ---- */

/* Where the controller's randomness comes from (topic ids, placement
 * starts): the OS in production, a seeded generator in the simulator. */
typedef struct meta_rand {
    void (*fill)(void *ctx, void *out, size_t len);
    void *ctx;
} meta_rand;
void meta_rand_os(void *ctx, void *out, size_t len); /* getrandom; ctx unused */

/* What the controller keeps between rounds outside the image. */
typedef struct meta_ctl {
    int32_t node_id;
    bool unclean_leader_election;     /* unclean.leader.election.enable */
    bool auto_leader_rebalance;       /* auto.leader.rebalance.enable */
    int64_t imbalance_check_ms;       /* leader.imbalance.check.interval */
    int64_t rebalance_due_ms;         /* next preferred-leader check (liveness clock); 0 unset */
    int32_t epoch;                    /* the quorum epoch this node leads, -1 none */
    int64_t epoch_start;              /* offset of that epoch's first entry (its leader change) */
    meta_liveness liveness;           /* heartbeats heard while leading epoch */
    meta_rand rand;
    int32_t elected_preferred, elected_unclean; /* by the last round's periodic check */
} meta_ctl;
#define META_IMBALANCE_CHECK_MS_DEFAULT 300000 /* leader.imbalance.check.interval.seconds */
void meta_ctl_init(meta_ctl *c, int32_t node_id, meta_rand rand);
/* The quorum role before a round: leading epoch from offset epoch_start,
 * or (epoch -1) not leading. A new epoch starts every broker's clock
 * afresh, as Kafka's BrokerHeartbeatManager does. */
void meta_ctl_lead(meta_ctl *c, int32_t epoch, int64_t epoch_start);
/* Whether a node that has applied every entry below applied_next holds
 * everything this leader's log held before its epoch: a round decided
 * without an older leader's last rounds would repeat them (a second
 * producer-id block over the same ids). */
bool meta_ctl_caught_up(const meta_ctl *c, int64_t applied_next);
/* Broker id's clock starts at heard_ms (the liveness clock) instead of at
 * the first tick of the epoch just led: the quorum leader it replaced was
 * last heard from then at best. */
void meta_ctl_suspect(meta_ctl *c, int32_t id, int64_t heard_ms);

/* One round: the changes decided together, written as one quorum entry. */
typedef struct meta_ctl_round {
    meta_ctl *ctl;
    meta_image *img;          /* the base image plus this round's records */
    meta_round_blob blob;
    int32_t nrecords;
    int64_t applied_next;     /* every entry below it is applied (base may end
                                 earlier: control entries change no image) */
    int64_t now_ms;           /* the liveness clock (monotonic ms) */
} meta_ctl_round;
void meta_ctl_begin(meta_ctl_round *r, meta_ctl *c, const meta_image *base, int64_t applied_next, int64_t now_ms);
/* Decide op against the round so far: a Kafka error code (msg set, or
 * NULL for the code's own), its records added to the round. Not leading,
 * or not caught up: NOT_CONTROLLER and nothing written. */
int16_t meta_ctl_op(meta_ctl_round *r, meta_op *op, const char **msg);
/* The round's entry bytes (metalog.c's format); false when it wrote nothing. */
bool meta_ctl_entry(const meta_ctl_round *r, buf_t *out);
void meta_ctl_end(meta_ctl_round *r);
/* A round of one op: its entry in out (left empty when nothing is written). */
int16_t meta_ctl_decide(meta_ctl *c, const meta_image *img, int64_t applied_next, meta_op *op, int64_t now_ms,
                        buf_t *out, const char **msg);

/* ---- election.c: unclean and preferred-leader elections ----------------------- */

/* A boolean setting: the topic's override (t may be NULL), else the
 * cluster-wide dynamic default, else fallback. */
bool meta_setting_bool(const meta_image *img, const meta_topic *t, const char *key, bool fallback);
/* Whether topic t may elect a leader outside its ISR. */
bool meta_unclean_enabled(const meta_writer *w, const meta_topic *t);
/* The first unfenced replica of p, in replica order, or -1. */
int32_t meta_first_live_replica(const meta_image *img, const meta_partition *p);
/* ElectLeaders for one partition (type META_ELECT_*): a Kafka error code. */
int16_t meta_elect_leader(const meta_writer *w, int8_t type, const char *topic, int32_t index);
/* Give every partition whose preferred replica may lead, but does not, to
 * it; how many moved. */
int32_t meta_elect_preferred_all(const meta_writer *w);
/* Leaderless partitions of topics with unclean election enabled get their
 * first live replica; how many. */
int32_t meta_elect_offline_unclean(const meta_writer *w);
/* The periodic preferred-leader check runs this soon after an unfence. */
#define META_REBALANCE_SOON_MS 3000

/* ---- reassign.c: partition reassignment -------------------------------------- */

/* Start (target), replace, or cancel (target NULL) partition index of
 * topic's reassignment: a Kafka error code with a message in msg. */
int16_t meta_reassign(const meta_writer *w, const char *topic, int32_t index, const int32_t *target,
                      int32_t ntarget, char *msg, size_t msg_size);
/* Complete partition (id, index)'s reassignment once its ISR holds every
 * target replica; nothing otherwise. */
void meta_reassign_progress(const meta_writer *w, const kuuid_t *id, int32_t index);

/* ---- alter_partition.c: a leader's ISR change ------------------------------ */

/* Decide AlterPartition for partition a->index of the topic named name (or,
 * name NULL, of id): a Kafka error code with a message in msg, or success
 * with at most one PartitionChangeRecord written and a's out fields set. */
int16_t meta_alter_isr(const meta_writer *w, const char *name, const kuuid_t *id, meta_alter_op *a, char *msg,
                       size_t msg_size);

/* ---- alter_request.c: this node's ISR changes on their way to the controller */
typedef struct meta_ap meta_ap;
meta_ap *meta_ap_new(meta_t *m, int32_t node_id);
meta_ap *meta_ap_of(meta_t *m);
void meta_ap_start(meta_ap *ap, qnet_t *qnet);
/* A new image was published: requests waiting to see theirs look again. */
void meta_ap_published(meta_ap *ap);
/* Stop the thread (before the controller thread stops). */
void meta_ap_stop(meta_ap *ap);
/* After the quorum's clients are freed: answer what is left and free. */
void meta_ap_free(meta_ap *ap);
/* This node's broker epoch (lifecycle.c), -1 while not registered. */
int64_t meta_broker_epoch(meta_t *m);

/* ---- lifecycle.c: this node's registration and heartbeats ----------------- */
typedef struct lifecycle lifecycle_t;
/* controller.c's parts that shutdown.c drives. */
quorum_t *meta_quorum(meta_t *m);
lifecycle_t *meta_lifecycle(meta_t *m); /* NULL: this node does not register */
bool meta_quorum_has_peers(meta_t *m);  /* other voters, or observers following it */
/* Every Raft request from a peer still waiting for the core gets no answer
 * now (qnet_expire): the node is shutting down. */
void meta_quorum_release_requests(meta_t *m);
lifecycle_t *lifecycle_new(meta_t *m, const meta_config *cfg);
/* A single voter: register and heartbeat at once at its own controller. */
void lifecycle_first_beats(lifecycle_t *l);
/* Start the heartbeat thread; net (started) reaches the other voters. */
void lifecycle_start(lifecycle_t *l, net_t *net);
void lifecycle_free(lifecycle_t *l);
/* This node's broker epoch, -1 while it is not registered. Any thread. */
int64_t lifecycle_epoch(lifecycle_t *l);
/* A broker of a cluster whose heartbeats have not been answered (unfenced)
 * for longer than its session: the controller has fenced it by now, or will. */
bool lifecycle_session_lost(lifecycle_t *l);
/* Controlled shutdown: heartbeat with WantShutDown from now on and wait
 * until the controller answers ShouldShutDown (true), the monotonic
 * deadline passes or give_up(arg) says waiting is pointless (false). */
bool lifecycle_shutdown(lifecycle_t *l, int64_t deadline_ms, bool (*give_up)(void *arg), void *arg);
bool lifecycle_shutdown_granted(lifecycle_t *l);

/* ---- placement (placement.c) --------------------------------------------- */

/* Replicas for partitions [first, first + count) of a topic: out[i * rf + j]
 * is replica j of partition first + i, the first one its leader. With
 * assign (count arrays of nassign[i] ids) the assignment is validated and
 * copied; otherwise Kafka's striping over the unfenced brokers, from a start
 * drawn from seed. With no broker registered, every replica is node_id (rf
 * must be 1). out NULL: validate only. Placing [a, b) then [b, c) gives what
 * placing [a, c) does. Returns a Kafka error code, with a message in msg. */
int16_t meta_place_replicas(const meta_image *img, int32_t node_id, int32_t first, int32_t count,
                            int16_t rf, const meta_assignment *assign, uint64_t seed, int32_t *out,
                            char *msg, size_t msg_size);
/* Whether replica id may be in a new partition's ISR: an unfenced broker,
 * or this node when no broker is registered. */
bool meta_replica_live(const meta_image *img, int32_t node_id, int32_t id);

/* ---- acls.c: the cluster's ACLs ------------------------------------------------ */

/* Apply an ACL record (AccessControlEntry / RemoveAccessControlEntry). */
void meta_acls_apply(meta_image *img, int16_t type, const void *rec);
/* The record that recreates e (its strings point into e). */
void meta_acl_record(const acl_entry *e, AccessControlEntryRecord *out);
acl_binding meta_acl_binding(const meta_acl_op *a);
acl_filter meta_acl_filter(const meta_acl_op *a);
void meta_acl_op_free(meta_acl_op *a);
/* CreateAcls for one binding and DeleteAcls for one filter: Kafka error codes. */
int16_t meta_acl_create(const meta_writer *w, const meta_rand *rand, meta_acl_op *a, const char **msg);
int16_t meta_acl_delete(const meta_writer *w, meta_acl_op *a, const char **msg);
/* A forwarded ACL change shows in img. */
bool meta_acl_visible(const meta_image *img, const meta_op *op);

/* ---- scram.c: the users' SCRAM credentials ------------------------------------- */

/* Records: UserScramCredential / RemoveUserScramCredential. */
void meta_scram_apply(meta_image *img, int16_t type, const void *rec);
struct meta_scram_set *meta_scram_ref(struct meta_scram_set *s);
void meta_scram_unref(struct meta_scram_set *s);
void meta_scram_check(const struct meta_scram_set *s);
/* Each credential of img as a record, for snapshots. */
void meta_scram_each_record(const meta_image *img, void (*fn)(void *ctx, const UserScramCredentialRecord *r),
                            void *ctx);
/* The controller's decision for one ALTER_SCRAM op: a Kafka error code. */
int16_t meta_scram_alter(const meta_writer *w, meta_scram_op *s, const char **msg);
/* A forwarded change shows in img. */
bool meta_scram_visible(const meta_image *img, const meta_op *op);
/* ---- quotas.c: client quotas ---------------------------------------------------- */

#define META_QUOTAS_MAX 100000 /* quota entities in the cluster */
void meta_quotas_apply(meta_image *img, const ClientQuotaRecord *r);
meta_quotas *meta_quotas_ref(meta_quotas *q);
void meta_quotas_unref(meta_quotas *q);
/* Write a ClientQuotaRecord per value of img's quotas (the snapshot). */
void meta_quotas_put(const meta_image *img, void (*put)(void *ctx, const ClientQuotaRecord *r), void *ctx);
/* AlterClientQuotas for one entity: a Kafka error code. */
int16_t meta_quota_alter(const meta_writer *w, const meta_quota_op *q, const char **msg);
/* The change shows in img. */
bool meta_quota_visible(const meta_image *img, const meta_quota_op *q);

#endif
