/* sasl.c - SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners:
 * each connection's state, the gate that keeps a connection to ApiVersions,
 * SaslHandshake and SaslAuthenticate until it has logged in, the steps of
 * PLAIN and SCRAM (src/sasl does the cryptography), and the delay before a
 * failed login is answered.
 *
 * State. A SASL listener's connections carry a broker_sasl_conn (the net
 * connection's user pointer, created in on_open and freed in on_close).
 * It is read and written on the connection's reactor thread only: frames
 * are decoded there, and SaslHandshake and SaslAuthenticate answer there
 * (a failure after a delay, on that reactor's timer). Its principal
 * ("User:NAME") is what broker_authz_identify gives each request once the
 * login succeeded; a re-authentication (KIP-368) must name the same user,
 * so the string never changes under a request still running elsewhere.
 *
 *   NEW --SaslHandshake--> HANDSHAKEN --SaslAuthenticate (PLAIN, or SCRAM's
 *   two rounds)--> AUTHENTICATED --SaslHandshake (re-authentication)-->
 *   HANDSHAKEN (still authenticated) ...; a failed step -> FAILED, and the
 *   connection's next request closes it.
 *
 * SaslHandshake v0 means the tokens that follow come as bare frames, not
 * inside SaslAuthenticate (Kafka's original framing): such a frame is taken
 * as a token and answered with a bare frame (broker_sasl_raw).
 *
 * Users. Both mechanisms check the SCRAM credentials of the metadata image
 * (UserScramCredentialRecord): SCRAM against the credential of its own
 * mechanism, PLAIN against the user's SCRAM-SHA-512 credential, else its
 * SCRAM-SHA-256 one (the password salted and iterated again must give its
 * StoredKey). A user without credentials cannot log in.
 *
 * Start-up users (sasl.scram.bootstrap.users, --add-scram, given alike on
 * every node) are also accepted from this node's own configuration while
 * the metadata image has no credential of that user and mechanism: the
 * nodes log in to each other's controller listeners before the metadata
 * log that will hold the credentials has replicated. Their credentials are
 * derived once at start (a random salt, 4096 iterations); once the image
 * has the user, the image alone decides (a changed password wins).
 *
 * Failed logins are answered SASL_AUTHENTICATION_FAILED with one generic
 * message whatever the reason (unknown user, wrong password, bad message);
 * the log says why, with the peer and user name, never a password or proof.
 * The answer waits connection.failed.authentication.delay.ms, doubled for
 * each further failure from the same address in the last minute (at most 32
 * times the delay): a table of SASL_FAIL_SLOTS addresses, the oldest reused.
 */
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "broker/broker_int.h"

#define SASL_FAIL_SLOTS 256
#define SASL_FAIL_WINDOW_MS 60000
#define SASL_FAIL_DOUBLINGS 5
#define SASL_GENERIC_FAILURE "Authentication failed: invalid user name or password"

enum { CONN_NEW = 0, CONN_HANDSHAKEN, CONN_AUTHENTICATED, CONN_FAILED };

typedef struct broker_sasl_conn {
    int state;
    int mech;                   /* chosen by SaslHandshake */
    bool raw;                   /* SaslHandshake v0: tokens come as bare frames */
    bool authenticated;         /* once logged in (stays through re-authentication) */
    int64_t expires_ms;         /* session end (connections.max.reauth.ms); 0: never */
    sasl_scram scram;
    char principal[5 + SASL_NAME_MAX + 1];
} broker_sasl_conn;

bool broker_sasl_listener(const broker_listener *l)
{
    return l && (l->cfg->protocol == CONFIG_SASL_PLAINTEXT || l->cfg->protocol == CONFIG_SASL_SSL);
}

static void on_open(net_conn *c, void *ctx)
{
    UNUSED(ctx);
    net_conn_set_user(c, xcalloc(1, sizeof(broker_sasl_conn)));
}

static void on_close(net_conn *c, void *ctx)
{
    UNUSED(ctx);
    broker_sasl_conn *s = net_conn_user(c);
    if (s)
        OPENSSL_cleanse(s, sizeof *s);
    free(s);
    net_conn_set_user(c, NULL);
}

void broker_sasl_handler(net_handler *h)
{
    h->on_open = on_open;
    h->on_close = on_close;
}

static broker_sasl_conn *conn_state(const breq *r)
{
    return broker_sasl_listener(r->via) ? net_conn_user(net_req_conn(r->nreq)) : NULL;
}

const char *broker_sasl_principal(const broker_listener *l, net_conn *c)
{
    broker_sasl_conn *s = broker_sasl_listener(l) && c ? net_conn_user(c) : NULL;
    return s && s->authenticated ? s->principal : NULL;
}

bool broker_sasl_admit(const breq *r)
{
    broker_sasl_conn *s = conn_state(r);
    if (!s)
        return true;
    if (s->state == CONN_FAILED)
        return false;
    int16_t k = r->hdr.api_key;
    if (k == API_API_VERSIONS || k == API_SASL_HANDSHAKE || k == API_SASL_AUTHENTICATE)
        return true;
    if (!s->authenticated) /* logged in, or re-authenticating (requests go on meanwhile) */
        return false;
    if (s->expires_ms && clock_mono_ms() > s->expires_ms) {
        log_info("broker", "closing connection: SASL session expired peer=%s principal=%s",
                 net_conn_peer(net_req_conn(r->nreq)), s->principal);
        return false;
    }
    return true;
}

/* ---- failed logins: the delay per address ----------------------------------------- */

static struct {
    pthread_mutex_t mu;
    struct fail_slot {
        char ip[64];
        int32_t failures;
        int64_t last_ms;
    } slots[SASL_FAIL_SLOTS];
} fails = {PTHREAD_MUTEX_INITIALIZER};

/* Count a failure from ip; the delay before answering it. */
static int64_t failure_delay_ms(const char *ip, int64_t base_ms)
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&fails.mu);
    struct fail_slot *slot = &fails.slots[0];
    for (int i = 0; i < SASL_FAIL_SLOTS; i++) {
        struct fail_slot *x = &fails.slots[i];
        if (strcmp(x->ip, ip) == 0) {
            slot = x;
            break;
        }
        if (x->last_ms < slot->last_ms)
            slot = x;
    }
    if (strcmp(slot->ip, ip) != 0 || now - slot->last_ms > SASL_FAIL_WINDOW_MS) {
        snprintf(slot->ip, sizeof slot->ip, "%s", ip);
        slot->failures = 0;
    }
    slot->failures++;
    slot->last_ms = now;
    int32_t doublings = MIN(slot->failures - 1, SASL_FAIL_DOUBLINGS);
    pthread_mutex_unlock(&fails.mu);
    return base_ms << doublings;
}

/* ---- the steps --------------------------------------------------------------------- */

static void authenticated(breq *r, broker_sasl_conn *s, const char *name, const char **why)
{
    char principal[sizeof s->principal];
    snprintf(principal, sizeof principal, "User:%s", name);
    if (s->authenticated && strcmp(principal, s->principal) != 0) {
        *why = "re-authentication as another user";
        return;
    }
    memcpy(s->principal, principal, sizeof principal);
    s->authenticated = true;
    s->state = CONN_AUTHENTICATED;
    int64_t life = r->b->cfg.connections_max_reauth_ms;
    s->expires_ms = life > 0 ? clock_mono_ms() + life : 0;
    log_info("broker", "SASL login peer=%s principal=%s mechanism=%s", net_conn_peer(net_req_conn(r->nreq)),
             s->principal, sasl_mech_name(s->mech));
}

/* ---- start-up users from the local configuration ----------------------------------- */

#define SASL_LOCAL_MAX 32

struct sasl_local {
    int n;
    struct local_user {
        char name[SASL_NAME_MAX + 1];
        sasl_cred cred;
    } users[SASL_LOCAL_MAX];
};

void broker_sasl_local_init(broker *b)
{
    struct sasl_local *l = xcalloc(1, sizeof *l);
    char *copy = xstrdup(b->cfg.sasl_bootstrap_scram), *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok && l->n < SASL_LOCAL_MAX; tok = strtok_r(NULL, ";", &save)) {
        int mech;
        char pw[256];
        struct local_user *u = &l->users[l->n];
        if (broker_sasl_parse_bootstrap(tok, &mech, u->name, sizeof u->name, pw, sizeof pw) != 0)
            continue; /* reported by broker_sasl_bootstrap */
        uint8_t salt[16];
        CK_ASSERT(RAND_bytes(salt, sizeof salt) == 1);
        sasl_cred_make(&u->cred, mech, pw, salt, sizeof salt, SASL_SCRAM_ITERATIONS_MIN);
        OPENSSL_cleanse(pw, sizeof pw);
        l->n++;
    }
    OPENSSL_cleanse(copy, strlen(copy));
    free(copy);
    b->sasl_local = l;
}

void broker_sasl_local_free(broker *b)
{
    if (b->sasl_local)
        OPENSSL_cleanse(b->sasl_local, sizeof *b->sasl_local);
    free(b->sasl_local);
    b->sasl_local = NULL;
}

/* The image's credential of user for mech, else the start-up one. */
static const sasl_cred *find_cred(const broker *b, const meta_image *img, const char *user, int mech)
{
    const sasl_cred *c = meta_image_scram(img, user, mech);
    for (int i = 0; !c && b->sasl_local && i < b->sasl_local->n; i++)
        if (b->sasl_local->users[i].cred.mech == mech && strcmp(b->sasl_local->users[i].name, user) == 0)
            c = &b->sasl_local->users[i].cred;
    return c;
}

static const char *step_plain(breq *r, broker_sasl_conn *s, const uint8_t *p, size_t n, char *user, size_t ulen)
{
    sasl_plain pl;
    const char *why = sasl_parse_plain(p, n, &pl);
    if (why)
        return why;
    snprintf(user, ulen, "%.*s", (int)pl.name_len, pl.name);
    meta_image *img = meta_acquire(r->b->meta);
    const sasl_cred *c = find_cred(r->b, img, user, SASL_SCRAM_SHA_512);
    if (!c)
        c = find_cred(r->b, img, user, SASL_SCRAM_SHA_256);
    bool ok = c && sasl_cred_check_password(c, pl.password, pl.password_len);
    meta_image_release(img);
    if (!c)
        return "unknown user";
    if (!ok)
        return "invalid credentials";
    authenticated(r, s, user, &why);
    return why;
}

static const char *scram_challenge(breq *r, broker_sasl_conn *s, char *out, size_t cap, size_t *outlen)
{
    meta_image *img = meta_acquire(r->b->meta);
    const sasl_cred *c = find_cred(r->b, img, s->scram.name, s->mech);
    sasl_cred cred;
    if (c)
        cred = *c;
    meta_image_release(img);
    if (!c)
        return "unknown user";
    uint8_t rnd[18];
    char nonce[32];
    CK_ASSERT(RAND_bytes(rnd, sizeof rnd) == 1);
    sasl_b64_encode(rnd, sizeof rnd, nonce, sizeof nonce);
    *outlen = sasl_scram_challenge(&s->scram, &cred, nonce, out, cap);
    OPENSSL_cleanse(&cred, sizeof cred);
    return *outlen ? NULL : "SCRAM messages too long";
}

/* One token: NULL and the answer in out, or why the login failed. user
 * gets the name once known (for the log). */
static const char *step(breq *r, broker_sasl_conn *s, const uint8_t *p, size_t n, char *out, size_t cap,
                        size_t *outlen, char *user, size_t ulen)
{
    *outlen = 0;
    if (s->state != CONN_HANDSHAKEN)
        return "no SaslHandshake before the token";
    if (s->mech == SASL_PLAIN)
        return step_plain(r, s, p, n, user, ulen);
    if (s->scram.state == SASL_SCRAM_START) {
        const char *why = sasl_scram_first(&s->scram, s->mech, p, n);
        if (why)
            return why;
        snprintf(user, ulen, "%s", s->scram.name);
        return scram_challenge(r, s, out, cap, outlen);
    }
    snprintf(user, ulen, "%s", s->scram.name);
    const char *why = sasl_scram_final(&s->scram, p, n, out, cap);
    if (why)
        return why;
    *outlen = strlen(out);
    authenticated(r, s, s->scram.name, &why);
    return why;
}

static void log_failure(breq *r, broker_sasl_conn *s, const char *user, const char *why)
{
    log_warn("broker", "SASL login failed peer=%s user=\"%s\" mechanism=%s reason=\"%s\"",
             net_conn_peer(net_req_conn(r->nreq)), user, sasl_mech_name(s->mech), why);
    s->state = CONN_FAILED;
    s->authenticated = false;
}

/* ---- the handlers ------------------------------------------------------------------- */

breq_rc api_sasl_handshake(breq *r)
{
    const SaslHandshakeRequest *req = r->req;
    SaslHandshakeResponse *resp = r->resp;
    broker_sasl_conn *s = conn_state(r);
    int32_t enabled = r->b->cfg.sasl_mechanisms, n = 0;
    const int all[] = {SASL_PLAIN, SASL_SCRAM_SHA_256, SASL_SCRAM_SHA_512};
    resp->Mechanisms.items = arena_alloc(&r->arena, ARRAY_LEN(all) * sizeof(kstr_t));
    for (size_t i = 0; i < ARRAY_LEN(all); i++)
        if (enabled & (1 << (all[i] % 32)))
            resp->Mechanisms.items[n++] = kstr_from(sasl_mech_name(all[i]));
    resp->Mechanisms.count = n;
    if (!s || (s->state != CONN_NEW && s->state != CONN_AUTHENTICATED)) {
        resp->ErrorCode = KERR_ILLEGAL_SASL_STATE;
        return BREQ_DONE;
    }
    int mech = sasl_mech_from_name(req->Mechanism.ptr ? req->Mechanism.ptr : "", (size_t)MAX(req->Mechanism.len, 0));
    if (mech == SASL_MECH_UNKNOWN || !(enabled & (1 << (mech % 32)))) {
        resp->ErrorCode = KERR_UNSUPPORTED_SASL_MECHANISM;
        return BREQ_DONE;
    }
    s->mech = mech;
    s->state = CONN_HANDSHAKEN;
    s->raw = r->hdr.api_version == 0;
    memset(&s->scram, 0, sizeof s->scram);
    return BREQ_DONE;
}

/* A failed login's answer, held back for the address's delay. */
typedef struct sasl_delay {
    parked park; /* first: the broker's list of parked requests */
    _Atomic int refs;
    bool done;
    breq *r;
    net_reactor *reactor;
    net_timer timer;
} sasl_delay;

static void delay_unref(sasl_delay *d)
{
    if (atomic_fetch_sub(&d->refs, 1) == 1)
        free(d);
}

/* Once: answer, and drop the reference the pending answer held. The timer
 * is cancelled on the reactor (on_reactor), or its reactor has ended. */
static void delay_answer(sasl_delay *d, bool on_reactor)
{
    if (d->done)
        return;
    d->done = true;
    if (on_reactor)
        net_timer_cancel(&d->timer);
    broker_unpark(d->r->b, &d->park);
    breq_finish(d->r);
    delay_unref(d);
}

static void delay_timeout(void *arg)
{
    delay_answer(arg, true);
}

static void delay_posted(void *arg)
{
    delay_answer(arg, true);
    delay_unref(arg);
}

/* A stop was requested: answer now, on the reactor. */
static void delay_expire(parked *p)
{
    sasl_delay *d = (sasl_delay *)p;
    atomic_fetch_add(&d->refs, 1);
    if (!net_post(d->reactor, delay_posted, d))
        atomic_fetch_sub(&d->refs, 1);
}

/* The reactors have ended: answer (the reply is dropped). */
static void delay_cancel(parked *p)
{
    delay_answer((sasl_delay *)p, false);
}

static breq_rc answer_failure(breq *r, broker_sasl_conn *s, const char *user, const char *why)
{
    SaslAuthenticateResponse *resp = r->resp;
    log_failure(r, s, user, why);
    resp->ErrorCode = KERR_SASL_AUTHENTICATION_FAILED;
    resp->ErrorMessage = kstr_from(SASL_GENERIC_FAILURE);
    int64_t ms = failure_delay_ms(r->host, r->b->cfg.failed_auth_delay_ms);
    net_reactor *reactor = net_current_reactor();
    if (ms <= 0 || !reactor)
        return BREQ_DONE;
    sasl_delay *d = xcalloc(1, sizeof *d);
    atomic_store(&d->refs, 1);
    d->r = r;
    d->reactor = reactor;
    net_timer_init(&d->timer);
    d->park.expire = delay_expire;
    d->park.cancel = delay_cancel;
    broker_park(r->b, &d->park);
    net_timer_add(reactor, &d->timer, (uint64_t)ms, delay_timeout, d);
    return BREQ_PARKED;
}

breq_rc api_sasl_authenticate(breq *r)
{
    const SaslAuthenticateRequest *req = r->req;
    SaslAuthenticateResponse *resp = r->resp;
    broker_sasl_conn *s = conn_state(r);
    if (!s || s->state != CONN_HANDSHAKEN || s->raw) {
        resp->ErrorCode = KERR_ILLEGAL_SASL_STATE;
        resp->ErrorMessage = kstr_from("SaslAuthenticate needs a SaslHandshake v1 first on a SASL listener");
        if (s)
            s->state = CONN_FAILED;
        return BREQ_DONE;
    }
    char out[SASL_MSG_MAX], user[SASL_NAME_MAX + 1] = "";
    size_t outlen = 0;
    const char *why = step(r, s, req->AuthBytes.ptr ? req->AuthBytes.ptr : (const uint8_t *)"",
                           (size_t)MAX(req->AuthBytes.len, 0), out, sizeof out, &outlen, user, sizeof user);
    if (why)
        return answer_failure(r, s, user, why);
    uint8_t *copy = arena_alloc(&r->arena, outlen + 1);
    memcpy(copy, out, outlen);
    resp->AuthBytes = (kbytes_t){copy, (int32_t)outlen};
    if (s->state == CONN_AUTHENTICATED)
        resp->SessionLifetimeMs = r->b->cfg.connections_max_reauth_ms;
    return BREQ_DONE;
}

bool broker_sasl_raw(breq *r, const uint8_t *frame, size_t len)
{
    broker_sasl_conn *s = conn_state(r);
    if (!s || !s->raw || s->state != CONN_HANDSHAKEN)
        return false;
    char out[SASL_MSG_MAX], user[SASL_NAME_MAX + 1] = "";
    size_t outlen = 0;
    const char *why = step(r, s, frame, len, out, sizeof out, &outlen, user, sizeof user);
    if (why) {
        log_failure(r, s, user, why);
        net_req_close_conn(r->nreq);
    } else {
        buf_t b;
        buf_init(&b);
        buf_put(&b, out, outlen);
        net_req_reply_buf(r->nreq, &b);
    }
    breq_free(r);
    return true;
}
