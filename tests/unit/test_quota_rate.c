/*
 * test_quota_rate.c - the measures behind client quotas (quota_rate.c) and
 * their window settings: quota.window.num and quota.window.size.seconds
 * decide how long a sampled rate remembers and how big a token bucket's
 * burst is; the bucket refills at the quota and throttles for the time its
 * refill needs to get back to zero.
 */
#include "broker/config.h"
#include "broker/quota_rate.h"
#include "test.h"

/* The keys exist with Kafka's defaults, are read, and must be at least 1. */
TEST(window_config_keys)
{
    config c;
    char err[256];
    config_defaults(&c);
    REQUIRE(config_finish(&c, err, sizeof err) == 0);
    CHECK_EQ_INT(c.quota_window_num, 11);
    CHECK_EQ_INT(c.quota_window_size_seconds, 1);
    CHECK(config_set(&c, "quota.window.num", "3", err, sizeof err) == 0);
    CHECK(config_set(&c, "quota.window.size.seconds", "2", err, sizeof err) == 0);
    CHECK_EQ_INT(c.quota_window_num, 3);
    CHECK_EQ_INT(c.quota_window_size_seconds, 2);
    CHECK(config_set(&c, "quota.window.num", "x", err, sizeof err) == -1);
    config_defaults(&c);
    CHECK(config_set(&c, "quota.window.num", "0", err, sizeof err) == 0);
    CHECK(config_finish(&c, err, sizeof err) == -1);
    CHECK(strstr(err, "quota.window.num") != NULL);
}

/* A sampled rate forgets what is older than num * size: with 2 samples of
 * 500 ms a burst stops counting after a second, with Kafka's 11 of 1 s it
 * still counts then. */
TEST(sampled_rate_window)
{
    quota_window small = {2, 500}, dflt = {11, 1000};
    quota_rate *a = quota_rate_new(&small, 0), *b = quota_rate_new(&dflt, 0);
    quota_rate_add(&small, a, 1000, 0);
    quota_rate_add(&dflt, b, 1000, 0);
    /* 1000 in one window against a quota of 100/s: over */
    CHECK(quota_rate_throttle(&small, a, 100, 100, 1000) > 0);
    CHECK(quota_rate_throttle(&dflt, b, 100, 100, 11000) > 0);
    double sum;
    int64_t span;
    quota_rate_measure(&small, a, 1000, &sum, &span);
    CHECK(sum == 0);
    CHECK_EQ_INT(quota_rate_throttle(&small, a, 100, 1000, 1000), 0);
    quota_rate_measure(&dflt, b, 1000, &sum, &span);
    CHECK(sum == 1000);
    CHECK_EQ_INT(span, 1000);
    /* 1000 over 1 s at 100/s: 9 s more to get back to the quota, capped */
    CHECK_EQ_INT(quota_rate_throttle(&dflt, b, 100, 1000, 11000), 9000);
    CHECK_EQ_INT(quota_rate_throttle(&dflt, b, 100, 1000, 500), 500);
    quota_rate_free(a);
    quota_rate_free(b);
}

/* The bucket starts full at quota * num * size and refills at the quota. */
TEST(token_bucket)
{
    quota_window w = {11, 1000}, small = {2, 500};
    quota_rate *x = quota_rate_new(&w, 0), *y = quota_rate_new(&small, 0);
    CHECK(quota_bucket_tokens(&w, x, 2, 0) == 22);
    CHECK(quota_bucket_tokens(&small, y, 2, 0) == 2);
    quota_bucket_take(&w, x, 2, 30, 0);
    CHECK(quota_bucket_tokens(&w, x, 2, 0) == -8);
    CHECK_EQ_INT(quota_bucket_throttle(-8, 2), 4000);
    CHECK(quota_bucket_tokens(&w, x, 2, 1000) == -6); /* refilled 2 in a second */
    CHECK(quota_bucket_tokens(&w, x, 2, 4000) == 0);
    CHECK_EQ_INT(quota_bucket_throttle(0, 2), 0);
    CHECK(quota_bucket_tokens(&w, x, 2, 100000) == 22); /* never above the burst */
    CHECK(quota_bucket_tokens(&w, x, 2, 50000) == 22);  /* a clock that goes back refills nothing */
    quota_rate_free(x);
    quota_rate_free(y);
}

