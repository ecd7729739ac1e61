/* controller.c - the controller thread: takes queued changes, has them
 * decided as one round (decide.c, a pure function of image, change, time
 * and randomness), proposes the round's records to the metadata quorum
 * (format: metalog.c), waits until it is committed and applied, and
 * publishes the new image (meta.h). A node that has just become leader
 * first waits until it has applied every entry of the older epochs. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/batch.h"
#include "proto/kerr.h"

struct meta {
    pthread_t thread;
    pthread_mutex_t lock;      /* queue, stopping, published, applied_next, failed */
    pthread_cond_t cond;       /* queue changes; a publish */
    meta_op *head, *tail;
    bool stopping;
    meta_image *published;
    meta_image *applying;      /* quorum thread: committed entries not yet published */
    meta_image *notified;      /* controller thread: the image the listener saw last */
    int64_t applied_next;      /* every entry below it is applied and published */
    bool failed;               /* an entry could not be applied: the node stops */
    bool running;              /* past start-up: a failure to apply stops the process */
    plog_t *log;
    quorum_t *quorum;
    qnet_t *qnet;              /* NULL: a single voter */
    const kclient_security *controller_security; /* meta_config's */
    int32_t node_id;
    meta_listener_fn listener;
    void *listener_ctx;
    pthread_mutex_t live_lock; /* ctl: written by the controller thread, its liveness read by status */
    meta_ctl ctl;              /* the controller's decisions (decide.c) and their state */
    lifecycle_t *lifecycle;    /* this node's registration; NULL: it does not register */
    meta_ap *ap;               /* this node's ISR changes on their way (alter_request.c) */
    _Atomic int32_t last_leader; /* the last other node seen leading the quorum, -1 none */
    int32_t fetch_timeout_ms;  /* quorum.fetch.timeout.ms: a leader silent this long is voted out */
    char inter_broker[META_ENDPOINT_NAME_MAX + 1]; /* the listener name peers are dialled on */
};

bool meta_valid_topic_name(const char *name, size_t len)
{
    if (len == 0 || len > STORAGE_TOPIC_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

meta_op *meta_op_new(meta_op_kind kind, const char *topic, size_t topic_len)
{
    meta_op *op = xcalloc(1, sizeof *op);
    op->kind = kind;
    op->topic = topic ? xstrndup(topic, topic_len) : NULL;
    op->replication_factor = -1;
    op->partitions = -1;
    return op;
}

void meta_op_add_config(meta_op *op, const char *key, size_t klen, const char *value, size_t vlen)
{
    op->configs = xrealloc(op->configs, (size_t)(op->nconfigs + 1) * sizeof *op->configs);
    op->configs[op->nconfigs].key = xstrndup(key, klen);
    op->configs[op->nconfigs++].value = value ? xstrndup(value, vlen) : NULL;
}

#define INTERNAL_SEGMENT_BYTES "104857600" /* offsets.topic.segment.bytes, transaction.state.log.segment.bytes */

meta_op *meta_op_internal_topic(meta_t *m, const char *name, int32_t partitions, int16_t replication_factor)
{
    meta_op *op = meta_op_new(META_OP_CREATE_TOPIC, name, strlen(name));
    op->partitions = partitions;
    meta_image *img = meta_acquire(m);
    int32_t live = meta_image_live_brokers(img);
    meta_image_release(img);
    op->replication_factor = (int16_t)MAX(MIN(replication_factor, live), 1);
    meta_op_add_config(op, "cleanup.policy", 14, "compact", 7);
    meta_op_add_config(op, "retention.ms", 12, "-1", 2);
    meta_op_add_config(op, "segment.bytes", 13, INTERNAL_SEGMENT_BYTES, strlen(INTERNAL_SEGMENT_BYTES));
    return op;
}

int32_t meta_topic_partitions(meta_t *m, const char *name)
{
    meta_image *img = meta_acquire(m);
    const meta_topic *t = meta_image_topic(img, name, strlen(name));
    int32_t n = t ? t->npartitions : 0;
    meta_image_release(img);
    return n;
}

void meta_op_add_assignment(meta_op *op, const int32_t *ids, int32_t n)
{
    op->assignments =
        xrealloc(op->assignments, (size_t)(op->nassignments + 1) * sizeof *op->assignments);
    meta_assignment *a = &op->assignments[op->nassignments++];
    a->nbrokers = n;
    a->brokers = xmalloc((size_t)(n ? n : 1) * sizeof *a->brokers);
    if (n)
        memcpy(a->brokers, ids, (size_t)n * sizeof *ids);
}

void meta_op_add_reassign(meta_op *op, const char *topic, size_t len, int32_t partition, const int32_t *replicas,
                          int32_t n)
{
    meta_reassign_op *ra = &op->reassign;
    ra->items = xrealloc(ra->items, (size_t)(ra->n + 1) * sizeof *ra->items);
    meta_reassign_item *it = &ra->items[ra->n++];
    *it = (meta_reassign_item){.topic = xstrndup(topic, len), .partition = partition, .nreplicas = n};
    it->replicas = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *it->replicas);
    if (n > 0)
        memcpy(it->replicas, replicas, (size_t)n * sizeof *replicas);
}

void meta_op_add_elect(meta_op *op, const char *topic, size_t len, int32_t partition)
{
    meta_elect_op *e = &op->elect;
    e->items = xrealloc(e->items, (size_t)(e->n + 1) * sizeof *e->items);
    e->items[e->n++] = (meta_elect_item){.topic = xstrndup(topic, len), .partition = partition};
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

meta_op *meta_op_scram(const char *name, size_t len, int8_t mech, bool remove)
{
    meta_op *op = meta_op_new(META_OP_ALTER_SCRAM, NULL, 0);
    op->scram = (meta_scram_op){.name = xstrndup(name, len), .mech = mech, .remove = remove};
    return op;
}

meta_op *meta_op_acl(meta_op_kind kind, const acl_filter *f)
{
    CK_ASSERT(kind == META_OP_CREATE_ACL || kind == META_OP_DELETE_ACLS);
    meta_op *op = meta_op_new(kind, NULL, 0);
    op->acl = (meta_acl_op){.resource_type = f->resource_type,
                            .pattern_type = f->pattern_type,
                            .operation = f->operation,
                            .permission = f->permission,
                            .name = dup_or_null(f->name),
                            .principal = dup_or_null(f->principal),
                            .host = dup_or_null(f->host)};
    return op;
}

meta_op *meta_op_quota(const meta_quota_op *q)
{
    meta_op *op = meta_op_new(META_OP_ALTER_QUOTA, NULL, 0);
    op->quota = *q;
    return op;
}

void meta_op_free(meta_op *op)
{
    for (int32_t i = 0; i < op->nassignments; i++)
        free(op->assignments[i].brokers);
    free(op->assignments);
    for (int32_t i = 0; i < op->reassign.n; i++) {
        free(op->reassign.items[i].topic);
        free(op->reassign.items[i].replicas);
        free(op->reassign.items[i].msg);
    }
    free(op->reassign.items);
    for (int32_t i = 0; i < op->elect.n; i++)
        free(op->elect.items[i].topic);
    free(op->elect.items);
    meta_acl_op_free(&op->acl);
    free(op->scram.name);
    meta_quota_op_free(&op->quota);
    free(op->alter.isr);
    free(op->alter.isr_epochs);
    free(op->alter.out_isr);
    meta_endpoints_free(op->broker.endpoints, op->broker.nendpoints);
    free(op->broker.rack);
    for (int32_t i = 0; i < op->nconfigs; i++) {
        free(op->configs[i].key);
        free(op->configs[i].value);
    }
    free(op->configs);
    free(op->topic);
    free(op);
}

meta_image *meta_acquire(meta_t *m)
{
    pthread_mutex_lock(&m->lock);
    meta_image *img = m->published;
    atomic_fetch_add(&img->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return img;
}

/* Tells the listener about the image published since it last heard, on
 * the controller thread: the listener opens and closes partition logs,
 * work the quorum thread must never do. */
static void notify_listener(meta_t *m)
{
    meta_image *cur = meta_acquire(m);
    if (cur == m->notified) {
        meta_image_release(cur);
        return;
    }
    if (m->listener)
        m->listener(m->listener_ctx, m->notified, cur);
    meta_image_release(m->notified);
    m->notified = cur;
}

typedef struct round_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int err;
} round_wait;

static void round_committed(void *arg, int err, int64_t offset)
{
    round_wait *w = arg;
    UNUSED(offset);
    pthread_mutex_lock(&w->mu);
    w->err = err;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Proposes the round as one entry and waits until it is committed and the
 * image holding it published (quorum.c). A Kafka error code. */
static int16_t commit_round(meta_t *m, const meta_ctl_round *r)
{
    buf_t entry;
    buf_init(&entry);
    meta_ctl_entry(r, &entry);
    round_wait w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    quorum_propose(m->quorum, entry.data, entry.len, round_committed, &w);
    buf_free(&entry);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (w.err != QUORUM_OK)
        log_warn("meta", "metadata change not committed err=%d", w.err);
    return w.err == QUORUM_OK ? KERR_NONE : w.err == QUORUM_TOO_LARGE ? KERR_MESSAGE_TOO_LARGE
                                                                     : KERR_NOT_CONTROLLER;
}

bool meta_wait_image(meta_t *m, bool (*pred)(const meta_image *img, const void *arg), const void *arg,
                     int64_t deadline_ms)
{
    pthread_mutex_lock(&m->lock);
    bool ok;
    while (!(ok = pred(m->published, arg)) && clock_mono_ms() < deadline_ms) {
        struct timespec ts = clock_abstime_after_ms(100); /* bounds the wait; a publish wakes it first */
        pthread_cond_timedwait(&m->cond, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

/* A node that does not lead the quorum forwards the round (forward.c). */
static bool forward_if_follower(meta_t *m, meta_op *ops, int16_t *errs, const char **msgs, int n)
{
    if (!m->qnet)
        return false;
    quorum_info_t qi;
    quorum_get_info(m->quorum, &qi);
    if (qi.role == RAFT_LEADER)
        return false;
    kclient_t *leader = qi.leader_id >= 0 ? qnet_client(m->qnet, qi.leader_id) : NULL;
    meta_forward_round(m, m->node_id, leader, ops, errs, msgs, n);
    return true;
}

int meta_send_to_leader(meta_t *m, int16_t api_key, int16_t version, const void *req, uint32_t timeout_ms,
                        kclient_cb cb, void *arg)
{
    if (!m->qnet)
        return -1;
    quorum_info_t qi;
    quorum_get_info(m->quorum, &qi);
    bool elsewhere = qi.leader_id >= 0 && qi.leader_id != m->node_id;
    kclient_t *leader = elsewhere ? qnet_client(m->qnet, qi.leader_id) : NULL;
    return leader ? kclient_send(leader, api_key, version, req, timeout_ms, cb, arg) : -1;
}

static void complete_ops(meta_op *ops, const int16_t *errs, const char **msgs)
{
    int n = 0;
    for (meta_op *op = ops, *next; op; op = next, n++) {
        next = op->next;
        op->done(op->arg, errs[n], msgs[n] ? msgs[n] : kerr_message(errs[n]));
        meta_op_free(op);
    }
}

#define META_CATCH_UP_WAIT_MS 5000 /* a new leader waits this long for its older entries */

/* The published image, and how far this node has applied (beyond the
 * image by the control entries after its last data entry). */
static meta_image *acquire_applied(meta_t *m, int64_t *applied_next)
{
    pthread_mutex_lock(&m->lock);
    meta_image *img = m->published;
    atomic_fetch_add(&img->refs, 1);
    *applied_next = MAX(m->applied_next, img->offset);
    pthread_mutex_unlock(&m->lock);
    return img;
}

/* Waits until every entry below offset is applied, or the deadline. */
static void wait_applied(meta_t *m, int64_t offset, int64_t deadline_ms)
{
    pthread_mutex_lock(&m->lock);
    while (m->applied_next < offset && !m->failed && clock_mono_ms() < deadline_ms) {
        struct timespec ts = clock_abstime_after_ms(100); /* bounds the wait; a publish wakes it first */
        pthread_cond_timedwait(&m->cond, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
}

/* Tells the decisions which epoch this node leads (a new one starts every
 * broker's clock afresh, so time spent as a follower never counts against a
 * broker). A new leader first waits until its image holds every entry of
 * the older epochs (decide.c, invariant 1). Controller thread. */
static void refresh_leader(meta_t *m)
{
    quorum_info_t qi;
    quorum_get_info(m->quorum, &qi);
    bool leading = qi.role == RAFT_LEADER;
    if (leading)
        wait_applied(m, qi.epoch_start, clock_mono_ms() + META_CATCH_UP_WAIT_MS);
    pthread_mutex_lock(&m->live_lock);
    bool new_epoch = leading && qi.epoch != m->ctl.epoch;
    meta_ctl_lead(&m->ctl, leading ? qi.epoch : -1, qi.epoch_start);
    int32_t prev = atomic_load(&m->last_leader);
    /* The quorum leader this one replaced went silent for at least the
     * fetch timeout, or it would still lead: its broker clock starts that
     * far back, so a dead one is fenced at once instead of after a whole
     * session more (a live one heartbeats and is unfenced again). */
    if (new_epoch && prev >= 0 && prev != m->node_id)
        meta_ctl_suspect(&m->ctl, prev, clock_mono_ms() - m->fetch_timeout_ms);
    pthread_mutex_unlock(&m->live_lock);
}

static void run_round(meta_t *m, meta_op *ops)
{
    meta_image *base = meta_acquire(m);
    int16_t errs[256];
    const char *msgs[256];
    int n = 0;
    for (meta_op *op = ops; op; op = op->next)
        n++;
    if (forward_if_follower(m, ops, errs, msgs, n)) {
        meta_image_release(base);
        notify_listener(m); /* partitions open before the change is answered */
        complete_ops(ops, errs, msgs);
        return;
    }
    meta_image_release(base);
    refresh_leader(m);
    int64_t applied_next;
    base = acquire_applied(m, &applied_next);
    n = 0;
    meta_ctl_round r;
    pthread_mutex_lock(&m->live_lock);
    meta_ctl_begin(&r, &m->ctl, base, applied_next, clock_mono_ms());
    for (meta_op *op = ops; op; op = op->next, n++)
        errs[n] = meta_ctl_op(&r, op, &msgs[n]);
    if (m->ctl.elected_preferred + m->ctl.elected_unclean > 0)
        log_info("meta", "leaders elected: preferred=%d unclean=%d", m->ctl.elected_preferred,
                 m->ctl.elected_unclean);
    m->ctl.elected_preferred = m->ctl.elected_unclean = 0;
    pthread_mutex_unlock(&m->live_lock);
    meta_image_release(base);
    int16_t cerr = r.nrecords > 0 ? commit_round(m, &r) : KERR_NONE;
    for (int i = 0; i < n && cerr != KERR_NONE; i++)
        if (errs[i] == KERR_NONE)
            errs[i] = cerr, msgs[i] = "the metadata change was not committed";
    meta_ctl_end(&r); /* speculative: the published image came from the commit */
    notify_listener(m); /* partitions open before the change is answered */
    complete_ops(ops, errs, msgs);
}

/* Takes up to 256 queued changes (errs/msgs arrays in run_round); NULL
 * when stopping. Wakes for new images too, to tell the listener. */
static meta_op *take_ops(meta_t *m)
{
    for (;;) {
        pthread_mutex_lock(&m->lock);
        while (!m->head && !m->stopping && m->published == m->notified)
            pthread_cond_wait(&m->cond, &m->lock);
        bool news = m->published != m->notified;
        meta_op *ops = NULL;
        if (!news && m->head) {
            meta_op *last = ops = m->head;
            for (int i = 1; i < 256 && last->next; i++)
                last = last->next;
            m->head = last->next;
            if (!m->head)
                m->tail = NULL;
            last->next = NULL;
        }
        bool stop = m->stopping && !m->head;
        pthread_mutex_unlock(&m->lock);
        if (news)
            notify_listener(m);
        else if (ops || stop)
            return ops;
    }
}

static void *controller_thread(void *arg)
{
    meta_t *m = arg;
    meta_op *ops;
    while ((ops = take_ops(m)) != NULL)
        run_round(m, ops);
    return NULL;
}

void meta_submit(meta_t *m, meta_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->tail)
        m->tail->next = op;
    else
        m->head = op;
    m->tail = op;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void pids_op_done(void *arg, int16_t err, const char *msg)
{
    meta_op *op = arg; /* freed by run_round after this returns */
    (void)msg;
    op->pids_done(op->pids_arg, err, err == KERR_NONE ? op->first_producer_id : -1, op->producer_ids);
}

void meta_alloc_producer_ids(meta_t *m, int32_t count, meta_pids_fn done, void *arg)
{
    meta_op *op = meta_op_new(META_OP_ALLOC_PRODUCER_IDS, NULL, 0);
    op->producer_ids = count;
    op->first_producer_id = -1;
    op->pids_done = done;
    op->pids_arg = arg;
    op->done = pids_op_done;
    op->arg = op;
    meta_submit(m, op);
}

/* ---- applying committed entries (quorum thread) ------------------------------ */

static void on_apply(void *arg, const raft_entry_t *e)
{
    meta_t *m = arg;
    if (!m->applying) {
        meta_image *cur = meta_acquire(m);
        m->applying = meta_image_copy(cur);
        meta_image_release(cur);
    }
    char err[512];
    if (meta_log_apply_entry(m->applying, e->offset, e->epoch, e->data, e->len, err, sizeof err) == 0)
        return;
    /* never a silent skip: a node that applied part of the metadata would serve a state no
     * other node has (metalog.c) */
    log_error("meta", "cannot apply the metadata log, stopping: %s", err);
    pthread_mutex_lock(&m->lock);
    bool running = m->running;
    m->failed = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    if (running)
        CK_PANIC("metadata entry at offset %lld cannot be applied", (long long)e->offset);
}

static void on_applied(void *arg, int64_t next_offset)
{
    meta_t *m = arg;
    meta_image *img = m->applying, *old = NULL;
    m->applying = NULL;
    pthread_mutex_lock(&m->lock);
    if (img && !m->failed) {
        img->offset = next_offset;
        old = m->published;
        m->published = img;
        img = NULL;
    }
    m->applied_next = MAX(m->applied_next, next_offset);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    meta_image_release(old);
    meta_image_release(img);
    if (m->ap)
        meta_ap_published(m->ap);
}

/* A snapshot (loaded at start, or installed from the leader) replaces the
 * image: everything below its offset is applied. */
static void on_restore(void *arg, meta_image *img)
{
    meta_t *m = arg;
    meta_image_release(m->applying);
    m->applying = NULL;
    pthread_mutex_lock(&m->lock);
    CK_ASSERT(img->offset >= m->applied_next);
    meta_image *old = m->published;
    m->published = img;
    m->applied_next = img->offset;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    meta_image_release(old);
    log_info("meta", "metadata image restored from a snapshot end_offset=%lld topics=%d brokers=%d",
             (long long)img->offset, img->ntopics, img->nbrokers);
}

/* The snapshot thread: the published (committed) image as a payload. */
static int on_snapshot(void *arg, buf_t *out, int64_t *end_offset)
{
    meta_t *m = arg;
    meta_image *img = meta_acquire(m);
    char err[256];
    *end_offset = img->offset;
    int rc = img->offset > 0 ? meta_snapshot_encode(img, clock_wall_ms(), out, err, sizeof err) : -1;
    if (rc != 0 && img->offset > 0)
        log_error("meta", "cannot snapshot the metadata image at %lld: %s", (long long)img->offset, err);
    meta_image_release(img);
    return rc;
}

static void on_role(void *arg, raft_role_t role, int32_t epoch, int32_t leader_id)
{
    meta_t *m = arg;
    UNUSED(role), UNUSED(epoch), UNUSED(leader_id);
    pthread_mutex_lock(&m->lock);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* ---- open and close ----------------------------------------------------------- */

#define META_START_WAIT_MS 30000

/* A single voter elects itself at once and commits its log: wait until
 * everything on disk is applied, so the node starts with its metadata. */
static int wait_caught_up(meta_t *m)
{
    int64_t deadline = clock_mono_ms() + META_START_WAIT_MS;
    for (;;) {
        quorum_info_t qi;
        quorum_get_info(m->quorum, &qi);
        pthread_mutex_lock(&m->lock);
        bool done = qi.role == RAFT_LEADER && m->applied_next >= qi.log_end && qi.log_end > 0;
        bool failed = m->failed;
        if (!done && !failed) {
            struct timespec ts = clock_abstime_after_ms(20);
            pthread_cond_timedwait(&m->cond, &m->lock, &ts);
        }
        pthread_mutex_unlock(&m->lock);
        if (done || failed)
            return failed ? -1 : 0;
        if (clock_mono_ms() > deadline) {
            log_error("meta", "the metadata quorum did not elect this node within %d ms", META_START_WAIT_MS);
            return -1;
        }
    }
}

static void raft_settings(raft_config_t *rc, const meta_config *cfg)
{
    raft_config_defaults(rc);
    rc->node_id = cfg->node_id;
    rc->n_voters = cfg->n_voters > 0 ? cfg->n_voters : 1;
    rc->voters[0] = cfg->node_id;
    for (int i = 0; i < cfg->n_voters; i++)
        rc->voters[i] = cfg->voter_ids[i];
    if (cfg->election_timeout_ms > 0)
        rc->election_timeout_ms = cfg->election_timeout_ms;
    if (cfg->election_backoff_max_ms > 0)
        rc->election_backoff_max_ms = cfg->election_backoff_max_ms;
    if (cfg->fetch_timeout_ms > 0)
        rc->fetch_timeout_ms = cfg->fetch_timeout_ms;
    rc->snapshot_min_entries = 0;
    rc->snapshot_min_bytes = cfg->snapshot_max_bytes > 0 ? cfg->snapshot_max_bytes : META_SNAPSHOT_BYTES_DEFAULT;
    rc->snapshot_interval_ms = cfg->snapshot_interval_ms > 0   ? cfg->snapshot_interval_ms
                               : cfg->snapshot_interval_ms == 0 ? META_SNAPSHOT_INTERVAL_MS_DEFAULT
                                                                : 0;
    if (getrandom(&rc->random_seed, sizeof rc->random_seed, 0) != (ssize_t)sizeof rc->random_seed)
        CK_PANIC("getrandom failed");
}

/* The other voters' controller addresses; NULL for a single voter. */
static qnet_t *make_qnet(const meta_config *cfg)
{
    qnet_peer_addr peers[META_VOTERS_MAX];
    int n = 0;
    for (int i = 0; i < cfg->n_voters; i++) {
        if (cfg->voter_ids[i] == cfg->node_id)
            continue;
        peers[n].id = cfg->voter_ids[i];
        snprintf(peers[n].hostport, sizeof peers[n].hostport, "%s", cfg->voter_addrs[i]);
        n++;
    }
    return n ? qnet_new(cfg->node_id, peers, n) : NULL;
}

static void on_tick(void *arg, int64_t now_ms)
{
    meta_t *m = arg;
    if (m->qnet)
        qnet_expire(m->qnet, now_ms);
}

static meta_t *meta_new(plog_t *log, int32_t node_id, meta_listener_fn listener, void *ctx)
{
    meta_t *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    pthread_mutex_init(&m->live_lock, NULL);
    m->log = log;
    m->node_id = node_id;
    atomic_store(&m->last_leader, -1);
    meta_ctl_init(&m->ctl, node_id, (meta_rand){meta_rand_os, NULL});
    m->listener = listener;
    m->listener_ctx = ctx;
    m->published = meta_image_new();
    m->ap = meta_ap_new(m, node_id);
    return m;
}

static void meta_free(meta_t *m)
{
    quorum_close(m->quorum);
    qnet_free(m->qnet);
    plog_close(m->log);
    meta_ap_free(m->ap); /* after qnet_free: its requests' callbacks have run */
    meta_image_release(m->applying);
    meta_image_release(m->published);
    meta_image_release(m->notified);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->live_lock);
    free(m);
}

int meta_open(const meta_config *cfg, meta_listener_fn listener, void *listener_ctx, meta_t **out)
{
    plog_config_t pc;
    plog_config_default(&pc);
    pc.retention_ms = pc.retention_bytes = -1; /* only snapshots trim the metadata log (quorum.c) */
    plog_t *log;
    int rc = storage_open_partition(cfg->data_dir, META_TOPIC_NAME, 0, &pc, cfg->fs, &log);
    if (rc != STORAGE_OK) {
        if (log) /* offline or damaged: the metadata cannot be trusted, the node does not start */
            log_error("meta", "metadata log unusable: %s", plog_errmsg(log));
        plog_close(log);
        return rc;
    }
    meta_t *m = meta_new(log, cfg->node_id, listener, listener_ctx);
    snprintf(m->inter_broker, sizeof m->inter_broker, "%s", cfg->inter_broker ? cfg->inter_broker : "PLAINTEXT");
    m->controller_security = cfg->controller_security;
    m->ctl.unclean_leader_election = cfg->unclean_leader_election;
    m->ctl.auto_leader_rebalance = cfg->auto_leader_rebalance;
    if (cfg->leader_imbalance_check_interval_ms > 0)
        m->ctl.imbalance_check_ms = cfg->leader_imbalance_check_interval_ms;
    raft_config_t rcfg;
    raft_settings(&rcfg, cfg);
    m->fetch_timeout_ms = (int32_t)rcfg.fetch_timeout_ms;
    m->qnet = make_qnet(cfg);
    quorum_cb_t cb = {.apply = on_apply, .applied = on_applied, .role = on_role, .tick = on_tick,
                      .restore = on_restore, .snapshot = on_snapshot,
                      .send = m->qnet ? qnet_send : NULL, .arg = m, .send_arg = m->qnet};
    char err[512];
    if (quorum_open(log, cfg->fs, &rcfg, &cb, &m->quorum, err, sizeof err) != 0) {
        log_error("meta", "cannot open the metadata quorum, not starting: %s", err);
        meta_free(m);
        return STORAGE_ERR_FORMAT;
    }
    if (m->qnet)
        qnet_attach(m->qnet, m->quorum);
    quorum_start(m->quorum);
    if (!m->qnet && wait_caught_up(m) != 0) {
        meta_free(m);
        return STORAGE_ERR_FORMAT;
    }
    m->notified = meta_acquire(m);
    if (listener)
        listener(listener_ctx, NULL, m->notified);
    log_info("meta", "metadata loaded topics=%d log_end=%lld voters=%d", m->notified->ntopics,
             (long long)m->notified->offset, rcfg.n_voters);
    pthread_mutex_lock(&m->lock);
    m->running = true;
    pthread_mutex_unlock(&m->lock);
    if (pthread_create(&m->thread, NULL, controller_thread, m) != 0)
        CK_PANIC("cannot start the controller thread");
    meta_ap_start(m->ap, m->qnet);
    if (cfg->nendpoints > 0) {
        m->lifecycle = lifecycle_new(m, cfg);
        if (!m->qnet)
            lifecycle_first_beats(m->lifecycle);
    }
    *out = m;
    return STORAGE_OK;
}

void meta_connect(meta_t *m, net_t *net)
{
    if (m->qnet)
        qnet_connect(m->qnet, net, m->controller_security);
    if (m->lifecycle)
        lifecycle_start(m->lifecycle, net);
}

meta_ap *meta_ap_of(meta_t *m)
{
    return m->ap;
}

int64_t meta_broker_epoch(meta_t *m)
{
    return m->lifecycle ? lifecycle_epoch(m->lifecycle) : -1;
}

quorum_t *meta_quorum(meta_t *m) { return m->quorum; }
lifecycle_t *meta_lifecycle(meta_t *m) { return m->lifecycle; }
bool meta_quorum_has_peers(meta_t *m) { return m->qnet != NULL; }

void meta_quorum_release_requests(meta_t *m)
{
    if (m->qnet)
        qnet_expire(m->qnet, INT64_MAX);
}

const char *meta_inter_broker_listener(meta_t *m)
{
    return m->inter_broker;
}

int32_t meta_controller_id(meta_t *m)
{
    quorum_info_t qi;
    quorum_get_info(m->quorum, &qi);
    if (qi.leader_id >= 0 && qi.leader_id != m->node_id)
        atomic_store(&m->last_leader, qi.leader_id);
    return qi.leader_id;
}

bool meta_session_lost(meta_t *m)
{
    return m->lifecycle && lifecycle_session_lost(m->lifecycle);
}

int64_t meta_heartbeat_age_ms(meta_t *m, int32_t id)
{
    int64_t age = -1;
    if (meta_controller_id(m) != m->node_id)
        return -1;
    pthread_mutex_lock(&m->live_lock);
    const meta_liveness *lv = &m->ctl.liveness;
    for (int32_t i = 0; m->ctl.epoch >= 0 && i < lv->n; i++)
        if (lv->v[i].id == id)
            age = MAX(clock_mono_ms() - lv->v[i].last_heartbeat_ms, 0);
    pthread_mutex_unlock(&m->live_lock);
    return age;
}

bool meta_caught_up(meta_t *m)
{
    quorum_info_t qi;
    quorum_get_info(m->quorum, &qi);
    pthread_mutex_lock(&m->lock);
    bool ok = qi.leader_id >= 0 && qi.high_watermark > 0 && m->applied_next >= qi.high_watermark;
    pthread_mutex_unlock(&m->lock);
    return ok;
}

static const char *role_name(raft_role_t r)
{
    static const char *const names[] = {"unattached", "follower", "prospective", "candidate", "leader", "resigned"};
    return (unsigned)r < ARRAY_LEN(names) ? names[r] : "unknown";
}

void meta_quorum_status_get(meta_t *m, meta_quorum_status *out)
{
    quorum_info_t qi;
    quorum_get_info(m->quorum, &qi);
    memset(out, 0, sizeof *out);
    out->role = role_name(qi.role);
    out->node_id = m->node_id;
    out->leader_id = qi.leader_id;
    out->epoch = qi.epoch;
    out->high_watermark = qi.high_watermark;
    out->log_end = qi.log_end;
    out->last_election_ms_ago = qi.last_change_ms > 0 ? clock_wall_ms() - qi.last_change_ms : -1;
    out->elections = qi.stats.elections;
    out->snapshot_end_offset = qi.snapshot_end;
    out->snapshot_age_ms = qi.snapshot_ms >= 0 ? MAX(clock_wall_ms() - qi.snapshot_ms, 0) : -1;
    out->log_start_offset = qi.log_start;
    out->snapshots_taken = qi.stats.snapshots_taken;
    out->snapshots_installed = qi.stats.snapshots_installed;
    out->leader_view = qi.have_describe;
    int64_t now = clock_mono_ms();
    for (int i = 0; qi.have_describe && i < qi.describe.n_voters && i < META_VOTERS_MAX; i++) {
        const raft_replica_info_t *v = &qi.describe.voters[i];
        out->replicas[i] = (meta_quorum_replica){v->replica_id, v->log_end_offset,
                                                 v->last_fetch_ms >= 0 ? now - v->last_fetch_ms : -1};
        out->n_replicas++;
    }
    for (int i = 0; qi.have_describe && i < qi.describe.n_observers && i < META_OBSERVERS_MAX; i++) {
        const raft_replica_info_t *v = &qi.describe.observers[i];
        out->observers[i] = (meta_quorum_replica){v->replica_id, v->log_end_offset,
                                                  v->last_fetch_ms >= 0 ? now - v->last_fetch_ms : -1};
        out->n_observers++;
    }
}

typedef struct raft_reply_ctx {
    meta_raft_reply_fn reply;
    void *arg;
    arena_t *a;
} raft_reply_ctx;

static void raft_replied(void *arg, const raft_msg_t *resp)
{
    raft_reply_ctx *c = arg;
    const void *k = resp ? raft_wire_to_kafka(resp, qnet_topic(), c->a) : NULL;
    c->reply(c->arg, k);
}

int meta_raft_request(meta_t *m, int16_t api_key, const uint8_t *body, size_t len, arena_t *a,
                      meta_raft_reply_fn reply, void *arg, const char **why)
{
    raft_msg_type_t type;
    switch (api_key) {
    case 52: type = RAFT_MSG_VOTE_REQ; break;
    case 53: type = RAFT_MSG_BEGIN_EPOCH_REQ; break;
    case 54: type = RAFT_MSG_END_EPOCH_REQ; break;
    case 1: type = RAFT_MSG_FETCH_REQ; break;
    case 59: type = RAFT_MSG_FETCH_SNAPSHOT_REQ; break;
    default:
        *why = "not a Raft API";
        return -1;
    }
    if (!m->qnet) {
        *why = "this node is the only voter";
        return -1;
    }
    raft_reply_ctx *c = arena_alloc(a, sizeof *c);
    *c = (raft_reply_ctx){reply, arg, a};
    return qnet_request(m->qnet, type, body, len, a, raft_replied, c, why);
}

void meta_close(meta_t *m)
{
    if (!m)
        return;
    lifecycle_free(m->lifecycle); /* it may wait on the controller thread: first */
    meta_ap_stop(m->ap);
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    meta_free(m);
}
