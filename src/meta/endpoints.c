/*
 * endpoints.c - the listeners a broker registers (its endpoints), as the
 * metadata image keeps them and as RegisterBrokerRecord carries them.
 *
 * A broker registers every client listener it has (controller listeners are
 * not client listeners): name, advertised host and port, and the security
 * protocol code. The image keeps them all, in the order registered; a
 * client is told each broker's endpoint for the listener it connected on,
 * and brokers dial each other on the inter-broker listener's endpoint
 * (meta_broker_addr, the one place a broker id becomes an address).
 *
 * In the record (RegisterBrokerRecord.EndPoints, keyed by Name) a name is
 * unique; a record that repeats a name keeps its first endpoint, as a map
 * would. Records written before brokers registered every listener carry a
 * single endpoint named PLAINTEXT: they replay as that one endpoint.
 *
 * A registration is refused (meta_endpoints_check) when it names no
 * listener, more than META_ENDPOINTS_MAX, an empty or overlong name, a
 * name twice, or an unknown security protocol.
 */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "meta/meta_int.h"
#include "proto/kerr.h"

meta_endpoint *meta_endpoints_dup(const meta_endpoint *e, int32_t n)
{
    meta_endpoint *d = xcalloc((size_t)(n > 0 ? n : 1), sizeof *d);
    for (int32_t i = 0; i < n; i++)
        d[i] = (meta_endpoint){xstrdup(e[i].name), xstrdup(e[i].host), e[i].port, e[i].protocol};
    return d;
}

void meta_endpoints_free(meta_endpoint *e, int32_t n)
{
    for (int32_t i = 0; e && i < n; i++) {
        free(e[i].name);
        free(e[i].host);
    }
    free(e);
}

bool meta_endpoints_equal(const meta_endpoint *a, int32_t na, const meta_endpoint *b, int32_t nb)
{
    if (na != nb)
        return false;
    for (int32_t i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) != 0 || strcmp(a[i].host, b[i].host) != 0 || a[i].port != b[i].port ||
            a[i].protocol != b[i].protocol)
            return false;
    return true;
}

static int32_t find(const meta_endpoint *e, int32_t n, const char *name, size_t len)
{
    for (int32_t i = 0; i < n; i++)
        if (strlen(e[i].name) == len && memcmp(e[i].name, name, len) == 0)
            return i;
    return -1;
}

int16_t meta_endpoints_check(const meta_endpoint *e, int32_t n, const char **msg)
{
    if (n <= 0)
        return *msg = "a broker registers at least one listener", KERR_INVALID_REQUEST;
    if (n > META_ENDPOINTS_MAX)
        return *msg = "too many listeners", KERR_INVALID_REQUEST;
    for (int32_t i = 0; i < n; i++) {
        size_t len = strlen(e[i].name);
        if (len == 0 || len > META_ENDPOINT_NAME_MAX)
            return *msg = "a listener name is empty or too long", KERR_INVALID_REQUEST;
        if (find(e, i, e[i].name, len) >= 0)
            return *msg = "a listener name is registered twice", KERR_INVALID_REQUEST;
        if (e[i].protocol < 0 || e[i].protocol > 3)
            return *msg = "unknown security protocol", KERR_INVALID_REQUEST;
    }
    return KERR_NONE;
}

const meta_endpoint *meta_broker_endpoint(const meta_broker *b, const char *listener)
{
    if (!b || !listener)
        return NULL;
    int32_t i = find(b->endpoints, b->nendpoints, listener, strlen(listener));
    return i >= 0 ? &b->endpoints[i] : NULL;
}

bool meta_broker_addr(const meta_image *img, int32_t id, const char *listener, char *out, size_t n)
{
    const meta_endpoint *e = meta_broker_endpoint(meta_image_broker(img, id), listener);
    if (!e || !e->host[0] || e->port == 0)
        return false;
    int w = snprintf(out, n, strchr(e->host, ':') ? "[%s]:%u" : "%s:%u", e->host, (unsigned)e->port);
    return w > 0 && (size_t)w < n;
}

meta_endpoint *meta_endpoints_from_record(const RegisterBrokerRecord *r, int32_t *n)
{
    int32_t cap = r->EndPoints.count > 0 ? r->EndPoints.count : 0;
    meta_endpoint *e = xcalloc((size_t)(cap > 0 ? cap : 1), sizeof *e);
    *n = 0;
    for (int32_t i = 0; i < cap; i++) {
        const RegisterBrokerRecord_BrokerEndpoint *x = &r->EndPoints.items[i];
        /* As C strings (a NUL inside ends them), so that a name is unique as kept. */
        char *name = xstrndup(x->Name.len > 0 ? x->Name.ptr : "", (size_t)MAX(x->Name.len, 0));
        if (find(e, *n, name, strlen(name)) >= 0) {
            free(name); /* a map: the first of a name stands */
            continue;
        }
        e[(*n)++] = (meta_endpoint){name, xstrndup(x->Host.len > 0 ? x->Host.ptr : "", (size_t)MAX(x->Host.len, 0)),
                                    x->Port, x->SecurityProtocol};
    }
    return e;
}

RegisterBrokerRecord_BrokerEndpoint_array meta_endpoints_to_record(const meta_endpoint *e, int32_t n,
                                                                   RegisterBrokerRecord_BrokerEndpoint *items)
{
    for (int32_t i = 0; i < n; i++)
        items[i] = (RegisterBrokerRecord_BrokerEndpoint){.Name = kstr_from(e[i].name),
                                                         .Host = kstr_from(e[i].host),
                                                         .Port = e[i].port,
                                                         .SecurityProtocol = e[i].protocol};
    return (RegisterBrokerRecord_BrokerEndpoint_array){n, items};
}
