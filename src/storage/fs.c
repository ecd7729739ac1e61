/* fs.c - the POSIX file-I/O interface and helpers on top of any sfs_t. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "storage/storage_int.h"

static const char *const err_msgs[] = {
#define STORAGE_ERR_MSG_(name, msg) msg,
    STORAGE_ERRORS(STORAGE_ERR_MSG_)
#undef STORAGE_ERR_MSG_
};

const char *storage_strerror(int err)
{
    if (err < 0 || err >= STORAGE_ERR__COUNT)
        return "unknown storage error";
    return err_msgs[err];
}

static int px_open(sfs_t *fs, const char *path, int flags, int *fd)
{
    UNUSED(fs);
    int f = (flags & SFS_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & SFS_CREATE)
        f |= O_CREAT;
    if (flags & SFS_EXCL)
        f |= O_EXCL;
    if (flags & SFS_TRUNC)
        f |= O_TRUNC;
    int r = open(path, f | O_CLOEXEC, 0644);
    if (r < 0)
        return -errno;
    *fd = r;
    return 0;
}

static int px_close(sfs_t *fs, int fd)
{
    UNUSED(fs);
    return close(fd) < 0 ? -errno : 0;
}

static ssize_t px_pread(sfs_t *fs, int fd, void *buf, size_t n, uint64_t off)
{
    UNUSED(fs);
    ssize_t r = pread(fd, buf, n, (off_t)off);
    return r < 0 ? -errno : r;
}

static ssize_t px_pwrite(sfs_t *fs, int fd, const void *buf, size_t n, uint64_t off)
{
    UNUSED(fs);
    ssize_t r = pwrite(fd, buf, n, (off_t)off);
    return r < 0 ? -errno : r;
}

static int px_fsync(sfs_t *fs, int fd)
{
    UNUSED(fs);
    return fsync(fd) < 0 ? -errno : 0;
}

static int px_fdatasync(sfs_t *fs, int fd)
{
    UNUSED(fs);
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int px_ftruncate(sfs_t *fs, int fd, uint64_t size)
{
    UNUSED(fs);
    return ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
}

static int px_fsize(sfs_t *fs, int fd, uint64_t *size)
{
    UNUSED(fs);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int px_rename(sfs_t *fs, const char *from, const char *to)
{
    UNUSED(fs);
    return rename(from, to) < 0 ? -errno : 0;
}

static int px_unlink(sfs_t *fs, const char *path)
{
    UNUSED(fs);
    return unlink(path) < 0 ? -errno : 0;
}

static int px_mkdir(sfs_t *fs, const char *path)
{
    UNUSED(fs);
    return mkdir(path, 0755) < 0 ? -errno : 0;
}

static int px_rmdir(sfs_t *fs, const char *path)
{
    UNUSED(fs);
    return rmdir(path) < 0 ? -errno : 0;
}

static int px_fsync_dir(sfs_t *fs, const char *path)
{
    UNUSED(fs);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

static int px_readdir(sfs_t *fs, const char *path, sfs_dirent_fn fn, void *arg)
{
    UNUSED(fs);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int r = 0;
    struct dirent *e;
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
        }
        r = fn(arg, e->d_name, is_dir);
    }
    closedir(d);
    return r;
}

static sfs_t posix_fs = {
    .open = px_open, .close = px_close, .pread = px_pread, .pwrite = px_pwrite,
    .fsync = px_fsync, .fdatasync = px_fdatasync, .ftruncate = px_ftruncate,
    .fsize = px_fsize, .rename = px_rename, .unlink = px_unlink, .mkdir = px_mkdir,
    .rmdir = px_rmdir, .fsync_dir = px_fsync_dir, .readdir = px_readdir, .real_fds = true,
};

sfs_t *sfs_posix(void) { return &posix_fs; }

int sfs_pread_full(sfs_t *fs, int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = fs->pread(fs, fd, p, n, off);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -EIO;
        p += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return 0;
}

int sfs_pwrite_full(sfs_t *fs, int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = fs->pwrite(fs, fd, p, n, off);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -EIO;
        p += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return 0;
}

/* Writes path whole (created or truncated) and syncs its contents. */
static int write_synced(sfs_t *fs, const char *path, const void *data, size_t n, bool datasync)
{
    int fd, r = fs->open(fs, path, SFS_RDWR | SFS_CREATE | SFS_TRUNC, &fd);
    if (r < 0)
        return r;
    r = sfs_pwrite_full(fs, fd, data, n, 0);
    if (r == 0)
        r = datasync ? fs->fdatasync(fs, fd) : fs->fsync(fs, fd);
    int rc = fs->close(fs, fd);
    return r == 0 ? rc : r;
}

int sfs_write_synced(sfs_t *fs, const char *dir, const char *name, const void *data, size_t n)
{
    char dst[SEG_PATH_MAX];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    return write_synced(fs, dst, data, n, true);
}

int sfs_write_atomic(sfs_t *fs, const char *dir, const char *name, const void *data, size_t n)
{
    char tmp[SEG_PATH_MAX], dst[SEG_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    int r = write_synced(fs, tmp, data, n, false);
    if (r == 0)
        r = fs->rename(fs, tmp, dst);
    if (r == 0)
        r = fs->fsync_dir(fs, dir);
    if (r < 0)
        fs->unlink(fs, tmp);
    return r;
}

int sfs_read_small(sfs_t *fs, const char *path, size_t max, char **out, size_t *len)
{
    int fd, r = fs->open(fs, path, SFS_RDONLY, &fd);
    if (r < 0)
        return r;
    uint64_t size;
    r = fs->fsize(fs, fd, &size);
    if (r == 0 && size > max)
        r = -EFBIG;
    char *buf = NULL;
    if (r == 0) {
        buf = xmalloc((size_t)size + 1);
        r = sfs_pread_full(fs, fd, buf, (size_t)size, 0);
        buf[size] = 0;
    }
    fs->close(fs, fd);
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = (size_t)size;
    return 0;
}

int sfs_mkdir_p(sfs_t *fs, const char *path)
{
    char buf[SEG_PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0)
            continue;
        char c = buf[i];
        buf[i] = 0;
        int r = fs->mkdir(fs, buf);
        buf[i] = c;
        if (r < 0 && r != -EEXIST)
            return r;
    }
    return 0;
}
