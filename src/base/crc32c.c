/* crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) (crc32c.h).
 * Hardware path: the SSE4.2 crc32 instruction, 8 bytes at a time, chosen once
 * at first use by cpuid. The instruction's latency is three times its issue
 * rate, so long inputs run three independent streams over consecutive
 * blocks of CRC32C_STREAM bytes and join them: with f(r, D) the register
 * after D from register r, f(r, A|B|C) = Z2(f(r, A)) ^ Z1(f(0, B)) ^
 * f(0, C), where Zk is the linear map "run k * CRC32C_STREAM zero bytes",
 * applied with four 256-entry tables per map (built at first use).
 * Software path: slicing-by-8 tables built at first use. */
#include "base/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

/* ---- zero-run operators: 32x32 bit matrices over GF(2) ---------------- */

#define CRC32C_STREAM 2048 /* bytes per stream per round of the hardware path */

/* m[i] is the image of the register with only bit i set. */
static uint32_t mat_apply(const uint32_t m[32], uint32_t x)
{
    uint32_t r = 0;
    for (int i = 0; x; i++, x >>= 1)
        if (x & 1)
            r ^= m[i];
    return r;
}

static void mat_mul(uint32_t out[32], const uint32_t a[32], const uint32_t b[32])
{
    uint32_t t[32];
    for (int i = 0; i < 32; i++)
        t[i] = mat_apply(a, b[i]);
    memcpy(out, t, sizeof t);
}

/* The map of n zero bytes, by squaring the one-zero-byte map. */
static void mat_zeros(uint32_t out[32], size_t n)
{
    uint32_t sq[32];
    for (int i = 0; i < 32; i++) { /* one zero byte: eight shifts */
        uint32_t c = 1u << i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        sq[i] = c;
        out[i] = 1u << i;
    }
    for (; n; n >>= 1) {
        if (n & 1)
            mat_mul(out, sq, out);
        mat_mul(sq, sq, sq);
    }
}

static uint32_t zeros1[4][256], zeros2[4][256]; /* one and two streams' worth */
static pthread_once_t zeros_once = PTHREAD_ONCE_INIT;

static void zeros_table(uint32_t t[4][256], size_t n)
{
    uint32_t m[32];
    mat_zeros(m, n);
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++)
            t[k][v] = mat_apply(m, v << (8 * k));
}

static void zeros_init(void)
{
    zeros_table(zeros1, CRC32C_STREAM);
    zeros_table(zeros2, 2 * CRC32C_STREAM);
}

static inline uint32_t zeros_apply(const uint32_t t[4][256], uint32_t x)
{
    return t[0][x & 0xff] ^ t[1][(x >> 8) & 0xff] ^ t[2][(x >> 16) & 0xff] ^ t[3][x >> 24];
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&table_once, table_init);
    const uint8_t *p = buf;
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* little-endian hosts only (x86_64, aarch64 LE) */
        w ^= crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
              table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
              table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    if (n >= 3 * CRC32C_STREAM)
        pthread_once(&zeros_once, zeros_init);
    for (; n >= 3 * CRC32C_STREAM; n -= 3 * CRC32C_STREAM, p += 3 * CRC32C_STREAM) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < CRC32C_STREAM; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + CRC32C_STREAM + i, 8);
            memcpy(&w2, p + 2 * CRC32C_STREAM + i, 8);
            c = __builtin_ia32_crc32di(c, w0);
            c1 = __builtin_ia32_crc32di(c1, w1);
            c2 = __builtin_ia32_crc32di(c2, w2);
        }
        c = zeros_apply(zeros2, (uint32_t)c) ^ zeros_apply(zeros1, (uint32_t)c1) ^ (uint32_t)c2;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

static bool have_hw(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    return cached == 1;
}

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
    return have_hw() ? crc32c_hw(crc, p, n) : crc32c_sw(crc, p, n);
}
#else
uint32_t crc32c(uint32_t crc, const void *p, size_t n) { return crc32c_sw(crc, p, n); }
#endif
