/* cluster_view.c - the brokers and the controller that clients are told of
 * (Metadata, DescribeCluster, FindCoordinator): the image's registered,
 * unfenced brokers with their advertised inter-broker listeners, and the
 * quorum leader as controller. This node is given as the advertised address
 * of the listener the client connected on, as Kafka does; other brokers
 * register one endpoint only, so a client on another listener name is told
 * their inter-broker address. Before any live broker is registered (a fresh
 * node's first instants) this node alone, as configured. */
#include <string.h>

#include "broker/broker_int.h"

void broker_view_self(const breq *r, const char **host, int32_t *port)
{
    const config_addr *a = r->listener ? &r->listener->cfg->advertise : &r->b->cfg.advertise;
    *host = a->host;
    *port = a->port;
}

int32_t broker_view_list(breq *r, const meta_image *img, broker_view **out)
{
    int32_t n = 0, pos = 0;
    while (meta_image_next_live(img, &pos))
        n++;
    broker_view *v = arena_alloc(&r->arena, (size_t)(n > 0 ? n : 1) * sizeof *v);
    const char *self_host;
    int32_t self_port;
    broker_view_self(r, &self_host, &self_port);
    if (n == 0) {
        v[0] = (broker_view){r->b->cfg.node_id, arena_strndup(&r->arena, self_host, strlen(self_host)), self_port,
                             NULL};
        *out = v;
        return 1;
    }
    pos = 0;
    for (int32_t i = 0; i < n; i++) {
        const meta_broker *b = meta_image_next_live(img, &pos);
        bool self = b->id == r->b->cfg.node_id;
        const char *host = self ? self_host : b->host;
        v[i] = (broker_view){b->id, arena_strndup(&r->arena, host, strlen(host)), self ? self_port : b->port,
                             b->rack ? arena_strndup(&r->arena, b->rack, strlen(b->rack)) : NULL};
    }
    *out = v;
    return n;
}

int32_t broker_view_controller(const broker *b)
{
    int32_t id = meta_controller_id(b->meta);
    return id >= 0 ? id : b->cfg.node_id;
}
