/* group.c - a group's members, completions, invariants and rebuild from
 * stored metadata (group.h). The rebalance protocol is in rebalance.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "group/group.h"
#include "group/group_int.h"
#include "proto/kerr.h"

static const char *const state_names[GROUP_STATE_COUNT] = {
    [GROUP_EMPTY] = "Empty",
    [GROUP_PREPARING_REBALANCE] = "PreparingRebalance",
    [GROUP_COMPLETING_REBALANCE] = "CompletingRebalance",
    [GROUP_STABLE] = "Stable",
    [GROUP_DEAD] = "Dead",
};

const char *group_state_name(group_state s)
{
    CK_ASSERT((unsigned)s < GROUP_STATE_COUNT);
    return state_names[s];
}

bool group_state_parse(const char *s, size_t len, group_state *out)
{
    for (int i = 0; i < GROUP_STATE_COUNT; i++)
        if (strlen(state_names[i]) == len && strncasecmp(state_names[i], s, len) == 0) {
            *out = (group_state)i;
            return true;
        }
    return false;
}

/* ---- completions ------------------------------------------------------------ */

void group_out_init(group_out *out)
{
    out->head = NULL;
    out->tail = &out->head;
    out->store = false;
}

bool group_out_empty(const group_out *out) { return out->head == NULL && !out->store; }

static void result_free(group_result *r)
{
    for (int32_t i = 0; i < r->nmembers; i++) {
        free(r->members[i].member_id);
        free(r->members[i].instance_id);
        free(r->members[i].metadata);
    }
    free(r->members);
    free(r->member_id);
    free(r->protocol_type);
    free(r->protocol_name);
    free(r->leader);
    free(r->assignment);
}

void group_out_deliver(group_out *out)
{
    group_done *d = out->head;
    group_out_init(out);
    while (d) {
        group_done *next = d->next;
        d->w->done(d->w, &d->res);
        result_free(&d->res);
        free(d);
        d = next;
    }
}

char *gdup(const char *s) { return s ? xstrdup(s) : NULL; }

uint8_t *gmemdup(const uint8_t *p, int32_t len)
{
    uint8_t *c = xmalloc(len > 0 ? (size_t)len : 1);
    if (len > 0)
        memcpy(c, p, (size_t)len);
    return c;
}

bool gstreq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

group_result *group_out_push(group_out *out, group_waiter *w, int16_t err)
{
    CK_ASSERT(w != NULL);
    group_done *d = xcalloc(1, sizeof *d);
    d->w = w;
    d->res.error = err;
    d->res.generation = -1;
    d->res.member_id = xstrdup("");
    d->res.leader = xstrdup("");
    *out->tail = d;
    out->tail = &d->next;
    return &d->res;
}

/* ---- members --------------------------------------------------------------- */

group_member *group_member_find(const group *g, const char *member_id)
{
    if (!member_id || !*member_id)
        return NULL;
    return hmap_get(&g->by_id, member_id, strlen(member_id));
}

group_member *group_static_member(const group *g, const char *instance_id)
{
    if (!instance_id)
        return NULL;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (gstreq(g->members[i]->instance_id, instance_id))
            return g->members[i];
    return NULL;
}

const uint8_t *group_member_metadata(const group *g, const group_member *m, int32_t *len)
{
    for (int32_t i = 0; g->protocol && i < m->nprotocols; i++)
        if (strcmp(m->protocols[i].name, g->protocol) == 0) {
            *len = m->protocols[i].metadata_len;
            return m->protocols[i].metadata;
        }
    *len = 0;
    return NULL;
}

static void protocols_free(group_member *m)
{
    for (int32_t i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    m->protocols = NULL;
    m->nprotocols = 0;
}

void member_set_protocols(group_member *m, const group_protocol_in *ps, int32_t n)
{
    protocols_free(m);
    m->protocols = xcalloc((size_t)MAX(n, 1), sizeof *m->protocols);
    for (int32_t i = 0; i < n; i++) {
        m->protocols[i].name = xstrdup(ps[i].name);
        m->protocols[i].metadata = gmemdup(ps[i].metadata, ps[i].metadata_len);
        m->protocols[i].metadata_len = MAX(ps[i].metadata_len, 0);
    }
    m->nprotocols = n;
}

void member_set_assignment(group_member *m, const uint8_t *p, int32_t len)
{
    free(m->assignment);
    m->assignment = gmemdup(p, len);
    m->assignment_len = MAX(len, 0);
}

group_member *member_add(group *g, const char *id, const char *instance_id, const char *client_id,
                         const char *client_host)
{
    CK_ASSERT(!group_member_find(g, id) && g->nmembers < GROUP_MEMBERS_MAX);
    group_member *m = xcalloc(1, sizeof *m);
    m->id = xstrdup(id);
    m->instance_id = gdup(instance_id);
    m->client_id = xstrdup(client_id ? client_id : "");
    m->client_host = xstrdup(client_host ? client_host : "");
    m->session_deadline_ms = GROUP_NO_DEADLINE;
    g->members = xrealloc(g->members, (size_t)(g->nmembers + 1) * sizeof *g->members);
    g->members[g->nmembers++] = m;
    hmap_put(&g->by_id, m->id, strlen(m->id), m);
    if (!g->leader)
        g->leader = xstrdup(m->id);
    return m;
}

void member_rename(group *g, group_member *m, const char *new_id)
{
    hmap_del(&g->by_id, m->id, strlen(m->id));
    bool was_leader = gstreq(g->leader, m->id);
    free(m->id);
    m->id = xstrdup(new_id);
    hmap_put(&g->by_id, m->id, strlen(m->id), m);
    if (was_leader) {
        free(g->leader);
        g->leader = xstrdup(new_id);
    }
}

static void member_free(group_member *m)
{
    CK_ASSERT(!m->join_waiter && !m->sync_waiter);
    protocols_free(m);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->assignment);
    free(m);
}

void member_remove(group *g, group_member *m)
{
    CK_ASSERT(!m->join_waiter && !m->sync_waiter);
    int32_t i = 0;
    while (i < g->nmembers && g->members[i] != m)
        i++;
    CK_ASSERT(i < g->nmembers);
    memmove(&g->members[i], &g->members[i + 1], (size_t)(g->nmembers - i - 1) * sizeof *g->members);
    g->nmembers--;
    hmap_del(&g->by_id, m->id, strlen(m->id));
    if (gstreq(g->leader, m->id)) {
        free(g->leader);
        g->leader = g->nmembers > 0 ? xstrdup(g->members[0]->id) : NULL;
    }
    member_free(m);
}

/* ---- the group -------------------------------------------------------------- */

group *group_new(const char *id, const group_config *cfg, int64_t now_ms)
{
    group *g = xcalloc(1, sizeof *g);
    g->id = xstrdup(id);
    g->cfg = cfg;
    g->state = GROUP_EMPTY;
    g->state_ts_ms = now_ms;
    g->join_deadline_ms = GROUP_NO_DEADLINE;
    g->sync_deadline_ms = GROUP_NO_DEADLINE;
    g->deferred_tail = &g->deferred;
    hmap_init(&g->by_id);
    hmap_init(&g->offsets);
    return g;
}

static void clear_members(group *g)
{
    while (g->nmembers > 0)
        member_remove(g, g->members[g->nmembers - 1]);
    for (int32_t i = 0; i < g->npending; i++)
        free(g->pending[i].id);
    free(g->pending);
    g->pending = NULL;
    g->npending = 0;
    g->awaiting_join = 0;
}

void group_free(group *g)
{
    if (!g)
        return;
    CK_ASSERT(g->deferred == NULL);
    clear_members(g);
    free(g->members);
    hmap_free(&g->by_id);
    offsets_free(g);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader);
    free(g);
}

/* Invariant 3 costs O(members^2): checked for small groups only. */
#define CHECK_STATIC_MEMBERS_MAX 64

void group_check(const group *g)
{
    int32_t joining = 0, syncing = 0;
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member *m = g->members[i];
        joining += m->join_waiter != NULL;
        syncing += m->sync_waiter != NULL;
        CK_ASSERT(group_member_find(g, m->id) == m);
        CK_ASSERT(!m->instance_id || g->nmembers > CHECK_STATIC_MEMBERS_MAX ||
                  group_static_member(g, m->instance_id) == m);
    }
    CK_ASSERT(joining == g->awaiting_join);
    CK_ASSERT(g->by_id.count == (size_t)g->nmembers);
    if (g->state == GROUP_EMPTY || g->state == GROUP_DEAD)
        CK_ASSERT(g->nmembers == 0);
    if (g->state != GROUP_PREPARING_REBALANCE)
        CK_ASSERT(joining == 0);
    if (g->state != GROUP_COMPLETING_REBALANCE)
        CK_ASSERT(syncing == 0);
    CK_ASSERT((g->nmembers == 0) == (g->leader == NULL));
    CK_ASSERT(!g->leader || group_member_find(g, g->leader));
}

int64_t group_next_deadline(const group *g)
{
    int64_t t = GROUP_NO_DEADLINE;
    for (int32_t i = 0; i < g->npending; i++)
        t = MIN(t, g->pending[i].deadline_ms);
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member *m = g->members[i];
        if (!m->join_waiter && !m->sync_waiter)
            t = MIN(t, m->session_deadline_ms);
    }
    if (g->state == GROUP_PREPARING_REBALANCE)
        t = MIN(t, g->join_deadline_ms);
    if (g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_STABLE)
        t = MIN(t, g->sync_deadline_ms);
    return t;
}

void group_cancel(group *g, int16_t err, group_out *out)
{
    for (int32_t i = 0; i < g->nmembers; i++) {
        group_member *m = g->members[i];
        if (m->join_waiter)
            member_complete_join(g, m, err, out);
        if (m->sync_waiter)
            member_complete_sync(g, m, err, out);
    }
    CK_ASSERT(g->awaiting_join == 0);
    group_stored(g, -1, err, 0, out); /* the answers that waited for a store */
}

/* ---- rebuild from stored metadata --------------------------------------------------- */

static void reset_metadata(group *g)
{
    clear_members(g);
    free(g->protocol_type);
    free(g->protocol);
    g->protocol_type = g->protocol = NULL;
    g->generation = 0;
    g->state = GROUP_EMPTY;
    g->store_pending = false;
    g->join_deadline_ms = g->sync_deadline_ms = GROUP_NO_DEADLINE;
}

void group_load(group *g, const char *protocol_type, const char *protocol, const char *leader, int32_t generation,
                int64_t state_ts_ms, const group_loaded_member *ms, int32_t n, int64_t now_ms)
{
    reset_metadata(g);
    g->has_metadata = true;
    g->protocol_type = protocol_type && *protocol_type ? xstrdup(protocol_type) : NULL;
    g->protocol = gdup(protocol);
    g->generation = generation;
    g->state_ts_ms = state_ts_ms;
    for (int32_t i = 0; i < n && i < GROUP_MEMBERS_MAX; i++) {
        if (group_member_find(g, ms[i].id) || group_static_member(g, ms[i].instance_id))
            continue;
        group_member *m = member_add(g, ms[i].id, ms[i].instance_id, ms[i].client_id, ms[i].client_host);
        m->session_timeout_ms = ms[i].session_timeout_ms;
        m->rebalance_timeout_ms = ms[i].rebalance_timeout_ms > 0 ? ms[i].rebalance_timeout_ms
                                                                 : ms[i].session_timeout_ms;
        group_protocol_in p = {protocol ? protocol : "", ms[i].subscription, ms[i].subscription_len};
        member_set_protocols(m, &p, 1);
        member_set_assignment(m, ms[i].assignment, ms[i].assignment_len);
        m->synced = true;
        m->session_deadline_ms = now_ms + m->session_timeout_ms;
    }
    if (leader && group_member_find(g, leader)) {
        free(g->leader);
        g->leader = xstrdup(leader);
    }
    if (g->nmembers > 0 && !g->protocol)
        clear_members(g); /* members without a protocol cannot be Stable */
    g->state = g->nmembers > 0 ? GROUP_STABLE : GROUP_EMPTY;
    group_check(g);
}

void group_unload(group *g)
{
    reset_metadata(g);
    g->has_metadata = false;
}
