/*
 * test_replica.c - the partition registry: references, the reaper, and
 * topic deletion by renaming the directory aside. Also built with TSan
 * (make test runs both builds).
 */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/util.h"
#include "proto/batch.h"
#include "proto/kerr.h"
#include "replica/replica.h"
#include "test.h"

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static char *tmpdir(void)
{
    char *d = xstrdup("/tmp/chronik-replica-XXXXXX");
    CK_ASSERT(mkdtemp(d));
    return d;
}

static void drop_dir(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static void default_cfg(void *ctx, const meta_topic *t, plog_config_t *out)
{
    (void)ctx, (void)t;
    plog_config_default(out);
}

static void counting_cfg(void *ctx, const meta_topic *t, plog_config_t *out)
{
    (void)t;
    (*(int *)ctx)++;
    plog_config_default(out);
}

/* A one-topic image (or an empty one when name is NULL). */
typedef struct fake_image {
    meta_image img;
    meta_topic topic, *topics[1];
    meta_partition part;
    int32_t replicas[1];
} fake_image;

static void fake_init(fake_image *f, const char *name, uint8_t id_byte)
{
    memset(f, 0, sizeof *f);
    if (!name)
        return;
    f->replicas[0] = 1;
    f->part = (meta_partition){.index = 0, .leader = 1, .nreplicas = 1, .replicas = f->replicas};
    f->topic.name = (char *)name;
    memset(f->topic.id.b, id_byte, 16);
    f->topic.npartitions = 1;
    f->topic.partitions = &f->part;
    f->topics[0] = &f->topic;
    f->img.ntopics = 1;
    f->img.topics = f->topics;
}

/* Entries in dir whose name contains part. */
static int count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, part) != NULL;
    if (d)
        closedir(d);
    return n;
}

static bool wait_for_entries(const char *dir, const char *part, int want)
{
    int64_t deadline = clock_mono_ms() + 10000;
    while (clock_mono_ms() < deadline) {
        if (count_entries(dir, part) == want)
            return true;
        usleep(2000);
    }
    return false;
}

static int append_small(partition *p)
{
    buf_t b;
    buf_init(&b);
    batch_builder_t bb;
    batch_build_begin(&bb, &b, 0, 0, 1700000000000LL, -1, -1, -1);
    batch_build_add(&bb, 1700000000000LL, "k", 1, "v", 1, NULL, 0);
    batch_build_end(&bb);
    plog_append_result_t res;
    int r = plog_append(p->log, b.data, b.len, 0, &res);
    buf_free(&b);
    return r == STORAGE_OK ? (int)res.log_end_offset : -1;
}

typedef struct ack {
    _Atomic int done;
    _Atomic int err;
} ack;

static void on_ack(void *arg, int16_t err)
{
    ack *a = arg;
    atomic_store(&a->err, err);
    atomic_store(&a->done, 1);
}

/* The last reference to a deleted partition is dropped by a flusher
 * completion: the log is closed on the reaper, not on the flusher thread
 * inside its round (which deadlocked), and the renamed directory goes. */
TEST(last_reference_dropped_by_flusher_completion)
{
    char *dir = tmpdir();
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    fake_image one, none;
    fake_init(&one, "t", 1);
    fake_init(&none, NULL, 0);
    for (int round = 0; round < 50; round++) {
        replica_sync(m, &one.img, NULL);
        partition *p = replica_get(m, "t", 1, 0);
        REQUIRE(p != NULL);
        int leo = append_small(p);
        REQUIRE(leo == 1);
        ack a = {0};
        partition_await(p, leo, 1, 1, 0, on_ack, &a); /* the pending sync holds a reference */
        partition_put(p);
        replica_sync(m, &none.img, NULL); /* drops the map's: the completion may drop the last */
        char plain[300];
        snprintf(plain, sizeof plain, "%s/t-0", dir);
        struct stat st;
        CHECK(stat(plain, &st) != 0); /* renamed aside at once (the reaper may have removed it already) */
        int64_t deadline = clock_mono_ms() + 10000;
        while (!atomic_load(&a.done) && clock_mono_ms() < deadline)
            usleep(500);
        REQUIRE(atomic_load(&a.done));
        int err = atomic_load(&a.err);
        CHECK(err == KERR_NONE || err == KERR_UNKNOWN_TOPIC_OR_PARTITION);
        CHECK(wait_for_entries(dir, "t-0", 0));
    }
    replica_free(m);
    drop_dir(dir);
}

/* A topic deleted and created again under its name gets a fresh directory:
 * the old records are never served again. */
TEST(recreated_topic_starts_empty)
{
    char *dir = tmpdir();
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    fake_image first, none, second;
    fake_init(&first, "d", 1);
    fake_init(&none, NULL, 0);
    fake_init(&second, "d", 2);
    replica_sync(m, &first.img, NULL);
    partition *old = replica_get(m, "d", 1, 0);
    REQUIRE(old != NULL);
    for (int i = 0; i < 5; i++)
        CHECK(append_small(old) == i + 1);
    replica_sync(m, &none.img, NULL);
    /* the old partition is still referenced: it refuses writes */
    CHECK(append_small(old) < 0);
    CHECK_EQ_INT(plog_state(old->log), STORAGE_ERR_DELETED);
    replica_sync(m, &second.img, NULL);
    partition *p = replica_get(m, "d", 1, 0);
    REQUIRE(p != NULL && p != old);
    CHECK_EQ_INT(plog_log_end_offset(p->log), 0);
    uint8_t id[16];
    CHECK(plog_topic_id(p->log, id) == STORAGE_OK && id[0] == 2);
    CHECK(append_small(p) == 1);
    partition_put(old);
    CHECK(wait_for_entries(dir, "-delete", 0));
    partition_put(p);
    replica_free(m);
    drop_dir(dir);
}

/* A directory whose partition.metadata names another topic id is set
 * aside as a stray, never opened as the new topic's log. */
TEST(other_topic_id_set_aside)
{
    char *dir = tmpdir();
    fake_image first, second;
    fake_init(&first, "s", 1);
    fake_init(&second, "s", 3);
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    replica_sync(m, &first.img, NULL);
    partition *p = replica_get(m, "s", 1, 0);
    REQUIRE(p != NULL);
    CHECK(append_small(p) == 1);
    partition_put(p);
    replica_free(m); /* a restart that missed the deletion */
    m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    replica_sync(m, &second.img, NULL);
    p = replica_get(m, "s", 1, 0);
    REQUIRE(p != NULL);
    CHECK_EQ_INT(plog_log_end_offset(p->log), 0);
    CHECK_EQ_INT(count_entries(dir, "-stray"), 1);
    partition_put(p);
    replica_free(m);
    drop_dir(dir);
}



/* ---- the leader: acks, the high watermark over the ISR ------------------- */

/* Topic "r": three replicas 1, 2, 3; leader and ISR as given. */
typedef struct fake3 {
    meta_image img;
    meta_topic topic, *topics[1];
    meta_partition part;
    int32_t replicas[3], isr[3];
} fake3;

static void fake3_init(fake3 *f, int32_t leader, int32_t epoch, const int32_t *isr, int32_t nisr)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 3; i++)
        f->replicas[i] = i + 1;
    memcpy(f->isr, isr, (size_t)nisr * sizeof *isr);
    f->part = (meta_partition){.index = 0, .leader = leader, .leader_epoch = epoch, .partition_epoch = epoch,
                               .nreplicas = 3, .replicas = f->replicas, .nisr = nisr, .isr = f->isr};
    f->topic.name = "r";
    memset(f->topic.id.b, 7, 16);
    f->topic.npartitions = 1;
    f->topic.partitions = &f->part;
    f->topics[0] = &f->topic;
    f->img.ntopics = 1;
    f->img.topics = f->topics;
}

static partition_append_res append_acks(partition *p, int acks, int32_t min_isr)
{
    buf_t b;
    buf_init(&b);
    batch_builder_t bb;
    batch_build_begin(&bb, &b, 0, 0, 1700000000000LL, -1, -1, -1);
    batch_build_add(&bb, 1700000000000LL, "k", 1, "v", 1, NULL, 0);
    size_t len = batch_build_end(&bb);
    partition_append_req rq = {.data = b.data, .len = len, .expected_epoch = -1, .acks = acks, .min_isr = min_isr};
    partition_append_res res;
    partition_append(p, &rq, &res);
    buf_free(&b);
    return res;
}

static bool wait_ack(ack *a)
{
    int64_t deadline = clock_mono_ms() + 10000;
    while (!atomic_load(&a->done) && clock_mono_ms() < deadline)
        usleep(500);
    return atomic_load(&a->done);
}

static bool wait_hw(partition *p, int64_t want)
{
    int64_t deadline = clock_mono_ms() + 10000;
    while (atomic_load(&p->high_watermark) != want && clock_mono_ms() < deadline)
        usleep(500);
    return atomic_load(&p->high_watermark) == want;
}

/* acks=all completes once every ISR member fetched past the batch; the
 * high watermark is the lowest of them, never above the leader's own. */
TEST(acks_all_waits_for_every_isr_member)
{
    char *dir = tmpdir();
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    int32_t isr[] = {1, 2, 3};
    fake3 f;
    fake3_init(&f, 1, 1, isr, 3);
    replica_sync(m, &f.img, NULL);
    partition *p = replica_get(m, "r", 1, 0);
    REQUIRE(p != NULL);
    CHECK_EQ_INT(partition_check_leader(p, 1), KERR_NONE);
    CHECK_EQ_INT(partition_check_leader(p, 0), KERR_FENCED_LEADER_EPOCH);
    CHECK_EQ_INT(partition_check_leader(p, 2), KERR_UNKNOWN_LEADER_EPOCH);
    partition_append_res res = append_acks(p, -1, 2);
    REQUIRE(res.err == KERR_NONE);
    ack a = {0};
    partition_await(p, res.res.log_end_offset, -1, 2, 60000, on_ack, &a);
    CHECK_EQ_INT(partition_follower_fetched(p, 2, 1), KERR_NONE);
    CHECK(!atomic_load(&a.done));
    CHECK_EQ_INT(atomic_load(&p->high_watermark), 0);
    CHECK_EQ_INT(partition_follower_fetched(p, 3, 1), KERR_NONE);
    REQUIRE(wait_ack(&a)); /* once the leader's own sync is done too */
    CHECK_EQ_INT(atomic_load(&a.err), KERR_NONE);
    CHECK_EQ_INT(atomic_load(&p->high_watermark), 1);
    CHECK_EQ_INT(partition_follower_fetched(p, 9, 1), KERR_NOT_LEADER_OR_FOLLOWER); /* not a replica */
    partition_put(p);
    replica_free(m);
    drop_dir(dir);
}

/* A follower that left the ISR does not hold the high watermark back; an
 * ISR below min.insync.replicas refuses acks=all before the append. */
TEST(isr_below_minimum_refuses_acks_all)
{
    char *dir = tmpdir();
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    int32_t isr[] = {1};
    fake3 f;
    fake3_init(&f, 1, 1, isr, 1);
    replica_sync(m, &f.img, NULL);
    partition *p = replica_get(m, "r", 1, 0);
    REQUIRE(p != NULL);
    CHECK_EQ_INT(append_acks(p, -1, 2).err, KERR_NOT_ENOUGH_REPLICAS);
    CHECK_EQ_INT(plog_log_end_offset(p->log), 0);
    partition_append_res res = append_acks(p, 1, 2);
    REQUIRE(res.err == KERR_NONE);
    ack a = {0};
    partition_await(p, res.res.log_end_offset, 1, 2, 0, on_ack, &a);
    REQUIRE(wait_ack(&a));
    CHECK_EQ_INT(atomic_load(&a.err), KERR_NONE);
    CHECK(wait_hw(p, 1)); /* the ISR is the leader alone */
    partition_put(p);
    replica_free(m);
    drop_dir(dir);
}

/* A parked acks=all append is answered REQUEST_TIMED_OUT after its timeout,
 * and when leadership moves first (the new leader decides its fate); a new
 * append is then refused with NOT_LEADER_OR_FOLLOWER. */
TEST(acks_all_timeout_and_leadership_loss)
{
    char *dir = tmpdir();
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    int32_t isr[] = {1, 2, 3};
    fake3 f, moved;
    fake3_init(&f, 1, 1, isr, 3);
    fake3_init(&moved, 2, 2, isr, 3);
    replica_sync(m, &f.img, NULL);
    partition *p = replica_get(m, "r", 1, 0);
    REQUIRE(p != NULL);
    partition_append_res res = append_acks(p, -1, 2);
    REQUIRE(res.err == KERR_NONE);
    ack late = {0}, lost = {0};
    partition_await(p, res.res.log_end_offset, -1, 2, 50, on_ack, &late);
    REQUIRE(wait_ack(&late));
    CHECK_EQ_INT(atomic_load(&late.err), KERR_REQUEST_TIMED_OUT);
    partition_await(p, res.res.log_end_offset, -1, 2, 60000, on_ack, &lost);
    replica_sync(m, &moved.img, NULL);
    REQUIRE(wait_ack(&lost));
    CHECK_EQ_INT(atomic_load(&lost.err), KERR_REQUEST_TIMED_OUT);
    CHECK_EQ_INT(append_acks(p, 1, 1).err, KERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ_INT(atomic_load(&p->leader_epoch), 2);
    CHECK_EQ_INT(atomic_load(&p->leader_id), 2);
    partition_put(p);
    replica_free(m);
    drop_dir(dir);
}

static int64_t reopened_hw(const char *dir, fake3 *f)
{
    replica_mgr *m = replica_new(dir, sfs_posix(), 2, default_cfg, NULL); /* a follower: nothing moves it */
    replica_sync(m, &f->img, NULL);
    partition *p = replica_get(m, "r", 1, 0);
    int64_t hw = p ? atomic_load(&p->high_watermark) : -2;
    partition_put(p);
    replica_free(m);
    return hw;
}

/* replication-offset-checkpoint: a replicated partition restarts from its
 * checkpointed high watermark (never above its log end); an unreadable
 * checkpoint is ignored as a whole (the log start, never a guess). */
TEST(high_watermark_checkpoint)
{
    char *dir = tmpdir();
    int32_t isr[] = {1, 2, 3};
    fake3 f;
    fake3_init(&f, 1, 1, isr, 3);
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, default_cfg, NULL);
    replica_sync(m, &f.img, NULL);
    partition *p = replica_get(m, "r", 1, 0);
    REQUIRE(p != NULL);
    for (int i = 0; i < 3; i++)
        REQUIRE(append_acks(p, 1, 1).err == KERR_NONE);
    partition_put(p);
    replica_free(m);
    test_write_file(dir, "replication-offset-checkpoint", "0\n1\nr 0 2\n");
    CHECK_EQ_INT(reopened_hw(dir, &f), 2);
    test_write_file(dir, "replication-offset-checkpoint", "0\n1\nr 0 99\n");
    CHECK_EQ_INT(reopened_hw(dir, &f), 3);
    test_write_file(dir, "replication-offset-checkpoint", "0\n2\nr 0 2\n");
    CHECK_EQ_INT(reopened_hw(dir, &f), 0);
    test_write_file(dir, "replication-offset-checkpoint", "1\n1\nr 0 2\n");
    CHECK_EQ_INT(reopened_hw(dir, &f), 0);
    drop_dir(dir);
}
/* A log is configured when it opens and again for every image in which
 * its topic is a new object (a change to it), but not for an image that
 * shares the topic with the one synced before, nor when no previous image
 * is given (the broker's defaults changed). */
TEST(unchanged_topic_keeps_its_configuration)
{
    char *dir = tmpdir();
    fake_image first, again, changed;
    fake_init(&first, "c", 1);
    fake_init(&changed, "c", 1);
    again = first;
    again.topics[0] = &first.topic; /* the same topic object, as images share it */
    again.img.topics = again.topics;
    int calls = 0;
    replica_mgr *m = replica_new(dir, sfs_posix(), 1, counting_cfg, &calls);
    replica_sync(m, &first.img, NULL);
    CHECK_EQ_INT(calls, 1);
    replica_sync(m, &again.img, &first.img);
    CHECK_EQ_INT(calls, 1);
    replica_sync(m, &changed.img, &again.img);
    CHECK_EQ_INT(calls, 2);
    replica_sync(m, &changed.img, NULL);
    CHECK_EQ_INT(calls, 3);
    replica_free(m);
    drop_dir(dir);
}
