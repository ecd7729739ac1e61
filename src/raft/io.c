/*
 * io.c - the core's side of the durability contract (raft.h).
 *
 * Changes to durable state are first recorded as intents; raft_ready turns
 * them into numbered ops. Deferring the numbering lets a truncation shrink
 * an append that the host has not seen yet, and lets several state changes
 * between two readies become one quorum-state write carrying the newest
 * state (writing a newer state earlier is always safe: epochs only grow and
 * a vote is never changed within an epoch).
 *
 * Handed-out ops wait in `pend` until raft_io_done covers their seq. From
 * them the core knows:
 *   durable_gen  the newest quorum-state generation on disk; messages built
 *                after a newer state change stay in the outbox until then;
 *   durable_end  how much of the *current* log is on disk. A truncation or
 *                snapshot install lowers it at once (what lies on disk
 *                beyond that point is no longer our log), and clamps the
 *                end carried by older, still pending ops.
 * The leader counts only durable_end toward the high watermark, and a
 * follower fetches only when nothing is pending, so the offset it sends
 * proves durability.
 */
#include "raft/internal.h"

#include "base/util.h"

#include <string.h>

void raft_intent(raft_t *r, raft_op_kind_t kind, int64_t from, int64_t to, raft_snapshot_id_t snap)
{
    if (kind == RAFT_OP_PERSIST_STATE) {
        for (size_t i = 0; i < r->n_intents; i++)
            if (r->intents[i].kind == RAFT_OP_PERSIST_STATE)
                return; /* it will carry the newest state anyway */
    }
    if (kind == RAFT_OP_APPEND && r->n_intents) {
        intent_t *last = &r->intents[r->n_intents - 1];
        if (last->kind == RAFT_OP_APPEND && last->to == from) {
            last->to = to;
            return;
        }
    }
    VEC_PUSH(r->intents, r->n_intents, r->cap_intents);
    r->intents[r->n_intents++] = (intent_t){.kind = kind, .from = from, .to = to, .snap = snap};
}

static void clamp_pending(raft_t *r, int64_t bound)
{
    for (size_t i = 0; i < r->n_pend; i++) {
        pending_io_t *p = &r->pend[r->pend_head + i];
        if (!p->is_state && p->end > bound)
            p->end = bound;
    }
    r->durable_end = MIN(r->durable_end, bound);
}

/* Drop unsent append intents at offsets >= bound. */
static void shrink_appends(raft_t *r, int64_t bound)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n_intents; i++) {
        intent_t it = r->intents[i];
        if (it.kind == RAFT_OP_APPEND) {
            it.to = MIN(it.to, bound);
            if (it.from >= it.to)
                continue;
        }
        r->intents[w++] = it;
    }
    r->n_intents = w;
}

void raft_io_truncate(raft_t *r, int64_t offset)
{
    CK_ASSERT(offset >= r->hw); /* committed entries are never removed */
    raft_log_truncate(&r->log, offset);
    shrink_appends(r, offset);
    raft_intent(r, RAFT_OP_TRUNCATE, offset, offset, (raft_snapshot_id_t){-1, -1});
    clamp_pending(r, offset);
    r->stats.truncations++;
}

void raft_io_install(raft_t *r, raft_snapshot_id_t id)
{
    /* Until the install is durable, the disk holds the old log, which
     * agrees with the snapshot below the old high watermark only. */
    clamp_pending(r, r->hw);
    shrink_appends(r, INT64_MIN);
    raft_log_reset(&r->log, id);
    raft_intent(r, RAFT_OP_SNAPSHOT_INSTALL, 0, 0, id);
}

static pending_io_t *push_pending(raft_t *r, uint64_t seq)
{
    if (r->pend_head + r->n_pend == r->cap_pend && r->pend_head > 0) {
        memmove(r->pend, r->pend + r->pend_head, r->n_pend * sizeof(*r->pend));
        r->pend_head = 0;
    }
    size_t used = r->pend_head + r->n_pend;
    VEC_PUSH(r->pend, used, r->cap_pend);
    pending_io_t *p = &r->pend[r->pend_head + r->n_pend++];
    *p = (pending_io_t){.seq = seq, .end = -1};
    return p;
}

static bool materialize_one(raft_t *r, const intent_t *it, raft_op_t *op)
{
    *op = (raft_op_t){.kind = it->kind};
    switch (it->kind) {
    case RAFT_OP_PERSIST_STATE:
        op->state = (raft_qstate_t){r->epoch, r->voted_id, r->leader_id};
        break;
    case RAFT_OP_TRUNCATE:
        op->truncate_to = it->from;
        break;
    case RAFT_OP_APPEND:
        op->entries = raft_log_slice(&r->log, it->from, it->to);
        op->n_entries = (size_t)(it->to - it->from);
        break;
    case RAFT_OP_SNAPSHOT_SAVE:
    case RAFT_OP_SNAPSHOT_INSTALL:
        if (it->snap.end_offset != r->log.start) {
            CK_ASSERT(it->kind == RAFT_OP_SNAPSHOT_SAVE);
            return false; /* superseded by a newer snapshot below */
        }
        op->snapshot_id = it->snap;
        op->snapshot = r->snap;
        op->snapshot_len = r->snap_len;
        break;
    }
    op->seq = r->next_seq++;
    pending_io_t *p = push_pending(r, op->seq);
    p->is_state = it->kind == RAFT_OP_PERSIST_STATE;
    p->gen = r->state_gen;
    if (it->kind == RAFT_OP_TRUNCATE || it->kind == RAFT_OP_APPEND)
        p->end = it->to;
    else if (it->kind == RAFT_OP_SNAPSHOT_INSTALL)
        p->end = it->snap.end_offset;
    return true;
}

void raft_io_materialize(raft_t *r)
{
    for (size_t i = 0; i < r->n_intents; i++) {
        VEC_PUSH(r->rd_ops, r->n_rd_ops, r->cap_rd_ops);
        if (materialize_one(r, &r->intents[i], &r->rd_ops[r->n_rd_ops]))
            r->n_rd_ops++;
    }
    r->n_intents = 0;
}

bool raft_io_idle(const raft_t *r)
{
    return r->n_intents == 0 && r->n_pend == 0 && r->durable_gen == r->state_gen;
}

void raft_io_done(raft_t *r, uint64_t seq, int64_t now_ms)
{
    CK_ASSERT(now_ms >= r->now);
    r->now = now_ms;
    CK_ASSERT(seq < r->next_seq); /* only ops that were handed out */
    if (seq <= r->done_seq)
        return;
    r->done_seq = seq;
    while (r->n_pend && r->pend[r->pend_head].seq <= seq) {
        pending_io_t *p = &r->pend[r->pend_head];
        if (p->is_state)
            r->durable_gen = p->gen;
        else if (p->end >= 0)
            r->durable_end = MIN(p->end, raft_log_end_offset(&r->log));
        r->pend_head++;
        r->n_pend--;
    }
    if (r->n_pend == 0)
        r->pend_head = 0;
    raft_leader_update_hw(r);
    raft_check_invariants(r);
}
