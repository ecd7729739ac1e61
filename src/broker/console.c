/*
 * console.c - the operator console's data (GET / and GET /api/console on
 * the admin port): the status snapshot (status.h) seen as an operator
 * reads a cluster, problems first and in words, then the metadata quorum,
 * the brokers, the topics' partitions and the consumer groups this node
 * coordinates with their lag, and the counters the page turns into rates.
 *
 * A broker's state: "alive" when unfenced; "fenced" when fenced while its
 * heartbeats still reach the controller (it is up but not serving); "down"
 * when fenced and no heartbeat arrived within broker.session.timeout.ms.
 * Heartbeats are seen by the controller only: elsewhere a fenced broker
 * counts as down. A group's lag on a partition is the partition's high
 * watermark minus the group's committed offset, known where this node
 * holds a replica of the partition (-1 elsewhere).
 *
 * JSON, "console_version": 1 (fields are only ever added):
 *   {"console_version":1, "problems":["broker 3 is down", ...],
 *    "brokers":[{"id":3, "state":"alive"|"fenced"|"down"}],
 *    "groups":[{"id":"g", "state":"Stable", "members":N, "generation":N,
 *               "lag":N, "offsets":[{"topic":"t", "partition":0,
 *               "committed":N, "end":N, "lag":N}]}],
 *    "counters":{"records":N, "produce_requests":N, "fetch_requests":N,
 *                "bytes_in":N, "bytes_out":N},
 *    "status":{ ...GET /status... }}
 * "records" is the sum of the high watermarks of the partitions (not of
 * internal topics) this node holds a replica of: its growth per second is
 * the produce rate the page draws.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "broker/status.h"

#define CONSOLE_GROUPS_MAX 200         /* groups listed */
#define CONSOLE_GROUP_OFFSETS_MAX 200  /* partitions listed per group */
#define CONSOLE_LAG_PROBLEM 1000       /* a group lagging this many records is a problem */
#define CONSOLE_NAMED_MAX 10           /* partitions named per kind of problem; the rest are counted */

typedef struct coffset {
    char *topic;
    int32_t partition;
    int64_t committed, end, lag; /* end and lag -1: unknown here */
} coffset;

typedef struct cgroup {
    char *id;
    const char *state;
    int32_t members, generation;
    int64_t lag; /* over the partitions whose lag is known */
    int noffsets;
    coffset *offsets;
} cgroup;

typedef struct cview {
    status_snap s;
    int ngroups;
    cgroup groups[CONSOLE_GROUPS_MAX];
} cview;

static const status_row *find_row(const status_snap *s, const char *topic, int32_t index)
{
    for (int i = 0; i < s->nrows; i++)
        if (s->rows[i].mp->index == index && strcmp(s->rows[i].t->name, topic) == 0)
            return &s->rows[i];
    return NULL;
}

/* Under the coordinator's lock: copy what the page shows of g. */
static void collect_group(void *arg, const group *g)
{
    cview *v = arg;
    if (!g || v->ngroups == CONSOLE_GROUPS_MAX)
        return;
    cgroup *cg = &v->groups[v->ngroups++];
    *cg = (cgroup){.id = xstrdup(g->id), .state = group_state_name(g->state), .members = g->nmembers,
                   .generation = g->generation};
    cg->offsets = xcalloc(CONSOLE_GROUP_OFFSETS_MAX, sizeof *cg->offsets);
    void *val;
    for (size_t it = 0; hmap_next(&g->offsets, &it, NULL, NULL, &val);) {
        const group_offset *o = val;
        const status_row *r = find_row(&v->s, o->topic, o->partition);
        int64_t end = r && r->local && strcmp(r->state, "missing") != 0 ? r->hw : -1;
        int64_t lag = end >= 0 ? MAX(end - o->offset, 0) : -1;
        cg->lag += MAX(lag, 0);
        if (cg->noffsets < CONSOLE_GROUP_OFFSETS_MAX)
            cg->offsets[cg->noffsets++] = (coffset){xstrdup(o->topic), o->partition, o->offset, end, lag};
    }
}

static void view_take(cview *v, broker *b)
{
    status_take(&v->s, b);
    v->ngroups = 0;
    group_coord_each(b->groups, collect_group, v);
}

static void view_release(cview *v)
{
    for (int i = 0; i < v->ngroups; i++) {
        for (int k = 0; k < v->groups[i].noffsets; k++)
            free(v->groups[i].offsets[k].topic);
        free(v->groups[i].offsets);
        free(v->groups[i].id);
    }
    status_release(&v->s);
}

static const char *broker_state(const status_snap *s, int i)
{
    if (!s->img->brokers[i].fenced)
        return "alive";
    int64_t age = s->hb_age_ms[i];
    return age >= 0 && age < s->b->cfg.broker_session_timeout_ms ? "fenced" : "down";
}

/* A partition's problems, worst first: no leader, a replica here that is
 * not online (offline, read-only, failed, missing), too small an ISR. */
enum { PROBLEM_LEADERLESS, PROBLEM_NOT_ONLINE, PROBLEM_UNDER_REPLICATED, PROBLEM_KINDS };

static bool has_problem(const status_row *r, int kind)
{
    switch (kind) {
    case PROBLEM_LEADERLESS: return r->mp->leader < 0;
    case PROBLEM_NOT_ONLINE: return r->local && strcmp(r->state, "online") != 0;
    default: return r->mp->leader >= 0 && r->mp->nisr < r->mp->nreplicas;
    }
}

/* Each kind: the partitions of ordinary topics before internal ones, at
 * most CONSOLE_NAMED_MAX named, the rest counted. */
static void partition_problems(const status_snap *s, void (*fn)(void *arg, const char *text), void *arg)
{
    static const char *const plural[] = {"have no leader", "are not online here", "are under-replicated"};
    char line[600];
    for (int kind = 0; kind < PROBLEM_KINDS; kind++) {
        int named = 0, more = 0;
        for (int internal = 0; internal < 2; internal++) {
            for (int i = 0; i < s->nrows; i++) {
                const status_row *r = &s->rows[i];
                if (status_internal_topic(r->t) != internal || !has_problem(r, kind))
                    continue;
                if (named++ >= CONSOLE_NAMED_MAX) {
                    more++;
                    continue;
                }
                const char *what = kind == PROBLEM_LEADERLESS ? "has no leader"
                                 : kind == PROBLEM_NOT_ONLINE ? r->state : "is under-replicated";
                snprintf(line, sizeof line, "partition %s-%" PRId32 " %s%s%s%s", r->t->name, r->mp->index,
                         kind == PROBLEM_NOT_ONLINE ? "is " : "", what, r->error[0] ? ": " : "", r->error);
                fn(arg, line);
            }
        }
        if (more) {
            snprintf(line, sizeof line, "%d more partitions %s", more, plural[kind]);
            fn(arg, line);
        }
    }
}

/* Problems in the order an operator acts on them: brokers, this node,
 * partitions, then groups that lag. */
static void each_problem(const cview *v, void (*fn)(void *arg, const char *text), void *arg)
{
    char line[300];
    for (int32_t i = 0; i < v->s.img->nbrokers; i++) {
        const char *st = broker_state(&v->s, i);
        if (strcmp(st, "alive") == 0)
            continue;
        snprintf(line, sizeof line, "broker %" PRId32 " is %s", v->s.img->brokers[i].id, st);
        fn(arg, line);
    }
    if (!v->s.ready) {
        snprintf(line, sizeof line, "node %" PRId32 " is not ready: %s", v->s.b->cfg.node_id, v->s.ready_reason);
        fn(arg, line);
    }
    partition_problems(&v->s, fn, arg);
    for (int i = 0; i < v->ngroups; i++) {
        if (v->groups[i].lag < CONSOLE_LAG_PROBLEM)
            continue;
        snprintf(line, sizeof line, "group %.200s lags %" PRId64 " records", v->groups[i].id, v->groups[i].lag);
        fn(arg, line);
    }
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_group(buf_t *o, const cgroup *g)
{
    buf_printf(o, "{\"id\":");
    status_jstr(o, g->id);
    buf_printf(o, ",\"state\":\"%s\",\"members\":%" PRId32 ",\"generation\":%" PRId32 ",\"lag\":%" PRId64
                  ",\"offsets\":[",
               g->state, g->members, g->generation, g->lag);
    for (int k = 0; k < g->noffsets; k++) {
        const coffset *c = &g->offsets[k];
        buf_printf(o, "%s{\"topic\":", k ? "," : "");
        status_jstr(o, c->topic);
        buf_printf(o, ",\"partition\":%" PRId32 ",\"committed\":%" PRId64 ",\"end\":%" PRId64 ",\"lag\":%" PRId64 "}",
                   c->partition, c->committed, c->end, c->lag);
    }
    buf_put(o, "]}", 2);
}

static int64_t records_total(const status_snap *s)
{
    int64_t n = 0;
    for (int i = 0; i < s->nrows; i++)
        if (s->rows[i].local && !status_internal_topic(s->rows[i].t) && strcmp(s->rows[i].state, "missing") != 0)
            n += s->rows[i].hw;
    return n;
}

static void render_json(const cview *v, buf_t *o)
{
    const status_snap *s = &v->s;
    buf_printf(o, "{\"console_version\":1,\"problems\":[");
    status_jlist l = {o, 0};
    each_problem(v, status_jlist_add, &l);
    buf_printf(o, "],\"brokers\":[");
    for (int32_t i = 0; i < s->img->nbrokers; i++)
        buf_printf(o, "%s{\"id\":%" PRId32 ",\"state\":\"%s\"}", i ? "," : "", s->img->brokers[i].id,
                   broker_state(s, i));
    buf_printf(o, "],\"groups\":[");
    for (int i = 0; i < v->ngroups; i++) {
        if (i)
            buf_put(o, ",", 1);
        json_group(o, &v->groups[i]);
    }
    net_stats ns;
    net_stats_get(s->b->net, &ns);
    buf_printf(o, "],\"counters\":{\"records\":%" PRId64 ",\"produce_requests\":%" PRIu64
                  ",\"fetch_requests\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 "},\"status\":",
               records_total(s), atomic_load(&s->b->stats.requests[API_PRODUCE]),
               atomic_load(&s->b->stats.requests[API_FETCH]), ns.bytes_in, ns.bytes_out);
    status_render_json(s, o);
    while (o->len && o->data[o->len - 1] == '\n')
        o->len--;
    buf_put(o, "}\n", 2);
}

/* ---- HTML (the page without scripts) --------------------------------------------- */

static void hstr(buf_t *o, const char *v)
{
    for (const char *c = v; *c; c++) {
        switch (*c) {
        case '&': buf_printf(o, "&amp;"); break;
        case '<': buf_printf(o, "&lt;"); break;
        case '>': buf_printf(o, "&gt;"); break;
        case '"': buf_printf(o, "&quot;"); break;
        case '\'': buf_printf(o, "&#39;"); break;
        default: buf_put(o, c, 1);
        }
    }
}

static void html_problem(void *arg, const char *text)
{
    buf_printf(arg, "<li>");
    hstr(arg, text);
    buf_printf(arg, "</li>");
}

/* A table's head: its id and column names, separated by '|'. */
static void html_table(buf_t *o, const char *cols)
{
    buf_printf(o, "<table><thead><tr><th>");
    for (const char *c = cols; *c; c++)
        buf_printf(o, *c == '|' ? "</th><th>" : "%c", *c);
    buf_printf(o, "</th></tr></thead><tbody>");
}

static void html_num(buf_t *o, int64_t v)
{
    if (v < 0)
        buf_printf(o, "<td class=\"num\">-</td>");
    else
        buf_printf(o, "<td class=\"num\">%" PRId64 "</td>", v);
}

static void html_ids(buf_t *o, const int32_t *ids, int32_t n)
{
    buf_printf(o, "<td>");
    for (int32_t i = 0; i < n; i++)
        buf_printf(o, "%s%" PRId32, i ? "," : "", ids[i]);
    buf_printf(o, "</td>");
}

static void html_head(const cview *v, buf_t *o)
{
    const status_snap *s = &v->s;
    bool ok = status_healthy(s);
    buf_printf(o, "<header><h1>Chronik <span id=\"cluster\">");
    hstr(o, s->b->cfg.cluster_id);
    buf_printf(o, "</span></h1><p id=\"health\" class=\"%s\">%s, seen from node %" PRId32 "</p></header>",
               ok ? "ok" : "bad", ok ? "healthy" : "degraded", s->b->cfg.node_id);
    buf_t probs;
    buf_init(&probs);
    each_problem(v, html_problem, &probs);
    buf_printf(o, "<section id=\"problems\"><h2>Problems</h2>");
    if (probs.len) {
        buf_printf(o, "<ul>");
        buf_put(o, probs.data, probs.len);
        buf_printf(o, "</ul>");
    } else {
        buf_printf(o, "<p class=\"none\">None.</p>");
    }
    buf_printf(o, "</section>");
    buf_free(&probs);
}

static void html_quorum(const status_snap *s, buf_t *o)
{
    const meta_quorum_status *q = &s->quorum;
    buf_printf(o, "<section id=\"quorum\"><h2>Metadata quorum</h2><p>leader <b>%" PRId32 "</b>, epoch <b>%" PRId32
                  "</b>, high watermark %" PRId64 "; this node is %s</p>",
               q->leader_id, q->epoch, q->high_watermark, q->role);
    html_table(o, "Voter|Log end|Lag|Last fetch (ms ago)");
    for (int i = 0; i < s->b->cfg.nvoters; i++) {
        int32_t id = s->b->cfg.voters[i].id;
        const meta_quorum_replica *r = NULL;
        for (int k = 0; k < q->n_replicas; k++)
            if (q->replicas[k].id == id)
                r = &q->replicas[k];
        int64_t leo = r ? r->log_end_offset : -1;
        buf_printf(o, "<tr><td>%" PRId32 "%s</td>", id, id == q->leader_id ? " (leader)" : "");
        html_num(o, leo);
        html_num(o, leo >= 0 ? MAX(q->high_watermark - leo, 0) : -1);
        html_num(o, r ? r->last_fetch_ms_ago : -1);
        buf_printf(o, "</tr>");
    }
    buf_printf(o, "</tbody></table></section>");
}

/* Each endpoint as "NAME host:port (PROTOCOL)", one per line. */
static void html_endpoints(buf_t *o, const meta_broker *br)
{
    static const status_endpoint_fmt f = {"<br>", "<span class=\"endpoint\">", " ", ":%u (%s)</span>", hstr};
    status_endpoints(o, br, &f);
}

static void html_brokers(const status_snap *s, buf_t *o)
{
    buf_printf(o, "<section id=\"brokers\"><h2>Brokers</h2>");
    html_table(o, "Broker|Address|Listeners|State|Last heartbeat (ms ago)");
    for (int32_t i = 0; i < s->img->nbrokers; i++) {
        const meta_broker *br = &s->img->brokers[i];
        const meta_endpoint *ib = status_inter_broker(s, br);
        const char *st = broker_state(s, i);
        buf_printf(o, "<tr data-broker=\"%" PRId32 "\"><td>%" PRId32 "</td><td>", br->id, br->id);
        hstr(o, ib ? ib->host : "");
        buf_printf(o, ":%u</td><td>", ib ? ib->port : 0);
        html_endpoints(o, br);
        buf_printf(o, "</td><td class=\"state-%s\">%s</td>", st, st);
        html_num(o, s->hb_age_ms[i]);
        buf_printf(o, "</tr>");
    }
    buf_printf(o, "</tbody></table></section>");
}

static void html_partitions(const status_snap *s, buf_t *o)
{
    buf_printf(o, "<section id=\"topics\"><h2>Topics</h2>");
    html_table(o, "Topic|Partition|Leader|Replicas|ISR|State|High watermark|Bytes");
    int hidden = 0;
    for (int i = 0; i < s->nrows; i++) {
        const status_row *r = &s->rows[i];
        if (status_internal_topic(r->t)) {
            hidden++;
            continue;
        }
        bool held = r->local && strcmp(r->state, "missing") != 0;
        buf_printf(o, "<tr data-topic=\"");
        hstr(o, r->t->name);
        buf_printf(o, "\"><td>");
        hstr(o, r->t->name);
        buf_printf(o, "</td><td class=\"num\">%" PRId32 "</td><td class=\"%s\">", r->mp->index,
                   r->mp->leader < 0 ? "bad" : "");
        buf_printf(o, r->mp->leader < 0 ? "none" : "%" PRId32, r->mp->leader);
        buf_printf(o, "</td>");
        html_ids(o, r->mp->replicas, r->mp->nreplicas);
        html_ids(o, r->mp->isr, r->mp->nisr);
        buf_printf(o, "<td>%s</td>", r->state);
        html_num(o, held ? r->hw : -1);
        html_num(o, held ? r->bytes : -1);
        buf_printf(o, "</tr>");
    }
    buf_printf(o, "</tbody></table>");
    if (hidden)
        buf_printf(o, "<p class=\"note\">%d partitions of internal topics not listed.</p>", hidden);
    buf_printf(o, "</section>");
}

static void html_groups(const cview *v, buf_t *o)
{
    buf_printf(o, "<section id=\"groups\"><h2>Consumer groups</h2><p class=\"note\">Groups this node "
                  "coordinates.</p>");
    html_table(o, "Group|State|Members|Partition|Committed|End|Lag");
    for (int i = 0; i < v->ngroups; i++) {
        const cgroup *g = &v->groups[i];
        for (int k = 0; k < MAX(g->noffsets, 1); k++) {
            buf_printf(o, "<tr data-group=\"");
            hstr(o, g->id);
            buf_printf(o, "\"><td>");
            hstr(o, g->id);
            buf_printf(o, "</td><td>%s</td><td class=\"num\">%" PRId32 "</td><td>", g->state, g->members);
            if (k >= g->noffsets) {
                buf_printf(o, "</td><td></td><td></td><td></td></tr>");
                continue;
            }
            const coffset *c = &g->offsets[k];
            hstr(o, c->topic);
            buf_printf(o, "-%" PRId32 "</td>", c->partition);
            html_num(o, c->committed);
            html_num(o, c->end);
            html_num(o, c->lag);
            buf_printf(o, "</tr>");
        }
    }
    buf_printf(o, "</tbody></table></section>");
}

static void render_html(const cview *v, buf_t *o)
{
    html_head(v, o);
    html_quorum(&v->s, o);
    html_brokers(&v->s, o);
    buf_printf(o, "<section id=\"rates\"><h2>Rates</h2><p class=\"note\">The charts need scripts.</p></section>");
    html_partitions(&v->s, o);
    html_groups(v, o);
}

void broker_console(buf_t *out, bool html, void *ctx)
{
    cview *v = xcalloc(1, sizeof *v);
    view_take(v, ctx);
    if (html)
        render_html(v, out);
    else
        render_json(v, out);
    view_release(v);
    free(v);
}
