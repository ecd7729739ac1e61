/*
 * peer_security.c - how this node reaches its peers, built once from the
 * configuration and shared by every client it opens to them (kclient.h,
 * Security): the quorum's Raft messages and forwarded changes, broker
 * registrations and heartbeats (the controller listener's protocol,
 * controller.listener.names + listener.security.protocol.map, with
 * sasl.mechanism.controller.protocol), follower fetches and transaction
 * markers (the inter-broker listener's, inter.broker.listener.name, with
 * sasl.mechanism.inter.broker.protocol).
 *
 * SSL and SASL_SSL use one TLS client context: the peer's certificate must
 * chain to ssl.truststore.location and, with
 * ssl.endpoint.identification.algorithm=https (the default), name the host
 * connected to; ssl.keystore.location's certificate is presented when a
 * peer asks for one (ssl.client.auth). The tls_watch thread reloads it with
 * the server context. SASL_* log in with sasl.jaas.config's username and
 * password (config_finish parsed and checked them).
 */
#include <openssl/crypto.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "broker/broker_int.h"

static bool uses_tls(int32_t p) { return p == CONFIG_SSL || p == CONFIG_SASL_SSL; }
static bool uses_sasl(int32_t p) { return p == CONFIG_SASL_PLAINTEXT || p == CONFIG_SASL_SSL; }

static void fill(broker *b, kclient_security *s, int32_t protocol, const char *mech)
{
    memset(s, 0, sizeof *s);
    s->tls = uses_tls(protocol) ? b->peer_tls : NULL;
    if (!uses_sasl(protocol))
        return;
    s->sasl_mech = sasl_mech_from_name(mech, strlen(mech));
    snprintf(s->user, sizeof s->user, "%s", b->cfg.sasl_username);
    snprintf(s->password, sizeof s->password, "%s", b->cfg.sasl_password);
}

int broker_peer_security_open(broker *b)
{
    const config *c = &b->cfg;
    int32_t ib = c->listeners[c->inter_broker].protocol, ctl = c->controller_protocol;
    if (uses_tls(ib) || uses_tls(ctl)) {
        net_tls_config tc = {.keystore = c->ssl_keystore_location, .key_password = c->ssl_key_password,
                             .truststore = c->ssl_truststore_location,
                             .tls12 = strstr(c->ssl_enabled_protocols, "TLSv1.2") != NULL,
                             .tls13 = strstr(c->ssl_enabled_protocols, "TLSv1.3") != NULL, .client = true,
                             .verify_host = strcasecmp(c->ssl_endpoint_identification, "https") == 0};
        char err[512];
        b->peer_tls = net_tls_new(&tc, err, sizeof err);
        if (b->peer_tls == NULL) {
            log_error("broker", "cannot set up TLS to peers: %s", err);
            return -1;
        }
    }
    fill(b, &b->peer_controller, ctl, c->sasl_mechanism_controller);
    fill(b, &b->peer_broker, ib, c->sasl_mechanism_inter_broker);
    log_info("broker", "peers: controller protocol=%s%s%s, inter-broker protocol=%s%s%s%s%s",
             config_protocol_name(ctl), uses_sasl(ctl) ? " mechanism=" : "",
             uses_sasl(ctl) ? c->sasl_mechanism_controller : "", config_protocol_name(ib),
             uses_sasl(ib) ? " mechanism=" : "", uses_sasl(ib) ? c->sasl_mechanism_inter_broker : "",
             uses_sasl(ib) || uses_sasl(ctl) ? " user=" : "", uses_sasl(ib) || uses_sasl(ctl) ? c->sasl_username : "");
    return 0;
}

void broker_peer_security_close(broker *b)
{
    net_tls_free(b->peer_tls); /* after net_free: no connection uses it any more */
    b->peer_tls = NULL;
    OPENSSL_cleanse(&b->peer_controller, sizeof b->peer_controller);
    OPENSSL_cleanse(&b->peer_broker, sizeof b->peer_broker);
}
