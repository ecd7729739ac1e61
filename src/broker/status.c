/* status.c - the node's live state for operators: GET /status on the admin
 * port (JSON, or text with ?format=text) and `chronik cluster status`, and
 * the partition gauges of GET /metrics.
 *
 * Everything is read at the moment of the request: the metadata image (what
 * the cluster should look like: topics, partitions, leaders, replicas, ISR)
 * joined with this node's logs (what it holds: log start and end, high
 * watermark, bytes, segments, and whether storage took the partition
 * offline). The node is healthy when it is ready and every partition has a
 * leader, a full ISR and, where this node holds it, a log that is online.
 *
 * JSON, "status_version": 1 (fields are only ever added):
 *   {"status_version":1, "healthy":true, "problems":["..."],
 *    "node":{"node_id":1, "cluster_id":"...", "version":"...",
 *            "listener":"host:port", "uptime_ms":N, "ready":true,
 *            "ready_reason":"ready"},
 *    "metadata":{"mode":"single-node"|"cluster", "voters":[1], "leader":1, "offset":N},
 *    "quorum":{"role":"leader", "leader_id":1, "epoch":N, "high_watermark":N,
 *              "log_end_offset":N, "elections":N, "last_election_ms_ago":N,
 *              "voters":[{"id", "log_end_offset", "lag", "last_fetch_ms_ago"}],
 *              "observers":[], "snapshot":{"end_offset":N, "age_ms":N, "taken":N,
 *              "installed":N}, "log_start_offset":N}   (voter positions are known at
 *              the leader, -1 elsewhere; snapshot end 0 and age -1 when none)
 *    "brokers":[{"id":1, "host":"h", "port":N, "endpoints":[{"name":"PLAINTEXT",
 *                "host":"h", "port":N, "security_protocol":"PLAINTEXT"}],
 *                "fenced":false, "epoch":N, "last_heartbeat_ms_ago":N}]
 *                (registered brokers; host and port are the inter-broker
 *                listener's endpoint, "" and 0 when it has none; endpoints
 *                every listener it registered; the heartbeat age is known at
 *                the controller, -1 elsewhere; a fenced broker is a problem)
 *    "counts":{"topics":N, "partitions":N, "offline_partitions":N,
 *              "under_replicated_partitions":N, "leaderless_partitions":N,
 *              "groups":N, "transactions":N, "open_transactions":N, "connections":N},
 *              (transactional ids this node coordinates; open: Ongoing or
 *              between prepare and complete)
 *    "partitions":[{"topic":"t", "partition":0, "internal":false,
 *                   "leader":1, "leader_epoch":0, "partition_epoch":0,
 *                   "replicas":[1], "isr":[1],
 *                   "state":"online"|"offline"|"failed"|"missing"|"remote",
 *                   "error":"...", "log_start":0, "log_end":N,
 *                   "high_watermark":N, "bytes":N, "segments":N}, ...]}
 * "remote": this node holds no replica of it; the log fields are then
 * absent. "missing": it should hold one and has no log open.
 * "read-only": the log serves reads but refuses writes, because its disk
 * is full (until space returns) or because part of it is damaged (until
 * `chronik log repair`); "damaged_from"/"damaged_to" then give the offsets
 * that are not served.
 * Also (added): "warnings":["..."] (facts worth a look that do not make the
 * node unhealthy, e.g. little free disk), "counts":{"read_only_partitions"},
 * "disk":{"dir":"...", "free_bytes":N, "total_bytes":N,
 *         "warn_below_bytes":N, "low":false}.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "base/util.h"
#include "broker/broker_int.h"
#include "broker/status.h"

#define STATUS_VERSION 1
#define STATUS_PROBLEMS_MAX 20 /* problems listed by name; the counts hold all */

static bool holds(const meta_partition *mp, int32_t node)
{
    for (int32_t i = 0; i < mp->nreplicas; i++)
        if (mp->replicas[i] == node)
            return true;
    return false;
}

static void fill_row(status_snap *s, status_row *r)
{
    broker *b = s->b;
    r->local = holds(r->mp, b->cfg.node_id);
    r->state = r->local ? "missing" : "remote";
    r->damaged_from = r->damaged_to = -1;
    if (!r->local)
        return;
    partition *p = replica_get(b->replicas, r->t->name, strlen(r->t->name), r->mp->index);
    if (!p)
        return;
    int st = plog_state(p->log);
    r->state = st == STORAGE_OK ? "online" : st == STORAGE_ERR_OFFLINE ? "offline"
             : st == STORAGE_ERR_DAMAGED ? "read-only" : "failed";
    plog_damaged_range(p->log, &r->damaged_from, &r->damaged_to);
    if (st != STORAGE_OK)
        snprintf(r->error, sizeof r->error, "%s", plog_errmsg(p->log));
    else if (plog_space_short(p->log)) {
        r->state = "read-only";
        snprintf(r->error, sizeof r->error, "disk full: writes refused until space returns");
    }
    r->log_start = plog_log_start_offset(p->log);
    r->log_end = plog_log_end_offset(p->log);
    r->hw = atomic_load(&p->high_watermark);
    r->bytes = plog_size_bytes(p->log);
    r->segments = plog_segment_count(p->log);
    partition_put(p);
}

static void count_group(void *arg, const group *g)
{
    if (g)
        ((status_snap *)arg)->groups++;
}

static void count_txn(void *arg, const tcoord_txn *t)
{
    status_snap *s = arg;
    if (t->m.producer_id < 0)
        return;
    s->txns++;
    s->open_txns += t->m.state == TCOORD_ONGOING || t->m.state == TCOORD_PREPARE_COMMIT ||
                    t->m.state == TCOORD_PREPARE_ABORT;
}

/* Free space of the data directory's filesystem, and the warning level:
 * log.dir.free.bytes.warn or 5% of the filesystem, whichever is smaller. */
static void take_disk(status_snap *s, broker *b)
{
    struct statvfs v;
    s->disk_free = s->disk_total = s->disk_warn_below = -1;
    if (statvfs(b->cfg.data_dir, &v) != 0)
        return;
    s->disk_free = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
    s->disk_total = (int64_t)v.f_blocks * (int64_t)v.f_frsize;
    s->disk_warn_below = MIN(b->cfg.log_dir_free_bytes_warn, s->disk_total / 20);
}

static bool disk_low(const status_snap *s) { return s->disk_free >= 0 && s->disk_free < s->disk_warn_below; }

void status_take(status_snap *s, broker *b)
{
    memset(s, 0, sizeof *s);
    s->b = b;
    s->img = meta_acquire(b->meta);
    for (int32_t i = 0; i < s->img->ntopics; i++)
        s->nrows += s->img->topics[i]->npartitions;
    s->rows = xcalloc((size_t)s->nrows + 1, sizeof *s->rows);
    int k = 0;
    for (int32_t i = 0; i < s->img->ntopics; i++) {
        const meta_topic *t = s->img->topics[i];
        for (int32_t j = 0; j < t->npartitions; j++) {
            status_row *r = &s->rows[k++];
            r->t = t;
            r->mp = &t->partitions[j];
            fill_row(s, r);
            bool ro = strcmp(r->state, "read-only") == 0;
            s->read_only += ro;
            s->offline += r->local && !ro && strcmp(r->state, "online") != 0;
            s->under_replicated += r->mp->nisr < r->mp->nreplicas;
            s->leaderless += r->mp->leader < 0;
        }
    }
    group_coord_each(b->groups, count_group, s);
    tcoord_each(b->txns, count_txn, s);
    snprintf(s->ready_reason, sizeof s->ready_reason, "ready");
    s->ready = broker_ready_check(b, s->ready_reason, sizeof s->ready_reason);
    net_stats ns;
    net_stats_get(b->net, &ns);
    s->connections = ns.connections_active;
    take_disk(s, b);
    meta_quorum_status_get(b->meta, &s->quorum);
    s->hb_age_ms = xcalloc((size_t)s->img->nbrokers + 1, sizeof *s->hb_age_ms);
    for (int32_t i = 0; i < s->img->nbrokers; i++) {
        s->fenced += s->img->brokers[i].fenced;
        s->hb_age_ms[i] = meta_heartbeat_age_ms(b->meta, s->img->brokers[i].id);
    }
}

void status_release(status_snap *s)
{
    free(s->rows);
    free(s->hb_age_ms);
    meta_image_release(s->img);
}

bool status_healthy(const status_snap *s)
{
    return s->ready && !s->offline && !s->under_replicated && !s->leaderless && !s->read_only && !s->fenced;
}

/* ---- JSON ----------------------------------------------------------------- */

void status_jstr(buf_t *o, const char *v)
{
    buf_put(o, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
        if (*c == '"' || *c == '\\')
            buf_printf(o, "\\%c", *c);
        else if (*c < 0x20)
            buf_printf(o, "\\u%04x", *c);
        else
            buf_put(o, c, 1);
    }
    buf_put(o, "\"", 1);
}

static void jints(buf_t *o, const int32_t *v, int32_t n)
{
    buf_put(o, "[", 1);
    for (int32_t i = 0; i < n; i++)
        buf_printf(o, "%s%" PRId32, i ? "," : "", v[i]);
    buf_put(o, "]", 1);
}

bool status_internal_topic(const meta_topic *t) { return t->name[0] == '_' && t->name[1] == '_'; }

static void json_row(buf_t *o, const status_row *r)
{
    buf_printf(o, "{\"topic\":");
    status_jstr(o, r->t->name);
    buf_printf(o, ",\"partition\":%" PRId32 ",\"internal\":%s,\"leader\":%" PRId32 ",\"leader_epoch\":%" PRId32
                  ",\"partition_epoch\":%" PRId32 ",\"replicas\":",
               r->mp->index, status_internal_topic(r->t) ? "true" : "false", r->mp->leader, r->mp->leader_epoch,
               r->mp->partition_epoch);
    jints(o, r->mp->replicas, r->mp->nreplicas);
    buf_printf(o, ",\"isr\":");
    jints(o, r->mp->isr, r->mp->nisr);
    buf_printf(o, ",\"state\":\"%s\"", r->state);
    if (r->error[0]) {
        buf_printf(o, ",\"error\":");
        status_jstr(o, r->error);
    }
    if (r->local && strcmp(r->state, "missing") != 0)
        buf_printf(o, ",\"log_start\":%" PRId64 ",\"log_end\":%" PRId64 ",\"high_watermark\":%" PRId64
                      ",\"bytes\":%" PRId64 ",\"segments\":%d",
                   r->log_start, r->log_end, r->hw, r->bytes, r->segments);
    if (r->damaged_from >= 0)
        buf_printf(o, ",\"damaged_from\":%" PRId64 ",\"damaged_to\":%" PRId64, r->damaged_from, r->damaged_to);
    buf_put(o, "}", 1);
}

/* One problem per unhealthy fact, at most STATUS_PROBLEMS_MAX partitions named. */
static void each_problem(const status_snap *s, void (*fn)(void *arg, const char *text), void *arg)
{
    char line[512];
    if (!s->ready) {
        snprintf(line, sizeof line, "not ready: %s", s->ready_reason);
        fn(arg, line);
    }
    for (int32_t i = 0; i < s->img->nbrokers; i++) {
        if (!s->img->brokers[i].fenced)
            continue;
        snprintf(line, sizeof line, "broker %" PRId32 " is fenced", s->img->brokers[i].id);
        fn(arg, line);
    }
    int named = 0;
    for (int i = 0; i < s->nrows && named < STATUS_PROBLEMS_MAX; i++) {
        const status_row *r = &s->rows[i];
        const char *what = r->local && strcmp(r->state, "online") != 0 ? r->state
                           : r->mp->leader < 0                         ? "without a leader"
                           : r->mp->nisr < r->mp->nreplicas            ? "under-replicated"
                                                                       : NULL;
        if (!what)
            continue;
        int n = snprintf(line, sizeof line, "%s-%" PRId32 " %s%s%s", r->t->name, r->mp->index, what,
                         r->error[0] ? ": " : "", r->error);
        if (r->damaged_from >= 0 && n > 0 && (size_t)n < sizeof line)
            snprintf(line + n, sizeof line - (size_t)n, " (offsets %" PRId64 "..%" PRId64 " not served)",
                     r->damaged_from, r->damaged_to - 1);
        fn(arg, line);
        named++;
    }
}

void status_each_warning(const status_snap *s, void (*fn)(void *arg, const char *text), void *arg)
{
    char line[1400];
    if (!disk_low(s))
        return;
    snprintf(line, sizeof line, "data directory %s: %" PRId64 " MiB free of %" PRId64 " MiB (warning below %" PRId64
             " MiB)", s->b->cfg.data_dir, s->disk_free >> 20, s->disk_total >> 20, s->disk_warn_below >> 20);
    fn(arg, line);
}

void status_jlist_add(void *arg, const char *text)
{
    status_jlist *l = arg;
    if (l->n++)
        buf_put(l->o, ",", 1);
    status_jstr(l->o, text);
}

/* "metadata" (kept from status_version 1) and "quorum": the metadata
 * quorum as this node sees it; the voters' positions are known at the
 * leader only. */
static void json_quorum(buf_t *o, const status_snap *s)
{
    const meta_quorum_status *q = &s->quorum;
    const config *c = &s->b->cfg;
    buf_printf(o, "\"metadata\":{\"mode\":\"%s\",\"voters\":[", c->nvoters > 1 ? "cluster" : "single-node");
    for (int i = 0; i < c->nvoters; i++)
        buf_printf(o, "%s%" PRId32, i ? "," : "", c->voters[i].id);
    buf_printf(o, "],\"leader\":%" PRId32 ",\"offset\":%" PRId64 "},", q->leader_id, s->img->offset);
    buf_printf(o, "\"quorum\":{\"role\":\"%s\",\"leader_id\":%" PRId32 ",\"epoch\":%" PRId32
                  ",\"high_watermark\":%" PRId64 ",\"log_end_offset\":%" PRId64 ",\"elections\":%" PRIu64
                  ",\"last_election_ms_ago\":%" PRId64 ",\"voters\":[",
               q->role, q->leader_id, q->epoch, q->high_watermark, q->log_end, q->elections, q->last_election_ms_ago);
    for (int i = 0; i < c->nvoters; i++) {
        const meta_quorum_replica *r = NULL;
        for (int k = 0; k < q->n_replicas; k++)
            if (q->replicas[k].id == c->voters[i].id)
                r = &q->replicas[k];
        int64_t leo = r ? r->log_end_offset : -1;
        buf_printf(o, "%s{\"id\":%" PRId32 ",\"log_end_offset\":%" PRId64 ",\"lag\":%" PRId64
                      ",\"last_fetch_ms_ago\":%" PRId64 "}",
                   i ? "," : "", c->voters[i].id, leo, leo >= 0 ? MAX(q->high_watermark - leo, 0) : -1,
                   r ? r->last_fetch_ms_ago : -1);
    }
    buf_printf(o, "],\"observers\":[");
    for (int i = 0; i < q->n_observers; i++) {
        const meta_quorum_replica *r = &q->observers[i];
        buf_printf(o, "%s{\"id\":%" PRId32 ",\"log_end_offset\":%" PRId64 ",\"lag\":%" PRId64
                      ",\"last_fetch_ms_ago\":%" PRId64 "}",
                   i ? "," : "", r->id, r->log_end_offset,
                   r->log_end_offset >= 0 ? MAX(q->high_watermark - r->log_end_offset, 0) : -1, r->last_fetch_ms_ago);
    }
    buf_printf(o, "],\"snapshot\":{\"end_offset\":%" PRId64 ",\"age_ms\":%" PRId64 ",\"taken\":%" PRIu64
                  ",\"installed\":%" PRIu64 "},\"log_start_offset\":%" PRId64 "},",
               q->snapshot_end_offset, q->snapshot_age_ms, q->snapshots_taken, q->snapshots_installed,
               q->log_start_offset);
}

const meta_endpoint *status_inter_broker(const status_snap *s, const meta_broker *br)
{
    return meta_broker_endpoint(br, meta_inter_broker_listener(s->b->meta));
}

const char *status_protocol_name(int16_t protocol)
{
    return protocol >= 0 && protocol <= CONFIG_SASL_SSL ? config_protocol_name(protocol) : "UNKNOWN";
}

void status_endpoints(buf_t *o, const meta_broker *br, const status_endpoint_fmt *f)
{
    for (int32_t i = 0; i < br->nendpoints; i++) {
        const meta_endpoint *e = &br->endpoints[i];
        buf_printf(o, "%s%s", i ? f->sep : "", f->open);
        f->str(o, e->name);
        buf_printf(o, "%s", f->mid);
        f->str(o, e->host);
        buf_printf(o, f->tail, e->port, status_protocol_name(e->protocol));
    }
}

static void json_endpoints(buf_t *o, const meta_broker *br)
{
    static const status_endpoint_fmt f = {",", "{\"name\":", ",\"host\":",
                                          ",\"port\":%u,\"security_protocol\":\"%s\"}", status_jstr};
    buf_printf(o, "\"endpoints\":[");
    status_endpoints(o, br, &f);
    buf_printf(o, "]");
}

static void json_brokers(buf_t *o, const status_snap *s)
{
    buf_printf(o, "\"brokers\":[");
    for (int32_t i = 0; i < s->img->nbrokers; i++) {
        const meta_broker *br = &s->img->brokers[i];
        const meta_endpoint *ib = status_inter_broker(s, br);
        buf_printf(o, "%s{\"id\":%" PRId32 ",\"host\":", i ? "," : "", br->id);
        status_jstr(o, ib ? ib->host : "");
        buf_printf(o, ",\"port\":%u,", ib ? ib->port : 0);
        json_endpoints(o, br);
        buf_printf(o, ",\"fenced\":%s,\"epoch\":%" PRId64 ",\"last_heartbeat_ms_ago\":%" PRId64 "}",
                   br->fenced ? "true" : "false", br->epoch, s->hb_age_ms[i]);
    }
    buf_printf(o, "],");
}

void status_render_json(const status_snap *s, buf_t *o)
{
    const config *c = &s->b->cfg;
    buf_printf(o, "{\"status_version\":%d,\"healthy\":%s,\"problems\":[", STATUS_VERSION,
               status_healthy(s) ? "true" : "false");
    status_jlist l = {o, 0};
    each_problem(s, status_jlist_add, &l);
    buf_printf(o, "],\"warnings\":[");
    status_jlist w = {o, 0};
    status_each_warning(s, status_jlist_add, &w);
    buf_printf(o, "],\"disk\":{\"dir\":");
    status_jstr(o, c->data_dir);
    buf_printf(o, ",\"free_bytes\":%" PRId64 ",\"total_bytes\":%" PRId64 ",\"warn_below_bytes\":%" PRId64
                  ",\"low\":%s}",
               s->disk_free, s->disk_total, s->disk_warn_below, disk_low(s) ? "true" : "false");
    buf_printf(o, ",\"node\":{\"node_id\":%" PRId32 ",\"cluster_id\":", c->node_id);
    status_jstr(o, c->cluster_id);
    buf_printf(o, ",\"version\":\"%s\",\"listener\":\"%s:%u\",\"uptime_ms\":%" PRId64 ",\"ready\":%s,"
                  "\"ready_reason\":",
               CHRONIK_VERSION, c->listen.host, s->b->port, clock_mono_ms() - s->b->started_ms,
               s->ready ? "true" : "false");
    status_jstr(o, s->ready_reason);
    buf_printf(o, "},");
    json_quorum(o, s);
    json_brokers(o, s);
    buf_printf(o, "\"counts\":{\"topics\":%" PRId32 ",\"partitions\":%d,\"offline_partitions\":%d,"
                  "\"under_replicated_partitions\":%d,\"leaderless_partitions\":%d,\"read_only_partitions\":%d,"
                  "\"groups\":%d,\"transactions\":%d,\"open_transactions\":%d,\"connections\":%" PRIu64
                  "},\"partitions\":[",
               s->img->ntopics, s->nrows, s->offline, s->under_replicated, s->leaderless, s->read_only,
               s->groups, s->txns, s->open_txns, s->connections);
    for (int i = 0; i < s->nrows; i++) {
        if (i)
            buf_put(o, ",", 1);
        json_row(o, &s->rows[i]);
    }
    buf_put(o, "]}\n", 3);
}

/* ---- text ------------------------------------------------------------------- */

static void text_problem(void *arg, const char *text) { buf_printf(arg, "  problem: %s\n", text); }
static void text_warning(void *arg, const char *text) { buf_printf(arg, "  warning: %s\n", text); }

static void text_row(buf_t *o, const status_row *r)
{
    char reps[64] = "", isr[64] = "";
    for (int32_t i = 0, n = 0; i < r->mp->nreplicas && n < (int)sizeof reps - 12; i++)
        n += snprintf(reps + n, sizeof reps - (size_t)n, "%s%" PRId32, i ? "," : "", r->mp->replicas[i]);
    for (int32_t i = 0, n = 0; i < r->mp->nisr && n < (int)sizeof isr - 12; i++)
        n += snprintf(isr + n, sizeof isr - (size_t)n, "%s%" PRId32, i ? "," : "", r->mp->isr[i]);
    buf_printf(o, "%-32s %5" PRId32 " %6" PRId32 " %5" PRId32 " %-9s %-9s %-8s", r->t->name, r->mp->index,
               r->mp->leader, r->mp->leader_epoch, reps, isr, r->state);
    if (r->local && strcmp(r->state, "missing") != 0)
        buf_printf(o, " %10" PRId64 " %10" PRId64 " %10" PRId64 " %12" PRId64, r->log_start, r->log_end, r->hw,
                   r->bytes);
    buf_put(o, "\n", 1);
}

/* The quorum's history and, at the leader, each voter's position. */
static void text_quorum(buf_t *o, const status_snap *s)
{
    const meta_quorum_status *q = &s->quorum;
    buf_printf(o, "  elections this node stood for %" PRIu64 ", last change of leader or epoch ", q->elections);
    if (q->last_election_ms_ago >= 0)
        buf_printf(o, "%" PRId64 ".%" PRId64 " s ago\n", q->last_election_ms_ago / 1000,
                   q->last_election_ms_ago % 1000 / 100);
    else
        buf_printf(o, "never seen\n");
    if (q->snapshot_end_offset > 0)
        buf_printf(o, "  metadata snapshot at offset %" PRId64 ", %" PRId64 " s old; log starts at %" PRId64 "\n",
                   q->snapshot_end_offset, q->snapshot_age_ms / 1000, q->log_start_offset);
    else
        buf_printf(o, "  no metadata snapshot yet; log starts at %" PRId64 "\n", q->log_start_offset);
    if (!q->leader_view && q->leader_id < 0) {
        buf_printf(o, "  no leader: the voters' log end, lag and last fetch are known at the leader only\n");
        return;
    }
    if (!q->leader_view) {
        buf_printf(o, "  voters' log end, lag and last fetch: known at the leader (node %" PRId32 ")\n", q->leader_id);
        return;
    }
    buf_printf(o, "  %-6s %12s %8s %14s\n", "VOTER", "LOG-END", "LAG", "LAST-FETCH");
    for (int i = 0; i < q->n_replicas; i++) {
        const meta_quorum_replica *r = &q->replicas[i];
        char fetch[32] = "-";
        if (r->last_fetch_ms_ago >= 0)
            snprintf(fetch, sizeof fetch, "%" PRId64 " ms ago", r->last_fetch_ms_ago);
        buf_printf(o, "  %-6" PRId32 " %12" PRId64 " %8" PRId64 " %14s%s\n", r->id, r->log_end_offset,
                   r->log_end_offset >= 0 ? MAX(q->high_watermark - r->log_end_offset, 0) : -1, fetch,
                   r->id == q->leader_id ? "  (leader)" : "");
    }
}

static void render_text(const status_snap *s, buf_t *o)
{
    const config *c = &s->b->cfg;
    int64_t up = (clock_mono_ms() - s->b->started_ms) / 1000;
    buf_printf(o, "cluster %s: %s\n", c->cluster_id, status_healthy(s) ? "healthy" : "DEGRADED");
    each_problem(s, text_problem, o);
    status_each_warning(s, text_warning, o);
    buf_printf(o, "node %" PRId32 " at %s:%u, version %s, up %" PRId64 "h%02" PRId64 "m%02" PRId64 "s, %s\n",
               c->node_id, c->listen.host, s->b->port, CHRONIK_VERSION, up / 3600, up / 60 % 60, up % 60,
               s->ready ? "ready" : s->ready_reason);
    buf_printf(o, "metadata quorum: %s, leader %" PRId32 ", epoch %" PRId32 ", high watermark %" PRId64
                  ", this node %s, %d voter(s), offset %" PRId64 "\n",
               c->nvoters > 1 ? "cluster" : "single node", s->quorum.leader_id, s->quorum.epoch,
               s->quorum.high_watermark, s->quorum.role, c->nvoters, s->img->offset);
    text_quorum(o, s);
    buf_printf(o, "topics %" PRId32 ", partitions %d (offline %d, under-replicated %d, leaderless %d, "
                  "read-only %d), groups %d, transactional ids %d (open %d), connections %" PRIu64 "\n",
               s->img->ntopics, s->nrows, s->offline, s->under_replicated, s->leaderless, s->read_only,
               s->groups, s->txns, s->open_txns, s->connections);
    buf_printf(o, "brokers %" PRId32 " registered, %d fenced\n", s->img->nbrokers, s->fenced);
    if (s->disk_free >= 0)
        buf_printf(o, "disk: %s, %" PRId64 " MiB free of %" PRId64 " MiB\n", c->data_dir, s->disk_free >> 20,
                   s->disk_total >> 20);
    buf_printf(o, "\n%-32s %5s %6s %5s %-9s %-9s %-8s %10s %10s %10s %12s\n", "TOPIC", "PART", "LEADER", "EPOCH",
               "REPLICAS", "ISR", "STATE", "LOG-START", "LOG-END", "HW", "BYTES");
    int hidden = 0;
    for (int i = 0; i < s->nrows; i++) {
        const status_row *r = &s->rows[i];
        bool fine = strcmp(r->state, "online") == 0 || strcmp(r->state, "remote") == 0;
        if (status_internal_topic(r->t) && fine && r->mp->leader >= 0 && r->mp->nisr >= r->mp->nreplicas) {
            hidden++; /* healthy internal partitions are counted, not listed */
            continue;
        }
        text_row(o, r);
    }
    if (hidden)
        buf_printf(o, "(%d healthy partitions of internal topics not listed; /status has them all)\n", hidden);
}

/* ---- Prometheus gauges -------------------------------------------------------- */

static void gauge_rows(buf_t *o, const status_snap *s, const char *name, int field)
{
    for (int i = 0; i < s->nrows; i++) {
        const status_row *r = &s->rows[i];
        if (!r->local || strcmp(r->state, "missing") == 0)
            continue;
        int64_t v = field == 0 ? r->log_start : field == 1 ? r->log_end : field == 2 ? r->hw : r->bytes;
        buf_printf(o, "%s{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n", name, r->t->name, r->mp->index, v);
    }
}

void broker_status_metrics(broker *b, buf_t *out)
{
    status_snap s;
    status_take(&s, b);
    buf_printf(out,
               "# TYPE chronik_partitions gauge\n"
               "chronik_partitions %d\n"
               "# TYPE chronik_partitions_offline gauge\n"
               "chronik_partitions_offline %d\n"
               "# TYPE chronik_partitions_under_replicated gauge\n"
               "chronik_partitions_under_replicated %d\n"
               "# TYPE chronik_partitions_leaderless gauge\n"
               "chronik_partitions_leaderless %d\n"
               "# TYPE chronik_partitions_read_only gauge\n"
               "chronik_partitions_read_only %d\n",
               s.nrows, s.offline, s.under_replicated, s.leaderless, s.read_only);
    if (s.disk_free >= 0)
        buf_printf(out, "# TYPE chronik_log_dir_free_bytes gauge\nchronik_log_dir_free_bytes{dir=\"%s\"} %" PRId64
                        "\n# TYPE chronik_log_dir_total_bytes gauge\nchronik_log_dir_total_bytes{dir=\"%s\"} %" PRId64
                        "\n",
                   b->cfg.data_dir, s.disk_free, b->cfg.data_dir, s.disk_total);
    buf_printf(out, "# TYPE chronik_brokers gauge\nchronik_brokers{state=\"unfenced\"} %d\n"
                    "chronik_brokers{state=\"fenced\"} %d\n",
               (int)s.img->nbrokers - s.fenced, s.fenced);
    const meta_quorum_status *q = &s.quorum;
    buf_printf(out,
               "# TYPE chronik_raft_epoch gauge\nchronik_raft_epoch %" PRId32 "\n"
               "# TYPE chronik_raft_leader_id gauge\nchronik_raft_leader_id %" PRId32 "\n"
               "# TYPE chronik_raft_high_watermark gauge\nchronik_raft_high_watermark %" PRId64 "\n"
               "# TYPE chronik_raft_elections_total counter\nchronik_raft_elections_total %" PRIu64 "\n"
               "# TYPE chronik_raft_snapshot_offset gauge\nchronik_raft_snapshot_offset %" PRId64 "\n"
               "# TYPE chronik_raft_snapshot_age_ms gauge\nchronik_raft_snapshot_age_ms %" PRId64 "\n"
               "# TYPE chronik_raft_log_start_offset gauge\nchronik_raft_log_start_offset %" PRId64 "\n"
               "# TYPE chronik_raft_voter_lag gauge\n",
               q->epoch, q->leader_id, q->high_watermark, q->elections, q->snapshot_end_offset,
               q->snapshot_age_ms, q->log_start_offset);
    for (int i = 0; i < q->n_replicas; i++)
        if (q->replicas[i].log_end_offset >= 0)
            buf_printf(out, "chronik_raft_voter_lag{voter=\"%" PRId32 "\"} %" PRId64 "\n", q->replicas[i].id,
                       MAX(q->high_watermark - q->replicas[i].log_end_offset, 0));
    buf_printf(out, "# TYPE chronik_partition_damaged_from_offset gauge\n");
    for (int i = 0; i < s.nrows; i++)
        if (s.rows[i].damaged_from >= 0)
            buf_printf(out, "chronik_partition_damaged_from_offset{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64
                            "\nchronik_partition_damaged_to_offset{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
                       s.rows[i].t->name, s.rows[i].mp->index, s.rows[i].damaged_from, s.rows[i].t->name,
                       s.rows[i].mp->index, s.rows[i].damaged_to);
    static const char *const names[] = {"chronik_partition_log_start_offset", "chronik_partition_log_end_offset",
                                        "chronik_partition_high_watermark", "chronik_partition_size_bytes"};
    for (int f = 0; f < (int)ARRAY_LEN(names); f++) {
        buf_printf(out, "# TYPE %s gauge\n", names[f]);
        gauge_rows(out, &s, names[f], f);
    }
    status_release(&s);
}

bool broker_status(buf_t *out, bool text, void *ctx)
{
    status_snap s;
    status_take(&s, ctx);
    if (text)
        render_text(&s, out);
    else
        status_render_json(&s, out);
    bool ok = status_healthy(&s);
    status_release(&s);
    return ok;
}
