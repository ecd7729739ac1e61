/*
 * records.c - the records of __consumer_offsets, exactly Kafka's format,
 * and which of its partitions holds a group (group.h).
 *
 * Placement. A group lives in partition abs(hashCode(group_id)) mod N of
 * __consumer_offsets, where hashCode is Java's String.hashCode over the
 * UTF-16 code units of the id (s[0]*31^(n-1) + ... + s[n-1], 32-bit
 * wrapping) and abs is Kafka's Utils.abs (hashCode & 0x7fffffff). Ids come
 * as UTF-8 and are decoded first; a malformed byte counts as U+FFFD.
 *
 * Records. Every record is one record of an uncompressed v2 batch, with
 * both key and value framed as: int16 version (big-endian), then the body
 * of that version of the schema (the classic, non-flexible encoding below
 * version 4 of a value, the flexible one from 4 on):
 *
 *   key version  key schema                     value schema
 *   -----------  -----------------------------  ---------------------------
 *   0, 1         OffsetCommitKey(group, topic,   OffsetCommitValue v0-v4
 *                partition)                     (offset, leaderEpoch v3+,
 *                                               metadata, commitTimestamp,
 *                                               expireTimestamp v1 only)
 *   2            GroupMetadataKey(group)        GroupMetadataValue v0-v4
 *   3+           the consumer protocol of KIP-848: ignored here
 *
 * A record with a null value is a tombstone: the offset, or the group's
 * metadata, is deleted (and compaction may drop older records of that key).
 *
 * This coordinator writes key version 1 with value version 3 (version 1
 * when the commit carries an explicit expire timestamp), and key version 2
 * with GroupMetadataValue version 3 (static members need v3). It reads
 * every version the schemas define; a value newer than the newest known is
 * read as the newest (KIP-915: later versions only add tagged fields).
 */
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/util.h"
#include "group/group_int.h"
#include "proto/proto.h"

#define OFFSET_KEY_VERSION 1
#define OFFSET_VALUE_VERSION 3
#define OFFSET_VALUE_EXPIRE_VERSION 1
#define GROUP_KEY_VERSION 2
#define GROUP_VALUE_VERSION 3

/* ---- placement ----------------------------------------------------------------- */

/* The next code point of UTF-8 text; malformed input gives U+FFFD. */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t *i)
{
    uint8_t c = s[(*i)++];
    if (c < 0x80)
        return c;
    int extra = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
    if (extra < 0 || c >= 0xf5)
        return 0xfffd;
    uint32_t cp = c & (0x3fu >> extra);
    for (int k = 0; k < extra; k++) {
        if (*i >= n || (s[*i] & 0xc0) != 0x80)
            return 0xfffd;
        cp = cp << 6 | (s[(*i)++] & 0x3fu);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
        return 0xfffd;
    return cp;
}

int32_t group_rec_partition(const char *group_id, size_t len, int32_t npartitions)
{
    CK_ASSERT(npartitions > 0);
    const uint8_t *s = (const uint8_t *)group_id;
    uint32_t h = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = utf8_next(s, len, &i);
        if (cp >= 0x10000) {
            h = 31 * h + (0xd800 + ((cp - 0x10000) >> 10));
            h = 31 * h + (0xdc00 + ((cp - 0x10000) & 0x3ff));
        } else {
            h = 31 * h + cp;
        }
    }
    return (int32_t)((h & 0x7fffffffu) % (uint32_t)npartitions);
}

/* ---- encoding -------------------------------------------------------------------- */

static const uint8_t no_bytes[1];

static kbytes_t kbytes_of(const uint8_t *p, int32_t len)
{
    return len > 0 ? (kbytes_t){p, len} : (kbytes_t){no_bytes, 0};
}

void group_rec_offset_key(buf_t *out, const char *group_id, const char *topic, int32_t partition)
{
    OffsetCommitKey k = {.group = kstr_from(group_id), .topic = kstr_from(topic), .partition = partition};
    proto_versioned_encode(&OffsetCommitKey_desc, OFFSET_KEY_VERSION, &k, out);
}

void group_rec_offset_value(buf_t *out, const group_offset *o)
{
    int16_t v = o->expire_ts_ms >= 0 ? OFFSET_VALUE_EXPIRE_VERSION : OFFSET_VALUE_VERSION;
    OffsetCommitValue val;
    proto_set_defaults(&OffsetCommitValue_desc, v, &val);
    val.offset = o->offset;
    val.leaderEpoch = o->leader_epoch;
    val.metadata = kstr_from(o->metadata ? o->metadata : "");
    val.commitTimestamp = o->commit_ts_ms;
    val.expireTimestamp = o->expire_ts_ms;
    proto_versioned_encode(&OffsetCommitValue_desc, v, &val, out);
}

void group_rec_group_key(buf_t *out, const char *group_id)
{
    GroupMetadataKey k = {.group = kstr_from(group_id)};
    proto_versioned_encode(&GroupMetadataKey_desc, GROUP_KEY_VERSION, &k, out);
}

void group_rec_group_value(buf_t *out, const group *g, int64_t now_ms)
{
    GroupMetadataValue v;
    proto_set_defaults(&GroupMetadataValue_desc, GROUP_VALUE_VERSION, &v);
    v.protocolType = kstr_from(g->protocol_type ? g->protocol_type : "");
    v.generation = g->generation;
    v.protocol = kstr_from(g->protocol);
    v.leader = kstr_from(g->leader);
    v.currentStateTimestamp = g->state_ts_ms >= 0 ? g->state_ts_ms : now_ms;
    GroupMetadataValue_MemberMetadata *ms = xcalloc((size_t)MAX(g->nmembers, 1), sizeof *ms);
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member *m = g->members[i];
        int32_t len;
        const uint8_t *md = group_member_metadata(g, m, &len);
        proto_set_defaults(&GroupMetadataValue_MemberMetadata_desc, GROUP_VALUE_VERSION, &ms[i]);
        ms[i].memberId = kstr_from(m->id);
        ms[i].groupInstanceId = kstr_from(m->instance_id);
        ms[i].clientId = kstr_from(m->client_id);
        ms[i].clientHost = kstr_from(m->client_host);
        ms[i].rebalanceTimeout = m->rebalance_timeout_ms;
        ms[i].sessionTimeout = m->session_timeout_ms;
        ms[i].subscription = kbytes_of(md, len);
        ms[i].assignment = kbytes_of(m->assignment, m->assignment_len);
    }
    v.members = (GroupMetadataValue_MemberMetadata_array){g->nmembers, ms};
    proto_versioned_encode(&GroupMetadataValue_desc, GROUP_VALUE_VERSION, &v, out);
    free(ms);
}

/* ---- decoding ----------------------------------------------------------------------- */

static char *astr(arena_t *a, kstr_t s)
{
    return s.len < 0 ? NULL : arena_strndup(a, s.ptr ? s.ptr : "", (size_t)s.len);
}

static int decode_offset(const uint8_t *value, int32_t value_len, arena_t *a, group_rec *out)
{
    OffsetCommitValue v;
    if (proto_versioned_decode(&OffsetCommitValue_desc, value, value_len, a, &v) != 0)
        return -1;
    out->offset.offset = v.offset;
    out->offset.leader_epoch = v.leaderEpoch;
    out->offset.metadata = astr(a, v.metadata);
    if (!out->offset.metadata)
        out->offset.metadata = arena_strndup(a, "", 0);
    out->offset.commit_ts_ms = v.commitTimestamp;
    out->offset.expire_ts_ms = v.expireTimestamp;
    return 0;
}

static int decode_group(const uint8_t *value, int32_t value_len, arena_t *a, group_rec *out)
{
    GroupMetadataValue v;
    if (proto_versioned_decode(&GroupMetadataValue_desc, value, value_len, a, &v) != 0)
        return -1;
    out->protocol_type = astr(a, v.protocolType);
    out->protocol = astr(a, v.protocol);
    out->leader = astr(a, v.leader);
    out->generation = v.generation;
    out->state_ts_ms = v.currentStateTimestamp;
    out->nmembers = MAX(v.members.count, 0);
    out->members = arena_alloc(a, (size_t)MAX(out->nmembers, 1) * sizeof *out->members);
    for (int32_t i = 0; i < out->nmembers; i++) {
        const GroupMetadataValue_MemberMetadata *m = &v.members.items[i];
        group_loaded_member *lm = &out->members[i];
        lm->id = astr(a, m->memberId);
        lm->instance_id = astr(a, m->groupInstanceId);
        lm->client_id = astr(a, m->clientId);
        lm->client_host = astr(a, m->clientHost);
        lm->session_timeout_ms = m->sessionTimeout;
        lm->rebalance_timeout_ms = m->rebalanceTimeout;
        lm->subscription = m->subscription.ptr;
        lm->subscription_len = MAX(m->subscription.len, 0);
        lm->assignment = m->assignment.ptr;
        lm->assignment_len = MAX(m->assignment.len, 0);
        if (!lm->id)
            return -1;
    }
    return 0;
}

int group_rec_decode(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len,
                     struct arena *a, group_rec *out)
{
    memset(out, 0, sizeof *out);
    out->kind = GROUP_REC_OTHER;
    if (!key || key_len < 2)
        return -1;
    const proto_record_desc *rd = proto_group_record((int16_t)be16_load(key));
    if (!rd || (rd->desc != &OffsetCommitKey_desc && rd->desc != &GroupMetadataKey_desc))
        return 0;
    out->tombstone = value == NULL || value_len < 0;
    if (rd->desc == &OffsetCommitKey_desc) {
        OffsetCommitKey k;
        if (proto_versioned_decode(rd->desc, key, key_len, a, &k) != 0 || k.group.len < 0 || k.topic.len < 0)
            return -1;
        out->kind = GROUP_REC_OFFSET;
        out->group_id = astr(a, k.group);
        out->offset.topic = astr(a, k.topic);
        out->offset.partition = k.partition;
        return out->tombstone ? 0 : decode_offset(value, value_len, a, out);
    }
    GroupMetadataKey k;
    if (proto_versioned_decode(rd->desc, key, key_len, a, &k) != 0 || k.group.len < 0)
        return -1;
    out->kind = GROUP_REC_GROUP;
    out->group_id = astr(a, k.group);
    return out->tombstone ? 0 : decode_group(value, value_len, a, out);
}
