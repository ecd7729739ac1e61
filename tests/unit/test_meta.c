/* test_meta.c - the metadata image: topics shared between versions and
 * partition changes. */
#include <stdlib.h>

#include "base/util.h"
#include "meta/meta.h"
#include "meta/meta_int.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

static kuuid_t uuid_of(uint8_t x)
{
    kuuid_t u;
    memset(u.b, x, sizeof u.b);
    return u;
}

/* A topic (id byte x) whose partitions have the given replicas; ISR =
 * replicas, leader the first. */
static void add_topic(meta_image *img, const char *name, uint8_t x, int32_t n, int32_t rf,
                      const int32_t *replicas)
{
    TopicRecord tr = {.Name = kstr_from(name), .TopicId = uuid_of(x)};
    meta_image_apply(img, META_REC_TOPIC, &tr);
    for (int32_t p = 0; p < n; p++) {
        PartitionRecord pr;
        proto_set_defaults(&PartitionRecord_desc, 0, &pr);
        pr.TopicId = tr.TopicId;
        pr.PartitionId = p;
        pr.Replicas = (kint32_array_t){rf, (int32_t *)&replicas[p * rf]};
        pr.Isr = pr.Replicas;
        pr.Leader = replicas[p * rf];
        pr.LeaderEpoch = 0;
        pr.PartitionEpoch = 0;
        meta_image_apply(img, META_REC_PARTITION, &pr);
    }
    meta_image_check(img);
}

static const meta_partition *part(const meta_image *img, const char *topic, int32_t p)
{
    const meta_topic *t = meta_image_topic(img, topic, strlen(topic));
    CK_ASSERT(t && p < t->npartitions);
    return &t->partitions[p];
}

/* ---- image versions -------------------------------------------------------- */

/* A new version shares the topics it does not change; a change copies only
 * that topic and leaves the older version as it was. */
TEST(unchanged_topics_shared)
{
    meta_image *v1 = meta_image_new();
    int32_t reps[] = {1, 2, 2, 3};
    add_topic(v1, "a", 0xa, 2, 2, reps);
    add_topic(v1, "b", 0xb, 2, 2, reps);
    meta_image *v2 = meta_image_copy(v1);
    CHECK(v2->topics[0] == v1->topics[0] && v2->topics[1] == v1->topics[1]);
    PartitionChangeRecord pc;
    proto_set_defaults(&PartitionChangeRecord_desc, 0, &pc);
    pc.TopicId = uuid_of(0xa);
    pc.PartitionId = 1;
    pc.Leader = 3;
    meta_image_apply(v2, META_REC_PARTITION_CHANGE, &pc);
    meta_image_check(v2);
    CHECK(v2->topics[0] != v1->topics[0] && v2->topics[1] == v1->topics[1]);
    CHECK(part(v1, "a", 1)->leader == 2 && part(v1, "a", 1)->leader_epoch == 0);
    CHECK(part(v2, "a", 1)->leader == 3 && part(v2, "a", 1)->leader_epoch == 1);
    CHECK(part(v2, "a", 1)->partition_epoch == 1 && part(v2, "a", 0)->partition_epoch == 0);
    /* A change to a topic the private image already owns changes it in place. */
    meta_topic *owned = v2->topics[0];
    pc.Leader = -2;
    int32_t isr[] = {3};
    pc.Isr = (kint32_array_t){1, isr};
    meta_image_apply(v2, META_REC_PARTITION_CHANGE, &pc);
    CHECK(v2->topics[0] == owned && part(v2, "a", 1)->nisr == 1 &&
          part(v2, "a", 1)->leader_epoch == 1);
    meta_image_release(v1); /* v2's shared topic b outlives v1 */
    CHECK(part(v2, "b", 1)->leader == 2);
    meta_image *v3 = meta_image_copy(v2);
    RemoveTopicRecord rm = {.TopicId = uuid_of(0xb)};
    meta_image_apply(v3, META_REC_REMOVE_TOPIC, &rm);
    CHECK(v3->ntopics == 1 && meta_image_topic(v2, "b", 1) != NULL);
    meta_image_release(v2);
    meta_image_release(v3);
}
