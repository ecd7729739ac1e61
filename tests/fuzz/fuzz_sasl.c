/* fuzz_sasl.c - libFuzzer target: the SASL parsers (PLAIN, SCRAM
 * client-first and client-final; server-first and server-final, which a
 * node's outbound login reads) and whole server-side and client-side SCRAM
 * exchanges on arbitrary bytes. The first byte picks the parser; whatever
 * is accepted must be consistent (a name within bounds, views inside the
 * input). */
#include <string.h>

#include "base/util.h"
#include "sasl/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exchange(const uint8_t *p, size_t n)
{
    /* client-first, then the rest as client-final */
    const uint8_t *split = memchr(p, '\n', n);
    size_t n1 = split ? (size_t)(split - p) : n;
    sasl_scram s;
    if (sasl_scram_first(&s, SASL_SCRAM_SHA_256, p, n1) != NULL)
        return;
    static sasl_cred cred;
    if (cred.iterations == 0)
        sasl_cred_make(&cred, SASL_SCRAM_SHA_256, "pw", (const uint8_t *)"salt", 4, 4096);
    char out[SASL_MSG_MAX * 2];
    if (sasl_scram_challenge(&s, &cred, "srv", out, sizeof out) == 0 || !split)
        return;
    sasl_scram_final(&s, split + 1, n - n1 - 1, out, sizeof out);
}

/* The client's side: a fixed client-first, then server-first and
 * server-final from the input. */
static void client_exchange(const uint8_t *p, size_t n)
{
    const uint8_t *split = memchr(p, '\n', n);
    size_t n1 = split ? (size_t)(split - p) : n;
    sasl_server_first f;
    if (sasl_parse_server_first(p, n1, &f) != NULL || f.iterations > 2 * SASL_SCRAM_ITERATIONS_MIN)
        return; /* the parser is fuzzed alone; bound the key derivation's cost */
    sasl_scram_client s;
    char out[SASL_MSG_MAX * 2];
    size_t len;
    CK_ASSERT(sasl_scram_client_first(&s, SASL_SCRAM_SHA_512, "user", "cnonce", out, sizeof out) > 0);
    if (sasl_scram_client_final(&s, "pw", p, n1, out, sizeof out, &len) != NULL || !split)
        return;
    CK_ASSERT(len == strlen(out));
    sasl_scram_client_verify(&s, split + 1, n - n1 - 1); /* must not crash; a forged signature never passes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 8) {
    case 0: {
        sasl_plain pl;
        if (!sasl_parse_plain(p, n, &pl))
            CK_ASSERT(pl.name_len > 0 && pl.name_len <= SASL_NAME_MAX && pl.password + pl.password_len == (const char *)p + n);
        break;
    }
    case 1: {
        sasl_client_first f;
        if (!sasl_parse_client_first(p, n, &f))
            CK_ASSERT(strlen(f.name) > 0 && f.bare_off < n && f.nonce + f.nonce_len <= (const char *)p + n);
        break;
    }
    case 2: {
        sasl_client_final f;
        if (!sasl_parse_client_final(p, n, &f))
            CK_ASSERT(f.without_proof_len < n && f.proof_len <= SASL_KEY_MAX);
        break;
    }
    case 4: {
        sasl_server_first f;
        if (!sasl_parse_server_first(p, n, &f))
            CK_ASSERT(f.nonce + f.nonce_len <= (const char *)p + n && f.salt_len > 0 &&
                      f.iterations >= SASL_SCRAM_ITERATIONS_MIN);
        break;
    }
    case 5: {
        uint8_t sig[SASL_KEY_MAX];
        size_t len = 0;
        if (!sasl_parse_server_final(p, n, sig, &len))
            CK_ASSERT(len > 0 && len <= SASL_KEY_MAX);
        break;
    }
    case 6:
        client_exchange(p, n);
        break;
    default:
        exchange(p, n);
    }
    return 0;
}
