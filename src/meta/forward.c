/*
 * forward.c - changes received by a node that does not lead the metadata
 * quorum go to the node that does (Kafka's brokers forward the same way).
 *
 * The controller thread of a non-leader hands each round of changes here.
 * Topic creations and deletions, new partitions and producer-id blocks
 * travel as CreateTopics / DeleteTopics / CreatePartitions /
 * AllocateProducerIds requests to the leader's controller listener (over
 * the quorum's kclient to that voter); the leader runs them as its own
 * changes and answers once they are committed. Before a forwarded change is
 * reported done here, this node waits until its own published image shows
 * it (the topic exists or is gone, the partition count is reached, the
 * producer-id block is taken, the configuration holds the new values),
 * woken by each publish: a client reads its own write from the node that
 * answered. ElectLeaders and AlterPartitionReassignments are forwarded too
 * (their answers carry no offset to wait for, so they stand as the leader
 * gave them). CreateAcls and DeleteAcls travel one ACL or one filter per
 * request; a created ACL is visible once this node's image holds it, a
 * deletion once none of the ACLs the leader reports removed is left (the
 * leader's list of them is the answer). A SCRAM credential change travels
 * as AlterUserScramCredentials with one upsertion (SaltedPassword and all)
 * or one deletion; it is visible once the credential has the new salt and
 * iterations, or is gone. AlterClientQuotas travels one entity per request,
 * visible once this node's image holds its new values. Changes made while
 * no leader is known fail with
 * NOT_CONTROLLER, which clients retry.
 *
 * Config changes arrive here already checked by the receiving broker
 * (api_alter_configs.c) and resolved to final values (APPEND and SUBTRACT
 * are computed against the image it read). A change that replaces every
 * override of a resource travels as AlterConfigs (33), one that sets or
 * removes single keys as IncrementalAlterConfigs (44) with SET and DELETE
 * only; the leader checks them again against the latest state. Topic and
 * BROKER resources alike; validate_only travels too (nothing to wait for
 * then). A forwarded config change is visible once every key it names has
 * its new value (or no override) in this node's image, and, for a
 * replacement, no other override is left; a topic deleted meanwhile counts
 * as visible (nothing is left to read). A concurrent change of the same key
 * by someone else can hide ours: the wait then ends after
 * FORWARD_TIMEOUT_MS with REQUEST_TIMED_OUT, as a client's own timeout would.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

#define FORWARD_TIMEOUT_MS 30000
#define API_CREATE_TOPICS 19
#define API_DELETE_TOPICS 20
#define API_ALTER_CONFIGS 33
#define API_CREATE_PARTITIONS 37
#define API_INCREMENTAL_ALTER_CONFIGS 44
#define API_ALLOCATE_PRODUCER_IDS 67
#define API_ELECT_LEADERS 43
#define API_ALTER_PARTITION_REASSIGNMENTS 45
#define API_CREATE_ACLS 30
#define API_DELETE_ACLS 31
#define API_ALTER_USER_SCRAM_CREDENTIALS 51
#define API_ALTER_CLIENT_QUOTAS 49

typedef struct fwd {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
} fwd_t;

typedef struct fwd_one {
    fwd_t *f;
    meta_op *op;
    int16_t err;
    char msg[META_MSG_MAX];
} fwd_one_t;

static void one_done(fwd_one_t *o, int16_t err, const kstr_t *msg)
{
    o->err = err;
    if (msg && msg->ptr && msg->len > 0)
        snprintf(o->msg, sizeof o->msg, "%.*s", (int)msg->len, msg->ptr);
    pthread_mutex_lock(&o->f->mu);
    o->f->pending--;
    pthread_cond_broadcast(&o->f->cv);
    pthread_mutex_unlock(&o->f->mu);
}

static void created(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fwd_one_t *o = arg;
    UNUSED(resp);
    const CreateTopicsResponse *r = response;
    if (err != KCLIENT_OK || !r || r->Topics.count != 1)
        one_done(o, err != KCLIENT_OK ? kclient_err_kafka(err) : KERR_UNKNOWN_SERVER_ERROR, NULL);
    else
        one_done(o, r->Topics.items[0].ErrorCode, &r->Topics.items[0].ErrorMessage);
}

static void deleted(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fwd_one_t *o = arg;
    UNUSED(resp);
    const DeleteTopicsResponse *r = response;
    if (err != KCLIENT_OK || !r || r->Responses.count != 1)
        one_done(o, err != KCLIENT_OK ? kclient_err_kafka(err) : KERR_UNKNOWN_SERVER_ERROR, NULL);
    else
        one_done(o, r->Responses.items[0].ErrorCode, &r->Responses.items[0].ErrorMessage);
}

static int send_create(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_op *op = o->op;
    CreateTopicsRequest_CreatableTopic *t = arena_alloc(a, sizeof *t);
    memset(t, 0, sizeof *t);
    t->Name = kstr_from(op->topic);
    t->NumPartitions = op->nassignments ? -1 : op->partitions;
    t->ReplicationFactor = op->nassignments ? -1 : op->replication_factor;
    t->Configs.count = op->nconfigs;
    t->Configs.items = arena_alloc(a, (size_t)(op->nconfigs + 1) * sizeof *t->Configs.items);
    for (int32_t i = 0; i < op->nconfigs; i++)
        t->Configs.items[i] = (CreateTopicsRequest_CreateableTopicConfig){
            kstr_from(op->configs[i].key), op->configs[i].value ? kstr_from(op->configs[i].value) : KSTR_NULL};
    t->Assignments.count = op->nassignments;
    t->Assignments.items = arena_alloc(a, (size_t)(op->nassignments + 1) * sizeof *t->Assignments.items);
    for (int32_t i = 0; i < op->nassignments; i++)
        t->Assignments.items[i] = (CreateTopicsRequest_CreatableReplicaAssignment){
            i, {op->assignments[i].nbrokers, op->assignments[i].brokers}};
    CreateTopicsRequest req = {.Topics = {1, t}, .timeoutMs = FORWARD_TIMEOUT_MS, .validateOnly = op->validate_only};
    int16_t v = kclient_api_version(c, API_CREATE_TOPICS);
    return kclient_send(c, API_CREATE_TOPICS, v >= 0 ? v : 4, &req, FORWARD_TIMEOUT_MS, created, o);
}

static int send_delete(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    int16_t v = kclient_api_version(c, API_DELETE_TOPICS);
    v = v >= 0 ? MIN(v, 5) : 4; /* by name: v0-v5 carry TopicNames */
    kstr_t *name = arena_alloc(a, sizeof *name);
    *name = kstr_from(o->op->topic);
    DeleteTopicsRequest req = {.TopicNames = {1, name}, .TimeoutMs = FORWARD_TIMEOUT_MS};
    return kclient_send(c, API_DELETE_TOPICS, v, &req, FORWARD_TIMEOUT_MS, deleted, o);
}

static void partitions_added(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fwd_one_t *o = arg;
    UNUSED(resp);
    const CreatePartitionsResponse *r = response;
    if (err != KCLIENT_OK || !r || r->Results.count != 1)
        one_done(o, err != KCLIENT_OK ? kclient_err_kafka(err) : KERR_UNKNOWN_SERVER_ERROR, NULL);
    else
        one_done(o, r->Results.items[0].ErrorCode, &r->Results.items[0].ErrorMessage);
}

static int send_partitions(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_op *op = o->op;
    CreatePartitionsRequest_CreatePartitionsTopic *t = arena_alloc(a, sizeof *t);
    memset(t, 0, sizeof *t);
    t->Name = kstr_from(op->topic);
    t->Count = op->partitions;
    t->Assignments.count = op->nassignments ? op->nassignments : -1;
    t->Assignments.items = arena_alloc(a, (size_t)(op->nassignments + 1) * sizeof *t->Assignments.items);
    for (int32_t i = 0; i < op->nassignments; i++)
        t->Assignments.items[i].BrokerIds = (kint32_array_t){op->assignments[i].nbrokers, op->assignments[i].brokers};
    CreatePartitionsRequest req = {.Topics = {1, t}, .TimeoutMs = FORWARD_TIMEOUT_MS};
    int16_t v = kclient_api_version(c, API_CREATE_PARTITIONS);
    return kclient_send(c, API_CREATE_PARTITIONS, v >= 0 ? MIN(v, 1) : 1, &req, FORWARD_TIMEOUT_MS,
                        partitions_added, o);
}

static void pids_allocated(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fwd_one_t *o = arg;
    UNUSED(resp);
    const AllocateProducerIdsResponse *r = response;
    if (err != KCLIENT_OK || !r) {
        one_done(o, err != KCLIENT_OK ? kclient_err_kafka(err) : KERR_UNKNOWN_SERVER_ERROR, NULL);
        return;
    }
    if (r->ErrorCode == KERR_NONE) { /* the leader's block size stands */
        o->op->first_producer_id = r->ProducerIdStart;
        o->op->producer_ids = r->ProducerIdLen;
    }
    one_done(o, r->ErrorCode, NULL);
}

static int send_pids(kclient_t *c, fwd_one_t *o, int32_t self)
{
    AllocateProducerIdsRequest req = {.BrokerId = self, .BrokerEpoch = -1};
    return kclient_send(c, API_ALLOCATE_PRODUCER_IDS, 0, &req, FORWARD_TIMEOUT_MS, pids_allocated, o);
}

/* The leader's result for (topic, partition) of the response, or -1 when absent. */
static int16_t elect_result(const ElectLeadersResponse *r, const meta_elect_item *it)
{
    for (int32_t i = 0; i < r->ReplicaElectionResults.count; i++) {
        const ElectLeadersResponse_ReplicaElectionResult *t = &r->ReplicaElectionResults.items[i];
        if ((size_t)t->Topic.len != strlen(it->topic) || memcmp(t->Topic.ptr, it->topic, (size_t)t->Topic.len) != 0)
            continue;
        for (int32_t j = 0; j < t->PartitionResult.count; j++)
            if (t->PartitionResult.items[j].PartitionId == it->partition)
                return t->PartitionResult.items[j].ErrorCode;
    }
    return -1;
}

static void elected(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fwd_one_t *o = arg;
    UNUSED(resp);
    const ElectLeadersResponse *r = response;
    meta_elect_op *e = &o->op->elect;
    if (err != KCLIENT_OK || !r || r->ErrorCode != KERR_NONE) {
        one_done(o, err != KCLIENT_OK ? kclient_err_kafka(err) : r ? r->ErrorCode : KERR_UNKNOWN_SERVER_ERROR, NULL);
        return;
    }
    for (int32_t i = 0; !e->all && i < e->n; i++) {
        int16_t x = elect_result(r, &e->items[i]);
        e->items[i].err = x >= 0 ? x : KERR_UNKNOWN_SERVER_ERROR;
    }
    for (int32_t i = 0; e->all && i < r->ReplicaElectionResults.count; i++) {
        const ElectLeadersResponse_ReplicaElectionResult *t = &r->ReplicaElectionResults.items[i];
        for (int32_t j = 0; j < t->PartitionResult.count; j++) {
            meta_op_add_elect(o->op, t->Topic.ptr, (size_t)MAX(t->Topic.len, 0), t->PartitionResult.items[j].PartitionId);
            e->items[e->n - 1].err = t->PartitionResult.items[j].ErrorCode;
        }
    }
    one_done(o, KERR_NONE, NULL);
}

/* One topic entry per partition asked (the leader answers by name and index). */
static int send_elect(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_elect_op *e = &o->op->elect;
    ElectLeadersRequest req = {.ElectionType = e->type, .TimeoutMs = FORWARD_TIMEOUT_MS};
    req.TopicPartitions.count = e->all ? -1 : e->n;
    req.TopicPartitions.items = arena_alloc(a, (size_t)(e->n + 1) * sizeof *req.TopicPartitions.items);
    for (int32_t i = 0; !e->all && i < e->n; i++) {
        int32_t *p = arena_alloc(a, sizeof *p);
        *p = e->items[i].partition;
        req.TopicPartitions.items[i] = (ElectLeadersRequest_TopicPartitions){kstr_from(e->items[i].topic), {1, p}};
    }
    int16_t v = kclient_api_version(c, API_ELECT_LEADERS);
    return kclient_send(c, API_ELECT_LEADERS, v >= 1 ? MIN(v, 2) : 2, &req, FORWARD_TIMEOUT_MS, elected, o);
}

/* The leader mirrors the request: partition i of the op is topic entry i. */
static void reassigned(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fwd_one_t *o = arg;
    UNUSED(resp);
    const AlterPartitionReassignmentsResponse *r = response;
    meta_reassign_op *ra = &o->op->reassign;
    if (err != KCLIENT_OK || !r || r->ErrorCode != KERR_NONE) {
        one_done(o, err != KCLIENT_OK ? kclient_err_kafka(err) : r ? r->ErrorCode : KERR_UNKNOWN_SERVER_ERROR,
                 r ? &r->ErrorMessage : NULL);
        return;
    }
    for (int32_t i = 0; i < ra->n; i++) {
        const AlterPartitionReassignmentsResponse_ReassignableTopicResponse *t =
            i < r->Responses.count ? &r->Responses.items[i] : NULL;
        const AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *p =
            t && t->Partitions.count == 1 ? &t->Partitions.items[0] : NULL;
        ra->items[i].err = p && p->PartitionIndex == ra->items[i].partition ? p->ErrorCode : KERR_UNKNOWN_SERVER_ERROR;
        if (p && p->ErrorMessage.len > 0)
            ra->items[i].msg = xstrndup(p->ErrorMessage.ptr, (size_t)p->ErrorMessage.len);
    }
    one_done(o, KERR_NONE, NULL);
}

static int send_reassign(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_reassign_op *ra = &o->op->reassign;
    AlterPartitionReassignmentsRequest req = {.TimeoutMs = FORWARD_TIMEOUT_MS};
    req.Topics.count = ra->n;
    req.Topics.items = arena_alloc(a, (size_t)(ra->n + 1) * sizeof *req.Topics.items);
    for (int32_t i = 0; i < ra->n; i++) {
        const meta_reassign_item *it = &ra->items[i];
        AlterPartitionReassignmentsRequest_ReassignablePartition *p = arena_alloc(a, sizeof *p);
        *p = (AlterPartitionReassignmentsRequest_ReassignablePartition){it->partition, {it->nreplicas, it->replicas}};
        req.Topics.items[i] = (AlterPartitionReassignmentsRequest_ReassignableTopic){kstr_from(it->topic), {1, p}};
    }
    return kclient_send(c, API_ALTER_PARTITION_REASSIGNMENTS, 0, &req, FORWARD_TIMEOUT_MS, reassigned, o);
}

/* ---- config changes --------------------------------------------------------- */

enum { OP_SET = 0, OP_DELETE = 1 }; /* IncrementalAlterConfigs ConfigOperation */

/* One resource's answer, or the transport's error. */
static void one_answer(fwd_one_t *o, int err, bool ok, int16_t code, const kstr_t *msg)
{
    if (err != KCLIENT_OK || !ok)
        one_done(o, err != KCLIENT_OK ? kclient_err_kafka(err) : KERR_UNKNOWN_SERVER_ERROR, NULL);
    else
        one_done(o, code, msg);
}

static void replaced(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    const AlterConfigsResponse *r = response;
    UNUSED(resp);
    bool ok = r && r->Responses.count == 1;
    one_answer(arg, err, ok, ok ? r->Responses.items[0].ErrorCode : 0, ok ? &r->Responses.items[0].ErrorMessage : NULL);
}

static void altered(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    const IncrementalAlterConfigsResponse *r = response;
    UNUSED(resp);
    bool ok = r && r->Responses.count == 1;
    one_answer(arg, err, ok, ok ? r->Responses.items[0].ErrorCode : 0, ok ? &r->Responses.items[0].ErrorMessage : NULL);
}

static int8_t resource_type(const meta_op *op)
{
    return op->broker_resource ? META_RESOURCE_BROKER : META_RESOURCE_TOPIC;
}

/* A replacement of every override: AlterConfigs. */
static int send_replace(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_op *op = o->op;
    AlterConfigsRequest_AlterableConfig *cf = arena_alloc(a, (size_t)(op->nconfigs + 1) * sizeof *cf);
    for (int32_t i = 0; i < op->nconfigs; i++)
        cf[i] = (AlterConfigsRequest_AlterableConfig){
            kstr_from(op->configs[i].key), op->configs[i].value ? kstr_from(op->configs[i].value) : KSTR_NULL};
    AlterConfigsRequest_AlterConfigsResource *res = arena_alloc(a, sizeof *res);
    *res = (AlterConfigsRequest_AlterConfigsResource){resource_type(op), kstr_from(op->topic), {op->nconfigs, cf}};
    AlterConfigsRequest req = {.Resources = {1, res}, .ValidateOnly = op->validate_only};
    int16_t v = kclient_api_version(c, API_ALTER_CONFIGS);
    return kclient_send(c, API_ALTER_CONFIGS, v >= 0 ? v : 0, &req, FORWARD_TIMEOUT_MS, replaced, o);
}

/* Single keys set or removed: IncrementalAlterConfigs with SET and DELETE. */
static int send_incremental(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_op *op = o->op;
    IncrementalAlterConfigsRequest_AlterableConfig *cf = arena_alloc(a, (size_t)(op->nconfigs + 1) * sizeof *cf);
    for (int32_t i = 0; i < op->nconfigs; i++) {
        const char *v = op->configs[i].value;
        cf[i] = (IncrementalAlterConfigsRequest_AlterableConfig){
            kstr_from(op->configs[i].key), v ? OP_SET : OP_DELETE, v ? kstr_from(v) : KSTR_NULL};
    }
    IncrementalAlterConfigsRequest_AlterConfigsResource *res = arena_alloc(a, sizeof *res);
    *res = (IncrementalAlterConfigsRequest_AlterConfigsResource){resource_type(op), kstr_from(op->topic),
                                                                 {op->nconfigs, cf}};
    IncrementalAlterConfigsRequest req = {.Resources = {1, res}, .ValidateOnly = op->validate_only};
    int16_t v = kclient_api_version(c, API_INCREMENTAL_ALTER_CONFIGS);
    return kclient_send(c, API_INCREMENTAL_ALTER_CONFIGS, v >= 0 ? v : 0, &req, FORWARD_TIMEOUT_MS, altered, o);
}

/* ---- ACLs ------------------------------------------------------------------- */

static void acl_created(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    const CreateAclsResponse *r = response;
    UNUSED(resp);
    bool ok = r && r->Results.count == 1;
    one_answer(arg, err, ok, ok ? r->Results.items[0].ErrorCode : 0, ok ? &r->Results.items[0].ErrorMessage : NULL);
}

static int send_create_acl(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_acl_op *acl = &o->op->acl;
    CreateAclsRequest_AclCreation *cr = arena_alloc(a, sizeof *cr);
    *cr = (CreateAclsRequest_AclCreation){acl->resource_type, kstr_from(acl->name), acl->pattern_type,
                                          kstr_from(acl->principal), kstr_from(acl->host), acl->operation,
                                          acl->permission};
    CreateAclsRequest req = {.Creations = {1, cr}};
    return kclient_send(c, API_CREATE_ACLS, 2, &req, FORWARD_TIMEOUT_MS, acl_created, o);
}

/* The leader's list of the ACLs it removed becomes the op's. */
static void acls_deleted(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    fwd_one_t *o = arg;
    const DeleteAclsResponse *r = response;
    UNUSED(resp);
    bool ok = err == KCLIENT_OK && r && r->FilterResults.count == 1;
    if (ok && r->FilterResults.items[0].ErrorCode == KERR_NONE) {
        const DeleteAclsResponse_DeleteAclsFilterResult *fr = &r->FilterResults.items[0];
        acl_set_unref(o->op->acl.matched);
        o->op->acl.matched = acl_set_new();
        for (int32_t i = 0; i < fr->MatchingAcls.count; i++) {
            const DeleteAclsResponse_DeleteAclsMatchingAcl *m = &fr->MatchingAcls.items[i];
            char *name = xstrndup(m->ResourceName.ptr ? m->ResourceName.ptr : "", (size_t)MAX(m->ResourceName.len, 0));
            char *pr = xstrndup(m->Principal.ptr ? m->Principal.ptr : "", (size_t)MAX(m->Principal.len, 0));
            char *host = xstrndup(m->Host.ptr ? m->Host.ptr : "", (size_t)MAX(m->Host.len, 0));
            acl_binding b = {m->ResourceType, m->PatternType, m->Operation, m->PermissionType, name, pr, host};
            uint8_t id[16] = {0};
            memcpy(id, &i, sizeof i); /* ids of the copies only need to differ */
            acl_set_add(o->op->acl.matched, id, &b);
            free(name);
            free(pr);
            free(host);
        }
    }
    one_answer(o, err, ok, ok ? r->FilterResults.items[0].ErrorCode : 0,
               ok ? &r->FilterResults.items[0].ErrorMessage : NULL);
}

static kstr_t kstr_or_null(const char *s)
{
    return s ? kstr_from(s) : KSTR_NULL;
}

static int send_delete_acls(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_acl_op *acl = &o->op->acl;
    DeleteAclsRequest_DeleteAclsFilter *f = arena_alloc(a, sizeof *f);
    *f = (DeleteAclsRequest_DeleteAclsFilter){acl->resource_type, kstr_or_null(acl->name), acl->pattern_type,
                                              kstr_or_null(acl->principal), kstr_or_null(acl->host),
                                              acl->operation, acl->permission};
    DeleteAclsRequest req = {.Filters = {1, f}};
    return kclient_send(c, API_DELETE_ACLS, 2, &req, FORWARD_TIMEOUT_MS, acls_deleted, o);
}

/* ---- SCRAM credentials ----------------------------------------------------- */

static void scram_altered(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    const AlterUserScramCredentialsResponse *r = response;
    UNUSED(resp);
    bool ok = r && r->Results.count == 1;
    one_answer(arg, err, ok, ok ? r->Results.items[0].ErrorCode : 0, ok ? &r->Results.items[0].ErrorMessage : NULL);
}

/* One upsertion (with the SaltedPassword) or one deletion. */
static int send_alter_scram(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_scram_op *s = &o->op->scram;
    AlterUserScramCredentialsRequest req = {{0, NULL}, {0, NULL}};
    if (s->remove) {
        AlterUserScramCredentialsRequest_ScramCredentialDeletion *d = arena_alloc(a, sizeof *d);
        *d = (AlterUserScramCredentialsRequest_ScramCredentialDeletion){kstr_from(s->name), s->mech};
        req.Deletions = (AlterUserScramCredentialsRequest_ScramCredentialDeletion_array){1, d};
    } else {
        AlterUserScramCredentialsRequest_ScramCredentialUpsertion *u = arena_alloc(a, sizeof *u);
        *u = (AlterUserScramCredentialsRequest_ScramCredentialUpsertion){
            kstr_from(s->name), s->mech, s->iterations, {s->salt, (int32_t)s->salt_len},
            {s->salted, (int32_t)sasl_scram_key_len(s->mech)}};
        req.Upsertions = (AlterUserScramCredentialsRequest_ScramCredentialUpsertion_array){1, u};
    }
    return kclient_send(c, API_ALTER_USER_SCRAM_CREDENTIALS, 0, &req, FORWARD_TIMEOUT_MS, scram_altered, o);
}

/* ---- client quotas ------------------------------------------------------------- */

static void quota_altered(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    const AlterClientQuotasResponse *r = response;
    UNUSED(resp);
    bool ok = r && r->Entries.count == 1;
    one_answer(arg, err, ok, ok ? r->Entries.items[0].ErrorCode : 0, ok ? &r->Entries.items[0].ErrorMessage : NULL);
}

/* One entity per request: its components, then a set or a removal per key. */
static int send_alter_quota(kclient_t *c, fwd_one_t *o, arena_t *a)
{
    const meta_quota_op *q = &o->op->quota;
    AlterClientQuotasRequest_EntryData *en = arena_alloc(a, sizeof *en);
    AlterClientQuotasRequest_EntityData *ents = arena_alloc(a, 2 * sizeof *ents);
    AlterClientQuotasRequest_OpData *ops = arena_alloc(a, META_QUOTA_NKEYS * sizeof *ops);
    int32_t ne = 0, no = 0;
    if (q->e.has_user)
        ents[ne++] = (AlterClientQuotasRequest_EntityData){kstr_from(META_QUOTA_USER), kstr_from(q->e.user)};
    if (q->e.has_client)
        ents[ne++] = (AlterClientQuotasRequest_EntityData){kstr_from(META_QUOTA_CLIENT_ID), kstr_from(q->e.client)};
    for (int k = 0; k < META_QUOTA_NKEYS; k++)
        if ((q->set | q->remove) & (1u << k))
            ops[no++] = (AlterClientQuotasRequest_OpData){kstr_from(meta_quota_key_name(k)), q->value[k],
                                                          (q->remove & (1u << k)) != 0};
    *en = (AlterClientQuotasRequest_EntryData){{ne, ents}, {no, ops}};
    AlterClientQuotasRequest req = {.Entries = {1, en}, .ValidateOnly = false};
    return kclient_send(c, API_ALTER_CLIENT_QUOTAS, 0, &req, FORWARD_TIMEOUT_MS, quota_altered, o);
}

static bool same_value(const char *have, const char *want)
{
    return want ? have && strcmp(have, want) == 0 : have == NULL;
}

/* Overrides the op does not name that its resource still has (replace). */
static bool others_left(const meta_image *img, const meta_topic *t, const meta_op *op)
{
    int32_t named = 0;
    for (int32_t i = 0; i < op->nconfigs; i++)
        named += op->configs[i].value != NULL;
    if (t)
        return t->nconfigs != named;
    int32_t have = 0;
    for (int32_t i = 0; i < img->nbroker_configs; i++)
        have += strcmp(img->broker_configs[i].resource, op->topic) == 0;
    return have != named;
}

static bool configs_visible(const meta_image *img, const meta_op *op)
{
    if (op->validate_only)
        return true;
    const meta_topic *t = NULL;
    if (!op->broker_resource && !(t = meta_image_topic(img, op->topic, strlen(op->topic))))
        return true; /* deleted meanwhile */
    for (int32_t i = 0; i < op->nconfigs; i++) {
        const char *have = t ? meta_topic_config(t, op->configs[i].key)
                             : meta_broker_config_get(img, op->topic, op->configs[i].key);
        if (!same_value(have, op->configs[i].value))
            return false;
    }
    return !op->replace_configs || !others_left(img, t, op);
}

/* The change is visible in img. */
static bool visible(const meta_image *img, const meta_op *op)
{
    if (op->kind == META_OP_ELECT_LEADERS || op->kind == META_OP_REASSIGN) /* the leader's answer stands */
        return true;
    if (op->kind == META_OP_ALLOC_PRODUCER_IDS)
        return img->next_producer_id >= op->first_producer_id + op->producer_ids;
    if (op->kind == META_OP_ALTER_CONFIGS)
        return configs_visible(img, op);
    if (op->kind == META_OP_CREATE_ACL || op->kind == META_OP_DELETE_ACLS)
        return meta_acl_visible(img, op);
    if (op->kind == META_OP_ALTER_SCRAM)
        return meta_scram_visible(img, op);
    if (op->kind == META_OP_ALTER_QUOTA)
        return meta_quota_visible(img, &op->quota);
    const meta_topic *t = op->topic ? meta_image_topic(img, op->topic, strlen(op->topic)) : NULL;
    if (op->kind == META_OP_CREATE_PARTITIONS)
        return t && t->npartitions >= op->partitions;
    return op->kind == META_OP_CREATE_TOPIC ? t != NULL : t == NULL;
}

static bool forwardable(const meta_op *op)
{
    switch (op->kind) {
    case META_OP_CREATE_TOPIC:
    case META_OP_DELETE_TOPIC:
    case META_OP_CREATE_PARTITIONS:
        return op->topic && !op->validate_only;
    case META_OP_ALTER_CONFIGS:
        return op->topic != NULL;
    case META_OP_ALLOC_PRODUCER_IDS:
    case META_OP_ELECT_LEADERS:
    case META_OP_REASSIGN:
    case META_OP_CREATE_ACL:
    case META_OP_DELETE_ACLS:
    case META_OP_ALTER_QUOTA:
        return true;
    case META_OP_ALTER_SCRAM: /* "if absent" has no wire form: decided by a leader's own controller */
        return !op->scram.if_absent;
    default:
        return false;
    }
}

static int send_one(kclient_t *c, fwd_one_t *o, arena_t *a, int32_t self)
{
    switch (o->op->kind) {
    case META_OP_CREATE_TOPIC:
        return send_create(c, o, a);
    case META_OP_DELETE_TOPIC:
        return send_delete(c, o, a);
    case META_OP_CREATE_PARTITIONS:
        return send_partitions(c, o, a);
    case META_OP_ELECT_LEADERS:
        return send_elect(c, o, a);
    case META_OP_REASSIGN:
        return send_reassign(c, o, a);
    case META_OP_ALTER_CONFIGS:
        return o->op->replace_configs ? send_replace(c, o, a) : send_incremental(c, o, a);
    case META_OP_CREATE_ACL:
        return send_create_acl(c, o, a);
    case META_OP_DELETE_ACLS:
        return send_delete_acls(c, o, a);
    case META_OP_ALTER_SCRAM:
        return send_alter_scram(c, o, a);
    case META_OP_ALTER_QUOTA:
        return send_alter_quota(c, o, a);
    default:
        return send_pids(c, o, self);
    }
}

static void wait_replies(fwd_t *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->pending > 0)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

void meta_forward_round(meta_t *m, int32_t self, kclient_t *leader, meta_op *ops, int16_t *errs, const char **msgs,
                        int n)
{
    fwd_t f = {.pending = 0};
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    fwd_one_t *one = xcalloc((size_t)n + 1, sizeof *one);
    arena_t a;
    arena_init(&a);
    int i = 0;
    for (meta_op *op = ops; op; op = op->next, i++) {
        one[i] = (fwd_one_t){.f = &f, .op = op, .err = KERR_NOT_CONTROLLER};
        if (!leader || !forwardable(op))
            continue;
        pthread_mutex_lock(&f.mu);
        f.pending++;
        pthread_mutex_unlock(&f.mu);
        int rc = send_one(leader, &one[i], &a, self);
        if (rc != 0) {
            one[i].err = kclient_err_kafka(rc);
            pthread_mutex_lock(&f.mu);
            f.pending--;
            pthread_mutex_unlock(&f.mu);
        }
    }
    wait_replies(&f);
    int64_t deadline = clock_mono_ms() + FORWARD_TIMEOUT_MS;
    for (i = 0; i < n; i++) {
        if (one[i].err == KERR_NONE && !meta_wait_image(m, (bool (*)(const meta_image *, const void *))visible,
                                                        one[i].op, deadline))
            one[i].err = KERR_REQUEST_TIMED_OUT;
        errs[i] = one[i].err;
        msgs[i] = NULL;
        if (one[i].msg[0]) {
            snprintf(one[i].op->errbuf, sizeof one[i].op->errbuf, "%s", one[i].msg);
            msgs[i] = one[i].op->errbuf;
        }
    }
    arena_free(&a);
    free(one);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.cv);
}
