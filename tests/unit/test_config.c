/* Unit tests for src/broker/config: defaults, Kafka key names, files, errors. */
#include "test.h"

#include <fcntl.h>
#include <unistd.h>

#include "broker/config.h"

/* With no configuration, a single node listens on 127.0.0.1:9092 and is its own quorum. */
TEST(defaults_single_node)
{
    config c;
    char err[256];
    config_defaults(&c);
    REQUIRE(config_finish(&c, err, sizeof err) == 0);
    CHECK(strcmp(c.listen.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(c.listen.port, 9092);
    CHECK_EQ_INT(c.controller_listen.port, 9093);
    CHECK_EQ_INT(c.admin_listen.port, 9644);
    CHECK_EQ_INT(c.advertise.port, 9092);
    CHECK_EQ_INT(c.nvoters, 1);
    CHECK_EQ_INT(c.voters[0].id, c.node_id);
    CHECK(strcmp(c.data_dir, "./chronik-data") == 0);
    CHECK(c.auto_create_topics_enable);
    CHECK_EQ_INT(c.num_partitions, 1);
    CHECK_EQ_INT(c.socket_request_max_bytes, 104857600);
    CHECK(c.num_network_threads >= 1);
}

/* Kafka key names set the matching fields, including unit-converting aliases. */
TEST(kafka_keys)
{
    config c;
    char err[256];
    config_defaults(&c);
    CHECK(config_set(&c, "node.id", "3", err, sizeof err) == 0);
    CHECK(config_set(&c, "listeners", "PLAINTEXT://127.0.0.2:19092,CONTROLLER://127.0.0.2:19093",
                     err, sizeof err) == 0);
    CHECK(config_set(&c, "controller.quorum.voters", "1@127.0.0.1:9093,2@127.0.0.2:9093,3@[::1]:9093",
                     err, sizeof err) == 0);
    CHECK(config_set(&c, "log.retention.hours", "2", err, sizeof err) == 0);
    CHECK(config_set(&c, "auto.create.topics.enable", "false", err, sizeof err) == 0);
    CHECK_EQ_INT(c.node_id, 3);
    CHECK(strcmp(c.listen.host, "127.0.0.2") == 0);
    CHECK_EQ_INT(c.listen.port, 19092);
    CHECK_EQ_INT(c.controller_listen.port, 19093);
    CHECK_EQ_INT(c.nvoters, 3);
    CHECK_EQ_INT(c.voters[1].id, 2);
    CHECK(strcmp(c.voters[2].addr.host, "::1") == 0);
    CHECK_EQ_INT(c.log_retention_ms, 7200000);
    CHECK(!c.auto_create_topics_enable);
}

/* An unknown key is an error that names the key; a bad value names key and value. */
TEST(unknown_and_bad_values)
{
    config c;
    char err[256];
    config_defaults(&c);
    CHECK(config_set(&c, "no.such.key", "1", err, sizeof err) == -1);
    CHECK(strstr(err, "no.such.key") != NULL);
    CHECK(config_set(&c, "num.partitions", "many", err, sizeof err) == -1);
    CHECK(strstr(err, "num.partitions") && strstr(err, "many"));
    CHECK(config_set(&c, "listeners", "PLAINTEXT://nohostport", err, sizeof err) == -1);
    CHECK(config_set(&c, "controller.quorum.voters", "x@1.2.3.4:5", err, sizeof err) == -1);
    CHECK(config_set(&c, "auto.create.topics.enable", "yes", err, sizeof err) == -1);
}

/* A properties file is read with comments, and its errors carry file:line. */
TEST(properties_file)
{
    char path[] = "/tmp/chronik-config-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const char *text = "# comment\n! another\n\nnode.id = 7\nlog.dirs=/tmp/x\nnum.partitions=4\n";
    REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    config c;
    char err[256];
    config_defaults(&c);
    CHECK(config_load_file(&c, path, err, sizeof err) == 0);
    CHECK_EQ_INT(c.node_id, 7);
    CHECK_EQ_INT(c.num_partitions, 4);
    CHECK(strcmp(c.data_dir, "/tmp/x") == 0);

    fd = open(path, O_WRONLY | O_TRUNC);
    REQUIRE(fd >= 0);
    const char *bad = "node.id=1\nbogus.key=2\n";
    REQUIRE(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
    close(fd);
    CHECK(config_load_file(&c, path, err, sizeof err) == -1);
    CHECK(strstr(err, ":2:") && strstr(err, "bogus.key"));
    unlink(path);
    CHECK(config_load_file(&c, path, err, sizeof err) == -1);
}

/* The table says which keys are dynamic and which are aliases, and formats every value as it was set. */
TEST(key_info_and_values)
{
    config c;
    char err[256], v[512];
    config_defaults(&c);
    config_key_info k;
    REQUIRE(config_key_find("log.retention.ms", &k));
    CHECK(k.dynamic && !k.alias && !k.ignored);
    REQUIRE(config_key_find("log.retention.hours", &k));
    CHECK(k.dynamic && k.alias);
    REQUIRE(config_key_find("node.id", &k));
    CHECK(!k.dynamic);
    REQUIRE(config_key_find("log.message.format.version", &k));
    CHECK(k.ignored);
    CHECK(!config_key_find("no.such.key", &k));
    CHECK(config_same_setting("log.retention.hours", "log.retention.ms"));
    CHECK(!config_same_setting("log.retention.ms", "log.retention.bytes"));

    CHECK(config_set(&c, "log.retention.hours", "2", err, sizeof err) == 0);
    CHECK(config_set(&c, "log.cleaner.min.cleanable.ratio", "0.25", err, sizeof err) == 0);
    CHECK(config_set(&c, "log.cleaner.min.cleanable.ratio", "1.5", err, sizeof err) == -1);
    CHECK(config_set(&c, "log.message.timestamp.type", "LogAppendTime", err, sizeof err) == 0);
    CHECK(config_set(&c, "log.message.timestamp.type", "Now", err, sizeof err) == -1);
    REQUIRE(config_get(&c, "log.retention.ms", v, sizeof v));
    CHECK(strcmp(v, "7200000") == 0);
    REQUIRE(config_get(&c, "log.cleaner.min.cleanable.ratio", v, sizeof v));
    CHECK(strcmp(v, "0.25") == 0);
    REQUIRE(config_get(&c, "log.message.timestamp.type", v, sizeof v));
    CHECK(strcmp(v, "LogAppendTime") == 0);
    CHECK(!config_get(&c, "log.message.format.version", v, sizeof v));
}

/* Copying the dynamic settings leaves every static one as it was. */
TEST(copy_dynamic_only)
{
    config live, next;
    char err[256];
    config_defaults(&live);
    next = live;
    CHECK(config_set(&next, "log.retention.ms", "1000", err, sizeof err) == 0);
    CHECK(config_set(&next, "log.message.timestamp.type", "LogAppendTime", err, sizeof err) == 0);
    CHECK(config_set(&next, "num.partitions", "9", err, sizeof err) == 0);
    config_copy_dynamic(&live, &next);
    CHECK_EQ_INT(live.log_retention_ms, 1000);
    CHECK_EQ_INT(live.log_message_timestamp_type, CONFIG_LOG_APPEND_TIME);
    CHECK_EQ_INT(live.num_partitions, 1);
}

/* Set keys (name=value pairs) on defaults, then finish; returns finish's result. */
static int finish_with(config *c, const char *const *kv, char *err, size_t errlen)
{
    config_defaults(c);
    for (; kv[0] != NULL; kv += 2)
        if (config_set(c, kv[0], kv[1], err, errlen) != 0)
            return -2;
    return config_finish(c, err, errlen);
}

/* Named listeners: each gets its protocol from the map and its own
 * advertised address; listen/advertise are the inter-broker listener's. */
TEST(named_listeners)
{
    config c;
    char err[256];
    const char *const kv[] = {"listeners", "PLAINTEXT://127.0.0.1:19092,SSL://127.0.0.1:19094,CONTROLLER://127.0.0.1:19093",
                              "advertised.listeners", "SSL://tls.example:443,PLAINTEXT://plain.example:9092",
                              "ssl.keystore.location", "/nonexistent.pem", NULL};
    REQUIRE(finish_with(&c, kv, err, sizeof err) == 0);
    const config_listener *ssl = config_listener_find(&c, "SSL");
    REQUIRE(ssl != NULL);
    CHECK_EQ_INT(ssl->protocol, CONFIG_SSL);
    CHECK(strcmp(ssl->advertise.host, "tls.example") == 0 && ssl->advertise.port == 443);
    CHECK(config_listener_find(&c, "CONTROLLER")->controller);
    CHECK_EQ_INT(c.controller_listen.port, 19093);
    CHECK_EQ_INT(c.listen.port, 19092);
    CHECK(strcmp(c.advertise.host, "plain.example") == 0);
    char v[512];
    REQUIRE(config_get(&c, "listeners", v, sizeof v));
    CHECK(strcmp(v, "PLAINTEXT://127.0.0.1:19092,SSL://127.0.0.1:19094,CONTROLLER://127.0.0.1:19093") == 0);
    REQUIRE(config_get(&c, "advertised.listeners", v, sizeof v));
    CHECK(strcmp(v, "PLAINTEXT://plain.example:9092,SSL://tls.example:443") == 0);
}

/* Custom names through the map; a name-less entry (--listen) is PLAINTEXT. */
TEST(listener_names_mapped)
{
    config c;
    char err[256];
    const char *const kv[] = {"listeners", "INTERNAL://127.0.0.1:1,external://127.0.0.1:2",
                              "listener.security.protocol.map", "INTERNAL:PLAINTEXT,EXTERNAL:SSL",
                              "inter.broker.listener.name", "INTERNAL", "ssl.keystore.location", "/k.pem", NULL};
    REQUIRE(finish_with(&c, kv, err, sizeof err) == 0);
    CHECK_EQ_INT(config_listener_find(&c, "EXTERNAL")->protocol, CONFIG_SSL);
    CHECK_EQ_INT(c.listen.port, 1);
    const char *const legacy[] = {"listeners", "127.0.0.1:7", NULL};
    REQUIRE(finish_with(&c, legacy, err, sizeof err) == 0);
    CHECK(config_listener_find(&c, "PLAINTEXT") != NULL && c.listen.port == 7 && c.advertise.port == 7);
}

/* Unknown names, SASL_SSL without a keystore, unknown SASL mechanisms, an SSL
 * inter-broker listener without a truststore and a missing keystore are clear
 * startup errors. */
TEST(listener_errors)
{
    config c;
    char err[256];
    const char *const unknown[] = {"listeners", "FOO://127.0.0.1:1,PLAINTEXT://127.0.0.1:2", NULL};
    CHECK(finish_with(&c, unknown, err, sizeof err) == -1 && strstr(err, "'FOO'") != NULL);
    const char *const sasl[] = {"listeners", "PLAINTEXT://127.0.0.1:2,SASL_SSL://127.0.0.1:3", NULL};
    CHECK(finish_with(&c, sasl, err, sizeof err) == -1 && strstr(err, "ssl.keystore.location") != NULL);
    const char *const mechs[] = {"listeners", "PLAINTEXT://127.0.0.1:2,SASL_PLAINTEXT://127.0.0.1:3",
                                 "sasl.enabled.mechanisms", "PLAIN,GSSAPI", NULL};
    CHECK(finish_with(&c, mechs, err, sizeof err) == -1 && strstr(err, "'GSSAPI' is not offered") != NULL);
    const char *const ok[] = {"listeners", "PLAINTEXT://127.0.0.1:2,SASL_PLAINTEXT://127.0.0.1:3", NULL};
    CHECK(finish_with(&c, ok, err, sizeof err) == 0);
    const char *const ib[] = {"listeners", "PLAINTEXT://127.0.0.1:2,SSL://127.0.0.1:3", "inter.broker.listener.name",
                              "SSL", "ssl.keystore.location", "/k.pem", NULL};
    CHECK(finish_with(&c, ib, err, sizeof err) == -1 && strstr(err, "ssl.truststore.location") != NULL);
    const char *const nokey[] = {"listeners", "PLAINTEXT://127.0.0.1:2,SSL://127.0.0.1:3", NULL};
    CHECK(finish_with(&c, nokey, err, sizeof err) == -1 && strstr(err, "ssl.keystore.location") != NULL);
    const char *const adv[] = {"advertised.listeners", "SSL://h:1", NULL};
    CHECK(finish_with(&c, adv, err, sizeof err) == -1 && strstr(err, "'SSL'") != NULL);
    const char *const auth[] = {"ssl.client.auth", "sometimes", NULL};
    CHECK(finish_with(&c, auth, err, sizeof err) == -1 && strstr(err, "ssl.client.auth") != NULL);
    const char *const old[] = {"ssl.enabled.protocols", "TLSv1.1", NULL};
    CHECK(finish_with(&c, old, err, sizeof err) == -1 && strstr(err, "TLSv1.1") != NULL);
    const char *const bad[] = {"listeners", "B@D://127.0.0.1:1", NULL};
    CHECK(finish_with(&c, bad, err, sizeof err) == -2);
}

/* Every listener SASL_SSL: the node's login comes from sasl.jaas.config in
 * Kafka's JAAS form; a missing or malformed one, or a mechanism not enabled,
 * is a clear startup error. */
TEST(secure_peers)
{
    config c;
    char err[256];
    const char *const base[] = {
        "listeners", "SASL_SSL://127.0.0.1:2,CONTROLLER://127.0.0.1:3", "listener.security.protocol.map",
        "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL", "inter.broker.listener.name", "SASL_SSL", "ssl.keystore.location",
        "/k.pem", "ssl.truststore.location", "/ca.pem", "sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512",
        "sasl.mechanism.controller.protocol", "SCRAM-SHA-512", "sasl.jaas.config",
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" "
        "password=\"p\\\"w\";", NULL};
    CHECK(finish_with(&c, base, err, sizeof err) == 0);
    CHECK_EQ_INT(c.listeners[c.inter_broker].protocol, CONFIG_SASL_SSL);
    CHECK_EQ_INT(c.controller_protocol, CONFIG_SASL_SSL);
    CHECK(strcmp(c.sasl_username, "broker") == 0 && strcmp(c.sasl_password, "p\"w") == 0);
    char user[64], pw[64];
    const char *bad[] = {"", "Foo required username=\"a\" password=\"b\";",
                         "x.PlainLoginModule optional username=\"a\" password=\"b\";",
                         "x.PlainLoginModule required username=\"a\";",
                         "x.PlainLoginModule required username=a password=\"b\";",
                         "x.PlainLoginModule required username=\"a\" password=\"b\"",
                         "x.PlainLoginModule required username=\"a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(config_parse_jaas(bad[i], user, sizeof user, pw, sizeof pw, err, sizeof err) == -1 &&
              strstr(err, "sasl.jaas.config") != NULL);
    CHECK(config_parse_jaas(" a.b.PlainLoginModule required  serviceName=\"x\" username=\"u\" password=\"\" ;",
                            user, sizeof user, pw, sizeof pw, err, sizeof err) == -1); /* empty password */
    const char *const nologin[] = {"listeners", "SASL_PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:3",
                                   "inter.broker.listener.name", "SASL_PLAINTEXT", NULL};
    CHECK(finish_with(&c, nologin, err, sizeof err) == -1 && strstr(err, "sasl.jaas.config") != NULL);
    const char *const mech[] = {"listeners", "SASL_PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:3",
                                "inter.broker.listener.name", "SASL_PLAINTEXT", "sasl.enabled.mechanisms", "PLAIN",
                                "sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256", "sasl.jaas.config",
                                "x.ScramLoginModule required username=\"u\" password=\"p\";", NULL};
    CHECK(finish_with(&c, mech, err, sizeof err) == -1 && strstr(err, "does not enable") != NULL);
}

/* A password is never shown. */
TEST(password_hidden)
{
    config c;
    char err[256], v[64];
    config_defaults(&c);
    CHECK(config_set(&c, "ssl.key.password", "s3cret", err, sizeof err) == 0);
    config_key_info ki;
    REQUIRE(config_key_find("ssl.key.password", &ki));
    CHECK(ki.sensitive);
    REQUIRE(config_get(&c, "ssl.key.password", v, sizeof v));
    CHECK(strcmp(v, "") == 0);
}
