/*
 * acl.h - Kafka's access control lists as a pure model: the ACLs of a
 * cluster (an indexed set), the filters DescribeAcls and DeleteAcls match
 * them with, and the authorization decision for one (principal, host,
 * operation, resource). No threads, sockets or clocks; src/meta keeps a set
 * in each metadata image and src/broker asks it.
 *
 * The decision follows Kafka's standard authorizer:
 *   - a super user (super.users) is allowed everything;
 *   - the ACLs that apply to a resource are the LITERAL ones of its exact
 *     name, the LITERAL ones named "*" (of its type), and the PREFIXED ones
 *     whose name is a prefix of its name;
 *   - of those, an ACL matches the request when its principal is the
 *     request's or "User:*", its host the request's or "*", and its
 *     operation covers the request's;
 *   - a matching DENY wins over any ALLOW; a DENY covers the operation
 *     when it is the operation itself or ALL;
 *   - an ALLOW covers the operation when it is the operation itself or
 *     ALL; DESCRIBE is also covered by READ, WRITE, DELETE and ALTER, and
 *     DESCRIBE_CONFIGS by ALTER_CONFIGS;
 *   - when no ACL at all applies to the resource (whoever it names),
 *     allow.everyone.if.no.acl.found decides (false by default);
 *   - otherwise the request is denied.
 *
 * Cost of a check: one hash lookup for the literal name, one for "*", and
 * one per distinct PREFIXED name length present for the resource type (the
 * prefix of the resource's name of that length is looked up); never a scan
 * of every ACL.
 *
 * A set is reference-counted. A published one is never changed: a writer
 * takes acl_set_own first, which copies the set when someone else holds it.
 */
#ifndef CHRONIK_ACL_ACL_H
#define CHRONIK_ACL_ACL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/hmap.h"

/* Kafka's codes, as CreateAcls and AccessControlEntryRecord carry them. */
enum acl_resource_type {
    ACL_RES_UNKNOWN = 0, ACL_RES_ANY = 1, ACL_RES_TOPIC = 2, ACL_RES_GROUP = 3, ACL_RES_CLUSTER = 4,
    ACL_RES_TRANSACTIONAL_ID = 5, ACL_RES_DELEGATION_TOKEN = 6, ACL_RES_USER = 7,
};
enum acl_pattern_type {
    ACL_PAT_UNKNOWN = 0, ACL_PAT_ANY = 1, ACL_PAT_MATCH = 2, ACL_PAT_LITERAL = 3, ACL_PAT_PREFIXED = 4,
};
enum acl_operation {
    ACL_OP_UNKNOWN = 0, ACL_OP_ANY = 1, ACL_OP_ALL = 2, ACL_OP_READ = 3, ACL_OP_WRITE = 4, ACL_OP_CREATE = 5,
    ACL_OP_DELETE = 6, ACL_OP_ALTER = 7, ACL_OP_DESCRIBE = 8, ACL_OP_CLUSTER_ACTION = 9,
    ACL_OP_DESCRIBE_CONFIGS = 10, ACL_OP_ALTER_CONFIGS = 11, ACL_OP_IDEMPOTENT_WRITE = 12,
    ACL_OP_CREATE_TOKENS = 13, ACL_OP_DESCRIBE_TOKENS = 14,
};
enum acl_permission { ACL_PERM_UNKNOWN = 0, ACL_PERM_ANY = 1, ACL_PERM_DENY = 2, ACL_PERM_ALLOW = 3 };

#define ACL_WILDCARD "*"              /* a LITERAL name, principal or host matching all */
#define ACL_WILDCARD_PRINCIPAL "User:*"
#define ACL_CLUSTER_NAME "kafka-cluster" /* the one CLUSTER resource */
#define ACL_NAME_MAX 32767
#define ACL_SET_MAX 100000            /* ACLs a cluster holds at most */

/* One ACL (an AccessControlEntryRecord). Strings are NUL-terminated. */
typedef struct acl_entry {
    uint8_t id[16];
    int8_t resource_type; /* a concrete type: TOPIC .. USER */
    int8_t pattern_type;  /* LITERAL or PREFIXED */
    int8_t operation;     /* ALL .. DESCRIBE_TOKENS */
    int8_t permission;    /* DENY or ALLOW */
    char *name;
    char *principal;
    char *host;
} acl_entry;

/* A view of an ACL's fields, to add, compare or validate one. */
typedef struct acl_binding {
    int8_t resource_type, pattern_type, operation, permission;
    const char *name, *principal, *host; /* NUL-terminated */
} acl_binding;

/* A DescribeAcls / DeleteAcls filter: NULL strings and ANY codes match
 * everything; pattern MATCH matches every ACL that would apply to the
 * LITERAL resource name (its exact name, "*", and PREFIXED ones that are
 * prefixes of it). */
typedef struct acl_filter {
    int8_t resource_type, pattern_type, operation, permission;
    const char *name, *principal, *host; /* NULL: any */
} acl_filter;

typedef struct acl_set acl_set;

acl_set *acl_set_new(void);
/* Another holder of s (may be NULL). */
acl_set *acl_set_ref(acl_set *s);
void acl_set_unref(acl_set *s); /* NULL is fine */
/* The set to change in place: *s itself when the caller is its only holder,
 * else a copy that replaces the caller's reference. *s NULL: a new set. */
acl_set *acl_set_own(acl_set **s);
/* Adds an ACL under id: false (nothing added) when the id is taken, the set
 * is full or the binding is invalid. */
bool acl_set_add(acl_set *s, const uint8_t id[16], const acl_binding *b);
/* Removes the ACL of id; false when there is none. */
bool acl_set_remove(acl_set *s, const uint8_t id[16]);
int32_t acl_set_count(const acl_set *s); /* 0 for NULL */
bool acl_set_has_id(const acl_set *s, const uint8_t id[16]); /* s may be NULL */
/* The i-th ACL (0 <= i < count), in no particular order (a removal moves
 * the last ACL into the gap). */
const acl_entry *acl_set_at(const acl_set *s, int32_t i);
/* The ACL equal to b (every field but the id), or NULL. */
const acl_entry *acl_set_find(const acl_set *s, const acl_binding *b);
/* Abort unless the indexes agree with the entries. */
void acl_set_check(const acl_set *s);

/* Why b cannot be stored as an ACL (Kafka's checks on CreateAcls), or NULL. */
const char *acl_binding_error(const acl_binding *b);
/* Why f is not a valid DescribeAcls/DeleteAcls filter, or NULL. */
const char *acl_filter_error(const acl_filter *f);
bool acl_filter_matches(const acl_filter *f, const acl_entry *e);
acl_binding acl_entry_binding(const acl_entry *e);

/* The authorizer's settings (Kafka's keys). */
typedef struct acl_config {
    bool enabled;                /* authorizer.class.name non-empty */
    bool allow_if_no_acl;        /* allow.everyone.if.no.acl.found */
    int32_t nsuper;
    char **super_users;          /* super.users, split at ';' and trimmed */
} acl_config;
/* Fills c from the three settings (NULL or "" when unset); frees with
 * acl_config_free. */
void acl_config_init(acl_config *c, const char *class_name, const char *super_users, bool allow_if_no_acl);
void acl_config_free(acl_config *c);
bool acl_is_super(const acl_config *c, const char *principal);

/* One question: may principal at host (an IP) do op on resource (type,
 * name, len)? s may be NULL (no ACLs). */
typedef struct acl_request {
    const char *principal;
    const char *host;
    int8_t operation;
    int8_t resource_type;
    const char *name;
    size_t name_len;
} acl_request;
bool acl_authorize(const acl_set *s, const acl_config *c, const acl_request *q);
/* Whether some resource of q->resource_type may be acted on with
 * q->operation by the principal (q->name unused): an ALLOW of the type
 * matches it and no matching DENY on "*" of the type refuses all of them
 * (Kafka's authorizeByResourceType, used where IDEMPOTENT_WRITE on the
 * cluster may come from WRITE on any topic). */
bool acl_authorize_any(const acl_set *s, const acl_config *c, const acl_request *q);

/* ssl.principal.mapping.rules (Kafka's): how a TLS client certificate's
 * subject (an RFC 2253 string) becomes the name of a "User:" principal.
 * Rules separated by commas, tried in order; the first that applies
 * decides:
 *   DEFAULT                          the subject as it is;
 *   RULE:pattern/replacement/[L|U]   when pattern (a POSIX extended regular
 *       expression) matches the whole subject: replacement, its $1..$9 the
 *       pattern's groups, lower-cased (L) or upper-cased (U).
 * When none applies there is no principal (Kafka refuses the connection).
 * ssl_rules.c gives the details of the format. */
typedef struct acl_ssl_rules acl_ssl_rules;
/* The rules of spec (NULL or blank: DEFAULT), or NULL with why in err. */
acl_ssl_rules *acl_ssl_rules_parse(const char *spec, char *err, size_t errlen);
void acl_ssl_rules_free(acl_ssl_rules *r); /* NULL is fine */
/* The principal name for subject into out (n bytes); false when no rule
 * applies or the name does not fit. */
bool acl_ssl_rules_map(const acl_ssl_rules *r, const char *subject, char *out, size_t n);

/* Names for logs and errors. */
const char *acl_operation_name(int8_t op);

#endif
