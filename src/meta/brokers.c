/*
 * brokers.c - the registered brokers of the metadata image, and the
 * controller's decisions about them: registration, heartbeats, fencing, and
 * moving leadership off a broker that is fenced.
 *
 * What it decides. Which brokers are members of the cluster (registered),
 * which of them may lead and serve partitions (unfenced), and who leads a
 * partition once its leader is fenced. The image holds what the metadata
 * log says; the time of each broker's last heartbeat lives only in the
 * controller's memory (meta_liveness), as in Kafka's BrokerHeartbeatManager:
 * a new controller starts every broker's clock afresh at its first tick,
 * except the quorum leader it replaced, whose clock starts as far back as
 * it must have been silent (meta_ctl_suspect): a dead controller's own
 * broker is fenced at once rather than a session after the election.
 *
 * The records (Kafka's metadata schemas; written at version 0):
 *   RegisterBrokerRecord (0)   id, incarnation, epoch, endpoints, rack; a
 *                              broker always registers fenced;
 *   UnregisterBrokerRecord (1) removes the registration of that epoch;
 *   FenceBrokerRecord (7), UnfenceBrokerRecord (8): of that epoch only;
 *   BrokerRegistrationChangeRecord (17): Fenced -1 unfences, 1 fences, 0
 *                              keeps; InControlledShutdown 1 sets the flag.
 * A record naming a stale epoch or an unknown broker changes nothing.
 *
 * The rules, following Kafka's ClusterControlManager, BrokerHeartbeatManager
 * and ReplicationControlManager:
 *   - Registration: a new broker, or a new incarnation of a known one (the
 *     process restarted), gets the image's next broker epoch and comes up
 *     fenced. The same incarnation registering again with the same listeners
 *     and rack is a retry: its epoch
 *     is returned and nothing is written. Kafka uses the record's log offset
 *     as the epoch; the image keeps the counter (next_broker_epoch) so
 *     replay reproduces the epochs without knowing offsets.
 *   - Heartbeat: an unknown broker gets BROKER_ID_NOT_REGISTERED (102), a
 *     wrong epoch STALE_BROKER_EPOCH (77). A fenced broker that does not
 *     want to be fenced is unfenced once it is caught up: it has applied
 *     the metadata log up to its own registration. A broker that wants to
 *     be fenced, or to shut down, is fenced and loses its leaderships; a
 *     shutting-down broker is then told it may shut down. (Kafka first
 *     marks it InControlledShutdown, a version 1 field; Chronik writes
 *     version 0 and fences at once, which moves the same leaderships.)
 *   - Session: an unfenced broker silent for longer than
 *     broker.session.timeout.ms (9000 by default) is fenced. The
 *     controller's own node counts as heard from at every tick
 *     (meta_broker_alive): its process runs the controller.
 *   - Fencing a broker removes it from every ISR it is in, unless it is the
 *     last member (the ISR is never emptied, so the partition remembers who
 *     has its data), and every partition it led gets as leader the first
 *     replica, in replica order, that is in the remaining ISR and unfenced,
 *     or -1 (offline) when there is none - unless the topic allows unclean
 *     election (election.c): then the first unfenced replica leads and the
 *     ISR becomes just it. Each change is one PartitionChangeRecord (Isr
 *     null and Leader -2 when unchanged).
 *   - Unfencing a broker makes it the leader of every partition left without
 *     a leader whose ISR holds it (it was their last member), as Kafka's
 *     ReplicationControlManager does when a broker is unfenced; with unclean
 *     election allowed, of every leaderless partition it is a replica of
 *     (the ISR becomes just it).
 *
 * Invariants (meta_brokers_check):
 *   1. brokers are sorted by id, ids unique and non-negative;
 *   2. every broker's epoch is below next_broker_epoch;
 *   3. the endpoints are never NULL (endpoints.c holds what they are);
 * and after meta_broker_fence(id):
 *   4. id leads no partition, and is in an ISR only as its last member.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

/* ---- the image ------------------------------------------------------------ */

static int32_t broker_index(const meta_image *img, int32_t id, bool *found)
{
    int32_t lo = 0, hi = img->nbrokers;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (img->brokers[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < img->nbrokers && img->brokers[lo].id == id;
    return lo;
}

const meta_broker *meta_image_broker(const meta_image *img, int32_t id)
{
    bool found;
    int32_t i = broker_index(img, id, &found);
    return found ? &img->brokers[i] : NULL;
}

const meta_broker *meta_image_next_live(const meta_image *img, int32_t *pos)
{
    while (*pos < img->nbrokers) {
        const meta_broker *b = &img->brokers[(*pos)++];
        if (!b->fenced)
            return b;
    }
    return NULL;
}

static void broker_free(meta_broker *b)
{
    meta_endpoints_free(b->endpoints, b->nendpoints);
    free(b->rack);
}

void meta_brokers_copy(meta_image *dst, const meta_image *src)
{
    dst->next_broker_epoch = src->next_broker_epoch;
    dst->nbrokers = src->nbrokers;
    dst->brokers = xcalloc((size_t)(src->nbrokers ? src->nbrokers : 1), sizeof *dst->brokers);
    for (int32_t i = 0; i < src->nbrokers; i++) {
        dst->brokers[i] = src->brokers[i];
        dst->brokers[i].endpoints = meta_endpoints_dup(src->brokers[i].endpoints, src->brokers[i].nendpoints);
        dst->brokers[i].rack = src->brokers[i].rack ? xstrdup(src->brokers[i].rack) : NULL;
    }
}

void meta_brokers_free(meta_image *img)
{
    for (int32_t i = 0; i < img->nbrokers; i++)
        broker_free(&img->brokers[i]);
    free(img->brokers);
    img->brokers = NULL;
    img->nbrokers = 0;
}

void meta_brokers_check(const meta_image *img)
{
    for (int32_t i = 0; i < img->nbrokers; i++) {
        const meta_broker *b = &img->brokers[i];
        CK_ASSERT(b->id >= 0 && (i == 0 || img->brokers[i - 1].id < b->id));
        CK_ASSERT(b->epoch < img->next_broker_epoch);
        CK_ASSERT(b->endpoints != NULL && b->nendpoints >= 0);
    }
}

static void apply_register(meta_image *img, const RegisterBrokerRecord *r)
{
    if (r->BrokerId < 0 || r->BrokerEpoch < 0)
        return;
    bool found;
    int32_t i = broker_index(img, r->BrokerId, &found);
    if (found) {
        broker_free(&img->brokers[i]);
    } else {
        img->brokers = xrealloc(img->brokers, (size_t)(img->nbrokers + 1) * sizeof *img->brokers);
        memmove(&img->brokers[i + 1], &img->brokers[i],
                (size_t)(img->nbrokers - i) * sizeof *img->brokers);
        img->nbrokers++;
    }
    int32_t nendpoints;
    meta_endpoint *endpoints = meta_endpoints_from_record(r, &nendpoints);
    img->brokers[i] = (meta_broker){
        .id = r->BrokerId,
        .incarnation = r->IncarnationId,
        .epoch = r->BrokerEpoch,
        .nendpoints = nendpoints,
        .endpoints = endpoints,
        .rack = kstr_is_null(r->Rack) ? NULL : xstrndup(r->Rack.ptr, (size_t)r->Rack.len),
        .fenced = r->Fenced,
        .in_controlled_shutdown = r->InControlledShutdown,
    };
    if (r->BrokerEpoch >= img->next_broker_epoch)
        img->next_broker_epoch = r->BrokerEpoch + 1;
}

/* The broker id registered at epoch, or NULL (a stale record). */
static meta_broker *at_epoch(meta_image *img, int32_t id, int64_t epoch)
{
    bool found;
    int32_t i = broker_index(img, id, &found);
    return found && img->brokers[i].epoch == epoch ? &img->brokers[i] : NULL;
}

static void apply_unregister(meta_image *img, const UnregisterBrokerRecord *r)
{
    bool found;
    int32_t i = broker_index(img, r->BrokerId, &found);
    if (!found || img->brokers[i].epoch != r->BrokerEpoch)
        return;
    broker_free(&img->brokers[i]);
    memmove(&img->brokers[i], &img->brokers[i + 1],
            (size_t)(img->nbrokers - i - 1) * sizeof *img->brokers);
    img->nbrokers--;
}

static void apply_change(meta_image *img, const BrokerRegistrationChangeRecord *r)
{
    meta_broker *b = at_epoch(img, r->BrokerId, r->BrokerEpoch);
    if (!b)
        return;
    if (r->Fenced != 0)
        b->fenced = r->Fenced > 0;
    if (r->InControlledShutdown == 1)
        b->in_controlled_shutdown = true;
}

void meta_brokers_apply(meta_image *img, int16_t type, const void *rec)
{
    meta_broker *b;
    switch (type) {
    case META_REC_REGISTER_BROKER:
        apply_register(img, rec);
        break;
    case META_REC_UNREGISTER_BROKER:
        apply_unregister(img, rec);
        break;
    case META_REC_FENCE_BROKER:
        if ((b = at_epoch(img, ((const FenceBrokerRecord *)rec)->Id,
                          ((const FenceBrokerRecord *)rec)->Epoch)))
            b->fenced = true;
        break;
    case META_REC_UNFENCE_BROKER:
        if ((b = at_epoch(img, ((const UnfenceBrokerRecord *)rec)->Id,
                          ((const UnfenceBrokerRecord *)rec)->Epoch)))
            b->fenced = false;
        break;
    case META_REC_BROKER_REGISTRATION_CHANGE:
        apply_change(img, rec);
        break;
    default:
        CK_PANIC("not a broker record type=%d", type);
    }
}

/* ---- the controller's memory ---------------------------------------------- */

void meta_write(const meta_writer *w, int16_t type, const proto_struct_desc *d, const void *rec)
{
    w->emit(w->ctx, type, d, rec);
}

/* The entry of id, added (with last heartbeat now and register offset
 * offset) when absent. */
/* Forget brokers no longer registered (unregistered ones). */
static void liveness_prune(meta_liveness *lv, const meta_image *img)
{
    int32_t n = 0;
    for (int32_t i = 0; i < lv->n; i++)
        if (meta_image_broker(img, lv->v[i].id))
            lv->v[n++] = lv->v[i];
    lv->n = n;
}

static meta_liveness_entry *liveness_get(meta_liveness *lv, const meta_image *img, int32_t id,
                                         int64_t now_ms, int64_t offset)
{
    if (lv->n == META_BROKERS_MAX)
        liveness_prune(lv, img);
    int32_t i = 0;
    while (i < lv->n && lv->v[i].id < id)
        i++;
    if (i < lv->n && lv->v[i].id == id)
        return &lv->v[i];
    CK_ASSERT(lv->n < META_BROKERS_MAX); /* at most that many are registered */
    memmove(&lv->v[i + 1], &lv->v[i], (size_t)(lv->n - i) * sizeof *lv->v);
    lv->n++;
    int64_t heard = lv->has_suspect && id == lv->suspect ? MIN(now_ms, lv->suspect_heard_ms) : now_ms;
    lv->v[i] = (meta_liveness_entry){.id = id, .last_heartbeat_ms = heard, .register_offset = offset};
    return &lv->v[i];
}

/* ---- leadership ----------------------------------------------------------- */

static bool live(const meta_image *img, int32_t id)
{
    const meta_broker *b = meta_image_broker(img, id);
    return b && !b->fenced;
}

/* The first replica, in replica order, in the ISR and unfenced, or -1. */
static int32_t elect(const meta_image *img, const meta_partition *p, const int32_t *isr,
                     int32_t nisr)
{
    for (int32_t i = 0; i < p->nreplicas; i++)
        if (meta_ids_has(isr, nisr, p->replicas[i]) && live(img, p->replicas[i]))
            return p->replicas[i];
    return -1;
}

/* Take id out of partition (t, index)'s ISR and leadership, if it is in. */
static void step_down(const meta_writer *w, int32_t t, int32_t index, int32_t id)
{
    const meta_topic *topic = w->img->topics[t];
    const meta_partition *p = &topic->partitions[index];
    if (!meta_ids_has(p->isr, p->nisr, id))
        return;
    int32_t *isr = xmalloc((size_t)p->nisr * sizeof *isr), nisr = 0;
    for (int32_t i = 0; i < p->nisr; i++)
        if (p->isr[i] != id)
            isr[nisr++] = p->isr[i];
    if (nisr == 0) /* the last member stays: the ISR is never emptied */
        isr[nisr++] = id;
    bool isr_changed = nisr != p->nisr;
    int32_t leader = p->leader == id ? elect(w->img, p, isr, nisr) : p->leader;
    if (p->leader == id && leader < 0 && meta_unclean_enabled(w, topic) &&
        (leader = meta_first_live_replica(w->img, p)) >= 0) {
        isr[0] = leader; /* unclean (election.c): the ISR becomes just the new leader */
        nisr = 1;
        isr_changed = true;
    }
    PartitionChangeRecord pc;
    proto_set_defaults(&PartitionChangeRecord_desc, 0, &pc);
    pc.TopicId = topic->id;
    pc.PartitionId = index;
    if (isr_changed)
        pc.Isr = (kint32_array_t){nisr, isr};
    if (leader != p->leader)
        pc.Leader = leader;
    if (pc.Isr.count >= 0 || pc.Leader != -2)
        meta_write(w, META_REC_PARTITION_CHANGE, &PartitionChangeRecord_desc, &pc);
    free(isr);
}

/* Invariant 4: id leads nothing and is in an ISR only as its last member. */
static void check_stepped_down(const meta_image *img, int32_t id)
{
    for (int32_t t = 0; t < img->ntopics; t++) {
        for (int32_t i = 0; i < img->topics[t]->npartitions; i++) {
            const meta_partition *p = &img->topics[t]->partitions[i];
            CK_ASSERT(p->leader != id);
            CK_ASSERT(!meta_ids_has(p->isr, p->nisr, id) || p->nisr == 1);
        }
    }
}

/* Take a fenced broker out of every ISR and leadership. */
static void move_leadership(const meta_writer *w, int32_t id)
{
    CK_ASSERT(!live(w->img, id));
    /* Records may replace a topic of the image: look it up anew each time. */
    for (int32_t t = 0; t < w->img->ntopics; t++)
        for (int32_t i = 0; i < w->img->topics[t]->npartitions; i++)
            step_down(w, t, i, id);
    if (META_CHECKS)
        check_stepped_down(w->img, id);
}

void meta_broker_fence(const meta_writer *w, int32_t id, int64_t epoch)
{
    FenceBrokerRecord fr = {.Id = id, .Epoch = epoch};
    meta_write(w, META_REC_FENCE_BROKER, &FenceBrokerRecord_desc, &fr);
    move_leadership(w, id);
}

/* Partitions without a leader whose ISR holds id (it was fenced while
 * their last member) get id back as leader once it is unfenced. */
static void elect_offline(const meta_writer *w, int32_t id)
{
    CK_ASSERT(live(w->img, id));
    for (int32_t t = 0; t < w->img->ntopics; t++) {
        for (int32_t i = 0; i < w->img->topics[t]->npartitions; i++) {
            const meta_topic *topic = w->img->topics[t];
            const meta_partition *p = &topic->partitions[i];
            bool clean = meta_ids_has(p->isr, p->nisr, id);
            if (p->leader != -1 || !meta_ids_has(p->replicas, p->nreplicas, id) ||
                (!clean && !meta_unclean_enabled(w, topic)))
                continue;
            PartitionChangeRecord pc;
            proto_set_defaults(&PartitionChangeRecord_desc, 0, &pc);
            pc.TopicId = topic->id;
            pc.PartitionId = i;
            pc.Leader = id;
            if (!clean) /* unclean (election.c): the ISR becomes just it */
                pc.Isr = (kint32_array_t){1, &id};
            meta_write(w, META_REC_PARTITION_CHANGE, &PartitionChangeRecord_desc, &pc);
        }
    }
}

/* ---- registration and heartbeats ------------------------------------------ */

static void write_registration(const meta_writer *w, const meta_registration *reg, int64_t epoch)
{
    RegisterBrokerRecord rr;
    proto_set_defaults(&RegisterBrokerRecord_desc, 0, &rr);
    RegisterBrokerRecord_BrokerEndpoint eps[META_ENDPOINTS_MAX];
    rr.BrokerId = reg->id;
    rr.IncarnationId = reg->incarnation;
    rr.BrokerEpoch = epoch;
    rr.EndPoints = meta_endpoints_to_record(reg->endpoints, reg->nendpoints, eps);
    rr.Features = (RegisterBrokerRecord_BrokerFeature_array){0, NULL};
    rr.Rack = kstr_from(reg->rack);
    rr.Fenced = true;
    meta_write(w, META_REC_REGISTER_BROKER, &RegisterBrokerRecord_desc, &rr);
}

/* The same incarnation with the same listeners and rack: a retry. */
static bool same_registration(const meta_broker *old, const meta_registration *reg)
{
    bool same_rack = old->rack && reg->rack ? strcmp(old->rack, reg->rack) == 0 : !old->rack && !reg->rack;
    return memcmp(old->incarnation.b, reg->incarnation.b, 16) == 0 && same_rack &&
           meta_endpoints_equal(old->endpoints, old->nendpoints, reg->endpoints, reg->nendpoints);
}

int16_t meta_broker_register(const meta_writer *w, meta_liveness *lv, const meta_registration *reg,
                             int64_t offset, int64_t now_ms, int64_t *epoch_out, const char **msg)
{
    *epoch_out = -1;
    if (reg->id < 0)
        return *msg = "broker id must not be negative", KERR_INVALID_REQUEST;
    int16_t err = meta_endpoints_check(reg->endpoints, reg->nendpoints, msg);
    if (err != KERR_NONE)
        return err;
    const meta_broker *old = meta_image_broker(w->img, reg->id);
    if (!old && w->img->nbrokers >= META_BROKERS_MAX)
        return *msg = "too many brokers registered", KERR_INVALID_REQUEST;
    meta_liveness_entry *e = liveness_get(lv, w->img, reg->id, now_ms, offset);
    e->last_heartbeat_ms = now_ms;
    if (old && same_registration(old, reg)) {
        *epoch_out = old->epoch; /* a retry of the same registration */
        return KERR_NONE;
    }
    int64_t epoch = w->img->next_broker_epoch;
    e->register_offset = offset;
    write_registration(w, reg, epoch);
    if (old) /* the new incarnation is fenced: what the old one led moves on */
        move_leadership(w, reg->id);
    *epoch_out = epoch;
    return KERR_NONE;
}

int16_t meta_broker_heartbeat(const meta_writer *w, meta_liveness *lv, const meta_heartbeat *hb,
                              int64_t now_ms, meta_heartbeat_reply *out, const char **msg)
{
    *out = (meta_heartbeat_reply){0};
    const meta_broker *b = meta_image_broker(w->img, hb->id);
    if (!b)
        return *msg = "broker id not registered", KERR_BROKER_ID_NOT_REGISTERED;
    if (b->epoch != hb->epoch)
        return *msg = "stale broker epoch", KERR_STALE_BROKER_EPOCH;
    /* Unknown after a controller change: caught up once it reaches our log end. */
    meta_liveness_entry *e = liveness_get(lv, w->img, hb->id, now_ms, w->img->offset);
    e->last_heartbeat_ms = now_ms;
    out->caught_up = hb->metadata_offset >= e->register_offset;
    bool fenced = b->fenced;
    int64_t epoch = b->epoch;
    if ((hb->wants_shutdown || hb->wants_fence) && !fenced)
        meta_broker_fence(w, hb->id, epoch);
    else if (!hb->wants_shutdown && !hb->wants_fence && fenced && out->caught_up) {
        UnfenceBrokerRecord ur = {.Id = hb->id, .Epoch = epoch};
        meta_write(w, META_REC_UNFENCE_BROKER, &UnfenceBrokerRecord_desc, &ur);
        elect_offline(w, hb->id);
    }
    out->fenced = meta_image_broker(w->img, hb->id)->fenced;
    out->should_shut_down = hb->wants_shutdown;
    return KERR_NONE;
}

void meta_broker_alive(meta_liveness *lv, const meta_image *img, int32_t id, int64_t now_ms)
{
    if (meta_image_broker(img, id))
        liveness_get(lv, img, id, now_ms, img->offset)->last_heartbeat_ms = now_ms;
}

int32_t meta_brokers_tick(const meta_writer *w, meta_liveness *lv, int64_t now_ms,
                          int64_t session_timeout_ms)
{
    int32_t fenced = 0;
    for (int32_t i = 0; i < w->img->nbrokers; i++) {
        const meta_broker *b = &w->img->brokers[i];
        if (b->fenced)
            continue;
        int32_t id = b->id;
        int64_t epoch = b->epoch;
        const meta_liveness_entry *e = liveness_get(lv, w->img, id, now_ms, w->img->offset);
        if (now_ms - e->last_heartbeat_ms <= session_timeout_ms)
            continue;
        meta_broker_fence(w, id, epoch);
        fenced++;
    }
    return fenced;
}
