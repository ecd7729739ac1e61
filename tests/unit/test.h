/*
 * test.h - the unit-test harness: one program per module, each test a
 * function registered with TEST(name). CHECK failures print file:line and
 * the expression and mark the test failed; the program exits non-zero if any
 * test failed, and prints "N passed, M failed".
 */
#ifndef CHRONIK_TEST_H
#define CHRONIK_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };

static struct test_case test_cases[512];
static int test_count;
static int test_failed_now;

#define TEST(tname)                                                          \
    static void test_##tname(void);                                          \
    __attribute__((constructor)) static void test_register_##tname(void)     \
    {                                                                        \
        test_cases[test_count].name = #tname;                                \
        test_cases[test_count++].fn = test_##tname;                          \
    }                                                                        \
    static void test_##tname(void)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                        \
            test_failed_now = 1;                                             \
        }                                                                    \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                   \
    do {                                                                     \
        long long va_ = (long long)(a), vb_ = (long long)(b);                \
        if (va_ != vb_) {                                                    \
            fprintf(stderr, "  %s:%d: CHECK_EQ_INT failed: %s == %s (%lld != %lld)\n", \
                    __FILE__, __LINE__, #a, #b, va_, vb_);                   \
            test_failed_now = 1;                                             \
        }                                                                    \
    } while (0)

/* Stop the current test at once when a precondition for the rest fails. */
#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "  %s:%d: REQUIRE failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                        \
            test_failed_now = 1;                                             \
            return;                                                          \
        }                                                                    \
    } while (0)

/* Writes dir/name with text (a test setting up files by hand). */
static inline void test_write_file(const char *dir, const char *name, const char *text)
{
    char path[4200];
    FILE *f = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path)
        f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "  cannot write %s\n", path);
        abort();
    }
    fputs(text, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < test_count; i++) {
        if (argc > 1 && !strstr(test_cases[i].name, argv[1]))
            continue;
        test_failed_now = 0;
        test_cases[i].fn();
        if (test_failed_now) {
            fprintf(stderr, "FAIL %s\n", test_cases[i].name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("%s: %d passed, %d failed\n", argv[0], passed, failed);
    return failed ? 1 : 0;
}

#endif
