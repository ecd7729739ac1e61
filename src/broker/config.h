/*
 * config.h - the broker's configuration: Kafka `server.properties` key names,
 * a properties file plus command-line flags (flags win). Every key is listed
 * in one table (config.c) with its type, default and a line of help; a key
 * that is not in the table is an error that names it. The keys Kafka can
 * change at run time are marked dynamic there: AlterConfigs on a BROKER
 * resource changes them (dynamic_config.c).
 */
#ifndef CHRONIK_BROKER_CONFIG_H
#define CHRONIK_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_HOST_MAX 256

typedef struct config_addr {
    char host[CONFIG_HOST_MAX];
    int port;
} config_addr;

typedef struct config_voter {
    int32_t id;
    config_addr addr;
} config_voter;

#define CONFIG_VOTERS_MAX 16
#define CONFIG_LISTENERS_MAX 8
#define CONFIG_NAME_MAX 32

/* A listener's security protocol (listener.security.protocol.map). */
enum config_protocol { CONFIG_PLAINTEXT = 0, CONFIG_SSL, CONFIG_SASL_PLAINTEXT, CONFIG_SASL_SSL };

/* One entry of `listeners` (or of `advertised.listeners`): NAME://HOST:PORT.
 * An entry given without a name is named PLAINTEXT. */
typedef struct config_listener {
    char name[CONFIG_NAME_MAX];
    config_addr addr;            /* where it binds (listeners) or what is told (advertised.listeners) */
    config_addr advertise;       /* config_finish: what clients connected on it are told */
    int32_t protocol;            /* config_finish: enum config_protocol */
    bool controller;             /* config_finish: named in controller.listener.names */
} config_listener;

/* ssl.client.auth */
enum config_client_auth { CONFIG_AUTH_NONE = 0, CONFIG_AUTH_REQUESTED, CONFIG_AUTH_REQUIRED };

/* log.message.timestamp.type */
enum config_timestamp_type { CONFIG_CREATE_TIME = 0, CONFIG_LOG_APPEND_TIME = 1 };

typedef struct config {
    int32_t node_id;
    config_addr listen;         /* the inter-broker client listener (PLAINTEXT; config_finish) */
    config_addr advertise;      /* ... its advertised address, registered with the quorum */
    config_listener listeners[CONFIG_LISTENERS_MAX]; /* every `listeners` entry, in order */
    int nlisteners;
    config_listener adverts[CONFIG_LISTENERS_MAX];   /* every `advertised.listeners` entry */
    int nadverts;
    int inter_broker;           /* config_finish: index in listeners of the inter-broker listener */
    char protocol_map[512];     /* listener.security.protocol.map */
    char inter_broker_listener_name[CONFIG_NAME_MAX];
    char controller_listener_names[256];
    char ssl_keystore_type[16];
    char ssl_keystore_location[1024];  /* PEM: the private key and the certificate chain */
    char ssl_key_password[256];        /* the private key's password, if it is encrypted */
    char ssl_truststore_type[16];
    char ssl_truststore_location[1024]; /* PEM: the CAs that client certificates must chain to */
    char ssl_client_auth[16];           /* none, requested or required */
    int32_t client_auth;                /* config_finish: enum config_client_auth */
    char ssl_enabled_protocols[64];     /* TLSv1.2,TLSv1.3 or one of them */
    char ssl_principal_mapping_rules[2048]; /* acl_ssl_rules_parse's format */
    config_addr controller_listen;
    config_addr admin_listen;   /* HTTP /health /ready /metrics */
    config_voter voters[CONFIG_VOTERS_MAX];
    int nvoters;
    char data_dir[1024];
    char cluster_id[64];
    char process_roles[32];     /* "broker,controller" (default) or "broker" */
    bool broker_only;           /* process.roles=broker: follows the quorum as an observer */

    int32_t num_partitions;
    int16_t default_replication_factor;
    int32_t min_insync_replicas;
    bool auto_create_topics_enable;
    int64_t log_retention_ms;
    int64_t log_retention_bytes;
    int64_t log_segment_bytes;
    int64_t log_roll_ms;
    int64_t log_retention_check_interval_ms;
    int64_t log_cleaner_backoff_ms;      /* how often compacted partitions are looked at */
    double log_cleaner_min_cleanable_ratio;
    int64_t log_cleaner_delete_retention_ms;
    int64_t log_cleaner_min_compaction_lag_ms;
    int64_t log_cleaner_max_compaction_lag_ms;
    int32_t log_index_interval_bytes;
    int64_t log_flush_interval_messages; /* INT64_MAX: sync before ack (default) */
    int64_t log_flush_interval_ms;       /* INT64_MAX: sync before ack (default) */
    bool log_preallocate;                /* zeros ahead of small appends (storage.h) */
    int64_t log_cache_window_bytes;      /* page cache kept per partition behind its end; -1 all */
    int64_t log_dir_free_bytes_warn;     /* status warns below min(this, 5% of the filesystem) */
    int64_t log_scrub_interval_ms;       /* closed segments re-verified this often; 0 never */
    int32_t message_max_bytes;
    int32_t log_message_timestamp_type;  /* enum config_timestamp_type */
    int32_t socket_request_max_bytes;
    int64_t queued_max_request_bytes;    /* all connections' requests being read or answered; -1 none */
    int32_t num_network_threads;         /* 0: one per core */
    int32_t max_connections;             /* client connections open at once */
    int32_t max_connections_per_ip;      /* ... from one address */
    int64_t connections_max_idle_ms;     /* close a client connection idle this long; <= 0 never */
    int32_t offsets_topic_num_partitions;
    bool unclean_leader_election_enable;
    bool auto_leader_rebalance_enable;
    int64_t leader_imbalance_check_interval_seconds;
    int16_t offsets_topic_replication_factor;
    int64_t offsets_retention_minutes;
    int64_t offsets_retention_check_interval_ms;
    int32_t txn_state_log_num_partitions;     /* transaction.state.log.num.partitions */
    int16_t txn_state_log_replication_factor; /* transaction.state.log.replication.factor */
    int16_t txn_state_log_min_isr;            /* transaction.state.log.min.isr */
    int32_t txn_max_timeout_ms;               /* transaction.max.timeout.ms */
    int64_t txn_id_expiration_ms;             /* transactional.id.expiration.ms */
    int64_t txn_abort_check_ms;   /* transaction.abort.timed.out.transaction.cleanup.interval.ms */
    int64_t txn_expire_check_ms;  /* transaction.remove.expired.transaction.cleanup.interval.ms */
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    int32_t group_initial_rebalance_delay_ms;
    int32_t quorum_election_timeout_ms;
    int32_t quorum_election_backoff_max_ms;
    int32_t quorum_fetch_timeout_ms;
    int64_t metadata_snapshot_max_bytes;   /* metadata.log.max.record.bytes.between.snapshots */
    int64_t metadata_snapshot_interval_ms; /* metadata.log.max.snapshot.interval.ms; 0: never */
    int32_t broker_heartbeat_interval_ms;
    int32_t broker_session_timeout_ms;
    bool controlled_shutdown_enable;
    int32_t controlled_shutdown_timeout_ms;
    int32_t replica_lag_time_max_ms;
    int64_t producer_id_expiration_ms;
    int32_t log_level; /* enum log_level */
    /* Client quotas (broker/quota.c): the samples of a measured rate. */
    int32_t quota_window_num;            /* quota.window.num */
    int32_t quota_window_size_seconds;   /* quota.window.size.seconds */
    /* Authorization (broker/authz.c): on when authorizer.class.name is set. */
    char authorizer_class_name[256];
    char super_users[4096];              /* "User:a;User:b" */
    bool allow_everyone_if_no_acl_found;
    /* SASL listeners (broker/sasl.c). */
    char sasl_enabled_mechanisms[128];   /* "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" */
    int32_t sasl_mechanisms;             /* bit (1 << enum sasl_mech % 32) per enabled mechanism */
    int64_t failed_auth_delay_ms;        /* connection.failed.authentication.delay.ms */
    int64_t connections_max_reauth_ms;   /* 0: sessions do not expire */
    char sasl_bootstrap_scram[2048];     /* --add-scram: "MECH=[name=N,password=P]" lines */
    /* This node as a client of its peers (broker/peer_security.c). */
    char sasl_mechanism_inter_broker[32]; /* sasl.mechanism.inter.broker.protocol */
    char sasl_mechanism_controller[32];   /* sasl.mechanism.controller.protocol */
    char sasl_jaas_config[1024];          /* sasl.jaas.config: the node's own login */
    char ssl_endpoint_identification[16]; /* "https" or "": check the peer's certificate names it */
    int32_t controller_protocol;          /* config_finish: the controller listener's protocol */
    char sasl_username[256];              /* config_finish: from sasl_jaas_config */
    char sasl_password[256];
} config;

/* Defaults: a single-node cluster on 127.0.0.1:9092 (DESIGN.md §3). */
void config_defaults(config *c);

/* Set one key (Kafka name) from its string value. Returns 0, or -1 with a
 * message in err ("unknown configuration key 'foo'", "invalid value ..."). */
int config_set(config *c, const char *key, const char *value, char *err, size_t errlen);

/* A JAAS login line as Kafka's sasl.jaas.config takes it:
 *   org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="p";
 * (PlainLoginModule too): the username and password options into user and
 * password (a backslash escapes the next character). 0, or -1 and why. */
int config_parse_jaas(const char *s, char *user, size_t ulen, char *password, size_t plen, char *err, size_t errlen);

/* Read a properties file: `key=value` lines, '#' and '!' comments, blank lines. */
int config_load_file(config *c, const char *path, char *err, size_t errlen);

/* Fill in what follows from other keys (advertise from listen, voters for a
 * single node, ...) and check consistency. */
int config_finish(config *c, char *err, size_t errlen);

/* The listener named name (case-sensitive), or NULL. */
const config_listener *config_listener_find(const config *c, const char *name);

/* "PLAINTEXT", "SSL", ... */
const char *config_protocol_name(int32_t protocol);

/* Parse "HOST:PORT" or "[V6]:PORT" (an optional "NAME://" prefix is skipped). */
int config_parse_addr(const char *s, config_addr *out);

/* Print every key with its default and help (for --help). */
void config_print_keys(FILE *out);
/* Print the table as Markdown (docs/CONFIG.md). */
void config_print_markdown(FILE *out);

/* ---- the table as DescribeConfigs and dynamic updates see it -------------- */

typedef struct config_key_info {
    const char *name;
    int8_t kafka_type; /* DescribeConfigs ConfigType */
    bool dynamic;      /* AlterConfigs on a BROKER resource may change it (Kafka's cluster-wide mode) */
    bool alias;        /* another name of a setting listed under its own key (log.retention.hours) */
    bool ignored;      /* accepted for compatibility, holds no value */
    bool sensitive;    /* a password: its value is never shown */
} config_key_info;

size_t config_key_count(void);
void config_key_at(size_t i, config_key_info *out);
bool config_key_find(const char *key, config_key_info *out);
/* key's value in c as a properties file would give it; false when the key
 * is unknown or ignored. */
bool config_get(const config *c, const char *key, char *out, size_t n);
/* True when keys a and b set the same field (a key and its alias). */
bool config_same_setting(const char *a, const char *b);
/* Copies every dynamic setting of src into dst; threads reading dst see
 * each field's old value or its new one. True when any of them changed. */
bool config_copy_dynamic(config *dst, const config *src);

#endif
