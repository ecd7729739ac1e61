package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The brokers under test and the clients the tests make of them: the plain
 * one (CHRONIK_BOOTSTRAP), and a secured one (CHRONIK_SASL_BOOTSTRAP, its
 * SASL_PLAINTEXT listener) whose authorizer denies what no ACL allows, with
 * SCRAM users ADMIN (a super user) and ALICE (no rights of her own).
 */
final class Chronik {
    static final Duration DEADLINE = Duration.ofSeconds(45);
    static final String ADMIN = "admin", ADMIN_PASSWORD = "admin-secret";
    static final String ALICE = "alice", ALICE_PASSWORD = "alice-secret";

    private Chronik() {}

    private static String env(String name) {
        String b = System.getenv(name);
        if (b == null || b.isEmpty()) {
            fail(name + " is not set: run through tests/integration/test_java.py");
        }
        return b;
    }

    static String bootstrap() {
        return env("CHRONIK_BOOTSTRAP");
    }

    /** Client settings for the secured broker: SASL_PLAINTEXT, mechanism, user and password. */
    static Map<String, Object> sasl(String mechanism, String user, String password) {
        String module = mechanism.equals("PLAIN") ? "org.apache.kafka.common.security.plain.PlainLoginModule"
                : "org.apache.kafka.common.security.scram.ScramLoginModule";
        return Map.of(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, env("CHRONIK_SASL_BOOTSTRAP"),
                CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT",
                SaslConfigs.SASL_MECHANISM, mechanism,
                SaslConfigs.SASL_JAAS_CONFIG,
                module + " required username=\"" + user + "\" password=\"" + password + "\";");
    }

    /** a's settings with b's added over them. */
    static Map<String, Object> with(Map<String, Object> a, Map<String, Object> b) {
        Map<String, Object> m = new HashMap<>(a);
        m.putAll(b);
        return m;
    }

    /** An Admin client with these settings (bootstrap included). */
    static Admin admin(Map<String, Object> overrides) {
        Properties p = new Properties();
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        p.putAll(overrides);
        return Admin.create(p);
    }

    /** A name no other test uses, so that tests share one broker. */
    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    static Admin admin() {
        return admin(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap()));
    }

    static KafkaProducer<String, String> producer(Map<String, Object> overrides) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        p.putAll(overrides);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(Map<String, Object> overrides) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.putAll(overrides);
        return new KafkaConsumer<>(p);
    }

    static void createTopic(Admin admin, String topic, int partitions, Map<String, String> configs)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs)))
                .all().get(30, TimeUnit.SECONDS);
    }

    /** Polls until n records arrived; fails at the deadline. */
    static List<ConsumerRecord<String, String>> pollN(KafkaConsumer<String, String> c, int n) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (got.size() < n) {
            if (System.nanoTime() > end) {
                fail("consumed " + got.size() + " of " + n + " records before the deadline");
            }
            c.poll(Duration.ofMillis(200)).forEach(got::add);
        }
        return got;
    }

    /** Runs step until done() holds; fails with what at the deadline. */
    static void until(String what, Runnable step, BooleanSupplier done) {
        long end = System.nanoTime() + DEADLINE.toNanos();
        while (!done.getAsBoolean()) {
            assertTrue(System.nanoTime() < end, "deadline passed waiting for " + what);
            step.run();
        }
    }
}
