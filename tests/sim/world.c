/*
 * world.c - the simulated world: an event queue ordered by (time, seq), a
 * network, one disk per node, and the loop that feeds the cores and
 * carries out their raft_ready outputs.
 *
 * Disk model. Ops from a ready are "written" at once and wait in the
 * node's pending list; one fsync at a time covers every op written before
 * it started and completes after a random latency (sometimes slow). Only
 * then are the ops durable and raft_io_done called. A crash keeps the
 * durable state plus, with probability crash_keep_p, a random prefix of
 * the pending ops (an APPEND possibly cut between entries): what an OS may
 * have written back before the power went.
 *
 * Network model. Every message gets an independent delay (so messages
 * reorder), may be lost or duplicated, and is dropped when a partition
 * blocks its direction. Messages in flight survive the sender's crash.
 */
#include "sim.h"

#include "base/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const CLUSTER_ID = "chronik-sim";

#define CORE(s, stmt)                                                          \
    do {                                                                       \
        int64_t t0_ = (s)->measure ? clock_mono_ns() : 0;                      \
        stmt;                                                                  \
        if ((s)->measure)                                                      \
            (s)->core_ns += clock_mono_ns() - t0_;                             \
    } while (0)

void sim_default_params(sim_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->n_voters = 3;
    p->delay_min_ms = 1;
    p->delay_max_ms = 10;
    p->sync_min_ms = 1;
    p->sync_max_ms = 5;
    p->slow_sync_max_ms = 200;
    p->crash_keep_p = 0.5;
    raft_config_defaults(&p->raft);
    p->snapshots_on_request = true;
}

void sim_fail(sim_t *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    int n = snprintf(s->failure, sizeof(s->failure), "t=%lld: ", (long long)s->now);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure + n, sizeof(s->failure) - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->verbose)
        printf("%8lld FAIL %s\n", (long long)s->now, s->failure);
}

void sim_trace(sim_t *s, const char *fmt, ...)
{
    if (!s->verbose)
        return;
    printf("%8lld ", (long long)s->now);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- event queue (binary heap) ----------------------------------------- */

static bool ev_before(const event_t *a, const event_t *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(sim_t *s, event_t e)
{
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 256;
        s->heap = xrealloc(s->heap, s->cap_heap * sizeof(*s->heap));
    }
    size_t i = s->n_heap++;
    while (i > 0 && ev_before(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static event_t heap_pop(sim_t *s)
{
    event_t top = s->heap[0], last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_heap)
            break;
        if (c + 1 < s->n_heap && ev_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ev_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap)
        s->heap[i] = last;
    return top;
}

void sim_schedule(sim_t *s, int64_t t, int kind, int node, uint64_t arg, void *ptr)
{
    CK_ASSERT(t >= s->now);
    event_t e = {.t = t, .seq = s->next_seq++, .kind = kind, .node = node, .arg = arg, .ptr = ptr};
    if (node >= 0)
        e.inc = s->nodes[node].inc;
    heap_push(s, e);
}

void sim_call_at(sim_t *s, int64_t t, sim_call_fn fn, void *arg)
{
    event_t e = {.t = MAX(t, s->now), .seq = s->next_seq++, .kind = EV_CALL, .node = -1,
                 .ptr = arg, .fn = fn};
    heap_push(s, e);
}

/* ---- messages ------------------------------------------------------------ */

static raft_msg_t *msg_clone(const raft_msg_t *m)
{
    size_t extra = 0;
    if (m->type == RAFT_MSG_FETCH_RESP) {
        extra += m->u.fetch_resp.n_records * sizeof(raft_entry_t);
        for (size_t i = 0; i < m->u.fetch_resp.n_records; i++)
            extra += m->u.fetch_resp.records[i].len;
    } else if (m->type == RAFT_MSG_FETCH_SNAPSHOT_RESP) {
        extra += m->u.snap_resp.n_bytes;
    }
    raft_msg_t *c = xmalloc(sizeof(*c) + extra);
    *c = *m;
    uint8_t *p = (uint8_t *)(c + 1);
    if (m->type == RAFT_MSG_FETCH_RESP && m->u.fetch_resp.n_records) {
        raft_entry_t *ents = (raft_entry_t *)p;
        size_t n = m->u.fetch_resp.n_records;
        p += n * sizeof(raft_entry_t);
        for (size_t i = 0; i < n; i++) {
            ents[i] = m->u.fetch_resp.records[i];
            if (ents[i].len)
                memcpy(p, ents[i].data, ents[i].len);
            ents[i].data = p;
            p += ents[i].len;
        }
        c->u.fetch_resp.records = ents;
    } else if (m->type == RAFT_MSG_FETCH_SNAPSHOT_RESP && m->u.snap_resp.n_bytes) {
        memcpy(p, m->u.snap_resp.bytes, m->u.snap_resp.n_bytes);
        c->u.snap_resp.bytes = p;
    }
    return c;
}

static void trace_msg(sim_t *s, const char *what, const raft_msg_t *m)
{
    if (!s->verbose)
        return;
    char d[160] = "";
    switch (m->type) {
    case RAFT_MSG_VOTE_REQ: {
        const raft_vote_req_t *q = &m->u.vote_req;
        snprintf(d, sizeof d, "epoch=%d last=(%d,%lld)%s", q->candidate_epoch,
                 q->last_offset_epoch, (long long)q->last_offset, q->pre_vote ? " pre" : "");
        break;
    }
    case RAFT_MSG_VOTE_RESP:
        snprintf(d, sizeof d, "granted=%d leader=%d epoch=%d err=%d", m->u.vote_resp.vote_granted,
                 m->u.vote_resp.leader_id, m->u.vote_resp.leader_epoch, m->u.vote_resp.error_code);
        break;
    case RAFT_MSG_FETCH_REQ:
        snprintf(d, sizeof d, "epoch=%d off=%lld last_epoch=%d", m->u.fetch_req.current_leader_epoch,
                 (long long)m->u.fetch_req.fetch_offset, m->u.fetch_req.last_fetched_epoch);
        break;
    case RAFT_MSG_FETCH_RESP: {
        const raft_fetch_resp_t *f = &m->u.fetch_resp;
        snprintf(d, sizeof d, "err=%d n=%zu hw=%lld div=(%d,%lld) snap=%lld leader=%d/%d",
                 f->error_code, f->n_records, (long long)f->high_watermark,
                 f->diverging_epoch.epoch, (long long)f->diverging_epoch.end_offset,
                 (long long)f->snapshot_id.end_offset, f->current_leader.leader_id,
                 f->current_leader.leader_epoch);
        break;
    }
    default:
        break;
    }
    sim_trace(s, "%s %d->%d %s %s", what, m->from, m->to, raft_msg_type_name(m->type), d);
}

static void net_send(sim_t *s, int from, const raft_msg_t *m)
{
    int to = m->to - 1;
    if (to < 0 || to >= s->n || m->from != from + 1) {
        sim_fail(s, "node %d sent a message to unknown node %d", from + 1, m->to);
        return;
    }
    s->msgs_sent++;
    if (s->blocked[from][to] > 0 || rng_chance(&s->rng, s->p.loss)) {
        s->msgs_lost++;
        trace_msg(s, "drop", m);
        return;
    }
    int copies = rng_chance(&s->rng, s->p.dup) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        int64_t delay = rng_between(&s->rng, s->p.delay_min_ms, s->p.delay_max_ms);
        sim_schedule(s, s->now + delay, EV_DELIVER, to, 0, msg_clone(m));
    }
}

/* ---- disks --------------------------------------------------------------- */

static void free_entries(raft_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)e[i].data);
}

static void disk_op_free(disk_op_t *o)
{
    if (o->entries)
        free_entries(o->entries, o->op.n_entries);
    free(o->entries);
    free(o->snapshot);
}

static void disk_write(sim_t *s, int i, const raft_op_t *op)
{
    disk_t *d = &s->nodes[i].disk;
    uint64_t prev = d->n_pend ? d->pend[d->n_pend - 1].op.seq : d->sync_target;
    if (d->n_pend && op->seq != prev + 1)
        sim_fail(s, "node %d: op seq %llu after %llu", i + 1, (unsigned long long)op->seq,
                 (unsigned long long)prev);
    node_t *nd = &s->nodes[i];
    if ((nd->armed == 1 || nd->armed == 2) && s->stable_at < 0 &&
        (nd->armed == 2 || op->kind == RAFT_OP_PERSIST_STATE)) {
        /* crash before this op can be synced (arg 1: a fault, void once stable) */
        int64_t at = s->now + rng_between(&s->rng, 0, s->p.sync_min_ms);
        sim_schedule(s, at, EV_CRASH, i, 1, NULL);
        sim_schedule(s, at + nd->armed_down_ms, EV_RESTART, i, 1, NULL);
        nd->armed = 0;
    }
    disk_op_t o = {.op = *op};
    if (op->kind == RAFT_OP_APPEND) {
        o.entries = xmalloc(MAX(op->n_entries, 1) * sizeof(raft_entry_t));
        for (size_t k = 0; k < op->n_entries; k++) {
            o.entries[k] = op->entries[k];
            uint8_t *copy = op->entries[k].len ? xmalloc(op->entries[k].len) : NULL;
            if (copy)
                memcpy(copy, op->entries[k].data, op->entries[k].len);
            o.entries[k].data = copy;
        }
        o.op.entries = o.entries;
    } else if (op->kind == RAFT_OP_SNAPSHOT_SAVE || op->kind == RAFT_OP_SNAPSHOT_INSTALL) {
        o.snapshot = xmalloc(MAX(op->snapshot_len, 1));
        memcpy(o.snapshot, op->snapshot, op->snapshot_len);
        o.op.snapshot = o.snapshot;
    }
    if (d->n_pend == d->cap_pend) {
        d->cap_pend = d->cap_pend ? d->cap_pend * 2 : 16;
        d->pend = xrealloc(d->pend, d->cap_pend * sizeof(*d->pend));
    }
    d->pend[d->n_pend++] = o;
}

static void disk_push_entry(disk_t *d, raft_entry_t e)
{
    if (d->n_ents == d->cap_ents) {
        d->cap_ents = d->cap_ents ? d->cap_ents * 2 : 64;
        d->ents = xrealloc(d->ents, d->cap_ents * sizeof(*d->ents));
    }
    d->ents[d->n_ents++] = e;
}

static void disk_drop_prefix(disk_t *d, size_t n)
{
    if (n == 0)
        return;
    free_entries(d->ents, n);
    memmove(d->ents, d->ents + n, (d->n_ents - n) * sizeof(*d->ents));
    d->n_ents -= n;
}

/* Make op o durable; an APPEND keeps only its first `keep` entries. */
static void disk_apply(sim_t *s, int i, disk_op_t *o, size_t keep)
{
    disk_t *d = &s->nodes[i].disk;
    int64_t base = d->snap_id.end_offset;
    switch (o->op.kind) {
    case RAFT_OP_PERSIST_STATE:
        d->qstate = o->op.state;
        break;
    case RAFT_OP_TRUNCATE: {
        int64_t x = o->op.truncate_to;
        if (x < base) {
            sim_fail(s, "node %d: truncate to %lld below snapshot %lld", i + 1, (long long)x,
                     (long long)base);
            return;
        }
        if (x - base < (int64_t)d->n_ents) {
            size_t k = (size_t)(x - base);
            free_entries(d->ents + k, d->n_ents - k);
            d->n_ents = k;
        }
        break;
    }
    case RAFT_OP_APPEND:
        for (size_t k = 0; k < MIN(keep, o->op.n_entries); k++) {
            if (o->entries[k].offset != base + (int64_t)d->n_ents) {
                sim_fail(s, "node %d: append at %lld but disk log ends at %lld", i + 1,
                         (long long)o->entries[k].offset, (long long)(base + (int64_t)d->n_ents));
                return;
            }
            disk_push_entry(d, o->entries[k]);
            o->entries[k].data = NULL;
        }
        break;
    case RAFT_OP_SNAPSHOT_SAVE:
    case RAFT_OP_SNAPSHOT_INSTALL: {
        int64_t end = o->op.snapshot_id.end_offset;
        if (o->op.kind == RAFT_OP_SNAPSHOT_SAVE) {
            if (end < base || end > base + (int64_t)d->n_ents) {
                sim_fail(s, "node %d: snapshot at %lld outside disk log [%lld,%lld]", i + 1,
                         (long long)end, (long long)base, (long long)(base + (int64_t)d->n_ents));
                return;
            }
            disk_drop_prefix(d, (size_t)(end - base));
        } else {
            disk_drop_prefix(d, d->n_ents);
        }
        free(d->snap);
        d->snap = o->snapshot;
        d->snap_len = o->op.snapshot_len;
        d->snap_id = o->op.snapshot_id;
        o->snapshot = NULL;
        break;
    }
    }
}

static void disk_maybe_sync(sim_t *s, int i)
{
    disk_t *d = &s->nodes[i].disk;
    if (d->sync_inflight || d->n_pend == 0)
        return;
    d->sync_inflight = true;
    d->sync_target = d->pend[d->n_pend - 1].op.seq;
    int64_t lat = rng_between(&s->rng, s->p.sync_min_ms, s->p.sync_max_ms);
    if (rng_chance(&s->rng, s->p.slow_sync_p))
        lat = rng_between(&s->rng, s->p.sync_max_ms, MAX(s->p.slow_sync_max_ms, s->p.sync_max_ms));
    sim_schedule(s, s->now + lat, EV_SYNC_DONE, i, 0, NULL);
}

static void disk_sync_done(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    disk_t *d = &nd->disk;
    size_t k = 0;
    while (k < d->n_pend && d->pend[k].op.seq <= d->sync_target) {
        disk_apply(s, i, &d->pend[k], SIZE_MAX);
        disk_op_free(&d->pend[k]);
        k++;
    }
    if (k)
        memmove(d->pend, d->pend + k, (d->n_pend - k) * sizeof(*d->pend));
    d->n_pend -= k;
    d->sync_inflight = false;
    CORE(s, raft_io_done(nd->r, d->sync_target, s->now));
    sim_process(s, i);
    disk_maybe_sync(s, i);
}

static void disk_crash(sim_t *s, int i)
{
    disk_t *d = &s->nodes[i].disk;
    size_t keep = 0;
    if (d->n_pend && rng_chance(&s->rng, s->p.crash_keep_p))
        keep = (size_t)rng_between(&s->rng, 0, (int64_t)d->n_pend);
    for (size_t k = 0; k < d->n_pend; k++) {
        if (k < keep) {
            size_t n = SIZE_MAX;
            if (k + 1 == keep && d->pend[k].op.kind == RAFT_OP_APPEND)
                n = (size_t)rng_between(&s->rng, 0, (int64_t)d->pend[k].op.n_entries);
            disk_apply(s, i, &d->pend[k], n);
        }
        disk_op_free(&d->pend[k]);
    }
    d->n_pend = 0;
    d->sync_inflight = false;
}

static void disk_free(disk_t *d)
{
    for (size_t k = 0; k < d->n_pend; k++)
        disk_op_free(&d->pend[k]);
    free(d->pend);
    free_entries(d->ents, d->n_ents);
    free(d->ents);
    free(d->snap);
    memset(d, 0, sizeof(*d));
}

/* ---- the state machine: a hash chain over applied entries --------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static size_t snapshot_size(int64_t count, int64_t end)
{
    return SIM_SNAPSHOT_HEADER_BYTES + 8 * (size_t)(count % 64) + (size_t)(end % 100);
}

/* The header, then filler derived from it, or with the controller on the
 * node's metadata image (snapshot.c's payload); NULL when none can be taken. */
static uint8_t *snapshot_encode(sim_t *s, int i, size_t *len)
{
    const node_t *nd = &s->nodes[i];
    uint8_t *image = NULL;
    size_t image_len = 0;
    if (s->p.controller && !ctl_snapshot(s, i, &image, &image_len))
        return NULL;
    *len = s->p.controller ? SIM_SNAPSHOT_HEADER_BYTES + image_len : snapshot_size(nd->sm_count, nd->sm_next);
    uint8_t *b = xmalloc(*len);
    put64(b, (uint64_t)nd->sm_next);
    put64(b + 8, nd->sm_chain);
    put64(b + 16, (uint64_t)nd->sm_count);
    if (image_len)
        memcpy(b + SIM_SNAPSHOT_HEADER_BYTES, image, image_len);
    for (size_t k = SIM_SNAPSHOT_HEADER_BYTES; !s->p.controller && k < *len; k++)
        b[k] = (uint8_t)mix64(nd->sm_chain + k);
    free(image);
    return b;
}

static void sm_restore(sim_t *s, int i, raft_snapshot_id_t id, const uint8_t *b, size_t len)
{
    node_t *nd = &s->nodes[i];
    if (len < SIM_SNAPSHOT_HEADER_BYTES) {
        sim_fail(s, "node %d: snapshot of %zu bytes", i + 1, len);
        return;
    }
    int64_t end = (int64_t)get64(b), count = (int64_t)get64(b + 16);
    uint64_t chain = get64(b + 8);
    bool ok = end == id.end_offset && (s->p.controller || len == snapshot_size(count, end));
    for (size_t k = SIM_SNAPSHOT_HEADER_BYTES; ok && !s->p.controller && k < len; k++)
        ok = b[k] == (uint8_t)mix64(chain + k);
    if (!ok) {
        sim_fail(s, "node %d: corrupt snapshot (id end %lld)", i + 1, (long long)id.end_offset);
        return;
    }
    nd->sm_next = end;
    nd->sm_chain = chain;
    nd->sm_count = count;
    check_restore(s, i, end, chain);
    if (s->p.controller)
        ctl_restore(s, i, end, b + SIM_SNAPSHOT_HEADER_BYTES, len - SIM_SNAPSHOT_HEADER_BYTES);
}

static void sm_apply(sim_t *s, int i, const raft_entry_t *e)
{
    node_t *nd = &s->nodes[i];
    if (e->offset != nd->sm_next) {
        sim_fail(s, "node %d: applied offset %lld, expected %lld", i + 1, (long long)e->offset,
                 (long long)nd->sm_next);
        return;
    }
    nd->sm_chain = mix64(nd->sm_chain ^ check_entry_hash(e));
    nd->sm_next++;
    if (e->kind == RAFT_ENTRY_DATA)
        nd->sm_count++;
    check_apply(s, i, e);
    if (s->p.controller)
        ctl_apply(s, i, e);
    else if (e->kind == RAFT_ENTRY_DATA && e->len >= 8 && s->stable_at >= 0 && s->committed_at < 0 &&
             get64(e->data) >= s->stable_first_id)
        s->committed_at = s->now;
}

/* ---- driving the cores ------------------------------------------------------ */

static raft_config_t node_config(const sim_t *s, int i)
{
    raft_config_t c = s->p.raft;
    c.node_id = i + 1;
    c.n_voters = s->p.n_voters;
    for (int v = 0; v < s->p.n_voters; v++)
        c.voters[v] = v + 1;
    c.cluster_id = CLUSTER_ID;
    c.random_seed = mix64(s->seed * 1000003u + (uint64_t)i * 7919u + s->nodes[i].inc);
    return c;
}

static void reschedule_tick(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    int64_t d = raft_next_deadline(nd->r);
    if (d == INT64_MAX || d == nd->tick_at)
        return;
    nd->tick_at = d;
    nd->tick_gen++;
    sim_schedule(s, MAX(d, s->now), EV_TICK, i, nd->tick_gen, NULL);
}

static void note_elected(sim_t *s, int i)
{
    const raft_t *r = s->nodes[i].r;
    if (s->stable_at < 0 || s->elected_at >= 0 || raft_role(r) != RAFT_LEADER)
        return;
    int64_t hw = raft_high_watermark(r);
    const raft_entry_t *e = hw > 0 ? raft_entry_at(r, hw - 1) : NULL;
    int32_t ep = e ? e->epoch : raft_snapshot_id(r).epoch;
    if (hw > 0 && ep == raft_epoch(r))
        s->elected_at = s->now;
}

static void on_role(sim_t *s, int i, const raft_ready_t *rd)
{
    node_t *nd = &s->nodes[i];
    sim_trace(s, "node %d: %s epoch=%d leader=%d", i + 1, raft_role_name(rd->role), rd->epoch,
              rd->leader_id);
    if (rd->role == RAFT_LEADER && (nd->role != RAFT_LEADER || nd->epoch != rd->epoch)) {
        s->elections++;
        check_leader(s, i);
    }
    if (rd->epoch < nd->epoch)
        sim_fail(s, "node %d: epoch went back from %d to %d", i + 1, nd->epoch, rd->epoch);
    nd->role = rd->role;
    nd->epoch = rd->epoch;
    s->max_epoch = MAX(s->max_epoch, rd->epoch);
}

static bool handle_ready(sim_t *s, int i, const raft_ready_t *rd)
{
    node_t *nd = &s->nodes[i];
    if (rd->role_changed)
        on_role(s, i, rd);
    for (size_t k = 0; k < rd->n_ops; k++)
        disk_write(s, i, &rd->ops[k]);
    disk_maybe_sync(s, i);
    if (rd->restore_snapshot)
        sm_restore(s, i, rd->snapshot_id, rd->snapshot, rd->snapshot_len);
    for (size_t k = 0; k < rd->n_committed && !s->failed; k++)
        sm_apply(s, i, &rd->committed[k]);
    if (rd->high_watermark < nd->hw_seen)
        sim_fail(s, "node %d: high watermark went back from %lld to %lld", i + 1,
                 (long long)nd->hw_seen, (long long)rd->high_watermark);
    nd->hw_seen = rd->high_watermark;
    for (size_t k = 0; k < rd->n_msgs; k++) {
        const raft_msg_t *m = &rd->msgs[k];
        trace_msg(s, "send", m);
        net_send(s, i, m);
        if (nd->armed == 3 && m->type == RAFT_MSG_VOTE_RESP && m->u.vote_resp.vote_granted &&
            s->stable_at < 0) { /* crash right after granting a vote: it must be durable */
            sim_schedule(s, s->now, EV_CRASH, i, 1, NULL);
            sim_schedule(s, s->now + nd->armed_down_ms, EV_RESTART, i, 1, NULL);
            nd->armed = 0;
        }
    }
    note_elected(s, i);
    if (!rd->want_snapshot || !s->p.snapshots_on_request)
        return false;
    size_t len;
    uint8_t *snap = snapshot_encode(s, i, &len);
    if (!snap) {
        CORE(s, raft_snapshot_skipped(nd->r, s->now));
        return false;
    }
    raft_status_t st;
    CORE(s, st = raft_snapshot_taken(nd->r, nd->sm_next, snap, len, s->now));
    sim_trace(s, "node %d: snapshot at %lld: %d", i + 1, (long long)nd->sm_next, (int)st);
    free(snap);
    return st == RAFT_OK;
}

void sim_process(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    for (int round = 0; round < 4 && !s->failed; round++) {
        const raft_ready_t *rd;
        CORE(s, rd = raft_ready(nd->r));
        if (!handle_ready(s, i, rd) && !(s->p.controller && ctl_step(s, i)))
            break;
    }
    reschedule_tick(s, i);
}

void sim_crash(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    if (!nd->up)
        return;
    sim_trace(s, "node %d: CRASH", i + 1);
    if (raft_stats(nd->r)->protocol_violations)
        sim_fail(s, "node %d saw %llu protocol violations", i + 1,
                 (unsigned long long)raft_stats(nd->r)->protocol_violations);
    raft_free(nd->r);
    nd->r = NULL;
    if (s->p.controller)
        ctl_node_free(s, i);
    nd->up = false;
    nd->armed = 0;
    nd->inc++;
    nd->tick_at = -1;
    disk_crash(s, i);
}

void sim_restart(sim_t *s, int i)
{
    node_t *nd = &s->nodes[i];
    if (nd->up)
        return;
    disk_t *d = &nd->disk;
    raft_disk_state_t ds = {.qstate = d->qstate, .snapshot_id = d->snap_id, .snapshot = d->snap,
                            .snapshot_len = d->snap_len, .entries = d->ents, .n_entries = d->n_ents};
    raft_config_t cfg = node_config(s, i);
    sim_trace(s, "node %d: RESTART epoch=%d voted=%d leader=%d log=[%lld,%lld)", i + 1,
              d->qstate.epoch, d->qstate.voted_id, d->qstate.leader_id,
              (long long)d->snap_id.end_offset,
              (long long)(d->snap_id.end_offset + (int64_t)d->n_ents));
    CORE(s, nd->r = raft_new(&cfg, &ds, s->now));
    nd->up = true;
    nd->tick_at = -1;
    nd->role = RAFT_UNATTACHED;
    nd->epoch = 0; /* an epoch never made durable may be forgotten */
    nd->sm_next = 0;
    nd->sm_chain = 0;
    nd->sm_count = 0;
    if (s->p.controller)
        ctl_node_reset(s, i);
    if (d->snap_id.end_offset > 0)
        sm_restore(s, i, d->snap_id, d->snap, d->snap_len);
    nd->hw_seen = raft_high_watermark(nd->r);
    sim_process(s, i);
}

void sim_block(sim_t *s, int from, int to, int delta)
{
    s->blocked[from][to] += delta;
    if (s->blocked[from][to] < 0)
        s->blocked[from][to] = 0;
}

void sim_heal_all(sim_t *s) { memset(s->blocked, 0, sizeof(s->blocked)); }

int sim_propose(sim_t *s, int i, int count)
{
    node_t *nd = &s->nodes[i];
    if (!nd->up)
        return 0;
    if (s->p.controller) /* requests for the controller, whichever node leads */
        return ctl_enqueue_random(s, count);
    int accepted = 0;
    for (int k = 0; k < count; k++) {
        uint8_t buf[SIM_PAYLOAD_MAX];
        uint64_t id = s->next_prop_id++;
        size_t len = 8 + (size_t)rng_between(&s->rng, 0, SIM_PAYLOAD_MAX - 8);
        put64(buf, id);
        for (size_t b = 8; b < len; b++)
            buf[b] = (uint8_t)(id * 31 + b);
        raft_status_t st;
        CORE(s, st = raft_propose(nd->r, buf, len, s->now, NULL));
        accepted += st == RAFT_OK;
    }
    if (accepted)
        sim_process(s, i);
    return accepted;
}

int sim_leader(const sim_t *s)
{
    int best = -1;
    for (int i = 0; i < s->n; i++) {
        const node_t *nd = &s->nodes[i];
        if (nd->up && raft_role(nd->r) == RAFT_LEADER &&
            (best < 0 || raft_epoch(nd->r) > raft_epoch(s->nodes[best].r)))
            best = i;
    }
    return best;
}

/* ---- the loop -------------------------------------------------------------- */

static void on_tick(sim_t *s, const event_t *e)
{
    node_t *nd = &s->nodes[e->node];
    if (!nd->up || e->inc != nd->inc || e->arg != nd->tick_gen)
        return;
    nd->same_time_ticks = nd->last_tick_time == s->now ? nd->same_time_ticks + 1 : 0;
    nd->last_tick_time = s->now;
    if (nd->same_time_ticks > SIM_SAME_TIME_TICKS_MAX) {
        sim_fail(s, "node %d: livelock, ticking at the same instant", e->node + 1);
        return;
    }
    nd->tick_at = -1;
    CORE(s, raft_tick(nd->r, s->now));
    sim_process(s, e->node);
}

bool sim_step(sim_t *s)
{
    if (s->n_heap == 0 || s->failed)
        return false;
    event_t e = heap_pop(s);
    CK_ASSERT(e.t >= s->now);
    s->now = e.t;
    s->events++;
    node_t *nd = e.node >= 0 ? &s->nodes[e.node] : NULL;
    switch (e.kind) {
    case EV_DELIVER: {
        raft_msg_t *m = e.ptr;
        if (s->blocked[m->from - 1][e.node] > 0) { /* a partition also eats packets in flight */
            s->msgs_lost++;
            trace_msg(s, "cut", m);
        } else if (nd->up) {
            trace_msg(s, "recv", m);
            CORE(s, raft_recv(nd->r, m, s->now));
            sim_process(s, e.node);
        }
        free(m);
        break;
    }
    case EV_TICK: on_tick(s, &e); break;
    case EV_SYNC_DONE:
        if (nd->up && e.inc == nd->inc)
            disk_sync_done(s, e.node);
        break;
    case EV_CRASH:
        if (e.arg == 0 || s->stable_at < 0)
            sim_crash(s, e.node);
        break;
    case EV_RESTART:
        if (e.arg == 0 || s->stable_at < 0)
            sim_restart(s, e.node);
        break;
    case EV_BLOCK: sim_block(s, e.node, (int)e.arg, +1); break;
    case EV_UNBLOCK: sim_block(s, e.node, (int)e.arg, -1); break;
    case EV_RESIGN:
        if (nd->up) {
            sim_trace(s, "node %d: resign", e.node + 1);
            CORE(s, raft_resign(nd->r, s->now));
            sim_process(s, e.node);
        }
        break;
    case EV_CALL: e.fn(s, e.ptr); break;
    default: CK_PANIC("event kind %d", e.kind);
    }
    return true;
}

void sim_run_until(sim_t *s, int64_t t)
{
    while (!s->failed && s->n_heap && s->heap[0].t <= t)
        sim_step(s);
    if (s->now < t)
        s->now = t;
}

void sim_init(sim_t *s, uint64_t seed, const sim_params_t *p, bool verbose)
{
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->rng.s = mix64(seed ^ 0x5eed5eed5eed5eedull);
    s->p = *p;
    s->verbose = verbose;
    s->stable_at = s->elected_at = s->committed_at = -1;
    s->n = p->n_voters + p->n_observers;
    CK_ASSERT(p->n_voters >= 1 && s->n <= SIM_NODES_MAX);
    check_init(&s->chk);
    if (p->controller)
        ctl_init(s);
    for (int i = 0; i < s->n; i++) {
        node_t *nd = &s->nodes[i];
        nd->id = i + 1;
        nd->voter = i < p->n_voters;
        nd->disk.qstate = (raft_qstate_t){0, RAFT_NO_NODE, RAFT_NO_NODE};
        nd->disk.snap_id = (raft_snapshot_id_t){0, -1};
        nd->tick_at = -1;
    }
    for (int i = 0; i < s->n; i++)
        sim_restart(s, i);
}

void sim_free(sim_t *s)
{
    for (size_t k = 0; k < s->n_heap; k++)
        if (s->heap[k].kind == EV_DELIVER)
            free(s->heap[k].ptr);
    free(s->heap);
    for (int i = 0; i < s->n; i++) {
        raft_free(s->nodes[i].r);
        disk_free(&s->nodes[i].disk);
        if (s->p.controller)
            ctl_node_free(s, i);
    }
    if (s->p.controller)
        ctl_free(s);
    check_free(&s->chk);
}
