/*
 * wire.c - message bodies through the generated codec, the pre-vote tag,
 * and log entries as record batches. Formats are described in wire.h.
 */
#include "raft/wire.h"

#include "base/util.h"
#include "proto/batch.h"

#include <stdio.h>
#include <string.h>

#define API_VOTE 52
#define API_BEGIN_QUORUM_EPOCH 53
#define API_END_QUORUM_EPOCH 54
#define API_FETCH 1
#define API_FETCH_SNAPSHOT 59
#define FETCH_VERSION 16 /* ReplicaState (v15+), topic ids (v13+) */
#define CONTROL_KEY_BYTES 4

raft_wire_api_t raft_wire_api(raft_msg_type_t type)
{
    static const raft_wire_api_t apis[RAFT_MSG_TYPE_COUNT] = {
        [RAFT_MSG_VOTE_REQ] = {API_VOTE, 0, false, &VoteRequest_desc},
        [RAFT_MSG_VOTE_RESP] = {API_VOTE, 0, true, &VoteResponse_desc},
        [RAFT_MSG_BEGIN_EPOCH_REQ] = {API_BEGIN_QUORUM_EPOCH, 0, false,
                                      &BeginQuorumEpochRequest_desc},
        [RAFT_MSG_BEGIN_EPOCH_RESP] = {API_BEGIN_QUORUM_EPOCH, 0, true,
                                       &BeginQuorumEpochResponse_desc},
        [RAFT_MSG_END_EPOCH_REQ] = {API_END_QUORUM_EPOCH, 0, false, &EndQuorumEpochRequest_desc},
        [RAFT_MSG_END_EPOCH_RESP] = {API_END_QUORUM_EPOCH, 0, true, &EndQuorumEpochResponse_desc},
        [RAFT_MSG_FETCH_REQ] = {API_FETCH, FETCH_VERSION, false, &FetchRequest_desc},
        [RAFT_MSG_FETCH_RESP] = {API_FETCH, FETCH_VERSION, true, &FetchResponse_desc},
        [RAFT_MSG_FETCH_SNAPSHOT_REQ] = {API_FETCH_SNAPSHOT, 0, false, &FetchSnapshotRequest_desc},
        [RAFT_MSG_FETCH_SNAPSHOT_RESP] = {API_FETCH_SNAPSHOT, 0, true,
                                          &FetchSnapshotResponse_desc},
    };
    CK_ASSERT((unsigned)type < RAFT_MSG_TYPE_COUNT);
    return apis[type];
}

/* ---- the pre-vote tag ----------------------------------------------------- */

/* A tagged-field section holding only the pre-vote field: count 1, tag,
 * size 1, value 1. */
static size_t prevote_section(uint8_t *t)
{
    size_t n = uvarint_put(t, 1);
    n += uvarint_put(t + n, RAFT_WIRE_PREVOTE_TAG);
    n += uvarint_put(t + n, 1);
    t[n++] = 1;
    return n;
}

/* A VoteRequest body with one topic, one partition and no tagged fields
 * ends with three empty tagged-field sections (one zero byte each): the
 * partition's, the topic's, the request's. The first gets the field. */
static void add_prevote(buf_t *w, size_t start)
{
    CK_ASSERT(w->len >= start + 3);
    const uint8_t *tail = w->data + w->len - 3;
    CK_ASSERT(tail[0] == 0 && tail[1] == 0 && tail[2] == 0);
    w->len -= 3;
    uint8_t t[32];
    size_t n = prevote_section(t);
    buf_put(w, t, n);
    buf_put_u8(w, 0);
    buf_put_u8(w, 0);
}

/* A body decodes to one topic and one partition; it carries the pre-vote
 * when it ends with that section followed by the two empty ones. */
static bool has_prevote(const uint8_t *body, size_t n)
{
    uint8_t t[34];
    size_t k = prevote_section(t);
    t[k++] = 0;
    t[k++] = 0;
    return n >= k && memcmp(body + n - k, t, k) == 0;
}

/* ---- bodies ----------------------------------------------------------------- */

void raft_wire_encode(const raft_msg_t *m, const raft_wire_topic_t *tp, arena_t *a, buf_t *w)
{
    raft_wire_api_t api = raft_wire_api(m->type);
    void *k = raft_wire_to_kafka(m, tp, a);
    size_t start = w->len;
    proto_encode(api.desc, api.version, proto_flexible(api.desc, api.version), k, w);
    if (m->type == RAFT_MSG_VOTE_REQ && m->u.vote_req.pre_vote)
        add_prevote(w, start);
}

int raft_wire_decode(raft_msg_type_t type, const uint8_t *body, size_t n,
                     const raft_wire_topic_t *tp, arena_t *a, raft_msg_t *out, char *why,
                     size_t why_len)
{
    raft_wire_api_t api = raft_wire_api(type);
    void *k = arena_alloc(a, api.desc->size);
    rd_t r;
    rd_init(&r, body, n);
    proto_err_t err;
    if (proto_decode(api.desc, api.version, proto_flexible(api.desc, api.version), &r, a, k,
                     &err) < 0) {
        char msg[PROTO_ERR_MSG_MAX];
        snprintf(why, why_len, "%s", proto_err_format(&err, msg, sizeof msg));
        return -1;
    }
    if (rd_left(&r)) {
        snprintf(why, why_len, "%zu bytes after the %s body", rd_left(&r), api.desc->name);
        return -1;
    }
    const char *w = NULL;
    if (!raft_wire_from_kafka(type, k, tp, a, out, &w)) {
        snprintf(why, why_len, "%s: %s", api.desc->name, w);
        return -1;
    }
    if (type == RAFT_MSG_VOTE_REQ)
        out->u.vote_req.pre_vote = has_prevote(body, n);
    return 0;
}

/* ---- records ------------------------------------------------------------------ */

static const uint8_t LEADER_CHANGE_KEY[CONTROL_KEY_BYTES] = {0, 0, 0,
                                                             RAFT_WIRE_CONTROL_LEADER_CHANGE};

void raft_wire_records_encode(const raft_entry_t *e, size_t n, buf_t *w)
{
    size_t i = 0;
    while (i < n) {
        bool control = e[i].kind == RAFT_ENTRY_LEADER_CHANGE;
        size_t j = i + 1;
        while (!control && j < n && j - i < RAFT_WIRE_BATCH_RECORDS_MAX &&
               e[j].kind == RAFT_ENTRY_DATA && e[j].epoch == e[i].epoch)
            j++;
        size_t start = w->len;
        batch_builder_t b;
        batch_build_begin(&b, w, e[i].offset, control ? BATCH_ATTR_CONTROL : 0, 0, -1, -1, -1);
        for (size_t k = i; k < j; k++) {
            CK_ASSERT(e[k].offset == e[i].offset + (int64_t)(k - i));
            if (control)
                batch_build_add(&b, 0, LEADER_CHANGE_KEY, CONTROL_KEY_BYTES, e[k].data,
                                (int32_t)e[k].len, NULL, 0);
            else
                batch_build_add(&b, 0, NULL, -1, e[k].data, (int32_t)e[k].len, NULL, 0);
        }
        batch_build_end(&b);
        batch_set_leader_epoch(w->data + start, e[i].epoch);
        i = j;
    }
}

/* Checks every whole batch; returns the bytes they cover and their records. */
static int scan_batches(const uint8_t *p, size_t n, size_t *covered, int64_t *records,
                        const char **why)
{
    size_t pos = 0;
    *records = 0;
    while (pos < n) {
        batch_info_t b;
        enum batch_err e = batch_parse_header(p + pos, n - pos, &b);
        if (e == BATCH_ERR_SHORT)
            break; /* a cut-off last batch */
        if (e != BATCH_OK || !batch_crc_ok(p + pos, b.size)) {
            *why = e != BATCH_OK ? batch_strerror(e) : "record batch CRC-32C mismatch";
            return -1;
        }
        if (b.codec != BATCH_CODEC_NONE || b.records_count < 0) {
            *why = "compressed record batches are not used by the metadata log";
            return -1;
        }
        *records += b.records_count;
        pos += b.size;
    }
    *covered = pos;
    return 0;
}

static bool record_entry(const batch_info_t *b, const batch_record_t *rec, raft_entry_t *e)
{
    if (b->control && (rec->key_len != CONTROL_KEY_BYTES ||
                       memcmp(rec->key, LEADER_CHANGE_KEY, CONTROL_KEY_BYTES) != 0))
        return false;
    *e = (raft_entry_t){.offset = rec->offset, .epoch = b->leader_epoch,
                        .kind = b->control ? RAFT_ENTRY_LEADER_CHANGE : RAFT_ENTRY_DATA,
                        .len = rec->value_len > 0 ? (uint32_t)rec->value_len : 0,
                        .data = rec->value_len > 0 ? rec->value : NULL};
    return true;
}

int raft_wire_records_decode(const uint8_t *p, size_t n, arena_t *a, const raft_entry_t **out,
                             size_t *count, const char **why)
{
    size_t covered;
    int64_t total;
    *out = NULL;
    *count = 0;
    if (scan_batches(p, n, &covered, &total, why) < 0)
        return -1;
    raft_entry_t *ents = total ? arena_alloc(a, (size_t)total * sizeof(*ents)) : NULL;
    size_t k = 0;
    for (size_t pos = 0; pos < covered;) {
        batch_iter_t it;
        batch_record_t rec;
        if (!batch_iter_init(&it, p + pos, covered - pos)) {
            *why = "unreadable record batch";
            return -1;
        }
        while (batch_iter_next(&it, &rec)) {
            if ((int64_t)k >= total || !record_entry(&it.info, &rec, &ents[k]) ||
                (k > 0 && ents[k].offset != ents[k - 1].offset + 1)) {
                *why = "records are not consecutive metadata log entries";
                return -1;
            }
            k++;
        }
        if (it.failed) {
            *why = "malformed record inside a batch";
            return -1;
        }
        pos += it.info.size;
    }
    *out = ents;
    *count = k;
    return 0;
}
