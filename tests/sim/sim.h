/*
 * sim.h - Chronik's deterministic cluster simulator for the Raft core.
 *
 * One process simulates a whole cluster: a simulated clock, a network
 * (per-message delay, loss, duplication, reordering, partitions that heal,
 * one-way partitions), one disk per node (a crash keeps only what was
 * synced, plus possibly a prefix of what was written after), crashes and
 * restarts at any point, and a proposal workload. Everything random comes
 * from one seed, so every run can be replayed from it.
 *
 * With the controller on (the chaos runs), every node also runs the
 * controller's decisions (src/meta/decide.c) and keeps its own metadata
 * image: the leader turns requests from simulated clients and brokers into
 * rounds it proposes, and every node applies committed entries through the
 * real metadata-log framing and codec (ctl.c).
 *
 * After every step the checker (check.c) verifies the safety properties;
 * after faults stop it verifies liveness. Files:
 *   world.c      events, network, disks, driving the cores
 *   check.c      invariants
 *   ctl.c        the controller on every node, its workload and its checks
 *   chaos.c      one randomised run per seed
 *   scenarios.c  pinned scenarios with exact expectations
 *   bench.c      --bench
 *   main.c       command line
 */
#ifndef CHRONIK_SIM_H
#define CHRONIK_SIM_H

#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_NODES_MAX 10
#define SIM_PAYLOAD_MAX 64             /* proposal bytes: 8-byte id + filler */
#define SIM_SNAPSHOT_HEADER_BYTES 24   /* end offset, chain hash, entry count */
#define SIM_SAME_TIME_TICKS_MAX 10000  /* more ticks at one instant: livelock */

/* ---- deterministic randomness ----------------------------------------- */
typedef struct rng {
    uint64_t s;
} rng_t;

static inline uint64_t rng_u64(rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [lo, hi]. */
static inline int64_t rng_between(rng_t *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_u64(r) % (uint64_t)(hi - lo + 1));
}
static inline bool rng_chance(rng_t *r, double p) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53 < p; }

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- parameters -------------------------------------------------------- */
typedef struct sim_params {
    int n_voters, n_observers;
    int64_t delay_min_ms, delay_max_ms; /* per message, uniform */
    double loss, dup;
    int64_t sync_min_ms, sync_max_ms;   /* per fsync */
    double slow_sync_p;
    int64_t slow_sync_max_ms;
    double crash_keep_p;                /* a crash keeps a prefix of unsynced ops */
    raft_config_t raft;                 /* timeouts etc.; ids/voters/seed set per node */
    bool snapshots_on_request;          /* answer want_snapshot */
    bool controller;                    /* entries are controller rounds (ctl.c) */
    int n_extra_brokers;                /* broker-only ids above the nodes' */
} sim_params_t;

/* ---- disks ------------------------------------------------------------- */
typedef struct disk_op { /* an op written but not yet synced (owned copies) */
    raft_op_t op;
    raft_entry_t *entries;
    uint8_t *snapshot;
} disk_op_t;

typedef struct disk {
    raft_qstate_t qstate;
    raft_snapshot_id_t snap_id;
    uint8_t *snap;
    size_t snap_len;
    raft_entry_t *ents; /* owned; offsets snap_id.end_offset + i */
    size_t n_ents, cap_ents;
    disk_op_t *pend;
    size_t n_pend, cap_pend;
    bool sync_inflight;
    uint64_t sync_target;
} disk_t;

/* ---- nodes ------------------------------------------------------------- */
typedef struct node {
    int32_t id;
    bool voter;
    bool up;
    uint32_t inc; /* incarnation: bumped at every crash */
    raft_t *r;
    disk_t disk;
    /* state machine: a hash chain over applied entries */
    int64_t sm_next;
    uint64_t sm_chain;
    int64_t sm_count;
    /* observations */
    int64_t hw_seen;
    raft_role_t role;
    int32_t epoch;
    int64_t tick_at;
    uint64_t tick_gen;
    int64_t same_time_ticks;
    int64_t last_tick_time;
    int armed;              /* crash right after writing an op (1 state, 2 any)
                               or after sending a granted vote (3) */
    int64_t armed_down_ms;  /* then stay down this long */
    /* the controller (ctl.c): its image of the applied entries, its state */
    struct meta_image *img;
    struct meta_ctl *ctl;
    int64_t ctl_wait_offset; /* this leader's round in flight, -1 none */
    int32_t ctl_wait_epoch;
} node_t;

/* ---- events ------------------------------------------------------------ */
enum ev_kind {
    EV_DELIVER = 0, EV_TICK, EV_SYNC_DONE, EV_CRASH, EV_RESTART, EV_BLOCK, EV_UNBLOCK,
    EV_PROPOSE, EV_RESIGN, EV_CALL,
};

struct sim;
typedef void (*sim_call_fn)(struct sim *s, void *arg);

typedef struct event {
    int64_t t;
    uint64_t seq;
    int kind;
    int node;
    uint32_t inc;
    uint64_t arg;
    void *ptr;
    sim_call_fn fn; /* EV_CALL */
} event_t;

/* ---- the checker's global view ------------------------------------------ */
typedef struct gentry {
    int32_t epoch;
    int32_t commit_epoch; /* epoch of the node that applied it first: its committer */
    uint8_t kind;
    uint64_t hash;
    uint64_t chain;
} gentry_t;

typedef struct checker {
    gentry_t *ents; /* the one committed sequence, offsets 0.. */
    int64_t n, cap;
    int32_t *leader_of; /* epoch -> leader id, -1 none */
    int32_t n_epochs;
    uint64_t violations_seen;
} checker_t;

/* ---- the world ----------------------------------------------------------- */
typedef struct sim {
    uint64_t seed;
    rng_t rng;
    sim_params_t p;
    int64_t now;
    int n;
    node_t nodes[SIM_NODES_MAX];
    int blocked[SIM_NODES_MAX][SIM_NODES_MAX]; /* partition counts, from -> to */
    event_t *heap;
    size_t n_heap, cap_heap;
    uint64_t next_seq;
    bool verbose;
    bool failed;
    char failure[512];
    checker_t chk;
    /* workload */
    uint64_t next_prop_id;
    uint64_t stable_first_id; /* first proposal id after faults stopped */
    int64_t stable_at;        /* -1 while faults may happen */
    int64_t elected_at;       /* first leader committing in its epoch after stable_at */
    int64_t committed_at;     /* first post-stable proposal applied */
    struct ctl_world *ctl;    /* controller workload and checks (ctl.c), NULL when off */
    /* statistics */
    uint64_t msgs_sent, msgs_lost, events;
    uint64_t elections;
    int max_epoch;
    /* bench instrumentation */
    bool measure;
    int64_t core_ns;
    void *user; /* the driver's context (chaos.c, scenarios.c) */
} sim_t;

/* world.c */
void sim_init(sim_t *s, uint64_t seed, const sim_params_t *p, bool verbose);
void sim_free(sim_t *s);
void sim_default_params(sim_params_t *p);
void sim_schedule(sim_t *s, int64_t t, int kind, int node, uint64_t arg, void *ptr);
void sim_call_at(sim_t *s, int64_t t, sim_call_fn fn, void *arg);
bool sim_step(sim_t *s);                 /* one event; false when none is left */
void sim_run_until(sim_t *s, int64_t t);
void sim_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_trace(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_crash(sim_t *s, int i);
void sim_restart(sim_t *s, int i);
void sim_block(sim_t *s, int from, int to, int delta);
void sim_heal_all(sim_t *s);
int sim_propose(sim_t *s, int i, int count); /* proposals accepted */
int sim_leader(const sim_t *s);              /* up node leading the newest epoch, -1 */
void sim_process(sim_t *s, int i);           /* drain node i's ready */

/* check.c */
void check_init(checker_t *c);
void check_free(checker_t *c);
void check_leader(sim_t *s, int i);
void check_apply(sim_t *s, int i, const raft_entry_t *e);
void check_restore(sim_t *s, int i, int64_t end_offset, uint64_t chain);
void check_logs(sim_t *s); /* full scan: every node's committed prefix */
uint64_t check_entry_hash(const raft_entry_t *e);

/* ctl.c */
void ctl_init(sim_t *s);
void ctl_free(sim_t *s);
void ctl_node_reset(sim_t *s, int i);   /* a (re)start: empty image, fresh controller */
void ctl_node_free(sim_t *s, int i);
void ctl_apply(sim_t *s, int i, const raft_entry_t *e);
/* A snapshot of node i's image; false when it cannot be encoded. */
bool ctl_snapshot(sim_t *s, int i, uint8_t **out, size_t *len);
void ctl_restore(sim_t *s, int i, int64_t end, const uint8_t *p, size_t len);
bool ctl_step(sim_t *s, int i);         /* a leader decides queued requests: true if it proposed */
void ctl_start_workload(sim_t *s);      /* clients and brokers, from now on */
int ctl_enqueue_random(sim_t *s, int count); /* client requests queued */
void ctl_check_end(sim_t *s);           /* images at the end of a run */
typedef struct ctl_totals {             /* over every run of the process */
    uint64_t runs, proposed, rounds, ops, op_errors, topics, brokers, brokers_fenced;
} ctl_totals_t;
extern ctl_totals_t ctl_totals;
void ctl_scenario_fence(sim_t *s, int64_t *fence_ms, int64_t *unfence_ms);
void ctl_scenario_crash_after_propose(sim_t *s, int *crashes);

/* chaos.c, scenarios.c, bench.c */
typedef struct run_result {
    bool ok;
    int64_t time_to_elect_ms; /* -1 if never measured */
    int64_t time_to_commit_ms;
    int n_voters;
    bool default_timeouts; /* the Kafka defaults; times are compared only then */
} run_result_t;
run_result_t chaos_run(uint64_t seed, bool verbose);
int scenarios_run(uint64_t seed, bool verbose, int *passed, int *failed);
int bench_run(int batch, int64_t commits);

#endif
