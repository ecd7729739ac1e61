/*
 * fetcher.c - followers fetch from leaders: one fetcher (a thread and a
 * kclient) per source broker, many partitions per Fetch.
 *
 * A round:
 *   1. pick the partitions this node follows whose leader is this
 *      fetcher's broker (a scan of the replica map, so a leadership change
 *      needs no hand-over: the partition simply shows up in another
 *      fetcher's next round);
 *   2. make what each of them appended durable (synced on this thread,
 *      flusher_sync_now), so that the fetch offset sent in step 3 tells
 *      the leader what is durable here;
 *   3. send Fetch v12 with ReplicaId set, each partition's log end as
 *      FetchOffset, its latest epoch as LastFetchedEpoch and the leader
 *      epoch from the image as CurrentLeaderEpoch; the leader long-polls up
 *      to replica.fetch.wait.max.ms and is woken by log-end advances;
 *   4. per partition, under its produce lock and only if it still follows
 *      the same leader at the same epoch: truncate to the divergence point
 *      when the leader sent DivergingEpoch (KIP-320: the lower of its end
 *      for that epoch and ours), or append the batches (plog_append_replica:
 *      CRCs checked, offsets and epochs kept; the _nowake form when step 2
 *      syncs them), rebuild producer state from
 *      them, take the leader's log start and the high watermark (never
 *      above our own log end).
 * A partition whose leader answers an error is skipped for
 * FETCH_BACKOFF_MS (the metadata image will move it, or it recovers); a
 * failed request backs the whole fetcher off as long.
 */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/util.h"
#include "kclient/kclient.h"
#include "proto/kerr.h"
#include "proto/proto.h"
#include "replica/replica_int.h"

/* replica.fetch.wait.max.ms: Kafka's 500 would hold a partition that has
 * just moved to a leader this fetcher already polls for up to that long
 * (it joins the next round); 100 costs an idle follower ten requests a
 * second per leader. */
#define FETCH_WAIT_MAX_MS 100
#define FETCH_MAX_BYTES (10 * 1024 * 1024)     /* replica.fetch.response.max.bytes */
#define FETCH_PARTITION_MAX_BYTES (1024 * 1024) /* replica.fetch.max.bytes */
#define FETCH_BACKOFF_MS 100
#define FETCH_TIMEOUT_MS 5000
#define FETCH_PARTS_MAX 2048
#define API_FETCH 1
#define FETCH_VERSION 12

typedef struct fetcher fetcher;

struct fetchers {
    replica_mgr *m;
    net_t *net;
    meta_t *meta;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;  /* bumped by every kick */
    bool stop;
    fetcher *list;
};

struct fetcher {
    fetchers *fs;
    int32_t leader;
    char addr[320];
    kclient_t *kc;
    pthread_t thread;
    fetcher *next;
};

/* One Fetch in flight: the fetcher's thread waits on it; the kclient
 * callback completes it. Two references: the waiter's and the callback's. */
typedef struct fetch_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done;
    int err;
    const FetchResponse *resp;
    kclient_resp_t *kresp;
} fetch_call;

typedef struct fpart {
    partition *p;
    int32_t epoch;      /* leader epoch sent */
    int64_t offset;     /* fetch offset sent */
} fpart;

static void call_unref(fetch_call *c)
{
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left > 0)
        return;
    if (c->kresp)
        kclient_resp_free(c->kresp);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static void on_response(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fetch_call *c = arg;
    pthread_mutex_lock(&c->mu);
    c->done = true;
    c->err = err;
    if (err == KCLIENT_OK) {
        kclient_resp_keep(resp);
        c->kresp = resp;
        c->resp = response;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    call_unref(c);
}

static bool stopping(fetchers *fs)
{
    pthread_mutex_lock(&fs->mu);
    bool s = fs->stop;
    pthread_mutex_unlock(&fs->mu);
    return s;
}

/* Waits for the call's answer, or a stop; true when answered. */
static bool call_wait(fetcher *f, fetch_call *c)
{
    pthread_mutex_lock(&c->mu);
    while (!c->done) {
        struct timespec ts = clock_abstime_after_ms(100);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (!c->done && stopping(f->fs))
            break;
    }
    bool done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

/* Sleeps up to ms, or until a kick or a stop. */
static void idle(fetchers *fs, uint64_t gen, int64_t ms)
{
    pthread_mutex_lock(&fs->mu);
    struct timespec ts = clock_abstime_after_ms(ms);
    while (!fs->stop && fs->gen == gen)
        if (pthread_cond_timedwait(&fs->cv, &fs->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&fs->mu);
}

/* ---- step 1: the partitions ----------------------------------------------- */

typedef struct pick_ctx {
    fetcher *f;
    int64_t now;
    fpart *parts;
    int32_t n;
} pick_ctx;

static void pick_one(void *arg, partition *p)
{
    pick_ctx *c = arg;
    if (c->n >= FETCH_PARTS_MAX || atomic_load(&p->leading) || atomic_load(&p->removed) ||
        atomic_load(&p->leader_id) != c->f->leader || plog_state(p->log) != STORAGE_OK)
        return;
    pthread_mutex_lock(&p->rlock);
    bool wait = p->fetch_backoff_until > c->now;
    pthread_mutex_unlock(&p->rlock);
    if (wait)
        return;
    atomic_fetch_add(&p->refs, 1);
    c->parts[c->n++] = (fpart){p, atomic_load(&p->leader_epoch), -1};
}

/* ---- step 2: durable before fetching --------------------------------------- */

/* Syncs here, on the fetcher's thread: the next Fetch waits for nothing
 * else, and a hand-over to the flusher thread and back would add two
 * wake-ups to every round on a busy machine. A partition whose sync failed
 * (its log is failed now) moves behind the returned count and is not
 * fetched: its log end is not durable. */
static int32_t sync_all(fpart *parts, int32_t n)
{
    int32_t kept = n;
    for (int32_t i = 0; i < kept; i++) {
        partition *p = parts[i].p;
        if (!plog_ack_needs_flush(p->log) || atomic_load(&p->durable_end) >= plog_log_end_offset(p->log) ||
            replica_sync_now(p) == KERR_NONE)
            continue;
        fpart failed = parts[i];
        parts[i--] = parts[--kept];
        parts[kept] = failed;
    }
    return kept;
}

/* ---- step 3: the request ------------------------------------------------- */

static void build_request(fetcher *f, fpart *parts, int32_t n, arena_t *a, FetchRequest *req)
{
    proto_set_defaults(&FetchRequest_desc, FETCH_VERSION, req);
    req->ReplicaId = replica_node_id(f->fs->m);
    req->MaxWaitMs = FETCH_WAIT_MAX_MS;
    req->MinBytes = 1;
    req->MaxBytes = FETCH_MAX_BYTES;
    req->SessionId = 0;
    req->SessionEpoch = -1;
    FetchRequest_FetchTopic *topics = arena_alloc(a, (size_t)n * sizeof *topics);
    int32_t nt = 0;
    for (int32_t i = 0; i < n; i++) {
        partition *p = parts[i].p;
        FetchRequest_FetchTopic *t = NULL;
        for (int32_t k = 0; k < nt && !t; k++)
            if (topics[k].Topic.len == (int32_t)strlen(p->topic) && memcmp(topics[k].Topic.ptr, p->topic, strlen(p->topic)) == 0)
                t = &topics[k];
        if (!t) {
            t = &topics[nt++];
            proto_set_defaults(&FetchRequest_FetchTopic_desc, FETCH_VERSION, t);
            t->Topic = kstr_from(p->topic);
            t->Partitions.items = arena_alloc(a, (size_t)n * sizeof *t->Partitions.items);
        }
        FetchRequest_FetchPartition *fp = &t->Partitions.items[t->Partitions.count++];
        int32_t last_epoch;
        int64_t epoch_start;
        plog_latest_epoch(p->log, &last_epoch, &epoch_start);
        parts[i].offset = plog_log_end_offset(p->log);
        *fp = (FetchRequest_FetchPartition){.Partition = p->index, .CurrentLeaderEpoch = parts[i].epoch,
                                            .FetchOffset = parts[i].offset, .LastFetchedEpoch = last_epoch,
                                            .LogStartOffset = plog_log_start_offset(p->log),
                                            .PartitionMaxBytes = FETCH_PARTITION_MAX_BYTES};
    }
    req->Topics = (FetchRequest_FetchTopic_array){nt, topics};
    req->ForgottenTopicsData = (FetchRequest_ForgottenTopic_array){0, NULL};
    req->RackId = kstr_from("");
}

/* ---- step 4: the answer --------------------------------------------------- */

/* Under produce_lock: cut the log at offset (a divergence, or out of range
 * below the leader's log start when full). */
static void truncate_to(partition *p, int64_t offset, bool full)
{
    int64_t end = offset;
    int rc = full ? plog_truncate_fully(p->log, offset) : plog_truncate(p->log, offset, &end);
    if (rc != STORAGE_OK) {
        log_error("replica", "truncation failed topic=%s partition=%d offset=%lld err=\"%s\"", p->topic, p->index,
                  (long long)offset, storage_strerror(rc));
        return;
    }
    end = plog_log_end_offset(p->log);
    if (atomic_load(&p->high_watermark) > end)
        atomic_store(&p->high_watermark, end);
    if (atomic_load(&p->durable_end) > end)
        atomic_store(&p->durable_end, end);
    replica_load_producers(p); /* the producer state follows the log */
    log_info("replica", "truncated topic=%s partition=%d to=%lld", p->topic, p->index, (long long)end);
}

/* Under produce_lock: append the leader's batches at our log end, skipping
 * any below it; producer state follows. Returns the bytes appended. */
static size_t append_batches(partition *p, kbytes_t recs)
{
    const uint8_t *data = recs.ptr;
    size_t len = recs.len > 0 ? (size_t)recs.len : 0, pos = 0, start = 0;
    int64_t end = plog_log_end_offset(p->log);
    batch_info_t bi;
    while (pos < len && batch_parse_header(data + pos, len - pos, &bi) == BATCH_ERR_OK && bi.size <= len - pos) {
        if (batch_info_last_offset(&bi) < end)
            start = pos + bi.size; /* already here */
        pos += bi.size;
    }
    if (pos <= start)
        return 0;
    plog_append_result_t res;
    /* step 2 syncs a log that acknowledges after fsync; the flusher others */
    int rc = plog_ack_needs_flush(p->log) ? plog_append_replica_nowake(p->log, data + start, pos - start, &res)
                                          : plog_append_replica(p->log, data + start, pos - start, &res);
    if (rc != STORAGE_OK) {
        log_error("replica", "follower append failed topic=%s partition=%d err=\"%s\"", p->topic, p->index,
                  storage_strerror(rc));
        return 0;
    }
    for (size_t q = start; q < pos; q += bi.size) {
        batch_parse_header(data + q, pos - q, &bi);
        if (bi.producer_id >= 0)
            replica_apply_batch(p, &bi, bi.base_offset, batch_info_last_offset(&bi));
    }
    return pos - start;
}

static int16_t partition_error(partition *p, int16_t err)
{
    pthread_mutex_lock(&p->rlock);
    p->fetch_backoff_until = clock_mono_ms() + FETCH_BACKOFF_MS;
    pthread_mutex_unlock(&p->rlock);
    return err;
}

static void handle_partition(fetcher *f, fpart *fp, const FetchResponse_PartitionData *d)
{
    partition *p = fp->p;
    size_t appended = 0;
    pthread_mutex_lock(&p->produce_lock);
    bool same = !atomic_load(&p->leading) && atomic_load(&p->leader_id) == f->leader &&
                atomic_load(&p->leader_epoch) == fp->epoch && plog_log_end_offset(p->log) == fp->offset;
    if (!same) {
        pthread_mutex_unlock(&p->produce_lock);
        return; /* moved on meanwhile: the next round asks again */
    }
    if (d->ErrorCode == KERR_OFFSET_OUT_OF_RANGE && d->LogStartOffset > fp->offset) {
        truncate_to(p, d->LogStartOffset, true);
    } else if (d->ErrorCode != KERR_NONE) {
        partition_error(p, d->ErrorCode);
    } else if (d->DivergingEpoch.Epoch >= 0 && d->DivergingEpoch.EndOffset >= 0) {
        int32_t epoch;
        int64_t ours;
        plog_epoch_end_offset(p->log, d->DivergingEpoch.Epoch, &epoch, &ours);
        int64_t at = ours >= 0 ? MIN(ours, d->DivergingEpoch.EndOffset) : d->DivergingEpoch.EndOffset;
        truncate_to(p, MIN(at, fp->offset), false);
    } else {
        appended = append_batches(p, d->Records);
        if (d->LogStartOffset > plog_log_start_offset(p->log) && d->LogStartOffset <= plog_log_end_offset(p->log))
            plog_delete_records(p->log, d->LogStartOffset);
        replica_raise_hw(p, MIN(d->HighWatermark, plog_log_end_offset(p->log)));
    }
    pthread_mutex_unlock(&p->produce_lock);
    if (appended > 0)
        partition_note_append(p, appended);
}

static fpart *find_part(fpart *parts, int32_t n, kstr_t topic, int32_t index)
{
    for (int32_t i = 0; i < n; i++)
        if (parts[i].p->index == index && (size_t)topic.len == strlen(parts[i].p->topic) &&
            memcmp(topic.ptr, parts[i].p->topic, (size_t)topic.len) == 0)
            return &parts[i];
    return NULL;
}

static void handle_response(fetcher *f, fpart *parts, int32_t n, const FetchResponse *resp)
{
    for (int32_t i = 0; i < resp->Responses.count; i++) {
        const FetchResponse_FetchableTopicResponse *t = &resp->Responses.items[i];
        for (int32_t j = 0; j < t->Partitions.count; j++) {
            fpart *fp = find_part(parts, n, t->Topic, t->Partitions.items[j].PartitionIndex);
            if (fp)
                handle_partition(f, fp, &t->Partitions.items[j]);
        }
    }
}

/* ---- the fetcher's thread ------------------------------------------------------- */

/* The leader's inter-broker endpoint from the image; (re)creates the client
 * when it moved. */
static bool ensure_client(fetcher *f)
{
    meta_image *img = meta_acquire(f->fs->meta);
    char addr[sizeof f->addr] = "";
    if (!meta_broker_addr(img, f->leader, meta_inter_broker_listener(f->fs->meta), addr, sizeof addr))
        addr[0] = 0;
    meta_image_release(img);
    if (!addr[0])
        return false;
    if (f->kc && strcmp(addr, f->addr) == 0)
        return true;
    kclient_free(f->kc);
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    kclient_config cfg = kclient_config_secure(replica_peer_security(f->fs->m));
    cfg.backoff_max_ms = 500;
    f->kc = kclient_new(f->fs->net, NULL, f->addr, &cfg);
    return f->kc != NULL;
}

/* One round; false when the fetcher should back off. */
static bool fetch_round(fetcher *f, fpart *parts, int32_t n)
{
    n = sync_all(parts, n);
    if (n == 0 || !ensure_client(f))
        return false;
    arena_t a;
    arena_init(&a);
    FetchRequest req;
    build_request(f, parts, n, &a, &req);
    fetch_call *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->refs = 2;
    int rc = kclient_send(f->kc, API_FETCH, FETCH_VERSION, &req, FETCH_TIMEOUT_MS, on_response, c);
    arena_free(&a);
    if (rc != KCLIENT_OK) {
        c->refs = 1;
        call_unref(c);
        return false;
    }
    bool ok = call_wait(f, c) && c->err == KCLIENT_OK && c->resp->ErrorCode == KERR_NONE;
    if (ok)
        handle_response(f, parts, n, c->resp);
    call_unref(c);
    return ok;
}

static void *fetcher_main(void *arg)
{
    fetcher *f = arg;
    fetchers *fs = f->fs;
    fpart *parts = xmalloc(FETCH_PARTS_MAX * sizeof *parts);
    while (!stopping(fs)) {
        pthread_mutex_lock(&fs->mu);
        uint64_t gen = fs->gen;
        pthread_mutex_unlock(&fs->mu);
        pick_ctx pc = {f, clock_mono_ms(), parts, 0};
        replica_each(fs->m, pick_one, &pc);
        bool ok = pc.n > 0 && fetch_round(f, parts, pc.n);
        for (int32_t i = 0; i < pc.n; i++)
            partition_put(parts[i].p);
        if (!ok)
            idle(fs, gen, pc.n > 0 ? FETCH_BACKOFF_MS : FETCH_WAIT_MAX_MS);
    }
    free(parts);
    return NULL;
}

/* ---- the set of fetchers ------------------------------------------------------ */

fetchers *fetchers_new(replica_mgr *m, net_t *net, meta_t *meta)
{
    fetchers *fs = xcalloc(1, sizeof *fs);
    fs->m = m;
    fs->net = net;
    fs->meta = meta;
    pthread_mutex_init(&fs->mu, NULL);
    pthread_cond_init(&fs->cv, NULL);
    return fs;
}

/* Under fs->mu. */
static void ensure_fetcher(fetchers *fs, int32_t leader)
{
    for (fetcher *f = fs->list; f; f = f->next)
        if (f->leader == leader)
            return;
    fetcher *f = xcalloc(1, sizeof *f);
    f->fs = fs;
    f->leader = leader;
    if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0)
        CK_PANIC("cannot start a follower fetcher thread");
    f->next = fs->list;
    fs->list = f;
    log_info("replica", "fetcher started leader=%d", leader);
}

void fetchers_kick(fetchers *fs, const meta_image *img)
{
    int32_t me = replica_node_id(fs->m);
    pthread_mutex_lock(&fs->mu);
    for (int32_t i = 0; i < img->ntopics; i++) {
        const meta_topic *t = img->topics[i];
        for (int32_t j = 0; j < t->npartitions; j++) {
            const meta_partition *mp = &t->partitions[j];
            if (mp->leader < 0 || mp->leader == me)
                continue;
            for (int32_t k = 0; k < mp->nreplicas; k++)
                if (mp->replicas[k] == me) {
                    ensure_fetcher(fs, mp->leader);
                    break;
                }
        }
    }
    fs->gen++;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
}

void fetchers_free(fetchers *fs)
{
    pthread_mutex_lock(&fs->mu);
    fs->stop = true;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    while (fs->list) {
        fetcher *f = fs->list;
        fs->list = f->next;
        pthread_join(f->thread, NULL);
        kclient_free(f->kc);
        free(f);
    }
    pthread_mutex_destroy(&fs->mu);
    pthread_cond_destroy(&fs->cv);
    free(fs);
}
