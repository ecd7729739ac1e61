/*
 * epoch.c - BeginQuorumEpoch (a new leader announces itself) and
 * EndQuorumEpoch (a leader hands over on shutdown), requests and responses.
 *
 * The leader sends BeginQuorumEpoch to every voter and repeats it every
 * request_timeout_ms to voters that have neither answered nor fetched. A
 * voter that accepts it follows the leader (writing the new epoch first).
 *
 * EndQuorumEpoch names preferred successors, most caught-up first. A voter
 * that receives it stops counting the leader as alive (so it grants
 * pre-votes) and starts its own pre-vote after a delay that grows with its
 * place in the list: the first successor at once, the k-th after
 * retry_backoff_ms * 2^k (capped), voters not named after a full election
 * timeout. The resigning leader keeps serving fetches meanwhile, so
 * successors can catch up to its log end.
 */
#include "raft/internal.h"

#include "base/util.h"

static void respond(raft_t *r, const raft_msg_t *req, raft_msg_type_t type, int16_t err)
{
    raft_msg_t m = {.type = type, .to = req->from, .corr = req->corr};
    m.u.epoch_resp = (raft_epoch_resp_t){
        .error_code = err, .leader_id = r->leader_id, .leader_epoch = r->epoch};
    raft_send(r, &m);
}

void raft_send_begin_epoch(raft_t *r, peer_t *p)
{
    raft_msg_t m = {.type = RAFT_MSG_BEGIN_EPOCH_REQ, .to = p->id, .corr = r->next_corr++};
    m.u.begin_req = (raft_begin_epoch_req_t){.leader_id = r->cfg.node_id, .leader_epoch = r->epoch};
    p->begin_sent_ms = r->now;
    raft_send(r, &m);
}

void raft_recv_begin_epoch_req(raft_t *r, const raft_msg_t *m)
{
    const raft_begin_epoch_req_t *q = &m->u.begin_req;
    const raft_msg_type_t rt = RAFT_MSG_BEGIN_EPOCH_RESP;
    if (!raft_cluster_ok(r, m)) {
        respond(r, m, rt, RAFT_ERR_INCONSISTENT_CLUSTER_ID);
        return;
    }
    if (raft_voter_index(r, q->leader_id) < 0 || q->leader_id != m->from) {
        respond(r, m, rt, RAFT_ERR_INCONSISTENT_VOTER_SET);
        return;
    }
    if (q->leader_epoch < r->epoch) {
        respond(r, m, rt, RAFT_ERR_FENCED_LEADER_EPOCH);
        return;
    }
    if (q->leader_epoch == r->epoch) {
        bool conflict = (r->leader_id != RAFT_NO_NODE && r->leader_id != q->leader_id) ||
                        r->role == RAFT_LEADER || r->role == RAFT_RESIGNED;
        if (conflict) { /* two leaders in one epoch: never from a correct peer */
            r->stats.protocol_violations++;
            return;
        }
    }
    if (r->role != RAFT_FOLLOWER || r->epoch != q->leader_epoch || r->leader_id != q->leader_id) {
        raft_become_follower(r, q->leader_epoch, q->leader_id, true);
    } else if (!r->leader_resigned) {
        r->last_leader_ms = r->now;
        r->deadline = r->now + r->cfg.fetch_timeout_ms;
    }
    respond(r, m, rt, RAFT_ERR_NONE);
}

static int64_t successor_delay(raft_t *r, const raft_end_epoch_req_t *q)
{
    int n = MIN(MAX(q->n_preferred, 0), RAFT_VOTERS_MAX);
    for (int pos = 0; pos < n; pos++) {
        if (q->preferred_successors[pos] != r->cfg.node_id)
            continue;
        if (pos == 0)
            return 0;
        return MIN((int64_t)r->cfg.election_backoff_max_ms,
                   (int64_t)r->cfg.retry_backoff_ms << MIN(pos, 20));
    }
    return raft_election_timeout(r);
}

void raft_recv_end_epoch_req(raft_t *r, const raft_msg_t *m)
{
    const raft_end_epoch_req_t *q = &m->u.end_req;
    const raft_msg_type_t rt = RAFT_MSG_END_EPOCH_RESP;
    if (!raft_cluster_ok(r, m)) {
        respond(r, m, rt, RAFT_ERR_INCONSISTENT_CLUSTER_ID);
        return;
    }
    if (raft_voter_index(r, q->leader_id) < 0 || q->leader_id != m->from) {
        respond(r, m, rt, RAFT_ERR_INCONSISTENT_VOTER_SET);
        return;
    }
    if (q->leader_epoch < r->epoch) {
        respond(r, m, rt, RAFT_ERR_FENCED_LEADER_EPOCH);
        return;
    }
    raft_observe_epoch(r, q->leader_epoch, q->leader_id);
    bool following = r->role == RAFT_FOLLOWER && r->leader_id == q->leader_id;
    if ((following || r->role == RAFT_UNATTACHED) && !r->leader_resigned) {
        r->leader_resigned = true;
        if (r->self_voter >= 0) {
            int64_t delay = successor_delay(r, q);
            if (delay == 0)
                raft_become_prospective(r);
            else
                r->deadline = MIN(r->deadline, r->now + delay);
        }
    }
    respond(r, m, rt, RAFT_ERR_NONE);
}

void raft_recv_epoch_resp(raft_t *r, const raft_msg_t *m)
{
    const raft_epoch_resp_t *v = &m->u.epoch_resp;
    if (raft_observe_epoch(r, v->leader_epoch, v->leader_id))
        return;
    if (m->type != RAFT_MSG_BEGIN_EPOCH_RESP || r->role != RAFT_LEADER ||
        v->leader_epoch != r->epoch || v->error_code != RAFT_ERR_NONE)
        return;
    int idx = raft_voter_index(r, m->from);
    if (idx >= 0)
        r->peers[idx].begin_acked = true;
}

/* Voters other than us, most caught-up first (ties: lower id first). */
void raft_send_end_epoch(raft_t *r)
{
    raft_end_epoch_req_t q = {.leader_id = r->cfg.node_id, .leader_epoch = r->epoch};
    for (int i = 0; i < r->cfg.n_voters; i++) {
        if (i == r->self_voter)
            continue;
        int j = q.n_preferred++;
        q.preferred_successors[j] = r->cfg.voters[i];
        while (j > 0) { /* insertion sort by end offset, descending */
            const peer_t *a = raft_peer(r, q.preferred_successors[j - 1], false);
            const peer_t *b = raft_peer(r, q.preferred_successors[j], false);
            bool swap = b->end_offset > a->end_offset ||
                        (b->end_offset == a->end_offset && b->id < a->id);
            if (!swap)
                break;
            int32_t t = q.preferred_successors[j];
            q.preferred_successors[j] = q.preferred_successors[j - 1];
            q.preferred_successors[j - 1] = t;
            j--;
        }
    }
    for (int i = 0; i < q.n_preferred; i++) {
        raft_msg_t m = {.type = RAFT_MSG_END_EPOCH_REQ, .to = q.preferred_successors[i],
                        .corr = r->next_corr++};
        m.u.end_req = q;
        raft_send(r, &m);
    }
}
