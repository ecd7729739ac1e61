/*
 * metalog.c - what the metadata log holds, and applying it to an image.
 *
 * FORMAT
 * ======
 * DATA_DIR/__cluster_metadata-0/ is an ordinary partition log (storage.h:
 * segments, indexes, CRC-32C per batch, fsynced before anything it holds is
 * committed) whose batches are the metadata quorum's log entries, laid out
 * as src/raft/wire.h says: data entries of one epoch share a batch, one
 * record per entry (null key, the entry in the value); a new leader's
 * leader-change entry is a control batch. quorum.c owns the log. Beside
 * it, <end>-<epoch>.checkpoint files hold snapshots of the image as the
 * same framed records (snapshot.c); the log is trimmed below them.
 *
 * A data entry is one controller round: every record of the changes
 * decided together, so that a node applies all of them or none (a
 * TopicRecord never without its PartitionRecords). Its bytes:
 *
 *     uvarint  count              records in the round (>= 1)
 *     count x  uvarint length     then that many bytes: one framed record
 *
 * A framed record is Kafka's metadata serde frame:
 *
 *     uvarint  frame version      META_FRAME_VERSION (1)
 *     uvarint  record type        the schema's apiKey (TopicRecord 2,
 *                                 PartitionRecord 3, ConfigRecord 4, ...)
 *     uvarint  record version     within the schema's validVersions
 *     ...      the record body    the schema's fields, flexible encoding
 *
 * Epoch 0 (adopted logs). A metadata log written before the quorum existed
 * holds data batches of leader epoch 0, one per round, one framed record
 * per record. Read as entries they are one framed record each, and they
 * are applied as such: an entry of epoch 0 is a single framed record; an
 * entry of epoch >= 1 (every epoch a quorum ever elects) is a round.
 *
 * Versioning: a record type or version this build does not know is not
 * skipped: applying stops (below), because a node that applied only the
 * records it understood would serve metadata no other node has.
 *
 * VALIDITY
 * ========
 * What applying does with each kind of bad input, always a loud stop (an
 * error naming the offset and the reason; the node does not start, or a
 * running one stops), never a silent skip:
 *   1. a batch failing its CRC or header checks: storage marks the log
 *      damaged (scrub.c) and the quorum refuses to open it;
 *   2. a round whose count or lengths do not add up to its bytes;
 *   3. a record with a frame version other than 1, an unknown record type,
 *      a version outside the schema's range, or a body that does not
 *      decode exactly;
 *   4. a partition record (or change) that would leave a replica listed
 *      twice, an ISR that is not a set of the replicas, or a leader outside
 *      the ISR (image.c's invariants 2-4).
 *
 * INVARIANTS
 *   1. A published image reflects exactly the entries below its offset.
 *   2. Rounds are applied whole, in offset order, once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/batch.h"

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

/* Decodes one framed record and applies it; -1 with c->err set. */
static int apply_record(replay_ctx_t *c, int64_t offset, const uint8_t *p, size_t len)
{
    if (len == 0)
        return replay_fail(c, offset, "%s", "empty record");
    rd_t r;
    rd_init(&r, p, len);
    uint64_t frame, type, ver;
    if (!rd_uvarint(&r, &frame) || !rd_uvarint(&r, &type) || !rd_uvarint(&r, &ver))
        return replay_fail(c, offset, "%s", "truncated frame header");
    if (frame != META_FRAME_VERSION)
        return replay_fail(c, offset, "%s", "unknown frame version");
    const proto_record_desc *rd = type < 0x7fff ? proto_metadata_record((int16_t)type) : NULL;
    if (!rd)
        return replay_fail(c, offset, "%s", "unknown record type");
    if ((int64_t)ver < rd->min_version || (int64_t)ver > rd->max_version)
        return replay_fail(c, offset, "%s", "record version not supported by this build");
    void *body = arena_alloc(&c->arena, rd->desc->size);
    proto_err_t err;
    if (proto_decode(rd->desc, (int16_t)ver, true, &r, &c->arena, body, &err) != 0) {
        char msg[PROTO_ERR_MSG_MAX];
        return replay_fail(c, offset, "undecodable body: %s", proto_err_format(&err, msg, sizeof msg));
    }
    if (rd_left(&r) != 0)
        return replay_fail(c, offset, "%s", "bytes left after the record body");
    const char *broken = meta_image_record_error(c->img, (int16_t)type, body);
    if (broken)
        return replay_fail(c, offset, "record would break the image: %s", broken);
    meta_image_apply(c->img, (int16_t)type, body);
    c->records++;
    return 0;
}

static int apply_round(replay_ctx_t *c, int64_t offset, const uint8_t *data, size_t len)
{
    rd_t r;
    rd_init(&r, data, len);
    uint64_t count, n;
    if (!rd_uvarint(&r, &count) || count == 0 || count > len)
        return replay_fail(c, offset, "%s", "round without a valid record count");
    for (uint64_t i = 0; i < count; i++) {
        if (!rd_uvarint(&r, &n) || n > rd_left(&r))
            return replay_fail(c, offset, "%s", "round record length beyond the entry");
        int rc = apply_record(c, offset, r.p, (size_t)n);
        arena_reset(&c->arena);
        if (rc < 0)
            return rc;
        r.p += n;
    }
    if (rd_left(&r) != 0)
        return replay_fail(c, offset, "%s", "bytes left after the round's records");
    return 0;
}

int meta_log_apply_entry(meta_image *img, int64_t offset, int32_t epoch, const uint8_t *data, size_t len,
                         char *err, size_t errlen)
{
    replay_ctx_t c = {.img = img, .err = err, .errlen = errlen};
    arena_init(&c.arena);
    int rc = epoch == 0 ? apply_record(&c, offset, data, len) : apply_round(&c, offset, data, len);
    arena_free(&c.arena);
    if (rc == 0)
        img->offset = MAX(img->offset, offset + 1);
    return rc;
}

void meta_round_init(meta_round_blob *b)
{
    buf_init(&b->body);
    b->count = 0;
}

void meta_round_add(meta_round_blob *b, const uint8_t *framed, size_t len)
{
    buf_put_uvarint(&b->body, len);
    buf_put(&b->body, framed, len);
    b->count++;
}

void meta_round_encode(const meta_round_blob *b, buf_t *out)
{
    CK_ASSERT(b->count > 0);
    buf_put_uvarint(out, b->count);
    buf_put(out, b->body.data, b->body.len);
}

void meta_round_free(meta_round_blob *b) { buf_free(&b->body); }
