/* state.c - one partition's producer state: the idempotence checks on a
 * client's batch and the bookkeeping after an append (txn.h).
 *
 * Invariants (state_check asserts them):
 *  S1 every producer in the map is on the recency list exactly once, and
 *     count == map entries == list length <= TXN_PRODUCERS_MAX;
 *  S2 a producer's epoch is >= 0 and it retains 0..TXN_BATCHES_RETAINED
 *     batches, oldest first, with increasing offsets;
 *  S3 a retained batch has first_offset <= last_offset.
 *  S4 ongoing[] holds exactly the producers with txn_first_offset >= 0,
 *     each at its ongoing_slot.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hmap.h"
#include "base/util.h"
#include "proto/kerr.h"
#include "txn/txn_int.h"

txn_state *txn_state_new(void)
{
    txn_state *s = xcalloc(1, sizeof *s);
    hmap_init(&s->map);
    s->last_abort_offset = -1;
    return s;
}

void txn_state_clear(txn_state *s)
{
    for (txn_producer *p = s->lru_head, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    hmap_free(&s->map);
    hmap_init(&s->map);
    s->lru_head = s->lru_tail = NULL;
    s->count = 0;
    s->nongoing = 0;
    s->last_abort_offset = -1;
}

void txn_state_free(txn_state *s)
{
    if (!s)
        return;
    txn_state_clear(s);
    hmap_free(&s->map);
    free(s->ongoing);
    free(s);
}

int32_t txn_last_sequence(int32_t base_sequence, int32_t last_offset_delta)
{
    int64_t last = (int64_t)base_sequence + last_offset_delta;
    return (int32_t)(last > INT32_MAX ? last - INT32_MAX - 1 : last);
}

/* nextSeq directly follows lastSeq (the sequence wraps to 0 after INT32_MAX). */
static bool in_sequence(int32_t last_seq, int32_t next_seq)
{
    return (int64_t)next_seq == (int64_t)last_seq + 1 || (next_seq == 0 && last_seq == INT32_MAX);
}

txn_producer *txn_state_find(const txn_state *s, int64_t producer_id)
{
    return hmap_get(&s->map, &producer_id, sizeof producer_id);
}

static void lru_unlink(txn_state *s, txn_producer *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        s->lru_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        s->lru_tail = p->prev;
    p->prev = p->next = NULL;
}

static void lru_push(txn_state *s, txn_producer *p)
{
    p->prev = s->lru_tail;
    p->next = NULL;
    if (s->lru_tail)
        s->lru_tail->next = p;
    else
        s->lru_head = p;
    s->lru_tail = p;
}

void txn_ongoing_begin(txn_state *s, txn_producer *p, int64_t first_offset)
{
    CK_ASSERT(p->ongoing_slot < 0 && first_offset >= 0);
    if (s->nongoing == s->ongoing_cap) {
        s->ongoing_cap = s->ongoing_cap ? 2 * s->ongoing_cap : 8;
        s->ongoing = xrealloc(s->ongoing, (size_t)s->ongoing_cap * sizeof *s->ongoing);
    }
    p->txn_first_offset = first_offset;
    p->ongoing_slot = s->nongoing;
    s->ongoing[s->nongoing++] = p;
}

void txn_ongoing_end(txn_state *s, txn_producer *p)
{
    CK_ASSERT(p->ongoing_slot >= 0 && p->ongoing_slot < s->nongoing && s->ongoing[p->ongoing_slot] == p);
    txn_producer *last = s->ongoing[--s->nongoing];
    s->ongoing[p->ongoing_slot] = last;
    last->ongoing_slot = p->ongoing_slot;
    p->ongoing_slot = -1;
    p->txn_first_offset = -1;
}

void txn_state_remove(txn_state *s, txn_producer *p)
{
    if (p->ongoing_slot >= 0)
        txn_ongoing_end(s, p);
    hmap_del(&s->map, &p->id, sizeof p->id);
    lru_unlink(s, p);
    s->count--;
    free(p);
}

txn_producer *txn_state_add(txn_state *s, int64_t producer_id, int16_t epoch)
{
    CK_ASSERT(producer_id >= 0 && !txn_state_find(s, producer_id));
    if (s->count >= TXN_PRODUCERS_MAX) {
        txn_producer *victim = s->lru_head; /* the least recent without an open transaction */
        while (victim && victim->ongoing_slot >= 0)
            victim = victim->next;
        txn_state_remove(s, victim ? victim : s->lru_head);
    }
    txn_producer *p = xcalloc(1, sizeof *p);
    p->id = producer_id;
    p->epoch = epoch;
    p->last_timestamp = -1;
    p->txn_first_offset = -1;
    p->coordinator_epoch = -1;
    p->ongoing_slot = -1;
    hmap_put(&s->map, &p->id, sizeof p->id, p);
    lru_push(s, p);
    s->count++;
    return p;
}

/* The retained batch i, 0 = oldest. */
static const txn_batch_meta *batch_at(const txn_producer *p, int i)
{
    CK_ASSERT(i >= 0 && i < p->nbatches);
    return &p->batches[(p->head + i) % TXN_BATCHES_RETAINED];
}

void txn_producer_push(txn_producer *p, const txn_batch_meta *m)
{
    CK_ASSERT(m->first_offset <= m->last_offset);
    if (p->nbatches == TXN_BATCHES_RETAINED) {
        p->head = (uint8_t)((p->head + 1) % TXN_BATCHES_RETAINED);
        p->nbatches--;
    }
    p->batches[(p->head + p->nbatches) % TXN_BATCHES_RETAINED] = *m;
    p->nbatches++;
}

static int32_t last_seq_of(const txn_producer *p)
{
    return p->nbatches ? batch_at(p, p->nbatches - 1)->last_seq : -1;
}

static txn_verdict reject(int16_t err, const char *msg)
{
    return (txn_verdict){.err = err, .msg = msg};
}

static const txn_batch_meta *find_duplicate(const txn_producer *p, int32_t first_seq,
                                            int32_t last_seq)
{
    for (int i = 0; i < p->nbatches; i++) {
        const txn_batch_meta *m = batch_at(p, i);
        if (m->first_seq == first_seq && m->last_seq == last_seq)
            return m;
    }
    return NULL;
}

txn_verdict txn_state_check(const txn_state *s, const batch_info_t *b)
{
    CK_ASSERT(b->producer_id >= 0 && !b->control);
    if (b->producer_epoch < 0 || b->base_sequence < 0)
        return reject(KERR_INVALID_RECORD,
                      "idempotent batch without a producer epoch or base sequence");
    const txn_producer *p = txn_state_find(s, b->producer_id);
    if (!p)
        return (txn_verdict){.err = KERR_NONE}; /* unknown here: any sequence starts it */
    if (!b->transactional && p->txn_first_offset >= 0 && b->producer_epoch == p->epoch)
        return reject(KERR_INVALID_TXN_STATE, "a non-transactional batch while the producer's transaction is open");
    int32_t first_seq = b->base_sequence;
    int32_t last_seq = txn_last_sequence(first_seq, b->last_offset_delta);
    if (b->producer_epoch == p->epoch) {
        const txn_batch_meta *dup = find_duplicate(p, first_seq, last_seq);
        if (dup)
            return (txn_verdict){.duplicate = true,
                                 .first_offset = dup->first_offset,
                                 .last_offset = dup->last_offset};
        if (!in_sequence(last_seq_of(p), first_seq))
            return reject(KERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                          "sequence does not follow the producer's last one");
        return (txn_verdict){.err = KERR_NONE};
    }
    if (b->producer_epoch < p->epoch)
        return reject(KERR_INVALID_PRODUCER_EPOCH, "producer epoch older than the last one seen");
    if (first_seq != 0)
        return reject(KERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                      "a new producer epoch must start at sequence 0");
    return (txn_verdict){.err = KERR_NONE};
}

/* The producer of b, most recent now, at b's epoch. */
static txn_producer *touch(txn_state *s, const batch_info_t *b)
{
    txn_producer *p = txn_state_find(s, b->producer_id);
    if (!p) {
        p = txn_state_add(s, b->producer_id, b->producer_epoch);
    } else {
        lru_unlink(s, p);
        lru_push(s, p);
    }
    if (p->epoch != b->producer_epoch) {
        /* an open transaction survives: its marker may come with a bumped epoch */
        p->epoch = b->producer_epoch;
        p->nbatches = 0;
        p->head = 0;
    }
    return p;
}

int64_t txn_state_first_unstable(const txn_state *s)
{
    int64_t first = INT64_MAX;
    for (int32_t i = 0; i < s->nongoing; i++)
        first = MIN(first, s->ongoing[i]->txn_first_offset);
    return first;
}

/* A marker at offset closes p's transaction; an ABORT fills *ab (Kafka's
 * AbortedTxn: the last stable offset once this one is closed). */
static bool apply_marker(txn_state *s, txn_producer *p, const batch_info_t *b, int64_t offset,
                         plog_aborted_txn_t *ab)
{
    int type = b->data ? batch_control_type(b) : -1;
    if (type != BATCH_CONTROL_ABORT && type != BATCH_CONTROL_COMMIT)
        return false; /* not a marker: unknown control types are ignored, as Kafka does */
    int32_t ce = batch_control_coordinator_epoch(b);
    p->coordinator_epoch = MAX(p->coordinator_epoch, ce);
    int64_t first = p->txn_first_offset >= 0 ? p->txn_first_offset : offset;
    if (p->ongoing_slot >= 0)
        txn_ongoing_end(s, p);
    if (type != BATCH_CONTROL_ABORT)
        return false;
    s->last_abort_offset = MAX(s->last_abort_offset, offset);
    int64_t unstable = txn_state_first_unstable(s);
    *ab = (plog_aborted_txn_t){.producer_id = p->id,
                               .first_offset = first,
                               .last_offset = offset,
                               .last_stable_offset = unstable < offset ? unstable : offset + 1};
    return true;
}

/* txn_state_apply; true with *ab set when b was an ABORT marker. */
static bool apply(txn_state *s, const batch_info_t *b, int64_t first_offset, int64_t last_offset,
                  plog_aborted_txn_t *ab)
{
    CK_ASSERT(b->producer_id >= 0 && b->producer_epoch >= 0 && first_offset <= last_offset);
    txn_producer *p = touch(s, b);
    if (b->control)
        return apply_marker(s, p, b, first_offset, ab); /* a marker carries no sequence */
    if (b->transactional && p->ongoing_slot < 0)
        txn_ongoing_begin(s, p, first_offset);
    txn_batch_meta m = {
        .first_seq = b->base_sequence,
        .last_seq = txn_last_sequence(b->base_sequence, b->last_offset_delta),
        .first_offset = first_offset,
        .last_offset = last_offset,
    };
    txn_producer_push(p, &m);
    p->last_timestamp = b->max_timestamp;
    return false;
}

void txn_state_apply(txn_state *s, const batch_info_t *b, int64_t first_offset, int64_t last_offset)
{
    plog_aborted_txn_t ab;
    apply(s, b, first_offset, last_offset, &ab);
}

int txn_state_apply_log(txn_state *s, plog_t *log, const batch_info_t *b, int64_t first_offset,
                        int64_t last_offset)
{
    plog_aborted_txn_t ab;
    if (!apply(s, b, first_offset, last_offset, &ab))
        return STORAGE_OK;
    return plog_txn_index_add(log, &ab);
}

int64_t txn_state_txn_start(const txn_state *s, int64_t producer_id)
{
    const txn_producer *p = txn_state_find(s, producer_id);
    return p ? p->txn_first_offset : -1;
}

txn_verdict txn_state_check_marker(const txn_state *s, const batch_info_t *b, int32_t coordinator_epoch)
{
    CK_ASSERT(b->control && b->producer_id >= 0);
    const txn_producer *p = txn_state_find(s, b->producer_id);
    if (!p)
        return (txn_verdict){.err = KERR_NONE};
    if (b->producer_epoch < p->epoch)
        return reject(KERR_INVALID_PRODUCER_EPOCH, "marker's producer epoch older than the partition's");
    if (coordinator_epoch < p->coordinator_epoch)
        return reject(KERR_TRANSACTION_COORDINATOR_FENCED, "marker from an older transaction coordinator");
    return (txn_verdict){.err = KERR_NONE};
}

int32_t txn_state_count(const txn_state *s)
{
    return s->count;
}

void txn_state_each(const txn_state *s, txn_producer_fn fn, void *arg)
{
    for (const txn_producer *p = s->lru_head; p; p = p->next) {
        txn_producer_info info = {
            .producer_id = p->id,
            .epoch = p->epoch,
            .last_sequence = last_seq_of(p),
            .last_timestamp = p->last_timestamp,
            .last_offset = p->nbatches ? batch_at(p, p->nbatches - 1)->last_offset : -1,
            .txn_first_offset = p->txn_first_offset,
            .coordinator_epoch = p->coordinator_epoch,
        };
        fn(arg, &info);
    }
}

int16_t txn_state_epoch(const txn_state *s, int64_t producer_id)
{
    const txn_producer *p = txn_state_find(s, producer_id);
    return p ? p->epoch : -1;
}

int32_t txn_state_expire(txn_state *s, int64_t now_ms, int64_t expiration_ms)
{
    int32_t n = 0;
    for (txn_producer *p = s->lru_head, *next; p; p = next) {
        next = p->next;
        if (p->ongoing_slot < 0 && p->last_timestamp <= now_ms - expiration_ms) { /* no overflow on odd time stamps */
            txn_state_remove(s, p);
            n++;
        }
    }
    return n;
}

bool txn_state_note_append(txn_state *s, size_t bytes)
{
    return atomic_fetch_add(&s->unsnapshotted_bytes, (int64_t)bytes) + (int64_t)bytes >=
           TXN_SNAPSHOT_INTERVAL_BYTES;
}

bool txn_state_snapshot_due(const txn_state *s)
{
    return atomic_load(&s->unsnapshotted_bytes) >= TXN_SNAPSHOT_INTERVAL_BYTES;
}

void txn_state_assert(const txn_state *s)
{
    int32_t n = 0;
    for (const txn_producer *p = s->lru_head; p; p = p->next, n++) {
        CK_ASSERT(txn_state_find(s, p->id) == p);
        CK_ASSERT(p->epoch >= 0 && p->nbatches <= TXN_BATCHES_RETAINED);
        CK_ASSERT(p->next ? p->next->prev == p : s->lru_tail == p);
        for (int i = 0; i < p->nbatches; i++) {
            CK_ASSERT(batch_at(p, i)->first_offset <= batch_at(p, i)->last_offset);
            CK_ASSERT(i == 0 || batch_at(p, i - 1)->last_offset < batch_at(p, i)->first_offset);
        }
    }
    CK_ASSERT(n == s->count && (size_t)n == s->map.count && n <= TXN_PRODUCERS_MAX);
    int32_t open = 0;
    for (const txn_producer *p = s->lru_head; p; p = p->next)
        open += p->txn_first_offset >= 0;
    CK_ASSERT(open == s->nongoing);
    for (int32_t i = 0; i < s->nongoing; i++)
        CK_ASSERT(s->ongoing[i]->ongoing_slot == i && s->ongoing[i]->txn_first_offset >= 0);
}
