/*
 * api.c - API and record lookups, request/response headers.
 *
 * Header versions (the header itself is in the RequestHeader/ResponseHeader
 * schemas and goes through the generic codec):
 *   request  v0  api key, api version, correlation id (ControlledShutdown v0)
 *            v1  + client id as a classic nullable int16 string
 *            v2  + tagged fields (client id stays classic: flexibleVersions none)
 *            v2 when the request version is flexible, else v1.
 *   response v0  correlation id
 *            v1  + tagged fields, when the response version is flexible,
 *            except ApiVersions, always v0 so any client can read it.
 */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "proto/proto.h"

const proto_api_desc *proto_api(int16_t api_key)
{
    if (api_key < 0 || api_key >= PROTO_API_KEY_LIMIT)
        return NULL;
    return proto_api_by_key[api_key];
}

bool proto_request_flexible(int16_t api_key, int16_t version)
{
    const proto_api_desc *api = proto_api(api_key);
    return api && api->flexible_min >= 0 && version >= api->flexible_min;
}

bool proto_response_flexible(int16_t api_key, int16_t version)
{
    const proto_api_desc *api = proto_api(api_key);
    return api && api->resp_flexible_min >= 0 && version >= api->resp_flexible_min;
}

int16_t proto_request_header_version(int16_t api_key, int16_t version)
{
    if (!proto_api(api_key))
        return -1;
    if (api_key == PROTO_API_CONTROLLED_SHUTDOWN && version == 0)
        return 0;
    return proto_request_flexible(api_key, version) ? 2 : 1;
}

int16_t proto_response_header_version(int16_t api_key, int16_t version)
{
    if (!proto_api(api_key))
        return -1;
    if (api_key == PROTO_API_API_VERSIONS)
        return 0;
    return proto_response_flexible(api_key, version) ? 1 : 0;
}

static int header_fail(proto_err_t *err, int16_t version, size_t at, const char *reason)
{
    memset(err, 0, sizeof *err);
    err->api_key = -1;
    err->version = version;
    err->msg_name = RequestHeader_desc.name;
    err->offset = at;
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    return -1;
}

int proto_request_header_decode(rd_t *r, arena_t *a, proto_req_header_t *h, proto_err_t *err)
{
    CK_ASSERT(r && a && h && err);
    memset(h, 0, sizeof *h);
    h->client_id = KSTR_NULL;
    h->header_version = -1;
    size_t at = rd_offset(r);
    if (rd_left(r) < 4)
        return header_fail(err, 0, at, "truncated request header");
    h->api_key = (int16_t)be16_load(r->p);
    h->api_version = (int16_t)be16_load(r->p + 2);
    if (rd_left(r) >= 8)
        h->correlation_id = (int32_t)be32_load(r->p + 4);
    h->api = proto_api(h->api_key);
    if (!h->api) {
        char reason[64];
        snprintf(reason, sizeof reason, "unknown api key %d", h->api_key);
        header_fail(err, h->api_version, at, reason);
        err->api_key = h->api_key;
        return -1;
    }
    h->header_version = proto_request_header_version(h->api_key, h->api_version);
    RequestHeader rh;
    if (proto_decode(&RequestHeader_desc, h->header_version, h->header_version >= 2, r, a, &rh,
                     err) < 0)
        return -1;
    h->correlation_id = rh.CorrelationId;
    h->client_id = h->header_version >= 1 ? rh.ClientId : KSTR_NULL;
    h->flexible = proto_request_flexible(h->api_key, h->api_version);
    h->version_ok = proto_api_version_ok(h->api, h->api_version);
    return 0;
}

void proto_request_header_encode(const proto_req_header_t *h, buf_t *w)
{
    int16_t hv = proto_request_header_version(h->api_key, h->api_version);
    CK_ASSERT(hv >= 0);
    RequestHeader rh;
    proto_set_defaults(&RequestHeader_desc, hv, &rh);
    rh.RequestApiKey = h->api_key;
    rh.RequestApiVersion = h->api_version;
    rh.CorrelationId = h->correlation_id;
    rh.ClientId = h->client_id;
    proto_encode(&RequestHeader_desc, hv, hv >= 2, &rh, w);
}

void proto_response_header_encode(int16_t api_key, int16_t api_version, int32_t correlation_id,
                                  buf_t *w)
{
    int16_t hv = proto_response_header_version(api_key, api_version);
    CK_ASSERT(hv >= 0);
    ResponseHeader rh;
    proto_set_defaults(&ResponseHeader_desc, hv, &rh);
    rh.CorrelationId = correlation_id;
    proto_encode(&ResponseHeader_desc, hv, hv >= 1, &rh, w);
}

int proto_response_header_decode(rd_t *r, arena_t *a, int16_t api_key, int16_t api_version,
                                 int32_t *correlation_id, proto_err_t *err)
{
    int16_t hv = proto_response_header_version(api_key, api_version);
    CK_ASSERT(hv >= 0);
    ResponseHeader rh;
    if (proto_decode(&ResponseHeader_desc, hv, hv >= 1, r, a, &rh, err) < 0)
        return -1;
    *correlation_id = rh.CorrelationId;
    return 0;
}

void proto_request_encode(int16_t api_key, int16_t api_version, int32_t correlation_id,
                          kstr_t client_id, const void *body, buf_t *w)
{
    const proto_api_desc *api = proto_api(api_key);
    CK_ASSERT(proto_api_version_ok(api, api_version));
    proto_req_header_t h = {.api_key = api_key, .api_version = api_version,
                            .correlation_id = correlation_id, .client_id = client_id};
    proto_request_header_encode(&h, w);
    proto_encode(api->request, api_version, proto_request_flexible(api_key, api_version), body, w);
}

void proto_response_encode_holes(int16_t api_key, int16_t api_version, int32_t correlation_id,
                                 const void *body, buf_t *w, proto_hole_fn hole, void *arg)
{
    const proto_api_desc *api = proto_api(api_key);
    CK_ASSERT(proto_api_version_ok(api, api_version));
    proto_response_header_encode(api_key, api_version, correlation_id, w);
    proto_encode_holes(api->response, api_version, proto_response_flexible(api_key, api_version),
                       body, w, hole, arg);
}

void proto_response_encode(int16_t api_key, int16_t api_version, int32_t correlation_id,
                           const void *body, buf_t *w)
{
    proto_response_encode_holes(api_key, api_version, correlation_id, body, w, NULL, NULL);
}

int proto_request_body_decode(const proto_req_header_t *h, rd_t *r, arena_t *a, void *out,
                              proto_err_t *err)
{
    CK_ASSERT(h->api);
    return proto_decode(h->api->request, h->api_version, h->flexible, r, a, out, err);
}

/* ---- records ------------------------------------------------------------- */
const proto_record_desc *proto_metadata_record(int16_t type)
{
    if (type < 0 || type >= PROTO_METADATA_TYPE_LIMIT)
        return NULL;
    return proto_metadata_by_type[type];
}

const proto_record_desc *proto_group_record(int16_t key_version)
{
    for (size_t i = 0; i < proto_record_table_count; i++) {
        const proto_record_desc *rd = &proto_record_table[i];
        if (rd->kind == PROTO_REC_GROUP && rd->value && key_version >= rd->min_version &&
            key_version <= rd->max_version)
            return rd;
    }
    return NULL;
}

const proto_record_desc *proto_record_by_name(const char *name)
{
    for (size_t i = 0; i < proto_record_table_count; i++)
        if (strcmp(proto_record_table[i].name, name) == 0)
            return &proto_record_table[i];
    return NULL;
}
