/*
 * auth.c - the client's SASL login (kclient.h, Security): after
 * ApiVersions, SaslHandshake v1 names the mechanism and SaslAuthenticate
 * (v2, else the peer's highest) carries the tokens src/sasl makes:
 *
 *   PLAIN          one round: "\0USER\0PASSWORD"
 *   SCRAM-SHA-*    client-first -> server-first; client-final -> server-final
 *                  (the server's signature is checked before the login counts)
 *
 * The login runs as internal requests on the connection, between the
 * handshake and READY (state LOGIN), so queued requests wait for it. A
 * server that gives the session a lifetime is logged into again on the
 * same connection at 85-95% of it (KIP-368), the connection staying READY
 * meanwhile; as Kafka's clients do, no new request is sent until that login
 * is done (a server answers in order, so the login's answers would
 * otherwise wait behind long polls sent after it). Any failure is logged with the user, mechanism and reason
 * (never the password or a proof; rate-limited, as every attempt fails
 * alike) and drops the connection with EACCES,
 * which backs off like a failed connect.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "kclient/kclient_int.h"
#include "proto/kerr.h"

#define AUTH_TOKEN_MAX (2 * SASL_MSG_MAX)
#define AUTH_VERSION_MAX 2

static void on_authenticate(void *arg, int err, const void *response, kclient_resp_t *resp);

bool auth_wanted(const kclient_t *k)
{
    return k->cfg.security && k->cfg.security->sasl_mech != SASL_MECH_UNKNOWN;
}

static const char *mech_name(const kclient_t *k) { return sasl_mech_name(k->cfg.security->sasl_mech); }

static void auth_fail(kclient_t *k, const char *why, kstr_t detail)
{
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS); /* every attempt fails alike */
    log_warn_limited(&rl, "kclient", "SASL login failed addr=%s user=\"%s\" mechanism=%s reason=\"%s%s%.*s\"", k->addr,
             k->cfg.security->user, mech_name(k), why, detail.len > 0 ? ": " : "", (int)MAX(detail.len, 0),
             detail.len > 0 ? detail.ptr : "");
    OPENSSL_cleanse(&k->scram, sizeof k->scram);
    if (k->conn != NULL)
        conn_drop(k, EACCES);
}

/* Is this callback still about the login under way? */
static bool current(const kclient_t *k, int err)
{
    if (err == KCLIENT_ERR_DISCONNECTED || err == KCLIENT_ERR_CLOSED || k->conn == NULL)
        return false; /* the connection is gone already */
    return k->relogin ? k->state == KS_READY : k->state == KS_LOGIN;
}

/* A response to the login under way (false: stale, or failed and handled). */
static bool answered(kclient_t *k, int err, const char *api)
{
    if (!current(k, err))
        return false;
    if (err == KCLIENT_OK)
        return true;
    char why[64];
    snprintf(why, sizeof why, "no answer to %s", api);
    auth_fail(k, why, kstr_from(kclient_strerror(err)));
    return false;
}

static void send_token(kclient_t *k, const void *token, size_t len)
{
    int16_t v = MIN(kclient_api_version(k, PROTO_API_SASL_AUTHENTICATE), (int16_t)AUTH_VERSION_MAX);
    if (v < 0) {
        auth_fail(k, "the peer does not serve SaslAuthenticate", (kstr_t){NULL, -1});
        return;
    }
    SaslAuthenticateRequest req = {.AuthBytes = {token, (int32_t)len}};
    conn_send_internal(k, PROTO_API_SASL_AUTHENTICATE, v, &SaslAuthenticateRequest_desc, &req, false,
                       on_authenticate);
}

static void send_first_token(kclient_t *k)
{
    const kclient_security *sec = k->cfg.security;
    uint8_t tok[AUTH_TOKEN_MAX];
    size_t n;
    if (sec->sasl_mech == SASL_PLAIN) {
        n = sasl_plain_token(sec->user, sec->password, tok, sizeof tok);
    } else {
        uint8_t rnd[24];
        char nonce[48];
        CK_ASSERT(RAND_bytes(rnd, sizeof rnd) == 1);
        sasl_b64_encode(rnd, sizeof rnd, nonce, sizeof nonce);
        n = sasl_scram_client_first(&k->scram, sec->sasl_mech, sec->user, nonce, (char *)tok, sizeof tok);
    }
    if (n == 0) {
        auth_fail(k, "the user name or password is empty or too long", (kstr_t){NULL, -1});
        return;
    }
    send_token(k, tok, n);
    OPENSSL_cleanse(tok, sizeof tok);
}

static void on_handshake(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    kclient_t *k = arg;
    UNUSED(resp);
    if (!answered(k, err, "SaslHandshake"))
        return;
    const SaslHandshakeResponse *r = response;
    if (r->ErrorCode != KERR_NONE) {
        char enabled[256] = "";
        for (int32_t i = 0; i < r->Mechanisms.count; i++)
            snprintf(enabled + strlen(enabled), sizeof enabled - strlen(enabled), "%s%.*s", i ? "," : "",
                     (int)MAX(r->Mechanisms.items[i].len, 0), r->Mechanisms.items[i].ptr);
        auth_fail(k, "the peer does not enable the mechanism; it enables", kstr_from(enabled));
        return;
    }
    send_first_token(k);
}

static void reauth_fired(void *arg)
{
    kclient_t *k = arg;
    if (k->state == KS_READY && k->conn != NULL)
        auth_start(k, true);
}

/* Logged in: READY (or still READY), and the next login before the session ends. */
static void auth_done(kclient_t *k, int64_t lifetime_ms)
{
    OPENSSL_cleanse(&k->scram, sizeof k->scram);
    if (lifetime_ms > 0) {
        uint64_t pct = 85 + (uint64_t)clock_mono_ns() % 11;
        net_timer_add(k->r, &k->reauth_timer, MAX((uint64_t)lifetime_ms * pct / 100, 1u), reauth_fired, k);
    }
    if (k->relogin) {
        log_debug("kclient", "SASL re-authenticated addr=%s user=%s", k->addr, k->cfg.security->user);
        k->relogin = false;
        req_pump(k);
        return;
    }
    log_debug("kclient", "SASL login addr=%s user=%s mechanism=%s", k->addr, k->cfg.security->user, mech_name(k));
    conn_ready(k);
}

static void on_authenticate(void *arg, int err, const void *response, kclient_resp_t *resp)
{
    kclient_t *k = arg;
    UNUSED(resp);
    if (!answered(k, err, "SaslAuthenticate"))
        return;
    const SaslAuthenticateResponse *r = response;
    if (r->ErrorCode != KERR_NONE) {
        auth_fail(k, "the peer refused the login", r->ErrorMessage);
        return;
    }
    const uint8_t *in = r->AuthBytes.ptr;
    size_t n = (size_t)MAX(r->AuthBytes.len, 0);
    const char *why = NULL;
    if (k->cfg.security->sasl_mech != SASL_PLAIN && k->scram.state == SASL_CLIENT_SENT_FIRST) {
        char out[AUTH_TOKEN_MAX];
        size_t len = 0;
        why = sasl_scram_client_final(&k->scram, k->cfg.security->password, in, n, out, sizeof out, &len);
        if (!why)
            send_token(k, out, len);
        OPENSSL_cleanse(out, sizeof out);
        if (!why)
            return;
    } else if (k->cfg.security->sasl_mech != SASL_PLAIN) {
        why = sasl_scram_client_verify(&k->scram, in, n);
    }
    if (why) {
        auth_fail(k, why, (kstr_t){NULL, -1});
        return;
    }
    auth_done(k, r->SessionLifetimeMs);
}

void auth_start(kclient_t *k, bool relogin)
{
    k->relogin = relogin;
    if (kclient_api_version(k, PROTO_API_SASL_HANDSHAKE) < 1) {
        auth_fail(k, "the peer does not serve SaslHandshake v1 (is its listener SASL?)", (kstr_t){NULL, -1});
        return;
    }
    SaslHandshakeRequest req = {.Mechanism = kstr_from(mech_name(k))};
    conn_send_internal(k, PROTO_API_SASL_HANDSHAKE, 1, &SaslHandshakeRequest_desc, &req, false, on_handshake);
}
