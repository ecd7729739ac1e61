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
