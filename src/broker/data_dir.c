/* data_dir.c - checking the data directory before the logs in it are opened
 * (broker_int.h), so that a directory this process cannot use is reported
 * by name and cause rather than as a failed log. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"

/* Declared in broker_int.h, which this file cannot include: <unistd.h>
 * declares a group_member() that clashes with the group module's type. */
int broker_data_dir_check(const char *path);

static int dir_failed(const char *what, const char *path, int err)
{
    log_error("broker", "%s dir=%s err=\"%s\" (set by --data-dir or log.dirs)", what, path, strerror(err));
    return -1;
}

int broker_data_dir_check(const char *path)
{
    struct stat st;
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return dir_failed("cannot create the data directory", path, errno);
    if (stat(path, &st) != 0)
        return dir_failed("cannot use the data directory", path, errno);
    if (!S_ISDIR(st.st_mode))
        return dir_failed("the data directory is not a directory", path, ENOTDIR);
    if (access(path, R_OK | W_OK | X_OK) != 0)
        return dir_failed("cannot write in the data directory", path, errno);
    return 0;
}
