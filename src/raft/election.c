/*
 * election.c - Vote requests and responses: pre-vote rounds (KIP-996) and
 * real elections (KIP-595).
 *
 * A voter grants a real vote for epoch E when: E is not older than its own,
 * it has not voted for someone else in E, it knows no leader of E, and the
 * candidate's log is at least as up to date as its own (larger last epoch,
 * or the same last epoch and an end offset at least as large). The vote is
 * written (PERSIST_STATE) before the response can leave.
 *
 * A pre-vote asks the same question for epoch+1 without changing any vote
 * or bumping any epoch, and is refused in addition while the voter has
 * proof of a live leader: it is the leader, or it fetched successfully from
 * the leader within fetch_timeout_ms (and the leader has not announced its
 * resignation). Refusals carry the leader, so a prospective voter that
 * only lost touch learns where to fetch from and goes back to following.
 * The one state change a pre-vote causes is epoch propagation: a voter
 * behind the candidate's current epoch moves up to it (see below).
 */
#include "raft/internal.h"

#include "base/util.h"

#include <string.h>

static void respond(raft_t *r, const raft_msg_t *req, int16_t err, bool granted)
{
    raft_msg_t m = {.type = RAFT_MSG_VOTE_RESP, .to = req->from, .corr = req->corr};
    m.u.vote_resp = (raft_vote_resp_t){.error_code = err,
                                       .leader_id = r->leader_id,
                                       .leader_epoch = r->epoch,
                                       .vote_granted = granted};
    raft_send(r, &m);
}

static bool log_up_to_date(const raft_t *r, int32_t last_epoch, int64_t end)
{
    int32_t mine = raft_log_last_epoch(&r->log);
    if (last_epoch != mine)
        return last_epoch > mine;
    return end >= raft_log_end_offset(&r->log);
}

void raft_start_prevote(raft_t *r)
{
    CK_ASSERT(r->self_voter >= 0);
    r->role = RAFT_PROSPECTIVE;
    r->round_active = true;
    r->stats.prevote_rounds++;
    memset(r->vote_state, 0, sizeof(r->vote_state));
    r->vote_state[r->self_voter] = 1;
    r->deadline = r->now + raft_election_timeout(r);
    if (r->majority == 1) {
        raft_become_candidate(r);
        return;
    }
    for (int i = 0; i < r->cfg.n_voters; i++) {
        if (i == r->self_voter)
            continue;
        raft_msg_t m = {.type = RAFT_MSG_VOTE_REQ, .to = r->cfg.voters[i], .corr = r->next_corr++};
        m.u.vote_req = (raft_vote_req_t){.candidate_epoch = r->epoch + 1,
                                         .candidate_id = r->cfg.node_id,
                                         .last_offset_epoch = raft_log_last_epoch(&r->log),
                                         .last_offset = raft_log_end_offset(&r->log),
                                         .pre_vote = true};
        r->vote_corr[i] = m.corr;
        raft_send(r, &m);
    }
}

static bool may_grant(const raft_t *r, const raft_vote_req_t *q)
{
    if (r->role == RAFT_LEADER || r->role == RAFT_RESIGNED || r->role == RAFT_CANDIDATE)
        return false; /* voted for itself in this epoch */
    if (r->voted_id != RAFT_NO_NODE)
        return r->voted_id == q->candidate_id; /* a duplicate asks again */
    if (r->leader_id != RAFT_NO_NODE)
        return false; /* this epoch already has a leader */
    return log_up_to_date(r, q->last_offset_epoch, q->last_offset);
}

static void round_lost(raft_t *r);

/* A rival candidate of this very epoch asked for our vote, so each of us
 * holds its own: a split vote, which waiting out the round would resolve
 * only after a full election timeout (both timed out together, typically
 * because the leader answered both followers' fetches at once before it
 * went silent). Give the round up now; the random backoff makes one of us
 * ask first in the next epoch, and the other grants it. */
static void split_vote(raft_t *r)
{
    CK_ASSERT(r->role == RAFT_CANDIDATE && r->voted_id == r->cfg.node_id);
    r->stats.split_votes++;
    round_lost(r);
}

void raft_recv_vote_req(raft_t *r, const raft_msg_t *m)
{
    const raft_vote_req_t *q = &m->u.vote_req;
    if (!raft_cluster_ok(r, m)) {
        respond(r, m, RAFT_ERR_INCONSISTENT_CLUSTER_ID, false);
        return;
    }
    if (r->self_voter < 0 || raft_voter_index(r, q->candidate_id) < 0 ||
        q->candidate_id != m->from) {
        respond(r, m, RAFT_ERR_INCONSISTENT_VOTER_SET, false);
        return;
    }
    if (q->candidate_epoch < r->epoch || q->last_offset < 0) {
        respond(r, m, RAFT_ERR_NONE, false);
        return;
    }
    if (q->pre_vote) {
        /* The candidate already holds epoch candidate_epoch - 1, reached
         * through a real candidacy. Adopt it, as Raft adopts any newer
         * epoch it sees: a node stranded in an epoch whose election failed
         * could otherwise never rejoin a leader of an older epoch. */
        raft_observe_epoch(r, q->candidate_epoch - 1, RAFT_NO_NODE);
        bool ok = !raft_leader_alive(r) &&
                  log_up_to_date(r, q->last_offset_epoch, q->last_offset);
        respond(r, m, RAFT_ERR_NONE, ok);
        return;
    }
    if (q->candidate_epoch > r->epoch)
        raft_become_unattached(r, q->candidate_epoch);
    bool granted = may_grant(r, q);
    if (granted && r->voted_id == RAFT_NO_NODE) {
        raft_grant_vote(r, q->candidate_id);
        r->deadline = r->now + raft_election_timeout(r);
    }
    respond(r, m, RAFT_ERR_NONE, granted);
    if (r->role == RAFT_CANDIDATE && q->candidate_epoch == r->epoch)
        split_vote(r);
}

static int tally(const raft_t *r, int8_t want)
{
    int n = 0;
    for (int i = 0; i < r->cfg.n_voters; i++)
        n += r->vote_state[i] == want;
    return n;
}

static void round_lost(raft_t *r)
{
    r->role = RAFT_PROSPECTIVE;
    r->round_active = false;
    r->deadline = r->now + raft_backoff(r);
}

static void prevote_answer(raft_t *r, int idx, const raft_vote_resp_t *v)
{
    if (v->vote_granted && v->error_code == RAFT_ERR_NONE) {
        r->vote_state[idx] = 1;
        if (tally(r, 1) >= r->majority)
            raft_become_candidate(r);
        return;
    }
    r->vote_state[idx] = -1;
    bool resigned_leader = r->leader_resigned && v->leader_id == r->leader_id;
    if (v->leader_id >= 0 && v->leader_id != r->cfg.node_id && v->leader_epoch == r->epoch &&
        !resigned_leader) {
        raft_become_follower(r, r->epoch, v->leader_id, false);
        return;
    }
    if (r->cfg.n_voters - tally(r, -1) < r->majority)
        round_lost(r);
}

static void vote_answer(raft_t *r, int idx, const raft_vote_resp_t *v)
{
    if (v->leader_epoch != r->epoch)
        return;
    if (v->vote_granted && v->error_code == RAFT_ERR_NONE) {
        r->vote_state[idx] = 1;
        if (tally(r, 1) >= r->majority)
            raft_become_leader(r);
        return;
    }
    r->vote_state[idx] = -1;
    if (v->leader_id >= 0 && v->leader_id != r->cfg.node_id) {
        raft_become_follower(r, r->epoch, v->leader_id, false);
        return;
    }
    if (r->cfg.n_voters - tally(r, -1) < r->majority)
        round_lost(r);
}

void raft_recv_vote_resp(raft_t *r, const raft_msg_t *m)
{
    const raft_vote_resp_t *v = &m->u.vote_resp;
    if (raft_observe_epoch(r, v->leader_epoch, v->leader_id))
        return;
    int idx = raft_voter_index(r, m->from);
    if (idx < 0 || idx == r->self_voter || !r->round_active || m->corr != r->vote_corr[idx] ||
        r->vote_state[idx] != 0) {
        r->stats.msgs_ignored++;
        return;
    }
    if (r->role == RAFT_PROSPECTIVE)
        prevote_answer(r, idx, v);
    else if (r->role == RAFT_CANDIDATE)
        vote_answer(r, idx, v);
    else
        r->stats.msgs_ignored++;
}
