/* txn_int.h - shared by the files of src/txn only. */
#ifndef CHRONIK_TXN_INT_H
#define CHRONIK_TXN_INT_H

#include "base/hmap.h"
#include "txn/txn.h"

/* One retained batch of a producer. */
typedef struct txn_batch_meta {
    int32_t first_seq;
    int32_t last_seq;
    int64_t first_offset;
    int64_t last_offset;
} txn_batch_meta;

typedef struct txn_producer {
    int64_t id;
    int16_t epoch;
    uint8_t nbatches;       /* retained, <= TXN_BATCHES_RETAINED */
    uint8_t head;           /* ring index of the oldest */
    int64_t last_timestamp; /* max timestamp of the last batch, -1 none */
    int64_t txn_first_offset;  /* first offset of its ongoing transaction, -1 none */
    int32_t coordinator_epoch; /* of its last marker, -1 none */
    int32_t ongoing_slot;      /* its index in txn_state.ongoing while a transaction is open */
    txn_batch_meta batches[TXN_BATCHES_RETAINED];
    struct txn_producer *prev, *next; /* recency list, least recent first */
} txn_producer;

struct txn_state {
    hmap map; /* producer id (8 bytes, host order) -> txn_producer* */
    txn_producer *lru_head, *lru_tail;
    int32_t count;
    _Atomic int64_t unsnapshotted_bytes;
    int64_t last_abort_offset; /* the newest ABORT marker applied, -1 none */
    txn_producer **ongoing; /* producers with an open transaction, any order */
    int32_t nongoing, ongoing_cap;
};

txn_producer *txn_state_find(const txn_state *s, int64_t producer_id);
/* A new producer with no batch (evicts the least recent one when full). */
txn_producer *txn_state_add(txn_state *s, int64_t producer_id, int16_t epoch);
void txn_state_remove(txn_state *s, txn_producer *p);
void txn_state_clear(txn_state *s);
/* Retain m as the newest batch, dropping the oldest when full. */
void txn_producer_push(txn_producer *p, const txn_batch_meta *m);
/* Opens a transaction of p at first_offset / closes p's open one. */
void txn_ongoing_begin(txn_state *s, txn_producer *p, int64_t first_offset);
void txn_ongoing_end(txn_state *s, txn_producer *p);
/* Checks invariants S1-S4 (state.c); aborts on a violation. */
void txn_state_assert(const txn_state *s);

#endif
