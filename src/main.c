/* main.c - argument parsing and start-up only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/cli.h"
#include "base/log.h"
#include "base/util.h"
#include "broker/broker.h"
#include "broker/config.h"

static void usage(FILE *out)
{
    fprintf(out,
            "chronik %s - a Kafka-compatible, durable event-streaming broker\n"
            "\n"
            "usage:\n"
            "  chronik server [options]          run a node (defaults: single node on 127.0.0.1:9092)\n"
            "  chronik log check DIR             verify a partition directory offline\n"
            "  chronik log dump DIR              print the record batches of a partition directory\n"
            "  chronik log repair DIR            move a damaged part of a partition aside (broker stopped)\n"
            "  chronik cluster status [--admin HOST:PORT] [--json]\n"
            "                                    the live state of a running node and its partitions\n"
            "  chronik cluster local --nodes N [--data-dir DIR] [--base-port P]\n"
            "                                    run an N-node cluster on this machine until Ctrl-C\n"
            "  chronik wait-ready [--admin HOST:PORT] [--timeout SECONDS]\n"
            "                                    wait until a node is ready to serve\n"
            "  chronik topic create|list|describe|alter|delete ...\n"
            "  chronik group list|describe|reset-offsets|delete ...\n"
            "  chronik produce TOPIC ... | chronik consume TOPIC ...\n"
            "                                    talk to any Kafka-compatible broker (--bootstrap\n"
            "                                    HOST:PORT); each has --help\n"
            "  chronik completion bash|zsh       print a shell completion script\n"
            "  chronik --version | --help\n"
            "\n"
            "Run 'chronik server --help' for the server's options and configuration keys.\n",
            CHRONIK_VERSION);
}

static void server_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik server [--config FILE] [--node-id N] [--listen HOST:PORT]\n"
            "                      [--advertise HOST:PORT] [--controller-listen HOST:PORT]\n"
            "                      [--voters ID@HOST:PORT,...] [--data-dir DIR]\n"
            "                      [--admin-listen HOST:PORT] [--set KEY=VALUE ...]\n"
            "                      [--add-scram 'SCRAM-SHA-512=[name=NAME,password=PASSWORD]' ...]\n"
            "\n"
            "       chronik server --config-doc   (every key as a Markdown table: docs/CONFIG.md)\n"
            "\n"
            "Flags override the configuration file. Configuration keys (Kafka names):\n");
    config_print_keys(out);
}

/* Flag name -> configuration key it sets. */
static const struct {
    const char *flag;
    const char *key;
} flag_keys[] = {
    {"--node-id", "node.id"},
    {"--listen", "listeners"},
    {"--advertise", "advertised.listeners"},
    {"--voters", "controller.quorum.voters"},
    {"--data-dir", "log.dirs"},
    {"--admin-listen", "admin.listeners"},
};

static int apply_flag(config *c, const char *flag, const char *value, char *err, size_t errlen)
{
    if (strcmp(flag, "--controller-listen") == 0) {
        char v[512];
        snprintf(v, sizeof v, "CONTROLLER://%s", value);
        return config_set(c, "listeners", v, err, errlen);
    }
    if (strcmp(flag, "--add-scram") == 0) { /* kafka-storage's form; each adds a user */
        size_t have = strlen(c->sasl_bootstrap_scram);
        char *v = xmalloc(have + strlen(value) + 2);
        sprintf(v, "%s%s%s", c->sasl_bootstrap_scram, have ? ";" : "", value);
        int rc = config_set(c, "sasl.scram.bootstrap.users", v, err, errlen);
        free(v);
        return rc;
    }
    if (strcmp(flag, "--set") == 0) {
        const char *eq = strchr(value, '=');
        if (!eq) {
            snprintf(err, errlen, "--set wants KEY=VALUE, got '%s'", value);
            return -1;
        }
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - value), value);
        return config_set(c, key, eq + 1, err, errlen);
    }
    for (size_t i = 0; i < ARRAY_LEN(flag_keys); i++)
        if (strcmp(flag, flag_keys[i].flag) == 0)
            return config_set(c, flag_keys[i].key, value, err, errlen);
    snprintf(err, errlen, "unknown option '%s' (see 'chronik server --help')", flag);
    return -1;
}

static bool known_flag(const char *flag)
{
    if (strcmp(flag, "--config") == 0 || strcmp(flag, "--controller-listen") == 0 ||
        strcmp(flag, "--set") == 0 || strcmp(flag, "--add-scram") == 0)
        return true;
    for (size_t i = 0; i < ARRAY_LEN(flag_keys); i++)
        if (strcmp(flag, flag_keys[i].flag) == 0)
            return true;
    return false;
}

/* argv[*i] as "--flag VALUE" or "--flag=VALUE" (*i moves past the value).
 * Returns 0, or -1 after saying what is wrong with the argument. */
static int next_flag(int argc, char **argv, int *i, char *flag, size_t flen, const char **value)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0) {
        fprintf(stderr, "chronik: unexpected argument '%s' (see 'chronik server --help')\n", a);
        return -1;
    }
    const char *eq = strchr(a, '=');
    snprintf(flag, flen, "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
    if (!known_flag(flag)) {
        fprintf(stderr, "chronik: unknown option '%s' (see 'chronik server --help')\n", flag);
        return -1;
    }
    if (eq != NULL) {
        *value = eq + 1;
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "chronik: option '%s' needs a value\n", flag);
        return -1;
    }
    *value = argv[++*i];
    return 0;
}

/* The config file is read first, then flags on top of it, whatever their order. */
static int parse_server_args(int argc, char **argv, config *c)
{
    char err[512];
    config_defaults(c);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            server_usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--config-doc") == 0) {
            config_print_markdown(stdout);
            exit(0);
        }
        const char *file = strncmp(argv[i], "--config=", 9) == 0 ? argv[i] + 9
                           : strcmp(argv[i], "--config") == 0 && i + 1 < argc ? argv[i + 1] : NULL;
        if (file != NULL && config_load_file(c, file, err, sizeof err) != 0) {
            fprintf(stderr, "chronik: %s\n", err);
            return -1;
        }
    }
    for (int i = 0; i < argc; i++) {
        char flag[64];
        const char *value;
        if (next_flag(argc, argv, &i, flag, sizeof flag, &value) != 0)
            return -1;
        if (strcmp(flag, "--config") != 0 && apply_flag(c, flag, value, err, sizeof err) != 0) {
            fprintf(stderr, "chronik: %s\n", err);
            return -1;
        }
    }
    if (config_finish(c, err, sizeof err) != 0) {
        fprintf(stderr, "chronik: %s\n", err);
        return -1;
    }
    return 0;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        broker_request_tls_reload();
    else
        broker_request_stop();
}

static int cmd_server(int argc, char **argv)
{
    config c;
    if (parse_server_args(argc, argv, &c) != 0)
        return 2;
    log_set_level((enum log_level)c.log_level);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return broker_run(&c);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("chronik %s\n", CHRONIK_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "server") == 0)
        return cmd_server(argc - 2, argv + 2);
    int rc = cli_main(argc - 1, argv + 1);
    if (rc == CLI_UNKNOWN_COMMAND) {
        fprintf(stderr, "chronik: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return rc;
}
