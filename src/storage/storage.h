/*
 * storage.h - the durable segmented partition log (the log is the WAL).
 *
 * Four parts, one header:
 *   sfs_*      the file-I/O interface every byte goes through: the POSIX one
 *              and a fault-injecting one for tests (fail the Nth write or
 *              sync, crash = drop what was not synced, possibly torn).
 *   plog_*     one partition's log: DATA_DIR/<topic>-<partition>/ with
 *              Kafka's segment layout (.log, .index, .timeindex),
 *              .txnindex, leader-epoch-checkpoint and partition.metadata. Open with
 *              recovery, append, read (file ranges for sendfile), roll,
 *              retention, delete-records, truncation, timestamp lookup,
 *              compaction (cleanup.policy=compact, compact.c).
 *   flusher_*  group-committed fdatasync on its own thread; callbacks fire
 *              once everything up to an offset is durable.
 *   storage_*  data-dir helpers and the offline check/dump tools.
 *
 * The on-disk format, its validity rules, fsync order and recovery are
 * described at the top of segment.c.
 *
 * Threads: a plog_t may be used from several threads. Its mutex covers
 * in-memory state and the one write() of an append; it is never held across
 * fsync (the flusher drops it while syncing). Operating errors come back as
 * enum storage_err; an I/O error during append or sync puts the log into a
 * sticky failed state that refuses further writes.
 */
#ifndef CHRONIK_STORAGE_STORAGE_H
#define CHRONIK_STORAGE_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- errors ------------------------------------------------------------ */

#define STORAGE_ERRORS(X)                                                      \
    X(OK, "ok")                                                                \
    X(IO, "I/O error")                                                         \
    X(OFFLINE, "partition offline: corrupt data in the durable part of the log") \
    X(FAILED, "log failed after an I/O error and refuses writes")             \
    X(OUT_OF_RANGE, "offset out of range")                                     \
    X(INVALID, "invalid argument or batch")                                    \
    X(NOT_FOUND, "not found")                                                  \
    X(EXISTS, "already exists")                                                \
    X(TOO_LARGE, "record batch too large for a segment")                       \
    X(FORMAT, "unsupported or unreadable persistent file")                    \
    X(CLOSED, "log closed")                                                    \
    X(DELETED, "partition deleted")                                            \
    X(NO_SPACE, "no space left on the device: writes refused until space returns") \
    X(DAMAGED, "log damaged: read-only until repaired")

enum storage_err {
#define STORAGE_ERR_ENUM_(name, msg) STORAGE_ERR_##name,
    STORAGE_ERRORS(STORAGE_ERR_ENUM_)
#undef STORAGE_ERR_ENUM_
    STORAGE_ERR__COUNT
};
#define STORAGE_OK STORAGE_ERR_OK
const char *storage_strerror(int err);

/* ---- file-I/O interface -------------------------------------------------- */

/* open flags */
#define SFS_RDONLY 0x0
#define SFS_RDWR 0x1
#define SFS_CREATE 0x2 /* create if missing */
#define SFS_EXCL 0x4   /* with CREATE: fail if it exists */
#define SFS_TRUNC 0x8

typedef int (*sfs_dirent_fn)(void *arg, const char *name, bool is_dir);

/*
 * Every call returns 0 (or a byte count) on success and -errno on failure.
 * fds are kernel file descriptors when real_fds is true (so the broker may
 * sendfile from them), opaque handles otherwise.
 */
typedef struct sfs sfs_t;
struct sfs {
    int (*open)(sfs_t *fs, const char *path, int flags, int *fd);
    int (*close)(sfs_t *fs, int fd);
    ssize_t (*pread)(sfs_t *fs, int fd, void *buf, size_t n, uint64_t off);
    ssize_t (*pwrite)(sfs_t *fs, int fd, const void *buf, size_t n, uint64_t off);
    int (*fsync)(sfs_t *fs, int fd);
    int (*fdatasync)(sfs_t *fs, int fd);
    int (*ftruncate)(sfs_t *fs, int fd, uint64_t size);
    int (*fsize)(sfs_t *fs, int fd, uint64_t *size);
    int (*rename)(sfs_t *fs, const char *from, const char *to);
    int (*unlink)(sfs_t *fs, const char *path);
    int (*mkdir)(sfs_t *fs, const char *path);  /* -EEXIST when present */
    int (*rmdir)(sfs_t *fs, const char *path);
    int (*fsync_dir)(sfs_t *fs, const char *path);
    /* Calls fn for each entry except "." and ".."; stops when fn != 0. */
    int (*readdir)(sfs_t *fs, const char *path, sfs_dirent_fn fn, void *arg);
    bool real_fds;
};

/* The process-wide POSIX implementation (stateless, thread-safe). */
sfs_t *sfs_posix(void);

/* Reads/writes the whole range, retrying short transfers. 0 or -errno
 * (-EIO for a short read at end of file). */
int sfs_pread_full(sfs_t *fs, int fd, void *buf, size_t n, uint64_t off);
int sfs_pwrite_full(sfs_t *fs, int fd, const void *buf, size_t n, uint64_t off);
/* Writes a small file atomically: tmp + fsync + rename + fsync dir. */
int sfs_write_atomic(sfs_t *fs, const char *dir, const char *name, const void *data, size_t n);
/* Writes dir/name in place (created or truncated) + fdatasync; the
 * directory is not synced. Only for a file whose torn or missing state
 * the reader handles (a partition.metadata in a log being created). */
int sfs_write_synced(sfs_t *fs, const char *dir, const char *name, const void *data, size_t n);
/* Reads a whole small file (<= max bytes) into a malloc'ed NUL-terminated
 * buffer. -ENOENT when missing, -EFBIG when larger than max. */
int sfs_read_small(sfs_t *fs, const char *path, size_t max, char **out, size_t *len);

/*
 * The fault-injecting file system: wraps real files in a directory tree
 * (so fds stay kernel fds) and tracks, per file, how many bytes a sync has
 * made durable. Thread-safe.
 *
 *   fault_fs_fail_write_at(n)   the nth pwrite from now on fails with -EIO
 *   fault_fs_fail_sync_at(n)    the nth fsync/fdatasync fails with -EIO
 *   fault_fs_crash_at(n)        after n more mutating ops (pwrite, sync,
 *                               truncate, rename, unlink, mkdir) every op
 *                               fails with -EIO, as if power was lost
 *   fault_fs_set_space(bytes)   files may grow by this many bytes more in
 *                               all (-1, the default: unlimited); a pwrite
 *                               that would grow them further is short, or
 *                               fails with -ENOSPC when nothing fits
 *   fault_fs_crash(seed)        applies the crash to the files: each file
 *                               keeps its synced length plus a random part
 *                               of its unsynced tail (torn), of which the
 *                               part past a random point may be garbage.
 *                               Directory operations are durable at once.
 *                               Afterwards the fs works normally again.
 *
 * Model simplifications: ftruncate is durable at once; a pwrite below the
 * synced length lowers the synced length to the write's offset.
 */
typedef struct fault_fs fault_fs_t;
typedef struct fault_fs_stats {
    uint64_t writes, syncs, dir_syncs, truncates, renames, unlinks, opens;
} fault_fs_stats_t;

fault_fs_t *fault_fs_new(void);
void fault_fs_free(fault_fs_t *f);   /* fds must be closed */
sfs_t *fault_fs_sfs(fault_fs_t *f);
void fault_fs_fail_write_at(fault_fs_t *f, uint64_t n); /* 0 = never */
void fault_fs_fail_sync_at(fault_fs_t *f, uint64_t n);
void fault_fs_crash_at(fault_fs_t *f, uint64_t n);
void fault_fs_set_space(fault_fs_t *f, int64_t bytes);
bool fault_fs_crashed(fault_fs_t *f);
void fault_fs_crash(fault_fs_t *f, uint64_t seed);
void fault_fs_stats(fault_fs_t *f, fault_fs_stats_t *out);
void fault_fs_reset_stats(fault_fs_t *f);

/* ---- partition log --------------------------------------------------------- */

#define PLOG_SEGMENT_BYTES_DEFAULT (1024LL * 1024 * 1024)  /* log.segment.bytes */
#define PLOG_SEGMENT_BYTES_MIN (14LL * 1024)                /* Kafka's minimum */
#define PLOG_SEGMENT_BYTES_MAX 0x7fffffffLL                 /* 4-byte positions */
#define PLOG_ROLL_MS_DEFAULT (7LL * 24 * 3600 * 1000)       /* log.roll.hours = 168 */
#define PLOG_INDEX_INTERVAL_DEFAULT 4096                    /* log.index.interval.bytes */
#define PLOG_INDEX_BYTES_DEFAULT (10 * 1024 * 1024)         /* segment.index.bytes */
#define PLOG_RETENTION_MS_DEFAULT (7LL * 24 * 3600 * 1000)  /* log.retention.hours = 168 */
#define PLOG_FLUSH_MS_DEFAULT INT64_MAX
#define PLOG_PREALLOCATE_BYTES_DEFAULT (1024 * 1024)          /* zeroed ahead of small appends */
#define PLOG_PREALLOCATE_SMALL_APPEND (64 * 1024)             /* larger appends extend the file */
#define PLOG_CACHE_WINDOW_DEFAULT (256LL * 1024 * 1024)         /* page cache kept behind the end */

typedef int64_t (*plog_clock_fn)(void *arg); /* wall clock in ms */

typedef struct plog_config {
    int64_t segment_bytes;        /* roll when the active .log would exceed it */
    int64_t roll_ms;              /* roll when the active segment is older */
    int32_t index_interval_bytes; /* bytes between .index entries */
    int64_t index_bytes;          /* roll when the .index would exceed it */
    int64_t retention_ms;         /* -1 = keep forever */
    int64_t retention_bytes;      /* -1 = no size limit */
    /* Durability. flush_messages <= 1 (the default): acknowledge a write only
     * once it is fsynced (callers wait on flusher_request). Greater than 1:
     * writes are acknowledged from the page cache and the flusher syncs when
     * that many messages are unsynced or the oldest unsynced write is
     * flush_ms old. */
    int64_t flush_messages;
    int64_t flush_ms;
    /* Small appends (< PLOG_PREALLOCATE_SMALL_APPEND) keep up to this many
     * zero bytes written ahead of the log end in the active segment, so
     * that their fdatasync overwrites allocated blocks and commits no file
     * metadata (segment.c, PREALLOCATED TAIL). 0: off. */
    int64_t preallocate_bytes;
    /* Synced data further than this many bytes behind the log end is
     * dropped from the page cache after each sync (posix_fadvise
     * DONTNEED), so that the cache recycles its pages instead of growing
     * into memory the machine has not touched recently; readers of older
     * data read the disk. -1: never drop. */
    int64_t cache_window_bytes;
    bool verify_on_open;          /* CRC-check every segment, not only the unsynced tail */
    plog_clock_fn clock;          /* NULL: clock_wall_ms */
    void *clock_arg;
} plog_config_t;

void plog_config_default(plog_config_t *c);

typedef struct plog plog_t;
typedef struct flusher flusher_t;

/*
 * Opens (creating when missing, if create is true) the log in dir and
 * recovers it. On STORAGE_ERR_OFFLINE the log is still returned (so its
 * state and error can be reported) but refuses reads and writes; the
 * reason is in plog_errmsg(). fs must outlive the log.
 */
int plog_open(const char *dir, const plog_config_t *cfg, sfs_t *fs, bool create, plog_t **out);
/* Syncs everything, writes the indexes and a recovery point at the log end
 * (so the next open scans nothing), closes. Safe on failed/offline logs. */
int plog_close(plog_t *log);

/* Replaces the configuration (AlterConfigs). */
void plog_set_config(plog_t *log, const plog_config_t *cfg);
void plog_get_config(plog_t *log, plog_config_t *out);

typedef struct plog_append_result {
    int64_t base_offset;     /* first offset of the appended batches */
    int64_t last_offset;     /* last offset of the appended batches */
    int64_t log_end_offset;  /* after the append */
    int64_t log_start_offset;
    int32_t batches;
    int64_t records;
} plog_append_result_t;

/*
 * Appends validated batches (batch_validate passed): assigns offsets from
 * the log end offset and patches baseOffset and partitionLeaderEpoch in
 * data itself, then writes the bytes with one write. Rolls first when
 * needed. The data is in the page cache only: durable once a flusher
 * request up to res->log_end_offset completes. Errors: _INVALID (headers
 * inconsistent, or leader_epoch below the latest epoch), _TOO_LARGE (more
 * than segment_bytes), _FAILED/_OFFLINE (state), _IO (the write failed;
 * the log is failed from then on).
 */
int plog_append(plog_t *log, uint8_t *data, size_t len, int32_t leader_epoch,
                plog_append_result_t *res);
/*
 * Appends batches that already carry their offsets and epochs (followers,
 * the metadata quorum): the first base offset must be >= the log end
 * offset and offsets must increase. Each batch's CRC is checked.
 */
int plog_append_replica(plog_t *log, const uint8_t *data, size_t len, plog_append_result_t *res);
/* The same, for a caller that syncs the log itself before it relies on
 * the data (flusher_sync_now): the flusher is not woken for it (left
 * alone, the data is synced by the flusher's next periodic scan). */
int plog_append_replica_nowake(plog_t *log, const uint8_t *data, size_t len, plog_append_result_t *res);

/* One contiguous range of whole batches in one segment file. */
typedef struct plog_read_result {
    int fd;                  /* segment .log fd; -1 when nothing to read */
    uint64_t position;       /* file position of the first batch */
    uint32_t length;         /* bytes of whole batches */
    int64_t first_offset;    /* base offset of the first batch returned */
    int64_t next_offset;     /* offset after the last batch returned */
    int64_t log_start_offset;
    int64_t log_end_offset;
    void *seg_ref;           /* keeps fd open; plog_read_release drops it */
    sfs_t *fs;
} plog_read_result_t;

/*
 * Finds the batch containing offset and returns whole batches from it, in
 * one segment, up to max_bytes but always at least one whole batch, and
 * only batches whose last offset is < max_offset (pass the high watermark,
 * or INT64_MAX for the log end). offset == log end (or >= max_offset)
 * gives an empty result. offset < log start or > log end:
 * STORAGE_ERR_OUT_OF_RANGE. Always call plog_read_release afterwards.
 */
int plog_read(plog_t *log, int64_t offset, int64_t max_offset, uint32_t max_bytes,
              plog_read_result_t *res);
void plog_read_release(plog_read_result_t *res);
/* Same, copying into out (appended; buf.h buf_t); every batch copied is
 * CRC-checked, and a bad one marks the log offline (STORAGE_ERR_OFFLINE). */
struct buf;
int plog_read_copy(plog_t *log, int64_t offset, int64_t max_offset, uint32_t max_bytes,
                   struct buf *out, int64_t *next_offset);

int64_t plog_log_start_offset(plog_t *log);
int64_t plog_log_end_offset(plog_t *log);
int64_t plog_flushed_offset(plog_t *log);  /* everything below is durable */
int64_t plog_size_bytes(plog_t *log);
int plog_segment_count(plog_t *log);
/* Max timestamp over the log and the offset of the batch holding it
 * (ListOffsets -3); -1, -1 when the log is empty. */
void plog_max_timestamp(plog_t *log, int64_t *ts, int64_t *offset);
/* First offset whose timestamp is >= ts (ListOffsets). For compressed
 * batches this is the first offset of the batch. *offset = -1 when none. */
int plog_offset_for_timestamp(plog_t *log, int64_t ts, int64_t *offset, int64_t *found_ts);
/* True when appends must wait for flusher_request before acknowledging. */
bool plog_ack_needs_flush(plog_t *log);
/* STORAGE_OK, STORAGE_ERR_OFFLINE, _FAILED, _DELETED or _DAMAGED. */
int plog_state(plog_t *log);
/*
 * Damage (scrub.c): a bad batch in data the log believed durable, found at
 * open, by plog_read_copy or by plog_scrub. The log keeps every byte, goes
 * read-only (STORAGE_ERR_DAMAGED), and does not serve the offsets
 * [from, to) (reads there fail with STORAGE_ERR_DAMAGED; reads before stop
 * short of them). True, with the range, when damaged. plog_open returns
 * STORAGE_ERR_DAMAGED (with the log) for damage found at open; the log
 * then ends at the first damaged offset.
 */
bool plog_damaged_range(plog_t *log, int64_t *from, int64_t *to);
typedef struct plog_scrub_stats {
    int64_t segments, batches, bytes, damaged_ranges;
} plog_scrub_stats_t;
/* Re-verifies every sealed, synced segment (CRC, offsets), on the calling
 * thread; damage marks the log as above. cancel is polled between
 * segments. STORAGE_OK or STORAGE_ERR_IO. st may be NULL. */
typedef bool (*plog_cancel_fn)(void *arg);
int plog_scrub(plog_t *log, plog_cancel_fn cancel, void *cancel_arg, plog_scrub_stats_t *st);
/* Puts the calling thread's disk I/O in the idle class (the scrubber's). */
void storage_io_priority_idle(void);
/*
 * A full disk (ENOSPC, EDQUOT) is not a failure: the append that hit it is
 * cut back to the last whole batch, and appends are refused with
 * STORAGE_ERR_NO_SPACE (without touching the disk) for a backoff that
 * doubles from PLOG_NOSPACE_BACKOFF_MIN_MS to _MAX_MS while the disk stays
 * full; the first append after it tries again, and one that succeeds ends
 * the state. What was written before stays readable and its syncs go on.
 * True while in that state.
 */
#define PLOG_NOSPACE_BACKOFF_MIN_MS 100
#define PLOG_NOSPACE_BACKOFF_MAX_MS 5000
bool plog_space_short(plog_t *log);
const char *plog_errmsg(plog_t *log);
const char *plog_dir(plog_t *log);

/* Rolls the active segment now if it is not empty. */
int plog_roll(plog_t *log);
/* Applies roll_ms to an idle log (appends check it themselves). */
int plog_maybe_roll(plog_t *log);
/*
 * Deletes whole sealed segments (never the active one) that are past
 * retention_ms (by their max timestamp) or beyond retention_bytes, and those
 * entirely below the log start offset; advances the log start offset.
 * *deleted (may be NULL) gets the number of segments removed.
 */
int plog_retention(plog_t *log, int *deleted);
/* DeleteRecords: raise the log start offset to offset (<= log end); whole
 * segments below it go at the next plog_retention. Reads see it at once;
 * it is durable after the next sync of the log (a flusher round, which a
 * flusher_request forces, or plog_close), not on return. */
int plog_delete_records(plog_t *log, int64_t offset);
/*
 * Removes everything at or after offset (replication). A batch containing
 * offset is removed whole; *new_end (may be NULL) gets the new log end
 * offset. Truncating below the log start empties the log and restarts it
 * at offset. The new end is made durable before returning.
 */
int plog_truncate(plog_t *log, int64_t offset, int64_t *new_end);
/* Empties the log and restarts it at offset (follower out of range). */
int plog_truncate_fully(plog_t *log, int64_t offset);

/* ---- compaction (compact.c) ------------------------------------------------ */

#define PLOG_COMPACT_MAP_BYTES_DEFAULT (32LL * 1024 * 1024)   /* key map per pass */
#define PLOG_COMPACT_IO_BYTES_PER_SEC_DEFAULT (100LL * 1024 * 1024)
#define PLOG_DELETE_RETENTION_MS_DEFAULT (24LL * 3600 * 1000)  /* delete.retention.ms */
#define PLOG_MIN_DIRTY_RATIO_DEFAULT 0.5                       /* min.cleanable.dirty.ratio */

typedef struct plog_compact_opts {
    int64_t max_offset;          /* clean nothing at or past it: the last stable offset */
    int64_t delete_retention_ms; /* tombstones live this long after their first cleaning */
    double min_dirty_ratio;      /* run when dirty / cleanable bytes reaches it */
    int64_t min_lag_ms;          /* min.compaction.lag.ms: younger segments wait */
    int64_t max_lag_ms;          /* max.compaction.lag.ms: an older dirty segment forces a run */
    int64_t map_bytes;           /* memory bound of the key map (more passes when full) */
    int64_t io_bytes_per_sec;    /* read + write throttle; <= 0 unthrottled */
    bool force;                  /* run whatever the dirty ratio */
    plog_cancel_fn cancel;       /* polled between batches; true abandons the pass */
    void *cancel_arg;
} plog_compact_opts_t;

typedef struct plog_compact_stats {
    bool ran;                    /* a pass ran (false: nothing due, or another pass runs) */
    bool complete;               /* the key map covered every dirty cleanable segment */
    int64_t clean_offset;        /* after the pass: below it the log is compacted */
    int groups_rewritten;        /* new segment files swapped in */
    int segments_before, segments_after;
    int64_t bytes_read, bytes_written;
    int64_t records_removed;     /* superseded records dropped */
    int64_t tombstones_removed;  /* tombstones dropped after delete_retention_ms */
} plog_compact_stats_t;

void plog_compact_opts_default(plog_compact_opts_t *o);
/*
 * One cleaning pass (cleanup.policy=compact), on the calling thread: keeps
 * the latest record per key, drops tombstones delete_retention_ms after the
 * pass that first kept them, never touches the active segment, offsets
 * past opts->max_offset, or segments that are not yet durable. Surviving
 * records keep their offsets; small adjacent segments are merged. Runs
 * only when due (dirty ratio, max lag, an expiring tombstone) unless
 * opts->force. Returns STORAGE_OK (also when nothing was due or the pass
 * was cancelled or raced with a truncation), or an error (_IO: the pass
 * failed and the log is unchanged; _FAILED/_OFFLINE: the log's state).
 * Must not run concurrently with plog_close. st may be NULL.
 */
int plog_compact(plog_t *log, const plog_compact_opts_t *opts, plog_compact_stats_t *st);
/* What a compacted topic thinks of a produce payload (concatenated batches
 * that batch_validate accepted): every record of every data batch has a
 * key (KEYS_OK), or one has none (KEYS_MISSING: INVALID_RECORD), or a
 * compressed batch's records cannot be decompressed and parsed within
 * KCODEC_MAX_OUT_DEFAULT bytes (KEYS_UNREADABLE: CORRUPT_MESSAGE). */
enum plog_keys { PLOG_KEYS_OK, PLOG_KEYS_MISSING, PLOG_KEYS_UNREADABLE };
enum plog_keys plog_compact_check_keys(const uint8_t *data, size_t len);

/* ---- aborted transactions (.txnindex, txnindex.c) ------------------------ */

/* One aborted transaction (Kafka's AbortedTxn). */
typedef struct plog_aborted_txn {
    int64_t producer_id;
    int64_t first_offset;       /* its first batch */
    int64_t last_offset;        /* its ABORT marker */
    int64_t last_stable_offset; /* once it was closed */
} plog_aborted_txn_t;

#define PLOG_TXN_ENTRY_BYTES 34

/* Records an aborted transaction in the index of the segment holding its
 * marker (the producer state calls it, txn.h). Idempotent: an entry whose
 * marker is not beyond the segment's newest is ignored, as is one outside
 * the log. */
int plog_txn_index_add(plog_t *log, const plog_aborted_txn_t *e);
/* Calls fn (under the log's lock: copy, do not call the log) for each
 * aborted transaction overlapping [from, upto): last_offset >= from and
 * first_offset < upto, in marker order. Returns how many. */
typedef void (*plog_aborted_fn)(void *arg, const plog_aborted_txn_t *e);
int plog_aborted_txns(plog_t *log, int64_t from, int64_t upto, plog_aborted_fn fn, void *arg);
/* The lowest offset from which recovery found the index missing, torn or
 * unknown (INT64_MAX: none); the producer state's replay rebuilds it and
 * then calls plog_txn_index_rebuilt, which writes the rebuilt files. */
int64_t plog_txn_index_rebuild_from(plog_t *log);
int plog_txn_index_rebuilt(plog_t *log);
/* The file format (for tools and fuzzing): one entry, and a whole file of
 * a segment [base, end). STORAGE_ERR_FORMAT for a torn or invalid file;
 * else *out (malloc'ed, free it) holds *count entries. */
void plog_txn_entry_encode(const plog_aborted_txn_t *e, uint8_t out[PLOG_TXN_ENTRY_BYTES]);
int plog_txn_index_decode(const uint8_t *p, size_t n, int64_t base, int64_t end, plog_aborted_txn_t **out,
                          uint32_t *count);

/* ---- leader epochs (leader-epoch-checkpoint) ---------------------------- */

#define PLOG_EPOCH_UNDEFINED (-1)
/* The latest epoch and its start offset; -1, -1 when none. */
void plog_latest_epoch(plog_t *log, int32_t *epoch, int64_t *start_offset);
/* OffsetForLeaderEpoch: the largest epoch <= requested and the offset where
 * it ended (the next epoch's start, or the log end for the latest epoch);
 * (-1, -1) when unknown. */
void plog_epoch_end_offset(plog_t *log, int32_t requested, int32_t *epoch, int64_t *end_offset);

/* ---- partition.metadata -------------------------------------------------- */

/* Writes "version: 0\ntopic_id: <base64url>" atomically. */
int plog_set_topic_id(plog_t *log, const uint8_t topic_id[16]);
/* STORAGE_ERR_NOT_FOUND when the file is missing. */
int plog_topic_id(plog_t *log, uint8_t topic_id[16]);
/* The same for a partition directory that is not open. */
int storage_read_topic_id(sfs_t *fs, const char *dir, uint8_t topic_id[16]);

/*
 * Topic deletion: the log refuses every write from now on (state
 * STORAGE_ERR_DELETED; pending flusher requests fail with it) and its
 * directory is renamed to "<dir>.<hex>-delete" (datadir.c) before this
 * returns, so a topic created again under the same name gets a fresh
 * directory. new_dir gets the new name; remove it with storage_remove_tree
 * after plog_close. 0 or -errno (the log is refused writes either way).
 */
int plog_mark_deleted(plog_t *log, char *new_dir, size_t len);

/* ---- flusher -------------------------------------------------------------- */

/* err is STORAGE_OK or an error (the log is then failed). */
typedef void (*flusher_cb)(void *arg, int err);

typedef struct flusher_stats {
    uint64_t rounds, syncs, callbacks;
} flusher_stats_t;

flusher_t *flusher_new(void);
/* Starts the flusher's own thread. Without it, tests drive rounds with
 * flusher_run_once. */
void flusher_start(flusher_t *f);
/* Stops the thread after a final round (pending callbacks fire). Close the
 * attached logs first (plog_close detaches a log, completing its requests). */
void flusher_free(flusher_t *f);
/* A log appended to will be synced by f (plog_open does not attach). */
void flusher_attach(flusher_t *f, plog_t *log);
/*
 * Calls cb(arg, err) on the flusher thread (or the thread running
 * flusher_run_once) once every offset below upto_offset (normally
 * plog_append_result.log_end_offset) is durable. err is STORAGE_OK, the
 * log's error when a sync failed, STORAGE_ERR_OUT_OF_RANGE when a
 * truncation removed the offsets before they were durable, or
 * STORAGE_ERR_CLOSED (fired from plog_close / flusher_free). Requests on
 * one log complete in the order they were made. A callback must not close
 * a log or free the flusher; it may call flusher_request.
 */
void flusher_request(flusher_t *f, plog_t *log, int64_t upto_offset, flusher_cb cb, void *arg);
/* One round: syncs every dirty file once, fires satisfied callbacks.
 * Returns the number of fdatasync calls made. */
int flusher_run_once(flusher_t *f);
/* Syncs log (attached to f) on the calling thread at once, for a caller
 * that would only wait for the flusher thread's round: no hand-over to
 * that thread and back. Everything below plog_flushed_offset is then
 * durable. Waiting flusher_request callbacks still fire on the flusher
 * thread (in order). Returns STORAGE_OK or the log's error. */
int flusher_sync_now(flusher_t *f, plog_t *log);
void flusher_get_stats(flusher_t *f, flusher_stats_t *out);

/* ---- data dir ------------------------------------------------------------- */

#define STORAGE_TOPIC_MAX 249
#define STORAGE_PATH_MAX 4096

/* "<data_dir>/<topic>-<partition>" into out; false when it does not fit. */
bool storage_partition_dir(const char *data_dir, const char *topic, int32_t partition, char *out,
                           size_t outlen);
/* mkdir -p data_dir, then plog_open of its <topic>-<partition>. */
int storage_open_partition(const char *data_dir, const char *topic, int32_t partition,
                           const plog_config_t *cfg, sfs_t *fs, plog_t **out);

typedef int (*storage_partition_fn)(void *arg, const char *topic, int32_t partition);
/* Calls fn for each "<topic>-<partition>" directory in data_dir. */
int storage_list_partitions(const char *data_dir, sfs_t *fs, storage_partition_fn fn, void *arg);

/*
 * The data directory's process lock (datadir.c): DATA_DIR/.lock held with
 * flock for the life of the process, taken before anything else in the
 * directory is touched. -1 with a message naming the lock file and, where
 * it can be known, the pid of the process holding it.
 */
int storage_lock_dir(const char *data_dir, int *fd, char *err, size_t errlen);
void storage_unlock_dir(int fd);
/* Renames dir to "<dir>.<32 random hex>-<suffix>" ("delete" or "stray")
 * and syncs the parent; out gets the new path. 0 or -errno. */
int storage_set_aside(sfs_t *fs, const char *dir, const char *suffix, char *out, size_t outlen);
/* rm -r of a directory tree (0 when it is already gone, or -errno). */
int storage_remove_tree(sfs_t *fs, const char *dir);
/* Removes every "*-delete" directory left in data_dir (start-up);
 * returns how many. */
int storage_sweep_deleted(const char *data_dir, sfs_t *fs);

/* Offline tools (read-only, POSIX fs). Return 0 when the directory is
 * consistent, 1 with a report on out otherwise, 2 when unreadable. */
int storage_check_dir(const char *dir, FILE *out);
int storage_dump_dir(const char *dir, FILE *out);
/* `chronik log repair DIR`: moves the damaged part of a partition directory
 * aside (scrub.c) so the log opens writable again; refuses while a broker
 * holds the data directory. 0 repaired or nothing to repair, 2 failed. */
int storage_repair_dir(const char *dir, FILE *out);

#endif
