/*
 * check.c - the simulator's safety checks. The checker keeps one global
 * committed sequence: entry i is whatever the first node to apply offset i
 * applied; every later application of offset i, on any node, must be the
 * same entry with the same hash chain before it. The properties:
 *
 *  S1 at most one leader per epoch;
 *  S2 a new leader of epoch E holds every entry committed in an epoch
 *     before E (Raft's leader completeness: committed entries are never
 *     lost, nor changed, on a node that later leads). The committing epoch
 *     of an entry is that of the first node to apply it: the leader that
 *     committed it applies it before any message about it leaves. A leader
 *     of an older epoch may still appear late (its votes were delayed); it
 *     can commit nothing, so it owes nothing;
 *  S3 every node's applied sequence is a prefix of the one sequence, also
 *     across restarts and snapshot installs (hash chain at the snapshot);
 *  S4 logs agree up to each node's high watermark (check_logs, a full
 *     scan run at crashes and at the end of a run);
 *  plus, in world.c: high watermarks and epochs never go back within an
 *  incarnation, and cores report no protocol violations.
 */
#include "sim.h"

#include "base/util.h"

#include <stdlib.h>
#include <string.h>

void check_init(checker_t *c) { memset(c, 0, sizeof(*c)); }

void check_free(checker_t *c)
{
    free(c->ents);
    free(c->leader_of);
    memset(c, 0, sizeof(*c));
}

uint64_t check_entry_hash(const raft_entry_t *e)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the bytes */
    for (uint32_t k = 0; k < e->len; k++)
        h = (h ^ e->data[k]) * 0x100000001b3ull;
    return mix64(h ^ ((uint64_t)(uint32_t)e->epoch << 8) ^ e->kind ^ ((uint64_t)e->len << 40));
}

void check_leader(sim_t *s, int i)
{
    checker_t *c = &s->chk;
    const raft_t *r = s->nodes[i].r;
    int32_t epoch = raft_epoch(r);
    if (epoch >= c->n_epochs) {
        int32_t n = MAX(epoch + 1, c->n_epochs * 2);
        c->leader_of = xrealloc(c->leader_of, (size_t)n * sizeof(*c->leader_of));
        for (int32_t k = c->n_epochs; k < n; k++)
            c->leader_of[k] = -1;
        c->n_epochs = n;
    }
    if (c->leader_of[epoch] >= 0 && c->leader_of[epoch] != i + 1) {
        sim_fail(s, "S1: two leaders in epoch %d: %d and %d", epoch, c->leader_of[epoch], i + 1);
        return;
    }
    c->leader_of[epoch] = i + 1;
    for (int64_t o = raft_log_start(r); o < c->n; o++) {
        if (c->ents[o].commit_epoch >= epoch)
            continue;
        const raft_entry_t *e = raft_entry_at(r, o);
        if (!e) {
            sim_fail(s, "S2: leader %d (epoch %d) lacks offset %lld, committed in epoch %d",
                     i + 1, epoch, (long long)o, c->ents[o].commit_epoch);
            return;
        }
        if (e->epoch != c->ents[o].epoch || check_entry_hash(e) != c->ents[o].hash) {
            sim_fail(s, "S2: leader %d (epoch %d) has a different entry at offset %lld, "
                        "committed in epoch %d",
                     i + 1, epoch, (long long)o, c->ents[o].commit_epoch);
            return;
        }
    }
}

void check_apply(sim_t *s, int i, const raft_entry_t *e)
{
    checker_t *c = &s->chk;
    uint64_t h = check_entry_hash(e), chain = s->nodes[i].sm_chain;
    int64_t o = e->offset;
    if (o < c->n) {
        const gentry_t *g = &c->ents[o];
        if (g->epoch != e->epoch || g->hash != h || g->chain != chain)
            sim_fail(s, "S3: node %d applied a different entry at offset %lld (epoch %d vs %d)",
                     i + 1, (long long)o, e->epoch, g->epoch);
        return;
    }
    if (o != c->n) {
        sim_fail(s, "S3: node %d applied offset %lld past the sequence end %lld", i + 1,
                 (long long)o, (long long)c->n);
        return;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->ents = xrealloc(c->ents, (size_t)c->cap * sizeof(*c->ents));
    }
    c->ents[c->n++] = (gentry_t){.epoch = e->epoch, .commit_epoch = raft_epoch(s->nodes[i].r),
                                 .kind = e->kind, .hash = h, .chain = chain};
}

void check_restore(sim_t *s, int i, int64_t end, uint64_t chain)
{
    const checker_t *c = &s->chk;
    if (end == 0)
        return;
    if (end > c->n || c->ents[end - 1].chain != chain)
        sim_fail(s, "S3: node %d restored a snapshot at %lld that is not a prefix of the "
                    "committed sequence (length %lld)",
                 i + 1, (long long)end, (long long)c->n);
}

void check_logs(sim_t *s)
{
    const checker_t *c = &s->chk;
    for (int i = 0; i < s->n && !s->failed; i++) {
        const node_t *nd = &s->nodes[i];
        if (!nd->up)
            continue;
        const raft_t *r = nd->r;
        int64_t hw = raft_high_watermark(r);
        if (hw > c->n) {
            sim_fail(s, "S4: node %d high watermark %lld beyond the committed sequence %lld", i + 1,
                     (long long)hw, (long long)c->n);
            return;
        }
        for (int64_t o = raft_log_start(r); o < hw; o++) {
            const raft_entry_t *e = raft_entry_at(r, o);
            if (!e || e->epoch != c->ents[o].epoch || check_entry_hash(e) != c->ents[o].hash) {
                sim_fail(s, "S4: node %d log differs at committed offset %lld", i + 1,
                         (long long)o);
                return;
            }
        }
        if (raft_stats(r)->protocol_violations)
            sim_fail(s, "node %d saw %llu protocol violations", i + 1,
                     (unsigned long long)raft_stats(r)->protocol_violations);
    }
}
