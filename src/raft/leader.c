/*
 * leader.c - the leader's side of replication: answering Fetch and
 * FetchSnapshot, advancing the high watermark, check-quorum.
 *
 * A Fetch is checked against the log when it arrives (a consistent fetch
 * offset is the replica's durable log end, which may advance the high
 * watermark) and again when it is answered, at the next raft_ready. An
 * idle fetch (nothing new, high watermark already known to the replica)
 * is parked until records arrive, the high watermark moves, or its
 * MaxWaitMs passes: that long-poll is how a pull-based leader pushes.
 *
 * High watermark: the largest offset that a majority of voters hold
 * durably (the leader counts its own durable end, followers their last
 * consistent fetch offset), and only once it covers the leader-change
 * entry at the start of the leader's epoch: entries of older epochs are
 * committed only indirectly (Raft's current-term rule).
 *
 * Check-quorum: a voter counts as present while its last Fetch or
 * FetchSnapshot in this epoch is younger than fetch_timeout_ms. When fewer
 * than a majority (the leader included) are present, the leader steps down
 * to PROSPECTIVE. Voters get one fetch timeout of grace after an election.
 */
#include "raft/internal.h"

#include "base/util.h"

static bool is_leader(const raft_t *r) { return r->role == RAFT_LEADER || r->role == RAFT_RESIGNED; }

peer_t *raft_peer(raft_t *r, int32_t id, bool create)
{
    int vi = raft_voter_index(r, id);
    if (vi >= 0)
        return &r->peers[vi];
    peer_t *free_slot = NULL, *oldest = NULL;
    for (int i = r->cfg.n_voters; i < RAFT_PEERS_MAX; i++) {
        peer_t *p = &r->peers[i];
        if (p->used && p->id == id)
            return p;
        if (!p->used)
            free_slot = free_slot ? free_slot : p;
        else if (!oldest || p->last_fetch_ms < oldest->last_fetch_ms)
            oldest = p;
    }
    if (!create)
        return NULL;
    peer_t *p = free_slot ? free_slot : oldest; /* evict the quietest observer */
    *p = (peer_t){.id = id, .used = true, .end_offset = -1, .last_fetch_ms = NEVER_MS,
                  .last_sent_hw = -1};
    return p;
}

void raft_leader_reset_peers(raft_t *r)
{
    for (int i = 0; i < RAFT_PEERS_MAX; i++) {
        peer_t *p = &r->peers[i];
        if (i >= r->cfg.n_voters) {
            p->used = false;
            p->parked = false;
            continue;
        }
        *p = (peer_t){.id = r->cfg.voters[i], .used = true, .voter = true, .end_offset = -1,
                      .last_fetch_ms = r->now, .last_sent_hw = -1,
                      .begin_acked = i == r->self_voter};
    }
}

static raft_fetch_resp_t resp_template(const raft_t *r, int16_t err)
{
    return (raft_fetch_resp_t){.error_code = err,
                               .high_watermark = is_leader(r) ? r->hw : -1,
                               .log_start_offset = r->log.start,
                               .diverging_epoch = {.epoch = -1, .end_offset = -1},
                               .current_leader = {r->leader_id, r->epoch},
                               .snapshot_id = {.end_offset = -1, .epoch = -1}};
}

static int16_t epoch_error(const raft_t *r, int32_t req_epoch)
{
    if (req_epoch < r->epoch)
        return RAFT_ERR_FENCED_LEADER_EPOCH;
    if (req_epoch > r->epoch)
        return RAFT_ERR_UNKNOWN_LEADER_EPOCH;
    return is_leader(r) ? RAFT_ERR_NONE : RAFT_ERR_NOT_LEADER_OR_FOLLOWER;
}

static void fetch_error(raft_t *r, const raft_msg_t *req, int16_t err)
{
    raft_msg_t m = {.type = RAFT_MSG_FETCH_RESP, .to = req->from, .corr = req->corr};
    m.u.fetch_resp = resp_template(r, err);
    raft_send(r, &m);
}

void raft_leader_release_fetches(raft_t *r)
{
    CK_ASSERT(is_leader(r));
    for (int i = 0; i < RAFT_PEERS_MAX; i++) {
        peer_t *p = &r->peers[i];
        if (!p->used || !p->parked)
            continue;
        raft_msg_t m = {.type = RAFT_MSG_FETCH_RESP, .to = p->id, .corr = p->corr};
        m.u.fetch_resp = resp_template(r, p->req.current_leader_epoch < r->epoch ? RAFT_ERR_FENCED_LEADER_EPOCH
                                                                               : RAFT_ERR_NOT_LEADER_OR_FOLLOWER);
        m.u.fetch_resp.high_watermark = -1;
        p->parked = false;
        raft_send(r, &m);
    }
}

void raft_recv_fetch_req(raft_t *r, const raft_msg_t *m)
{
    const raft_fetch_req_t *q = &m->u.fetch_req;
    if (!raft_cluster_ok(r, m)) {
        fetch_error(r, m, RAFT_ERR_INCONSISTENT_CLUSTER_ID);
        return;
    }
    if (q->replica_id != m->from || q->fetch_offset < 0 || q->last_fetched_epoch < -1) {
        fetch_error(r, m, RAFT_ERR_INVALID_REQUEST);
        return;
    }
    int16_t err = epoch_error(r, q->current_leader_epoch);
    if (err != RAFT_ERR_NONE) {
        fetch_error(r, m, err);
        return;
    }
    peer_t *p = raft_peer(r, q->replica_id, true);
    p->last_fetch_ms = r->now;
    p->begin_acked = true;
    raft_epoch_end_t div;
    fetch_check_t chk = raft_log_validate(&r->log, q->fetch_offset, q->last_fetched_epoch, &div);
    if (chk == FETCH_VALID && q->fetch_offset > p->end_offset) {
        p->end_offset = q->fetch_offset;
        if (p->voter)
            raft_leader_update_hw(r);
    }
    p->parked = true; /* a newer fetch supersedes an older parked one */
    p->corr = m->corr;
    p->req = *q;
    p->park_deadline = r->now + MIN(MAX(q->max_wait_ms, 0), r->cfg.request_timeout_ms);
    p->answer_now = chk != FETCH_VALID || q->fetch_offset < raft_log_end_offset(&r->log) ||
                    r->hw > p->last_sent_hw || q->max_wait_ms <= 0;
}

static void answer_fetch(raft_t *r, peer_t *p)
{
    const raft_fetch_req_t *q = &p->req;
    raft_msg_t m = {.type = RAFT_MSG_FETCH_RESP, .from = r->cfg.node_id, .to = p->id, .corr = p->corr};
    raft_fetch_resp_t *f = &m.u.fetch_resp;
    *f = resp_template(r, RAFT_ERR_NONE);
    raft_epoch_end_t div;
    switch (raft_log_validate(&r->log, q->fetch_offset, q->last_fetched_epoch, &div)) {
    case FETCH_SNAPSHOT:
        f->snapshot_id = raft_snapshot_id(r);
        break;
    case FETCH_DIVERGING:
        f->diverging_epoch = div;
        break;
    case FETCH_VALID: {
        int64_t from = q->fetch_offset, to = from, end = raft_log_end_offset(&r->log);
        size_t bytes = 0;
        while (to < end && to - from < RAFT_FETCH_ENTRIES_MAX) {
            size_t len = raft_log_get(&r->log, to)->len;
            if (to > from && bytes + len > (size_t)r->cfg.fetch_max_bytes)
                break;
            bytes += len;
            to++;
        }
        f->n_records = (size_t)(to - from);
        f->records = f->n_records ? raft_log_slice(&r->log, from, to) : NULL;
        break;
    }
    }
    p->last_sent_hw = r->hw;
    p->parked = false;
    p->answer_now = false;
    raft_emit(r, &m);
}

void raft_recv_fetch_snapshot_req(raft_t *r, const raft_msg_t *m)
{
    const raft_fetch_snapshot_req_t *q = &m->u.snap_req;
    raft_msg_t resp = {.type = RAFT_MSG_FETCH_SNAPSHOT_RESP, .to = m->from, .corr = m->corr};
    resp.u.snap_resp = (raft_fetch_snapshot_resp_t){
        .snapshot_id = q->snapshot_id, .current_leader = {r->leader_id, r->epoch}};
    int16_t err = epoch_error(r, q->current_leader_epoch);
    if (!raft_cluster_ok(r, m))
        err = RAFT_ERR_INCONSISTENT_CLUSTER_ID;
    else if (q->replica_id != m->from || q->replica_id < 0)
        err = RAFT_ERR_INVALID_REQUEST;
    if (err != RAFT_ERR_NONE || r->n_snap_reqs >= RAFT_PEERS_MAX) {
        resp.u.snap_resp.error_code = err != RAFT_ERR_NONE ? err : RAFT_ERR_BROKER_NOT_AVAILABLE;
        raft_send(r, &resp);
        return;
    }
    peer_t *p = raft_peer(r, q->replica_id, true);
    p->last_fetch_ms = r->now;
    p->begin_acked = true;
    VEC_PUSH(r->snap_reqs, r->n_snap_reqs, r->cap_snap_reqs);
    r->snap_reqs[r->n_snap_reqs++] = (snap_req_t){.from = m->from, .corr = m->corr, .req = *q};
}

static void answer_snapshot(raft_t *r, const snap_req_t *s)
{
    const raft_fetch_snapshot_req_t *q = &s->req;
    raft_msg_t m = {.type = RAFT_MSG_FETCH_SNAPSHOT_RESP, .from = r->cfg.node_id, .to = s->from,
                    .corr = s->corr};
    raft_fetch_snapshot_resp_t *f = &m.u.snap_resp;
    *f = (raft_fetch_snapshot_resp_t){.snapshot_id = q->snapshot_id,
                                      .current_leader = {r->leader_id, r->epoch},
                                      .size = (int64_t)r->snap_len, .position = q->position};
    raft_snapshot_id_t cur = raft_snapshot_id(r);
    if (cur.end_offset == 0 || cur.end_offset != q->snapshot_id.end_offset ||
        cur.epoch != q->snapshot_id.epoch) {
        f->error_code = RAFT_ERR_SNAPSHOT_NOT_FOUND;
    } else if (q->position < 0 || q->position > (int64_t)r->snap_len) {
        f->error_code = RAFT_ERR_POSITION_OUT_OF_RANGE;
    } else {
        size_t cap = (size_t)r->cfg.snapshot_chunk_bytes;
        if (q->max_bytes > 0)
            cap = MIN(cap, (size_t)q->max_bytes);
        f->n_bytes = MIN(r->snap_len - (size_t)q->position, cap);
        f->bytes = r->snap + q->position;
    }
    raft_emit(r, &m);
}

void raft_leader_answer_fetches(raft_t *r)
{
    /* Nothing from this epoch leaves before the vote that made us leader
     * is durable (it always is with more than one voter). */
    if (!is_leader(r) || r->durable_gen != r->state_gen)
        return;
    int64_t end = raft_log_end_offset(&r->log);
    for (int i = 0; i < RAFT_PEERS_MAX; i++) {
        peer_t *p = &r->peers[i];
        if (!p->used || !p->parked)
            continue;
        if (p->answer_now || end > p->req.fetch_offset || r->hw > p->last_sent_hw ||
            r->now >= p->park_deadline)
            answer_fetch(r, p);
    }
    for (size_t i = 0; i < r->n_snap_reqs; i++)
        answer_snapshot(r, &r->snap_reqs[i]);
    r->n_snap_reqs = 0;
}

static void sort_desc(int64_t *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] > v[j - 1]; j--) {
            int64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

void raft_leader_update_hw(raft_t *r)
{
    if (!is_leader(r))
        return;
    int64_t pos[RAFT_VOTERS_MAX];
    for (int i = 0; i < r->cfg.n_voters; i++)
        pos[i] = i == r->self_voter ? r->durable_end : r->peers[i].end_offset;
    sort_desc(pos, r->cfg.n_voters);
    int64_t cand = pos[r->majority - 1];
    if (cand > r->epoch_start_offset && cand > r->hw)
        raft_set_hw(r, cand);
}

/* When fewer than a majority will have fetched within the fetch timeout. */
static int64_t quorum_deadline(const raft_t *r)
{
    if (r->majority == 1)
        return FOREVER_MS;
    int64_t t[RAFT_VOTERS_MAX];
    int n = 0;
    for (int i = 0; i < r->cfg.n_voters; i++)
        if (i != r->self_voter)
            t[n++] = r->peers[i].last_fetch_ms;
    sort_desc(t, n);
    int64_t kth = t[r->majority - 2]; /* the leader itself is the other one */
    return kth == NEVER_MS ? r->now : kth + r->cfg.fetch_timeout_ms;
}

void raft_leader_tick(raft_t *r)
{
    if (r->now >= quorum_deadline(r)) {
        r->stats.step_downs++;
        raft_become_prospective(r);
        return;
    }
    if (r->role == RAFT_RESIGNED) {
        if (r->now >= r->deadline)
            raft_become_prospective(r);
        return;
    }
    for (int i = 0; i < r->cfg.n_voters; i++) {
        peer_t *p = &r->peers[i];
        if (i != r->self_voter && !p->begin_acked &&
            r->now - p->begin_sent_ms >= r->cfg.request_timeout_ms)
            raft_send_begin_epoch(r, p);
    }
}

int64_t raft_leader_deadline(const raft_t *r)
{
    int64_t d = quorum_deadline(r);
    if (r->role == RAFT_RESIGNED)
        d = MIN(d, r->deadline);
    for (int i = 0; i < RAFT_PEERS_MAX; i++) {
        const peer_t *p = &r->peers[i];
        if (p->used && p->parked && r->durable_gen == r->state_gen) /* else: after io_done */
            d = MIN(d, p->park_deadline);
        if (r->role == RAFT_LEADER && i < r->cfg.n_voters && i != r->self_voter && !p->begin_acked)
            d = MIN(d, p->begin_sent_ms + r->cfg.request_timeout_ms);
    }
    return d;
}

bool raft_describe(const raft_t *r, raft_quorum_info_t *out)
{
    if (!is_leader(r))
        return false;
    *out = (raft_quorum_info_t){.leader_id = r->cfg.node_id, .leader_epoch = r->epoch,
                                .high_watermark = r->hw};
    for (int i = 0; i < RAFT_PEERS_MAX; i++) {
        const peer_t *p = &r->peers[i];
        if (!p->used)
            continue;
        bool self = i == r->self_voter;
        raft_replica_info_t info = {
            .replica_id = p->id,
            .log_end_offset = self ? raft_log_end_offset(&r->log) : p->end_offset,
            .last_fetch_ms = self || p->last_fetch_ms == NEVER_MS ? -1 : p->last_fetch_ms};
        if (p->voter)
            out->voters[out->n_voters++] = info;
        else
            out->observers[out->n_observers++] = info;
    }
    return true;
}
