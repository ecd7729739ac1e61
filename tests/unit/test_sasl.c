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
