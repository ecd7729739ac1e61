/* api_fetch.c - Fetch (key 1) v4-v12, for consumers and for followers
 * (ReplicaId set). Only a partition's leader serves it (else
 * NOT_LEADER_OR_FOLLOWER; CurrentLeaderEpoch older or newer than the
 * leader's: FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH, with the
 * CurrentLeader hint). Consumers get whole record batches up to the high
 * watermark; followers up to the log end, and their fetch offset is what
 * they hold durably (partition_follower_fetched). A follower whose
 * LastFetchedEpoch ends below its fetch offset here gets DivergingEpoch
 * instead of records (KIP-320) and truncates. At most max_bytes in all and
 * partition_max_bytes per partition (but at least one batch), sent with
 * sendfile(2) straight from the segment files. A fetch that finds fewer
 * than min_bytes waits up to max_wait_ms and is woken as soon as a
 * partition's high watermark advances (a follower's: its log end, not the
 * high watermark, which adds nothing to its answer). No fetch sessions
 * (id 0).
 *
 * Isolation (KIP-98): read_uncommitted consumers read up to the high
 * watermark; read_committed ones (IsolationLevel 1) up to the last stable
 * offset (no open transaction's data), with the aborted transactions that
 * overlap the returned range (from the .txnindex) so that they can skip
 * aborted records. Every answer carries LastStableOffset. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "broker/broker_int.h"

typedef struct fetch_part {
    partition *p;            /* NULL: error set in out */
    FetchResponse_PartitionData *out;
    const FetchRequest_FetchPartition *in;
    plog_read_result_t rr;   /* current read (fd -1: none) */
    pwaiter waiter;
    bool diverged;           /* DivergingEpoch set: answer at once, no records */
} fetch_part;

typedef struct fetch_state {
    parked park;             /* first: the broker's list of parked requests */
    breq *r;
    net_reactor *reactor;
    net_timer timer;
    _Atomic int refs;
    bool done;
    int32_t replica_id;      /* >= 0: a follower's fetch */
    int16_t denied;          /* a follower without CLUSTER_ACTION: its error */
    bool read_committed;     /* IsolationLevel 1, not a follower */
    int64_t quota_cap;       /* a consumer's bytes per fetch under its quota (quota.c) */
    int32_t nparts;
    fetch_part *parts;
} fetch_state;

static void release_read(fetch_part *fp)
{
    if (fp->rr.fd >= 0 || fp->rr.seg_ref)
        plog_read_release(&fp->rr);
    memset(&fp->rr, 0, sizeof fp->rr);
    fp->rr.fd = -1;
}

typedef struct aborted_fill {
    FetchResponse_AbortedTransaction_array *a;
    int32_t cap;
} aborted_fill;

static void count_aborted(void *arg, const plog_aborted_txn_t *e)
{
    (void)e;
    ((aborted_fill *)arg)->cap++;
}

static void add_aborted(void *arg, const plog_aborted_txn_t *e)
{
    aborted_fill *f = arg;
    if (f->a->count < f->cap)
        f->a->items[f->a->count++] = (FetchResponse_AbortedTransaction){e->producer_id, e->first_offset};
}

/* The aborted transactions overlapping the records read (read_committed). */
static void collect_aborted(breq *r, fetch_part *fp)
{
    plog_t *log = fp->p->log;
    int64_t from = fp->in->FetchOffset, upto = fp->rr.next_offset;
    aborted_fill f = {&fp->out->AbortedTransactions, 0};
    plog_aborted_txns(log, from, upto, count_aborted, &f);
    f.a->count = 0;
    f.a->items = breq_items(r, &FetchResponse_AbortedTransaction_desc, f.cap);
    plog_aborted_txns(log, from, upto, add_aborted, &f);
}

/* Read one partition; returns the bytes it contributes. */
static int64_t read_part(fetch_state *fs, fetch_part *fp, int64_t budget, bool have_data)
{
    release_read(fp);
    bool follower = fs->replica_id >= 0;
    FetchResponse_PartitionData *out = fp->out;
    partition *p = fp->p;
    int64_t hw = atomic_load(&p->high_watermark), lso = partition_last_stable_offset(p);
    out->HighWatermark = hw;
    out->LastStableOffset = lso;
    out->AbortedTransactions.count = fs->read_committed ? 0 : -1;
    out->LogStartOffset = plog_log_start_offset(p->log);
    out->Records = (kbytes_t){(const uint8_t *)"", 0};
    if (fp->diverged)
        return 0;
    int64_t limit = MIN((int64_t)fp->in->PartitionMaxBytes, budget);
    if (limit <= 0 && have_data)
        return 0;
    int64_t upto = follower ? plog_log_end_offset(p->log) : fs->read_committed ? lso : hw;
    int rc = plog_read(p->log, fp->in->FetchOffset, upto, (uint32_t)MAX(limit, 1), &fp->rr);
    if (rc != STORAGE_OK) {
        out->ErrorCode = rc == STORAGE_ERR_OUT_OF_RANGE ? KERR_OFFSET_OUT_OF_RANGE : KERR_KAFKA_STORAGE_ERROR;
        out->HighWatermark = -1;
        release_read(fp);
        return 0;
    }
    out->ErrorCode = KERR_NONE;
    if (fp->rr.length == 0 || (have_data && (int64_t)fp->rr.length > budget)) {
        release_read(fp);
        return 0;
    }
    out->Records = (kbytes_t){NULL, (int32_t)fp->rr.length}; /* a hole: sent from the file */
    if (fs->read_committed)
        collect_aborted(fs->r, fp);
    return fp->rr.length;
}

/* Read every partition; returns the total bytes, or -1 when an error
 * means the fetch should be answered at once. */
static int64_t collect(fetch_state *fs)
{
    const FetchRequest *req = fs->r->req;
    int64_t total = 0, budget = MIN(req->MaxBytes > 0 ? req->MaxBytes : INT32_MAX, fs->quota_cap);
    bool error = false;
    for (int32_t i = 0; i < fs->nparts; i++) {
        fetch_part *fp = &fs->parts[i];
        if (!fp->p) {
            error = true;
            continue;
        }
        int64_t n = read_part(fs, fp, budget - total, total > 0);
        total += n;
        error |= fp->out->ErrorCode != KERR_NONE || fp->diverged;
    }
    return error ? -1 : total;
}

typedef struct hole_ctx {
    fetch_state *fs;
    net_reply *reply;
    buf_t *buf;
    size_t prev;
    int32_t next_part;
} hole_ctx;

static void release_file(void *arg)
{
    plog_read_result_t *rr = arg;
    plog_read_release(rr);
    free(rr);
}

/* The encoder reached a file-backed Records field: emit the bytes before
 * it, then the file range (the next partition with a pending read). */
static void on_hole(void *arg, size_t pos, size_t len)
{
    hole_ctx *h = arg;
    net_reply_add_copy(h->reply, h->buf->data + h->prev, pos - h->prev);
    h->prev = pos;
    fetch_part *fp = &h->fs->parts[h->next_part++];
    while (fp->out->Records.ptr != NULL)
        fp = &h->fs->parts[h->next_part++];
    CK_ASSERT(fp->rr.length == len);
    plog_read_result_t *rr = xmalloc(sizeof *rr);
    *rr = fp->rr;
    memset(&fp->rr, 0, sizeof fp->rr);
    fp->rr.fd = -1;
    net_reply_add_file(h->reply, rr->fd, (off_t)rr->position, rr->length, release_file, rr);
}

static void fetch_unref(fetch_state *fs)
{
    if (atomic_fetch_sub(&fs->refs, 1) != 1)
        return;
    for (int32_t i = 0; i < fs->nparts; i++) {
        release_read(&fs->parts[i]);
        partition_put(fs->parts[i].p);
    }
    free(fs->parts);
    free(fs);
}

/* A consumer over its quota gets no records, and the throttle (quota.c). */
static void quota_check(fetch_state *fs)
{
    int64_t total = 0;
    for (int32_t i = 0; i < fs->nparts; i++)
        total += fs->parts[i].out->Records.ptr == NULL ? (int64_t)fs->parts[i].rr.length : 0;
    if (fs->replica_id >= 0 || broker_quota_fetch(fs->r, total))
        return;
    for (int32_t i = 0; i < fs->nparts; i++)
        if (fs->parts[i].out->Records.ptr == NULL) {
            release_read(&fs->parts[i]);
            fs->parts[i].out->Records = (kbytes_t){(const uint8_t *)"", 0};
        }
}

static void fetch_respond(fetch_state *fs)
{
    breq *r = fs->r;
    fs->done = true;
    broker_unpark(r->b, &fs->park);
    for (int32_t i = 0; i < fs->nparts; i++)
        if (fs->parts[i].p)
            partition_unwatch(fs->parts[i].p, &fs->parts[i].waiter);
    quota_check(fs);
    broker_quota_throttle(r);
    buf_t b;
    buf_init(&b);
    hole_ctx h = {fs, net_reply_new(), &b, 0, 0};
    proto_response_encode_holes(r->hdr.api_key, r->hdr.api_version, r->hdr.correlation_id, r->resp, &b,
                                on_hole, &h);
    net_reply_add_copy(h.reply, b.data + h.prev, b.len - h.prev);
    buf_free(&b);
    net_req_reply(r->nreq, h.reply);
    breq_free(r);
    fetch_unref(fs);
}

/* A stop was requested: answer now, on the reactor (see on_wake_run). */
static void expire_run(void *arg)
{
    fetch_state *fs = arg;
    if (!fs->done) {
        net_timer_cancel(&fs->timer);
        collect(fs);
        fetch_respond(fs);
    }
    fetch_unref(fs);
}

static void on_expire(parked *pk)
{
    fetch_state *fs = (fetch_state *)pk;
    atomic_fetch_add(&fs->refs, 1);
    if (!net_post(fs->reactor, expire_run, fs))
        atomic_fetch_sub(&fs->refs, 1);
}

/* Shutdown: the reactors have ended, answer now (the reply is discarded). */
static void on_cancel(parked *pk)
{
    fetch_state *fs = (fetch_state *)pk;
    collect(fs);
    fetch_respond(fs);
}

static void on_timeout(void *arg)
{
    fetch_state *fs = arg;
    if (!fs->done) {
        collect(fs);
        fetch_respond(fs);
    }
}

static void watch_all(fetch_state *fs)
{
    for (int32_t i = 0; i < fs->nparts; i++)
        if (fs->parts[i].p)
            partition_watch(fs->parts[i].p, &fs->parts[i].waiter);
}

/* Runs on the request's reactor after a high watermark advanced. */
static void on_wake_run(void *arg)
{
    fetch_state *fs = arg;
    if (!fs->done) {
        const FetchRequest *req = fs->r->req;
        watch_all(fs);
        int64_t n = collect(fs);
        if (n < 0 || n >= MAX(req->MinBytes, 1)) {
            net_timer_cancel(&fs->timer);
            fetch_respond(fs);
        }
    }
    fetch_unref(fs);
}

/* A partition's waiter list calls this with its lock held. */
static void on_wake(void *arg)
{
    fetch_state *fs = arg;
    atomic_fetch_add(&fs->refs, 1);
    if (!net_post(fs->reactor, on_wake_run, fs))
        atomic_fetch_sub(&fs->refs, 1);
}

/* A follower's fetch: a divergence from the leader's epochs is answered
 * with DivergingEpoch; otherwise the fetch offset is the follower's durable
 * log end. */
static int16_t follower_fetch(fetch_state *fs, fetch_part *fp)
{
    const FetchRequest_FetchPartition *in = fp->in;
    if (in->LastFetchedEpoch >= 0) {
        int32_t epoch;
        int64_t end;
        plog_epoch_end_offset(fp->p->log, in->LastFetchedEpoch, &epoch, &end);
        if (epoch < in->LastFetchedEpoch || end < in->FetchOffset) {
            fp->diverged = true;
            fp->out->DivergingEpoch.Epoch = epoch;
            fp->out->DivergingEpoch.EndOffset = end;
            return KERR_NONE;
        }
    }
    return partition_follower_fetched(fp->p, fs->replica_id, in->FetchOffset);
}

static void resolve(breq *r, fetch_state *fs, const meta_image *img)
{
    const FetchRequest *req = r->req;
    FetchResponse *resp = r->resp;
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0, k = 0;
    resp->Responses.count = nt;
    resp->Responses.items = breq_items(r, &FetchResponse_FetchableTopicResponse_desc, nt);
    for (int32_t i = 0; i < nt; i++)
        fs->nparts += MAX(req->Topics.items[i].Partitions.count, 0);
    fs->parts = xcalloc((size_t)MAX(fs->nparts, 1), sizeof *fs->parts);
    for (int32_t i = 0; i < nt; i++) {
        const FetchRequest_FetchTopic *t = &req->Topics.items[i];
        FetchResponse_FetchableTopicResponse *to = &resp->Responses.items[i];
        int32_t np = MAX(t->Partitions.count, 0);
        to->Topic = t->Topic;
        to->Partitions.count = np;
        to->Partitions.items = breq_items(r, &FetchResponse_PartitionData_desc, np);
        const meta_topic *mt = t->Topic.len > 0 ? meta_image_topic(img, t->Topic.ptr, (size_t)t->Topic.len) : NULL;
        /* A follower needs CLUSTER_ACTION (asked once, in api_fetch), a consumer READ. */
        int16_t denied = fs->replica_id >= 0 ? fs->denied : broker_topic_denied(r, img, ACL_OP_READ, t->Topic);
        if (denied != KERR_NONE)
            mt = NULL;
        for (int32_t j = 0; j < np; j++, k++) {
            fetch_part *fp = &fs->parts[k];
            fp->in = &t->Partitions.items[j];
            fp->out = &to->Partitions.items[j];
            fp->out->PartitionIndex = fp->in->Partition;
            fp->out->AbortedTransactions.count = -1;
            fp->out->Records = (kbytes_t){(const uint8_t *)"", 0};
            fp->rr.fd = -1;
            fp->waiter = (pwaiter){.wake = on_wake, .arg = fs, .on_log_end = fs->replica_id >= 0};
            fp->p = mt ? replica_get(r->b->replicas, mt->name, strlen(mt->name), fp->in->Partition) : NULL;
            int16_t err = fp->p ? partition_check_leader(fp->p, fp->in->CurrentLeaderEpoch)
                                : denied ? denied : broker_partition_elsewhere(mt, fp->in->Partition);
            if (err == KERR_NONE && fs->replica_id >= 0)
                err = follower_fetch(fs, fp);
            if (err != KERR_NONE) {
                partition_put(fp->p);
                fp->p = NULL;
                fp->out->ErrorCode = err;
                fp->out->HighWatermark = -1;
                broker_leader_hint(mt, fp->in->Partition, &fp->out->CurrentLeader.LeaderId,
                                   &fp->out->CurrentLeader.LeaderEpoch);
            }
        }
    }
}

breq_rc api_fetch(breq *r)
{
    const FetchRequest *req = r->req;
    fetch_state *fs = xcalloc(1, sizeof *fs);
    fs->r = r;
    fs->reactor = net_conn_reactor(net_req_conn(r->nreq));
    atomic_store(&fs->refs, 1);
    fs->replica_id = req->ReplicaId;
    fs->denied = req->ReplicaId >= 0 && !broker_allowed_cluster_action(r) ? KERR_CLUSTER_AUTHORIZATION_FAILED
                                                                          : KERR_NONE;
    fs->read_committed = req->ReplicaId < 0 && req->IsolationLevel == 1;
    fs->quota_cap = req->ReplicaId < 0 ? broker_quota_fetch_cap(r) : INT64_MAX;
    net_timer_init(&fs->timer);
    meta_image *img = meta_acquire(r->b->meta);
    resolve(r, fs, img);
    meta_image_release(img);
    int64_t need = MAX(req->MinBytes, 1);
    int64_t n = collect(fs);
    if (n >= 0 && n < need && req->MaxWaitMs > 0) {
        watch_all(fs);
        n = collect(fs); /* data that arrived before the watch */
        if (n >= 0 && n < need) {
            net_timer_add(fs->reactor, &fs->timer, (uint64_t)req->MaxWaitMs, on_timeout, fs);
            fs->park.expire = on_expire;
            fs->park.cancel = on_cancel;
            broker_park(r->b, &fs->park);
            return BREQ_PARKED;
        }
    }
    fetch_respond(fs);
    return BREQ_PARKED; /* fetch_respond completed and freed r */
}
