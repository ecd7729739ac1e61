package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(90)
class AdminTest extends WithAdmin {
    static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    static Throwable cause(KafkaFuture<?> f) {
        return assertThrows(ExecutionException.class, () -> get(f)).getCause();
    }

    static void produce(String topic, int partition, int n, long firstTs) throws Exception {
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of())) {
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, partition, firstTs + i, "k" + i, "v" + i));
            }
            p.flush();
        }
    }

    // create (with configs), list, describe, create partitions, delete.
    @Test
    void topicLifecycle() throws Exception {
        String topic = Chronik.unique("j-topic");
        Chronik.createTopic(admin, topic, 2, Map.of("retention.ms", "7200000"));
        assertInstanceOf(TopicExistsException.class,
                cause(admin.createTopics(List.of(new org.apache.kafka.clients.admin.NewTopic(topic, 1, (short) 1))).all()));
        assertTrue(get(admin.listTopics().names()).contains(topic));
        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        assertEquals(2, d.partitions().size());
        assertNotNull(d.topicId());
        d.partitions().forEach(p -> {
            assertNotNull(p.leader());
            assertEquals(1, p.replicas().size());
            assertEquals(1, p.isr().size());
        });
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
        assertEquals(5, get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic).partitions().size());
        get(admin.deleteTopics(List.of(topic)).all());
        Chronik.until("topic gone from listTopics", () -> {}, () -> {
            try {
                return !get(admin.listTopics().names()).contains(topic);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertInstanceOf(UnknownTopicOrPartitionException.class,
                cause(admin.describeTopics(List.of(topic)).allTopicNames()));
    }

    // One node that is also the controller, and a cluster id.
    @Test
    void describeCluster() throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        Collection<Node> nodes = get(r.nodes());
        assertEquals(1, nodes.size());
        Node n = nodes.iterator().next();
        assertEquals("127.0.0.1", n.host());
        assertEquals(Integer.parseInt(Chronik.bootstrap().split(":")[1]), n.port());
        assertNotNull(get(r.clusterId()));
        assertNotNull(get(r.controller()));
    }

    // earliest, latest, by timestamp and max timestamp.
    @Test
    void listOffsets() throws Exception {
        String topic = Chronik.unique("j-lo");
        Chronik.createTopic(admin, topic, 1, Map.of());
        long t0 = 1_700_000_000_000L;
        produce(topic, 0, 20, t0);
        TopicPartition tp = new TopicPartition(topic, 0);
        Map<OffsetSpec, Long> want = Map.of(OffsetSpec.earliest(), 0L, OffsetSpec.latest(), 20L,
                OffsetSpec.forTimestamp(t0 + 7), 7L, OffsetSpec.maxTimestamp(), 19L);
        for (Map.Entry<OffsetSpec, Long> e : want.entrySet()) {
            ListOffsetsResultInfo info = get(admin.listOffsets(Map.of(tp, e.getKey())).partitionResult(tp));
            assertEquals(e.getValue(), info.offset(), e.getKey().getClass().getSimpleName());
        }
    }

    static Config topicConfig(String topic) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return get(admin.describeConfigs(List.of(r)).all()).get(r);
    }

    // describeConfigs for a topic and the broker; incrementalAlterConfigs
    // SET, APPEND, SUBTRACT and DELETE; invalid values refused.
    @Test
    void describeAndIncrementalAlterConfigs() throws Exception {
        String topic = Chronik.unique("j-cfg");
        Chronik.createTopic(admin, topic, 1, Map.of());
        ConfigEntry retention = topicConfig(topic).get("retention.ms");
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, retention.source());

        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        get(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "123456"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                .all());
        Config c = topicConfig(topic);
        assertEquals("123456", c.get("retention.ms").value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());
        assertEquals(Set.of("delete", "compact"), Set.of(c.get("cleanup.policy").value().split(",")));

        get(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.SUBTRACT))))
                .all());
        c = topicConfig(topic);
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, c.get("retention.ms").source());
        assertEquals("compact", c.get("cleanup.policy").value());

        assertInstanceOf(InvalidConfigurationException.class, cause(admin.incrementalAlterConfigs(Map.of(r,
                List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET))))
                .all()));

        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, "1");
        Config b = get(admin.describeConfigs(List.of(broker)).all()).get(broker);
        assertNotNull(b.get("message.max.bytes"));
        assertEquals("1048588", b.get("message.max.bytes").value());
    }

    /** Partition 0 of a new one-partition topic holding n records. */
    static TopicPartition filled(String prefix, int n) throws Exception {
        String topic = Chronik.unique(prefix);
        Chronik.createTopic(admin, topic, 1, Map.of());
        produce(topic, 0, n, System.currentTimeMillis());
        return new TopicPartition(topic, 0);
    }

    // deleteRecords moves the low watermark; listOffsets earliest follows.
    @Test
    void deleteRecords() throws Exception {
        TopicPartition tp = filled("j-dr", 10);
        long low = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(6))).lowWatermarks().get(tp))
                .lowWatermark();
        assertEquals(6, low);
        assertEquals(6, get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset());
    }

    // list, describe, offsets (list, alter, delete) and delete of a consumer group.
    @Test
    void consumerGroups() throws Exception {
        String topic = Chronik.unique("j-ag");
        String group = Chronik.unique("g-admin");
        Chronik.createTopic(admin, topic, 2, Map.of());
        produce(topic, 0, 10, System.currentTimeMillis());
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);

        get(admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(4, "m"),
                p1, new OffsetAndMetadata(0))).all());
        Map<TopicPartition, OffsetAndMetadata> offs = get(admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata());
        assertEquals(4, offs.get(p0).offset());
        assertEquals("m", offs.get(p0).metadata());
        assertEquals(0, offs.get(p1).offset());

        Collection<GroupListing> groups = get(admin.listGroups().all());
        GroupListing listed = groups.stream().filter(g -> g.groupId().equals(group)).findFirst()
                .orElseThrow(() -> new AssertionError("listGroups lacks " + group + ": " + groups));
        assertEquals(Optional.of(GroupType.CLASSIC), listed.type());

        ConsumerGroupDescription d = get(admin.describeConsumerGroups(List.of(group)).describedGroups().get(group));
        assertEquals(GroupState.EMPTY, d.groupState());
        assertTrue(d.members().isEmpty());

        get(admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all());
        offs = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        assertFalse(offs.containsKey(p1));

        get(admin.deleteConsumerGroups(List.of(group)).all());
        assertInstanceOf(GroupIdNotFoundException.class,
                cause(admin.deleteConsumerGroups(List.of(group)).all()));
    }

    // describeProducers lists the idempotent producer that wrote a partition.
    @Test
    void describeProducers() throws Exception {
        TopicPartition tp = filled("j-dp", 3);
        var state = get(admin.describeProducers(List.of(tp)).partitionResult(tp));
        assertEquals(1, state.activeProducers().size());
        assertEquals(2, state.activeProducers().get(0).lastSequence());
        assertEquals(0, state.activeProducers().get(0).producerEpoch());
    }
}
