/*
 * reassign.c - partition reassignment (AlterPartitionReassignments and
 * ListPartitionReassignments; KIP-455 as Kafka's KRaft controller runs it).
 *
 * What it decides. Moving a partition from its replicas (the original set)
 * to a target set, through the PartitionRecord / PartitionChangeRecord
 * fields AddingReplicas and RemovingReplicas:
 *   1. Start: adding = target - original, removing = original - target; the
 *      replicas become target followed by removing (the union), the ISR and
 *      the leader stay. One PartitionChangeRecord.
 *   2. The new replicas fetch from the leader; as they catch up, the
 *      leader's AlterPartition grows the ISR (alter_partition.c).
 *   3. Completion, checked after every ISR change and right after a start:
 *      once the ISR holds every target replica, the replicas become the
 *      target, the ISR loses the removed ones, adding and removing empty,
 *      and a leader outside the target gives way to the first target
 *      replica, in target order, that is in the ISR and unfenced (its
 *      leader epoch bumped by the image's apply). One PartitionChangeRecord.
 *   Cancel (Replicas null): back to the original replicas (replicas -
 *   adding); the ISR keeps only original members, a leader that is not an
 *   original replica gives way as in 3. A new target while a move is in
 *   progress replaces it, from the original replicas.
 *
 * Refusals, as Kafka answers them: unknown topic or partition
 * UNKNOWN_TOPIC_OR_PARTITION; an empty target, a replica listed twice or
 * one that is not a registered broker INVALID_REPLICA_ASSIGNMENT; a cancel
 * with nothing in progress NO_REASSIGNMENT_IN_PROGRESS. A target equal to
 * the replicas with nothing in progress writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

/* v minus w, in v's order, into out (room for nv); the count. */
static int32_t minus(const int32_t *v, int32_t nv, const int32_t *w, int32_t nw, int32_t *out)
{
    int32_t n = 0;
    for (int32_t i = 0; i < nv; i++)
        if (!meta_ids_has(w, nw, v[i]))
            out[n++] = v[i];
    return n;
}

static int32_t intersect(const int32_t *v, int32_t nv, const int32_t *w, int32_t nw, int32_t *out)
{
    int32_t n = 0;
    for (int32_t i = 0; i < nv; i++)
        if (meta_ids_has(w, nw, v[i]))
            out[n++] = v[i];
    return n;
}

static bool same_list(const int32_t *v, int32_t nv, const int32_t *w, int32_t nw)
{
    return nv == nw && (nv == 0 || memcmp(v, w, (size_t)nv * sizeof *v) == 0);
}

/* The leader once replicas are reps and the ISR isr: the current one if it
 * stays, else the first of reps in the ISR and unfenced, else -1. */
static int32_t leader_for(const meta_image *img, int32_t leader, const int32_t *reps, int32_t nreps,
                          const int32_t *isr, int32_t nisr)
{
    if (leader >= 0 && meta_ids_has(reps, nreps, leader) && meta_ids_has(isr, nisr, leader))
        return leader;
    for (int32_t i = 0; i < nreps; i++) {
        const meta_broker *b = meta_image_broker(img, reps[i]);
        if (b && !b->fenced && meta_ids_has(isr, nisr, reps[i]))
            return reps[i];
    }
    return -1;
}

/* Write partition (t, index)'s replicas as reps with adding and removing,
 * the ISR cut to reps and the leader moved if it must. */
static void write_move(const meta_writer *w, const meta_topic *t, int32_t index, const int32_t *reps, int32_t nreps,
                       const int32_t *adding, int32_t nadding, const int32_t *removing, int32_t nremoving)
{
    const meta_partition *p = &t->partitions[index];
    int32_t *isr = xmalloc((size_t)(p->nisr + 1) * sizeof *isr);
    int32_t nisr = intersect(p->isr, p->nisr, reps, nreps, isr);
    int32_t leader = leader_for(w->img, p->leader, reps, nreps, isr, nisr);
    PartitionChangeRecord pc;
    proto_set_defaults(&PartitionChangeRecord_desc, 0, &pc);
    pc.TopicId = t->id;
    pc.PartitionId = index;
    pc.Replicas = (kint32_array_t){nreps, (int32_t *)reps};
    pc.AddingReplicas = (kint32_array_t){nadding, (int32_t *)adding};
    pc.RemovingReplicas = (kint32_array_t){nremoving, (int32_t *)removing};
    if (nisr != p->nisr)
        pc.Isr = (kint32_array_t){nisr, isr};
    if (leader != p->leader)
        pc.Leader = leader;
    meta_write(w, META_REC_PARTITION_CHANGE, &PartitionChangeRecord_desc, &pc);
    free(isr);
}

void meta_reassign_progress(const meta_writer *w, const kuuid_t *id, int32_t index)
{
    const meta_topic *t = meta_image_topic_by_id(w->img, id);
    CK_ASSERT(t && index >= 0 && index < t->npartitions);
    const meta_partition *p = &t->partitions[index];
    if (p->nadding == 0 && p->nremoving == 0)
        return;
    int32_t *target = xmalloc((size_t)(p->nreplicas + 1) * sizeof *target);
    int32_t ntarget = minus(p->replicas, p->nreplicas, p->removing, p->nremoving, target);
    bool done = true;
    for (int32_t i = 0; i < ntarget; i++)
        done = done && meta_ids_has(p->isr, p->nisr, target[i]);
    if (done)
        write_move(w, t, index, target, ntarget, NULL, 0, NULL, 0);
    free(target);
}

static int16_t check_target(const meta_image *img, const int32_t *target, int32_t n, char *msg, size_t msg_size)
{
    if (n < 1) {
        snprintf(msg, msg_size, "the target replicas are empty");
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    for (int32_t i = 0; i < n; i++) {
        if (meta_ids_has(target, i, target[i])) {
            snprintf(msg, msg_size, "broker %d is listed twice", target[i]);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (!meta_image_broker(img, target[i])) {
            snprintf(msg, msg_size, "broker %d is not registered", target[i]);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
    }
    return KERR_NONE;
}

/* Start the move from original to target (both in order). */
static void start_move(const meta_writer *w, const meta_topic *t, int32_t index, const int32_t *original,
                       int32_t norig, const int32_t *target, int32_t ntarget)
{
    int32_t *adding = xmalloc((size_t)(ntarget + 1) * sizeof *adding);
    int32_t *removing = xmalloc((size_t)(norig + 1) * sizeof *removing);
    int32_t *reps = xmalloc((size_t)(ntarget + norig + 1) * sizeof *reps);
    int32_t nadding = minus(target, ntarget, original, norig, adding);
    int32_t nremoving = minus(original, norig, target, ntarget, removing);
    memcpy(reps, target, (size_t)ntarget * sizeof *reps);
    memcpy(reps + ntarget, removing, (size_t)nremoving * sizeof *reps);
    kuuid_t id = t->id;
    write_move(w, t, index, reps, ntarget + nremoving, adding, nadding, removing, nremoving);
    meta_reassign_progress(w, &id, index); /* a move that adds no one completes at once */
    free(adding);
    free(removing);
    free(reps);
}

int16_t meta_reassign(const meta_writer *w, const char *topic, int32_t index, const int32_t *target,
                      int32_t ntarget, char *msg, size_t msg_size)
{
    const meta_topic *t = meta_image_topic(w->img, topic, strlen(topic));
    if (!t || index < 0 || index >= t->npartitions) {
        snprintf(msg, msg_size, "unknown topic or partition");
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    const meta_partition *p = &t->partitions[index];
    bool moving = p->nadding > 0 || p->nremoving > 0;
    if (!target && !moving) {
        snprintf(msg, msg_size, "no reassignment of partition %d is in progress", index);
        return KERR_NO_REASSIGNMENT_IN_PROGRESS;
    }
    int16_t err = target ? check_target(w->img, target, ntarget, msg, msg_size) : KERR_NONE;
    if (err != KERR_NONE)
        return err;
    int32_t *original = xmalloc((size_t)(p->nreplicas + 1) * sizeof *original);
    int32_t norig = minus(p->replicas, p->nreplicas, p->adding, p->nadding, original);
    if (!target) /* cancel: back to the original replicas */
        write_move(w, t, index, original, norig, NULL, 0, NULL, 0);
    else if (moving || !same_list(target, ntarget, p->replicas, p->nreplicas))
        start_move(w, t, index, original, norig, target, ntarget);
    free(original);
    return KERR_NONE;
}
