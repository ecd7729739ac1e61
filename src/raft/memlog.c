/*
 * log.c - the core's in-memory copy of the unsnapshotted log, with its
 * leader-epoch cache.
 *
 * Entries live in one array: ents[head + i] holds offset start + i, so a
 * range of offsets is a contiguous slice that can be handed out as-is.
 * Every entry owns a copy of its bytes. The epoch cache lists, for each
 * epoch present in the log, the offset of its first entry (clamped to the
 * log start after a snapshot); (start_epoch, start) describes the entry just
 * below the log, which lives in the snapshot.
 *
 * Divergence (KIP-595): a fetch (offset, epoch) is consistent when the
 * entry at offset-1 has that epoch. Otherwise the leader answers with the
 * largest epoch <= the fetched one that it has and where that epoch ends in
 * its log; the follower truncates to the smaller of that and its own end of
 * the same epoch, and fetches again. Each round moves to a strictly smaller
 * epoch or a point the two logs share, so it converges.
 */
#include "raft/internal.h"

#include "base/util.h"

#include <stdlib.h>
#include <string.h>

void raft_log_init(raft_log_t *l, raft_snapshot_id_t snap)
{
    memset(l, 0, sizeof(*l));
    l->start = snap.end_offset;
    l->start_epoch = snap.end_offset > 0 ? snap.epoch : -1;
    CK_ASSERT(l->start >= 0);
}

static void free_range(raft_log_t *l, size_t from, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((void *)l->ents[from + i].data);
        l->ents[from + i].data = NULL;
    }
}

void raft_log_free(raft_log_t *l)
{
    free_range(l, l->head, l->count);
    free(l->ents);
    free(l->epochs);
    memset(l, 0, sizeof(*l));
}

int64_t raft_log_end_offset(const raft_log_t *l) { return l->start + (int64_t)l->count; }

int32_t raft_log_last_epoch(const raft_log_t *l)
{
    return l->n_epochs ? l->epochs[l->n_epochs - 1].epoch : l->start_epoch;
}

const raft_entry_t *raft_log_get(const raft_log_t *l, int64_t offset)
{
    if (offset < l->start || offset >= raft_log_end_offset(l))
        return NULL;
    return &l->ents[l->head + (size_t)(offset - l->start)];
}

const raft_entry_t *raft_log_slice(const raft_log_t *l, int64_t from, int64_t to)
{
    CK_ASSERT(from >= l->start && from <= to && to <= raft_log_end_offset(l));
    return l->ents + l->head + (size_t)(from - l->start);
}

void raft_log_append(raft_log_t *l, int32_t epoch, uint8_t kind, const void *data, uint32_t len)
{
    CK_ASSERT(epoch >= raft_log_last_epoch(l) && epoch >= 0);
    if (l->head + l->count == l->cap) {
        if (l->head > l->count) { /* mostly dead space in front: compact */
            memmove(l->ents, l->ents + l->head, l->count * sizeof(*l->ents));
            l->head = 0;
        } else {
            l->cap = l->cap ? l->cap * 2 : 64;
            l->ents = xrealloc(l->ents, l->cap * sizeof(*l->ents));
        }
    }
    int64_t offset = raft_log_end_offset(l);
    uint8_t *copy = NULL;
    if (len) {
        copy = xmalloc(len);
        memcpy(copy, data, len);
    }
    l->ents[l->head + l->count++] = (raft_entry_t){
        .offset = offset, .epoch = epoch, .kind = kind, .len = len, .data = copy};
    if (l->n_epochs == 0 || l->epochs[l->n_epochs - 1].epoch != epoch) {
        VEC_PUSH(l->epochs, l->n_epochs, l->cap_epochs);
        l->epochs[l->n_epochs++] = (epoch_start_t){.epoch = epoch, .start = offset};
    }
}

void raft_log_truncate(raft_log_t *l, int64_t offset)
{
    CK_ASSERT(offset >= l->start);
    int64_t end = raft_log_end_offset(l);
    if (offset >= end)
        return;
    size_t keep = (size_t)(offset - l->start);
    free_range(l, l->head + keep, l->count - keep);
    l->count = keep;
    while (l->n_epochs && l->epochs[l->n_epochs - 1].start >= offset)
        l->n_epochs--;
}

void raft_log_drop_prefix(raft_log_t *l, int64_t offset)
{
    CK_ASSERT(offset >= l->start && offset <= raft_log_end_offset(l));
    if (offset == l->start)
        return;
    int32_t below = raft_log_get(l, offset - 1)->epoch;
    size_t n = (size_t)(offset - l->start);
    free_range(l, l->head, n);
    l->head += n;
    l->count -= n;
    l->start = offset;
    l->start_epoch = below;
    size_t drop = 0; /* epochs whose whole range lies below the new start */
    while (drop + 1 < l->n_epochs && l->epochs[drop + 1].start <= offset)
        drop++;
    if (drop < l->n_epochs && l->count == 0 && l->epochs[drop].start < offset)
        drop++; /* empty log: the last epoch now lives in the snapshot */
    memmove(l->epochs, l->epochs + drop, (l->n_epochs - drop) * sizeof(*l->epochs));
    l->n_epochs -= drop;
    if (l->n_epochs && l->epochs[0].start < offset)
        l->epochs[0].start = offset;
    if (l->count == 0)
        l->head = 0;
}

void raft_log_reset(raft_log_t *l, raft_snapshot_id_t snap)
{
    free_range(l, l->head, l->count);
    l->head = l->count = 0;
    l->n_epochs = 0;
    l->start = snap.end_offset;
    l->start_epoch = snap.end_offset > 0 ? snap.epoch : -1;
}

bool raft_log_end_for_epoch(const raft_log_t *l, int32_t epoch, raft_epoch_end_t *out)
{
    /* binary search: the last cached epoch <= epoch */
    size_t lo = 0, hi = l->n_epochs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->epochs[mid].epoch <= epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        size_t i = lo - 1;
        out->epoch = l->epochs[i].epoch;
        out->end_offset = i + 1 < l->n_epochs ? l->epochs[i + 1].start : raft_log_end_offset(l);
        return true;
    }
    if (epoch >= l->start_epoch) {
        out->epoch = l->start_epoch;
        out->end_offset = l->start;
        return true;
    }
    return false;
}

fetch_check_t raft_log_validate(const raft_log_t *l, int64_t offset, int32_t epoch,
                                raft_epoch_end_t *diverging)
{
    if (offset < l->start)
        return FETCH_SNAPSHOT;
    bool match;
    if (offset == l->start)
        match = epoch == l->start_epoch;
    else if (offset <= raft_log_end_offset(l))
        match = raft_log_get(l, offset - 1)->epoch == epoch;
    else
        match = false;
    if (match)
        return FETCH_VALID;
    if (!raft_log_end_for_epoch(l, epoch, diverging))
        return FETCH_SNAPSHOT;
    return FETCH_DIVERGING;
}

int64_t raft_log_truncation_point(const raft_log_t *l, raft_epoch_end_t d)
{
    raft_epoch_end_t mine;
    if (!raft_log_end_for_epoch(l, d.epoch, &mine))
        return l->start; /* older than our snapshot: keep only the snapshot */
    if (mine.epoch == d.epoch)
        return MIN(mine.end_offset, d.end_offset);
    return mine.end_offset;
}
