/* config.c - the configuration table, properties-file reader and value parsers (config.h). */
#include "broker/config.h"

#include <ctype.h>
#include <inttypes.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl/acl.h"
#include "base/log.h"
#include "base/util.h"
#include "net/net.h"
#include "sasl/sasl.h"

enum ctype {
    CT_I16, CT_I32, CT_I64, CT_DOUBLE, CT_BOOL, CT_STR, CT_ADDR, CT_ADVERTISED, CT_LISTENERS,
    CT_VOTERS, CT_HOURS_AS_MS, CT_MINUTES_AS_MS, CT_LOGLEVEL, CT_TIMESTAMP_TYPE, CT_IGNORED
};

/* Row flags. DYN: Kafka updates the key at run time (its "cluster-wide"
 * mode: per broker or as the cluster-wide default, through AlterConfigs on
 * a BROKER resource) and Chronik applies a new value from then on.
 * ALIAS: another name for a setting listed under its canonical key.
 * KAFKA_INT, KAFKA_LONG: the type DescribeConfigs reports, where Kafka's
 * differs from the field's. OWN: a key of Chronik's with no Kafka broker key
 * of that name (every other key is Kafka's, with Kafka's meaning). SECRET: a
 * password, never shown. */
enum { DYN = 1, ALIAS = 2, KAFKA_INT = 4, KAFKA_LONG = 8, OWN = 16, SECRET = 32 };

struct ckey {
    const char *key;
    enum ctype type;
    size_t off;
    size_t size; /* for CT_STR */
    const char *dflt;
    const char *help;
    int flags;
};

#define F(field) offsetof(config, field)
#define S(field) sizeof(((config *)0)->field)

/* One row per key. A key with a NULL default keeps what config_defaults set. */
static const struct ckey keys[] = {
    {"node.id", CT_I32, F(node_id), 0, "1", "this node's id"},
    {"listeners", CT_LISTENERS, 0, 0, NULL,
     "NAME://HOST:PORT,... e.g. PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093; "
     "each name's protocol comes from listener.security.protocol.map; an entry replaces the one of its name "
     "(default PLAINTEXT 127.0.0.1:9092, controller :9093)"},
    {"advertised.listeners", CT_ADVERTISED, 0, 0, NULL,
     "NAME://HOST:PORT,... what clients connected on each listener are told in Metadata (default: the "
     "listener's own address; an entry without a name is the inter-broker listener's)"},
    {"listener.security.protocol.map", CT_STR, F(protocol_map), S(protocol_map),
     "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
     "NAME:PROTOCOL,... the security protocol of each listener name (PLAINTEXT, SSL, SASL_PLAINTEXT or "
     "SASL_SSL)"},
    {"inter.broker.listener.name", CT_STR, F(inter_broker_listener_name), S(inter_broker_listener_name), "",
     "the listener brokers reach each other on: its advertised address and its security protocol (every "
     "client listener is registered; default: the listener named PLAINTEXT, else the first PLAINTEXT one)"},
    {"controller.listener.names", CT_STR, F(controller_listener_names), S(controller_listener_names),
     "CONTROLLER", "the name of the controller listener in listeners; nodes reach the quorum with its "
     "security protocol"},
    {"sasl.mechanism.inter.broker.protocol", CT_STR, F(sasl_mechanism_inter_broker), S(sasl_mechanism_inter_broker),
     "PLAIN", "the SASL mechanism a broker logs in to other brokers with when the inter-broker listener is "
     "SASL_PLAINTEXT or SASL_SSL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default GSSAPI is not offered)"},
    {"sasl.mechanism.controller.protocol", CT_STR, F(sasl_mechanism_controller), S(sasl_mechanism_controller),
     "PLAIN", "the SASL mechanism a node logs in to the quorum's controller listeners with when that listener "
     "is SASL_PLAINTEXT or SASL_SSL"},
    {"sasl.jaas.config", CT_STR, F(sasl_jaas_config), S(sasl_jaas_config), "",
     "the node's own login to its peers, in Kafka's JAAS form: 'org.apache.kafka.common.security.scram."
     "ScramLoginModule required username=\"broker\" password=\"secret\";' (PlainLoginModule alike); "
     "only username and password are read. Kafka's per-listener listener.name.L.MECH.sasl.jaas.config is "
     "not read: one login serves both the inter-broker and the controller listener", SECRET},
    {"ssl.endpoint.identification.algorithm", CT_STR, F(ssl_endpoint_identification),
     S(ssl_endpoint_identification), "https",
     "https: a peer's TLS certificate must name the host this node connects to (subjectAltName); empty: "
     "not checked (the certificate must still chain to ssl.truststore.location)"},
    {"ssl.keystore.type", CT_STR, F(ssl_keystore_type), S(ssl_keystore_type), "PEM",
     "PEM (JKS and PKCS12 are not read: convert them to PEM)"},
    {"ssl.keystore.location", CT_STR, F(ssl_keystore_location), S(ssl_keystore_location), "",
     "SSL listeners: a PEM file holding the private key and the certificate chain (read again when it "
     "changes, and on SIGHUP); also the certificate this node presents to peers that ask for one"},
    {"ssl.key.password", CT_STR, F(ssl_key_password), S(ssl_key_password), "",
     "the password of an encrypted private key in ssl.keystore.location", SECRET},
    {"ssl.truststore.type", CT_STR, F(ssl_truststore_type), S(ssl_truststore_type), "PEM", "PEM"},
    {"ssl.truststore.location", CT_STR, F(ssl_truststore_location), S(ssl_truststore_location), "",
     "a PEM file of the CA certificates that client certificates, and peers' certificates when this node "
     "connects to an SSL or SASL_SSL inter-broker or controller listener, must chain to"},
    {"ssl.client.auth", CT_STR, F(ssl_client_auth), S(ssl_client_auth), "none",
     "none, requested (a client certificate is verified if one is sent) or required"},
    {"ssl.enabled.protocols", CT_STR, F(ssl_enabled_protocols), S(ssl_enabled_protocols), "TLSv1.2,TLSv1.3",
     "TLSv1.2, TLSv1.3 or both; older versions are never offered"},
    {"ssl.principal.mapping.rules", CT_STR, F(ssl_principal_mapping_rules), S(ssl_principal_mapping_rules),
     "DEFAULT", "how a client certificate's subject (RFC 2253) becomes the name of its User: principal: "
     "DEFAULT (the subject itself) and RULE:pattern/replacement/[LU] rules, comma-separated, the first "
     "matching the whole subject deciding (POSIX regular expressions); none matching refuses the connection"},
    {"controller.quorum.voters", CT_VOTERS, 0, 0, NULL,
     "ID@HOST:PORT,... the metadata quorum (default: this node alone)"},
    {"admin.listeners", CT_ADDR, F(admin_listen), 0, "127.0.0.1:9644",
     "HTTP address for /health, /ready, /metrics and /status", OWN},
    {"log.dirs", CT_STR, F(data_dir), S(data_dir), "./chronik-data", "data directory"},
    {"log.dir", CT_STR, F(data_dir), S(data_dir), NULL, "same as log.dirs", ALIAS},
    {"cluster.id", CT_STR, F(cluster_id), S(cluster_id), "chronik-cluster",
     "cluster id reported to clients"},
    {"num.partitions", CT_I32, F(num_partitions), 0, "1", "partitions of an auto-created topic"},
    {"default.replication.factor", CT_I16, F(default_replication_factor), 0, "-1",
     "replication factor of a topic created without one (-1: 3, or the live brokers when fewer)"},
    {"min.insync.replicas", CT_I32, F(min_insync_replicas), 0, "1",
     "ISR size required for acks=all", DYN},
    {"unclean.leader.election.enable", CT_BOOL, F(unclean_leader_election_enable), 0, "false",
     "a partition whose ISR has no live member is led by a live replica outside it (may lose records)", DYN},
    {"auto.leader.rebalance.enable", CT_BOOL, F(auto_leader_rebalance_enable), 0, "true",
     "the controller gives leadership back to each partition's preferred replica when it is live and in sync"},
    {"leader.imbalance.check.interval.seconds", CT_I64, F(leader_imbalance_check_interval_seconds), 0, "300",
     "how often the controller checks for partitions not led by their preferred replica "
     "(also a few seconds after a broker returns)"},
    {"auto.create.topics.enable", CT_BOOL, F(auto_create_topics_enable), 0, "true",
     "create a topic on first use"},
    {"log.retention.ms", CT_I64, F(log_retention_ms), 0, "604800000", "time-based retention", DYN},
    {"log.retention.minutes", CT_MINUTES_AS_MS, F(log_retention_ms), 0, NULL,
     "time-based retention, minutes", DYN | ALIAS},
    {"log.retention.hours", CT_HOURS_AS_MS, F(log_retention_ms), 0, NULL,
     "time-based retention, hours", DYN | ALIAS},
    {"log.retention.bytes", CT_I64, F(log_retention_bytes), 0, "-1",
     "size-based retention per partition (-1: none)", DYN},
    {"log.segment.bytes", CT_I64, F(log_segment_bytes), 0, "1073741824", "segment size",
     DYN | KAFKA_INT},
    {"log.roll.ms", CT_I64, F(log_roll_ms), 0, "604800000", "roll a segment after this long", DYN},
    {"log.roll.hours", CT_HOURS_AS_MS, F(log_roll_ms), 0, NULL, "log.roll.ms in hours", DYN | ALIAS},
    {"log.retention.check.interval.ms", CT_I64, F(log_retention_check_interval_ms), 0, "300000",
     "how often retention and time-based rolls are checked"},
    {"log.cleaner.backoff.ms", CT_I64, F(log_cleaner_backoff_ms), 0, "15000",
     "how often the cleaner looks for compacted partitions to clean", DYN},
    {"log.cleaner.min.cleanable.ratio", CT_DOUBLE, F(log_cleaner_min_cleanable_ratio), 0, "0.5",
     "clean a partition once this share of its sealed bytes is dirty "
     "(min.cleanable.dirty.ratio)", DYN},
    {"log.cleaner.delete.retention.ms", CT_I64, F(log_cleaner_delete_retention_ms), 0, "86400000",
     "how long a compacted topic keeps tombstones (delete.retention.ms)", DYN},
    {"log.cleaner.min.compaction.lag.ms", CT_I64, F(log_cleaner_min_compaction_lag_ms), 0, "0",
     "records younger than this are never compacted (min.compaction.lag.ms)", DYN},
    {"log.cleaner.max.compaction.lag.ms", CT_I64, F(log_cleaner_max_compaction_lag_ms), 0,
     "9223372036854775807",
     "a dirty record older than this gets its partition cleaned whatever its dirty ratio "
     "(max.compaction.lag.ms)", DYN},
    {"log.index.interval.bytes", CT_I32, F(log_index_interval_bytes), 0, "4096",
     "bytes between offset-index entries", DYN},
    {"log.flush.interval.messages", CT_I64, F(log_flush_interval_messages), 0,
     "9223372036854775807", "sync after this many messages (default: before every ack)", DYN},
    {"log.flush.interval.ms", CT_I64, F(log_flush_interval_ms), 0, "9223372036854775807",
     "sync after this long (default: before every ack)", DYN},
    {"log.preallocate", CT_BOOL, F(log_preallocate), 0, "true",
     "keep zeros written ahead of small appends so that their fsync commits no file metadata", DYN},
    {"log.cache.window.bytes", CT_I64, F(log_cache_window_bytes), 0, "268435456",
     "page cache kept per partition behind its log end; older synced pages are dropped "
     "(-1: keep all)", DYN | OWN},
    {"log.dir.free.bytes.warn", CT_I64, F(log_dir_free_bytes_warn), 0, "1073741824",
     "cluster status warns when the data directory's filesystem has less free (or less than 5% of its size, "
     "whichever is smaller)", DYN | OWN},
    {"log.scrub.interval.ms", CT_I64, F(log_scrub_interval_ms), 0, "86400000",
     "re-verify the CRCs of closed segments this often, and once soon after start (0: never)", OWN},
    {"message.max.bytes", CT_I32, F(message_max_bytes), 0, "1048588", "largest record batch", DYN},
    {"log.message.timestamp.type", CT_TIMESTAMP_TYPE, F(log_message_timestamp_type), 0, "CreateTime",
     "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the "
     "broker's clock", DYN},
    {"socket.request.max.bytes", CT_I32, F(socket_request_max_bytes), 0, "104857600",
     "largest request"},
    {"max.connections", CT_I32, F(max_connections), 0, "10000",
     "client connections open at once; more are closed as they arrive (counted on /metrics). "
     "Admin HTTP and controller connections are not counted"},
    {"max.connections.per.ip", CT_I32, F(max_connections_per_ip), 0, "2147483647",
     "client connections open at once from one address"},
    {"connections.max.idle.ms", CT_I64, F(connections_max_idle_ms), 0, "600000",
     "close a client connection that has sent and been sent nothing for this long (-1: never)"},
    {"queued.max.request.bytes", CT_I64, F(queued_max_request_bytes), 0, "268435456",
     "bytes of requests being received or waiting for their answer, all connections together; "
     "past it connections are not read until requests complete (-1: no limit)"},
    {"num.network.threads", CT_I32, F(num_network_threads), 0, "0",
     "network threads (0: one per core)"},
    {"quota.window.num", CT_I32, F(quota_window_num), 0, "11",
     "client quotas: the samples a rate is measured over (the controller mutation quota's burst is "
     "this many windows' worth)"},
    {"quota.window.size.seconds", CT_I32, F(quota_window_size_seconds), 0, "1",
     "client quotas: the time one sample covers"},
    {"offsets.topic.replication.factor", CT_I16, F(offsets_topic_replication_factor), 0, "3",
     "replication factor of __consumer_offsets (the live brokers when fewer)"},
    {"offsets.topic.num.partitions", CT_I32, F(offsets_topic_num_partitions), 0, "50",
     "partitions of __consumer_offsets"},
    {"offsets.retention.minutes", CT_I64, F(offsets_retention_minutes), 0, "10080",
     "how long offsets of empty groups are kept", KAFKA_INT},
    {"offsets.retention.check.interval.ms", CT_I64, F(offsets_retention_check_interval_ms), 0, "600000",
     "how often expired committed offsets are removed (at least every second)"},
    {"transaction.state.log.num.partitions", CT_I32, F(txn_state_log_num_partitions), 0, "50",
     "partitions of __transaction_state"},
    {"transaction.state.log.replication.factor", CT_I16, F(txn_state_log_replication_factor), 0, "3",
     "replication factor of __transaction_state (the live brokers when fewer)"},
    {"transaction.state.log.min.isr", CT_I16, F(txn_state_log_min_isr), 0, "2",
     "in-sync replicas a transaction state record needs (at most the topic's replication factor)"},
    {"transaction.max.timeout.ms", CT_I32, F(txn_max_timeout_ms), 0, "900000",
     "largest transaction.timeout.ms a producer may ask for"},
    {"transactional.id.expiration.ms", CT_I64, F(txn_id_expiration_ms), 0, "604800000",
     "forget a transactional id idle this long", KAFKA_INT},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", CT_I64, F(txn_abort_check_ms), 0, "10000",
     "how often transactions past their timeout are looked for and aborted", KAFKA_INT},
    {"transaction.remove.expired.transaction.cleanup.interval.ms", CT_I64, F(txn_expire_check_ms), 0, "3600000",
     "how often expired transactional ids are removed", KAFKA_INT},
    {"group.min.session.timeout.ms", CT_I32, F(group_min_session_timeout_ms), 0, "6000",
     "smallest session timeout a member may ask for"},
    {"group.max.session.timeout.ms", CT_I32, F(group_max_session_timeout_ms), 0, "1800000",
     "largest session timeout a member may ask for"},
    {"group.initial.rebalance.delay.ms", CT_I32, F(group_initial_rebalance_delay_ms), 0, "3000",
     "wait this long for more members before the first rebalance of an empty group, as Kafka "
     "does: consumers started together then share one rebalance instead of one each (0: none)"},
    {"quorum.election.timeout.ms", CT_I32, F(quorum_election_timeout_ms), 0, "1000",
     "metadata quorum election timeout"},
    {"quorum.election.backoff.max.ms", CT_I32, F(quorum_election_backoff_max_ms), 0, "1000",
     "largest back-off after a failed election"},
    {"quorum.fetch.timeout.ms", CT_I32, F(quorum_fetch_timeout_ms), 0, "2000",
     "leader silence before a follower stands for election"},
    {"metadata.log.max.record.bytes.between.snapshots", CT_I64, F(metadata_snapshot_max_bytes), 0, "20971520",
     "snapshot the metadata image after this many bytes of committed metadata records, then trim the "
     "metadata log below the older snapshot kept"},
    {"metadata.log.max.snapshot.interval.ms", CT_I64, F(metadata_snapshot_interval_ms), 0, "3600000",
     "snapshot the metadata image at least this often when anything new is committed (0: never)"},
    {"broker.heartbeat.interval.ms", CT_I32, F(broker_heartbeat_interval_ms), 0, "250",
     "how often a broker heartbeats to the controller (Kafka: 2000; shorter here so that a dead "
     "broker's partitions fail over in about a second)"},
    {"broker.session.timeout.ms", CT_I32, F(broker_session_timeout_ms), 0, "1500",
     "a broker silent for this long is fenced and its partitions move to the live ISR (Kafka: 9000)"},
    {"controlled.shutdown.enable", CT_BOOL, F(controlled_shutdown_enable), 0, "true",
     "on SIGTERM or SIGINT a node of a cluster first asks the controller to move its partition "
     "leaderships to other brokers (and a quorum leader hands its leadership over), then stops "
     "(Kafka's KRaft controlled shutdown); false: it stops at once"},
    {"controlled.shutdown.timeout.ms", CT_I32, F(controlled_shutdown_timeout_ms), 0, "30000",
     "longest a controlled shutdown waits for the controller's leave and the hand-over before the "
     "node stops anyway (Kafka waits up to 5 minutes)"},
    {"replica.lag.time.max.ms", CT_I32, F(replica_lag_time_max_ms), 0, "30000",
     "a follower this far behind leaves the ISR", KAFKA_LONG},
    {"producer.id.expiration.ms", CT_I64, F(producer_id_expiration_ms), 0, "86400000",
     "forget an idle idempotent producer after this long", DYN},
    {"log.level", CT_LOGLEVEL, F(log_level), 0, "info", "debug, info, warn or error", OWN},
    {"log.message.format.version", CT_IGNORED, 0, 0, NULL,
     "accepted and ignored, as in Kafka 3.x (deprecated: record batches v2 only)"},
    {"log.message.downconversion.enable", CT_IGNORED, 0, 0, NULL,
     "accepted and ignored, as in Kafka 3.x (deprecated: old formats are never served)"},
    {"process.roles", CT_STR, F(process_roles), S(process_roles), "broker,controller",
     "broker,controller (a voter of the metadata quorum) or broker (follows it as an observer; "
     "not one of controller.quorum.voters)"},
    {"authorizer.class.name", CT_STR, F(authorizer_class_name), S(authorizer_class_name), "",
     "turns ACL authorization on when set (Kafka's class names, e.g. "
     "org.apache.kafka.metadata.authorizer.StandardAuthorizer, are accepted); empty: off"},
    {"super.users", CT_STR, F(super_users), S(super_users), "",
     "principals allowed everything, separated by ';' (e.g. User:admin;User:ops)"},
    {"allow.everyone.if.no.acl.found", CT_BOOL, F(allow_everyone_if_no_acl_found), 0, "false",
     "with the authorizer on, a resource no ACL names is open to everyone"},
    {"sasl.enabled.mechanisms", CT_STR, F(sasl_enabled_mechanisms), S(sasl_enabled_mechanisms),
     "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
     "SASL_PLAINTEXT and SASL_SSL listeners: the mechanisms offered, of PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 "
     "(Kafka's default GSSAPI is not offered). Users are the SCRAM credentials of the metadata "
     "(AlterUserScramCredentials, --add-scram); a PLAIN login is checked against the user's SCRAM credential"},
    {"connection.failed.authentication.delay.ms", CT_I64, F(failed_auth_delay_ms), 0, "100",
     "a failed SASL login is answered after this delay, doubled for each further failure from the same "
     "address within a minute (up to 32 times); the connection is served nothing more (its next request "
     "closes it)"},
    {"connections.max.reauth.ms", CT_I64, F(connections_max_reauth_ms), 0, "0",
     "a SASL session's lifetime (told to clients in SaslAuthenticate v1+): a connection not re-authenticated "
     "by then is closed at its next request; 0: no limit"},
    {"sasl.scram.bootstrap.users", CT_STR, F(sasl_bootstrap_scram), S(sasl_bootstrap_scram), "",
     "SCRAM users created at start-up when absent, 'MECH=[name=NAME,password=PASSWORD]' entries separated by "
     "';' (chronik server --add-scram adds one); an existing user's credential is left as it is", OWN | SECRET},
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int config_parse_addr(const char *s, config_addr *out)
{
    const char *p = strstr(s, "://");
    if (p)
        s = p + 3;
    const char *colon;
    size_t hostlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        hostlen = (size_t)(close - s - 1);
        memcpy(out->host, s + 1, MIN(hostlen, CONFIG_HOST_MAX - 1));
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hostlen = (size_t)(colon - s);
        memcpy(out->host, s, MIN(hostlen, CONFIG_HOST_MAX - 1));
    }
    if (hostlen >= CONFIG_HOST_MAX)
        return -1;
    out->host[hostlen] = 0;
    if (hostlen == 0)
        snprintf(out->host, sizeof out->host, "0.0.0.0");
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    out->port = (int)port;
    return 0;
}

/* What is wrong with an address value (an optional NAME:// prefix skipped). */
static const char *addr_problem(const char *s)
{
    const char *p = strstr(s, "://");
    const char *why = net_hostport_problem(p ? p + 3 : s);
    return why ? why : "want HOST:PORT";
}

static int parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

/* The name of a NAME://HOST:PORT entry, upper-cased as Kafka does ("" when
 * the entry has no name); false when the name is not [A-Za-z0-9_-]+. */
static bool entry_name(const char *tok, char name[CONFIG_NAME_MAX])
{
    const char *p = strstr(tok, "://");
    size_t n = p ? (size_t)(p - tok) : 0;
    if (p && (n == 0 || n >= CONFIG_NAME_MAX))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)tok[i]) && tok[i] != '_' && tok[i] != '-')
            return false;
        name[i] = (char)toupper((unsigned char)tok[i]);
    }
    name[n] = 0;
    return true;
}

/* Set the entry of its name in list (*n entries), adding it if new. */
static int upsert_entry(config_listener *list, int *n, const char *key, const char *tok, const char *dflt_name,
                        char *err, size_t errlen)
{
    char name[CONFIG_NAME_MAX];
    config_addr a;
    if (!entry_name(tok, name))
        return fail(err, errlen, "invalid %s entry '%s': a listener name is letters, digits, '_' or '-'", key,
                    tok);
    if (config_parse_addr(tok, &a) != 0)
        return fail(err, errlen, "invalid %s entry '%s': %s", key, tok, addr_problem(tok));
    if (!name[0])
        snprintf(name, sizeof name, "%s", dflt_name);
    int i = 0;
    while (i < *n && strcmp(list[i].name, name) != 0)
        i++;
    if (i == CONFIG_LISTENERS_MAX)
        return fail(err, errlen, "too many %s (at most %d)", key, CONFIG_LISTENERS_MAX);
    if (i == *n)
        (*n)++;
    list[i] = (config_listener){.addr = a};
    snprintf(list[i].name, sizeof list[i].name, "%s", name);
    return 0;
}

/* Every comma-separated entry of value into list (upsert_entry). */
static int set_entries(config_listener *list, int *n, const char *key, const char *value, const char *dflt_name,
                       char *err, size_t errlen)
{
    char *copy = xstrdup(value), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        rc = upsert_entry(list, n, key, tok, dflt_name, err, errlen);
    }
    free(copy);
    return rc;
}

/* Each entry sets the listener of its name; an entry without a name is
 * PLAINTEXT. PLAINTEXT and CONTROLLER also set listen / controller_listen,
 * which config_finish settles once the names' roles are known. */
static int set_listeners(config *c, const char *value, char *err, size_t errlen)
{
    if (set_entries(c->listeners, &c->nlisteners, "listeners", value, "PLAINTEXT", err, errlen) != 0)
        return -1;
    for (int i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, "PLAINTEXT") == 0)
            c->listen = c->listeners[i].addr;
        else if (strcmp(c->listeners[i].name, "CONTROLLER") == 0)
            c->controller_listen = c->listeners[i].addr;
    return 0;
}

/* Each entry sets the advertised address of its listener name; an entry
 * without a name ("" here) is the inter-broker listener's. */
static int set_adverts(config *c, const char *value, char *err, size_t errlen)
{
    return set_entries(c->adverts, &c->nadverts, "advertised.listeners", value, "", err, errlen);
}

static int set_voters(config *c, const char *value, char *err, size_t errlen)
{
    char *copy = xstrdup(value), *save = NULL;
    int rc = 0;
    c->nvoters = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        char *at = strchr(tok, '@');
        int64_t id;
        if (c->nvoters == CONFIG_VOTERS_MAX)
            rc = fail(err, errlen, "too many voters (at most %d)", CONFIG_VOTERS_MAX);
        else if (!at || (*at = 0, parse_i64(tok, 0, INT32_MAX, &id) != 0) ||
                 config_parse_addr(at + 1, &c->voters[c->nvoters].addr) != 0)
            rc = fail(err, errlen, "invalid voter '%s' (want ID@HOST:PORT)", tok);
        else
            c->voters[c->nvoters++].id = (int32_t)id;
    }
    free(copy);
    return rc;
}

static int set_loglevel(int32_t *dst, const char *v)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(v, names[i]) == 0)
            return *dst = i, 0;
    return -1;
}

static int set_value(config *c, const struct ckey *k, const char *v, char *err, size_t errlen)
{
    char *base = (char *)c;
    int64_t x;
    switch (k->type) {
    case CT_I16:
        if (parse_i64(v, INT16_MIN, INT16_MAX, &x))
            break;
        *(int16_t *)(base + k->off) = (int16_t)x;
        return 0;
    case CT_I32:
        if (parse_i64(v, INT32_MIN, INT32_MAX, &x))
            break;
        *(int32_t *)(base + k->off) = (int32_t)x;
        return 0;
    case CT_I64:
        if (parse_i64(v, INT64_MIN, INT64_MAX, &x))
            break;
        *(int64_t *)(base + k->off) = x;
        return 0;
    case CT_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || *end || end == v || !(d >= 0 && d <= 1))
            break;
        *(double *)(base + k->off) = d;
        return 0;
    }
    case CT_HOURS_AS_MS:
    case CT_MINUTES_AS_MS: {
        int64_t unit = k->type == CT_HOURS_AS_MS ? 3600000 : 60000;
        if (parse_i64(v, -1, INT64_MAX / unit, &x))
            break;
        *(int64_t *)(base + k->off) = x < 0 ? -1 : x * unit;
        return 0;
    }
    case CT_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false"))
            break;
        *(bool *)(base + k->off) = strcmp(v, "true") == 0;
        return 0;
    case CT_TIMESTAMP_TYPE:
        if (strcmp(v, "CreateTime") && strcmp(v, "LogAppendTime"))
            break;
        *(int32_t *)(base + k->off) = strcmp(v, "LogAppendTime") == 0 ? CONFIG_LOG_APPEND_TIME : CONFIG_CREATE_TIME;
        return 0;
    case CT_STR:
        if (strlen(v) >= k->size)
            break;
        snprintf(base + k->off, k->size, "%s", v);
        return 0;
    case CT_ADVERTISED:
        return set_adverts(c, v, err, errlen);
    case CT_ADDR:
        if (config_parse_addr(v, (config_addr *)(base + k->off)))
            return fail(err, errlen, "invalid value '%s' for configuration key '%s': %s", v, k->key,
                        addr_problem(v));
        return 0;
    case CT_LISTENERS:
        return set_listeners(c, v, err, errlen);
    case CT_VOTERS:
        return set_voters(c, v, err, errlen);
    case CT_LOGLEVEL:
        if (set_loglevel((int32_t *)(base + k->off), v))
            break;
        return 0;
    case CT_IGNORED:
        return 0;
    }
    return fail(err, errlen, "invalid value '%s' for configuration key '%s'", v, k->key);
}

int config_set(config *c, const char *key, const char *value, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].key, key) == 0)
            return set_value(c, &keys[i], value, err, errlen);
    return fail(err, errlen, "unknown configuration key '%s'", key);
}

void config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    char err[256];
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (keys[i].dflt && set_value(c, &keys[i], keys[i].dflt, err, sizeof err) != 0)
            CK_PANIC("bad default for %s: %s", keys[i].key, err);
    config_parse_addr("127.0.0.1:9092", &c->listen);
    config_parse_addr("127.0.0.1:9093", &c->controller_listen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int config_load_file(config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fail(err, errlen, "%s:%d: expected key=value", path, lineno);
            break;
        }
        *eq = 0;
        char sub[512];
        if (config_set(c, trim(s), trim(eq + 1), sub, sizeof sub) != 0)
            rc = fail(err, errlen, "%s:%d: %s", path, lineno, sub);
    }
    fclose(f);
    return rc;
}

/* ---- listeners: names, protocols, roles (config_finish) -------------------- */

static const char *const protocol_names[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};

const char *config_protocol_name(int32_t protocol)
{
    return protocol >= 0 && protocol < (int32_t)ARRAY_LEN(protocol_names) ? protocol_names[protocol] : "?";
}

const config_listener *config_listener_find(const config *c, const char *name)
{
    for (int i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

/* Is name one of the comma-separated names in list (case-insensitive)? */
static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        size_t len = strcspn(p, ",");
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        if (len == n && strncasecmp(p, name, n) == 0)
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

/* name's protocol in listener.security.protocol.map: 0 and *proto, 1 when
 * the map does not name it, -1 (err set) when the map is malformed. */
static int map_lookup(const config *c, const char *name, int32_t *proto, char *err, size_t errlen)
{
    char *copy = xstrdup(c->protocol_map), *save = NULL;
    int rc = 1;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 1; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon) {
            rc = fail(err, errlen, "listener.security.protocol.map: invalid entry '%s' (want NAME:PROTOCOL)", trim(tok));
            break;
        }
        *colon = 0;
        const char *k = trim(tok), *v = trim(colon + 1);
        int32_t p = -1;
        for (int32_t i = 0; i < (int32_t)ARRAY_LEN(protocol_names); i++)
            if (strcasecmp(v, protocol_names[i]) == 0)
                p = i;
        if (p < 0)
            rc = fail(err, errlen, "listener.security.protocol.map: unknown security protocol '%s' for '%s' "
                      "(want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", v, k);
        else if (strcasecmp(k, name) == 0)
            *proto = p, rc = 0;
    }
    free(copy);
    return rc;
}

/* Each listener's role and protocol; the controller listener. */
static int resolve_protocols(config *c, char *err, size_t errlen)
{
    int controllers = 0;
    for (int i = 0; i < c->nlisteners; i++) {
        config_listener *l = &c->listeners[i];
        l->controller = in_list(c->controller_listener_names, l->name);
        l->protocol = CONFIG_PLAINTEXT;
        int rc = map_lookup(c, l->name, &l->protocol, err, errlen);
        if (rc < 0)
            return -1;
        if (rc > 0 && !l->controller)
            return fail(err, errlen, "listener '%s' has no security protocol: add %s:PLAINTEXT or %s:SSL to "
                        "listener.security.protocol.map", l->name, l->name, l->name);
        if (l->controller) {
            if (++controllers > 1)
                return fail(err, errlen, "controller.listener.names names more than one listener of listeners; "
                                         "one controller listener is supported");
            c->controller_listen = l->addr;
        }
    }
    return 0;
}

/* The inter-broker listener: inter.broker.listener.name, else the listener
 * named PLAINTEXT, else the first PLAINTEXT one. Brokers reach each other
 * with its protocol (peer_security.c). */
static int resolve_inter_broker(config *c, char *err, size_t errlen)
{
    c->inter_broker = -1;
    const char *want = c->inter_broker_listener_name[0] ? c->inter_broker_listener_name : "PLAINTEXT";
    for (int i = 0; i < c->nlisteners && c->inter_broker < 0; i++)
        if (strcasecmp(c->listeners[i].name, want) == 0 && !c->listeners[i].controller)
            c->inter_broker = i;
    if (c->inter_broker < 0 && c->inter_broker_listener_name[0])
        return fail(err, errlen, "inter.broker.listener.name '%s' is not a client listener of listeners", want);
    for (int i = 0; i < c->nlisteners && c->inter_broker < 0; i++)
        if (!c->listeners[i].controller && c->listeners[i].protocol == CONFIG_PLAINTEXT)
            c->inter_broker = i;
    if (c->inter_broker < 0)
        return fail(err, errlen, "no listener for traffic between brokers: name one with "
                                 "inter.broker.listener.name, or add a PLAINTEXT listener");
    return 0;
}

/* Each client listener's advertised address: its advertised.listeners
 * entry, else its own address. */
static int resolve_adverts(config *c, char *err, size_t errlen)
{
    for (int i = 0; i < c->nlisteners; i++)
        c->listeners[i].advertise = c->listeners[i].addr;
    for (int j = 0; j < c->nadverts; j++) {
        const config_listener *a = &c->adverts[j];
        config_listener *l = NULL;
        for (int i = 0; i < c->nlisteners; i++)
            if (strcmp(c->listeners[i].name, a->name[0] ? a->name : c->listeners[c->inter_broker].name) == 0)
                l = &c->listeners[i];
        if (!l || l->controller)
            return fail(err, errlen, "advertised.listeners names '%s', which is not a client listener of "
                        "listeners", a->name);
        l->advertise = a->addr;
    }
    for (int i = 0; i < c->nlisteners; i++)
        if (!c->listeners[i].controller && strcmp(c->listeners[i].advertise.host, "0.0.0.0") == 0)
            return fail(err, errlen, "advertised.listeners must name a reachable host for listener '%s', not "
                        "0.0.0.0", c->listeners[i].name);
    return 0;
}

static bool any_ssl(const config *c)
{
    for (int i = 0; i < c->nlisteners; i++)
        if (c->listeners[i].protocol == CONFIG_SSL || c->listeners[i].protocol == CONFIG_SASL_SSL)
            return true;
    return false;
}

static int resolve_ssl(config *c, char *err, size_t errlen)
{
    static const char *const auths[] = {"none", "requested", "required"};
    c->client_auth = -1;
    for (int32_t i = 0; i < 3; i++)
        if (strcmp(c->ssl_client_auth, auths[i]) == 0)
            c->client_auth = i;
    if (c->client_auth < 0)
        return fail(err, errlen, "ssl.client.auth must be none, requested or required (got '%s')", c->ssl_client_auth);
    if (strcasecmp(c->ssl_keystore_type, "PEM") != 0 || strcasecmp(c->ssl_truststore_type, "PEM") != 0)
        return fail(err, errlen, "ssl.keystore.type and ssl.truststore.type must be PEM (convert JKS or PKCS12 "
                                 "stores with keytool/openssl)");
    char *copy = xstrdup(c->ssl_enabled_protocols), *save = NULL;
    int rc = 0, n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save), n++)
        if (strcmp(trim(tok), "TLSv1.2") != 0 && strcmp(trim(tok), "TLSv1.3") != 0)
            rc = fail(err, errlen, "ssl.enabled.protocols: '%s' is not offered (TLSv1.2 and TLSv1.3 only)", trim(tok));
    free(copy);
    if (rc == 0 && n == 0)
        rc = fail(err, errlen, "ssl.enabled.protocols must name TLSv1.2, TLSv1.3 or both");
    char why[160];
    acl_ssl_rules *rules = rc == 0 ? acl_ssl_rules_parse(c->ssl_principal_mapping_rules, why, sizeof why) : NULL;
    if (rc == 0 && !rules)
        rc = fail(err, errlen, "ssl.principal.mapping.rules: %s", why);
    acl_ssl_rules_free(rules);
    if (rc != 0 || !any_ssl(c))
        return rc;
    if (!c->ssl_keystore_location[0])
        return fail(err, errlen, "an SSL listener needs ssl.keystore.location (a PEM file with the private key "
                                 "and the certificate chain)");
    if (c->client_auth != CONFIG_AUTH_NONE && !c->ssl_truststore_location[0])
        return fail(err, errlen, "ssl.client.auth=%s needs ssl.truststore.location (the CA certificates "
                    "that client certificates chain to)", c->ssl_client_auth);
    return 0;
}

/* Listener names, protocols and roles; listen and advertise become the
 * inter-broker listener's. */
static int resolve_listeners(config *c, char *err, size_t errlen)
{
    bool client = false;
    for (int i = 0; i < c->nlisteners; i++)
        client |= !in_list(c->controller_listener_names, c->listeners[i].name);
    if (!client) { /* only a controller listener given: the default client listener */
        if (c->nlisteners == CONFIG_LISTENERS_MAX)
            return fail(err, errlen, "too many listeners (at most %d)", CONFIG_LISTENERS_MAX);
        c->listeners[c->nlisteners++] = (config_listener){.name = "PLAINTEXT", .addr = c->listen};
    }
    if (resolve_protocols(c, err, errlen) != 0 || resolve_inter_broker(c, err, errlen) != 0 ||
        resolve_adverts(c, err, errlen) != 0 || resolve_ssl(c, err, errlen) != 0)
        return -1;
    c->listen = c->listeners[c->inter_broker].addr;
    c->advertise = c->listeners[c->inter_broker].advertise;
    return 0;
}

/* sasl.enabled.mechanisms as a bit set; at least one when a listener is SASL. */
static int resolve_sasl(config *c, char *err, size_t errlen)
{
    char *copy = xstrdup(c->sasl_enabled_mechanisms), *save = NULL;
    int rc = 0;
    c->sasl_mechanisms = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        const char *m = trim(tok);
        int mech = sasl_mech_from_name(m, strlen(m));
        if (mech == SASL_MECH_UNKNOWN)
            rc = fail(err, errlen, "sasl.enabled.mechanisms: '%s' is not offered (PLAIN, SCRAM-SHA-256 and "
                      "SCRAM-SHA-512 are)", m);
        c->sasl_mechanisms |= 1 << (mech % 32);
    }
    free(copy);
    for (int i = 0; rc == 0 && i < c->nlisteners; i++)
        if ((c->listeners[i].protocol == CONFIG_SASL_PLAINTEXT || c->listeners[i].protocol == CONFIG_SASL_SSL) &&
            c->sasl_mechanisms == 0)
            rc = fail(err, errlen, "listener '%s' is SASL but sasl.enabled.mechanisms is empty", c->listeners[i].name);
    if (rc == 0 && (c->failed_auth_delay_ms < 0 || c->connections_max_reauth_ms < 0))
        rc = fail(err, errlen, "connection.failed.authentication.delay.ms and connections.max.reauth.ms must not "
                               "be negative");
    return rc;
}

/* One option value of a JAAS line: `"text"` with backslash escapes, at *p. */
static int jaas_value(const char **p, char *out, size_t n)
{
    const char *s = *p;
    if (*s++ != '"')
        return -1;
    size_t o = 0;
    for (; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1])
            s++;
        if (o + 1 >= n)
            return -1;
        out[o++] = *s;
    }
    if (*s != '"')
        return -1;
    out[o] = 0;
    *p = s + 1;
    return 0;
}

int config_parse_jaas(const char *s, char *user, size_t ulen, char *password, size_t plen, char *err, size_t errlen)
{
    user[0] = password[0] = 0;
    const char *p = s + strspn(s, " \t");
    size_t n = strcspn(p, " \t");
    static const char *const modules[] = {"PlainLoginModule", "ScramLoginModule"};
    bool known = false;
    for (size_t i = 0; i < ARRAY_LEN(modules); i++)
        known |= n >= strlen(modules[i]) && strncmp(p + n - strlen(modules[i]), modules[i], strlen(modules[i])) == 0;
    if (!known)
        return fail(err, errlen, "sasl.jaas.config: want a PlainLoginModule or ScramLoginModule line");
    p += n;
    p += strspn(p, " \t");
    if (strncmp(p, "required", 8) != 0)
        return fail(err, errlen, "sasl.jaas.config: the login module must be 'required'");
    for (p += 8;;) {
        p += strspn(p, " \t");
        if (*p == ';' || *p == 0)
            break;
        size_t k = strcspn(p, "= \t;");
        bool is_user = k == 8 && strncmp(p, "username", 8) == 0, is_pw = k == 8 && strncmp(p, "password", 8) == 0;
        char scratch[256];
        const char *opt = p;
        p += k;
        if (*p++ != '=' || jaas_value(&p, is_user ? user : is_pw ? password : scratch,
                                      is_user ? ulen : is_pw ? plen : sizeof scratch) != 0)
            return fail(err, errlen, "sasl.jaas.config: option '%.*s' wants a value in double quotes (and "
                        "short enough)", (int)MIN(k, (size_t)64), opt);
    }
    if (*p != ';' || p[1 + strspn(p + 1, " \t")] != 0)
        return fail(err, errlen, "sasl.jaas.config: the line must end with ';'");
    if (!user[0] || !password[0])
        return fail(err, errlen, "sasl.jaas.config: username=\"...\" and password=\"...\" are both needed");
    return 0;
}

/* The controller listener's protocol, even on a node that does not list it. */
static int controller_protocol(config *c, char *err, size_t errlen)
{
    for (int i = 0; i < c->nlisteners; i++)
        if (c->listeners[i].controller)
            return c->controller_protocol = c->listeners[i].protocol, 0;
    char name[CONFIG_NAME_MAX];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(c->controller_listener_names, ","), c->controller_listener_names);
    c->controller_protocol = CONFIG_PLAINTEXT;
    return map_lookup(c, trim(name), &c->controller_protocol, err, errlen) < 0 ? -1 : 0;
}

/* How this node reaches its peers over a listener of protocol proto. */
static int resolve_peer(config *c, int32_t proto, const char *mech_key, const char *mech, char *err, size_t errlen)
{
    bool tls = proto == CONFIG_SSL || proto == CONFIG_SASL_SSL;
    bool sasl = proto == CONFIG_SASL_PLAINTEXT || proto == CONFIG_SASL_SSL;
    if (tls && !c->ssl_truststore_location[0])
        return fail(err, errlen, "reaching peers over %s needs ssl.truststore.location (the CA certificates "
                    "their certificates chain to)", config_protocol_name(proto));
    if (!sasl)
        return 0;
    int m = sasl_mech_from_name(mech, strlen(mech));
    if (m == SASL_MECH_UNKNOWN)
        return fail(err, errlen, "%s: '%s' is not offered (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", mech_key, mech);
    if (!(c->sasl_mechanisms & (1 << (m % 32))))
        return fail(err, errlen, "%s is %s, which sasl.enabled.mechanisms does not enable", mech_key, mech);
    if (!c->sasl_jaas_config[0])
        return fail(err, errlen, "reaching peers over %s needs this node's login: set sasl.jaas.config",
                    config_protocol_name(proto));
    return config_parse_jaas(c->sasl_jaas_config, c->sasl_username, sizeof c->sasl_username, c->sasl_password,
                             sizeof c->sasl_password, err, errlen);
}

static int resolve_peer_security(config *c, char *err, size_t errlen)
{
    if (c->ssl_endpoint_identification[0] && strcasecmp(c->ssl_endpoint_identification, "https") != 0)
        return fail(err, errlen, "ssl.endpoint.identification.algorithm must be https or empty (got '%s')",
                    c->ssl_endpoint_identification);
    if (controller_protocol(c, err, errlen) != 0)
        return -1;
    if (resolve_peer(c, c->listeners[c->inter_broker].protocol, "sasl.mechanism.inter.broker.protocol",
                     c->sasl_mechanism_inter_broker, err, errlen) != 0)
        return -1;
    return resolve_peer(c, c->controller_protocol, "sasl.mechanism.controller.protocol", c->sasl_mechanism_controller,
                        err, errlen);
}

int config_finish(config *c, char *err, size_t errlen)
{
    if (resolve_listeners(c, err, errlen) != 0 || resolve_sasl(c, err, errlen) != 0 ||
        resolve_peer_security(c, err, errlen) != 0)
        return -1;
    if (strcmp(c->process_roles, "broker") == 0)
        c->broker_only = true;
    else if (strcmp(c->process_roles, "broker,controller") != 0 && strcmp(c->process_roles, "controller,broker") != 0)
        return fail(err, errlen, "process.roles must be broker,controller or broker (got '%s'); "
                    "controller-only nodes are not available", c->process_roles);
    if (c->broker_only && c->nvoters == 0)
        return fail(err, errlen, "a broker-only node (process.roles=broker) needs controller.quorum.voters");
    if (c->nvoters == 0) {
        c->voters[0].id = c->node_id;
        c->voters[0].addr = c->controller_listen;
        c->nvoters = 1;
    }
    if (c->num_partitions < 1)
        return fail(err, errlen, "num.partitions must be at least 1");
    if (c->default_replication_factor < 1 && c->default_replication_factor != -1)
        return fail(err, errlen, "default.replication.factor must be at least 1, or -1");
    if (c->leader_imbalance_check_interval_seconds < 1)
        return fail(err, errlen, "leader.imbalance.check.interval.seconds must be at least 1");
    if (c->offsets_topic_replication_factor < 1)
        return fail(err, errlen, "offsets.topic.replication.factor must be at least 1");
    if (c->txn_state_log_num_partitions < 1 || c->txn_state_log_replication_factor < 1 || c->txn_state_log_min_isr < 1)
        return fail(err, errlen, "transaction.state.log.num.partitions, .replication.factor and .min.isr must be "
                                 "at least 1");
    if (c->txn_max_timeout_ms < 1 || c->txn_id_expiration_ms < 1 || c->txn_abort_check_ms < 1 ||
        c->txn_expire_check_ms < 1)
        return fail(err, errlen, "transaction timeouts, expiration and cleanup intervals must be at least 1");
    if (c->num_network_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->num_network_threads = n > 0 ? (int32_t)MIN(n, 64) : 1;
    }
    if (c->queued_max_request_bytes == 0 || c->queued_max_request_bytes < -1)
        return fail(err, errlen, "queued.max.request.bytes must be positive, or -1 for no limit");
    if (c->max_connections < 1 || c->max_connections_per_ip < 1)
        return fail(err, errlen, "max.connections and max.connections.per.ip must be at least 1");
    if (c->socket_request_max_bytes < 1024)
        return fail(err, errlen, "socket.request.max.bytes must be at least 1024");
    if (c->metadata_snapshot_max_bytes < 1 || c->metadata_snapshot_interval_ms < 0)
        return fail(err, errlen, "metadata.log.max.record.bytes.between.snapshots must be at least 1 and "
                                 "metadata.log.max.snapshot.interval.ms at least 0");
    if (c->producer_id_expiration_ms < 1)
        return fail(err, errlen, "producer.id.expiration.ms must be at least 1");
    if (c->controlled_shutdown_timeout_ms < 0)
        return fail(err, errlen, "controlled.shutdown.timeout.ms must not be negative");
    if (c->quota_window_num < 1 || c->quota_window_size_seconds < 1)
        return fail(err, errlen, "quota.window.num and quota.window.size.seconds must be at least 1");
    return 0;
}

void config_print_keys(FILE *out)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        fprintf(out, "  %-34s %s%s%s%s%s\n", keys[i].key, keys[i].help, keys[i].dflt ? " [default " : "",
                keys[i].dflt ? keys[i].dflt : "", keys[i].dflt ? "]" : "",
                keys[i].flags & DYN ? " (dynamic)" : "");
}

/* Markdown text with '|' escaped, for a table cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void config_print_markdown(FILE *out)
{
    fputs("# Configuration keys\n\n"
          "Every key Chronik reads, from its one configuration table (`src/broker/config.c`). This page\n"
          "is generated by `chronik server --config-doc`; a test fails when the two differ.\n\n"
          "Set keys in a properties file (`chronik server --config FILE`, Kafka's `server.properties`\n"
          "format), or on the command line with `--set KEY=VALUE` (or the flags of `chronik server --help`),\n"
          "which win over the file. Keys marked dynamic can also be changed on a running node with\n"
          "Kafka's AlterConfigs or IncrementalAlterConfigs on a BROKER resource (for example\n"
          "`kafka-configs.sh --alter --entity-type brokers --entity-default --add-config KEY=VALUE`).\n"
          "The Kafka column names the Kafka broker key a key matches: the same name with the same\n"
          "meaning, except where the meaning says otherwise.\n\n"
          "| Key | Default | Dynamic | Kafka | Meaning |\n"
          "| --- | --- | --- | --- | --- |\n", out);
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct ckey *k = &keys[i];
        fprintf(out, "| `%s` | ", k->key);
        if (k->dflt && *k->dflt) {
            fputc('`', out);
            md_cell(out, k->dflt);
            fputc('`', out);
        }
        fprintf(out, " | %s | %s | ", k->flags & DYN ? "yes" : "no",
                k->flags & OWN ? "(Chronik only)" : k->type == CT_IGNORED ? "accepted" : "same");
        md_cell(out, k->help);
        fputs(" |\n", out);
    }
}

/* ---- keys as DescribeConfigs and dynamic updates see them ---------------- */

static const struct ckey *find_key(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].key, key) == 0)
            return &keys[i];
    return NULL;
}

/* Kafka's ConfigType ids. */
enum { KT_BOOLEAN = 1, KT_STRING = 2, KT_INT = 3, KT_SHORT = 4, KT_LONG = 5, KT_DOUBLE = 6, KT_LIST = 7 };

static void key_info(const struct ckey *k, config_key_info *out)
{
    static const int8_t kafka_types[CT_IGNORED + 1] = {
        [CT_I16] = KT_SHORT, [CT_I32] = KT_INT, [CT_I64] = KT_LONG, [CT_DOUBLE] = KT_DOUBLE,
        [CT_BOOL] = KT_BOOLEAN, [CT_VOTERS] = KT_LIST, [CT_HOURS_AS_MS] = KT_INT,
        [CT_MINUTES_AS_MS] = KT_INT,
    };
    int8_t t = k->flags & KAFKA_INT ? KT_INT : k->flags & KAFKA_LONG ? KT_LONG : kafka_types[k->type];
    *out = (config_key_info){.name = k->key,
                             .kafka_type = t ? t : KT_STRING,
                             .dynamic = (k->flags & DYN) != 0,
                             .alias = (k->flags & ALIAS) != 0,
                             .ignored = k->type == CT_IGNORED,
                             .sensitive = (k->flags & SECRET) != 0};
}

size_t config_key_count(void) { return ARRAY_LEN(keys); }

void config_key_at(size_t i, config_key_info *out)
{
    CK_ASSERT(i < ARRAY_LEN(keys));
    key_info(&keys[i], out);
}

bool config_key_find(const char *key, config_key_info *out)
{
    const struct ckey *k = find_key(key);
    if (k)
        key_info(k, out);
    return k != NULL;
}

/* "HOST:PORT", bracketing an IPv6 host; returns the length written. */
static int fmt_addr(char *out, size_t n, const config_addr *a)
{
    return snprintf(out, n, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
}

static void fmt_voters(const config *c, char *out, size_t n)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < c->nvoters && used < n; i++) {
        int w = snprintf(out + used, n - used, "%s%" PRId32 "@", i ? "," : "", c->voters[i].id);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
        w = fmt_addr(out + used, n - used, &c->voters[i].addr);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

/* listeners (or their advertised addresses) as NAME://HOST:PORT,... */
static void fmt_listeners(const config *c, bool advertised, char *out, size_t n)
{
    size_t used = 0;
    out[0] = 0;
    bool controller = false;
    for (int i = 0; i < c->nlisteners && used < n; i++) {
        const config_listener *l = &c->listeners[i];
        bool ctl = in_list(c->controller_listener_names, l->name);
        controller |= ctl;
        if (advertised && ctl)
            continue;
        int w = snprintf(out + used, n - used, "%s%s://", used ? "," : "", l->name);
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
        w = fmt_addr(out + used, n - used, advertised ? &l->advertise : &l->addr);
        if (w < 0)
            return;
        used += (size_t)w;
    }
    if (!advertised && !controller && used < n) {
        int w = snprintf(out + used, n - used, "%sCONTROLLER://", used ? "," : "");
        if (w > 0 && (size_t)w < n - used)
            fmt_addr(out + used + (size_t)w, n - used - (size_t)w, &c->controller_listen);
    }
}

static void fmt_value(const config *c, const struct ckey *k, char *out, size_t n)
{
    if (k->flags & SECRET) {
        snprintf(out, n, "%s", "");
        return;
    }
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *p = (const char *)c + k->off;
    switch (k->type) {
    case CT_I16: snprintf(out, n, "%d", *(const int16_t *)p); break;
    case CT_I32: snprintf(out, n, "%" PRId32, *(const int32_t *)p); break;
    case CT_I64: snprintf(out, n, "%" PRId64, *(const int64_t *)p); break;
    case CT_DOUBLE: snprintf(out, n, "%g", *(const double *)p); break;
    case CT_BOOL: snprintf(out, n, "%s", *(const bool *)p ? "true" : "false"); break;
    case CT_STR: snprintf(out, n, "%s", p); break;
    case CT_TIMESTAMP_TYPE:
        snprintf(out, n, "%s", *(const int32_t *)p == CONFIG_LOG_APPEND_TIME ? "LogAppendTime" : "CreateTime");
        break;
    case CT_ADDR: fmt_addr(out, n, (const config_addr *)p); break;
    case CT_ADVERTISED:
    case CT_LISTENERS:
        fmt_listeners(c, k->type == CT_ADVERTISED, out, n);
        break;
    case CT_VOTERS: fmt_voters(c, out, n); break;
    case CT_HOURS_AS_MS:
    case CT_MINUTES_AS_MS: {
        int64_t ms = *(const int64_t *)p, unit = k->type == CT_HOURS_AS_MS ? 3600000 : 60000;
        snprintf(out, n, "%" PRId64, ms < 0 ? -1 : ms / unit);
        break;
    }
    case CT_LOGLEVEL: {
        int32_t l = *(const int32_t *)p;
        snprintf(out, n, "%s", l >= 0 && l < 4 ? levels[l] : "info");
        break;
    }
    case CT_IGNORED: snprintf(out, n, "%s", ""); break;
    }
}

bool config_get(const config *c, const char *key, char *out, size_t n)
{
    const struct ckey *k = find_key(key);
    if (!k || k->type == CT_IGNORED)
        return false;
    fmt_value(c, k, out, n);
    return true;
}

bool config_same_setting(const char *a, const char *b)
{
    const struct ckey *ka = find_key(a), *kb = find_key(b);
    return ka && kb && ka->type != CT_IGNORED && kb->type != CT_IGNORED && ka->off == kb->off &&
           ka->type != CT_LISTENERS && ka->type != CT_VOTERS;
}

/* Fields are stored whole, so that a reader on another thread sees the old
 * value or the new one (dynamic keys are numbers, never strings). */
static void store_field(char *dst, const char *src, size_t size)
{
    switch (size) {
    case 1: __atomic_store_n((uint8_t *)dst, *(const uint8_t *)src, __ATOMIC_RELAXED); break;
    case 4: __atomic_store_n((uint32_t *)dst, *(const uint32_t *)src, __ATOMIC_RELAXED); break;
    case 8: __atomic_store_n((uint64_t *)dst, *(const uint64_t *)src, __ATOMIC_RELAXED); break;
    default: memcpy(dst, src, size); break;
    }
}

bool config_copy_dynamic(config *dst, const config *src)
{
    bool changed = false;
    static const size_t sizes[CT_IGNORED + 1] = {
        [CT_I16] = 2, [CT_I32] = 4, [CT_I64] = 8, [CT_DOUBLE] = 8, [CT_BOOL] = 1,
        [CT_HOURS_AS_MS] = 8, [CT_MINUTES_AS_MS] = 8, [CT_TIMESTAMP_TYPE] = 4,
    };
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const struct ckey *k = &keys[i];
        if (!(k->flags & DYN))
            continue;
        size_t size = sizes[k->type];
        CK_ASSERT(size > 0);
        if (memcmp((char *)dst + k->off, (const char *)src + k->off, size) != 0) {
            store_field((char *)dst + k->off, (const char *)src + k->off, size);
            changed = true;
        }
    }
    return changed;
}
