/*
 * meta_startup.c - how long a node takes to load its metadata at start, from
 * the whole metadata log versus from a snapshot plus the log above it.
 *
 * It drives the metadata layer directly (meta_open on a fresh data
 * directory under /tmp, a single voter, no network): creates --topics
 * topics of --partitions partitions (submitted together, so the controller
 * batches them into rounds), then --churn configuration changes spread
 * over those topics (a long-lived cluster's history: the log grows, the
 * image does not), closes, and times the next meta_open of two such data
 * directories: one written with snapshots off (the whole log is replayed),
 * one with metadata.log.max.record.bytes.between.snapshots at
 * --snapshot-bytes (the newest snapshot, then the log above it). Prints
 * one JSON object.
 *
 *   build/bench/meta_startup [--topics N] [--partitions P] [--churn C] [--snapshot-bytes B]
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "bench_clock.h"
#include "meta/meta.h"
#include "storage/storage.h"

typedef struct pending {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int left, failed;
} pending_t;

static void op_done(void *arg, int16_t err, const char *msg)
{
    pending_t *p = arg;
    (void)msg;
    pthread_mutex_lock(&p->lock);
    p->left--;
    p->failed += err != 0;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static int wait_all(pending_t *p);

/* ops > topics: the rest are configuration changes of those topics. */
static int write_history(meta_t *m, int topics, int partitions, int ops)
{
    pending_t p = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .left = topics};
    for (int i = 0; i < topics; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-%06d", i);
        meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, name, strlen(name));
        op->partitions = partitions;
        op->replication_factor = 1;
        op->done = op_done;
        op->arg = &p;
        meta_submit(m, op);
    }
    if (wait_all(&p) != 0)
        return -1;
    p.left = ops - topics;
    for (int i = topics; i < ops; i++) {
        char name[32], value[32];
        snprintf(name, sizeof name, "bench-%06d", i % topics);
        snprintf(value, sizeof value, "%d", 60000 + i);
        meta_op *op = meta_op_new(META_OP_ALTER_CONFIGS, name, strlen(name));
        meta_op_add_config(op, "retention.ms", 12, value, strlen(value));
        op->done = op_done;
        op->arg = &p;
        meta_submit(m, op);
    }
    return wait_all(&p);
}

static int wait_all(pending_t *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->left > 0)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return p->failed;
}

typedef struct result {
    double open_s;
    int64_t snapshot_end, log_end, log_start;
    int ntopics;
} result_t;

/* Writes the topics into a fresh directory, then times a reopen. */
static int run(const meta_config *base, int topics, int partitions, int churn, result_t *out)
{
    meta_config mc = *base;
    meta_t *m;
    if (meta_open(&mc, NULL, NULL, &m) != STORAGE_OK || write_history(m, topics, partitions, topics + churn) != 0)
        return -1;
    meta_quorum_status q;
    for (int i = 0; i < 3000; i++) { /* let a snapshot asked for land */
        meta_quorum_status_get(m, &q);
        if (mc.snapshot_interval_ms < 0 || q.snapshot_end_offset > 0)
            break;
        usleep(10000);
    }
    meta_close(m);
    double t0 = now_s();
    if (meta_open(&mc, NULL, NULL, &m) != STORAGE_OK)
        return -1;
    out->open_s = now_s() - t0;
    meta_quorum_status_get(m, &q);
    meta_image *img = meta_acquire(m);
    out->ntopics = img->ntopics;
    meta_image_release(img);
    out->snapshot_end = q.snapshot_end_offset;
    out->log_end = q.log_end;
    out->log_start = q.log_start_offset;
    meta_close(m);
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void print_result(const char *name, const result_t *r, int last)
{
    printf("  \"%s\": {\"open_ms\": %.1f, \"topics\": %d, \"snapshot_end_offset\": %lld, "
           "\"log_start_offset\": %lld, \"log_end_offset\": %lld}%s\n",
           name, r->open_s * 1000, r->ntopics, (long long)r->snapshot_end, (long long)r->log_start,
           (long long)r->log_end, last ? "" : ",");
}

int main(int argc, char **argv)
{
    int topics = 2000, partitions = 4, churn = 200000;
    long long snap_bytes = 1 << 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topics"))
            topics = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--partitions"))
            partitions = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--churn"))
            churn = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--snapshot-bytes"))
            snap_bytes = atoll(argv[i + 1]);
    }
    log_set_level(LOG_ERROR);
    char dir_log[] = "/tmp/chronik-bench-meta-XXXXXX", dir_snap[] = "/tmp/chronik-bench-meta-XXXXXX";
    if (!mkdtemp(dir_log) || !mkdtemp(dir_snap))
        return 1;
    meta_config no_snap = {.data_dir = dir_log, .fs = sfs_posix(), .node_id = 1,
                           .snapshot_max_bytes = INT64_MAX / 2, .snapshot_interval_ms = -1};
    meta_config with_snap = {.data_dir = dir_snap, .fs = sfs_posix(), .node_id = 1,
                             .snapshot_max_bytes = snap_bytes}; /* interval: the default, 1 h */
    result_t a = {0}, b = {0};
    int rc = run(&no_snap, topics, partitions, churn, &a) == 0 && run(&with_snap, topics, partitions, churn, &b) == 0 ? 0 : 1;
    if (rc == 0) {
        printf("{\"bench\": \"meta_startup\", \"topics\": %d, \"partitions\": %d, \"churn\": %d, "
               "\"snapshot_bytes\": %lld,\n", topics, partitions, churn, snap_bytes);
        print_result("from_log", &a, 0);
        print_result("from_snapshot", &b, 1);
        printf("}\n");
    }
    nftw(dir_log, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    nftw(dir_snap, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
