/*
 * placement.c - which brokers hold the replicas of new partitions, and which
 * of them leads.
 *
 * What it decides. For partitions [first, first + count) of a topic with
 * replication factor rf: rf distinct brokers per partition, the first its
 * leader. The controller writes them as the PartitionRecord's Replicas, with
 * ISR = the live replicas and leader = the first live one (all of them, and
 * the first replica, when striped).
 *
 * The rules. Striping, as Kafka's placers do it in spirit (StripedReplicaPlacer,
 * and the assignment of the older AdminUtils it descends from), without racks:
 *   - the candidates are the unfenced brokers, sorted by id (n of them);
 *   - a start index s and a shift k are drawn from the seed;
 *   - partition p is led by broker (s + p) mod n, so consecutive partitions
 *     take turns to lead and leaders differ by at most one per broker;
 *   - its replica j >= 1 is broker (s + p + 1 + (k + p / n + j - 1) mod (n - 1))
 *     mod n: the followers are spread too, and the shift moves by one
 *     every n partitions so that a broker's followers are not always the
 *     same brokers.
 * The seed is the only randomness: the same image and seed give the same
 * placement (the controller draws the seed, tests fix it).
 *   - rf < 1, or rf > n: INVALID_REPLICATION_FACTOR (38), naming rf and n.
 *     (A topic created without a replication factor gets
 *     min(META_DEFAULT_REPLICATION_FACTOR, n) from the controller, so the
 *     default never exceeds the live brokers: 1 on a single node, 3 on
 *     clusters of three or more.)
 *   - An explicit assignment (CreateTopics / CreatePartitions Assignments)
 *     is kept as given once valid: every partition lists rf ids, none twice,
 *     each a registered broker, at least one unfenced; otherwise
 *     INVALID_REPLICA_ASSIGNMENT (39) naming the partition and the id.
 *   - No broker registered at all (a single node that has not registered):
 *     this node is the one broker, live, so a single node keeps placing every
 *     partition on itself.
 *
 * Invariants (checked on every placement):
 *   1. each partition's replicas are rf distinct candidate brokers;
 *   2. striped, the leader of p is candidate (s + p) mod n.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The unfenced broker ids in order (this node alone when none registered). */
static int32_t *candidates(const meta_image *img, int32_t node_id, int32_t *n)
{
    int32_t *v = xmalloc((size_t)(img->nbrokers + 1) * sizeof *v);
    *n = 0;
    if (img->nbrokers == 0) {
        v[(*n)++] = node_id;
        return v;
    }
    int32_t pos = 0;
    for (const meta_broker *b; (b = meta_image_next_live(img, &pos));)
        v[(*n)++] = b->id;
    return v;
}

/* Known to placement: registered, or this node when none is. */
static bool known(const meta_image *img, int32_t node_id, int32_t id, bool *alive)
{
    if (img->nbrokers == 0)
        return *alive = id == node_id, id == node_id;
    const meta_broker *b = meta_image_broker(img, id);
    *alive = b && !b->fenced;
    return b != NULL;
}

int32_t meta_image_live_brokers(const meta_image *img)
{
    if (img->nbrokers == 0)
        return 1;
    int32_t n = 0, pos = 0;
    while (meta_image_next_live(img, &pos))
        n++;
    return n;
}

bool meta_replica_live(const meta_image *img, int32_t node_id, int32_t id)
{
    bool alive;
    return known(img, node_id, id, &alive) && alive;
}

static int16_t check_assignment(const meta_image *img, int32_t node_id, int32_t partition,
                                const meta_assignment *a, int16_t rf, char *msg, size_t msg_size)
{
    if (a->nbrokers != rf) {
        snprintf(msg, msg_size, "partition %d is assigned %d replicas, but the others %d",
                 partition, a->nbrokers, rf);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    int32_t nlive = 0;
    for (int32_t j = 0; j < a->nbrokers; j++) {
        int32_t id = a->brokers[j];
        bool alive;
        if (!known(img, node_id, id, &alive)) {
            snprintf(msg, msg_size,
                     "partition %d is assigned to broker %d, which is not registered", partition,
                     id);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        if (meta_ids_has(a->brokers, j, id)) {
            snprintf(msg, msg_size, "partition %d is assigned to broker %d twice", partition, id);
            return KERR_INVALID_REPLICA_ASSIGNMENT;
        }
        nlive += alive;
    }
    if (nlive == 0) {
        snprintf(msg, msg_size, "every broker assigned partition %d is fenced", partition);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    return KERR_NONE;
}

static int16_t place_assigned(const meta_image *img, int32_t node_id, int32_t first, int32_t count,
                              int16_t rf, const meta_assignment *assign, int32_t *out, char *msg,
                              size_t msg_size)
{
    if (rf < 1) {
        snprintf(msg, msg_size, "partition %d is assigned no replicas", first);
        return KERR_INVALID_REPLICA_ASSIGNMENT;
    }
    for (int32_t i = 0; i < count; i++) {
        int16_t err = check_assignment(img, node_id, first + i, &assign[i], rf, msg, msg_size);
        if (err != KERR_NONE)
            return err;
        if (out)
            memcpy(&out[(size_t)i * (size_t)rf], assign[i].brokers, (size_t)rf * sizeof *out);
    }
    return KERR_NONE;
}

/* Striping over the candidates (the essay's rule); invariants 1 and 2. */
static void stripe(const int32_t *c, int32_t n, int32_t first, int32_t count, int16_t rf,
                   uint64_t seed, int32_t *out)
{
    uint64_t state = seed;
    int32_t start = (int32_t)(splitmix64(&state) % (uint64_t)n);
    int32_t shift = (int32_t)(splitmix64(&state) % (uint64_t)n);
    for (int32_t i = 0; i < count; i++) {
        int32_t p = first + i;
        int32_t lead = (int32_t)(((int64_t)start + p) % n);
        int32_t *r = &out[(size_t)i * (size_t)rf];
        r[0] = c[lead];
        for (int32_t j = 1; j < rf; j++) {
            int32_t off = 1 + (int32_t)(((int64_t)shift + p / n + j - 1) % (n - 1));
            r[j] = c[(lead + off) % n];
        }
        for (int32_t j = 0; j < rf; j++)
            CK_ASSERT(!meta_ids_has(r, j, r[j]));
    }
}

int16_t meta_place_replicas(const meta_image *img, int32_t node_id, int32_t first, int32_t count,
                            int16_t rf, const meta_assignment *assign, uint64_t seed, int32_t *out,
                            char *msg, size_t msg_size)
{
    CK_ASSERT(first >= 0 && count >= 0);
    if (assign)
        return place_assigned(img, node_id, first, count, rf, assign, out, msg, msg_size);
    int32_t n;
    int32_t *c = candidates(img, node_id, &n);
    int16_t err = KERR_NONE;
    if (rf < 1) {
        snprintf(msg, msg_size, "replication factor %d is below 1", rf);
        err = KERR_INVALID_REPLICATION_FACTOR;
    } else if (rf > n) {
        snprintf(msg, msg_size, "replication factor %d is larger than the %d live broker%s", rf, n,
                 n == 1 ? "" : "s");
        err = KERR_INVALID_REPLICATION_FACTOR;
    } else if (out) {
        stripe(c, n, first, count, rf, seed, out);
    }
    free(c);
    return err;
}
