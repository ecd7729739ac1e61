/*
 * test_raft.c - focused behaviours of the Raft core (src/raft/raft.h):
 * vote rules, pre-vote, persistence before votes, divergence truncation,
 * the high-watermark rule, check-quorum, snapshots, graceful handover.
 * Cores are driven directly; `cluster_t` wires a few of them together with
 * instant, lossless delivery and instant fsync.
 */
#include "base/arena.h"
#include "base/buf.h"
#include "base/util.h"
#include "proto/proto.h"
#include "raft/raft.h"
#include "raft/wire.h"
#include "test.h"

#define MAX_NODES 5
#define T0 1000

/* ---- helpers ------------------------------------------------------------ */

static raft_config_t config(int32_t self, int n_voters)
{
    raft_config_t c;
    raft_config_defaults(&c);
    c.node_id = self;
    c.n_voters = n_voters;
    for (int i = 0; i < n_voters; i++)
        c.voters[i] = i + 1;
    c.random_seed = 12345u + (uint64_t)self;
    return c;
}

static raft_disk_state_t fresh_disk(void)
{
    return (raft_disk_state_t){.qstate = {0, RAFT_NO_NODE, RAFT_NO_NODE},
                               .snapshot_id = {0, -1}};
}

/* A durable log whose entry i has epoch epochs[i]. */
static raft_entry_t g_ents[64];
static raft_disk_state_t disk_with_log(int32_t epoch, int32_t leader, const int32_t *epochs, int n)
{
    raft_disk_state_t d = fresh_disk();
    d.qstate = (raft_qstate_t){epoch, RAFT_NO_NODE, leader};
    for (int i = 0; i < n; i++)
        g_ents[i] = (raft_entry_t){.offset = i, .epoch = epochs[i], .kind = RAFT_ENTRY_DATA,
                                   .len = 1, .data = (const uint8_t *)"x"};
    d.entries = g_ents;
    d.n_entries = (size_t)n;
    return d;
}

static const raft_msg_t *find_msg(const raft_ready_t *rd, raft_msg_type_t type, int32_t to)
{
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (rd->msgs[i].type == type && (to < 0 || rd->msgs[i].to == to))
            return &rd->msgs[i];
    return NULL;
}

static const raft_op_t *find_op(const raft_ready_t *rd, raft_op_kind_t kind)
{
    for (size_t i = 0; i < rd->n_ops; i++)
        if (rd->ops[i].kind == kind)
            return &rd->ops[i];
    return NULL;
}

static void ack(raft_t *r, const raft_ready_t *rd, int64_t now)
{
    if (rd->n_ops)
        raft_io_done(r, rd->ops[rd->n_ops - 1].seq, now);
}

static raft_msg_t vote_req(int32_t from, int32_t to, int32_t epoch, int32_t last_epoch,
                           int64_t last_offset, bool pre)
{
    raft_msg_t m = {.type = RAFT_MSG_VOTE_REQ, .from = from, .to = to, .corr = 77};
    m.u.vote_req = (raft_vote_req_t){.candidate_epoch = epoch, .candidate_id = from,
                                     .last_offset_epoch = last_epoch, .last_offset = last_offset,
                                     .pre_vote = pre};
    return m;
}

/* A fresh voter 1 of 3 times out, gets node 2's pre-vote and becomes a
 * candidate with its own vote durable; returns the time it did. */
static int64_t to_candidate(raft_t *r)
{
    (void)raft_ready(r);
    int64_t now = raft_next_deadline(r);
    raft_tick(r, now);
    const raft_msg_t *pre = find_msg(raft_ready(r), RAFT_MSG_VOTE_REQ, 2);
    CK_ASSERT(pre != NULL);
    raft_msg_t yes = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .corr = pre->corr};
    yes.u.vote_resp = (raft_vote_resp_t){.leader_id = -1, .leader_epoch = raft_epoch(r), .vote_granted = true};
    raft_recv(r, &yes, now);
    ack(r, raft_ready(r), now);
    return now;
}

/* Deliver a vote request; return the answer once any state write is acked. */
static raft_vote_resp_t ask_vote(raft_t *r, const raft_msg_t *req, int64_t now)
{
    raft_recv(r, req, now);
    const raft_ready_t *rd = raft_ready(r);
    const raft_msg_t *m = find_msg(rd, RAFT_MSG_VOTE_RESP, req->from);
    if (!m) {
        ack(r, rd, now);
        rd = raft_ready(r);
        m = find_msg(rd, RAFT_MSG_VOTE_RESP, req->from);
    }
    raft_vote_resp_t none = {.error_code = -1};
    return m ? m->u.vote_resp : none;
}

/* A few cores with instant delivery and fsync. */
typedef struct cluster {
    raft_t *r[MAX_NODES + 1];      /* by node id */
    bool cut[MAX_NODES + 1];       /* isolated: sends and receives nothing */
    raft_snapshot_id_t restored[MAX_NODES + 1]; /* last restore_snapshot seen */
    size_t restored_len[MAX_NODES + 1];
    int n;
    int64_t now;
} cluster_t;

static void cluster_init(cluster_t *c, int n)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->now = T0;
    for (int id = 1; id <= n; id++) {
        raft_config_t cfg = config(id, n);
        raft_disk_state_t d = fresh_disk();
        c->r[id] = raft_new(&cfg, &d, c->now);
    }
}

static void cluster_free(cluster_t *c)
{
    for (int id = 1; id <= c->n; id++)
        raft_free(c->r[id]);
}

/* Exchange messages until nothing moves. */
static void pump(cluster_t *c)
{
    for (int round = 0; round < 200; round++) {
        bool moved = false;
        for (int id = 1; id <= c->n; id++) {
            if (!c->r[id])
                continue;
            const raft_ready_t *rd = raft_ready(c->r[id]);
            if (rd->restore_snapshot) {
                c->restored[id] = rd->snapshot_id;
                c->restored_len[id] = rd->snapshot_len;
            }
            for (size_t k = 0; k < rd->n_msgs; k++) {
                const raft_msg_t *m = &rd->msgs[k];
                moved = true;
                if (!c->cut[id] && !c->cut[m->to] && c->r[m->to])
                    raft_recv(c->r[m->to], m, c->now);
            }
            if (rd->n_ops) {
                moved = true;
                ack(c->r[id], rd, c->now);
            }
        }
        if (!moved)
            return;
    }
}

/* Advance time to t, ticking every core at its deadlines on the way. */
static void run_to(cluster_t *c, int64_t t)
{
    for (;;) {
        int64_t next = t;
        for (int id = 1; id <= c->n; id++)
            if (c->r[id] && raft_next_deadline(c->r[id]) < next)
                next = raft_next_deadline(c->r[id]);
        if (next < c->now)
            next = c->now;
        c->now = next;
        for (int id = 1; id <= c->n; id++)
            if (c->r[id] && raft_next_deadline(c->r[id]) <= c->now)
                raft_tick(c->r[id], c->now);
        pump(c);
        if (c->now >= t)
            return;
        c->now++;
    }
}

static int leader_of(const cluster_t *c)
{
    for (int id = 1; id <= c->n; id++)
        if (c->r[id] && raft_role(c->r[id]) == RAFT_LEADER)
            return id;
    return -1;
}

static int elect(cluster_t *c)
{
    run_to(c, c->now + 3 * RAFT_ELECTION_TIMEOUT_MS_DEFAULT);
    return leader_of(c);
}

/* ---- votes ----------------------------------------------------------------- */

/* A vote is granted only once the new epoch and the vote are durable. */
TEST(vote_waits_for_persisted_state)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    (void)raft_ready(r);
    raft_msg_t req = vote_req(2, 1, 1, -1, 0, false);
    raft_recv(r, &req, T0);
    const raft_ready_t *rd = raft_ready(r);
    const raft_op_t *op = find_op(rd, RAFT_OP_PERSIST_STATE);
    REQUIRE(op != NULL);
    CHECK_EQ_INT(op->state.epoch, 1);
    CHECK_EQ_INT(op->state.voted_id, 2);
    CHECK(find_msg(rd, RAFT_MSG_VOTE_RESP, 2) == NULL); /* held back */
    uint64_t seq = op->seq;
    rd = raft_ready(r);
    CHECK(find_msg(rd, RAFT_MSG_VOTE_RESP, 2) == NULL); /* still not durable */
    raft_io_done(r, seq, T0 + 5);
    rd = raft_ready(r);
    const raft_msg_t *m = find_msg(rd, RAFT_MSG_VOTE_RESP, 2);
    REQUIRE(m != NULL);
    CHECK(m->u.vote_resp.vote_granted);
    CHECK_EQ_INT(m->u.vote_resp.leader_epoch, 1);
    CHECK_EQ_INT(m->corr, 77);
    raft_free(r);
}

/* Up-to-date rule: last epoch first, then log end offset. */
TEST(vote_requires_up_to_date_log)
{
    const int32_t epochs[] = {1, 1, 2, 2, 2};
    struct { int32_t last_epoch; int64_t end; bool granted; } cases[] = {
        {1, 10, false}, /* older last epoch loses, however long */
        {2, 4, false},  /* same epoch, shorter */
        {2, 5, true},   /* same epoch, same length */
        {2, 6, true},
        {3, 1, true},   /* newer last epoch wins, however short */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        raft_config_t cfg = config(1, 3);
        raft_disk_state_t d = disk_with_log(2, RAFT_NO_NODE, epochs, 5);
        raft_t *r = raft_new(&cfg, &d, T0);
        raft_msg_t req = vote_req(3, 1, 3, cases[i].last_epoch, cases[i].end, false);
        raft_vote_resp_t v = ask_vote(r, &req, T0);
        CHECK_EQ_INT(v.error_code, RAFT_ERR_NONE);
        CHECK_EQ_INT(v.vote_granted, cases[i].granted);
        CHECK_EQ_INT(raft_epoch(r), 3); /* the epoch moves on either way */
        raft_free(r);
    }
}

/* One vote per epoch: a second candidate is refused, the first re-granted. */
TEST(one_vote_per_epoch)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    raft_msg_t a = vote_req(2, 1, 1, -1, 0, false), b = vote_req(3, 1, 1, -1, 0, false);
    CHECK(ask_vote(r, &a, T0).vote_granted);
    CHECK(!ask_vote(r, &b, T0).vote_granted);
    CHECK(ask_vote(r, &a, T0).vote_granted);
    CHECK_EQ_INT(raft_voted_id(r), 2);
    raft_free(r);
}

/* A vote in the epoch the voter is already in is also written first. */
TEST(vote_in_current_epoch_is_persisted)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    d.qstate.epoch = 3;
    raft_t *r = raft_new(&cfg, &d, T0);
    (void)raft_ready(r);
    raft_msg_t req = vote_req(2, 1, 3, -1, 0, false);
    raft_recv(r, &req, T0);
    const raft_ready_t *rd = raft_ready(r);
    const raft_op_t *op = find_op(rd, RAFT_OP_PERSIST_STATE);
    REQUIRE(op != NULL);
    CHECK_EQ_INT(op->state.epoch, 3);
    CHECK_EQ_INT(op->state.voted_id, 2);
    CHECK(find_msg(rd, RAFT_MSG_VOTE_RESP, 2) == NULL);
    ack(r, rd, T0);
    rd = raft_ready(r);
    const raft_msg_t *m = find_msg(rd, RAFT_MSG_VOTE_RESP, 2);
    REQUIRE(m != NULL);
    CHECK(m->u.vote_resp.vote_granted);
    raft_free(r);
}

/* A vote for an older epoch is refused and names the current epoch. */
TEST(vote_refused_for_old_epoch)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    d.qstate.epoch = 5;
    raft_t *r = raft_new(&cfg, &d, T0);
    raft_msg_t req = vote_req(2, 1, 4, 10, 100, false);
    raft_vote_resp_t v = ask_vote(r, &req, T0);
    CHECK(!v.vote_granted);
    CHECK_EQ_INT(v.leader_epoch, 5);
    raft_free(r);
}

/* A restart keeps the vote: no second vote in the same epoch after a crash. */
TEST(vote_survives_restart)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    d.qstate = (raft_qstate_t){.epoch = 4, .voted_id = 2, .leader_id = RAFT_NO_NODE};
    raft_t *r = raft_new(&cfg, &d, T0);
    raft_msg_t req = vote_req(3, 1, 4, 9, 9, false);
    CHECK(!ask_vote(r, &req, T0).vote_granted);
    raft_free(r);
}

/* ---- pre-vote -------------------------------------------------------------- */

/* Pre-votes are refused while the leader is alive, and change nothing. */
TEST(prevote_refused_while_leader_known)
{
    raft_config_t cfg = config(2, 3);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    (void)raft_ready(r);
    raft_msg_t begin = {.type = RAFT_MSG_BEGIN_EPOCH_REQ, .from = 1, .to = 2, .corr = 1};
    begin.u.begin_req = (raft_begin_epoch_req_t){.leader_id = 1, .leader_epoch = 1};
    raft_recv(r, &begin, T0);
    ack(r, raft_ready(r), T0);
    (void)raft_ready(r);
    CHECK_EQ_INT(raft_role(r), RAFT_FOLLOWER);
    raft_msg_t pre = vote_req(3, 2, 2, 1, 1000, true);
    raft_recv(r, &pre, T0 + 100);
    const raft_ready_t *rd = raft_ready(r);
    const raft_msg_t *m = find_msg(rd, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(m != NULL);
    CHECK(!m->u.vote_resp.vote_granted);
    CHECK_EQ_INT(m->u.vote_resp.leader_id, 1); /* tells it where the leader is */
    CHECK_EQ_INT(rd->n_ops, 0);
    CHECK_EQ_INT(raft_epoch(r), 1);
    /* once the fetch timeout has passed without news, the same pre-vote wins */
    raft_recv(r, &pre, T0 + RAFT_FETCH_TIMEOUT_MS_DEFAULT + 1);
    rd = raft_ready(r);
    m = find_msg(rd, RAFT_MSG_VOTE_RESP, 3);
    REQUIRE(m != NULL);
    CHECK(m->u.vote_resp.vote_granted);
    raft_free(r);
}

/* A granted pre-vote writes nothing and keeps epoch and vote. */
TEST(prevote_grant_changes_nothing)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    (void)raft_ready(r);
    raft_msg_t pre = vote_req(2, 1, 1, -1, 0, true);
    raft_recv(r, &pre, T0);
    const raft_ready_t *rd = raft_ready(r);
    const raft_msg_t *m = find_msg(rd, RAFT_MSG_VOTE_RESP, 2);
    REQUIRE(m != NULL);
    CHECK(m->u.vote_resp.vote_granted);
    CHECK_EQ_INT(rd->n_ops, 0);
    CHECK_EQ_INT(raft_epoch(r), 0);
    CHECK_EQ_INT(raft_voted_id(r), RAFT_NO_NODE);
    raft_free(r);
}

/* An election starts with pre-votes; the epoch moves only after a majority. */
TEST(election_prevote_then_vote)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    (void)raft_ready(r);
    raft_tick(r, raft_next_deadline(r));
    const raft_ready_t *rd = raft_ready(r);
    CHECK_EQ_INT(raft_role(r), RAFT_PROSPECTIVE);
    CHECK_EQ_INT(raft_epoch(r), 0);
    CHECK_EQ_INT(rd->n_ops, 0);
    const raft_msg_t *pre = find_msg(rd, RAFT_MSG_VOTE_REQ, 2);
    REQUIRE(pre != NULL);
    CHECK(pre->u.vote_req.pre_vote);
    CHECK_EQ_INT(pre->u.vote_req.candidate_epoch, 1);
    raft_msg_t yes = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .corr = pre->corr};
    yes.u.vote_resp = (raft_vote_resp_t){.leader_id = -1, .leader_epoch = 0, .vote_granted = true};
    int64_t now = raft_next_deadline(r) - 1;
    raft_recv(r, &yes, now);
    CHECK_EQ_INT(raft_role(r), RAFT_CANDIDATE);
    CHECK_EQ_INT(raft_epoch(r), 1);
    rd = raft_ready(r);
    CHECK(find_msg(rd, RAFT_MSG_VOTE_REQ, -1) == NULL); /* own vote not yet durable */
    ack(r, rd, now);
    rd = raft_ready(r);
    const raft_msg_t *v = find_msg(rd, RAFT_MSG_VOTE_REQ, 3);
    REQUIRE(v != NULL);
    CHECK(!v->u.vote_req.pre_vote);
    CHECK_EQ_INT(v->u.vote_req.candidate_epoch, 1);
    raft_free(r);
}

/* A candidate asked for its vote by a rival candidate of the same epoch (a
 * split vote) refuses, gives the round up at once and, after a short random
 * backoff rather than a whole election timeout, asks for pre-votes again. */
TEST(split_vote_retried_after_short_backoff)
{
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    int64_t now = to_candidate(r);
    REQUIRE(raft_role(r) == RAFT_CANDIDATE);
    raft_msg_t rival = vote_req(3, 1, 1, 0, 0, false);
    raft_vote_resp_t v = ask_vote(r, &rival, now);
    CHECK(!v.vote_granted);
    CHECK_EQ_INT(raft_role(r), RAFT_PROSPECTIVE);
    CHECK_EQ_INT(raft_stats(r)->split_votes, 1);
    CHECK(raft_next_deadline(r) <= now + RAFT_RETRY_BACKOFF_MS_DEFAULT);
    (void)raft_ready(r);
    raft_tick(r, raft_next_deadline(r));
    const raft_msg_t *pre = find_msg(raft_ready(r), RAFT_MSG_VOTE_REQ, 2);
    REQUIRE(pre != NULL);
    CHECK(pre->u.vote_req.pre_vote);
    CHECK_EQ_INT(pre->u.vote_req.candidate_epoch, 2);
    raft_free(r);
}

/* A prospective voter that learns of a live leader goes back to following. */
TEST(prevote_refusal_naming_leader_rejoins)
{
    raft_config_t cfg = config(3, 3);
    raft_disk_state_t d = fresh_disk();
    d.qstate = (raft_qstate_t){.epoch = 2, .voted_id = -1, .leader_id = 1};
    raft_t *r = raft_new(&cfg, &d, T0);
    (void)raft_ready(r); /* a fetch to 1, lost */
    int64_t now = T0 + 2 * RAFT_ELECTION_TIMEOUT_MS_DEFAULT;
    raft_tick(r, now);
    REQUIRE(raft_role(r) == RAFT_PROSPECTIVE);
    const raft_ready_t *rd = raft_ready(r);
    const raft_msg_t *pre = find_msg(rd, RAFT_MSG_VOTE_REQ, 2);
    REQUIRE(pre != NULL);
    raft_msg_t no = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 3, .corr = pre->corr};
    no.u.vote_resp = (raft_vote_resp_t){.leader_id = 1, .leader_epoch = 2, .vote_granted = false};
    raft_recv(r, &no, now + 1);
    CHECK_EQ_INT(raft_role(r), RAFT_FOLLOWER);
    CHECK_EQ_INT(raft_leader_id(r), 1);
    CHECK_EQ_INT(raft_epoch(r), 2);
    raft_free(r);
}

/* A voter stranded in a newer epoch (its candidacy failed, the rest kept an
 * older leader) rejoins: its pre-votes carry that epoch to the others. */
TEST(stranded_candidate_rejoins)
{
    cluster_t c;
    cluster_init(&c, 3);
    int l = elect(&c);
    REQUIRE(l > 0);
    raft_propose(c.r[l], "x", 1, c.now, NULL);
    run_to(&c, c.now + 100);
    int x = l == 3 ? 1 : 3;
    int32_t e = raft_epoch(c.r[l]);
    raft_free(c.r[x]); /* crashed right after voting for itself in e+1 */
    raft_config_t cfg = config(x, 3);
    raft_disk_state_t d = fresh_disk();
    d.qstate = (raft_qstate_t){.epoch = e + 1, .voted_id = x, .leader_id = RAFT_NO_NODE};
    c.r[x] = raft_new(&cfg, &d, c.now);
    run_to(&c, c.now + 10000);
    int nl = leader_of(&c);
    REQUIRE(nl > 0);
    for (int id = 1; id <= 3; id++)
        CHECK_EQ_INT(raft_epoch(c.r[id]), raft_epoch(c.r[nl]));
    CHECK(raft_epoch(c.r[nl]) > e + 1);
    CHECK_EQ_INT(raft_high_watermark(c.r[x]), raft_high_watermark(c.r[nl]));
    cluster_free(&c);
}

/* ---- replication ------------------------------------------------------------ */

/* A follower truncates where the leader says the logs diverge, then refetches. */
TEST(follower_truncates_on_diverging_epoch)
{
    const int32_t epochs[] = {1, 1, 1, 2, 2};
    raft_config_t cfg = config(2, 3);
    raft_disk_state_t d = disk_with_log(3, 1, epochs, 5);
    raft_t *r = raft_new(&cfg, &d, T0);
    const raft_ready_t *rd = raft_ready(r);
    const raft_msg_t *f = find_msg(rd, RAFT_MSG_FETCH_REQ, 1);
    REQUIRE(f != NULL);
    CHECK_EQ_INT(f->u.fetch_req.fetch_offset, 5);
    CHECK_EQ_INT(f->u.fetch_req.last_fetched_epoch, 2);
    raft_msg_t resp = {.type = RAFT_MSG_FETCH_RESP, .from = 1, .to = 2, .corr = f->corr};
    resp.u.fetch_resp = (raft_fetch_resp_t){.high_watermark = 2, .log_start_offset = 0,
                                            .diverging_epoch = {.epoch = 1, .end_offset = 3},
                                            .current_leader = {1, 3},
                                            .snapshot_id = {-1, -1}};
    raft_recv(r, &resp, T0 + 1);
    rd = raft_ready(r);
    const raft_op_t *op = find_op(rd, RAFT_OP_TRUNCATE);
    REQUIRE(op != NULL);
    CHECK_EQ_INT(op->truncate_to, 3);
    CHECK_EQ_INT(raft_log_end(r), 3);
    CHECK(find_msg(rd, RAFT_MSG_FETCH_REQ, 1) == NULL); /* not before the truncation is durable */
    ack(r, rd, T0 + 2);
    rd = raft_ready(r);
    f = find_msg(rd, RAFT_MSG_FETCH_REQ, 1);
    REQUIRE(f != NULL);
    CHECK_EQ_INT(f->u.fetch_req.fetch_offset, 3);
    CHECK_EQ_INT(f->u.fetch_req.last_fetched_epoch, 1);
    raft_free(r);
}

/* When both logs hold the diverging epoch, truncate to the shorter end of it. */
TEST(follower_truncates_to_shorter_end_of_shared_epoch)
{
    const int32_t epochs[] = {1, 1, 2, 2, 2, 2};
    raft_config_t cfg = config(2, 3);
    raft_disk_state_t d = disk_with_log(3, 1, epochs, 6);
    raft_t *r = raft_new(&cfg, &d, T0);
    const raft_msg_t *f = find_msg(raft_ready(r), RAFT_MSG_FETCH_REQ, 1);
    REQUIRE(f != NULL);
    raft_msg_t resp = {.type = RAFT_MSG_FETCH_RESP, .from = 1, .to = 2, .corr = f->corr};
    resp.u.fetch_resp = (raft_fetch_resp_t){.high_watermark = 2,
                                            .diverging_epoch = {.epoch = 2, .end_offset = 4},
                                            .current_leader = {1, 3},
                                            .snapshot_id = {-1, -1}};
    raft_recv(r, &resp, T0 + 1);
    const raft_op_t *op = find_op(raft_ready(r), RAFT_OP_TRUNCATE);
    REQUIRE(op != NULL);
    CHECK_EQ_INT(op->truncate_to, 4);
    raft_free(r);
}

/* Truncation never reaches below the high watermark, whatever a peer says. */
TEST(truncation_below_high_watermark_refused)
{
    const int32_t epochs[] = {1, 1, 1, 1};
    raft_config_t cfg = config(2, 3);
    raft_disk_state_t d = disk_with_log(1, 1, epochs, 4);
    raft_t *r = raft_new(&cfg, &d, T0);
    const raft_msg_t *f = find_msg(raft_ready(r), RAFT_MSG_FETCH_REQ, 1);
    REQUIRE(f != NULL);
    raft_msg_t resp = {.type = RAFT_MSG_FETCH_RESP, .from = 1, .to = 2, .corr = f->corr};
    resp.u.fetch_resp = (raft_fetch_resp_t){.high_watermark = 3, .diverging_epoch = {-1, -1},
                                            .current_leader = {1, 1}, .snapshot_id = {-1, -1}};
    raft_recv(r, &resp, T0 + 1); /* no records, high watermark 3 */
    CHECK_EQ_INT(raft_high_watermark(r), 3);
    f = find_msg(raft_ready(r), RAFT_MSG_FETCH_REQ, 1);
    REQUIRE(f != NULL);
    resp.corr = f->corr;
    resp.u.fetch_resp.diverging_epoch = (raft_epoch_end_t){.epoch = 0, .end_offset = 1};
    raft_recv(r, &resp, T0 + 2);
    CHECK(find_op(raft_ready(r), RAFT_OP_TRUNCATE) == NULL);
    CHECK_EQ_INT(raft_log_end(r), 4);
    CHECK_EQ_INT(raft_stats(r)->protocol_violations, 1);
    raft_free(r);
}

/* The leader answers an inconsistent fetch with DivergingEpoch. */
TEST(leader_reports_divergence)
{
    cluster_t c;
    cluster_init(&c, 3);
    int l = elect(&c);
    REQUIRE(l > 0);
    for (int i = 0; i < 3; i++)
        raft_propose(c.r[l], "abc", 3, c.now, NULL);
    pump(&c);
    int32_t e = raft_epoch(c.r[l]);
    int64_t end = raft_log_end(c.r[l]);
    int other = l == 1 ? 2 : 1;
    /* claim a log longer than the leader's that ends in an older epoch */
    raft_msg_t f = {.type = RAFT_MSG_FETCH_REQ, .from = other, .to = l, .corr = 999};
    f.u.fetch_req = (raft_fetch_req_t){.replica_id = other, .max_wait_ms = 0,
                                       .current_leader_epoch = e, .fetch_offset = end + 2,
                                       .last_fetched_epoch = e - 1};
    raft_recv(c.r[l], &f, c.now);
    const raft_ready_t *rd = raft_ready(c.r[l]);
    const raft_msg_t *m = NULL;
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (rd->msgs[i].corr == 999)
            m = &rd->msgs[i];
    REQUIRE(m != NULL);
    CHECK_EQ_INT(m->u.fetch_resp.error_code, RAFT_ERR_NONE);
    CHECK(m->u.fetch_resp.diverging_epoch.epoch < e);
    CHECK(m->u.fetch_resp.diverging_epoch.end_offset <= end);
    CHECK_EQ_INT(m->u.fetch_resp.n_records, 0);
    cluster_free(&c);
}

/* The high watermark covers old-epoch entries only with the leader's own. */
TEST(hw_advances_only_for_current_epoch)
{
    const int32_t epochs[] = {1, 1, 1, 1, 1};
    raft_config_t cfg = config(1, 3);
    raft_disk_state_t d = disk_with_log(1, RAFT_NO_NODE, epochs, 5);
    raft_t *r = raft_new(&cfg, &d, T0);
    /* win the election: pre-vote, vote */
    int64_t now = to_candidate(r);
    const raft_msg_t *v = find_msg(raft_ready(r), RAFT_MSG_VOTE_REQ, 2);
    REQUIRE(v != NULL);
    raft_msg_t yes = {.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .corr = v->corr};
    yes.u.vote_resp = (raft_vote_resp_t){.leader_id = -1, .leader_epoch = 2, .vote_granted = true};
    raft_recv(r, &yes, now);
    REQUIRE(raft_role(r) == RAFT_LEADER);
    CHECK_EQ_INT(raft_log_end(r), 6); /* the leader-change entry at offset 5 */
    CHECK_EQ_INT(raft_entry_at(r, 5)->kind, RAFT_ENTRY_LEADER_CHANGE);
    ack(r, raft_ready(r), now); /* leader's own append durable: 6 */
    /* follower 2 holds all of epoch 1: a majority has offsets < 5 */
    raft_msg_t f = {.type = RAFT_MSG_FETCH_REQ, .from = 2, .to = 1, .corr = 5};
    f.u.fetch_req = (raft_fetch_req_t){.replica_id = 2, .max_wait_ms = 500,
                                       .current_leader_epoch = 2, .fetch_offset = 5,
                                       .last_fetched_epoch = 1};
    raft_recv(r, &f, now + 1);
    const raft_ready_t *rd = raft_ready(r);
    CHECK_EQ_INT(raft_high_watermark(r), 0);
    CHECK_EQ_INT(rd->n_committed, 0);
    /* once it holds the leader-change entry too, everything commits */
    f.u.fetch_req.fetch_offset = 6;
    f.u.fetch_req.last_fetched_epoch = 2;
    raft_recv(r, &f, now + 2);
    rd = raft_ready(r);
    CHECK_EQ_INT(raft_high_watermark(r), 6);
    CHECK_EQ_INT(rd->n_committed, 6);
    raft_free(r);
}

/* The leader counts only its durable log toward the high watermark. */
TEST(hw_waits_for_leader_fsync)
{
    raft_config_t cfg = config(1, 1);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    raft_tick(r, T0);
    REQUIRE(raft_role(r) == RAFT_LEADER);
    const raft_ready_t *rd = raft_ready(r);
    CHECK_EQ_INT(raft_high_watermark(r), 0);
    ack(r, rd, T0);
    rd = raft_ready(r);
    CHECK_EQ_INT(raft_high_watermark(r), 1);
    int64_t off = -1;
    CHECK_EQ_INT(raft_propose(r, "p", 1, T0, &off), RAFT_OK);
    CHECK_EQ_INT(off, 1);
    rd = raft_ready(r);
    CHECK_EQ_INT(raft_high_watermark(r), 1);
    ack(r, rd, T0);
    rd = raft_ready(r);
    CHECK_EQ_INT(raft_high_watermark(r), 2);
    REQUIRE(rd->n_committed == 1);
    CHECK_EQ_INT(rd->committed[0].offset, 1);
    raft_free(r);
}

/* Three cores elect one leader, replicate to everyone, and describe it. */
TEST(cluster_elects_and_replicates)
{
    cluster_t c;
    cluster_init(&c, 3);
    int l = elect(&c);
    REQUIRE(l > 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(raft_propose(c.r[l], "data", 4, c.now, NULL), RAFT_OK);
    pump(&c);
    run_to(&c, c.now + 100);
    for (int id = 1; id <= 3; id++) {
        CHECK_EQ_INT(raft_log_end(c.r[id]), 11);
        CHECK_EQ_INT(raft_high_watermark(c.r[id]), 11);
        CHECK_EQ_INT(raft_epoch(c.r[id]), raft_epoch(c.r[l]));
    }
    raft_quorum_info_t q;
    CHECK(!raft_describe(c.r[l == 1 ? 2 : 1], &q)); /* only the leader answers */
    REQUIRE(raft_describe(c.r[l], &q));
    CHECK_EQ_INT(q.leader_id, l);
    CHECK_EQ_INT(q.high_watermark, 11);
    REQUIRE(q.n_voters == 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(q.voters[i].log_end_offset, 11);
    CHECK_EQ_INT(q.n_observers, 0);
    cluster_free(&c);
}

/* ---- check-quorum, handover, snapshots -------------------------------------- */

/* A leader that hears from no voter steps down within the fetch timeout. */
TEST(check_quorum_steps_down)
{
    cluster_t c;
    cluster_init(&c, 3);
    int l = elect(&c);
    REQUIRE(l > 0);
    int64_t cut = c.now;
    c.cut[l] = true;
    run_to(&c, cut + RAFT_FETCH_TIMEOUT_MS_DEFAULT - RAFT_FETCH_MAX_WAIT_MS_DEFAULT - 100);
    CHECK_EQ_INT(raft_role(c.r[l]), RAFT_LEADER);
    run_to(&c, cut + RAFT_FETCH_TIMEOUT_MS_DEFAULT);
    CHECK(raft_role(c.r[l]) != RAFT_LEADER);
    CHECK_EQ_INT(raft_stats(c.r[l])->step_downs, 1);
    cluster_free(&c);
}

/* A resigning leader names successors; one takes over in one election. */
TEST(resign_hands_over)
{
    cluster_t c;
    cluster_init(&c, 3);
    int l = elect(&c);
    REQUIRE(l > 0);
    int32_t e = raft_epoch(c.r[l]);
    raft_resign(c.r[l], c.now);
    CHECK_EQ_INT(raft_role(c.r[l]), RAFT_RESIGNED);
    CHECK_EQ_INT(raft_propose(c.r[l], "x", 1, c.now, NULL), RAFT_NOT_LEADER);
    run_to(&c, c.now + 200); /* well inside one election timeout */
    int nl = leader_of(&c);
    CHECK(nl > 0 && nl != l);
    if (nl > 0)
        CHECK_EQ_INT(raft_epoch(c.r[nl]), e + 1);
    CHECK(raft_resign_done(c.r[l]));
    cluster_free(&c);
}

/* A follower behind the leader's snapshot installs it via FetchSnapshot. */
TEST(snapshot_install_over_fetch_snapshot)
{
    cluster_t c;
    cluster_init(&c, 3);
    int l = elect(&c);
    REQUIRE(l > 0);
    int lag = l == 3 ? 2 : 3;
    c.cut[lag] = true;
    for (int i = 0; i < 20; i++)
        raft_propose(c.r[l], "0123456789", 10, c.now, NULL);
    pump(&c);
    run_to(&c, c.now + 50);
    int64_t hw = raft_high_watermark(c.r[l]);
    REQUIRE(hw == 21);
    uint8_t snap[300];
    for (size_t i = 0; i < sizeof snap; i++)
        snap[i] = (uint8_t)i;
    CHECK_EQ_INT(raft_snapshot_taken(c.r[l], hw, snap, sizeof snap, c.now), RAFT_OK);
    CHECK_EQ_INT(raft_log_start(c.r[l]), 21);
    c.cut[lag] = false;
    run_to(&c, c.now + 3000);
    CHECK_EQ_INT(c.restored[lag].end_offset, 21);
    CHECK_EQ_INT(c.restored_len[lag], sizeof snap);
    CHECK_EQ_INT(raft_log_start(c.r[lag]), 21);
    CHECK_EQ_INT(raft_high_watermark(c.r[lag]), 21);
    CHECK(raft_stats(c.r[lag])->snapshots_installed == 1);
    cluster_free(&c);
}

/* Observers replicate but never vote or count toward the quorum. */
/* Drains the readies at now: returns whether any asked for a snapshot, and
 * adds the bytes of the entries it handed out as committed. */
static bool drain(raft_t *r, int64_t now, int64_t *committed_bytes)
{
    bool want = false;
    for (int i = 0; i < 16; i++) {
        const raft_ready_t *rd = raft_ready(r);
        want |= rd->want_snapshot;
        for (size_t k = 0; k < rd->n_committed; k++)
            *committed_bytes += rd->committed[k].len;
        if (!rd->n_ops && !rd->n_committed)
            break;
        ack(r, rd, now);
    }
    return want;
}

/* The core asks for a snapshot once the entries committed since the last
 * one hold snapshot_min_bytes, or snapshot_interval_ms has passed with
 * something new committed; never twice for one request; skipping resets. */
TEST(snapshot_asked_by_bytes_and_by_age)
{
    raft_config_t c = config(1, 1);
    c.snapshot_min_bytes = 1000;
    c.snapshot_interval_ms = 5000;
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&c, &d, T0);
    int64_t now = T0, bytes = 0;
    raft_tick(r, now);
    drain(r, now, &bytes);
    REQUIRE(raft_role(r) == RAFT_LEADER);
    uint8_t payload[100] = {0};
    bool asked = false;
    int n = 0;
    while (!asked && n < 50) {
        CHECK(raft_propose(r, payload, sizeof payload, now, NULL) == RAFT_OK);
        n++;
        int64_t before = bytes;
        asked = drain(r, now, &bytes);
        CHECK(asked == (bytes >= 1000));
        CHECK(!asked || before < 1000);
    }
    CHECK(asked && n <= 10);
    CHECK(!drain(r, now, &bytes)); /* asked once */
    int64_t end = raft_high_watermark(r);
    CHECK(raft_snapshot_taken(r, end, "s", 1, now) == RAFT_OK);
    CHECK(raft_log_start(r) == end && raft_stats(r)->snapshots_taken == 1);
    drain(r, now, &bytes);
    CHECK(raft_propose(r, payload, 10, now, NULL) == RAFT_OK);
    CHECK(!drain(r, now, &bytes)); /* 10 bytes, and no time has passed */
    now += 4999;
    raft_tick(r, now);
    CHECK(!drain(r, now, &bytes));
    now += 1;
    raft_tick(r, now);
    CHECK(drain(r, now, &bytes)); /* by age */
    raft_snapshot_skipped(r, now);
    CHECK(!drain(r, now, &bytes));
    now += 5000;
    raft_tick(r, now);
    CHECK(drain(r, now, &bytes)); /* asked again one interval after the skip */
    raft_free(r);
}

TEST(observer_replicates_without_voting)
{
    cluster_t c;
    memset(&c, 0, sizeof(c));
    c.n = 4;
    c.now = T0;
    for (int id = 1; id <= 4; id++) {
        raft_config_t cfg = config(id, 3); /* node 4 is not a voter */
        raft_disk_state_t d = fresh_disk();
        c.r[id] = raft_new(&cfg, &d, c.now);
    }
    CHECK(!raft_is_voter(c.r[4]));
    int l = elect(&c);
    REQUIRE(l > 0 && l != 4);
    raft_propose(c.r[l], "o", 1, c.now, NULL);
    run_to(&c, c.now + 3000);
    CHECK_EQ_INT(raft_high_watermark(c.r[4]), raft_high_watermark(c.r[l]));
    CHECK_EQ_INT(raft_stats(c.r[4])->prevote_rounds, 0);
    raft_msg_t req = vote_req(1, 4, 99, 99, 99, false);
    raft_recv(c.r[4], &req, c.now);
    const raft_msg_t *m = find_msg(raft_ready(c.r[4]), RAFT_MSG_VOTE_RESP, 1);
    REQUIRE(m != NULL);
    CHECK(!m->u.vote_resp.vote_granted);
    CHECK_EQ_INT(m->u.vote_resp.error_code, RAFT_ERR_INCONSISTENT_VOTER_SET);
    cluster_free(&c);
}

/* ---- wire: core messages through the generated Kafka codec ---------------------- */

static const raft_wire_topic_t WIRE_TP = {.name = "__cluster_metadata",
                                          .id = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
                                          .partition = 0};

static raft_msg_t wire_roundtrip(const raft_msg_t *m, arena_t *a)
{
    buf_t w;
    buf_init(&w);
    raft_wire_encode(m, &WIRE_TP, a, &w);
    uint8_t *body = arena_alloc(a, w.len);
    memcpy(body, w.data, w.len);
    raft_msg_t out;
    char why[RAFT_WIRE_WHY_MAX] = "";
    int rc = raft_wire_decode(m->type, body, w.len, &WIRE_TP, a, &out, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "  decode %s: %s\n", raft_msg_type_name(m->type), why);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(out.type, m->type);
    buf_free(&w);
    return out;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Vote (with and without the pre-vote tag), BeginQuorumEpoch, EndQuorumEpoch. */
TEST(wire_roundtrip_election_messages)
{
    arena_t a;
    arena_init(&a);
    for (int pre = 0; pre <= 1; pre++) {
        raft_msg_t m = {.type = RAFT_MSG_VOTE_REQ, .cluster_id = "cid"};
        m.u.vote_req = (raft_vote_req_t){7, 3, 6, 1234567890123LL, pre == 1};
        raft_msg_t o = wire_roundtrip(&m, &a);
        CHECK(same_str(o.cluster_id, "cid"));
        CHECK_EQ_INT(o.u.vote_req.candidate_epoch, 7);
        CHECK_EQ_INT(o.u.vote_req.candidate_id, 3);
        CHECK_EQ_INT(o.u.vote_req.last_offset_epoch, 6);
        CHECK_EQ_INT(o.u.vote_req.last_offset, 1234567890123LL);
        CHECK_EQ_INT(o.u.vote_req.pre_vote, pre);
    }
    raft_msg_t m = {.type = RAFT_MSG_VOTE_RESP};
    m.u.vote_resp = (raft_vote_resp_t){RAFT_ERR_FENCED_LEADER_EPOCH, 2, 9, true};
    raft_msg_t o = wire_roundtrip(&m, &a);
    CHECK_EQ_INT(o.u.vote_resp.error_code, RAFT_ERR_FENCED_LEADER_EPOCH);
    CHECK_EQ_INT(o.u.vote_resp.leader_id, 2);
    CHECK_EQ_INT(o.u.vote_resp.leader_epoch, 9);
    CHECK(o.u.vote_resp.vote_granted);
    m = (raft_msg_t){.type = RAFT_MSG_BEGIN_EPOCH_REQ, .cluster_id = NULL};
    m.u.begin_req = (raft_begin_epoch_req_t){4, 11};
    o = wire_roundtrip(&m, &a);
    CHECK(o.cluster_id == NULL);
    CHECK_EQ_INT(o.u.begin_req.leader_id, 4);
    CHECK_EQ_INT(o.u.begin_req.leader_epoch, 11);
    m = (raft_msg_t){.type = RAFT_MSG_END_EPOCH_REQ, .cluster_id = "c"};
    m.u.end_req = (raft_end_epoch_req_t){.leader_id = 1, .leader_epoch = 5, .n_preferred = 3,
                                         .preferred_successors = {3, 2, 5}};
    o = wire_roundtrip(&m, &a);
    CHECK_EQ_INT(o.u.end_req.leader_epoch, 5);
    REQUIRE(o.u.end_req.n_preferred == 3);
    CHECK_EQ_INT(o.u.end_req.preferred_successors[0], 3);
    CHECK_EQ_INT(o.u.end_req.preferred_successors[2], 5);
    for (int t = RAFT_MSG_BEGIN_EPOCH_RESP; t <= RAFT_MSG_END_EPOCH_RESP; t += 2) {
        m = (raft_msg_t){.type = (raft_msg_type_t)t};
        m.u.epoch_resp = (raft_epoch_resp_t){RAFT_ERR_NOT_LEADER_OR_FOLLOWER, 3, 8};
        o = wire_roundtrip(&m, &a);
        CHECK_EQ_INT(o.u.epoch_resp.error_code, RAFT_ERR_NOT_LEADER_OR_FOLLOWER);
        CHECK_EQ_INT(o.u.epoch_resp.leader_id, 3);
        CHECK_EQ_INT(o.u.epoch_resp.leader_epoch, 8);
    }
    arena_free(&a);
}

/* Fetch and FetchSnapshot, with records, divergence, snapshot ids and bytes. */
TEST(wire_roundtrip_fetch_messages)
{
    arena_t a;
    arena_init(&a);
    raft_msg_t m = {.type = RAFT_MSG_FETCH_REQ, .cluster_id = "cid"};
    m.u.fetch_req = (raft_fetch_req_t){2, 500, 6, 77, 5, 10};
    raft_msg_t o = wire_roundtrip(&m, &a);
    CHECK_EQ_INT(o.u.fetch_req.replica_id, 2);
    CHECK_EQ_INT(o.u.fetch_req.max_wait_ms, 500);
    CHECK_EQ_INT(o.u.fetch_req.current_leader_epoch, 6);
    CHECK_EQ_INT(o.u.fetch_req.fetch_offset, 77);
    CHECK_EQ_INT(o.u.fetch_req.last_fetched_epoch, 5);
    CHECK_EQ_INT(o.u.fetch_req.log_start_offset, 10);
    raft_entry_t ents[4] = {
        {.offset = 40, .epoch = 5, .kind = RAFT_ENTRY_DATA, .len = 3, .data = (const uint8_t *)"abc"},
        {.offset = 41, .epoch = 5, .kind = RAFT_ENTRY_DATA, .len = 0, .data = NULL},
        {.offset = 42, .epoch = 6, .kind = RAFT_ENTRY_LEADER_CHANGE, .len = 2, .data = (const uint8_t *)"lc"},
        {.offset = 43, .epoch = 6, .kind = RAFT_ENTRY_DATA, .len = 1, .data = (const uint8_t *)"z"},
    };
    m = (raft_msg_t){.type = RAFT_MSG_FETCH_RESP};
    m.u.fetch_resp = (raft_fetch_resp_t){.high_watermark = 42, .log_start_offset = 7,
                                         .diverging_epoch = {-1, -1}, .current_leader = {1, 6},
                                         .snapshot_id = {-1, -1}, .n_records = 4, .records = ents};
    o = wire_roundtrip(&m, &a);
    const raft_fetch_resp_t *f = &o.u.fetch_resp;
    CHECK_EQ_INT(f->high_watermark, 42);
    CHECK_EQ_INT(f->log_start_offset, 7);
    CHECK_EQ_INT(f->diverging_epoch.epoch, -1);
    CHECK_EQ_INT(f->snapshot_id.end_offset, -1);
    CHECK_EQ_INT(f->current_leader.leader_id, 1);
    REQUIRE(f->n_records == 4);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(f->records[i].offset, ents[i].offset);
        CHECK_EQ_INT(f->records[i].epoch, ents[i].epoch);
        CHECK_EQ_INT(f->records[i].kind, ents[i].kind);
        REQUIRE(f->records[i].len == ents[i].len);
        CHECK(ents[i].len == 0 || memcmp(f->records[i].data, ents[i].data, ents[i].len) == 0);
    }
    m.u.fetch_resp = (raft_fetch_resp_t){.error_code = RAFT_ERR_NONE, .high_watermark = 3,
                                         .diverging_epoch = {4, 30}, .current_leader = {1, 6},
                                         .snapshot_id = {100, 5}};
    o = wire_roundtrip(&m, &a);
    CHECK_EQ_INT(o.u.fetch_resp.diverging_epoch.epoch, 4);
    CHECK_EQ_INT(o.u.fetch_resp.diverging_epoch.end_offset, 30);
    CHECK_EQ_INT(o.u.fetch_resp.snapshot_id.end_offset, 100);
    CHECK_EQ_INT(o.u.fetch_resp.snapshot_id.epoch, 5);
    CHECK_EQ_INT(o.u.fetch_resp.n_records, 0);
    m = (raft_msg_t){.type = RAFT_MSG_FETCH_SNAPSHOT_REQ, .cluster_id = "cid"};
    m.u.snap_req = (raft_fetch_snapshot_req_t){3, 4096, 6, {100, 5}, 8192};
    o = wire_roundtrip(&m, &a);
    CHECK_EQ_INT(o.u.snap_req.replica_id, 3);
    CHECK_EQ_INT(o.u.snap_req.max_bytes, 4096);
    CHECK_EQ_INT(o.u.snap_req.snapshot_id.end_offset, 100);
    CHECK_EQ_INT(o.u.snap_req.position, 8192);
    m = (raft_msg_t){.type = RAFT_MSG_FETCH_SNAPSHOT_RESP};
    m.u.snap_resp = (raft_fetch_snapshot_resp_t){0, {100, 5}, {1, 6}, 9000, 8192, 5,
                                                 (const uint8_t *)"chunk"};
    o = wire_roundtrip(&m, &a);
    CHECK_EQ_INT(o.u.snap_resp.size, 9000);
    CHECK_EQ_INT(o.u.snap_resp.position, 8192);
    REQUIRE(o.u.snap_resp.n_bytes == 5);
    CHECK(memcmp(o.u.snap_resp.bytes, "chunk", 5) == 0);
    CHECK_EQ_INT(o.u.snap_resp.current_leader.leader_epoch, 6);
    arena_free(&a);
}

/* A pre-vote is plain Vote v0 to the generated codec: the tag is skipped. */
TEST(wire_prevote_is_an_unknown_tag_to_vote_v0)
{
    arena_t a;
    arena_init(&a);
    raft_msg_t m = {.type = RAFT_MSG_VOTE_REQ};
    m.u.vote_req = (raft_vote_req_t){3, 2, 2, 50, true};
    buf_t pre, plain;
    buf_init(&pre);
    buf_init(&plain);
    raft_wire_encode(&m, &WIRE_TP, &a, &pre);
    m.u.vote_req.pre_vote = false;
    raft_wire_encode(&m, &WIRE_TP, &a, &plain);
    CHECK(pre.len > plain.len);
    VoteRequest k;
    rd_t r;
    rd_init(&r, pre.data, pre.len);
    proto_err_t err;
    REQUIRE(proto_decode(&VoteRequest_desc, 0, true, &r, &a, &k, &err) == 0);
    CHECK_EQ_INT(rd_left(&r), 0);
    REQUIRE(k.Topics.count == 1 && k.Topics.items[0].Partitions.count == 1);
    CHECK_EQ_INT(k.Topics.items[0].Partitions.items[0].CandidateEpoch, 3);
    CHECK_EQ_INT(k.Topics.items[0].Partitions.items[0].LastOffset, 50);
    buf_free(&pre);
    buf_free(&plain);
    arena_free(&a);
}

/* Messages for another topic or partition are refused. */
TEST(wire_rejects_other_partitions)
{
    arena_t a;
    arena_init(&a);
    raft_wire_topic_t other = WIRE_TP;
    other.partition = 1;
    raft_msg_t m = {.type = RAFT_MSG_BEGIN_EPOCH_REQ};
    m.u.begin_req = (raft_begin_epoch_req_t){1, 1};
    buf_t w;
    buf_init(&w);
    raft_wire_encode(&m, &other, &a, &w);
    raft_msg_t o;
    char why[RAFT_WIRE_WHY_MAX];
    CHECK_EQ_INT(raft_wire_decode(m.type, w.data, w.len, &WIRE_TP, &a, &o, why, sizeof why), -1);
    CHECK(strstr(why, "partition") != NULL);
    CHECK_EQ_INT(raft_wire_decode(m.type, w.data, w.len - 1, &WIRE_TP, &a, &o, why, sizeof why), -1);
    buf_free(&w);
    arena_free(&a);
}

/* A new leader's first entry is a LeaderChangeMessage the codec can read. */
TEST(leader_change_entry_is_kafka_leader_change_message)
{
    raft_config_t cfg = config(1, 1);
    raft_disk_state_t d = fresh_disk();
    raft_t *r = raft_new(&cfg, &d, T0);
    raft_tick(r, T0);
    REQUIRE(raft_role(r) == RAFT_LEADER);
    const raft_entry_t *e = raft_entry_at(r, 0);
    REQUIRE(e && e->kind == RAFT_ENTRY_LEADER_CHANGE);
    arena_t a;
    arena_init(&a);
    LeaderChangeMessage lc;
    rd_t rd;
    rd_init(&rd, e->data, e->len);
    proto_err_t err;
    REQUIRE(proto_decode(&LeaderChangeMessage_desc, 0, true, &rd, &a, &lc, &err) == 0);
    CHECK_EQ_INT(lc.LeaderId, 1);
    REQUIRE(lc.Voters.count == 1);
    CHECK_EQ_INT(lc.Voters.items[0].VoterId, 1);
    CHECK_EQ_INT(lc.GrantingVoters.count, 1);
    buf_t w;
    buf_init(&w);
    raft_wire_records_encode(e, 1, &w);
    const raft_entry_t *back;
    size_t n;
    const char *why = NULL;
    REQUIRE(raft_wire_records_decode(w.data, w.len, &a, &back, &n, &why) == 0);
    REQUIRE(n == 1);
    CHECK_EQ_INT(back[0].kind, RAFT_ENTRY_LEADER_CHANGE);
    CHECK_EQ_INT(back[0].len, e->len);
    /* a batch cut short at the end is ignored */
    REQUIRE(raft_wire_records_decode(w.data, w.len - 1, &a, &back, &n, &why) == 0);
    CHECK_EQ_INT(n, 0);
    buf_free(&w);
    arena_free(&a);
    raft_free(r);
}
