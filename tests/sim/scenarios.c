/*
 * scenarios.c - pinned scenarios with exact expectations. Each runs for
 * several cluster sizes and a few fixed sub-seeds, with the global safety
 * checks of check.c active throughout, and asserts what the protocol
 * promises in that situation:
 *
 *   restarted_follower    a follower that crashes and restarts after more
 *                         than the fetch timeout, or is cut off from the
 *                         leader for that long, does not disturb a healthy
 *                         leader: leader and epoch never change (pre-vote)
 *   check_quorum          a leader cut off from the majority (it keeps the
 *                         largest minority) steps down no later than
 *                         fetch_timeout_ms after the cut
 *   full_restart          after all nodes restart at once, a leader is
 *                         elected within two election timeouts, with at most
 *                         two elections (epoch bumps)
 *   graceful_resign       a resigning leader hands over within one election
 *                         timeout, in exactly one election
 *   observers             observers replicate everything but never vote:
 *                         with a minority of voters up nothing commits
 *   snapshot_catch_up     a node that was down while the leader snapshotted
 *                         catches up through FetchSnapshot
 *   snapshot_by_bytes     snapshots taken by committed bytes (the production
 *                         trigger): a follower, or an observer, is down while
 *                         every other node snapshots and trims its disk log;
 *                         restarted, it installs a snapshot through
 *                         FetchSnapshot, trims its own log, and catches up
 *   controller/fence_and_return
 *                         (controller on) a broker that stops heartbeating
 *                         is fenced on every node within the session timeout
 *                         plus a heartbeat, a fence check and commit time,
 *                         and leads nothing; back, it is unfenced within two
 *                         heartbeats plus commit time (ctl.c)
 *   controller/crash_after_propose
 *                         (controller on) leaders crash right after proposing
 *                         rounds; every controller check holds and all nodes
 *                         converge on one image (ctl.c)
 */
#include "sim.h"

#include "base/util.h"

#include <stdarg.h>
#include <stdlib.h>

#define SCENARIO_SUBSEEDS 8
#define SETTLE_MS 5000      /* time allowed for the first election */
#define PROPOSE_EVERY_MS 25
#define CAUGHT_UP_SLACK 10  /* entries a replica may trail the leader by */

static bool quiet; /* proposals paused */

/* Worst figures over all runs, reported after the scenarios. */
static int64_t worst_restart_elect_ms = -1, worst_step_down_ms = -1, worst_handover_ms = -1;
static int64_t worst_fence_ms = -1, worst_unfence_ms = -1;
static int fewest_crashes_in_flight = -1;
static int32_t worst_restart_elections = -1;

static void steady_workload(sim_t *s, void *arg)
{
    int l = sim_leader(s);
    if (l >= 0 && !quiet)
        sim_propose(s, l, 1);
    sim_call_at(s, s->now + PROPOSE_EVERY_MS, steady_workload, arg);
}

static void expect(sim_t *s, bool cond, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect(sim_t *s, bool cond, const char *fmt, ...)
{
    if (cond || s->failed)
        return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sim_fail(s, "%s", msg);
}

/* Run until a leader has committed an entry of its own epoch. */
static int settle(sim_t *s)
{
    int64_t until = s->now + SETTLE_MS;
    while (!s->failed && s->now < until) {
        int l = sim_leader(s);
        if (l >= 0) {
            const raft_t *r = s->nodes[l].r;
            int64_t hw = raft_high_watermark(r);
            const raft_entry_t *e = hw > 0 ? raft_entry_at(r, hw - 1) : NULL;
            if (e && e->epoch == raft_epoch(r) && hw > 5)
                return l;
        }
        sim_step(s);
    }
    expect(s, false, "no leader within %d ms", SETTLE_MS);
    return -1;
}

static void start(sim_t *s, uint64_t seed, int voters, int observers, int64_t snapshot_min,
                  int64_t snapshot_bytes, bool controller, bool verbose)
{
    sim_params_t p;
    sim_default_params(&p);
    p.n_voters = voters;
    p.n_observers = observers;
    p.raft.snapshot_min_entries = snapshot_min;
    p.raft.snapshot_min_bytes = snapshot_bytes;
    p.controller = controller;
    sim_init(s, seed, &p, verbose);
    sim_call_at(s, 0, steady_workload, NULL);
}

static void isolate_pair(sim_t *s, int a, int b, int delta)
{
    sim_block(s, a, b, delta);
    sim_block(s, b, a, delta);
}

static int32_t max_epoch_now(const sim_t *s)
{
    int32_t m = 0;
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up)
            m = MAX(m, raft_epoch(s->nodes[i].r));
    return m;
}

/* variant 0: crash + restart; 1: cut off from everyone; 2: restart, cut off from the leader */
static void restarted_follower(sim_t *s, int variant)
{
    int l = settle(s);
    if (l < 0)
        return;
    int32_t epoch = raft_epoch(s->nodes[l].r);
    int f = (l + 1) % s->n;
    int64_t away_ms = 3 * s->p.raft.fetch_timeout_ms;
    /* Quiet first, so every log is equal: then only the live leader, not
     * the up-to-date rule, can make the voters refuse the pre-votes. */
    quiet = true;
    sim_run_until(s, s->now + 1000);
    if (variant == 0) {
        sim_crash(s, f);
        sim_run_until(s, s->now + away_ms);
        sim_restart(s, f);
    } else {
        if (variant == 2) {
            sim_crash(s, f);
            sim_restart(s, f);
        }
        for (int j = 0; j < s->n; j++)
            if (j != f && (variant == 1 || j == l))
                isolate_pair(s, f, j, +1);
        sim_run_until(s, s->now + away_ms);
        sim_heal_all(s);
    }
    quiet = false;
    sim_run_until(s, s->now + 2 * s->p.raft.fetch_timeout_ms);
    expect(s, sim_leader(s) == l, "leader changed from %d to %d", l + 1, sim_leader(s) + 1);
    expect(s, s->max_epoch == epoch, "epoch moved from %d to %d", epoch, s->max_epoch);
    int64_t hw = raft_high_watermark(s->nodes[l].r);
    expect(s, raft_high_watermark(s->nodes[f].r) + CAUGHT_UP_SLACK >= hw && raft_epoch(s->nodes[f].r) == epoch,
           "follower %d did not rejoin (hw %lld vs %lld)", f + 1,
           (long long)raft_high_watermark(s->nodes[f].r), (long long)hw);
}

static void check_quorum(sim_t *s)
{
    int l = settle(s);
    if (l < 0)
        return;
    int32_t epoch = raft_epoch(s->nodes[l].r);
    int64_t cut = s->now, timeout = s->p.raft.fetch_timeout_ms;
    /* the leader keeps the largest minority it can: n/2 - 1 followers */
    bool with_leader[SIM_NODES_MAX] = {false};
    with_leader[l] = true;
    for (int j = 0, kept = 0; j < s->n && kept < s->p.n_voters / 2 - 1; j++)
        if (j != l && !with_leader[j])
            with_leader[j] = true, kept++;
    for (int i = 0; i < s->n; i++)
        for (int j = i + 1; j < s->n; j++)
            if (with_leader[i] != with_leader[j])
                isolate_pair(s, i, j, +1);
    int64_t stepped = -1;
    while (!s->failed && s->now <= cut + timeout + 1000 && stepped < 0) {
        sim_step(s);
        if (raft_role(s->nodes[l].r) != RAFT_LEADER)
            stepped = s->now;
    }
    if (stepped >= 0)
        worst_step_down_ms = MAX(worst_step_down_ms, stepped - cut);
    expect(s, stepped >= 0 && stepped <= cut + timeout,
           "leader %d stepped down %lld ms after the cut (fetch timeout %lld)", l + 1,
           (long long)(stepped - cut), (long long)timeout);
    /* followers fetch at least every max wait + a round trip */
    int64_t gap = s->p.raft.fetch_max_wait_ms + 2 * s->p.delay_max_ms + s->p.sync_max_ms;
    expect(s, stepped >= cut + timeout - gap,
           "leader %d stepped down too early: %lld ms after the cut", l + 1,
           (long long)(stepped - cut));
    sim_run_until(s, s->now + 3 * timeout);
    int nl = sim_leader(s);
    expect(s, nl >= 0 && nl != l && raft_epoch(s->nodes[nl].r) > epoch,
           "the majority elected no new leader");
    sim_heal_all(s);
    sim_run_until(s, s->now + 2 * timeout);
    expect(s, raft_role(s->nodes[l].r) == RAFT_FOLLOWER && raft_epoch(s->nodes[l].r) == max_epoch_now(s),
           "old leader %d did not rejoin as follower", l + 1);
}

static void full_restart(sim_t *s)
{
    if (settle(s) < 0)
        return;
    sim_run_until(s, s->now + 2000);
    int32_t epoch = max_epoch_now(s);
    for (int i = 0; i < s->n; i++)
        sim_crash(s, i);
    sim_run_until(s, s->now + 500);
    int64_t t_restart = s->now, bound = 2 * (int64_t)s->p.raft.election_timeout_ms;
    for (int i = 0; i < s->n; i++)
        sim_restart(s, i);
    int64_t elected = -1;
    while (!s->failed && s->now <= t_restart + 3 * bound && elected < 0) {
        sim_step(s);
        if (sim_leader(s) >= 0)
            elected = s->now;
    }
    expect(s, elected >= 0 && elected - t_restart <= bound,
           "full restart: leader after %lld ms (bound %lld)", (long long)(elected - t_restart),
           (long long)bound);
    int32_t e2 = raft_epoch(s->nodes[sim_leader(s) >= 0 ? sim_leader(s) : 0].r);
    if (elected >= 0) {
        worst_restart_elect_ms = MAX(worst_restart_elect_ms, elected - t_restart);
        worst_restart_elections = MAX(worst_restart_elections, e2 - epoch);
    }
    expect(s, e2 - epoch <= 2, "full restart: %d elections (epoch %d -> %d)", e2 - epoch, epoch,
           e2);
}

static void graceful_resign(sim_t *s)
{
    int l = settle(s);
    if (l < 0)
        return;
    int32_t epoch = raft_epoch(s->nodes[l].r);
    int64_t t0 = s->now;
    sim_schedule(s, s->now, EV_RESIGN, l, 0, NULL);
    int nl = -1;
    while (!s->failed && s->now <= t0 + s->p.raft.election_timeout_ms && nl < 0) {
        sim_step(s);
        int c = sim_leader(s);
        if (c >= 0 && c != l)
            nl = c;
    }
    if (nl >= 0)
        worst_handover_ms = MAX(worst_handover_ms, s->now - t0);
    expect(s, nl >= 0, "no successor within %d ms of resigning", s->p.raft.election_timeout_ms);
    if (nl >= 0)
        expect(s, raft_epoch(s->nodes[nl].r) == epoch + 1, "handover took %d elections",
               raft_epoch(s->nodes[nl].r) - epoch);
    sim_crash(s, l);
    sim_run_until(s, s->now + 2000);
}

static void observers(sim_t *s)
{
    int l = settle(s);
    if (l < 0)
        return;
    sim_run_until(s, s->now + 3000);
    int64_t hw = raft_high_watermark(s->nodes[l].r);
    for (int o = s->p.n_voters; o < s->n; o++) {
        expect(s, raft_high_watermark(s->nodes[o].r) + CAUGHT_UP_SLACK >= hw, "observer %d lags: %lld vs %lld",
               o + 1, (long long)raft_high_watermark(s->nodes[o].r), (long long)hw);
        expect(s, raft_stats(s->nodes[o].r)->prevote_rounds == 0 &&
                      raft_stats(s->nodes[o].r)->elections == 0,
               "observer %d campaigned", o + 1);
    }
    /* only the leader's vote left: the observers must not make a quorum */
    for (int v = 0; v < s->p.n_voters; v++)
        if (v != l)
            sim_crash(s, v);
    sim_run_until(s, s->now + 500);
    int64_t before = s->chk.n;
    sim_run_until(s, s->now + 3000);
    expect(s, s->chk.n == before, "committed %lld entries without a voter majority",
           (long long)(s->chk.n - before));
}

static void snapshot_catch_up(sim_t *s)
{
    int l = settle(s);
    if (l < 0)
        return;
    int f = (l + 1) % s->n;
    sim_crash(s, f);
    sim_run_until(s, s->now + 8000);
    expect(s, raft_log_start(s->nodes[l].r) > 0, "the leader never snapshotted");
    sim_restart(s, f);
    sim_run_until(s, s->now + 4000);
    int64_t hw = raft_high_watermark(s->nodes[l].r);
    expect(s, raft_stats(s->nodes[f].r)->snapshots_installed >= 1, "no snapshot installed");
    expect(s, raft_high_watermark(s->nodes[f].r) + CAUGHT_UP_SLACK >= hw, "node %d did not catch up", f + 1);
}

/* variant 0: a follower is the one down; 1: an observer */
static void snapshot_by_bytes(sim_t *s, int variant)
{
    int l = settle(s);
    if (l < 0)
        return;
    int f = variant == 1 ? s->n - 1 : (l + 1) % s->n;
    sim_crash(s, f);
    sim_run_until(s, s->now + 8000);
    for (int i = 0; i < s->n; i++) {
        if (i == f)
            continue;
        const node_t *nd = &s->nodes[i];
        expect(s, raft_stats(nd->r)->snapshots_taken >= 2, "node %d took %llu snapshots", i + 1,
               (unsigned long long)raft_stats(nd->r)->snapshots_taken);
        expect(s, nd->disk.snap_id.end_offset > 0 && raft_log_start(nd->r) > 0,
               "node %d never trimmed its log", i + 1);
    }
    int64_t start = raft_log_start(s->nodes[sim_leader(s) >= 0 ? sim_leader(s) : l].r);
    expect(s, s->nodes[f].disk.snap_id.end_offset + (int64_t)s->nodes[f].disk.n_ents < start,
           "the down node's log reaches the leader's log start: no snapshot needed");
    sim_restart(s, f);
    sim_run_until(s, s->now + 4000);
    int lead = sim_leader(s);
    expect(s, lead >= 0, "no leader after the restart");
    if (lead < 0)
        return;
    int64_t hw = raft_high_watermark(s->nodes[lead].r);
    expect(s, raft_stats(s->nodes[f].r)->snapshots_installed >= 1, "no snapshot installed");
    expect(s, s->nodes[f].disk.snap_id.end_offset >= start, "node %d's disk holds no snapshot", f + 1);
    expect(s, raft_high_watermark(s->nodes[f].r) + CAUGHT_UP_SLACK >= hw, "node %d did not catch up",
           f + 1);
}

typedef struct scenario {
    const char *name;
    int voters[3];
    int observers;
    int variant; /* -1: the scenario has no variants */
} scenario_t;

static const scenario_t SCENARIOS[] = {
    {"restarted_follower/crash", {3, 5, 0}, 0, 0},
    {"restarted_follower/isolated", {3, 5, 0}, 0, 1},
    {"restarted_follower/cut_from_leader", {3, 5, 0}, 0, 2},
    {"check_quorum", {3, 5, 7}, 0, -1},
    {"full_restart", {3, 5, 7}, 0, -1},
    {"graceful_resign", {3, 5, 0}, 0, -1},
    {"observers", {3, 0, 0}, 2, -1},
    {"snapshot_catch_up", {3, 5, 0}, 0, -1},
    {"snapshot_by_bytes/follower", {3, 5, 0}, 1, 10},
    {"snapshot_by_bytes/observer", {3, 5, 0}, 1, 11},
    {"controller/fence_and_return", {3, 5, 0}, 0, 20},
    {"controller/crash_after_propose", {3, 5, 0}, 0, 21},
};

static void controller_scenario(sim_t *s, int variant)
{
    if (variant == 20) {
        int64_t fence_ms = -1, unfence_ms = -1;
        ctl_scenario_fence(s, &fence_ms, &unfence_ms);
        worst_fence_ms = MAX(worst_fence_ms, fence_ms);
        worst_unfence_ms = MAX(worst_unfence_ms, unfence_ms);
        return;
    }
    int crashes = 0;
    ctl_scenario_crash_after_propose(s, &crashes);
    if (fewest_crashes_in_flight < 0 || crashes < fewest_crashes_in_flight)
        fewest_crashes_in_flight = crashes;
}

static void run_one(sim_t *s, const scenario_t *sc)
{
    const char *n = sc->name;
    if (sc->variant >= 20)
        controller_scenario(s, sc->variant);
    else if (sc->variant >= 10)
        snapshot_by_bytes(s, sc->variant - 10);
    else if (sc->variant >= 0)
        restarted_follower(s, sc->variant);
    else if (n[0] == 'c')
        check_quorum(s);
    else if (n[0] == 'f')
        full_restart(s);
    else if (n[0] == 'g')
        graceful_resign(s);
    else if (n[0] == 'o')
        observers(s);
    else
        snapshot_catch_up(s);
    check_logs(s);
}

int scenarios_run(uint64_t seed, bool verbose, int *passed, int *failed)
{
    for (size_t k = 0; k < ARRAY_LEN(SCENARIOS); k++) {
        const scenario_t *sc = &SCENARIOS[k];
        int bad = 0, runs = 0;
        for (int v = 0; v < 3 && sc->voters[v]; v++)
            for (uint64_t sub = 0; sub < SCENARIO_SUBSEEDS; sub++) {
                sim_t *s = xcalloc(1, sizeof(*s));
                uint64_t sseed = seed * 1000 + k * 100 + (uint64_t)v * 10 + sub;
                quiet = sc->variant == 20; /* only brokers speak */
                bool by_bytes = sc->variant >= 10 && sc->variant < 20, ctl = sc->variant >= 20;
                start(s, sseed, sc->voters[v], sc->observers,
                      sc->name[0] == 's' && !by_bytes ? 50 : 0, by_bytes ? 1500 : 0, ctl, verbose);
                run_one(s, sc);
                runs++;
                if (s->failed) {
                    bad++;
                    printf("scenario %s voters=%d seed=%llu FAILED: %s\n", sc->name,
                           sc->voters[v], (unsigned long long)sseed, s->failure);
                }
                sim_free(s);
                free(s);
            }
        if (verbose || bad)
            printf("scenario %s: %d/%d runs ok\n", sc->name, runs - bad, runs);
        if (bad)
            (*failed)++;
        else
            (*passed)++;
    }
    printf("scenarios: check-quorum step-down after %lld ms (bound %d); full restart: leader "
           "after %lld ms (bound %d), %d elections (bound 2); resign handover %lld ms\n",
           (long long)worst_step_down_ms, RAFT_FETCH_TIMEOUT_MS_DEFAULT,
           (long long)worst_restart_elect_ms, 2 * RAFT_ELECTION_TIMEOUT_MS_DEFAULT,
           worst_restart_elections, (long long)worst_handover_ms);
    printf("scenarios: controller fenced a silent broker after %lld ms, unfenced it after %lld ms; "
           "at least %d leader crashes with a round in flight per run\n",
           (long long)worst_fence_ms, (long long)worst_unfence_ms, fewest_crashes_in_flight);
    return *failed;
}
