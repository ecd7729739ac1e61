/* coord_log.c - the coordinator's side of __consumer_offsets: appending
 * records (acknowledged once durable) and rebuilding every group from the
 * topic at start-up (coord_int.h; record formats in records.c). */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/util.h"
#include "group/coord_int.h"
#include "proto/kerr.h"

/* Group and offset records are written with acks=all and a minimum ISR of
 * one (Kafka's offsets.commit.required.acks=-1): acknowledged once every
 * ISR member has them, within offsets.commit.timeout.ms. */
#define COORD_WRITE_TIMEOUT_MS 5000

/* ---- deferred work ------------------------------------------------------------- */

void fx_init(fx *f)
{
    group_out_init(&f->out);
    f->jobs = NULL;
}

static void job_acked(void *arg, int16_t err)
{
    append_job *j = arg;
    if (j->durable)
        j->durable(j, err == KERR_NONE ? KERR_NONE : KERR_NOT_COORDINATOR);
    partition_put(j->p);
    group_coord *c = j->c;
    free(j->group_id);
    free(j->parts);
    free(j);
    coord_unref(c);
}

void fx_run(fx *f)
{
    append_job *j = f->jobs;
    f->jobs = NULL;
    /* Appends first (in the order they were made), answers after. */
    append_job *rev = NULL;
    while (j) {
        append_job *next = j->next;
        j->next = rev;
        rev = j;
        j = next;
    }
    for (j = rev; j;) {
        append_job *next = j->next;
        partition_await(j->p, j->end_offset, -1, 1, COORD_WRITE_TIMEOUT_MS, job_acked, j);
        j = next;
    }
    group_out_deliver(&f->out);
}

/* ---- building and appending batches --------------------------------------------------- */

void rb_init(rec_batch *b, int64_t now_ms)
{
    buf_init(&b->buf);
    batch_build_begin(&b->bb, &b->buf, 0, 0, now_ms, -1, -1, -1);
    b->count = 0;
}

void rb_init_txn(rec_batch *b, int64_t now_ms, int64_t producer_id, int16_t epoch)
{
    buf_init(&b->buf);
    batch_build_begin(&b->bb, &b->buf, 0, BATCH_ATTR_TRANSACTIONAL, now_ms, producer_id, epoch, -1);
    b->count = 0;
}

void rb_add(rec_batch *b, int64_t now_ms, const buf_t *key, const buf_t *value)
{
    batch_build_add(&b->bb, now_ms, key->data, (int32_t)key->len, value ? value->data : NULL,
                    value ? (int32_t)value->len : -1, NULL, 0);
    b->count++;
}

void rb_free(rec_batch *b) { buf_free(&b->buf); }

append_job *rb_append(group_coord *c, int32_t index, rec_batch *b, fx *f, int16_t *err)
{
    CK_ASSERT(b->count > 0);
    partition *p = replica_get(c->replicas, GROUP_TOPIC, strlen(GROUP_TOPIC), index);
    if (!p) {
        *err = KERR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    size_t len = batch_build_end(&b->bb);
    partition_append_req rq = {.data = b->buf.data, .len = len, .expected_epoch = -1, .acks = -1, .min_isr = 1};
    partition_append_res out;
    partition_append(p, &rq, &out);
    plog_append_result_t res = out.res;
    if (out.err != KERR_NONE) {
        if (out.err != KERR_NOT_LEADER_OR_FOLLOWER)
            log_error("group", "cannot append to %s partition=%d err=%s", GROUP_TOPIC, index, kerr_name(out.err));
        partition_put(p);
        *err = KERR_NOT_COORDINATOR;
        return NULL;
    }
    append_job *j = xcalloc(1, sizeof *j);
    j->c = c;
    j->p = p;
    j->base_offset = res.base_offset;
    j->end_offset = res.log_end_offset;
    j->producer_id = -1;
    j->next = f->jobs;
    f->jobs = j;
    coord_ref(c);
    return j;
}

/* ---- group metadata ------------------------------------------------------------------ */

static void store_durable(append_job *j, int16_t err)
{
    group_coord *c = j->c;
    fx f;
    fx_init(&f);
    pthread_mutex_lock(&c->lock);
    group *g = c->stopping ? NULL : coord_group(c, j->group_id, false, 0);
    if (g) {
        group_stored(g, j->generation, err, clock_wall_ms(), &f.out);
        if (f.out.store) {
            f.out.store = false;
            coord_store_group(c, g, clock_wall_ms(), &f);
        }
    }
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
}

void coord_store_group(group_coord *c, group *g, int64_t now_ms, fx *f)
{
    buf_t key, value;
    buf_init(&key);
    buf_init(&value);
    group_rec_group_key(&key, g->id);
    group_rec_group_value(&value, g, now_ms);
    rec_batch b;
    rb_init(&b, now_ms);
    rb_add(&b, now_ms, &key, &value);
    int16_t err = KERR_NONE;
    append_job *j = rb_append(c, coord_partition_of(c, g->id), &b, f, &err);
    rb_free(&b);
    buf_free(&key);
    buf_free(&value);
    g->has_metadata = true;
    if (j) {
        j->durable = store_durable;
        j->group_id = xstrdup(g->id);
        j->generation = g->generation;
    } else {
        group_stored(g, g->generation, err, now_ms, &f->out);
    }
}

/* ---- rebuild at start-up ------------------------------------------------------------------ */

typedef struct load_stats {
    int64_t records, skipped;
} load_stats;

/* producer_id >= 0: the record is part of that producer's transaction. */
static void apply(group_coord *c, const group_rec *rec, int64_t producer_id, int64_t record_offset, int64_t now_ms)
{
    group *g = coord_group(c, rec->group_id, !rec->tombstone, now_ms);
    if (!g)
        return;
    if (rec->kind == GROUP_REC_OFFSET && producer_id >= 0 && !rec->tombstone) {
        group_offset copy = rec->offset;
        copy.record_offset = record_offset;
        group_txn_offset_put(g, producer_id, &copy);
    } else if (rec->kind == GROUP_REC_OFFSET) {
        const group_offset *o = &rec->offset;
        if (rec->tombstone) {
            group_offset_delete(g, o->topic, strlen(o->topic), o->partition, record_offset);
        } else {
            group_offset copy = *o;
            copy.record_offset = record_offset;
            group_offset_put(g, &copy);
        }
    } else if (rec->tombstone) {
        group_unload(g);
    } else {
        group_load(g, rec->protocol_type, rec->protocol, rec->leader, rec->generation, rec->state_ts_ms,
                   rec->members, rec->nmembers, now_ms);
    }
}

/* A control batch's marker (key: int16 version, int16 type: 0 ABORT,
 * 1 COMMIT) ends its producer's pending offsets in partition index. */
static void load_marker(group_coord *c, int32_t index, const batch_info_t *bi, const uint8_t *p)
{
    batch_iter_t it;
    batch_record_t rec;
    if (!batch_iter_init(&it, p, bi->size) || !batch_iter_next(&it, &rec) || !rec.key || rec.key_len < 4)
        return;
    coord_txn_end(c, index, bi->producer_id, be16_load(rec.key + 2) == 1);
}

static void load_batch(group_coord *c, int32_t index, const batch_info_t *bi, const uint8_t *p, arena_t *a,
                       load_stats *st)
{
    batch_iter_t it;
    batch_record_t rec;
    if (bi->control) {
        load_marker(c, index, bi, p);
        return;
    }
    if (!batch_iter_init(&it, p, bi->size)) {
        log_warn("group", "skipping a compressed batch in %s", GROUP_TOPIC);
        st->skipped++;
        return;
    }
    int64_t now = clock_wall_ms();
    while (batch_iter_next(&it, &rec)) {
        group_rec gr;
        if (group_rec_decode(rec.key, rec.key_len, rec.value, rec.value_len, a, &gr) != 0) {
            st->skipped++;
        } else if (gr.kind != GROUP_REC_OTHER && gr.group_id) {
            apply(c, &gr, bi->transactional ? bi->producer_id : -1, rec.offset, now);
            st->records++;
        }
        arena_reset(a);
    }
}

typedef struct load_ctx {
    group_coord *c;
    int32_t index;
    arena_t a;
    load_stats *st;
} load_ctx;

static void load_one(void *arg, const batch_info_t *bi, const uint8_t *data)
{
    load_ctx *l = arg;
    load_batch(l->c, l->index, bi, data, &l->a, l->st);
}

static void load_partition(group_coord *c, partition *p, load_stats *st)
{
    load_ctx l = {c, p->index, {0}, st};
    arena_init(&l.a);
    int64_t at = -1;
    int rc = partition_scan(p, COORD_LOAD_CHUNK_BYTES, load_one, &l, &at);
    if (rc != STORAGE_OK)
        log_error("group", "cannot read %s partition=%d offset=%lld err=\"%s\"", GROUP_TOPIC, p->index,
                  (long long)at, storage_strerror(rc));
    arena_free(&l.a);
}

/* Groups of partition index the log knows nothing live about: no metadata,
 * no offsets (groups of other partitions may be mid-rebalance). */
static void drop_empty(group_coord *c, int32_t index)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    char **gone = NULL;
    size_t n = 0;
    while (hmap_next(&c->groups, &it, &k, &kl, &v)) {
        group *g = v;
        if (!g->has_metadata && group_offset_count(g) == 0 && g->ntxn == 0 && coord_partition_of(c, g->id) == index) {
            gone = xrealloc(gone, (n + 1) * sizeof *gone);
            gone[n++] = g->id;
        }
    }
    for (size_t i = 0; i < n; i++)
        group_free(hmap_del(&c->groups, gone[i], strlen(gone[i])));
    free(gone);
}

/* Groups of partition index leave memory: their waiters get NOT_COORDINATOR. */
static void unload_partition(group_coord *c, int32_t index, fx *f)
{
    size_t it = 0;
    void *v;
    char **gone = NULL;
    size_t n = 0;
    while (hmap_next(&c->groups, &it, NULL, NULL, &v)) {
        group *g = v;
        if (coord_partition_of(c, g->id) == index) {
            gone = xrealloc(gone, (n + 1) * sizeof *gone);
            gone[n++] = g->id;
        }
    }
    for (size_t i = 0; i < n; i++) {
        group *g = hmap_del(&c->groups, gone[i], strlen(gone[i]));
        group_cancel(g, KERR_NOT_COORDINATOR, &f->out);
        group_free(g);
    }
    free(gone);
}

static void grow_loaded(group_coord *c)
{
    if (c->nloaded >= c->topic.npartitions)
        return;
    c->loaded_epoch = xrealloc(c->loaded_epoch, (size_t)c->topic.npartitions * sizeof *c->loaded_epoch);
    for (int32_t i = c->nloaded; i < c->topic.npartitions; i++)
        c->loaded_epoch[i] = -1;
    c->nloaded = c->topic.npartitions;
}

/* Under the lock: partition index's groups follow its leadership here. */
static bool own_partition(group_coord *c, int32_t index, fx *f)
{
    grow_loaded(c);
    partition *p = replica_get(c->replicas, GROUP_TOPIC, strlen(GROUP_TOPIC), index);
    bool leading = p && atomic_load(&p->leading);
    int32_t epoch = p ? atomic_load(&p->leader_epoch) : -1;
    if (leading && c->loaded_epoch[index] != epoch) {
        load_stats st = {0, 0};
        unload_partition(c, index, f);
        load_partition(c, p, &st);
        drop_empty(c, index);
        c->loaded_epoch[index] = epoch;
        log_info("group", "coordinating partition=%d epoch=%d groups=%zu records=%lld", index, epoch,
                 c->groups.count, (long long)st.records);
    } else if (!leading && c->loaded_epoch[index] != -1) {
        unload_partition(c, index, f);
        c->loaded_epoch[index] = -1;
        log_info("group", "no longer coordinating partition=%d", index);
    }
    partition_put(p);
    return leading;
}

int16_t coord_own(group_coord *c, const char *group_id, fx *f)
{
    int32_t index = coord_partition_of(c, group_id);
    if (index < 0)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    return own_partition(c, index, f) ? KERR_NONE : KERR_NOT_COORDINATOR;
}

void coord_own_all(group_coord *c, fx *f)
{
    for (int32_t i = 0; i < c->topic.npartitions; i++)
        own_partition(c, i, f);
}
