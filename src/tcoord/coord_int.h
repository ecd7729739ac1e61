/*
 * coord_int.h - the transaction coordinator's state, shared by coord.c
 * (requests, the thread), log.c (__transaction_state: appends, loads) and
 * markers.c (WriteTxnMarkers). Not included outside src/tcoord.
 *
 * Locking. One mutex (c->lock) covers every id. State-machine calls and
 * log appends (partition_append: records are ordered as the states
 * changed) happen under it. Nothing that can call back into the
 * coordinator runs under it: tfx_run, after unlocking, waits for the
 * appends (whose durability callback may run at once, on this thread),
 * sends the markers and then answers the requests.
 *
 * Generations. Each partition of __transaction_state has a load
 * generation, raised whenever its ids are loaded or dropped; a completion
 * (durable append, marker answer) carries the generation it was made at
 * and is ignored when it changed meanwhile.
 */
#ifndef CHRONIK_TCOORD_COORD_INT_H
#define CHRONIK_TCOORD_COORD_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/arena.h"
#include "base/hmap.h"
#include "kclient/kclient.h"
#include "meta/itopic.h"
#include "meta/meta.h"
#include "replica/replica.h"
#include "tcoord/tcoord.h"

#define TCOORD_TICK_MS 250            /* the thread looks at leadership this often */
#define TCOORD_WRITE_TIMEOUT_MS 5000   /* a state record's acks=all wait */
#define TCOORD_MARKER_TIMEOUT_MS 3000  /* one WriteTxnMarkers request: a dead leader costs a round this long */
#define TCOORD_MARKER_RETRY_MS 200     /* between marker rounds that left partitions */
#define TCOORD_LOAD_CHUNK_BYTES (1u << 20)
#define TCOORD_PARK_MS 2000            /* an add waits this long for the previous transaction's end */

/* An AddPartitionsToTxn (or AddOffsetsToTxn) that came while the producer's
 * previous transaction was still ending (its markers, its last record): it
 * waits for that end instead of being refused CONCURRENT_TRANSACTIONS at
 * once, which not every client retries (kafkajs's sendOffsets does not). */
typedef struct tparked {
    struct tparked *next;
    char *txn_id;              /* owned, as are parts and their topics */
    int64_t pid;
    int16_t epoch;
    tcoord_tp *parts;
    int32_t n;
    tcoord_done_fn done;
    void *arg;
    int64_t until_ms;          /* then refused CONCURRENT_TRANSACTIONS after all */
} tparked;

typedef struct tclient {
    int32_t broker_id;
    kclient_t *kc;
} tclient;

struct tcoord {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    _Atomic int refs;          /* the owner's, the thread's, each append, creation and marker request */
    bool stopping;
    tcoord_config cfg;
    meta_t *meta;
    replica_mgr *replicas;
    net_t *net;                /* NULL until tcoord_connect */
    const kclient_security *peer_security; /* marker clients' TLS and login */
    hmap txns;                 /* transactional id -> tcoord_txn* */
    meta_itopic topic;         /* __transaction_state, created on first need */
    int32_t *loaded_epoch;     /* per partition: leader epoch loaded at; -1 none */
    uint32_t *gen;             /* per partition: load generation */
    int32_t nloaded;
    tclient *clients;          /* marker clients, one per broker */
    int32_t nclients;
    int64_t abort_due_ms, expire_due_ms;
    tparked *parked;           /* in arrival order; the thread tries them again on each wake */
};

/* Work for after the lock is released. */
typedef struct tanswer {
    struct tanswer *next;
    tcoord_done_fn done;
    void *arg;
    int16_t err;
    int64_t pid;
    int16_t epoch;
} tanswer;

typedef struct tjob tjob;
typedef struct tsend tsend;

typedef struct tfx {
    tjob *jobs;
    tsend *sends;
    tanswer *answers, **answers_tail;
} tfx;

void tfx_init(tfx *f);
void tfx_answer(tfx *f, tcoord_done_fn done, void *arg, int16_t err, int64_t pid, int16_t epoch);
/* Without the lock: appends' waits, marker sends, then answers. */
void tfx_run(tfx *f);

void tc_ref(tcoord *c);
void tc_unref(tcoord *c);
int32_t tc_partition_of(const tcoord *c, const char *txn_id);
tcoord_txn *tc_txn(tcoord *c, const char *id, bool create);

/* log.c. Under the lock: store next for t (t->pending until durable); then
 * answer done (err, pid, epoch of next) unless answered_err >= 0, which is
 * answered at once instead. A failed append answers at once. */
void tc_store(tcoord *c, tcoord_txn *t, tcoord_meta *next, tcoord_done_fn done, void *arg, int16_t answered_err,
              tfx *f);
/* Under the lock: the ids of txn_id's partition follow its leadership here.
 * KERR_NONE when this node leads it, else NOT_COORDINATOR. */
int16_t tc_own(tcoord *c, const char *txn_id, tfx *f);
void tc_own_all(tcoord *c, tfx *f);

/* markers.c. Under the lock: a round of WriteTxnMarkers for t's partitions
 * not yet acknowledged (t in PrepareX, not pending, none in flight). */
void tc_markers_round(tcoord *c, tcoord_txn *t, tfx *f);
void tc_markers_send(tsend *s);
void tc_clients_free(tcoord *c);

#endif
