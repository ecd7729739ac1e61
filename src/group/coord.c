/* coord.c - the group coordinator: requests from the broker's handlers,
 * the creation of __consumer_offsets, the deadline thread and the offsets
 * expiry (group.h, coord_int.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/log.h"
#include "base/util.h"
#include "group/coord_int.h"
#include "proto/kerr.h"

/* ---- references and lookups ---------------------------------------------------- */

void coord_ref(group_coord *c) { atomic_fetch_add(&c->refs, 1); }

static void coord_free(group_coord *c)
{
    size_t it = 0;
    void *v;
    while (hmap_next(&c->groups, &it, NULL, NULL, &v))
        group_free(v);
    hmap_free(&c->groups);
    free(c->loaded_epoch);
    CK_ASSERT(c->topic.waiters == NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

void coord_unref(group_coord *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1)
        coord_free(c);
}

group *coord_group(group_coord *c, const char *id, bool create, int64_t now_ms)
{
    group *g = hmap_get(&c->groups, id, strlen(id));
    if (!g && create) {
        g = group_new(id, &c->cfg, now_ms);
        hmap_put(&c->groups, id, strlen(id), g);
    }
    return g;
}

int32_t coord_partition_of(group_coord *c, const char *group_id)
{
    if (c->topic.npartitions <= 0)
        return -1; /* no such partition: appends fail with COORDINATOR_NOT_AVAILABLE */
    return group_rec_partition(group_id, strlen(group_id), c->topic.npartitions);
}

/* A group nobody uses and nothing stored describes goes away. */
static void maybe_drop(group_coord *c, group *g)
{
    if (g && g->state == GROUP_EMPTY && g->nmembers == 0 && g->npending == 0 && !g->has_metadata &&
        !g->deferred && group_offset_count(g) == 0 && g->ntxn == 0) {
        hmap_del(&c->groups, g->id, strlen(g->id));
        group_free(g);
    }
}

/* After a state-machine call: persist if asked, wake the thread if the
 * group now has an earlier deadline. */
void coord_settle(group_coord *c, group *g, int64_t now_ms, fx *f)
{
    while (f->out.store) {
        f->out.store = false;
        coord_store_group(c, g, now_ms, f);
    }
    if (group_next_deadline(g) < c->wake_ms)
        pthread_cond_signal(&c->cond);
    maybe_drop(c, g);
}

void group_coord_new_member_id(const char *client_id, const char *instance_id, char *out, size_t n)
{
    uint8_t u[16];
    if (getrandom(u, sizeof u, 0) != (ssize_t)sizeof u) {
        uint64_t t = (uint64_t)clock_mono_ns() ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof u; i++, t = t * 6364136223846793005ull + 1442695040888963407ull)
            u[i] = (uint8_t)(t >> 56);
    }
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40); /* a version 4 UUID */
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(out, n,
             "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             instance_id ? instance_id : client_id ? client_id : "", u[0], u[1], u[2], u[3], u[4], u[5], u[6],
             u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* ---- __consumer_offsets ------------------------------------------------------------- */

static void hold(void *owner, bool take)
{
    if (take)
        coord_ref(owner);
    else
        coord_unref(owner);
}

bool group_coord_ensure(group_coord *c, group_coord_ready_fn done, void *arg)
{
    return meta_itopic_ensure(&c->topic, done, arg);
}

/* The error a request for group_id gets when this node cannot serve it
 * now: stopping, __consumer_offsets not there yet, or the group's
 * partition led elsewhere. */
int16_t coord_unavailable(group_coord *c, const char *group_id, fx *f)
{
    if (c->stopping)
        return KERR_NOT_COORDINATOR;
    if (!meta_itopic_ready(&c->topic))
        return KERR_COORDINATOR_NOT_AVAILABLE;
    return coord_own(c, group_id, f);
}

/* ---- JoinGroup, SyncGroup, Heartbeat, LeaveGroup --------------------------------------- */

static void answer_now(fx *f, group_waiter *w, const char *member_id, int16_t err)
{
    group_result *r = group_out_push(&f->out, w, err);
    free(r->member_id);
    r->member_id = xstrdup(member_id ? member_id : "");
}

void group_coord_join(group_coord *c, const char *group_id, group_join_req *req)
{
    fx f;
    fx_init(&f);
    int64_t now = clock_wall_ms();
    pthread_mutex_lock(&c->lock);
    int16_t err = coord_unavailable(c, group_id, &f);
    group *g = err ? NULL : coord_group(c, group_id, !*req->member_id, now);
    if (!err && !g)
        err = KERR_UNKNOWN_MEMBER_ID;
    if (err) {
        answer_now(&f, req->waiter, req->member_id, err);
    } else {
        group_join(g, req, now, &f.out);
        coord_settle(c, g, now, &f);
    }
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
}

void group_coord_sync(group_coord *c, const char *group_id, group_sync_req *req)
{
    fx f;
    fx_init(&f);
    int64_t now = clock_wall_ms();
    pthread_mutex_lock(&c->lock);
    int16_t err = coord_unavailable(c, group_id, &f);
    group *g = err ? NULL : coord_group(c, group_id, false, now);
    if (!err && !g)
        err = KERR_UNKNOWN_MEMBER_ID;
    if (err) {
        answer_now(&f, req->waiter, req->member_id, err);
    } else {
        group_sync(g, req, now, &f.out);
        coord_settle(c, g, now, &f);
    }
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
}

int16_t group_coord_heartbeat(group_coord *c, const char *group_id, const char *member_id, const char *instance_id,
                              int32_t generation)
{
    fx f;
    fx_init(&f);
    pthread_mutex_lock(&c->lock);
    int16_t err = coord_unavailable(c, group_id, &f);
    group *g = err ? NULL : coord_group(c, group_id, false, 0);
    if (!err)
        err = g ? group_heartbeat(g, member_id, instance_id, generation, clock_wall_ms()) : KERR_UNKNOWN_MEMBER_ID;
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    return err;
}

int16_t group_coord_leave(group_coord *c, const char *group_id, group_leave_in *ms, int32_t n)
{
    fx f;
    fx_init(&f);
    int64_t now = clock_wall_ms();
    pthread_mutex_lock(&c->lock);
    int16_t err = coord_unavailable(c, group_id, &f);
    group *g = err ? NULL : coord_group(c, group_id, false, now);
    for (int32_t i = 0; i < n && !err; i++) {
        ms[i].error = g ? group_leave(g, ms[i].member_id, ms[i].instance_id, now, &f.out) : KERR_UNKNOWN_MEMBER_ID;
        if (ms[i].error == KERR_COORDINATOR_NOT_AVAILABLE)
            err = ms[i].error;
    }
    if (g)
        coord_settle(c, g, now, &f);
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    return err;
}

/* ---- OffsetCommit ------------------------------------------------------------------------ */

static void commit_durable(append_job *j, int16_t err)
{
    group_coord *c = j->c;
    group_commit_req *req = j->commit;
    pthread_mutex_lock(&c->lock);
    group *g = err ? NULL : coord_group(c, j->group_id, true, clock_wall_ms());
    for (int32_t i = 0; i < j->nparts; i++) {
        group_commit_in *in = &req->parts[j->parts[i]];
        in->error = err;
        if (!g)
            continue;
        group_offset o = {(char *)in->topic, in->partition, in->offset, in->leader_epoch,
                          (char *)(in->metadata ? in->metadata : ""), in->commit_ts_ms >= 0 ? in->commit_ts_ms : j->commit_ts_ms,
                          j->expire_ts_ms, j->base_offset + i};
        if (j->producer_id >= 0)
            group_txn_offset_put(g, j->producer_id, &o); /* until the transaction's marker */
        else
            group_offset_put(g, &o);
    }
    pthread_mutex_unlock(&c->lock);
    req->done(req->arg);
}

/* Whether the commit may go ahead. A transactional commit (producer_id >=
 * 0) from a producer that names no generation is not a member's: only a
 * member's generation is checked. */
static int16_t commit_allowed(group_coord *c, const char *group_id, group_commit_req *req, int64_t producer_id,
                              int64_t now, fx *f, group **gp)
{
    int16_t err = coord_unavailable(c, group_id, f);
    bool txn = producer_id >= 0;
    group *g = *gp = err ? NULL : coord_group(c, group_id, !txn && req->generation < 0, now);
    if (err || (txn && (req->generation < 0 || !g)))
        return err;
    return g ? group_commit_check(g, req->member_id, req->instance_id, req->generation, now) : KERR_ILLEGAL_GENERATION;
}

/* Under the lock: append the commit's records (a transactional batch when
 * producer_id >= 0); true when a job was queued (req->done then runs once
 * it is durable). */
static bool commit_locked(group_coord *c, const char *group_id, group_commit_req *req, int64_t producer_id,
                          int16_t epoch, int64_t now, fx *f)
{
    group *g;
    int16_t err = commit_allowed(c, group_id, req, producer_id, now, f, &g);
    int32_t *idx = xmalloc((size_t)MAX(req->n, 1) * sizeof *idx);
    int32_t n = 0;
    int64_t expire_ms = req->retention_ms >= 0 && producer_id < 0 ? now + req->retention_ms : -1;
    rec_batch b;
    if (producer_id >= 0)
        rb_init_txn(&b, now, producer_id, epoch);
    else
        rb_init(&b, now);
    buf_t key, value;
    buf_init(&key);
    buf_init(&value);
    for (int32_t i = 0; i < req->n; i++) {
        group_commit_in *in = &req->parts[i];
        if (in->error)
            continue;
        if (err || (in->metadata && strlen(in->metadata) > GROUP_OFFSET_METADATA_MAX)) {
            in->error = err ? err : KERR_OFFSET_METADATA_TOO_LARGE;
            continue;
        }
        group_offset o = {(char *)in->topic, in->partition, in->offset, in->leader_epoch,
                          (char *)(in->metadata ? in->metadata : ""), in->commit_ts_ms >= 0 ? in->commit_ts_ms : now,
                          expire_ms, -1};
        buf_reset(&key);
        buf_reset(&value);
        group_rec_offset_key(&key, group_id, in->topic, in->partition);
        group_rec_offset_value(&value, &o);
        rb_add(&b, now, &key, &value);
        idx[n++] = i;
    }
    append_job *j = NULL;
    if (n > 0) {
        j = rb_append(c, coord_partition_of(c, group_id), &b, f, &err);
        for (int32_t i = 0; !j && i < n; i++)
            req->parts[idx[i]].error = err;
    }
    if (j) {
        j->durable = commit_durable;
        j->group_id = xstrdup(group_id);
        j->commit = req;
        j->parts = idx;
        j->nparts = n;
        j->commit_ts_ms = now;
        j->expire_ts_ms = expire_ms;
        j->producer_id = producer_id;
    } else {
        free(idx);
    }
    rb_free(&b);
    buf_free(&key);
    buf_free(&value);
    if (g)
        coord_settle(c, g, now, f);
    return j != NULL;
}

static void commit(group_coord *c, const char *group_id, group_commit_req *req, int64_t producer_id, int16_t epoch)
{
    fx f;
    fx_init(&f);
    pthread_mutex_lock(&c->lock);
    bool queued = commit_locked(c, group_id, req, producer_id, epoch, clock_wall_ms(), &f);
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    if (!queued)
        req->done(req->arg);
}

void group_coord_commit(group_coord *c, const char *group_id, group_commit_req *req)
{
    commit(c, group_id, req, -1, -1);
}

void group_coord_txn_commit(group_coord *c, const char *group_id, group_commit_req *req, int64_t producer_id,
                            int16_t producer_epoch)
{
    CK_ASSERT(producer_id >= 0);
    commit(c, group_id, req, producer_id, producer_epoch);
}

/* ---- reads ----------------------------------------------------------------------------- */

int16_t group_coord_view(group_coord *c, const char *group_id, group_view_fn fn, void *arg)
{
    fx f;
    fx_init(&f);
    pthread_mutex_lock(&c->lock);
    int16_t err = coord_unavailable(c, group_id, &f);
    if (err == KERR_NONE)
        fn(arg, coord_group(c, group_id, false, 0));
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    return err;
}

void group_coord_each(group_coord *c, group_view_fn fn, void *arg)
{
    pthread_mutex_lock(&c->lock);
    size_t it = 0;
    void *v;
    while (hmap_next(&c->groups, &it, NULL, NULL, &v))
        fn(arg, v);
    pthread_mutex_unlock(&c->lock);
}

/* ---- deletions ------------------------------------------------------------------------ */

/* Completes a request once every append it made is durable. */
typedef struct waitgroup {
    _Atomic int pending;
    void (*done)(void *arg);
    void *arg;
} waitgroup;

static waitgroup *wg_new(void (*done)(void *arg), void *arg)
{
    waitgroup *wg = xmalloc(sizeof *wg);
    atomic_store(&wg->pending, 1);
    wg->done = done;
    wg->arg = arg;
    return wg;
}

static void wg_release(waitgroup *wg)
{
    if (atomic_fetch_sub(&wg->pending, 1) == 1) {
        if (wg->done)
            wg->done(wg->arg);
        free(wg);
    }
}

static void wg_durable(append_job *j, int16_t err)
{
    if (err)
        log_warn("group", "tombstones not durable err=%s", kerr_name(err));
    wg_release(j->wg);
}

typedef struct tomb_ctx {
    rec_batch *b;
    const char *group_id;
    int64_t now_ms;
} tomb_ctx;

static void add_offset_tombstone(void *arg, const group_offset *o)
{
    tomb_ctx *t = arg;
    buf_t key;
    buf_init(&key);
    group_rec_offset_key(&key, t->group_id, o->topic, o->partition);
    rb_add(t->b, t->now_ms, &key, NULL);
    buf_free(&key);
}

static void add_group_tombstone(rec_batch *b, const char *group_id, int64_t now_ms)
{
    buf_t key;
    buf_init(&key);
    group_rec_group_key(&key, group_id);
    rb_add(b, now_ms, &key, NULL);
    buf_free(&key);
}

/* Append b for group_id's partition; the job (if any) joins wg. */
static int16_t append_tombstones(group_coord *c, const char *group_id, rec_batch *b, waitgroup *wg, fx *f)
{
    int16_t err = KERR_NONE;
    if (b->count == 0)
        return KERR_NONE;
    append_job *j = rb_append(c, coord_partition_of(c, group_id), b, f, &err);
    if (j) {
        j->durable = wg ? wg_durable : NULL;
        j->wg = wg;
        if (wg)
            atomic_fetch_add(&wg->pending, 1);
    }
    return err;
}

/* Write the tombstones of a group and all its offsets; remove it. */
static int16_t delete_group(group_coord *c, group *g, int64_t now, waitgroup *wg, fx *f)
{
    rec_batch b;
    rb_init(&b, now);
    tomb_ctx t = {&b, g->id, now};
    size_t it = 0;
    for (const group_offset *o; (o = group_offset_next(g, &it));)
        add_offset_tombstone(&t, o);
    add_group_tombstone(&b, g->id, now);
    int16_t err = append_tombstones(c, g->id, &b, wg, f);
    rb_free(&b);
    if (err)
        return err;
    log_info("group", "group deleted group=%s", g->id);
    group_cancel(g, KERR_GROUP_ID_NOT_FOUND, &f->out);
    hmap_del(&c->groups, g->id, strlen(g->id));
    group_free(g);
    return KERR_NONE;
}

void group_coord_delete_groups(group_coord *c, const char *const *ids, int16_t *errs, int32_t n,
                               void (*done)(void *arg), void *arg)
{
    fx f;
    fx_init(&f);
    waitgroup *wg = wg_new(done, arg);
    int64_t now = clock_wall_ms();
    pthread_mutex_lock(&c->lock);
    for (int32_t i = 0; i < n; i++) {
        int16_t err = coord_unavailable(c, ids[i], &f);
        group *g = err ? NULL : coord_group(c, ids[i], false, now);
        if (!err)
            err = !g || g->state == GROUP_DEAD ? KERR_GROUP_ID_NOT_FOUND
                  : g->state != GROUP_EMPTY    ? KERR_NON_EMPTY_GROUP
                                               : delete_group(c, g, now, wg, &f);
        errs[i] = err;
    }
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    wg_release(wg);
}

static int16_t offset_delete_locked(group_coord *c, const char *group_id, group_offset_del *parts, int32_t n,
                                    waitgroup *wg, int64_t now, fx *f)
{
    int16_t err = coord_unavailable(c, group_id, f);
    if (err != KERR_NONE)
        return err;
    group *g = coord_group(c, group_id, false, now);
    if (!g || g->state == GROUP_DEAD)
        return KERR_GROUP_ID_NOT_FOUND;
    bool consumer = gstreq(g->protocol_type, "consumer");
    if (g->state != GROUP_EMPTY && !consumer)
        return KERR_NON_EMPTY_GROUP;
    rec_batch b;
    rb_init(&b, now);
    tomb_ctx t = {&b, g->id, now};
    for (int32_t i = 0; i < n; i++) {
        group_offset_del *d = &parts[i];
        size_t tl = strlen(d->topic);
        if (d->error)
            continue;
        if (g->state != GROUP_EMPTY && group_subscribes(g, d->topic, tl)) {
            d->error = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
            continue;
        }
        const group_offset *o = group_offset_get(g, d->topic, tl, d->partition);
        if (o) {
            add_offset_tombstone(&t, o);
            group_offset_delete(g, d->topic, tl, d->partition, -1);
        }
    }
    err = append_tombstones(c, g->id, &b, wg, f);
    rb_free(&b);
    for (int32_t i = 0; err && i < n; i++)
        parts[i].error = parts[i].error ? parts[i].error : err;
    return KERR_NONE;
}

void group_coord_offset_delete(group_coord *c, const char *group_id, group_offset_del *parts, int32_t n,
                               int16_t *top_err, void (*done)(void *arg), void *arg)
{
    fx f;
    fx_init(&f);
    waitgroup *wg = wg_new(done, arg);
    pthread_mutex_lock(&c->lock);
    *top_err = offset_delete_locked(c, group_id, parts, n, wg, clock_wall_ms(), &f);
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    wg_release(wg);
}

/* ---- the deadline thread --------------------------------------------------------------- */

/* Offsets past retention go (with tombstones); Empty groups left with no
 * offsets become Dead and go too. */
static void expire_offsets(group_coord *c, int64_t now, fx *f)
{
    size_t it = 0;
    void *v;
    group **dead = NULL;
    size_t ndead = 0;
    while (hmap_next(&c->groups, &it, NULL, NULL, &v)) {
        group *g = v;
        rec_batch b;
        rb_init(&b, now);
        tomb_ctx t = {&b, g->id, now};
        int32_t n = group_offsets_expire(g, now, add_offset_tombstone, &t);
        bool gone = g->state == GROUP_EMPTY && g->npending == 0 && group_offset_count(g) == 0 && g->ntxn == 0;
        if (gone && g->has_metadata)
            add_group_tombstone(&b, g->id, now);
        if (append_tombstones(c, g->id, &b, NULL, f) == KERR_NONE && gone) {
            dead = xrealloc(dead, (ndead + 1) * sizeof *dead);
            dead[ndead++] = g;
        }
        if (n > 0)
            log_info("group", "offsets expired group=%s count=%d", g->id, n);
        rb_free(&b);
    }
    for (size_t i = 0; i < ndead; i++) {
        hmap_del(&c->groups, dead[i]->id, strlen(dead[i]->id));
        group_free(dead[i]);
    }
    free(dead);
}

/* Ticks the groups that are due; returns the next deadline of all. */
static int64_t tick_all(group_coord *c, int64_t now, fx *f)
{
    int64_t next = GROUP_NO_DEADLINE;
    size_t it = 0;
    void *v;
    group **idle = NULL;
    size_t nidle = 0;
    while (hmap_next(&c->groups, &it, NULL, NULL, &v)) {
        group *g = v;
        if (group_next_deadline(g) <= now) {
            group_tick(g, now, &f->out);
            while (f->out.store) {
                f->out.store = false;
                coord_store_group(c, g, now, f);
            }
            idle = xrealloc(idle, (nidle + 1) * sizeof *idle);
            idle[nidle++] = g;
        }
        next = MIN(next, group_next_deadline(g));
    }
    for (size_t i = 0; i < nidle; i++)
        maybe_drop(c, idle[i]);
    free(idle);
    return next;
}

static void wait_until(group_coord *c, int64_t wake_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(wake_ms / 1000), .tv_nsec = (long)(wake_ms % 1000) * 1000000L};
    c->wake_ms = wake_ms;
    pthread_cond_timedwait(&c->cond, &c->lock, &ts);
    c->wake_ms = INT64_MIN; /* running: no one needs to signal */
}

/* offsets.retention.check.interval.ms, but at least as often as the retention itself. */
static int64_t retention_check_ms(const group_coord *c)
{
    int64_t every = c->cfg.offsets_retention_check_ms > 0 ? c->cfg.offsets_retention_check_ms : GROUP_RETENTION_CHECK_MS;
    return MAX(MIN(every, c->cfg.offsets_retention_ms), GROUP_RETENTION_CHECK_MIN_MS);
}

static void *coord_thread(void *arg)
{
    group_coord *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        int64_t now = clock_wall_ms();
        fx f;
        fx_init(&f);
        if (c->topic.npartitions > 0)
            coord_own_all(c, &f); /* leadership of __consumer_offsets partitions moved */
        int64_t next = tick_all(c, now, &f);
        if (now >= c->retention_due_ms) {
            if (c->topic.npartitions > 0)
                expire_offsets(c, now, &f);
            c->retention_due_ms = now + retention_check_ms(c);
        }
        if (f.jobs || f.out.head) {
            pthread_mutex_unlock(&c->lock);
            fx_run(&f);
            pthread_mutex_lock(&c->lock);
            continue;
        }
        wait_until(c, MIN(next, c->retention_due_ms));
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------- */

group_coord *group_coord_start(const group_config *cfg, struct meta *meta, struct replica_mgr *replicas)
{
    group_coord *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    atomic_store(&c->refs, 1);
    c->cfg = *cfg;
    c->meta = meta;
    c->replicas = replicas;
    hmap_init(&c->groups);
    c->wake_ms = INT64_MIN;
    c->retention_due_ms = clock_wall_ms() + retention_check_ms(c);
    c->topic = (meta_itopic){.meta = meta, .name = GROUP_TOPIC, .module = "group",
                             .partitions = cfg->offsets_topic_partitions,
                             .replication_factor = cfg->offsets_topic_replication_factor,
                             .lock = &c->lock, .hold = hold, .owner = c};
    c->topic.npartitions = meta_topic_partitions(meta, GROUP_TOPIC);
    fx f;
    fx_init(&f);
    pthread_mutex_lock(&c->lock);
    coord_own_all(c, &f);
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    if (pthread_create(&c->thread, NULL, coord_thread, c) != 0)
        CK_PANIC("cannot start the group coordinator thread");
    return c;
}

void group_coord_stop(group_coord *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    fx f;
    fx_init(&f);
    pthread_mutex_lock(&c->lock);
    size_t it = 0;
    void *v;
    while (hmap_next(&c->groups, &it, NULL, NULL, &v))
        group_cancel(v, KERR_NOT_COORDINATOR, &f.out);
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    coord_unref(c);
}
