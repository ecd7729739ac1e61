/*
 * quorum.c - the metadata quorum on a real disk: the pure Raft core
 * (src/raft) driven by its own thread, its log kept in
 * DATA_DIR/__cluster_metadata-0 (storage), its election state in
 * DATA_DIR/__cluster_metadata-0/quorum-state.
 *
 * THREAD. One thread owns the core. Other threads hand it work through a
 * queue (proposals; in a cluster, messages from peers): it takes the
 * queue, feeds the core, ticks it at its next deadline, and carries out
 * what the core asks (raft_ready) in this order: (1) the durable ops, all
 * of them, ending with one fsync of the log; (2) role changes; (3)
 * committed entries, handed to the apply callback in offset order, then
 * the proposals they complete; (4) messages, to the send callback; then
 * raft_io_done for the ops. Since every op is durable before any message of
 * the same ready leaves, no peer ever learns of a vote, an epoch or an
 * offset a crash could take back. The thread never does other disk work.
 *
 * QUORUM-STATE FILE (text, written with sfs_write_atomic: tmp, fsync,
 * rename, fsync dir):
 *     chronik-quorum-state 1
 *     epoch <int32 >= 0>
 *     voted_id <int32, -1 none>
 *     leader_id <int32, -1 none>
 * Missing: a node that never voted ({0, -1, -1}). Unreadable or of another
 * version: the node does not start (its vote could be forgotten).
 *
 * LOG. Entries are record batches exactly as src/raft/wire.h lays them
 * out (data entries of one epoch share a batch, leader changes are control
 * batches), appended with plog_append_replica so that their offsets and
 * epochs are kept, truncated with plog_truncate. A metadata log written
 * before the quorum existed (by a single node appending rounds with
 * plog_append: data batches of epoch 0, no leader-change entry) is adopted
 * as it is: its batches are entries of epoch 0, every one of which a
 * node's first election commits (the new leader's leader-change entry,
 * epoch >= 1, follows them), so the image replays them like any other
 * committed entries. metalog.c says what an entry holds.
 *
 * INVARIANTS
 *   1. An op is durable before raft_io_done reports it, and before any
 *      message of its ready is sent.
 *   2. Committed entries are applied once each, in offset order.
 *   3. A proposal's callback runs exactly once: when its entry is applied,
 *      or with an error when it cannot be (not leader, truncated, closed).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "raft/wire.h"

#define QSTATE_FILE "quorum-state"
#define QSTATE_MAGIC "chronik-quorum-state"
#define QSTATE_VERSION 1
#define QUORUM_READ_CHUNK (1 << 20)

typedef struct qprop {
    struct qprop *next;
    bool is_msg;             /* a message for the core, not a proposal */
    raft_msg_t msg;
    kclient_resp_t *resp;    /* what msg points into, freed once taken */
    uint8_t *data;
    size_t len;
    int64_t offset;          /* once proposed */
    quorum_done_fn done;
    void *arg;
} qprop_t;

struct quorum {
    pthread_t thread;
    pthread_mutex_t mu;      /* queue, stop */
    pthread_cond_t cv;
    bool stop, started;
    bool resign;             /* a graceful hand-over was asked for (quorum_resign) */
    qprop_t *queue, *queue_tail;
    qprop_t *waiting;        /* proposed, not yet applied; in offset order */
    raft_t *raft;
    raft_config_t cfg;
    plog_t *log;
    flusher_t *flusher;      /* private: the quorum thread syncs its own log */
    sfs_t *fs;
    quorum_cb_t cb;
    pthread_mutex_t info_mu; /* the fields below, for other threads */
    quorum_info_t info;
};

/* ---- quorum-state ------------------------------------------------------------- */

static int qstate_load(quorum_t *q, raft_qstate_t *st, char *err, size_t errlen)
{
    char path[STORAGE_PATH_MAX + 32], *data, magic[32];
    size_t n;
    int version;
    *st = (raft_qstate_t){0, -1, -1};
    snprintf(path, sizeof path, "%s/%s", plog_dir(q->log), QSTATE_FILE);
    int r = sfs_read_small(q->fs, path, 4096, &data, &n);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
        return -1;
    }
    int got = sscanf(data, "%31s %d\nepoch %" SCNd32 "\nvoted_id %" SCNd32 "\nleader_id %" SCNd32, magic, &version,
                     &st->epoch, &st->voted_id, &st->leader_id);
    free(data);
    if (got != 5 || strcmp(magic, QSTATE_MAGIC) != 0 || version != QSTATE_VERSION || st->epoch < 0) {
        snprintf(err, errlen, "%s is unreadable or of another version: refusing to forget a vote", path);
        return -1;
    }
    return 0;
}

static int qstate_write(quorum_t *q, const raft_qstate_t *st)
{
    char text[160];
    int n = snprintf(text, sizeof text, "%s %d\nepoch %" PRId32 "\nvoted_id %" PRId32 "\nleader_id %" PRId32 "\n",
                     QSTATE_MAGIC, QSTATE_VERSION, st->epoch, st->voted_id, st->leader_id);
    return sfs_write_atomic(q->fs, plog_dir(q->log), QSTATE_FILE, text, (size_t)n);
}

/* ---- start: what the disk holds ----------------------------------------------- */

typedef struct loaded {
    buf_t bytes;             /* every batch of the log, back to back */
    arena_t arena;
    raft_entry_t *entries;
    size_t n, cap;
} loaded_t;

static int load_entries(quorum_t *q, loaded_t *ld, char *err, size_t errlen)
{
    int64_t off = plog_log_start_offset(q->log), end = plog_log_end_offset(q->log);
    if (off != 0) {
        snprintf(err, errlen, "metadata log starts at offset %" PRId64 " without a snapshot", off);
        return -1;
    }
    while (off < end) {
        int64_t next = off;
        int r = plog_read_copy(q->log, off, INT64_MAX, QUORUM_READ_CHUNK, &ld->bytes, &next);
        if (r != STORAGE_OK || next <= off) {
            snprintf(err, errlen, "reading the metadata log at offset %" PRId64 ": %s", off, storage_strerror(r));
            return -1;
        }
        off = next;
    }
    const raft_entry_t *ents;
    size_t count;
    const char *why = NULL;
    if (raft_wire_records_decode(ld->bytes.data, ld->bytes.len, &ld->arena, &ents, &count, &why) != 0) {
        snprintf(err, errlen, "metadata log entries unreadable: %s", why ? why : "?");
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        if (ents[i].offset != (int64_t)i) {
            snprintf(err, errlen, "metadata log entry at offset %" PRId64 " where %zu was expected", ents[i].offset, i);
            return -1;
        }
    ld->entries = (raft_entry_t *)ents;
    ld->n = count;
    return 0;
}

/* ---- ops ------------------------------------------------------------------------- */

static void sync_done(void *arg, int err) { *(int *)arg = err; }

/* Makes everything appended durable (the thread waits: metadata rounds are
 * small, and nothing else runs on this log). */
static int sync_log(quorum_t *q)
{
    int serr = -1;
    flusher_request(q->flusher, q->log, plog_log_end_offset(q->log), sync_done, &serr);
    while (serr == -1)
        flusher_run_once(q->flusher);
    return serr;
}

static int op_append(quorum_t *q, const raft_op_t *op)
{
    buf_t b;
    buf_init(&b);
    raft_wire_records_encode(op->entries, op->n_entries, &b);
    plog_append_result_t res;
    int r = plog_append_replica(q->log, b.data, b.len, &res);
    buf_free(&b);
    CK_ASSERT(r != STORAGE_OK || res.log_end_offset == op->entries[op->n_entries - 1].offset + 1);
    return r;
}

/* Carries out one op; false when the disk failed (the node must stop). */
static bool run_op(quorum_t *q, const raft_op_t *op, bool *appended)
{
    int r = STORAGE_OK;
    switch (op->kind) {
    case RAFT_OP_PERSIST_STATE:
        r = qstate_write(q, &op->state) == 0 ? STORAGE_OK : STORAGE_ERR_IO;
        break;
    case RAFT_OP_TRUNCATE:
        r = plog_truncate(q->log, op->truncate_to, NULL);
        break;
    case RAFT_OP_APPEND:
        r = op->n_entries ? op_append(q, op) : STORAGE_OK;
        *appended = true;
        break;
    case RAFT_OP_SNAPSHOT_SAVE:
    case RAFT_OP_SNAPSHOT_INSTALL:
        log_error("meta", "metadata snapshots are not kept in this version");
        r = STORAGE_ERR_INVALID;
        break;
    }
    if (r != STORAGE_OK)
        log_error("meta", "metadata quorum disk op failed op=%d err=\"%s\"", (int)op->kind, storage_strerror(r));
    return r == STORAGE_OK;
}

/* ---- the ready loop --------------------------------------------------------------- */

static void publish_info(quorum_t *q, const raft_ready_t *rd)
{
    pthread_mutex_lock(&q->info_mu);
    q->info.role = rd->role;
    q->info.epoch = rd->epoch;
    q->info.leader_id = rd->leader_id;
    q->info.high_watermark = rd->high_watermark;
    q->info.log_end = raft_log_end(q->raft);
    q->info.stats = *raft_stats(q->raft);
    q->info.have_describe = raft_describe(q->raft, &q->info.describe);
    if (rd->role_changed)
        q->info.last_change_ms = clock_wall_ms();
    pthread_mutex_unlock(&q->info_mu);
}

static void finish_props(quorum_t *q, int64_t applied_through)
{
    while (q->waiting && q->waiting->offset <= applied_through) {
        qprop_t *p = q->waiting;
        q->waiting = p->next;
        p->done(p->arg, QUORUM_OK, p->offset);
        free(p);
    }
}

static void fail_props(qprop_t **list, int err)
{
    while (*list) {
        qprop_t *p = *list;
        *list = p->next;
        if (p->is_msg) {
            kclient_resp_free(p->resp);
            free(p);
            continue;
        }
        p->done(p->arg, err, -1);
        free(p->data);
        free(p);
    }
}

/* Applies the ready's committed entries, publishes once (cb.applied), and
 * only then completes the proposals they held: a caller that is told its
 * change is done can read it. */
static void apply_committed(quorum_t *q, const raft_ready_t *rd)
{
    for (size_t i = 0; i < rd->n_committed; i++) {
        const raft_entry_t *e = &rd->committed[i];
        if (e->kind == RAFT_ENTRY_DATA)
            q->cb.apply(q->cb.arg, e);
    }
    if (rd->n_committed) {
        int64_t next = rd->committed[rd->n_committed - 1].offset + 1;
        q->cb.applied(q->cb.arg, next);
        finish_props(q, next - 1);
    }
    if (rd->role != RAFT_LEADER)
        fail_props(&q->waiting, QUORUM_NOT_LEADER); /* a new leader may truncate them */
}

/* One ready; false when there was nothing in it. */
static bool handle_ready(quorum_t *q, int64_t now)
{
    const raft_ready_t *rd = raft_ready(q->raft);
    bool appended = false;
    uint64_t last_seq = 0;
    for (size_t i = 0; i < rd->n_ops; i++) {
        if (!run_op(q, &rd->ops[i], &appended))
            CK_PANIC("metadata log write failed: the node cannot keep its promises and stops");
        last_seq = rd->ops[i].seq;
    }
    if (appended && sync_log(q) != STORAGE_OK)
        CK_PANIC("metadata log sync failed: the node cannot keep its promises and stops");
    if (rd->role_changed)
        log_info("meta", "quorum role=%s epoch=%" PRId32 " leader=%" PRId32, raft_role_name(rd->role), rd->epoch,
                 rd->leader_id);
    apply_committed(q, rd);
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (q->cb.send)
            q->cb.send(q->cb.send_arg, &rd->msgs[i]);
    bool any = rd->n_ops || rd->n_msgs || rd->n_committed || rd->role_changed;
    if (any || rd->want_snapshot)
        publish_info(q, rd);
    if (rd->role_changed && q->cb.role)
        q->cb.role(q->cb.arg, rd->role, rd->epoch, rd->leader_id);
    if (rd->n_ops)
        raft_io_done(q->raft, last_seq, now);
    return any;
}

static void drive(quorum_t *q)
{
    for (int i = 0; i < 64 && handle_ready(q, clock_mono_ms()); i++)
        ;
}

static void propose(quorum_t *q, qprop_t *p, int64_t now)
{
    int64_t off = -1;
    raft_status_t st = raft_propose(q->raft, p->data, p->len, now, &off);
    free(p->data);
    p->data = NULL;
    if (st != RAFT_OK) {
        p->done(p->arg, st == RAFT_TOO_LARGE ? QUORUM_TOO_LARGE : QUORUM_NOT_LEADER, -1);
        free(p);
        return;
    }
    p->offset = off;
    p->next = NULL;
    qprop_t **tail = &q->waiting;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
}

static void take_msg(quorum_t *q, qprop_t *p, int64_t now)
{
    raft_recv(q->raft, &p->msg, now);
    kclient_resp_free(p->resp);
    free(p);
}

static void wait_work(quorum_t *q)
{
    int64_t deadline = raft_next_deadline(q->raft), now = clock_mono_ms();
    if (q->queue || q->stop || q->resign || deadline <= now)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ms = MIN(deadline - now, 1000);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&q->cv, &q->mu, &ts);
}

static void *quorum_main(void *arg)
{
    quorum_t *q = arg;
    pthread_mutex_lock(&q->mu);
    while (!q->stop) {
        wait_work(q);
        qprop_t *work = q->queue;
        q->queue = q->queue_tail = NULL;
        bool resign = q->resign;
        q->resign = false;
        pthread_mutex_unlock(&q->mu);
        int64_t now = clock_mono_ms();
        if (resign) {
            log_info("meta", "resigning the quorum leadership: handing over before shutting down");
            raft_resign(q->raft, now);
        }
        while (work) {
            qprop_t *p = work;
            work = p->next;
            if (p->is_msg)
                take_msg(q, p, now);
            else
                propose(q, p, now);
        }
        raft_tick(q->raft, clock_mono_ms());
        if (q->cb.tick)
            q->cb.tick(q->cb.arg, clock_mono_ms());
        drive(q);
        pthread_mutex_lock(&q->mu);
    }
    qprop_t *left = q->queue;
    q->queue = q->queue_tail = NULL;
    pthread_mutex_unlock(&q->mu);
    fail_props(&left, QUORUM_CLOSED);
    fail_props(&q->waiting, QUORUM_CLOSED);
    return NULL;
}

/* ---- the public side ----------------------------------------------------------------- */

int quorum_open(plog_t *log, sfs_t *fs, const raft_config_t *cfg, const quorum_cb_t *cb, quorum_t **out, char *err,
                size_t errlen)
{
    quorum_t *q = xcalloc(1, sizeof *q);
    q->log = log;
    q->fs = fs;
    q->cfg = *cfg;
    q->cb = *cb;
    raft_qstate_t st;
    loaded_t ld = {0};
    buf_init(&ld.bytes);
    arena_init(&ld.arena);
    int rc = qstate_load(q, &st, err, errlen) == 0 && load_entries(q, &ld, err, errlen) == 0 ? 0 : -1;
    if (rc == 0) {
        raft_disk_state_t disk = {.qstate = st, .snapshot_id = {0, -1}, .entries = ld.entries, .n_entries = ld.n};
        q->raft = raft_new(&q->cfg, &disk, clock_mono_ms());
        log_info("meta", "quorum opened node=%" PRId32 " voters=%d epoch=%" PRId32 " entries=%zu", cfg->node_id,
                 cfg->n_voters, st.epoch, ld.n);
    }
    arena_free(&ld.arena);
    buf_free(&ld.bytes);
    if (rc != 0) {
        free(q);
        return -1;
    }
    q->flusher = flusher_new();
    flusher_attach(q->flusher, log);
    pthread_mutex_init(&q->mu, NULL);
    pthread_mutex_init(&q->info_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    q->info.role = RAFT_UNATTACHED;
    q->info.leader_id = -1;
    *out = q;
    return 0;
}

void quorum_start(quorum_t *q)
{
    CK_ASSERT(!q->started);
    q->started = true;
    if (pthread_create(&q->thread, NULL, quorum_main, q) != 0)
        CK_PANIC("cannot start the quorum thread");
}

static bool enqueue(quorum_t *q, qprop_t *p)
{
    pthread_mutex_lock(&q->mu);
    bool stopped = q->stop;
    if (!stopped) {
        if (q->queue_tail)
            q->queue_tail->next = p;
        else
            q->queue = p;
        q->queue_tail = p;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return !stopped;
}

void quorum_propose(quorum_t *q, const void *data, size_t len, quorum_done_fn done, void *arg)
{
    qprop_t *p = xcalloc(1, sizeof *p);
    p->data = xmalloc(len ? len : 1);
    memcpy(p->data, data, len);
    p->len = len;
    p->done = done;
    p->arg = arg;
    if (!enqueue(q, p)) {
        free(p->data);
        free(p);
        done(arg, QUORUM_CLOSED, -1);
    }
}

void quorum_recv(quorum_t *q, const raft_msg_t *m, kclient_resp_t *resp)
{
    qprop_t *p = xcalloc(1, sizeof *p);
    p->is_msg = true;
    p->msg = *m;
    p->msg.cluster_id = NULL;
    p->resp = resp;
    if (!enqueue(q, p)) {
        kclient_resp_free(resp);
        free(p);
    }
}

void quorum_resign(quorum_t *q)
{
    pthread_mutex_lock(&q->mu);
    q->resign = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void quorum_get_info(quorum_t *q, quorum_info_t *out)
{
    pthread_mutex_lock(&q->info_mu);
    *out = q->info;
    pthread_mutex_unlock(&q->info_mu);
}

/* Stops the thread (pending proposals fail with QUORUM_CLOSED); the log
 * stays open and belongs to the caller again. */
void quorum_close(quorum_t *q)
{
    if (!q)
        return;
    if (q->started) {
        pthread_mutex_lock(&q->mu);
        q->stop = true;
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
    }
    flusher_free(q->flusher);
    raft_free(q->raft);
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->info_mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}
