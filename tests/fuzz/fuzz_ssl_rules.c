/* fuzz_ssl_rules.c - libFuzzer target: ssl.principal.mapping.rules. The
 * input's first line is the setting (a NUL ends it), the rest a subject to
 * map. Must never crash or leak; a setting refused says why, and a mapped
 * name is a NUL-terminated string that fits the buffer. */
#include <stdlib.h>
#include <string.h>

#include "acl/acl.h"
#include "base/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    CK_ASSERT(text != NULL);
    char *nl = strchr(text, '\n');
    const char *subject = nl ? nl + 1 : "CN=alice,OU=eng,O=acme";
    if (nl)
        *nl = 0;
    char err[160] = "", out[64];
    acl_ssl_rules *r = acl_ssl_rules_parse(text, err, sizeof err);
    CK_ASSERT(r != NULL || err[0] != 0);
    if (r && acl_ssl_rules_map(r, subject, out, sizeof out))
        CK_ASSERT(strlen(out) < sizeof out);
    acl_ssl_rules_free(r);
    free(text);
    return 0;
}
