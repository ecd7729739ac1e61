/*
 * sasl.h - the SASL mechanisms Chronik speaks, as pure functions: PLAIN
 * (RFC 4616) and SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677). No
 * sockets, threads or clocks; src/broker keeps one sasl_scram per
 * connection and src/meta derives stored credentials with sasl_scram_keys.
 *
 * Credentials. A SCRAM credential is (salt, iterations, StoredKey,
 * ServerKey), never the password:
 *   SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations)
 *   StoredKey      = H(HMAC-H(SaltedPassword, "Client Key"))
 *   ServerKey      = HMAC-H(SaltedPassword, "Server Key")
 * (Kafka's AlterUserScramCredentials sends SaltedPassword; the broker keeps
 * only the two keys.) A PLAIN login is checked against the same credential:
 * the password is salted and iterated again and must give the StoredKey.
 *
 * SCRAM messages (the exchange a client drives through SaslAuthenticate):
 *   client-first  "n,,n=NAME,r=CNONCE"          gs2 header "n" or "y" (no
 *                 channel binding; "p=" is refused), an optional "a=" authzid
 *                 that must be empty or NAME, then extensions (ignored)
 *   server-first  "r=CNONCE SNONCE,s=SALT64,i=ITERATIONS"
 *   client-final  "c=biws,r=CNONCE SNONCE,p=PROOF64" (c= the base64 of the
 *                 gs2 header; as Kafka does, the nonce need only end with
 *                 the server-first one: librdkafka repeats CNONCE in front)
 *   server-final  "v=SIGNATURE64"
 * A server-final that begins "e=" is the server's refusal. The client side
 * (sasl_scram_client_*) writes client-first and client-final and checks
 * the server's nonce, salt, iteration count (SASL_SCRAM_ITERATIONS_MIN to
 * SASL_SCRAM_CLIENT_ITERATIONS_MAX) and, last, its signature: a server
 * that does not know the password cannot pass for one that does.
 * NAME escapes ',' and '=' as "=2C" and "=3D"; a name with any other '='
 * or a control character is refused. Every parser is strict: one reason
 * string on failure, nothing allocated, bounded by SASL_MSG_MAX.
 */
#ifndef CHRONIK_SASL_SASL_H
#define CHRONIK_SASL_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SASL_MSG_MAX 1024          /* longest SCRAM or PLAIN message accepted */
#define SASL_NAME_MAX 255          /* longest user name */
#define SASL_KEY_MAX 64            /* SHA-512 */
#define SASL_SALT_MAX 64
#define SASL_NONCE_MAX 256
#define SASL_SCRAM_ITERATIONS_MIN 4096  /* Kafka's bounds */
#define SASL_SCRAM_ITERATIONS_MAX 16384
#define SASL_SCRAM_CLIENT_ITERATIONS_MAX 1000000 /* a client computes no more than this */

/* Kafka's ScramMechanism codes. */
enum sasl_mech { SASL_MECH_UNKNOWN = 0, SASL_SCRAM_SHA_256 = 1, SASL_SCRAM_SHA_512 = 2, SASL_PLAIN = 100 };

/* "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" <-> enum sasl_mech. */
int sasl_mech_from_name(const char *name, size_t len);
const char *sasl_mech_name(int mech);
/* The hash length of a SCRAM mechanism (32 or 64); 0 for others. */
size_t sasl_scram_key_len(int mech);

/* A stored SCRAM credential. */
typedef struct sasl_cred {
    int8_t mech;
    int32_t iterations;
    uint8_t salt[SASL_SALT_MAX];
    size_t salt_len;
    uint8_t stored_key[SASL_KEY_MAX];
    uint8_t server_key[SASL_KEY_MAX];
} sasl_cred;

/* SaltedPassword for password (out: sasl_scram_key_len(mech) bytes). */
void sasl_scram_salt_password(int mech, const char *password, size_t len, const uint8_t *salt, size_t salt_len,
                              int32_t iterations, uint8_t *out);
/* StoredKey and ServerKey from SaltedPassword. */
void sasl_scram_keys(int mech, const uint8_t *salted, uint8_t *stored_key, uint8_t *server_key);
/* A whole credential for password with salt (for start-up users and tests). */
void sasl_cred_make(sasl_cred *c, int mech, const char *password, const uint8_t *salt, size_t salt_len,
                    int32_t iterations);
/* Does password give c's StoredKey (constant time in the key compare)? */
bool sasl_cred_check_password(const sasl_cred *c, const char *password, size_t len);

/* ---- parsers ------------------------------------------------------------------ */

/* PLAIN: "AUTHZID\0NAME\0PASSWORD"; views into msg. NULL, or why not. The
 * authzid must be empty or NAME. */
typedef struct sasl_plain {
    const char *name, *password;
    size_t name_len, password_len;
} sasl_plain;
const char *sasl_parse_plain(const uint8_t *msg, size_t len, sasl_plain *out);

typedef struct sasl_client_first {
    char name[SASL_NAME_MAX + 1];  /* unescaped */
    const char *nonce;             /* view into msg */
    size_t nonce_len;
    size_t bare_off;               /* client-first-message-bare starts here */
    char gs2[4];                   /* "n,," or "y,," */
} sasl_client_first;
const char *sasl_parse_client_first(const uint8_t *msg, size_t len, sasl_client_first *out);

typedef struct sasl_client_final {
    const char *channel, *nonce;   /* views into msg (channel is base64) */
    size_t channel_len, nonce_len;
    uint8_t proof[SASL_KEY_MAX];
    size_t proof_len;
    size_t without_proof_len;      /* client-final-message-without-proof: msg[0, this) */
} sasl_client_final;
const char *sasl_parse_client_final(const uint8_t *msg, size_t len, sasl_client_final *out);

/* Strict base64 (padding required): decoded length, or -1. */
int sasl_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Encoded length (NUL-terminated in out; cap >= 4 * ceil(len / 3) + 1). */
size_t sasl_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* ---- the server side of one SCRAM exchange ------------------------------------- */

enum sasl_scram_state { SASL_SCRAM_START = 0, SASL_SCRAM_SENT_FIRST, SASL_SCRAM_DONE };

typedef struct sasl_scram {
    int mech;
    int state;
    sasl_cred cred;
    char name[SASL_NAME_MAX + 1];
    char nonce[2 * SASL_NONCE_MAX + 1];      /* client's then server's */
    char auth_message[3 * SASL_MSG_MAX];     /* client-first-bare "," server-first "," (final w/o proof) */
    size_t auth_len;
} sasl_scram;

/* Step 1: parse client-first into s (s->name is then the user to look up).
 * NULL, or why not. */
const char *sasl_scram_first(sasl_scram *s, int mech, const uint8_t *msg, size_t len);
/* Step 2: with the user's credential and a fresh random server nonce
 * (printable, no ','), the server-first message into out (NUL-terminated;
 * returns its length, 0 when it does not fit). */
size_t sasl_scram_challenge(sasl_scram *s, const sasl_cred *cred, const char *server_nonce, char *out, size_t cap);
/* Step 3: check client-final; on success the server-final message into out
 * and NULL, else why not (a wrong password says "invalid credentials"). */
const char *sasl_scram_final(sasl_scram *s, const uint8_t *msg, size_t len, char *out, size_t cap);

/* ---- the client side ------------------------------------------------------------ */

/* PLAIN's token "\0NAME\0PASSWORD" into out; its length, 0 when it does
 * not fit or a part holds a NUL. */
size_t sasl_plain_token(const char *name, const char *password, uint8_t *out, size_t cap);

typedef struct sasl_server_first {
    const char *nonce;             /* view into msg: the client's nonce then the server's */
    size_t nonce_len;
    uint8_t salt[SASL_SALT_MAX];
    size_t salt_len;
    int32_t iterations;
} sasl_server_first;
const char *sasl_parse_server_first(const uint8_t *msg, size_t len, sasl_server_first *out);

/* server-final: the signature (NULL returned), or why not ("e=" included). */
const char *sasl_parse_server_final(const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len);

enum sasl_scram_client_state { SASL_CLIENT_START = 0, SASL_CLIENT_SENT_FIRST, SASL_CLIENT_SENT_FINAL,
                               SASL_CLIENT_DONE };

typedef struct sasl_scram_client {
    int mech;
    int state;
    char nonce[SASL_NONCE_MAX + 1];          /* the client's */
    uint8_t server_key[SASL_KEY_MAX];        /* to check the server's signature */
    char auth_message[3 * SASL_MSG_MAX];
    size_t auth_len;
} sasl_scram_client;

/* Step 1: client-first "n,,n=NAME,r=NONCE" into out (NUL-terminated) for
 * name (escaped here) and a fresh printable nonce without ','; its length,
 * 0 when name is empty or too long, the nonce bad, or out too small. */
size_t sasl_scram_client_first(sasl_scram_client *s, int mech, const char *name, const char *nonce, char *out,
                               size_t cap);
/* Step 2: check server-first and write client-final (with the proof of
 * password) into out; NULL and *out_len, or why not. */
const char *sasl_scram_client_final(sasl_scram_client *s, const char *password, const uint8_t *msg, size_t len,
                                    char *out, size_t cap, size_t *out_len);
/* Step 3: check server-final's signature. NULL (logged in), or why not. */
const char *sasl_scram_client_verify(sasl_scram_client *s, const uint8_t *msg, size_t len);

#endif
