/* api_describe_log_dirs.c - DescribeLogDirs (key 35) v0-v4: the one log
 * directory of this node (the data directory, as an absolute path), each
 * local partition's size in it, and (v4) the size and free space of its
 * filesystem. Every log is current (there are no future logs: replicas do
 * not move between directories), so the offset lag is 0, as Kafka reports
 * for a current log. Topics null asks for every local partition; named
 * partitions that have no log here are left out, as Kafka does. Needs
 * DESCRIBE on the cluster: otherwise no directory, and (v3+)
 * CLUSTER_AUTHORIZATION_FAILED. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "broker/broker_int.h"

/* Partition index of t's local log, its size in *bytes; false when absent. */
static bool local_size(broker *b, const meta_topic *t, int32_t index, int64_t *bytes)
{
    if (index < 0 || index >= t->npartitions)
        return false;
    partition *p = replica_get(b->replicas, t->name, strlen(t->name), index);
    if (!p)
        return false;
    *bytes = plog_size_bytes(p->log);
    partition_put(p);
    return true;
}

static bool asked(const kint32_array_t *parts, int32_t index)
{
    for (int32_t i = 0; i < MAX(parts->count, 0); i++)
        if (parts->items[i] == index)
            return true;
    return false;
}

/* t's local partitions (those in parts, or all when parts is NULL) into
 * out; false when it has none. */
static bool describe_topic(breq *r, const meta_topic *t, const kint32_array_t *parts,
                           DescribeLogDirsResponse_DescribeLogDirsTopic *out)
{
    const proto_struct_desc *d = &DescribeLogDirsResponse_DescribeLogDirsPartition_desc;
    out->Name = kstr_from(arena_strndup(&r->arena, t->name, strlen(t->name)));
    out->Partitions.items = breq_items(r, d, t->npartitions);
    out->Partitions.count = 0;
    for (int32_t i = 0; i < t->npartitions; i++) {
        int64_t bytes;
        if ((parts && !asked(parts, i)) || !local_size(r->b, t, i, &bytes))
            continue;
        DescribeLogDirsResponse_DescribeLogDirsPartition *p = &out->Partitions.items[out->Partitions.count++];
        p->PartitionIndex = i;
        p->PartitionSize = bytes;
        p->OffsetLag = 0;
        p->IsFutureKey = false;
    }
    return out->Partitions.count > 0;
}

/* The topics of the request (or every topic) that have local partitions. */
static void describe_topics(breq *r, const meta_image *img, DescribeLogDirsResponse_DescribeLogDirsResult *dir)
{
    const DescribeLogDirsRequest *req = r->req;
    bool all = req->Topics.count < 0;
    int32_t n = all ? img->ntopics : req->Topics.count;
    dir->Topics.items = breq_items(r, &DescribeLogDirsResponse_DescribeLogDirsTopic_desc, n);
    dir->Topics.count = 0;
    for (int32_t i = 0; i < n; i++) {
        const meta_topic *t = img->topics[i];
        const kint32_array_t *parts = NULL;
        if (!all) {
            kstr_t name = req->Topics.items[i].Topic;
            t = name.len > 0 ? meta_image_topic(img, name.ptr, (size_t)name.len) : NULL;
            parts = &req->Topics.items[i].Partitions;
        }
        if (t && describe_topic(r, t, parts, &dir->Topics.items[dir->Topics.count]))
            dir->Topics.count++;
    }
}

breq_rc api_describe_log_dirs(breq *r)
{
    DescribeLogDirsResponse *resp = r->resp;
    resp->Results.count = 0;
    int16_t denied = broker_cluster_denied(r, ACL_OP_DESCRIBE);
    if (denied != KERR_NONE) {
        resp->ErrorCode = denied; /* v3+; older versions see no directory */
        return BREQ_DONE;
    }
    const char *dir_path = r->b->cfg.data_dir;
    char abs[PATH_MAX];
    if (realpath(dir_path, abs))
        dir_path = abs;
    resp->Results.count = 1;
    resp->Results.items = breq_items(r, &DescribeLogDirsResponse_DescribeLogDirsResult_desc, 1);
    DescribeLogDirsResponse_DescribeLogDirsResult *dir = &resp->Results.items[0];
    dir->LogDir = kstr_from(arena_strndup(&r->arena, dir_path, strlen(dir_path)));
    struct statvfs v;
    if (statvfs(dir_path, &v) == 0) {
        dir->TotalBytes = (int64_t)v.f_blocks * (int64_t)v.f_frsize;
        dir->UsableBytes = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
    }
    meta_image *img = meta_acquire(r->b->meta);
    describe_topics(r, img, dir);
    meta_image_release(img);
    return BREQ_DONE;
}
