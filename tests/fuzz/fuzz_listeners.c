/* fuzz_listeners.c - libFuzzer target: arbitrary text as the listener
 * settings (listeners, advertised.listeners, listener.security.protocol.map,
 * inter.broker.listener.name, controller.listener.names; one per line).
 * A sixth line is sasl.jaas.config (the node's own login to its peers).
 * Must never crash or leak; settings that config_finish accepts are
 * consistent: the inter-broker listener is a client listener whose address
 * is listen, every listener has a known protocol, at most one listener is
 * the controller's, and a SASL peer listener comes with a login. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "broker/config.h"

static const char *const keys[] = {"listeners", "advertised.listeners", "listener.security.protocol.map",
                                   "inter.broker.listener.name", "controller.listener.names", "sasl.jaas.config"};

static void check(const config *c)
{
    CK_ASSERT(c->inter_broker >= 0 && c->inter_broker < c->nlisteners);
    const config_listener *ib = &c->listeners[c->inter_broker];
    CK_ASSERT(!ib->controller);
    if (ib->protocol == CONFIG_SASL_PLAINTEXT || ib->protocol == CONFIG_SASL_SSL ||
        c->controller_protocol == CONFIG_SASL_PLAINTEXT || c->controller_protocol == CONFIG_SASL_SSL)
        CK_ASSERT(c->sasl_username[0] && c->sasl_password[0]);
    CK_ASSERT(c->listen.port == ib->addr.port && strcmp(c->listen.host, ib->addr.host) == 0);
    int controllers = 0;
    for (int i = 0; i < c->nlisteners; i++) {
        const config_listener *l = &c->listeners[i];
        controllers += l->controller;
        CK_ASSERT(l->protocol >= CONFIG_PLAINTEXT && l->protocol <= CONFIG_SASL_SSL);
        CK_ASSERT(config_listener_find(c, l->name) == l);
    }
    CK_ASSERT(controllers <= 1);
    char out[4096];
    CK_ASSERT(config_get(c, "listeners", out, sizeof out) && config_get(c, "advertised.listeners", out, sizeof out));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size); /* a NUL ends the text, as in a file */
    CK_ASSERT(text != NULL);
    config c;
    config_defaults(&c);
    snprintf(c.ssl_keystore_location, sizeof c.ssl_keystore_location, "/k.pem");
    snprintf(c.ssl_truststore_location, sizeof c.ssl_truststore_location, "/ca.pem");
    char err[512], *save = NULL;
    size_t k = 0;
    bool ok = true;
    for (char *line = strtok_r(text, "\n", &save); line && k < ARRAY_LEN(keys) && ok;
         line = strtok_r(NULL, "\n", &save), k++)
        ok = config_set(&c, keys[k], line, err, sizeof err) == 0;
    if (ok && config_finish(&c, err, sizeof err) == 0)
        check(&c);
    free(text);
    return 0;
}
