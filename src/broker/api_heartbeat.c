/* api_heartbeat.c - Heartbeat (key 12) v0-v4: a member of the current
 * generation keeps its session alive and learns of a rebalance
 * (REBALANCE_IN_PROGRESS). */
#include "broker/broker_int.h"

breq_rc api_heartbeat(breq *r)
{
    const HeartbeatRequest *req = r->req;
    HeartbeatResponse *resp = r->resp;
    if (req->GroupId.len <= 0) {
        resp->ErrorCode = KERR_INVALID_GROUP_ID;
        return BREQ_DONE;
    }
    if ((resp->ErrorCode = broker_group_denied(r, ACL_OP_READ, req->GroupId)) != KERR_NONE)
        return BREQ_DONE;
    const char *instance_id = req->GroupInstanceId.len > 0 ? breq_strdup(r, req->GroupInstanceId) : NULL;
    resp->ErrorCode = group_coord_heartbeat(r->b->groups, breq_strdup(r, req->GroupId), breq_strdup(r, req->MemberId),
                                            instance_id, req->GenerationId);
    return BREQ_DONE;
}
