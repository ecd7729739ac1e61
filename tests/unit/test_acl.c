/* test_acl.c - the ACL model: Kafka's authorization rules, the indexes
 * kept by add and remove, copy-on-write, filters and configuration. */
#include "acl/acl.h"
#include "base/util.h"
#include "test.h"

static uint8_t next_id[16];

static const uint8_t *fresh_id(void)
{
    for (int i = 15; i >= 0 && ++next_id[i] == 0; i--)
        ;
    return next_id;
}

static const uint8_t *add(acl_set *s, int8_t type, int8_t pattern, const char *name, const char *principal,
                          const char *host, int8_t op, int8_t perm)
{
    acl_binding b = {type, pattern, op, perm, name, principal, host};
    const uint8_t *id = fresh_id();
    CHECK(acl_set_add(s, id, &b));
    acl_set_check(s);
    return id;
}

static bool may(const acl_set *s, const acl_config *c, const char *principal, const char *host, int8_t op,
                int8_t type, const char *name)
{
    acl_request q = {principal, host, op, type, name, strlen(name)};
    return acl_authorize(s, c, &q);
}

static acl_config on(void)
{
    acl_config c;
    acl_config_init(&c, "org.apache.kafka.metadata.authorizer.StandardAuthorizer", NULL, false);
    return c;
}

/* With the authorizer on and no ACL for a resource, everyone is refused
 * unless allow.everyone.if.no.acl.found; off, everything is allowed. */
TEST(deny_by_default)
{
    acl_set *s = acl_set_new();
    acl_config c = on(), off, open;
    acl_config_init(&off, "", NULL, false);
    acl_config_init(&open, "x", NULL, true);
    CHECK(!may(s, &c, "User:alice", "1.2.3.4", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    CHECK(may(s, &off, "User:alice", "1.2.3.4", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    CHECK(may(s, &open, "User:alice", "1.2.3.4", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    CHECK(may(NULL, &open, "User:alice", "1.2.3.4", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    /* an ACL for someone else on the resource: no longer "no ACL found" */
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:bob", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    CHECK(!may(s, &open, "User:alice", "1.2.3.4", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    CHECK(may(s, &open, "User:alice", "1.2.3.4", ACL_OP_READ, ACL_RES_TOPIC, "u"));
    acl_config_free(&c);
    acl_config_free(&off);
    acl_config_free(&open);
    acl_set_unref(s);
}

/* DENY wins over ALLOW; a DENY of one operation leaves the others alone. */
TEST(deny_wins)
{
    acl_set *s = acl_set_new();
    acl_config c = on();
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:*", "*", ACL_OP_ALL, ACL_PERM_ALLOW);
    add(s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "t", "User:alice", "*", ACL_OP_WRITE, ACL_PERM_DENY);
    CHECK(!may(s, &c, "User:alice", "h", ACL_OP_WRITE, ACL_RES_TOPIC, "t"));
    CHECK(may(s, &c, "User:alice", "h", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    CHECK(may(s, &c, "User:bob", "h", ACL_OP_WRITE, ACL_RES_TOPIC, "t"));
    /* a DENY of DESCRIBE does not deny READ; a DENY of ALL denies all */
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "t", "User:bob", "*", ACL_OP_DESCRIBE, ACL_PERM_DENY);
    CHECK(may(s, &c, "User:bob", "h", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    CHECK(!may(s, &c, "User:bob", "h", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "t"));
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:carol", "*", ACL_OP_ALL, ACL_PERM_DENY);
    CHECK(!may(s, &c, "User:carol", "h", ACL_OP_READ, ACL_RES_TOPIC, "t"));
    acl_config_free(&c);
    acl_set_unref(s);
}

/* Kafka's implications: READ/WRITE/DELETE/ALTER imply DESCRIBE,
 * ALTER_CONFIGS implies DESCRIBE_CONFIGS, ALL everything; nothing else. */
TEST(implied_operations)
{
    acl_set *s = acl_set_new();
    acl_config c = on();
    const int8_t describers[] = {ACL_OP_READ, ACL_OP_WRITE, ACL_OP_DELETE, ACL_OP_ALTER};
    for (size_t i = 0; i < ARRAY_LEN(describers); i++) {
        char name[32];
        snprintf(name, sizeof name, "t%zu", i);
        add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, name, "User:a", "*", describers[i], ACL_PERM_ALLOW);
        CHECK(may(s, &c, "User:a", "h", ACL_OP_DESCRIBE, ACL_RES_TOPIC, name));
        CHECK(!may(s, &c, "User:a", "h", ACL_OP_CREATE, ACL_RES_TOPIC, name));
    }
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "cfg", "User:a", "*", ACL_OP_ALTER_CONFIGS, ACL_PERM_ALLOW);
    CHECK(may(s, &c, "User:a", "h", ACL_OP_DESCRIBE_CONFIGS, ACL_RES_TOPIC, "cfg"));
    CHECK(!may(s, &c, "User:a", "h", ACL_OP_DESCRIBE, ACL_RES_TOPIC, "cfg"));
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "d", "User:a", "*", ACL_OP_DESCRIBE, ACL_PERM_ALLOW);
    CHECK(!may(s, &c, "User:a", "h", ACL_OP_READ, ACL_RES_TOPIC, "d"));
    add(s, ACL_RES_CLUSTER, ACL_PAT_LITERAL, ACL_CLUSTER_NAME, "User:a", "*", ACL_OP_ALL, ACL_PERM_ALLOW);
    CHECK(may(s, &c, "User:a", "h", ACL_OP_CLUSTER_ACTION, ACL_RES_CLUSTER, ACL_CLUSTER_NAME));
    CHECK(may(s, &c, "User:a", "h", ACL_OP_IDEMPOTENT_WRITE, ACL_RES_CLUSTER, ACL_CLUSTER_NAME));
    acl_config_free(&c);
    acl_set_unref(s);
}

/* LITERAL "*" and PREFIXED names apply; types, principals and hosts must match. */
TEST(patterns_principals_hosts)
{
    acl_set *s = acl_set_new();
    acl_config c = on();
    add(s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "orders-", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    add(s, ACL_RES_GROUP, ACL_PAT_LITERAL, "*", "User:a", "10.0.0.1", ACL_OP_READ, ACL_PERM_ALLOW);
    CHECK(may(s, &c, "User:a", "h", ACL_OP_READ, ACL_RES_TOPIC, "orders-eu"));
    CHECK(may(s, &c, "User:a", "h", ACL_OP_READ, ACL_RES_TOPIC, "orders-"));
    CHECK(!may(s, &c, "User:a", "h", ACL_OP_READ, ACL_RES_TOPIC, "orders"));
    CHECK(!may(s, &c, "User:a", "h", ACL_OP_READ, ACL_RES_TOPIC, "xorders-eu"));
    CHECK(!may(s, &c, "User:b", "h", ACL_OP_READ, ACL_RES_TOPIC, "orders-eu"));
    CHECK(!may(s, &c, "User:a", "h", ACL_OP_READ, ACL_RES_GROUP, "orders-eu"));
    CHECK(may(s, &c, "User:a", "10.0.0.1", ACL_OP_READ, ACL_RES_GROUP, "g1"));
    CHECK(!may(s, &c, "User:a", "10.0.0.2", ACL_OP_READ, ACL_RES_GROUP, "g1"));
    acl_config_free(&c);
    acl_set_unref(s);
}

/* super.users (semicolon-separated, trimmed) bypass every check. */
TEST(super_users)
{
    acl_set *s = acl_set_new();
    acl_config c;
    acl_config_init(&c, "kafka.security.authorizer.AclAuthorizer", " User:admin ;User:ops;;", false);
    CHECK_EQ_INT(c.nsuper, 2);
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:*", "*", ACL_OP_ALL, ACL_PERM_DENY);
    CHECK(may(s, &c, "User:admin", "h", ACL_OP_WRITE, ACL_RES_TOPIC, "t"));
    CHECK(may(s, &c, "User:ops", "h", ACL_OP_WRITE, ACL_RES_TOPIC, "t"));
    CHECK(!may(s, &c, "User:other", "h", ACL_OP_WRITE, ACL_RES_TOPIC, "t"));
    acl_config_free(&c);
    acl_set_unref(s);
}

/* Removal keeps the indexes right; a shared set is copied before a change. */
TEST(remove_and_copy_on_write)
{
    acl_set *s = acl_set_new();
    acl_config c = on();
    const uint8_t *id = add(s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "a", "User:x", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    uint8_t first[16];
    memcpy(first, id, 16);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        add(s, ACL_RES_TOPIC, (int8_t)(i % 2 ? ACL_PAT_PREFIXED : ACL_PAT_LITERAL), name, "User:x", "*",
            ACL_OP_READ, ACL_PERM_ALLOW);
    }
    acl_set *shared = acl_set_ref(s);
    acl_set *mine = s;
    CHECK(acl_set_own(&mine) != shared);
    CHECK(acl_set_remove(mine, first));
    CHECK(!acl_set_remove(mine, first));
    acl_set_check(mine);
    CHECK_EQ_INT(acl_set_count(mine), 50);
    CHECK_EQ_INT(acl_set_count(shared), 51);
    CHECK(!may(mine, &c, "User:x", "h", ACL_OP_READ, ACL_RES_TOPIC, "abc"));
    CHECK(may(shared, &c, "User:x", "h", ACL_OP_READ, ACL_RES_TOPIC, "abc"));
    while (acl_set_count(mine) > 0) {
        uint8_t victim[16];
        memcpy(victim, acl_set_at(mine, 0)->id, 16);
        CHECK(acl_set_remove(mine, victim));
        acl_set_check(mine);
    }
    CHECK(!may(mine, &c, "User:x", "h", ACL_OP_READ, ACL_RES_TOPIC, "p1x"));
    acl_set_unref(mine);
    acl_set_unref(shared);
    acl_config_free(&c);
}

/* A duplicate id and invalid bindings are refused. */
TEST(bindings_validated)
{
    acl_set *s = acl_set_new();
    acl_binding ok = {ACL_RES_TOPIC, ACL_PAT_LITERAL, ACL_OP_READ, ACL_PERM_ALLOW, "t", "User:a", "*"};
    const uint8_t *id = fresh_id();
    CHECK(acl_set_add(s, id, &ok));
    CHECK(!acl_set_add(s, id, &ok));
    CHECK(acl_set_find(s, &ok) != NULL);
    acl_binding bad = ok;
    bad.principal = "alice";
    CHECK(acl_binding_error(&bad) != NULL);
    bad = ok;
    bad.pattern_type = ACL_PAT_MATCH;
    CHECK(acl_binding_error(&bad) != NULL);
    bad = ok;
    bad.operation = ACL_OP_ANY;
    CHECK(acl_binding_error(&bad) != NULL);
    bad = ok;
    bad.resource_type = ACL_RES_CLUSTER;
    CHECK(acl_binding_error(&bad) != NULL);
    bad.name = ACL_CLUSTER_NAME;
    CHECK(acl_binding_error(&bad) == NULL);
    bad = ok;
    bad.name = "";
    CHECK(!acl_set_add(s, fresh_id(), &bad));
    CHECK_EQ_INT(acl_set_count(s), 1);
    acl_set_unref(s);
}

/* Filters: ANY and exact types compare names, MATCH takes what applies. */
TEST(filters)
{
    acl_set *s = acl_set_new();
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "orders", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    add(s, ACL_RES_TOPIC, ACL_PAT_LITERAL, "*", "User:b", "*", ACL_OP_WRITE, ACL_PERM_DENY);
    add(s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "ord", "User:c", "*", ACL_OP_ALL, ACL_PERM_ALLOW);
    add(s, ACL_RES_GROUP, ACL_PAT_LITERAL, "orders", "User:a", "*", ACL_OP_READ, ACL_PERM_ALLOW);
    struct {
        acl_filter f;
        int want;
    } cases[] = {
        {{ACL_RES_ANY, ACL_PAT_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL}, 4},
        {{ACL_RES_TOPIC, ACL_PAT_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL}, 3},
        {{ACL_RES_TOPIC, ACL_PAT_ANY, ACL_OP_ANY, ACL_PERM_ANY, "orders", NULL, NULL}, 1},
        {{ACL_RES_TOPIC, ACL_PAT_MATCH, ACL_OP_ANY, ACL_PERM_ANY, "orders", NULL, NULL}, 3},
        {{ACL_RES_TOPIC, ACL_PAT_PREFIXED, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL}, 1},
        {{ACL_RES_ANY, ACL_PAT_ANY, ACL_OP_ANY, ACL_PERM_DENY, NULL, NULL, NULL}, 1},
        {{ACL_RES_ANY, ACL_PAT_ANY, ACL_OP_READ, ACL_PERM_ANY, NULL, "User:a", "*"}, 2},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        CHECK(acl_filter_error(&cases[i].f) == NULL);
        int n = 0;
        for (int32_t j = 0; j < acl_set_count(s); j++)
            n += acl_filter_matches(&cases[i].f, acl_set_at(s, j));
        CHECK_EQ_INT(n, cases[i].want);
    }
    acl_filter bad = {ACL_RES_UNKNOWN, ACL_PAT_ANY, ACL_OP_ANY, ACL_PERM_ANY, NULL, NULL, NULL};
    CHECK(acl_filter_error(&bad) != NULL);
    acl_set_unref(s);
}

/* WRITE on any topic (not denied) grants what IDEMPOTENT_WRITE would. */
TEST(authorize_any)
{
    acl_set *s = acl_set_new();
    acl_config c = on();
    acl_request q = {"User:a", "h", ACL_OP_WRITE, ACL_RES_TOPIC, NULL, 0};
    CHECK(!acl_authorize_any(s, &c, &q));
    add(s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "logs-", "User:a", "*", ACL_OP_WRITE, ACL_PERM_ALLOW);
    CHECK(acl_authorize_any(s, &c, &q));
    add(s, ACL_RES_TOPIC, ACL_PAT_PREFIXED, "log", "User:a", "*", ACL_OP_WRITE, ACL_PERM_DENY);
    CHECK(!acl_authorize_any(s, &c, &q));
    acl_config_free(&c);
    acl_set_unref(s);
}

/* The name subject maps to by spec ("" when none). */
static const char *mapped(const char *spec, const char *subject)
{
    static char out[256];
    char err[128];
    acl_ssl_rules *r = acl_ssl_rules_parse(spec, err, sizeof err);
    CHECK(r != NULL);
    if (!r)
        return "(invalid)";
    if (!acl_ssl_rules_map(r, subject, out, sizeof out))
        out[0] = 0;
    acl_ssl_rules_free(r);
    return out;
}

/* ssl.principal.mapping.rules as Kafka's documentation uses them. */
TEST(ssl_mapping_rules)
{
    const char *dn = "CN=alice,OU=ServiceUsers,O=Acme,C=US";
    CHECK(strcmp(mapped(NULL, dn), dn) == 0);
    CHECK(strcmp(mapped("DEFAULT", dn), dn) == 0);
    const char *rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\n RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, "
                        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L, DEFAULT";
    CHECK(strcmp(mapped(rules, dn), "alice") == 0);
    CHECK(strcmp(mapped(rules, "CN=Bob,OU=Eng,O=Acme,L=Paris,ST=IDF,C=FR"), "bob@eng") == 0);
    CHECK(strcmp(mapped(rules, "O=acme,CN=Carol.X,OU=x"), "carol.x") == 0);
    CHECK(strcmp(mapped(rules, "O=nobody"), "O=nobody") == 0);             /* DEFAULT last */
    CHECK(strcmp(mapped("RULE:^CN=([^,]*).*$/$1/U", "CN=dave,O=x"), "DAVE") == 0);
    CHECK(strcmp(mapped("RULE:^CN=([^,]*)$/$1/", "CN=dave,O=x"), "") == 0); /* whole subject only: no rule applies */
    CHECK(strcmp(mapped("RULE:^O=a\\/b,CN=(.*)$/x\\$$1/", "O=a/b,CN=eve"), "x$eve") == 0); /* escapes */
    char err[128];
    const char *bad[] = {"RULE:abc", "RULE:abc/def", "RULE:(/x/", "NOPE", "DEFAULT x", "DEFAULT,,",
                         "RULE:a+++/x/", "RULE:(a{2}){3}b{4}/x/", "RULE:a{33}/x/"}; /* the last three: limits */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        CHECK(acl_ssl_rules_parse(bad[i], err, sizeof err) == NULL);
        CHECK(err[0] != 0);
    }
    char small[4];
    acl_ssl_rules *r = acl_ssl_rules_parse("DEFAULT", err, sizeof err);
    CHECK(!acl_ssl_rules_map(r, "CN=long", small, sizeof small)); /* does not fit */
    acl_ssl_rules_free(r);
}
