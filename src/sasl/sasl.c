/* sasl.c - PLAIN and SCRAM-SHA-256/512: credentials, message parsers, and the
 * server and client sides of a SCRAM exchange (sasl.h has the formats). */
#include "sasl/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

static const char *const mech_names[] = {[SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
                                         [SASL_SCRAM_SHA_512] = "SCRAM-SHA-512"};

int sasl_mech_from_name(const char *name, size_t len)
{
    if (len == 5 && strncmp(name, "PLAIN", 5) == 0)
        return SASL_PLAIN;
    for (int m = SASL_SCRAM_SHA_256; m <= SASL_SCRAM_SHA_512; m++)
        if (len == strlen(mech_names[m]) && strncmp(name, mech_names[m], len) == 0)
            return m;
    return SASL_MECH_UNKNOWN;
}

const char *sasl_mech_name(int mech)
{
    if (mech == SASL_PLAIN)
        return "PLAIN";
    return mech == SASL_SCRAM_SHA_256 || mech == SASL_SCRAM_SHA_512 ? mech_names[mech] : "UNKNOWN";
}

size_t sasl_scram_key_len(int mech)
{
    return mech == SASL_SCRAM_SHA_256 ? 32 : mech == SASL_SCRAM_SHA_512 ? 64 : 0;
}

static const EVP_MD *md_of(int mech)
{
    CK_ASSERT(mech == SASL_SCRAM_SHA_256 || mech == SASL_SCRAM_SHA_512);
    return mech == SASL_SCRAM_SHA_256 ? EVP_sha256() : EVP_sha512();
}

/* ---- credentials ------------------------------------------------------------------- */

void sasl_scram_salt_password(int mech, const char *password, size_t len, const uint8_t *salt, size_t salt_len,
                              int32_t iterations, uint8_t *out)
{
    CK_ASSERT(iterations > 0 && len <= SASL_MSG_MAX);
    int ok = PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len, iterations, md_of(mech),
                               (int)sasl_scram_key_len(mech), out);
    CK_ASSERT(ok == 1);
}

static void hmac(int mech, const uint8_t *key, const void *msg, size_t len, uint8_t *out)
{
    unsigned int n = 0;
    CK_ASSERT(HMAC(md_of(mech), key, (int)sasl_scram_key_len(mech), msg, len, out, &n) != NULL);
    CK_ASSERT(n == sasl_scram_key_len(mech));
}

static void hash(int mech, const uint8_t *in, size_t len, uint8_t *out)
{
    unsigned int n = 0;
    CK_ASSERT(EVP_Digest(in, len, out, &n, md_of(mech), NULL) == 1);
}

void sasl_scram_keys(int mech, const uint8_t *salted, uint8_t *stored_key, uint8_t *server_key)
{
    uint8_t client_key[SASL_KEY_MAX];
    hmac(mech, salted, "Client Key", 10, client_key);
    hash(mech, client_key, sasl_scram_key_len(mech), stored_key);
    hmac(mech, salted, "Server Key", 10, server_key);
}

void sasl_cred_make(sasl_cred *c, int mech, const char *password, const uint8_t *salt, size_t salt_len,
                    int32_t iterations)
{
    CK_ASSERT(salt_len <= SASL_SALT_MAX);
    memset(c, 0, sizeof *c);
    c->mech = (int8_t)mech;
    c->iterations = iterations;
    memcpy(c->salt, salt, salt_len);
    c->salt_len = salt_len;
    uint8_t salted[SASL_KEY_MAX];
    sasl_scram_salt_password(mech, password, strlen(password), salt, salt_len, iterations, salted);
    sasl_scram_keys(mech, salted, c->stored_key, c->server_key);
}

bool sasl_cred_check_password(const sasl_cred *c, const char *password, size_t len)
{
    size_t n = sasl_scram_key_len(c->mech);
    if (n == 0 || c->iterations <= 0 || len > SASL_MSG_MAX)
        return false;
    uint8_t salted[SASL_KEY_MAX], stored[SASL_KEY_MAX], server[SASL_KEY_MAX];
    sasl_scram_salt_password(c->mech, password, len, c->salt, c->salt_len, c->iterations, salted);
    sasl_scram_keys(c->mech, salted, stored, server);
    return CRYPTO_memcmp(stored, c->stored_key, n) == 0;
}

/* ---- base64 ------------------------------------------------------------------------ */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(char ch)
{
    const char *p = ch ? strchr(b64chars, ch) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

int sasl_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4 != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            bool last = i + 4 == len;
            if (in[i + j] == '=' && last && j >= 2 && (j == 3 || in[i + 3] == '=')) {
                v[j] = 0, pad++;
                continue;
            }
            if (pad || (v[j] = b64_val(in[i + j])) < 0)
                return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t bytes[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        if (n + (size_t)(3 - pad) > cap)
            return -1;
        memcpy(out + n, bytes, (size_t)(3 - pad));
        n += (size_t)(3 - pad);
    }
    return (int)n;
}

size_t sasl_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    CK_ASSERT(cap >= (len + 2) / 3 * 4 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[n++] = b64chars[w >> 18 & 63];
        out[n++] = b64chars[w >> 12 & 63];
        out[n++] = i + 1 < len ? b64chars[w >> 6 & 63] : '=';
        out[n++] = i + 2 < len ? b64chars[w & 63] : '=';
    }
    out[n] = 0;
    return n;
}

/* ---- parsers ------------------------------------------------------------------------ */

const char *sasl_parse_plain(const uint8_t *msg, size_t len, sasl_plain *out)
{
    if (len > SASL_MSG_MAX)
        return "PLAIN message too long";
    const char *p = (const char *)msg, *end = p + len;
    const char *z1 = memchr(p, 0, len);
    const char *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
    if (!z2 || memchr(z2 + 1, 0, (size_t)(end - z2 - 1)))
        return "PLAIN message must be AUTHZID NUL NAME NUL PASSWORD";
    *out = (sasl_plain){z1 + 1, z2 + 1, (size_t)(z2 - z1 - 1), (size_t)(end - z2 - 1)};
    size_t authz_len = (size_t)(z1 - p);
    if (out->name_len == 0 || out->name_len > SASL_NAME_MAX)
        return "PLAIN user name empty or too long";
    if (authz_len && (authz_len != out->name_len || memcmp(p, out->name, authz_len) != 0))
        return "PLAIN authorization id differs from the user name";
    return NULL;
}

/* The attribute "K=" at p (its value up to the next ',' or end): value and
 * length, or NULL when p does not start with it. */
static const char *attr(const char *p, const char *end, char k, size_t *vlen)
{
    if (end - p < 2 || p[0] != k || p[1] != '=')
        return NULL;
    const char *v = p + 2, *comma = memchr(v, ',', (size_t)(end - v));
    *vlen = (size_t)((comma ? comma : end) - v);
    return v;
}

/* saslname: "=2C" and "=3D" unescaped, other '=' and controls refused. */
static const char *unescape_name(const char *v, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (ch == '=') {
            if (n - i < 3)
                return "bad escape in user name";
            if (strncmp(v + i, "=2C", 3) == 0)
                ch = ',';
            else if (strncmp(v + i, "=3D", 3) == 0)
                ch = '=';
            else
                return "bad escape in user name";
            i += 2;
        } else if ((unsigned char)ch < 0x20 || ch == 0x7f) {
            return "control character in user name";
        }
        if (o >= SASL_NAME_MAX)
            return "user name too long";
        out[o++] = ch;
    }
    out[o] = 0;
    return o ? NULL : "empty user name";
}

static bool printable_nonce(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x21 || v[i] > 0x7e || v[i] == ',')
            return false;
    return n > 0 && n <= SASL_NONCE_MAX;
}

/* "n,," or "y,," with an optional "a=NAME" between the commas. */
static const char *parse_gs2(const char *p, const char *end, sasl_client_first *out, const char **authz,
                             size_t *authz_len, const char **rest)
{
    if (end - p < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
        return end > p && p[0] == 'p' ? "channel binding is not supported" : "bad gs2 header";
    snprintf(out->gs2, sizeof out->gs2, "%c,,", p[0]);
    p += 2;
    *authz = NULL, *authz_len = 0;
    if (p < end && *p == 'a') {
        if (!(*authz = attr(p, end, 'a', authz_len)))
            return "bad authorization id";
        p = *authz + *authz_len;
    }
    if (p >= end || *p != ',')
        return "bad gs2 header";
    *rest = p + 1;
    return NULL;
}

const char *sasl_parse_client_first(const uint8_t *msg, size_t len, sasl_client_first *out)
{
    if (len > SASL_MSG_MAX)
        return "client-first message too long";
    if (memchr(msg, 0, len))
        return "NUL in client-first message";
    const char *p = (const char *)msg, *end = p + len, *authz, *bare;
    size_t authz_len, nlen;
    memset(out, 0, sizeof *out);
    const char *why = parse_gs2(p, end, out, &authz, &authz_len, &bare);
    if (why)
        return why;
    out->bare_off = (size_t)(bare - p);
    if (bare < end && *bare == 'm')
        return "mandatory extensions are not supported";
    const char *name = attr(bare, end, 'n', &nlen);
    if (!name)
        return "client-first message has no user name";
    if ((why = unescape_name(name, nlen, out->name)) != NULL)
        return why;
    char az[SASL_NAME_MAX + 1];
    if (authz && authz_len && (unescape_name(authz, authz_len, az) || strcmp(az, out->name) != 0))
        return "authorization id differs from the user name";
    const char *q = name + nlen;
    if (q >= end || *q != ',' || !(out->nonce = attr(q + 1, end, 'r', &out->nonce_len)))
        return "client-first message has no nonce";
    if (!printable_nonce(out->nonce, out->nonce_len))
        return "bad nonce";
    return NULL; /* anything after the nonce: extensions, ignored */
}

const char *sasl_parse_client_final(const uint8_t *msg, size_t len, sasl_client_final *out)
{
    if (len > SASL_MSG_MAX)
        return "client-final message too long";
    if (memchr(msg, 0, len))
        return "NUL in client-final message";
    const char *p = (const char *)msg, *end = p + len;
    memset(out, 0, sizeof *out);
    if (!(out->channel = attr(p, end, 'c', &out->channel_len)))
        return "client-final message has no channel binding";
    const char *q = out->channel + out->channel_len;
    if (q >= end || !(out->nonce = attr(q + 1, end, 'r', &out->nonce_len)))
        return "client-final message has no nonce";
    /* the proof is the last attribute */
    const char *last = NULL;
    for (const char *s = out->nonce + out->nonce_len; s < end; s++)
        if (*s == ',')
            last = s;
    size_t plen = 0;
    const char *proof = last ? attr(last + 1, end, 'p', &plen) : NULL;
    if (!proof || proof + plen != end)
        return "client-final message has no proof";
    out->without_proof_len = (size_t)(last - p);
    int n = sasl_b64_decode(proof, plen, out->proof, sizeof out->proof);
    if (n < 0)
        return "proof is not base64";
    out->proof_len = (size_t)n;
    return NULL;
}

/* ---- the SCRAM exchange --------------------------------------------------------------- */

/* AuthMessage grows by n bytes at p (kept NUL-terminated); false when full. */
static bool append_to(char *buf, size_t cap, size_t *len, const char *p, size_t n)
{
    if (*len + n + 1 > cap)
        return false;
    memcpy(buf + *len, p, n);
    *len += n;
    buf[*len] = 0;
    return true;
}

static bool auth_append(sasl_scram *s, const char *p, size_t n)
{
    return append_to(s->auth_message, sizeof s->auth_message, &s->auth_len, p, n);
}

const char *sasl_scram_first(sasl_scram *s, int mech, const uint8_t *msg, size_t len)
{
    CK_ASSERT(sasl_scram_key_len(mech) > 0);
    memset(s, 0, sizeof *s);
    s->mech = mech;
    sasl_client_first f;
    const char *why = sasl_parse_client_first(msg, len, &f);
    if (why)
        return why;
    if (strcmp(f.gs2, "n,,") != 0 && strcmp(f.gs2, "y,,") != 0)
        return "bad gs2 header";
    snprintf(s->name, sizeof s->name, "%s", f.name);
    snprintf(s->nonce, sizeof s->nonce, "%.*s", (int)f.nonce_len, f.nonce);
    CK_ASSERT(auth_append(s, (const char *)msg + f.bare_off, len - f.bare_off));
    return NULL;
}

size_t sasl_scram_challenge(sasl_scram *s, const sasl_cred *cred, const char *server_nonce, char *out, size_t cap)
{
    CK_ASSERT(s->state == SASL_SCRAM_START && cred->mech == s->mech);
    s->cred = *cred;
    size_t have = strlen(s->nonce);
    snprintf(s->nonce + have, sizeof s->nonce - have, "%s", server_nonce);
    char salt64[SASL_SALT_MAX * 2];
    sasl_b64_encode(cred->salt, cred->salt_len, salt64, sizeof salt64);
    int n = snprintf(out, cap, "r=%s,s=%s,i=%d", s->nonce, salt64, (int)cred->iterations);
    if (n < 0 || (size_t)n >= cap || !auth_append(s, ",", 1) || !auth_append(s, out, (size_t)n))
        return 0;
    s->state = SASL_SCRAM_SENT_FIRST;
    return (size_t)n;
}

/* The proof checks: H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey. */
static bool proof_ok(const sasl_scram *s, const uint8_t *proof)
{
    size_t n = sasl_scram_key_len(s->mech);
    uint8_t sig[SASL_KEY_MAX], client_key[SASL_KEY_MAX], stored[SASL_KEY_MAX];
    hmac(s->mech, s->cred.stored_key, s->auth_message, s->auth_len, sig);
    for (size_t i = 0; i < n; i++)
        client_key[i] = proof[i] ^ sig[i];
    hash(s->mech, client_key, n, stored);
    return CRYPTO_memcmp(stored, s->cred.stored_key, n) == 0;
}

const char *sasl_scram_final(sasl_scram *s, const uint8_t *msg, size_t len, char *out, size_t cap)
{
    if (s->state != SASL_SCRAM_SENT_FIRST)
        return "unexpected SCRAM message";
    s->state = SASL_SCRAM_DONE;
    sasl_client_final f;
    const char *why = sasl_parse_client_final(msg, len, &f);
    if (why)
        return why;
    /* "biws" and "eSws": the base64 of "n,," and "y,," */
    if (f.channel_len != 4 || (memcmp(f.channel, "biws", 4) != 0 && memcmp(f.channel, "eSws", 4) != 0))
        return "channel binding does not match";
    /* Kafka's rule: the nonce ends with the one sent (librdkafka repeats the
     * client's part in front); the proof covers the message as sent. */
    size_t want = strlen(s->nonce);
    if (f.nonce_len < want || memcmp(f.nonce + f.nonce_len - want, s->nonce, want) != 0)
        return "nonce does not match";
    if (f.proof_len != sasl_scram_key_len(s->mech))
        return "proof has the wrong length";
    if (!auth_append(s, ",", 1) || !auth_append(s, (const char *)msg, f.without_proof_len))
        return "SCRAM messages too long";
    if (!proof_ok(s, f.proof))
        return "invalid credentials";
    uint8_t sig[SASL_KEY_MAX];
    hmac(s->mech, s->cred.server_key, s->auth_message, s->auth_len, sig);
    char sig64[SASL_KEY_MAX * 2];
    sasl_b64_encode(sig, sasl_scram_key_len(s->mech), sig64, sizeof sig64);
    int n = snprintf(out, cap, "v=%s", sig64);
    CK_ASSERT(n > 0 && (size_t)n < cap);
    return NULL;
}

/* ---- the client side ------------------------------------------------------------------ */

size_t sasl_plain_token(const char *name, const char *password, uint8_t *out, size_t cap)
{
    size_t n = strlen(name), p = strlen(password);
    if (n == 0 || n > SASL_NAME_MAX || 2 + n + p > cap || 2 + n + p > SASL_MSG_MAX)
        return 0;
    out[0] = 0;
    memcpy(out + 1, name, n);
    out[1 + n] = 0;
    memcpy(out + 2 + n, password, p);
    return 2 + n + p;
}

/* saslname: ',' and '=' escaped; false when it does not fit or holds a control. */
static bool escape_name(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = name; *p; p++) {
        const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
        size_t k = rep ? 3 : 1;
        if ((unsigned char)*p < 0x20 || *p == 0x7f || o + k >= cap)
            return false;
        memcpy(out + o, rep ? rep : p, k);
        o += k;
    }
    out[o] = 0;
    return o > 0;
}

const char *sasl_parse_server_first(const uint8_t *msg, size_t len, sasl_server_first *out)
{
    if (len > SASL_MSG_MAX)
        return "server-first message too long";
    if (memchr(msg, 0, len))
        return "NUL in server-first message";
    const char *p = (const char *)msg, *end = p + len, *v;
    size_t vlen;
    memset(out, 0, sizeof *out);
    if (end - p >= 2 && p[0] == 'm' && p[1] == '=')
        return "mandatory extensions are not supported";
    if (!(out->nonce = attr(p, end, 'r', &out->nonce_len)) || !printable_nonce(out->nonce, out->nonce_len))
        return "server-first message has no valid nonce";
    p = out->nonce + out->nonce_len;
    if (p >= end || !(v = attr(p + 1, end, 's', &vlen)))
        return "server-first message has no salt";
    int n = sasl_b64_decode(v, vlen, out->salt, sizeof out->salt);
    if (n <= 0)
        return "salt is not base64 or too long";
    out->salt_len = (size_t)n;
    p = v + vlen;
    if (p >= end || !(v = attr(p + 1, end, 'i', &vlen)) || vlen == 0 || vlen > 7)
        return "server-first message has no iteration count";
    int64_t it = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return "iteration count is not a number";
        it = it * 10 + (v[i] - '0');
    }
    if (it < SASL_SCRAM_ITERATIONS_MIN || it > SASL_SCRAM_CLIENT_ITERATIONS_MAX)
        return "iteration count out of range";
    out->iterations = (int32_t)it;
    return NULL; /* anything after: extensions, ignored */
}

const char *sasl_parse_server_final(const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
    if (len > SASL_MSG_MAX)
        return "server-final message too long";
    const char *p = (const char *)msg, *end = p + len, *v;
    size_t vlen;
    if (attr(p, end, 'e', &vlen))
        return "the server refused the login (server-final e=)";
    if (!(v = attr(p, end, 'v', &vlen)))
        return "server-final message has no signature";
    int n = sasl_b64_decode(v, vlen, sig, SASL_KEY_MAX);
    if (n <= 0)
        return "signature is not base64";
    *sig_len = (size_t)n;
    return NULL;
}

static bool client_append(sasl_scram_client *s, const char *p, size_t n)
{
    return append_to(s->auth_message, sizeof s->auth_message, &s->auth_len, p, n);
}

size_t sasl_scram_client_first(sasl_scram_client *s, int mech, const char *name, const char *nonce, char *out,
                               size_t cap)
{
    CK_ASSERT(sasl_scram_key_len(mech) > 0);
    memset(s, 0, sizeof *s);
    s->mech = mech;
    char esc[3 * SASL_NAME_MAX + 1];
    if (strlen(name) > SASL_NAME_MAX || !escape_name(name, esc, sizeof esc) ||
        !printable_nonce(nonce, strlen(nonce)))
        return 0;
    snprintf(s->nonce, sizeof s->nonce, "%s", nonce);
    int n = snprintf(out, cap, "n,,n=%s,r=%s", esc, nonce);
    if (n < 0 || (size_t)n >= cap || !client_append(s, out + 3, (size_t)n - 3))
        return 0;
    s->state = SASL_CLIENT_SENT_FIRST;
    return (size_t)n;
}

const char *sasl_scram_client_final(sasl_scram_client *s, const char *password, const uint8_t *msg, size_t len,
                                    char *out, size_t cap, size_t *out_len)
{
    if (s->state != SASL_CLIENT_SENT_FIRST)
        return "unexpected SCRAM message";
    s->state = SASL_CLIENT_DONE; /* until it succeeds */
    sasl_server_first f;
    const char *why = sasl_parse_server_first(msg, len, &f);
    if (why)
        return why;
    size_t cn = strlen(s->nonce);
    if (f.nonce_len <= cn || memcmp(f.nonce, s->nonce, cn) != 0)
        return "the server's nonce does not extend the client's";
    int n = snprintf(out, cap, "c=biws,r=%.*s", (int)f.nonce_len, f.nonce);
    if (n < 0 || (size_t)n >= cap || !client_append(s, ",", 1) || !client_append(s, (const char *)msg, len) ||
        !client_append(s, ",", 1) || !client_append(s, out, (size_t)n))
        return "SCRAM messages too long";
    size_t kl = sasl_scram_key_len(s->mech);
    uint8_t salted[SASL_KEY_MAX], client_key[SASL_KEY_MAX], stored[SASL_KEY_MAX], sig[SASL_KEY_MAX];
    sasl_scram_salt_password(s->mech, password, strlen(password), f.salt, f.salt_len, f.iterations, salted);
    hmac(s->mech, salted, "Client Key", 10, client_key);
    hash(s->mech, client_key, kl, stored);
    hmac(s->mech, salted, "Server Key", 10, s->server_key);
    hmac(s->mech, stored, s->auth_message, s->auth_len, sig);
    for (size_t i = 0; i < kl; i++)
        client_key[i] ^= sig[i]; /* now the proof */
    char proof64[SASL_KEY_MAX * 2];
    sasl_b64_encode(client_key, kl, proof64, sizeof proof64);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    int m = snprintf(out + n, cap - (size_t)n, ",p=%s", proof64);
    if (m < 0 || (size_t)m >= cap - (size_t)n)
        return "SCRAM messages too long";
    *out_len = (size_t)(n + m);
    s->state = SASL_CLIENT_SENT_FINAL;
    return NULL;
}

const char *sasl_scram_client_verify(sasl_scram_client *s, const uint8_t *msg, size_t len)
{
    if (s->state != SASL_CLIENT_SENT_FINAL)
        return "unexpected SCRAM message";
    s->state = SASL_CLIENT_DONE;
    uint8_t sig[SASL_KEY_MAX], want[SASL_KEY_MAX];
    size_t n = 0;
    const char *why = sasl_parse_server_final(msg, len, sig, &n);
    if (why)
        return why;
    hmac(s->mech, s->server_key, s->auth_message, s->auth_len, want);
    if (n != sasl_scram_key_len(s->mech) || CRYPTO_memcmp(sig, want, n) != 0)
        return "the server's signature is wrong (it does not know the credential)";
    return NULL;
}
