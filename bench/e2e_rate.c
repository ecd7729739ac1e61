/*
 * e2e_rate.c - end-to-end latency at a fixed rate on librdkafka: a producer
 * sends RATE messages a second to one partition, each carrying the moment it
 * was handed to librdkafka, and a consumer in the same process (a thread,
 * no group, from the partition's end) receives them; a message's latency is
 * its receive time minus that moment (one CLOCK_MONOTONIC, so no clock skew).
 *
 *   build/bench/e2e_rate -b HOST:PORT[,...] [-t TOPIC] [-r MSG_PER_S]
 *                        [-d SECONDS] [-w WARMUP_SECONDS] [-s BYTES]
 *                        [-X key=value ...]
 *
 * Defaults: 10,000 msg/s for 30 s after a 2 s warm-up whose messages are not
 * counted (they cover the consumer's first fetch and the connections), 100 B
 * values, producer acks=all and linger.ms=0 (-X changes producer settings),
 * consumer with librdkafka's defaults, partition 0. A message sent late
 * because the producer fell behind its schedule is stamped when it is sent.
 * Prints one JSON object: p50/p99/p99.9/max in ms over the counted messages,
 * how many arrived, and how many never did; ack_p50/ack_p99 are the same
 * messages' send-to-delivery-report latencies (the producer's half). Exit status 0 when every counted
 * message was delivered and received, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "bench_args.h"
#include "bench_clock.h"

#define E2E_CONF_MAX 16
#define E2E_ERRSTR 512
#define E2E_HEADER_BYTES 16 /* u64 send time (ns), u64 sequence number */
#define E2E_POLL_MS 100
#define E2E_LEADER_TIMEOUT_S 30.0
#define E2E_DRAIN_TIMEOUT_S 30.0
#define E2E_SETTLE_S 0.5 /* the consumer's offset lookup before the first send */

struct e2e_opts {
    const char *bootstrap, *topic;
    long rate, seconds, warmup_s;
    int bytes;
    int nconf;
    const char *conf[E2E_CONF_MAX];
};

struct e2e_state {
    long warm;        /* messages before this sequence number are not counted */
    long counted;     /* messages counted */
    double *lat_s;    /* [counted]: latency, or 0 while not received */
    double *ack_s;    /* [counted]: send to delivery report, or 0 */
    atomic_long received, duplicates;
    atomic_bool stop;
    long delivered, failed;
    rd_kafka_resp_err_t first_err;
    rd_kafka_topic_t *crkt;
};

static uint64_t e2e_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int e2e_args(int argc, char **argv, struct e2e_opts *o)
{
    *o = (struct e2e_opts){.topic = "bench-e2e-rate", .rate = 10000, .seconds = 30,
                           .warmup_s = 2, .bytes = 100};
    long v = 0;
    int c, bad = 0;
    while (!bad && (c = getopt(argc, argv, "b:t:r:d:w:s:X:")) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 't': o->topic = optarg; break;
        case 'r': bad = bench_parse_long(optarg, 1, 1000000, &o->rate); break;
        case 'd': bad = bench_parse_long(optarg, 1, 3600, &o->seconds); break;
        case 'w': bad = bench_parse_long(optarg, 0, 600, &o->warmup_s); break;
        case 's':
            bad = bench_parse_long(optarg, E2E_HEADER_BYTES, 1 << 20, &v);
            o->bytes = (int)v;
            break;
        case 'X':
            bad = o->nconf == E2E_CONF_MAX || !strchr(optarg, '=');
            if (!bad)
                o->conf[o->nconf++] = optarg;
            break;
        default: bad = 1;
        }
    }
    return !bad && o->bootstrap && optind == argc ? 0 : -1;
}

/* Sets "key=value" (or key, value) on conf; reports a refusal. */
static int e2e_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[E2E_ERRSTR], kv[E2E_ERRSTR];
    if (!val) {
        snprintf(kv, sizeof kv, "%s", key);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        key = kv, val = eq + 1;
    }
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
        return 0;
    fprintf(stderr, "e2e_rate: %s=%s: %s\n", key, val, errstr);
    return -1;
}

static void e2e_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct e2e_state *st = opaque;
    uint64_t sent_ns, seq;
    if (m->err) {
        if (st->failed++ == 0)
            st->first_err = m->err;
        return;
    }
    st->delivered++;
    memcpy(&sent_ns, m->payload, sizeof sent_ns);
    memcpy(&seq, (const char *)m->payload + sizeof sent_ns, sizeof seq);
    if ((long)seq >= st->warm && (long)seq < st->warm + st->counted)
        st->ack_s[seq - (uint64_t)st->warm] = (double)(e2e_now_ns() - sent_ns) / 1e9;
}

static rd_kafka_t *e2e_client(const struct e2e_opts *o, rd_kafka_type_t type, struct e2e_state *st)
{
    char errstr[E2E_ERRSTR];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = e2e_set(conf, "bootstrap.servers", o->bootstrap) || e2e_set(conf, "log_level", "4");
    if (type == RD_KAFKA_PRODUCER) {
        bad = bad || e2e_set(conf, "acks", "all") || e2e_set(conf, "linger.ms", "0");
        for (int i = 0; i < o->nconf && !bad; i++)
            bad = e2e_set(conf, o->conf[i], NULL);
        rd_kafka_conf_set_dr_msg_cb(conf, e2e_on_delivery);
        rd_kafka_conf_set_opaque(conf, st);
    }
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "e2e_rate: rd_kafka_new: %s\n", errstr);
    return rk;
}

static int e2e_wait_leader(rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
    double deadline = now_s() + E2E_LEADER_TIMEOUT_S;
    while (now_s() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, E2E_POLL_MS * 10))
            continue;
        bool ok = md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0 &&
                  md->topics[0].partitions[0].leader >= 0;
        rd_kafka_metadata_destroy(md);
        if (ok)
            return 0;
        rd_kafka_poll(rk, E2E_POLL_MS);
    }
    fprintf(stderr, "e2e_rate: %s has no leader for partition 0\n", rd_kafka_topic_name(rkt));
    return -1;
}

static void e2e_take(struct e2e_state *st, const rd_kafka_message_t *m, uint64_t now_ns)
{
    uint64_t sent_ns, seq;
    if (m->err || m->len < E2E_HEADER_BYTES)
        return;
    memcpy(&sent_ns, m->payload, sizeof sent_ns);
    memcpy(&seq, (const char *)m->payload + sizeof sent_ns, sizeof seq);
    if ((long)seq < st->warm || (long)seq >= st->warm + st->counted)
        return;
    double *slot = &st->lat_s[seq - (uint64_t)st->warm];
    if (*slot > 0) {
        atomic_fetch_add(&st->duplicates, 1);
        return;
    }
    *slot = (double)(now_ns - sent_ns) / 1e9;
    atomic_fetch_add(&st->received, 1);
}

/* One message at a time: rd_kafka_consume_batch would wait for a full
 * batch or its whole timeout, which is latency this program would add. */
static void *e2e_consumer(void *arg)
{
    struct e2e_state *st = arg;
    while (!atomic_load(&st->stop)) {
        rd_kafka_message_t *m = rd_kafka_consume(st->crkt, 0, E2E_POLL_MS);
        if (!m)
            continue;
        e2e_take(st, m, e2e_now_ns());
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* Sends warm + counted messages on schedule (message i at t0 + i / rate). */
static int e2e_send(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const struct e2e_opts *o,
                    struct e2e_state *st, char *payload)
{
    long total = st->warm + st->counted;
    uint64_t t0 = e2e_now_ns(), step_ns = 1000000000u / (uint64_t)o->rate;
    for (long i = 0; i < total; i++) {
        uint64_t due = t0 + (uint64_t)i * step_ns, now = e2e_now_ns();
        if (now < due) {
            struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            now = e2e_now_ns();
        }
        uint64_t seq = (uint64_t)i;
        memcpy(payload, &now, sizeof now);
        memcpy(payload + sizeof now, &seq, sizeof seq);
        while (rd_kafka_produce(rkt, 0, RD_KAFKA_MSG_F_COPY, payload, (size_t)o->bytes, NULL, 0,
                                NULL) == -1) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "e2e_rate: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
            }
            rd_kafka_poll(rk, 1);
        }
        rd_kafka_poll(rk, 0);
    }
    return 0;
}

static int e2e_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of the first n (ascending) values, in ms. */
static double e2e_pct(const double *v, long n, double p)
{
    long rank = (long)((double)n * p / 100.0 + 0.999999);
    return n ? v[(rank < 1 ? 1 : rank) - 1] * 1000.0 : -1;
}

/* Drops the zeros (never arrived) and sorts what is left; returns how many. */
static long e2e_sorted(double *v, long n)
{
    long k = 0;
    for (long i = 0; i < n; i++)
        if (v[i] > 0)
            v[k++] = v[i];
    qsort(v, (size_t)k, sizeof *v, e2e_cmp);
    return k;
}

static void e2e_report(const struct e2e_opts *o, struct e2e_state *st, double secs)
{
    long n = e2e_sorted(st->lat_s, st->counted), na = e2e_sorted(st->ack_s, st->counted);
    printf("{\"bench\": \"e2e-rate\", \"rate\": %ld, \"seconds\": %ld, \"warmup_s\": %ld, "
           "\"message_bytes\": %d, \"acks\": \"all\", \"counted\": %ld, \"received\": %ld, "
           "\"lost\": %ld, \"duplicates\": %ld, \"delivered\": %ld, \"failed\": %ld, "
           "\"first_error\": \"%s\", \"send_seconds\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"p999_ms\": %.3f, \"max_ms\": %.3f, \"ack_p50_ms\": %.3f, \"ack_p99_ms\": %.3f, "
           "\"librdkafka\": \"%s\"}\n",
           o->rate, o->seconds, o->warmup_s, o->bytes, st->counted, n, st->counted - n,
           atomic_load(&st->duplicates), st->delivered, st->failed,
           st->failed ? rd_kafka_err2name(st->first_err) : "", secs, e2e_pct(st->lat_s, n, 50),
           e2e_pct(st->lat_s, n, 99), e2e_pct(st->lat_s, n, 99.9),
           n ? st->lat_s[n - 1] * 1000.0 : -1, e2e_pct(st->ack_s, na, 50), e2e_pct(st->ack_s, na, 99),
           rd_kafka_version_str());
    fflush(stdout);
}

/* Consumer started at the end, messages sent, then waits for the stragglers. */
static int e2e_run(rd_kafka_t *prk, rd_kafka_topic_t *prkt, const struct e2e_opts *o,
                   struct e2e_state *st)
{
    char *payload = calloc(1, (size_t)o->bytes);
    pthread_t th;
    if (rd_kafka_consume_start(st->crkt, 0, RD_KAFKA_OFFSET_END) == -1) {
        fprintf(stderr, "e2e_rate: consume_start: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        free(payload);
        return 1;
    }
    pthread_create(&th, NULL, e2e_consumer, st);
    usleep((useconds_t)(E2E_SETTLE_S * 1e6));
    double t0 = now_s();
    int rc = e2e_send(prk, prkt, o, st, payload);
    double secs = now_s() - t0, deadline = now_s() + E2E_DRAIN_TIMEOUT_S;
    while (rc == 0 && rd_kafka_flush(prk, E2E_POLL_MS) && now_s() < deadline)
        ;
    while (atomic_load(&st->received) < st->counted && now_s() < deadline)
        usleep(E2E_POLL_MS * 1000);
    atomic_store(&st->stop, true);
    pthread_join(th, NULL);
    rd_kafka_consume_stop(st->crkt, 0);
    e2e_report(o, st, secs);
    free(payload);
    return rc || st->failed || atomic_load(&st->received) < st->counted;
}

int main(int argc, char **argv)
{
    struct e2e_opts o;
    if (e2e_args(argc, argv, &o)) {
        fprintf(stderr, "usage: e2e_rate -b HOST:PORT[,...] [-t TOPIC] [-r MSG_PER_S] [-d SECONDS]"
                        " [-w WARMUP_SECONDS] [-s BYTES] [-X key=value ...]\n");
        return 2;
    }
    struct e2e_state st = {.warm = o.rate * o.warmup_s, .counted = o.rate * o.seconds};
    st.lat_s = calloc((size_t)st.counted, sizeof *st.lat_s);
    st.ack_s = calloc((size_t)st.counted, sizeof *st.ack_s);
    rd_kafka_t *prk = e2e_client(&o, RD_KAFKA_PRODUCER, &st);
    rd_kafka_t *crk = e2e_client(&o, RD_KAFKA_CONSUMER, &st);
    if (!prk || !crk)
        return 2;
    rd_kafka_topic_t *prkt = rd_kafka_topic_new(prk, o.topic, NULL);
    st.crkt = rd_kafka_topic_new(crk, o.topic, NULL);
    int rc = e2e_wait_leader(prk, prkt) || e2e_wait_leader(crk, st.crkt) ? 1
                                                                         : e2e_run(prk, prkt, &o, &st);
    rd_kafka_topic_destroy(prkt);
    rd_kafka_topic_destroy(st.crkt);
    rd_kafka_destroy(prk);
    rd_kafka_destroy(crk);
    free(st.lat_s);
    free(st.ack_s);
    return rc;
}
