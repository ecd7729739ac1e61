/* cluster_view.c - the brokers and the controller that clients are told of
 * (Metadata, DescribeCluster, FindCoordinator): the image's registered,
 * unfenced brokers, each with its endpoint for the listener the client
 * connected on (every broker registers all its client listeners), and the
 * quorum leader as controller. As in Kafka (KIP-103), a broker without an
 * endpoint for that listener is left out of the list. This node is given
 * as the advertised address of the client's listener from its own
 * configuration. Before any live broker is registered (a fresh node's first
 * instants) this node alone, as configured. */
#include <string.h>

#include "broker/broker_int.h"

void broker_view_self(const breq *r, const char **host, int32_t *port)
{
    const config_addr *a = r->listener ? &r->listener->cfg->advertise : &r->b->cfg.advertise;
    *host = a->host;
    *port = a->port;
}

const char *broker_view_listener(const breq *r)
{
    return r->listener ? r->listener->cfg->name : r->b->cfg.listeners[r->b->cfg.inter_broker].name;
}

bool broker_view_addr(const breq *r, const meta_broker *mb, const char **host, int32_t *port)
{
    if (mb->id == r->b->cfg.node_id) {
        broker_view_self(r, host, port);
        return true;
    }
    const meta_endpoint *e = meta_broker_endpoint(mb, broker_view_listener(r));
    if (!e)
        return false;
    *host = e->host;
    *port = e->port;
    return true;
}

static char *dup_or_null(breq *r, const char *s)
{
    return s ? arena_strndup(&r->arena, s, strlen(s)) : NULL;
}

int32_t broker_view_list(breq *r, const meta_image *img, broker_view **out)
{
    int32_t nlive = 0, pos = 0;
    while (meta_image_next_live(img, &pos))
        nlive++;
    broker_view *v = arena_alloc(&r->arena, (size_t)(nlive > 0 ? nlive : 1) * sizeof *v);
    const char *host;
    int32_t port, n = 0;
    if (nlive == 0) {
        broker_view_self(r, &host, &port);
        v[0] = (broker_view){r->b->cfg.node_id, dup_or_null(r, host), port, NULL};
        *out = v;
        return 1;
    }
    pos = 0;
    for (const meta_broker *b; (b = meta_image_next_live(img, &pos)) != NULL;)
        if (broker_view_addr(r, b, &host, &port))
            v[n++] = (broker_view){b->id, dup_or_null(r, host), port, dup_or_null(r, b->rack)};
    *out = v;
    return n;
}

int32_t broker_view_controller(const broker *b)
{
    int32_t id = meta_controller_id(b->meta);
    return id >= 0 ? id : b->cfg.node_id;
}
