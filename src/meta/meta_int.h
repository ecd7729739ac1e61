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

#endif
