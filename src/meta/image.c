/* image.c - the metadata image: lookups, copies, and applying metadata
 * records to a private copy before it is published (meta.h).
 *
 * Sharing. A new image version starts as meta_image_copy of the last one,
 * which copies the arrays of topic pointers and brokers but not the topics:
 * each topic is reference-counted and shared by every version that has not
 * changed it. A record that changes a topic (PartitionRecord,
 * PartitionChangeRecord, ConfigRecord) first makes the private image's
 * reference its own (topic_own: a deep copy when another version shares it),
 * so a published image never changes under a reader. This is Kafka's
 * TopicsImage/MetadataDelta model: a change costs the topics it touches,
 * not the whole image.
 *
 * Invariants (meta_image_check; checking builds re-check after every apply
 * the ones the record could break):
 *   1. topics are sorted by name, unique, and each has refs >= 1;
 *   2. a partition's index is its position and its replicas are unique;
 *   3. the ISR is a subset of the replicas;
 *   4. the leader is -1 or a member of the ISR;
 *   6. adding and removing replicas are disjoint subsets of the replicas;
 *   5. brokers are sorted by id and unique (brokers.c);
 *   7. the ACL set's indexes agree with its ACLs (acl_set_check); the set
 *      is shared between versions like a topic (acls.c).
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"

static int cmp_topic(const void *a, const void *b)
{
    return strcmp((*(meta_topic *const *)a)->name, (*(meta_topic *const *)b)->name);
}

const meta_topic *meta_image_topic(const meta_image *img, const char *name, size_t len)
{
    int32_t lo = 0, hi = img->ntopics - 1;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        const char *n = img->topics[mid]->name;
        size_t nlen = strlen(n); /* name may hold a NUL: compare lengths, not terminators */
        int c = memcmp(n, name, MIN(nlen, len));
        if (c == 0)
            c = nlen < len ? -1 : nlen > len ? 1 : 0;
        if (c == 0)
            return img->topics[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const meta_topic *meta_image_topic_by_id(const meta_image *img, const kuuid_t *id)
{
    for (int32_t i = 0; i < img->ntopics; i++)
        if (memcmp(img->topics[i]->id.b, id->b, 16) == 0)
            return img->topics[i];
    return NULL;
}

const char *meta_topic_config(const meta_topic *t, const char *key)
{
    for (int32_t i = 0; i < t->nconfigs; i++)
        if (strcmp(t->configs[i].key, key) == 0)
            return t->configs[i].value;
    return NULL;
}

static int32_t *dup_ints(const int32_t *v, int32_t n)
{
    int32_t *out = xmalloc((size_t)(n ? n : 1) * sizeof *out);
    if (n)
        memcpy(out, v, (size_t)n * sizeof *out);
    return out;
}

static void partition_copy(meta_partition *dst, const meta_partition *src)
{
    *dst = *src;
    dst->replicas = dup_ints(src->replicas, src->nreplicas);
    dst->isr = dup_ints(src->isr, src->nisr);
    dst->adding = dup_ints(src->adding, src->nadding);
    dst->removing = dup_ints(src->removing, src->nremoving);
}

static void partition_free(meta_partition *p)
{
    free(p->replicas);
    free(p->isr);
    free(p->adding);
    free(p->removing);
}

static meta_topic *topic_copy(const meta_topic *t)
{
    meta_topic *c = xcalloc(1, sizeof *c);
    atomic_store(&c->refs, 1);
    c->name = xstrdup(t->name);
    c->id = t->id;
    c->npartitions = t->npartitions;
    c->partitions = xcalloc((size_t)(t->npartitions ? t->npartitions : 1), sizeof *c->partitions);
    for (int32_t i = 0; i < t->npartitions; i++)
        partition_copy(&c->partitions[i], &t->partitions[i]);
    c->nconfigs = t->nconfigs;
    c->configs = xcalloc((size_t)(t->nconfigs ? t->nconfigs : 1), sizeof *c->configs);
    for (int32_t i = 0; i < t->nconfigs; i++) {
        c->configs[i].key = xstrdup(t->configs[i].key);
        c->configs[i].value = xstrdup(t->configs[i].value);
    }
    return c;
}

static void topic_free(meta_topic *t)
{
    for (int32_t i = 0; i < t->npartitions; i++)
        partition_free(&t->partitions[i]);
    for (int32_t i = 0; i < t->nconfigs; i++) {
        free(t->configs[i].key);
        free(t->configs[i].value);
    }
    free(t->partitions);
    free(t->configs);
    free(t->name);
    free(t);
}

/* Drop one image's reference; the last frees the topic. */
static void topic_unref(meta_topic *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1)
        topic_free(t);
}

/* The private image's topic i, made its own before a change: a topic other
 * versions share is replaced by a deep copy (invariant: published topics
 * never change). Only the controller thread holds a private image, and only
 * a private image takes new references, so refs == 1 stays 1. */
static meta_topic *topic_own(meta_image *img, int32_t i)
{
    meta_topic *t = img->topics[i];
    if (atomic_load(&t->refs) == 1)
        return t;
    meta_topic *c = topic_copy(t);
    topic_unref(t);
    img->topics[i] = c;
    return c;
}

meta_image *meta_image_new(void)
{
    meta_image *img = xcalloc(1, sizeof *img);
    atomic_store(&img->refs, 1);
    img->topics = xcalloc(1, sizeof *img->topics);
    return img;
}

static void broker_configs_copy(meta_image *img, const meta_image *src)
{
    img->nbroker_configs = src->nbroker_configs;
    img->broker_configs = xcalloc((size_t)(src->nbroker_configs ? src->nbroker_configs : 1),
                                  sizeof *img->broker_configs);
    for (int32_t i = 0; i < src->nbroker_configs; i++) {
        const meta_broker_config *c = &src->broker_configs[i];
        img->broker_configs[i] = (meta_broker_config){xstrdup(c->resource), xstrdup(c->key), xstrdup(c->value)};
    }
}

static void broker_config_free(meta_broker_config *c)
{
    free(c->resource);
    free(c->key);
    free(c->value);
}

meta_image *meta_image_copy(const meta_image *src)
{
    meta_image *img = xcalloc(1, sizeof *img);
    atomic_store(&img->refs, 1);
    img->offset = src->offset;
    img->next_producer_id = src->next_producer_id;
    img->ntopics = src->ntopics;
    img->topics = xcalloc((size_t)(src->ntopics ? src->ntopics : 1), sizeof *img->topics);
    for (int32_t i = 0; i < src->ntopics; i++) {
        img->topics[i] = src->topics[i];
        atomic_fetch_add(&img->topics[i]->refs, 1);
    }
    broker_configs_copy(img, src);
    meta_brokers_copy(img, src);
    img->acls = acl_set_ref(src->acls);
    img->scram = meta_scram_ref(src->scram);
    img->quotas = meta_quotas_ref(src->quotas);
    return img;
}

void meta_image_release(meta_image *img)
{
    if (!img || atomic_fetch_sub(&img->refs, 1) != 1)
        return;
    for (int32_t i = 0; i < img->ntopics; i++)
        topic_unref(img->topics[i]);
    meta_brokers_free(img);
    acl_set_unref(img->acls);
    meta_scram_unref(img->scram);
    meta_quotas_unref(img->quotas);
    for (int32_t i = 0; i < img->nbroker_configs; i++)
        broker_config_free(&img->broker_configs[i]);
    free(img->broker_configs);
    free(img->topics);
    free(img);
}

/* The private image's own copy of topic id, or NULL. */
static meta_topic *own_by_id(meta_image *img, const kuuid_t *id)
{
    for (int32_t i = 0; i < img->ntopics; i++)
        if (memcmp(img->topics[i]->id.b, id->b, 16) == 0)
            return topic_own(img, i);
    return NULL;
}

/* A TopicRecord naming a topic the image has (by name or id) changes
 * nothing: the controller never writes one, and two topics of one name
 * would break every lookup (invariant 1). Nor does one whose name holds a
 * NUL (the controller never writes one either: names are checked first). */
static void apply_topic(meta_image *img, const TopicRecord *r)
{
    if (r->Name.len <= 0 || memchr(r->Name.ptr, 0, (size_t)r->Name.len) ||
        meta_image_topic(img, r->Name.ptr, (size_t)r->Name.len) ||
        meta_image_topic_by_id(img, &r->TopicId))
        return;
    meta_topic *t = xcalloc(1, sizeof *t);
    atomic_store(&t->refs, 1);
    t->name = xstrndup(r->Name.ptr, (size_t)r->Name.len);
    t->id = r->TopicId;
    t->partitions = xcalloc(1, sizeof *t->partitions);
    t->configs = xcalloc(1, sizeof *t->configs);
    img->topics = xrealloc(img->topics, (size_t)(img->ntopics + 1) * sizeof *img->topics);
    img->topics[img->ntopics++] = t;
    qsort(img->topics, (size_t)img->ntopics, sizeof *img->topics, cmp_topic);
}

static void apply_partition(meta_image *img, const PartitionRecord *r)
{
    if (r->PartitionId < 0 || r->PartitionId >= META_PARTITIONS_MAX)
        return;
    meta_topic *t = own_by_id(img, &r->TopicId);
    if (!t || r->PartitionId < 0 || r->PartitionId >= META_PARTITIONS_MAX)
        return;
    if (r->PartitionId >= t->npartitions) {
        t->partitions = xrealloc(t->partitions, (size_t)(r->PartitionId + 1) * sizeof *t->partitions);
        memset(t->partitions + t->npartitions, 0,
               (size_t)(r->PartitionId + 1 - t->npartitions) * sizeof *t->partitions);
        for (int32_t i = t->npartitions; i < r->PartitionId; i++)
            t->partitions[i] = (meta_partition){.index = i, .leader = -1}; /* a gap, for now */
        t->npartitions = r->PartitionId + 1;
    }
    meta_partition *p = &t->partitions[r->PartitionId];
    partition_free(p);
    p->index = r->PartitionId;
    p->leader = r->Leader;
    p->leader_epoch = r->LeaderEpoch;
    p->partition_epoch = r->PartitionEpoch;
    p->nreplicas = r->Replicas.count > 0 ? r->Replicas.count : 0;
    p->replicas = dup_ints(r->Replicas.items, p->nreplicas);
    p->nisr = r->Isr.count > 0 ? r->Isr.count : 0;
    p->isr = dup_ints(r->Isr.items, p->nisr);
    p->nadding = MAX(r->AddingReplicas.count, 0);
    p->adding = dup_ints(r->AddingReplicas.items, p->nadding);
    p->nremoving = MAX(r->RemovingReplicas.count, 0);
    p->removing = dup_ints(r->RemovingReplicas.items, p->nremoving);
}

static void set_ints(int32_t **v, int32_t *n, kint32_array_t a)
{
    free(*v);
    *n = a.count;
    *v = dup_ints(a.items, a.count);
}

/* Kafka's PartitionRegistration.merge: null fields and leader -2 mean "no
 * change"; a new leader bumps the leader epoch; every change bumps the
 * partition epoch. */
static void apply_partition_change(meta_image *img, const PartitionChangeRecord *r)
{
    const meta_topic *shared = meta_image_topic_by_id(img, &r->TopicId);
    if (!shared || r->PartitionId < 0 || r->PartitionId >= shared->npartitions)
        return;
    meta_topic *t = own_by_id(img, &r->TopicId);
    meta_partition *p = &t->partitions[r->PartitionId];
    if (r->Replicas.count >= 0)
        set_ints(&p->replicas, &p->nreplicas, r->Replicas);
    if (r->Isr.count >= 0)
        set_ints(&p->isr, &p->nisr, r->Isr);
    if (r->AddingReplicas.count >= 0)
        set_ints(&p->adding, &p->nadding, r->AddingReplicas);
    if (r->RemovingReplicas.count >= 0)
        set_ints(&p->removing, &p->nremoving, r->RemovingReplicas);
    if (r->Leader != -2 && r->Leader != p->leader) {
        p->leader = r->Leader;
        p->leader_epoch++;
    }
    p->partition_epoch++;
}

static void apply_remove_topic(meta_image *img, const RemoveTopicRecord *r)
{
    for (int32_t i = 0; i < img->ntopics; i++) {
        if (memcmp(img->topics[i]->id.b, r->TopicId.b, 16) != 0)
            continue;
        topic_unref(img->topics[i]);
        memmove(&img->topics[i], &img->topics[i + 1], (size_t)(img->ntopics - i - 1) * sizeof *img->topics);
        img->ntopics--;
        return;
    }
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const meta_config_kv *)a)->key, ((const meta_config_kv *)b)->key);
}

const char *meta_broker_config_get(const meta_image *img, const char *resource, const char *key)
{
    for (int32_t i = 0; i < img->nbroker_configs; i++)
        if (strcmp(img->broker_configs[i].resource, resource) == 0 && strcmp(img->broker_configs[i].key, key) == 0)
            return img->broker_configs[i].value;
    return NULL;
}

static int cmp_broker_config(const void *a, const void *b)
{
    const meta_broker_config *x = a, *y = b;
    int c = strcmp(x->resource, y->resource);
    return c ? c : strcmp(x->key, y->key);
}

/* Sets (or with a null value removes) one dynamic broker config. */
static void apply_broker_config(meta_image *img, const ConfigRecord *r)
{
    meta_broker_config rec = {xstrndup(r->ResourceName.ptr ? r->ResourceName.ptr : "", (size_t)MAX(r->ResourceName.len, 0)),
                              xstrndup(r->Name.ptr, (size_t)r->Name.len), NULL};
    for (int32_t i = 0; i < img->nbroker_configs; i++) {
        if (cmp_broker_config(&img->broker_configs[i], &rec) == 0) {
            broker_config_free(&img->broker_configs[i]);
            img->broker_configs[i] = img->broker_configs[--img->nbroker_configs];
            break;
        }
    }
    if (kstr_is_null(r->Value)) {
        broker_config_free(&rec);
    } else {
        rec.value = xstrndup(r->Value.ptr, (size_t)r->Value.len);
        img->broker_configs = xrealloc(img->broker_configs, (size_t)(img->nbroker_configs + 1) * sizeof rec);
        img->broker_configs[img->nbroker_configs++] = rec;
    }
    if (img->nbroker_configs > 1)
        qsort(img->broker_configs, (size_t)img->nbroker_configs, sizeof rec, cmp_broker_config);
}

static void apply_config(meta_image *img, const ConfigRecord *r)
{
    if (r->ResourceType == META_RESOURCE_BROKER && r->Name.len > 0) {
        apply_broker_config(img, r);
        return;
    }
    if (r->ResourceType != META_RESOURCE_TOPIC || r->Name.len <= 0)
        return;
    const meta_topic *shared =
        meta_image_topic(img, r->ResourceName.ptr, (size_t)MAX(r->ResourceName.len, 0));
    if (!shared)
        return;
    meta_topic *t = own_by_id(img, &shared->id);
    char *key = xstrndup(r->Name.ptr, (size_t)r->Name.len);
    int32_t i = 0;
    while (i < t->nconfigs && strcmp(t->configs[i].key, key) != 0)
        i++;
    if (i < t->nconfigs) {
        free(t->configs[i].value);
        free(t->configs[i].key);
        t->configs[i] = t->configs[--t->nconfigs];
    }
    if (!kstr_is_null(r->Value)) {
        t->configs = xrealloc(t->configs, (size_t)(t->nconfigs + 1) * sizeof *t->configs);
        t->configs[t->nconfigs].key = key;
        t->configs[t->nconfigs++].value = xstrndup(r->Value.ptr, (size_t)r->Value.len);
        key = NULL;
    }
    free(key);
    qsort(t->configs, (size_t)t->nconfigs, sizeof *t->configs, cmp_kv);
}

/* Ids only move forward: an older record never lowers the next id. */
static void apply_producer_ids(meta_image *img, const ProducerIdsRecord *r)
{
    if (r->NextProducerId > img->next_producer_id)
        img->next_producer_id = r->NextProducerId;
}

static void partition_check(const meta_partition *p, int32_t index)
{
    CK_ASSERT(p->index == index);
    for (int32_t i = 0; i < p->nreplicas; i++)
        CK_ASSERT(!meta_ids_has(p->replicas, i, p->replicas[i]));
    for (int32_t i = 0; i < p->nisr; i++) {
        CK_ASSERT(meta_ids_has(p->replicas, p->nreplicas, p->isr[i]));
        CK_ASSERT(!meta_ids_has(p->isr, i, p->isr[i]));
    }
    CK_ASSERT(p->leader == -1 || meta_ids_has(p->isr, p->nisr, p->leader));
    for (int32_t i = 0; i < p->nadding; i++)
        CK_ASSERT(meta_ids_has(p->replicas, p->nreplicas, p->adding[i]) &&
                  !meta_ids_has(p->removing, p->nremoving, p->adding[i]));
    for (int32_t i = 0; i < p->nremoving; i++)
        CK_ASSERT(meta_ids_has(p->replicas, p->nreplicas, p->removing[i]));
}

/* After one record: the invariants it could have broken, so a topic of n
 * partitions costs O(n) checks, not O(n^2). */
static void check_applied(const meta_image *img, int16_t type, const void *rec)
{
    const meta_topic *t = NULL;
    int32_t index = -1;
    if (type == META_REC_PARTITION) {
        t = meta_image_topic_by_id(img, &((const PartitionRecord *)rec)->TopicId);
        index = ((const PartitionRecord *)rec)->PartitionId;
    } else if (type == META_REC_PARTITION_CHANGE) {
        t = meta_image_topic_by_id(img, &((const PartitionChangeRecord *)rec)->TopicId);
        index = ((const PartitionChangeRecord *)rec)->PartitionId;
    } else if (type == META_REC_TOPIC) {
        for (int32_t i = 1; i < img->ntopics; i++)
            CK_ASSERT(strcmp(img->topics[i - 1]->name, img->topics[i]->name) < 0);
    }
    if (t && index >= 0 && index < t->npartitions)
        partition_check(&t->partitions[index], index);
    if ((type == META_REC_ACCESS_CONTROL_ENTRY || type == META_REC_REMOVE_ACCESS_CONTROL_ENTRY) && img->acls)
        acl_set_check(img->acls);
    if (type == META_REC_USER_SCRAM_CREDENTIAL || type == META_REC_REMOVE_USER_SCRAM_CREDENTIAL)
        meta_scram_check(img->scram);
    meta_brokers_check(img);
}

void meta_image_check(const meta_image *img)
{
    for (int32_t i = 0; i < img->ntopics; i++) {
        const meta_topic *t = img->topics[i];
        CK_ASSERT(atomic_load(&t->refs) >= 1);
        CK_ASSERT(i == 0 || strcmp(img->topics[i - 1]->name, t->name) < 0);
        for (int32_t j = 0; j < t->npartitions; j++)
            partition_check(&t->partitions[j], j);
    }
    if (img->acls)
        acl_set_check(img->acls);
    meta_scram_check(img->scram);
    meta_brokers_check(img);
}

/* Invariants 2-4 for a partition's replicas, ISR and leader. */
static const char *assignment_error(const int32_t *rep, int32_t nrep, const int32_t *isr, int32_t nisr,
                                    int32_t leader)
{
    for (int32_t i = 0; i < nrep; i++)
        if (meta_ids_has(rep, i, rep[i]))
            return "a replica is listed twice";
    for (int32_t i = 0; i < nisr; i++)
        if (!meta_ids_has(rep, nrep, isr[i]) || meta_ids_has(isr, i, isr[i]))
            return "the ISR is not a set of the replicas";
    if (leader != -1 && !meta_ids_has(isr, nisr, leader))
        return "the leader is not in the ISR";
    return NULL;
}

const char *meta_image_record_error(const meta_image *img, int16_t type, const void *rec)
{
    if (type == META_REC_PARTITION) {
        const PartitionRecord *r = rec;
        return assignment_error(r->Replicas.items, MAX(r->Replicas.count, 0), r->Isr.items,
                                MAX(r->Isr.count, 0), r->Leader);
    }
    if (type != META_REC_PARTITION_CHANGE)
        return NULL;
    const PartitionChangeRecord *r = rec;
    const meta_topic *t = meta_image_topic_by_id(img, &r->TopicId);
    if (!t || r->PartitionId < 0 || r->PartitionId >= t->npartitions)
        return NULL; /* changes nothing */
    const meta_partition *p = &t->partitions[r->PartitionId];
    bool rep_new = r->Replicas.count >= 0, isr_new = r->Isr.count >= 0;
    return assignment_error(rep_new ? r->Replicas.items : p->replicas, rep_new ? r->Replicas.count : p->nreplicas,
                            isr_new ? r->Isr.items : p->isr, isr_new ? r->Isr.count : p->nisr,
                            r->Leader != -2 ? r->Leader : p->leader);
}

void meta_image_apply(meta_image *img, int16_t type, const void *rec)
{
    switch (type) {
    case META_REC_TOPIC:
        apply_topic(img, rec);
        break;
    case META_REC_PARTITION:
        apply_partition(img, rec);
        break;
    case META_REC_REMOVE_TOPIC:
        apply_remove_topic(img, rec);
        break;
    case META_REC_CONFIG:
        apply_config(img, rec);
        break;
    case META_REC_PRODUCER_IDS:
        apply_producer_ids(img, rec);
        break;
    case META_REC_PARTITION_CHANGE:
        apply_partition_change(img, rec);
        break;
    case META_REC_REGISTER_BROKER:
    case META_REC_UNREGISTER_BROKER:
    case META_REC_FENCE_BROKER:
    case META_REC_UNFENCE_BROKER:
    case META_REC_BROKER_REGISTRATION_CHANGE:
        meta_brokers_apply(img, type, rec);
        break;
    case META_REC_ACCESS_CONTROL_ENTRY:
    case META_REC_REMOVE_ACCESS_CONTROL_ENTRY:
        meta_acls_apply(img, type, rec);
        break;
    case META_REC_USER_SCRAM_CREDENTIAL:
    case META_REC_REMOVE_USER_SCRAM_CREDENTIAL:
        meta_scram_apply(img, type, rec);
        break;
    case META_REC_CLIENT_QUOTA:
        meta_quotas_apply(img, rec);
        break;
    default:
        break; /* records this broker does not use yet are skipped */
    }
    if (META_CHECKS)
        check_applied(img, type, rec);
}
