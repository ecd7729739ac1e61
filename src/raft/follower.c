/*
 * follower.c - the replica's side of replication, for voters and
 * observers alike: sending Fetch and FetchSnapshot, and applying their
 * answers (records, DivergingEpoch truncation, snapshot install).
 *
 * One request is in flight at a time, and the next is sent only when
 * every op handed to the host is durable, so the FetchOffset we send is
 * our durable log end: that is what lets the leader count it toward the
 * high watermark. Answers are matched by corr; anything else is dropped.
 *
 * An observer without a known leader asks the voters in turn; their
 * NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH answers name the leader.
 * A prospective voter that still knows its epoch's leader keeps fetching
 * from it: a successful answer proves the leader alive and makes it a
 * follower again (unless the leader announced its resignation).
 */
#include "raft/internal.h"

#include "base/util.h"

#include <stdlib.h>
#include <string.h>

static void abort_snapshot_fetch(raft_t *r)
{
    r->sf_active = false;
    free(r->sf_buf);
    r->sf_buf = NULL;
    r->sf_len = r->sf_size = 0;
}

void raft_follower_reset(raft_t *r)
{
    r->fetch_inflight = false;
    r->fetch_not_before = 0;
    abort_snapshot_fetch(r);
}

static bool wants_fetch(const raft_t *r)
{
    switch (r->role) {
    case RAFT_FOLLOWER: return true;
    case RAFT_PROSPECTIVE: return r->leader_id >= 0;
    case RAFT_UNATTACHED: return r->self_voter < 0; /* observer looking for the leader */
    default: return false;
    }
}

void raft_follower_maybe_fetch(raft_t *r)
{
    if (!wants_fetch(r) || r->fetch_inflight || r->now < r->fetch_not_before || !raft_io_idle(r))
        return;
    int32_t target = r->leader_id;
    bool probe = target < 0; /* any voter answers at once, naming the leader */
    if (probe)
        target = r->cfg.voters[r->observer_probe++ % r->cfg.n_voters];
    raft_msg_t m = {.from = r->cfg.node_id, .to = target, .corr = r->next_corr++,
                    .cluster_id = r->cfg.cluster_id};
    if (r->sf_active) {
        m.type = RAFT_MSG_FETCH_SNAPSHOT_REQ;
        m.u.snap_req = (raft_fetch_snapshot_req_t){.replica_id = r->cfg.node_id,
                                                   .max_bytes = r->cfg.snapshot_chunk_bytes,
                                                   .current_leader_epoch = r->epoch,
                                                   .snapshot_id = r->sf_id,
                                                   .position = (int64_t)r->sf_len};
        r->fetch_expiry = r->now + r->cfg.request_timeout_ms;
    } else {
        CK_ASSERT(r->durable_end == raft_log_end_offset(&r->log));
        m.type = RAFT_MSG_FETCH_REQ;
        int32_t wait_ms = probe ? 0 : r->cfg.fetch_max_wait_ms;
        m.u.fetch_req = (raft_fetch_req_t){.replica_id = r->cfg.node_id,
                                           .max_wait_ms = wait_ms,
                                           .current_leader_epoch = r->epoch,
                                           .fetch_offset = raft_log_end_offset(&r->log),
                                           .last_fetched_epoch = raft_log_last_epoch(&r->log),
                                           .log_start_offset = r->log.start};
        r->fetch_expiry = r->now + wait_ms + FETCH_RESPONSE_GRACE_MS;
    }
    r->fetch_inflight = true;
    r->fetch_corr = m.corr;
    r->fetch_target = target;
    raft_emit(r, &m);
}

/* A successful answer came from `from`, the leader of our epoch. */
static bool accept_leader(raft_t *r, int32_t from)
{
    switch (r->role) {
    case RAFT_FOLLOWER:
        if (from != r->leader_id)
            return false;
        if (!r->leader_resigned) {
            r->last_leader_ms = r->now;
            r->deadline = r->now + r->cfg.fetch_timeout_ms;
        }
        return true;
    case RAFT_PROSPECTIVE:
        if (from != r->leader_id)
            return false;
        if (!r->leader_resigned)
            raft_become_follower(r, r->epoch, from, true);
        return true;
    case RAFT_UNATTACHED:
        if (r->self_voter >= 0)
            return false;
        raft_become_follower(r, r->epoch, from, true);
        return true;
    default:
        return false;
    }
}

static void fetch_failed(raft_t *r, const raft_leader_epoch_t *cl)
{
    bool names_leader = cl->leader_epoch == r->epoch && cl->leader_id >= 0 &&
                        cl->leader_id != r->cfg.node_id && r->leader_id < 0;
    if (names_leader && r->role == RAFT_UNATTACHED && r->self_voter < 0)
        raft_become_follower(r, r->epoch, cl->leader_id, false);
    else
        r->fetch_not_before = r->now + r->cfg.retry_backoff_ms;
}

static void truncate_diverging(raft_t *r, raft_epoch_end_t d)
{
    int64_t point = raft_log_truncation_point(&r->log, d);
    if (point < r->hw) { /* would remove committed entries: not from a correct leader */
        r->stats.protocol_violations++;
        r->fetch_not_before = r->now + r->cfg.retry_backoff_ms;
        return;
    }
    if (point < raft_log_end_offset(&r->log))
        raft_io_truncate(r, point);
}

static void start_snapshot_fetch(raft_t *r, raft_snapshot_id_t id)
{
    /* The leader may also send us to its snapshot when our fetch offset is
     * inside its log but our last epoch is older than its snapshot: then
     * our log diverges below the snapshot end, which must lie past our
     * high watermark. */
    if (id.end_offset <= r->hw || id.epoch < 0 || id.epoch > r->epoch) {
        r->stats.protocol_violations++;
        r->fetch_not_before = r->now + r->cfg.retry_backoff_ms;
        return;
    }
    abort_snapshot_fetch(r);
    r->sf_active = true;
    r->sf_id = id;
}

static void append_records(raft_t *r, const raft_fetch_resp_t *f)
{
    int64_t start = raft_log_end_offset(&r->log), end = start;
    for (size_t i = 0; i < f->n_records; i++) {
        const raft_entry_t *e = &f->records[i];
        if (e->offset < end)
            continue;
        if (e->offset != end || e->epoch > r->epoch || e->epoch < raft_log_last_epoch(&r->log) ||
            e->len > RAFT_ENTRY_BYTES_MAX || e->kind > RAFT_ENTRY_LEADER_CHANGE) {
            r->stats.protocol_violations++;
            break;
        }
        raft_log_append(&r->log, e->epoch, e->kind, e->data, e->len);
        end++;
    }
    if (end > start)
        raft_intent(r, RAFT_OP_APPEND, start, end, (raft_snapshot_id_t){-1, -1});
    int64_t hw = MIN(f->high_watermark, end);
    if (hw > r->hw)
        raft_set_hw(r, hw);
}

void raft_recv_fetch_resp(raft_t *r, const raft_msg_t *m)
{
    const raft_fetch_resp_t *f = &m->u.fetch_resp;
    if (!r->fetch_inflight || r->sf_active || m->corr != r->fetch_corr || m->from != r->fetch_target) {
        r->stats.msgs_ignored++;
        return;
    }
    r->fetch_inflight = false;
    if (raft_observe_epoch(r, f->current_leader.leader_epoch, f->current_leader.leader_id))
        return;
    if (f->error_code != RAFT_ERR_NONE) {
        fetch_failed(r, &f->current_leader);
        return;
    }
    if (f->current_leader.leader_epoch != r->epoch || f->current_leader.leader_id != m->from) {
        r->stats.protocol_violations++;
        return;
    }
    if (!accept_leader(r, m->from))
        return;
    if (f->diverging_epoch.epoch >= 0 || f->diverging_epoch.end_offset >= 0)
        truncate_diverging(r, f->diverging_epoch);
    else if (f->snapshot_id.end_offset >= 0)
        start_snapshot_fetch(r, f->snapshot_id);
    else
        append_records(r, f);
}

static void install_snapshot(raft_t *r)
{
    raft_snapshot_id_t id = r->sf_id;
    if (id.end_offset <= r->hw) { /* nothing we do not have already */
        abort_snapshot_fetch(r);
        return;
    }
    raft_io_install(r, id);
    free(r->snap);
    r->snap = r->sf_buf;
    r->snap_len = r->sf_size;
    r->sf_buf = NULL;
    r->sf_active = false;
    r->sf_len = r->sf_size = 0;
    raft_set_hw(r, id.end_offset);
    r->applied = id.end_offset;
    r->restore_pending = true;
    r->snap_bytes = 0;
    r->snap_taken_ms = r->now;
    r->stats.snapshots_installed++;
}

static bool chunk_ok(const raft_t *r, const raft_fetch_snapshot_resp_t *s)
{
    if (s->snapshot_id.end_offset != r->sf_id.end_offset || s->snapshot_id.epoch != r->sf_id.epoch)
        return false;
    if (s->position != (int64_t)r->sf_len || s->size <= 0 ||
        (uint64_t)s->size > RAFT_SNAPSHOT_BYTES_MAX)
        return false;
    if (r->sf_size && (size_t)s->size != r->sf_size)
        return false;
    if (s->n_bytes == 0 || (uint64_t)s->position + s->n_bytes > (uint64_t)s->size)
        return false;
    return true;
}

void raft_recv_fetch_snapshot_resp(raft_t *r, const raft_msg_t *m)
{
    const raft_fetch_snapshot_resp_t *s = &m->u.snap_resp;
    if (!r->fetch_inflight || !r->sf_active || m->corr != r->fetch_corr ||
        m->from != r->fetch_target) {
        r->stats.msgs_ignored++;
        return;
    }
    r->fetch_inflight = false;
    if (raft_observe_epoch(r, s->current_leader.leader_epoch, s->current_leader.leader_id))
        return;
    if (s->error_code == RAFT_ERR_SNAPSHOT_NOT_FOUND ||
        s->error_code == RAFT_ERR_POSITION_OUT_OF_RANGE) {
        abort_snapshot_fetch(r); /* the leader moved on: fetch to learn its new snapshot */
        return;
    }
    if (s->error_code != RAFT_ERR_NONE) {
        fetch_failed(r, &s->current_leader);
        return;
    }
    if (!accept_leader(r, m->from))
        return;
    if (!chunk_ok(r, s)) {
        r->stats.protocol_violations++;
        abort_snapshot_fetch(r);
        return;
    }
    if (!r->sf_size) {
        r->sf_size = (size_t)s->size;
        r->sf_buf = xmalloc(r->sf_size);
    }
    memcpy(r->sf_buf + r->sf_len, s->bytes, s->n_bytes);
    r->sf_len += s->n_bytes;
    if (r->sf_len == r->sf_size)
        install_snapshot(r);
}
