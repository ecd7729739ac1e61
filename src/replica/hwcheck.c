/*
 * hwcheck.c - DATA_DIR/replication-offset-checkpoint: each partition's high
 * watermark, so that a restarted node neither serves data that was never
 * committed nor forgets what was.
 *
 * Format (Kafka's, so its tools read it), text, one item per line:
 *
 *     0                      the version
 *     N                      the number of entries that follow
 *     <topic> <partition> <high watermark>     N times
 *
 * Topic names cannot hold spaces (Kafka's name rule), so a line splits on
 * its spaces. Written whole to a temporary file, fsynced, renamed over the
 * old one, directory fsynced (sfs_write_atomic): the file is always one
 * complete version. Reading: a missing file means no checkpoint (a new
 * data directory, or one from before replication); a file that does not
 * parse (wrong version, count, or a malformed line) is reported and
 * ignored as a whole, which only costs a replicated partition its high
 * watermark until its leader tells it again (never a wrong one).
 *
 * On open a partition with more than one replica starts from
 * min(checkpoint, log end), or its log start without an entry; a partition
 * with one replica starts at its log end (all of it is its own).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/util.h"
#include "replica/replica_int.h"

#define HWCHECK_MAX_BYTES (64u * 1024 * 1024)

void hwcheck_read(sfs_t *fs, const char *data_dir, hmap *map)
{
    hmap_init(map);
    char path[STORAGE_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", data_dir, HWCHECK_FILE);
    char *text = NULL;
    size_t len;
    int r = sfs_read_small(fs, path, HWCHECK_MAX_BYTES, &text, &len);
    if (r == -ENOENT)
        return;
    if (r < 0 || !hwcheck_parse(text, map)) {
        log_error("replica", "high watermark checkpoint unreadable, ignored path=%s", path);
        hwcheck_free(map);
        hmap_init(map);
    }
    free(text);
}

typedef struct hw_collect {
    buf_t lines;
    int64_t n;
    bool changed;
} hw_collect;

static void collect_one(void *arg, partition *p)
{
    hw_collect *c = arg;
    if (atomic_load(&p->removed))
        return;
    int64_t hw = atomic_load(&p->high_watermark);
    buf_printf(&c->lines, "%s %d %lld\n", p->topic, p->index, (long long)hw);
    c->n++;
    if (hw != p->hw_checkpointed) {
        p->hw_checkpointed = hw; /* only the checkpointing thread touches it */
        c->changed = true;
    }
}

int hwcheck_write(replica_mgr *m, const char *data_dir, bool force)
{
    hw_collect c = {.n = 0};
    buf_init(&c.lines);
    replica_each(m, collect_one, &c);
    int r = 0;
    if (c.changed || force) {
        buf_t out;
        buf_init(&out);
        buf_printf(&out, "0\n%lld\n", (long long)c.n);
        buf_put(&out, c.lines.data, c.lines.len);
        r = sfs_write_atomic(replica_fs(m), data_dir, HWCHECK_FILE, out.data, out.len);
        if (r < 0)
            log_error("replica", "cannot write the high watermark checkpoint dir=%s err=\"%s\"", data_dir,
                      strerror(-r));
        buf_free(&out);
    }
    buf_free(&c.lines);
    return r;
}
