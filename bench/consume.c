/*
 * consume.c - consumer load generator on librdkafka: reads N messages of
 * one partition from its first offset, then prints one JSON object.
 *
 *   build/bench/consume -b HOST:PORT [-t TOPIC] [-n MESSAGES] [-p PARTITION]
 *                       [-X key=value ...]
 *
 * It uses librdkafka's simple (legacy) consumer, rd_kafka_consume_start at
 * RD_KAFKA_OFFSET_BEGINNING with no group.id: no group coordinator, no
 * offset commits, only Metadata, ListOffsets and Fetch reach the broker.
 * The partition's leader is looked up first (Metadata, untimed): started
 * before the leader is known, librdkafka retries its offset look-up only
 * after a 500 ms back-off, which would be timed as broker time. The clock
 * starts at consume_start and stops at the N-th message; it includes the
 * ListOffsets look-up and the first fetch round trip (first_msg_s says how
 * long those took).
 * Exit status: 0 when N messages arrived, 1 on an error or when no message
 * arrived for IDLE_TIMEOUT_MS, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bench_args.h"
#include "bench_clock.h"

#define CONSUME_MESSAGES_DEFAULT 5000000L
#define CONSUME_CONF_MAX 32
#define CONSUME_ERRSTR_BYTES 512
#define CONSUME_BATCH_MAX 4096 /* messages taken from the queue per call */
#define CONSUME_POLL_MS 100
#define IDLE_TIMEOUT_MS 15000
#define METADATA_TIMEOUT_MS 30000
#define METADATA_POLL_MS 2000

struct opts {
    const char *bootstrap;
    const char *topic;
    long messages;
    int partition;
    int nconf;
    const char *conf[CONSUME_CONF_MAX];
};

struct tally {
    long messages;
    long long bytes;
    int64_t last_offset;
    double first_msg_at; /* monotonic seconds, 0 until the first message */
    rd_kafka_resp_err_t err;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: consume -b HOST:PORT [-t TOPIC] [-n MESSAGES] [-p PARTITION]"
                 " [-X key=value ...]\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.topic = "bench-produce", .messages = CONSUME_MESSAGES_DEFAULT};
    long v;
    int c;
    while ((c = getopt(argc, argv, "b:t:n:p:X:h")) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 't': o->topic = optarg; break;
        case 'n':
            if (bench_parse_long(optarg, 1, INT64_MAX / 2, &o->messages))
                return -1;
            break;
        case 'p':
            if (bench_parse_long(optarg, 0, INT32_MAX, &v))
                return -1;
            o->partition = (int)v;
            break;
        case 'X':
            if (o->nconf == CONSUME_CONF_MAX || !strchr(optarg, '='))
                return -1;
            o->conf[o->nconf++] = optarg;
            break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    return o->bootstrap && optind == argc ? 0 : -1;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[CONSUME_ERRSTR_BYTES];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "consume: %s=%s: %s\n", key, val, errstr);
        return -1;
    }
    return 0;
}

static rd_kafka_t *make_consumer(const struct opts *o)
{
    char errstr[CONSUME_ERRSTR_BYTES];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = conf_set(conf, "bootstrap.servers", o->bootstrap) ||
              conf_set(conf, "log_level", "4");
    for (int i = 0; i < o->nconf && !bad; i++) {
        char kv[CONSUME_ERRSTR_BYTES];
        snprintf(kv, sizeof kv, "%s", o->conf[i]);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        bad = conf_set(conf, kv, eq + 1);
    }
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "consume: rd_kafka_new: %s\n", errstr);
    return rk;
}

/* Polls Metadata until the partition has a leader, within
 * METADATA_TIMEOUT_MS. */
static int wait_leader(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int partition)
{
    double deadline = now_s() + METADATA_TIMEOUT_MS / 1000.0;
    while (now_s() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, METADATA_POLL_MS))
            continue;
        int ok = md->topic_cnt == 1 && !md->topics[0].err &&
                 md->topics[0].partition_cnt > partition &&
                 md->topics[0].partitions[partition].leader >= 0;
        rd_kafka_metadata_destroy(md);
        if (ok)
            return 0;
        rd_kafka_poll(rk, CONSUME_POLL_MS);
    }
    fprintf(stderr, "consume: partition %d of %s has no leader\n", partition,
            rd_kafka_topic_name(rkt));
    return -1;
}

/* Takes one batch off the partition queue; returns how many messages. */
static ssize_t take_batch(rd_kafka_topic_t *rkt, int partition, struct tally *t, long want)
{
    static rd_kafka_message_t *batch[CONSUME_BATCH_MAX];
    ssize_t got = rd_kafka_consume_batch(rkt, partition, CONSUME_POLL_MS, batch,
                                         CONSUME_BATCH_MAX);
    if (got < 0) {
        t->err = rd_kafka_last_error();
        return got;
    }
    for (ssize_t i = 0; i < got; i++) {
        rd_kafka_message_t *m = batch[i];
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* informational only */
        } else if (m->err) {
            if (!t->err)
                t->err = m->err;
        } else if (t->messages < want) {
            if (t->messages++ == 0)
                t->first_msg_at = now_s();
            t->bytes += (long long)m->len;
            t->last_offset = m->offset;
        }
        rd_kafka_message_destroy(m);
    }
    return got;
}

static int consume_all(rd_kafka_topic_t *rkt, const struct opts *o, struct tally *t)
{
    double idle_since = now_s();
    while (t->messages < o->messages && !t->err) {
        long before = t->messages;
        if (take_batch(rkt, o->partition, t, o->messages) < 0)
            break;
        if (t->messages > before)
            idle_since = now_s();
        else if (now_s() - idle_since > IDLE_TIMEOUT_MS / 1000.0)
            break;
    }
    if (t->err)
        fprintf(stderr, "consume: %s\n", rd_kafka_err2str(t->err));
    return t->messages == o->messages ? 0 : -1;
}

static void report(const struct opts *o, const struct tally *t, double t0, double secs,
                   double cpu_s)
{
    double first_s = t->messages ? t->first_msg_at - t0 : 0;
    printf("{\"bench\": \"consume\", \"messages\": %ld, \"consumed\": %ld, \"bytes\": %lld, "
           "\"last_offset\": %lld, \"first_error\": \"%s\", \"seconds\": %.3f, \"first_msg_s\": %.3f, "
           "\"msg_per_s\": %.0f, \"mb_per_s\": %.2f, \"client_cpu_s\": %.2f, "
           "\"librdkafka\": \"%s\"}\n",
           o->messages, t->messages, t->bytes, (long long)t->last_offset,
           t->err ? rd_kafka_err2name(t->err) : "", secs, first_s, (double)t->messages / secs,
           (double)t->bytes / 1e6 / secs, cpu_s, rd_kafka_version_str());
    fflush(stdout);
}

/* Starts the partition at its first offset and reads o->messages; prints the
 * report. Returns the exit status. */
static int timed_consume(rd_kafka_topic_t *rkt, const struct opts *o)
{
    struct tally t = {.last_offset = -1};
    double cpu0 = cpu_self_s(), t0 = now_s();
    if (rd_kafka_consume_start(rkt, o->partition, RD_KAFKA_OFFSET_BEGINNING) == -1) {
        fprintf(stderr, "consume: consume_start: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        return 1;
    }
    int rc = consume_all(rkt, o, &t) ? 1 : 0;
    double secs = now_s() - t0, cpu_s = cpu_self_s() - cpu0;
    report(o, &t, t0, secs, cpu_s);
    rd_kafka_consume_stop(rkt, o->partition);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    rd_kafka_t *rk = make_consumer(&o);
    if (!rk)
        return 2;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
    int rc = wait_leader(rk, rkt, o.partition) ? 1 : timed_consume(rkt, &o);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}
