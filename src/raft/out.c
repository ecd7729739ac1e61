/*
 * out.c - assembling raft_ready: everything the host must do after an
 * input, in the order it must be done.
 *
 * Messages built while handling an input wait in the outbox, each tagged
 * with the quorum-state generation current when it was built; they leave
 * only once that generation is durable. Fetch answers and our own fetches
 * are built here instead, against the log as it is now, so their record
 * pointers stay valid for the life of the ready.
 */
#include "raft/internal.h"

#include "base/util.h"

#include <string.h>

void raft_push_msg(raft_t *r, const raft_msg_t *m)
{
    VEC_PUSH(r->outbox, r->n_outbox, r->cap_outbox);
    r->outbox[r->n_outbox++] = (outmsg_t){.msg = *m, .gate = r->state_gen};
}

void raft_emit(raft_t *r, const raft_msg_t *m)
{
    VEC_PUSH(r->rd_msgs, r->n_rd_msgs, r->cap_rd_msgs);
    r->rd_msgs[r->n_rd_msgs++] = *m;
}

static void release_outbox(raft_t *r)
{
    size_t n = 0;
    while (n < r->n_outbox && (int32_t)(r->outbox[n].gate - r->durable_gen) <= 0)
        raft_emit(r, &r->outbox[n++].msg);
    if (n == 0)
        return;
    memmove(r->outbox, r->outbox + n, (r->n_outbox - n) * sizeof(*r->outbox));
    r->n_outbox -= n;
}

/* Whether to ask the host for a snapshot of what it applied: by entry
 * count, by committed bytes, or by age, once something new is applied. A
 * snapshot is taken at the applied offset, which must be durable here. */
static bool snapshot_due(const raft_t *r)
{
    const raft_config_t *c = &r->cfg;
    if (r->snapshot_asked || r->applied <= r->log.start || r->applied > r->durable_end)
        return false;
    return (c->snapshot_min_entries > 0 && r->applied - r->log.start >= c->snapshot_min_entries) ||
           (c->snapshot_min_bytes > 0 && r->snap_bytes >= c->snapshot_min_bytes) ||
           (c->snapshot_interval_ms > 0 && r->now - r->snap_taken_ms >= c->snapshot_interval_ms);
}

static void fill_committed(raft_t *r, raft_ready_t *rd)
{
    if (r->restore_pending) {
        rd->restore_snapshot = true;
        rd->snapshot_id = raft_snapshot_id(r);
        rd->snapshot = r->snap;
        rd->snapshot_len = r->snap_len;
        r->restore_pending = false;
    }
    if (r->hw > r->applied) {
        CK_ASSERT(r->applied >= r->log.start);
        rd->committed = raft_log_slice(&r->log, r->applied, r->hw);
        rd->n_committed = (size_t)(r->hw - r->applied);
        for (size_t i = 0; i < rd->n_committed; i++)
            r->snap_bytes += rd->committed[i].len;
        r->applied = r->hw;
    }
    rd->high_watermark = r->hw;
    if (snapshot_due(r)) {
        rd->want_snapshot = true;
        r->snapshot_asked = true;
    }
}

const raft_ready_t *raft_ready(raft_t *r)
{
    raft_ready_t *rd = &r->rd;
    memset(rd, 0, sizeof(*rd));
    r->n_rd_ops = 0;
    r->n_rd_msgs = 0;
    raft_leader_answer_fetches(r);
    raft_io_materialize(r);
    release_outbox(r);
    raft_follower_maybe_fetch(r);
    fill_committed(r, rd);
    rd->ops = r->rd_ops;
    rd->n_ops = r->n_rd_ops;
    rd->msgs = r->rd_msgs;
    rd->n_msgs = r->n_rd_msgs;
    rd->role = r->role;
    rd->epoch = r->epoch;
    rd->leader_id = r->leader_id;
    rd->role_changed = r->role != r->rep_role || r->epoch != r->rep_epoch ||
                       r->leader_id != r->rep_leader;
    r->rep_role = r->role;
    r->rep_epoch = r->epoch;
    r->rep_leader = r->leader_id;
    return rd;
}
