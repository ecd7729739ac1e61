/*
 * records.c - the records of __transaction_state, exactly Kafka's format
 * (tcoord.h).
 *
 * Placement. A transactional id lives in partition abs(hashCode(id)) mod N,
 * the mapping __consumer_offsets uses for groups (group_rec_partition).
 *
 * Records. One record per state change, in an uncompressed v2 batch with
 * no producer id. Key and value are each framed as int16 version
 * (big-endian), then the body of that version of the schema:
 *
 *   key:   TransactionLogKey v0     transactional_id (string)
 *   value: TransactionLogValue v0   producer_id int64, producer_epoch int16,
 *                                   transaction_timeout_ms int32,
 *                                   transaction_status int8 (tcoord_state),
 *                                   transaction_partitions [topic, [int32]]
 *                                   (nullable), last_update_ts int64,
 *                                   start_ts int64
 *          v1                       the same, flexible (tagged fields)
 *
 * A null value is a tombstone: the id expired. The last record of a key
 * is its state; compaction keeps only that one. This coordinator writes
 * value v0 (readable by every Kafka version) and reads v0 and v1 (a newer
 * version is read as v1: later versions only add tagged fields).
 */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/util.h"
#include "proto/proto.h"
#include "tcoord/tcoord.h"

#define KEY_VERSION 0
#define VALUE_VERSION 0

void tcoord_rec_key(buf_t *out, const char *txn_id)
{
    TransactionLogKey k = {.TransactionalId = kstr_from(txn_id)};
    proto_versioned_encode(&TransactionLogKey_desc, KEY_VERSION, &k, out);
}

/* Groups m's sorted partitions by topic into v's array (freed by the caller). */
static TransactionLogValue_PartitionsSchema *by_topic(const tcoord_meta *m, int32_t *ntopics, int32_t **idsp)
{
    TransactionLogValue_PartitionsSchema *ts = xcalloc((size_t)MAX(m->nparts, 1), sizeof *ts);
    int32_t *ids = *idsp = xmalloc((size_t)MAX(m->nparts, 1) * sizeof *ids);
    int32_t n = 0;
    for (int32_t i = 0; i < m->nparts; i++) {
        if (n == 0 || strcmp(ts[n - 1].Topic.ptr, m->parts[i].topic) != 0) {
            ts[n].Topic = kstr_from(m->parts[i].topic);
            ts[n].PartitionIds.items = &ids[i];
            n++;
        }
        ids[i] = m->parts[i].partition;
        ts[n - 1].PartitionIds.count++;
    }
    *ntopics = n;
    return ts;
}

void tcoord_rec_value(buf_t *out, const tcoord_meta *m)
{
    TransactionLogValue v;
    proto_set_defaults(&TransactionLogValue_desc, VALUE_VERSION, &v);
    v.ProducerId = m->producer_id;
    v.ProducerEpoch = m->epoch;
    v.TransactionTimeoutMs = m->timeout_ms;
    v.TransactionStatus = (int8_t)m->state;
    v.TransactionLastUpdateTimestampMs = m->update_ms;
    v.TransactionStartTimestampMs = m->start_ms;
    int32_t n, *ids;
    TransactionLogValue_PartitionsSchema *ts = by_topic(m, &n, &ids);
    v.TransactionPartitions = (TransactionLogValue_PartitionsSchema_array){n, ts};
    proto_versioned_encode(&TransactionLogValue_desc, VALUE_VERSION, &v, out);
    free(ids);
    free(ts);
}

/* ---- decoding ----------------------------------------------------------------------- */

static int decode_value(const TransactionLogValue *v, tcoord_meta *m)
{
    if ((uint8_t)v->TransactionStatus >= TCOORD_STATE_COUNT)
        return -1;
    *m = (tcoord_meta){v->ProducerId, v->ProducerEpoch, v->TransactionTimeoutMs,
                       (tcoord_state)v->TransactionStatus, 0, NULL, v->TransactionLastUpdateTimestampMs,
                       v->TransactionStartTimestampMs, -1};
    int32_t nt = MAX(v->TransactionPartitions.count, 0);
    for (int32_t i = 0; i < nt; i++) {
        const TransactionLogValue_PartitionsSchema *t = &v->TransactionPartitions.items[i];
        if (t->Topic.len < 0)
            return -1;
        char *topic = xstrndup(t->Topic.ptr ? t->Topic.ptr : "", (size_t)t->Topic.len);
        for (int32_t j = 0; j < t->PartitionIds.count; j++) {
            if (!tcoord_meta_has(m, topic, t->PartitionIds.items[j])) {
                m->parts = xrealloc(m->parts, (size_t)(m->nparts + 1) * sizeof *m->parts);
                m->parts[m->nparts++] = (tcoord_tp){xstrdup(topic), t->PartitionIds.items[j]};
            }
        }
        free(topic);
    }
    return 0;
}

static int tp_cmp(const void *a, const void *b)
{
    const tcoord_tp *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

int tcoord_rec_decode(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len, char **id,
                      tcoord_meta *m, bool *tombstone)
{
    arena_t a;
    arena_init(&a);
    TransactionLogKey k;
    TransactionLogValue v;
    int rc = -1;
    *id = NULL;
    *m = (tcoord_meta){.parts = NULL};
    *tombstone = value == NULL || value_len < 0;
    if (proto_versioned_decode(&TransactionLogKey_desc, key, key_len, &a, &k) != 0 || k.TransactionalId.len < 0)
        goto out;
    if (!*tombstone &&
        (proto_versioned_decode(&TransactionLogValue_desc, value, value_len, &a, &v) != 0 || decode_value(&v, m) != 0))
        goto out;
    if (m->nparts > 1)
        qsort(m->parts, (size_t)m->nparts, sizeof *m->parts, tp_cmp);
    *id = xstrndup(k.TransactionalId.ptr ? k.TransactionalId.ptr : "", (size_t)k.TransactionalId.len);
    rc = 0;
out:
    if (rc != 0)
        tcoord_meta_free(m);
    arena_free(&a);
    return rc;
}
