/* Unit tests for src/group: the classic rebalance state machine (pure:
 * driven by requests and a fake clock), offsets and their expiry, and the
 * __consumer_offsets record formats. */
#include "test.h"

#include "base/arena.h"
#include "base/log.h"
#include "group/group.h"
#include "proto/kerr.h"

#define SESSION_MS 10000
#define REBALANCE_MS 30000

static group_config cfg = {
    .min_session_timeout_ms = 6000,
    .max_session_timeout_ms = 300000,
    .initial_rebalance_delay_ms = 0,
    .offsets_topic_partitions = 50,
    .offsets_retention_ms = 7LL * 24 * 3600 * 1000,
};

__attribute__((constructor)) static void quiet_logs(void) { log_set_level(LOG_ERROR); }

/* A request waiting for its answer: records what it got. */
typedef struct waiter {
    group_waiter w;
    int calls;
    int16_t error;
    int32_t generation;
    char member_id[128];
    char leader[128];
    char protocol[64];
    int32_t nmembers;
    bool skip;
    char assignment[64];
} waiter;

static void on_done(group_waiter *gw, const group_result *res)
{
    waiter *w = (waiter *)gw;
    w->calls++;
    w->error = res->error;
    w->generation = res->generation;
    snprintf(w->member_id, sizeof w->member_id, "%s", res->member_id ? res->member_id : "");
    snprintf(w->leader, sizeof w->leader, "%s", res->leader ? res->leader : "");
    snprintf(w->protocol, sizeof w->protocol, "%s", res->protocol_name ? res->protocol_name : "");
    w->nmembers = res->nmembers;
    w->skip = res->skip_assignment;
    snprintf(w->assignment, sizeof w->assignment, "%.*s", res->assignment_len,
             res->assignment ? (const char *)res->assignment : "");
}

static void waiter_init(waiter *w)
{
    memset(w, 0, sizeof *w);
    w->w.done = on_done;
}

static const group_protocol_in range_only[] = {{"range", (const uint8_t *)"sub", 3}};

typedef struct join_opts {
    const char *member_id;
    const char *instance_id;
    const char *fresh_id;
    bool v4;
    const group_protocol_in *protocols;
    int32_t nprotocols;
} join_opts;

/* JoinGroup and deliver whatever it completed. Returns the store request. */
static bool join(group *g, int64_t now, waiter *w, join_opts o)
{
    waiter_init(w);
    group_join_req req = {
        .member_id = o.member_id ? o.member_id : "",
        .instance_id = o.instance_id,
        .client_id = "client",
        .client_host = "/127.0.0.1",
        .protocol_type = "consumer",
        .fresh_id = o.fresh_id ? o.fresh_id : "fresh",
        .session_timeout_ms = SESSION_MS,
        .rebalance_timeout_ms = REBALANCE_MS,
        .nprotocols = o.protocols ? o.nprotocols : 1,
        .protocols = o.protocols ? o.protocols : range_only,
        .require_known_member = o.v4,
        .waiter = &w->w,
    };
    group_out out;
    group_out_init(&out);
    group_join(g, &req, now, &out);
    bool store = out.store;
    group_out_deliver(&out);
    group_check(g);
    return store;
}

/* SyncGroup; the leader passes "id=assignment" pairs. Returns the store request. */
static bool sync_group(group *g, int64_t now, waiter *w, const char *member_id, int32_t generation,
                       const group_assignment_in *as, int32_t n)
{
    waiter_init(w);
    group_sync_req req = {.member_id = member_id, .generation = generation, .nassignments = n, .assignments = as,
                          .waiter = &w->w};
    group_out out;
    group_out_init(&out);
    group_sync(g, &req, now, &out);
    bool store = out.store;
    group_out_deliver(&out);
    group_check(g);
    return store;
}

static void stored(group *g, int64_t now, int16_t err)
{
    group_out out;
    group_out_init(&out);
    group_stored(g, g->generation, err, now, &out);
    group_out_deliver(&out);
}

static void tick(group *g, int64_t now)
{
    group_out out;
    group_out_init(&out);
    group_tick(g, now, &out);
    CHECK(!out.store || g->state == GROUP_EMPTY);
    group_out_deliver(&out);
}

/* Answer whatever still waits (before group_free). */
static void cancel_all(group *g)
{
    group_out out;
    group_out_init(&out);
    group_cancel(g, KERR_NOT_COORDINATOR, &out);
    group_out_deliver(&out);
}

static group_assignment_in assign(const char *id, const char *a)
{
    return (group_assignment_in){id, (const uint8_t *)a, (int32_t)strlen(a)};
}

/* One member up to Stable at generation 1 with assignment "a0". */
static void stable_one(group *g, int64_t now, const char *id)
{
    waiter j, s;
    join(g, now, &j, (join_opts){.fresh_id = id});
    REQUIRE(j.calls == 1 && j.error == KERR_NONE);
    group_assignment_in a = assign(id, "a0");
    CHECK(sync_group(g, now, &s, id, j.generation, &a, 1));
    stored(g, now, KERR_NONE);
    CHECK_EQ_INT(s.calls, 1);
    CHECK_EQ_INT(g->state, GROUP_STABLE);
}

/* A lone member joins, is leader of generation 1, syncs, and the group turns Stable once the assignment is stored. */
TEST(single_member_join_sync_stable)
{
    group *g = group_new("g", &cfg, 1000);
    waiter j, s;
    join(g, 1000, &j, (join_opts){.fresh_id = "A"});
    CHECK_EQ_INT(j.calls, 1);
    CHECK_EQ_INT(j.error, KERR_NONE);
    CHECK_EQ_INT(j.generation, 1);
    CHECK(strcmp(j.member_id, "A") == 0 && strcmp(j.leader, "A") == 0);
    CHECK(strcmp(j.protocol, "range") == 0);
    CHECK_EQ_INT(j.nmembers, 1);
    CHECK_EQ_INT(g->state, GROUP_COMPLETING_REBALANCE);
    group_assignment_in a = assign("A", "parts-of-A");
    CHECK(sync_group(g, 1000, &s, "A", 1, &a, 1));
    CHECK_EQ_INT(s.calls, 0); /* waits for the store */
    stored(g, 1001, KERR_NONE);
    CHECK_EQ_INT(s.calls, 1);
    CHECK_EQ_INT(s.error, KERR_NONE);
    CHECK(strcmp(s.assignment, "parts-of-A") == 0);
    CHECK_EQ_INT(g->state, GROUP_STABLE);
    CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 1, 2000), KERR_NONE);
    group_free(g);
}

/* A second member's join starts a rebalance: the first hears of it by heartbeat, rejoins, and both sync to generation 2. */
TEST(second_member_triggers_rebalance)
{
    group *g = group_new("g", &cfg, 0);
    stable_one(g, 0, "A");
    waiter jb, ja, sa, sb;
    join(g, 100, &jb, (join_opts){.fresh_id = "B"});
    CHECK_EQ_INT(jb.calls, 0);
    CHECK_EQ_INT(g->state, GROUP_PREPARING_REBALANCE);
    CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 1, 200), KERR_REBALANCE_IN_PROGRESS);
    join(g, 300, &ja, (join_opts){.member_id = "A"});
    CHECK_EQ_INT(ja.calls, 1);
    CHECK_EQ_INT(jb.calls, 1);
    CHECK_EQ_INT(ja.generation, 2);
    CHECK_EQ_INT(jb.generation, 2);
    CHECK_EQ_INT(ja.nmembers, 2); /* the leader gets the members */
    CHECK_EQ_INT(jb.nmembers, 0);
    CHECK(strcmp(jb.leader, "A") == 0);
    CHECK(!sync_group(g, 400, &sb, "B", 2, NULL, 0));
    CHECK_EQ_INT(sb.calls, 0);
    group_assignment_in as[] = {assign("A", "p0"), assign("B", "p1")};
    CHECK(sync_group(g, 500, &sa, "A", 2, as, 2));
    stored(g, 501, KERR_NONE);
    CHECK_EQ_INT(sa.calls, 1);
    CHECK_EQ_INT(sb.calls, 1);
    CHECK(strcmp(sa.assignment, "p0") == 0 && strcmp(sb.assignment, "p1") == 0);
    CHECK_EQ_INT(g->state, GROUP_STABLE);
    group_free(g);
}

/* JoinGroup v4+ without a member id gets MEMBER_ID_REQUIRED and a fresh id, and joins with that id. */
TEST(member_id_required)
{
    group *g = group_new("g", &cfg, 0);
    waiter w1, w2;
    join(g, 0, &w1, (join_opts){.fresh_id = "gen-1", .v4 = true});
    CHECK_EQ_INT(w1.calls, 1);
    CHECK_EQ_INT(w1.error, KERR_MEMBER_ID_REQUIRED);
    CHECK(strcmp(w1.member_id, "gen-1") == 0);
    CHECK_EQ_INT(g->npending, 1);
    CHECK_EQ_INT(g->nmembers, 0);
    join(g, 10, &w2, (join_opts){.member_id = "gen-1", .fresh_id = "other", .v4 = true});
    CHECK_EQ_INT(w2.calls, 1);
    CHECK_EQ_INT(w2.error, KERR_NONE);
    CHECK(strcmp(w2.member_id, "gen-1") == 0);
    CHECK_EQ_INT(g->npending, 0);
    CHECK_EQ_INT(w2.generation, 1);
    group_free(g);
}

/* A pending member id that is never used expires after the session timeout. */
TEST(pending_member_expires)
{
    group *g = group_new("g", &cfg, 0);
    waiter w, late;
    join(g, 0, &w, (join_opts){.fresh_id = "gen-1", .v4 = true});
    CHECK_EQ_INT(group_next_deadline(g), SESSION_MS);
    tick(g, SESSION_MS);
    CHECK_EQ_INT(g->npending, 0);
    join(g, SESSION_MS + 1, &late, (join_opts){.member_id = "gen-1", .v4 = true});
    CHECK_EQ_INT(late.error, KERR_UNKNOWN_MEMBER_ID);
    group_free(g);
}

/* Requests of an old generation or unknown member are fenced with ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / REBALANCE_IN_PROGRESS. */
TEST(generation_fencing)
{
    group *g = group_new("g", &cfg, 0);
    stable_one(g, 0, "A");
    waiter s, jb;
    CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 0, 1), KERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(group_heartbeat(g, "Z", NULL, 1, 1), KERR_UNKNOWN_MEMBER_ID);
    sync_group(g, 1, &s, "A", 7, NULL, 0);
    CHECK_EQ_INT(s.error, KERR_ILLEGAL_GENERATION);
    sync_group(g, 1, &s, "Z", 1, NULL, 0);
    CHECK_EQ_INT(s.error, KERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(group_commit_check(g, "A", NULL, 0, 1), KERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(group_commit_check(g, "", NULL, -1, 1), KERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(group_commit_check(g, "A", NULL, 1, 1), KERR_NONE);
    join(g, 2, &jb, (join_opts){.fresh_id = "B"}); /* PreparingRebalance from here */
    sync_group(g, 3, &s, "A", 1, NULL, 0);
    CHECK_EQ_INT(s.error, KERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(group_commit_check(g, "A", NULL, 1, 3), KERR_NONE); /* still allowed while preparing */
    waiter ja;
    join(g, 4, &ja, (join_opts){.member_id = "A"});
    CHECK_EQ_INT(g->state, GROUP_COMPLETING_REBALANCE);
    CHECK_EQ_INT(group_commit_check(g, "A", NULL, 2, 5), KERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 1, 5), KERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 2, 5), KERR_NONE);
    group_free(g);
}

/* A member whose heartbeats stop is evicted after session.timeout.ms and the rest rebalance without it. */
TEST(session_timeout_evicts_silent_member)
{
    group *g = group_new("g", &cfg, 0);
    stable_one(g, 0, "A");
    waiter jb, ja, sa, sb;
    join(g, 10, &jb, (join_opts){.fresh_id = "B"});
    join(g, 20, &ja, (join_opts){.member_id = "A"});
    group_assignment_in as[] = {assign("A", "x"), assign("B", "y")};
    sync_group(g, 30, &sb, "B", 2, NULL, 0);
    sync_group(g, 30, &sa, "A", 2, as, 2);
    stored(g, 30, KERR_NONE);
    REQUIRE(g->state == GROUP_STABLE && g->nmembers == 2);
    /* A keeps heartbeating, B goes silent. */
    for (int64_t t = 1000; t < 30 + SESSION_MS + 1000; t += 1000) {
        CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 2, t), KERR_NONE);
        tick(g, t);
    }
    CHECK_EQ_INT(g->nmembers, 1);
    CHECK(group_member_find(g, "B") == NULL);
    CHECK_EQ_INT(g->state, GROUP_PREPARING_REBALANCE);
    CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 2, 11000), KERR_REBALANCE_IN_PROGRESS);
    join(g, 11000, &ja, (join_opts){.member_id = "A"});
    CHECK_EQ_INT(ja.generation, 3);
    CHECK_EQ_INT(ja.nmembers, 1);
    group_free(g);
}

/* A member that does not rejoin within the rebalance timeout is dropped when the join phase ends. */
TEST(rebalance_timeout_drops_member_not_rejoining)
{
    group *g = group_new("g", &cfg, 0);
    stable_one(g, 0, "A");
    waiter jb;
    join(g, 100, &jb, (join_opts){.fresh_id = "B"});
    /* A heartbeats (so its session lives) but never rejoins. */
    for (int64_t t = 1000; t < 100 + REBALANCE_MS; t += 1000) {
        CHECK_EQ_INT(group_heartbeat(g, "A", NULL, 1, t), KERR_REBALANCE_IN_PROGRESS);
        tick(g, t);
    }
    CHECK_EQ_INT(jb.calls, 0);
    tick(g, 100 + REBALANCE_MS);
    CHECK_EQ_INT(jb.calls, 1);
    CHECK_EQ_INT(jb.generation, 2);
    CHECK(strcmp(jb.leader, "B") == 0); /* the old leader did not rejoin */
    CHECK(group_member_find(g, "A") == NULL);
    group_free(g);
}

/* A member that never sends SyncGroup is removed after the rebalance timeout. */
TEST(missing_sync_removes_member)
{
    group *g = group_new("g", &cfg, 0);
    waiter ja, jb, sa;
    join(g, 0, &ja, (join_opts){.fresh_id = "A"});
    sync_group(g, 1, &sa, "A", 1, NULL, 0);
    stored(g, 1, KERR_NONE);
    join(g, 2, &jb, (join_opts){.fresh_id = "B"});
    join(g, 3, &ja, (join_opts){.member_id = "A"});
    REQUIRE(g->state == GROUP_COMPLETING_REBALANCE);
    group_assignment_in as[] = {assign("A", "x"), assign("B", "y")};
    sync_group(g, 4, &sa, "A", 2, as, 2);
    stored(g, 4, KERR_NONE);
    for (int64_t t = 1000; t <= 3 + REBALANCE_MS; t += 1000) {
        group_heartbeat(g, "A", NULL, g->generation, t);
        group_heartbeat(g, "B", NULL, g->generation, t); /* B heartbeats but never syncs */
        tick(g, t);
    }
    tick(g, 3 + REBALANCE_MS);
    CHECK(group_member_find(g, "B") == NULL);
    CHECK_EQ_INT(g->state, GROUP_PREPARING_REBALANCE);
    cancel_all(g);
    group_free(g);
}

/* LeaveGroup removes the member at once and the others rebalance; unknown members are refused. */
TEST(leave_triggers_rebalance)
{
    group *g = group_new("g", &cfg, 0);
    stable_one(g, 0, "A");
    group_out out;
    group_out_init(&out);
    CHECK_EQ_INT(group_leave(g, "nobody", NULL, 10, &out), KERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(group_leave(g, "A", NULL, 10, &out), KERR_NONE);
    group_out_deliver(&out);
    CHECK_EQ_INT(g->nmembers, 0);
    CHECK_EQ_INT(g->state, GROUP_EMPTY); /* the join phase ended with nobody */
    CHECK_EQ_INT(g->generation, 2);
    group_free(g);
}

/* A static member rejoining without member id replaces the old one; the stale instance is FENCED_INSTANCE_ID. */
TEST(static_member_rejoin_fences_old_instance)
{
    group *g = group_new("g", &cfg, 0);
    waiter j1, s1, j2, s2;
    join(g, 0, &j1, (join_opts){.fresh_id = "i1-old", .instance_id = "i1", .v4 = true});
    CHECK_EQ_INT(j1.error, KERR_NONE); /* static members skip MEMBER_ID_REQUIRED */
    group_assignment_in a = assign("i1-old", "mine");
    sync_group(g, 1, &s1, "i1-old", 1, &a, 1);
    stored(g, 1, KERR_NONE);
    /* The instance restarts: same instance id, no member id. */
    CHECK(join(g, 100, &j2, (join_opts){.fresh_id = "i1-new", .instance_id = "i1", .v4 = true}));
    CHECK_EQ_INT(j2.calls, 0); /* answered once the group is stored */
    stored(g, 101, KERR_NONE);
    CHECK_EQ_INT(j2.calls, 1);
    CHECK_EQ_INT(j2.error, KERR_NONE);
    CHECK_EQ_INT(j2.generation, 1); /* no rebalance */
    CHECK(strcmp(j2.member_id, "i1-new") == 0);
    CHECK(strcmp(j2.leader, "i1-old") == 0); /* so it does not redo the assignment */
    CHECK_EQ_INT(g->state, GROUP_STABLE);
    CHECK_EQ_INT(group_heartbeat(g, "i1-old", "i1", 1, 200), KERR_FENCED_INSTANCE_ID);
    CHECK_EQ_INT(group_commit_check(g, "i1-old", "i1", 1, 200), KERR_FENCED_INSTANCE_ID);
    CHECK_EQ_INT(group_heartbeat(g, "i1-new", "i1", 1, 200), KERR_NONE);
    sync_group(g, 200, &s2, "i1-new", 1, NULL, 0);
    CHECK(strcmp(s2.assignment, "mine") == 0);
    waiter stale;
    join(g, 300, &stale, (join_opts){.member_id = "i1-old", .instance_id = "i1"});
    CHECK_EQ_INT(stale.error, KERR_FENCED_INSTANCE_ID);
    group_free(g);
}

/* A static member's parked JoinGroup is answered FENCED_INSTANCE_ID when a new incarnation takes over. */
TEST(static_member_parked_join_fenced)
{
    group *g = group_new("g", &cfg, 0);
    stable_one(g, 0, "A");
    waiter js, jn;
    join(g, 1, &js, (join_opts){.fresh_id = "s-1", .instance_id = "s"});
    REQUIRE(js.calls == 0); /* waits for A to rejoin */
    join(g, 2, &jn, (join_opts){.fresh_id = "s-2", .instance_id = "s"});
    CHECK_EQ_INT(js.calls, 1);
    CHECK_EQ_INT(js.error, KERR_FENCED_INSTANCE_ID);
    CHECK_EQ_INT(jn.calls, 0);
    CHECK(group_member_find(g, "s-2") != NULL && group_member_find(g, "s-1") == NULL);
    group_out out;
    group_out_init(&out);
    group_cancel(g, KERR_NOT_COORDINATOR, &out);
    group_out_deliver(&out);
    CHECK_EQ_INT(jn.error, KERR_NOT_COORDINATOR);
    group_free(g);
}

/* The protocol every member supports that most members prefer wins; an incompatible member is refused. */
TEST(protocol_selection)
{
    static const group_protocol_in pa[] = {{"range", NULL, 0}, {"roundrobin", NULL, 0}};
    static const group_protocol_in pb[] = {{"roundrobin", NULL, 0}, {"range", NULL, 0}};
    static const group_protocol_in pc[] = {{"sticky", NULL, 0}, {"roundrobin", NULL, 0}};
    static const group_protocol_in pd[] = {{"sticky", NULL, 0}};
    group *g = group_new("g", &cfg, 0);
    waiter ja, jb, jc, jd;
    join(g, 0, &ja, (join_opts){.fresh_id = "A", .protocols = pa, .nprotocols = 2});
    CHECK(strcmp(ja.protocol, "range") == 0);
    join(g, 1, &jb, (join_opts){.fresh_id = "B", .protocols = pb, .nprotocols = 2});
    join(g, 2, &jc, (join_opts){.fresh_id = "C", .protocols = pc, .nprotocols = 2});
    join(g, 3, &ja, (join_opts){.member_id = "A", .protocols = pa, .nprotocols = 2});
    REQUIRE(ja.calls == 1 && jb.calls == 1 && jc.calls == 1);
    /* common: roundrobin only (range lacks C, sticky lacks A and B) */
    CHECK(strcmp(ja.protocol, "roundrobin") == 0);
    CHECK(strcmp(g->protocol, "roundrobin") == 0);
    join(g, 4, &jd, (join_opts){.fresh_id = "D", .protocols = pd, .nprotocols = 1});
    CHECK_EQ_INT(jd.error, KERR_INCONSISTENT_GROUP_PROTOCOL);
    group_free(g);
}

/* Two candidates both common to all: the one most members list first wins. */
TEST(protocol_selection_by_votes)
{
    static const group_protocol_in pa[] = {{"range", NULL, 0}, {"roundrobin", NULL, 0}};
    static const group_protocol_in pb[] = {{"roundrobin", NULL, 0}, {"range", NULL, 0}};
    group *g = group_new("g", &cfg, 0);
    waiter ja, jb, jc;
    join(g, 0, &ja, (join_opts){.fresh_id = "A", .protocols = pa, .nprotocols = 2});
    join(g, 1, &jb, (join_opts){.fresh_id = "B", .protocols = pb, .nprotocols = 2});
    join(g, 2, &jc, (join_opts){.fresh_id = "C", .protocols = pb, .nprotocols = 2});
    join(g, 3, &ja, (join_opts){.member_id = "A", .protocols = pa, .nprotocols = 2});
    CHECK(strcmp(jb.protocol, "roundrobin") == 0);
    group_free(g);
}

/* A session timeout outside group.min/max.session.timeout.ms is INVALID_SESSION_TIMEOUT. */
TEST(session_timeout_bounds)
{
    group *g = group_new("g", &cfg, 0);
    waiter w;
    group_join_req req = {.member_id = "", .client_id = "c", .protocol_type = "consumer", .fresh_id = "A",
                          .session_timeout_ms = 10, .nprotocols = 1, .protocols = range_only, .waiter = &w.w};
    waiter_init(&w);
    group_out out;
    group_out_init(&out);
    group_join(g, &req, 0, &out);
    group_out_deliver(&out);
    CHECK_EQ_INT(w.error, KERR_INVALID_SESSION_TIMEOUT);
    CHECK_EQ_INT(g->nmembers, 0);
    group_free(g);
}

/* With group.initial.rebalance.delay.ms the first rebalance waits and takes in members that come meanwhile. */
TEST(initial_rebalance_delay)
{
    group_config c = cfg;
    c.initial_rebalance_delay_ms = 3000;
    group *g = group_new("g", &c, 0);
    waiter ja, jb;
    join(g, 0, &ja, (join_opts){.fresh_id = "A"});
    CHECK_EQ_INT(ja.calls, 0);
    join(g, 1000, &jb, (join_opts){.fresh_id = "B"});
    CHECK_EQ_INT(jb.calls, 0);
    tick(g, 3000);
    CHECK_EQ_INT(ja.calls, 0); /* B extended the delay */
    tick(g, 4000);
    CHECK_EQ_INT(ja.calls, 1);
    CHECK_EQ_INT(jb.calls, 1);
    CHECK_EQ_INT(ja.generation, 1);
    CHECK_EQ_INT(ja.nmembers, 2);
    cancel_all(g);
    group_free(g);
}

/* A failed store of the assignment answers the syncs and starts a new rebalance. */
TEST(store_failure_rebalances)
{
    group *g = group_new("g", &cfg, 0);
    waiter j, s;
    join(g, 0, &j, (join_opts){.fresh_id = "A"});
    group_assignment_in a = assign("A", "x");
    sync_group(g, 1, &s, "A", 1, &a, 1);
    stored(g, 2, KERR_NOT_COORDINATOR);
    CHECK_EQ_INT(s.calls, 1);
    CHECK_EQ_INT(s.error, KERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(g->state, GROUP_PREPARING_REBALANCE);
    group_free(g);
}

/* Offsets of a group that only commits expire after the retention; a group with members keeps its offsets. */
TEST(offsets_expire_for_empty_groups)
{
    group *g = group_new("simple", &cfg, 0);
    group_offset o = {"t", 0, 42, -1, "meta", 1000, -1, 5};
    group_offset_put(g, &o);
    CHECK_EQ_INT(group_offsets_expire(g, 1000 + cfg.offsets_retention_ms - 1, NULL, NULL), 0);
    CHECK_EQ_INT(group_offsets_expire(g, 1000 + cfg.offsets_retention_ms, NULL, NULL), 1);
    CHECK_EQ_INT(group_offset_count(g), 0);
    group_free(g);
    group *c = group_new("busy", &cfg, 0);
    stable_one(c, 0, "A");
    group_offset_put(c, &o);
    CHECK_EQ_INT(group_offsets_expire(c, 1000 + 10 * cfg.offsets_retention_ms, NULL, NULL), 0);
    group_free(c);
}

/* A commit applied late never replaces one from a later record. */
TEST(offset_put_keeps_later_record)
{
    group *g = group_new("g", &cfg, 0);
    group_offset newer = {"t", 1, 20, -1, "", 0, -1, 9};
    group_offset older = {"t", 1, 10, -1, "", 0, -1, 8};
    group_offset_put(g, &newer);
    group_offset_put(g, &older);
    const group_offset *got = group_offset_get(g, "t", 1, 1);
    REQUIRE(got != NULL);
    CHECK_EQ_INT(got->offset, 20);
    group_offset_delete(g, "t", 1, 1, 7); /* an older tombstone */
    CHECK(group_offset_get(g, "t", 1, 1) != NULL);
    group_offset_delete(g, "t", 1, 1, 10);
    CHECK(group_offset_get(g, "t", 1, 1) == NULL);
    group_free(g);
}

/* Groups map to partitions like Kafka: abs(Java String.hashCode) mod N, over UTF-16 units. */
TEST(partition_of_group)
{
    CHECK_EQ_INT(group_rec_partition("my-group", 8, 50), 36);
    CHECK_EQ_INT(group_rec_partition("test-group", 10, 50), 12);
    CHECK_EQ_INT(group_rec_partition("console-consumer-12345", 22, 50), 6);
    CHECK_EQ_INT(group_rec_partition("gr\xc3\xbcppe", 7, 50), 36);
    CHECK_EQ_INT(group_rec_partition("\xf0\x9f\x98\x80g", 5, 50), 22);
    CHECK_EQ_INT(group_rec_partition("", 0, 50), 0);
}

/* An offset commit record decodes to what was encoded, and its bytes start with key version 1 / value version 3. */
TEST(offset_record_roundtrip)
{
    buf_t k, v;
    buf_init(&k);
    buf_init(&v);
    group_offset o = {"orders", 3, 1234, 7, "hello", 1700000000000, -1, -1};
    group_rec_offset_key(&k, "g1", "orders", 3);
    group_rec_offset_value(&v, &o);
    CHECK_EQ_INT(be16_load(k.data), 1);
    CHECK_EQ_INT(be16_load(v.data), 3);
    /* key v1: int16 version, string group, string topic, int32 partition */
    CHECK_EQ_INT(k.len, 2 + 2 + 2 + 2 + 6 + 4);
    arena_t a;
    arena_init(&a);
    group_rec rec;
    REQUIRE(group_rec_decode(k.data, (int32_t)k.len, v.data, (int32_t)v.len, &a, &rec) == 0);
    CHECK_EQ_INT(rec.kind, GROUP_REC_OFFSET);
    CHECK(strcmp(rec.group_id, "g1") == 0 && strcmp(rec.offset.topic, "orders") == 0);
    CHECK_EQ_INT(rec.offset.partition, 3);
    CHECK_EQ_INT(rec.offset.offset, 1234);
    CHECK_EQ_INT(rec.offset.leader_epoch, 7);
    CHECK(strcmp(rec.offset.metadata, "hello") == 0);
    CHECK_EQ_INT(rec.offset.commit_ts_ms, 1700000000000);
    REQUIRE(group_rec_decode(k.data, (int32_t)k.len, NULL, -1, &a, &rec) == 0);
    CHECK(rec.tombstone);
    arena_free(&a);
    buf_free(&k);
    buf_free(&v);
}

/* A group metadata record rebuilds the group as Stable with its members, assignments and static ids. */
TEST(group_record_roundtrip)
{
    group *g = group_new("g", &cfg, 0);
    waiter j, s;
    join(g, 0, &j, (join_opts){.fresh_id = "A", .instance_id = "inst"});
    group_assignment_in a = assign("A", "asg");
    sync_group(g, 1, &s, "A", 1, &a, 1);
    stored(g, 1, KERR_NONE);
    buf_t k, v;
    buf_init(&k);
    buf_init(&v);
    group_rec_group_key(&k, g->id);
    group_rec_group_value(&v, g, 5);
    arena_t ar;
    arena_init(&ar);
    group_rec rec;
    REQUIRE(group_rec_decode(k.data, (int32_t)k.len, v.data, (int32_t)v.len, &ar, &rec) == 0);
    CHECK_EQ_INT(rec.kind, GROUP_REC_GROUP);
    CHECK_EQ_INT(rec.generation, 1);
    CHECK(strcmp(rec.protocol, "range") == 0 && strcmp(rec.leader, "A") == 0);
    REQUIRE(rec.nmembers == 1);
    group *back = group_new("g", &cfg, 0);
    group_load(back, rec.protocol_type, rec.protocol, rec.leader, rec.generation, rec.state_ts_ms, rec.members,
               rec.nmembers, 100);
    CHECK_EQ_INT(back->state, GROUP_STABLE);
    CHECK_EQ_INT(back->generation, 1);
    const group_member *m = group_static_member(back, "inst");
    REQUIRE(m != NULL);
    CHECK(strcmp(m->id, "A") == 0);
    CHECK_EQ_INT(m->assignment_len, 3);
    CHECK_EQ_INT(group_heartbeat(back, "A", "inst", 1, 200), KERR_NONE);
    arena_free(&ar);
    buf_free(&k);
    buf_free(&v);
    group_free(back);
    group_free(g);
}

/* State names parse case-insensitively (ListGroups v4 filters). */
TEST(state_names)
{
    group_state s;
    CHECK(group_state_parse("stable", 6, &s) && s == GROUP_STABLE);
    CHECK(group_state_parse("PreparingRebalance", 18, &s) && s == GROUP_PREPARING_REBALANCE);
    CHECK(!group_state_parse("Bogus", 5, &s));
    CHECK(strcmp(group_state_name(GROUP_COMPLETING_REBALANCE), "CompletingRebalance") == 0);
}

/* Transactional offsets stay pending per producer until their marker: COMMIT makes them the
 * committed offsets (unless a later record already holds the partition), ABORT drops them,
 * and other producers' pending offsets are untouched. */
TEST(transactional_offsets_wait_for_marker)
{
    group *g = group_new("g", &cfg, 0);
    group_offset plain = {"t", 1, 100, -1, "", 0, -1, 50};
    group_offset_put(g, &plain);
    group_offset a0 = {"t", 0, 10, -1, "m", 0, -1, 20}, a1 = {"t", 1, 11, -1, "", 0, -1, 21};
    group_offset b0 = {"t", 0, 30, -1, "", 0, -1, 22};
    group_txn_offset_put(g, 7, &a0);
    group_txn_offset_put(g, 7, &a1);
    group_txn_offset_put(g, 8, &b0);
    a0.offset = 12;
    group_txn_offset_put(g, 7, &a0); /* replaces the producer's own pending offset */
    CHECK_EQ_INT(g->ntxn, 3);
    CHECK(group_offset_get(g, "t", 1, 0) == NULL);
    CHECK(group_txn_offset_pending(g, "t", 0) && !group_txn_offset_pending(g, "u", 0));
    CHECK_EQ_INT(group_txn_offsets_end(g, 7, true), 2);
    const group_offset *o = group_offset_get(g, "t", 1, 0);
    REQUIRE(o != NULL);
    CHECK_EQ_INT(o->offset, 12);
    CHECK(strcmp(o->metadata, "m") == 0);
    CHECK_EQ_INT(group_offset_get(g, "t", 1, 1)->offset, 100); /* record 21 is older than 50 */
    CHECK_EQ_INT(group_txn_offsets_end(g, 8, false), 1);
    CHECK_EQ_INT(group_offset_get(g, "t", 1, 0)->offset, 12);
    CHECK_EQ_INT(g->ntxn, 0);
    group_txn_offset_put(g, 9, &b0); /* freed with the group */
    group_free(g);
}
