/* rebalance.c - the classic rebalance protocol of one group: JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, the commit check, and the deadlines
 * (group.h). Pure: time comes in as now_ms, answers go out through
 * group_out. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "group/group_int.h"
#include "proto/kerr.h"

/* ---- states ------------------------------------------------------------------- */

static void set_state(group *g, group_state to, int64_t now_ms)
{
    static const unsigned from_ok[GROUP_STATE_COUNT] = {
        [GROUP_EMPTY] = 1u << GROUP_PREPARING_REBALANCE,
        [GROUP_PREPARING_REBALANCE] = 1u << GROUP_STABLE | 1u << GROUP_COMPLETING_REBALANCE | 1u << GROUP_EMPTY,
        [GROUP_COMPLETING_REBALANCE] = 1u << GROUP_PREPARING_REBALANCE,
        [GROUP_STABLE] = 1u << GROUP_COMPLETING_REBALANCE,
        [GROUP_DEAD] = 0x1fu,
    };
    CK_ASSERT(from_ok[to] & (1u << g->state));
    g->state = to;
    g->state_ts_ms = now_ms;
}

/* ---- answers ---------------------------------------------------------------------- */

static void fail(group_out *out, group_waiter *w, const char *member_id, int16_t err)
{
    group_result *r = group_out_push(out, w, err);
    free(r->member_id);
    r->member_id = xstrdup(member_id ? member_id : "");
}

static void copy_members(const group *g, group_result *r)
{
    r->nmembers = g->nmembers;
    r->members = xcalloc((size_t)MAX(g->nmembers, 1), sizeof *r->members);
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member *m = g->members[i];
        int32_t len;
        const uint8_t *md = group_member_metadata(g, m, &len);
        r->members[i].member_id = xstrdup(m->id);
        r->members[i].instance_id = gdup(m->instance_id);
        r->members[i].metadata = gmemdup(md, len);
        r->members[i].metadata_len = len;
    }
}

/* A successful JoinGroup answer with the group's current generation. */
static group_result *join_ok(const group *g, group_waiter *w, const char *member_id, bool with_members,
                             group_out *out)
{
    group_result *r = group_out_push(out, w, KERR_NONE);
    free(r->member_id);
    free(r->leader);
    r->member_id = xstrdup(member_id);
    r->generation = g->generation;
    r->protocol_type = gdup(g->protocol_type);
    r->protocol_name = gdup(g->protocol);
    r->leader = xstrdup(g->leader ? g->leader : "");
    if (with_members)
        copy_members(g, r);
    return r;
}

void member_complete_join(group *g, group_member *m, int16_t err, group_out *out)
{
    group_waiter *w = m->join_waiter;
    CK_ASSERT(w && g->awaiting_join > 0);
    m->join_waiter = NULL;
    g->awaiting_join--;
    if (err)
        fail(out, w, m->id, err);
    else
        join_ok(g, w, m->id, gstreq(g->leader, m->id), out);
}

static void sync_ok(const group *g, const group_member *m, group_waiter *w, group_out *out)
{
    group_result *r = group_out_push(out, w, KERR_NONE);
    r->protocol_type = gdup(g->protocol_type);
    r->protocol_name = gdup(g->protocol);
    r->assignment = gmemdup(m->assignment, m->assignment_len);
    r->assignment_len = m->assignment_len;
}

void member_complete_sync(group *g, group_member *m, int16_t err, group_out *out)
{
    group_waiter *w = m->sync_waiter;
    CK_ASSERT(w);
    m->sync_waiter = NULL;
    if (err)
        fail(out, w, m->id, err);
    else
        sync_ok(g, m, w, out);
}

static void attach_join(group *g, group_member *m, group_waiter *w, group_out *out)
{
    if (m->join_waiter) /* a repeated JoinGroup: the older one is answered */
        member_complete_join(g, m, KERR_REBALANCE_IN_PROGRESS, out);
    m->join_waiter = w;
    g->awaiting_join++;
}

/* ---- helpers ------------------------------------------------------------------------ */

static bool fenced(const group *g, const char *member_id, const char *instance_id)
{
    const group_member *s = group_static_member(g, instance_id);
    return s && !gstreq(s->id, member_id);
}

static void touch(group_member *m, int64_t now_ms) { m->session_deadline_ms = now_ms + m->session_timeout_ms; }

static int32_t max_rebalance_timeout(const group *g)
{
    int32_t t = 0;
    for (int32_t i = 0; i < g->nmembers; i++)
        t = MAX(t, g->members[i]->rebalance_timeout_ms);
    return t;
}

static int32_t pending_index(const group *g, const char *id)
{
    for (int32_t i = 0; i < g->npending; i++)
        if (strcmp(g->pending[i].id, id) == 0)
            return i;
    return -1;
}

static void pending_remove(group *g, int32_t i)
{
    free(g->pending[i].id);
    g->pending[i] = g->pending[--g->npending];
}

static bool has_protocol(const group_member *m, const char *name)
{
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (strcmp(m->protocols[i].name, name) == 0)
            return true;
    return false;
}

static bool all_support(const group *g, const char *name)
{
    for (int32_t i = 0; i < g->nmembers; i++)
        if (!has_protocol(g->members[i], name))
            return false;
    return true;
}

/* Can a member with these protocols join? Any protocol goes for an empty
 * group; otherwise the type must match and one protocol be common to all. */
static bool supports(const group *g, const group_join_req *req)
{
    if (!req->protocol_type || !*req->protocol_type || req->nprotocols <= 0)
        return false;
    if (g->state == GROUP_EMPTY)
        return true;
    if (!gstreq(g->protocol_type, req->protocol_type))
        return false;
    for (int32_t i = 0; i < req->nprotocols; i++)
        if (all_support(g, req->protocols[i].name))
            return true;
    return false;
}

static bool same_protocols(const group_member *m, const group_join_req *req)
{
    if (m->nprotocols != req->nprotocols)
        return false;
    for (int32_t i = 0; i < req->nprotocols; i++) {
        const group_protocol *a = &m->protocols[i];
        const group_protocol_in *b = &req->protocols[i];
        if (strcmp(a->name, b->name) != 0 || a->metadata_len != MAX(b->metadata_len, 0) ||
            (a->metadata_len > 0 && memcmp(a->metadata, b->metadata, (size_t)a->metadata_len) != 0))
            return false;
    }
    return true;
}

/*
 * The protocol of the next generation: among the protocols every member
 * supports, each member votes for the first in its own preference order;
 * the most votes win, ties going to the first member's preference.
 */
static char *select_protocol(const group *g)
{
    CK_ASSERT(g->nmembers > 0);
    const group_member *first = g->members[0];
    const char *best = NULL;
    int32_t best_votes = -1;
    bool *common = xcalloc((size_t)MAX(first->nprotocols, 1), sizeof *common);
    for (int32_t i = 0; i < first->nprotocols; i++)
        common[i] = all_support(g, first->protocols[i].name);
    for (int32_t i = 0; i < first->nprotocols; i++) {
        if (!common[i])
            continue;
        int32_t votes = 0;
        for (int32_t j = 0; j < g->nmembers; j++) {
            const group_member *m = g->members[j];
            for (int32_t k = 0; k < m->nprotocols; k++) {
                int32_t c = 0;
                while (c < first->nprotocols && (!common[c] || strcmp(first->protocols[c].name, m->protocols[k].name)))
                    c++;
                if (c < first->nprotocols) {
                    votes += c == i;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = first->protocols[i].name;
            best_votes = votes;
        }
    }
    free(common);
    CK_ASSERT(best != NULL);
    return xstrdup(best);
}

/* ---- the join phase ---------------------------------------------------------------------- */

static void try_complete_join(group *g, int64_t now_ms, group_out *out);

/* Enter PreparingRebalance; the phase ends at once when nobody needs to rejoin. */
static void prepare_rebalance(group *g, int64_t now_ms, group_out *out)
{
    if (g->state == GROUP_COMPLETING_REBALANCE)
        for (int32_t i = 0; i < g->nmembers; i++) {
            group_member *m = g->members[i];
            member_set_assignment(m, NULL, 0);
            if (m->sync_waiter)
                member_complete_sync(g, m, KERR_REBALANCE_IN_PROGRESS, out);
        }
    bool was_empty = g->state == GROUP_EMPTY;
    log_info("group", "rebalance started group=%s generation=%d members=%d", g->id, g->generation, g->nmembers);
    g->store_pending = false;
    set_state(g, GROUP_PREPARING_REBALANCE, now_ms);
    g->join_start_ms = now_ms;
    int32_t rt = max_rebalance_timeout(g);
    g->initial_delay = was_empty && g->cfg->initial_rebalance_delay_ms > 0;
    g->join_deadline_ms = now_ms + (g->initial_delay ? MIN(g->cfg->initial_rebalance_delay_ms, rt) : rt);
    g->sync_deadline_ms = GROUP_NO_DEADLINE;
    try_complete_join(g, now_ms, out);
}

static void maybe_prepare_rebalance(group *g, int64_t now_ms, group_out *out)
{
    if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_EMPTY)
        prepare_rebalance(g, now_ms, out);
}

/* The join phase ends: members that did not rejoin leave (static ones
 * stay), the generation advances and everyone who waits is answered. */
static void complete_join_phase(group *g, int64_t now_ms, group_out *out)
{
    for (int32_t i = g->nmembers - 1; i >= 0; i--) {
        group_member *m = g->members[i];
        if (!m->join_waiter && !m->instance_id) {
            log_info("group", "member did not rejoin in time group=%s member=%s", g->id, m->id);
            member_remove(g, m);
        }
    }
    if (g->nmembers > 0 && g->awaiting_join == 0) {
        /* Only static members that have not rejoined: wait for them (their
         * sessions expire them if they never come). */
        g->join_deadline_ms = now_ms + max_rebalance_timeout(g);
        return;
    }
    group_member *leader = group_member_find(g, g->leader);
    if (leader && !leader->join_waiter)
        for (int32_t i = 0; i < g->nmembers; i++)
            if (g->members[i]->join_waiter) {
                free(g->leader);
                g->leader = xstrdup(g->members[i]->id);
                break;
            }
    g->generation++;
    g->initial_delay = false;
    g->join_deadline_ms = GROUP_NO_DEADLINE;
    free(g->protocol);
    g->protocol = NULL;
    if (g->nmembers == 0) {
        set_state(g, GROUP_EMPTY, now_ms);
        out->store = true;
        return;
    }
    g->protocol = select_protocol(g);
    log_info("group", "join phase done group=%s generation=%d members=%d protocol=%s leader=%s", g->id,
             g->generation, g->nmembers, g->protocol, g->leader);
    set_state(g, GROUP_COMPLETING_REBALANCE, now_ms);
    g->sync_deadline_ms = now_ms + max_rebalance_timeout(g);
    for (int32_t i = 0; i < g->nmembers; i++) {
        group_member *m = g->members[i];
        m->synced = false;
        if (m->join_waiter)
            member_complete_join(g, m, KERR_NONE, out);
        touch(m, now_ms);
    }
}

static void try_complete_join(group *g, int64_t now_ms, group_out *out)
{
    if (g->state != GROUP_PREPARING_REBALANCE)
        return;
    if (g->initial_delay ? now_ms >= g->join_deadline_ms : g->awaiting_join == g->nmembers && g->npending == 0)
        complete_join_phase(g, now_ms, out);
}

static void remove_and_rebalance(group *g, group_member *m, int64_t now_ms, group_out *out)
{
    if (m->join_waiter)
        member_complete_join(g, m, KERR_UNKNOWN_MEMBER_ID, out);
    if (m->sync_waiter)
        member_complete_sync(g, m, KERR_UNKNOWN_MEMBER_ID, out);
    member_remove(g, m);
    if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE)
        prepare_rebalance(g, now_ms, out);
    else
        try_complete_join(g, now_ms, out);
}

static void set_timeouts(group_member *m, const group_join_req *req)
{
    m->session_timeout_ms = req->session_timeout_ms;
    m->rebalance_timeout_ms = req->rebalance_timeout_ms > 0 ? req->rebalance_timeout_ms : req->session_timeout_ms;
}

static void add_and_rebalance(group *g, const char *id, const group_join_req *req, int64_t now_ms, group_out *out)
{
    if (g->nmembers >= GROUP_MEMBERS_MAX) {
        fail(out, req->waiter, id, KERR_GROUP_MAX_SIZE_REACHED);
        return;
    }
    if (g->nmembers == 0) {
        free(g->protocol_type);
        g->protocol_type = xstrdup(req->protocol_type);
    }
    group_member *m = member_add(g, id, req->instance_id, req->client_id, req->client_host);
    set_timeouts(m, req);
    member_set_protocols(m, req->protocols, req->nprotocols);
    touch(m, now_ms);
    attach_join(g, m, req->waiter, out);
    if (g->state == GROUP_PREPARING_REBALANCE && g->initial_delay)
        g->join_deadline_ms = MIN(now_ms + g->cfg->initial_rebalance_delay_ms,
                                  g->join_start_ms + max_rebalance_timeout(g));
    maybe_prepare_rebalance(g, now_ms, out);
    try_complete_join(g, now_ms, out);
}

static void update_and_rebalance(group *g, group_member *m, const group_join_req *req, int64_t now_ms,
                                 group_out *out)
{
    set_timeouts(m, req);
    member_set_protocols(m, req->protocols, req->nprotocols);
    touch(m, now_ms);
    maybe_prepare_rebalance(g, now_ms, out);
    attach_join(g, m, req->waiter, out);
    try_complete_join(g, now_ms, out);
}

/* ---- JoinGroup ------------------------------------------------------------------------ */

/* A known static instance joins without a member id: it takes over the old
 * member (whose waiting requests are fenced) under a new id. A Stable group
 * whose protocol would not change needs no rebalance: the group is stored
 * and the member gets the current generation back, without the leader's
 * role unless the client can skip the assignment (v9+). */
static void static_rejoin(group *g, group_member *m, const group_join_req *req, int64_t now_ms, group_out *out)
{
    char *old_leader = gdup(g->leader);
    if (m->join_waiter)
        member_complete_join(g, m, KERR_FENCED_INSTANCE_ID, out);
    if (m->sync_waiter)
        member_complete_sync(g, m, KERR_FENCED_INSTANCE_ID, out);
    member_rename(g, m, req->fresh_id);
    free(m->client_id);
    free(m->client_host);
    m->client_id = xstrdup(req->client_id ? req->client_id : "");
    m->client_host = xstrdup(req->client_host ? req->client_host : "");
    if (g->state == GROUP_STABLE) {
        set_timeouts(m, req);
        member_set_protocols(m, req->protocols, req->nprotocols);
        touch(m, now_ms);
        char *next = select_protocol(g);
        bool same = gstreq(next, g->protocol);
        free(next);
        if (same) {
            bool lead = gstreq(g->leader, m->id) && req->skip_assignment_ok;
            group_out later;
            group_out_init(&later);
            group_result *r = join_ok(g, req->waiter, m->id, lead, &later);
            r->skip_assignment = lead;
            if (!lead) {
                free(r->leader);
                r->leader = xstrdup(old_leader ? old_leader : "");
            }
            *g->deferred_tail = later.head;
            g->deferred_tail = later.tail;
            out->store = true;
        } else {
            update_and_rebalance(g, m, req, now_ms, out);
        }
    } else {
        CK_ASSERT(g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_PREPARING_REBALANCE);
        update_and_rebalance(g, m, req, now_ms, out);
    }
    free(old_leader);
}

static void join_new(group *g, const group_join_req *req, int64_t now_ms, group_out *out)
{
    if (req->instance_id) {
        group_member *old = group_static_member(g, req->instance_id);
        if (old)
            static_rejoin(g, old, req, now_ms, out);
        else
            add_and_rebalance(g, req->fresh_id, req, now_ms, out);
        return;
    }
    if (!req->require_known_member) {
        add_and_rebalance(g, req->fresh_id, req, now_ms, out);
        return;
    }
    if (g->npending >= GROUP_MEMBERS_MAX) {
        fail(out, req->waiter, "", KERR_GROUP_MAX_SIZE_REACHED);
        return;
    }
    g->pending = xrealloc(g->pending, (size_t)(g->npending + 1) * sizeof *g->pending);
    g->pending[g->npending++] = (group_pending){xstrdup(req->fresh_id), now_ms + req->session_timeout_ms};
    fail(out, req->waiter, req->fresh_id, KERR_MEMBER_ID_REQUIRED);
}

static void join_known(group *g, const group_join_req *req, int64_t now_ms, group_out *out)
{
    int32_t pi = pending_index(g, req->member_id);
    if (pi >= 0) {
        char *id = xstrdup(req->member_id);
        pending_remove(g, pi);
        add_and_rebalance(g, id, req, now_ms, out);
        free(id);
        return;
    }
    group_member *m = group_member_find(g, req->member_id);
    int16_t err = fenced(g, req->member_id, req->instance_id) ? KERR_FENCED_INSTANCE_ID
                  : !m                                       ? KERR_UNKNOWN_MEMBER_ID
                                                             : KERR_NONE;
    if (err) {
        fail(out, req->waiter, req->member_id, err);
        return;
    }
    bool lead = gstreq(g->leader, m->id), same = same_protocols(m, req);
    switch (g->state) {
    case GROUP_PREPARING_REBALANCE:
        update_and_rebalance(g, m, req, now_ms, out);
        break;
    case GROUP_COMPLETING_REBALANCE:
    case GROUP_STABLE:
        if (same && (g->state == GROUP_COMPLETING_REBALANCE || !lead)) {
            touch(m, now_ms); /* nothing changed: the current generation again */
            join_ok(g, req->waiter, m->id, lead, out);
        } else {
            update_and_rebalance(g, m, req, now_ms, out);
        }
        break;
    default:
        fail(out, req->waiter, req->member_id, KERR_UNKNOWN_MEMBER_ID);
    }
}

void group_join(group *g, const group_join_req *req, int64_t now_ms, group_out *out)
{
    CK_ASSERT(req->member_id && req->fresh_id && req->waiter);
    int16_t err = KERR_NONE;
    if (req->session_timeout_ms < g->cfg->min_session_timeout_ms ||
        req->session_timeout_ms > g->cfg->max_session_timeout_ms)
        err = KERR_INVALID_SESSION_TIMEOUT;
    else if (g->state == GROUP_DEAD)
        err = KERR_COORDINATOR_NOT_AVAILABLE;
    else if (req->nprotocols > GROUP_PROTOCOLS_MAX || !supports(g, req))
        err = KERR_INCONSISTENT_GROUP_PROTOCOL;
    if (err)
        fail(out, req->waiter, req->member_id, err);
    else if (!*req->member_id)
        join_new(g, req, now_ms, out);
    else
        join_known(g, req, now_ms, out);
    group_check(g);
}

/* ---- SyncGroup --------------------------------------------------------------------------- */

static int16_t sync_check(const group *g, const group_member *m, const group_sync_req *req)
{
    if (g->state == GROUP_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (fenced(g, req->member_id, req->instance_id))
        return KERR_FENCED_INSTANCE_ID;
    if (!m)
        return KERR_UNKNOWN_MEMBER_ID;
    if (req->generation != g->generation)
        return KERR_ILLEGAL_GENERATION;
    if ((req->protocol_type && !gstreq(req->protocol_type, g->protocol_type)) ||
        (req->protocol_name && !gstreq(req->protocol_name, g->protocol)))
        return KERR_INCONSISTENT_GROUP_PROTOCOL;
    if (g->state == GROUP_EMPTY)
        return KERR_UNKNOWN_MEMBER_ID;
    if (g->state == GROUP_PREPARING_REBALANCE)
        return KERR_REBALANCE_IN_PROGRESS;
    return KERR_NONE;
}

void group_sync(group *g, const group_sync_req *req, int64_t now_ms, group_out *out)
{
    CK_ASSERT(req->member_id && req->waiter);
    group_member *m = group_member_find(g, req->member_id);
    int16_t err = sync_check(g, m, req);
    if (err) {
        fail(out, req->waiter, req->member_id, err);
        return;
    }
    touch(m, now_ms);
    m->synced = true;
    if (g->state == GROUP_STABLE) {
        sync_ok(g, m, req->waiter, out);
        return;
    }
    if (m->sync_waiter)
        member_complete_sync(g, m, KERR_REBALANCE_IN_PROGRESS, out);
    m->sync_waiter = req->waiter;
    if (gstreq(g->leader, m->id) && !g->store_pending) {
        for (int32_t i = 0; i < g->nmembers; i++)
            member_set_assignment(g->members[i], NULL, 0);
        for (int32_t i = 0; i < req->nassignments; i++) {
            group_member *to = group_member_find(g, req->assignments[i].member_id);
            if (to)
                member_set_assignment(to, req->assignments[i].assignment, req->assignments[i].assignment_len);
        }
        g->store_pending = true;
        out->store = true;
    }
    group_check(g);
}

void group_stored(group *g, int32_t generation, int16_t err, int64_t now_ms, group_out *out)
{
    for (group_done *d = g->deferred; d; d = d->next)
        if (err) {
            d->res.error = err;
            d->res.generation = -1;
        }
    if (g->deferred) {
        *out->tail = g->deferred;
        out->tail = g->deferred_tail;
        g->deferred = NULL;
        g->deferred_tail = &g->deferred;
    }
    if (!g->store_pending || g->state != GROUP_COMPLETING_REBALANCE || generation != g->generation)
        return;
    g->store_pending = false;
    if (err) {
        log_warn("group", "cannot store the assignment group=%s generation=%d err=%s", g->id, generation,
                 kerr_name(err));
        prepare_rebalance(g, now_ms, out); /* answers the syncs with REBALANCE_IN_PROGRESS */
    } else {
        set_state(g, GROUP_STABLE, now_ms);
        log_info("group", "group stable group=%s generation=%d members=%d", g->id, g->generation, g->nmembers);
        for (int32_t i = 0; i < g->nmembers; i++)
            if (g->members[i]->sync_waiter)
                member_complete_sync(g, g->members[i], KERR_NONE, out);
    }
    group_check(g);
}

/* ---- Heartbeat, LeaveGroup, OffsetCommit's check ---------------------------------------------- */

int16_t group_heartbeat(group *g, const char *member_id, const char *instance_id, int32_t generation,
                        int64_t now_ms)
{
    if (g->state == GROUP_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (fenced(g, member_id, instance_id))
        return KERR_FENCED_INSTANCE_ID;
    group_member *m = group_member_find(g, member_id);
    if (!m)
        return KERR_UNKNOWN_MEMBER_ID;
    if (generation != g->generation)
        return KERR_ILLEGAL_GENERATION;
    touch(m, now_ms);
    return g->state == GROUP_PREPARING_REBALANCE ? KERR_REBALANCE_IN_PROGRESS : KERR_NONE;
}

int16_t group_leave(group *g, const char *member_id, const char *instance_id, int64_t now_ms, group_out *out)
{
    if (g->state == GROUP_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    group_member *m;
    if (!member_id || !*member_id) {
        m = group_static_member(g, instance_id);
        if (!m)
            return KERR_UNKNOWN_MEMBER_ID;
    } else {
        if (fenced(g, member_id, instance_id))
            return KERR_FENCED_INSTANCE_ID;
        int32_t pi = pending_index(g, member_id);
        if (pi >= 0) {
            pending_remove(g, pi);
            try_complete_join(g, now_ms, out);
            return KERR_NONE;
        }
        m = group_member_find(g, member_id);
        if (!m)
            return KERR_UNKNOWN_MEMBER_ID;
    }
    log_info("group", "member left group=%s member=%s", g->id, m->id);
    remove_and_rebalance(g, m, now_ms, out);
    group_check(g);
    return KERR_NONE;
}

int16_t group_commit_check(group *g, const char *member_id, const char *instance_id, int32_t generation,
                           int64_t now_ms)
{
    if (g->state == GROUP_DEAD)
        return KERR_COORDINATOR_NOT_AVAILABLE;
    if (fenced(g, member_id, instance_id))
        return KERR_FENCED_INSTANCE_ID;
    if (generation < 0 && g->state == GROUP_EMPTY)
        return KERR_NONE; /* a group that uses the coordinator for offsets only */
    group_member *m = group_member_find(g, member_id);
    if (!m)
        return KERR_UNKNOWN_MEMBER_ID;
    if (generation != g->generation)
        return KERR_ILLEGAL_GENERATION;
    if (g->state == GROUP_COMPLETING_REBALANCE)
        return KERR_REBALANCE_IN_PROGRESS;
    touch(m, now_ms);
    return KERR_NONE;
}

/* ---- deadlines ----------------------------------------------------------------------------- */

static group_member *find_expired(const group *g, int64_t now_ms)
{
    for (int32_t i = 0; i < g->nmembers; i++) {
        group_member *m = g->members[i];
        if (!m->join_waiter && !m->sync_waiter && m->session_deadline_ms <= now_ms)
            return m;
    }
    return NULL;
}

static group_member *find_unsynced(const group *g)
{
    for (int32_t i = 0; i < g->nmembers; i++)
        if (!g->members[i]->synced && !g->members[i]->join_waiter)
            return g->members[i];
    return NULL;
}

void group_tick(group *g, int64_t now_ms, group_out *out)
{
    bool gone = false;
    for (int32_t i = g->npending - 1; i >= 0; i--)
        if (g->pending[i].deadline_ms <= now_ms) {
            pending_remove(g, i);
            gone = true;
        }
    if (gone)
        try_complete_join(g, now_ms, out);
    for (group_member *m; (m = find_expired(g, now_ms));) {
        log_info("group", "member session expired group=%s member=%s", g->id, m->id);
        remove_and_rebalance(g, m, now_ms, out);
    }
    if (g->state == GROUP_PREPARING_REBALANCE && now_ms >= g->join_deadline_ms)
        complete_join_phase(g, now_ms, out);
    if ((g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_STABLE) && now_ms >= g->sync_deadline_ms) {
        g->sync_deadline_ms = GROUP_NO_DEADLINE;
        int32_t gen = g->generation;
        for (group_member *m; g->generation == gen && (m = find_unsynced(g));) {
            log_info("group", "member did not sync in time group=%s member=%s", g->id, m->id);
            remove_and_rebalance(g, m, now_ms, out);
        }
    }
    group_check(g);
}
