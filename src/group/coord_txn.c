/* coord_txn.c - placeholder for the group coordinator's side of
 * transaction markers (group.h, group_coord_txn_marker): transactional
 * offset commits do not exist yet, so a marker changes nothing; it is
 * logged. Replaced by the transaction coordinator's implementation. */
#include "base/log.h"
#include "group/group.h"

void group_coord_txn_marker(group_coord *c, int32_t partition, int64_t producer_id, int16_t producer_epoch,
                            bool commit)
{
    (void)c;
    log_debug("group", "transaction marker partition=%d producer_id=%lld producer_epoch=%d result=%s", partition,
              (long long)producer_id, producer_epoch, commit ? "commit" : "abort");
}
