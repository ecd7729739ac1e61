/*
 * cli_kafka.h - what the subcommands that speak the Kafka protocol to a
 * broker share (topic, group, produce, consume): the common options, a
 * blocking request over kclient, the broker map from Metadata, one-line
 * errors with exit codes scripts can trust, tables and JSON.
 *
 * Exit codes (every Kafka subcommand):
 *   0  the operation succeeded
 *   1  the broker refused or failed it (unknown topic or group, topic
 *      already exists, group not empty, not authorised, ...)
 *   2  bad usage, or the broker could not be reached or did not answer in
 *      time
 * Errors are one line on stderr, "chronik: ...". Human-readable tables go
 * to stdout by default; --json prints one JSON document instead.
 *
 * Threads: a cli_kafka owns a one-reactor net; cli_call() sends on the
 * caller's thread and waits for the callback on a condition variable, so
 * the subcommands read like straight-line code.
 */
#ifndef CHRONIK_ADMIN_CLI_KAFKA_H
#define CHRONIK_ADMIN_CLI_KAFKA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kclient/kclient.h"
#include "proto/proto.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2 };

#define CLI_BOOTSTRAP_DEFAULT "127.0.0.1:9092"
#define CLI_TIMEOUT_DEFAULT_MS 30000u
#define CLI_BROKERS_MAX 256
#define CLI_ADDR_MAX (NET_HOST_MAX + 8)

/* Kafka api keys the subcommands send. */
enum cli_api {
    CLI_API_PRODUCE = 0, CLI_API_FETCH = 1, CLI_API_LIST_OFFSETS = 2, CLI_API_METADATA = 3,
    CLI_API_OFFSET_COMMIT = 8, CLI_API_OFFSET_FETCH = 9, CLI_API_FIND_COORDINATOR = 10,
    CLI_API_DESCRIBE_GROUPS = 15, CLI_API_LIST_GROUPS = 16, CLI_API_CREATE_TOPICS = 19,
    CLI_API_DELETE_TOPICS = 20, CLI_API_DESCRIBE_CONFIGS = 32, CLI_API_DELETE_GROUPS = 42,
    CLI_API_INCREMENTAL_ALTER_CONFIGS = 44,
};

/* The options every Kafka subcommand takes. */
typedef struct cli_opts {
    const char *bootstrap;  /* --bootstrap / -b HOST:PORT */
    uint32_t timeout_ms;    /* --request-timeout SECONDS: each request's deadline */
    bool json;              /* --json */
} cli_opts;

void cli_opts_init(cli_opts *o);
/* argv[*i] is one of the common options: consume it (and its value) and
 * return 1; 0 when it is not one; -1 (after saying why) when malformed. */
int cli_opts_take(cli_opts *o, const char *cmd, int argc, char **argv, int *i);
/* The usage lines of the common options. */
extern const char cli_opts_usage[];
/* The exit-code paragraph of every usage text. */
extern const char cli_exit_usage[];

/* Which of subs argv[1] (the subcommand of argv[0]) names: its index; or
 * -1 with *rc the exit code once usage has been printed (asked for with
 * --help anywhere: 0 on stdout; missing or unknown: 2 on stderr). */
int cli_subcommand(int argc, char **argv, const char *const *subs, int n, void (*usage)(FILE *out), int *rc);
/* HOST:PORT into host and port; false (after saying what is wrong) when malformed. */
bool cli_parse_hostport(const char *cmd, const char *opt, const char *v, char host[NET_HOST_MAX], uint16_t *port);
/* "chronik CMD: unknown argument 'x'" (or: needs a value); returns CLI_EXIT_USAGE. */
int cli_bad_arg(const char *cmd, const char *arg, bool needs_value);
bool cli_is_help(const char *s);
/* A whole decimal integer in [lo, hi]; false (after saying why) otherwise. */
bool cli_parse_i64(const char *cmd, const char *opt, const char *v, int64_t lo, int64_t hi, int64_t *out);

typedef struct cli_broker {
    int32_t node_id;
    char addr[CLI_ADDR_MAX];
    kclient_t *kc;          /* connected on first use */
} cli_broker;

typedef struct cli_kafka {
    net_t *net;
    kclient_t *boot;
    cli_opts o;
    cli_broker brokers[CLI_BROKERS_MAX];
    int nbrokers;
} cli_kafka;

/* Connect to the bootstrap broker and wait for its handshake. Returns 0, or
 * CLI_EXIT_USAGE after printing "chronik: cannot reach ...". */
int cli_kafka_open(cli_kafka *k, const cli_opts *o);
void cli_kafka_close(cli_kafka *k);

/* The version of api to speak to kc: the highest both know, at most want. -1
 * when there is none (cli_call then fails with a message). */
int16_t cli_version(kclient_t *kc, int16_t api, int16_t want);

/* Send req (api at version v) to kc and wait. 0 with *resp the decoded
 * response (valid until kclient_resp_free(*r)); else an exit code after
 * printing the error. */
int cli_call(cli_kafka *k, kclient_t *kc, int16_t api, int16_t v, const void *req, const void **resp,
             kclient_resp_t **r);

/* A request being built: its client, api, version and the arena its
 * arrays come from. */
typedef struct cli_req {
    cli_kafka *k;
    kclient_t *kc;
    int16_t api;
    int16_t v;              /* -1: no common version (the call then fails) */
    bool lost_quietly;      /* a lost connection or timeout: CLI_CALL_LOST, nothing said */
    arena_t a;
} cli_req;

#define CLI_CALL_LOST (-1)

/* A request struct of api with the schema defaults of the version spoken
 * to kc (at most want, at least min). */
void *cli_req_new(cli_req *q, cli_kafka *k, kclient_t *kc, int16_t api, int16_t want, int16_t min);
/* cli_call the request (see lost_quietly), then free its arena. */
int cli_req_call(cli_req *q, const void *req, const void **resp, kclient_resp_t **r);

/* Metadata for the named topics (n 0, names NULL: all topics); records the
 * brokers it names. Returns 0 or an exit code. */
int cli_metadata(cli_kafka *k, const char *const *names, int n, const MetadataResponse **md,
                 kclient_resp_t **r);
/* The client of broker node_id (learnt from Metadata or added), connected
 * and handshaken; NULL after printing the error. */
kclient_t *cli_broker_client(cli_kafka *k, int32_t node_id);
/* The same without a word when it cannot be reached (NULL). */
kclient_t *cli_broker_reach(cli_kafka *k, int32_t node_id);
/* Remember broker node_id at host:port (FindCoordinator answers). */
void cli_broker_add(cli_kafka *k, int32_t node_id, kstr_t host, int32_t port);

/* A topic of md by name, or NULL. */
const MetadataResponse_MetadataResponseTopic *cli_md_topic(const MetadataResponse *md, const char *name);

/* Report a Kafka error code about `subject` ("topic 'x'", "group 'g'")
 * with the broker's message (may be null) and return the exit code (1). */
int cli_kafka_error(int16_t code, kstr_t msg, const char *subject);
/* "chronik: " + the message + newline on stderr; returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- output ------------------------------------------------------------------- */

/* A JSON string (s of len bytes; len -1: null). */
void cli_json_str(FILE *f, const char *s, int32_t len);
static inline void cli_json_kstr(FILE *f, kstr_t s) { cli_json_str(f, s.ptr, s.len); }
/* `before` (e.g. ",\"name\":") then s as a JSON string. */
void cli_json_kv(FILE *f, const char *before, kstr_t s);
void cli_json_i32s(FILE *f, const kint32_array_t *a);

/* A table: rows of cells printed with aligned columns. */
#define CLI_TABLE_COLS_MAX 10
typedef struct cli_table {
    int ncols;
    int nrows;
    int cap;
    char **cells;           /* nrows * ncols, owned */
} cli_table;

void cli_table_init(cli_table *t, int ncols);
/* Append a row: one printf-formatted line whose cells are split by '\t'. */
void cli_table_row(cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

/* "1,2,3" of an int32 array into out. */
const char *cli_i32s(const kint32_array_t *a, char *out, size_t cap);
/* A kstr as a NUL-terminated copy into out (truncated), "" for null. */
const char *cli_kstr(kstr_t s, char *out, size_t cap);

#endif
