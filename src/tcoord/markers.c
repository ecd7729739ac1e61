/* markers.c - the second phase of a transaction's end: WriteTxnMarkers
 * (API 27) to the leader of every partition of a transaction in
 * PrepareCommit or PrepareAbort, on the client listener through kclient
 * (this node's own partitions the same way), one request per leader and
 * round. A partition leaves the transaction's to-do list when its leader
 * acknowledges (error NONE; or INVALID_PRODUCER_EPOCH: it has seen a later
 * epoch of the producer, so the transaction ended there), or when its topic
 * or partition no longer exists; the others are sent again TCOORD_MARKER_RETRY_MS after the
 * round's last answer, to whichever broker leads them by then. When the
 * list is empty the transaction is completed (CompleteCommit or
 * CompleteAbort stored). coord_int.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/kerr.h"
#include "tcoord/coord_int.h"

enum { API_WRITE_TXN_MARKERS = 27, MARKERS_VERSION_MAX = 1 };

struct tsend {
    tsend *next;               /* first: tfx_run walks the list through it */
    tcoord *c;
    kclient_t *kc;
    int32_t broker_id;
    char *txn_id;
    int32_t index;
    uint32_t gen, round;
    arena_t arena;
    WriteTxnMarkersRequest req;
    WriteTxnMarkersRequest_WritableTxnMarker marker;
};

/* ---- clients --------------------------------------------------------------------- */

static kclient_t *client_for(tcoord *c, const meta_image *img, int32_t broker_id)
{
    for (int32_t i = 0; i < c->nclients; i++)
        if (c->clients[i].broker_id == broker_id)
            return c->clients[i].kc;
    char addr[300];
    if (!meta_broker_addr(img, broker_id, meta_inter_broker_listener(c->meta), addr, sizeof addr))
        return NULL;
    kclient_config kcfg = kclient_config_secure(c->peer_security);
    kclient_t *kc = kclient_new(c->net, NULL, addr, &kcfg);
    if (!kc)
        return NULL;
    c->clients = xrealloc(c->clients, (size_t)(c->nclients + 1) * sizeof *c->clients);
    c->clients[c->nclients++] = (tclient){broker_id, kc};
    return kc;
}

void tc_clients_free(tcoord *c)
{
    for (int32_t i = 0; i < c->nclients; i++)
        kclient_free(c->clients[i].kc);
    free(c->clients);
    c->clients = NULL;
    c->nclients = 0;
}

/* ---- building a round ------------------------------------------------------------- */

static void left_remove(tcoord_txn *t, int32_t i)
{
    free(t->left[i].topic);
    t->left[i] = t->left[--t->nleft];
}

static tsend *send_new(tcoord *c, tcoord_txn *t, kclient_t *kc, int32_t broker_id)
{
    int32_t index = tc_partition_of(c, t->id);
    tsend *s = xcalloc(1, sizeof *s);
    *s = (tsend){.c = c, .kc = kc, .broker_id = broker_id, .txn_id = xstrdup(t->id), .index = index,
                 .gen = c->gen[index], .round = t->round};
    arena_init(&s->arena);
    s->marker = (WriteTxnMarkersRequest_WritableTxnMarker){
        .ProducerId = t->m.producer_id, .ProducerEpoch = t->m.epoch,
        .TransactionResult = t->m.state == TCOORD_PREPARE_COMMIT, .CoordinatorEpoch = c->loaded_epoch[index]};
    s->req.Markers = (WriteTxnMarkersRequest_WritableTxnMarker_array){1, &s->marker};
    return s;
}

/* Adds (topic, partition) to s's marker, topics kept together. */
static void send_add(tsend *s, const char *topic, int32_t index)
{
    WriteTxnMarkersRequest_WritableTxnMarkerTopic_array *ts = &s->marker.Topics;
    int32_t i = 0;
    while (i < ts->count && strcmp(ts->items[i].Name.ptr, topic) != 0)
        i++;
    if (i == ts->count) {
        WriteTxnMarkersRequest_WritableTxnMarkerTopic *n = arena_alloc(&s->arena, (size_t)(i + 1) * sizeof *n);
        if (i > 0)
            memcpy(n, ts->items, (size_t)i * sizeof *n);
        char *name = arena_strndup(&s->arena, topic, strlen(topic));
        n[i] = (WriteTxnMarkersRequest_WritableTxnMarkerTopic){kstr_from(name), {0, NULL}};
        ts->items = n;
        ts->count++;
    }
    kint32_array_t *ps = &ts->items[i].PartitionIndexes;
    int32_t *np = arena_alloc(&s->arena, (size_t)(ps->count + 1) * sizeof *np);
    if (ps->count > 0)
        memcpy(np, ps->items, (size_t)ps->count * sizeof *np);
    np[ps->count] = index;
    ps->items = np;
    ps->count++;
}

static void send_free(tsend *s)
{
    arena_free(&s->arena);
    free(s->txn_id);
    free(s);
}

/* The leader of a partition still to mark: -1 when it has none now, -2
 * when the partition no longer exists (it needs no marker). */
static int32_t leader_of(const meta_image *img, const tcoord_tp *tp)
{
    const meta_topic *mt = meta_image_topic(img, tp->topic, strlen(tp->topic));
    if (!mt || tp->partition < 0 || tp->partition >= mt->npartitions)
        return -2;
    return mt->partitions[tp->partition].leader;
}

static void complete(tcoord *c, tcoord_txn *t, tfx *f)
{
    tcoord_meta next;
    tcoord_txn_complete(t, clock_wall_ms(), &next);
    log_info("tcoord", "transaction ended txn=%s producer_id=%lld epoch=%d result=%s", t->id,
             (long long)t->m.producer_id, t->m.epoch, tcoord_state_name(next.state));
    tc_store(c, t, &next, NULL, NULL, -1, f);
}

/* Queues one request per leader of t's partitions on f. */
static int32_t build_round(tcoord *c, tcoord_txn *t, const meta_image *img, tfx *f)
{
    tsend *mine = NULL;
    int32_t n = 0;
    for (int32_t i = t->nleft - 1; i >= 0; i--) {
        int32_t leader = leader_of(img, &t->left[i]);
        if (leader == -2) {
            left_remove(t, i);
            continue;
        }
        kclient_t *kc = leader >= 0 ? client_for(c, img, leader) : NULL;
        if (!kc)
            continue;
        tsend *s = mine;
        while (s && s->broker_id != leader)
            s = s->next;
        if (!s) {
            s = send_new(c, t, kc, leader);
            s->next = mine;
            mine = s;
            n++;
        }
        send_add(s, t->left[i].topic, t->left[i].partition);
    }
    while (mine) {
        tsend *next = mine->next;
        mine->next = f->sends;
        f->sends = mine;
        tc_ref(c);
        mine = next;
    }
    return n;
}

void tc_markers_round(tcoord *c, tcoord_txn *t, tfx *f)
{
    CK_ASSERT(!t->pending && t->inflight == 0);
    CK_ASSERT(t->m.state == TCOORD_PREPARE_COMMIT || t->m.state == TCOORD_PREPARE_ABORT);
    int64_t now = clock_wall_ms();
    if (!c->net || c->stopping) {
        t->retry_ms = now + TCOORD_MARKER_RETRY_MS;
        return;
    }
    meta_image *img = meta_acquire(c->meta);
    t->inflight = build_round(c, t, img, f);
    meta_image_release(img);
    if (t->inflight > 0)
        return;
    if (t->nleft == 0)
        complete(c, t, f);
    else
        t->retry_ms = now + TCOORD_MARKER_RETRY_MS;
}

/* ---- answers ------------------------------------------------------------------------ */

static void left_acked(tcoord_txn *t, const char *topic, int32_t index)
{
    for (int32_t i = 0; i < t->nleft; i++)
        if (t->left[i].partition == index && strcmp(t->left[i].topic, topic) == 0) {
            left_remove(t, i);
            return;
        }
}

/* Under the lock: the partitions resp acknowledges leave t's list. */
static void apply_response(tcoord_txn *t, const tsend *s, const WriteTxnMarkersResponse *resp)
{
    for (int32_t m = 0; m < resp->Markers.count; m++) {
        const WriteTxnMarkersResponse_WritableTxnMarkerResult *mr = &resp->Markers.items[m];
        for (int32_t i = 0; mr->ProducerId == t->m.producer_id && i < mr->Topics.count; i++) {
            const WriteTxnMarkersResponse_WritableTxnMarkerTopicResult *tr = &mr->Topics.items[i];
            char *topic = xstrndup(tr->Name.ptr ? tr->Name.ptr : "", (size_t)MAX(tr->Name.len, 0));
            for (int32_t k = 0; k < tr->Partitions.count; k++) {
                int16_t err = tr->Partitions.items[k].ErrorCode;
                /* INVALID_PRODUCER_EPOCH: the partition knows a later epoch of the
                 * producer, so this transaction ended there already */
                if (err == KERR_NONE || err == KERR_INVALID_PRODUCER_EPOCH)
                    left_acked(t, topic, tr->Partitions.items[k].PartitionIndex);
                else if (!t->warned && (t->warned = true))
                    log_warn("tcoord", "marker refused txn=%s broker=%d topic=%s partition=%d err=%s", t->id,
                             s->broker_id, topic, tr->Partitions.items[k].PartitionIndex, kerr_name(err));
            }
            free(topic);
        }
    }
}

static void answered(tcoord *c, tsend *s, int err, const WriteTxnMarkersResponse *resp, tfx *f)
{
    tcoord_txn *t = c->stopping || c->gen[s->index] != s->gen ? NULL : tc_txn(c, s->txn_id, false);
    if (!t || t->round != s->round)
        return;
    CK_ASSERT(t->inflight > 0);
    if (resp)
        apply_response(t, s, resp);
    else if (!t->warned && (t->warned = true))
        log_warn("tcoord", "markers not delivered txn=%s broker=%d err=%s", t->id, s->broker_id,
                 kclient_strerror(err));
    if (--t->inflight > 0)
        return;
    if (t->nleft == 0)
        complete(c, t, f);
    else
        t->retry_ms = clock_wall_ms() + TCOORD_MARKER_RETRY_MS;
    pthread_cond_signal(&c->cond);
}

static void marker_cb(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    (void)resp;
    tsend *s = arg;
    tcoord *c = s->c;
    tfx f;
    tfx_init(&f);
    pthread_mutex_lock(&c->lock);
    answered(c, s, err, err == KCLIENT_OK ? response : NULL, &f);
    pthread_mutex_unlock(&c->lock);
    tfx_run(&f);
    send_free(s);
    tc_unref(c);
}

void tc_markers_send(tsend *s)
{
    int16_t v = kclient_api_version(s->kc, API_WRITE_TXN_MARKERS);
    v = v < 0 ? MARKERS_VERSION_MAX : MIN(v, MARKERS_VERSION_MAX);
    int rc = kclient_send(s->kc, API_WRITE_TXN_MARKERS, v, &s->req, TCOORD_MARKER_TIMEOUT_MS, marker_cb, s);
    if (rc != KCLIENT_OK)
        marker_cb(s, rc, NULL, NULL);
}
