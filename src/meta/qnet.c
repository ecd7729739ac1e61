/*
 * qnet.c - the metadata quorum's messages on the network: the Kafka Raft
 * APIs between voters' controller listeners.
 *
 * Outbound. Each other voter has a kclient to its controller address
 * (controller.quorum.voters). A request the core sends (Vote,
 * BeginQuorumEpoch, EndQuorumEpoch, Fetch, FetchSnapshot) is encoded with
 * raft_wire_encode and sent raw; its response is decoded with
 * raft_wire_decode on the client's reactor and queued to the quorum thread
 * with from = that voter and corr = the request's. A failed or timed-out
 * request is dropped: the core's own timers retry.
 *
 * Changes forwarded to the leader (forward.c) take a second kclient per
 * voter, never the quorum's: a connection answers its requests in the order
 * they came, so a forwarded CreateTopics, which waits for its commit, would
 * hold back the Fetch sent after it on the same connection, while the commit
 * needs that Fetch. With two followers forwarding at once no fetch got
 * through until the followers' fetch timeout, and they deposed a healthy
 * leader.
 *
 * Inbound. The broker's controller listener decodes a request with the
 * generated codec and hands it here (qnet_request); it becomes a core
 * message with a corr this node assigns, and its reply callback waits in a
 * table until the core answers (a response message with that corr) or
 * QNET_REPLY_TIMEOUT_MS passes (the callback then gets NULL: the core
 * ignored a stale request).
 *
 * Threads: qnet_request and the kclient callbacks run on reactors; the
 * table and the quorum's queue have their own locks; qnet_send and
 * qnet_expire run on the quorum thread.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "meta/meta_int.h"
#include "raft/wire.h"

#define QNET_REQUEST_TIMEOUT_MS 5000
#define QNET_REPLY_TIMEOUT_MS 10000

typedef struct qpending {
    struct qpending *next;
    uint64_t corr;
    int32_t from;
    int64_t deadline_ms;
    qnet_reply_fn reply;
    void *arg;
} qpending_t;

typedef struct qpeer {
    int32_t id;
    char addr[300];
    kclient_t *client;  /* the quorum's own requests */
    kclient_t *forward; /* forwarded changes (qnet_client) */
} qpeer_t;

struct qnet {
    int32_t self;
    quorum_t *quorum;
    raft_wire_topic_t tp;
    qpeer_t peers[RAFT_VOTERS_MAX];
    int npeers;
    _Atomic bool connected;
    pthread_mutex_t mu;      /* pending, next_corr */
    qpending_t *pending;
    uint64_t next_corr;
};

const raft_wire_topic_t *qnet_topic(void)
{
    /* Kafka's fixed id of __cluster_metadata: 00000000-0000-0000-0000-000000000001 */
    static raft_wire_topic_t tp = {.name = META_TOPIC_NAME, .id = {.b = {[15] = 1}}, .partition = 0};
    return &tp;
}

void qnet_attach(qnet_t *t, quorum_t *q) { t->quorum = q; }

qnet_t *qnet_new(int32_t self, const qnet_peer_addr *peers, int n)
{
    qnet_t *t = xcalloc(1, sizeof *t);
    t->self = self;
    t->tp = *qnet_topic();
    CK_ASSERT(n <= RAFT_VOTERS_MAX);
    for (int i = 0; i < n; i++) {
        t->peers[i].id = peers[i].id;
        snprintf(t->peers[i].addr, sizeof t->peers[i].addr, "%s", peers[i].hostport);
    }
    t->npeers = n;
    t->next_corr = 1;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void qnet_connect(qnet_t *t, net_t *net, const kclient_security *sec)
{
    for (int i = 0; i < t->npeers; i++) {
        kclient_config kc = kclient_config_secure(sec);
        kc.client_id = "chronik-quorum";
        t->peers[i].client = kclient_new(net, NULL, t->peers[i].addr, &kc);
        kc.client_id = "chronik-forward";
        t->peers[i].forward = t->peers[i].client ? kclient_new(net, NULL, t->peers[i].addr, &kc) : NULL;
        if (!t->peers[i].client || !t->peers[i].forward)
            log_error("meta", "bad voter address voter=%" PRId32 " addr=%s", t->peers[i].id, t->peers[i].addr);
        CK_ASSERT(!t->peers[i].client || !t->peers[i].forward || t->peers[i].client != t->peers[i].forward);
    }
    atomic_store(&t->connected, true);
}

void qnet_free(qnet_t *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->npeers; i++) {
        kclient_free(t->peers[i].forward);
        kclient_free(t->peers[i].client);
    }
    while (t->pending) {
        qpending_t *p = t->pending;
        t->pending = p->next;
        p->reply(p->arg, NULL);
        free(p);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- outbound ------------------------------------------------------------------ */

typedef struct qsent {
    qnet_t *t;
    raft_msg_type_t type; /* the response's */
    int32_t from;
    uint64_t corr;
} qsent_t;

static void on_response(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    qsent_t *s = arg;
    UNUSED(response);
    log_debug("meta", "quorum response %s from=%" PRId32 " err=%s", raft_msg_type_name(s->type), s->from,
              kclient_err_name(err));
    if (err == KCLIENT_OK) {
        size_t len;
        const uint8_t *body = kclient_resp_body(resp, &len);
        raft_msg_t m;
        char why[RAFT_WIRE_WHY_MAX];
        if (raft_wire_decode(s->type, body, len, &s->t->tp, kclient_resp_arena(resp), &m, why, sizeof why) == 0) {
            m.from = s->from;
            m.to = s->t->self;
            m.corr = s->corr;
            kclient_resp_keep(resp);
            quorum_recv(s->t->quorum, &m, resp);
        } else {
            log_warn("meta", "undecodable quorum response from=%" PRId32 " why=\"%s\"", s->from, why);
        }
    }
    free(s);
}

static qpeer_t *peer(qnet_t *t, int32_t id)
{
    for (int i = 0; i < t->npeers; i++)
        if (t->peers[i].id == id)
            return &t->peers[i];
    return NULL;
}

static void send_request(qnet_t *t, const raft_msg_t *m)
{
    qpeer_t *p = peer(t, m->to);
    log_debug("meta", "quorum send %s to=%" PRId32 " corr=%llu", raft_msg_type_name(m->type), m->to,
              (unsigned long long)m->corr);
    if (!p || !p->client)
        return;
    raft_wire_api_t api = raft_wire_api(m->type);
    arena_t a;
    arena_init(&a);
    buf_t body;
    buf_init(&body);
    raft_wire_encode(m, &t->tp, &a, &body);
    qsent_t *s = xmalloc(sizeof *s);
    *s = (qsent_t){t, (raft_msg_type_t)(m->type + 1), m->to, m->corr};
    if (kclient_send_raw(p->client, api.api_key, api.version, body.data, body.len, QNET_REQUEST_TIMEOUT_MS,
                         on_response, s) != 0)
        free(s); /* queue full or closed: the core retries */
    buf_free(&body);
    arena_free(&a);
}

kclient_t *qnet_client(qnet_t *t, int32_t id)
{
    qpeer_t *p = atomic_load(&t->connected) ? peer(t, id) : NULL;
    return p ? p->forward : NULL;
}

/* ---- inbound --------------------------------------------------------------------- */

static void send_response(qnet_t *t, const raft_msg_t *m)
{
    pthread_mutex_lock(&t->mu);
    qpending_t *found = NULL;
    for (qpending_t **pp = &t->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->corr == m->corr) {
            found = *pp;
            *pp = found->next;
            break;
        }
    pthread_mutex_unlock(&t->mu);
    log_debug("meta", "quorum answer %s to=%" PRId32 " found=%d", raft_msg_type_name(m->type), m->to, found != NULL);
    if (!found)
        return; /* expired meanwhile */
    found->reply(found->arg, m);
    free(found);
}

void qnet_send(void *arg, const raft_msg_t *m)
{
    qnet_t *t = arg;
    bool request = m->type == RAFT_MSG_VOTE_REQ || m->type == RAFT_MSG_BEGIN_EPOCH_REQ ||
                   m->type == RAFT_MSG_END_EPOCH_REQ || m->type == RAFT_MSG_FETCH_REQ ||
                   m->type == RAFT_MSG_FETCH_SNAPSHOT_REQ;
    if (request) {
        if (atomic_load(&t->connected))
            send_request(t, m);
    } else {
        send_response(t, m);
    }
}

/* The sender of a request, as the Raft APIs name it. */
static int32_t request_sender(const raft_msg_t *m)
{
    switch (m->type) {
    case RAFT_MSG_VOTE_REQ:
        return m->u.vote_req.candidate_id;
    case RAFT_MSG_BEGIN_EPOCH_REQ:
        return m->u.begin_req.leader_id;
    case RAFT_MSG_END_EPOCH_REQ:
        return m->u.end_req.leader_id;
    case RAFT_MSG_FETCH_REQ:
        return m->u.fetch_req.replica_id;
    case RAFT_MSG_FETCH_SNAPSHOT_REQ:
        return m->u.snap_req.replica_id;
    default:
        return RAFT_NO_NODE;
    }
}

int qnet_request(qnet_t *t, raft_msg_type_t type, const uint8_t *body, size_t len, arena_t *a,
                 qnet_reply_fn reply, void *arg, const char **why)
{
    raft_msg_t m;
    static __thread char reason[RAFT_WIRE_WHY_MAX];
    if (raft_wire_decode(type, body, len, &t->tp, a, &m, reason, sizeof reason) != 0) {
        *why = reason;
        return -1;
    }
    log_debug("meta", "quorum request %s", raft_msg_type_name(type));
    m.from = request_sender(&m);
    m.to = t->self;
    if (m.from == RAFT_NO_NODE) {
        *why = "no sender id";
        return -1;
    }
    qpending_t *p = xcalloc(1, sizeof *p);
    p->from = m.from;
    p->deadline_ms = clock_mono_ms() + QNET_REPLY_TIMEOUT_MS;
    p->reply = reply;
    p->arg = arg;
    pthread_mutex_lock(&t->mu);
    p->corr = m.corr = t->next_corr++;
    p->next = t->pending;
    t->pending = p;
    pthread_mutex_unlock(&t->mu);
    quorum_recv(t->quorum, &m, NULL);
    return 0;
}

void qnet_expire(qnet_t *t, int64_t now_ms)
{
    qpending_t *expired = NULL;
    pthread_mutex_lock(&t->mu);
    for (qpending_t **pp = &t->pending; *pp;) {
        qpending_t *p = *pp;
        if (p->deadline_ms <= now_ms) {
            *pp = p->next;
            p->next = expired;
            expired = p;
        } else {
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&t->mu);
    while (expired) {
        qpending_t *p = expired;
        expired = p->next;
        p->reply(p->arg, NULL);
        free(p);
    }
}
