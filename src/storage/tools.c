/*
 * tools.c - data-dir helpers (partition directories, listing) and the
 * offline check/dump tools. The tools only read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "storage/storage_int.h"

#define TOOL_SEGS_MAX 1000000

bool storage_partition_dir(const char *data_dir, const char *topic, int32_t partition, char *out,
                           size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s-%" PRId32, data_dir, topic, partition);
    return n > 0 && (size_t)n < outlen;
}

static bool topic_name_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > STORAGE_TOPIC_MAX || !strcmp(t, ".") || !strcmp(t, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int storage_open_partition(const char *data_dir, const char *topic, int32_t partition,
                           const plog_config_t *cfg, sfs_t *fs, plog_t **out)
{
    char dir[STORAGE_PATH_MAX];
    *out = NULL;
    if (!topic_name_ok(topic) || partition < 0 ||
        !storage_partition_dir(data_dir, topic, partition, dir, sizeof dir))
        return STORAGE_ERR_INVALID;
    return plog_open(dir, cfg, fs, true, out); /* makes data_dir too when missing */
}

typedef struct list_ctx {
    storage_partition_fn fn;
    void *arg;
} list_ctx_t;

static int list_one(void *arg, const char *name, bool is_dir)
{
    list_ctx_t *c = arg;
    const char *dash = strrchr(name, '-');
    if (!is_dir || !dash || dash == name || dash[1] == 0 || strlen(dash + 1) > 9)
        return 0;
    int32_t p = 0;
    for (const char *q = dash + 1; *q; q++) {
        if (*q < '0' || *q > '9')
            return 0;
        p = p * 10 + (*q - '0');
    }
    char topic[STORAGE_TOPIC_MAX + 1];
    size_t tl = (size_t)(dash - name);
    if (tl > STORAGE_TOPIC_MAX)
        return 0;
    memcpy(topic, name, tl);
    topic[tl] = 0;
    if (!topic_name_ok(topic))
        return 0;
    return c->fn(c->arg, topic, p);
}

int storage_list_partitions(const char *data_dir, sfs_t *fs, storage_partition_fn fn, void *arg)
{
    list_ctx_t c = {fn, arg};
    int r = fs->readdir(fs, data_dir, list_one, &c);
    if (r == -ENOENT)
        return STORAGE_ERR_NOT_FOUND;
    return r < 0 ? STORAGE_ERR_IO : STORAGE_OK;
}

/* ---- offline tools -------------------------------------------------------- */

typedef struct seg_list {
    int64_t *bases;
    int n, cap;
} seg_list_t;

static int collect_log(void *arg, const char *name, bool is_dir)
{
    seg_list_t *l = arg;
    int64_t base;
    const char *ext;
    if (is_dir || !seg_parse_name(name, &base, &ext) || strcmp(ext, ".log") || l->n >= TOOL_SEGS_MAX)
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->bases = xrealloc(l->bases, (size_t)l->cap * sizeof *l->bases);
    }
    l->bases[l->n++] = base;
    return 0;
}

static int cmp_base(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_segments(const char *dir, seg_list_t *l, FILE *out)
{
    memset(l, 0, sizeof *l);
    sfs_t *fs = sfs_posix();
    int r = fs->readdir(fs, dir, collect_log, l);
    if (r < 0) {
        fprintf(out, "%s: cannot read directory: %s\n", dir, strerror(-r));
        return -1;
    }
    if (l->n > 1)
        qsort(l->bases, (size_t)l->n, sizeof *l->bases, cmp_base);
    return 0;
}

static seg_t *open_ro(const char *dir, int64_t base, FILE *out)
{
    char p[SEG_PATH_MAX];
    sfs_t *fs = sfs_posix();
    seg_path(p, sizeof p, dir, base, ".log");
    seg_t *s = seg_new(fs, base);
    int r = fs->open(fs, p, SFS_RDONLY, &s->fd);
    if (r == 0)
        r = fs->fsize(fs, s->fd, &s->size);
    if (r < 0) {
        fprintf(out, "%s: %s\n", p, strerror(-r));
        seg_unref(s);
        return NULL;
    }
    return s;
}

int storage_list_segment_bases(const char *dir, int64_t **bases, FILE *out)
{
    seg_list_t l;
    if (list_segments(dir, &l, out) < 0)
        return -1;
    *bases = l.bases;
    return l.n;
}

seg_t *storage_open_segment_ro(const char *dir, int64_t base, FILE *out) { return open_ro(dir, base, out); }

typedef struct check_ctx {
    seg_t *s;        /* the segment with its indexes loaded */
    uint32_t ik, tk; /* next index / time-index entry to match */
    int problems;
    FILE *out;
} check_ctx_t;

static void check_batch(void *arg, const batch_info_t *b, uint64_t pos)
{
    check_ctx_t *c = arg;
    const seg_t *s = c->s;
    int64_t last = batch_info_last_offset(b);
    while (c->ik < s->idx_n && s->idx[c->ik].pos < pos) {
        fprintf(c->out, "  index entry %u: position %u is not a batch start\n", c->ik, s->idx[c->ik].pos);
        c->problems++, c->ik++;
    }
    if (c->ik < s->idx_n && s->idx[c->ik].pos == pos) {
        if (s->base + s->idx[c->ik].rel != last) {
            fprintf(c->out, "  index entry %u: offset %" PRId64 " but the batch ends at %" PRId64 "\n", c->ik,
                    s->base + s->idx[c->ik].rel, last);
            c->problems++;
        }
        c->ik++;
    }
    while (c->tk < s->tidx_n && s->base + s->tidx[c->tk].rel <= last) {
        if (s->base + s->tidx[c->tk].rel == last && s->tidx[c->tk].ts != b->max_timestamp) {
            fprintf(c->out, "  time index entry %u: timestamp %" PRId64 " but the batch has %" PRId64 "\n",
                    c->tk, s->tidx[c->tk].ts, b->max_timestamp);
            c->problems++;
        }
        c->tk++;
    }
}

static void print_damage(void *arg, int64_t from, int64_t to, uint64_t pos, const char *why)
{
    fprintf(arg, "  damaged: offsets %" PRId64 "..%" PRId64 " from position %" PRIu64 ": %s\n", from, to - 1, pos,
            why);
}

/* Every damaged range of the segment, past the first bad batch too. */
static void check_damage(seg_t *s, int64_t first_bad, FILE *out)
{
    uint64_t batches = 0;
    if (seg_scan_damage(s, s->size, MAX(first_bad + 1, s->base + 1), print_damage, out, &batches) < 0)
        fprintf(out, "  read error while looking past the damage\n");
}

/* The segment's .txnindex: missing is a note (the active segment keeps it
 * in memory; older data directories have none; both are rebuilt at open),
 * torn or invalid in a sealed segment a problem. Returns the problems. */
static int check_txn_index(const char *dir, seg_t *s, bool last, FILE *out)
{
    int r = seg_load_txn_index(s, dir);
    if (r == 0)
        return 0;
    bool missing = r == -ENOENT;
    fprintf(out, "  %s transaction index %s (rebuilt at open)\n", missing || last ? "note:" : "problem:",
            missing ? "missing" : "torn or invalid");
    return !missing && !last;
}

/* Checks one segment; returns the number of problems. */
static int check_segment(const char *dir, seg_t *s, bool last, int64_t *expect, FILE *out)
{
    check_ctx_t c = {.s = s, .out = out};
    bool have_idx = seg_load_indexes(s, dir) == 0;
    if (!have_idx) {
        s->idx_n = s->tidx_n = 0;
        fprintf(out, "  %s index files missing or malformed (rebuilt at open)\n", last ? "note:" : "problem:");
        c.problems += !last;
    }
    seg_scan_t sc;
    if (seg_walk(s, 0, MAX(*expect, s->base), true, check_batch, &c, &sc) < 0) {
        fprintf(out, "  read error\n");
        return c.problems + 1;
    }
    int zeros = sc.err != BATCH_OK && last ? seg_zero_from(s, sc.valid_end) : 0;
    if (zeros == 1) {
        fprintf(out, "  note: %" PRIu64 " zero bytes preallocated after the last batch (cut at open)\n",
                s->size - sc.valid_end);
    } else if (sc.err != BATCH_OK) {
        fprintf(out, "  invalid batch at position %" PRIu64 " (offset %" PRId64 ", %" PRIu64 " bytes left): %s\n",
                sc.valid_end, sc.next_offset, s->size - sc.valid_end, batch_strerror(sc.err));
        c.problems++;
        check_damage(s, sc.next_offset, out);
    }
    if (have_idx && (c.ik < s->idx_n || c.tk < s->tidx_n)) {
        fprintf(out, "  %u index / %u time index entries point past the valid data\n", s->idx_n - c.ik,
                s->tidx_n - c.tk);
        c.problems++;
    }
    s->end = sc.next_offset;
    c.problems += check_txn_index(dir, s, last, out);
    fprintf(out, "  batches=%" PRIu64 " bytes=%" PRIu64 " next_offset=%" PRId64 "\n", sc.batches, s->size,
            sc.next_offset);
    *expect = MAX(*expect, sc.next_offset);
    return c.problems;
}

int storage_check_dir(const char *dir, FILE *out)
{
    seg_list_t l;
    if (list_segments(dir, &l, out) < 0)
        return 2;
    int problems = 0;
    int64_t expect = 0;
    for (int i = 0; i < l.n; i++) {
        char p[SEG_PATH_MAX];
        seg_path(p, sizeof p, dir, l.bases[i], ".log");
        fprintf(out, "%s\n", p);
        if (i > 0 && l.bases[i] < expect) {
            fprintf(out, "  problem: base offset %" PRId64 " below the previous segment's end %" PRId64 "\n",
                    l.bases[i], expect);
            problems++;
        }
        seg_t *s = open_ro(dir, l.bases[i], out);
        if (!s) {
            problems++;
            continue;
        }
        problems += check_segment(dir, s, i + 1 == l.n, &expect, out);
        seg_unref(s);
    }
    free(l.bases);
    fprintf(out, "%s: %d segment(s), %d problem(s)\n", dir, l.n, problems);
    return problems ? 1 : 0;
}

/* Prints one batch; false when it is not valid. */
static bool dump_batch(seg_t *s, uint64_t pos, FILE *out)
{
    uint8_t hdr[BATCH_HEADER_BYTES];
    batch_info_t b;
    if (seg_read_batch_header(s, pos, s->size, &b, hdr) < 0) {
        fprintf(out, "  position: %" PRIu64 " invalid batch header (%" PRIu64 " bytes left)\n", pos,
                s->size - pos);
        return false;
    }
    uint8_t *data = xmalloc(b.size);
    bool crc_ok = sfs_pread_full(s->fs, s->fd, data, b.size, pos) == 0 && batch_crc_ok(data, b.size);
    int marker = -1;
    int32_t coordinator_epoch = -1;
    if (crc_ok && b.control) {
        b.data = data;
        marker = batch_control_type(&b);
        coordinator_epoch = batch_control_coordinator_epoch(&b);
    }
    free(data);
    fprintf(out,
            "  baseOffset: %" PRId64 " lastOffset: %" PRId64 " count: %" PRId32 " leaderEpoch: %" PRId32
            " position: %" PRIu64 " size: %" PRIu32 " baseTimestamp: %" PRId64 " maxTimestamp: %" PRId64
            " codec: %s producerId: %" PRId64 " producerEpoch: %d baseSequence: %" PRId32
            " transactional: %s control: %s crc: %08x crcOk: %s\n",
            b.base_offset, batch_info_last_offset(&b), b.records_count, b.leader_epoch, pos, b.size,
            b.base_timestamp, b.max_timestamp, batch_codec_name(b.codec), b.producer_id, b.producer_epoch,
            b.base_sequence, b.transactional ? "true" : "false", b.control ? "true" : "false", b.crc,
            crc_ok ? "true" : "false");
    if (marker == BATCH_CONTROL_ABORT || marker == BATCH_CONTROL_COMMIT)
        fprintf(out, "    | endTxnMarker: %s coordinatorEpoch: %" PRId32 "\n",
                marker == BATCH_CONTROL_COMMIT ? "COMMIT" : "ABORT", coordinator_epoch);
    else if (b.control)
        fprintf(out, "    | control record of unknown type %d\n", marker);
    return crc_ok;
}

/* Prints the .txnindex of segment [base, end). */
static void dump_txn_index(const char *dir, int64_t base, int64_t end, FILE *out)
{
    char p[SEG_PATH_MAX];
    seg_path(p, sizeof p, dir, base, SEG_TXN_INDEX_EXT);
    char *data = NULL;
    size_t n = 0;
    int r = sfs_read_small(sfs_posix(), p, 64u << 20, &data, &n);
    if (r < 0) {
        fprintf(out, "Transaction index %s\n  %s (rebuilt at the next open)\n", p, strerror(-r));
        return;
    }
    plog_aborted_txn_t *v;
    uint32_t k;
    bool ok = plog_txn_index_decode((const uint8_t *)data, n, base, end, &v, &k) == STORAGE_OK;
    free(data);
    fprintf(out, "Transaction index %s\n", p);
    if (!ok) {
        fprintf(out, "  invalid or torn: %zu bytes (rebuilt at the next open)\n", n);
        return;
    }
    for (uint32_t i = 0; i < k; i++)
        fprintf(out, "  version: 0 producerId: %" PRId64 " firstOffset: %" PRId64 " lastOffset: %" PRId64
                " lastStableOffset: %" PRId64 "\n", v[i].producer_id, v[i].first_offset, v[i].last_offset,
                v[i].last_stable_offset);
    free(v);
}

int storage_dump_dir(const char *dir, FILE *out)
{
    seg_list_t l;
    if (list_segments(dir, &l, out) < 0)
        return 2;
    int bad = 0;
    for (int i = 0; i < l.n; i++) {
        char p[SEG_PATH_MAX];
        seg_path(p, sizeof p, dir, l.bases[i], ".log");
        fprintf(out, "Dumping %s\n", p);
        seg_t *s = open_ro(dir, l.bases[i], out);
        if (!s) {
            bad++;
            continue;
        }
        walker_t w;
        batch_info_t b;
        walker_init(&w, s, s->size);
        uint64_t pos = 0;
        while (pos < s->size) {
            bool valid = walker_header(&w, pos, &b) == 0;
            if (!valid && i + 1 == l.n && seg_zero_from(s, pos) == 1) {
                fprintf(out, "  position: %" PRIu64 " %" PRIu64 " zero bytes preallocated\n", pos, s->size - pos);
                break;
            }
            bool ok = dump_batch(s, pos, out);
            bad += !ok;
            if (!valid)
                break;
            pos += b.size;
            s->end = batch_info_last_offset(&b) + 1;
        }
        walker_free(&w);
        dump_txn_index(dir, l.bases[i], s->end, out);
        seg_unref(s);
    }
    free(l.bases);
    return bad ? 1 : 0;
}
