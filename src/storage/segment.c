/*
 * segment.c - one segment of a partition log: the .log file of record
 * batches and its two sparse indexes.
 *
 * FORMAT
 * ======
 * A partition lives in DATA_DIR/<topic>-<partition>/ (Kafka's layout):
 *
 *   00000000000000000000.log        batches back to back, exactly as on the
 *                                   wire (batch.h has the 61-byte header),
 *                                   with baseOffset and partitionLeaderEpoch
 *                                   set by the leader. Named by the base
 *                                   offset of the segment, 20 digits.
 *   00000000000000000000.index      sparse offset index, 8-byte entries:
 *                                     0  4  relative offset (u32 BE): last
 *                                           offset of the batch at pos - base
 *                                     4  4  position (u32 BE) of that batch
 *   00000000000000000000.timeindex  sparse time index, 12-byte entries:
 *                                     0  8  max timestamp so far (i64 BE)
 *                                     8  4  relative offset (u32 BE) of the
 *                                           batch (its last offset) holding it
 *   00000000000000000000.txnindex   aborted transactions whose ABORT marker
 *                                   the segment holds, 34-byte entries
 *                                   (format and recovery: txnindex.c)
 *   leader-epoch-checkpoint         Kafka text: "0\n<n>\n" + n lines
 *                                   "<epoch> <start offset>\n"
 *   partition.metadata              Kafka text: "version: 0\ntopic_id: <id>\n"
 *                                   (id: 16 bytes, base64url, no padding)
 *   chronik.checkpoint              ours, versioned text:
 *                                   "chronik-checkpoint 1\nlog_start_offset N\n
 *                                    recovery_point N\n"
 *
 * An index entry is added for a batch when more than index_interval_bytes
 * were appended since the previous entry (never for the first batch), as
 * Kafka does; a time-index entry goes with it when the segment's max
 * timestamp grew, and one final time-index entry is added when the segment
 * is sealed. The active segment's indexes live in memory only; the files are
 * written whole when the segment is sealed (roll) and at clean close, which
 * keeps appends to exactly one write() each. Positions are u32, so a
 * segment is at most 2 GiB - 1 bytes and spans at most 2^31 offsets.
 *
 * A BATCH IN A .log IS VALID when: magic is 2; batchLength >= 49 and the
 * batch fits in the file; the CRC-32C over [21, end) matches; 0 <=
 * recordsCount <= lastOffsetDelta + 1 (compaction may leave gaps); its
 * baseOffset is >= the end of the previous batch (and >= the segment's
 * base); its last offset - segment base fits in 31 bits.
 *
 * PREALLOCATED TAIL
 * =================
 * Appending to a file changes its size, so each fdatasync of an append
 * also commits the inode through the file system's journal: two or three
 * device writes and cache flushes where the data needs one. While the
 * appends are small (each under PLOG_PREALLOCATE_SMALL_APPEND, the regime
 * where every acknowledgement pays for its own sync), the active .log is
 * therefore kept up to preallocate_bytes ahead of its end in written zeros
 * (written with plain writes, not fallocate: unwritten extents would be
 * converted, and journaled, at the first write into them). An append then
 * overwrites allocated blocks, and its fdatasync commits no metadata; the
 * zeros themselves are made durable by the round after they are written.
 * Larger appends just extend the file. The tail never reaches beyond what
 * the segment may hold, and it is cut (ftruncate, then fsync by the next
 * round, before the recovery point may pass the segment) when the segment
 * is sealed and at clean close, so sealed segments and cleanly closed logs
 * have exactly Kafka's layout. Readers never look past the log end. At
 * recovery a walk that stops at a batch header of zeros followed by zeros
 * to the end of the file found such a tail, not a torn write: the tail is
 * cut and nothing is reported lost.
 *
 * PAGE CACHE WINDOW
 * =================
 * After each sync, synced pages more than cache_window_bytes behind the log
 * end are dropped from the page cache (posix_fadvise DONTNEED; seg_t.dropped
 * remembers how far), newest segment first. A partition then holds a
 * bounded set of cached pages that the kernel recycles for new writes,
 * rather than a cache that grows into memory not touched for a while,
 * which on virtual machines that hand free memory back to the host costs a
 * host fault per page. Tail readers stay in the cache; older data is read
 * from the disk.
 *
 * FSYNC ORDER
 * ===========
 *  1. An append is one write() of its batches into the active .log (page
 *     cache only).
 *  2. A flusher round for a log: fdatasync every .log that has unsynced
 *     bytes, then the .index/.timeindex of segments sealed since the last
 *     round, then the directory if a file was created; then, if it changed,
 *     leader-epoch-checkpoint (tmp, fsync, rename, fsync dir); then
 *     chronik.checkpoint if the recovery point moved. Only then does the
 *     flushed offset advance and do the waiting callbacks fire.
 *  3. The recovery point R only moves forward to the base of the active
 *     segment, once every older segment and its indexes are durable; at
 *     clean close (everything synced, active indexes written) R = log end.
 *  4. Truncation deletes whole segments newest first (a crash in between
 *     leaves a contiguous prefix), cuts the segment holding the offset,
 *     then, before returning and so before any new append, writes the
 *     lowered R (R <= new end) and the epochs and fdatasyncs the cut file,
 *     so new appends never land below a stale R.
 *
 * CREATION (plog_open with create, on a directory it makes)
 * ========
 *  1. mkdir DIR.
 *  2. Create the empty first segment 00000000000000000000.log.
 *  3. partition.metadata (plog_set_topic_id, which the broker calls right
 *     after the open) is written in place, not through a .tmp, and
 *     fdatasynced.
 *  4. One fsync of DIR makes both entries durable.
 * Nothing else is written: chronik.checkpoint and leader-epoch-checkpoint
 * are absent until there is something to say, and absent means log start
 * 0, recovery point 0 and no epochs, which are a new log's values. That is
 * two syncs in all. When step 3 does not come (the metadata log, tools),
 * the first flush syncs DIR before anything appended is acknowledged
 * (FSYNC ORDER, 2). Until step 4 the directory holds no data, so whatever
 * part of it a crash keeps is safe to complete.
 *
 * Crash states found at start-up, and what recovery does:
 *  - no DIR: the broker opens the partition with create again (1-4).
 *  - DIR without 00000000000000000000.log, or with it: a directory with no
 *    segment and no chronik.checkpoint naming a log start above 0 is
 *    recognised as a creation cut short (logged), and completed as a new
 *    log: the segment is created, and the directory is synced with the
 *    partition.metadata written next, as in 2-4.
 *  - partition.metadata missing, empty or torn (its entry reached the disk
 *    before its bytes): storage_read_topic_id reports it absent or
 *    malformed; the broker adopts the directory and plog_set_topic_id
 *    writes it again (in place, the directory holding no data).
 *  - *.tmp files (a directory created by an older version, which wrote
 *    every small file through a .tmp): deleted, as below.
 * The directory's own entry in DATA_DIR is not synced here (it never
 * was): that rests on the file system committing a directory's creation
 * with the first sync inside it, as journaling ones (ext4, xfs) do.
 *
 * RECOVERY (plog_open)
 * ====================
 *  - What an interrupted compaction left is resolved first (compact.c):
 *    *.cleaned files are deleted, a committed *.swap replaces the segments
 *    it names.
 *  - *.tmp files and index files without a .log are deleted.
 *  - A segment whose offsets all lie below R is trusted: its indexes are
 *    loaded and checked (sizes, monotonic, positions inside the file) and
 *    the batches after the last index entry are walked with CRC. When that
 *    fails the whole segment is scanned with CRC; an invalid batch in it is
 *    corruption of acknowledged data: the partition goes OFFLINE (nothing
 *    is served, other partitions are unaffected).
 *  - Every other segment (the active one after a crash) is scanned with
 *    CRC and its indexes rebuilt. At the first invalid batch (short, bad
 *    length, bad CRC, offsets going back): if it lies below R the partition
 *    goes OFFLINE; otherwise it is a torn tail: the segment is cut there,
 *    every later segment deleted, and the bytes dropped are logged. An
 *    unsynced sealed segment that ends before the next one begins lost its
 *    tail at a batch boundary: everything after it is deleted too.
 *  - plog_config.verify_on_open scans every segment with CRC.
 *  - Scanned segments are fdatasynced before the log is used, so the
 *    flushed offset starts at the log end.
 *  - The epoch cache is loaded, extended with the epochs of scanned
 *    batches, and cut to [log start, log end).
 *
 * INVARIANTS (plog_check_locked asserts I1-I5)
 * ==========
 *  I1 segments are sorted and disjoint: segs[i].end <= segs[i+1].base.
 *  I2 log start <= log end == active segment's end; there is always an
 *     active segment.
 *  I3 recovery point <= flushed offset <= log end (after open).
 *  I4 synced <= size for every segment; bytes below synced are durable.
 *  I5 index entries strictly increase in offset and position, and point
 *     at batch starts inside the file.
 *  I6 only the active segment is written; a sealed one changes only by
 *     truncation, which makes it the active one, or is replaced whole by
 *     compaction (compact.c), which keeps every surviving batch's offsets.
 *  I7 in durable mode a write is acknowledged only once flushed > its last
 *     offset.
 *  I8 no batch at or after the first invalid one is ever served.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/util.h"
#include "storage/storage_int.h"

_Static_assert(sizeof(idx_entry_t) == IDX_ENTRY_BYTES, "index entry in memory");

void seg_path(char *out, size_t n, const char *dir, int64_t base, const char *ext)
{
    snprintf(out, n, "%s/%020" PRId64 "%s", dir, base, ext);
}

bool seg_parse_name(const char *name, int64_t *base, const char **ext)
{
    int64_t v = 0;
    for (int i = 0; i < SEG_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    if (name[SEG_NAME_DIGITS] != '.')
        return false;
    *base = v;
    *ext = name + SEG_NAME_DIGITS;
    return true;
}

seg_t *seg_new(sfs_t *fs, int64_t base)
{
    seg_t *s = xcalloc(1, sizeof *s);
    s->fs = fs;
    s->base = base;
    s->fd = -1;
    s->end = base;
    s->max_ts = -1;
    s->max_ts_offset = -1;
    s->roll_ref_ms = -1;
    atomic_init(&s->refs, 1);
    return s;
}

void seg_ref(seg_t *s) { atomic_fetch_add(&s->refs, 1); }

void seg_unref(seg_t *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->fd >= 0)
        s->fs->close(s->fs, s->fd);
    free(s->idx);
    free(s->tidx);
    free(s->txns);
    free(s);
}

int seg_unlink_files(sfs_t *fs, const char *dir, int64_t base)
{
    static const char *const exts[] = SEG_FILE_EXTS;
    int first_err = 0;
    for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
        char p[SEG_PATH_MAX];
        seg_path(p, sizeof p, dir, base, exts[i]);
        int r = fs->unlink(fs, p);
        if (r < 0 && r != -ENOENT && !first_err)
            first_err = r;
    }
    return first_err;
}

int seg_create(sfs_t *fs, const char *dir, int64_t base, seg_t **out)
{
    char p[SEG_PATH_MAX];
    seg_unlink_files(fs, dir, base);
    seg_path(p, sizeof p, dir, base, ".log");
    seg_t *s = seg_new(fs, base);
    int r = fs->open(fs, p, SFS_RDWR | SFS_CREATE | SFS_TRUNC, &s->fd);
    if (r < 0) {
        seg_unref(s);
        return r;
    }
    *out = s;
    return 0;
}

int seg_open_file(sfs_t *fs, const char *dir, int64_t base, seg_t **out)
{
    char p[SEG_PATH_MAX];
    seg_path(p, sizeof p, dir, base, ".log");
    seg_t *s = seg_new(fs, base);
    int r = fs->open(fs, p, SFS_RDWR, &s->fd);
    if (r == 0)
        r = fs->fsize(fs, s->fd, &s->size);
    if (r == 0 && s->size > (uint64_t)PLOG_SEGMENT_BYTES_MAX)
        r = -EFBIG;
    if (r < 0) {
        seg_unref(s);
        return r;
    }
    s->synced = s->size;
    s->alloc = s->size;
    *out = s;
    return 0;
}

#define SEG_ZERO_CHUNK (64 * 1024)
static const uint8_t zero_chunk[SEG_ZERO_CHUNK];

int seg_preallocate(seg_t *s, uint64_t upto)
{
    CK_ASSERT(upto > s->alloc && s->alloc >= s->size);
    for (uint64_t pos = s->alloc; pos < upto;) {
        size_t n = (size_t)MIN((uint64_t)SEG_ZERO_CHUNK, upto - pos);
        int r = sfs_pwrite_full(s->fs, s->fd, zero_chunk, n, pos);
        if (r < 0) {
            s->alloc = upto; /* the file may reach this far: seg_trim cuts it */
            return r;
        }
        pos += n;
        s->alloc = pos;
    }
    return 0;
}

int seg_trim(seg_t *s)
{
    if (s->alloc <= s->size)
        return 0;
    int r = s->fs->ftruncate(s->fs, s->fd, s->size);
    if (r < 0)
        return r;
    s->alloc = s->size;
    s->trim_unsynced = true;
    s->trims++;
    return 0;
}

int seg_zero_from(seg_t *s, uint64_t from)
{
    uint8_t *buf = xmalloc(SEG_ZERO_CHUNK);
    int r = 1;
    for (uint64_t pos = from; pos < s->size && r == 1;) {
        size_t n = (size_t)MIN((uint64_t)SEG_ZERO_CHUNK, s->size - pos);
        int e = sfs_pread_full(s->fs, s->fd, buf, n, pos);
        if (e < 0)
            r = e;
        else if (memcmp(buf, zero_chunk, n) != 0)
            r = 0;
        pos += n;
    }
    free(buf);
    return r;
}

void seg_idx_push(seg_t *s, uint32_t rel, uint32_t pos)
{
    if (s->idx_n == s->idx_cap) {
        s->idx_cap = s->idx_cap ? s->idx_cap * 2 : 64;
        s->idx = xrealloc(s->idx, s->idx_cap * sizeof *s->idx);
    }
    CK_ASSERT(s->idx_n == 0 || (s->idx[s->idx_n - 1].rel < rel && s->idx[s->idx_n - 1].pos < pos));
    s->idx[s->idx_n++] = (idx_entry_t){rel, pos};
}

void seg_tidx_push(seg_t *s, int64_t ts, uint32_t rel)
{
    if (s->tidx_n && s->tidx[s->tidx_n - 1].ts >= ts)
        return;
    if (s->tidx_n == s->tidx_cap) {
        s->tidx_cap = s->tidx_cap ? s->tidx_cap * 2 : 64;
        s->tidx = xrealloc(s->tidx, s->tidx_cap * sizeof *s->tidx);
    }
    s->tidx[s->tidx_n++] = (tidx_entry_t){ts, rel};
}

/* Index bookkeeping for one batch appended (or found) at pos. */
void seg_note_batch(seg_t *s, const batch_info_t *b, uint64_t pos, int32_t interval)
{
    int64_t last = batch_info_last_offset(b);
    CK_ASSERT(b->base_offset >= s->end && last - s->base <= INT32_MAX);
    if (b->max_timestamp > s->max_ts) {
        s->max_ts = b->max_timestamp;
        s->max_ts_offset = last;
    }
    if (s->bytes_since_index > (uint64_t)interval) {
        seg_idx_push(s, (uint32_t)(last - s->base), (uint32_t)pos);
        if (s->max_ts >= 0)
            seg_tidx_push(s, s->max_ts, (uint32_t)(s->max_ts_offset - s->base));
        s->bytes_since_index = 0;
    }
    s->bytes_since_index += b->size;
    s->end = last + 1;
}

/* Position of the last index entry whose offset is <= offset (0 if none). */
uint32_t seg_idx_floor(const seg_t *s, int64_t offset)
{
    if (offset < s->base)
        return 0;
    uint32_t lo = 0, hi = s->idx_n; /* first entry with rel > target */
    int64_t rel = offset - s->base;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((int64_t)s->idx[mid].rel <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : s->idx[lo - 1].pos;
}

static int write_file(sfs_t *fs, const char *path, const uint8_t *data, size_t n, bool sync)
{
    int fd, r = fs->open(fs, path, SFS_RDWR | SFS_CREATE | SFS_TRUNC, &fd);
    if (r < 0)
        return r;
    if (n)
        r = sfs_pwrite_full(fs, fd, data, n, 0);
    if (r == 0 && sync)
        r = fs->fdatasync(fs, fd);
    int rc = fs->close(fs, fd);
    return r ? r : rc;
}

/* Writes both index files whole from memory. */
int seg_write_indexes(seg_t *s, const char *dir, bool sync)
{
    return seg_write_indexes_as(s, dir, "", sync);
}

int seg_write_indexes_as(seg_t *s, const char *dir, const char *suffix, bool sync)
{
    char p[SEG_PATH_MAX], ext[64];
    size_t n = (size_t)s->idx_n * IDX_ENTRY_BYTES;
    uint8_t *buf = xmalloc(MAX(n, (size_t)s->tidx_n * TIDX_ENTRY_BYTES) + 1);
    for (uint32_t i = 0; i < s->idx_n; i++) {
        be32_store(buf + i * IDX_ENTRY_BYTES, s->idx[i].rel);
        be32_store(buf + i * IDX_ENTRY_BYTES + 4, s->idx[i].pos);
    }
    snprintf(ext, sizeof ext, ".index%s", suffix);
    seg_path(p, sizeof p, dir, s->base, ext);
    int r = write_file(s->fs, p, buf, n, sync);
    for (uint32_t i = 0; i < s->tidx_n; i++) {
        be64_store(buf + i * TIDX_ENTRY_BYTES, (uint64_t)s->tidx[i].ts);
        be32_store(buf + i * TIDX_ENTRY_BYTES + 8, s->tidx[i].rel);
    }
    snprintf(ext, sizeof ext, ".timeindex%s", suffix);
    seg_path(p, sizeof p, dir, s->base, ext);
    if (r == 0)
        r = write_file(s->fs, p, buf, (size_t)s->tidx_n * TIDX_ENTRY_BYTES, sync);
    free(buf);
    return r == 0 ? seg_write_txn_index(s, dir, suffix, sync) : r;
}

int seg_write_txn_index(seg_t *s, const char *dir, const char *suffix, bool sync)
{
    char p[SEG_PATH_MAX], ext[64];
    size_t n;
    uint8_t *buf = seg_txn_encode(s, &n);
    snprintf(ext, sizeof ext, "%s%s", SEG_TXN_INDEX_EXT, suffix);
    seg_path(p, sizeof p, dir, s->base, ext);
    int r = write_file(s->fs, p, buf, n, sync);
    free(buf);
    return r;
}

/* Reads a whole index file (<= limit bytes, a multiple of unit). */
static int read_index_file(sfs_t *fs, const char *path, size_t unit, size_t limit, char **data,
                           size_t *n)
{
    int r = sfs_read_small(fs, path, limit, data, n);
    if (r == 0 && *n % unit != 0) {
        free(*data);
        return -EINVAL;
    }
    return r;
}

static bool idx_consistent(const seg_t *s)
{
    for (uint32_t i = 0; i < s->idx_n; i++) {
        if (s->idx[i].pos >= s->size || s->idx[i].rel > INT32_MAX)
            return false;
        if (i && (s->idx[i].rel <= s->idx[i - 1].rel || s->idx[i].pos <= s->idx[i - 1].pos))
            return false;
    }
    for (uint32_t i = 0; i < s->tidx_n; i++) {
        if (s->tidx[i].rel > INT32_MAX || s->tidx[i].ts < 0)
            return false;
        if (i && (s->tidx[i].ts <= s->tidx[i - 1].ts || s->tidx[i].rel < s->tidx[i - 1].rel))
            return false;
    }
    return true;
}

/* Loads both index files; -EINVAL when missing or inconsistent. */
int seg_load_indexes(seg_t *s, const char *dir)
{
    char p[SEG_PATH_MAX];
    char *d1 = NULL, *d2 = NULL;
    size_t n1, n2, limit = (size_t)PLOG_INDEX_BYTES_DEFAULT * 64;
    seg_path(p, sizeof p, dir, s->base, ".index");
    int r = read_index_file(s->fs, p, IDX_ENTRY_BYTES, limit, &d1, &n1);
    seg_path(p, sizeof p, dir, s->base, ".timeindex");
    if (r == 0 && (r = read_index_file(s->fs, p, TIDX_ENTRY_BYTES, limit, &d2, &n2)) != 0)
        free(d1);
    if (r < 0)
        return -EINVAL;
    s->idx_n = s->tidx_n = 0;
    const uint8_t *u1 = (const uint8_t *)d1, *u2 = (const uint8_t *)d2;
    for (size_t i = 0; i < n1 / IDX_ENTRY_BYTES; i++) {
        if (s->idx_n == s->idx_cap) {
            s->idx_cap = s->idx_cap ? s->idx_cap * 2 : 64;
            s->idx = xrealloc(s->idx, s->idx_cap * sizeof *s->idx);
        }
        s->idx[s->idx_n++] = (idx_entry_t){be32_load(u1 + i * 8), be32_load(u1 + i * 8 + 4)};
    }
    for (size_t i = 0; i < n2 / TIDX_ENTRY_BYTES; i++) {
        if (s->tidx_n == s->tidx_cap) {
            s->tidx_cap = s->tidx_cap ? s->tidx_cap * 2 : 64;
            s->tidx = xrealloc(s->tidx, s->tidx_cap * sizeof *s->tidx);
        }
        s->tidx[s->tidx_n++] =
            (tidx_entry_t){(int64_t)be64_load(u2 + i * 12), be32_load(u2 + i * 12 + 8)};
    }
    free(d1);
    free(d2);
    return idx_consistent(s) ? 0 : -EINVAL;
}

int seg_read_batch_header(seg_t *s, uint64_t pos, uint64_t limit, batch_info_t *b, uint8_t *hdr)
{
    if (pos + BATCH_HEADER_BYTES > limit)
        return -EIO;
    int r = sfs_pread_full(s->fs, s->fd, hdr, BATCH_HEADER_BYTES, pos);
    if (r < 0)
        return r;
    if (batch_parse_header(hdr, (size_t)(limit - pos), b) != BATCH_OK)
        return -EIO;
    return 0;
}

/* The count and offset rules for a stored batch (CRC checked elsewhere). */
static enum batch_err stored_rules(const seg_t *s, const batch_info_t *b, int64_t expect)
{
    if (b->last_offset_delta < 0 || b->records_count < 0 ||
        b->records_count > b->last_offset_delta + 1)
        return BATCH_ERR_COUNT;
    if (b->base_offset < expect || b->base_offset < s->base ||
        b->base_offset > INT64_MAX - INT32_MAX ||
        batch_info_last_offset(b) - s->base > INT32_MAX)
        return BATCH_ERR_COUNT;
    return BATCH_OK;
}

/* CRC of the batch at pos, read in chunks. */
static int crc_at(seg_t *s, uint64_t pos, const batch_info_t *b, uint8_t *buf, bool *ok)
{
    uint32_t crc = 0;
    uint64_t p = pos + BATCH_CRC_START, end = pos + b->size;
    while (p < end) {
        size_t n = (size_t)MIN((uint64_t)SEG_WALK_CHUNK, end - p);
        int r = sfs_pread_full(s->fs, s->fd, buf, n, p);
        if (r < 0)
            return r;
        crc = crc32c(crc, buf, n);
        p += n;
    }
    *ok = crc == b->crc;
    return 0;
}

int seg_walk(seg_t *s, uint64_t from, int64_t expect_offset, bool crc, seg_batch_fn fn, void *arg,
             seg_scan_t *out)
{
    uint8_t *buf = xmalloc(SEG_WALK_CHUNK);
    uint8_t hdr[BATCH_HEADER_BYTES];
    *out = (seg_scan_t){.valid_end = from, .next_offset = expect_offset, .max_ts = -1,
                        .max_ts_offset = -1, .err = BATCH_OK};
    uint64_t pos = from;
    int r = 0;
    while (pos < s->size) {
        batch_info_t b;
        if (pos + BATCH_HEADER_BYTES > s->size) {
            out->err = BATCH_ERR_SHORT;
            break;
        }
        if ((r = sfs_pread_full(s->fs, s->fd, hdr, BATCH_HEADER_BYTES, pos)) < 0)
            break;
        out->err = batch_parse_header(hdr, (size_t)(s->size - pos), &b);
        if (out->err == BATCH_OK)
            out->err = stored_rules(s, &b, out->next_offset);
        bool ok = true;
        if (out->err == BATCH_OK && crc && (r = crc_at(s, pos, &b, buf, &ok)) < 0)
            break;
        if (out->err == BATCH_OK && !ok)
            out->err = BATCH_ERR_CRC;
        if (out->err != BATCH_OK)
            break;
        b.data = NULL;
        if (fn)
            fn(arg, &b, pos);
        if (b.max_timestamp > out->max_ts) {
            out->max_ts = b.max_timestamp;
            out->max_ts_offset = batch_info_last_offset(&b);
        }
        out->next_offset = batch_info_last_offset(&b) + 1;
        pos += b.size;
        out->valid_end = pos;
        out->batches++;
    }
    free(buf);
    return r;
}

typedef struct rebuild_ctx {
    seg_t *s;
    int32_t interval;
} rebuild_ctx_t;

static void rebuild_note(void *arg, const batch_info_t *b, uint64_t pos)
{
    rebuild_ctx_t *c = arg;
    seg_note_batch(c->s, b, pos, c->interval);
}

int seg_rebuild(seg_t *s, int32_t interval, seg_scan_t *out)
{
    s->idx_n = s->tidx_n = 0;
    s->bytes_since_index = 0;
    s->max_ts = s->max_ts_offset = -1;
    s->end = s->base;
    rebuild_ctx_t c = {s, interval};
    return seg_walk(s, 0, s->base, true, rebuild_note, &c, out);
}

/* ---- batch headers through a chunk buffer ------------------------------- */

void walker_init(walker_t *w, seg_t *s, uint64_t limit)
{
    *w = (walker_t){.s = s, .limit = limit, .buf = xmalloc(SEG_WALK_CHUNK)};
}

void walker_free(walker_t *w) { free(w->buf); }

/* 0 with *b filled, 1 at the end of the visible bytes, -errno on error. */
int walker_header(walker_t *w, uint64_t pos, batch_info_t *b)
{
    if (pos >= w->limit)
        return 1;
    if (pos + BATCH_HEADER_BYTES > w->limit)
        return -EIO;
    if (!(pos >= w->buf_pos && pos + BATCH_HEADER_BYTES <= w->buf_pos + w->buf_len)) {
        size_t n = (size_t)MIN((uint64_t)SEG_WALK_CHUNK, w->limit - pos);
        int r = sfs_pread_full(w->s->fs, w->s->fd, w->buf, n, pos);
        if (r < 0)
            return r;
        w->buf_pos = pos;
        w->buf_len = n;
    }
    if (batch_parse_header(w->buf + (pos - w->buf_pos), (size_t)(w->limit - pos), b) != BATCH_OK)
        return -EIO;
    return 0;
}

/* First batch at or after from whose last offset is >= offset. */
int walker_find(walker_t *w, uint64_t from, int64_t offset, uint64_t *pos, batch_info_t *b)
{
    for (uint64_t p = from;; p += b->size) {
        int r = walker_header(w, p, b);
        if (r != 0)
            return r;
        if (batch_info_last_offset(b) >= offset) {
            *pos = p;
            return 0;
        }
    }
}

