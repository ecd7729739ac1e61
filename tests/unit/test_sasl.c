/* test_sasl.c - the SASL mechanisms: RFC 7677's SCRAM-SHA-256 exchange
 * byte for byte, SCRAM-SHA-512 with a credential made here, PLAIN, and the
 * parsers' refusals. */
#include "base/util.h"
#include "sasl/sasl.h"
#include "test.h"

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

/* The example of RFC 7677 section 3: user "user", password "pencil". */
TEST(scram_sha256_rfc7677)
{
    uint8_t salt[16];
    const char *salt64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
    CHECK(sasl_b64_decode(salt64, strlen(salt64), salt, sizeof salt) == 16);
    sasl_cred c;
    sasl_cred_make(&c, SASL_SCRAM_SHA_256, "pencil", salt, 16, 4096);
    sasl_scram s;
    const char *first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    CHECK(sasl_scram_first(&s, SASL_SCRAM_SHA_256, u8(first), strlen(first)) == NULL);
    CHECK(strcmp(s.name, "user") == 0);
    char out[512];
    CHECK(sasl_scram_challenge(&s, &c, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", out, sizeof out) > 0);
    CHECK(strcmp(out, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096") == 0);
    const char *final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    CHECK(sasl_scram_final(&s, u8(final), strlen(final), out, sizeof out) == NULL);
    CHECK(strcmp(out, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") == 0);
    CHECK(sasl_cred_check_password(&c, "pencil", 6));
    CHECK(!sasl_cred_check_password(&c, "pencil2", 7));
}

/* A wrong proof is refused, and so is a second final message. */
TEST(scram_wrong_proof)
{
    uint8_t salt[4] = {1, 2, 3, 4};
    sasl_cred c;
    sasl_cred_make(&c, SASL_SCRAM_SHA_512, "secret", salt, 4, 4096);
    sasl_scram s;
    const char *first = "n,,n=admin,r=abc";
    CHECK(sasl_scram_first(&s, SASL_SCRAM_SHA_512, u8(first), strlen(first)) == NULL);
    char out[512], proof64[100], msg[300];
    CHECK(sasl_scram_challenge(&s, &c, "xyz", out, sizeof out) > 0);
    uint8_t proof[64] = {0};
    sasl_b64_encode(proof, 64, proof64, sizeof proof64);
    snprintf(msg, sizeof msg, "c=biws,r=abcxyz,p=%s", proof64);
    CHECK(strcmp(sasl_scram_final(&s, u8(msg), strlen(msg), out, sizeof out), "invalid credentials") == 0);
    CHECK(sasl_scram_final(&s, u8(msg), strlen(msg), out, sizeof out) != NULL);
}

/* Escaped names are unescaped; malformed messages get a reason. */
TEST(scram_parse)
{
    sasl_client_first f;
    const char *m = "n,a=a=2Cb,n=a=2Cb,r=n1,ext=1";
    CHECK(sasl_parse_client_first(u8(m), strlen(m), &f) == NULL);
    CHECK(strcmp(f.name, "a,b") == 0 && f.nonce_len == 2);
    const char *bad[] = {"", "p=tls,,n=a,r=x", "n,,n=a=2,r=x", "n,,n=,r=x", "n,,n=a", "n,,r=x",
                         "n,a=b,n=a,r=x", "x,,n=a,r=x", "n,,m=1,n=a,r=x", "n,,n=a,r=x y"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        CHECK(sasl_parse_client_first(u8(bad[i]), strlen(bad[i]), &f) != NULL);
    sasl_client_final g;
    const char *ok = "c=biws,r=ab,p=AAAA";
    CHECK(sasl_parse_client_final(u8(ok), strlen(ok), &g) == NULL);
    CHECK(g.proof_len == 3 && g.without_proof_len == 11);
    const char *badf[] = {"", "c=biws", "c=biws,r=ab", "c=biws,r=ab,p=AAA", "r=ab,c=biws,p=AAAA", "c=biws,r=ab,p=A=AA"};
    for (size_t i = 0; i < ARRAY_LEN(badf); i++)
        CHECK(sasl_parse_client_final(u8(badf[i]), strlen(badf[i]), &g) != NULL);
}

/* PLAIN: authzid empty or the user's, exactly two NULs. */
TEST(plain_parse)
{
    sasl_plain p;
    CHECK(sasl_parse_plain(u8("\0alice\0pw"), 9, &p) == NULL);
    CHECK(p.name_len == 5 && memcmp(p.name, "alice", 5) == 0 && p.password_len == 2);
    CHECK(sasl_parse_plain(u8("alice\0alice\0pw"), 14, &p) == NULL);
    CHECK(sasl_parse_plain(u8("bob\0alice\0pw"), 12, &p) != NULL);
    CHECK(sasl_parse_plain(u8("\0alice"), 6, &p) != NULL);
    CHECK(sasl_parse_plain(u8("\0\0pw"), 4, &p) != NULL);
    CHECK(sasl_parse_plain(u8("\0a\0b\0c"), 6, &p) != NULL);
}

/* base64 round trips and refuses bad padding. */
TEST(base64)
{
    uint8_t in[5] = {0xff, 0, 1, 2, 3}, back[8];
    char enc[16];
    for (size_t n = 0; n <= 5; n++) {
        size_t e = sasl_b64_encode(in, n, enc, sizeof enc);
        CHECK(sasl_b64_decode(enc, e, back, sizeof back) == (int)n);
        CHECK(memcmp(in, back, n) == 0);
    }
    CHECK(sasl_b64_decode("A===", 4, back, sizeof back) < 0);
    CHECK(sasl_b64_decode("AA=A", 4, back, sizeof back) < 0);
    CHECK(sasl_b64_decode("AAA", 3, back, sizeof back) < 0);
}

/* The client side of RFC 7677's example: the client-first, client-final
 * (with its proof) and the server signature check, byte for byte. */
TEST(scram_client_rfc7677)
{
    sasl_scram_client s;
    char out[512];
    size_t n = sasl_scram_client_first(&s, SASL_SCRAM_SHA_256, "user", "rOprNGfwEbeRWgbNEkqO", out, sizeof out);
    CHECK(n > 0 && strcmp(out, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO") == 0);
    const char *sf = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CHECK(sasl_scram_client_final(&s, "pencil", u8(sf), strlen(sf), out, sizeof out, &n) == NULL);
    CHECK(strcmp(out, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") == 0 && n == strlen(out));
    const char *bad = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    sasl_scram_client copy = s;
    CHECK(sasl_scram_client_verify(&copy, u8(bad), strlen(bad)) != NULL);
    const char *sig = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    CHECK(sasl_scram_client_verify(&s, u8(sig), strlen(sig)) == NULL);
    CHECK(sasl_scram_client_verify(&s, u8(sig), strlen(sig)) != NULL); /* once only */
}

/* SCRAM-SHA-512, the client against the server side: right and wrong passwords. */
TEST(scram_client_sha512_roundtrip)
{
    uint8_t salt[16] = "0123456789abcdef";
    sasl_cred c;
    sasl_cred_make(&c, SASL_SCRAM_SHA_512, "s3cr=t,x", salt, 16, 4096);
    for (int wrong = 0; wrong < 2; wrong++) {
        sasl_scram_client cl;
        sasl_scram sv;
        char a[1024], b[1024];
        size_t n = sasl_scram_client_first(&cl, SASL_SCRAM_SHA_512, "bro=ker,1", "cnonce1", a, sizeof a);
        CHECK(n > 0 && strcmp(a, "n,,n=bro=3Dker=2C1,r=cnonce1") == 0);
        CHECK(sasl_scram_first(&sv, SASL_SCRAM_SHA_512, u8(a), n) == NULL);
        CHECK(strcmp(sv.name, "bro=ker,1") == 0);
        n = sasl_scram_challenge(&sv, &c, "snonce2", b, sizeof b);
        CHECK(n > 0);
        CHECK(sasl_scram_client_final(&cl, wrong ? "nope" : "s3cr=t,x", u8(b), n, a, sizeof a, &n) == NULL);
        const char *why = sasl_scram_final(&sv, u8(a), n, b, sizeof b);
        if (wrong) {
            CHECK(why != NULL && strcmp(why, "invalid credentials") == 0);
            continue;
        }
        CHECK(why == NULL);
        CHECK(sasl_scram_client_verify(&cl, u8(b), strlen(b)) == NULL);
    }
}

/* The client's parsers refuse what a bad or hostile server sends. */
TEST(scram_client_refusals)
{
    sasl_server_first f;
    const char *cases[] = {"", "r=,s=QUJD,i=4096", "r=abc,s=,i=4096", "r=abc,s=QUJD,i=4095",
                           "r=abc,s=QUJD,i=99999999", "r=abc,s=QUJD,i=40x6", "r=abc,s=QUJD", "m=x,r=abc,s=QUJD,i=4096",
                           "r=abc,s=QUJ,i=4096"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(sasl_parse_server_first(u8(cases[i]), strlen(cases[i]), &f) != NULL);
    const char *ok = "r=abc,s=QUJD,i=4096,x=ext";
    CHECK(sasl_parse_server_first(u8(ok), strlen(ok), &f) == NULL && f.iterations == 4096 && f.salt_len == 3);
    uint8_t sig[64];
    size_t n;
    CHECK(sasl_parse_server_final(u8("e=invalid-proof"), 15, sig, &n) != NULL);
    CHECK(sasl_parse_server_final(u8("v=QUJD"), 6, sig, &n) == NULL && n == 3);
    sasl_scram_client s;
    char out[256];
    CHECK(sasl_scram_client_first(&s, SASL_SCRAM_SHA_256, "", "n", out, sizeof out) == 0);
    CHECK(sasl_scram_client_first(&s, SASL_SCRAM_SHA_256, "u", "a,b", out, sizeof out) == 0);
    CHECK(sasl_scram_client_first(&s, SASL_SCRAM_SHA_256, "u", "abc", out, sizeof out) > 0);
    const char *other = "r=xyz123,s=QUJD,i=4096"; /* does not extend "abc" */
    CHECK(sasl_scram_client_final(&s, "pw", u8(other), strlen(other), out, sizeof out, &n) != NULL);
    uint8_t tok[32];
    CHECK(sasl_plain_token("u", "pw", tok, sizeof tok) == 5 && memcmp(tok, "\0u\0pw", 5) == 0);
    CHECK(sasl_plain_token("", "pw", tok, sizeof tok) == 0);
}
