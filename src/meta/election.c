/*
 * election.c - the controller's leader elections other than the one fencing
 * makes (brokers.c): unclean election, preferred-leader election (the
 * periodic rebalance and ElectLeaders), as Kafka's
 * ReplicationControlManager and PartitionChangeBuilder decide them.
 *
 * The rules:
 *   - Clean election picks the first replica, in replica order, that is in
 *     the ISR and unfenced (brokers.c's elect).
 *   - Unclean election (unclean.leader.election.enable: the topic's
 *     override, else the cluster-wide dynamic default, else the broker
 *     setting; false by default) applies only when clean election finds no
 *     one: the first unfenced replica leads and the ISR becomes just it. It
 *     may lose acknowledged records; that is what enabling it accepts.
 *   - Preferred election: the preferred replica is the first of the
 *     replica list. A partition whose preferred replica is unfenced and in
 *     the ISR but does not lead gets it as leader. The periodic check
 *     (auto.leader.rebalance.enable, every
 *     leader.imbalance.check.interval.seconds, and META_REBALANCE_SOON_MS
 *     after a broker is unfenced, so that a returning broker soon leads its
 *     partitions again) elects every such partition.
 *   - ElectLeaders, per partition: PREFERRED answers ELECTION_NOT_NEEDED
 *     when the preferred replica leads, PREFERRED_LEADER_NOT_AVAILABLE when
 *     it is fenced or not in the ISR; UNCLEAN answers ELECTION_NOT_NEEDED
 *     when the partition has a leader, and otherwise elects cleanly if it
 *     can, else uncleanly, else ELIGIBLE_LEADERS_NOT_AVAILABLE. Without a
 *     list of partitions, every partition is tried and only those elected
 *     are answered (as Kafka does).
 * Every change is one PartitionChangeRecord naming the new leader (and the
 * ISR when unclean); the image's apply bumps the leader epoch.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

#define UNCLEAN_KEY "unclean.leader.election.enable"

bool meta_setting_bool(const meta_image *img, const meta_topic *t, const char *key, bool fallback)
{
    const char *v = t ? meta_topic_config(t, key) : NULL;
    if (!v)
        v = meta_broker_config_get(img, "", key);
    if (!v)
        return fallback;
    return strcmp(v, "true") == 0;
}

bool meta_unclean_enabled(const meta_writer *w, const meta_topic *t)
{
    return meta_setting_bool(w->img, t, UNCLEAN_KEY, w->unclean_leader_election);
}

static bool live(const meta_image *img, int32_t id)
{
    const meta_broker *b = meta_image_broker(img, id);
    return b && !b->fenced;
}

int32_t meta_first_live_replica(const meta_image *img, const meta_partition *p)
{
    for (int32_t i = 0; i < p->nreplicas; i++)
        if (live(img, p->replicas[i]))
            return p->replicas[i];
    return -1;
}

/* Write partition (topic id, index)'s new leader; isr_alone: the ISR
 * becomes just the leader (unclean). */
static void set_leader(const meta_writer *w, const kuuid_t *id, int32_t index, int32_t leader, bool isr_alone)
{
    PartitionChangeRecord pc;
    proto_set_defaults(&PartitionChangeRecord_desc, 0, &pc);
    pc.TopicId = *id;
    pc.PartitionId = index;
    pc.Leader = leader;
    if (isr_alone)
        pc.Isr = (kint32_array_t){1, &leader};
    meta_write(w, META_REC_PARTITION_CHANGE, &PartitionChangeRecord_desc, &pc);
}

static int16_t elect_preferred(const meta_writer *w, const meta_topic *t, int32_t index)
{
    const meta_partition *p = &t->partitions[index];
    int32_t preferred = p->nreplicas > 0 ? p->replicas[0] : -1;
    if (preferred >= 0 && p->leader == preferred)
        return KERR_ELECTION_NOT_NEEDED;
    if (preferred < 0 || !live(w->img, preferred) || !meta_ids_has(p->isr, p->nisr, preferred))
        return KERR_PREFERRED_LEADER_NOT_AVAILABLE;
    kuuid_t id = t->id;
    set_leader(w, &id, index, preferred, false);
    return KERR_NONE;
}

static int16_t elect_unclean(const meta_writer *w, const meta_topic *t, int32_t index)
{
    const meta_partition *p = &t->partitions[index];
    if (p->leader >= 0 && live(w->img, p->leader))
        return KERR_ELECTION_NOT_NEEDED;
    int32_t clean = -1;
    for (int32_t i = 0; i < p->nreplicas && clean < 0; i++)
        if (meta_ids_has(p->isr, p->nisr, p->replicas[i]) && live(w->img, p->replicas[i]))
            clean = p->replicas[i];
    int32_t leader = clean >= 0 ? clean : meta_first_live_replica(w->img, p);
    if (leader < 0)
        return KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
    kuuid_t id = t->id;
    set_leader(w, &id, index, leader, clean < 0);
    return KERR_NONE;
}

int16_t meta_elect_leader(const meta_writer *w, int8_t type, const char *topic, int32_t index)
{
    const meta_topic *t = meta_image_topic(w->img, topic, strlen(topic));
    if (!t || index < 0 || index >= t->npartitions)
        return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (type == META_ELECT_PREFERRED)
        return elect_preferred(w, t, index);
    if (type == META_ELECT_UNCLEAN)
        return elect_unclean(w, t, index);
    return KERR_INVALID_REQUEST;
}

int32_t meta_elect_preferred_all(const meta_writer *w)
{
    int32_t n = 0;
    /* Records may replace a topic of the image: look it up anew each time. */
    for (int32_t t = 0; t < w->img->ntopics; t++)
        for (int32_t i = 0; i < w->img->topics[t]->npartitions; i++)
            n += elect_preferred(w, w->img->topics[t], i) == KERR_NONE;
    return n;
}

int32_t meta_elect_offline_unclean(const meta_writer *w)
{
    int32_t n = 0;
    for (int32_t t = 0; t < w->img->ntopics; t++) {
        for (int32_t i = 0; i < w->img->topics[t]->npartitions; i++) {
            const meta_topic *topic = w->img->topics[t];
            const meta_partition *p = &topic->partitions[i];
            if (p->leader != -1 || !meta_unclean_enabled(w, topic))
                continue;
            n += elect_unclean(w, topic, i) == KERR_NONE;
        }
    }
    return n;
}
