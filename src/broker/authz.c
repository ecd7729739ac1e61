/* authz.c - who a request comes from and what it may do: the connection's
 * principal and host, and the checks the handlers make against the ACLs of
 * the current metadata image (src/acl decides; broker_int.h lists them).
 *
 * Identity (broker_authz_identify, the one place it is decided). On the
 * client listener the principal is "User:" and the subject of the client's
 * verified TLS certificate (Kafka's default principal builder, RFC 2253:
 * "User:CN=alice,OU=eng,O=acme"), or the name ssl.principal.mapping.rules
 * give that subject (a certificate no rule maps closes its connection, as
 * Kafka refuses it); without a certificate "User:ANONYMOUS". On a SASL
 * listener, once the connection logged in, it is "User:" and the login's
 * name instead (sasl.c; Kafka too prefers the SASL principal). The host is
 * the peer's IP. A connection on the controller listener is one of the
 * cluster's own nodes (forwarded changes, the metadata quorum,
 * registrations): it is internal and allowed everything, as Kafka's
 * controller listener serves only the cluster. Keep that listener
 * unreachable from clients.
 *
 * Inter-broker requests on the client listener (a follower's Fetch, the
 * transaction coordinator's WriteTxnMarkers) need CLUSTER_ACTION on the
 * cluster. Besides an ACL or super.users, on a PLAINTEXT listener it is
 * granted to a peer whose IP is the advertised host of a registered broker:
 * with PLAINTEXT a node has no other proof of who it is, and this grants
 * nothing but CLUSTER_ACTION. On SSL and SASL listeners the brokers have a
 * principal (super.users=User:broker is Kafka's way).
 *
 * The controller listener: a plaintext one is trusted as said above; a TLS
 * or SASL one, with the authorizer on, serves only principals allowed
 * CLUSTER_ACTION (broker_authz_controller_admit), then as internal.
 * A cluster whose brokers advertise host names (not IPs) grants it by ACL
 * or super.users instead.
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker_int.h"

void broker_authz_init(broker *b)
{
    acl_config_init(&b->acl, b->cfg.authorizer_class_name, b->cfg.super_users,
                    b->cfg.allow_everyone_if_no_acl_found);
    char err[160];
    b->ssl_rules = acl_ssl_rules_parse(b->cfg.ssl_principal_mapping_rules, err, sizeof err);
    CK_ASSERT(b->ssl_rules != NULL); /* config_finish checked them */
}

void broker_authz_free(broker *b)
{
    acl_config_free(&b->acl);
    acl_ssl_rules_free(b->ssl_rules);
}

/* "1.2.3.4:5678" or "[::1]:5678" -> "1.2.3.4" or "::1". */
static void peer_ip(const char *peer, char *out, size_t n)
{
    const char *start = peer, *end = strrchr(peer, ':');
    if (peer[0] == '[') {
        start = peer + 1;
        end = strchr(start, ']');
    }
    size_t len = end && end >= start ? (size_t)(end - start) : strlen(start);
    if (len >= n)
        len = n - 1;
    memcpy(out, start, len);
    out[len] = 0;
}

/* "User:" and the name ssl.principal.mapping.rules give the TLS client
 * certificate's subject; ANONYMOUS without a certificate; NULL when no
 * rule maps it. */
static const char *tls_principal(breq *r, net_conn *c)
{
    const char *subject = c ? net_conn_tls_subject(c) : NULL;
    if (!subject)
        return BROKER_PRINCIPAL_ANONYMOUS;
    char name[1024];
    if (!acl_ssl_rules_map(r->b->ssl_rules, subject, name, sizeof name))
        return NULL;
    size_t n = strlen(BROKER_USER_PREFIX) + strlen(name) + 1;
    char *p = arena_alloc(&r->arena, n);
    snprintf(p, n, "%s%s", BROKER_USER_PREFIX, name);
    return p;
}

void broker_authz_identify(breq *r, net_conn *c, const api_table *t)
{
    r->internal = t == &broker_controller_api;
    const char *sasl = broker_sasl_principal(r->via, c);
    r->principal = sasl ? sasl : tls_principal(r, c);
    peer_ip(c ? net_conn_peer(c) : "", r->host, sizeof r->host);
}

bool broker_authz_controller_admit(const breq *r)
{
    int16_t k = r->hdr.api_key;
    if (r->table != &broker_controller_api || !r->b->acl.enabled || !r->via ||
        r->via->cfg->protocol == CONFIG_PLAINTEXT || k == API_API_VERSIONS || k == API_SASL_HANDSHAKE ||
        k == API_SASL_AUTHENTICATE)
        return true;
    meta_image *img = meta_acquire(r->b->meta);
    acl_request q = {r->principal, r->host, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, ACL_CLUSTER_NAME,
                     strlen(ACL_CLUSTER_NAME)};
    bool ok = acl_authorize(img->acls, &r->b->acl, &q);
    meta_image_release(img);
    return ok;
}

bool broker_authz_on(const breq *r)
{
    return r->b->acl.enabled && !r->internal;
}

bool broker_allowed_in(const breq *r, const meta_image *img, int8_t op, int8_t type, const char *name, size_t len)
{
    if (!broker_authz_on(r))
        return true;
    acl_request q = {r->principal, r->host, op, type, name ? name : "", name ? len : 0};
    return acl_authorize(img->acls, &r->b->acl, &q);
}

bool broker_allowed(const breq *r, int8_t op, int8_t type, const char *name, size_t len)
{
    if (!broker_authz_on(r))
        return true;
    meta_image *img = meta_acquire(r->b->meta);
    bool ok = broker_allowed_in(r, img, op, type, name, len);
    meta_image_release(img);
    return ok;
}

bool broker_allowed_k(const breq *r, int8_t op, int8_t type, kstr_t name)
{
    return broker_allowed(r, op, type, name.ptr ? name.ptr : "", (size_t)MAX(name.len, 0));
}

bool broker_allowed_cluster(const breq *r, int8_t op)
{
    return broker_allowed(r, op, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, strlen(ACL_CLUSTER_NAME));
}

bool broker_allowed_cluster_action(const breq *r)
{
    if (!broker_authz_on(r))
        return true;
    meta_image *img = meta_acquire(r->b->meta);
    bool ok = broker_allowed_in(r, img, ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, ACL_CLUSTER_NAME,
                                strlen(ACL_CLUSTER_NAME));
    bool plaintext = !r->via || r->via->cfg->protocol == CONFIG_PLAINTEXT;
    const char *ib = meta_inter_broker_listener(r->b->meta);
    for (int32_t i = 0; !ok && plaintext && i < img->nbrokers; i++) {
        const meta_endpoint *e = meta_broker_endpoint(&img->brokers[i], ib);
        ok = e && strcmp(e->host, r->host) == 0;
    }
    meta_image_release(img);
    return ok;
}

bool broker_allowed_any(const breq *r, int8_t op, int8_t type)
{
    if (!broker_authz_on(r))
        return true;
    meta_image *img = meta_acquire(r->b->meta);
    acl_request q = {r->principal, r->host, op, type, "", 0};
    bool ok = acl_authorize_any(img->acls, &r->b->acl, &q);
    meta_image_release(img);
    return ok;
}

int16_t broker_topic_denied(const breq *r, const meta_image *img, int8_t op, kstr_t name)
{
    return broker_allowed_in(r, img, op, ACL_RES_TOPIC, name.ptr ? name.ptr : "", (size_t)MAX(name.len, 0))
               ? KERR_NONE
               : KERR_TOPIC_AUTHORIZATION_FAILED;
}

int16_t broker_group_denied(const breq *r, int8_t op, kstr_t group_id)
{
    return broker_allowed_k(r, op, ACL_RES_GROUP, group_id) ? KERR_NONE : KERR_GROUP_AUTHORIZATION_FAILED;
}

int16_t broker_txn_denied(const breq *r, kstr_t transactional_id)
{
    return broker_allowed_k(r, ACL_OP_WRITE, ACL_RES_TRANSACTIONAL_ID, transactional_id)
               ? KERR_NONE
               : KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
}

int16_t broker_cluster_denied(const breq *r, int8_t op)
{
    return broker_allowed_cluster(r, op) ? KERR_NONE : KERR_CLUSTER_AUTHORIZATION_FAILED;
}

int16_t broker_config_denied(const breq *r, const meta_image *img, int8_t op, int8_t resource_type, kstr_t name)
{
    enum { CONFIG_TOPIC = 2, CONFIG_BROKER = 4, CONFIG_BROKER_LOGGER = 8 }; /* ConfigResource types */
    if (resource_type == CONFIG_TOPIC)
        return broker_topic_denied(r, img, op, name);
    if (resource_type == CONFIG_BROKER || resource_type == CONFIG_BROKER_LOGGER)
        return broker_allowed_in(r, img, op, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, strlen(ACL_CLUSTER_NAME))
                   ? KERR_NONE
                   : KERR_CLUSTER_AUTHORIZATION_FAILED;
    return KERR_NONE;
}

/* Kafka's rule for creating a topic: CREATE on the cluster, or on the topic. */
bool broker_may_create_topic(const breq *r, const meta_image *img, kstr_t name)
{
    if (!broker_authz_on(r))
        return true;
    return broker_allowed_in(r, img, ACL_OP_CREATE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME, strlen(ACL_CLUSTER_NAME)) ||
           broker_topic_denied(r, img, ACL_OP_CREATE, name) == KERR_NONE;
}
