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
    META_REC_TOPIC = 2,
    META_REC_PARTITION = 3,
    META_REC_CONFIG = 4,
    META_REC_PARTITION_CHANGE = 5,
    META_REC_REMOVE_TOPIC = 9,
    META_REC_PRODUCER_IDS = 15,
};
#define META_RESOURCE_TOPIC 2 /* ConfigRecord.ResourceType */
#define META_RESOURCE_BROKER 4
#define META_FRAME_VERSION 1

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
void qnet_connect(qnet_t *t, net_t *net); /* after net_start */
void qnet_free(qnet_t *t);
void qnet_send(void *arg, const raft_msg_t *m); /* quorum_cb.send */
int qnet_request(qnet_t *t, raft_msg_type_t type, const uint8_t *body, size_t len, arena_t *a,
                 qnet_reply_fn reply, void *arg, const char **why);
void qnet_expire(qnet_t *t, int64_t now_ms);
const raft_wire_topic_t *qnet_topic(void);
/* Apply one decoded record (type = schema apiKey) to a private image. */
void meta_image_apply(meta_image *img, int16_t type, const void *rec);

#endif
