/*
 * chaos.c - one randomised run per seed.
 *
 * From the seed: a cluster of 1, 3, 5 or 7 voters (plus 0-2 observers),
 * network delays, loss and duplication, disk latencies, whether crashes
 * keep part of the unsynced writes, snapshot thresholds and chunk sizes,
 * and a schedule of faults for the chaos phase: crashes and restarts,
 * whole-cluster crashes, partitions (isolation, splits, one-way), crashes
 * and isolation of the current leader, graceful leader shutdown. A
 * workload proposes batches to the leader throughout: in half the runs
 * raw entries, in the others requests to the controller, whose rounds
 * every node applies to its metadata image (ctl.c).
 *
 * When the chaos phase ends, faults stop: partitions heal, loss and
 * duplication stop, crashed nodes restart, except that sometimes a
 * minority of voters is killed and kept down. Then a leader must commit a
 * proposal made after that moment within LIVENESS_FETCH_TIMEOUTS fetch
 * timeouts (12 s with the defaults), and every live node must catch up
 * within CATCH_UP_MS.
 */
#include "sim.h"

#include "base/util.h"

#include <stdint.h>
#include <stdlib.h>

#define CHAOS_MIN_MS 3000
#define CHAOS_MAX_MS 30000
#define LIVENESS_FETCH_TIMEOUTS 6 /* bound: leader + commit within 6 fetch timeouts */
#define CATCH_UP_MS 5000

enum fault { F_CRASH, F_RESTART, F_BLOCK, F_UNBLOCK, F_RESIGN_LEADER, F_CRASH_LEADER,
             F_ISOLATE_LEADER, F_ARM };

static void *code(int f, int a, int b) { return (void *)(uintptr_t)(f | a << 8 | b << 16); }

static void isolate(sim_t *s, int x, int delta)
{
    for (int j = 0; j < s->n; j++) {
        if (j == x)
            continue;
        sim_block(s, x, j, delta);
        sim_block(s, j, x, delta);
    }
}

static void fault(sim_t *s, void *arg)
{
    if (s->stable_at >= 0)
        return; /* faults have stopped */
    uintptr_t c = (uintptr_t)arg;
    int f = (int)(c & 0xff), a = (int)(c >> 8 & 0xff), b = (int)(c >> 16 & 0xff);
    int leader = sim_leader(s);
    switch (f) {
    case F_CRASH: sim_crash(s, a); break;
    case F_RESTART: sim_restart(s, a); break;
    case F_BLOCK: sim_block(s, a, b, +1); break;
    case F_UNBLOCK: sim_block(s, a, b, -1); break;
    case F_RESIGN_LEADER:
        if (leader < 0)
            break;
        sim_schedule(s, s->now, EV_RESIGN, leader, 0, NULL);
        sim_call_at(s, s->now + rng_between(&s->rng, 0, 500), fault, code(F_CRASH, leader, 0));
        sim_call_at(s, s->now + rng_between(&s->rng, 600, 3000), fault, code(F_RESTART, leader, 0));
        break;
    case F_CRASH_LEADER:
        if (leader < 0)
            break;
        sim_crash(s, leader);
        sim_call_at(s, s->now + rng_between(&s->rng, 0, 4000), fault, code(F_RESTART, leader, 0));
        break;
    case F_ARM: /* crash node a right after its next (state) write */
        if (s->nodes[a].up) {
            s->nodes[a].armed = b;
            s->nodes[a].armed_down_ms = rng_between(&s->rng, 0, b == 3 ? 200 : 3000);
        }
        break;
    case F_ISOLATE_LEADER: {
        if (leader < 0)
            break;
        isolate(s, leader, +1);
        int64_t heal = s->now + rng_between(&s->rng, 500, 5000);
        for (int j = 0; j < s->n; j++)
            if (j != leader) {
                sim_call_at(s, heal, fault, code(F_UNBLOCK, leader, j));
                sim_call_at(s, heal, fault, code(F_UNBLOCK, j, leader));
            }
        break;
    }
    }
}

static void schedule_partition(sim_t *s, int64_t t)
{
    rng_t *g = &s->rng;
    int64_t heal = t + rng_between(g, 100, 6000);
    int type = (int)rng_between(g, 0, 2), x = (int)rng_between(g, 0, s->n - 1);
    bool side[SIM_NODES_MAX];
    for (int i = 0; i < s->n; i++)
        side[i] = type == 0 ? i == x : rng_chance(g, 0.5);
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < s->n; j++) {
            if (i == j || side[i] == side[j])
                continue;
            if (type == 2 && !side[i]) /* one-way: only side -> rest is cut */
                continue;
            sim_call_at(s, t, fault, code(F_BLOCK, i, j));
            sim_call_at(s, heal, fault, code(F_UNBLOCK, i, j));
        }
}

static void schedule_faults(sim_t *s, int64_t until)
{
    rng_t *g = &s->rng;
    for (int64_t t = rng_between(g, 300, 2000); t < until; t += rng_between(g, 50, 1500)) {
        int k = (int)rng_between(g, 0, 99), x = (int)rng_between(g, 0, s->n - 1);
        if (k < 15) {
            sim_call_at(s, t, fault, code(F_ARM, x, (int)rng_between(g, 1, 3)));
        } else if (k < 30) {
            sim_call_at(s, t, fault, code(F_CRASH, x, 0));
            sim_call_at(s, t + rng_between(g, 0, 5000), fault, code(F_RESTART, x, 0));
        } else if (k < 60) {
            schedule_partition(s, t);
        } else if (k < 70) {
            sim_call_at(s, t, fault, code(F_RESIGN_LEADER, 0, 0));
        } else if (k < 75) {
            for (int i = 0; i < s->n; i++) {
                sim_call_at(s, t, fault, code(F_CRASH, i, 0));
                sim_call_at(s, t + rng_between(g, 0, 3000), fault, code(F_RESTART, i, 0));
            }
        } else if (k < 88) {
            sim_call_at(s, t, fault, code(F_CRASH_LEADER, 0, 0));
        } else {
            sim_call_at(s, t, fault, code(F_ISOLATE_LEADER, 0, 0));
        }
    }
}

static void workload(sim_t *s, void *arg)
{
    int target = rng_chance(&s->rng, 0.85) ? sim_leader(s) : (int)rng_between(&s->rng, 0, s->n - 1);
    if (target >= 0)
        sim_propose(s, target, (int)rng_between(&s->rng, 1, 4));
    sim_call_at(s, s->now + rng_between(&s->rng, 10, 80), workload, arg);
}

static void stabilize(sim_t *s, void *arg)
{
    UNUSED(arg);
    sim_trace(s, "faults stop");
    s->stable_at = s->now;
    s->stable_first_id = s->next_prop_id;
    s->p.loss = 0;
    s->p.dup = 0;
    sim_heal_all(s);
    bool down[SIM_NODES_MAX] = {false};
    int minority = (s->p.n_voters - 1) / 2;
    if (minority > 0 && rng_chance(&s->rng, 0.3)) {
        int k = (int)rng_between(&s->rng, 1, minority);
        for (int n = 0; n < k; n++)
            down[rng_between(&s->rng, 0, s->p.n_voters - 1)] = true;
    }
    for (int i = 0; i < s->n; i++) {
        if (down[i])
            sim_crash(s, i);
        else
            sim_restart(s, i);
    }
    check_logs(s);
}

static void pick_params(uint64_t seed, sim_params_t *p)
{
    rng_t g = {mix64(seed ^ 0xc4a05c4a05ull)};
    sim_default_params(p);
    int w = (int)rng_between(&g, 0, 99);
    p->n_voters = w < 10 ? 1 : w < 50 ? 3 : w < 85 ? 5 : 7;
    w = (int)rng_between(&g, 0, 99);
    p->n_observers = w < 70 ? 0 : w < 90 ? 1 : 2;
    p->delay_min_ms = rng_between(&g, 0, 5);
    p->delay_max_ms = p->delay_min_ms + rng_between(&g, 0, 40);
    static const double loss[] = {0, 0, 0.01, 0.05, 0.15}, dup[] = {0, 0.01, 0.05};
    p->loss = loss[rng_between(&g, 0, 4)];
    p->dup = dup[rng_between(&g, 0, 2)];
    p->sync_min_ms = rng_between(&g, 0, 5);
    p->sync_max_ms = p->sync_min_ms + rng_between(&g, 0, 20);
    static const double slow[] = {0, 0.02, 0.1};
    p->slow_sync_p = slow[rng_between(&g, 0, 2)];
    p->slow_sync_max_ms = rng_between(&g, 100, 600);
    p->crash_keep_p = (double)rng_between(&g, 0, 4) / 4;
    p->raft.fetch_max_bytes = (int32_t)rng_between(&g, 512, 8192);
    p->raft.snapshot_min_entries = rng_chance(&g, 0.3) ? 0 : rng_between(&g, 10, 300);
    p->raft.snapshot_chunk_bytes = (int32_t)rng_between(&g, 32, 512);
    if (rng_chance(&g, 0.3)) { /* short timeouts: many more elections per run */
        int32_t e = (int32_t)rng_between(&g, 100, 600);
        p->raft.election_timeout_ms = p->raft.election_backoff_max_ms = e;
        p->raft.fetch_timeout_ms = p->raft.request_timeout_ms = 2 * e;
        p->raft.fetch_max_wait_ms = e / 2;
        /* Raft needs round trips and fsyncs well inside the timeouts */
        p->delay_max_ms = MIN(p->delay_max_ms, e / 4);
        p->delay_min_ms = MIN(p->delay_min_ms, p->delay_max_ms);
        p->sync_max_ms = MIN(p->sync_max_ms, e / 4);
        p->sync_min_ms = MIN(p->sync_min_ms, p->sync_max_ms);
        p->slow_sync_max_ms = MIN(p->slow_sync_max_ms, e / 2);
    }
    /* the production trigger, by committed bytes, beside the entry count */
    p->raft.snapshot_min_bytes = rng_chance(&g, 0.5) ? 0 : rng_between(&g, 500, 20000);
    /* Half the runs drive the controller (ctl.c); the others propose raw
     * entries of 8-64 bytes, cheaper, so the Raft core alone also meets
     * many small entries and snapshots of tens of bytes. */
    p->controller = rng_chance(&g, 0.5);
    p->n_extra_brokers = (int)rng_between(&g, 0, 2);
    /* A snapshot of an image is kilobytes: when snapshots come every few
     * entries, a follower fetching one in tiny chunks never finishes before
     * the next replaces it, so tiny chunks only with rare snapshots. */
    bool rare = p->raft.snapshot_min_entries >= 150 &&
                (p->raft.snapshot_min_bytes == 0 || p->raft.snapshot_min_bytes >= 10000);
    if (p->controller && !rare)
        p->raft.snapshot_chunk_bytes *= 16;
}

/* A live node below target, or -1. */
static int lagging(sim_t *s, int64_t target)
{
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].up && raft_high_watermark(s->nodes[i].r) < target)
            return i;
    return -1;
}

run_result_t chaos_run(uint64_t seed, bool verbose)
{
    sim_params_t p;
    pick_params(seed, &p);
    sim_t *s = xcalloc(1, sizeof(*s));
    sim_init(s, seed, &p, verbose);
    int64_t chaos_end = rng_between(&s->rng, CHAOS_MIN_MS, CHAOS_MAX_MS);
    schedule_faults(s, chaos_end);
    if (p.controller)
        ctl_start_workload(s);
    sim_call_at(s, rng_between(&s->rng, 0, 50), workload, NULL);
    sim_call_at(s, chaos_end, stabilize, NULL);
    sim_run_until(s, chaos_end);
    int64_t bound = LIVENESS_FETCH_TIMEOUTS * (int64_t)p.raft.fetch_timeout_ms;
    int64_t deadline = chaos_end + bound;
    while (!s->failed && s->now < deadline && (s->elected_at < 0 || s->committed_at < 0))
        sim_step(s);
    if (!s->failed && (s->elected_at < 0 || s->committed_at < 0))
        sim_fail(s, "liveness: %d voters, faults stopped at %lld, no %s within %lld ms",
                 p.n_voters, (long long)chaos_end, s->elected_at < 0 ? "leader" : "commit",
                 (long long)bound);
    int leader = sim_leader(s);
    int64_t target = leader >= 0 ? raft_high_watermark(s->nodes[leader].r) : 0;
    sim_run_until(s, s->now + CATCH_UP_MS);
    int lag = lagging(s, target);
    if (!s->failed && lag >= 0) {
        const raft_t *r = s->nodes[lag].r;
        sim_fail(s, "catch-up: node %d (%s, epoch %d, leader %d, log [%lld,%lld)) is below high "
                    "watermark %lld %d ms after a commit",
                 lag + 1, raft_role_name(raft_role(r)), raft_epoch(r), raft_leader_id(r),
                 (long long)raft_log_start(r), (long long)raft_log_end(r), (long long)target,
                 CATCH_UP_MS);
    }
    check_logs(s);
    if (!s->failed && p.controller)
        ctl_check_end(s);
    run_result_t res = {.ok = !s->failed, .n_voters = p.n_voters,
                        .default_timeouts = p.raft.election_timeout_ms ==
                                            RAFT_ELECTION_TIMEOUT_MS_DEFAULT,
                        .time_to_elect_ms = s->elected_at >= 0 ? s->elected_at - chaos_end : -1,
                        .time_to_commit_ms = s->committed_at >= 0 ? s->committed_at - chaos_end : -1};
    if (s->failed)
        printf("seed %llu FAILED: %s\n", (unsigned long long)seed, s->failure);
    else if (verbose)
        printf("seed %llu ok: controller=%d voters=%d observers=%d epochs=%d elections=%llu events=%llu "
               "elect=%lldms commit=%lldms committed=%lld\n",
               (unsigned long long)seed, p.controller, p.n_voters, p.n_observers, s->max_epoch,
               (unsigned long long)s->elections, (unsigned long long)s->events,
               (long long)res.time_to_elect_ms, (long long)res.time_to_commit_ms,
               (long long)s->chk.n);
    sim_free(s);
    free(s);
    return res;
}
