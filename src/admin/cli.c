/* cli.c - operator subcommands (cli.h). Each subcommand is a row of
 * `commands`; `log` holds the offline tools, which only read a partition
 * directory and need no running broker:
 *
 *   chronik log check DIR   verify segments, indexes and CRCs; exit 0 when
 *                           consistent, 1 with a report of each problem,
 *                           2 when the directory cannot be read
 *   chronik log dump DIR    print every record batch's header (and the
 *                           transaction marker of control batches) and
 *                           each segment's aborted-transaction index
 *   chronik log repair DIR  move a damaged part aside (never deleting it) so
 *                           the log is writable again; refuses while a
 *                           broker holds the data directory
 *
 * `cluster local` starts a cluster of N nodes on this machine (local.c), and
 * `cluster status` and `wait-ready` ask a running node, over its admin port:
 *
 *   chronik cluster status [--admin HOST:PORT] [--json]
 *                           the node's live state (GET /status); exit 0
 *                           healthy, 1 degraded (each problem listed), 2
 *                           unreachable or bad arguments
 *   chronik wait-ready [--admin HOST:PORT] [--timeout SECONDS] [--pid PID]
 *                           poll GET /ready until the node is ready; exit 0
 *                           ready, 1 not ready in time (or process PID
 *                           ended), 2 bad arguments
 *
 * The Kafka-protocol commands talk to any Kafka-compatible broker
 * (--bootstrap HOST:PORT, default 127.0.0.1:9092) with Chronik's own client;
 * each has --help and --json and exits 0 ok, 1 refused by the broker, 2 bad
 * usage, unreachable or timed out (cli_kafka.h):
 *
 *   chronik topic create|list|describe|alter|delete ...   cli_topic.c
 *   chronik group list|describe|reset-offsets|delete ...  cli_group.c
 *   chronik produce TOPIC ... / chronik consume TOPIC ... cli_data.c
 *   chronik completion bash|zsh                           cli_complete.c
 */
#include "admin/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/cli_complete.h"
#include "admin/cli_data.h"
#include "admin/cli_group.h"
#include "admin/cli_kafka.h"
#include "admin/cli_topic.h"
#include "admin/http.h"
#include "admin/local.h"
#include "base/util.h"
#include "net/net.h"
#include "storage/storage.h"

enum { EXIT_USAGE = 2, EXIT_DEGRADED = 1 };

#define CLI_ADMIN_DEFAULT_HOST "127.0.0.1"
#define CLI_ADMIN_DEFAULT_PORT 9644
#define CLI_HTTP_TIMEOUT_MS 10000
#define CLI_WAIT_DEFAULT_S 60
#define CLI_WAIT_POLL_MS 100

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
} cli_command;

static int cmd_log(int argc, char **argv);
static int cmd_cluster(int argc, char **argv);
static int cmd_wait_ready(int argc, char **argv);

static const cli_command commands[] = {
    {"log", cmd_log},
    {"cluster", cmd_cluster},
    {"wait-ready", cmd_wait_ready},
    {"topic", cli_topic_main},
    {"group", cli_group_main},
    {"produce", cli_produce_main},
    {"consume", cli_consume_main},
    {"completion", cli_completion_main},
};

static void log_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik log check DIR   verify a partition directory\n"
            "       chronik log dump DIR    print the record batches of a partition directory\n"
            "       chronik log repair DIR  move a damaged part aside so the log is writable again\n"
            "\n"
            "DIR is a partition directory, DATA_DIR/<topic>-<partition>. check and dump only\n"
            "read it; stop the broker first for a consistent view. Exit status: 0 consistent,\n"
            "1 problems found (each reported), 2 unreadable or bad arguments.\n"
            "repair needs the broker stopped: it moves everything from the first damaged\n"
            "batch on into DIR.<hex>-damaged (nothing is deleted) and cuts the log there.\n"
            "Exit status: 0 repaired or nothing to repair, 2 failed.\n");
}

static bool is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

static int cmd_log(int argc, char **argv)
{
    if (argc >= 2 && is_help(argv[1])) {
        log_usage(stdout);
        return 0;
    }
    bool known = argc >= 2 && (strcmp(argv[1], "check") == 0 || strcmp(argv[1], "dump") == 0 ||
                               strcmp(argv[1], "repair") == 0);
    if (argc != 3 || !known) {
        if (argc >= 2 && !known)
            fprintf(stderr, "chronik log: unknown subcommand '%s'\n\n", argv[1]);
        else if (argc > 3)
            fprintf(stderr, "chronik log %s: takes one directory\n\n", argv[1]);
        log_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "check") == 0)
        return storage_check_dir(argv[2], stdout);
    if (strcmp(argv[1], "repair") == 0)
        return storage_repair_dir(argv[2], stdout);
    return storage_dump_dir(argv[2], stdout);
}

static void cluster_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik cluster status [--admin HOST:PORT] [--json]\n"
            "       chronik cluster local --nodes N [--data-dir DIR] [--base-port P]\n"
            "\n"
            "status asks a running node (its admin port, default %s:%d) for the live state:\n"
            "health and each problem, the node, the metadata, and every partition with its\n"
            "leader, replicas, ISR, state, log start and end, high watermark and size.\n"
            "--json prints the full document (GET /status). Exit status: 0 healthy,\n"
            "1 degraded, 2 unreachable or bad arguments.\n"
            "local starts N nodes on this machine and runs until Ctrl-C\n"
            "(chronik cluster local --help).\n",
            CLI_ADMIN_DEFAULT_HOST, CLI_ADMIN_DEFAULT_PORT);
}

/* --admin's value into host and port; false (after saying what is wrong) when malformed. */
static bool parse_admin(const char *cmd, const char *v, char host[NET_HOST_MAX], int *port)
{
    uint16_t p;
    if (!cli_parse_hostport(cmd, "--admin", v, host, &p))
        return false;
    *port = p;
    return true;
}

/* An argument cmd does not take (or an option without its value): say which. */
static bool bad_arg(const char *cmd, const char *arg, bool known_option)
{
    if (known_option)
        fprintf(stderr, "chronik %s: option '%s' needs a value\n", cmd, arg);
    else
        fprintf(stderr, "chronik %s: unknown argument '%s'\n", cmd, arg);
    return false;
}

static int cmd_cluster(int argc, char **argv)
{
    if (argc >= 2 && is_help(argv[1])) {
        cluster_usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "local") == 0)
        return local_main(argc - 1, argv + 1);
    char host[NET_HOST_MAX] = CLI_ADMIN_DEFAULT_HOST;
    int port = CLI_ADMIN_DEFAULT_PORT;
    bool status_cmd = argc >= 2 && strcmp(argv[1], "status") == 0, json = false, ok = status_cmd;
    if (argc >= 2 && !status_cmd)
        fprintf(stderr, "chronik cluster: unknown subcommand '%s'\n", argv[1]);
    for (int i = 2; ok && i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc)
            ok = parse_admin("cluster status", argv[++i], host, &port);
        else
            ok = bad_arg("cluster status", argv[i], strcmp(argv[i], "--admin") == 0);
    }
    if (!ok) {
        if (argc >= 2) /* what is wrong was said above */
            fputc('\n', stderr);
        cluster_usage(stderr);
        return EXIT_USAGE;
    }
    buf_t body;
    buf_init(&body);
    int status = admin_http_get(host, port, json ? "/status" : "/status?format=text", CLI_HTTP_TIMEOUT_MS, &body);
    if (status < 0 || (status != 200 && status != 503)) {
        fprintf(stderr, "chronik cluster status: no status from %s:%d: %s\n", host, port,
                status < 0 ? strerror(-status) : "unexpected HTTP status");
        buf_free(&body);
        return EXIT_USAGE;
    }
    fwrite(body.data, 1, body.len, stdout);
    buf_free(&body);
    return status == 200 ? 0 : EXIT_DEGRADED;
}

static void wait_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik wait-ready [--admin HOST:PORT] [--timeout SECONDS] [--pid PID]\n"
            "\n"
            "Waits until a node answers GET /ready on its admin port (default %s:%d) with 200,\n"
            "asking every %d ms, for at most SECONDS (default %d). With --pid, gives up as soon\n"
            "as that process has ended. Exit status: 0 ready, 1 not ready in time (the last\n"
            "answer is printed), 2 bad arguments.\n",
            CLI_ADMIN_DEFAULT_HOST, CLI_ADMIN_DEFAULT_PORT, CLI_WAIT_POLL_MS, CLI_WAIT_DEFAULT_S);
}

typedef struct wait_args {
    char host[NET_HOST_MAX];
    int port;
    double timeout_s;
    double pid; /* 0: none */
} wait_args;

static bool parse_number(const char *opt, const char *v, double lo, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno != 0 || end == v || *end != 0 || !(x >= lo && x <= 1e9)) {
        fprintf(stderr, "chronik wait-ready: invalid %s '%s' (want a number of at least %g)\n", opt, v, lo);
        return false;
    }
    *out = x;
    return true;
}

static bool parse_wait_args(int argc, char **argv, wait_args *w)
{
    bool ok = true;
    for (int i = 1; ok && i < argc; i++) {
        const char *a = argv[i];
        bool known = strcmp(a, "--admin") == 0 || strcmp(a, "--timeout") == 0 || strcmp(a, "--pid") == 0;
        if (!known || i + 1 >= argc)
            ok = bad_arg("wait-ready", a, known);
        else if (strcmp(a, "--admin") == 0)
            ok = parse_admin("wait-ready", argv[++i], w->host, &w->port);
        else if (strcmp(a, "--timeout") == 0)
            ok = parse_number(a, argv[++i], 0, &w->timeout_s);
        else
            ok = parse_number(a, argv[++i], 1, &w->pid);
    }
    return ok;
}

/* One GET /ready: true when ready; the answer (or the error) goes to last. */
static bool ready_once(const wait_args *w, char *last, size_t cap)
{
    buf_t body;
    buf_init(&body);
    int status = admin_http_get(w->host, w->port, "/ready", CLI_WAIT_POLL_MS * 10, &body);
    if (status < 0)
        snprintf(last, cap, "%s", strerror(-status));
    else
        snprintf(last, cap, "HTTP %d %.*s", status, (int)MIN(body.len, (size_t)200), (const char *)body.data);
    last[strcspn(last, "\n")] = 0;
    buf_free(&body);
    return status == 200;
}

static bool process_gone(double pid)
{
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int cmd_wait_ready(int argc, char **argv)
{
    if (argc >= 2 && is_help(argv[1])) {
        wait_usage(stdout);
        return 0;
    }
    wait_args w = {CLI_ADMIN_DEFAULT_HOST, CLI_ADMIN_DEFAULT_PORT, CLI_WAIT_DEFAULT_S, 0};
    if (!parse_wait_args(argc, argv, &w))
        return EXIT_USAGE;
    int64_t deadline = clock_mono_ms() + (int64_t)(w.timeout_s * 1000);
    char last[256] = "no answer";
    while (!ready_once(&w, last, sizeof last)) {
        if (process_gone(w.pid)) {
            fprintf(stderr, "chronik wait-ready: process %.0f ended before %s:%d was ready (last: %s)\n",
                    w.pid, w.host, w.port, last);
            return EXIT_DEGRADED;
        }
        if (clock_mono_ms() >= deadline) {
            fprintf(stderr, "chronik wait-ready: %s:%d not ready after %g s (last: %s)\n", w.host, w.port,
                    w.timeout_s, last);
            return EXIT_DEGRADED;
        }
        struct timespec ts = {0, CLI_WAIT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    printf("ready: %s:%d\n", w.host, w.port);
    return 0;
}

int cli_main(int argc, char **argv)
{
    if (argc < 1)
        return CLI_UNKNOWN_COMMAND;
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(argv[0], commands[i].name) == 0) {
            int rc = commands[i].run(argc, argv);
            fflush(stdout);
            return rc;
        }
    return CLI_UNKNOWN_COMMAND;
}
