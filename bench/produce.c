/*
 * produce.c - producer load generator on librdkafka: N fixed-size messages
 * to one partition as fast as the client and broker allow, then one JSON
 * object on stdout.
 *
 *   build/bench/produce -b HOST:PORT [-t TOPIC] [-n MESSAGES] [-s BYTES]
 *                       [-a ACKS] [-l LINGER_MS] [-p PARTITION]
 *                       [-X key=value ...] [--idempotence]
 *
 * Defaults: 5,000,000 messages of 100 bytes (no key, no compression),
 * acks=1, linger.ms=5, partition 0. The clock starts after the topic's
 * metadata shows a leader for the partition (so auto-creation and the first
 * connection are not timed) and stops when the last delivery report has
 * arrived. --idempotence turns on enable.idempotence (and acks=all unless
 * -a says otherwise), to compare with the same run without it. "MB" is 10^6
 * bytes of message value. Exit status: 0 when every message was
 * acknowledged, 1 when any delivery failed, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bench_args.h"
#include "bench_clock.h"

#define PRODUCE_MESSAGES_DEFAULT 5000000L
#define PRODUCE_BYTES_DEFAULT 100
#define PRODUCE_BYTES_MAX (1 << 20)
#define PRODUCE_CONF_MAX 32
#define PRODUCE_ERRSTR_BYTES 512
#define METADATA_TIMEOUT_MS 30000
#define METADATA_POLL_MS 2000
#define FLUSH_POLL_MS 100
#define QUEUE_FULL_POLL_MS 1
#define POLL_EVERY_MESSAGES 1024 /* serve delivery reports this often */
#define DRAIN_TIMEOUT_MS 120000  /* longest wait for the last delivery reports */

struct opts {
    const char *bootstrap;
    const char *topic;
    long messages;
    int bytes;
    const char *acks;
    const char *linger_ms;
    int partition;
    int nconf;
    const char *conf[PRODUCE_CONF_MAX];
    bool idempotence;
};

struct counts {
    long delivered;
    long failed;
    rd_kafka_resp_err_t first_err;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: produce -b HOST:PORT [-t TOPIC] [-n MESSAGES] [-s BYTES] [-a ACKS]\n"
                 "               [-l LINGER_MS] [-p PARTITION] [-X key=value ...]\n"
                 "               [--idempotence]\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.topic = "bench-produce", .messages = PRODUCE_MESSAGES_DEFAULT,
                       .bytes = PRODUCE_BYTES_DEFAULT, .acks = "1", .linger_ms = "5"};
    static const struct option longopts[] = {{"idempotence", no_argument, NULL, 'I'}, {0}};
    bool acks_set = false;
    long v;
    int c;
    while ((c = getopt_long(argc, argv, "b:t:n:s:a:l:p:X:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 't': o->topic = optarg; break;
        case 'a': o->acks = optarg, acks_set = true; break;
        case 'I': o->idempotence = true; break;
        case 'l':
            if (bench_parse_long(optarg, 0, INT32_MAX, &v))
                return -1;
            o->linger_ms = optarg;
            break;
        case 'n':
            if (bench_parse_long(optarg, 1, INT64_MAX / 2, &o->messages))
                return -1;
            break;
        case 's':
            if (bench_parse_long(optarg, 0, PRODUCE_BYTES_MAX, &v))
                return -1;
            o->bytes = (int)v;
            break;
        case 'p':
            if (bench_parse_long(optarg, 0, INT32_MAX, &v))
                return -1;
            o->partition = (int)v;
            break;
        case 'X':
            if (o->nconf == PRODUCE_CONF_MAX || !strchr(optarg, '='))
                return -1;
            o->conf[o->nconf++] = optarg;
            break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (o->idempotence && !acks_set)
        o->acks = "all"; /* what enable.idempotence requires */
    return o->bootstrap && optind == argc ? 0 : -1;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct counts *n = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n->delivered++;
    } else {
        if (n->failed++ == 0)
            n->first_err = m->err;
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[PRODUCE_ERRSTR_BYTES];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "produce: %s=%s: %s\n", key, val, errstr);
        return -1;
    }
    return 0;
}

static rd_kafka_t *make_producer(const struct opts *o, struct counts *n)
{
    char errstr[PRODUCE_ERRSTR_BYTES];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = conf_set(conf, "bootstrap.servers", o->bootstrap) ||
              conf_set(conf, "acks", o->acks) || conf_set(conf, "linger.ms", o->linger_ms) ||
              conf_set(conf, "log_level", "4") ||
              (o->idempotence && conf_set(conf, "enable.idempotence", "true"));
    for (int i = 0; i < o->nconf && !bad; i++) {
        char kv[PRODUCE_ERRSTR_BYTES];
        snprintf(kv, sizeof kv, "%s", o->conf[i]);
        char *eq = strchr(kv, '=');
        *eq = '\0';
        bad = conf_set(conf, kv, eq + 1);
    }
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, n);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "produce: rd_kafka_new: %s\n", errstr);
    return rk;
}

/* Polls Metadata for the topic (which auto-creates it on brokers that do
 * that) until the partition has a leader, within METADATA_TIMEOUT_MS. */
static int wait_leader(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int partition)
{
    double deadline = now_s() + METADATA_TIMEOUT_MS / 1000.0;
    const char *why = "no answer";
    while (now_s() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, METADATA_POLL_MS);
        if (err) {
            why = rd_kafka_err2str(err);
            continue;
        }
        int ok = md->topic_cnt == 1 && !md->topics[0].err &&
                 md->topics[0].partition_cnt > partition &&
                 md->topics[0].partitions[partition].leader >= 0;
        if (md->topic_cnt == 1 && md->topics[0].err)
            why = rd_kafka_err2str(md->topics[0].err);
        rd_kafka_metadata_destroy(md);
        if (ok)
            return 0;
        rd_kafka_poll(rk, FLUSH_POLL_MS);
    }
    fprintf(stderr, "produce: partition %d of %s has no leader: %s\n", partition,
            rd_kafka_topic_name(rkt), why);
    return -1;
}

/* Enqueues every message; payload is never copied (RD_KAFKA_MSG_F_* = 0). */
static int send_all(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const struct opts *o, char *payload)
{
    for (long i = 0; i < o->messages; i++) {
        while (rd_kafka_produce(rkt, o->partition, 0, payload, (size_t)o->bytes, NULL, 0,
                                NULL) == -1) {
            rd_kafka_resp_err_t err = rd_kafka_last_error();
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce: message %ld: %s\n", i, rd_kafka_err2str(err));
                return -1;
            }
            rd_kafka_poll(rk, QUEUE_FULL_POLL_MS);
        }
        if (i % POLL_EVERY_MESSAGES == 0)
            rd_kafka_poll(rk, 0);
    }
    return 0;
}

static int drain(rd_kafka_t *rk, const struct counts *n, long messages)
{
    double deadline = now_s() + DRAIN_TIMEOUT_MS / 1000.0;
    while (n->delivered + n->failed < messages && now_s() < deadline)
        rd_kafka_flush(rk, FLUSH_POLL_MS);
    return n->delivered + n->failed == messages ? 0 : -1;
}

static void report(const struct opts *o, const struct counts *n, double secs, double cpu_s)
{
    double msgs = (double)n->delivered;
    printf("{\"bench\": \"produce\", \"acks\": \"%s\", \"idempotence\": %s, \"linger_ms\": %s, "
           "\"message_bytes\": %d, "
           "\"messages\": %ld, \"delivered\": %ld, \"failed\": %ld, \"first_error\": \"%s\", "
           "\"seconds\": %.3f, \"msg_per_s\": %.0f, \"mb_per_s\": %.2f, "
           "\"client_cpu_s\": %.2f, \"librdkafka\": \"%s\"}\n",
           o->acks, o->idempotence ? "true" : "false", o->linger_ms, o->bytes, o->messages,
           n->delivered, n->failed,
           n->failed ? rd_kafka_err2name(n->first_err) : "", secs, msgs / secs,
           msgs * o->bytes / 1e6 / secs, cpu_s, rd_kafka_version_str());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    char *payload = malloc((size_t)o.bytes + 1);
    for (int i = 0; i < o.bytes; i++)
        payload[i] = (char)('a' + i % 26);
    struct counts n = {0};
    rd_kafka_t *rk = make_producer(&o, &n);
    if (!rk)
        return 2;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
    int rc = wait_leader(rk, rkt, o.partition) ? 1 : 0;
    if (rc == 0) {
        double cpu0 = cpu_self_s(), t0 = now_s();
        rc = send_all(rk, rkt, &o, payload) || drain(rk, &n, o.messages) ? 1 : 0;
        double secs = now_s() - t0, cpu_s = cpu_self_s() - cpu0;
        report(&o, &n, secs, cpu_s);
        rc = rc || n.failed ? 1 : 0;
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(payload);
    return rc;
}
