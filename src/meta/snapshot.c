/*
 * snapshot.c - metadata snapshots: the committed image written as metadata
 * records, so that a node starts from its newest snapshot and replays only
 * the log above it, and a replica too far behind the leader's log start
 * installs the leader's snapshot (FetchSnapshot) instead of the log.
 *
 * FILES
 * =====
 * DATA_DIR/__cluster_metadata-0/<end offset, 20 digits>-<epoch, 10 digits>.checkpoint
 * (Kafka's naming): the image of every entry below the end offset; the
 * epoch is that of the entry at end offset - 1 (the Raft snapshot id). A
 * file is written to <name>.tmp, fsynced, renamed, and the directory
 * fsynced (sfs_write_atomic), so a name only ever holds a whole file; a
 * leftover .tmp is deleted when the log is opened. A file found bad is
 * renamed to <name>.bad and never read again.
 *
 * PAYLOAD (the file's bytes, and exactly the bytes FetchSnapshot carries)
 * =======
 *     offset  size  field
 *          0     8  magic "CHRNKSNP"
 *          8     4  format version, big-endian: 1
 *         12     4  reserved, 0
 *         16     8  end offset (must equal the id's)
 *         24     8  wall-clock ms when the snapshot was taken
 *         32     8  body length N
 *         40     N  body: empty (an empty image), or a round exactly as
 *                   metalog.c lays one out: uvarint count, then count x
 *                   (uvarint length, framed metadata record)
 *     40 + N     4  CRC-32C of bytes [0, 40 + N)
 *
 * The records, in this order: RegisterBrokerRecord v1 per broker (with its
 * epoch, every endpoint, Fenced and InControlledShutdown), ConfigRecord per dynamic broker
 * config, then per topic a TopicRecord, a PartitionRecord per partition
 * (leader, epochs, replicas, ISR as the image has them) and a ConfigRecord
 * per override, an AccessControlEntryRecord per ACL (its id kept), a
 * UserScramCredentialRecord per SCRAM credential, a ClientQuotaRecord per
 * value of each quota entity, and last
 * a ProducerIdsRecord when ids were handed out.
 * The image's next broker epoch is rebuilt as the largest registered
 * epoch + 1 (Chronik never writes UnregisterBrokerRecord, so that is
 * what it is); an image where it is not is not snapshotted (an error).
 *
 * VALIDITY AND LOADING
 * ====================
 * A payload is valid when its length is 44 + N, magic, version, reserved
 * and end offset match, the CRC matches, and every record applies (the
 * same checks as a log entry, metalog.c). A version this build does not
 * know is not skipped but bad. At start (quorum.c) the node takes the
 * newest snapshot that is valid and that the log reaches (the log's start
 * offset is at or below its end offset); a bad one is reported loudly and
 * set aside, and the next older one plus the log is used. The log is
 * trimmed only below the older of the two snapshots kept, so one bad file
 * costs nothing. With no usable snapshot and a log that does not start at
 * 0 the node does not start: it never serves an image with a hole in it.
 * An installed (fetched) snapshot is checked the same way before anything
 * on disk changes; a bad one stops the node.
 *
 * INVARIANTS
 *   1. decode(encode(img)) reproduces img (topics, partitions, configs,
 *      brokers, producer ids, broker epochs) at offset end.
 *   2. A file name never holds a partial payload.
 *   3. At most META_SNAPSHOT_KEEP snapshots are kept, none below the log
 *      start (unusable).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"

#define SNAP_MAGIC "CHRNKSNP"
#define SNAP_VERSION 1
#define SNAP_HEADER_BYTES 40
#define SNAP_TRAILER_BYTES 4
#define SNAP_SUFFIX ".checkpoint"
#define SNAP_NAME_LEN (20 + 1 + 10 + 11)
_Static_assert(sizeof(SNAP_MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(SNAP_HEADER_BYTES == 8 + 4 + 4 + 8 + 8 + 8, "header layout");

/* ---- encoding the image ---------------------------------------------------- */

typedef struct snap_enc {
    meta_round_blob blob;
    buf_t v;
} snap_enc_t;

static void put_record(snap_enc_t *e, int16_t type, int16_t version, const proto_struct_desc *d, const void *rec)
{
    buf_reset(&e->v);
    buf_put_uvarint(&e->v, META_FRAME_VERSION);
    buf_put_uvarint(&e->v, (uint64_t)type);
    buf_put_uvarint(&e->v, (uint64_t)version);
    proto_encode(d, version, true, rec, &e->v);
    meta_round_add(&e->blob, e->v.data, e->v.len);
}

static void put_broker(snap_enc_t *e, const meta_broker *b)
{
    RegisterBrokerRecord rr;
    proto_set_defaults(&RegisterBrokerRecord_desc, 1, &rr);
    RegisterBrokerRecord_BrokerEndpoint *eps = xcalloc((size_t)MAX(b->nendpoints, 1), sizeof *eps);
    rr.BrokerId = b->id;
    rr.IncarnationId = b->incarnation;
    rr.BrokerEpoch = b->epoch;
    rr.EndPoints = meta_endpoints_to_record(b->endpoints, b->nendpoints, eps);
    rr.Features = (RegisterBrokerRecord_BrokerFeature_array){0, NULL};
    rr.Rack = kstr_from(b->rack);
    rr.Fenced = b->fenced;
    rr.InControlledShutdown = b->in_controlled_shutdown;
    put_record(e, META_REC_REGISTER_BROKER, 1, &RegisterBrokerRecord_desc, &rr);
    free(eps);
}

static void put_config(snap_enc_t *e, int8_t type, const char *resource, const char *key, const char *value)
{
    ConfigRecord cr = {.ResourceType = type, .ResourceName = kstr_from(resource), .Name = kstr_from(key),
                       .Value = kstr_from(value)};
    put_record(e, META_REC_CONFIG, 0, &ConfigRecord_desc, &cr);
}

static void put_partition(snap_enc_t *e, const kuuid_t *id, const meta_partition *p)
{
    PartitionRecord pr;
    proto_set_defaults(&PartitionRecord_desc, 0, &pr);
    pr.PartitionId = p->index;
    pr.TopicId = *id;
    pr.Replicas = (kint32_array_t){p->nreplicas, p->replicas};
    pr.Isr = (kint32_array_t){p->nisr, p->isr};
    pr.RemovingReplicas = (kint32_array_t){0, NULL};
    pr.AddingReplicas = (kint32_array_t){0, NULL};
    pr.Leader = p->leader;
    pr.LeaderEpoch = p->leader_epoch;
    pr.PartitionEpoch = p->partition_epoch;
    put_record(e, META_REC_PARTITION, 0, &PartitionRecord_desc, &pr);
}

static void put_topic(snap_enc_t *e, const meta_topic *t)
{
    TopicRecord tr = {.Name = kstr_from(t->name), .TopicId = t->id};
    put_record(e, META_REC_TOPIC, 0, &TopicRecord_desc, &tr);
    for (int32_t i = 0; i < t->npartitions; i++)
        put_partition(e, &t->id, &t->partitions[i]);
    for (int32_t i = 0; i < t->nconfigs; i++)
        put_config(e, META_RESOURCE_TOPIC, t->name, t->configs[i].key, t->configs[i].value);
}

static void put_quota(void *ctx, const ClientQuotaRecord *r)
{
    put_record(ctx, META_REC_CLIENT_QUOTA, 0, &ClientQuotaRecord_desc, r);
}

static int64_t max_broker_epoch(const meta_image *img)
{
    int64_t m = -1;
    for (int32_t i = 0; i < img->nbrokers; i++)
        m = MAX(m, img->brokers[i].epoch);
    return m;
}

static void put_scram(void *ctx, const UserScramCredentialRecord *r)
{
    put_record(ctx, META_REC_USER_SCRAM_CREDENTIAL, 0, &UserScramCredentialRecord_desc, r);
}

int meta_snapshot_encode(const meta_image *img, int64_t created_ms, buf_t *out, char *err, size_t errlen)
{
    if (img->next_broker_epoch != max_broker_epoch(img) + 1 && !(img->nbrokers == 0 && img->next_broker_epoch == 0)) {
        snprintf(err, errlen, "next broker epoch %" PRId64 " is not the largest registered epoch + 1",
                 img->next_broker_epoch);
        return -1;
    }
    snap_enc_t e;
    meta_round_init(&e.blob);
    buf_init(&e.v);
    for (int32_t i = 0; i < img->nbrokers; i++)
        put_broker(&e, &img->brokers[i]);
    for (int32_t i = 0; i < img->nbroker_configs; i++) {
        const meta_broker_config *c = &img->broker_configs[i];
        put_config(&e, META_RESOURCE_BROKER, c->resource, c->key, c->value);
    }
    for (int32_t i = 0; i < img->ntopics; i++)
        put_topic(&e, img->topics[i]);
    for (int32_t i = 0; i < acl_set_count(img->acls); i++) {
        AccessControlEntryRecord ar;
        meta_acl_record(acl_set_at(img->acls, i), &ar);
        put_record(&e, META_REC_ACCESS_CONTROL_ENTRY, 0, &AccessControlEntryRecord_desc, &ar);
    }
    meta_scram_each_record(img, put_scram, &e);
    meta_quotas_put(img, put_quota, &e);
    if (img->next_producer_id > 0) {
        ProducerIdsRecord pr = {.BrokerId = -1, .BrokerEpoch = -1, .NextProducerId = img->next_producer_id};
        put_record(&e, META_REC_PRODUCER_IDS, 0, &ProducerIdsRecord_desc, &pr);
    }
    buf_t body;
    buf_init(&body);
    if (e.blob.count > 0)
        meta_round_encode(&e.blob, &body);
    buf_reset(out);
    uint8_t *h = buf_extend(out, SNAP_HEADER_BYTES);
    memcpy(h, SNAP_MAGIC, 8);
    be32_store(h + 8, SNAP_VERSION);
    be32_store(h + 12, 0);
    be64_store(h + 16, (uint64_t)img->offset);
    be64_store(h + 24, (uint64_t)created_ms);
    be64_store(h + 32, (uint64_t)body.len);
    buf_put(out, body.data, body.len);
    uint32_t crc = crc32c(0, out->data, out->len);
    be32_store(buf_extend(out, SNAP_TRAILER_BYTES), crc);
    buf_free(&body);
    buf_free(&e.v);
    meta_round_free(&e.blob);
    return 0;
}

/* ---- decoding -------------------------------------------------------------- */

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "%s", what);
    return -1;
}

/* The header and CRC checks; *body and *n the round inside. */
static int check_frame(const uint8_t *p, size_t len, int64_t end_offset, const uint8_t **body, size_t *n,
                       int64_t *created_ms, char *err, size_t errlen)
{
    if (len < SNAP_HEADER_BYTES + SNAP_TRAILER_BYTES)
        return bad(err, errlen, "shorter than a snapshot header (torn?)");
    if (memcmp(p, SNAP_MAGIC, 8) != 0)
        return bad(err, errlen, "not a metadata snapshot (bad magic)");
    if (be32_load(p + 8) != SNAP_VERSION) {
        snprintf(err, errlen, "snapshot format version %" PRIu32 " not supported by this build", be32_load(p + 8));
        return -1;
    }
    if (be32_load(p + 12) != 0)
        return bad(err, errlen, "reserved header field not 0");
    if ((int64_t)be64_load(p + 16) != end_offset) {
        snprintf(err, errlen, "holds end offset %" PRId64 ", named %" PRId64, (int64_t)be64_load(p + 16), end_offset);
        return -1;
    }
    uint64_t blen = be64_load(p + 32);
    if (blen != len - SNAP_HEADER_BYTES - SNAP_TRAILER_BYTES)
        return bad(err, errlen, "length does not match its header (torn?)");
    if (crc32c(0, p, len - SNAP_TRAILER_BYTES) != be32_load(p + len - SNAP_TRAILER_BYTES))
        return bad(err, errlen, "CRC mismatch");
    *body = p + SNAP_HEADER_BYTES;
    *n = (size_t)blen;
    if (created_ms)
        *created_ms = (int64_t)be64_load(p + 24);
    return 0;
}

int meta_snapshot_decode(const uint8_t *p, size_t len, int64_t end_offset, meta_image **out, int64_t *created_ms,
                         char *err, size_t errlen)
{
    *out = NULL;
    const uint8_t *body;
    size_t n;
    if (end_offset <= 0)
        return bad(err, errlen, "snapshot end offset must be positive");
    if (check_frame(p, len, end_offset, &body, &n, created_ms, err, errlen) != 0)
        return -1;
    meta_image *img = meta_image_new();
    if (n > 0 && meta_log_apply_entry(img, end_offset - 1, 1, body, n, err, errlen) != 0) {
        meta_image_release(img);
        return -1;
    }
    img->offset = end_offset;
    meta_image_check(img);
    *out = img;
    return 0;
}

/* ---- files ----------------------------------------------------------------- */

void meta_snapshot_name(char *out, size_t n, raft_snapshot_id_t id)
{
    snprintf(out, n, "%020" PRId64 "-%010" PRId32 SNAP_SUFFIX, id.end_offset, id.epoch);
}

static bool parse_name(const char *name, raft_snapshot_id_t *id)
{
    if (strlen(name) != SNAP_NAME_LEN || name[20] != '-' || strcmp(name + 31, SNAP_SUFFIX) != 0)
        return false;
    int64_t end = 0, epoch = 0;
    for (int i = 0; i < 31; i++) {
        if (i == 20)
            continue;
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (i < 20)
            end = end * 10 + (name[i] - '0');
        else
            epoch = epoch * 10 + (name[i] - '0');
    }
    if (end <= 0 || end > INT64_MAX / 2 || epoch > INT32_MAX)
        return false;
    *id = (raft_snapshot_id_t){.end_offset = end, .epoch = (int32_t)epoch};
    return true;
}

typedef struct snap_listing {
    raft_snapshot_id_t *ids;
    int n, max;
} snap_listing_t;

static int list_one(void *arg, const char *name, bool is_dir)
{
    snap_listing_t *l = arg;
    raft_snapshot_id_t id;
    if (!is_dir && l->n < l->max && parse_name(name, &id))
        l->ids[l->n++] = id;
    return 0;
}

static int cmp_newest_first(const void *a, const void *b)
{
    const raft_snapshot_id_t *x = a, *y = b;
    if (x->end_offset != y->end_offset)
        return x->end_offset > y->end_offset ? -1 : 1;
    return x->epoch > y->epoch ? -1 : x->epoch < y->epoch;
}

int meta_snapshot_list(sfs_t *fs, const char *dir, raft_snapshot_id_t *ids, int max)
{
    snap_listing_t l = {.ids = ids, .max = max};
    int r = fs->readdir(fs, dir, list_one, &l);
    if (r < 0)
        return r;
    qsort(ids, (size_t)l.n, sizeof *ids, cmp_newest_first);
    return l.n;
}

int meta_snapshot_write(sfs_t *fs, const char *dir, raft_snapshot_id_t id, const uint8_t *p, size_t len)
{
    char name[64];
    meta_snapshot_name(name, sizeof name, id);
    return sfs_write_atomic(fs, dir, name, p, len);
}

int meta_snapshot_read(sfs_t *fs, const char *dir, raft_snapshot_id_t id, uint8_t **out, size_t *len)
{
    char path[STORAGE_PATH_MAX + 64], name[64];
    meta_snapshot_name(name, sizeof name, id);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data;
    int r = sfs_read_small(fs, path, RAFT_SNAPSHOT_BYTES_MAX, &data, len);
    *out = r == 0 ? (uint8_t *)data : NULL;
    return r;
}

void meta_snapshot_set_aside(sfs_t *fs, const char *dir, raft_snapshot_id_t id)
{
    char from[STORAGE_PATH_MAX + 64], to[STORAGE_PATH_MAX + 68], name[64];
    meta_snapshot_name(name, sizeof name, id);
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s.bad", from);
    int r = fs->rename(fs, from, to);
    if (r == 0)
        r = fs->fsync_dir(fs, dir);
    log_error("meta", "metadata snapshot set aside path=%s result=\"%s\"", to, r == 0 ? "ok" : strerror(-r));
}

int meta_snapshot_prune(sfs_t *fs, const char *dir, int keep, int64_t min_end)
{
    raft_snapshot_id_t ids[META_SNAPSHOT_LIST_MAX];
    int n = meta_snapshot_list(fs, dir, ids, META_SNAPSHOT_LIST_MAX), removed = 0;
    for (int i = 0; i < n; i++) {
        if (i < keep && ids[i].end_offset >= min_end)
            continue;
        char path[STORAGE_PATH_MAX + 64], name[64];
        meta_snapshot_name(name, sizeof name, ids[i]);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (fs->unlink(fs, path) == 0)
            removed++;
    }
    if (removed)
        fs->fsync_dir(fs, dir);
    return removed;
}

int64_t meta_snapshot_created_ms(const uint8_t *p, size_t len)
{
    return len >= SNAP_HEADER_BYTES && memcmp(p, SNAP_MAGIC, 8) == 0 ? (int64_t)be64_load(p + 24) : -1;
}
