/* meta_int.h - shared by the files of src/meta only. */
#ifndef CHRONIK_META_INT_H
#define CHRONIK_META_INT_H

#include "meta/meta.h"

/* Metadata record types (the schemas' apiKey). */
enum {
    META_REC_REGISTER_BROKER = 0,
    META_REC_UNREGISTER_BROKER = 1,
    META_REC_TOPIC = 2,
    META_REC_PARTITION = 3,
    META_REC_CONFIG = 4,
    META_REC_PARTITION_CHANGE = 5,
    META_REC_FENCE_BROKER = 7,
    META_REC_UNFENCE_BROKER = 8,
    META_REC_REMOVE_TOPIC = 9,
    META_REC_PRODUCER_IDS = 15,
    META_REC_BROKER_REGISTRATION_CHANGE = 17,
};
#define META_RESOURCE_TOPIC 2 /* ConfigRecord.ResourceType */
#define META_RESOURCE_BROKER 4
#define META_FRAME_VERSION 1

meta_image *meta_image_new(void);
meta_image *meta_image_copy(const meta_image *src);
/* Apply one decoded record (type = schema apiKey) to a private image. */
void meta_image_apply(meta_image *img, int16_t type, const void *rec);
/* Whether broker id x is among v[0..n). */
static inline bool meta_ids_has(const int32_t *v, int32_t n, int32_t x)
{
    for (int32_t i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* Abort unless the image keeps its invariants (image.c's essay). */
void meta_image_check(const meta_image *img);

/* Sanitizer and checking builds re-check the invariants a record could break
 * after every apply (CHRONIK_CHECKS forces it on). */
#if defined(__SANITIZE_ADDRESS__) || defined(CHRONIK_CHECKS)
#define META_CHECKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define META_CHECKS 1
#endif
#endif
#ifndef META_CHECKS
#define META_CHECKS 0
#endif

/* ---- brokers (brokers.c) ------------------------------------------------- */

void meta_brokers_copy(meta_image *dst, const meta_image *src);
void meta_brokers_free(meta_image *img);
/* Apply a broker record (Register/Unregister/Fence/Unfence/RegistrationChange). */
void meta_brokers_apply(meta_image *img, int16_t type, const void *rec);
void meta_brokers_check(const meta_image *img);

/* Where the controller's logic writes records: emit encodes one record and
 * applies it to img (the round's private image) before returning, so the
 * next decision sees it. Tests plug in an emitter that only applies. */
typedef struct meta_writer {
    meta_image *img;
    void (*emit)(void *ctx, int16_t type, const proto_struct_desc *d, const void *rec);
    void *ctx;
} meta_writer;
void meta_write(const meta_writer *w, int16_t type, const proto_struct_desc *d, const void *rec);

/* What the controller remembers of each broker outside the image, as
 * Kafka's BrokerHeartbeatManager does: lost on a controller change, when
 * every broker's clock restarts from the first tick. */
typedef struct meta_liveness_entry {
    int32_t id;
    int64_t last_heartbeat_ms;
    int64_t register_offset;   /* metadata offset of its RegisterBrokerRecord */
} meta_liveness_entry;
typedef struct meta_liveness {
    int32_t n;
    meta_liveness_entry v[META_BROKERS_MAX]; /* sorted by id, registered brokers only */
} meta_liveness;

typedef struct meta_registration {
    int32_t id;
    kuuid_t incarnation;
    const char *host;
    uint16_t port;
    const char *rack;          /* NULL: none */
} meta_registration;

/* Register a broker (at most META_BROKERS_MAX are). A new broker or a new
 * incarnation gets the next broker epoch and comes up fenced; the same
 * incarnation again is a retry and gets its epoch back with nothing written. offset: where the round's next record
 * lands. Returns a Kafka error code; *epoch_out the broker epoch. */
int16_t meta_broker_register(const meta_writer *w, meta_liveness *lv, const meta_registration *reg,
                             int64_t offset, int64_t now_ms, int64_t *epoch_out, const char **msg);

typedef struct meta_heartbeat {
    int32_t id;
    int64_t epoch;
    int64_t metadata_offset;   /* how far the broker has applied the metadata log */
    bool wants_fence;
    bool wants_shutdown;
} meta_heartbeat;
typedef struct meta_heartbeat_reply {
    bool caught_up;
    bool fenced;
    bool should_shut_down;
} meta_heartbeat_reply;
int16_t meta_broker_heartbeat(const meta_writer *w, meta_liveness *lv, const meta_heartbeat *hb,
                              int64_t now_ms, meta_heartbeat_reply *out, const char **msg);

/* Fence every unfenced broker silent for longer than session_timeout_ms and
 * move its leaderships. Returns how many it fenced. */
int32_t meta_brokers_tick(const meta_writer *w, meta_liveness *lv, int64_t now_ms,
                          int64_t session_timeout_ms);

/* Fence broker id at epoch and move leadership off it (PartitionChangeRecords). */
void meta_broker_fence(const meta_writer *w, int32_t id, int64_t epoch);

/* ---- placement (placement.c) --------------------------------------------- */

/* Replicas for partitions [first, first + count) of a topic: out[i * rf + j]
 * is replica j of partition first + i, the first one its leader. With
 * assign (count arrays of nassign[i] ids) the assignment is validated and
 * copied; otherwise Kafka's striping over the unfenced brokers, from a start
 * drawn from seed. With no broker registered, every replica is node_id (rf
 * must be 1). out NULL: validate only. Placing [a, b) then [b, c) gives what
 * placing [a, c) does. Returns a Kafka error code, with a message in msg. */
int16_t meta_place_replicas(const meta_image *img, int32_t node_id, int32_t first, int32_t count,
                            int16_t rf, const meta_assignment *assign, uint64_t seed, int32_t *out,
                            char *msg, size_t msg_size);
/* Whether replica id may be in a new partition's ISR: an unfenced broker,
 * or this node when no broker is registered. */
bool meta_replica_live(const meta_image *img, int32_t node_id, int32_t id);

#endif
