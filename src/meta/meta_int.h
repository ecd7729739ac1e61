/* meta_int.h - shared by the files of src/meta only. */
#ifndef CHRONIK_META_INT_H
#define CHRONIK_META_INT_H

#include "meta/meta.h"

/* Metadata record types (the schemas' apiKey). */
enum {
    META_REC_REGISTER_BROKER = 0,
    META_REC_TOPIC = 2,
    META_REC_PARTITION = 3,
    META_REC_CONFIG = 4,
    META_REC_PARTITION_CHANGE = 5,
    META_REC_REMOVE_TOPIC = 9,
    META_REC_PRODUCER_IDS = 15,
};
#define META_RESOURCE_TOPIC 2 /* ConfigRecord.ResourceType */
#define META_RESOURCE_BROKER 4
#define META_FRAME_VERSION 1

meta_image *meta_image_new(void);
meta_image *meta_image_copy(const meta_image *src);
/* Replays the metadata log (metalog.c) into img; -1 with the offset and
 * reason in err on the first record it cannot apply (a loud stop). */
int meta_log_replay(plog_t *log, meta_image *img, char *err, size_t errlen);
/* The same over whole record batches in memory (tests, fuzzing). */
int meta_log_replay_bytes(const uint8_t *p, size_t n, meta_image *img, char *err, size_t errlen);
/* Apply one decoded record (type = schema apiKey) to a private image. */
void meta_image_apply(meta_image *img, int16_t type, const void *rec);

#endif
