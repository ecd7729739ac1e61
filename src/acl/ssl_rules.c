/* ssl_rules.c - ssl.principal.mapping.rules: the rules that turn a TLS
 * client certificate's subject into a principal name (acl.h states them).
 *
 * Format (Kafka's SslPrincipalMapper). The setting is a list of rules
 * separated by commas or newlines, blanks around them ignored:
 *   DEFAULT
 *   RULE:<pattern>/<replacement>/[L|U]
 * In pattern and replacement a backslash escapes the next character ("\/"
 * is a slash that does not end them); anything after the flag up to the
 * next separator is ignored, as Kafka does. Patterns are POSIX extended
 * regular expressions (Kafka's are Java's: most rules written for Kafka,
 * such as "^CN=(.*?),OU=ServiceUsers.*$", mean the same; a lazy quantifier
 * acts as a greedy one). The replacement's "$1".."$9" are the pattern's
 * groups; "\x" is x. The first rule whose pattern matches the whole subject
 * decides; L lower-cases and U upper-cases its result.
 *
 * Limits. Compiling a regular expression can take memory exponential in
 * its repetitions ("(a{30}){30}", "a+++++"), so a pattern is refused when
 * it is longer than SSL_PATTERN_MAX, stacks more than a quantifier and a
 * '?', or has more than SSL_BOUNDS_MAX bounded repetitions or a bound
 * above SSL_BOUND_MAX.
 */
#include "acl/acl.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define SSL_RULES_MAX 64     /* rules in one setting */
#define SSL_GROUPS_MAX 10    /* $0..$9 */
#define SSL_PATTERN_MAX 256  /* characters of a pattern */
#define SSL_BOUNDS_MAX 2     /* {m,n} repetitions in a pattern */
#define SSL_BOUND_MAX 32     /* largest m or n in one */

typedef struct ssl_rule {
    bool is_default;
    regex_t re;
    char *replacement;       /* escapes kept, read by expand() */
    char fold;               /* 0, 'L' or 'U' */
} ssl_rule;

struct acl_ssl_rules {
    int32_t n;
    ssl_rule v[SSL_RULES_MAX];
};

static acl_ssl_rules *fail(acl_ssl_rules *r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static acl_ssl_rules *fail(acl_ssl_rules *r, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    acl_ssl_rules_free(r);
    return NULL;
}

/* The text from *p up to an unescaped '/' (escapes kept, or with "\/"
 * turned into "/" when unescape_slash); *p ends past the slash. NULL when
 * there is no closing slash. */
static char *until_slash(const char **p, bool unescape_slash)
{
    const char *s = *p;
    size_t n = 0;
    char *out = xmalloc(strlen(s) + 1);
    for (; *s && *s != '/'; s++) {
        if (*s == '\\' && s[1]) {
            if (!(unescape_slash && s[1] == '/'))
                out[n++] = *s;
            s++;
        }
        out[n++] = *s;
    }
    out[n] = 0;
    if (*s != '/') {
        free(out);
        return NULL;
    }
    *p = s + 1;
    return out;
}

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    return s;
}

static bool is_quantifier(char c)
{
    return c == '*' || c == '+' || c == '?' || c == '}';
}

/* Why pattern is refused by the limits above, or NULL. */
static const char *pattern_problem(const char *pattern)
{
    if (strlen(pattern) > SSL_PATTERN_MAX)
        return "a RULE's pattern is longer than 256 characters";
    int bounds = 0;
    for (const char *s = pattern; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            continue;
        }
        if (is_quantifier(*s) && is_quantifier(s[1]) && (s[1] != '?' || is_quantifier(s[2])))
            return "a RULE's pattern stacks quantifiers";
        if (*s != '{')
            continue;
        if (++bounds > SSL_BOUNDS_MAX)
            return "a RULE's pattern has more than 2 {m,n} repetitions";
        for (const char *d = s + 1; *d && *d != '}'; d++)
            if (isdigit((unsigned char)*d) && strtol(d, NULL, 10) > SSL_BOUND_MAX)
                return "a RULE's pattern repeats more than 32 times";
    }
    return NULL;
}

/* One RULE: body at *p (past "RULE:"). */
static const char *parse_rule(ssl_rule *rule, const char **p)
{
    char *pattern = until_slash(p, true);
    if (!pattern)
        return "a RULE needs RULE:pattern/replacement/";
    rule->replacement = until_slash(p, false);
    if (!rule->replacement) {
        free(pattern);
        return "a RULE needs RULE:pattern/replacement/";
    }
    const char *why = pattern_problem(pattern);
    if (!why && regcomp(&rule->re, pattern, REG_EXTENDED) != 0)
        why = "a RULE's pattern is not a valid regular expression";
    free(pattern);
    if (why) {
        free(rule->replacement);
        rule->replacement = NULL;
        return why;
    }
    if (**p == 'L' || **p == 'U')
        rule->fold = *(*p)++;
    while (**p && **p != ',' && **p != '\n') /* the rest of the rule is ignored, as in Kafka */
        (*p)++;
    return NULL;
}

acl_ssl_rules *acl_ssl_rules_parse(const char *spec, char *err, size_t errlen)
{
    acl_ssl_rules *r = xcalloc(1, sizeof *r);
    const char *p = skip_blanks(spec ? spec : "");
    if (!*p) {
        r->v[r->n++].is_default = true;
        return r;
    }
    while (*p) {
        if (r->n == SSL_RULES_MAX)
            return fail(r, err, errlen, "more than %d rules", SSL_RULES_MAX);
        ssl_rule *rule = &r->v[r->n];
        if (strncmp(p, "DEFAULT", 7) == 0) {
            rule->is_default = true;
            p += 7;
        } else if (strncmp(p, "RULE:", 5) == 0) {
            p += 5;
            const char *why = parse_rule(rule, &p);
            if (why)
                return fail(r, err, errlen, "rule %d: %s", r->n + 1, why);
        } else {
            return fail(r, err, errlen, "rule %d: not DEFAULT or RULE:pattern/replacement/[LU]", r->n + 1);
        }
        r->n++;
        p = skip_blanks(p);
        if (*p && *p != ',')
            return fail(r, err, errlen, "rule %d: unexpected text after it", r->n);
        if (*p == ',')
            p = skip_blanks(p + 1);
    }
    return r;
}

void acl_ssl_rules_free(acl_ssl_rules *r)
{
    if (!r)
        return;
    for (int32_t i = 0; i < r->n; i++)
        if (r->v[i].replacement) {
            regfree(&r->v[i].re);
            free(r->v[i].replacement);
        }
    free(r);
}

/* rule's replacement with the groups of m in subject, into out (n > 0);
 * false when it does not fit. */
static bool expand(const ssl_rule *rule, const char *subject, const regmatch_t *m, char *out, size_t n)
{
    size_t k = 0;
    for (const char *s = rule->replacement; *s; s++) {
        const char *from = s;
        size_t len = 1;
        if (*s == '\\' && s[1]) {
            from = ++s;
        } else if (*s == '$' && isdigit((unsigned char)s[1])) {
            const regmatch_t *g = &m[*++s - '0'];
            from = subject + (g->rm_so >= 0 ? g->rm_so : 0);
            len = g->rm_so >= 0 ? (size_t)(g->rm_eo - g->rm_so) : 0;
        }
        if (k + len >= n)
            return false;
        memcpy(out + k, from, len);
        k += len;
    }
    out[k] = 0;
    for (char *c = out; rule->fold && *c; c++)
        *c = (char)(rule->fold == 'L' ? tolower((unsigned char)*c) : toupper((unsigned char)*c));
    return true;
}

bool acl_ssl_rules_map(const acl_ssl_rules *r, const char *subject, char *out, size_t n)
{
    CK_ASSERT(n > 0);
    size_t len = strlen(subject);
    for (int32_t i = 0; i < r->n; i++) {
        const ssl_rule *rule = &r->v[i];
        if (rule->is_default) {
            if (len >= n)
                return false;
            memcpy(out, subject, len + 1);
            return true;
        }
        regmatch_t m[SSL_GROUPS_MAX];
        if (regexec(&rule->re, subject, SSL_GROUPS_MAX, m, 0) == 0 && m[0].rm_so == 0 && (size_t)m[0].rm_eo == len)
            return expand(rule, subject, m, out, n);
    }
    return false;
}
