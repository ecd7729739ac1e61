/* quota_rate.h - the measures behind client quotas (quota_rate.c): Kafka's
 * sampled rate and its token bucket, over a window of quota.window.num
 * samples of quota.window.size.seconds each. No locking, no clock: the
 * caller passes the time and holds its own lock. */
#ifndef CHRONIK_BROKER_QUOTA_RATE_H
#define CHRONIK_BROKER_QUOTA_RATE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct quota_window {
    int32_t num;       /* samples (quota.window.num) */
    int64_t size_ms;   /* one sample (quota.window.size.seconds) */
} quota_window;

typedef struct quota_rate {
    int64_t used_ms;   /* last recorded (for dropping idle rates) */
    int32_t cur;
    int64_t *start;    /* each sample's start */
    double *value;     /* each sample's sum */
    bool bucket_set;   /* the token bucket has been used */
    double tokens;     /* token bucket: credit left (below zero: over the quota) */
    int64_t refill_ms; /* token bucket: last refilled */
} quota_rate;

quota_rate *quota_rate_new(const quota_window *w, int64_t now_ms);
void quota_rate_free(quota_rate *x);

/* The sampled rate: add v at now; the samples' sum and the span they cover
 * (at least one window); the pause that brings the rate back to quota
 * (units per second), at most max_ms. */
void quota_rate_add(const quota_window *w, quota_rate *x, double v, int64_t now_ms);
void quota_rate_measure(const quota_window *w, quota_rate *x, int64_t now_ms, double *sum, int64_t *span_ms);
uint32_t quota_rate_throttle(const quota_window *w, quota_rate *x, double quota, int64_t now_ms, int64_t max_ms);

/* The token bucket (KIP-599): refilled at quota per second up to a burst of
 * quota * num * size; starts full. quota_bucket_take takes n tokens, which
 * may leave it below zero; quota_bucket_tokens is what is left now. The
 * throttle of a bucket below zero is the time the refill needs to bring
 * it back to zero. */
double quota_bucket_tokens(const quota_window *w, quota_rate *x, double quota, int64_t now_ms);
void quota_bucket_take(const quota_window *w, quota_rate *x, double quota, double n, int64_t now_ms);
uint32_t quota_bucket_throttle(double tokens, double quota);

#endif
