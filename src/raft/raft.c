/*
 * raft.c - construction, role transitions, timers and input dispatch of
 * the Raft core. The protocol summary and the host contract are in raft.h.
 *
 * Roles and the transitions this file owns:
 *
 *   UNATTACHED --election timeout--> PROSPECTIVE --majority pre-votes--> CANDIDATE
 *   FOLLOWER   --fetch timeout-----> PROSPECTIVE <--lost round/timeout-- CANDIDATE
 *   CANDIDATE  --majority votes----> LEADER --check-quorum--> PROSPECTIVE
 *   LEADER     --raft_resign-------> RESIGNED
 *   any        --newer epoch seen--> FOLLOWER (leader known) or UNATTACHED
 *
 * Observers (not in the voter set) are only ever UNATTACHED or FOLLOWER.
 */
#include "raft/internal.h"

#include "base/buf.h"
#include "base/util.h"
#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

static const raft_snapshot_id_t NO_SNAP = {.end_offset = -1, .epoch = -1};

const char *raft_role_name(raft_role_t role)
{
    static const char *const names[] = {"unattached", "follower", "prospective",
                                        "candidate", "leader", "resigned"};
    return (unsigned)role < ARRAY_LEN(names) ? names[role] : "?";
}

const char *raft_msg_type_name(raft_msg_type_t t)
{
    static const char *const names[] = {
        "vote_req", "vote_resp", "begin_epoch_req", "begin_epoch_resp", "end_epoch_req",
        "end_epoch_resp", "fetch_req", "fetch_resp", "fetch_snapshot_req", "fetch_snapshot_resp"};
    return (unsigned)t < ARRAY_LEN(names) ? names[t] : "?";
}

const char *raft_error_name(int16_t code)
{
    switch (code) {
#define RAFT_ERROR_CASE(name, c) case c: return #name;
        RAFT_ERRORS(RAFT_ERROR_CASE)
#undef RAFT_ERROR_CASE
    }
    return "UNKNOWN";
}

void raft_config_defaults(raft_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->election_timeout_ms = RAFT_ELECTION_TIMEOUT_MS_DEFAULT;
    cfg->election_backoff_max_ms = RAFT_ELECTION_BACKOFF_MAX_MS_DEFAULT;
    cfg->fetch_timeout_ms = RAFT_FETCH_TIMEOUT_MS_DEFAULT;
    cfg->request_timeout_ms = RAFT_REQUEST_TIMEOUT_MS_DEFAULT;
    cfg->retry_backoff_ms = RAFT_RETRY_BACKOFF_MS_DEFAULT;
    cfg->fetch_max_wait_ms = RAFT_FETCH_MAX_WAIT_MS_DEFAULT;
    cfg->fetch_max_bytes = RAFT_FETCH_MAX_BYTES_DEFAULT;
    cfg->snapshot_chunk_bytes = RAFT_SNAPSHOT_CHUNK_BYTES_DEFAULT;
}

/* ---- randomness and timeouts ------------------------------------------- */

uint64_t raft_rand(raft_t *r)
{
    /* splitmix64: a full-period generator over the seeded state */
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [T, 2T): spreads voters so one usually asks first. */
int64_t raft_election_timeout(raft_t *r)
{
    int64_t t = r->cfg.election_timeout_ms;
    return t + (int64_t)(raft_rand(r) % (uint64_t)t);
}

/* After a lost round: uniform in [1, min(max, retry * 2^attempts)]. */
int64_t raft_backoff(raft_t *r)
{
    int shift = MIN(r->backoff_attempts, 20);
    int64_t cap = MIN((int64_t)r->cfg.election_backoff_max_ms,
                      (int64_t)r->cfg.retry_backoff_ms << shift);
    r->backoff_attempts++;
    return 1 + (int64_t)(raft_rand(r) % (uint64_t)MAX(cap, 1));
}

int raft_voter_index(const raft_t *r, int32_t id)
{
    for (int i = 0; i < r->cfg.n_voters; i++)
        if (r->cfg.voters[i] == id)
            return i;
    return -1;
}

bool raft_cluster_ok(const raft_t *r, const raft_msg_t *m)
{
    return !r->cfg.cluster_id || !m->cluster_id || strcmp(r->cfg.cluster_id, m->cluster_id) == 0;
}

bool raft_leader_alive(const raft_t *r)
{
    if (r->role == RAFT_LEADER)
        return true;
    if (r->role == RAFT_RESIGNED || r->leader_resigned || r->last_leader_ms == NEVER_MS)
        return false;
    return r->now - r->last_leader_ms < r->cfg.fetch_timeout_ms;
}

/* ---- quorum state ------------------------------------------------------- */

static void set_state(raft_t *r, int32_t epoch, int32_t voted, int32_t leader)
{
    CK_ASSERT(epoch >= r->epoch);
    if (epoch == r->epoch && voted == r->voted_id && leader == r->leader_id)
        return;
    if (epoch == r->epoch) /* one vote per epoch, never changed */
        CK_ASSERT(r->voted_id == RAFT_NO_NODE || r->voted_id == voted);
    if (epoch != r->epoch)
        r->leader_resigned = false;
    if (epoch != r->epoch || leader != r->leader_id)
        r->last_leader_ms = NEVER_MS; /* contact with a former leader proves nothing */
    r->epoch = epoch;
    r->voted_id = voted;
    r->leader_id = leader;
    r->state_gen++;
    raft_persist_state(r);
}

void raft_grant_vote(raft_t *r, int32_t candidate)
{
    CK_ASSERT(r->voted_id == RAFT_NO_NODE && r->leader_id == RAFT_NO_NODE);
    set_state(r, r->epoch, candidate, RAFT_NO_NODE);
}

void raft_persist_state(raft_t *r) { raft_intent(r, RAFT_OP_PERSIST_STATE, 0, 0, NO_SNAP); }

void raft_send(raft_t *r, raft_msg_t *m)
{
    m->from = r->cfg.node_id;
    if (m->type == RAFT_MSG_VOTE_REQ || m->type == RAFT_MSG_BEGIN_EPOCH_REQ ||
        m->type == RAFT_MSG_END_EPOCH_REQ || m->type == RAFT_MSG_FETCH_REQ ||
        m->type == RAFT_MSG_FETCH_SNAPSHOT_REQ)
        m->cluster_id = r->cfg.cluster_id;
    raft_push_msg(r, m);
}

void raft_set_hw(raft_t *r, int64_t hw)
{
    CK_ASSERT(hw <= raft_log_end_offset(&r->log));
    if (hw > r->hw)
        r->hw = hw;
}

/* ---- transitions -------------------------------------------------------- */

static void leave_role(raft_t *r)
{
    if (r->role == RAFT_LEADER || r->role == RAFT_RESIGNED)
        raft_leader_release_fetches(r); /* answered, not left to time out */
    r->round_active = false;
    r->n_snap_reqs = 0;
    for (int i = 0; i < RAFT_PEERS_MAX; i++)
        r->peers[i].parked = false;
}

void raft_become_unattached(raft_t *r, int32_t epoch)
{
    CK_ASSERT(epoch >= r->epoch);
    bool was_leader = r->role == RAFT_LEADER || r->role == RAFT_RESIGNED;
    if (epoch > r->epoch)
        set_state(r, epoch, RAFT_NO_NODE, RAFT_NO_NODE);
    else if (was_leader)
        r->leader_id = RAFT_NO_NODE; /* never persisted as self */
    else
        set_state(r, epoch, r->voted_id, RAFT_NO_NODE);
    leave_role(r);
    raft_follower_reset(r);
    r->role = RAFT_UNATTACHED;
    r->deadline = r->now + raft_election_timeout(r);
}

/* contact: the leader itself just answered us (rather than a third party
 * naming it), so it counts as alive for pre-vote refusals. */
void raft_become_follower(raft_t *r, int32_t epoch, int32_t leader, bool contact)
{
    CK_ASSERT(leader != r->cfg.node_id && leader >= 0 && epoch >= r->epoch);
    if (r->role == RAFT_LEADER || r->role == RAFT_RESIGNED)
        CK_ASSERT(epoch > r->epoch);
    bool same = epoch == r->epoch && leader == r->leader_id;
    set_state(r, epoch, epoch == r->epoch ? r->voted_id : RAFT_NO_NODE, leader);
    leave_role(r);
    if (!same)
        raft_follower_reset(r);
    r->role = RAFT_FOLLOWER;
    r->backoff_attempts = 0;
    if (contact && !r->leader_resigned) {
        r->last_leader_ms = r->now;
        r->deadline = r->now + r->cfg.fetch_timeout_ms;
    } else {
        /* named by someone else: probe it, but give up as fast as an
         * unattached voter would */
        r->deadline = r->now + raft_election_timeout(r);
    }
}

void raft_become_prospective(raft_t *r)
{
    CK_ASSERT(r->self_voter >= 0);
    if (r->role == RAFT_LEADER || r->role == RAFT_RESIGNED)
        r->leader_id = RAFT_NO_NODE;
    leave_role(r);
    raft_start_prevote(r);
}

void raft_become_candidate(raft_t *r)
{
    CK_ASSERT(r->self_voter >= 0);
    CK_ASSERT(r->epoch < INT32_MAX);
    set_state(r, r->epoch + 1, r->cfg.node_id, RAFT_NO_NODE);
    leave_role(r);
    raft_follower_reset(r);
    r->role = RAFT_CANDIDATE;
    r->stats.elections++;
    r->round_active = true;
    memset(r->vote_state, 0, sizeof(r->vote_state));
    r->vote_state[r->self_voter] = 1;
    r->deadline = r->now + raft_election_timeout(r);
    if (r->majority == 1) {
        raft_become_leader(r);
        return;
    }
    for (int i = 0; i < r->cfg.n_voters; i++) {
        if (i == r->self_voter)
            continue;
        raft_msg_t m = {.type = RAFT_MSG_VOTE_REQ, .to = r->cfg.voters[i], .corr = r->next_corr++};
        m.u.vote_req = (raft_vote_req_t){.candidate_epoch = r->epoch,
                                         .candidate_id = r->cfg.node_id,
                                         .last_offset_epoch = raft_log_last_epoch(&r->log),
                                         .last_offset = raft_log_end_offset(&r->log),
                                         .pre_vote = false};
        r->vote_corr[i] = m.corr;
        raft_send(r, &m);
    }
}

/* The leader-change entry's payload is Kafka's LeaderChangeMessage v0,
 * the value of a LEADER_CHANGE control record: the new leader, the voter
 * set, and the voters that granted it their vote. */
static void encode_leader_change(const raft_t *r, buf_t *out)
{
    LeaderChangeMessage_Voter voters[RAFT_VOTERS_MAX], granted[RAFT_VOTERS_MAX];
    int n_granted = 0;
    for (int i = 0; i < r->cfg.n_voters; i++) {
        voters[i].VoterId = r->cfg.voters[i];
        if (r->vote_state[i] == 1)
            granted[n_granted++].VoterId = r->cfg.voters[i];
    }
    LeaderChangeMessage lc = {
        .Version = 0,
        .LeaderId = r->cfg.node_id,
        .Voters = {.count = r->cfg.n_voters, .items = voters},
        .GrantingVoters = {.count = n_granted, .items = granted},
    };
    proto_encode(&LeaderChangeMessage_desc, 0, true, &lc, out);
}

static void append_local(raft_t *r, uint8_t kind, const void *data, uint32_t len)
{
    int64_t off = raft_log_end_offset(&r->log);
    raft_log_append(&r->log, r->epoch, kind, data, len);
    raft_intent(r, RAFT_OP_APPEND, off, off + 1, NO_SNAP);
}

void raft_become_leader(raft_t *r)
{
    CK_ASSERT(r->role == RAFT_CANDIDATE && r->voted_id == r->cfg.node_id);
    r->role = RAFT_LEADER;
    r->leader_id = r->cfg.node_id; /* not persisted: a restarted leader resigns */
    r->round_active = false;
    r->backoff_attempts = 0;
    r->leader_resigned = false;
    raft_leader_reset_peers(r);
    r->epoch_start_offset = raft_log_end_offset(&r->log);
    buf_t lc;
    buf_init(&lc);
    encode_leader_change(r, &lc);
    append_local(r, RAFT_ENTRY_LEADER_CHANGE, lc.data, (uint32_t)lc.len);
    buf_free(&lc);
    for (int i = 0; i < r->cfg.n_voters; i++)
        if (i != r->self_voter)
            raft_send_begin_epoch(r, &r->peers[i]);
    raft_leader_update_hw(r);
}

bool raft_observe_epoch(raft_t *r, int32_t epoch, int32_t leader)
{
    if (epoch <= r->epoch)
        return false;
    if (leader >= 0 && leader != r->cfg.node_id)
        raft_become_follower(r, epoch, leader, false);
    else
        raft_become_unattached(r, epoch);
    return true;
}

/* ---- construction -------------------------------------------------------- */

static void check_config(const raft_config_t *c)
{
    CK_ASSERT(c->n_voters >= 1 && c->n_voters <= RAFT_VOTERS_MAX);
    for (int i = 0; i < c->n_voters; i++) {
        CK_ASSERT(c->voters[i] >= 0);
        for (int j = 0; j < i; j++)
            CK_ASSERT(c->voters[i] != c->voters[j]);
    }
    CK_ASSERT(c->node_id >= 0);
    CK_ASSERT(c->election_timeout_ms > 0 && c->election_backoff_max_ms > 0);
    CK_ASSERT(c->fetch_timeout_ms > 0 && c->request_timeout_ms > 0);
    CK_ASSERT(c->retry_backoff_ms > 0 && c->fetch_max_wait_ms >= 0);
    CK_ASSERT(c->fetch_max_bytes > 0 && c->snapshot_chunk_bytes > 0);
    CK_ASSERT(c->snapshot_min_entries >= 0 && c->snapshot_min_bytes >= 0);
    CK_ASSERT(c->snapshot_interval_ms >= 0);
}

static void load_disk(raft_t *r, const raft_disk_state_t *d)
{
    CK_ASSERT(d->qstate.epoch >= 0);
    r->epoch = d->qstate.epoch;
    r->voted_id = d->qstate.voted_id;
    r->leader_id = d->qstate.leader_id;
    raft_snapshot_id_t snap = d->snapshot_id;
    raft_log_init(&r->log, snap);
    if (snap.end_offset > 0) {
        CK_ASSERT(d->snapshot_len <= RAFT_SNAPSHOT_BYTES_MAX);
        r->snap = xmalloc(MAX(d->snapshot_len, 1));
        memcpy(r->snap, d->snapshot, d->snapshot_len);
        r->snap_len = d->snapshot_len;
    }
    for (size_t i = 0; i < d->n_entries; i++) {
        const raft_entry_t *e = &d->entries[i];
        CK_ASSERT(e->offset == raft_log_end_offset(&r->log));
        raft_log_append(&r->log, e->epoch, e->kind, e->data, e->len);
    }
    CK_ASSERT(raft_log_last_epoch(&r->log) <= r->epoch);
    r->hw = r->applied = r->log.start;
    r->durable_end = raft_log_end_offset(&r->log);
}

raft_t *raft_new(const raft_config_t *cfg, const raft_disk_state_t *disk, int64_t now_ms)
{
    check_config(cfg);
    raft_t *r = xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->self_voter = raft_voter_index(r, cfg->node_id);
    r->majority = cfg->n_voters / 2 + 1;
    r->rng = cfg->random_seed ^ ((uint64_t)(uint32_t)cfg->node_id << 32);
    r->now = now_ms;
    r->next_seq = 1;
    r->next_corr = 1;
    r->last_leader_ms = NEVER_MS;
    r->fetch_target = RAFT_NO_NODE;
    r->snap_taken_ms = now_ms;
    load_disk(r, disk);
    r->rep_epoch = -2; /* the first ready reports the role */
    if (r->leader_id >= 0 && r->leader_id != cfg->node_id) {
        raft_become_follower(r, r->epoch, r->leader_id, false);
    } else {
        r->leader_id = RAFT_NO_NODE; /* a restarted leader has resigned */
        r->role = RAFT_UNATTACHED;
        r->deadline = now_ms + raft_election_timeout(r);
        if (r->self_voter >= 0 && cfg->n_voters == 1)
            r->deadline = now_ms; /* alone: no one to wait for */
    }
    raft_check_invariants(r);
    return r;
}

void raft_free(raft_t *r)
{
    if (!r)
        return;
    raft_log_free(&r->log);
    free(r->snap);
    free(r->sf_buf);
    free(r->snap_reqs);
    free(r->intents);
    free(r->pend);
    free(r->outbox);
    free(r->rd_ops);
    free(r->rd_msgs);
    free(r);
}

/* ---- inputs -------------------------------------------------------------- */

static void advance_time(raft_t *r, int64_t now_ms)
{
    CK_ASSERT(now_ms >= r->now); /* the host's clock must not go backwards */
    r->now = now_ms;
}

static void follower_tick(raft_t *r)
{
    if (r->fetch_inflight && r->now >= r->fetch_expiry)
        r->fetch_inflight = false; /* lost: resend at the next ready */
    if (r->role == RAFT_FOLLOWER && r->now >= r->deadline) {
        if (r->self_voter >= 0)
            raft_become_prospective(r);
        else
            raft_become_unattached(r, r->epoch);
    }
}

void raft_tick(raft_t *r, int64_t now_ms)
{
    advance_time(r, now_ms);
    switch (r->role) {
    case RAFT_LEADER:
    case RAFT_RESIGNED:
        raft_leader_tick(r);
        break;
    case RAFT_FOLLOWER:
        follower_tick(r);
        break;
    case RAFT_UNATTACHED:
        follower_tick(r);
        if (r->self_voter >= 0 && r->now >= r->deadline)
            raft_become_prospective(r);
        break;
    case RAFT_PROSPECTIVE:
        follower_tick(r);
        if (r->now >= r->deadline)
            raft_start_prevote(r);
        break;
    case RAFT_CANDIDATE:
        if (r->now >= r->deadline) { /* round lost: back off, then pre-vote again */
            r->role = RAFT_PROSPECTIVE;
            r->round_active = false;
            r->deadline = r->now + raft_backoff(r);
        }
        break;
    }
    raft_check_invariants(r);
}

void raft_recv(raft_t *r, const raft_msg_t *m, int64_t now_ms)
{
    advance_time(r, now_ms);
    if (m->to != r->cfg.node_id || m->from == r->cfg.node_id) {
        r->stats.msgs_ignored++;
        return;
    }
    switch (m->type) {
    case RAFT_MSG_VOTE_REQ: raft_recv_vote_req(r, m); break;
    case RAFT_MSG_VOTE_RESP: raft_recv_vote_resp(r, m); break;
    case RAFT_MSG_BEGIN_EPOCH_REQ: raft_recv_begin_epoch_req(r, m); break;
    case RAFT_MSG_END_EPOCH_REQ: raft_recv_end_epoch_req(r, m); break;
    case RAFT_MSG_BEGIN_EPOCH_RESP:
    case RAFT_MSG_END_EPOCH_RESP: raft_recv_epoch_resp(r, m); break;
    case RAFT_MSG_FETCH_REQ: raft_recv_fetch_req(r, m); break;
    case RAFT_MSG_FETCH_RESP: raft_recv_fetch_resp(r, m); break;
    case RAFT_MSG_FETCH_SNAPSHOT_REQ: raft_recv_fetch_snapshot_req(r, m); break;
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: raft_recv_fetch_snapshot_resp(r, m); break;
    default: r->stats.msgs_ignored++; break;
    }
    raft_check_invariants(r);
}

raft_status_t raft_propose(raft_t *r, const void *data, size_t len, int64_t now_ms,
                           int64_t *offset_out)
{
    advance_time(r, now_ms);
    if (r->role != RAFT_LEADER)
        return RAFT_NOT_LEADER;
    if (len > RAFT_ENTRY_BYTES_MAX)
        return RAFT_TOO_LARGE;
    if (offset_out)
        *offset_out = raft_log_end_offset(&r->log);
    append_local(r, RAFT_ENTRY_DATA, data, (uint32_t)len);
    return RAFT_OK;
}

raft_status_t raft_snapshot_taken(raft_t *r, int64_t end_offset, const void *data, size_t len,
                                  int64_t now_ms)
{
    advance_time(r, now_ms);
    r->snapshot_asked = false;
    if (end_offset <= r->log.start || end_offset > r->applied)
        return RAFT_INVALID;
    if (len > RAFT_SNAPSHOT_BYTES_MAX)
        return RAFT_TOO_LARGE;
    if (end_offset > r->durable_end)
        return RAFT_RETRY_LATER;
    raft_snapshot_id_t id = {.end_offset = end_offset,
                             .epoch = raft_log_get(&r->log, end_offset - 1)->epoch};
    free(r->snap);
    r->snap = xmalloc(MAX(len, 1));
    memcpy(r->snap, data, len);
    r->snap_len = len;
    raft_log_drop_prefix(&r->log, end_offset);
    raft_intent(r, RAFT_OP_SNAPSHOT_SAVE, 0, 0, id);
    r->snap_bytes = 0;
    r->snap_taken_ms = r->now;
    r->stats.snapshots_taken++;
    raft_check_invariants(r);
    return RAFT_OK;
}

void raft_snapshot_skipped(raft_t *r, int64_t now_ms)
{
    advance_time(r, now_ms);
    r->snapshot_asked = false;
    r->snap_bytes = 0;
    r->snap_taken_ms = r->now;
}

void raft_resign(raft_t *r, int64_t now_ms)
{
    advance_time(r, now_ms);
    if (r->role != RAFT_LEADER)
        return;
    r->role = RAFT_RESIGNED;
    /* should the host never finish shutting down, stand again later */
    r->deadline = r->now + raft_election_timeout(r);
    raft_send_end_epoch(r);
}

bool raft_resign_done(const raft_t *r) { return r->role != RAFT_LEADER && r->role != RAFT_RESIGNED; }

int64_t raft_next_deadline(const raft_t *r)
{
    int64_t d = FOREVER_MS;
    switch (r->role) {
    case RAFT_LEADER:
    case RAFT_RESIGNED:
        return raft_leader_deadline(r);
    case RAFT_UNATTACHED:
        if (r->self_voter >= 0)
            d = r->deadline;
        break;
    default:
        d = r->deadline;
        break;
    }
    if (r->fetch_inflight)
        d = MIN(d, r->fetch_expiry);
    else if (r->fetch_not_before > r->now)
        d = MIN(d, r->fetch_not_before);
    return d;
}

/* ---- introspection -------------------------------------------------------- */

raft_role_t raft_role(const raft_t *r) { return r->role; }
int32_t raft_epoch(const raft_t *r) { return r->epoch; }
int32_t raft_leader_id(const raft_t *r) { return r->leader_id; }
int32_t raft_voted_id(const raft_t *r) { return r->voted_id; }
int64_t raft_high_watermark(const raft_t *r) { return r->hw; }
int64_t raft_log_start(const raft_t *r) { return r->log.start; }
int64_t raft_log_end(const raft_t *r) { return raft_log_end_offset(&r->log); }
int32_t raft_last_epoch(const raft_t *r) { return raft_log_last_epoch(&r->log); }
int64_t raft_epoch_start(const raft_t *r) { return r->role == RAFT_LEADER ? r->epoch_start_offset : -1; }
bool raft_is_voter(const raft_t *r) { return r->self_voter >= 0; }
const raft_stats_t *raft_stats(const raft_t *r) { return &r->stats; }
const raft_entry_t *raft_entry_at(const raft_t *r, int64_t offset) { return raft_log_get(&r->log, offset); }

raft_snapshot_id_t raft_snapshot_id(const raft_t *r)
{
    return (raft_snapshot_id_t){.end_offset = r->log.start, .epoch = r->log.start_epoch};
}

void raft_check_invariants(const raft_t *r)
{
    int64_t end = raft_log_end_offset(&r->log);
    CK_ASSERT(r->log.start <= r->hw && r->hw <= end);                   /* I1 */
    CK_ASSERT(r->applied <= r->hw);
    CK_ASSERT(raft_log_last_epoch(&r->log) <= r->epoch);                  /* I2 */
    CK_ASSERT(r->durable_end <= end);                                     /* I4 */
    if (r->role == RAFT_LEADER || r->role == RAFT_RESIGNED) {             /* I3 */
        CK_ASSERT(raft_log_last_epoch(&r->log) == r->epoch);
        CK_ASSERT(raft_log_get(&r->log, r->epoch_start_offset) == NULL ||
                  raft_log_get(&r->log, r->epoch_start_offset)->kind == RAFT_ENTRY_LEADER_CHANGE);
        CK_ASSERT(r->leader_id == r->cfg.node_id);
    }
    if (r->role == RAFT_CANDIDATE || r->role == RAFT_LEADER)              /* I5 */
        CK_ASSERT(r->voted_id == r->cfg.node_id);
    if (r->role == RAFT_FOLLOWER)
        CK_ASSERT(r->leader_id >= 0 && r->leader_id != r->cfg.node_id);
}
