/*
 * datadir.c - what a data directory holds besides partition logs: the
 * process lock, and directories set aside for deletion or as strays.
 *
 * DATA_DIR/.lock
 *   Held with flock(LOCK_EX) for the life of the process that owns the
 *   directory; it is taken before anything else in the directory is read
 *   or written, so two processes never share one. The file holds the
 *   owner's pid as decimal text (informational only: the flock is the
 *   lock, and a stale file from a dead process is simply locked again).
 *
 * DATA_DIR/<topic>-<partition>.<32 hex>-delete
 *   A partition directory whose topic was deleted. The rename is the
 *   deletion's commit point on disk: it happens before anything else, so
 *   a topic created again under the same name can never open the old
 *   files. The renamed directory is removed later (when its log is
 *   closed, or at the next start); a crash in between leaves only a
 *   "-delete" directory, which start-up removes.
 *
 * DATA_DIR/<topic>-<partition>.<32 hex>-stray
 *   A partition directory whose partition.metadata names another topic id
 *   than the metadata does (a topic deleted and created again while the
 *   node was down, or files copied in by hand). It is kept, never read,
 *   and reported, so nothing is lost silently.
 *
 * Neither suffix parses as "<topic>-<partition>" (the part after the last
 * '-' is not a number), so storage_list_partitions never lists them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "storage/storage_int.h"

#define LOCK_FILE ".lock"

/* The pid recorded in an existing lock file, or 0. */
static long lock_owner(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && (*end == '\n' || *end == 0) ? pid : 0;
}

static void record_pid(int fd)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n)
        fdatasync(fd);
}

int storage_lock_dir(const char *data_dir, int *fd_out, char *err, size_t errlen)
{
    char path[STORAGE_PATH_MAX];
    *fd_out = -1;
    if (snprintf(path, sizeof path, "%s/%s", data_dir, LOCK_FILE) >= (int)sizeof path) {
        snprintf(err, errlen, "data directory path too long: %s", data_dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        long pid = e == EWOULDBLOCK ? lock_owner(fd) : 0;
        if (e != EWOULDBLOCK)
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        else if (pid > 0)
            snprintf(err, errlen, "data directory %s is in use by another process (pid %ld holds %s)",
                     data_dir, pid, path);
        else
            snprintf(err, errlen, "data directory %s is in use by another process (it holds %s)", data_dir,
                     path);
        close(fd);
        return -1;
    }
    record_pid(fd);
    *fd_out = fd;
    return 0;
}

void storage_unlock_dir(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock; the file stays, as Kafka's does */
}

static void random_hex(char out[33])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        CK_PANIC("getrandom failed");
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int storage_set_aside(sfs_t *fs, const char *dir, const char *suffix, char *out, size_t outlen)
{
    char hex[33];
    random_hex(hex);
    int n = snprintf(out, outlen, "%s.%s-%s", dir, hex, suffix);
    if (n < 0 || (size_t)n >= outlen)
        return -ENAMETOOLONG;
    int r = fs->rename(fs, dir, out);
    if (r < 0)
        return r;
    /* the parent directory's entry is what the rename changed */
    char parent[STORAGE_PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = 0;
    else
        snprintf(parent, sizeof parent, "%s", slash ? "/" : ".");
    return fs->fsync_dir(fs, parent);
}

typedef struct rm_ctx {
    sfs_t *fs;
    const char *dir;
    int err;
} rm_ctx_t;

static int rm_entry(void *arg, const char *name, bool is_dir)
{
    rm_ctx_t *c = arg;
    char path[STORAGE_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", c->dir, name) >= (int)sizeof path)
        return 0;
    int r = is_dir ? storage_remove_tree(c->fs, path) : c->fs->unlink(c->fs, path);
    if (r < 0 && r != -ENOENT)
        c->err = r;
    return 0;
}

int storage_remove_tree(sfs_t *fs, const char *dir)
{
    rm_ctx_t c = {fs, dir, 0};
    int r = fs->readdir(fs, dir, rm_entry, &c);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    r = fs->rmdir(fs, dir);
    return r < 0 && r != -ENOENT ? r : c.err;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

typedef struct sweep_ctx {
    sfs_t *fs;
    const char *data_dir;
    int removed;
} sweep_ctx_t;

static int sweep_one(void *arg, const char *name, bool is_dir)
{
    sweep_ctx_t *c = arg;
    char path[STORAGE_PATH_MAX];
    if (!is_dir || !ends_with(name, "-delete") || !strchr(name, '.'))
        return 0;
    if (snprintf(path, sizeof path, "%s/%s", c->data_dir, name) >= (int)sizeof path)
        return 0;
    int r = storage_remove_tree(c->fs, path);
    if (r < 0)
        log_warn("storage", "cannot remove deleted partition directory dir=%s err=\"%s\"", path, strerror(-r));
    else
        c->removed++;
    return 0;
}

int storage_sweep_deleted(const char *data_dir, sfs_t *fs)
{
    sweep_ctx_t c = {fs, data_dir, 0};
    int r = fs->readdir(fs, data_dir, sweep_one, &c);
    if (r < 0 && r != -ENOENT)
        return r;
    if (c.removed > 0)
        log_info("storage", "removed directories of deleted partitions count=%d data_dir=%s", c.removed,
                 data_dir);
    return c.removed;
}
