/* replica_int.h - what replica.c, leader.c and fetcher.c share. */
#ifndef CHRONIK_REPLICA_REPLICA_INT_H
#define CHRONIK_REPLICA_REPLICA_INT_H

#include "base/hmap.h"
#include "replica/hwcheck_format.h"
#include "replica/replica.h"

#define REPLICA_ALTER_TIMEOUT_MS 10000

/* Sanitizer and checking builds check every partition's invariants at each
 * tick (CHRONIK_CHECKS forces it on). */
#if defined(__SANITIZE_ADDRESS__) || defined(CHRONIK_CHECKS)
#define REPLICA_CHECKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLICA_CHECKS 1
#endif
#endif
#ifndef REPLICA_CHECKS
#define REPLICA_CHECKS 0
#endif

/* replica.c */
meta_t *replica_meta(replica_mgr *m);
sfs_t *replica_fs(replica_mgr *m);
int32_t replica_node_id(replica_mgr *m);
int64_t replica_expiration_ms(replica_mgr *m);

/* leader.c */
void replica_fail_acks(partition *p, int16_t err);
void replica_raise_hw(partition *p, int64_t hw);
void replica_leader_advance(partition *p);
void replica_request_sync(partition *p, int64_t upto, partition_acked_fn done, void *arg);
/* Syncs p's log on the calling thread now (a follower's fetcher, which
 * would only wait for the flusher) and raises durable_end; KERR_NONE or
 * the storage error. */
int16_t replica_sync_now(partition *p);
void replica_wake_log_end(partition *p);
void replica_adopt_isr(partition *p, int32_t partition_epoch, const int32_t *isr, int32_t nisr);
void replica_leader_tick(partition *p, int64_t now, int64_t lag_ms);
void replica_become_leader(partition *p, int64_t now);
void replica_check(partition *p);
/* Under produce_lock (or before p is shared): (re)builds p's producer
 * state from its log, and publishes its first unstable offset. */
void replica_load_producers(partition *p);
/* Under produce_lock: applies batch b, stored at [first, last], to the
 * producer state (and the log's transaction index). */
void replica_apply_batch(partition *p, const batch_info_t *b, int64_t first, int64_t last);

/* hwcheck.c: DATA_DIR/replication-offset-checkpoint */
#define REPLICA_HW_CHECKPOINT_MS 5000 /* replica.high.watermark.checkpoint.interval.ms */
void hwcheck_read(sfs_t *fs, const char *data_dir, hmap *map);
/* Writes every partition's high watermark when one changed (or force). */
int hwcheck_write(replica_mgr *m, const char *data_dir, bool force);

/* fetcher.c */
typedef struct fetchers fetchers;
fetchers *fetchers_new(replica_mgr *m, net_t *net, meta_t *meta);
/* Partitions changed leaders: fetchers for new leaders start, all rescan. */
void fetchers_kick(fetchers *f, const meta_image *img);
void fetchers_free(fetchers *f);

#endif
