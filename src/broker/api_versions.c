/* api_versions.c - ApiVersions (key 18) v0-v3: the APIs the listener the
 * request came in on implements (its dispatch table), each with the version
 * range its handler supports clamped to the schema's valid versions.
 * Nothing is advertised that has no handler. */
#include "broker/broker_int.h"

breq_rc api_versions(breq *r)
{
    ApiVersionsResponse *resp = r->resp;
    size_t n = r->table->count;
    const api_handler *h = r->table->handlers;
    resp->ApiKeys.items = arena_alloc(&r->arena, n * sizeof *resp->ApiKeys.items);
    resp->ApiKeys.count = 0;
    for (size_t i = 0; i < n; i++) {
        const proto_api_desc *api = proto_api(h[i].api_key);
        int16_t lo = h[i].min_version > api->min_version ? h[i].min_version : api->min_version;
        int16_t hi = h[i].max_version < api->max_version ? h[i].max_version : api->max_version;
        if (lo > hi)
            continue;
        ApiVersionsResponse_ApiVersion *v = &resp->ApiKeys.items[resp->ApiKeys.count++];
        v->ApiKey = h[i].api_key;
        v->MinVersion = lo;
        v->MaxVersion = hi;
    }
    resp->ErrorCode = KERR_NONE;
    resp->ThrottleTimeMs = 0;
    return BREQ_DONE;
}
