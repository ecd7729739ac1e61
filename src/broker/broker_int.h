/*
 * broker_int.h - what the files of src/broker share: the node's state, the
 * per-request context and the handler table. Not included outside src/broker.
 *
 * A request's life: net hands a frame to dispatch.c, which decodes the
 * header and body into the request's arena, fills the response with the
 * schema defaults and calls the API's handler. A handler returns
 * BREQ_DONE (the response is encoded and sent at once), or BREQ_PARKED and
 * later calls breq_finish() (from any thread) when it is woken by the event
 * it waited for: a sync, a replica's fetch, new data for a long poll.
 */
#ifndef CHRONIK_BROKER_INT_H
#define CHRONIK_BROKER_INT_H

#include <stdatomic.h>

#include "admin/http.h"
#include "base/util.h"
#include "meta/meta.h"
#include "replica/replica.h"
#include "base/arena.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "group/group.h"
#include "net/net.h"
#include "proto/kerr.h"
#include "proto/proto.h"
#include "tcoord/tcoord.h"

/* Kafka api keys the broker names in code. */
enum api_key {
    API_PRODUCE = 0, API_FETCH = 1, API_LIST_OFFSETS = 2, API_METADATA = 3,
    API_OFFSET_COMMIT = 8, API_OFFSET_FETCH = 9, API_FIND_COORDINATOR = 10,
    API_JOIN_GROUP = 11, API_HEARTBEAT = 12, API_LEAVE_GROUP = 13, API_SYNC_GROUP = 14,
    API_DESCRIBE_GROUPS = 15, API_LIST_GROUPS = 16, API_API_VERSIONS = 18,
    API_CREATE_TOPICS = 19, API_DELETE_TOPICS = 20, API_DELETE_RECORDS = 21,
    API_INIT_PRODUCER_ID = 22, API_OFFSET_FOR_LEADER_EPOCH = 23, API_ADD_PARTITIONS_TO_TXN = 24,
    API_ADD_OFFSETS_TO_TXN = 25, API_END_TXN = 26, API_WRITE_TXN_MARKERS = 27, API_TXN_OFFSET_COMMIT = 28,
    API_DESCRIBE_ACLS = 29, API_CREATE_ACLS = 30, API_DELETE_ACLS = 31, API_DESCRIBE_CONFIGS = 32,
    API_ALTER_CONFIGS = 33, API_DESCRIBE_LOG_DIRS = 35, API_CREATE_PARTITIONS = 37, API_DELETE_GROUPS = 42, API_ELECT_LEADERS = 43,
    API_INCREMENTAL_ALTER_CONFIGS = 44, API_ALTER_PARTITION_REASSIGNMENTS = 45,
    API_LIST_PARTITION_REASSIGNMENTS = 46,
    API_OFFSET_DELETE = 47, API_DESCRIBE_CLIENT_QUOTAS = 48, API_ALTER_CLIENT_QUOTAS = 49, API_VOTE = 52, API_BEGIN_QUORUM_EPOCH = 53, API_END_QUORUM_EPOCH = 54,
    API_DESCRIBE_QUORUM = 55, API_ALTER_PARTITION = 56, API_FETCH_SNAPSHOT = 59, API_DESCRIBE_CLUSTER = 60,
    API_DESCRIBE_PRODUCERS = 61, API_BROKER_REGISTRATION = 62, API_BROKER_HEARTBEAT = 63,
    API_DESCRIBE_TRANSACTIONS = 65, API_LIST_TRANSACTIONS = 66,
    API_ALLOCATE_PRODUCER_IDS = 67,
    API_SASL_HANDSHAKE = 17, API_SASL_AUTHENTICATE = 36,
    API_DESCRIBE_USER_SCRAM_CREDENTIALS = 50, API_ALTER_USER_SCRAM_CREDENTIALS = 51,
};

typedef struct broker_stats {
    _Atomic uint64_t requests[PROTO_API_KEY_LIMIT];
    _Atomic uint64_t request_errors;      /* closed for a malformed request */
    _Atomic uint64_t unsupported_versions;
    _Atomic uint64_t scrub_rounds;         /* scrubber.c */
    _Atomic uint64_t scrub_damaged_ranges;
} broker_stats;

/* A request parked on a timer. When a stop is requested the broker calls
 * expire (any thread; it must hand the work to the request's reactor) so the
 * request is answered at once; whatever still waits after the reactors have
 * ended is answered by cancel (the reply is then dropped). */
typedef struct parked {
    struct parked *prev, *next;
    void (*expire)(struct parked *p); /* called with the parked list locked */
    void (*cancel)(struct parked *p); /* must call broker_unpark */
} parked;

/* A client listener: the context of its connections' frames (dispatch.c). */
typedef struct broker_listener {
    struct broker *b;
    const config_listener *cfg; /* its entry in b->cfg.listeners */
    uint16_t port;              /* bound */
} broker_listener;

typedef struct broker {
    pthread_mutex_t parked_lock;
    parked parked_head;        /* circular list */
    config cfg;                /* static settings, and the dynamic ones as last applied */
    config static_cfg;         /* the file and flags only (dynamic_config.c starts from it) */
    net_t *net;
    meta_t *meta;
    replica_mgr *replicas;
    group_coord *groups;
    tcoord *txns;              /* the transaction coordinator */
    admin_http *admin;
    pthread_t housekeeper;
    pthread_mutex_t hk_lock;
    pthread_cond_t hk_cond;
    bool hk_stop;
    pthread_t scrub_thread;    /* scrubber.c */
    pthread_mutex_t scrub_lock;
    pthread_cond_t scrub_cond;
    bool scrub_stop, scrub_started;
    uint16_t port;             /* bound port of the inter-broker client listener */
    broker_listener listeners[CONFIG_LISTENERS_MAX]; /* client listeners (controller excluded) */
    int nlisteners;
    broker_listener controller_listener; /* the controller listener (its SASL and TLS) */
    net_tls *tls;              /* the SSL listeners' context (tls_watch.c); NULL: none */
    net_tls *peer_tls;         /* this node's client context to its peers (peer_security.c); NULL: none */
    kclient_security peer_controller; /* how it reaches the controller listeners */
    kclient_security peer_broker;     /* how it reaches other brokers' inter-broker listeners */
    struct sasl_local *sasl_local;    /* start-up SCRAM users, until the metadata has them (sasl.c) */
    pthread_t tls_watcher;
    bool tls_watching;
    atomic_bool tls_watch_stop;
    uint16_t controller_port;  /* bound controller port */
    int64_t started_ms;
    int dir_lock_fd;        /* DATA_DIR/.lock, held while running */
    broker_stats stats;
    txn_pids pids;             /* producer-id blocks (api_init_producer_id.c); zeroed = empty */
    acl_config acl;            /* the authorizer's settings (authz.c) */
    acl_ssl_rules *ssl_rules;  /* ssl.principal.mapping.rules (authz.c) */
    _Atomic int sasl_bootstrap_inflight; /* start-up SCRAM users being created (api_scram.c) */
    struct broker_quotas *quotas; /* client quota rates (quota.c) */
} broker;

typedef struct breq {
    broker *b;
    net_req *nreq;
    arena_t arena;
    proto_req_header_t hdr;
    void *req;                 /* decoded request body (api->request) */
    const uint8_t *body;       /* the raw request body (a view into the frame) */
    size_t body_len;
    void *resp;                /* response body (api->response), defaults set */
    meta_image *image;         /* held while the response points into it */
    const struct api_table *table; /* the listener's dispatch table */
    const broker_listener *listener; /* the client listener it came on; NULL: the controller listener */
    const broker_listener *via;      /* the listener it came on, client or controller */
    int64_t received_ms;
    /* Who asks (authz.c): the connection's principal and peer IP; internal
     * for the controller listener (the cluster's own nodes). */
    const char *principal;
    char host[64];
    bool internal;
    uint32_t throttle_ms;      /* over a client quota: the response says so and the connection pauses */
} breq;

typedef enum breq_rc { BREQ_DONE, BREQ_PARKED, BREQ_NO_RESPONSE } breq_rc;
typedef breq_rc (*breq_handler_fn)(breq *r);

typedef struct api_handler {
    int16_t api_key;
    int16_t min_version, max_version; /* what this broker implements */
    breq_handler_fn fn;
} api_handler;

/* A listener's dispatch table (dispatch.c). */
typedef struct api_table {
    const api_handler *handlers;
    size_t count;
    const char *name;
} api_table;
extern const api_table broker_client_api;     /* the Kafka client listener */
extern const api_table broker_controller_api; /* the controller listener */

/* The handler of an api key in table t, or NULL. */
const api_handler *broker_handler(const api_table *t, int16_t api_key);

/* True when the node can serve; otherwise reason gets why (broker.c). */
/* data_dir.c: the data directory exists (created if need be) and this
 * process may write in it; 0, or -1 after logging the directory and why. */
int broker_data_dir_check(const char *path);

bool broker_ready_check(broker *b, char *reason, size_t len);
/* The node's live state for GET /status (status.c): JSON, or text when
 * text is true; true when healthy. ctx is the broker. */
bool broker_status(buf_t *out, bool text, void *ctx);
/* The partition gauges of GET /metrics: counts by health, and each held
 * partition's log start and end, high watermark and size (status.c). */
void broker_status_metrics(broker *b, buf_t *out);
/* The scrubber thread (scrubber.c): started after the logs are open,
 * stopped before they close. */
/* tls_watch.c: b->tls when a listener is SSL, and the thread that reloads
 * its files; 0, or -1 after logging why. Close after net_free. */
int broker_tls_open(broker *b);
void broker_tls_close(broker *b);
/* peer_security.c: b->peer_tls, peer_controller and peer_broker from the
 * configuration, once; 0, or -1 (logged). Close after net_free. */
int broker_peer_security_open(broker *b);
void broker_peer_security_close(broker *b);
void broker_scrubber_start(broker *b);
void broker_scrubber_stop(broker *b);

void broker_park(broker *b, parked *p);
void broker_unpark(broker *b, parked *p); /* no-op when not parked */

/* Free r without answering (after net_req_reply elsewhere). */
void breq_free(breq *r);
/* Encode r->resp, send it and free r. Any thread. */
void breq_finish(breq *r);
/* Complete r without a response (acks=0) and free it. Any thread. */
void breq_noreply(breq *r);

/* net's frame callback (dispatch.c). */
void broker_on_frame(net_conn *c, net_req *req, const uint8_t *frame, size_t len, void *ctx); /* ctx: a broker_listener */
void broker_on_controller_frame(net_conn *c, net_req *req, const uint8_t *frame, size_t len, void *ctx);

/* Handlers, one file each. */
breq_rc api_versions(breq *r);
breq_rc api_metadata(breq *r);
breq_rc api_produce(breq *r);
breq_rc api_fetch(breq *r);
breq_rc api_list_offsets(breq *r);
breq_rc api_create_topics(breq *r);
breq_rc api_delete_topics(breq *r);
breq_rc api_find_coordinator(breq *r);
breq_rc api_join_group(breq *r);
breq_rc api_sync_group(breq *r);
breq_rc api_heartbeat(breq *r);
breq_rc api_leave_group(breq *r);
breq_rc api_offset_commit(breq *r);
breq_rc api_offset_fetch(breq *r);
breq_rc api_list_groups(breq *r);
breq_rc api_describe_groups(breq *r);
breq_rc api_delete_groups(breq *r);
breq_rc api_offset_delete(breq *r);
/* The group coordinator for this node's configuration (api_find_coordinator.c). */
group_coord *broker_groups_start(broker *b);
breq_rc api_delete_records(breq *r);
breq_rc api_describe_configs(breq *r);
breq_rc api_alter_configs(breq *r);
breq_rc api_create_partitions(breq *r);
breq_rc api_incremental_alter_configs(breq *r);
breq_rc api_describe_cluster(breq *r);
breq_rc api_describe_log_dirs(breq *r);
breq_rc api_init_producer_id(breq *r);
/* The transaction coordinator for this node's configuration (api_init_producer_id.c). */
tcoord *broker_txns_start(broker *b);
/* A fresh producer id for r: fn(r, err, id) now or later (api_init_producer_id.c). */
typedef void (*broker_pid_fn)(breq *r, int16_t err, int64_t id);
breq_rc broker_new_producer_id(breq *r, broker_pid_fn fn);
/* PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for versions before fenced_version. */
int16_t broker_fenced_error(const breq *r, int16_t err, int16_t fenced_version);
breq_rc api_add_partitions_to_txn(breq *r);
breq_rc api_add_offsets_to_txn(breq *r);
breq_rc api_end_txn(breq *r);
breq_rc api_txn_offset_commit(breq *r);
breq_rc api_describe_transactions(breq *r);
breq_rc api_list_transactions(breq *r);
breq_rc api_describe_producers(breq *r);
breq_rc api_write_txn_markers(breq *r);
breq_rc api_offset_for_leader_epoch(breq *r);
breq_rc api_describe_quorum(breq *r);
breq_rc api_raft(breq *r); /* Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot (controller) */
breq_rc api_broker_registration(breq *r);   /* controller listener */
breq_rc api_broker_heartbeat(breq *r);      /* controller listener */
breq_rc api_alter_partition(breq *r);       /* controller listener */
breq_rc api_elect_leaders(breq *r);         /* both listeners */
breq_rc api_alter_partition_reassignments(breq *r); /* both listeners */
breq_rc api_list_partition_reassignments(breq *r);
breq_rc api_allocate_producer_ids(breq *r); /* controller listener */
breq_rc api_describe_acls(breq *r);         /* api_acls.c */
breq_rc api_create_acls(breq *r);           /* both listeners */
breq_rc api_delete_acls(breq *r);           /* both listeners */
breq_rc api_sasl_handshake(breq *r);        /* sasl.c */
breq_rc api_sasl_authenticate(breq *r);
breq_rc api_describe_user_scram_credentials(breq *r); /* api_scram.c */
breq_rc api_alter_user_scram_credentials(breq *r);    /* both listeners */

/* ---- SASL (sasl.c) ------------------------------------------------------------ */

/* Is l a SASL_PLAINTEXT or SASL_SSL listener? */
bool broker_sasl_listener(const broker_listener *l);
/* A SASL listener's connection callbacks (its per-connection state). */
void broker_sasl_handler(net_handler *h);
/* "User:NAME" once c has logged in on SASL listener l, else NULL. */
const char *broker_sasl_principal(const broker_listener *l, net_conn *c);
/* authz.c: may this request use the controller listener? Always on a
 * plaintext one, and before a login; with the authorizer on, a TLS or SASL
 * controller listener serves only principals allowed CLUSTER_ACTION
 * (super.users, or an ACL), as Kafka's controller does. */
bool broker_authz_controller_admit(const breq *r);
/* May r be served on its connection (false: close it)? Before a login
 * only ApiVersions, SaslHandshake and SaslAuthenticate are. */
bool broker_sasl_admit(const breq *r);
/* After SaslHandshake v0 the next frame is a bare token: true when frame
 * was one (r answered and freed). */
bool broker_sasl_raw(breq *r, const uint8_t *frame, size_t len);
/* --add-scram users: created at start when absent (api_scram.c). */
void broker_sasl_bootstrap(broker *b);
/* "SCRAM-SHA-512=[name=admin,password=secret]": 0, or -1 when malformed. */
int broker_sasl_parse_bootstrap(const char *s, int *mech, char *name, size_t nlen, char *pw, size_t plen);
/* The start-up users' credentials from this node's configuration (sasl.c). */
void broker_sasl_local_init(broker *b);
void broker_sasl_local_free(broker *b);
/* The error for a partition this node holds no log of: NOT_LEADER_OR_FOLLOWER
 * when the topic has it (another node leads it: the client refreshes its
 * metadata and goes there), else UNKNOWN_TOPIC_OR_PARTITION (topics.c). */
int16_t broker_partition_elsewhere(const meta_topic *t, int32_t index);
/* Whether img has partition index of topic (topics.c). */
bool broker_partition_exists(const meta_image *img, kstr_t topic, int32_t index);
/* api_offset_commit.c: one partition of an OffsetCommit or TxnOffsetCommit
 * (TOPIC_AUTHORIZATION_FAILED without READ on the topic,
 * UNKNOWN_TOPIC_OR_PARTITION when name has no such partition). */
group_commit_in broker_commit_in(breq *r, const meta_image *img, const char *topic, kstr_t name, int32_t index,
                                 int64_t offset, int32_t leader_epoch, kstr_t metadata, int64_t commit_ts_ms);
/* Partition index of t when this node leads it at epoch (-1: any), with a
 * reference (partition_put); else NULL and *err says why
 * (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION...). */
partition *broker_leader_partition(broker *b, const meta_topic *t, int32_t index, int32_t epoch, int16_t *err);
/* The image's leader and leader epoch of partition index of t (-1, -1 when
 * unknown): the CurrentLeader hint of Fetch and Produce errors. */
void broker_leader_hint(const meta_topic *t, int32_t index, int32_t *leader_id, int32_t *leader_epoch);
/* min.insync.replicas of partition index of t (api_produce.c). */
int32_t broker_min_insync(const config *cfg, const meta_topic *t, int32_t index);

/* ---- authorization (authz.c) ----------------------------------------------- */

#define BROKER_USER_PREFIX "User:"
#define BROKER_PRINCIPAL_ANONYMOUS "User:ANONYMOUS"
/* Reads the authorizer settings from b->cfg (at start). */
void broker_authz_init(broker *b);
void broker_authz_free(broker *b);
/* Sets r's principal, host and internal flag from its connection: the one
 * place a connection's identity is decided. A principal NULL means none
 * (a client certificate no ssl.principal.mapping.rules rule maps): the
 * connection is to be closed. */
void broker_authz_identify(breq *r, net_conn *c, const api_table *t);
bool broker_authz_on(const breq *r);
/* May r do op on resource (type, name) by img's ACLs? */
bool broker_allowed_in(const breq *r, const meta_image *img, int8_t op, int8_t type, const char *name, size_t len);
/* The same, with the current image. */
bool broker_allowed(const breq *r, int8_t op, int8_t type, const char *name, size_t len);
bool broker_allowed_k(const breq *r, int8_t op, int8_t type, kstr_t name);
bool broker_allowed_cluster(const breq *r, int8_t op);
/* CLUSTER_ACTION for inter-broker requests on the client listener (follower
 * Fetch, WriteTxnMarkers): granted by ACL, or to a peer whose address is a
 * registered broker's host. */
bool broker_allowed_cluster_action(const breq *r);
/* An op on some resource of type (IDEMPOTENT_WRITE from WRITE on any topic). */
bool broker_allowed_any(const breq *r, int8_t op, int8_t type);
/* The Kafka error for a refusal, or 0 (KERR_NONE) when allowed:
 * TOPIC_/GROUP_/TRANSACTIONAL_ID_ (WRITE)/CLUSTER_AUTHORIZATION_FAILED. */
int16_t broker_topic_denied(const breq *r, const meta_image *img, int8_t op, kstr_t name);
int16_t broker_group_denied(const breq *r, int8_t op, kstr_t group_id);
int16_t broker_txn_denied(const breq *r, kstr_t transactional_id);
int16_t broker_cluster_denied(const breq *r, int8_t op);
/* DESCRIBE_CONFIGS or ALTER_CONFIGS (op) on a config resource: a topic
 * (TOPIC_AUTHORIZATION_FAILED) or a broker or broker logger (on the
 * cluster, CLUSTER_AUTHORIZATION_FAILED); other types are not checked. */
int16_t broker_config_denied(const breq *r, const meta_image *img, int8_t op, int8_t resource_type, kstr_t name);
/* CREATE on the cluster or on the topic. */
bool broker_may_create_topic(const breq *r, const meta_image *img, kstr_t name);

/* ---- client quotas (quota.c, api_client_quotas.c) --------------------------- */

void broker_quotas_init(broker *b);
void broker_quotas_free(broker *b);
/* A produce of bytes from r's client: counted, and r->throttle_ms set when
 * it takes the client over its producer_byte_rate. */
void broker_quota_produce(breq *r, size_t bytes);
/* The most bytes one consumer fetch of r's client may return (INT64_MAX:
 * no consumer_byte_rate applies). */
int64_t broker_quota_fetch_cap(breq *r);
/* A consumer fetch answering bytes: sets r->throttle_ms when over the
 * consumer_byte_rate; returns false when the response should carry no
 * records (those bytes are then not counted). */
bool broker_quota_fetch(breq *r, int64_t bytes);
/* A request answered after ns of handling: counted against r's client's
 * request_percentage, r->throttle_ms set when over it. */
void broker_quota_request_time(breq *r, int64_t ns);
/* Controller mutation quota (KIP-599): partitions r's client creates or
 * deletes. False when the topic is refused with THROTTLING_QUOTA_EXCEEDED:
 * the request's version is strict_since or newer and the client's quota
 * is already used up. Over the quota, r->throttle_ms is set either way. */
bool broker_quota_mutation(breq *r, int32_t partitions, int16_t strict_since);
#define BROKER_QUOTA_MUTATION_MSG "the controller mutation quota is used up; retry after the throttle time"
/* Put r->throttle_ms into the response's ThrottleTimeMs and pause the
 * connection that long once the response is out (KIP-219). */
void broker_quota_throttle(breq *r);
breq_rc api_describe_client_quotas(breq *r);
breq_rc api_alter_client_quotas(breq *r); /* both listeners */

/* ---- topics (topics.c) ---------------------------------------------------- */

/*
 * Auto-creation: for each name that is valid and not in the current image,
 * a topic with the broker defaults is created. Returns false when nothing
 * needs creating (the caller goes on); true when creations were started:
 * the caller returns BREQ_PARKED and resume(r) runs later on r's reactor.
 */
bool broker_autocreate(breq *r, const kstr_t *names, int32_t n, breq_rc (*resume)(breq *r));
/* Run fn(r) on the reactor that owns r's connection (from any thread);
 * the breq_rc it returns is acted on as dispatch does. */
void breq_resume(breq *r, breq_rc (*fn)(breq *r));

/* Waiting for several controller changes (topics.c): submit each with the
 * response fields its outcome goes to, then return meta_wait_end(w); once
 * all are done, after(r) runs on r's reactor. */
typedef struct meta_wait meta_wait;
meta_wait *meta_wait_new(breq *r, breq_rc (*after)(breq *r));
/* An after for requests whose handler filled the whole response already. */
breq_rc meta_wait_answered(breq *r);
void meta_wait_submit(meta_wait *w, meta_op *op, int16_t *err, kstr_t *msg);
/* The same, and keep(ctx, op) runs on the controller thread before op is
 * freed, to take what the op answers besides its error. */
void meta_wait_submit_keep(meta_wait *w, meta_op *op, int16_t *err, kstr_t *msg,
                           void (*keep)(void *ctx, const meta_op *op), void *ctx);
breq_rc meta_wait_end(meta_wait *w);
/* Submit one op and park r: answer(r, op, err) fills the response on the
 * controller thread (op is freed once it returns), then r is answered. */
typedef void (*meta_answer_fn)(breq *r, const meta_op *op, int16_t err);
breq_rc meta_op_park(breq *r, meta_op *op, meta_answer_fn answer);

/* ---- topic configuration (topic_config.c) ---------------------------------- */

typedef struct topic_config_key {
    const char *name;          /* topic-level key */
    const char *synonym;       /* broker-level key, or NULL */
    int8_t type;               /* DescribeConfigs ConfigType */
    bool broker_default;       /* the default is the synonym's value in the broker's config */
    const char *fixed_default; /* when there is no broker field */
} topic_config_key;

const topic_config_key *topic_config_keys(size_t *n);
const topic_config_key *topic_config_find(const char *name, size_t len);
void topic_config_default(const config *c, const topic_config_key *k, char *out, size_t n);
bool topic_config_valid(const topic_config_key *k, const char *value);
int64_t topic_config_long(const config *c, const meta_topic *t, const char *name);
double topic_config_double(const config *c, const meta_topic *t, const char *name);
/* True when the topic's message.timestamp.type (or the broker's) is LogAppendTime. */
bool topic_config_log_append_time(const config *c, const meta_topic *t);
/* replica_config_fn: a topic's log configuration (ctx is the config). */
void topic_config_plog(void *ctx, const meta_topic *t, plog_config_t *out);

/* ---- dynamic broker configuration (dynamic_config.c) ------------------------ */

/* Recomputes the dynamic settings in b->cfg from the static ones and img's
 * BROKER ConfigRecords (the cluster-wide default, then this node's). */
bool dynconf_apply(broker *b, const meta_image *img); /* true: a setting changed */
/* A BROKER resource name that may be altered: "" or this node's id (any
 * node's with any_node: a change forwarded to the controller). */
int16_t dynconf_check_resource(const broker *b, kstr_t name, bool any_node, const char **msg);
/* Every key known and dynamic: else INVALID_CONFIG (unknown) or Kafka's
 * INVALID_REQUEST naming every static key. */
int16_t dynconf_check_keys(breq *r, kstr_t resource, const char *const *keys, int32_t n,
                           const char **msg);
/* A new value (NULL: delete) that the key accepts; else INVALID_REQUEST. */
int16_t dynconf_check_value(breq *r, kstr_t resource, const char *key, const char *value,
                            const char **msg);
/* The dynamic values of key (or an alias) for this node and the cluster-wide default, or NULL. */
void dynconf_lookup(const broker *b, const meta_image *img, const char *key, const char **node_value,
                    const char **default_value);

/* ---- cluster_view.c: the brokers clients are told of --------------------- */
typedef struct broker_view {
    int32_t id;
    const char *host;  /* in r's arena */
    int32_t port;
    const char *rack;  /* NULL: none */
} broker_view;
/* The live brokers of img in id order that have an endpoint for r's
 * listener, copied into r's arena (this node alone while none is
 * registered and unfenced); returns their count. */
int32_t broker_view_list(breq *r, const meta_image *img, broker_view **out);
/* This node's address as told to r's client: the advertised address of the
 * listener r came on (Kafka answers each listener with its own endpoint). */
void broker_view_self(const breq *r, const char **host, int32_t *port);
/* The name of the listener r came on (the inter-broker listener's for the
 * controller listener): whose endpoints r's client is told. */
const char *broker_view_listener(const breq *r);
/* Registered broker mb's address for r's client (this node's from
 * broker_view_self); false when mb has no endpoint for r's listener. host
 * points into mb or the configuration. */
bool broker_view_addr(const breq *r, const meta_broker *mb, const char **host, int32_t *port);
/* The id clients are given as controller: the quorum leader, else this node. */
int32_t broker_view_controller(const broker *b);

/* Keep img alive until r is freed (the response may point into it). */
static inline void breq_hold_image(breq *r, meta_image *img)
{
    if (r->image)
        meta_image_release(r->image);
    r->image = img;
}

/* n response items of struct d, each with the schema defaults. */
static inline void *breq_items(breq *r, const proto_struct_desc *d, int32_t n)
{
    char *items = arena_alloc(&r->arena, (size_t)(n > 0 ? n : 1) * d->size);
    for (int32_t i = 0; i < n; i++)
        proto_set_defaults(d, r->hdr.api_version, items + (size_t)i * d->size);
    return items;
}

/* A string view as a NUL-terminated copy in the request's arena. */
static inline char *breq_strdup(breq *r, kstr_t s)
{
    return arena_strndup(&r->arena, s.ptr ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

#endif
