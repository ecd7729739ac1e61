/* controller.c - the controller thread: validates queued changes, writes
 * their metadata records to the metadata log, waits for durability, and
 * publishes the new image (meta.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/batch.h"
#include "proto/kerr.h"

enum { META_READ_CHUNK_BYTES = 1 << 20 };

struct meta {
    pthread_t thread;
    pthread_mutex_t lock;      /* queue, stopping, published */
    pthread_cond_t cond;
    meta_op *head, *tail;
    bool stopping;
    meta_image *published;
    meta_image *latest;        /* controller thread only */
    plog_t *log;
    flusher_t *flusher;        /* private, driven synchronously */
    int32_t node_id;
    meta_listener_fn listener;
    void *listener_ctx;
    meta_liveness liveness;    /* controller thread only (brokers.c) */
};

/* One round's records: encoded into a batch and applied to the new image. */
typedef struct round {
    meta_image *img;
    buf_t batch;
    batch_builder_t bb;
    int32_t nrecords;
    int64_t now_ms;
    arena_t arena;
} round_t;

bool meta_valid_topic_name(const char *name, size_t len)
{
    if (len == 0 || len > STORAGE_TOPIC_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

meta_op *meta_op_new(meta_op_kind kind, const char *topic, size_t topic_len)
{
    meta_op *op = xcalloc(1, sizeof *op);
    op->kind = kind;
    op->topic = topic ? xstrndup(topic, topic_len) : NULL;
    op->replication_factor = -1;
    op->partitions = -1;
    return op;
}

void meta_op_add_config(meta_op *op, const char *key, size_t klen, const char *value, size_t vlen)
{
    op->configs = xrealloc(op->configs, (size_t)(op->nconfigs + 1) * sizeof *op->configs);
    op->configs[op->nconfigs].key = xstrndup(key, klen);
    op->configs[op->nconfigs++].value = value ? xstrndup(value, vlen) : NULL;
}

void meta_op_add_assignment(meta_op *op, const int32_t *ids, int32_t n)
{
    op->assignments =
        xrealloc(op->assignments, (size_t)(op->nassignments + 1) * sizeof *op->assignments);
    meta_assignment *a = &op->assignments[op->nassignments++];
    a->nbrokers = n;
    a->brokers = xmalloc((size_t)(n ? n : 1) * sizeof *a->brokers);
    if (n)
        memcpy(a->brokers, ids, (size_t)n * sizeof *ids);
}

static void op_free(meta_op *op)
{
    for (int32_t i = 0; i < op->nassignments; i++)
        free(op->assignments[i].brokers);
    free(op->assignments);
    free(op->broker.host);
    free(op->broker.rack);
    for (int32_t i = 0; i < op->nconfigs; i++) {
        free(op->configs[i].key);
        free(op->configs[i].value);
    }
    free(op->configs);
    free(op->topic);
    free(op);
}

meta_image *meta_acquire(meta_t *m)
{
    pthread_mutex_lock(&m->lock);
    meta_image *img = m->published;
    atomic_fetch_add(&img->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return img;
}

/* Encode one record into the round's batch and apply it to the new image. */
static void emit(round_t *r, int16_t type, const proto_struct_desc *d, const void *rec)
{
    buf_t v;
    buf_init(&v);
    buf_put_uvarint(&v, META_FRAME_VERSION);
    buf_put_uvarint(&v, (uint64_t)type);
    buf_put_uvarint(&v, 0); /* record version */
    proto_encode(d, 0, true, rec, &v);
    if (r->nrecords++ == 0)
        batch_build_begin(&r->bb, &r->batch, 0, 0, r->now_ms, -1, -1, -1);
    batch_build_add(&r->bb, r->now_ms, NULL, -1, v.data, (int32_t)v.len, NULL, 0);
    buf_free(&v);
    meta_image_apply(r->img, type, rec);
}

static void new_topic_id(const meta_image *img, kuuid_t *id)
{
    do {
        if (getrandom(id->b, sizeof id->b, 0) != (ssize_t)sizeof id->b)
            CK_PANIC("getrandom failed");
        id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40); /* version 4 */
        id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80);
    } while (meta_image_topic_by_id(img, id));
}

/* A new partition on replicas (placement.c): ISR the live replicas, leader
 * the first of them (every replica, and the first, when striped). */
static void emit_partition(round_t *r, meta_t *m, const kuuid_t *id, int32_t index,
                           const int32_t *replicas, int32_t rf)
{
    int32_t *isr = xmalloc((size_t)rf * sizeof *isr), nisr = 0;
    for (int32_t i = 0; i < rf; i++)
        if (meta_replica_live(r->img, m->node_id, replicas[i]))
            isr[nisr++] = replicas[i];
    CK_ASSERT(nisr > 0);
    PartitionRecord pr;
    proto_set_defaults(&PartitionRecord_desc, 0, &pr);
    pr.PartitionId = index;
    pr.TopicId = *id;
    pr.Replicas = (kint32_array_t){rf, (int32_t *)replicas};
    pr.Isr = (kint32_array_t){nisr, isr};
    pr.RemovingReplicas = (kint32_array_t){0, NULL};
    pr.AddingReplicas = (kint32_array_t){0, NULL};
    pr.Leader = isr[0];
    pr.LeaderEpoch = 0;
    pr.PartitionEpoch = 0;
    emit(r, META_REC_PARTITION, &PartitionRecord_desc, &pr);
    free(isr);
}

static uint64_t placement_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        CK_PANIC("getrandom failed");
    return seed;
}

enum { PLACE_CHUNK = 1024 }; /* partitions placed at a time */

/* Place and write partitions [first, first + count) of topic id, after
 * meta_place_replicas has validated the whole range. */
static void emit_partitions(round_t *r, meta_t *m, const kuuid_t *id, int32_t first, int32_t count,
                            int16_t rf, const meta_assignment *assign, uint64_t seed)
{
    int32_t *replicas = xmalloc((size_t)PLACE_CHUNK * (size_t)rf * sizeof *replicas);
    char msg[META_MSG_MAX];
    for (int32_t done = 0; done < count; done += PLACE_CHUNK) {
        int32_t n = MIN(PLACE_CHUNK, count - done);
        int16_t err = meta_place_replicas(r->img, m->node_id, first + done, n, rf,
                                          assign ? assign + done : NULL, seed, replicas, msg,
                                          sizeof msg);
        CK_ASSERT(err == KERR_NONE);
        for (int32_t i = 0; i < n; i++)
            emit_partition(r, m, id, first + done + i, &replicas[(size_t)i * (size_t)rf], rf);
    }
    free(replicas);
}

static void emit_resource_config(round_t *r, int8_t type, const char *resource, const char *key,
                                 const char *value)
{
    ConfigRecord cr = {.ResourceType = type, .ResourceName = kstr_from(resource),
                       .Name = kstr_from(key), .Value = kstr_from(value)};
    emit(r, META_REC_CONFIG, &ConfigRecord_desc, &cr);
}

static void emit_config(round_t *r, const char *topic, const char *key, const char *value)
{
    emit_resource_config(r, META_RESOURCE_TOPIC, topic, key, value);
}

static int16_t op_create_topic(round_t *r, meta_t *m, meta_op *op, const char **msg)
{
    size_t len = strlen(op->topic);
    if (!meta_valid_topic_name(op->topic, len) || strcmp(op->topic, META_TOPIC_NAME) == 0)
        return *msg = "invalid topic name", KERR_INVALID_TOPIC_EXCEPTION;
    if (meta_image_topic(r->img, op->topic, len))
        return *msg = "topic already exists", KERR_TOPIC_ALREADY_EXISTS;
    const meta_assignment *assign = op->nassignments > 0 ? op->assignments : NULL;
    int32_t count = assign ? op->nassignments : op->partitions;
    if (count < 1 || count > META_PARTITIONS_MAX)
        return *msg = "number of partitions must be at least 1", KERR_INVALID_PARTITIONS;
    int16_t rf = assign ? (int16_t)MIN(assign[0].nbrokers, INT16_MAX) : op->replication_factor;
    uint64_t seed = placement_seed();
    int16_t err = meta_place_replicas(r->img, m->node_id, 0, count, rf, assign, seed, NULL,
                                      op->errbuf, sizeof op->errbuf);
    if (err != KERR_NONE)
        return *msg = op->errbuf, err;
    if (op->validate_only)
        return KERR_NONE;
    TopicRecord tr = {.Name = kstr_from(op->topic)};
    new_topic_id(r->img, &tr.TopicId);
    emit(r, META_REC_TOPIC, &TopicRecord_desc, &tr);
    emit_partitions(r, m, &tr.TopicId, 0, count, rf, assign, seed);
    for (int32_t i = 0; i < op->nconfigs; i++)
        emit_config(r, op->topic, op->configs[i].key, op->configs[i].value);
    return KERR_NONE;
}

static const meta_topic *op_topic(round_t *r, meta_op *op)
{
    return op->topic ? meta_image_topic(r->img, op->topic, strlen(op->topic))
                     : meta_image_topic_by_id(r->img, &op->topic_id);
}

static int16_t op_delete_topic(round_t *r, meta_op *op, const char **msg)
{
    const meta_topic *t = op_topic(r, op);
    if (!t)
        return *msg = "unknown topic", op->topic ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_UNKNOWN_TOPIC_ID;
    if (op->validate_only)
        return KERR_NONE;
    RemoveTopicRecord rr = {.TopicId = t->id};
    emit(r, META_REC_REMOVE_TOPIC, &RemoveTopicRecord_desc, &rr);
    return KERR_NONE;
}

static int16_t op_create_partitions(round_t *r, meta_t *m, meta_op *op, const char **msg)
{
    const meta_topic *t = op_topic(r, op);
    if (!t)
        return *msg = "unknown topic", KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (op->partitions <= t->npartitions || op->partitions > META_PARTITIONS_MAX)
        return *msg = "the new partition count must exceed the current one", KERR_INVALID_PARTITIONS;
    int32_t first = t->npartitions, count = op->partitions - first;
    /* New partitions keep the topic's replication factor (Kafka: partition 0's). */
    int32_t rf0 = first > 0 ? t->partitions[0].nreplicas : 0;
    int16_t rf = (int16_t)(rf0 > 0 ? MIN(rf0, INT16_MAX) : 1);
    const meta_assignment *assign = op->nassignments > 0 ? op->assignments : NULL;
    if (assign && op->nassignments != count) {
        snprintf(op->errbuf, sizeof op->errbuf, "%d partitions are added, but %d assignments given",
                 count, op->nassignments);
        return *msg = op->errbuf, KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    uint64_t seed = placement_seed();
    int16_t err = meta_place_replicas(r->img, m->node_id, first, count, rf, assign, seed, NULL,
                                      op->errbuf, sizeof op->errbuf);
    if (err != KERR_NONE)
        return *msg = op->errbuf, err;
    if (op->validate_only)
        return KERR_NONE;
    kuuid_t id = t->id;
    emit_partitions(r, m, &id, first, count, rf, assign, seed);
    return KERR_NONE;
}

static bool op_lists(const meta_op *op, const char *key)
{
    for (int32_t j = 0; j < op->nconfigs; j++)
        if (strcmp(op->configs[j].key, key) == 0)
            return true;
    return false;
}

/* Dynamic broker configs of one resource (the broker checked the keys and
 * values): AlterConfigs also removes the resource's keys it does not list. */
static int16_t op_alter_broker_configs(round_t *r, meta_op *op)
{
    if (op->validate_only)
        return KERR_NONE;
    if (op->replace_configs) {
        int32_t n = 0;
        char **gone = xcalloc((size_t)(r->img->nbroker_configs + 1), sizeof *gone);
        for (int32_t i = 0; i < r->img->nbroker_configs; i++) {
            const meta_broker_config *c = &r->img->broker_configs[i];
            if (strcmp(c->resource, op->topic) == 0 && !op_lists(op, c->key))
                gone[n++] = xstrdup(c->key);
        }
        for (int32_t i = 0; i < n; i++) {
            emit_resource_config(r, META_RESOURCE_BROKER, op->topic, gone[i], NULL);
            free(gone[i]);
        }
        free(gone);
    }
    for (int32_t i = 0; i < op->nconfigs; i++)
        emit_resource_config(r, META_RESOURCE_BROKER, op->topic, op->configs[i].key,
                             op->configs[i].value);
    return KERR_NONE;
}

static int16_t op_alter_configs(round_t *r, meta_op *op, const char **msg)
{
    if (op->broker_resource)
        return op_alter_broker_configs(r, op);
    const meta_topic *t = op_topic(r, op);
    if (!t)
        return *msg = "unknown topic", KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (op->validate_only)
        return KERR_NONE;
    char *name = xstrdup(t->name);
    if (op->replace_configs) {
        int32_t n = t->nconfigs;
        char **old = xcalloc((size_t)(n ? n : 1), sizeof *old);
        for (int32_t i = 0; i < n; i++)
            old[i] = xstrdup(t->configs[i].key);
        for (int32_t i = 0; i < n; i++) {
            if (!op_lists(op, old[i]))
                emit_config(r, name, old[i], NULL);
            free(old[i]);
        }
        free(old);
    }
    for (int32_t i = 0; i < op->nconfigs; i++)
        emit_config(r, name, op->configs[i].key, op->configs[i].value);
    free(name);
    return KERR_NONE;
}

static int16_t op_alloc_producer_ids(round_t *r, meta_t *m, meta_op *op, const char **msg)
{
    int64_t first = r->img->next_producer_id;
    if (op->producer_ids < 1 || op->producer_ids > META_PRODUCER_ID_BLOCK_MAX)
        return *msg = "producer id block size out of range", KERR_INVALID_REQUEST;
    if (first < 0 || first > INT64_MAX - op->producer_ids)
        return *msg = "producer ids exhausted", KERR_UNKNOWN_SERVER_ERROR;
    ProducerIdsRecord pr = {.BrokerId = m->node_id, .BrokerEpoch = -1,
                            .NextProducerId = first + op->producer_ids};
    emit(r, META_REC_PRODUCER_IDS, &ProducerIdsRecord_desc, &pr);
    CK_ASSERT(r->img->next_producer_id == first + op->producer_ids);
    op->first_producer_id = first;
    return KERR_NONE;
}

/* ---- brokers (the decisions are brokers.c's) ------------------------------ */

static void round_emit(void *ctx, int16_t type, const proto_struct_desc *d, const void *rec)
{
    emit(ctx, type, d, rec);
}

static meta_writer round_writer(round_t *r)
{
    return (meta_writer){.img = r->img, .emit = round_emit, .ctx = r};
}

/* The op's time, or the controller's monotonic clock when it gives none. */
static int64_t op_now_ms(const meta_broker_op *b)
{
    return b->now_ms ? b->now_ms : clock_mono_ms();
}

static int16_t op_register_broker(round_t *r, meta_t *m, meta_op *op, const char **msg)
{
    meta_broker_op *b = &op->broker;
    meta_registration reg = {.id = b->id, .incarnation = b->incarnation, .host = b->host,
                             .port = b->port, .rack = b->rack};
    meta_writer w = round_writer(r);
    /* The round's records land after the log end the image reflects. */
    int64_t offset = r->img->offset + r->nrecords;
    return meta_broker_register(&w, &m->liveness, &reg, offset, op_now_ms(b), &b->epoch, msg);
}

static int16_t op_broker_heartbeat(round_t *r, meta_t *m, meta_op *op, const char **msg)
{
    meta_broker_op *b = &op->broker;
    meta_heartbeat hb = {.id = b->id, .epoch = b->epoch, .metadata_offset = b->metadata_offset,
                         .wants_fence = b->wants_fence, .wants_shutdown = b->wants_shutdown};
    meta_heartbeat_reply reply;
    meta_writer w = round_writer(r);
    int16_t err = meta_broker_heartbeat(&w, &m->liveness, &hb, op_now_ms(b), &reply, msg);
    b->caught_up = reply.caught_up;
    b->fenced = reply.fenced;
    b->should_shut_down = reply.should_shut_down;
    return err;
}

static int16_t op_fence_expired(round_t *r, meta_t *m, meta_op *op)
{
    int64_t timeout_ms = op->broker.session_timeout_ms > 0 ? op->broker.session_timeout_ms
                                                           : META_BROKER_SESSION_TIMEOUT_MS_DEFAULT;
    meta_writer w = round_writer(r);
    meta_brokers_tick(&w, &m->liveness, op_now_ms(&op->broker), timeout_ms);
    return KERR_NONE;
}

static int16_t run_op(round_t *r, meta_t *m, meta_op *op, const char **msg)
{
    *msg = NULL;
    switch (op->kind) {
    case META_OP_CREATE_TOPIC:
        return op_create_topic(r, m, op, msg);
    case META_OP_DELETE_TOPIC:
        return op_delete_topic(r, op, msg);
    case META_OP_CREATE_PARTITIONS:
        return op_create_partitions(r, m, op, msg);
    case META_OP_ALTER_CONFIGS:
        return op_alter_configs(r, op, msg);
    case META_OP_ALLOC_PRODUCER_IDS:
        return op_alloc_producer_ids(r, m, op, msg);
    case META_OP_REGISTER_BROKER:
        return op_register_broker(r, m, op, msg);
    case META_OP_BROKER_HEARTBEAT:
        return op_broker_heartbeat(r, m, op, msg);
    case META_OP_FENCE_EXPIRED:
        return op_fence_expired(r, m, op);
    }
    return KERR_UNKNOWN_SERVER_ERROR;
}

static void sync_done(void *arg, int err)
{
    *(int *)arg = err;
}

/* Append the round's batch and make it durable. Returns a storage error. */
static int persist(meta_t *m, round_t *r)
{
    batch_build_end(&r->bb);
    plog_append_result_t res;
    int rc = plog_append(m->log, r->batch.data, r->batch.len, 0, &res);
    if (rc != STORAGE_OK)
        return rc;
    int serr = -1;
    flusher_request(m->flusher, m->log, res.log_end_offset, sync_done, &serr);
    while (serr == -1)
        flusher_run_once(m->flusher);
    r->img->offset = res.log_end_offset;
    return serr;
}

static void publish(meta_t *m, meta_image *img)
{
    pthread_mutex_lock(&m->lock);
    meta_image *old = m->published;
    atomic_fetch_add(&img->refs, 1);
    m->published = img;
    pthread_mutex_unlock(&m->lock);
    if (m->listener)
        m->listener(m->listener_ctx, old, img);
    meta_image_release(old);
    meta_image_release(m->latest);
    m->latest = img;
}

static void run_round(meta_t *m, meta_op *ops)
{
    round_t r = {.img = meta_image_copy(m->latest), .now_ms = clock_wall_ms()};
    buf_init(&r.batch);
    int16_t errs[256];
    const char *msgs[256];
    int n = 0;
    for (meta_op *op = ops; op; op = op->next, n++)
        errs[n] = run_op(&r, m, op, &msgs[n]);
    if (r.nrecords > 0) {
        int rc = persist(m, &r);
        if (rc != STORAGE_OK) {
            log_error("meta", "cannot write the metadata log err=\"%s\"", storage_strerror(rc));
            for (int i = 0; i < n; i++)
                if (errs[i] == KERR_NONE)
                    errs[i] = KERR_KAFKA_STORAGE_ERROR, msgs[i] = "metadata log write failed";
            meta_image_release(r.img);
            r.img = NULL;
        }
    }
    if (r.img && r.nrecords > 0)
        publish(m, r.img);
    else
        meta_image_release(r.img);
    buf_free(&r.batch);
    n = 0;
    for (meta_op *op = ops, *next; op; op = next, n++) {
        next = op->next;
        op->done(op->arg, errs[n], msgs[n] ? msgs[n] : kerr_message(errs[n]));
        op_free(op);
    }
}

static void *controller_thread(void *arg)
{
    meta_t *m = arg;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        while (!m->head && !m->stopping)
            pthread_cond_wait(&m->cond, &m->lock);
        if (!m->head) {
            pthread_mutex_unlock(&m->lock);
            return NULL;
        }
        /* At most 256 changes a round (errs/msgs arrays in run_round). */
        meta_op *ops = m->head, *last = ops;
        for (int i = 1; i < 256 && last->next; i++)
            last = last->next;
        m->head = last->next;
        if (!m->head)
            m->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&m->lock);
        run_round(m, ops);
    }
}

void meta_submit(meta_t *m, meta_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->tail)
        m->tail->next = op;
    else
        m->head = op;
    m->tail = op;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void pids_op_done(void *arg, int16_t err, const char *msg)
{
    meta_op *op = arg; /* freed by run_round after this returns */
    (void)msg;
    op->pids_done(op->pids_arg, err, err == KERR_NONE ? op->first_producer_id : -1, op->producer_ids);
}

void meta_alloc_producer_ids(meta_t *m, int32_t count, meta_pids_fn done, void *arg)
{
    meta_op *op = meta_op_new(META_OP_ALLOC_PRODUCER_IDS, NULL, 0);
    op->producer_ids = count;
    op->first_producer_id = -1;
    op->pids_done = done;
    op->pids_arg = arg;
    op->done = pids_op_done;
    op->arg = op;
    meta_submit(m, op);
}

/* Decode one framed record value and apply it. */
static void replay_record(meta_image *img, const uint8_t *v, int32_t len, arena_t *a)
{
    rd_t r;
    rd_init(&r, v, (size_t)len);
    uint64_t frame, type, ver;
    if (!rd_uvarint(&r, &frame) || !rd_uvarint(&r, &type) || !rd_uvarint(&r, &ver) || type >= 0x7fff)
        return;
    const proto_record_desc *rd = proto_metadata_record((int16_t)type);
    if (!rd || (int64_t)ver < rd->min_version || (int64_t)ver > rd->max_version)
        return;
    void *rec = arena_alloc(a, rd->desc->size);
    proto_err_t err;
    if (proto_decode(rd->desc, (int16_t)ver, true, &r, a, rec, &err) != 0) {
        char msg[PROTO_ERR_MSG_MAX];
        log_warn("meta", "skipping undecodable metadata record detail=\"%s\"",
                 proto_err_format(&err, msg, sizeof msg));
        return;
    }
    meta_image_apply(img, (int16_t)type, rec);
}

static void replay_batch(meta_image *img, const uint8_t *p, size_t size, arena_t *a)
{
    batch_iter_t it;
    batch_record_t rec;
    if (!batch_iter_init(&it, p, size))
        return;
    while (batch_iter_next(&it, &rec))
        if (rec.value_len > 0)
            replay_record(img, rec.value, rec.value_len, a);
}

static int replay(meta_t *m, meta_image *img)
{
    int64_t off = plog_log_start_offset(m->log), end = plog_log_end_offset(m->log);
    buf_t b;
    buf_init(&b);
    arena_t a;
    arena_init(&a);
    int rc = STORAGE_OK;
    while (off < end && rc == STORAGE_OK) {
        buf_reset(&b);
        int64_t next = off;
        rc = plog_read_copy(m->log, off, INT64_MAX, META_READ_CHUNK_BYTES, &b, &next);
        for (size_t pos = 0; rc == STORAGE_OK && pos + BATCH_LOG_OVERHEAD <= b.len;) {
            batch_info_t bi;
            if (batch_parse_header(b.data + pos, b.len - pos, &bi) != BATCH_ERR_OK)
                break;
            replay_batch(img, b.data + pos, bi.size, &a);
            arena_reset(&a);
            pos += bi.size;
        }
        if (next <= off)
            break;
        off = next;
    }
    img->offset = end;
    arena_free(&a);
    buf_free(&b);
    return rc;
}

int meta_open(const char *data_dir, sfs_t *fs, int32_t node_id, meta_listener_fn listener,
              void *listener_ctx, meta_t **out)
{
    plog_config_t pc;
    plog_config_default(&pc);
    plog_t *log;
    int rc = storage_open_partition(data_dir, META_TOPIC_NAME, 0, &pc, fs, &log);
    if (rc != STORAGE_OK) {
        if (log) /* offline or damaged: the metadata cannot be trusted, the node does not start */
            log_error("meta", "metadata log unusable: %s", plog_errmsg(log));
        plog_close(log);
        return rc;
    }
    meta_t *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->log = log;
    m->flusher = flusher_new();
    flusher_attach(m->flusher, log);
    m->node_id = node_id;
    m->listener = listener;
    m->listener_ctx = listener_ctx;
    meta_image *img = meta_image_new();
    rc = replay(m, img);
    m->published = img;
    atomic_fetch_add(&img->refs, 1);
    m->latest = img;
    if (listener)
        listener(listener_ctx, NULL, img);
    log_info("meta", "metadata loaded topics=%d log_end=%lld", img->ntopics, (long long)img->offset);
    if (pthread_create(&m->thread, NULL, controller_thread, m) != 0)
        CK_PANIC("cannot start the controller thread");
    *out = m;
    return rc;
}

void meta_close(meta_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    plog_close(m->log);
    flusher_free(m->flusher);
    meta_image_release(m->published);
    meta_image_release(m->latest);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}
