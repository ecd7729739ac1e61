/* api_list_transactions.c - ListTransactions (key 66) v0-v1: the
 * transactional ids this node coordinates, filtered by state names, by
 * producer ids and (v1) by running longer than DurationFilter ms. State
 * filters that name no state are returned in UnknownStateFilters. Only ids
 * the caller may DESCRIBE are listed. */
#include <string.h>

#include "broker/broker_int.h"

typedef ListTransactionsResponse_TransactionState txn_out;

typedef struct list_ctx {
    breq *r;
    const meta_image *img;     /* the ACLs to filter with */
    bool states[TCOORD_STATE_COUNT];
    bool any_state;            /* no state filter */
    int64_t now_ms;
    txn_out *out;
    int32_t n, cap;
} list_ctx;

static bool pid_wanted(const ListTransactionsRequest *req, int64_t pid)
{
    if (req->ProducerIdFilters.count <= 0)
        return true;
    for (int32_t i = 0; i < req->ProducerIdFilters.count; i++)
        if (req->ProducerIdFilters.items[i] == pid)
            return true;
    return false;
}

static bool wanted(const list_ctx *l, const tcoord_txn *t)
{
    const ListTransactionsRequest *req = l->r->req;
    if (t->m.producer_id < 0 || (!l->any_state && !l->states[t->m.state]) || !pid_wanted(req, t->m.producer_id))
        return false;
    if (!broker_allowed_in(l->r, l->img, ACL_OP_DESCRIBE, ACL_RES_TRANSACTIONAL_ID, t->id, strlen(t->id)))
        return false;
    if (l->r->hdr.api_version >= 1 && req->DurationFilter >= 0)
        return t->m.start_ms >= 0 && l->now_ms - t->m.start_ms > req->DurationFilter;
    return true;
}

/* Under the coordinator lock. */
static void add(void *arg, const tcoord_txn *t)
{
    list_ctx *l = arg;
    if (!wanted(l, t))
        return;
    if (l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 16;
        txn_out *o = breq_items(l->r, &ListTransactionsResponse_TransactionState_desc, cap);
        if (l->n > 0)
            memcpy(o, l->out, (size_t)l->n * sizeof *o);
        l->out = o;
        l->cap = cap;
    }
    txn_out *o = &l->out[l->n++];
    o->TransactionalId = kstr_from(arena_strndup(&l->r->arena, t->id, strlen(t->id)));
    o->ProducerId = t->m.producer_id;
    o->TransactionState = kstr_from(tcoord_state_name(t->m.state));
}

breq_rc api_list_transactions(breq *r)
{
    const ListTransactionsRequest *req = r->req;
    ListTransactionsResponse *resp = r->resp;
    list_ctx l = {.r = r, .any_state = req->StateFilters.count <= 0, .now_ms = clock_wall_ms()};
    int32_t nf = MAX(req->StateFilters.count, 0), unknown = 0;
    kstr_t *unk = arena_alloc(&r->arena, (size_t)MAX(nf, 1) * sizeof *unk);
    for (int32_t i = 0; i < nf; i++) {
        kstr_t s = req->StateFilters.items[i];
        tcoord_state st;
        if (s.len >= 0 && tcoord_state_parse(s.ptr ? s.ptr : "", (size_t)s.len, &st))
            l.states[st] = true;
        else
            unk[unknown++] = s;
    }
    resp->UnknownStateFilters = (kstr_array_t){unknown, unk};
    meta_image *img = meta_acquire(r->b->meta);
    l.img = img;
    tcoord_each(r->b->txns, add, &l);
    meta_image_release(img);
    resp->TransactionStates = (ListTransactionsResponse_TransactionState_array){l.n, l.out};
    return BREQ_DONE;
}
