/*
 * main.c - the simulator's command line.
 *
 *   chronik-sim --seeds N [--first S]   pinned scenarios, then seeds S..S+N-1;
 *                                       ends with the line "P passed, F failed"
 *   chronik-sim --seed X [--verbose]    one seed, with a trace when verbose
 *   chronik-sim --scenarios [--verbose] only the pinned scenarios
 *   chronik-sim --bench [--batch B] [--commits N]
 *                                       3 nodes, free I/O, no faults; JSON out
 *
 * A failing seed prints its number and the broken property; replay it
 * with --seed X --verbose. A core assertion aborts the process: the
 * handler below still names the seed and prints the summary line.
 */
#include "sim.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCENARIO_SEED 1

static volatile uint64_t current_seed;
static volatile int passed_count, failed_count;

static void on_abort(int sig)
{
    (void)sig;
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "seed %llu FAILED: core assertion (replay: --seed %llu --verbose)\n"
                     "%d passed, %d failed\n",
                     (unsigned long long)current_seed, (unsigned long long)current_seed,
                     passed_count, failed_count + 1);
    if (n > 0)
        (void)!write(STDOUT_FILENO, buf, (size_t)n);
    _exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: chronik-sim --seeds N [--first S] | --seed X [--verbose] | "
                    "--scenarios [--verbose] | --bench [--batch B] [--commits N]\n");
    exit(2);
}

static int run_seeds(uint64_t first, uint64_t n)
{
    int sp = 0, sf = 0;
    current_seed = SCENARIO_SEED;
    scenarios_run(SCENARIO_SEED, false, &sp, &sf);
    passed_count = sp;
    failed_count = sf;
    int64_t worst_elect = -1, worst_commit = -1;
    uint64_t worst_elect_seed = 0, worst_commit_seed = 0;
    for (uint64_t seed = first; seed < first + n; seed++) {
        current_seed = seed;
        fflush(stdout);
        run_result_t r = chaos_run(seed, false);
        if (r.ok)
            passed_count++;
        else
            failed_count++;
        if (!r.default_timeouts)
            continue;
        if (r.time_to_elect_ms > worst_elect)
            worst_elect = r.time_to_elect_ms, worst_elect_seed = seed;
        if (r.time_to_commit_ms > worst_commit)
            worst_commit = r.time_to_commit_ms, worst_commit_seed = seed;
    }
    printf("scenarios: %d passed, %d failed\n", sp, sf);
    printf("longest time to elect after faults stop (default timeouts): %lld ms (seed %llu)\n",
           (long long)worst_elect,
           (unsigned long long)worst_elect_seed);
    printf("longest time to first commit after faults stop (default timeouts): %lld ms (seed %llu)\n",
           (long long)worst_commit, (unsigned long long)worst_commit_seed);
    const ctl_totals_t *c = &ctl_totals;
    printf("controller runs: %llu; rounds committed %llu of %llu proposed; requests %llu (%llu refused); "
           "at the ends %llu topics, %llu brokers registered, %llu of them fenced\n",
           (unsigned long long)c->runs, (unsigned long long)c->rounds, (unsigned long long)c->proposed,
           (unsigned long long)c->ops, (unsigned long long)c->op_errors, (unsigned long long)c->topics,
           (unsigned long long)c->brokers, (unsigned long long)c->brokers_fenced);
    printf("%d passed, %d failed\n", passed_count, failed_count);
    return failed_count ? 1 : 0;
}

int main(int argc, char **argv)
{
    uint64_t seeds = 0, first = 1, seed = 0;
    bool one = false, verbose = false, scen = false, bench = false;
    int batch = 64;
    int64_t commits = 200000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--seeds") && more)
            seeds = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--first") && more)
            first = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seed") && more)
            seed = strtoull(argv[++i], NULL, 10), one = true;
        else if (!strcmp(a, "--verbose"))
            verbose = true;
        else if (!strcmp(a, "--scenarios"))
            scen = true;
        else if (!strcmp(a, "--bench"))
            bench = true;
        else if (!strcmp(a, "--batch") && more)
            batch = atoi(argv[++i]);
        else if (!strcmp(a, "--commits") && more)
            commits = atoll(argv[++i]);
        else
            usage();
    }
    signal(SIGABRT, on_abort);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (bench)
        return bench_run(batch > 0 ? batch : 1, commits);
    if (scen) {
        int p = 0, f = 0;
        current_seed = SCENARIO_SEED;
        scenarios_run(SCENARIO_SEED, verbose, &p, &f);
        printf("%d passed, %d failed\n", p, f);
        return f ? 1 : 0;
    }
    if (one) {
        current_seed = seed;
        run_result_t r = chaos_run(seed, verbose);
        printf("%d passed, %d failed\n", r.ok ? 1 : 0, r.ok ? 0 : 1);
        return r.ok ? 0 : 1;
    }
    if (!seeds)
        usage();
    return run_seeds(first, seeds);
}
