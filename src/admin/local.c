/* local.c - `chronik cluster local` (local.h): N nodes on this machine.
 *
 *   chronik cluster local --nodes N [--data-dir DIR] [--base-port P]
 *                         [--timeout SECONDS] [-- SERVER-OPTION ...]
 *
 * Node K (1..N) is `chronik server --node-id K` (this very binary, re-executed
 * through /proc/self/exe) with
 *   client listener     127.0.0.1:P+K-1        (default P 9092: 9092, 9093, ...)
 *   controller listener 127.0.0.1:P+100+K-1    (9192, 9193, ...)
 *   admin HTTP          127.0.0.1:P+552+K-1    (9644, 9645, ...: node 1 has the
 *                                               admin port `cluster status` asks
 *                                               by default)
 *   data directory      DIR/node-K             (default ./chronik-cluster)
 *   stdout and stderr   DIR/node-K.log         (appended to)
 * and every node gets the same --voters line naming all N controllers.
 * Arguments after `--` are given to every node (e.g. `-- --set num.partitions=3`).
 *
 * Life of the launcher:
 *   1. SIGINT, SIGTERM and SIGCHLD are blocked and taken with sigtimedwait,
 *      so a signal or a child's death is an event the loops below wait for.
 *   2. The children start in a process group of their own (a Ctrl-C in the
 *      terminal reaches the launcher only, which then stops them in order)
 *      and get SIGTERM if the launcher itself dies (PR_SET_PDEATHSIG).
 *   3. Until every node answers GET /ready with 200 and a leader is known
 *      (chronik_raft_leader_id on /metrics), each node is asked every
 *      LOCAL_POLL_MS, for at most --timeout seconds (default 120).
 *   4. One line "cluster ready: N nodes, leader L, bootstrap ..." is printed;
 *      then the launcher only waits for a signal or a child's death.
 *   5. Stopping: SIGTERM to every node still running, then each is waited
 *      for (LOCAL_STOP_TIMEOUT_S, after which it is killed) and its exit
 *      status printed. Exit 0 when stopped by a signal and every node exited
 *      0; 1 when a node died (named, with the end of its log), was not ready
 *      in time or did not stop cleanly; 2 bad arguments.
 */
#include "admin/local.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/http.h"
#include "base/util.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define LOCAL_HOST "127.0.0.1"
#define LOCAL_PATH_MAX 512
#define LOCAL_DIR_MAX 400 /* leaves room for "/node-K.log" */
#define LOCAL_EXTRA_MAX 64
#define LOCAL_POLL_MS 100
#define LOCAL_HTTP_TIMEOUT_MS 1000
#define LOCAL_TIMEOUT_DEFAULT_S 120
#define LOCAL_STOP_TIMEOUT_S 60
#define LOCAL_LOG_TAIL_LINES 8
#define LOCAL_BASE_PORT_MAX (65535 - LOCAL_ADMIN_OFFSET - LOCAL_NODES_MAX + 1)

typedef struct local_node {
    int id;
    pid_t pid;     /* 0 before start */
    bool ready;
    bool exited;
    int status;    /* waitpid status once exited */
    int client_port, controller_port, admin_port;
    char data_dir[LOCAL_PATH_MAX];
    char log_path[LOCAL_PATH_MAX];
} local_node;

typedef struct local_args {
    int nodes;
    int base_port;
    const char *data_dir;
    double timeout_s;
    int nextra;
    char **extra; /* given to every node */
} local_args;

typedef struct local_cluster {
    local_args a;
    local_node node[LOCAL_NODES_MAX];
    char voters[LOCAL_NODES_MAX * 32];
    sigset_t events;  /* SIGINT, SIGTERM, SIGCHLD: blocked, taken by sigtimedwait */
    sigset_t old_mask; /* restored in the children */
    int64_t started_ms;
} local_cluster;

/* What ended a wait. */
enum local_event { LOCAL_READY, LOCAL_SIGNAL, LOCAL_DIED, LOCAL_TIMEOUT };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: chronik cluster local --nodes N [--data-dir DIR] [--base-port P]\n"
            "                             [--timeout SECONDS] [-- SERVER-OPTION ...]\n"
            "\n"
            "Starts an N-node cluster (N from 1 to %d) on this machine: N `chronik server`\n"
            "processes with node ids 1..N, all voters of the metadata quorum. Node K listens\n"
            "for clients on 127.0.0.1:P+K-1, for its controller on P+%d+K-1 and for admin\n"
            "HTTP on P+%d+K-1 (P defaults to %d: clients 9092..., controllers 9192...,\n"
            "admin 9644...). Node K keeps its data in DIR/node-K and its log in\n"
            "DIR/node-K.log (DIR defaults to %s).\nOptions after -- go to every node.\n"
            "\n"
            "Prints each node's addresses, waits until every node is ready (at most SECONDS,\n"
            "default %d), prints one 'cluster ready' line and runs until Ctrl-C or SIGTERM,\n"
            "which stops every node. Exit status: 0 stopped cleanly, 1 a node died, was not\n"
            "ready in time or did not stop cleanly, 2 bad arguments.\n",
            LOCAL_NODES_MAX, LOCAL_CONTROLLER_OFFSET, LOCAL_ADMIN_OFFSET, LOCAL_BASE_PORT_DEFAULT,
            LOCAL_DATA_DIR_DEFAULT, LOCAL_TIMEOUT_DEFAULT_S);
}

/* ---- arguments ---------------------------------------------------------------- */

static bool parse_int(const char *opt, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != 0 || x < lo || x > hi) {
        fprintf(stderr, "chronik cluster local: invalid %s '%s' (want a whole number from %ld to %ld)\n", opt, v,
                lo, hi);
        return false;
    }
    *out = (int)x;
    return true;
}

static bool parse_seconds(const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno != 0 || end == v || *end != 0 || !(x > 0 && x <= 86400)) {
        fprintf(stderr, "chronik cluster local: invalid --timeout '%s' (want seconds, above 0)\n", v);
        return false;
    }
    *out = x;
    return true;
}

static bool parse_option(local_args *a, const char *opt, const char *v)
{
    if (strcmp(opt, "--nodes") == 0)
        return parse_int(opt, v, 1, LOCAL_NODES_MAX, &a->nodes);
    if (strcmp(opt, "--base-port") == 0)
        return parse_int(opt, v, 1, LOCAL_BASE_PORT_MAX, &a->base_port);
    if (strcmp(opt, "--timeout") == 0)
        return parse_seconds(v, &a->timeout_s);
    if (v[0] == 0 || strlen(v) > LOCAL_DIR_MAX) {
        fprintf(stderr, "chronik cluster local: invalid --data-dir '%s' (empty or longer than %d bytes)\n", v,
                LOCAL_DIR_MAX);
        return false;
    }
    a->data_dir = v;
    return true;
}

static bool known_option(const char *s)
{
    return strcmp(s, "--nodes") == 0 || strcmp(s, "--base-port") == 0 || strcmp(s, "--data-dir") == 0 ||
           strcmp(s, "--timeout") == 0;
}

/* argv[0] is "local". False after saying what is wrong. */
static bool parse_args(int argc, char **argv, local_args *a)
{
    *a = (local_args){0, LOCAL_BASE_PORT_DEFAULT, LOCAL_DATA_DIR_DEFAULT, LOCAL_TIMEOUT_DEFAULT_S, 0, NULL};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            a->nextra = argc - i - 1;
            a->extra = argv + i + 1;
            break;
        }
        if (!known_option(argv[i])) {
            fprintf(stderr, "chronik cluster local: unknown argument '%s'\n", argv[i]);
            return false;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "chronik cluster local: option '%s' needs a value\n", argv[i]);
            return false;
        }
        if (!parse_option(a, argv[i], argv[i + 1]))
            return false;
        i++;
    }
    if (a->nextra > LOCAL_EXTRA_MAX) {
        fprintf(stderr, "chronik cluster local: more than %d server options after --\n", LOCAL_EXTRA_MAX);
        return false;
    }
    if (a->nodes == 0) {
        fprintf(stderr, "chronik cluster local: --nodes N is required (1 to %d)\n", LOCAL_NODES_MAX);
        return false;
    }
    return true;
}

/* ---- planning and starting ------------------------------------------------------ */

/* mkdir -p; false after saying why not. */
static bool make_dirs(const char *path)
{
    char p[LOCAL_PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        bool end = *s == 0;
        if (*s == '/' || end) {
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "chronik cluster local: cannot create %s: %s\n", p, strerror(errno));
                return false;
            }
            if (end)
                return true;
            *s = '/';
        }
    }
}

static void plan(local_cluster *c)
{
    size_t n = 0;
    for (int k = 1; k <= c->a.nodes; k++) {
        local_node *nd = &c->node[k - 1];
        *nd = (local_node){.id = k};
        nd->client_port = c->a.base_port + LOCAL_CLIENT_OFFSET + k - 1;
        nd->controller_port = c->a.base_port + LOCAL_CONTROLLER_OFFSET + k - 1;
        nd->admin_port = c->a.base_port + LOCAL_ADMIN_OFFSET + k - 1;
        snprintf(nd->data_dir, sizeof nd->data_dir, "%s/node-%d", c->a.data_dir, k);
        snprintf(nd->log_path, sizeof nd->log_path, "%s/node-%d.log", c->a.data_dir, k);
        n += (size_t)snprintf(c->voters + n, sizeof c->voters - n, "%s%d@%s:%d", k > 1 ? "," : "", k, LOCAL_HOST,
                              nd->controller_port);
    }
}

/* In the child: output to the log, the launcher's mask undone, then exec. */
static void child_exec(const local_cluster *c, const local_node *nd, pid_t launcher)
{
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != launcher)
        _exit(EXIT_FAILED); /* the launcher is gone already */
    int fd = open(nd->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || in < 0 || dup2(in, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(EXIT_FAILED);
    sigprocmask(SIG_SETMASK, &c->old_mask, NULL);
    char id[16], client[64], controller[64], admin[64];
    snprintf(id, sizeof id, "%d", nd->id);
    snprintf(client, sizeof client, "%s:%d", LOCAL_HOST, nd->client_port);
    snprintf(controller, sizeof controller, "%s:%d", LOCAL_HOST, nd->controller_port);
    snprintf(admin, sizeof admin, "%s:%d", LOCAL_HOST, nd->admin_port);
    char *argv[16 + LOCAL_EXTRA_MAX] = {"chronik", "server", "--node-id", id, "--listen", client,
                                        "--controller-listen", controller, "--admin-listen", admin,
                                        "--data-dir", (char *)nd->data_dir, "--voters", (char *)c->voters};
    for (int i = 0; i < c->a.nextra; i++)
        argv[14 + i] = c->a.extra[i];
    execv("/proc/self/exe", argv);
    dprintf(2, "chronik cluster local: cannot run /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

static bool spawn(local_cluster *c, local_node *nd)
{
    pid_t launcher = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "chronik cluster local: cannot start node %d: %s\n", nd->id, strerror(errno));
        return false;
    }
    if (pid == 0)
        child_exec(c, nd, launcher);
    nd->pid = pid;
    return true;
}

static void print_plan(const local_cluster *c)
{
    for (int i = 0; i < c->a.nodes; i++) {
        const local_node *nd = &c->node[i];
        printf("node %d: client %s:%d, controller %s:%d, admin %s:%d, data %s, log %s, pid %d\n", nd->id,
               LOCAL_HOST, nd->client_port, LOCAL_HOST, nd->controller_port, LOCAL_HOST, nd->admin_port,
               nd->data_dir, nd->log_path, (int)nd->pid);
    }
    printf("voters: %s\n", c->voters);
    fflush(stdout);
}

/* ---- watching ------------------------------------------------------------------- */

static void describe_exit(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "status 0x%x", (unsigned)status);
}

/* The last lines of a node's log on stderr, to say why it ended. */
static void print_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char tail[4096];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    long from = size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0;
    size_t n = fseek(f, from, SEEK_SET) == 0 ? fread(tail, 1, sizeof tail - 1, f) : 0;
    fclose(f);
    tail[n] = 0;
    char *start = tail + n;
    for (int lines = 0; start > tail; start--)
        if (start[-1] == '\n' && start != tail + n && ++lines >= LOCAL_LOG_TAIL_LINES)
            break;
    fprintf(stderr, "---- last lines of %s ----\n%s%s", path, start, n > 0 && tail[n - 1] != '\n' ? "\n" : "");
}

/* Reaps every node that ended; returns the first that did, or NULL. */
static local_node *reap(local_cluster *c)
{
    local_node *first = NULL;
    for (int i = 0; i < c->a.nodes; i++) {
        local_node *nd = &c->node[i];
        if (nd->pid <= 0 || nd->exited || waitpid(nd->pid, &nd->status, WNOHANG) != nd->pid)
            continue;
        nd->exited = true;
        if (first == NULL)
            first = nd;
    }
    return first;
}

/* Waits up to ms for SIGINT, SIGTERM or SIGCHLD; the signal, or 0. */
static int wait_event(local_cluster *c, int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    siginfo_t info;
    int sig = sigtimedwait(&c->events, &info, &ts);
    return sig > 0 ? sig : 0;
}

static bool node_ready(const local_node *nd)
{
    buf_t body;
    buf_init(&body);
    int status = admin_http_get(LOCAL_HOST, nd->admin_port, "/ready", LOCAL_HTTP_TIMEOUT_MS, &body);
    buf_free(&body);
    return status == 200;
}

/* chronik_raft_leader_id from a node's /metrics; -1 when unknown. */
static int leader_seen_by(const local_node *nd)
{
    static const char key[] = "\nchronik_raft_leader_id ";
    buf_t body;
    buf_init(&body);
    int status = admin_http_get(LOCAL_HOST, nd->admin_port, "/metrics", LOCAL_HTTP_TIMEOUT_MS, &body);
    buf_put(&body, "", 1);
    const char *at = status == 200 ? strstr((const char *)body.data, key) : NULL;
    int leader = at ? atoi(at + sizeof key - 1) : -1;
    buf_free(&body);
    return leader > 0 ? leader : -1;
}

/* Asks every node not yet ready; returns how many are. */
static int poll_ready(local_cluster *c)
{
    int ready = 0;
    for (int i = 0; i < c->a.nodes; i++) {
        local_node *nd = &c->node[i];
        if (!nd->ready && !nd->exited && node_ready(nd)) {
            nd->ready = true;
            printf("node %d ready after %.1f s\n", nd->id, (double)(clock_mono_ms() - c->started_ms) / 1000);
            fflush(stdout);
        }
        ready += nd->ready;
    }
    return ready;
}

static int find_leader(local_cluster *c)
{
    for (int i = 0; i < c->a.nodes; i++) {
        int leader = leader_seen_by(&c->node[i]);
        if (leader > 0)
            return leader;
    }
    return -1;
}

/* Until every node is ready and a leader known; *leader gets it. */
static enum local_event wait_ready(local_cluster *c, int *leader, local_node **died)
{
    int64_t deadline = c->started_ms + (int64_t)(c->a.timeout_s * 1000);
    for (;;) {
        if ((*died = reap(c)) != NULL)
            return LOCAL_DIED;
        if (poll_ready(c) == c->a.nodes && (*leader = find_leader(c)) > 0)
            return LOCAL_READY;
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return LOCAL_TIMEOUT;
        int sig = wait_event(c, MIN(left, (int64_t)LOCAL_POLL_MS));
        if (sig == SIGINT || sig == SIGTERM)
            return LOCAL_SIGNAL;
    }
}

/* After the ready line: nothing to do until a signal or a death. */
static enum local_event supervise(local_cluster *c, local_node **died)
{
    for (;;) {
        if ((*died = reap(c)) != NULL)
            return LOCAL_DIED;
        int sig = wait_event(c, 60000);
        if (sig == SIGINT || sig == SIGTERM)
            return LOCAL_SIGNAL;
    }
}

/* ---- stopping ------------------------------------------------------------------- */

static int running_count(const local_cluster *c)
{
    int n = 0;
    for (int i = 0; i < c->a.nodes; i++)
        n += c->node[i].pid > 0 && !c->node[i].exited;
    return n;
}

static void kill_stragglers(local_cluster *c)
{
    for (int i = 0; i < c->a.nodes; i++) {
        local_node *nd = &c->node[i];
        if (nd->pid <= 0 || nd->exited)
            continue;
        fprintf(stderr, "chronik cluster local: node %d (pid %d) still running after %d s: killing it\n", nd->id,
                (int)nd->pid, LOCAL_STOP_TIMEOUT_S);
        kill(nd->pid, SIGKILL);
        if (waitpid(nd->pid, &nd->status, 0) == nd->pid)
            nd->exited = true;
    }
}

/* SIGTERM to every node still running, wait for each, report each exit.
 * True when every node that was stopped here exited 0. */
static bool stop_all(local_cluster *c)
{
    bool asked[LOCAL_NODES_MAX] = {false};
    for (int i = 0; i < c->a.nodes; i++)
        if (c->node[i].pid > 0 && !c->node[i].exited)
            asked[i] = kill(c->node[i].pid, SIGTERM) == 0;
    int64_t deadline = clock_mono_ms() + LOCAL_STOP_TIMEOUT_S * 1000;
    for (reap(c); running_count(c) > 0 && clock_mono_ms() < deadline; reap(c))
        wait_event(c, MIN(deadline - clock_mono_ms(), (int64_t)LOCAL_POLL_MS)); /* a second Ctrl-C waits too */
    kill_stragglers(c);
    bool clean = true;
    for (int i = 0; i < c->a.nodes; i++) {
        if (!asked[i])
            continue;
        char how[96];
        describe_exit(c->node[i].status, how, sizeof how);
        bool ok = WIFEXITED(c->node[i].status) && WEXITSTATUS(c->node[i].status) == 0;
        printf("node %d stopped: %s%s\n", c->node[i].id, how, ok ? "" : " (see its log)");
        clean = clean && ok;
    }
    fflush(stdout);
    return clean;
}

static void report_death(const local_node *nd)
{
    char how[96];
    describe_exit(nd->status, how, sizeof how);
    fprintf(stderr, "chronik cluster local: node %d (pid %d) ended: %s; stopping the others\n", nd->id, (int)nd->pid,
            how);
    print_log_tail(nd->log_path);
}

static void report_not_ready(local_cluster *c)
{
    for (int i = 0; i < c->a.nodes; i++)
        if (!c->node[i].ready)
            fprintf(stderr, "chronik cluster local: node %d not ready after %g s (log: %s)\n", c->node[i].id,
                    c->a.timeout_s, c->node[i].log_path);
    if (poll_ready(c) == c->a.nodes)
        fprintf(stderr, "chronik cluster local: every node is ready but no leader is known after %g s\n",
                c->a.timeout_s);
}

/* Stops what runs and turns how the wait ended into the exit code. */
static int finish(local_cluster *c, enum local_event ev, local_node *died)
{
    if (ev == LOCAL_DIED)
        report_death(died);
    else if (ev == LOCAL_TIMEOUT)
        report_not_ready(c);
    else
        printf("stopping %d node(s)\n", running_count(c));
    fflush(stdout);
    bool clean = stop_all(c);
    return ev == LOCAL_SIGNAL && clean ? 0 : EXIT_FAILED;
}

static void print_ready(const local_cluster *c, int leader)
{
    printf("cluster ready: %d node%s, leader %d, bootstrap ", c->a.nodes, c->a.nodes > 1 ? "s" : "", leader);
    for (int i = 0; i < c->a.nodes; i++)
        printf("%s%s:%d", i ? "," : "", LOCAL_HOST, c->node[i].client_port);
    printf("\n");
    fflush(stdout);
}

static int run(local_cluster *c)
{
    sigemptyset(&c->events);
    sigaddset(&c->events, SIGINT);
    sigaddset(&c->events, SIGTERM);
    sigaddset(&c->events, SIGCHLD);
    sigprocmask(SIG_BLOCK, &c->events, &c->old_mask);
    c->started_ms = clock_mono_ms();
    for (int i = 0; i < c->a.nodes; i++)
        if (!spawn(c, &c->node[i])) {
            stop_all(c);
            return EXIT_FAILED;
        }
    print_plan(c);
    int leader = -1;
    local_node *died = NULL;
    enum local_event ev = wait_ready(c, &leader, &died);
    if (ev != LOCAL_READY)
        return finish(c, ev, died);
    print_ready(c, leader);
    ev = supervise(c, &died);
    return finish(c, ev, died);
}

int local_main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    static local_cluster c; /* one per process; keeps the big arrays off the stack */
    if (!parse_args(argc, argv, &c.a)) {
        fputc('\n', stderr);
        usage(stderr);
        return EXIT_USAGE;
    }
    plan(&c);
    if (!make_dirs(c.a.data_dir))
        return EXIT_USAGE;
    return run(&c);
}
