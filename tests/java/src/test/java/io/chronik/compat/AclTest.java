package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.GroupAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * ACLs through the Java Admin client on the secured broker (an authorizer
 * that denies what no ACL allows): the super user creates, describes and
 * deletes them; a user without them is refused with the exceptions Kafka
 * raises, and let in once an ACL allows it.
 */
@Timeout(120)
class AclTest {
    static Admin admin;

    @BeforeAll
    static void open() {
        admin = Chronik.admin(Chronik.sasl("SCRAM-SHA-512", Chronik.ADMIN, Chronik.ADMIN_PASSWORD));
    }

    @AfterAll
    static void close() {
        admin.close();
    }

    static Map<String, Object> alice() {
        return Chronik.sasl("SCRAM-SHA-512", Chronik.ALICE, Chronik.ALICE_PASSWORD);
    }

    static AclBinding allow(ResourceType type, String name, PatternType pattern, AclOperation op) {
        return new AclBinding(new ResourcePattern(type, name, pattern),
                new AccessControlEntry("User:" + Chronik.ALICE, "*", op, AclPermissionType.ALLOW));
    }

    static AclBindingFilter aliceOn(String name) {
        return new AclBindingFilter(new ResourcePatternFilter(ResourceType.ANY, name, PatternType.ANY),
                new AccessControlEntryFilter("User:" + Chronik.ALICE, null, AclOperation.ANY, AclPermissionType.ANY));
    }

    static Collection<AclBinding> describe(AclBindingFilter f) throws Exception {
        return admin.describeAcls(f).values().get(30, TimeUnit.SECONDS);
    }

    static void createTopic(String topic) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
    }

    // Created, described (by exact and prefixed patterns) and deleted by the super user.
    @Test
    void createDescribeDelete() throws Exception {
        String topic = Chronik.unique("j-acl");
        AclBinding read = allow(ResourceType.TOPIC, topic, PatternType.LITERAL, AclOperation.READ);
        AclBinding group = allow(ResourceType.GROUP, topic, PatternType.PREFIXED, AclOperation.READ);
        admin.createAcls(List.of(read, group)).all().get(30, TimeUnit.SECONDS);
        assertEquals(Set.of(read, group), Set.copyOf(describe(aliceOn(topic))));
        AclBindingFilter topicsOnly = new AclBindingFilter(
                new ResourcePatternFilter(ResourceType.TOPIC, topic, PatternType.LITERAL), AccessControlEntryFilter.ANY);
        assertEquals(List.of(read), List.copyOf(describe(topicsOnly)));
        Collection<AclBinding> deleted = admin.deleteAcls(List.of(aliceOn(topic))).all().get(30, TimeUnit.SECONDS);
        assertEquals(Set.of(read, group), Set.copyOf(deleted));
        assertTrue(describe(aliceOn(topic)).isEmpty());
    }

    // Without an ACL alice's producer gets TopicAuthorizationException; with WRITE it delivers.
    @Test
    void producerRefusedThenAllowed() throws Exception {
        String topic = Chronik.unique("j-aclp");
        createTopic(topic);
        try (KafkaProducer<String, String> p = Chronik.producer(Chronik.with(alice(),
                Map.of(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15000)))) {
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> p.send(new ProducerRecord<>(topic, "k", "v")).get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, e.getCause());
            admin.createAcls(List.of(allow(ResourceType.TOPIC, topic, PatternType.LITERAL, AclOperation.WRITE)))
                    .all().get(30, TimeUnit.SECONDS);
        }
        try (KafkaProducer<String, String> p = Chronik.producer(alice())) {
            assertEquals(0, p.send(new ProducerRecord<>(topic, "k", "v")).get(30, TimeUnit.SECONDS).offset());
        }
    }

    // Alice's consumer: TopicAuthorizationException on a topic she may not read,
    // GroupAuthorizationException for a group she may not join.
    @Test
    void consumerRefused() throws Exception {
        String topic = Chronik.unique("j-aclc");
        createTopic(topic);
        try (KafkaConsumer<String, String> c = Chronik.consumer(alice())) {
            c.assign(List.of(new TopicPartition(topic, 0)));
            assertThrows(TopicAuthorizationException.class, () -> pollUntilThrown(c));
        }
        admin.createAcls(List.of(allow(ResourceType.TOPIC, topic, PatternType.LITERAL, AclOperation.READ)))
                .all().get(30, TimeUnit.SECONDS);
        try (KafkaConsumer<String, String> c = Chronik.consumer(Chronik.with(alice(),
                Map.of(ConsumerConfig.GROUP_ID_CONFIG, Chronik.unique("j-aclg"))))) {
            c.subscribe(List.of(topic));
            assertThrows(GroupAuthorizationException.class, () -> pollUntilThrown(c));
        }
    }

    // Alice may not create topics nor list ACLs (no CREATE, no DESCRIBE on the cluster).
    @Test
    void adminRefused() throws Exception {
        try (Admin a = Chronik.admin(alice())) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> a.createTopics(
                    List.of(new NewTopic(Chronik.unique("j-acla"), 1, (short) 1))).all().get(30, TimeUnit.SECONDS));
            assertInstanceOf(TopicAuthorizationException.class, e.getCause());
            e = assertThrows(ExecutionException.class,
                    () -> a.describeAcls(AclBindingFilter.ANY).values().get(30, TimeUnit.SECONDS));
            assertInstanceOf(ClusterAuthorizationException.class, e.getCause());
        }
    }

    /** Polls until the consumer throws; fails at the deadline. */
    static void pollUntilThrown(KafkaConsumer<String, String> c) {
        Chronik.until("an authorization error", () -> c.poll(Duration.ofMillis(200)), () -> false);
    }
}
