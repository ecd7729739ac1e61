/* coord_txn.c - the end of offsets committed inside transactions (KIP-98,
 * KIP-447): TxnOffsetCommit (coord.c) writes them as a transactional batch
 * of the producer to the group's partition of __consumer_offsets and keeps
 * them pending in the group; the transaction's marker on that partition
 * (group_coord_txn_marker, from the WriteTxnMarkers handler, or a control
 * batch met while loading) commits or drops them (group.h, coord_int.h). */
#include "base/log.h"
#include "base/util.h"
#include "group/coord_int.h"

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
