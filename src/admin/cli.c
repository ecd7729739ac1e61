/* cli.c - operator subcommands (cli.h). Each subcommand is a row of
 * `commands`; `log` holds the offline tools, which only read a partition
 * directory and need no running broker:
 *
 *   chronik log check DIR   verify segments, indexes and CRCs; exit 0 when
 *                           consistent, 1 with a report of each problem,
 *                           2 when the directory cannot be read
 *   chronik log dump DIR    print every record batch's header
 */
#include "admin/cli.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "storage/storage.h"

enum { EXIT_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command's name */
} cli_command;

static int cmd_log(int argc, char **argv);

static const cli_command commands[] = {
    {"log", cmd_log},
};

static void log_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik log check DIR   verify a partition directory\n"
            "       chronik log dump DIR    print the record batches of a partition directory\n"
            "\n"
            "DIR is a partition directory, DATA_DIR/<topic>-<partition>. Both only read it;\n"
            "stop the broker first for a consistent view. Exit status: 0 consistent,\n"
            "1 problems found (each reported), 2 unreadable or bad arguments.\n");
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
    if (argc != 3 || (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "dump") != 0)) {
        if (argc >= 2 && strcmp(argv[1], "check") != 0 && strcmp(argv[1], "dump") != 0)
            fprintf(stderr, "chronik log: unknown subcommand '%s'\n\n", argv[1]);
        else if (argc > 3)
            fprintf(stderr, "chronik log %s: takes one directory\n\n", argv[1]);
        log_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "check") == 0)
        return storage_check_dir(argv[2], stdout);
    return storage_dump_dir(argv[2], stdout);
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
