/*
 * storage_int.h - types shared by the storage .c files (not a public
 * header: the broker includes storage.h only).
 */
#ifndef CHRONIK_STORAGE_INT_H
#define CHRONIK_STORAGE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "proto/batch.h"
#include "storage/storage.h"

#define SEG_NAME_DIGITS 20
#define SEG_PATH_MAX 4200
#define SEG_WALK_CHUNK (16 * 1024)  /* bytes read per pread when walking headers */
#define IDX_ENTRY_BYTES 8
#define TIDX_ENTRY_BYTES 12
#define EPOCH_FILE "leader-epoch-checkpoint"
#define EPOCH_FILE_VERSION 0
#define EPOCH_FILE_MAX (1024 * 1024)
#define META_FILE "partition.metadata"
#define CKPT_FILE "chronik.checkpoint"
#define CKPT_MAGIC "chronik-checkpoint"
#define CKPT_VERSION 1
#define SMALL_FILE_MAX (64 * 1024)
#define SEG_TXN_INDEX_EXT ".txnindex"
/* A segment's index files, and all its files (.log first). */
#define SEG_INDEX_EXTS {".index", ".timeindex", SEG_TXN_INDEX_EXT}
#define SEG_FILE_EXTS {".log", ".index", ".timeindex", SEG_TXN_INDEX_EXT}

typedef struct idx_entry {
    uint32_t rel;   /* last offset of the batch at pos, minus the segment base */
    uint32_t pos;   /* file position of that batch */
} idx_entry_t;

typedef struct tidx_entry {
    int64_t ts;     /* max timestamp so far in the segment */
    uint32_t rel;   /* offset holding it (batch last offset), minus base */
} tidx_entry_t;

/* One segment: a .log file plus its indexes, kept whole in memory. */
typedef struct seg {
    int64_t base;
    sfs_t *fs;
    int fd;               /* .log, read-write */
    uint64_t size;        /* bytes written (what reads may see) */
    uint64_t synced;      /* bytes known durable */
    uint64_t alloc;       /* bytes in the file: [size, alloc) are written zeros */
    bool trim_unsynced;   /* the zero tail was cut; the new size is not yet durable */
    uint32_t trims;       /* cuts of the zero tail so far */
    uint64_t dropped;     /* page-cache pages below this were dropped (cache window) */
    int64_t end;          /* offset after the last batch; base when empty */
    int64_t max_ts;       /* -1 when no timestamps */
    int64_t max_ts_offset;
    int64_t roll_ref_ms;  /* time the segment counts its age from; -1 empty */
    idx_entry_t *idx;
    uint32_t idx_n, idx_cap;
    tidx_entry_t *tidx;
    uint32_t tidx_n, tidx_cap;
    uint64_t bytes_since_index;
    bool sealed;          /* not the active segment */
    bool idx_unsynced;    /* index files written, not yet synced */
    plog_aborted_txn_t *txns; /* the .txnindex (txnindex.c), by marker offset */
    uint32_t txn_n, txn_cap;
    bool txn_dirty;       /* sealed, with entries its file lacks */
    atomic_int refs;      /* the log's list holds one; readers one each */
} seg_t;

typedef struct epoch_entry {
    int32_t epoch;
    int64_t start;
} epoch_entry_t;

typedef struct flush_req {
    struct flush_req *next;
    uint64_t seq;     /* order of the request at its flusher */
    int64_t upto;
    flusher_cb cb;
    void *arg;
} flush_req_t;

struct plog {
    pthread_mutex_t mu;        /* in-memory state; never held across fsync */
    pthread_mutex_t ckpt_mu;   /* serialises checkpoint/epoch file writes */
    pthread_mutex_t sync_mu;   /* one plog_sync at a time (the flusher's, a caller's own) */
    char *dir;                 /* changed only by plog_mark_deleted (under mu and ckpt_mu) */
    char *dir_old;             /* the name before plog_mark_deleted, freed with the log */
    sfs_t *fs;
    plog_clock_fn clock;       /* cfg.clock at open: fixed for the log's life */
    void *clock_arg;
    plog_config_t cfg;
    seg_t **segs;              /* sorted by base; the last is active */
    int nsegs, cap_segs;
    int64_t log_start;
    int64_t leo;               /* log end offset */
    int64_t flushed;           /* everything below is durable */
    int64_t recovery_point;    /* persisted: below it all is durable */
    int64_t unflushed_msgs;
    int64_t oldest_unflushed_ms;
    uint64_t trunc_gen;        /* bumped by truncation */
    bool dir_unsynced;         /* a file was created since the last dir sync */
    bool created;              /* made by this open, or found holding no segment (segment.c,
                                * CREATION): no data; partition.metadata not yet written */
    bool epochs_dirty;
    bool ckpt_dirty;           /* log start raised since chronik.checkpoint was written */
    int state;                 /* STORAGE_OK, _OFFLINE, _FAILED, _DELETED, _DAMAGED */
    int64_t damaged_from, damaged_to; /* offsets not served (scrub.c); -1 when none */
    int64_t damaged_seg;       /* found at open: the segment and position of the first bad batch */
    uint64_t damaged_pos;
    bool nospace;              /* the disk was full at the last write (plog_space_short) */
    int64_t nospace_until_ms;  /* monotonic: appends refused before it */
    int64_t nospace_backoff_ms;
    char errmsg[256];
    epoch_entry_t *epochs;
    int nepochs, cap_epochs;
    /* flusher side, guarded by the flusher's mutex */
    flusher_t *flusher;
    flush_req_t *req_head, *req_tail;
    bool attached;
    bool flush_queued;         /* on the flusher's dirty list */
    /* compaction (compact.c), guarded by mu; zero = nothing known clean */
    int64_t clean_offset;      /* below it no superseded record is left */
    uint64_t clean_gen;        /* trunc_gen clean_offset belongs to */
    int64_t clean_horizon_ms;  /* earliest delete horizon of a kept tombstone; 0 none */
    bool cleaning;             /* a compaction pass runs */
    int64_t txn_rebuild_from;  /* txnindex.c: indexes to rebuild from here; INT64_MAX none */
};

/* ---- segment.c ---------------------------------------------------------- */
void seg_path(char *out, size_t n, const char *dir, int64_t base, const char *ext);
bool seg_parse_name(const char *name, int64_t *base, const char **ext);
seg_t *seg_new(sfs_t *fs, int64_t base);
void seg_ref(seg_t *s);
void seg_unref(seg_t *s);
int seg_create(sfs_t *fs, const char *dir, int64_t base, seg_t **out);
int seg_open_file(sfs_t *fs, const char *dir, int64_t base, seg_t **out);
void seg_idx_push(seg_t *s, uint32_t rel, uint32_t pos);
void seg_tidx_push(seg_t *s, int64_t ts, uint32_t rel);
void seg_note_batch(seg_t *s, const batch_info_t *b, uint64_t pos, int32_t interval);
int seg_write_indexes(seg_t *s, const char *dir, bool sync);
/* Same, to "<base>.index<suffix>" and "<base>.timeindex<suffix>". */
int seg_write_indexes_as(seg_t *s, const char *dir, const char *suffix, bool sync);
int seg_load_indexes(seg_t *s, const char *dir);
/* Writes zeros at [s->alloc, upto) (upto > s->alloc) and moves s->alloc. */
int seg_preallocate(seg_t *s, uint64_t upto);
/* Cuts the file to s->size when a zero tail lies beyond it; marks the
 * segment for a metadata sync (trim_unsynced). */
int seg_trim(seg_t *s);
/* 1 when the file's bytes [from, s->size) are all zero, 0 when not,
 * -errno on a read error. */
int seg_zero_from(seg_t *s, uint64_t from);
int seg_unlink_files(sfs_t *fs, const char *dir, int64_t base);
uint32_t seg_idx_floor(const seg_t *s, int64_t offset);

/* Result of walking a segment from some position. */
typedef struct seg_scan {
    uint64_t valid_end;   /* position after the last valid batch */
    int64_t next_offset;  /* offset after the last valid batch */
    int64_t max_ts, max_ts_offset;
    enum batch_err err;   /* why the walk stopped early (BATCH_OK: clean end) */
    uint64_t batches;
} seg_scan_t;

typedef void (*seg_batch_fn)(void *arg, const batch_info_t *b, uint64_t pos);
/* Walks [from, s->size) batch by batch, checking each stored batch (CRC when
 * crc is true, offsets increasing from expect_offset). fn may be NULL. */
int seg_walk(seg_t *s, uint64_t from, int64_t expect_offset, bool crc, seg_batch_fn fn, void *arg,
             seg_scan_t *out);
/* Rebuilds the in-memory indexes from the .log (full scan with CRC). */
int seg_rebuild(seg_t *s, int32_t interval, seg_scan_t *out);
/* Reads the 27-byte prefix of the batch at pos (enough for offsets). */
int seg_read_batch_header(seg_t *s, uint64_t pos, uint64_t limit, batch_info_t *b, uint8_t *hdr);

/* Batch headers read through a chunk buffer (one pread per chunk). */
typedef struct walker {
    seg_t *s;
    uint64_t limit; /* bytes of the file that may be read */
    uint8_t *buf;
    uint64_t buf_pos;
    size_t buf_len;
} walker_t;
void walker_init(walker_t *w, seg_t *s, uint64_t limit);
void walker_free(walker_t *w);
/* 0 with *b filled, 1 at the end of the visible bytes, -errno on error. */
int walker_header(walker_t *w, uint64_t pos, batch_info_t *b);
/* First batch at or after from whose last offset is >= offset. */
int walker_find(walker_t *w, uint64_t from, int64_t offset, uint64_t *pos, batch_info_t *b);

/* ---- txnindex.c ------------------------------------------------------------ */
void seg_txn_push(seg_t *s, const plog_aborted_txn_t *e);
/* Drops the entries whose marker is at or after end. */
void seg_txn_truncate(seg_t *s, int64_t end);
/* The file's bytes (malloc'ed), *n long. */
uint8_t *seg_txn_encode(const seg_t *s, size_t *n);
/* Loads <base>.txnindex for a segment whose end is known: 0, or -errno
 * (-EINVAL: torn or invalid). */
int seg_load_txn_index(seg_t *s, const char *dir);
int seg_write_txn_index(seg_t *s, const char *dir, const char *suffix, bool sync);
/* Under mu, at open: s's index must be rebuilt (emptied now). */
void plog_txn_index_mark_rebuild(plog_t *log, seg_t *s);
void seg_txn_check(const seg_t *s);

/* ---- scrub.c ----------------------------------------------------------------- */
/* A damaged range of offsets [from, to) whose first bad batch is at pos. */
typedef void (*seg_damage_fn)(void *arg, int64_t from, int64_t to, uint64_t pos, const char *why);
/* Scans [0, limit) of s for damage (scrub.c's header), going on past bad
 * batches; end_offset bounds a range that runs to the end of the segment.
 * Returns the number of ranges reported, or -errno on a read error. */
int seg_scan_damage(seg_t *s, uint64_t limit, int64_t end_offset, seg_damage_fn fn, void *arg,
                    uint64_t *batches);
/* Under the lock: read-only with [from, to) not served (merged with what
 * was known), errmsg from fmt. */
void plog_mark_damaged_locked(plog_t *log, int64_t from, int64_t to, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* tools.c: the sorted segment base offsets of dir (-1 when unreadable, with
 * a message on out), and a read-only segment without indexes. */
int storage_list_segment_bases(const char *dir, int64_t **bases, FILE *out);
seg_t *storage_open_segment_ro(const char *dir, int64_t base, FILE *out);
/* plog.c: lowers the recovery point in dir's chronik.checkpoint to rp. */
int storage_lower_recovery_point(const char *dir, int64_t rp);

/* ---- compact_batch.c ------------------------------------------------------ */

/* Key -> latest offset, exact keys, within a memory bound (compact.c). */
typedef struct kslot kslot_t;
typedef struct kmap {
    kslot_t *slots;
    uint32_t cap, n;      /* cap: 0 or a power of two */
    uint8_t *keys;        /* the key bytes, back to back */
    size_t keys_len, keys_cap;
    size_t bytes_max;     /* slots + key bytes stay within it */
} kmap_t;
void kmap_init(kmap_t *m, size_t bytes_max);
void kmap_free(kmap_t *m);
#define COMPACT_TXN_MAP_BYTES (4 * 1024 * 1024) /* each of cpass_t's producer maps */
/* True when count more keys of key_bytes in all fit the bound. */
bool kmap_fits(const kmap_t *m, uint32_t count, size_t key_bytes);
void kmap_put(kmap_t *m, const void *key, int32_t len, int64_t offset);
int64_t kmap_get(const kmap_t *m, const void *key, int32_t len); /* -1 when absent */

/* Whole batches of a segment, read in chunks, CRC-checked. */
typedef struct breader {
    seg_t *s;
    uint64_t pos, limit;
    uint8_t *buf;
    size_t cap, len;
    uint64_t buf_pos;
    uint64_t bytes_read;
} breader_t;
/* Reads [from, limit) of s. */
void breader_init(breader_t *r, seg_t *s, uint64_t from, uint64_t limit);
void breader_free(breader_t *r);
/* 0: *b is the next batch (b->data points into the reader until the next
 * call); 1: end of the segment; -EBADMSG: corrupt batch; other -errno. */
int breader_next(breader_t *r, batch_info_t *b);

/* What a batch's verdict depends on: the key map of one pass. */
typedef struct cpass {
    kmap_t map;
    int64_t dirty_start, dirty_end; /* the map covers [dirty_start, dirty_end) */
    int64_t now_ms;
    int64_t delete_retention_ms;
    bool opaque_seen;               /* a batch whose keys are unknown lies behind */
    int64_t next_horizon_ms;        /* earliest horizon of a kept tombstone; INT64_MAX none */
    int64_t records_removed, tombstones_removed;
    plog_aborted_txn_t *aborted;    /* every aborted transaction of the log, by marker */
    uint32_t naborted;
    kmap_t txn_data;                /* producer -> last offset of its kept transactional data (R11) */
    kmap_t txn_marks;               /* producer -> offset of its last marker seen (R11) */
    bool txn_maps_full;             /* then no marker is removed */
    int64_t *dropped_aborts;        /* ABORT markers removed, in offset order (their .txnindex entries go) */
    uint32_t ndropped_aborts;
} cpass_t;

enum compact_verdict { COMPACT_KEEP, COMPACT_REWRITE, COMPACT_DROP };
/* Adds the keys of b's records at or after p->dirty_start to the map;
 * false (nothing added) when they do not fit, unless force. */
bool compact_map_batch(cpass_t *p, const batch_info_t *b, bool force);
/* b's fate in the pass. COMPACT_REWRITE appends the new batch to out.
 * last_of_producer: b is its producer's last batch in the new segment (an
 * emptied one is then kept as a bare header). */
enum compact_verdict compact_batch(cpass_t *p, const batch_info_t *b, bool last_of_producer, buf_t *out);

/* ---- compact.c ------------------------------------------------------------ */
/* Resolves what an interrupted compaction left (compact.c's header): run by
 * plog_open before it lists the segments. 0 or -errno. */
int compact_recover(sfs_t *fs, const char *dir);

/* ---- fs.c ---------------------------------------------------------------- */
int sfs_mkdir_p(sfs_t *fs, const char *path);

/* ---- plog.c / flusher.c -------------------------------------------------- */
void plog_set_error(plog_t *log, int state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void flusher_notify(flusher_t *f, plog_t *log);
void flusher_detach(flusher_t *f, plog_t *log, flush_req_t **reqs);
/* One flush of log: syncs dirty files, persists epochs and the recovery
 * point. Returns the number of fdatasync calls, or -1 on error. Calls on
 * one log run one after another (sync_mu): each reports durable only what
 * it or an earlier call synced. */
int plog_sync(plog_t *log, bool force);
bool plog_wants_sync(plog_t *log, int64_t now_ms);
int plog_write_checkpoint(plog_t *log);
int plog_write_epochs(plog_t *log);
int64_t plog_now_ms(const plog_t *log);
void epochs_truncate_end(plog_t *log, int64_t end);
void epochs_truncate_start(plog_t *log, int64_t start);
void plog_epoch_assign_locked(plog_t *log, int32_t epoch, int64_t start);
void plog_check_locked(const plog_t *log);
void plog_push_seg(plog_t *log, seg_t *s);

#endif
