/*
 * meta.h - cluster metadata: the metadata image every broker serves from, and
 * the controller that changes it by writing KRaft metadata records.
 *
 * The image is immutable once published and shared by reference
 * (meta_acquire / meta_image_release): request handlers read it without
 * locks. It holds the topics, their partitions (leader, epochs, replicas,
 * ISR) and their configuration overrides, the dynamic broker
 * configurations (per node id, and the cluster-wide default under ""), and
 * the registered brokers (brokers.c decides who is fenced; placement.c
 * where new replicas go).
 *
 * Changes (create/delete topics, add partitions, alter configs) are queued
 * to the controller thread. It validates each against the latest state,
 * encodes the resulting records (TopicRecord, PartitionRecord, ConfigRecord,
 * RemoveTopicRecord from the Kafka metadata schemas), appends them as one
 * record batch to the metadata log `DATA_DIR/__cluster_metadata-0`, waits
 * until the batch is durable, applies it to a new image, publishes it, tells
 * the change listener, and then completes each change's callback. Changes
 * queued together share one append and one sync.
 *
 * On start-up the newest metadata snapshot is loaded and the log above it
 * replayed into the first image (snapshots: quorum.c, snapshot.c).
 *
 * A record in the metadata log has a null key and a value framed as Kafka's
 * metadata serde does: uvarint frame version (1), uvarint record type (the
 * schema's apiKey), uvarint record version, then the record body.
 */
#ifndef CHRONIK_META_META_H
#define CHRONIK_META_META_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "acl/acl.h"
#include "sasl/sasl.h"
#include "kclient/kclient.h"
#include "net/net.h"
#include "proto/proto.h"
#include "storage/storage.h"

#define META_TOPIC_NAME "__cluster_metadata"
#define META_PARTITIONS_MAX 100000 /* per topic */
#define META_BROKERS_MAX 1024       /* registered brokers */

typedef struct meta_partition {
    int32_t index;
    int32_t leader;          /* node id, -1 when none */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t nreplicas;
    int32_t nisr;
    int32_t *replicas;
    int32_t *isr;
    /* A reassignment in progress (reassign.c): replicas being added and
     * removed, both subsets of replicas; empty when none. */
    int32_t nadding, nremoving;
    int32_t *adding, *removing;
} meta_partition;

typedef struct meta_config_kv {
    char *key;
    char *value;
} meta_config_kv;

typedef struct meta_topic {
    _Atomic int refs;        /* images sharing this topic (image.c) */
    char *name;
    kuuid_t id;
    int32_t npartitions;
    meta_partition *partitions;
    int32_t nconfigs;
    meta_config_kv *configs; /* sorted by key */
} meta_topic;

/* A dynamic broker configuration: a ConfigRecord of resource type BROKER. */
typedef struct meta_broker_config {
    char *resource; /* "" for the cluster-wide default, else a node id */
    char *key;
    char *value;
} meta_broker_config;

/* One listener a broker registered (RegisterBrokerRecord EndPoints): its
 * name, advertised address and security protocol (Kafka's codes:
 * 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL). */
#define META_ENDPOINTS_MAX 16     /* per broker */
#define META_ENDPOINT_NAME_MAX 64 /* bytes of a listener name */
typedef struct meta_endpoint {
    char *name;
    char *host;
    uint16_t port;
    int16_t protocol;
} meta_endpoint;

/* Copies of n endpoints (strings duplicated), and their release. */
meta_endpoint *meta_endpoints_dup(const meta_endpoint *e, int32_t n);
void meta_endpoints_free(meta_endpoint *e, int32_t n);

/* A registered broker (RegisterBrokerRecord and the records that follow). */
typedef struct meta_broker {
    int32_t id;
    kuuid_t incarnation;     /* the broker process that registered */
    int64_t epoch;           /* broker epoch of that registration */
    int32_t nendpoints;
    meta_endpoint *endpoints; /* in registration order, names unique */
    char *rack;              /* NULL when none */
    bool fenced;
    bool in_controlled_shutdown;
} meta_broker;

typedef struct meta_image {
    _Atomic int refs;
    int64_t offset;          /* metadata log end this image reflects */
    int64_t next_producer_id; /* first id of the next producer-id block (ProducerIdsRecord) */
    int32_t ntopics;
    meta_topic **topics;     /* sorted by name */
    int32_t nbroker_configs;
    meta_broker_config *broker_configs; /* sorted by resource, then key */
    int32_t nbrokers;
    meta_broker *brokers;    /* registered brokers, sorted by id */
    int64_t next_broker_epoch; /* epoch the next registration gets (brokers.c) */
    acl_set *acls;           /* the cluster's ACLs (AccessControlEntryRecord), shared between
                                versions until one changes them; NULL: none yet */
    struct meta_scram_set *scram; /* SCRAM credentials (UserScramCredentialRecord), shared
                                     like acls (scram.c); NULL: none yet */
    struct meta_quotas *quotas; /* client quotas (ClientQuotaRecord), shared the same way; NULL: none */
} meta_image;

/* ---- client quotas (quotas.c) -------------------------------------------------
 *
 * A quota entity names a user, a client id, or both; a component whose
 * name is NULL is that type's default entity. Each entity holds values for
 * the keys below (a bit of `set` per key). */
enum meta_quota_key {
    META_QUOTA_PRODUCER_BYTE_RATE,
    META_QUOTA_CONSUMER_BYTE_RATE,
    META_QUOTA_REQUEST_PERCENTAGE,
    META_QUOTA_CONTROLLER_MUTATION_RATE,
    META_QUOTA_NKEYS
};
#define META_QUOTA_USER "user"
#define META_QUOTA_CLIENT_ID "client-id"

typedef struct meta_quota_entity {
    bool has_user, has_client;
    char *user, *client;     /* NULL: the default entity */
} meta_quota_entity;

typedef struct meta_quota {
    meta_quota_entity e;
    uint8_t set;             /* bit k: key k has a value */
    double value[META_QUOTA_NKEYS];
} meta_quota;

typedef struct meta_quotas meta_quotas;
int32_t meta_quotas_count(const meta_quotas *q); /* 0 for NULL */
const meta_quota *meta_quotas_at(const meta_quotas *q, int32_t i);
const meta_quota *meta_quotas_find(const meta_quotas *q, const meta_quota_entity *e);
/* "producer_byte_rate", ... for a key; the key of a name, or -1. */
const char *meta_quota_key_name(int key);
int meta_quota_key_of(const char *name, size_t len);

/* The quota of key for a request from (user, client) by Kafka's order of
 * precedence (KIP-55): /users/U/clients/C, /users/U/clients/<default>,
 * /users/U, /users/<default>/clients/C, /users/<default>/clients/<default>,
 * /users/<default>, /clients/C, /clients/<default>. Returns false when none
 * applies; else *value and the entity it came from (*by_user, *by_client:
 * which components it has, so which the rate is measured by). */
bool meta_quota_resolve(const meta_quotas *q, int key, const char *user, const char *client, double *value,
                        bool *by_user, bool *by_client);

typedef struct meta meta_t;

/* Lookups in an image; NULL when absent. */
const meta_topic *meta_image_topic(const meta_image *img, const char *name, size_t len);
const meta_topic *meta_image_topic_by_id(const meta_image *img, const kuuid_t *id);
/* A topic's override for key, or NULL. */
const char *meta_topic_config(const meta_topic *t, const char *key);
void meta_image_release(meta_image *img);
/* Brokers that may hold new replicas: the unfenced ones, or 1 (this node
 * alone) when none is registered. */
int32_t meta_image_live_brokers(const meta_image *img);
/* The replication factor of a topic created without one (replication
 * factor -1, default.replication.factor unset): this many, or the live
 * brokers when fewer. */
#define META_DEFAULT_REPLICATION_FACTOR 3
/* The registered broker id, or NULL. */
const meta_broker *meta_image_broker(const meta_image *img, int32_t id);
/* Live (unfenced) brokers in id order: start with *pos = 0; NULL at the end. */
const meta_broker *meta_image_next_live(const meta_image *img, int32_t *pos);
/* Broker b's endpoint for the listener named listener, or NULL. */
const meta_endpoint *meta_broker_endpoint(const meta_broker *b, const char *listener);
/* The address of registered broker id for listener, as "HOST:PORT"
 * ("[HOST]:PORT" for an IPv6 host) in out: what every broker-to-broker
 * connection dials. False when id is not registered or has no such
 * endpoint (or it has no host or port). */
bool meta_broker_addr(const meta_image *img, int32_t id, const char *listener, char *out, size_t n);
/* The dynamic broker config key of resource ("" or a node id), or NULL. */
const char *meta_broker_config_get(const meta_image *img, const char *resource, const char *key);
/* The SCRAM credential of user name for mech (SASL_SCRAM_SHA_*), or NULL. */
const sasl_cred *meta_image_scram(const meta_image *img, const char *name, int mech);
/* The users with a SCRAM credential, in name order: start with *pos = 0;
 * each call gives one (name, credential) pair, NULL at the end. */
const sasl_cred *meta_image_scram_next(const meta_image *img, int32_t *pos, const char **name);

/* The published image, with a reference the caller releases. Any thread. */
meta_image *meta_acquire(meta_t *m);

/* Called on the controller thread after each publish, before the changes'
 * callbacks: the broker opens the logs of new partitions, closes deleted. */
typedef void (*meta_listener_fn)(void *ctx, const meta_image *old, const meta_image *cur);

/* The metadata quorum's settings (Kafka's controller.quorum.* keys). */
#define META_VOTERS_MAX 16
#define META_OBSERVERS_MAX 64
typedef struct meta_config {
    const char *data_dir;
    sfs_t *fs;
    int32_t node_id;
    int n_voters;                       /* 0: this node alone */
    int32_t voter_ids[META_VOTERS_MAX];
    char voter_addrs[META_VOTERS_MAX][300]; /* controller listeners, "HOST:PORT" */
    int32_t election_timeout_ms;        /* 0: the default */
    int32_t election_backoff_max_ms;
    int32_t fetch_timeout_ms;
    /* This node as a broker (lifecycle.c): the client listeners it registers
     * (advertised addresses; the strings are copied); none: it does not
     * register. inter_broker: the listener name peers are dialled on. */
    int32_t nendpoints;
    meta_endpoint endpoints[META_ENDPOINTS_MAX];
    const char *inter_broker;
    int32_t heartbeat_interval_ms;      /* broker.heartbeat.interval.ms; 0: 2000 */
    int32_t session_timeout_ms;         /* broker.session.timeout.ms; 0: 9000 */
    /* The controller's elections (election.c); dynamic cluster-wide
     * overrides in the image take precedence. */
    bool unclean_leader_election;       /* unclean.leader.election.enable */
    bool auto_leader_rebalance;         /* auto.leader.rebalance.enable */
    int64_t leader_imbalance_check_interval_ms; /* leader.imbalance.check.interval.seconds; 0: 300 s */
    /* Snapshots (quorum.c): after this many bytes of committed entries
     * (metadata.log.max.record.bytes.between.snapshots; 0: 20 MiB) or this
     * long (metadata.log.max.snapshot.interval.ms; 0: 1 h, < 0: never). */
    int64_t snapshot_max_bytes;
    int64_t snapshot_interval_ms;
    /* How this node reaches the other voters' controller listeners (TLS,
     * SASL login); NULL: plaintext. Must outlive the meta. */
    const kclient_security *controller_security;
} meta_config;
#define META_SNAPSHOT_BYTES_DEFAULT (20LL * 1024 * 1024)
#define META_SNAPSHOT_INTERVAL_MS_DEFAULT (3600LL * 1000)

/*
 * Opens the metadata log under data_dir and starts the quorum and the
 * controller thread. A single voter elects itself and applies its whole
 * log before this returns, so the first image is complete; with several
 * voters the image fills as the quorum commits (meta_caught_up). Returns 0
 * or a storage error.
 */
int meta_open(const meta_config *cfg, meta_listener_fn listener, void *listener_ctx, meta_t **out);
/* With several voters: start talking to them (after net_start). */
void meta_connect(meta_t *m, net_t *net);
/* Controlled shutdown (shutdown.c), before the node stops serving: the
 * controller moves this broker's leaderships away and a quorum leader hands
 * over, each waited for until timeout_ms has passed at most. Returns at once
 * on a node alone. */
void meta_controlled_shutdown(meta_t *m, int32_t timeout_ms);
void meta_close(meta_t *m);
/* True once this node knows a leader and has applied everything committed
 * it knows of (readiness). */
bool meta_caught_up(meta_t *m);

/* The inter-broker listener name (meta_config.inter_broker; "PLAINTEXT"
 * when none was given): the one to pass meta_broker_addr. Any thread. */
const char *meta_inter_broker_listener(meta_t *m);
/* The quorum leader, whose controller decides (-1: unknown). Any thread. */
int32_t meta_controller_id(meta_t *m);
/* At the controller: ms since broker id last heartbeat, or -1 (unknown, or
 * this node is not the controller). Any thread. */
int64_t meta_heartbeat_age_ms(meta_t *m, int32_t id);
/* This broker (of a cluster) has had no heartbeat answered for three
 * broker sessions (longer than a controller failover takes): the controller
 * has fenced it and moved its leaderships. Any thread. */
bool meta_session_lost(meta_t *m);

/* Sends a request (the generated struct of api_key at version) to the
 * controller listener of the quorum leader, over this node's connection to
 * it: cb runs once on that client's reactor, as kclient_send says. Returns
 * 0, a KCLIENT_ERR_*, or -1 when there is nobody else to ask (no leader
 * known, this node leads or is the only voter). Any thread while the node
 * serves. */
int meta_send_to_leader(meta_t *m, int16_t api_key, int16_t version, const void *req, uint32_t timeout_ms,
                        kclient_cb cb, void *arg);

/* ---- the quorum as operators see it ------------------------------------------ */
typedef struct meta_quorum_replica {
    int32_t id;
    int64_t log_end_offset;   /* -1 unknown */
    int64_t last_fetch_ms_ago; /* -1 unknown or the leader itself */
} meta_quorum_replica;
typedef struct meta_quorum_status {
    const char *role;         /* "leader", "follower", "candidate", ... */
    int32_t node_id, leader_id, epoch;
    int64_t high_watermark, log_end;
    int64_t last_election_ms_ago; /* -1 never seen */
    uint64_t elections;       /* times this node stood for election */
    int n_voters;
    int32_t voter_ids[META_VOTERS_MAX];
    bool leader_view;         /* the replicas below are the leader's knowledge */
    int n_replicas;
    meta_quorum_replica replicas[META_VOTERS_MAX];
    int n_observers;          /* broker-only nodes following the log (leader's view) */
    meta_quorum_replica observers[META_OBSERVERS_MAX];
    int64_t snapshot_end_offset; /* newest snapshot on disk, 0 none */
    int64_t snapshot_age_ms;     /* since it was taken, -1 none */
    int64_t log_start_offset;    /* first offset of the disk log */
    uint64_t snapshots_taken, snapshots_installed;
} meta_quorum_status;
void meta_quorum_status_get(meta_t *m, meta_quorum_status *out);

/* A Raft request from a peer's controller connection (Vote, BeginQuorumEpoch,
 * EndQuorumEpoch, Fetch, FetchSnapshot): api_key and the raw body (in the
 * version src/raft/wire.h speaks; the pre-vote flag is a tag only the raw
 * bytes carry). body and arena a must stay valid until reply(arg,
 * response_struct) has run, once, from the quorum thread, with the
 * generated response struct allocated in a, or with NULL when there is no
 * answer. Returns -1 with *why when the request is not for the metadata
 * partition. */
typedef void (*meta_raft_reply_fn)(void *arg, const void *response);
int meta_raft_request(meta_t *m, int16_t api_key, const uint8_t *body, size_t len, arena_t *a,
                      meta_raft_reply_fn reply, void *arg, const char **why);

/* ---- changes ------------------------------------------------------------ */

/* err: a Kafka error code (0 on success); msg: a short text, valid until
 * done returns (copy it to keep it; at most META_MSG_MAX bytes with its NUL). */
#define META_MSG_MAX 160
typedef void (*meta_done_fn)(void *arg, int16_t err, const char *msg);

typedef enum meta_op_kind {
    META_OP_CREATE_TOPIC,
    META_OP_DELETE_TOPIC,
    META_OP_CREATE_PARTITIONS,
    META_OP_ALTER_CONFIGS,
    META_OP_ALLOC_PRODUCER_IDS,
    META_OP_REGISTER_BROKER,  /* BrokerRegistration */
    META_OP_BROKER_HEARTBEAT, /* BrokerHeartbeat */
    META_OP_FENCE_EXPIRED,    /* fence brokers silent past their session (brokers.c) */
    META_OP_ALTER_PARTITION,  /* AlterPartition: a leader's ISR change (alter_partition.c) */
    META_OP_ELECT_LEADERS,    /* ElectLeaders (election.c) */
    META_OP_REASSIGN,         /* AlterPartitionReassignments (reassign.c) */
    META_OP_CREATE_ACL,       /* CreateAcls: one ACL */
    META_OP_DELETE_ACLS,      /* DeleteAcls: every ACL one filter matches */
    META_OP_ALTER_SCRAM,      /* AlterUserScramCredentials: one upsertion or deletion (scram.c) */
    META_OP_ALTER_QUOTA,      /* AlterClientQuotas: one entity's changes */
} meta_op_kind;

#define META_BROKER_SESSION_TIMEOUT_MS_DEFAULT 1500 /* broker.session.timeout.ms */

/* An explicit replica assignment of one partition (CreateTopics and
 * CreatePartitions Assignments): broker ids, the first the leader. */
typedef struct meta_assignment {
    int32_t nbrokers;
    int32_t *brokers;
} meta_assignment;

/* A broker's registration or heartbeat, and the controller's answer.
 * Endpoints and rack belong to the op (freed with it). Read the answers in
 * done: the op is freed once done returns. */
typedef struct meta_broker_op {
    int32_t id;
    kuuid_t incarnation;       /* register */
    int32_t nendpoints;        /* register: its listeners (owned: meta_endpoints_free) */
    meta_endpoint *endpoints;
    char *rack;                /* register: NULL when none */
    int64_t epoch;             /* heartbeat: in; register: out */
    int64_t metadata_offset;   /* heartbeat: what the broker has applied */
    bool wants_fence;          /* heartbeat */
    bool wants_shutdown;       /* heartbeat */
    bool caught_up, fenced, should_shut_down; /* heartbeat: out */
    int64_t now_ms;            /* the liveness clock (ms); 0: the controller's monotonic clock */
    int64_t session_timeout_ms; /* fence-expired */
} meta_broker_op;

/* A partition leader's ISR change (AlterPartition), and the controller's
 * answer. isr and isr_epochs belong to the op (freed with it). */
typedef struct meta_alter_op {
    int32_t index;
    int32_t broker_id;         /* the sender, which must lead the partition */
    int64_t broker_epoch;      /* its broker epoch */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t nisr;
    int32_t *isr;              /* the new ISR */
    int64_t *isr_epochs;       /* v3: each member's broker epoch (-1 unknown); NULL: not given */
    bool ineligible_v1;        /* INELIGIBLE_REPLICA (v1+), else OPERATION_NOT_ATTEMPTED */
    /* out, on success: the partition as committed (out_isr freed with the op) */
    int32_t out_leader, out_leader_epoch, out_partition_epoch, out_nisr;
    int32_t *out_isr;
} meta_alter_op;

/* ElectLeaders: the partitions asked for (all when all), each with its
 * outcome. With all, the controller lists the partitions it elected. */
enum { META_ELECT_PREFERRED = 0, META_ELECT_UNCLEAN = 1 }; /* Kafka's ElectionType */
typedef struct meta_elect_item {
    char *topic;               /* freed with the op */
    int32_t partition;
    int16_t err;               /* out */
} meta_elect_item;
typedef struct meta_elect_op {
    int8_t type;
    bool all;
    int32_t n;
    meta_elect_item *items;
} meta_elect_op;
/* AlterPartitionReassignments: per partition the target replicas, or a
 * cancel; the outcome of each. Strings and arrays are freed with the op. */
typedef struct meta_reassign_item {
    char *topic;
    int32_t partition;
    int32_t nreplicas;         /* -1: cancel the reassignment in progress */
    int32_t *replicas;
    int16_t err;               /* out */
    char *msg;                 /* out: NULL, or why it was refused */
} meta_reassign_item;
typedef struct meta_reassign_op {
    int32_t n;
    meta_reassign_item *items;
} meta_reassign_op;

/* CreateAcls (one binding) or DeleteAcls (one filter: NULL strings and the
 * ANY codes match all). Strings are freed with the op. */
typedef struct meta_acl_op {
    int8_t resource_type, pattern_type, operation, permission;
    char *name, *principal, *host;
    acl_set *matched;          /* delete, out: copies of the ACLs removed */
} meta_acl_op;

/* AlterUserScramCredentials for one (user, mechanism): an upsertion carries
 * Kafka's SaltedPassword (the controller keeps only the derived keys), a
 * deletion nothing. if_absent: change nothing when the user already has a
 * credential for mech (start-up users). name is freed with the op. */
typedef struct meta_scram_op {
    char *name;
    int8_t mech;
    bool remove, if_absent;
    int32_t iterations;
    uint8_t salt[SASL_SALT_MAX], salted[SASL_KEY_MAX];
    size_t salt_len;
} meta_scram_op;
/* AlterClientQuotas for one entity: keys in `set` take value[k], keys in
 * `remove` lose theirs. The entity's strings are freed with the op. */
typedef struct meta_quota_op {
    meta_quota_entity e;
    uint8_t set, remove;
    double value[META_QUOTA_NKEYS];
} meta_quota_op;
/* What is wrong with q (values, keys set and removed at once), or NULL. */
const char *meta_quota_op_error(const meta_quota_op *q);
void meta_quota_op_free(meta_quota_op *q);

typedef struct meta_op {
    meta_op_kind kind;
    char *topic;             /* name (all kinds; delete may give id instead) */
    kuuid_t topic_id;        /* delete by id when topic is NULL */
    int32_t partitions;      /* create: count; create partitions: new total */
    int16_t replication_factor; /* create: -1 is META_DEFAULT_REPLICATION_FACTOR, at most the live brokers */
    int32_t nconfigs;
    meta_config_kv *configs; /* create: overrides; alter: value NULL deletes */
    bool replace_configs;    /* alter: drop overrides not listed (AlterConfigs) */
    bool broker_resource;    /* alter: topic names a BROKER resource ("" or a node id) */
    bool validate_only;
    int32_t producer_ids;    /* alloc producer ids: block size */
    int64_t first_producer_id; /* alloc producer ids: the result */
    int32_t nassignments;    /* create topic / partitions: explicit replicas, or 0 */
    meta_assignment *assignments;
    meta_broker_op broker;   /* register, heartbeat, fence-expired */
    meta_alter_op alter;     /* alter partition (topic by id, or by name when topic is set) */
    meta_elect_op elect;     /* elect leaders */
    meta_reassign_op reassign; /* reassign */
    meta_acl_op acl;         /* create acl, delete acls */
    meta_scram_op scram;     /* alter scram */
    meta_quota_op quota;     /* alter quota */
    char errbuf[META_MSG_MAX]; /* a message naming values, alive until done returns */
    void (*pids_done)(void *arg, int16_t err, int64_t first, int32_t count);
    void *pids_arg;
    meta_done_fn done;
    void *arg;
    struct meta_op *next;
} meta_op;

/* A new op with its strings to be filled by the caller (meta_op_set_*). */
meta_op *meta_op_new(meta_op_kind kind, const char *topic, size_t topic_len);
void meta_op_add_config(meta_op *op, const char *key, size_t klen, const char *value, size_t vlen);
/* A CREATE_TOPIC op for an internal topic (__consumer_offsets,
 * __transaction_state): compacted, never trimmed by time (the records it is
 * rebuilt from must stay), 100 MiB segments, its replication factor reduced
 * to the live brokers of m's current image. */
meta_op *meta_op_internal_topic(meta_t *m, const char *name, int32_t partitions, int16_t replication_factor);
/* Partitions of topic name in m's current image; 0 when it does not exist. */
int32_t meta_topic_partitions(meta_t *m, const char *name);
/* The replicas of the next new partition, in order (the first leads). */
void meta_op_add_assignment(meta_op *op, const int32_t *ids, int32_t n);
/* One more partition for AlterPartitionReassignments (n -1: cancel). */
void meta_op_add_reassign(meta_op *op, const char *topic, size_t len, int32_t partition, const int32_t *replicas,
                          int32_t n);
/* CREATE_ACL / DELETE_ACLS ops from a binding or a filter (strings copied;
 * a filter's NULL strings stay NULL). */
meta_op *meta_op_acl(meta_op_kind kind, const acl_filter *f);
/* An ALTER_SCRAM op for user name (copied); fill op->scram's other fields. */
meta_op *meta_op_scram(const char *name, size_t len, int8_t mech, bool remove);
/* An ALTER_QUOTA op taking q (its strings are the op's from now). */
meta_op *meta_op_quota(const meta_quota_op *q);
/* One more partition for ElectLeaders. */
void meta_op_add_elect(meta_op *op, const char *topic, size_t len, int32_t partition);
/* Queue op (taking it); op->done(arg, err, msg) runs on the controller
 * thread once it is durable and published, or rejected. */
void meta_submit(meta_t *m, meta_op *op);

/*
 * Producer ids: reserves the block [first, first + count) by writing a
 * ProducerIdsRecord, so no id is ever handed out twice, across restarts
 * too. done(arg, err, first, count) runs on the controller thread once the
 * record is durable (err: a Kafka error code, first -1 on error). The one
 * entry point for producer-id blocks (txn.h's txn_block_request_fn).
 */
#define META_PRODUCER_ID_BLOCK_MAX 1000000
typedef void (*meta_pids_fn)(void *arg, int16_t err, int64_t first, int32_t count);
void meta_alloc_producer_ids(meta_t *m, int32_t count, meta_pids_fn done, void *arg);

/*
 * A partition leader's ISR change, from the replica layer of this node.
 * Asks the controller to set partition (topic_id, index)'s ISR, as its
 * leader at leader_epoch having seen partition_epoch. done runs once, on
 * this node's AlterPartition thread (alter_request.c), with the
 * controller's answer: err a Kafka error code; on success the partition's
 * leader epoch, partition epoch and ISR as committed (isr valid only during
 * the call). On success the change is in this node's published image
 * before done runs (unless timeout_ms passed first while waiting for it).
 * NOT_CONTROLLER, an unknown controller and lost connections are retried
 * internally until timeout_ms; other errors (FENCED_LEADER_EPOCH,
 * INVALID_UPDATE_VERSION, NOT_LEADER_OR_FOLLOWER, INELIGIBLE_REPLICA, ...)
 * are answered at once. Any thread.
 */
typedef void (*meta_alter_partition_fn)(void *arg, int16_t err, int32_t leader_epoch, int32_t partition_epoch,
                                        const int32_t *isr, int32_t nisr);
void meta_alter_partition(meta_t *m, const kuuid_t *topic_id, int32_t index, int32_t leader_epoch,
                          int32_t partition_epoch, const int32_t *isr, int32_t nisr, int64_t timeout_ms,
                          meta_alter_partition_fn done, void *arg);

/* Valid topic name (Kafka's rule: 1-249 of [a-zA-Z0-9._-], not "." or ".."). */
bool meta_valid_topic_name(const char *name, size_t len);

#endif
