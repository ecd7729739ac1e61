/*
 * mock_broker.c - librdkafka's in-memory mock cluster as a stand-alone
 * reference broker: what a real Kafka answers, to compare Chronik against
 * and to capture client request frames from (tools/capture_golden.py).
 *
 *   build/bench/mock_broker [--brokers N] [--topic NAME:PARTITIONS ...]
 *
 * The mock cluster listens on ephemeral loopback ports (librdkafka 2.0 has
 * no way to choose them), so the program prints the bootstrap list, e.g.
 * "127.0.0.1:39213", as the first and only line on stdout, flushes it, and
 * then serves until SIGTERM or SIGINT, after which it exits 0. Unknown
 * topics are auto-created by the mock on Metadata requests.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bench_args.h"

#define MOCK_BROKERS_MAX 16
#define MOCK_TOPICS_MAX 32
#define MOCK_PARTITIONS_MAX 1024
#define MOCK_ERRSTR_BYTES 512
#define MOCK_REPLICAS_MAX 3 /* replication factor of --topic topics */

struct mock_topic {
    char name[256];
    int partitions;
};

struct mock_opts {
    int brokers;
    int topic_count;
    struct mock_topic topics[MOCK_TOPICS_MAX];
};

static void usage(FILE *out)
{
    fprintf(out, "usage: mock_broker [--brokers N] [--topic NAME:PARTITIONS ...]\n"
                 "Prints the bootstrap address on stdout, serves until SIGTERM/SIGINT.\n");
}

/* An int in [lo, hi] (bench_parse_long narrowed). */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    long v;
    if (bench_parse_long(s, lo, hi, &v))
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_topic(const char *arg, struct mock_topic *t)
{
    const char *colon = strrchr(arg, ':');
    size_t n = colon ? (size_t)(colon - arg) : 0;
    if (!colon || n == 0 || n >= sizeof t->name)
        return -1;
    memcpy(t->name, arg, n);
    t->name[n] = '\0';
    return parse_int(colon + 1, 1, MOCK_PARTITIONS_MAX, &t->partitions);
}

static int parse_args(int argc, char **argv, struct mock_opts *o)
{
    o->brokers = 1;
    o->topic_count = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc)
            return -1;
        if (strcmp(a, "--brokers") == 0) {
            if (parse_int(argv[++i], 1, MOCK_BROKERS_MAX, &o->brokers))
                return -1;
        } else if (strcmp(a, "--topic") == 0) {
            if (o->topic_count == MOCK_TOPICS_MAX ||
                parse_topic(argv[++i], &o->topics[o->topic_count++]))
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* The mock cluster needs a client handle for its bookkeeping; a producer
 * with no bootstrap servers never connects anywhere. */
static rd_kafka_t *dummy_handle(void)
{
    char errstr[MOCK_ERRSTR_BYTES];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mock_broker: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        fprintf(stderr, "mock_broker: rd_kafka_new: %s\n", errstr);
    return rk; /* on success rd_kafka_new owns conf */
}

static int create_topics(rd_kafka_mock_cluster_t *mc, const struct mock_opts *o)
{
    int replicas = o->brokers < MOCK_REPLICAS_MAX ? o->brokers : MOCK_REPLICAS_MAX;
    for (int i = 0; i < o->topic_count; i++) {
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, o->topics[i].name, o->topics[i].partitions, replicas);
        if (err) {
            fprintf(stderr, "mock_broker: topic %s: %s\n", o->topics[i].name,
                    rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

/* Block the stop signals in every thread (librdkafka's threads inherit the
 * mask), then wait for one synchronously: no handler, no polling. */
static int wait_for_stop(const sigset_t *stop)
{
    int sig = 0;
    int rc = sigwait(stop, &sig);
    if (rc)
        fprintf(stderr, "mock_broker: sigwait: %s\n", strerror(rc));
    return rc ? -1 : sig;
}

int main(int argc, char **argv)
{
    struct mock_opts opts;
    if (parse_args(argc, argv, &opts)) {
        usage(stderr);
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    rd_kafka_t *rk = dummy_handle();
    if (!rk)
        return 1;
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, opts.brokers);
    if (!mc) {
        fprintf(stderr, "mock_broker: could not create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = create_topics(mc, &opts) ? 1 : 0;
    if (rc == 0) {
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
        int sig = wait_for_stop(&stop);
        rc = sig < 0 ? 1 : 0;
        if (sig > 0)
            fprintf(stderr, "mock_broker: signal %d, stopping\n", sig);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
