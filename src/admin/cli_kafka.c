/*
 * cli_kafka.c - the shared half of the Kafka subcommands (cli_kafka.h):
 * options, connecting, blocking calls, the broker map, errors, output.
 *
 * Reaching the bootstrap broker. kclient retries a refused connection
 * forever and keeps the reason to itself, so cli_kafka_open first makes one
 * plain TCP connection of its own (bounded by the request timeout): a
 * refusal or an unreachable host becomes "cannot reach HOST:PORT: reason"
 * and exit 2 at once. Only then does the kclient connect and handshake.
 */
#include "admin/cli_kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "proto/kerr.h"

#define CLI_READY_POLL_MS 5

/* ---- options ---------------------------------------------------------------------- */

const char cli_opts_usage[] =
    "  -b, --bootstrap HOST:PORT   the broker to ask first (default " CLI_BOOTSTRAP_DEFAULT ")\n"
    "  --request-timeout SECONDS   deadline of each request (default 30)\n"
    "  --json                      print JSON instead of a table\n"
    "  -h, --help                  this text\n";

const char cli_exit_usage[] =
    "Exit status: 0 ok; 1 the broker refused or failed the operation (unknown topic\n"
    "or group, already exists, group not empty, not authorised); 2 bad usage, broker\n"
    "unreachable or a request timed out. Errors are one line on stderr.\n";

void cli_opts_init(cli_opts *o)
{
    o->bootstrap = CLI_BOOTSTRAP_DEFAULT;
    o->timeout_ms = CLI_TIMEOUT_DEFAULT_MS;
    o->json = false;
}

bool cli_is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

int cli_subcommand(int argc, char **argv, const char *const *subs, int n, void (*usage)(FILE *out), int *rc)
{
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            usage(stdout);
            *rc = 0;
            return -1;
        }
    for (int i = 0; argc >= 2 && i < n; i++)
        if (strcmp(argv[1], subs[i]) == 0)
            return i;
    if (argc >= 2)
        fprintf(stderr, "chronik %s: unknown subcommand '%s'\n\n", argv[0], argv[1]);
    usage(stderr);
    *rc = CLI_EXIT_USAGE;
    return -1;
}

int cli_bad_arg(const char *cmd, const char *arg, bool needs_value)
{
    if (needs_value)
        fprintf(stderr, "chronik %s: option '%s' needs a value\n", cmd, arg);
    else
        fprintf(stderr, "chronik %s: unknown argument '%s'\n", cmd, arg);
    return CLI_EXIT_USAGE;
}

bool cli_parse_i64(const char *cmd, const char *opt, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != 0 || x < lo || x > hi) {
        fprintf(stderr, "chronik %s: invalid %s '%s' (want a whole number from %lld to %lld)\n", cmd, opt,
                v, (long long)lo, (long long)hi);
        return false;
    }
    *out = x;
    return true;
}

bool cli_parse_hostport(const char *cmd, const char *opt, const char *v, char host[NET_HOST_MAX], uint16_t *port)
{
    *port = 0;
    const char *why = net_hostport_problem(v);
    if (why == NULL && (net_parse_hostport(v, host, port) != 0 || *port == 0 || host[0] == 0))
        why = "want HOST:PORT with a host and a port above 0";
    if (why != NULL) {
        fprintf(stderr, "chronik %s: invalid %s '%s': %s\n", cmd, opt, v, why);
        return false;
    }
    return true;
}

int cli_opts_take(cli_opts *o, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--json") == 0) {
        o->json = true;
        return 1;
    }
    bool boot = strcmp(a, "--bootstrap") == 0 || strcmp(a, "-b") == 0;
    bool tmo = strcmp(a, "--request-timeout") == 0;
    if (!boot && !tmo)
        return 0;
    if (*i + 1 >= argc) {
        cli_bad_arg(cmd, a, true);
        return -1;
    }
    const char *v = argv[++*i];
    if (boot) {
        char host[NET_HOST_MAX];
        uint16_t port;
        if (!cli_parse_hostport(cmd, a, v, host, &port))
            return -1;
        o->bootstrap = v;
        return 1;
    }
    int64_t s;
    if (!cli_parse_i64(cmd, a, v, 1, 86400, &s))
        return -1;
    o->timeout_ms = (uint32_t)(s * 1000);
    return 1;
}

/* ---- errors ------------------------------------------------------------------------ */

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("chronik: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static bool kerr_is_authorization(int16_t code)
{
    const char *n = kerr_name(code);
    size_t len = strlen(n), suffix = strlen("AUTHORIZATION_FAILED");
    return len >= suffix && strcmp(n + len - suffix, "AUTHORIZATION_FAILED") == 0;
}

int cli_kafka_error(int16_t code, kstr_t msg, const char *subject)
{
    char m[512] = "";
    if (!kstr_is_null(msg) && msg.len > 0)
        snprintf(m, sizeof m, ": %.*s", (int)MIN(msg.len, 400), msg.ptr);
    if (code == KERR_UNKNOWN_TOPIC_OR_PARTITION || code == KERR_UNKNOWN_TOPIC_ID ||
        code == KERR_GROUP_ID_NOT_FOUND)
        return cli_fail(CLI_EXIT_FAILED, "unknown %s", subject);
    if (code == KERR_TOPIC_ALREADY_EXISTS)
        return cli_fail(CLI_EXIT_FAILED, "%s already exists", subject);
    if (code == KERR_NON_EMPTY_GROUP)
        return cli_fail(CLI_EXIT_FAILED, "%s is not empty: it has active members", subject);
    if (kerr_is_authorization(code))
        return cli_fail(CLI_EXIT_FAILED, "not authorised: %s (%s)%s", subject, kerr_name(code), m);
    return cli_fail(CLI_EXIT_FAILED, "%s: %s (%s)%s", subject, kerr_message(code), kerr_name(code), m);
}

/* ---- connecting --------------------------------------------------------------------- */

/* One plain TCP connection to addr within timeout_ms: 0, or an errno. */
static int probe_connect(const char *addr, uint32_t timeout_ms)
{
    char host[NET_HOST_MAX], port_s[8];
    uint16_t port;
    if (net_parse_hostport(addr, host, &port) != 0)
        return EINVAL;
    snprintf(port_s, sizeof port_s, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port_s, &hints, &res) != 0 || res == NULL)
        return EHOSTUNREACH;
    int err = 0, fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        err = errno;
    } else if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        err = errno;
    } else {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, (int)timeout_ms);
        socklen_t len = sizeof err;
        if (n == 0)
            err = ETIMEDOUT;
        else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return err;
}

/* Wait until kc has finished its handshake; false after the deadline. */
static bool wait_ready(kclient_t *kc, uint32_t timeout_ms)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while (!kclient_ready(kc)) {
        if (clock_mono_ms() >= deadline)
            return false;
        struct timespec ts = {0, CLI_READY_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* A handshaken client of addr, or NULL (said unless quiet). */
static kclient_t *client_connect(cli_kafka *k, const char *addr, bool quiet)
{
    int err = probe_connect(addr, k->o.timeout_ms);
    if (err != 0) {
        if (!quiet)
            cli_fail(CLI_EXIT_USAGE, "cannot reach %s: %s", addr, strerror(err));
        return NULL;
    }
    kclient_config cfg = kclient_config_defaults();
    cfg.client_id = "chronik-cli";
    cfg.connect_timeout_ms = k->o.timeout_ms;
    kclient_t *kc = kclient_new(k->net, NULL, addr, &cfg);
    if (kc == NULL) {
        cli_fail(CLI_EXIT_USAGE, "cannot reach %s: invalid address", addr);
        return NULL;
    }
    if (!wait_ready(kc, k->o.timeout_ms)) {
        if (!quiet)
            cli_fail(CLI_EXIT_USAGE, "cannot reach %s: timed out after %u ms waiting for the handshake", addr,
                 k->o.timeout_ms);
        kclient_free(kc);
        return NULL;
    }
    return kc;
}

int cli_kafka_open(cli_kafka *k, const cli_opts *o)
{
    memset(k, 0, sizeof *k);
    k->o = *o;
    log_set_level(LOG_ERROR); /* the client's reconnect chatter is not the operator's business */
    net_config cfg = net_config_defaults();
    cfg.num_threads = 1;
    k->net = net_new(&cfg);
    int rc = net_start(k->net);
    if (rc != 0) {
        net_free(k->net);
        k->net = NULL;
        return cli_fail(CLI_EXIT_USAGE, "cannot start networking: %s", strerror(-rc));
    }
    k->boot = client_connect(k, o->bootstrap, false);
    if (k->boot == NULL) {
        cli_kafka_close(k);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

void cli_kafka_close(cli_kafka *k)
{
    for (int i = 0; i < k->nbrokers; i++)
        kclient_free(k->brokers[i].kc);
    kclient_free(k->boot);
    if (k->net != NULL) {
        net_stop(k->net);
        net_free(k->net);
    }
    memset(k, 0, sizeof *k);
}

/* ---- calls ---------------------------------------------------------------------------- */

typedef struct call_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int err;
    const void *resp;
    kclient_resp_t *r;
} call_wait;

static void call_done(void *arg, int err, const void *response, kclient_resp_t *r)
{
    call_wait *w = arg;
    if (r != NULL)
        kclient_resp_keep(r);
    pthread_mutex_lock(&w->mu);
    w->err = err;
    w->resp = response;
    w->r = r;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int16_t cli_version(kclient_t *kc, int16_t api, int16_t want)
{
    int16_t hi = kclient_api_version(kc, api), lo = kclient_api_version_min(kc, api);
    if (hi < 0)
        return -1;
    int16_t v = MIN(hi, want);
    return v >= lo ? v : -1;
}

static int call_error(cli_kafka *k, kclient_t *kc, int16_t api, int err)
{
    const proto_api_desc *d = proto_api(api);
    const char *name = d ? d->name : "?";
    if (err == KCLIENT_ERR_TIMED_OUT)
        return cli_fail(CLI_EXIT_USAGE, "timed out after %u ms waiting for %s to answer %s", k->o.timeout_ms,
                        kclient_address(kc), name);
    if (err == KCLIENT_ERR_UNSUPPORTED_VERSION || err == KCLIENT_ERR_UNKNOWN_API)
        return cli_fail(CLI_EXIT_FAILED, "%s does not support %s", kclient_address(kc), name);
    return cli_fail(CLI_EXIT_USAGE, "%s to %s failed: %s", name, kclient_address(kc), kclient_strerror(err));
}

/* Send and wait: a KCLIENT_ERR_* (the response kept in *resp and *r on OK). */
static int call_wait_for(cli_kafka *k, kclient_t *kc, int16_t api, int16_t v, const void *req, const void **resp,
                         kclient_resp_t **r)
{
    call_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int err = kclient_send(kc, api, v, req, k->o.timeout_ms, call_done, &w);
    if (err == KCLIENT_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        err = w.err;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (err != KCLIENT_OK) {
        kclient_resp_free(w.r);
        return err;
    }
    *resp = w.resp;
    *r = w.r;
    return KCLIENT_OK;
}

int cli_call(cli_kafka *k, kclient_t *kc, int16_t api, int16_t v, const void *req, const void **resp,
             kclient_resp_t **r)
{
    *resp = NULL;
    *r = NULL;
    int err = v < 0 ? KCLIENT_ERR_UNSUPPORTED_VERSION : call_wait_for(k, kc, api, v, req, resp, r);
    return err == KCLIENT_OK ? 0 : call_error(k, kc, api, err);
}

/* ---- brokers and metadata --------------------------------------------------------------- */

static cli_broker *broker_find(cli_kafka *k, int32_t node_id)
{
    for (int i = 0; i < k->nbrokers; i++)
        if (k->brokers[i].node_id == node_id)
            return &k->brokers[i];
    return NULL;
}

void cli_broker_add(cli_kafka *k, int32_t node_id, kstr_t host, int32_t port)
{
    cli_broker *b = broker_find(k, node_id);
    if (b == NULL) {
        if (k->nbrokers == CLI_BROKERS_MAX)
            return;
        b = &k->brokers[k->nbrokers++];
        *b = (cli_broker){.node_id = node_id};
    }
    char addr[CLI_ADDR_MAX];
    bool v6 = memchr(host.ptr, ':', (size_t)MAX(host.len, 0)) != NULL;
    snprintf(addr, sizeof addr, v6 ? "[%.*s]:%d" : "%.*s:%d", (int)MAX(host.len, 0), host.ptr, (int)port);
    if (b->kc != NULL && strcmp(addr, b->addr) != 0) {
        kclient_free(b->kc); /* the node moved */
        b->kc = NULL;
    }
    snprintf(b->addr, sizeof b->addr, "%s", addr);
}

static kclient_t *broker_client(cli_kafka *k, int32_t node_id, bool quiet)
{
    cli_broker *b = broker_find(k, node_id);
    if (b == NULL) {
        if (!quiet)
            cli_fail(CLI_EXIT_USAGE, "broker %d is not in the cluster's metadata", (int)node_id);
        return NULL;
    }
    if (b->kc == NULL)
        b->kc = client_connect(k, b->addr, quiet);
    return b->kc;
}

kclient_t *cli_broker_client(cli_kafka *k, int32_t node_id) { return broker_client(k, node_id, false); }
kclient_t *cli_broker_reach(cli_kafka *k, int32_t node_id) { return broker_client(k, node_id, true); }

void *cli_req_new(cli_req *q, cli_kafka *k, kclient_t *kc, int16_t api, int16_t want, int16_t min)
{
    *q = (cli_req){.k = k, .kc = kc, .api = api, .v = cli_version(kc, api, want)};
    if (q->v < min)
        q->v = -1;
    arena_init(&q->a);
    const proto_struct_desc *d = proto_api(api)->request;
    void *req = arena_alloc(&q->a, d->size);
    proto_set_defaults(d, q->v < 0 ? min : q->v, req);
    return req;
}

int cli_req_call(cli_req *q, const void *req, const void **resp, kclient_resp_t **r)
{
    int rc;
    *resp = NULL;
    *r = NULL;
    if (q->lost_quietly && q->v >= 0) {
        int err = call_wait_for(q->k, q->kc, q->api, q->v, req, resp, r);
        bool lost = err == KCLIENT_ERR_DISCONNECTED || err == KCLIENT_ERR_TIMED_OUT;
        rc = err == KCLIENT_OK ? 0 : lost ? CLI_CALL_LOST : call_error(q->k, q->kc, q->api, err);
    } else {
        rc = cli_call(q->k, q->kc, q->api, q->v, req, resp, r);
    }
    arena_free(&q->a);
    return rc;
}

int cli_metadata(cli_kafka *k, const char *const *names, int n, const MetadataResponse **md,
                 kclient_resp_t **r)
{
    cli_req q;
    MetadataRequest *req = cli_req_new(&q, k, k->boot, CLI_API_METADATA, 12, 1);
    req->AllowAutoTopicCreation = false;
    if (names == NULL) {
        req->Topics.count = -1;
    } else {
        MetadataRequest_MetadataRequestTopic *t =
            proto_array_init(&q.a, &req->Topics, n, sizeof(*t), &MetadataRequest_MetadataRequestTopic_desc);
        for (int i = 0; i < n; i++)
            t[i].Name = kstr_from(names[i]);
    }
    int rc = cli_req_call(&q, req, (const void **)md, r);
    if (rc != 0)
        return rc;
    for (int32_t i = 0; i < (*md)->Brokers.count; i++) {
        const MetadataResponse_MetadataResponseBroker *b = &(*md)->Brokers.items[i];
        cli_broker_add(k, b->NodeId, b->Host, b->Port);
    }
    return 0;
}

const MetadataResponse_MetadataResponseTopic *cli_md_topic(const MetadataResponse *md, const char *name)
{
    for (int32_t i = 0; i < md->Topics.count; i++)
        if (kstr_eq(md->Topics.items[i].Name, name))
            return &md->Topics.items[i];
    return NULL;
}

/* ---- output ---------------------------------------------------------------------------- */

void cli_json_str(FILE *f, const char *s, int32_t len)
{
    if (len < 0) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (int32_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void cli_json_kv(FILE *f, const char *before, kstr_t s)
{
    fputs(before, f);
    cli_json_kstr(f, s);
}

void cli_json_i32s(FILE *f, const kint32_array_t *a)
{
    fputc('[', f);
    for (int32_t i = 0; i < a->count; i++)
        fprintf(f, "%s%d", i ? "," : "", (int)a->items[i]);
    fputc(']', f);
}

const char *cli_i32s(const kint32_array_t *a, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = 0;
    for (int32_t i = 0; i < a->count && at < cap; i++) {
        int n = snprintf(out + at, cap - at, "%s%d", i ? "," : "", (int)a->items[i]);
        if (n < 0)
            break;
        at += (size_t)n;
    }
    return out;
}

const char *cli_kstr(kstr_t s, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)MAX(s.len, 0), s.ptr ? s.ptr : "");
    return out;
}

void cli_table_init(cli_table *t, int ncols)
{
    CK_ASSERT(ncols > 0 && ncols <= CLI_TABLE_COLS_MAX);
    *t = (cli_table){.ncols = ncols};
}

void cli_table_row(cli_table *t, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = xrealloc(t->cells, (size_t)t->cap * (size_t)t->ncols * sizeof(char *));
    }
    char **row = t->cells + (size_t)t->nrows * (size_t)t->ncols;
    const char *p = line;
    for (int c = 0; c < t->ncols; c++) {
        const char *tab = c + 1 < t->ncols ? strchr(p, '\t') : NULL;
        size_t n = tab ? (size_t)(tab - p) : strlen(p);
        row[c] = xstrndup(p, n);
        p = tab ? tab + 1 : p + n;
    }
    t->nrows++;
}

void cli_table_print(const cli_table *t, FILE *f)
{
    size_t w[CLI_TABLE_COLS_MAX] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            w[c] = MAX(w[c], strlen(t->cells[(size_t)r * (size_t)t->ncols + (size_t)c]));
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[(size_t)r * (size_t)t->ncols + (size_t)c];
            if (c + 1 < t->ncols)
                fprintf(f, "%-*s  ", (int)w[c], cell);
            else
                fprintf(f, "%s\n", cell);
        }
    }
}

void cli_table_free(cli_table *t)
{
    for (size_t i = 0; i < (size_t)t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    *t = (cli_table){0};
}
