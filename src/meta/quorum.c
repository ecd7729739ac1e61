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
 * messages, to the send callback; (4) committed entries, handed to the
 * apply callback in offset order, then the proposals they complete; then
 * raft_io_done for the ops. Since every op is durable before any message of
 * the same ready leaves, no peer ever learns of a vote, an epoch or an
 * offset a crash could take back. Messages go before applying so that the
 * followers learn a new high watermark without waiting for the leader's
 * own apply. The thread never does other disk work.
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
 * SNAPSHOTS (format and files: snapshot.c). The core asks for one
 * (want_snapshot) once the committed entries since the last hold
 * metadata.log.max.record.bytes.between.snapshots bytes or
 * metadata.log.max.snapshot.interval.ms has passed; the snapshot thread
 * then encodes the published (committed) image, off this thread, and
 * hands the payload back through the queue to raft_snapshot_taken.
 *   SNAPSHOT_SAVE     the file is written (tmp, fsync, rename, fsync dir);
 *                     then the log below the *older* of the two snapshots
 *                     kept is deleted (whole segments: the log is rolled
 *                     at each snapshot, so segments end near them), and
 *                     older snapshots are pruned.
 *   SNAPSHOT_INSTALL  (from the leader, FetchSnapshot) the payload is
 *                     decoded first (a bad one stops the node before the
 *                     disk changes), written, then the log is emptied and
 *                     restarted at its end offset; the decoded image
 *                     replaces the state machine's (cb.restore).
 * At start the newest valid snapshot the log reaches is loaded (a bad one
 * is set aside, loudly, and the next older one used) and only the log
 * above it is replayed. A log that ends below that snapshot (a crash
 * between writing an installed snapshot and emptying the log) is emptied
 * and restarted at its end; entries above it whose epochs go backwards (a
 * log of an older history) are truncated away.
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
    bool is_snap;            /* a snapshot payload (data NULL: none could be taken) */
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
    pthread_t snap_thread;   /* encodes snapshots of the published image */
    pthread_cond_t snap_cv;  /* (mu) snap_wanted, stop */
    bool snap_wanted, snap_started;
    meta_image *installed;   /* decoded by SNAPSHOT_INSTALL, for restore */
    int64_t snap_end, snap_ms; /* the newest snapshot on disk */
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
    raft_snapshot_id_t snap; /* {0, -1}: none */
    uint8_t *snap_bytes;
    size_t snap_len;
    meta_image *snap_img;
} loaded_t;

/* The newest valid snapshot the log reaches; bad ones are set aside. */
static int load_snapshot(quorum_t *q, loaded_t *ld, char *err, size_t errlen)
{
    raft_snapshot_id_t ids[META_SNAPSHOT_LIST_MAX];
    const char *dir = plog_dir(q->log);
    int64_t start = plog_log_start_offset(q->log);
    int n = meta_snapshot_list(q->fs, dir, ids, META_SNAPSHOT_LIST_MAX);
    for (int i = 0; i < n && !ld->snap_img; i++) {
        char why[512], name[64];
        meta_snapshot_name(name, sizeof name, ids[i]);
        if (ids[i].end_offset < start)
            continue; /* the log does not reach it */
        int r = meta_snapshot_read(q->fs, dir, ids[i], &ld->snap_bytes, &ld->snap_len);
        if (r == 0 && meta_snapshot_decode(ld->snap_bytes, ld->snap_len, ids[i].end_offset, &ld->snap_img, &q->snap_ms,
                                           why, sizeof why) == 0) {
            ld->snap = ids[i];
            break;
        }
        if (r != 0)
            snprintf(why, sizeof why, "unreadable: %s", strerror(-r));
        log_error("meta", "metadata snapshot %s/%s is bad, falling back to an older one and the log: %s", dir, name,
                  why);
        free(ld->snap_bytes);
        ld->snap_bytes = NULL;
        if (r == 0 || r == -EFBIG)
            meta_snapshot_set_aside(q->fs, dir, ids[i]);
    }
    if (!ld->snap_img && start > 0) {
        snprintf(err, errlen, "metadata log starts at offset %" PRId64 " and no valid snapshot reaches it", start);
        return -1;
    }
    q->snap_end = ld->snap.end_offset;
    return 0;
}

/* Reads the log from `from` (the snapshot end) and decodes its entries. */
static int read_entries(quorum_t *q, loaded_t *ld, int64_t from, char *err, size_t errlen)
{
    int64_t off = from, end = plog_log_end_offset(q->log);
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
    size_t skip = 0; /* a batch may begin below the snapshot end */
    while (skip < count && ents[skip].offset < from)
        skip++;
    ld->entries = (raft_entry_t *)ents + skip;
    ld->n = count - skip;
    for (size_t i = 0; i < ld->n; i++)
        if (ld->entries[i].offset != from + (int64_t)i) {
            snprintf(err, errlen, "metadata log entry at offset %" PRId64 " where %" PRId64 " was expected",
                     ld->entries[i].offset, from + (int64_t)i);
            return -1;
        }
    return 0;
}

/* Cuts the entries where their epochs go backwards (a log of an older
 * history beyond an installed snapshot): the core asserts monotone epochs. */
static int cut_backward_epochs(quorum_t *q, loaded_t *ld)
{
    int32_t last = ld->snap.end_offset > 0 ? ld->snap.epoch : -1;
    for (size_t i = 0; i < ld->n; i++) {
        if (ld->entries[i].epoch >= last) {
            last = ld->entries[i].epoch;
            continue;
        }
        log_warn("meta", "metadata log entry at offset %" PRId64 " has epoch %" PRId32 " below %" PRId32
                 ": truncating the log there", ld->entries[i].offset, ld->entries[i].epoch, last);
        ld->n = i;
        return plog_truncate(q->log, ld->entries[i].offset, NULL);
    }
    return STORAGE_OK;
}

static int load_entries(quorum_t *q, loaded_t *ld, char *err, size_t errlen)
{
    if (load_snapshot(q, ld, err, errlen) != 0)
        return -1;
    int64_t from = ld->snap.end_offset;
    int r = STORAGE_OK;
    if (plog_log_end_offset(q->log) < from) { /* an install cut short: finish it */
        log_warn("meta", "metadata log ends below its snapshot at %" PRId64 ": restarting it there", from);
        r = plog_truncate_fully(q->log, from);
    }
    if (r == STORAGE_OK && read_entries(q, ld, from, err, errlen) != 0)
        return -1;
    if (r == STORAGE_OK)
        r = cut_backward_epochs(q, ld);
    if (r != STORAGE_OK) {
        snprintf(err, errlen, "cannot repair the metadata log: %s", storage_strerror(r));
        return -1;
    }
    meta_snapshot_prune(q->fs, plog_dir(q->log), META_SNAPSHOT_KEEP, plog_log_start_offset(q->log));
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

static void note_snapshot(quorum_t *q, const raft_op_t *op)
{
    q->snap_end = op->snapshot_id.end_offset;
    q->snap_ms = meta_snapshot_created_ms(op->snapshot, op->snapshot_len);
    log_info("meta", "metadata snapshot %s end_offset=%" PRId64 " epoch=%" PRId32 " bytes=%zu log_start=%" PRId64,
             op->kind == RAFT_OP_SNAPSHOT_SAVE ? "taken" : "installed", op->snapshot_id.end_offset,
             op->snapshot_id.epoch, op->snapshot_len, plog_log_start_offset(q->log));
}

/* Deletes the log below the older of the snapshots kept (whole segments),
 * then the snapshots beyond those kept. */
static int trim_log(quorum_t *q)
{
    raft_snapshot_id_t ids[META_SNAPSHOT_LIST_MAX];
    int n = meta_snapshot_list(q->fs, plog_dir(q->log), ids, META_SNAPSHOT_LIST_MAX);
    int r = plog_roll(q->log);
    if (r == STORAGE_OK && n >= META_SNAPSHOT_KEEP) {
        int64_t older = ids[META_SNAPSHOT_KEEP - 1].end_offset;
        if (older > plog_log_start_offset(q->log) && older <= plog_log_end_offset(q->log))
            r = plog_delete_records(q->log, older);
        if (r == STORAGE_OK)
            r = plog_retention(q->log, NULL);
    }
    meta_snapshot_prune(q->fs, plog_dir(q->log), META_SNAPSHOT_KEEP, plog_log_start_offset(q->log));
    return r;
}

static int op_snapshot_save(quorum_t *q, const raft_op_t *op)
{
    CK_ASSERT(op->snapshot_id.end_offset > q->snap_end && op->snapshot_id.end_offset <= plog_log_end_offset(q->log));
    if (meta_snapshot_write(q->fs, plog_dir(q->log), op->snapshot_id, op->snapshot, op->snapshot_len) != 0)
        return STORAGE_ERR_IO;
    int r = trim_log(q);
    note_snapshot(q, op);
    return r;
}

/* The payload is checked before the disk changes: a bad one stops here,
 * with the old log and snapshots intact. */
static int op_snapshot_install(quorum_t *q, const raft_op_t *op)
{
    char why[512];
    meta_image *img;
    if (meta_snapshot_decode(op->snapshot, op->snapshot_len, op->snapshot_id.end_offset, &img, NULL, why,
                             sizeof why) != 0)
        CK_PANIC("the snapshot fetched from the leader (end offset %lld) is bad: %s",
                 (long long)op->snapshot_id.end_offset, why);
    meta_image_release(q->installed);
    q->installed = img;
    if (meta_snapshot_write(q->fs, plog_dir(q->log), op->snapshot_id, op->snapshot, op->snapshot_len) != 0)
        return STORAGE_ERR_IO;
    int r = plog_truncate_fully(q->log, op->snapshot_id.end_offset);
    meta_snapshot_prune(q->fs, plog_dir(q->log), META_SNAPSHOT_KEEP, op->snapshot_id.end_offset);
    note_snapshot(q, op);
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
        r = op_snapshot_save(q, op);
        *appended = true; /* the new log start is durable at the next sync */
        break;
    case RAFT_OP_SNAPSHOT_INSTALL:
        r = op_snapshot_install(q, op);
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
    q->info.epoch_start = raft_epoch_start(q->raft);
    q->info.stats = *raft_stats(q->raft);
    q->info.have_describe = raft_describe(q->raft, &q->info.describe);
    q->info.snapshot_end = q->snap_end;
    q->info.snapshot_ms = q->snap_end > 0 ? q->snap_ms : -1;
    q->info.log_start = plog_log_start_offset(q->log);
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
        if (p->is_msg || p->is_snap) {
            kclient_resp_free(p->resp);
            free(p->data);
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
    if (rd->restore_snapshot) {
        CK_ASSERT(q->installed && q->installed->offset == rd->snapshot_id.end_offset);
        q->cb.restore(q->cb.arg, q->installed);
        q->installed = NULL;
        fail_props(&q->waiting, QUORUM_NOT_LEADER); /* their entries are gone from this log */
    }
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

static bool enqueue(quorum_t *q, qprop_t *p);

/* Wakes the snapshot thread (which takes the image published by now). */
static void want_snapshot(quorum_t *q)
{
    if (!q->cb.snapshot) {
        raft_snapshot_skipped(q->raft, clock_mono_ms());
        return;
    }
    pthread_mutex_lock(&q->mu);
    q->snap_wanted = true;
    pthread_cond_signal(&q->snap_cv);
    pthread_mutex_unlock(&q->mu);
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
    /* messages before applying: a leader's Fetch answers carry the new
     * high watermark, which the followers then apply alongside this node
     * rather than after it (applying wakes other threads, and on a busy
     * machine one of them may take this core first) */
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (q->cb.send)
            q->cb.send(q->cb.send_arg, &rd->msgs[i]);
    apply_committed(q, rd);
    bool any = rd->n_ops || rd->n_msgs || rd->n_committed || rd->role_changed;
    if (rd->want_snapshot)
        want_snapshot(q);
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

static void take_snapshot(quorum_t *q, qprop_t *p, int64_t now)
{
    raft_status_t st = RAFT_INVALID;
    if (p->data)
        st = raft_snapshot_taken(q->raft, p->offset, p->data, p->len, now);
    if (st != RAFT_OK) {
        log_info("meta", "metadata snapshot at %" PRId64 " not taken (status %d)", p->offset, (int)st);
        raft_snapshot_skipped(q->raft, now);
    }
    free(p->data);
    free(p);
}

/* The snapshot thread: encodes the published image when the core asks. */
static void *snapshot_main(void *arg)
{
    quorum_t *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->snap_wanted && !q->stop)
            pthread_cond_wait(&q->snap_cv, &q->mu);
        if (q->stop)
            break;
        q->snap_wanted = false;
        pthread_mutex_unlock(&q->mu);
        qprop_t *p = xcalloc(1, sizeof *p);
        p->is_snap = true;
        buf_t b;
        buf_init(&b);
        if (q->cb.snapshot(q->cb.arg, &b, &p->offset) == 0) {
            p->data = b.data; /* the payload moves into the queue */
            p->len = b.len;
        } else {
            buf_free(&b);
        }
        if (!enqueue(q, p)) {
            free(p->data);
            free(p);
        }
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
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
            else if (p->is_snap)
                take_snapshot(q, p, now);
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
    loaded_t ld = {.snap = {0, -1}};
    buf_init(&ld.bytes);
    arena_init(&ld.arena);
    int rc = qstate_load(q, &st, err, errlen) == 0 && load_entries(q, &ld, err, errlen) == 0 ? 0 : -1;
    if (rc == 0) {
        raft_disk_state_t disk = {.qstate = st, .snapshot_id = ld.snap, .snapshot = ld.snap_bytes,
                                  .snapshot_len = ld.snap_len, .entries = ld.entries, .n_entries = ld.n};
        q->raft = raft_new(&q->cfg, &disk, clock_mono_ms());
        log_info("meta", "quorum opened node=%" PRId32 " voters=%d epoch=%" PRId32 " snapshot_end=%" PRId64
                 " entries=%zu", cfg->node_id, cfg->n_voters, st.epoch, ld.snap.end_offset, ld.n);
        if (ld.snap_img)
            q->cb.restore(q->cb.arg, ld.snap_img); /* replay starts above it */
        ld.snap_img = NULL;
    }
    meta_image_release(ld.snap_img);
    free(ld.snap_bytes);
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
    pthread_cond_init(&q->snap_cv, NULL);
    q->info.role = RAFT_UNATTACHED;
    q->info.epoch_start = -1;
    q->info.leader_id = -1;
    q->info.snapshot_end = q->snap_end;
    q->info.snapshot_ms = q->snap_end > 0 ? q->snap_ms : -1;
    q->info.log_start = plog_log_start_offset(log);
    *out = q;
    return 0;
}

void quorum_start(quorum_t *q)
{
    CK_ASSERT(!q->started);
    q->started = true;
    if (pthread_create(&q->thread, NULL, quorum_main, q) != 0)
        CK_PANIC("cannot start the quorum thread");
    if (q->cb.snapshot) {
        q->snap_started = true;
        if (pthread_create(&q->snap_thread, NULL, snapshot_main, q) != 0)
            CK_PANIC("cannot start the snapshot thread");
    }
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
        pthread_cond_signal(&q->snap_cv);
        pthread_mutex_unlock(&q->mu);
        if (q->snap_started)
            pthread_join(q->snap_thread, NULL);
        pthread_join(q->thread, NULL);
    }
    flusher_free(q->flusher);
    raft_free(q->raft);
    meta_image_release(q->installed);
    pthread_cond_destroy(&q->snap_cv);
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->info_mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}
