/*
 * ctl.c - the controller in the simulator. Every node runs, beside its Raft
 * core, the controller's decisions (src/meta/decide.c) and its own metadata
 * image. Simulated clients and brokers queue requests for "the controller";
 * the node leading the quorum takes a few of them at a time, decides them
 * as one round against its image (its time: the simulated clock; its
 * randomness: the seed) and proposes the round. As in controller.c, a
 * leader has at most one round in flight and decides nothing before its
 * image holds every entry of the older epochs. Every node applies each
 * committed entry through the real metadata-log framing and generated codec
 * (meta_log_apply_entry); snapshots carry the image as snapshot.c encodes it.
 *
 * Brokers: ids 1..n (the nodes) plus a few broker-only ids. Each registers,
 * heartbeats every 150-600 ms, sometimes stops (a pause, or a restart with
 * a new incarnation), sometimes asks to be fenced or to shut down, and comes
 * back. A fence-expired check is queued every CTL_FENCE_EVERY_MS.
 *
 * Checks, after every applied entry (C2-C8 where it is applied first: every
 * other node applies the same entry, S3, to the same image, C1):
 *   C1 nodes that applied the same offset hold the same image (the hash of
 *      its canonical encoding, snapshot.c's payload), also after a restart
 *      or a snapshot install: compared after every CTL_HASH_EVERY-th offset,
 *      after each snapshot restore and on every live node at the end;
 *   C2 the image's invariants (meta_image_check, meta_brokers_check);
 *   C3 round atomicity: no topic without partitions, no partition without
 *      replicas (a TopicRecord always comes with its PartitionRecords);
 *   C4 every partition's leader is -1 or an unfenced registered broker in
 *      its ISR;
 *   C5 leader and partition epochs never decrease;
 *   C6 a new partition never has more replicas than live brokers (checked
 *      when no PartitionChangeRecord of the same round, a reassignment,
 *      changed it since);
 *   C7 a fenced broker is in an ISR only as its last member;
 *   C8 producer-id blocks never overlap: each ProducerIdsRecord of an entry
 *      moves the next id forward by exactly one block;
 *   C0 every committed entry applies (a round the codec cannot read stops).
 */
#include "sim.h"

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

#include <stdlib.h>
#include <string.h>

#define CTL_QUEUE_MAX 64
#define CTL_ROUND_OPS_MAX 6
#define CTL_TOPICS 6 /* topic names t0..t5 */
#define CTL_PARTITIONS_MAX 5
#define CTL_PID_BLOCK 10
#define CTL_SESSION_MS 1500 /* broker.session.timeout.ms */
#define CTL_FENCE_EVERY_MS 250
#define CTL_IMBALANCE_CHECK_MS 2000
#define CTL_BROKERS_MAX (SIM_NODES_MAX + 2)
#define CTL_PROBES_MAX 256
#define CTL_HASH_EVERY 4 /* offsets between image comparisons (C1): encoding costs */

typedef struct ctl_broker {
    int32_t id;
    bool up;
    bool restart_when_back;
    uint32_t incarnation;
    int64_t epoch; /* -1: registers next */
    int64_t back_at;
} ctl_broker;

typedef struct ctl_world {
    meta_op *queue[CTL_QUEUE_MAX];
    int nq;
    ctl_broker brokers[CTL_BROKERS_MAX];
    int nbrokers;
    bool unclean, rebalance; /* the controllers' settings in this run */
    uint64_t *hash;          /* image hash after each offset, 0 unknown */
    int64_t nhash;
    int64_t first_applied;      /* every offset below it was applied somewhere */
    bool steady;                /* scenarios: brokers never stop on their own */
    double crash_after_propose; /* scenarios: the leader crashes right after proposing */
    int crashes_in_flight;
    int64_t probe_off[CTL_PROBES_MAX]; /* rounds proposed after faults stopped */
    int32_t probe_epoch[CTL_PROBES_MAX];
    int nprobes;
} ctl_world;

/* Totals over every run of this process (main.c prints them). */
ctl_totals_t ctl_totals;

/* ---- nodes ------------------------------------------------------------------ */

static void sim_fill(void *ctx, void *out, size_t len)
{
    sim_t *s = ctx;
    uint8_t *p = out;
    for (size_t k = 0; k < len; k += 8) {
        uint64_t v = rng_u64(&s->rng);
        memcpy(p + k, &v, MIN(8, len - k));
    }
}

void ctl_node_reset(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    meta_image_release(nd->img);
    nd->img = meta_image_new();
    if (!nd->ctl)
        nd->ctl = xmalloc(sizeof *nd->ctl);
    meta_ctl_init(nd->ctl, i + 1, (meta_rand){sim_fill, s});
    nd->ctl->unclean_leader_election = s->ctl->unclean;
    nd->ctl->auto_leader_rebalance = s->ctl->rebalance;
    nd->ctl->imbalance_check_ms = CTL_IMBALANCE_CHECK_MS;
    nd->ctl_wait_offset = -1;
    nd->ctl_wait_epoch = -1;
}

void ctl_node_free(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    meta_image_release(nd->img);
    free(nd->ctl);
    nd->img = NULL;
    nd->ctl = NULL;
}

void ctl_init(sim_t *s)
{
    ctl_world *w = xcalloc(1, sizeof *w);
    s->ctl = w;
    w->unclean = rng_chance(&s->rng, 0.3);
    w->rebalance = rng_chance(&s->rng, 0.5);
    w->nbrokers = s->p.n_voters + s->p.n_observers + s->p.n_extra_brokers;
    CK_ASSERT(w->nbrokers <= CTL_BROKERS_MAX);
    for (int k = 0; k < w->nbrokers; k++)
        w->brokers[k] = (ctl_broker){.id = k + 1, .up = true, .epoch = -1};
}

void ctl_free(sim_t *s)
{
    ctl_world *w = s->ctl;
    for (int k = 0; k < w->nq; k++)
        meta_op_free(w->queue[k]);
    free(w->hash);
    free(w);
    s->ctl = NULL;
}

/* ---- the image hash (C1) -------------------------------------------------------- */

static bool image_encode(sim_t *s, const meta_image *img, buf_t *out)
{
    char err[256];
    if (meta_snapshot_encode(img, 0, out, err, sizeof err) == 0)
        return true;
    sim_fail(s, "C1: image at %lld cannot be encoded: %s", (long long)img->offset, err);
    return false;
}

static uint64_t image_hash(sim_t *s, const meta_image *img)
{
    buf_t b;
    buf_init(&b);
    uint64_t h = 0xcbf29ce484222325ull ^ b.len;
    if (image_encode(s, img, &b)) {
        size_t k = 0;
        for (; k + 8 <= b.len; k += 8) {
            uint64_t v;
            memcpy(&v, b.data + k, 8);
            h = mix64(h ^ v);
        }
        for (; k < b.len; k++)
            h = mix64(h ^ b.data[k]);
    }
    buf_free(&b);
    return h | 1; /* 0: unknown */
}

/* The hash of node i's image, the one every node had at that offset. */
static void check_same_image(sim_t *s, int i)
{
    ctl_world *w = s->ctl;
    const meta_image *img = s->nodes[i].img;
    int64_t o = img->offset - 1;
    if (o < 0)
        return;
    if (o >= w->nhash) {
        int64_t n = MAX(o + 1, w->nhash * 2);
        w->hash = xrealloc(w->hash, (size_t)n * sizeof *w->hash);
        memset(w->hash + w->nhash, 0, (size_t)(n - w->nhash) * sizeof *w->hash);
        w->nhash = n;
    }
    uint64_t h = image_hash(s, img);
    if (w->hash[o] == 0)
        w->hash[o] = h;
    else if (w->hash[o] != h)
        sim_fail(s, "C1: node %d's image after offset %lld differs from another node's", i + 1,
                 (long long)o);
}

/* ---- per-entry checks -------------------------------------------------------------- */

/* The record types of an entry, in order (metalog.c's round format). */
static int entry_types(const raft_entry_t *e, int16_t *types, int max)
{
    rd_t r;
    rd_init(&r, e->data, e->len);
    uint64_t count, len, frame, type;
    int n = 0;
    if (!rd_uvarint(&r, &count))
        return 0;
    for (uint64_t k = 0; k < count && rd_uvarint(&r, &len) && len <= rd_left(&r); k++) {
        rd_t rec;
        rd_init(&rec, r.p, (size_t)len);
        if (n < max && rd_uvarint(&rec, &frame) && rd_uvarint(&rec, &type))
            types[n++] = (int16_t)type;
        r.p += len;
    }
    return n;
}

static bool unfenced(const meta_image *img, int32_t id)
{
    const meta_broker *b = meta_image_broker(img, id);
    return b && !b->fenced;
}

/* Brokers unfenced before or after the entry: who a new replica may be on. */
static int32_t live_either(const meta_image *a, const meta_image *b)
{
    int32_t n = 0;
    for (int32_t k = 0; k < b->nbrokers; k++)
        n += !b->brokers[k].fenced || unfenced(a, b->brokers[k].id);
    for (int32_t k = 0; k < a->nbrokers; k++)
        n += !a->brokers[k].fenced && !meta_image_broker(b, a->brokers[k].id);
    return n;
}

static void check_partition(sim_t *s, int i, const meta_image *prev, const meta_image *img,
                            const meta_topic *t, int32_t k, bool changes)
{
    const meta_partition *p = &t->partitions[k];
    const meta_topic *old = meta_image_topic_by_id(prev, &t->id);
    const meta_partition *q = old && k < old->npartitions ? &old->partitions[k] : NULL;
    if (p->nreplicas < 1)
        sim_fail(s, "C3: node %d: %s-%d has no replicas (a round applied in part?)", i + 1, t->name,
                 k);
    if (p->leader != -1 && (!unfenced(img, p->leader) || !meta_ids_has(p->isr, p->nisr, p->leader)))
        sim_fail(s, "C4: node %d: %s-%d is led by %d, not an unfenced broker of its ISR", i + 1,
                 t->name, k, p->leader);
    if (q && (p->leader_epoch < q->leader_epoch || p->partition_epoch < q->partition_epoch))
        sim_fail(s, "C5: node %d: %s-%d epochs went back (%d/%d to %d/%d)", i + 1, t->name, k,
                 q->leader_epoch, q->partition_epoch, p->leader_epoch, p->partition_epoch);
    if (!q && !changes && p->nreplicas > live_either(prev, img))
        sim_fail(s, "C6: node %d: new partition %s-%d on %d replicas, %d live brokers", i + 1,
                 t->name, k, p->nreplicas, live_either(prev, img));
    for (int32_t m = 0; p->nisr > 1 && m < p->nisr; m++)
        if (!unfenced(img, p->isr[m]) && meta_image_broker(img, p->isr[m]))
            sim_fail(s, "C7: node %d: fenced broker %d is in the ISR of %s-%d beside others", i + 1,
                     p->isr[m], t->name, k);
}

static void check_entry(sim_t *s, int i, const meta_image *prev, const raft_entry_t *e)
{
    const meta_image *img = s->nodes[i].img;
    meta_image_check(img); /* C2: aborts, naming the seed */
    meta_brokers_check(img);
    int16_t types[512];
    int n = entry_types(e, types, 512), pids = 0;
    bool changes = false;
    for (int k = 0; k < n; k++) {
        pids += types[k] == META_REC_PRODUCER_IDS;
        changes |= types[k] == META_REC_PARTITION_CHANGE;
    }
    for (int32_t t = 0; t < img->ntopics && !s->failed; t++) {
        const meta_topic *tp = img->topics[t];
        if (tp->npartitions < 1)
            sim_fail(s, "C3: node %d: topic %s has no partitions", i + 1, tp->name);
        for (int32_t k = 0; k < tp->npartitions && !s->failed; k++)
            check_partition(s, i, prev, img, tp, k, changes);
    }
    if (img->next_producer_id - prev->next_producer_id != (int64_t)pids * CTL_PID_BLOCK)
        sim_fail(s,
                 "C8: node %d: offset %lld holds %d producer-id blocks but moved the next id "
                 "from %lld to %lld",
                 i + 1, (long long)e->offset, pids, (long long)prev->next_producer_id,
                 (long long)img->next_producer_id);
}

void ctl_apply(sim_t *s, int i, const raft_entry_t *e)
{
    node_t *nd = &s->nodes[i];
    ctl_world *w = s->ctl;
    if (e->kind == RAFT_ENTRY_DATA) {
        /* C2-C8 where the entry is applied first: a later node applies the
         * same entry (S3) to the same image (C1) */
        bool first = e->offset >= w->first_applied;
        meta_image *prev = first ? meta_image_copy(nd->img) : NULL;
        char err[512];
        if (meta_log_apply_entry(nd->img, e->offset, e->epoch, e->data, e->len, err, sizeof err) !=
            0)
            sim_fail(s, "C0: node %d cannot apply offset %lld: %s", i + 1, (long long)e->offset,
                     err);
        nd->img->offset = e->offset + 1;
        if (first && !s->failed)
            check_entry(s, i, prev, e);
        meta_image_release(prev);
        ctl_totals.rounds += first;
    }
    w->first_applied = MAX(w->first_applied, e->offset + 1);
    nd->img->offset = e->offset + 1;
    if (e->offset % CTL_HASH_EVERY == 0)
        check_same_image(s, i);
    for (int k = 0; k < w->nprobes && s->committed_at < 0; k++)
        if (w->probe_off[k] == e->offset && w->probe_epoch[k] == e->epoch)
            s->committed_at = s->now;
}

bool ctl_snapshot(sim_t *s, int i, uint8_t **out, size_t *len)
{
    buf_t b;
    buf_init(&b);
    if (!image_encode(s, s->nodes[i].img, &b)) {
        buf_free(&b);
        return false;
    }
    *out = b.data;
    *len = b.len;
    return true;
}

void ctl_restore(sim_t *s, int i, int64_t end, const uint8_t *p, size_t len)
{
    node_t *nd = &s->nodes[i];
    meta_image *img = NULL;
    int64_t created;
    char err[512];
    if (meta_snapshot_decode(p, len, end, &img, &created, err, sizeof err) != 0) {
        sim_fail(s, "C0: node %d cannot read its snapshot at %lld: %s", i + 1, (long long)end, err);
        return;
    }
    meta_image_release(nd->img);
    nd->img = img;
    check_same_image(s, i);
}

/* ---- the leader decides --------------------------------------------------------------- */

static meta_op *dequeue(ctl_world *w)
{
    meta_op *op = w->queue[0];
    memmove(w->queue, w->queue + 1, (size_t)(--w->nq) * sizeof *w->queue);
    return op;
}

static ctl_broker *broker_of(ctl_world *w, int32_t id)
{
    return id >= 1 && id <= w->nbrokers ? &w->brokers[id - 1] : NULL;
}

/* A broker hears its answer (at once: it may not commit; then its next
 * heartbeat finds out). */
static void answer(sim_t *s, const meta_op *op, int16_t err)
{
    ctl_broker *b = broker_of(s->ctl, op->broker.id);
    ctl_totals.ops++;
    ctl_totals.op_errors += err != KERR_NONE;
    if (!b)
        return;
    if (op->kind == META_OP_REGISTER_BROKER && err == KERR_NONE &&
        op->broker.incarnation.b[0] == (uint8_t)b->incarnation && b->epoch < 0)
        b->epoch = op->broker.epoch;
    if (op->kind == META_OP_BROKER_HEARTBEAT && op->broker.epoch == b->epoch &&
        (err == KERR_STALE_BROKER_EPOCH || err == KERR_BROKER_ID_NOT_REGISTERED))
        b->epoch = -1;
    if (op->kind == META_OP_BROKER_HEARTBEAT && err == KERR_NONE && op->broker.should_shut_down) {
        b->up = false;
        b->restart_when_back = true;
        b->back_at = s->now + rng_between(&s->rng, 500, 4000);
    }
}

static void note_probe(sim_t *s, int64_t off, int32_t epoch)
{
    ctl_world *w = s->ctl;
    if (s->stable_at < 0 || w->nprobes == CTL_PROBES_MAX)
        return;
    w->probe_off[w->nprobes] = off;
    w->probe_epoch[w->nprobes++] = epoch;
}

static bool propose_round(sim_t *s, int i, const meta_ctl_round *r)
{
    node_t *nd = &s->nodes[i];
    buf_t entry;
    buf_init(&entry);
    bool any = meta_ctl_entry(r, &entry);
    int64_t off = -1;
    raft_status_t st =
        any ? raft_propose(nd->r, entry.data, entry.len, s->now, &off) : RAFT_INVALID;
    buf_free(&entry);
    if (st == RAFT_TOO_LARGE)
        sim_fail(s, "node %d: a round of %d records is too large for an entry", i + 1, r->nrecords);
    if (st != RAFT_OK)
        return false;
    nd->ctl_wait_offset = off;
    nd->ctl_wait_epoch = raft_epoch(nd->r);
    note_probe(s, off, nd->ctl_wait_epoch);
    ctl_world *w = s->ctl;
    if (w->crash_after_propose > 0 && rng_chance(&s->rng, w->crash_after_propose)) {
        int64_t at = s->now + rng_between(&s->rng, 0, 3);
        sim_schedule(s, at, EV_CRASH, i, 0, NULL);
        sim_schedule(s, at + rng_between(&s->rng, 200, 1500), EV_RESTART, i, 0, NULL);
        w->crashes_in_flight++;
    }
    ctl_totals.proposed++;
    return true;
}

bool ctl_step(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    ctl_world *w = s->ctl;
    if (!nd->up || w->nq == 0 || raft_role(nd->r) != RAFT_LEADER)
        return false;
    int32_t epoch = raft_epoch(nd->r);
    if (nd->ctl_wait_epoch == epoch && nd->img->offset <= nd->ctl_wait_offset)
        return false; /* one round in flight */
    meta_ctl_lead(nd->ctl, epoch, raft_epoch_start(nd->r));
    if (!meta_ctl_caught_up(nd->ctl, nd->img->offset))
        return false; /* controller.c waits here */
    meta_ctl_round r;
    meta_ctl_begin(&r, nd->ctl, nd->img, nd->img->offset, s->now);
    int n = (int)rng_between(&s->rng, 1, CTL_ROUND_OPS_MAX); /* MIN evaluates twice */
    n = MIN(n, w->nq);
    for (int k = 0; k < n; k++) {
        meta_op *op = dequeue(w);
        const char *msg;
        int16_t err = meta_ctl_op(&r, op, &msg);
        answer(s, op, err);
        meta_op_free(op);
    }
    bool proposed = propose_round(s, i, &r);
    meta_ctl_end(&r);
    return proposed;
}

/* ---- requests ---------------------------------------------------------------------- */

static void enqueue(sim_t *s, meta_op *op)
{
    ctl_world *w = s->ctl;
    if (w->nq == CTL_QUEUE_MAX) { /* the client gave up */
        meta_op_free(op);
        return;
    }
    w->queue[w->nq++] = op;
    int l = sim_leader(s);
    if (l >= 0 && ctl_step(s, l))
        sim_process(s, l);
}

/* The image clients look at: the most advanced live node's. */
static const meta_image *view(const sim_t *s)
{
    const meta_image *best = NULL;
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up && (!best || s->nodes[i].img->offset > best->offset))
            best = s->nodes[i].img;
    return best;
}

static const meta_topic *random_topic(sim_t *s, const meta_image *img)
{
    return img && img->ntopics ? img->topics[rng_between(&s->rng, 0, img->ntopics - 1)] : NULL;
}

static meta_op *named_op(sim_t *s, meta_op_kind kind)
{
    char name[8];
    snprintf(name, sizeof name, "t%d", (int)rng_between(&s->rng, 0, CTL_TOPICS - 1));
    return meta_op_new(kind, name, strlen(name));
}

static meta_op *op_create(sim_t *s)
{
    meta_op *op = named_op(s, META_OP_CREATE_TOPIC);
    op->partitions = (int32_t)rng_between(&s->rng, 1, 3);
    op->replication_factor = (int16_t)rng_between(&s->rng, -1, 3);
    if (op->replication_factor == 0)
        op->replication_factor = -1;
    if (rng_chance(&s->rng, 0.3))
        meta_op_add_config(op, "unclean.leader.election.enable", 30, "true", 4);
    return op;
}

static meta_op *op_add_partitions(sim_t *s, const meta_image *img)
{
    const meta_topic *t = random_topic(s, img);
    meta_op *op = t ? meta_op_new(META_OP_CREATE_PARTITIONS, t->name, strlen(t->name))
                    : named_op(s, META_OP_CREATE_PARTITIONS);
    op->partitions = (t ? t->npartitions : 0) + (int32_t)rng_between(&s->rng, 1, 2);
    if (op->partitions > CTL_PARTITIONS_MAX)
        op->partitions = 0; /* refused: the count must grow */
    return op;
}

static meta_op *op_configs(sim_t *s)
{
    bool broker = rng_chance(&s->rng, 0.3);
    meta_op *op =
        broker ? meta_op_new(META_OP_ALTER_CONFIGS, "", 0) : named_op(s, META_OP_ALTER_CONFIGS);
    op->broker_resource = broker;
    op->replace_configs = rng_chance(&s->rng, 0.3);
    static const char *const keys[] = {"unclean.leader.election.enable",
                                       "auto.leader.rebalance.enable", "retention.ms"};
    const char *key = keys[rng_between(&s->rng, 0, broker ? 1 : 2)];
    const char *value = rng_chance(&s->rng, 0.2)   ? NULL
                        : rng_chance(&s->rng, 0.5) ? "true"
                                                   : "false";
    if (!strcmp(key, "retention.ms") && value)
        value = "60000";
    meta_op_add_config(op, key, strlen(key), value, value ? strlen(value) : 0);
    return op;
}

/* The partition's leader asks for an ISR of itself and some of the others. */
static meta_op *op_alter_isr(sim_t *s, const meta_image *img)
{
    const meta_topic *t = random_topic(s, img);
    if (!t || t->npartitions == 0)
        return NULL;
    int32_t k = (int32_t)rng_between(&s->rng, 0, t->npartitions - 1);
    const meta_partition *p = &t->partitions[k];
    const meta_broker *b = p->leader >= 0 ? meta_image_broker(img, p->leader) : NULL;
    if (!b)
        return NULL;
    meta_op *op = meta_op_new(META_OP_ALTER_PARTITION, NULL, 0);
    op->topic_id = t->id;
    meta_alter_op *a = &op->alter;
    *a = (meta_alter_op){.index = k,
                         .broker_id = p->leader,
                         .broker_epoch = b->epoch,
                         .leader_epoch = p->leader_epoch,
                         .partition_epoch = p->partition_epoch};
    if (rng_chance(&s->rng, 0.1))
        a->partition_epoch--; /* a stale view: refused */
    a->isr = xmalloc((size_t)p->nreplicas * sizeof *a->isr);
    a->isr[a->nisr++] = p->leader;
    for (int32_t m = 0; m < p->nreplicas; m++)
        if (p->replicas[m] != p->leader && rng_chance(&s->rng, 0.6))
            a->isr[a->nisr++] = p->replicas[m];
    return op;
}

static meta_op *op_elect(sim_t *s, const meta_image *img)
{
    meta_op *op = meta_op_new(META_OP_ELECT_LEADERS, NULL, 0);
    op->elect.type = rng_chance(&s->rng, 0.5) ? META_ELECT_PREFERRED : META_ELECT_UNCLEAN;
    const meta_topic *t = random_topic(s, img);
    op->elect.all = !t || rng_chance(&s->rng, 0.3);
    if (!op->elect.all)
        meta_op_add_elect(op, t->name, strlen(t->name),
                          (int32_t)rng_between(&s->rng, 0, t->npartitions));
    return op;
}

static meta_op *op_reassign(sim_t *s, const meta_image *img)
{
    const meta_topic *t = random_topic(s, img);
    if (!t)
        return NULL;
    meta_op *op = meta_op_new(META_OP_REASSIGN, NULL, 0);
    int32_t target[3], n = 0, k = (int32_t)rng_between(&s->rng, 0, t->npartitions - 1);
    int32_t want = rng_chance(&s->rng, 0.2) ? -1 : (int32_t)rng_between(&s->rng, 1, 3);
    for (int tries = 0; n < want && tries < 10; tries++) {
        int32_t id = (int32_t)rng_between(&s->rng, 1, s->ctl->nbrokers);
        if (!meta_ids_has(target, n, id))
            target[n++] = id;
    }
    meta_op_add_reassign(op, t->name, strlen(t->name), k, target, want < 0 ? -1 : n);
    return op;
}

static meta_op *random_op(sim_t *s)
{
    const meta_image *img = view(s);
    int k = (int)rng_between(&s->rng, 0, 99);
    if (k < 18)
        return img && img->nbrokers ? op_create(s) : NULL; /* brokers first, as in a cluster */
    if (k < 24)
        return named_op(s, META_OP_DELETE_TOPIC);
    if (k < 32)
        return op_add_partitions(s, img);
    if (k < 42)
        return op_configs(s);
    if (k < 56) {
        meta_op *op = meta_op_new(META_OP_ALLOC_PRODUCER_IDS, NULL, 0);
        op->producer_ids = CTL_PID_BLOCK;
        return op;
    }
    if (k < 78)
        return op_alter_isr(s, img);
    if (k < 88)
        return op_elect(s, img);
    return op_reassign(s, img);
}

int ctl_enqueue_random(sim_t *s, int count)
{
    int queued = 0;
    for (int k = 0; k < count; k++) {
        meta_op *op = random_op(s);
        if (op) {
            enqueue(s, op);
            queued++;
        }
    }
    return queued;
}

/* ---- brokers ----------------------------------------------------------------------- */

static meta_op *broker_request(sim_t *s, const ctl_broker *b)
{
    bool reg = b->epoch < 0;
    meta_op *op = meta_op_new(reg ? META_OP_REGISTER_BROKER : META_OP_BROKER_HEARTBEAT, NULL, 0);
    meta_broker_op *o = &op->broker;
    o->id = b->id;
    if (reg) {
        o->incarnation.b[0] = (uint8_t)b->incarnation;
        o->incarnation.b[1] = (uint8_t)b->id;
        meta_endpoint ep = {(char *)"PLAINTEXT", (char *)"127.0.0.1", (uint16_t)(9090 + b->id), 0};
        o->nendpoints = 1;
        o->endpoints = meta_endpoints_dup(&ep, 1);
        return op;
    }
    const meta_image *img = view(s);
    o->epoch = b->epoch;
    o->metadata_offset = img && rng_chance(&s->rng, 0.9) ? img->offset : 0;
    o->wants_fence = !s->ctl->steady && rng_chance(&s->rng, 0.01);
    o->wants_shutdown = !s->ctl->steady && rng_chance(&s->rng, 0.01);
    return op;
}

static void broker_tick(sim_t *s, void *arg)
{
    ctl_broker *b = &s->ctl->brokers[(uintptr_t)arg];
    if (!b->up && s->now >= b->back_at) {
        b->up = true;
        if (b->restart_when_back)
            b->incarnation++, b->epoch = -1;
    } else if (b->up && !s->ctl->steady && rng_chance(&s->rng, 0.03)) { /* stops heartbeating */
        b->up = false;
        b->restart_when_back = rng_chance(&s->rng, 0.5);
        b->back_at = s->now + rng_between(&s->rng, 500, 5000);
    } else if (b->up) {
        enqueue(s, broker_request(s, b));
    }
    sim_call_at(s, s->now + rng_between(&s->rng, 150, 600), broker_tick, arg);
}

static void fence_tick(sim_t *s, void *arg)
{
    meta_op *op = meta_op_new(META_OP_FENCE_EXPIRED, NULL, 0);
    op->broker.session_timeout_ms = CTL_SESSION_MS;
    enqueue(s, op);
    sim_call_at(s, s->now + CTL_FENCE_EVERY_MS, fence_tick, arg);
}

void ctl_start_workload(sim_t *s)
{
    for (int k = 0; k < s->ctl->nbrokers; k++)
        sim_call_at(s, s->now + rng_between(&s->rng, 0, 300), broker_tick, (void *)(uintptr_t)k);
    sim_call_at(s, s->now + CTL_FENCE_EVERY_MS, fence_tick, NULL);
}

/* ---- the end of a run ------------------------------------------------------------------ */

void ctl_check_end(sim_t *s)
{
    for (int i = 0; i < s->n && !s->failed; i++)
        if (s->nodes[i].up)
            check_same_image(s, i);
    const meta_image *img = view(s);
    if (!img)
        return;
    ctl_totals.topics += img->ntopics;
    for (int32_t k = 0; k < img->nbrokers; k++)
        ctl_totals.brokers_fenced += img->brokers[k].fenced;
    ctl_totals.brokers += img->nbrokers;
    ctl_totals.runs++;
}

/* ---- pinned scenarios (scenarios.c runs them) ------------------------------------------ */

static void expect(sim_t *s, bool cond, const char *what)
{
    if (!cond && !s->failed)
        sim_fail(s, "%s", what);
}

/* Whether pred holds on every live node's image. */
static bool on_all(sim_t *s, bool (*pred)(const meta_image *img, int32_t arg), int32_t arg)
{
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up && !pred(s->nodes[i].img, arg))
            return false;
    return true;
}

/* Runs until pred holds on every live node; the time it took, -1 never. */
static int64_t run_until_all(sim_t *s, bool (*pred)(const meta_image *img, int32_t arg),
                             int32_t arg, int64_t within_ms)
{
    int64_t start = s->now, until = s->now + within_ms;
    while (!s->failed && s->now < until && !on_all(s, pred, arg))
        if (!sim_step(s))
            break;
    return on_all(s, pred, arg) ? s->now - start : -1;
}

static bool all_unfenced(const meta_image *img, int32_t n)
{
    int32_t live = 0;
    for (int32_t k = 0; k < img->nbrokers; k++)
        live += !img->brokers[k].fenced;
    return live == n;
}

static bool fenced(const meta_image *img, int32_t id)
{
    const meta_broker *b = meta_image_broker(img, id);
    return b && b->fenced;
}

static bool unfenced_id(const meta_image *img, int32_t id)
{
    return unfenced(img, id);
}

static bool has_topic(const meta_image *img, int32_t partitions)
{
    const meta_topic *t = meta_image_topic(img, "t0", 2);
    return t && t->npartitions == partitions;
}

/* Every partition of t0 has a leader, and id is not it. */
static bool led_without(const meta_image *img, int32_t id)
{
    const meta_topic *t = meta_image_topic(img, "t0", 2);
    for (int32_t k = 0; t && k < t->npartitions; k++)
        if (t->partitions[k].leader < 0 || t->partitions[k].leader == id)
            return false;
    return t != NULL;
}

/* A broker other than the controller's own node that leads a partition of t0. */
static int32_t victim(sim_t *s, int leader)
{
    const meta_topic *t = meta_image_topic(s->nodes[leader].img, "t0", 2);
    for (int32_t k = 0; t && k < t->npartitions; k++)
        if (t->partitions[k].leader != leader + 1 && t->partitions[k].leader > 0)
            return t->partitions[k].leader;
    return -1;
}

/* fence_and_return: brokers register and are unfenced; a topic of six
 * partitions on three replicas each; a broker leading some of them stops
 * heartbeating: every node's image shows it fenced within the session
 * timeout plus one fence check plus commit time, its partitions led by
 * others; it comes back (same incarnation): unfenced within a heartbeat
 * plus commit time. */
void ctl_scenario_fence(sim_t *s, int64_t *fence_ms, int64_t *unfence_ms)
{
    ctl_world *w = s->ctl;
    w->steady = true;
    ctl_start_workload(s);
    expect(s, run_until_all(s, all_unfenced, w->nbrokers, 8000) >= 0,
           "brokers not all unfenced within 8 s");
    meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, "t0", 2);
    op->partitions = 6;
    op->replication_factor = 3;
    enqueue(s, op);
    expect(s, run_until_all(s, has_topic, 6, 3000) >= 0, "topic t0 not created within 3 s");
    int leader = sim_leader(s);
    int32_t id = leader >= 0 ? victim(s, leader) : -1;
    expect(s, id > 0, "no broker but the controller's own leads a partition");
    if (s->failed)
        return;
    ctl_broker *b = broker_of(w, id);
    b->up = false;
    b->back_at = INT64_MAX;
    *fence_ms = run_until_all(s, fenced, id, 10000);
    expect(s, *fence_ms >= 0 && *fence_ms <= CTL_SESSION_MS + CTL_FENCE_EVERY_MS + 600 + 500,
           "a silent broker was not fenced within session + heartbeat + check + 500 ms");
    expect(s, on_all(s, led_without, id),
           "a fenced broker still leads, or a partition has no leader");
    b->back_at = s->now;
    *unfence_ms = run_until_all(s, unfenced_id, id, 5000);
    expect(s, *unfence_ms >= 0 && *unfence_ms <= 600 + 600 + 500,
           "a returning broker was not unfenced within two heartbeats + 500 ms");
    expect(s, run_until_all(s, led_without, -1, 1000) >= 0, "a partition lost its leader");
}

/* crash_after_propose: with a random workload, the leader crashes right
 * after proposing a round (20% of rounds) for 15 s; the next leader decides
 * only once it has applied what the crashed one left in its log, so every
 * check holds (C8: no producer id twice), and afterwards all nodes converge
 * on one image. */
void ctl_scenario_crash_after_propose(sim_t *s, int *crashes)
{
    ctl_world *w = s->ctl;
    ctl_start_workload(s);
    w->crash_after_propose = 0.2;
    sim_run_until(s, s->now + 15000);
    w->crash_after_propose = 0;
    for (int i = 0; i < s->n; i++)
        sim_restart(s, i);
    sim_run_until(s, s->now + 6000);
    int l = sim_leader(s);
    expect(s, l >= 0, "no leader 6 s after the crashes stopped");
    for (int i = 0; l >= 0 && i < s->n; i++)
        if (s->nodes[i].img->offset < raft_high_watermark(s->nodes[l].r) - 20)
            expect(s, false,
                   "a node's image is behind the leader's high watermark 6 s after the crashes");
    *crashes = w->crashes_in_flight;
    expect(s, w->crashes_in_flight >= 3, "fewer than three leaders crashed with a round in flight");
    ctl_check_end(s);
}
