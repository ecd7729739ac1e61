/*
 * tls.c - TLS (OpenSSL): server contexts for inbound connections, client
 * contexts for outbound ones, their reload when the certificate files
 * change, and the record layer calls of one connection (net.h: net_tls,
 * net_int.h: tls_*).
 *
 * Context. One SSL_CTX per net_tls, built from PEM files: the keystore
 * holds the private key (encrypted or not) and the certificate chain, the
 * truststore the CA certificates that client certificates must chain to.
 * Only TLS 1.2 and 1.3 are offered; renegotiation and compression are off.
 * A connection takes a reference to the context current when it starts, so
 * a reload changes what new connections see and never disturbs a live one.
 *
 * Reload. net_tls_reload() compares each file's (device, inode, size,
 * modification time) with what it last read; when one changed (or when
 * forced) it builds a new context and swaps it in. A context that fails to
 * build (a half-written file, a key that does not match its certificate)
 * leaves the old one serving and is reported; the next change is tried again.
 *
 * Connections. The handshake is driven by the first reads, without blocking:
 * SSL_read and SSL_write report when they wait for the other direction
 * (a read for a writable socket, a write for a readable one) in
 * conn->tls_read_wants_out / tls_write_wants_in, which conn.c adds to the
 * epoll interest. A
 * handshake or record error (garbage, a plaintext client, an untrusted or
 * expired client certificate) closes that connection alone. A verified
 * client certificate's subject is read once, when the upper layer first
 * asks (net_conn_tls_subject), and kept with the connection.
 *
 * Client side. A client context always verifies the server: its chain must
 * reach a CA of the truststore, and with verify_host (Kafka's
 * ssl.endpoint.identification.algorithm=https) a subjectAltName must match
 * the host connected to (an IP address against the IP entries). The
 * keystore, when given, is sent when the server asks for a certificate.
 * The handshake starts when TCP is up (tls_conn_connected) and is driven
 * by the same reads and writes as the server's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/log.h"
#include "base/util.h"
#include "net/net_int.h"

enum { TLS_FILES = 2 }; /* keystore, truststore */

typedef struct file_sig {
    bool present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_sig;

struct net_tls {
    pthread_mutex_t mu;
    SSL_CTX *ctx;             /* under mu; connections hold their own references */
    char *paths[TLS_FILES];   /* NULL: not used */
    char *key_password;
    int client_auth;          /* enum net_tls_auth */
    bool tls12, tls13;
    bool client, verify_host;
    file_sig sigs[TLS_FILES]; /* under mu: the files as last read */
};

static void err_openssl(char *err, size_t errlen, const char *what, const char *path)
{
    char detail[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, path, detail);
}

static int password_cb(char *buf, int size, int rwflag, void *userdata)
{
    (void)rwflag;
    const char *pw = userdata;
    int n = (int)strlen(pw);
    if (n > size)
        return 0;
    memcpy(buf, pw, (size_t)n);
    return n;
}

static int verify_mode(int client_auth)
{
    switch (client_auth) {
    case NET_TLS_AUTH_REQUIRED: return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    case NET_TLS_AUTH_REQUESTED: return SSL_VERIFY_PEER;
    default: return SSL_VERIFY_NONE;
    }
}

/* The key and certificate chain of the keystore file into ctx. */
static int load_keystore(net_tls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
    const char *ks = t->paths[0];
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, t->key_password);
    if (SSL_CTX_use_certificate_chain_file(ctx, ks) != 1) {
        err_openssl(err, errlen, "cannot read the certificate chain of ssl.keystore.location", ks);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, ks, SSL_FILETYPE_PEM) != 1) {
        err_openssl(err, errlen, "cannot read the private key of ssl.keystore.location (wrong ssl.key.password?)", ks);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        err_openssl(err, errlen, "the private key does not match the certificate in", ks);
        return -1;
    }
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (cert && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
        log_warn("net", "the TLS certificate has expired file=%s: clients will refuse it", ks);
    return 0;
}

static int load_truststore(net_tls *t, SSL_CTX *ctx, char *err, size_t errlen)
{
    const char *ts = t->paths[1];
    if (ts == NULL)
        return 0;
    if (SSL_CTX_load_verify_locations(ctx, ts, NULL) != 1) {
        err_openssl(err, errlen, "cannot read the CA certificates of ssl.truststore.location", ts);
        return -1;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ts);
    if (names != NULL)
        SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
    return 0;
}

static SSL_CTX *ctx_build(net_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(t->client ? TLS_client_method() : TLS_server_method());
    if (ctx == NULL) {
        err_openssl(err, errlen, "cannot create a TLS context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, t->tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, t->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char sid_ctx[] = "chronik";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_verify(ctx, t->client ? SSL_VERIFY_PEER : verify_mode(t->client_auth), NULL);
    if ((t->paths[0] && load_keystore(t, ctx, err, errlen) != 0) || load_truststore(t, ctx, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void sig_read(const char *path, file_sig *s)
{
    struct stat st;
    *s = (file_sig){0};
    if (path == NULL || stat(path, &st) != 0)
        return;
    *s = (file_sig){true, st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

static bool sig_same(const file_sig *a, const file_sig *b)
{
    return a->present == b->present && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static char *dup_or_null(const char *s) { return s && *s ? xstrdup(s) : NULL; }

net_tls *net_tls_new(const net_tls_config *cfg, char *err, size_t errlen)
{
    net_tls *t = xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    t->paths[0] = dup_or_null(cfg->keystore);
    t->paths[1] = dup_or_null(cfg->truststore);
    t->key_password = xstrdup(cfg->key_password ? cfg->key_password : "");
    t->client_auth = cfg->client_auth;
    t->tls12 = cfg->tls12;
    t->tls13 = cfg->tls13 || !cfg->tls12;
    t->client = cfg->client;
    t->verify_host = cfg->verify_host;
    if (t->paths[t->client ? 1 : 0] == NULL) {
        snprintf(err, errlen, t->client ? "no truststore file" : "no keystore file");
        net_tls_free(t);
        return NULL;
    }
    for (int i = 0; i < TLS_FILES; i++)
        sig_read(t->paths[i], &t->sigs[i]);
    t->ctx = ctx_build(t, err, errlen);
    if (t->ctx == NULL) {
        net_tls_free(t);
        return NULL;
    }
    return t;
}

int net_tls_reload(net_tls *t, bool force, char *err, size_t errlen)
{
    file_sig now[TLS_FILES];
    bool changed = force;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < TLS_FILES; i++) {
        sig_read(t->paths[i], &now[i]);
        changed |= !sig_same(&now[i], &t->sigs[i]);
        t->sigs[i] = now[i]; /* a failed build is tried again at the next change only */
    }
    pthread_mutex_unlock(&t->mu);
    if (!changed)
        return 0;
    SSL_CTX *ctx = ctx_build(t, err, errlen);
    if (ctx == NULL)
        return -1;
    pthread_mutex_lock(&t->mu);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->mu);
    SSL_CTX_free(old);
    return 1;
}

void net_tls_describe(net_tls *t, char *out, size_t n)
{
    pthread_mutex_lock(&t->mu);
    X509 *cert = SSL_CTX_get0_certificate(t->ctx);
    char subject[256] = "?", serial[128] = "?";
    if (cert != NULL) {
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        if (hex)
            snprintf(serial, sizeof serial, "%s", hex);
        OPENSSL_free(hex);
        BN_free(bn);
    }
    pthread_mutex_unlock(&t->mu);
    snprintf(out, n, "subject=\"%s\" serial=%s", subject, serial);
}

void net_tls_free(net_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    for (int i = 0; i < TLS_FILES; i++)
        free(t->paths[i]);
    free(t->key_password);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- one connection ------------------------------------------------------- */

bool tls_conn_start(net_conn *c, net_tls *t)
{
    pthread_mutex_lock(&t->mu);
    c->ssl = SSL_new(t->ctx); /* takes its own reference to the context */
    pthread_mutex_unlock(&t->mu);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        ERR_clear_error();
        return false;
    }
    SSL_set_accept_state(c->ssl);
    return true;
}

static ssize_t failure(net_conn *c, int r, bool reading);

static bool is_address(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* SNI for a name; with verify, the server must be host (an address: an IP
 * SAN; a name: a DNS SAN). */
static bool expect_host(SSL *ssl, const char *host, bool verify)
{
    if (is_address(host))
        return !verify || X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    return SSL_set_tlsext_host_name(ssl, host) == 1 && (!verify || SSL_set1_host(ssl, host) == 1);
}

bool tls_conn_start_client(net_conn *c, net_tls *t, const char *host)
{
    CK_ASSERT(t->client);
    pthread_mutex_lock(&t->mu);
    c->ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->mu);
    bool ok = c->ssl != NULL && SSL_set_fd(c->ssl, c->fd) == 1;
    if (ok && host && host[0])
        ok = expect_host(c->ssl, host, t->verify_host);
    ERR_clear_error();
    if (!ok)
        return false;
    SSL_set_connect_state(c->ssl);
    return true;
}

int tls_conn_connected(net_conn *c)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1)
        return 0;
    ssize_t f = failure(c, r, true);
    return f == -EAGAIN ? 0 : f == 0 ? -ECONNRESET : (int)f;
}

void tls_conn_end(net_conn *c)
{
    if (SSL_is_init_finished(c->ssl))
        SSL_shutdown(c->ssl); /* best effort: close_notify, so the peer sees a clean end */
    ERR_clear_error();
    SSL_free(c->ssl); /* the socket is closed by the caller */
    c->ssl = NULL;
    free(c->tls_subject);
    c->tls_subject = NULL;
}

/* RFC 2253 as Java's X500Principal.getName() writes it: most specific RDN
 * first, commas without spaces, short names; non-ASCII text left as UTF-8
 * rather than escaped. */
static char *subject_string(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return NULL;
    unsigned long flags = (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | ASN1_STRFLGS_UTF8_CONVERT;
    char *out = NULL;
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, flags) >= 0) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        out = xmalloc((size_t)MAX(n, 0) + 1);
        memcpy(out, data, (size_t)MAX(n, 0));
        out[MAX(n, 0)] = 0;
    }
    BIO_free(bio);
    return out;
}

const char *net_conn_tls_subject(net_conn *c)
{
    if (!c->ssl || c->tls_subject_read || !SSL_is_init_finished(c->ssl))
        return c->ssl ? c->tls_subject : NULL;
    c->tls_subject_read = true;
    X509 *cert = SSL_get1_peer_certificate(c->ssl);
    if (cert && SSL_get_verify_result(c->ssl) == X509_V_OK)
        c->tls_subject = subject_string(cert);
    X509_free(cert);
    ERR_clear_error();
    return c->tls_subject;
}

size_t tls_pending(const net_conn *c) { return (size_t)SSL_pending(c->ssl); }

/* Why the handshake or a record failed, for the log. */
static void log_failure(net_conn *c)
{
    static log_ratelimit rl = LOG_RATELIMIT_INIT(LOG_RATELIMIT_DEFAULT_MS);
    char detail[256] = "connection ended";
    unsigned long code = ERR_get_error();
    if (code != 0)
        ERR_error_string_n(code, detail, sizeof detail);
    long vr = SSL_get_verify_result(c->ssl);
    log_warn_limited(&rl, "net", "TLS %s failed conn=%llu peer=%s err=\"%s\"%s%s%s",
                     SSL_is_init_finished(c->ssl) ? "connection" : "handshake", (unsigned long long)c->id,
                     c->peer, detail, vr != X509_V_OK ? " verify=\"" : "",
                     vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "", vr != X509_V_OK ? "\"" : "");
    ERR_clear_error();
}

/* The outcome of an SSL call that returned r <= 0: -EAGAIN (what it waits
 * for noted), 0 for the peer's end, or -errno. */
static ssize_t failure(net_conn *c, int r, bool reading)
{
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->tls_write_wants_in = !reading;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->tls_read_wants_out = reading;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (r == 0 || errno == 0)
                return SSL_is_init_finished(c->ssl) ? 0 : (log_failure(c), -ECONNRESET);
            return -errno;
        }
        log_failure(c);
        return -EPROTO;
    default:
        log_failure(c);
        return -EPROTO;
    }
}

ssize_t tls_read(net_conn *c, void *buf, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_read(c->ssl, buf, (int)MIN(n, (size_t)INT32_MAX));
    c->tls_read_wants_out = false;
    return r > 0 ? r : failure(c, r, true);
}

ssize_t tls_write(net_conn *c, const void *buf, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(c->ssl, buf, (int)n);
    c->tls_write_wants_in = false;
    if (r > 0)
        return r;
    ssize_t f = failure(c, r, false);
    return f == 0 ? -EPIPE : f;
}
