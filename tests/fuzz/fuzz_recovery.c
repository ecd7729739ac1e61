/* fuzz_recovery.c - libFuzzer target: arbitrary bytes as a partition
 * directory's segment (and optionally its index and checkpoint), then open
 * with recovery and read everything. Must never crash, and every batch
 * served must pass its CRC.
 *
 * Input: byte 0 = flags (bit 0: the next 48 bytes are the .index file;
 * bit 1: write a checkpoint whose recovery point is byte 1; bit 2: a
 * second segment starts at offset byte 2; bit 3: verify every segment at
 * open; bit 4: run the scrubber and read again; bit 5: after closing,
 * `log check`, then `log repair`, after which the log must open without
 * damage), the rest is the .log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/util.h"
#include "proto/batch.h"
#include "storage/storage.h"

#define FUZZ_INDEX_BYTES 48

static char dir[64];

static void put_file(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CK_ASSERT(f);
    if (n)
        CK_ASSERT(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static int unlink_entry(void *arg, const char *name, bool is_dir)
{
    char path[128];
    (void)arg;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!is_dir)
        unlink(path);
    return 0;
}

static void clear_dir(void)
{
    sfs_posix()->readdir(sfs_posix(), dir, unlink_entry, NULL);
}

static void read_everything(plog_t *log)
{
    int64_t off = plog_log_start_offset(log);
    buf_t out;
    buf_init(&out);
    for (int guard = 0; guard < 100000; guard++) {
        int64_t next;
        out.len = 0;
        if (plog_read_copy(log, off, INT64_MAX, 1 << 16, &out, &next) != STORAGE_OK || out.len == 0)
            break;
        for (size_t pos = 0; pos < out.len;) {
            batch_info_t b;
            CK_ASSERT(batch_check_stored(out.data + pos, out.len - pos, &b) == BATCH_OK);
            pos += b.size;
        }
        CK_ASSERT(next > off);
        off = next;
    }
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/chronik-fuzz-rec-%d", (int)getpid());
        CK_ASSERT(mkdir(dir, 0755) == 0 || access(dir, F_OK) == 0);
        log_set_level(LOG_ERROR);
    }
    if (size < 3)
        return 0;
    clear_dir();
    uint8_t flags = data[0];
    const uint8_t *p = data + 3;
    size_t n = size - 3;
    if ((flags & 1) && n >= FUZZ_INDEX_BYTES) {
        put_file("00000000000000000000.index", p, FUZZ_INDEX_BYTES);
        put_file("00000000000000000000.timeindex", NULL, 0);
        p += FUZZ_INDEX_BYTES, n -= FUZZ_INDEX_BYTES;
    }
    if (flags & 2) {
        char ck[96];
        int len = snprintf(ck, sizeof ck, "chronik-checkpoint 1\nlog_start_offset 0\nrecovery_point %d\n", data[1]);
        put_file("chronik.checkpoint", (const uint8_t *)ck, (size_t)len);
    }
    size_t split = (flags & 4) ? n / 2 : n;
    put_file("00000000000000000000.log", p, split);
    if (flags & 4) {
        char name[64];
        snprintf(name, sizeof name, "%020d.log", data[2]);
        put_file(name, p + split, n - split);
    }
    plog_config_t cfg;
    plog_config_default(&cfg);
    cfg.index_interval_bytes = 64;
    cfg.verify_on_open = (flags & 8) != 0;
    plog_t *log = NULL;
    fault_fs_t *ff = fault_fs_new(); /* real files, syncs not forwarded: fast */
    int r = plog_open(dir, &cfg, fault_fs_sfs(ff), false, &log);
    if (r == STORAGE_OK || r == STORAGE_ERR_DAMAGED)
        read_everything(log);
    if (log && (flags & 16)) {
        plog_scrub(log, NULL, NULL, NULL);
        read_everything(log); /* what the scrubber marked is never served */
    }
    if (log)
        plog_close(log);
    fault_fs_free(ff);
    if (flags & 32) {
        FILE *null = fopen("/dev/null", "w");
        storage_check_dir(dir, null);
        int rep = storage_repair_dir(dir, null);
        fclose(null);
        log = NULL;
        r = plog_open(dir, &cfg, sfs_posix(), false, &log);
        CK_ASSERT(rep != 0 || r != STORAGE_ERR_DAMAGED);
        if (log)
            plog_close(log);
    }
    return 0;
}
