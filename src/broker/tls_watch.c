/*
 * tls_watch.c - the SSL listeners' TLS context (net_tls) and its reload: a
 * thread looks at the keystore and truststore files every
 * TLS_WATCH_INTERVAL_MS and on SIGHUP, and reads them again when they
 * changed, so that a renewed certificate serves new connections without a
 * restart. Connections already open keep the certificate they started with.
 */
#include <errno.h>
#include <semaphore.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "broker/broker_int.h"

enum { TLS_WATCH_INTERVAL_MS = 2000 };

static sem_t g_watch_sem;          /* posted by SIGHUP and by stop: sem_post is async-signal-safe */
static _Atomic int g_reload_asked; /* SIGHUP: reload even if the files look unchanged */

__attribute__((constructor)) static void watch_sem_init(void) { sem_init(&g_watch_sem, 0, 0); }

void broker_request_tls_reload(void)
{
    atomic_store(&g_reload_asked, 1);
    sem_post(&g_watch_sem);
}

static void watch_wait(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += TLS_WATCH_INTERVAL_MS / 1000;
    ts.tv_nsec += (TLS_WATCH_INTERVAL_MS % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(&g_watch_sem, &ts) != 0 && errno == EINTR)
        ;
}

static void *tls_watch(void *arg)
{
    broker *b = arg;
    for (;;) {
        watch_wait();
        if (atomic_load(&b->tls_watch_stop))
            break;
        bool force = atomic_exchange(&g_reload_asked, 0) != 0;
        char err[512], who[512];
        if (b->peer_tls && net_tls_reload(b->peer_tls, force, err, sizeof err) < 0)
            log_error("broker", "TLS certificates to peers not reloaded, the previous ones stay: %s", err);
        int rc = net_tls_reload(b->tls, force, err, sizeof err);
        if (rc > 0) {
            net_tls_describe(b->tls, who, sizeof who);
            log_info("broker", "TLS certificates reloaded file=%s %s", b->cfg.ssl_keystore_location, who);
        } else if (rc < 0) {
            log_error("broker", "TLS certificates not reloaded, the previous ones keep serving: %s", err);
        }
    }
    return NULL;
}

int broker_tls_open(broker *b)
{
    const config *c = &b->cfg;
    bool any = false;
    for (int i = 0; i < c->nlisteners; i++)
        any |= c->listeners[i].protocol == CONFIG_SSL || c->listeners[i].protocol == CONFIG_SASL_SSL;
    if (!any)
        return 0;
    net_tls_config tc = {.keystore = c->ssl_keystore_location, .key_password = c->ssl_key_password,
                         .truststore = c->ssl_truststore_location, .client_auth = c->client_auth,
                         .tls12 = strstr(c->ssl_enabled_protocols, "TLSv1.2") != NULL,
                         .tls13 = strstr(c->ssl_enabled_protocols, "TLSv1.3") != NULL};
    char err[512], who[512];
    b->tls = net_tls_new(&tc, err, sizeof err);
    if (b->tls == NULL) {
        log_error("broker", "cannot set up TLS: %s", err);
        return -1;
    }
    net_tls_describe(b->tls, who, sizeof who);
    log_info("broker", "TLS ready file=%s %s client_auth=%s protocols=%s", c->ssl_keystore_location, who,
             c->ssl_client_auth, c->ssl_enabled_protocols);
    if (pthread_create(&b->tls_watcher, NULL, tls_watch, b) != 0)
        CK_PANIC("cannot start the TLS watch thread");
    b->tls_watching = true;
    return 0;
}

void broker_tls_close(broker *b)
{
    if (b->tls_watching) {
        atomic_store(&b->tls_watch_stop, true);
        sem_post(&g_watch_sem);
        pthread_join(b->tls_watcher, NULL);
        b->tls_watching = false;
    }
    net_tls_free(b->tls); /* after net_free: no connection uses it any more */
    b->tls = NULL;
}
