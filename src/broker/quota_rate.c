/* quota_rate.c - the measures behind client quotas (quota_rate.h).
 *
 * Sampled rate. As Kafka's Rate over a SampledStat: num samples of size_ms
 * each; values go into the current sample, a new sample starts when it is
 * older than one window, and samples older than all of them together are
 * forgotten. The rate is the samples' sum over the time they span. Kafka
 * pads that time up to num-1 windows, which lets a client new or idle burst
 * (num-1) windows' worth of its quota at once, and again each time the
 * sample holding that burst expires; here the span is what the samples
 * really cover, at least one window, so a client running flat out gets an
 * even flow at its quota. A rate over its quota is throttled for
 * (rate - quota) / quota * span, the pause after which it is back at the
 * quota (Kafka's QuotaUtils.throttleTime).
 *
 * Token bucket. Kafka's TokenBucket, used for the controller mutation
 * quota: credit refills continuously at quota per second up to a burst of
 * quota * num * size seconds, and starts full. Taking may leave it below
 * zero; the throttle is then -tokens / quota seconds, the time the refill
 * needs to bring it back to zero. A burst is not held against the client
 * until a sample expires, as the sampled rate would.
 */
#include "broker/quota_rate.h"

#include <math.h>
#include <stdlib.h>

#include "base/util.h"

quota_rate *quota_rate_new(const quota_window *w, int64_t now_ms)
{
    quota_rate *x = xcalloc(1, sizeof *x);
    x->start = xcalloc((size_t)w->num, sizeof *x->start);
    x->value = xcalloc((size_t)w->num, sizeof *x->value);
    for (int32_t i = 0; i < w->num; i++)
        x->start[i] = now_ms;
    x->used_ms = now_ms;
    return x;
}

void quota_rate_free(quota_rate *x)
{
    if (!x)
        return;
    free(x->start);
    free(x->value);
    free(x);
}

/* ---- the sampled rate ----------------------------------------------------------- */

static void purge(const quota_window *w, quota_rate *x, int64_t now)
{
    for (int32_t i = 0; i < w->num; i++)
        if (now - x->start[i] >= w->num * w->size_ms) {
            x->start[i] = now;
            x->value[i] = 0;
        }
}

void quota_rate_add(const quota_window *w, quota_rate *x, double v, int64_t now_ms)
{
    purge(w, x, now_ms);
    if (now_ms - x->start[x->cur] >= w->size_ms) {
        x->cur = (x->cur + 1) % w->num;
        x->start[x->cur] = now_ms;
        x->value[x->cur] = 0;
    }
    x->value[x->cur] += v;
    x->used_ms = now_ms;
}

void quota_rate_measure(const quota_window *w, quota_rate *x, int64_t now_ms, double *sum, int64_t *span_ms)
{
    purge(w, x, now_ms);
    int64_t oldest = now_ms;
    double total = 0;
    for (int32_t i = 0; i < w->num; i++) {
        total += x->value[i];
        if (x->value[i] > 0)
            oldest = MIN(oldest, x->start[i]);
    }
    *sum = total;
    *span_ms = MAX(now_ms - oldest, w->size_ms);
}

uint32_t quota_rate_throttle(const quota_window *w, quota_rate *x, double quota, int64_t now_ms, int64_t max_ms)
{
    double sum;
    int64_t span;
    quota_rate_measure(w, x, now_ms, &sum, &span);
    double rate = sum * 1000.0 / (double)span;
    if (rate <= quota)
        return 0;
    double ms = quota > 0 ? (rate - quota) / quota * (double)span : (double)max_ms;
    return (uint32_t)MIN(llround(ms), max_ms);
}

/* ---- the token bucket ----------------------------------------------------------- */

double quota_bucket_tokens(const quota_window *w, quota_rate *x, double quota, int64_t now_ms)
{
    double burst = quota * (double)w->num * (double)w->size_ms / 1000.0;
    if (!x->bucket_set) {
        x->bucket_set = true;
        x->tokens = burst;
    } else if (now_ms > x->refill_ms) {
        x->tokens = MIN(burst, x->tokens + quota * (double)(now_ms - x->refill_ms) / 1000.0);
    }
    x->refill_ms = MAX(x->refill_ms, now_ms);
    x->used_ms = now_ms;
    return x->tokens;
}

void quota_bucket_take(const quota_window *w, quota_rate *x, double quota, double n, int64_t now_ms)
{
    quota_bucket_tokens(w, x, quota, now_ms);
    x->tokens -= n;
}

uint32_t quota_bucket_throttle(double tokens, double quota)
{
    if (tokens >= 0)
        return 0;
    double ms = quota > 0 ? -tokens / quota * 1000.0 : (double)INT32_MAX;
    return (uint32_t)MIN(llround(ms), (long long)INT32_MAX);
}
