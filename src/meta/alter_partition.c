/*
 * alter_partition.c - the controller's decision on a partition leader's ISR
 * change (AlterPartition, API 56; KIP-497, KIP-903), as Kafka's
 * ReplicationControlManager makes it.
 *
 * What it decides. Whether the leader of a partition may set its ISR to the
 * set it asks for, and if so the one PartitionChangeRecord that does it.
 *
 * The rules, checked in this order (the first that fails answers):
 *   1. the sender is registered at the broker epoch it gives, else
 *      STALE_BROKER_EPOCH (77);
 *   2. the topic exists (UNKNOWN_TOPIC_ID by id, UNKNOWN_TOPIC_OR_PARTITION
 *      by name) and has the partition (UNKNOWN_TOPIC_OR_PARTITION);
 *   3. a leader epoch or partition epoch above the partition's means this
 *      controller has not applied what the sender saw: NOT_CONTROLLER, which
 *      the sender retries (at the controller that has);
 *   4. the sender leads the partition, else NOT_LEADER_OR_FOLLOWER;
 *   5. at the partition's leader epoch, else FENCED_LEADER_EPOCH;
 *   6. having seen its partition epoch, else INVALID_UPDATE_VERSION;
 *   7. every new ISR member is a replica of the partition, listed once, and
 *      the leader is among them, else INVALID_REQUEST;
 *   8. every member is a registered, unfenced broker not shutting down,
 *      at the broker epoch given for it (v3's NewIsrWithEpochs, KIP-903),
 *      else INELIGIBLE_REPLICA (v1+; OPERATION_NOT_ATTEMPTED for v0).
 * A valid request equal to the current ISR (as a set) is answered with
 * success and writes nothing, so a retried request is harmless. Otherwise
 * one PartitionChangeRecord with the new ISR (in the order given) and no
 * leader change: the image's apply bumps the partition epoch and keeps the
 * leader epoch (image.c). The answer is the partition as it then stands.
 * A partition being reassigned whose new ISR holds every target replica
 * completes its move in the same round (reassign.c): the answer then shows
 * the moved partition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

static bool same_set(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    if (na != nb)
        return false;
    for (int32_t i = 0; i < na; i++)
        if (!meta_ids_has(b, nb, a[i]))
            return false;
    return true;
}

/* Rule 7: members are replicas, once each, the leader among them. */
static int16_t check_members(const meta_partition *p, const meta_alter_op *a, char *msg, size_t msg_size)
{
    for (int32_t i = 0; i < a->nisr; i++) {
        if (!meta_ids_has(p->replicas, p->nreplicas, a->isr[i])) {
            snprintf(msg, msg_size, "broker %d is not a replica of the partition", a->isr[i]);
            return KERR_INVALID_REQUEST;
        }
        if (meta_ids_has(a->isr, i, a->isr[i])) {
            snprintf(msg, msg_size, "broker %d is listed twice in the new ISR", a->isr[i]);
            return KERR_INVALID_REQUEST;
        }
    }
    if (!meta_ids_has(a->isr, a->nisr, p->leader)) {
        snprintf(msg, msg_size, "the leader %d must stay in the ISR", p->leader);
        return KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

/* Rule 8: every member may be in the ISR. */
static int16_t check_eligible(const meta_image *img, const meta_alter_op *a, char *msg, size_t msg_size)
{
    for (int32_t i = 0; i < a->nisr; i++) {
        const meta_broker *b = meta_image_broker(img, a->isr[i]);
        int64_t epoch = a->isr_epochs ? a->isr_epochs[i] : -1;
        const char *why = !b ? "is not registered"
                          : b->fenced ? "is fenced"
                          : b->in_controlled_shutdown ? "is shutting down"
                          : epoch >= 0 && epoch != b->epoch ? "has another broker epoch"
                                                            : NULL;
        if (why) {
            snprintf(msg, msg_size, "broker %d %s", a->isr[i], why);
            return a->ineligible_v1 ? KERR_INELIGIBLE_REPLICA : KERR_OPERATION_NOT_ATTEMPTED;
        }
    }
    return KERR_NONE;
}

/* Rules 3 to 8 against partition p. */
static int16_t check_change(const meta_image *img, const meta_partition *p, const meta_alter_op *a, char *msg,
                            size_t msg_size)
{
    if (a->leader_epoch > p->leader_epoch || a->partition_epoch > p->partition_epoch) {
        snprintf(msg, msg_size, "this controller is behind: epochs %d/%d, the request's %d/%d", p->leader_epoch,
                 p->partition_epoch, a->leader_epoch, a->partition_epoch);
        return KERR_NOT_CONTROLLER;
    }
    if (a->broker_id != p->leader) {
        snprintf(msg, msg_size, "broker %d does not lead the partition (%d does)", a->broker_id, p->leader);
        return KERR_NOT_LEADER_OR_FOLLOWER;
    }
    if (a->leader_epoch != p->leader_epoch) {
        snprintf(msg, msg_size, "leader epoch %d is not the current %d", a->leader_epoch, p->leader_epoch);
        return KERR_FENCED_LEADER_EPOCH;
    }
    if (a->partition_epoch != p->partition_epoch) {
        snprintf(msg, msg_size, "partition epoch %d is not the current %d", a->partition_epoch,
                 p->partition_epoch);
        return KERR_INVALID_UPDATE_VERSION;
    }
    int16_t err = check_members(p, a, msg, msg_size);
    return err != KERR_NONE ? err : check_eligible(img, a, msg, msg_size);
}

static void answer(const meta_partition *p, meta_alter_op *a)
{
    a->out_leader = p->leader;
    a->out_leader_epoch = p->leader_epoch;
    a->out_partition_epoch = p->partition_epoch;
    free(a->out_isr);
    a->out_isr = xmalloc((size_t)(p->nisr ? p->nisr : 1) * sizeof *a->out_isr);
    memcpy(a->out_isr, p->isr, (size_t)p->nisr * sizeof *a->out_isr);
    a->out_nisr = p->nisr;
}

static const meta_topic *find_topic(const meta_image *img, const char *name, const kuuid_t *id)
{
    return name ? meta_image_topic(img, name, strlen(name)) : meta_image_topic_by_id(img, id);
}

int16_t meta_alter_isr(const meta_writer *w, const char *name, const kuuid_t *id, meta_alter_op *a, char *msg,
                       size_t msg_size)
{
    const meta_broker *sender = meta_image_broker(w->img, a->broker_id);
    if (!sender || sender->epoch != a->broker_epoch) {
        snprintf(msg, msg_size, "broker %d is not registered at epoch %lld", a->broker_id,
                 (long long)a->broker_epoch);
        return KERR_STALE_BROKER_EPOCH;
    }
    const meta_topic *t = find_topic(w->img, name, id);
    if (!t) {
        snprintf(msg, msg_size, "unknown topic");
        return name ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_UNKNOWN_TOPIC_ID;
    }
    if (a->index < 0 || a->index >= t->npartitions) {
        snprintf(msg, msg_size, "unknown partition %d", a->index);
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    const meta_partition *p = &t->partitions[a->index];
    int16_t err = check_change(w->img, p, a, msg, msg_size);
    if (err != KERR_NONE)
        return err;
    if (!same_set(a->isr, a->nisr, p->isr, p->nisr)) {
        kuuid_t tid = t->id;
        PartitionChangeRecord pc;
        proto_set_defaults(&PartitionChangeRecord_desc, 0, &pc);
        pc.TopicId = tid;
        pc.PartitionId = a->index;
        pc.Isr = (kint32_array_t){a->nisr, a->isr};
        meta_write(w, META_REC_PARTITION_CHANGE, &PartitionChangeRecord_desc, &pc);
        meta_reassign_progress(w, &tid, a->index);
        t = meta_image_topic_by_id(w->img, &tid); /* the record replaced the topic */
        CK_ASSERT(t && a->index < t->npartitions);
        p = &t->partitions[a->index];
    }
    answer(p, a);
    return KERR_NONE;
}
