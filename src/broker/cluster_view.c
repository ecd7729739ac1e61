/* cluster_view.c - the brokers and the controller that clients are told of
 * (Metadata, DescribeCluster, FindCoordinator): the image's registered,
 * unfenced brokers with their advertised PLAINTEXT listeners, and the quorum
 * leader as controller. Before any live broker is registered (a fresh
 * node's first instants) this node alone, as configured. */
#include <string.h>

#include "broker/broker_int.h"

int32_t broker_view_list(breq *r, const meta_image *img, broker_view **out)
{
    int32_t n = 0, pos = 0;
    while (meta_image_next_live(img, &pos))
        n++;
    broker_view *v = arena_alloc(&r->arena, (size_t)(n > 0 ? n : 1) * sizeof *v);
    if (n == 0) {
        const config *c = &r->b->cfg;
        v[0] = (broker_view){c->node_id, arena_strndup(&r->arena, c->advertise.host, strlen(c->advertise.host)),
                             c->advertise.port, NULL};
        *out = v;
        return 1;
    }
    pos = 0;
    for (int32_t i = 0; i < n; i++) {
        const meta_broker *b = meta_image_next_live(img, &pos);
        v[i] = (broker_view){b->id, arena_strndup(&r->arena, b->host, strlen(b->host)), b->port,
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
