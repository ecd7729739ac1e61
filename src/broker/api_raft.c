/* api_raft.c - the Kafka Raft APIs on the controller listener: Vote (52),
 * BeginQuorumEpoch (53), EndQuorumEpoch (54), Fetch (1, the metadata log's
 * replication between voters) and FetchSnapshot (59). Each request is
 * handed to the metadata quorum (meta_raft_request) and parked until the
 * core answers; a request the core ignores (stale) gets no answer, as a
 * Kafka controller's would time out. A request that is not for
 * __cluster_metadata-0 closes the connection. */
#include "base/log.h"
#include "broker/broker_int.h"

static breq_rc raft_answered(breq *r)
{
    (void)r;
    return BREQ_DONE;
}

static breq_rc raft_unanswered(breq *r)
{
    (void)r;
    return BREQ_NO_RESPONSE;
}

/* From the quorum thread; r is parked until then. */
static void raft_reply(void *arg, const void *response)
{
    breq *r = arg;
    if (response) {
        r->resp = (void *)response; /* allocated in r's arena */
        breq_resume(r, raft_answered);
    } else {
        breq_resume(r, raft_unanswered);
    }
}

breq_rc api_raft(breq *r)
{
    const char *why = NULL;
    if (meta_raft_request(r->b->meta, r->hdr.api_key, r->body, r->body_len, &r->arena, raft_reply, r, &why) == 0)
        return BREQ_PARKED;
    log_warn("broker", "closing controller connection: Raft request refused api_key=%d peer=%s why=\"%s\"",
             r->hdr.api_key, net_conn_peer(net_req_conn(r->nreq)), why ? why : "?");
    net_req_close_conn(r->nreq); /* completes the request */
    breq_free(r);
    return BREQ_PARKED;          /* nothing left for the dispatcher to do */
}
