/*
 * cli_data.c - `chronik produce` and `chronik consume`: records from lines
 * and back, over the Kafka protocol (Metadata, Produce, ListOffsets, Fetch,
 * and for consume -g FindCoordinator, OffsetFetch, OffsetCommit).
 *
 *   chronik produce TOPIC [-k KEY] [-H KEY=VALUE]... [-f FILE] [-p PARTITION]
 *       One record per line of FILE (default stdin), the newline removed.
 *       Lines are batched (up to PRODUCE_BATCH_RECORDS records or
 *       PRODUCE_BATCH_BYTES bytes per batch) and sent with acks=all, one
 *       request at a time. Partition: -p; else the key's murmur2 hash as
 *       Kafka's Java client does; else each batch to the next partition.
 *
 *   chronik consume TOPIC [-g GROUP] [--from-beginning] [-n COUNT]
 *                         [--format FMT] [--timeout SECONDS]
 *       Reads every partition directly from its leader. Starts at the log
 *       end, or with --from-beginning at the log start; with -g at the
 *       group's committed offset where there is one. Stops after COUNT
 *       records, after SECONDS without a new record, or on Ctrl-C.
 *       With -g it reads as a standalone consumer (it does not join the
 *       group) and, when it stops, commits the position it reached with
 *       generation -1 and an empty member id. A broker accepts that only
 *       while the group has no members, so it refuses at the start (exit 1)
 *       when the group has some.
 *       FMT is kcat's: %k key, %v value, %p partition, %o offset,
 *       %t timestamp (ms), %T topic, %h headers (k=v,...), %% and the
 *       escapes \n \t \r \\; default "%v\n". --json prints one JSON
 *       object per record instead.
 *
 * Progress (records/s, bytes/s, and how far) goes to stderr only when
 * stderr is a terminal.
 *
 * Exit status (cli_kafka.h): 0 ok (consume: also when --timeout ended it);
 * 1 the broker refused (unknown topic, not authorised, commit refused);
 * 2 bad usage, unreadable FILE, broker unreachable or timed out.
 */
#include "admin/cli_data.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin/cli_group.h"
#include "admin/cli_kafka.h"
#include "admin/cli_topic.h"
#include "base/util.h"
#include "proto/batch.h"
#include "proto/compress.h"
#include "proto/kerr.h"

#define PRODUCE_BATCH_RECORDS 10000
#define PRODUCE_BATCH_BYTES (512 * 1024)
#define DATA_HEADERS_MAX 64
#define CONSUME_WAIT_MS 500
#define CONSUME_FETCH_BYTES (4 * 1024 * 1024)
#define CONSUME_PARTITION_BYTES (1024 * 1024)
#define PROGRESS_EVERY_MS 250
#define DATA_RETRY_MS 100

/* ---- progress ------------------------------------------------------------------------ */

typedef struct progress {
    bool on;            /* stderr is a terminal */
    int64_t start_ms, last_ms;
    int64_t records, bytes;
    int64_t total;      /* what "done" means: bytes (produce -f) or records (consume -n); 0 unknown */
    bool total_is_bytes;
    const char *verb;
} progress;

static void progress_init(progress *p, const char *verb, int64_t total, bool total_is_bytes)
{
    *p = (progress){.on = isatty(STDERR_FILENO) == 1, .start_ms = clock_mono_ms(), .total = total,
                    .total_is_bytes = total_is_bytes, .verb = verb};
}

static void progress_show(progress *p, bool last)
{
    if (!p->on)
        return;
    int64_t now = clock_mono_ms();
    if (!last && now - p->last_ms < PROGRESS_EVERY_MS)
        return;
    p->last_ms = now;
    double s = MAX(now - p->start_ms, 1) / 1000.0;
    fprintf(stderr, "\r%s %lld records, %lld bytes (%.0f records/s, %.2f MB/s)", p->verb, (long long)p->records,
            (long long)p->bytes, p->records / s, p->bytes / s / 1e6);
    if (p->total > 0)
        fprintf(stderr, " %.0f%%", 100.0 * (double)(p->total_is_bytes ? p->bytes : p->records) / (double)p->total);
    fprintf(stderr, last ? "\n" : "\033[K");
}

/* ---- arguments ------------------------------------------------------------------------ */

typedef struct data_args {
    cli_opts o;
    const char *topic;
    const char *key;
    const char *headers[DATA_HEADERS_MAX]; /* "KEY=VALUE" */
    int nheaders;
    const char *file;
    int64_t partition;  /* -1: any */
    const char *group;
    bool from_beginning;
    int64_t count;      /* 0: no limit */
    const char *format;
    int64_t idle_s;     /* 0: wait for ever */
} data_args;

static bool take_header(data_args *d, const char *cmd, const char *v)
{
    if (strchr(v, '=') == NULL || v[0] == '=' || d->nheaders == DATA_HEADERS_MAX) {
        fprintf(stderr, "chronik %s: invalid header '%s' (want KEY=VALUE, at most %d)\n", cmd, v, DATA_HEADERS_MAX);
        return false;
    }
    d->headers[d->nheaders++] = v;
    return true;
}

static bool take_data_option(data_args *d, bool produce, int argc, char **argv, int *i)
{
    const char *cmd = produce ? "produce" : "consume", *a = argv[*i];
    if (!produce && strcmp(a, "--from-beginning") == 0)
        return (d->from_beginning = true);
    static const char *const popts[] = {"-k", "-H", "-f", "-p"}, *const copts[] = {"-g", "-n", "--format", "--timeout"};
    const char *const *opts = produce ? popts : copts;
    int which = -1;
    for (int j = 0; j < 4; j++)
        if (strcmp(a, opts[j]) == 0)
            which = j;
    if (which < 0)
        return cli_bad_arg(cmd, a, false) == 0;
    if (*i + 1 >= argc)
        return cli_bad_arg(cmd, a, true) == 0;
    const char *v = argv[++*i];
    switch (which + (produce ? 0 : 4)) {
    case 0: d->key = v; return true;
    case 1: return take_header(d, cmd, v);
    case 2: d->file = v; return true;
    case 3: return cli_parse_i64(cmd, a, v, 0, INT32_MAX, &d->partition);
    case 4: d->group = v; return true;
    case 5: return cli_parse_i64(cmd, a, v, 1, INT64_MAX, &d->count);
    case 6: d->format = v; return true;
    default: return cli_parse_i64(cmd, a, v, 1, 86400 * 365, &d->idle_s);
    }
}

static bool parse_data_args(int argc, char **argv, bool produce, data_args *d)
{
    const char *cmd = produce ? "produce" : "consume";
    *d = (data_args){.partition = -1, .format = "%v\\n"};
    cli_opts_init(&d->o);
    for (int i = 1; i < argc; i++) {
        int took = cli_opts_take(&d->o, cmd, argc, argv, &i);
        if (took < 0)
            return false;
        if (took > 0)
            continue;
        if (argv[i][0] != '-' && d->topic == NULL)
            d->topic = argv[i];
        else if (!take_data_option(d, produce, argc, argv, &i))
            return false;
    }
    if (d->topic == NULL) {
        fprintf(stderr, "chronik %s: needs a topic name\n", cmd);
        return false;
    }
    return true;
}

/* ---- the topic's metadata, refreshed when a leader moves ------------------------------------ */

typedef struct topic_view {
    const MetadataResponse_MetadataResponseTopic *t;
    kclient_resp_t *mr;     /* holds t */
} topic_view;

static int view_load(cli_kafka *k, const char *topic, topic_view *v)
{
    topic_view now;
    int rc = cli_topic_metadata(k, topic, &now.t, &now.mr);
    if (rc != 0)
        return rc;
    kclient_resp_free(v->mr);
    *v = now;
    return 0;
}

/* The position of partition id in v, or -1. */
static int32_t view_find(const topic_view *v, int32_t id)
{
    for (int32_t i = 0; i < v->t->Partitions.count; i++)
        if (v->t->Partitions.items[i].PartitionIndex == id)
            return i;
    return -1;
}

/* Errors after which asking again (with fresh metadata) may succeed. */
static bool retry_worth(int16_t code)
{
    return kerr_retriable(code) && code != KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

static void pause_before_retry(void)
{
    struct timespec ts = {0, DATA_RETRY_MS * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- produce ---------------------------------------------------------------------------- */

/* Kafka's murmur2 (the Java client's default partitioner hashes keys with it). */
static uint32_t murmur2(const uint8_t *data, size_t len)
{
    const uint32_t m = 0x5bd1e995u, seed = 0x9747b28cu;
    uint32_t h = seed ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len - i) {
    case 3: h ^= (uint32_t)data[i + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)data[i + 1] << 8;  /* fall through */
    case 1: h ^= data[i]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

typedef struct producer {
    cli_kafka *k;
    const data_args *d;
    topic_view v;
    batch_header_kv_t hdrs[DATA_HEADERS_MAX];
    int32_t next;       /* counts keyless batches: the next goes to position next % count */
    buf_t batch;
    batch_builder_t b;
    int32_t pending;    /* records in the batch */
    progress prog;
} producer;

/* The partition id the batch goes to. */
static int32_t pick_partition(producer *p)
{
    const MetadataResponse_MetadataResponseTopic *t = p->v.t;
    uint32_t n = (uint32_t)t->Partitions.count;
    if (p->d->partition >= 0)
        return (int32_t)p->d->partition;
    if (p->d->key != NULL)
        return (int32_t)((murmur2((const uint8_t *)p->d->key, strlen(p->d->key)) & 0x7fffffffu) % n);
    return t->Partitions.items[(uint32_t)p->next++ % n].PartitionIndex;
}

enum { PRODUCE_RETRY = -1 };

/* Send the batch to partition id once: 0, PRODUCE_RETRY (the leader moved
 * or is busy), or an exit code after reporting. */
static int produce_send(producer *p, int32_t id, int16_t *last)
{
    int32_t at = view_find(&p->v, id);
    if (at < 0)
        return cli_fail(CLI_EXIT_FAILED, "unknown partition %d of topic '%s'", (int)id, p->d->topic);
    int32_t leader = p->v.t->Partitions.items[at].LeaderId;
    kclient_t *kc = leader >= 0 ? cli_broker_reach(p->k, leader) : NULL;
    if (kc == NULL) { /* no leader, or one that died: nothing was sent */
        *last = leader < 0 ? KERR_LEADER_NOT_AVAILABLE : KERR_NETWORK_EXCEPTION;
        return PRODUCE_RETRY;
    }
    cli_req q;
    ProduceRequest *req = cli_req_new(&q, p->k, kc, CLI_API_PRODUCE, 9, 3);
    req->Acks = -1;
    req->TimeoutMs = (int32_t)p->k->o.timeout_ms;
    ProduceRequest_TopicProduceData *td =
        proto_array_init(&q.a, &req->TopicData, 1, sizeof(*td), &ProduceRequest_TopicProduceData_desc);
    td->Name = p->v.t->Name;
    ProduceRequest_PartitionProduceData *pd =
        proto_array_init(&q.a, &td->PartitionData, 1, sizeof(*pd), &ProduceRequest_PartitionProduceData_desc);
    pd->Index = id;
    pd->Records = (kbytes_t){p->batch.data, (int32_t)p->batch.len};
    const ProduceResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    int16_t code = KERR_UNKNOWN_SERVER_ERROR;
    kstr_t msg = KSTR_NULL;
    if (resp->Responses.count > 0 && resp->Responses.items[0].PartitionResponses.count > 0) {
        code = resp->Responses.items[0].PartitionResponses.items[0].ErrorCode;
        msg = resp->Responses.items[0].PartitionResponses.items[0].ErrorMessage;
    }
    char subj[300];
    snprintf(subj, sizeof subj, "topic '%s'", p->d->topic);
    *last = code;
    rc = code == KERR_NONE ? 0 : retry_worth(code) ? PRODUCE_RETRY : cli_kafka_error(code, msg, subj);
    kclient_resp_free(r);
    return rc;
}

/* Send the batch built so far, again with fresh metadata while its leader
 * moves (such refusals mean nothing was appended), for at most the request
 * timeout. */
static int produce_flush(producer *p)
{
    if (p->pending == 0)
        return 0;
    batch_build_end(&p->b);
    int32_t id = pick_partition(p);
    int64_t deadline = clock_mono_ms() + p->k->o.timeout_ms;
    int16_t last = KERR_NONE;
    int rc;
    while ((rc = produce_send(p, id, &last)) == PRODUCE_RETRY) {
        if (clock_mono_ms() >= deadline) {
            rc = cli_fail(CLI_EXIT_FAILED, "topic '%s' partition %d: %s (%s) for %u ms", p->d->topic, (int)id,
                          kerr_message(last), kerr_name(last), p->k->o.timeout_ms);
            break;
        }
        pause_before_retry();
        if ((rc = view_load(p->k, p->d->topic, &p->v)) != 0)
            break;
    }
    buf_reset(&p->batch);
    p->pending = 0;
    return rc;
}

/* One line (without its newline) into the batch; sends a full batch. */
static int produce_line(producer *p, const char *line, size_t len)
{
    int64_t now = clock_wall_ms();
    if (p->pending == 0)
        batch_build_begin(&p->b, &p->batch, 0, 0, now, -1, -1, -1);
    const char *key = p->d->key;
    batch_build_add(&p->b, now, key, key ? (int32_t)strlen(key) : -1, line, (int32_t)len, p->hdrs, p->d->nheaders);
    p->pending++;
    p->prog.records++;
    p->prog.bytes += (int64_t)len + 1;
    progress_show(&p->prog, false);
    if (p->pending >= PRODUCE_BATCH_RECORDS || p->batch.len >= PRODUCE_BATCH_BYTES)
        return produce_flush(p);
    return 0;
}

static int produce_stream(producer *p, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        rc = produce_line(p, line, len);
    }
    free(line);
    if (rc == 0 && ferror(in))
        rc = cli_fail(CLI_EXIT_USAGE, "cannot read %s: %s", p->d->file ? p->d->file : "stdin", strerror(errno));
    if (rc == 0)
        rc = produce_flush(p);
    return rc;
}

static int run_produce(cli_kafka *k, const data_args *d)
{
    FILE *in = d->file ? fopen(d->file, "r") : stdin;
    if (in == NULL)
        return cli_fail(CLI_EXIT_USAGE, "cannot open %s: %s", d->file, strerror(errno));
    producer p = {.k = k, .d = d};
    int rc = view_load(k, d->topic, &p.v);
    if (rc == 0 && p.v.t->Partitions.count == 0)
        rc = cli_fail(CLI_EXIT_FAILED, "topic '%s' has no partitions", d->topic);
    if (rc == 0) {
        for (int i = 0; i < d->nheaders; i++) {
            const char *eq = strchr(d->headers[i], '=');
            p.hdrs[i] = (batch_header_kv_t){d->headers[i], (int32_t)(eq - d->headers[i]), eq + 1,
                                            (int32_t)strlen(eq + 1)};
        }
        struct stat st;
        bool sized = d->file && fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode);
        progress_init(&p.prog, "produced", sized ? (int64_t)st.st_size : 0, true);
        p.next = (int32_t)(clock_mono_ns() % MAX(p.v.t->Partitions.count, 1));
        buf_init(&p.batch);
        rc = produce_stream(&p, in);
        progress_show(&p.prog, true);
        buf_free(&p.batch);
    }
    kclient_resp_free(p.v.mr);
    if (in != stdin)
        fclose(in);
    if (rc == 0 && k->o.json) {
        cli_json_kv(stdout, "{\"topic\":", kstr_from(d->topic));
        printf(",\"records\":%lld,\"bytes\":%lld}\n", (long long)p.prog.records, (long long)p.prog.bytes);
    } else if (rc == 0)
        printf("produced %lld record(s) to '%s'\n", (long long)p.prog.records, d->topic);
    return rc;
}

/* ---- consume: printing ------------------------------------------------------------------- */

static volatile sig_atomic_t consume_stop;

static void on_interrupt(int sig)
{
    UNUSED(sig);
    consume_stop = 1;
}

/* The headers of rec as "k=v,k=v" (or a JSON object). */
static void print_headers(const batch_record_t *rec, bool json)
{
    rd_t rd;
    rd_init(&rd, rec->headers, rec->headers_len);
    fputs(json ? "{" : "", stdout);
    for (int32_t i = 0; i < rec->header_count; i++) {
        int32_t kl, vl;
        const uint8_t *kp = NULL, *vp = NULL;
        if (!rd_varint(&rd, &kl) || kl < 0 || !rd_bytes(&rd, (size_t)kl, &kp) || !rd_varint(&rd, &vl) ||
            (vl >= 0 && !rd_bytes(&rd, (size_t)vl, &vp)))
            break;
        if (json) {
            fputs(i ? "," : "", stdout);
            cli_json_str(stdout, (const char *)kp, kl);
            fputc(':', stdout);
            cli_json_str(stdout, (const char *)vp, vl);
        } else {
            printf("%s%.*s=%.*s", i ? "," : "", (int)kl, (const char *)kp, (int)MAX(vl, 0), vp ? (const char *)vp : "");
        }
    }
    fputs(json ? "}" : "", stdout);
}

static void print_json_record(const char *topic, int32_t partition, const batch_record_t *rec)
{
    printf("{\"topic\":");
    cli_json_str(stdout, topic, (int32_t)strlen(topic));
    printf(",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":", (int)partition, (long long)rec->offset,
           (long long)rec->timestamp);
    cli_json_str(stdout, (const char *)rec->key, rec->key_len);
    printf(",\"value\":");
    cli_json_str(stdout, (const char *)rec->value, rec->value_len);
    printf(",\"headers\":");
    print_headers(rec, true);
    printf("}\n");
}

static void print_escape(char c)
{
    fputc(c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == '0' ? '\0' : c, stdout);
}

static void print_formatted(const char *fmt, const char *topic, int32_t partition, const batch_record_t *rec)
{
    for (const char *f = fmt; *f; f++) {
        if (*f == '\\' && f[1]) {
            print_escape(*++f);
            continue;
        }
        if (*f != '%' || !f[1]) {
            fputc(*f, stdout);
            continue;
        }
        switch (*++f) {
        case 'k': fwrite(rec->key ? (const void *)rec->key : "", 1, (size_t)MAX(rec->key_len, 0), stdout); break;
        case 'v': fwrite(rec->value ? (const void *)rec->value : "", 1, (size_t)MAX(rec->value_len, 0), stdout); break;
        case 'p': printf("%d", (int)partition); break;
        case 'o': printf("%lld", (long long)rec->offset); break;
        case 't': printf("%lld", (long long)rec->timestamp); break;
        case 'T': fputs(topic, stdout); break;
        case 'h': print_headers(rec, false); break;
        default: fputc('%', stdout); fputc(*f, stdout); break;
        }
    }
}

/* ---- consume: reading ------------------------------------------------------------------ */

typedef struct consumer {
    cli_kafka *k;
    const data_args *d;
    topic_view v;
    int64_t *pos;       /* next offset per position in v.t->Partitions; -1: seek first */
    int16_t trouble;    /* the last retriable error of a round, KERR_NONE when none */
    int64_t trouble_since_ms; /* when the rounds began to fail */
    progress prog;
    int64_t got;
    int64_t last_record_ms;
    buf_t scratch;      /* a decompressed batch */
} consumer;

static bool consume_done(const consumer *c)
{
    return consume_stop || (c->d->count > 0 && c->got >= c->d->count);
}

static void emit(consumer *c, int32_t partition, const batch_record_t *rec)
{
    if (c->d->o.json)
        print_json_record(c->d->topic, partition, rec);
    else
        print_formatted(c->d->format, c->d->topic, partition, rec);
    c->got++;
    c->prog.records++;
    c->prog.bytes += MAX(rec->key_len, 0) + MAX(rec->value_len, 0);
    c->last_record_ms = clock_mono_ms();
}

/* An uncompressed copy of compressed batch b in c->scratch; false if it
 * does not decompress. */
static bool batch_inflate(consumer *c, const batch_info_t *b)
{
    buf_reset(&c->scratch);
    buf_put(&c->scratch, b->data, BATCH_HEADER_BYTES);
    if (kcodec_decompress(b->codec, b->data + BATCH_HEADER_BYTES, b->size - BATCH_HEADER_BYTES, &c->scratch,
                          KCODEC_MAX_OUT_DEFAULT) != 0)
        return false;
    uint8_t *h = c->scratch.data;
    be32_store(h + BATCH_OFF_LENGTH, (uint32_t)(c->scratch.len - BATCH_LOG_OVERHEAD));
    be16_store(h + BATCH_OFF_ATTRIBUTES, (uint16_t)(b->attributes & ~BATCH_ATTR_CODEC_MASK));
    return true;
}

/* The records of one partition's fetched bytes from *pos on. */
static void consume_records(consumer *c, int32_t partition, kbytes_t recs, int64_t *pos)
{
    const uint8_t *p = recs.ptr;
    size_t left = (size_t)MAX(recs.len, 0);
    batch_info_t b;
    while (!consume_done(c) && left > 0 && batch_parse_header(p, left, &b) == BATCH_OK && b.size <= left) {
        batch_iter_t it;
        bool ok = !b.control && (b.codec == BATCH_CODEC_NONE ? batch_iter_init(&it, p, b.size)
                                                             : batch_inflate(c, &b) &&
                                                                   batch_iter_init(&it, c->scratch.data, c->scratch.len));
        batch_record_t rec;
        while (ok && !consume_done(c) && batch_iter_next(&it, &rec))
            if (rec.offset >= *pos) {
                emit(c, partition, &rec);
                *pos = rec.offset + 1;
            }
        if (!consume_done(c))
            *pos = MAX(*pos, batch_info_last_offset(&b) + 1);
        p += b.size;
        left -= b.size;
    }
}

/* One partition's answer: its records, or what to do about its error. */
static int fetch_partition(consumer *c, const FetchResponse_PartitionData *pd)
{
    int32_t x = view_find(&c->v, pd->PartitionIndex);
    if (x < 0)
        return 0;
    if (pd->ErrorCode == KERR_OFFSET_OUT_OF_RANGE) {
        c->pos[x] = -1; /* records gone (retention) or not there yet: seek again */
        c->trouble = pd->ErrorCode;
        return 0;
    }
    if (retry_worth(pd->ErrorCode)) {
        c->trouble = pd->ErrorCode;
        return 0;
    }
    if (pd->ErrorCode != KERR_NONE) {
        char subj[300];
        snprintf(subj, sizeof subj, "topic '%s'", c->d->topic);
        return cli_kafka_error(pd->ErrorCode, KSTR_NULL, subj);
    }
    consume_records(c, pd->PartitionIndex, pd->Records, &c->pos[x]);
    return 0;
}

/* One Fetch of every partition led by `leader` with a known position. */
static int fetch_from(consumer *c, int32_t leader)
{
    kclient_t *kc = cli_broker_reach(c->k, leader);
    if (kc == NULL) {
        c->trouble = KERR_NETWORK_EXCEPTION; /* a leader that died: the metadata will move on */
        return 0;
    }
    const MetadataResponse_MetadataResponseTopic *t = c->v.t;
    cli_req q;
    FetchRequest *req = cli_req_new(&q, c->k, kc, CLI_API_FETCH, 12, 4);
    q.lost_quietly = true; /* fetching again is harmless */
    req->MaxWaitMs = CONSUME_WAIT_MS;
    req->MinBytes = 1;
    req->MaxBytes = CONSUME_FETCH_BYTES;
    FetchRequest_FetchTopic *ft = proto_array_init(&q.a, &req->Topics, 1, sizeof(*ft), &FetchRequest_FetchTopic_desc);
    ft->Topic = t->Name;
    int32_t n = 0;
    for (int32_t i = 0; i < t->Partitions.count; i++)
        n += t->Partitions.items[i].LeaderId == leader && c->pos[i] >= 0;
    FetchRequest_FetchPartition *fp =
        proto_array_init(&q.a, &ft->Partitions, n, sizeof(*fp), &FetchRequest_FetchPartition_desc);
    for (int32_t i = 0, j = 0; i < t->Partitions.count; i++)
        if (t->Partitions.items[i].LeaderId == leader && c->pos[i] >= 0) {
            fp[j].Partition = t->Partitions.items[i].PartitionIndex;
            fp[j].FetchOffset = c->pos[i];
            fp[j++].PartitionMaxBytes = CONSUME_PARTITION_BYTES;
        }
    const FetchResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc == CLI_CALL_LOST)
        c->trouble = KERR_NETWORK_EXCEPTION;
    if (rc != 0)
        return rc == CLI_CALL_LOST ? 0 : rc;
    if (retry_worth(resp->ErrorCode))
        c->trouble = resp->ErrorCode;
    else if (resp->ErrorCode != KERR_NONE)
        rc = cli_kafka_error(resp->ErrorCode, KSTR_NULL, "fetch");
    for (int32_t i = 0; rc == 0 && i < resp->Responses.count; i++)
        for (int32_t j = 0; rc == 0 && j < resp->Responses.items[i].Partitions.count; j++)
            rc = fetch_partition(c, &resp->Responses.items[i].Partitions.items[j]);
    kclient_resp_free(r);
    fflush(stdout);
    return rc;
}

/* Where each partition without a position starts: the log start
 * (--from-beginning) or end. */
static int consume_seek(consumer *c)
{
    int32_t n = c->v.t->Partitions.count;
    bool any = false;
    for (int32_t i = 0; i < n; i++)
        any = any || c->pos[i] < 0;
    if (!any)
        return 0;
    int64_t *at = xcalloc((size_t)n + 1, sizeof(int64_t));
    int rc = cli_topic_offsets(c->k, c->v.t, c->d->from_beginning ? -2 : -1, at);
    for (int32_t i = 0; rc == 0 && i < n; i++)
        if (c->pos[i] < 0)
            c->pos[i] = at[i];
    free(at);
    return rc;
}

/* After a round with retriable errors: fresh metadata (positions carried
 * over by partition id), unless the errors have lasted the request timeout. */
static int consume_recover(consumer *c)
{
    int64_t now = clock_mono_ms();
    if (c->trouble_since_ms == 0)
        c->trouble_since_ms = now;
    if (now - c->trouble_since_ms >= c->k->o.timeout_ms)
        return cli_fail(CLI_EXIT_FAILED, "topic '%s': %s (%s) for %u ms", c->d->topic, kerr_message(c->trouble),
                        kerr_name(c->trouble), c->k->o.timeout_ms);
    pause_before_retry();
    topic_view old = c->v;
    c->v = (topic_view){0};
    int rc = view_load(c->k, c->d->topic, &c->v);
    if (rc != 0) {
        c->v = old;
        return rc;
    }
    int32_t n = c->v.t->Partitions.count;
    int64_t *pos = xmalloc(((size_t)n + 1) * sizeof(int64_t));
    for (int32_t i = 0; i < n; i++) {
        int32_t was = -1;
        for (int32_t j = 0; j < old.t->Partitions.count && was < 0; j++)
            if (old.t->Partitions.items[j].PartitionIndex == c->v.t->Partitions.items[i].PartitionIndex)
                was = j;
        pos[i] = was >= 0 ? c->pos[was] : -1;
    }
    free(c->pos);
    c->pos = pos;
    kclient_resp_free(old.mr);
    return consume_seek(c);
}

/* One Fetch to every leader. */
static int consume_round(consumer *c)
{
    const MetadataResponse_MetadataResponseTopic *t = c->v.t;
    c->trouble = KERR_NONE;
    for (int32_t i = 0; i < t->Partitions.count && !consume_done(c); i++) {
        int32_t leader = t->Partitions.items[i].LeaderId;
        bool seen = false;
        for (int32_t j = 0; j < i && !seen; j++)
            seen = t->Partitions.items[j].LeaderId == leader;
        if (leader < 0)
            c->trouble = KERR_LEADER_NOT_AVAILABLE;
        int rc = seen || leader < 0 ? 0 : fetch_from(c, leader);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int consume_loop(consumer *c)
{
    c->last_record_ms = clock_mono_ms();
    while (!consume_done(c)) {
        int rc = consume_round(c);
        if (rc == 0 && c->trouble != KERR_NONE && !consume_done(c))
            rc = consume_recover(c);
        else if (c->trouble == KERR_NONE)
            c->trouble_since_ms = 0;
        if (rc != 0)
            return rc;
        progress_show(&c->prog, false);
        if (c->d->idle_s > 0 && clock_mono_ms() - c->last_record_ms >= c->d->idle_s * 1000)
            break;
    }
    return 0;
}

/* Where each partition starts: the group's commit, else the log start or end. */
static int consume_start(consumer *c, kclient_t *coord)
{
    for (int32_t i = 0; i < c->v.t->Partitions.count; i++)
        c->pos[i] = -1;
    if (coord != NULL) {
        const OffsetFetchResponse *of;
        kclient_resp_t *r;
        int rc = cli_group_offsets(c->k, coord, c->d->group, &of, &r);
        if (rc != 0)
            return rc;
        for (int32_t i = 0; i < of->Topics.count; i++)
            for (int32_t j = 0; kstr_eq(of->Topics.items[i].Name, c->d->topic) && j < of->Topics.items[i].Partitions.count;
                 j++) {
                const OffsetFetchResponse_OffsetFetchResponsePartition *p = &of->Topics.items[i].Partitions.items[j];
                int32_t x = view_find(&c->v, p->PartitionIndex);
                if (x >= 0 && p->CommittedOffset >= 0)
                    c->pos[x] = p->CommittedOffset;
            }
        kclient_resp_free(r);
    }
    return consume_seek(c);
}

static int run_consume(cli_kafka *k, const data_args *d)
{
    consumer c = {.k = k, .d = d};
    kclient_t *coord = NULL;
    int rc = view_load(k, d->topic, &c.v);
    if (rc != 0)
        return rc;
    if (d->group != NULL)
        rc = cli_group_coordinator(k, d->group, &coord);
    if (rc == 0 && coord != NULL)
        rc = cli_group_check_empty(k, coord, d->group, "consuming as it with chronik consume -g");
    c.pos = xcalloc((size_t)c.v.t->Partitions.count + 1, sizeof(int64_t));
    buf_init(&c.scratch);
    if (rc == 0)
        rc = consume_start(&c, coord);
    struct sigaction sa = {.sa_handler = on_interrupt}, old_int;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    progress_init(&c.prog, "consumed", d->count, false);
    if (rc == 0)
        rc = consume_loop(&c);
    progress_show(&c.prog, true);
    sigaction(SIGINT, &old_int, NULL);
    if (rc == 0 && coord != NULL)
        rc = cli_group_commit(k, coord, d->group, c.v.t, c.pos);
    buf_free(&c.scratch);
    free(c.pos);
    kclient_resp_free(c.v.mr);
    return rc;
}

/* ---- the commands ----------------------------------------------------------------------- */

static void produce_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik produce TOPIC [-k KEY] [-H KEY=VALUE]... [-f FILE] [-p PARTITION]\n"
            "\n"
            "Sends one record per line of FILE (default stdin), acks=all, in batches. -k gives\n"
            "every record that key (its partition is the key's murmur2 hash, as Kafka's Java\n"
            "client picks); -H adds a header to every record; -p picks the partition; else\n"
            "each batch goes to the next partition. Progress goes to stderr when it is a\n"
            "terminal.\n"
            "\n"
            "Options:\n%s\n%s",
            cli_opts_usage, cli_exit_usage);
}

static void consume_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik consume TOPIC [-g GROUP] [--from-beginning] [-n COUNT] [--format FMT]\n"
            "                             [--timeout SECONDS]\n"
            "\n"
            "Reads every partition from its leader, from the log end (--from-beginning: the log\n"
            "start; -g: the group's committed offset where there is one). Stops after COUNT\n"
            "records, after SECONDS without a record, or on Ctrl-C (exit 0). With -g it reads\n"
            "as a standalone consumer (it does not join the group) and commits the position\n"
            "it reached when it stops; it refuses a group that has active members.\n"
            "FMT: %%k key, %%v value, %%p partition, %%o offset, %%t timestamp (ms), %%T topic,\n"
            "%%h headers (k=v,...), %%%% and \\n \\t \\r \\\\; default \"%%v\\n\". --json prints\n"
            "one JSON object per record. Progress goes to stderr when it is a terminal.\n"
            "\n"
            "Options:\n%s\n%s",
            cli_opts_usage, cli_exit_usage);
}

static int data_main(int argc, char **argv, bool produce)
{
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            (produce ? produce_usage : consume_usage)(stdout);
            return 0;
        }
    data_args d;
    if (!parse_data_args(argc, argv, produce, &d)) {
        (produce ? produce_usage : consume_usage)(stderr);
        return CLI_EXIT_USAGE;
    }
    cli_kafka k;
    int rc = cli_kafka_open(&k, &d.o);
    if (rc != 0)
        return rc;
    rc = produce ? run_produce(&k, &d) : run_consume(&k, &d);
    fflush(stdout);
    cli_kafka_close(&k);
    return rc;
}

int cli_produce_main(int argc, char **argv) { return data_main(argc, argv, true); }
int cli_consume_main(int argc, char **argv) { return data_main(argc, argv, false); }
