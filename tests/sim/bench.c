/*
 * bench.c - --bench: three voters, free I/O (no network delay, instant
 * fsync), no faults. The leader is kept fed with batches of `batch`
 * proposals (at most two batches uncommitted), so each append and each
 * fetch carries many entries. Prints one JSON object:
 *   core_ns_per_commit   CPU time spent inside the three cores, per
 *                        committed entry
 *   commits_per_sec      committed entries per wall-clock second of the
 *                        whole simulation (cores + simulated world)
 * Snapshots are taken every BENCH_SNAPSHOT_ENTRIES entries, so memory stays
 * bounded as it would in production.
 */
#include "sim.h"

#include "base/util.h"

#include <stdlib.h>

#define BENCH_SNAPSHOT_ENTRIES 20000

int bench_run(int batch, int64_t commits)
{
    sim_params_t p;
    sim_default_params(&p);
    p.n_voters = 3;
    p.delay_min_ms = p.delay_max_ms = 0;
    p.sync_min_ms = p.sync_max_ms = 0;
    p.crash_keep_p = 0;
    p.raft.fetch_max_bytes = 1 << 20;
    p.raft.snapshot_min_entries = BENCH_SNAPSHOT_ENTRIES; /* bounded memory, as in production */
    sim_t *s = xcalloc(1, sizeof(*s));
    sim_init(s, 42, &p, false);
    int l = -1;
    while (!s->failed && (l = sim_leader(s)) < 0)
        sim_step(s);
    if (l < 0) {
        fprintf(stderr, "bench: no leader\n");
        return 1;
    }
    int64_t hw0 = raft_high_watermark(s->nodes[l].r);
    s->measure = true;
    s->core_ns = 0;
    int64_t t0 = clock_mono_ns();
    uint64_t steps = 0;
    while (!s->failed && raft_high_watermark(s->nodes[l].r) - hw0 < commits) {
        const raft_t *r = s->nodes[l].r;
        if (raft_log_end(r) - raft_high_watermark(r) < 2 * (int64_t)batch)
            sim_propose(s, l, batch);
        if (!sim_step(s))
            break;
        steps++;
    }
    int64_t wall = clock_mono_ns() - t0;
    int64_t done = raft_high_watermark(s->nodes[l].r) - hw0;
    if (s->failed || done <= 0) {
        fprintf(stderr, "bench failed: %s\n", s->failure);
        return 1;
    }
    double ns_per = (double)s->core_ns / (double)done;
    printf("{\"nodes\": 3, \"batch\": %d, \"commits\": %lld, \"core_ns_per_commit\": %.1f, "
           "\"core_commits_per_sec\": %.0f, \"commits_per_sec\": %.0f, \"wall_s\": %.3f, "
           "\"events\": %llu}\n",
           batch, (long long)done, ns_per, 1e9 / ns_per, (double)done * 1e9 / (double)wall,
           (double)wall / 1e9, (unsigned long long)steps);
    sim_free(s);
    free(s);
    return 0;
}
