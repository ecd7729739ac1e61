/*
 * metalog.c - the metadata log's format and its replay into an image.
 *
 * FORMAT
 * ======
 * DATA_DIR/__cluster_metadata-0/ is an ordinary partition log (storage.h:
 * segments, indexes, CRC-32C per batch, fsynced before anything it holds is
 * published), written only by the controller thread (controller.c).
 *
 *   batch   one record batch, magic v2, uncompressed, per controller round:
 *           the records of every change decided together. The batch is the
 *           unit of atomicity: it is appended with one write and published
 *           only once durable, so a reader sees all of a round or none of it
 *           (a TopicRecord never without its PartitionRecords). Batches with
 *           the control attribute (Raft's leader-change and snapshot
 *           markers) carry no metadata and are passed over.
 *   record  null key; the value is one metadata record framed as Kafka's
 *           metadata serde frames it:
 *
 *             uvarint  frame version      META_FRAME_VERSION (1)
 *             uvarint  record type        the schema's apiKey (TopicRecord 2,
 *                                         PartitionRecord 3, ConfigRecord 4, ...)
 *             uvarint  record version     within the schema's validVersions
 *             ...      the record body    the schema's fields, flexible encoding
 *                                         (tagged fields allowed)
 *
 * Versioning: a record type or version this build does not know is not
 * skipped: replay stops (below), because a node that applied only the
 * records it understood would serve metadata no other node has.
 *
 * VALIDITY AND REPLAY
 * ===================
 * Replay reads the log from its start and applies every record, in order,
 * to an empty image (meta_image_apply). What it does with each kind of bad
 * input, always a loud stop (an error naming the offset and the reason,
 * and the node does not start), never a silent skip:
 *   1. a batch failing its CRC or header checks: storage marks the log
 *      damaged (scrub.c) and replay reports it;
 *   2. a batch that cannot be iterated (compressed, truncated records);
 *   3. a record with a null or empty value, a frame version other than 1,
 *      an unknown record type, a version outside the schema's range, or a
 *      body that does not decode exactly.
 * Control batches are the only thing passed over.
 *
 * INVARIANTS
 *   1. The published image reflects exactly the records below its offset.
 *   2. Every batch below the log end is whole: rounds are never split.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/batch.h"

enum { META_READ_CHUNK_BYTES = 1 << 20 };

typedef struct replay_ctx {
    meta_image *img;
    arena_t arena;
    char *err;
    size_t errlen;
    int64_t records;
} replay_ctx_t;

static int replay_fail(replay_ctx_t *c, int64_t offset, const char *fmt, const char *detail)
{
    char what[256];
    snprintf(what, sizeof what, fmt, detail);
    snprintf(c->err, c->errlen, "metadata record at offset %" PRId64 ": %s", offset, what);
    return -1;
}

/* Decodes one framed record value and applies it; -1 with c->err set. */
static int replay_record(replay_ctx_t *c, const batch_record_t *rec)
{
    if (rec->value_len <= 0)
        return replay_fail(c, rec->offset, "%s", "null or empty value");
    rd_t r;
    rd_init(&r, rec->value, (size_t)rec->value_len);
    uint64_t frame, type, ver;
    if (!rd_uvarint(&r, &frame) || !rd_uvarint(&r, &type) || !rd_uvarint(&r, &ver))
        return replay_fail(c, rec->offset, "%s", "truncated frame header");
    if (frame != META_FRAME_VERSION)
        return replay_fail(c, rec->offset, "%s", "unknown frame version");
    const proto_record_desc *rd = type < 0x7fff ? proto_metadata_record((int16_t)type) : NULL;
    if (!rd)
        return replay_fail(c, rec->offset, "%s", "unknown record type");
    if ((int64_t)ver < rd->min_version || (int64_t)ver > rd->max_version)
        return replay_fail(c, rec->offset, "%s", "record version not supported by this build");
    void *body = arena_alloc(&c->arena, rd->desc->size);
    proto_err_t err;
    if (proto_decode(rd->desc, (int16_t)ver, true, &r, &c->arena, body, &err) != 0) {
        char msg[PROTO_ERR_MSG_MAX];
        return replay_fail(c, rec->offset, "undecodable body: %s", proto_err_format(&err, msg, sizeof msg));
    }
    if (rd_left(&r) != 0)
        return replay_fail(c, rec->offset, "%s", "bytes left after the record body");
    meta_image_apply(c->img, (int16_t)type, body);
    c->records++;
    return 0;
}

static int replay_batch(replay_ctx_t *c, const uint8_t *p, const batch_info_t *bi)
{
    if (bi->control)
        return 0; /* leader-change and snapshot markers: no metadata */
    batch_iter_t it;
    batch_record_t rec;
    if (!batch_iter_init(&it, p, bi->size))
        return replay_fail(c, bi->base_offset, "%s", "batch cannot be read (compressed or malformed)");
    while (batch_iter_next(&it, &rec)) {
        int r = replay_record(c, &rec);
        arena_reset(&c->arena);
        if (r < 0)
            return r;
    }
    if (it.failed)
        return replay_fail(c, bi->base_offset, "%s", "malformed records in the batch");
    return 0;
}

/* Applies the batches in b (whole batches read from the log). */
static int replay_chunk(replay_ctx_t *c, const buf_t *b)
{
    for (size_t pos = 0; pos + BATCH_LOG_OVERHEAD <= b->len;) {
        batch_info_t bi;
        if (batch_parse_header(b->data + pos, b->len - pos, &bi) != BATCH_ERR_OK)
            return replay_fail(c, -1, "%s", "unreadable batch header");
        if (replay_batch(c, b->data + pos, &bi) < 0)
            return -1;
        pos += bi.size;
    }
    return 0;
}

int meta_log_replay_bytes(const uint8_t *p, size_t n, meta_image *img, char *err, size_t errlen)
{
    replay_ctx_t c = {.img = img, .err = err, .errlen = errlen};
    arena_init(&c.arena);
    buf_t b = {.data = (uint8_t *)p, .len = n, .cap = n};
    int rc = replay_chunk(&c, &b);
    arena_free(&c.arena);
    return rc;
}

int meta_log_replay(plog_t *log, meta_image *img, char *err, size_t errlen)
{
    int64_t off = plog_log_start_offset(log), end = plog_log_end_offset(log);
    replay_ctx_t c = {.img = img, .err = err, .errlen = errlen};
    arena_init(&c.arena);
    buf_t b;
    buf_init(&b);
    int rc = 0;
    while (off < end && rc == 0) {
        buf_reset(&b);
        int64_t next = off;
        int src = plog_read_copy(log, off, INT64_MAX, META_READ_CHUNK_BYTES, &b, &next);
        if (src != STORAGE_OK) {
            snprintf(err, errlen, "reading the metadata log at offset %" PRId64 ": %s%s%s", off,
                     storage_strerror(src), plog_state(log) != STORAGE_OK ? ": " : "",
                     plog_state(log) != STORAGE_OK ? plog_errmsg(log) : "");
            rc = -1;
            break;
        }
        rc = replay_chunk(&c, &b);
        CK_ASSERT(rc < 0 || next > off);
        off = next;
    }
    img->offset = end;
    arena_free(&c.arena);
    buf_free(&b);
    if (rc == 0)
        log_debug("meta", "replayed records=%" PRId64 " log_end=%" PRId64, c.records, end);
    return rc;
}
