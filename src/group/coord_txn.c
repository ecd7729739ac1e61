/* coord_txn.c - offsets committed inside transactions (KIP-98, KIP-447):
 * TxnOffsetCommit writes the offsets as a transactional batch of the
 * producer to the group's partition of __consumer_offsets and keeps them
 * pending in the group; the transaction's marker on that partition
 * (group_coord_txn_marker, from the WriteTxnMarkers handler, or a control
 * batch met while loading) commits or drops them (group.h, coord_int.h). */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "group/coord_int.h"
#include "proto/kerr.h"

void coord_txn_end(group_coord *c, int32_t index, int64_t producer_id, bool commit)
{
    size_t it = 0;
    void *v;
    int32_t n = 0;
    while (hmap_next(&c->groups, &it, NULL, NULL, &v)) {
        group *g = v;
        if (g->ntxn > 0 && coord_partition_of(c, g->id) == index)
            n += group_txn_offsets_end(g, producer_id, commit);
    }
    if (n > 0)
        log_debug("group", "transactional offsets %s partition=%d producer_id=%lld count=%d",
                  commit ? "committed" : "aborted", index, (long long)producer_id, n);
}

void group_coord_txn_marker(group_coord *c, int32_t index, int64_t producer_id, int16_t producer_epoch,
                            bool commit)
{
    (void)producer_epoch; /* the partition checked it before appending the marker */
    pthread_mutex_lock(&c->lock);
    if (!c->stopping && index >= 0 && index < c->nloaded && c->loaded_epoch[index] != -1)
        coord_txn_end(c, index, producer_id, commit);
    pthread_mutex_unlock(&c->lock);
}

static void txn_commit_durable(append_job *j, int16_t err)
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
                          (char *)(in->metadata ? in->metadata : ""), j->commit_ts_ms, -1, j->base_offset + i};
        group_txn_offset_put(g, j->producer_id, &o);
    }
    pthread_mutex_unlock(&c->lock);
    req->done(req->arg);
}

/* The group-level verdict: members of a live generation must be current. */
static int16_t txn_commit_check(group_coord *c, const char *group_id, group_commit_req *req, int64_t now, fx *f)
{
    int16_t err = coord_unavailable(c, group_id, f);
    if (err)
        return err;
    group *g = coord_group(c, group_id, false, now);
    if (req->generation < 0 || !g)
        return KERR_NONE;
    return group_commit_check(g, req->member_id, req->instance_id, req->generation, now);
}

/* Under the lock: true when a job was queued (req->done runs once durable). */
static bool txn_commit_locked(group_coord *c, const char *group_id, group_commit_req *req, int64_t producer_id,
                              int16_t epoch, int64_t now, fx *f)
{
    int16_t err = txn_commit_check(c, group_id, req, now, f);
    int32_t *idx = xmalloc((size_t)MAX(req->n, 1) * sizeof *idx);
    int32_t n = 0;
    rec_batch b;
    rb_init_txn(&b, now, producer_id, epoch);
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
                          (char *)(in->metadata ? in->metadata : ""), now, -1, -1};
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
        *j = (append_job){.next = j->next, .c = j->c, .p = j->p, .base_offset = j->base_offset,
                          .end_offset = j->end_offset, .durable = txn_commit_durable, .group_id = xstrdup(group_id),
                          .commit = req, .parts = idx, .nparts = n, .commit_ts_ms = now, .producer_id = producer_id};
    } else {
        free(idx);
    }
    rb_free(&b);
    buf_free(&key);
    buf_free(&value);
    return j != NULL;
}

void group_coord_txn_commit(group_coord *c, const char *group_id, group_commit_req *req, int64_t producer_id,
                            int16_t producer_epoch)
{
    fx f;
    fx_init(&f);
    pthread_mutex_lock(&c->lock);
    bool queued = txn_commit_locked(c, group_id, req, producer_id, producer_epoch, clock_wall_ms(), &f);
    pthread_mutex_unlock(&c->lock);
    fx_run(&f);
    if (!queued)
        req->done(req->arg);
}
