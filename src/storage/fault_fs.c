/*
 * fault_fs.c - a file system for tests that fails the Nth write or sync and
 * simulates power loss (storage.h describes the model).
 *
 * It forwards to the POSIX implementation, so fds are kernel fds, and keeps
 * per path the length a sync has made durable. Syncs are not forwarded (the
 * model, not the kernel, decides what survives), which also keeps crash
 * loops fast. fault_fs_crash() then cuts every file back to its durable
 * length plus a random part of the rest, possibly turned to garbage.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "storage/storage_int.h"

#define FFS_MAX_FDS 4096

typedef struct ffile {
    struct ffile *next;
    char *path;
    uint64_t synced;
} ffile_t;

struct fault_fs {
    sfs_t sfs;                /* first: fault_fs_t * == sfs_t * */
    pthread_mutex_t mu;
    ffile_t *files;
    ffile_t *by_fd[FFS_MAX_FDS];
    uint64_t fail_write_at, fail_sync_at, crash_at;  /* countdowns, 0 = off */
    bool crashed;
    int64_t space;   /* bytes files may still grow by; -1 = unlimited */
    fault_fs_stats_t st;
};

static sfs_t *inner(void) { return sfs_posix(); }
static fault_fs_t *as_ffs(sfs_t *fs) { return (fault_fs_t *)fs; }

static ffile_t *file_find(fault_fs_t *f, const char *path)
{
    for (ffile_t *x = f->files; x; x = x->next)
        if (!strcmp(x->path, path))
            return x;
    return NULL;
}

static void file_drop(fault_fs_t *f, const char *path)
{
    for (ffile_t **pp = &f->files; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->path, path)) {
            ffile_t *x = *pp;
            *pp = x->next;
            for (int i = 0; i < FFS_MAX_FDS; i++)
                if (f->by_fd[i] == x)
                    f->by_fd[i] = NULL;
            free(x->path);
            free(x);
            return;
        }
    }
}

/* Counts a mutating op; true when it must fail because power is "lost". */
static bool crash_tick(fault_fs_t *f)
{
    if (f->crashed)
        return true;
    if (f->crash_at && --f->crash_at == 0) {
        f->crashed = true;
        return true;
    }
    return false;
}

static bool countdown(uint64_t *c)
{
    return *c && --*c == 0;
}

static int ff_open(sfs_t *fs, const char *path, int flags, int *fd)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    int r = (f->crashed && (flags & (SFS_CREATE | SFS_TRUNC))) ? -EIO : 0;
    if (r == 0)
        r = inner()->open(inner(), path, flags, fd);
    if (r == 0 && *fd >= FFS_MAX_FDS) {
        inner()->close(inner(), *fd);
        r = -EMFILE;
    }
    if (r == 0) {
        ffile_t *x = file_find(f, path);
        uint64_t size = 0;
        inner()->fsize(inner(), *fd, &size);
        if (!x) {
            x = xcalloc(1, sizeof *x);
            x->path = xstrdup(path);
            x->synced = size; /* what existed before we saw it counts as durable */
            x->next = f->files;
            f->files = x;
        }
        if (flags & SFS_TRUNC)
            x->synced = 0;
        f->by_fd[*fd] = x;
        f->st.opens++;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_close(sfs_t *fs, int fd)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    if (fd >= 0 && fd < FFS_MAX_FDS)
        f->by_fd[fd] = NULL;
    pthread_mutex_unlock(&f->mu);
    return inner()->close(inner(), fd);
}

static ssize_t ff_pread(sfs_t *fs, int fd, void *buf, size_t n, uint64_t off)
{
    UNUSED(fs);
    return inner()->pread(inner(), fd, buf, n, off);
}

static ssize_t ff_pwrite(sfs_t *fs, int fd, const void *buf, size_t n, uint64_t off)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    ssize_t r;
    struct stat st;
    uint64_t growth = 0;
    if (f->space >= 0 && fstat(fd, &st) == 0 && off + n > (uint64_t)st.st_size)
        growth = off + n - MAX((uint64_t)st.st_size, off);
    if (crash_tick(f) || countdown(&f->fail_write_at)) {
        r = -EIO;
    } else if (growth > 0 && f->space == 0) {
        r = -ENOSPC;
    } else {
        if (growth > (uint64_t)MAX(f->space, 0) && f->space >= 0) {
            n -= growth - (uint64_t)f->space; /* a short write: what still fits */
            growth = (uint64_t)f->space;
        }
        if (f->space >= 0)
            f->space -= (int64_t)growth;
        r = inner()->pwrite(inner(), fd, buf, n, off);
        ffile_t *x = (fd >= 0 && fd < FFS_MAX_FDS) ? f->by_fd[fd] : NULL;
        if (r > 0 && x && off < x->synced)
            x->synced = off;
        f->st.writes++;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_sync(sfs_t *fs, int fd)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    int r = 0;
    if (crash_tick(f) || countdown(&f->fail_sync_at)) {
        r = -EIO;
    } else {
        ffile_t *x = (fd >= 0 && fd < FFS_MAX_FDS) ? f->by_fd[fd] : NULL;
        uint64_t size = 0;
        r = inner()->fsize(inner(), fd, &size);
        if (r == 0 && x)
            x->synced = size;
        f->st.syncs++;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_ftruncate(sfs_t *fs, int fd, uint64_t size)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    int r = crash_tick(f) ? -EIO : inner()->ftruncate(inner(), fd, size);
    ffile_t *x = (fd >= 0 && fd < FFS_MAX_FDS) ? f->by_fd[fd] : NULL;
    if (r == 0 && x && x->synced > size)
        x->synced = size;
    if (r == 0)
        f->st.truncates++;
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_fsize(sfs_t *fs, int fd, uint64_t *size)
{
    UNUSED(fs);
    return inner()->fsize(inner(), fd, size);
}

static int ff_rename(sfs_t *fs, const char *from, const char *to)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    int r = crash_tick(f) ? -EIO : inner()->rename(inner(), from, to);
    if (r == 0) {
        file_drop(f, to);
        ffile_t *x = file_find(f, from);
        if (x) {
            free(x->path);
            x->path = xstrdup(to);
        }
        f->st.renames++;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_unlink(sfs_t *fs, const char *path)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    int r = crash_tick(f) ? -EIO : inner()->unlink(inner(), path);
    if (r == 0) {
        file_drop(f, path);
        f->st.unlinks++;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_mkdir(sfs_t *fs, const char *path)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    int r = crash_tick(f) ? -EIO : inner()->mkdir(inner(), path);
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_rmdir(sfs_t *fs, const char *path)
{
    fault_fs_t *f = as_ffs(fs);
    pthread_mutex_lock(&f->mu);
    int r = crash_tick(f) ? -EIO : inner()->rmdir(inner(), path);
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_fsync_dir(sfs_t *fs, const char *path)
{
    fault_fs_t *f = as_ffs(fs);
    UNUSED(path);
    pthread_mutex_lock(&f->mu);
    int r = (crash_tick(f) || countdown(&f->fail_sync_at)) ? -EIO : 0;
    if (r == 0)
        f->st.dir_syncs++;
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int ff_readdir(sfs_t *fs, const char *path, sfs_dirent_fn fn, void *arg)
{
    UNUSED(fs);
    return inner()->readdir(inner(), path, fn, arg);
}

fault_fs_t *fault_fs_new(void)
{
    fault_fs_t *f = xcalloc(1, sizeof *f);
    f->sfs = (sfs_t){
        .open = ff_open, .close = ff_close, .pread = ff_pread, .pwrite = ff_pwrite,
        .fsync = ff_sync, .fdatasync = ff_sync, .ftruncate = ff_ftruncate, .fsize = ff_fsize,
        .rename = ff_rename, .unlink = ff_unlink, .mkdir = ff_mkdir, .rmdir = ff_rmdir,
        .fsync_dir = ff_fsync_dir, .readdir = ff_readdir, .real_fds = true,
    };
    f->space = -1;
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void fault_fs_free(fault_fs_t *f)
{
    if (!f)
        return;
    while (f->files)
        file_drop(f, f->files->path);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

sfs_t *fault_fs_sfs(fault_fs_t *f) { return &f->sfs; }

#define FFS_SET(field, n)                                                      \
    do {                                                                       \
        pthread_mutex_lock(&f->mu);                                            \
        f->field = (n);                                                        \
        pthread_mutex_unlock(&f->mu);                                          \
    } while (0)

void fault_fs_fail_write_at(fault_fs_t *f, uint64_t n) { FFS_SET(fail_write_at, n); }
void fault_fs_fail_sync_at(fault_fs_t *f, uint64_t n) { FFS_SET(fail_sync_at, n); }
void fault_fs_crash_at(fault_fs_t *f, uint64_t n) { FFS_SET(crash_at, n); }
void fault_fs_set_space(fault_fs_t *f, int64_t bytes) { FFS_SET(space, bytes); }

bool fault_fs_crashed(fault_fs_t *f)
{
    pthread_mutex_lock(&f->mu);
    bool c = f->crashed;
    pthread_mutex_unlock(&f->mu);
    return c;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Cuts one file back to synced + a random part of its unsynced tail, of
 * which a random suffix may become garbage. */
static void crash_file(ffile_t *x, uint64_t *rng)
{
    int fd;
    if (inner()->open(inner(), x->path, SFS_RDWR, &fd) < 0)
        return;
    uint64_t size = 0;
    inner()->fsize(inner(), fd, &size);
    if (size > x->synced) {
        uint64_t keep = x->synced + rng_next(rng) % (size - x->synced + 1);
        inner()->ftruncate(inner(), fd, keep);
        if (keep > x->synced && rng_next(rng) % 3 == 0) {
            uint64_t g = x->synced + rng_next(rng) % (keep - x->synced);
            uint8_t junk[256];
            for (uint64_t p = g; p < keep; p += sizeof junk) {
                size_t n = (size_t)MIN((uint64_t)sizeof junk, keep - p);
                for (size_t i = 0; i < n; i++)
                    junk[i] = (uint8_t)rng_next(rng);
                inner()->pwrite(inner(), fd, junk, n, p);
            }
        }
        size = keep;
    }
    x->synced = size;
    inner()->close(inner(), fd);
}

void fault_fs_crash(fault_fs_t *f, uint64_t seed)
{
    pthread_mutex_lock(&f->mu);
    uint64_t rng = seed;
    for (ffile_t *x = f->files; x; x = x->next)
        crash_file(x, &rng);
    f->crashed = false;
    f->crash_at = f->fail_sync_at = f->fail_write_at = 0;
    pthread_mutex_unlock(&f->mu);
}

void fault_fs_stats(fault_fs_t *f, fault_fs_stats_t *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}

void fault_fs_reset_stats(fault_fs_t *f)
{
    pthread_mutex_lock(&f->mu);
    memset(&f->st, 0, sizeof f->st);
    pthread_mutex_unlock(&f->mu);
}
