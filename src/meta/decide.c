/*
 * decide.c - the controller's decisions as a pure function: given the
 * committed image, one change (meta_op), the time and a random source, the
 * metadata records of one round, or an error. No threads, sockets or clocks:
 * controller.c runs it on its thread against the published image and
 * proposes the round to the quorum; tests/sim runs it inside every
 * simulated leader.
 *
 * A round is built on a private copy of the base image: each record is
 * encoded (metalog.c's framing, the generated codec) and applied to that
 * copy at once, so a later change of the same round sees an earlier one.
 * The copy is speculative: the image nodes publish comes from applying the
 * committed entry, never from this copy.
 *
 * State kept between rounds (meta_ctl): the brokers' last heartbeats
 * (brokers.c's meta_liveness, reset when a new epoch is led), when the
 * periodic leader check is due, and the epoch led with its start offset.
 *
 * Invariants:
 *   1. a round is decided only by a leader that has applied every entry
 *      below its epoch's start (meta_ctl_caught_up): otherwise an older
 *      leader's rounds, committed only under the new leader, would be
 *      decided again on an image that lacks them;
 *   2. a producer-id block starts at the image's next id and the record
 *      moves it forward by exactly the block (asserted);
 *   3. a TopicRecord is always followed, in the same round, by the
 *      PartitionRecords of every partition of the topic (asserted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

void meta_rand_os(void *ctx, void *out, size_t len)
{
    UNUSED(ctx);
    if (getrandom(out, len, 0) != (ssize_t)len)
        CK_PANIC("getrandom failed");
}

void meta_ctl_init(meta_ctl *c, int32_t node_id, meta_rand rand)
{
    memset(c, 0, sizeof *c);
    c->node_id = node_id;
    c->imbalance_check_ms = META_IMBALANCE_CHECK_MS_DEFAULT;
    c->epoch = -1;
    c->epoch_start = -1;
    c->rand = rand;
}

void meta_ctl_lead(meta_ctl *c, int32_t epoch, int64_t epoch_start)
{
    if (epoch < 0)
        epoch_start = -1;
    if (epoch != c->epoch) {
        c->liveness.n = 0;
        c->liveness.has_suspect = false;
    }
    c->epoch = epoch;
    c->epoch_start = epoch_start;
}

void meta_ctl_suspect(meta_ctl *c, int32_t id, int64_t heard_ms)
{
    c->liveness.has_suspect = true;
    c->liveness.suspect = id;
    c->liveness.suspect_heard_ms = heard_ms;
}

bool meta_ctl_caught_up(const meta_ctl *c, int64_t applied_next)
{
    return c->epoch >= 0 && applied_next >= c->epoch_start;
}

/* Encode one record into the round's batch and apply it to the new image. */
static void emit(meta_ctl_round *r, int16_t type, const proto_struct_desc *d, const void *rec)
{
    buf_t v;
    buf_init(&v);
    buf_put_uvarint(&v, META_FRAME_VERSION);
    buf_put_uvarint(&v, (uint64_t)type);
    buf_put_uvarint(&v, 0); /* record version */
    proto_encode(d, 0, true, rec, &v);
    meta_round_add(&r->blob, v.data, v.len);
    r->nrecords++;
    buf_free(&v);
    meta_image_apply(r->img, type, rec);
}

static void new_topic_id(const meta_ctl_round *r, kuuid_t *id)
{
    do {
        r->ctl->rand.fill(r->ctl->rand.ctx, id->b, sizeof id->b);
        id->b[6] = (uint8_t)((id->b[6] & 0x0f) | 0x40); /* version 4 */
        id->b[8] = (uint8_t)((id->b[8] & 0x3f) | 0x80);
    } while (meta_image_topic_by_id(r->img, id));
}

/* A new partition on replicas (placement.c): ISR the live replicas, leader
 * the first of them (every replica, and the first, when striped). */
static void emit_partition(meta_ctl_round *r, const kuuid_t *id, int32_t index,
                           const int32_t *replicas, int32_t rf)
{
    int32_t *isr = xmalloc((size_t)rf * sizeof *isr), nisr = 0;
    for (int32_t i = 0; i < rf; i++)
        if (meta_replica_live(r->img, r->ctl->node_id, replicas[i]))
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

static uint64_t placement_seed(const meta_ctl_round *r)
{
    uint64_t seed;
    r->ctl->rand.fill(r->ctl->rand.ctx, &seed, sizeof seed);
    return seed;
}

enum { PLACE_CHUNK = 1024 }; /* partitions placed at a time */

/* Place and write partitions [first, first + count) of topic id, after
 * meta_place_replicas has validated the whole range. */
static void emit_partitions(meta_ctl_round *r, const kuuid_t *id, int32_t first, int32_t count,
                            int16_t rf, const meta_assignment *assign, uint64_t seed)
{
    int32_t *replicas = xmalloc((size_t)PLACE_CHUNK * (size_t)rf * sizeof *replicas);
    char msg[META_MSG_MAX];
    for (int32_t done = 0; done < count; done += PLACE_CHUNK) {
        int32_t n = MIN(PLACE_CHUNK, count - done);
        int16_t err =
            meta_place_replicas(r->img, r->ctl->node_id, first + done, n, rf,
                                assign ? assign + done : NULL, seed, replicas, msg, sizeof msg);
        CK_ASSERT(err == KERR_NONE);
        for (int32_t i = 0; i < n; i++)
            emit_partition(r, id, first + done + i, &replicas[(size_t)i * (size_t)rf], rf);
    }
    free(replicas);
}

static void emit_resource_config(meta_ctl_round *r, int8_t type, const char *resource,
                                 const char *key, const char *value)
{
    ConfigRecord cr = {.ResourceType = type,
                       .ResourceName = kstr_from(resource),
                       .Name = kstr_from(key),
                       .Value = kstr_from(value)};
    emit(r, META_REC_CONFIG, &ConfigRecord_desc, &cr);
}

static void emit_config(meta_ctl_round *r, const char *topic, const char *key, const char *value)
{
    emit_resource_config(r, META_RESOURCE_TOPIC, topic, key, value);
}

static int16_t op_create_topic(meta_ctl_round *r, meta_op *op, const char **msg)
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
    if (!assign && rf == -1)
        rf = (int16_t)MAX(MIN(META_DEFAULT_REPLICATION_FACTOR, meta_image_live_brokers(r->img)), 1);
    uint64_t seed = placement_seed(r);
    int16_t err = meta_place_replicas(r->img, r->ctl->node_id, 0, count, rf, assign, seed, NULL,
                                      op->errbuf, sizeof op->errbuf);
    if (err != KERR_NONE)
        return *msg = op->errbuf, err;
    if (op->validate_only)
        return KERR_NONE;
    TopicRecord tr = {.Name = kstr_from(op->topic)};
    new_topic_id(r, &tr.TopicId);
    emit(r, META_REC_TOPIC, &TopicRecord_desc, &tr);
    emit_partitions(r, &tr.TopicId, 0, count, rf, assign, seed);
    const meta_topic *made = meta_image_topic(r->img, op->topic, len); /* invariant 3 */
    CK_ASSERT(made && made->npartitions == count);
    for (int32_t i = 0; i < op->nconfigs; i++)
        emit_config(r, op->topic, op->configs[i].key, op->configs[i].value);
    return KERR_NONE;
}

static const meta_topic *op_topic(meta_ctl_round *r, meta_op *op)
{
    return op->topic ? meta_image_topic(r->img, op->topic, strlen(op->topic))
                     : meta_image_topic_by_id(r->img, &op->topic_id);
}

static int16_t op_delete_topic(meta_ctl_round *r, meta_op *op, const char **msg)
{
    const meta_topic *t = op_topic(r, op);
    if (!t)
        return *msg = "unknown topic",
               op->topic ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_UNKNOWN_TOPIC_ID;
    if (op->validate_only)
        return KERR_NONE;
    RemoveTopicRecord rr = {.TopicId = t->id};
    emit(r, META_REC_REMOVE_TOPIC, &RemoveTopicRecord_desc, &rr);
    return KERR_NONE;
}

static int16_t op_create_partitions(meta_ctl_round *r, meta_op *op, const char **msg)
{
    const meta_topic *t = op_topic(r, op);
    if (!t)
        return *msg = "unknown topic", KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (op->partitions <= t->npartitions || op->partitions > META_PARTITIONS_MAX)
        return *msg = "the new partition count must exceed the current one",
               KERR_INVALID_PARTITIONS;
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
    uint64_t seed = placement_seed(r);
    int16_t err = meta_place_replicas(r->img, r->ctl->node_id, first, count, rf, assign, seed, NULL,
                                      op->errbuf, sizeof op->errbuf);
    if (err != KERR_NONE)
        return *msg = op->errbuf, err;
    if (op->validate_only)
        return KERR_NONE;
    kuuid_t id = t->id;
    emit_partitions(r, &id, first, count, rf, assign, seed);
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
static int16_t op_alter_broker_configs(meta_ctl_round *r, meta_op *op)
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

static int16_t op_alter_configs(meta_ctl_round *r, meta_op *op, const char **msg)
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

static int16_t op_alloc_producer_ids(meta_ctl_round *r, meta_op *op, const char **msg)
{
    int64_t first = r->img->next_producer_id;
    if (op->producer_ids < 1 || op->producer_ids > META_PRODUCER_ID_BLOCK_MAX)
        return *msg = "producer id block size out of range", KERR_INVALID_REQUEST;
    if (first < 0 || first > INT64_MAX - op->producer_ids)
        return *msg = "producer ids exhausted", KERR_UNKNOWN_SERVER_ERROR;
    ProducerIdsRecord pr = {
        .BrokerId = r->ctl->node_id, .BrokerEpoch = -1, .NextProducerId = first + op->producer_ids};
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

static meta_writer round_writer(meta_ctl_round *r)
{
    return (meta_writer){.img = r->img,
                         .unclean_leader_election = r->ctl->unclean_leader_election,
                         .emit = round_emit,
                         .ctx = r};
}

/* The op's time, or the round's when it gives none. */
static int64_t op_now_ms(const meta_ctl_round *r, const meta_broker_op *b)
{
    return b->now_ms ? b->now_ms : r->now_ms;
}

static int16_t op_register_broker(meta_ctl_round *r, meta_op *op, const char **msg)
{
    meta_broker_op *b = &op->broker;
    meta_registration reg = {.id = b->id,
                             .incarnation = b->incarnation,
                             .nendpoints = b->nendpoints,
                             .endpoints = b->endpoints,
                             .rack = b->rack};
    meta_writer w = round_writer(r);
    /* The round's records land after the log end the image reflects. */
    int64_t offset = r->img->offset + r->nrecords;
    return meta_broker_register(&w, &r->ctl->liveness, &reg, offset, op_now_ms(r, b), &b->epoch,
                                msg);
}

static int16_t op_broker_heartbeat(meta_ctl_round *r, meta_op *op, const char **msg)
{
    meta_broker_op *b = &op->broker;
    meta_heartbeat hb = {.id = b->id,
                         .epoch = b->epoch,
                         .metadata_offset = b->metadata_offset,
                         .wants_fence = b->wants_fence,
                         .wants_shutdown = b->wants_shutdown};
    meta_heartbeat_reply reply;
    meta_writer w = round_writer(r);
    const meta_broker *before = meta_image_broker(r->img, b->id);
    bool was_fenced = before && before->fenced;
    int16_t err = meta_broker_heartbeat(&w, &r->ctl->liveness, &hb, op_now_ms(r, b), &reply, msg);
    if (err == KERR_NONE && was_fenced && !reply.fenced) /* a returning broker soon leads again */
        r->ctl->rebalance_due_ms = r->now_ms + META_REBALANCE_SOON_MS;
    b->caught_up = reply.caught_up;
    b->fenced = reply.fenced;
    b->should_shut_down = reply.should_shut_down;
    return err;
}

/* Every leader.imbalance.check.interval (and soon after an unfence):
 * leaderless partitions that allow unclean election get a leader, and with
 * auto.leader.rebalance.enable preferred replicas lead again (election.c). */
static void check_leaders(meta_ctl_round *r)
{
    int64_t now = r->now_ms;
    if (r->ctl->rebalance_due_ms == 0)
        r->ctl->rebalance_due_ms = now + r->ctl->imbalance_check_ms;
    if (now < r->ctl->rebalance_due_ms)
        return;
    r->ctl->rebalance_due_ms = now + r->ctl->imbalance_check_ms;
    meta_writer w = round_writer(r);
    int32_t unclean = meta_elect_offline_unclean(&w), preferred = 0;
    if (meta_setting_bool(r->img, NULL, "auto.leader.rebalance.enable",
                          r->ctl->auto_leader_rebalance))
        preferred = meta_elect_preferred_all(&w);
    r->ctl->elected_preferred += preferred;
    r->ctl->elected_unclean += unclean;
}

static int16_t op_fence_expired(meta_ctl_round *r, meta_op *op)
{
    int64_t timeout_ms = op->broker.session_timeout_ms > 0 ? op->broker.session_timeout_ms
                                                           : META_BROKER_SESSION_TIMEOUT_MS_DEFAULT;
    meta_writer w = round_writer(r);
    int64_t now_ms = op_now_ms(r, &op->broker);
    /* This node runs the controller, so its broker is alive: a controller
     * slowed down (a long round, a loaded machine) never fences itself. */
    meta_broker_alive(&r->ctl->liveness, r->img, r->ctl->node_id, now_ms);
    meta_brokers_tick(&w, &r->ctl->liveness, now_ms, timeout_ms);
    check_leaders(r);
    return KERR_NONE;
}

static int16_t op_reassign(meta_ctl_round *r, meta_op *op)
{
    meta_writer w = round_writer(r);
    for (int32_t i = 0; i < op->reassign.n; i++) {
        meta_reassign_item *it = &op->reassign.items[i];
        char msg[META_MSG_MAX];
        it->err =
            meta_reassign(&w, it->topic, it->partition, it->nreplicas >= 0 ? it->replicas : NULL,
                          it->nreplicas, msg, sizeof msg);
        free(it->msg);
        it->msg = it->err != KERR_NONE ? xstrdup(msg) : NULL;
    }
    return KERR_NONE;
}

static int16_t op_elect_all(meta_ctl_round *r, meta_op *op)
{
    meta_writer w = round_writer(r);
    for (int32_t t = 0; t < r->img->ntopics; t++) {
        char *name = xstrdup(r->img->topics[t]->name); /* a record may replace the topic */
        for (int32_t i = 0; i < r->img->topics[t]->npartitions; i++)
            if (meta_elect_leader(&w, op->elect.type, name, i) == KERR_NONE)
                meta_op_add_elect(op, name, strlen(name), i);
        free(name);
    }
    return KERR_NONE;
}

static int16_t op_elect_leaders(meta_ctl_round *r, meta_op *op)
{
    if (op->elect.type != META_ELECT_PREFERRED && op->elect.type != META_ELECT_UNCLEAN)
        return KERR_INVALID_REQUEST;
    if (op->elect.all)
        return op_elect_all(r, op);
    meta_writer w = round_writer(r);
    for (int32_t i = 0; i < op->elect.n; i++)
        op->elect.items[i].err = meta_elect_leader(&w, op->elect.type, op->elect.items[i].topic,
                                                   op->elect.items[i].partition);
    return KERR_NONE;
}

static int16_t op_alter_partition(meta_ctl_round *r, meta_op *op, const char **msg)
{
    meta_writer w = round_writer(r);
    int16_t err =
        meta_alter_isr(&w, op->topic, &op->topic_id, &op->alter, op->errbuf, sizeof op->errbuf);
    if (err != KERR_NONE)
        *msg = op->errbuf;
    return err;
}

static int16_t run_op(meta_ctl_round *r, meta_op *op, const char **msg)
{
    meta_writer w = round_writer(r);
    switch (op->kind) {
    case META_OP_CREATE_ACL:
        return meta_acl_create(&w, &r->ctl->rand, &op->acl, msg);
    case META_OP_DELETE_ACLS:
        return meta_acl_delete(&w, &op->acl, msg);
    case META_OP_ALTER_SCRAM:
        return meta_scram_alter(&w, &op->scram, msg);
    case META_OP_ALTER_QUOTA:
        return meta_quota_alter(&w, &op->quota, msg);
    case META_OP_CREATE_TOPIC:
        return op_create_topic(r, op, msg);
    case META_OP_DELETE_TOPIC:
        return op_delete_topic(r, op, msg);
    case META_OP_CREATE_PARTITIONS:
        return op_create_partitions(r, op, msg);
    case META_OP_ALTER_CONFIGS:
        return op_alter_configs(r, op, msg);
    case META_OP_ALLOC_PRODUCER_IDS:
        return op_alloc_producer_ids(r, op, msg);
    case META_OP_REGISTER_BROKER:
        return op_register_broker(r, op, msg);
    case META_OP_BROKER_HEARTBEAT:
        return op_broker_heartbeat(r, op, msg);
    case META_OP_FENCE_EXPIRED:
        return op_fence_expired(r, op);
    case META_OP_ALTER_PARTITION:
        return op_alter_partition(r, op, msg);
    case META_OP_ELECT_LEADERS:
        return op_elect_leaders(r, op);
    case META_OP_REASSIGN:
        return op_reassign(r, op);
    }
    return KERR_UNKNOWN_SERVER_ERROR;
}

void meta_ctl_begin(meta_ctl_round *r, meta_ctl *c, const meta_image *base, int64_t applied_next,
                    int64_t now_ms)
{
    CK_ASSERT(applied_next >= base->offset);
    *r = (meta_ctl_round){
        .ctl = c, .img = meta_image_copy(base), .applied_next = applied_next, .now_ms = now_ms};
    meta_round_init(&r->blob);
}

int16_t meta_ctl_op(meta_ctl_round *r, meta_op *op, const char **msg)
{
    *msg = NULL;
    if (!meta_ctl_caught_up(r->ctl, r->applied_next))
        return *msg = "this node does not lead the metadata quorum, or has not applied its log yet",
               KERR_NOT_CONTROLLER;
    return run_op(r, op, msg);
}

bool meta_ctl_entry(const meta_ctl_round *r, buf_t *out)
{
    if (r->nrecords == 0)
        return false;
    meta_round_encode(&r->blob, out);
    return true;
}

void meta_ctl_end(meta_ctl_round *r)
{
    meta_image_release(r->img);
    meta_round_free(&r->blob);
    r->img = NULL;
}

int16_t meta_ctl_decide(meta_ctl *c, const meta_image *img, int64_t applied_next, meta_op *op,
                        int64_t now_ms, buf_t *out, const char **msg)
{
    meta_ctl_round r;
    meta_ctl_begin(&r, c, img, applied_next, now_ms);
    int16_t err = meta_ctl_op(&r, op, msg);
    meta_ctl_entry(&r, out);
    meta_ctl_end(&r);
    return err;
}
