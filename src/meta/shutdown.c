/*
 * shutdown.c - a node's controlled shutdown (KIP-631): before it stops
 * serving, a broker of a cluster asks the controller to take its partition
 * leaderships away, and a node that leads the metadata quorum hands that
 * leadership over, so that neither clients nor the quorum wait for a
 * timeout to notice that it has gone.
 *
 * meta_controlled_shutdown does, in order, every step bounded by one
 * deadline (controlled.shutdown.timeout.ms):
 *   1. lifecycle_shutdown: heartbeats with WantShutDown until the controller
 *      answers ShouldShutDown. It answers once it has fenced this broker and
 *      moved the leadership of each partition it led to another member of
 *      the ISR, committed (brokers.c). Skipped, or given up, when nothing
 *      can come of it: this node is not registered, no other broker is
 *      unfenced to take its partitions, or this node has followed no quorum
 *      leader (nor led) for SHUTDOWN_LEADERLESS_MS (the quorum has lost its
 *      majority).
 *   2. This node's own image shows it fenced (woken by the apply): it has
 *      applied the moves itself.
 *   3. If it leads the quorum and enough other voters are live to elect a
 *      successor (a majority with this node: each fetched from it within
 *      SHUTDOWN_VOTER_SEEN_MS and is not a broker fenced for shutting
 *      down): quorum_resign (EndQuorumEpoch, naming the most caught-up
 *      voters), then it waits until it follows another leader and has
 *      learnt from it a high watermark past its own log end at the
 *      resignation: the new leader has committed and applied everything,
 *      the fencing included. It stops waiting after SHUTDOWN_HANDOVER_MS,
 *      or when it has been elected again (nobody else could be).
 * A node that is the only voter and has no observers returns at once.
 */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"

#define SHUTDOWN_LEADERLESS_MS 3000 /* the quorum's fetch timeout and then some: no election will come */
#define SHUTDOWN_VOTER_SEEN_MS 2000 /* a voter that fetched this recently can take over */
#define SHUTDOWN_HANDOVER_MS 5000   /* a few elections */

typedef struct shut {
    meta_t *m;
    int32_t self;
    int64_t leaderless_since; /* -1: a leader is known */
    const char *why;          /* why waiting for the controller is pointless */
    int64_t resign_end;       /* step 3: this node's log end at resignation */
    int64_t handover_until;   /* step 3: monotonic ms */
    int32_t resign_epoch;     /* step 3: the epoch this node led */
} shut_t;

static bool other_unfenced(const meta_image *img, int32_t self)
{
    int32_t pos = 0;
    for (const meta_broker *b; (b = meta_image_next_live(img, &pos)) != NULL;)
        if (b->id != self)
            return true;
    return false;
}

static bool pointless(void *arg)
{
    shut_t *s = arg;
    meta_image *img = meta_acquire(s->m);
    if (!meta_image_broker(img, s->self))
        s->why = "this broker is not registered";
    else if (!other_unfenced(img, s->self))
        s->why = "no other broker is unfenced to take over its partitions";
    meta_image_release(img);
    int64_t now = clock_mono_ms();
    quorum_info_t qi;
    quorum_get_info(meta_quorum(s->m), &qi);
    /* a prospective voter still names the leader it lost */
    if (qi.leader_id >= 0 && (qi.role == RAFT_FOLLOWER || qi.role == RAFT_LEADER))
        s->leaderless_since = -1;
    else if (s->leaderless_since < 0)
        s->leaderless_since = now;
    if (!s->why && s->leaderless_since >= 0 && now - s->leaderless_since >= SHUTDOWN_LEADERLESS_MS)
        s->why = "no quorum leader is known";
    return s->why != NULL;
}

static bool self_fenced(const meta_image *img, const void *arg)
{
    const meta_broker *b = meta_image_broker(img, *(const int32_t *)arg);
    return !b || b->fenced;
}

/* Enough other voters fetched from this leader lately, and are not leaving
 * themselves, to elect a successor. */
static bool successor_electable(meta_t *m)
{
    meta_quorum_status q;
    meta_quorum_status_get(m, &q);
    meta_image *img = meta_acquire(m);
    int live = 1; /* this node votes too */
    for (int i = 0; q.leader_view && i < q.n_replicas; i++) {
        const meta_quorum_replica *v = &q.replicas[i];
        const meta_broker *b = meta_image_broker(img, v->id);
        bool leaving = b && b->fenced;
        live += v->id != q.node_id && !leaving && v->last_fetch_ms_ago >= 0 &&
                v->last_fetch_ms_ago < SHUTDOWN_VOTER_SEEN_MS;
    }
    meta_image_release(img);
    return q.n_replicas > 1 && live > q.n_replicas / 2;
}

static bool handed_over(const quorum_info_t *qi, const shut_t *s)
{
    return qi->role == RAFT_FOLLOWER && qi->leader_id >= 0 && qi->leader_id != s->self &&
           qi->high_watermark >= s->resign_end;
}

/* Step 3 is over: another leader has committed past our log end, or
 * waiting longer is pointless. */
static bool handover_over(const meta_image *img, const void *arg)
{
    const shut_t *s = arg;
    UNUSED(img);
    quorum_info_t qi;
    quorum_get_info(meta_quorum(s->m), &qi);
    bool again = qi.role == RAFT_LEADER && qi.epoch > s->resign_epoch; /* elected again */
    return handed_over(&qi, s) || again || clock_mono_ms() >= s->handover_until;
}

static void hand_over_leadership(shut_t *s, int64_t deadline_ms)
{
    quorum_info_t qi;
    quorum_get_info(meta_quorum(s->m), &qi);
    if (qi.role != RAFT_LEADER || !successor_electable(s->m))
        return;
    s->resign_end = qi.log_end;
    s->resign_epoch = qi.epoch;
    s->handover_until = MIN(deadline_ms, clock_mono_ms() + SHUTDOWN_HANDOVER_MS);
    quorum_resign(meta_quorum(s->m));
    meta_wait_image(s->m, handover_over, s, s->handover_until);
    quorum_get_info(meta_quorum(s->m), &qi);
    log_info("meta", "quorum leadership %s leader=%d epoch=%d", handed_over(&qi, s) ? "handed over" : "not handed over",
             qi.leader_id, qi.epoch);
}

void meta_controlled_shutdown(meta_t *m, int32_t timeout_ms)
{
    lifecycle_t *l = meta_lifecycle(m);
    if (!meta_quorum_has_peers(m) || !l)
        return; /* alone: nobody to hand anything to */
    int64_t t0 = clock_mono_ms(), deadline = t0 + MAX(timeout_ms, 0);
    meta_quorum_status q;
    meta_quorum_status_get(m, &q);
    shut_t s = {.m = m, .self = q.node_id, .leaderless_since = -1};
    CK_ASSERT(s.self >= 0 && timeout_ms >= 0);
    log_info("meta", "controlled shutdown: asking the controller to move this broker's leaderships");
    bool granted = !pointless(&s) && lifecycle_shutdown(l, deadline, pointless, &s);
    if (granted)
        granted = meta_wait_image(m, self_fenced, &s.self, deadline);
    if (granted)
        log_info("meta", "controlled shutdown: the controller let this broker go after %lld ms",
                 (long long)(clock_mono_ms() - t0));
    else
        log_warn("meta", "controlled shutdown: going without the controller's leave reason=\"%s\"",
                 s.why ? s.why : "controlled.shutdown.timeout.ms passed");
    hand_over_leadership(&s, deadline);
    /* requests this node's core parked as leader are dropped when it leaves
     * that role: answer them now, not after the shutdown waited for them */
    meta_quorum_release_requests(m);
}
