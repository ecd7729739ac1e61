/*
 * cli_group.c - `chronik group`: list, describe, reset the offsets of and
 * delete consumer groups on any Kafka-compatible broker (FindCoordinator,
 * ListGroups, DescribeGroups, OffsetFetch, ListOffsets, OffsetCommit,
 * DeleteGroups).
 *
 *   chronik group list
 *   chronik group describe NAME
 *   chronik group reset-offsets NAME --topic T (--to-earliest | --to-latest |
 *                               --to-offset N | --to-datetime ISO8601) [--dry-run]
 *   chronik group delete NAME
 *
 * reset-offsets, like Kafka's tool, refuses while the group has members (a
 * live consumer would overwrite the reset with its next commit); it commits
 * as a standalone consumer: generation -1 and an empty member id, which a
 * broker accepts only for a group without members. --to-offset is clamped
 * to each partition's [log start, log end]; --to-datetime takes the first
 * offset whose timestamp is at or after the time (the log end when none is).
 *
 * Exit status (cli_kafka.h): 0 ok; 1 the broker refused (unknown group or
 * topic, group has active members, not authorised); 2 bad usage, broker
 * unreachable or timed out.
 */
#include "admin/cli_group.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/cli_kafka.h"
#include "admin/cli_time.h"
#include "admin/cli_topic.h"
#include "base/util.h"
#include "proto/kerr.h"

#define GROUP_COORD_RETRY_MS 100
#define GROUP_ROWS_MAX 100000

enum reset_to { RESET_NONE, RESET_EARLIEST, RESET_LATEST, RESET_OFFSET, RESET_DATETIME };

static void group_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik group list\n"
            "       chronik group describe NAME\n"
            "       chronik group reset-offsets NAME --topic TOPIC (--to-earliest | --to-latest |\n"
            "                     --to-offset N | --to-datetime YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM]) [--dry-run]\n"
            "       chronik group delete NAME\n"
            "\n"
            "describe: state, members with their assignment, and per partition the committed\n"
            "offset, the log end and the lag. reset-offsets refuses while the group has\n"
            "members; --dry-run prints the plan without committing; a time without a zone is\n"
            "UTC; --to-offset is clamped to each partition's log start and end.\n"
            "\n"
            "Options of every subcommand:\n%s\n%s",
            cli_opts_usage, cli_exit_usage);
}

typedef struct group_args {
    cli_opts o;
    const char *name;
    const char *topic;
    enum reset_to to;
    int64_t to_value;   /* the offset, or the time in ms */
    bool dry_run;
} group_args;

static bool set_reset(group_args *g, const char *cmd, enum reset_to to)
{
    if (g->to != RESET_NONE) {
        fprintf(stderr, "chronik %s: give one --to-... option\n", cmd);
        return false;
    }
    g->to = to;
    return true;
}

static bool take_reset_option(group_args *g, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--dry-run") == 0)
        return (g->dry_run = true);
    if (strcmp(a, "--to-earliest") == 0)
        return set_reset(g, cmd, RESET_EARLIEST);
    if (strcmp(a, "--to-latest") == 0)
        return set_reset(g, cmd, RESET_LATEST);
    bool off = strcmp(a, "--to-offset") == 0, dt = strcmp(a, "--to-datetime") == 0;
    bool topic = strcmp(a, "--topic") == 0 || strcmp(a, "-t") == 0;
    if (!off && !dt && !topic)
        return cli_bad_arg(cmd, a, false) == 0;
    if (*i + 1 >= argc)
        return cli_bad_arg(cmd, a, true) == 0;
    const char *v = argv[++*i];
    if (topic) {
        g->topic = v;
        return true;
    }
    if (!set_reset(g, cmd, off ? RESET_OFFSET : RESET_DATETIME))
        return false;
    if (off)
        return cli_parse_i64(cmd, a, v, 0, INT64_MAX, &g->to_value);
    if (!cli_parse_iso8601(v, &g->to_value)) {
        fprintf(stderr, "chronik %s: invalid --to-datetime '%s' (want YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM])\n",
                cmd, v);
        return false;
    }
    return true;
}

/* argv[0] is the subcommand. */
static bool parse_group_args(int argc, char **argv, bool want_name, bool reset, group_args *g)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "group %s", argv[0]);
    *g = (group_args){0};
    cli_opts_init(&g->o);
    for (int i = 1; i < argc; i++) {
        int took = cli_opts_take(&g->o, cmd, argc, argv, &i);
        if (took < 0)
            return false;
        if (took > 0)
            continue;
        if (argv[i][0] != '-' && want_name && g->name == NULL)
            g->name = argv[i];
        else if (!reset || !take_reset_option(g, cmd, argc, argv, &i))
            return reset ? false : cli_bad_arg(cmd, argv[i], false) == 0;
    }
    if (want_name && g->name == NULL) {
        fprintf(stderr, "chronik %s: needs a group name\n", cmd);
        return false;
    }
    if (reset && (g->topic == NULL || g->to == RESET_NONE)) {
        fprintf(stderr, "chronik %s: needs --topic and one of --to-earliest, --to-latest, --to-offset, "
                        "--to-datetime\n", cmd);
        return false;
    }
    return true;
}

static int group_error(const char *name, int16_t code, kstr_t msg)
{
    char subj[300];
    snprintf(subj, sizeof subj, "group '%s'", name);
    return cli_kafka_error(code, msg, subj);
}

/* ---- the coordinator ---------------------------------------------------------------------- */

/* One FindCoordinator: its error code; the node is remembered. */
static int find_once(cli_kafka *k, const char *name, int16_t *code, int32_t *node)
{
    cli_req q;
    FindCoordinatorRequest *req = cli_req_new(&q, k, k->boot, CLI_API_FIND_COORDINATOR, 4, 0);
    req->Key = kstr_from(name);
    req->KeyType = 0;
    kstr_t *keys = proto_array_init(&q.a, &req->CoordinatorKeys, 1, sizeof(kstr_t), NULL);
    keys[0] = kstr_from(name);
    const FindCoordinatorResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    if (resp->Coordinators.count > 0) {
        const FindCoordinatorResponse_Coordinator *c = &resp->Coordinators.items[0];
        *code = c->ErrorCode;
        *node = c->NodeId;
        if (c->ErrorCode == KERR_NONE)
            cli_broker_add(k, c->NodeId, c->Host, c->Port);
    } else {
        *code = resp->ErrorCode;
        *node = resp->NodeId;
        if (resp->ErrorCode == KERR_NONE)
            cli_broker_add(k, resp->NodeId, resp->Host, resp->Port);
    }
    kclient_resp_free(r);
    return 0;
}

/* The coordinator of group `name`, retrying while it is loading or moving. */
int cli_group_coordinator(cli_kafka *k, const char *name, kclient_t **kc)
{
    int64_t deadline = clock_mono_ms() + k->o.timeout_ms;
    for (;;) {
        int16_t code = KERR_NONE;
        int32_t node = -1;
        int rc = find_once(k, name, &code, &node);
        if (rc != 0)
            return rc;
        if (code == KERR_NONE) {
            *kc = cli_broker_client(k, node);
            return *kc != NULL ? 0 : CLI_EXIT_USAGE;
        }
        if (!kerr_retriable(code) || clock_mono_ms() >= deadline)
            return group_error(name, code, KSTR_NULL);
        struct timespec ts = {0, GROUP_COORD_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* DescribeGroups of one group at its coordinator. */
static int describe_group(cli_kafka *k, kclient_t *kc, const char *name,
                          const DescribeGroupsResponse_DescribedGroup **g, kclient_resp_t **r)
{
    cli_req q;
    DescribeGroupsRequest *req = cli_req_new(&q, k, kc, CLI_API_DESCRIBE_GROUPS, 5, 0);
    kstr_t *names = proto_array_init(&q.a, &req->Groups, 1, sizeof(kstr_t), NULL);
    names[0] = kstr_from(name);
    const DescribeGroupsResponse *resp;
    int rc = cli_req_call(&q, req, (const void **)&resp, r);
    if (rc != 0)
        return rc;
    *g = resp->Groups.count > 0 ? &resp->Groups.items[0] : NULL;
    if (*g == NULL || (*g)->ErrorCode != KERR_NONE) {
        rc = *g == NULL ? cli_fail(CLI_EXIT_FAILED, "no answer about group '%s'", name)
                        : group_error(name, (*g)->ErrorCode, KSTR_NULL);
        kclient_resp_free(*r);
        *r = NULL;
    }
    return rc;
}

/* The offsets group `name` has committed, of every topic. */
int cli_group_offsets(cli_kafka *k, kclient_t *kc, const char *name, const OffsetFetchResponse **out,
                         kclient_resp_t **r)
{
    cli_req q;
    OffsetFetchRequest *req = cli_req_new(&q, k, kc, CLI_API_OFFSET_FETCH, 7, 2);
    req->GroupId = kstr_from(name);
    req->Topics.count = -1;
    int rc = cli_req_call(&q, req, (const void **)out, r);
    if (rc == 0 && (*out)->ErrorCode != KERR_NONE) {
        rc = group_error(name, (*out)->ErrorCode, KSTR_NULL);
        kclient_resp_free(*r);
        *r = NULL;
    }
    return rc;
}

/* ---- list ------------------------------------------------------------------------------------ */

typedef struct listed {
    char name[256], state[32], type[32];
} listed;

static int listed_cmp(const void *a, const void *b)
{
    return strcmp(((const listed *)a)->name, ((const listed *)b)->name);
}

/* Append the groups broker kc coordinates to *ls. */
static int list_at(cli_kafka *k, kclient_t *kc, listed **ls, int *n)
{
    cli_req q;
    ListGroupsRequest *req = cli_req_new(&q, k, kc, CLI_API_LIST_GROUPS, 4, 0);
    const ListGroupsResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    if (resp->ErrorCode != KERR_NONE) {
        rc = cli_kafka_error(resp->ErrorCode, KSTR_NULL, "group list");
        kclient_resp_free(r);
        return rc;
    }
    *ls = xrealloc(*ls, (size_t)(*n + resp->Groups.count + 1) * sizeof(listed));
    for (int32_t i = 0; i < resp->Groups.count; i++) {
        const ListGroupsResponse_ListedGroup *g = &resp->Groups.items[i];
        listed *l = &(*ls)[(*n)++];
        cli_kstr(g->GroupId, l->name, sizeof l->name);
        cli_kstr(g->GroupState, l->state, sizeof l->state);
        cli_kstr(g->ProtocolType, l->type, sizeof l->type);
    }
    kclient_resp_free(r);
    return 0;
}

static void print_listed(const cli_kafka *k, const listed *ls, int n)
{
    if (k->o.json) {
        printf("[");
        for (int i = 0; i < n; i++) {
            printf("%s{\"group\":", i ? "," : "");
            cli_json_str(stdout, ls[i].name, (int32_t)strlen(ls[i].name));
            printf(",\"state\":");
            cli_json_str(stdout, ls[i].state, (int32_t)strlen(ls[i].state));
            printf(",\"protocol_type\":");
            cli_json_str(stdout, ls[i].type, (int32_t)strlen(ls[i].type));
            printf("}");
        }
        printf("]\n");
        return;
    }
    cli_table tab;
    cli_table_init(&tab, 3);
    cli_table_row(&tab, "GROUP\tSTATE\tPROTOCOL-TYPE");
    for (int i = 0; i < n; i++)
        cli_table_row(&tab, "%s\t%s\t%s", ls[i].name, ls[i].state, ls[i].type);
    cli_table_print(&tab, stdout);
    cli_table_free(&tab);
}

static int group_list(cli_kafka *k)
{
    const MetadataResponse *md;
    kclient_resp_t *mr;
    static const char *const none[1] = {NULL};
    int rc = cli_metadata(k, none, 0, &md, &mr); /* the brokers, no topics */
    if (rc != 0)
        return rc;
    listed *ls = NULL;
    int n = 0;
    for (int32_t i = 0; rc == 0 && i < md->Brokers.count; i++) {
        kclient_t *kc = cli_broker_client(k, md->Brokers.items[i].NodeId);
        rc = kc == NULL ? CLI_EXIT_USAGE : list_at(k, kc, &ls, &n);
    }
    kclient_resp_free(mr);
    if (rc == 0) {
        if (n > 1)
            qsort(ls, (size_t)n, sizeof(*ls), listed_cmp);
        print_listed(k, ls, n);
    }
    free(ls);
    return rc;
}

/* ---- describe ------------------------------------------------------------------------------- */

/* One partition's line of `group describe`. */
typedef struct grow {
    char topic[256];
    int32_t partition;
    int64_t committed;  /* -1: none */
    int64_t end;        /* -1: unknown */
    int member;         /* index in the group's members, -1: none */
} grow;

typedef struct grows {
    grow *v;
    int n, cap;
} grows;

static grow *grows_get(grows *rs, kstr_t topic, int32_t partition)
{
    for (int i = 0; i < rs->n; i++)
        if (kstr_eq(topic, rs->v[i].topic) && rs->v[i].partition == partition)
            return &rs->v[i];
    if (rs->n >= GROUP_ROWS_MAX)
        return NULL;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 32;
        rs->v = xrealloc(rs->v, (size_t)rs->cap * sizeof(grow));
    }
    grow *g = &rs->v[rs->n++];
    *g = (grow){.partition = partition, .committed = -1, .end = -1, .member = -1};
    cli_kstr(topic, g->topic, sizeof g->topic);
    return g;
}

static int grow_cmp(const void *a, const void *b)
{
    const grow *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* A consumer member's assignment, decoded into the response's arena; NULL
 * when it is not the consumer protocol or does not decode. */
static const ConsumerProtocolAssignment *member_assignment(kclient_resp_t *r, kbytes_t b)
{
    if (b.len < 2)
        return NULL;
    int16_t v = (int16_t)be16_load(b.ptr);
    ConsumerProtocolAssignment *a = arena_alloc(kclient_resp_arena(r), sizeof(*a));
    rd_t rd;
    rd_init(&rd, b.ptr + 2, (size_t)b.len - 2);
    proto_err_t err;
    v = v < 0 ? 0 : MIN(v, ConsumerProtocolAssignment_desc.max_version);
    return proto_decode(&ConsumerProtocolAssignment_desc, v, false, &rd, kclient_resp_arena(r), a, &err) == 0 ? a
                                                                                                               : NULL;
}

/* The rows: committed offsets, then every assigned partition. */
static void rows_collect(const DescribeGroupsResponse_DescribedGroup *g, const ConsumerProtocolAssignment **as,
                         const OffsetFetchResponse *of, grows *rs)
{
    for (int32_t i = 0; i < of->Topics.count; i++)
        for (int32_t j = 0; j < of->Topics.items[i].Partitions.count; j++) {
            const OffsetFetchResponse_OffsetFetchResponsePartition *p = &of->Topics.items[i].Partitions.items[j];
            grow *row = grows_get(rs, of->Topics.items[i].Name, p->PartitionIndex);
            if (row != NULL)
                row->committed = p->ErrorCode == KERR_NONE ? p->CommittedOffset : -1;
        }
    for (int32_t m = 0; m < g->Members.count; m++)
        for (int32_t i = 0; as[m] != NULL && i < as[m]->AssignedPartitions.count; i++) {
            const ConsumerProtocolAssignment_TopicPartition *tp = &as[m]->AssignedPartitions.items[i];
            for (int32_t j = 0; j < tp->Partitions.count; j++) {
                grow *row = grows_get(rs, tp->Topic, tp->Partitions.items[j]);
                if (row != NULL)
                    row->member = (int)m;
            }
        }
    if (rs->n > 1)
        qsort(rs->v, (size_t)rs->n, sizeof(grow), grow_cmp);
}

/* The log end of every row's partition (a topic that vanished keeps -1). */
static int rows_fill_ends(cli_kafka *k, grows *rs)
{
    for (int i = 0; i < rs->n; i++) {
        if (i > 0 && strcmp(rs->v[i].topic, rs->v[i - 1].topic) == 0)
            continue;
        const char *name = rs->v[i].topic;
        const MetadataResponse *md;
        kclient_resp_t *r;
        int rc = cli_metadata(k, &name, 1, &md, &r);
        if (rc != 0)
            return rc;
        const MetadataResponse_MetadataResponseTopic *t = cli_md_topic(md, name);
        if (t != NULL && t->ErrorCode == KERR_NONE && t->Partitions.count > 0) {
            int64_t *ends = xcalloc((size_t)t->Partitions.count, sizeof(int64_t));
            rc = cli_topic_offsets(k, t, -1, ends);
            for (int j = i; rc == 0 && j < rs->n && strcmp(rs->v[j].topic, name) == 0; j++)
                for (int32_t x = 0; x < t->Partitions.count; x++)
                    if (t->Partitions.items[x].PartitionIndex == rs->v[j].partition)
                        rs->v[j].end = ends[x];
            free(ends);
        }
        kclient_resp_free(r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int64_t row_lag(const grow *g)
{
    return g->committed >= 0 && g->end >= 0 ? MAX(g->end - g->committed, 0) : -1;
}

static void print_member_json(const DescribeGroupsResponse_DescribedGroupMember *m, const ConsumerProtocolAssignment *a)
{
    cli_json_kv(stdout, "{\"member_id\":", m->MemberId);
    cli_json_kv(stdout, ",\"group_instance_id\":", m->GroupInstanceId);
    cli_json_kv(stdout, ",\"client_id\":", m->ClientId);
    cli_json_kv(stdout, ",\"host\":", m->ClientHost);
    printf(",\"assignment\":[");
    for (int32_t i = 0; a != NULL && i < a->AssignedPartitions.count; i++) {
        printf("%s{\"topic\":", i ? "," : "");
        cli_json_kstr(stdout, a->AssignedPartitions.items[i].Topic);
        printf(",\"partitions\":");
        cli_json_i32s(stdout, &a->AssignedPartitions.items[i].Partitions);
        printf("}");
    }
    printf("]}");
}

static void print_group_json(const DescribeGroupsResponse_DescribedGroup *g, const ConsumerProtocolAssignment **as,
                             const grows *rs)
{
    cli_json_kv(stdout, "{\"group\":", g->GroupId);
    cli_json_kv(stdout, ",\"state\":", g->GroupState);
    cli_json_kv(stdout, ",\"protocol_type\":", g->ProtocolType);
    cli_json_kv(stdout, ",\"protocol\":", g->ProtocolData);
    printf(",\"members\":[");
    for (int32_t m = 0; m < g->Members.count; m++) {
        printf("%s", m ? "," : "");
        print_member_json(&g->Members.items[m], as[m]);
    }
    printf("],\"offsets\":[");
    for (int i = 0; i < rs->n; i++) {
        const grow *w = &rs->v[i];
        printf("%s{\"topic\":", i ? "," : "");
        cli_json_str(stdout, w->topic, (int32_t)strlen(w->topic));
        printf(",\"partition\":%d,\"committed_offset\":%lld,\"log_end_offset\":%lld,\"lag\":%lld,\"member_id\":",
               (int)w->partition, (long long)w->committed, (long long)w->end, (long long)row_lag(w));
        if (w->member >= 0)
            cli_json_kstr(stdout, g->Members.items[w->member].MemberId);
        else
            printf("null");
        printf("}");
    }
    printf("]}\n");
}

static void print_group_table(const DescribeGroupsResponse_DescribedGroup *g, const grows *rs)
{
    printf("Group: %.*s  State: %.*s  Protocol: %.*s/%.*s  Members: %d\n\n", (int)MAX(g->GroupId.len, 0),
           g->GroupId.ptr, (int)MAX(g->GroupState.len, 0), g->GroupState.ptr, (int)MAX(g->ProtocolType.len, 0),
           g->ProtocolType.ptr, (int)MAX(g->ProtocolData.len, 0), g->ProtocolData.ptr, (int)g->Members.count);
    cli_table tab;
    cli_table_init(&tab, 8);
    cli_table_row(&tab, "TOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG\tMEMBER\tCLIENT-ID\tHOST");
    for (int i = 0; i < rs->n; i++) {
        const grow *w = &rs->v[i];
        const DescribeGroupsResponse_DescribedGroupMember *m = w->member >= 0 ? &g->Members.items[w->member] : NULL;
        char c[24] = "-", e[24] = "-", l[24] = "-";
        if (w->committed >= 0)
            snprintf(c, sizeof c, "%lld", (long long)w->committed);
        if (w->end >= 0)
            snprintf(e, sizeof e, "%lld", (long long)w->end);
        if (row_lag(w) >= 0)
            snprintf(l, sizeof l, "%lld", (long long)row_lag(w));
        cli_table_row(&tab, "%s\t%d\t%s\t%s\t%s\t%.*s\t%.*s\t%.*s", w->topic, (int)w->partition, c, e, l,
                      m ? (int)MAX(m->MemberId.len, 0) : 1, m ? m->MemberId.ptr : "-",
                      m ? (int)MAX(m->ClientId.len, 0) : 1, m ? m->ClientId.ptr : "-",
                      m ? (int)MAX(m->ClientHost.len, 0) : 1, m ? m->ClientHost.ptr : "-");
    }
    cli_table_print(&tab, stdout);
    cli_table_free(&tab);
}

static int group_describe(cli_kafka *k, const char *name)
{
    kclient_t *kc;
    int rc = cli_group_coordinator(k, name, &kc);
    if (rc != 0)
        return rc;
    const DescribeGroupsResponse_DescribedGroup *g;
    const OffsetFetchResponse *of;
    kclient_resp_t *gr, *or;
    if ((rc = describe_group(k, kc, name, &g, &gr)) != 0)
        return rc;
    if ((rc = cli_group_offsets(k, kc, name, &of, &or)) != 0) {
        kclient_resp_free(gr);
        return rc;
    }
    const ConsumerProtocolAssignment **as = xcalloc((size_t)g->Members.count + 1, sizeof(*as));
    bool consumer = kstr_eq(g->ProtocolType, "consumer");
    for (int32_t m = 0; consumer && m < g->Members.count; m++)
        as[m] = member_assignment(gr, g->Members.items[m].MemberAssignment);
    grows rs = {0};
    rows_collect(g, as, of, &rs);
    if (kstr_eq(g->GroupState, "Dead") && g->Members.count == 0 && rs.n == 0)
        rc = group_error(name, KERR_GROUP_ID_NOT_FOUND, KSTR_NULL);
    else
        rc = rows_fill_ends(k, &rs);
    if (rc == 0 && k->o.json)
        print_group_json(g, as, &rs);
    else if (rc == 0)
        print_group_table(g, &rs);
    free(rs.v);
    free(as);
    kclient_resp_free(or);
    kclient_resp_free(gr);
    return rc;
}

/* ---- reset-offsets --------------------------------------------------------------------------------- */

int cli_group_check_empty(cli_kafka *k, kclient_t *kc, const char *name, const char *before)
{
    const DescribeGroupsResponse_DescribedGroup *g;
    kclient_resp_t *r;
    int rc = describe_group(k, kc, name, &g, &r);
    if (rc != 0)
        return rc;
    if (g->Members.count > 0)
        rc = cli_fail(CLI_EXIT_FAILED,
                      "group '%s' has %d active member(s) (state %.*s): stop its consumers before %s", name,
                      (int)g->Members.count, (int)MAX(g->GroupState.len, 0), g->GroupState.ptr, before);
    kclient_resp_free(r);
    return rc;
}

/* The new offset of every partition of t (position i in t->Partitions). */
static int reset_targets(cli_kafka *k, const group_args *a, const MetadataResponse_MetadataResponseTopic *t,
                         int64_t *to)
{
    int32_t n = t->Partitions.count;
    if (a->to == RESET_EARLIEST || a->to == RESET_LATEST)
        return cli_topic_offsets(k, t, a->to == RESET_EARLIEST ? -2 : -1, to);
    int64_t *start = xcalloc((size_t)n, sizeof(int64_t)), *end = xcalloc((size_t)n, sizeof(int64_t));
    int rc = cli_topic_offsets(k, t, -2, start);
    if (rc == 0)
        rc = cli_topic_offsets(k, t, -1, end);
    if (rc == 0 && a->to == RESET_DATETIME)
        rc = cli_topic_offsets(k, t, a->to_value, to);
    for (int32_t i = 0; rc == 0 && i < n; i++) {
        if (a->to == RESET_OFFSET)
            to[i] = MAX(MIN(a->to_value, end[i]), start[i]);
        else if (to[i] < 0)
            to[i] = end[i]; /* nothing at or after that time */
    }
    free(start);
    free(end);
    return rc;
}

int cli_group_commit(cli_kafka *k, kclient_t *kc, const char *group, const MetadataResponse_MetadataResponseTopic *t,
                     const int64_t *to)
{
    cli_req q;
    OffsetCommitRequest *req = cli_req_new(&q, k, kc, CLI_API_OFFSET_COMMIT, 8, 2);
    req->GroupId = kstr_from(group);
    req->GenerationIdOrMemberEpoch = -1;
    req->MemberId = KSTR_LIT("");
    OffsetCommitRequest_OffsetCommitRequestTopic *ct =
        proto_array_init(&q.a, &req->Topics, 1, sizeof(*ct), &OffsetCommitRequest_OffsetCommitRequestTopic_desc);
    ct->Name = t->Name;
    int32_t n = 0;
    for (int32_t i = 0; i < t->Partitions.count; i++)
        n += to[i] >= 0;
    OffsetCommitRequest_OffsetCommitRequestPartition *p = proto_array_init(
        &q.a, &ct->Partitions, n, sizeof(*p), &OffsetCommitRequest_OffsetCommitRequestPartition_desc);
    for (int32_t i = 0, j = 0; i < t->Partitions.count; i++)
        if (to[i] >= 0) {
            p[j].PartitionIndex = t->Partitions.items[i].PartitionIndex;
            p[j].CommittedOffset = to[i];
            p[j++].CommittedMetadata = KSTR_LIT("");
        }
    const OffsetCommitResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    for (int32_t i = 0; rc == 0 && i < resp->Topics.count; i++)
        for (int32_t j = 0; rc == 0 && j < resp->Topics.items[i].Partitions.count; j++) {
            int16_t code = resp->Topics.items[i].Partitions.items[j].ErrorCode;
            if (code == KERR_UNKNOWN_MEMBER_ID || code == KERR_ILLEGAL_GENERATION)
                rc = cli_fail(CLI_EXIT_FAILED, "group '%s' has active members: offsets not committed (%s)", group,
                              kerr_name(code));
            else if (code != KERR_NONE)
                rc = group_error(group, code, KSTR_NULL);
        }
    kclient_resp_free(r);
    return rc;
}

/* The committed offset of partition p of topic in of, or -1. */
static int64_t committed_of(const OffsetFetchResponse *of, const char *topic, int32_t p)
{
    for (int32_t i = 0; i < of->Topics.count; i++)
        for (int32_t j = 0; kstr_eq(of->Topics.items[i].Name, topic) && j < of->Topics.items[i].Partitions.count; j++)
            if (of->Topics.items[i].Partitions.items[j].PartitionIndex == p)
                return of->Topics.items[i].Partitions.items[j].CommittedOffset;
    return -1;
}

static void print_reset(const cli_kafka *k, const group_args *a, const MetadataResponse_MetadataResponseTopic *t,
                        const OffsetFetchResponse *of, const int64_t *to)
{
    cli_table tab;
    cli_table_init(&tab, 4);
    cli_table_row(&tab, "TOPIC\tPARTITION\tOLD-OFFSET\tNEW-OFFSET");
    if (k->o.json) {
        cli_json_kv(stdout, "{\"group\":", kstr_from(a->name));
        cli_json_kv(stdout, ",\"topic\":", kstr_from(a->topic));
        printf(",\"dry_run\":%s,\"partitions\":[", a->dry_run ? "true" : "false");
    }
    for (int32_t i = 0; i < t->Partitions.count; i++) {
        int32_t p = t->Partitions.items[i].PartitionIndex;
        long long old = (long long)committed_of(of, a->topic, p);
        if (k->o.json)
            printf("%s{\"partition\":%d,\"old_offset\":%lld,\"new_offset\":%lld}", i ? "," : "", (int)p, old,
                   (long long)to[i]);
        else
            cli_table_row(&tab, "%s\t%d\t%lld\t%lld", a->topic, (int)p, old, (long long)to[i]);
    }
    if (k->o.json) {
        printf("]}\n");
    } else {
        cli_table_print(&tab, stdout);
        printf(a->dry_run ? "(dry run: nothing committed)\n" : "committed for group '%s'\n", a->name);
    }
    cli_table_free(&tab);
}

static int group_reset(cli_kafka *k, const group_args *a)
{
    kclient_t *kc;
    int rc = cli_group_coordinator(k, a->name, &kc);
    if (rc != 0 || (rc = cli_group_check_empty(k, kc, a->name, "resetting offsets")) != 0)
        return rc;
    const MetadataResponse_MetadataResponseTopic *t;
    kclient_resp_t *mr, *or = NULL;
    if ((rc = cli_topic_metadata(k, a->topic, &t, &mr)) != 0)
        return rc;
    int64_t *to = xcalloc((size_t)t->Partitions.count + 1, sizeof(int64_t));
    const OffsetFetchResponse *of = NULL;
    rc = reset_targets(k, a, t, to);
    if (rc == 0)
        rc = cli_group_offsets(k, kc, a->name, &of, &or);
    if (rc == 0 && !a->dry_run)
        rc = cli_group_commit(k, kc, a->name, t, to);
    if (rc == 0)
        print_reset(k, a, t, of, to);
    free(to);
    kclient_resp_free(or);
    kclient_resp_free(mr);
    return rc;
}

/* ---- delete ------------------------------------------------------------------------------------------ */

static int group_delete(cli_kafka *k, const char *name)
{
    kclient_t *kc;
    int rc = cli_group_coordinator(k, name, &kc);
    if (rc != 0)
        return rc;
    cli_req q;
    DeleteGroupsRequest *req = cli_req_new(&q, k, kc, CLI_API_DELETE_GROUPS, 2, 0);
    kstr_t *names = proto_array_init(&q.a, &req->GroupsNames, 1, sizeof(kstr_t), NULL);
    names[0] = kstr_from(name);
    const DeleteGroupsResponse *resp;
    kclient_resp_t *r;
    if ((rc = cli_req_call(&q, req, (const void **)&resp, &r)) != 0)
        return rc;
    int16_t code = resp->Results.count > 0 ? resp->Results.items[0].ErrorCode : KERR_UNKNOWN_SERVER_ERROR;
    kclient_resp_free(r);
    if (code != KERR_NONE)
        return group_error(name, code, KSTR_NULL);
    if (k->o.json) {
        cli_json_kv(stdout, "{\"group\":", kstr_from(name));
        printf(",\"deleted\":true}\n");
    } else
        printf("deleted group '%s'\n", name);
    return 0;
}

/* ---- the command ---------------------------------------------------------------------------------------- */

int cli_group_main(int argc, char **argv)
{
    static const char *const subs[] = {"list", "describe", "reset-offsets", "delete"};
    int rc, which = cli_subcommand(argc, argv, subs, (int)ARRAY_LEN(subs), group_usage, &rc);
    if (which < 0)
        return rc;
    group_args g;
    if (!parse_group_args(argc - 1, argv + 1, which != 0, which == 2, &g))
        return CLI_EXIT_USAGE;
    cli_kafka k;
    rc = cli_kafka_open(&k, &g.o);
    if (rc != 0)
        return rc;
    switch (which) {
    case 0: rc = group_list(&k); break;
    case 1: rc = group_describe(&k, g.name); break;
    case 2: rc = group_reset(&k, &g); break;
    default: rc = group_delete(&k, g.name); break;
    }
    fflush(stdout);
    cli_kafka_close(&k);
    return rc;
}
