/* cli.c - operator subcommands (cli.h). Each subcommand is a row of
 * `commands`; `log` holds the offline tools, which only read a partition
 * directory and need no running broker:
 *
 *   chronik log check DIR   verify segments, indexes and CRCs; exit 0 when
 *                           consistent, 1 with a report of each problem,
 *                           2 when the directory cannot be read
 *   chronik log dump DIR    print every record batch's header
 *   chronik log repair DIR  move a damaged part aside (never deleting it) so
 *                           the log is writable again; refuses while a
 *                           broker holds the data directory
 *
 * and `cluster` asks a running node, over its admin port:
 *
 *   chronik cluster status [--admin HOST:PORT] [--json]
 *                           the node's live state (GET /status); exit 0
 *                           healthy, 1 degraded (each problem listed), 2
 *                           unreachable or bad arguments
 */
#include "admin/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/http.h"
#include "base/util.h"
#include "storage/storage.h"

enum { EXIT_USAGE = 2, EXIT_DEGRADED = 1 };

#define CLI_ADMIN_DEFAULT_HOST "127.0.0.1"
#define CLI_ADMIN_DEFAULT_PORT 9644
#define CLI_HTTP_TIMEOUT_MS 10000

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
} cli_command;

static int cmd_log(int argc, char **argv);
static int cmd_cluster(int argc, char **argv);

static const cli_command commands[] = {
    {"log", cmd_log},
    {"cluster", cmd_cluster},
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
            "\n"
            "Asks a running node (its admin port, default %s:%d) for the live state:\n"
            "health and each problem, the node, the metadata, and every partition with its\n"
            "leader, replicas, ISR, state, log start and end, high watermark and size.\n"
            "--json prints the full document (GET /status). Exit status: 0 healthy,\n"
            "1 degraded, 2 unreachable or bad arguments.\n",
            CLI_ADMIN_DEFAULT_HOST, CLI_ADMIN_DEFAULT_PORT);
}

/* HOST:PORT or [V6]:PORT into host and port; false when malformed. */
static bool parse_hostport(const char *s, char *host, size_t hn, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    const char *h = s;
    size_t len = (size_t)(colon - s);
    if (h[0] == '[' && len >= 2 && h[len - 1] == ']')
        h++, len -= 2;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535 || len == 0 || len >= hn)
        return false;
    memcpy(host, h, len);
    host[len] = 0;
    *port = (int)p;
    return true;
}

static int cmd_cluster(int argc, char **argv)
{
    if (argc >= 2 && is_help(argv[1])) {
        cluster_usage(stdout);
        return 0;
    }
    char host[256] = CLI_ADMIN_DEFAULT_HOST;
    int port = CLI_ADMIN_DEFAULT_PORT;
    bool json = false, ok = argc >= 2 && strcmp(argv[1], "status") == 0;
    for (int i = 2; ok && i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc)
            ok = parse_hostport(argv[++i], host, sizeof host, &port);
        else
            ok = false;
    }
    if (!ok) {
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
