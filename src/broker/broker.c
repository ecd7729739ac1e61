/* broker.c - a node's start-up, shutdown, readiness and metrics (broker.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <semaphore.h>

#include "base/log.h"
#include "base/util.h"
#include "broker/broker_int.h"
#include "broker/status.h"

static _Atomic int g_stop_requested;
static sem_t g_stop_sem; /* posted by broker_request_stop: sem_post is async-signal-safe */

/* Before main, so that a signal can never find it uninitialised. */
__attribute__((constructor)) static void stop_sem_init(void) { sem_init(&g_stop_sem, 0, 0); }

void broker_request_stop(void)
{
    atomic_store(&g_stop_requested, 1);
    sem_post(&g_stop_sem);
}

static void metrics_line(buf_t *out, const char *name, const char *labels, uint64_t v)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%s%s %" PRIu64 "\n", name, labels, v);
    buf_put(out, line, (size_t)n);
}

static void broker_metrics(buf_t *out, void *ctx)
{
    broker *b = ctx;
    net_stats ns;
    net_stats_get(b->net, &ns);
    static const char help[] =
        "# TYPE chronik_connections_accepted_total counter\n"
        "# TYPE chronik_connections_active gauge\n"
        "# TYPE chronik_connections_refused_total counter\n"
        "# TYPE chronik_connections_idle_closed_total counter\n"
        "# TYPE chronik_request_queued_bytes gauge\n"
        "# TYPE chronik_request_budget_waits_total counter\n"
        "# TYPE chronik_memory_trims_total counter\n"
        "# TYPE chronik_network_bytes_in_total counter\n"
        "# TYPE chronik_network_bytes_out_total counter\n"
        "# TYPE chronik_requests_total counter\n"
        "# TYPE chronik_request_errors_total counter\n"
        "# TYPE chronik_log_flush_rounds_total counter\n"
        "# TYPE chronik_log_fsyncs_total counter\n"
        "# TYPE chronik_log_flush_waiters_total counter\n"
        "# TYPE chronik_log_scrub_rounds_total counter\n"
        "# TYPE chronik_log_scrub_damaged_ranges_total counter\n";
    buf_put(out, help, sizeof help - 1);
    metrics_line(out, "chronik_connections_accepted_total", "", ns.connections_accepted);
    metrics_line(out, "chronik_connections_active", "", ns.connections_active);
    metrics_line(out, "chronik_connections_refused_total", "{reason=\"max_connections\"}",
                 ns.connections_rejected);
    metrics_line(out, "chronik_connections_refused_total", "{reason=\"max_connections_per_ip\"}",
                 ns.connections_rejected_per_ip);
    metrics_line(out, "chronik_connections_refused_total", "{reason=\"out_of_descriptors\"}",
                 ns.connections_fd_shed);
    metrics_line(out, "chronik_connections_idle_closed_total", "", ns.idle_closes);
    metrics_line(out, "chronik_request_queued_bytes", "", ns.request_queued_bytes);
    metrics_line(out, "chronik_request_budget_waits_total", "", ns.budget_waits);
    metrics_line(out, "chronik_memory_trims_total", "", ns.memory_trims);
    metrics_line(out, "chronik_network_bytes_in_total", "", ns.bytes_in);
    metrics_line(out, "chronik_network_bytes_out_total", "", ns.bytes_out);
    metrics_line(out, "chronik_request_errors_total", "{reason=\"malformed\"}",
                 atomic_load(&b->stats.request_errors));
    metrics_line(out, "chronik_request_errors_total", "{reason=\"oversize\"}", ns.oversize_closes);
    metrics_line(out, "chronik_request_errors_total", "{reason=\"bad_length\"}", ns.bad_length_closes);
    metrics_line(out, "chronik_request_errors_total", "{reason=\"unsupported_version\"}",
                 atomic_load(&b->stats.unsupported_versions));
    flusher_stats_t fs;
    flusher_get_stats(replica_flusher(b->replicas), &fs);
    metrics_line(out, "chronik_log_flush_rounds_total", "", fs.rounds);
    metrics_line(out, "chronik_log_fsyncs_total", "", fs.syncs);
    metrics_line(out, "chronik_log_flush_waiters_total", "", fs.callbacks);
    metrics_line(out, "chronik_log_scrub_rounds_total", "", atomic_load(&b->stats.scrub_rounds));
    metrics_line(out, "chronik_log_scrub_damaged_ranges_total", "", atomic_load(&b->stats.scrub_damaged_ranges));
    broker_status_metrics(b, out);
    for (int k = 0; k < PROTO_API_KEY_LIMIT; k++) {
        uint64_t v = atomic_load(&b->stats.requests[k]);
        const proto_api_desc *api = proto_api((int16_t)k);
        if (!v || !api)
            continue;
        char labels[96];
        snprintf(labels, sizeof labels, "{api=\"%s\"}", api->name);
        metrics_line(out, "chronik_requests_total", labels, v);
    }
}

/* Registered and unfenced in the published metadata (DESIGN.md §3: ready). */
static bool broker_unfenced(broker *b)
{
    meta_image *img = meta_acquire(b->meta);
    const meta_broker *me = meta_image_broker(img, b->cfg.node_id);
    bool ok = me && !me->fenced;
    meta_image_release(img);
    return ok;
}

bool broker_ready_check(broker *b, char *reason, size_t len)
{
    if (atomic_load(&g_stop_requested)) {
        snprintf(reason, len, "shutting down");
        return false;
    }
    if (b->meta && !meta_caught_up(b->meta)) {
        snprintf(reason, len, "metadata not caught up with the quorum");
        return false;
    }
    if (b->meta && !broker_unfenced(b)) {
        snprintf(reason, len, "this broker is not registered and unfenced at the controller");
        return false;
    }
    return true;
}

static bool broker_ready(char *reason, size_t len, void *ctx) { return broker_ready_check(ctx, reason, len); }

void broker_park(broker *b, parked *p)
{
    pthread_mutex_lock(&b->parked_lock);
    p->next = b->parked_head.next;
    p->prev = &b->parked_head;
    p->next->prev = p;
    b->parked_head.next = p;
    pthread_mutex_unlock(&b->parked_lock);
}

void broker_unpark(broker *b, parked *p)
{
    pthread_mutex_lock(&b->parked_lock);
    if (p->next) {
        p->prev->next = p->next;
        p->next->prev = p->prev;
        p->next = p->prev = NULL;
    }
    pthread_mutex_unlock(&b->parked_lock);
}

/* A stop was requested: answer every parked request now, on its reactor. */
static void expire_parked(broker *b)
{
    pthread_mutex_lock(&b->parked_lock);
    for (parked *p = b->parked_head.next; p != &b->parked_head; p = p->next)
        p->expire(p);
    pthread_mutex_unlock(&b->parked_lock);
}

/* After the reactors ended: answer what still waits (replies are dropped). */
static void cancel_parked(broker *b)
{
    for (;;) {
        pthread_mutex_lock(&b->parked_lock);
        parked *p = b->parked_head.next;
        pthread_mutex_unlock(&b->parked_lock);
        if (p == &b->parked_head)
            return;
        p->cancel(p);
    }
}

static void on_meta_change(void *ctx, const meta_image *old, const meta_image *cur)
{
    broker *b = ctx;
    bool defaults_changed = dynconf_apply(b, cur); /* before the logs take their configuration from it */
    if (b->cfg.producer_id_expiration_ms > 0)
        replica_set_producer_id_expiration(b->replicas, b->cfg.producer_id_expiration_ms);
    if (b->cfg.replica_lag_time_max_ms > 0)
        replica_set_lag_time_max(b->replicas, b->cfg.replica_lag_time_max_ms);
    replica_sync(b->replicas, cur, defaults_changed ? NULL : old);
}

static void housekeep_one(void *arg, partition *p)
{
    (void)arg;
    int deleted = 0;
    plog_maybe_roll(p->log);
    if (plog_retention(p->log, &deleted) == STORAGE_OK && deleted > 0)
        log_info("storage", "retention deleted segments topic=%s partition=%d segments=%d", p->topic, p->index,
                 deleted);
}

/* ---- compaction of cleanup.policy=compact topics (storage compact.c) ---- */

typedef struct compact_list {
    const meta_image *img;
    char **topics;
    int32_t *parts;
    int n, cap;
} compact_list;

static void compact_collect(void *arg, partition *p)
{
    compact_list *t = arg;
    const meta_topic *mt = meta_image_topic(t->img, p->topic, strlen(p->topic));
    const char *policy = mt ? meta_topic_config(mt, "cleanup.policy") : NULL;
    if (!policy || !strstr(policy, "compact"))
        return;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->topics = xrealloc(t->topics, (size_t)t->cap * sizeof *t->topics);
        t->parts = xrealloc(t->parts, (size_t)t->cap * sizeof *t->parts);
    }
    t->topics[t->n] = xstrdup(p->topic);
    t->parts[t->n++] = p->index;
}

static bool compact_cancelled(void *arg)
{
    broker *b = arg;
    pthread_mutex_lock(&b->hk_lock);
    bool stop = b->hk_stop;
    pthread_mutex_unlock(&b->hk_lock);
    return stop;
}

static void compact_one(broker *b, const meta_topic *t, partition *p)
{
    plog_compact_opts_t o;
    plog_compact_opts_default(&o);
    o.max_offset = partition_last_stable_offset(p); /* no open transaction is cleaned (compact.c R10) */
    o.delete_retention_ms = topic_config_long(&b->cfg, t, "delete.retention.ms");
    o.min_lag_ms = topic_config_long(&b->cfg, t, "min.compaction.lag.ms");
    o.max_lag_ms = topic_config_long(&b->cfg, t, "max.compaction.lag.ms");
    o.min_dirty_ratio = topic_config_double(&b->cfg, t, "min.cleanable.dirty.ratio");
    o.cancel = compact_cancelled;
    o.cancel_arg = b;
    int rc = plog_compact(p->log, &o, NULL);
    if (rc != STORAGE_OK)
        log_warn("storage", "compaction failed topic=%s partition=%d err=\"%s\"", p->topic, p->index,
                 storage_strerror(rc));
}

/* One pass per compacted partition, outside the partition table's lock. */
static void compact_all(broker *b)
{
    compact_list pending = {.img = meta_acquire(b->meta)};
    replica_each(b->replicas, compact_collect, &pending);
    for (int i = 0; i < pending.n; i++) {
        size_t len = strlen(pending.topics[i]);
        const meta_topic *t = meta_image_topic(pending.img, pending.topics[i], len);
        partition *p = replica_get(b->replicas, pending.topics[i], len, pending.parts[i]);
        if (t && p && !compact_cancelled(b))
            compact_one(b, t, p);
        partition_put(p);
        free(pending.topics[i]);
    }
    meta_image_release((meta_image *)pending.img);
    free(pending.topics);
    free(pending.parts);
}

/* Waits on hk_cond (hk_lock held) until the monotonic time due_ms, a
 * signal, or a stop. */
static void housekeeper_wait(broker *b, int64_t due_ms)
{
    int64_t ms = MAX(due_ms - clock_mono_ms(), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&b->hk_cond, &b->hk_lock, &ts);
}

/* Retention and time-based rolls every log.retention.check.interval.ms;
 * compaction every log.cleaner.backoff.ms (Kafka's cleaner cadence: each
 * pass decides per partition whether it is due, from its dirty ratio and
 * min/max.compaction.lag.ms). The intervals are read again at least every
 * HOUSEKEEP_RECHECK_MS, so a dynamic change applies within that. */
enum { HOUSEKEEP_RECHECK_MS = 1000, HOUSEKEEP_MIN_INTERVAL_MS = 10 };

static void *housekeeper(void *arg)
{
    broker *b = arg;
    int64_t last_retention = clock_mono_ms(), last_clean = last_retention;
    pthread_mutex_lock(&b->hk_lock);
    while (!b->hk_stop) {
        int64_t retention_due =
            last_retention + MAX(b->cfg.log_retention_check_interval_ms, HOUSEKEEP_MIN_INTERVAL_MS);
        int64_t clean_due =
            last_clean + MAX(b->cfg.log_cleaner_backoff_ms, HOUSEKEEP_MIN_INTERVAL_MS);
        housekeeper_wait(b, MIN(MIN(retention_due, clean_due), clock_mono_ms() + HOUSEKEEP_RECHECK_MS));
        if (b->hk_stop)
            break;
        pthread_mutex_unlock(&b->hk_lock);
        if (clock_mono_ms() >= retention_due) {
            replica_each(b->replicas, housekeep_one, b);
            last_retention = clock_mono_ms();
        }
        if (clock_mono_ms() >= clean_due) {
            compact_all(b);
            last_clean = clock_mono_ms();
        }
        broker_sasl_bootstrap(b);
        pthread_mutex_lock(&b->hk_lock);
    }
    pthread_mutex_unlock(&b->hk_lock);
    return NULL;
}

static void fmt_hostport(char *out, size_t n, const config_addr *a)
{
    snprintf(out, n, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
}

/* The client listeners this node registers: every listener but the
 * controller's, with its advertised address (borrowed from cfg). */
static void register_listeners(const config *cfg, meta_config *mc)
{
    for (int i = 0; i < cfg->nlisteners && mc->nendpoints < META_ENDPOINTS_MAX; i++) {
        const config_listener *l = &cfg->listeners[i];
        if (!l->controller)
            mc->endpoints[mc->nendpoints++] = (meta_endpoint){(char *)l->name, (char *)l->advertise.host,
                                                              (uint16_t)l->advertise.port, (int16_t)l->protocol};
    }
}

static int open_storage(broker *b)
{
    sfs_t *fs = sfs_posix();
    b->replicas = replica_new(b->cfg.data_dir, fs, b->cfg.node_id, topic_config_plog, &b->cfg);
    meta_config mc = {.data_dir = b->cfg.data_dir, .fs = fs, .node_id = b->cfg.node_id,
                      .election_timeout_ms = b->cfg.quorum_election_timeout_ms,
                      .election_backoff_max_ms = b->cfg.quorum_election_backoff_max_ms,
                      .fetch_timeout_ms = b->cfg.quorum_fetch_timeout_ms,
                      .inter_broker = b->cfg.listeners[b->cfg.inter_broker].name,
                      .heartbeat_interval_ms = b->cfg.broker_heartbeat_interval_ms,
                      .session_timeout_ms = b->cfg.broker_session_timeout_ms,
                      .unclean_leader_election = b->cfg.unclean_leader_election_enable,
                      .auto_leader_rebalance = b->cfg.auto_leader_rebalance_enable,
                      .leader_imbalance_check_interval_ms = b->cfg.leader_imbalance_check_interval_seconds * 1000,
                      .snapshot_max_bytes = b->cfg.metadata_snapshot_max_bytes,
                      .snapshot_interval_ms = b->cfg.metadata_snapshot_interval_ms > 0
                                                  ? b->cfg.metadata_snapshot_interval_ms : -1,
                      .controller_security = &b->peer_controller};
    register_listeners(&b->cfg, &mc);
    for (int i = 0; i < b->cfg.nvoters && i < META_VOTERS_MAX; i++) {
        mc.voter_ids[mc.n_voters] = b->cfg.voters[i].id;
        fmt_hostport(mc.voter_addrs[mc.n_voters], sizeof mc.voter_addrs[0], &b->cfg.voters[i].addr);
        mc.n_voters++;
    }
    int rc = meta_open(&mc, on_meta_change, b, &b->meta);
    if (rc != STORAGE_OK) {
        log_error("broker", "cannot open the metadata log dir=%s err=\"%s\"", b->cfg.data_dir, storage_strerror(rc));
        return -1;
    }
    pthread_mutex_init(&b->hk_lock, NULL);
    pthread_cond_init(&b->hk_cond, NULL);
    if (pthread_create(&b->housekeeper, NULL, housekeeper, b) != 0)
        CK_PANIC("cannot start the housekeeping thread");
    b->groups = broker_groups_start(b);
    b->txns = broker_txns_start(b);
    broker_scrubber_start(b);
    return 0;
}

static void close_storage(broker *b)
{
    broker_scrubber_stop(b);
    tcoord_stop(b->txns);
    group_coord_stop(b->groups);
    if (b->meta) {
        pthread_mutex_lock(&b->hk_lock);
        b->hk_stop = true;
        pthread_cond_signal(&b->hk_cond);
        pthread_mutex_unlock(&b->hk_lock);
        pthread_join(b->housekeeper, NULL);
        meta_close(b->meta);
    }
    if (b->replicas)
        replica_free(b->replicas);
}

static int listen_failed(const char *listener, const char *flag, const char *addr, int err)
{
    bool in_use = err == EADDRINUSE;
    log_error("broker", "cannot listen listener=%s addr=%s err=\"%s\"%s%s%s", listener, addr, strerror(err),
              in_use ? " (each node on a host needs its own " : "", in_use ? flag : "", in_use ? ")" : "");
    return -1;
}

/* Before anything in the data directory is read or written. */
static int lock_dir(broker *b)
{
    char err[STORAGE_PATH_MAX + 128];
    if (storage_lock_dir(b->cfg.data_dir, &b->dir_lock_fd, err, sizeof err) != 0) {
        log_error("broker", "%s", err);
        return -1;
    }
    int swept = storage_sweep_deleted(b->cfg.data_dir, sfs_posix());
    if (swept < 0)
        log_warn("broker", "cannot list the data directory dir=%s err=\"%s\"", b->cfg.data_dir, strerror(-swept));
    return 0;
}

static net_config net_settings(const config *cfg)
{
    net_config nc = net_config_defaults();
    nc.num_threads = cfg->num_network_threads;
    nc.request_max_bytes = (size_t)cfg->socket_request_max_bytes;
    nc.queued_max_bytes = cfg->queued_max_request_bytes < 0 ? 0 : (size_t)cfg->queued_max_request_bytes;
    nc.max_connections = (uint32_t)cfg->max_connections;
    nc.max_connections_per_ip = (uint32_t)cfg->max_connections_per_ip;
    int64_t idle_ms = cfg->connections_max_idle_ms;
    nc.idle_timeout_ms = idle_ms <= 0 ? 0 : (uint32_t)MIN(idle_ms, (int64_t)UINT32_MAX);
    return nc;
}

/* Each client listener of the configuration, with its own handler context
 * (the listener a request came on decides the address clients are told). */
static int bind_client_listeners(broker *b)
{
    for (int i = 0; i < b->cfg.nlisteners; i++) {
        const config_listener *cl = &b->cfg.listeners[i];
        if (cl->controller)
            continue;
        broker_listener *l = &b->listeners[b->nlisteners++];
        *l = (broker_listener){.b = b, .cfg = cl};
        net_handler h = {.on_frame = broker_on_frame, .ctx = l,
                         .tls = cl->protocol == CONFIG_SSL || cl->protocol == CONFIG_SASL_SSL ? b->tls : NULL};
        if (broker_sasl_listener(l))
            broker_sasl_handler(&h);
        char addr[CONFIG_HOST_MAX + 16];
        fmt_hostport(addr, sizeof addr, &cl->addr);
        int rc = net_listen(b->net, addr, &h, &l->port);
        if (rc != 0)
            return listen_failed(cl->name, "--listen", addr, -rc);
        if (i == b->cfg.inter_broker)
            b->port = l->port;
        log_info("broker", "listening listener=%s protocol=%s addr=%s advertised=%s:%d", cl->name,
                 config_protocol_name(cl->protocol), addr, cl->advertise.host, cl->advertise.port);
    }
    return 0;
}

/* The controller listener's callbacks: its own dispatch table, no
 * connection limits, and TLS and SASL logins when its protocol says so. */
static net_handler controller_handler(broker *b)
{
    static const config_listener plain = {.name = "CONTROLLER", .protocol = CONFIG_PLAINTEXT, .controller = true};
    const config_listener *cl = &plain;
    for (int i = 0; i < b->cfg.nlisteners; i++)
        if (b->cfg.listeners[i].controller)
            cl = &b->cfg.listeners[i];
    b->controller_listener = (broker_listener){.b = b, .cfg = cl};
    bool tls = cl->protocol == CONFIG_SSL || cl->protocol == CONFIG_SASL_SSL;
    net_handler h = {.on_frame = broker_on_controller_frame, .ctx = &b->controller_listener, .unlimited = true,
                     .tls = tls ? b->tls : NULL};
    if (broker_sasl_listener(&b->controller_listener))
        broker_sasl_handler(&h);
    return h;
}

/* Bind every listener before the data directory is touched, so that an
 * address in use is the first thing reported. Connections wait in the
 * backlogs until the broker serves. The controller listener has its own
 * dispatch table (dispatch.c) and no connection limits. */
static int bind_listeners(broker *b)
{
    net_raise_fd_limit();
    net_config nc = net_settings(&b->cfg);
    b->net = net_new(&nc);
    if (broker_peer_security_open(b) != 0 || broker_tls_open(b) != 0 || bind_client_listeners(b) != 0)
        return -1;
    char caddr[CONFIG_HOST_MAX + 16];
    fmt_hostport(caddr, sizeof caddr, &b->cfg.controller_listen);
    net_handler ch = controller_handler(b);
    int rc = net_listen(b->net, caddr, &ch, &b->controller_port);
    if (rc != 0)
        return listen_failed("controller", "--controller-listen", caddr, -rc);
    b->admin = admin_http_listen(b->cfg.admin_listen.host, b->cfg.admin_listen.port, NULL);
    if (!b->admin)
        return -1;
    log_info("broker", "node_id=%d threads=%d inter_broker_listener=%s", b->cfg.node_id, nc.num_threads,
             b->cfg.listeners[b->cfg.inter_broker].name);
    return 0;
}

static void serve_admin(broker *b)
{
    admin_http_cb acb = {.metrics = broker_metrics, .ready = broker_ready, .status = broker_status,
                         .console = broker_console, .ctx = b};
    admin_http_serve(b->admin, &acb);
}

/* Request buffers of up to a few MiB are allocated and freed at a high rate.
 * With glibc's defaults each free can shrink the heap and the next request's
 * pages fault back in (measured: ~9,000 faults and ~0.15 s of broker CPU per
 * million produced messages). Keep such memory in the heap: serve blocks up
 * to 64 MiB from it and return memory to the kernel only above 1 GiB free.
 * Both settings are needed; either alone makes it worse (bench/RESULTS.md). */
static void tune_allocator(void)
{
    mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
}

static bool is_voter(const config *cfg)
{
    for (int i = 0; i < cfg->nvoters; i++)
        if (cfg->voters[i].id == cfg->node_id)
            return true;
    return cfg->nvoters == 0;
}

int broker_run(const config *cfg)
{
    tune_allocator();
    broker *b = xcalloc(1, sizeof *b);
    b->cfg = *cfg;
    b->static_cfg = *cfg;
    broker_authz_init(b);
    broker_sasl_local_init(b);
    broker_quotas_init(b);
    b->started_ms = clock_mono_ms();
    b->dir_lock_fd = -1;
    pthread_mutex_init(&b->parked_lock, NULL);
    b->parked_head.next = b->parked_head.prev = &b->parked_head;
    int rc = 1;
    if (is_voter(cfg) == cfg->broker_only) {
        if (cfg->broker_only)
            log_error("broker", "node.id=%d is in controller.quorum.voters but process.roles=broker: a "
                      "broker-only node follows the quorum and cannot be a voter", cfg->node_id);
        else
            log_error("broker", "node.id=%d is not in controller.quorum.voters: a voter must be listed, or "
                      "set process.roles=broker to follow the quorum as an observer", cfg->node_id);
        goto out;
    }
    if (bind_listeners(b) != 0 || broker_data_dir_check(cfg->data_dir) != 0 || lock_dir(b) != 0 ||
        open_storage(b) != 0)
        goto out;
    serve_admin(b);
    log_info("broker", "started version=%s data_dir=%s cluster_id=%s", CHRONIK_VERSION, cfg->data_dir,
             cfg->cluster_id);
    if (net_start(b->net) != 0)
        goto out;
    meta_connect(b->meta, b->net);
    replica_set_peer_security(b->replicas, &b->peer_broker);
    replica_connect(b->replicas, b->net, b->meta);
    tcoord_set_peer_security(b->txns, &b->peer_broker);
    tcoord_connect(b->txns, b->net);
    while (sem_wait(&g_stop_sem) != 0 && errno == EINTR)
        ;
    log_info("broker", "stopping");
    if (b->cfg.controlled_shutdown_enable) /* still serving: clients follow the moved leaderships */
        meta_controlled_shutdown(b->meta, b->cfg.controlled_shutdown_timeout_ms);
    expire_parked(b);
    net_stop(b->net);
    rc = 0;
out:
    admin_http_stop(b->admin);
    cancel_parked(b);
    close_storage(b);
    if (b->net)
        net_free(b->net);
    broker_tls_close(b);
    broker_peer_security_close(b);
    pthread_mutex_destroy(&b->parked_lock);
    storage_unlock_dir(b->dir_lock_fd);
    broker_authz_free(b);
    broker_sasl_local_free(b);
    broker_quotas_free(b);
    free(b);
    if (rc == 0)
        log_info("broker", "stopped");
    return rc;
}
