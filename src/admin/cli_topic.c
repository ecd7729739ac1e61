/*
 * cli_topic.c - `chronik topic`: create, list, describe, alter and delete
 * topics on any Kafka-compatible broker, over the Kafka protocol
 * (CreateTopics, Metadata, ListOffsets, DescribeConfigs,
 * IncrementalAlterConfigs, DeleteTopics).
 *
 *   chronik topic create NAME [-p N] [-r R] [-c KEY=VALUE]...
 *   chronik topic list
 *   chronik topic describe NAME
 *   chronik topic alter NAME [-c KEY=VALUE]... [-d KEY]...
 *   chronik topic delete NAME
 *
 * Exit status (cli_kafka.h): 0 ok; 1 the broker refused (unknown topic,
 * already exists, invalid config, not authorised); 2 bad usage, broker
 * unreachable or timed out.
 */
#include "admin/cli_topic.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/cli_kafka.h"
#include "base/util.h"
#include "proto/kerr.h"

#define TOPIC_CONFIGS_MAX 64
#define TOPIC_CREATE_SETTLE_POLL_MS 20
#define CONFIG_RESOURCE_TOPIC 2
#define CONFIG_OP_SET 0
#define CONFIG_OP_DELETE 1

static void topic_usage(FILE *out)
{
    fprintf(out,
            "usage: chronik topic create NAME [-p PARTITIONS] [-r REPLICATION] [-c KEY=VALUE]...\n"
            "       chronik topic list\n"
            "       chronik topic describe NAME\n"
            "       chronik topic alter NAME [-c KEY=VALUE]... [-d KEY]...\n"
            "       chronik topic delete NAME\n"
            "\n"
            "create: -p and -r default to the broker's defaults; each -c sets a topic config.\n"
            "describe: partitions with leader, replicas, ISR, log start and end offsets, and\n"
            "every config with its value and source. alter: -c sets a config, -d removes\n"
            "an override (IncrementalAlterConfigs).\n"
            "\n"
            "Options of every subcommand:\n%s\n%s",
            cli_opts_usage, cli_exit_usage);
}

/* What the arguments of a topic subcommand say. */
typedef struct topic_args {
    cli_opts o;
    const char *name;
    int64_t partitions, replication; /* -1: the broker's default */
    const char *set[TOPIC_CONFIGS_MAX]; /* "KEY=VALUE" */
    int nset;
    const char *del[TOPIC_CONFIGS_MAX];
    int ndel;
} topic_args;

static bool add_config(const char *cmd, const char *v, const char **list, int *n)
{
    if (*n == TOPIC_CONFIGS_MAX) {
        fprintf(stderr, "chronik %s: at most %d configs\n", cmd, TOPIC_CONFIGS_MAX);
        return false;
    }
    list[(*n)++] = v;
    return true;
}

static bool take_option(topic_args *t, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    bool p = strcmp(a, "-p") == 0 || strcmp(a, "--partitions") == 0;
    bool r = strcmp(a, "-r") == 0 || strcmp(a, "--replication-factor") == 0;
    bool c = strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0;
    bool d = strcmp(a, "-d") == 0 || strcmp(a, "--delete-config") == 0;
    if (!p && !r && !c && !d) {
        cli_bad_arg(cmd, a, false);
        return false;
    }
    if (*i + 1 >= argc) {
        cli_bad_arg(cmd, a, true);
        return false;
    }
    const char *v = argv[++*i];
    if (p)
        return cli_parse_i64(cmd, a, v, 1, 1000000, &t->partitions);
    if (r)
        return cli_parse_i64(cmd, a, v, 1, 32767, &t->replication);
    if (c && (strchr(v, '=') == NULL || v[0] == '=')) {
        fprintf(stderr, "chronik %s: invalid config '%s' (want KEY=VALUE)\n", cmd, v);
        return false;
    }
    return c ? add_config(cmd, v, t->set, &t->nset) : add_config(cmd, v, t->del, &t->ndel);
}

/* argv[0] is the subcommand; want_name: it takes a topic name. */
static bool parse_topic_args(int argc, char **argv, bool want_name, topic_args *t)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "topic %s", argv[0]);
    *t = (topic_args){.partitions = -1, .replication = -1};
    cli_opts_init(&t->o);
    for (int i = 1; i < argc; i++) {
        int took = cli_opts_take(&t->o, cmd, argc, argv, &i);
        if (took < 0)
            return false;
        if (took > 0)
            continue;
        if (argv[i][0] != '-' && want_name && t->name == NULL)
            t->name = argv[i];
        else if (!take_option(t, cmd, argc, argv, &i))
            return false;
    }
    if (want_name && t->name == NULL) {
        fprintf(stderr, "chronik %s: needs a topic name\n", cmd);
        return false;
    }
    return true;
}

/* The answer about one topic: 0 when present without error, else report it. */
static int topic_result(const char *name, bool present, int16_t code, kstr_t msg)
{
    char subj[300];
    snprintf(subj, sizeof subj, "topic '%s'", name);
    if (!present)
        return cli_fail(CLI_EXIT_FAILED, "no answer about %s", subj);
    return code == KERR_NONE ? 0 : cli_kafka_error(code, msg, subj);
}

/* ---- create ------------------------------------------------------------------------------ */

/* Wait (bounded) until Metadata shows every partition of the new topic led,
 * so a script's next command finds it. */
static void create_settle(cli_kafka *k, const char *name)
{
    int64_t deadline = clock_mono_ms() + k->o.timeout_ms;
    while (clock_mono_ms() < deadline) {
        const MetadataResponse *md;
        kclient_resp_t *r;
        if (cli_metadata(k, &name, 1, &md, &r) != 0)
            return;
        const MetadataResponse_MetadataResponseTopic *t = cli_md_topic(md, name);
        bool led = t != NULL && t->ErrorCode == KERR_NONE && t->Partitions.count > 0;
        for (int32_t i = 0; led && i < t->Partitions.count; i++)
            led = t->Partitions.items[i].LeaderId >= 0;
        kclient_resp_free(r);
        if (led)
            return;
        struct timespec ts = {0, TOPIC_CREATE_SETTLE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void create_fill(const topic_args *t, int16_t v, uint32_t timeout_ms, arena_t *a, CreateTopicsRequest *req)
{
    req->timeoutMs = (int32_t)timeout_ms;
    CreateTopicsRequest_CreatableTopic *ct =
        proto_array_init(a, &req->Topics, 1, sizeof(*ct), &CreateTopicsRequest_CreatableTopic_desc);
    ct->Name = kstr_from(t->name);
    ct->NumPartitions = (int32_t)(t->partitions > 0 ? t->partitions : v >= 4 ? -1 : 1);
    ct->ReplicationFactor = (int16_t)(t->replication > 0 ? t->replication : v >= 4 ? -1 : 1);
    CreateTopicsRequest_CreateableTopicConfig *cfg = proto_array_init(
        a, &ct->Configs, t->nset, sizeof(*cfg), &CreateTopicsRequest_CreateableTopicConfig_desc);
    for (int i = 0; i < t->nset; i++) {
        const char *eq = strchr(t->set[i], '=');
        cfg[i].Name = (kstr_t){t->set[i], (int32_t)(eq - t->set[i])};
        cfg[i].Value = kstr_from(eq + 1);
    }
}

static void print_created(const cli_kafka *k, const char *name, int32_t parts, int32_t rf)
{
    if (k->o.json) {
        printf("{\"topic\":");
        cli_json_str(stdout, name, (int32_t)strlen(name));
        printf(",\"partitions\":%d,\"replication_factor\":%d}\n", (int)parts, (int)rf);
        return;
    }
    printf("created topic '%s'", name);
    if (parts > 0)
        printf(" (%d partition(s), replication %d)", (int)parts, (int)rf);
    printf("\n");
}

static int topic_create(cli_kafka *k, const topic_args *t)
{
    cli_req q;
    CreateTopicsRequest *req = cli_req_new(&q, k, k->boot, CLI_API_CREATE_TOPICS, 7, 0);
    create_fill(t, q.v, k->o.timeout_ms, &q.a, req);
    const CreateTopicsResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    const CreateTopicsResponse_CreatableTopicResult *res = resp->Topics.count > 0 ? &resp->Topics.items[0] : NULL;
    rc = topic_result(t->name, res != NULL, res ? res->ErrorCode : 0, res ? res->ErrorMessage : KSTR_NULL);
    int32_t parts = res && res->NumPartitions > 0 ? res->NumPartitions : (int32_t)t->partitions;
    int32_t rf = res && res->ReplicationFactor > 0 ? res->ReplicationFactor : (int32_t)t->replication;
    kclient_resp_free(r);
    if (rc != 0)
        return rc;
    create_settle(k, t->name);
    print_created(k, t->name, parts, rf);
    return 0;
}

/* ---- list -------------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    const MetadataResponse_MetadataResponseTopic *x = a, *y = b;
    int n = memcmp(x->Name.ptr, y->Name.ptr, (size_t)MIN(MAX(x->Name.len, 0), MAX(y->Name.len, 0)));
    return n != 0 ? n : x->Name.len - y->Name.len;
}

static int32_t replication_of(const MetadataResponse_MetadataResponseTopic *t)
{
    return t->Partitions.count > 0 ? t->Partitions.items[0].ReplicaNodes.count : 0;
}

static int topic_list(cli_kafka *k)
{
    const MetadataResponse *md;
    kclient_resp_t *r;
    int rc = cli_metadata(k, NULL, 0, &md, &r);
    if (rc != 0)
        return rc;
    MetadataResponse_MetadataResponseTopic *ts = md->Topics.items;
    if (md->Topics.count > 1)
        qsort(ts, (size_t)md->Topics.count, sizeof(*ts), by_name);
    cli_table tab;
    cli_table_init(&tab, 4);
    cli_table_row(&tab, "TOPIC\tPARTITIONS\tREPLICATION\tINTERNAL");
    if (k->o.json)
        printf("[");
    for (int32_t i = 0; i < md->Topics.count; i++) {
        const MetadataResponse_MetadataResponseTopic *t = &ts[i];
        if (k->o.json) {
            printf("%s{\"name\":", i ? "," : "");
            cli_json_kstr(stdout, t->Name);
            printf(",\"partitions\":%d,\"replication_factor\":%d,\"internal\":%s}", (int)t->Partitions.count,
                   (int)replication_of(t), t->IsInternal ? "true" : "false");
        } else {
            cli_table_row(&tab, "%.*s\t%d\t%d\t%s", (int)MAX(t->Name.len, 0), t->Name.ptr,
                          (int)t->Partitions.count, (int)replication_of(t), t->IsInternal ? "yes" : "no");
        }
    }
    if (k->o.json)
        printf("]\n");
    else
        cli_table_print(&tab, stdout);
    cli_table_free(&tab);
    kclient_resp_free(r);
    return 0;
}

/* ---- describe --------------------------------------------------------------------------------------- */

/* Log start and end offsets of a topic's partitions. */
typedef struct part_offsets {
    int64_t start, end;
} part_offsets;

/* ListOffsets at timestamp ts (-2 earliest, -1 latest, else ms) for every
 * partition of t led by `leader`; answers go to out[partition]. */
static int list_offsets_at(cli_kafka *k, const MetadataResponse_MetadataResponseTopic *t, int32_t leader,
                           int64_t ts, int64_t *out)
{
    kclient_t *kc = cli_broker_client(k, leader);
    if (kc == NULL)
        return CLI_EXIT_USAGE;
    cli_req q;
    ListOffsetsRequest *req = cli_req_new(&q, k, kc, CLI_API_LIST_OFFSETS, 7, 1);
    ListOffsetsRequest_ListOffsetsTopic *lt =
        proto_array_init(&q.a, &req->Topics, 1, sizeof(*lt), &ListOffsetsRequest_ListOffsetsTopic_desc);
    lt->Name = t->Name;
    int32_t n = 0;
    for (int32_t i = 0; i < t->Partitions.count; i++)
        n += t->Partitions.items[i].LeaderId == leader;
    ListOffsetsRequest_ListOffsetsPartition *lp =
        proto_array_init(&q.a, &lt->Partitions, n, sizeof(*lp), &ListOffsetsRequest_ListOffsetsPartition_desc);
    for (int32_t i = 0, j = 0; i < t->Partitions.count; i++)
        if (t->Partitions.items[i].LeaderId == leader) {
            lp[j].PartitionIndex = t->Partitions.items[i].PartitionIndex;
            lp[j++].Timestamp = ts;
        }
    const ListOffsetsResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    for (int32_t i = 0; i < resp->Topics.count; i++)
        for (int32_t j = 0; j < resp->Topics.items[i].Partitions.count; j++) {
            const ListOffsetsResponse_ListOffsetsPartitionResponse *p = &resp->Topics.items[i].Partitions.items[j];
            for (int32_t x = 0; x < t->Partitions.count; x++)
                if (t->Partitions.items[x].PartitionIndex == p->PartitionIndex)
                    out[x] = p->ErrorCode == KERR_NONE ? p->Offset : -1;
        }
    kclient_resp_free(r);
    return 0;
}

int cli_topic_offsets(cli_kafka *k, const MetadataResponse_MetadataResponseTopic *t, int64_t ts, int64_t *out)
{
    for (int32_t i = 0; i < t->Partitions.count; i++)
        out[i] = -1;
    for (int32_t i = 0; i < t->Partitions.count; i++) {
        int32_t leader = t->Partitions.items[i].LeaderId;
        bool seen = leader < 0;
        for (int32_t j = 0; j < i && !seen; j++)
            seen = t->Partitions.items[j].LeaderId == leader;
        if (seen)
            continue;
        int rc = list_offsets_at(k, t, leader, ts, out);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const char *config_source_name(int8_t s)
{
    static const char *const names[] = {
        "UNKNOWN_CONFIG", "DYNAMIC_TOPIC_CONFIG", "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG",
        "STATIC_BROKER_CONFIG", "DEFAULT_CONFIG", "DYNAMIC_BROKER_LOGGER_CONFIG", "CLIENT_METRICS_CONFIG",
        "GROUP_CONFIG"};
    return s >= 0 && (size_t)s < ARRAY_LEN(names) ? names[s] : "UNKNOWN_CONFIG";
}

static int describe_configs(cli_kafka *k, const char *name, const DescribeConfigsResponse_DescribeConfigsResult **out,
                            kclient_resp_t **r)
{
    cli_req q;
    DescribeConfigsRequest *req = cli_req_new(&q, k, k->boot, CLI_API_DESCRIBE_CONFIGS, 4, 1);
    DescribeConfigsRequest_DescribeConfigsResource *res = proto_array_init(
        &q.a, &req->Resources, 1, sizeof(*res), &DescribeConfigsRequest_DescribeConfigsResource_desc);
    res->ResourceType = CONFIG_RESOURCE_TOPIC;
    res->ResourceName = kstr_from(name);
    res->ConfigurationKeys.count = -1;
    const DescribeConfigsResponse *resp;
    int rc = cli_req_call(&q, req, (const void **)&resp, r);
    if (rc != 0)
        return rc;
    const DescribeConfigsResponse_DescribeConfigsResult *got = resp->Results.count > 0 ? &resp->Results.items[0] : NULL;
    rc = topic_result(name, got != NULL, got ? got->ErrorCode : 0, got ? got->ErrorMessage : KSTR_NULL);
    if (rc != 0) {
        kclient_resp_free(*r);
        return rc;
    }
    *out = got;
    return 0;
}

static void print_describe_json(const MetadataResponse_MetadataResponseTopic *t, const part_offsets *off,
                                const DescribeConfigsResponse_DescribeConfigsResult *cfg)
{
    printf("{\"name\":");
    cli_json_kstr(stdout, t->Name);
    printf(",\"internal\":%s,\"partitions\":[", t->IsInternal ? "true" : "false");
    for (int32_t i = 0; i < t->Partitions.count; i++) {
        const MetadataResponse_MetadataResponsePartition *p = &t->Partitions.items[i];
        printf("%s{\"partition\":%d,\"leader\":%d,\"replicas\":", i ? "," : "", (int)p->PartitionIndex,
               (int)p->LeaderId);
        cli_json_i32s(stdout, &p->ReplicaNodes);
        printf(",\"isr\":");
        cli_json_i32s(stdout, &p->IsrNodes);
        printf(",\"log_start_offset\":%lld,\"log_end_offset\":%lld}", (long long)off[i].start,
               (long long)off[i].end);
    }
    printf("],\"configs\":[");
    for (int32_t i = 0; i < cfg->Configs.count; i++) {
        const DescribeConfigsResponse_DescribeConfigsResourceResult *c = &cfg->Configs.items[i];
        printf("%s{\"name\":", i ? "," : "");
        cli_json_kstr(stdout, c->Name);
        printf(",\"value\":");
        cli_json_str(stdout, c->Value.ptr, c->IsSensitive ? -1 : c->Value.len);
        printf(",\"source\":\"%s\",\"read_only\":%s,\"sensitive\":%s}", config_source_name(c->ConfigSource),
               c->ReadOnly ? "true" : "false", c->IsSensitive ? "true" : "false");
    }
    printf("]}\n");
}

static void print_describe_table(const MetadataResponse_MetadataResponseTopic *t, const part_offsets *off,
                                 const DescribeConfigsResponse_DescribeConfigsResult *cfg)
{
    printf("Topic: %.*s  Partitions: %d  Replication: %d%s\n\n", (int)MAX(t->Name.len, 0), t->Name.ptr,
           (int)t->Partitions.count, (int)replication_of(t), t->IsInternal ? "  (internal)" : "");
    cli_table tab;
    cli_table_init(&tab, 6);
    cli_table_row(&tab, "PARTITION\tLEADER\tREPLICAS\tISR\tLOG-START\tLOG-END");
    for (int32_t i = 0; i < t->Partitions.count; i++) {
        const MetadataResponse_MetadataResponsePartition *p = &t->Partitions.items[i];
        char reps[256], isr[256];
        cli_table_row(&tab, "%d\t%d\t%s\t%s\t%lld\t%lld", (int)p->PartitionIndex, (int)p->LeaderId,
                      cli_i32s(&p->ReplicaNodes, reps, sizeof reps), cli_i32s(&p->IsrNodes, isr, sizeof isr),
                      (long long)off[i].start, (long long)off[i].end);
    }
    cli_table_print(&tab, stdout);
    cli_table_free(&tab);
    printf("\n");
    cli_table_init(&tab, 3);
    cli_table_row(&tab, "CONFIG\tVALUE\tSOURCE");
    for (int32_t i = 0; i < cfg->Configs.count; i++) {
        const DescribeConfigsResponse_DescribeConfigsResourceResult *c = &cfg->Configs.items[i];
        cli_table_row(&tab, "%.*s\t%.*s\t%s", (int)MAX(c->Name.len, 0), c->Name.ptr,
                      c->IsSensitive ? 11 : (int)MAX(c->Value.len, 0), c->IsSensitive ? "(sensitive)" : c->Value.ptr,
                      config_source_name(c->ConfigSource));
    }
    cli_table_print(&tab, stdout);
    cli_table_free(&tab);
}

int cli_topic_metadata(cli_kafka *k, const char *name, const MetadataResponse_MetadataResponseTopic **t,
                       kclient_resp_t **r)
{
    const MetadataResponse *md;
    int rc = cli_metadata(k, &name, 1, &md, r);
    if (rc != 0)
        return rc;
    *t = cli_md_topic(md, name);
    rc = topic_result(name, true, *t ? (*t)->ErrorCode : KERR_UNKNOWN_TOPIC_OR_PARTITION, KSTR_NULL);
    if (rc != 0) {
        kclient_resp_free(*r);
        *r = NULL;
    }
    return rc;
}

static int topic_describe(cli_kafka *k, const char *name)
{
    const MetadataResponse_MetadataResponseTopic *t;
    kclient_resp_t *mr, *cr = NULL;
    int rc = cli_topic_metadata(k, name, &t, &mr);
    if (rc != 0)
        return rc;
    int32_t n = t->Partitions.count;
    part_offsets *off = xcalloc((size_t)MAX(n, 1), sizeof(*off));
    int64_t *tmp = xcalloc((size_t)MAX(n, 1), sizeof(*tmp));
    rc = cli_topic_offsets(k, t, -2, tmp);
    for (int32_t i = 0; rc == 0 && i < n; i++)
        off[i].start = tmp[i];
    if (rc == 0)
        rc = cli_topic_offsets(k, t, -1, tmp);
    for (int32_t i = 0; rc == 0 && i < n; i++)
        off[i].end = tmp[i];
    const DescribeConfigsResponse_DescribeConfigsResult *cfg = NULL;
    if (rc == 0)
        rc = describe_configs(k, name, &cfg, &cr);
    if (rc == 0 && k->o.json)
        print_describe_json(t, off, cfg);
    else if (rc == 0)
        print_describe_table(t, off, cfg);
    kclient_resp_free(cr);
    kclient_resp_free(mr);
    free(tmp);
    free(off);
    return rc;
}

/* ---- alter and delete -------------------------------------------------------------------------------- */

static void alter_fill(const topic_args *t, arena_t *a, IncrementalAlterConfigsRequest *req)
{
    IncrementalAlterConfigsRequest_AlterConfigsResource *res = proto_array_init(
        a, &req->Resources, 1, sizeof(*res), &IncrementalAlterConfigsRequest_AlterConfigsResource_desc);
    res->ResourceType = CONFIG_RESOURCE_TOPIC;
    res->ResourceName = kstr_from(t->name);
    IncrementalAlterConfigsRequest_AlterableConfig *c = proto_array_init(
        a, &res->Configs, t->nset + t->ndel, sizeof(*c), &IncrementalAlterConfigsRequest_AlterableConfig_desc);
    for (int i = 0; i < t->nset; i++) {
        const char *eq = strchr(t->set[i], '=');
        c[i].Name = (kstr_t){t->set[i], (int32_t)(eq - t->set[i])};
        c[i].Value = kstr_from(eq + 1);
        c[i].ConfigOperation = CONFIG_OP_SET;
    }
    for (int i = 0; i < t->ndel; i++) {
        c[t->nset + i].Name = kstr_from(t->del[i]);
        c[t->nset + i].Value = KSTR_NULL;
        c[t->nset + i].ConfigOperation = CONFIG_OP_DELETE;
    }
}

static int topic_alter(cli_kafka *k, const topic_args *t)
{
    if (t->nset + t->ndel == 0)
        return cli_fail(CLI_EXIT_USAGE, "topic alter: give at least one -c KEY=VALUE or -d KEY");
    cli_req q;
    IncrementalAlterConfigsRequest *req = cli_req_new(&q, k, k->boot, CLI_API_INCREMENTAL_ALTER_CONFIGS, 1, 0);
    alter_fill(t, &q.a, req);
    const IncrementalAlterConfigsResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    const IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *res =
        resp->Responses.count > 0 ? &resp->Responses.items[0] : NULL;
    rc = topic_result(t->name, res != NULL, res ? res->ErrorCode : 0, res ? res->ErrorMessage : KSTR_NULL);
    if (rc == 0 && k->o.json) {
        cli_json_kv(stdout, "{\"topic\":", kstr_from(t->name));
        printf(",\"set\":%d,\"deleted\":%d}\n", t->nset, t->ndel);
    } else if (rc == 0)
        printf("altered topic '%s': %d set, %d removed\n", t->name, t->nset, t->ndel);
    kclient_resp_free(r);
    return rc;
}

static int topic_delete(cli_kafka *k, const char *name)
{
    cli_req q;
    DeleteTopicsRequest *req = cli_req_new(&q, k, k->boot, CLI_API_DELETE_TOPICS, 6, 0);
    req->TimeoutMs = (int32_t)k->o.timeout_ms;
    DeleteTopicsRequest_DeleteTopicState *st =
        proto_array_init(&q.a, &req->Topics, 1, sizeof(*st), &DeleteTopicsRequest_DeleteTopicState_desc);
    st->Name = kstr_from(name); /* v6+ */
    kstr_t *names = proto_array_init(&q.a, &req->TopicNames, 1, sizeof(kstr_t), NULL);
    names[0] = kstr_from(name); /* v0-5 */
    const DeleteTopicsResponse *resp;
    kclient_resp_t *r;
    int rc = cli_req_call(&q, req, (const void **)&resp, &r);
    if (rc != 0)
        return rc;
    const DeleteTopicsResponse_DeletableTopicResult *res = resp->Responses.count > 0 ? &resp->Responses.items[0] : NULL;
    rc = topic_result(name, res != NULL, res ? res->ErrorCode : 0, res ? res->ErrorMessage : KSTR_NULL);
    if (rc == 0 && k->o.json) {
        cli_json_kv(stdout, "{\"topic\":", kstr_from(name));
        printf(",\"deleted\":true}\n");
    } else if (rc == 0)
        printf("deleted topic '%s'\n", name);
    kclient_resp_free(r);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------------------- */

int cli_topic_main(int argc, char **argv)
{
    static const char *const subs[] = {"create", "list", "describe", "alter", "delete"};
    int rc, which = cli_subcommand(argc, argv, subs, (int)ARRAY_LEN(subs), topic_usage, &rc);
    if (which < 0)
        return rc;
    topic_args t;
    if (!parse_topic_args(argc - 1, argv + 1, which != 1, &t))
        return CLI_EXIT_USAGE;
    if ((which != 0 && (t.partitions > 0 || t.replication > 0)) || (which != 0 && which != 3 && t.nset > 0) ||
        (which != 3 && t.ndel > 0))
        return cli_fail(CLI_EXIT_USAGE, "topic %s: option not taken by this subcommand", subs[which]);
    cli_kafka k;
    rc = cli_kafka_open(&k, &t.o);
    if (rc != 0)
        return rc;
    switch (which) {
    case 0: rc = topic_create(&k, &t); break;
    case 1: rc = topic_list(&k); break;
    case 2: rc = topic_describe(&k, t.name); break;
    case 3: rc = topic_alter(&k, &t); break;
    default: rc = topic_delete(&k, t.name); break;
    }
    fflush(stdout);
    cli_kafka_close(&k);
    return rc;
}
