package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class ConsumerGroupTest extends WithAdmin {
    static void produce(String topic, int partitions, int perPartition) {
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of())) {
            for (int part = 0; part < partitions; part++) {
                for (int i = 0; i < perPartition; i++) {
                    p.send(new ProducerRecord<>(topic, part, "k" + i, part + ":" + i));
                }
            }
            p.flush();
        }
    }

    static KafkaConsumer<String, String> member(String group, Class<?> assignor, String instanceId) {
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cfg.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor.getName());
        cfg.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10000);
        cfg.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        if (instanceId != null) {
            cfg.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
        }
        return Chronik.consumer(cfg);
    }

    /** Records what the cooperative protocol revokes and assigns. */
    static final class Listener implements ConsumerRebalanceListener {
        final Set<TopicPartition> revoked = new HashSet<>();
        final Set<TopicPartition> lost = new HashSet<>();
        final Map<TopicPartition, Long> last = new HashMap<>();

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> ps) {
            revoked.addAll(ps);
            ps.forEach(last::remove); // what was read of a revoked partition no longer counts
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> ps) {}

        @Override
        public void onPartitionsLost(Collection<TopicPartition> ps) {
            lost.addAll(ps);
        }
    }

    static void pollInto(KafkaConsumer<String, String> c, Map<TopicPartition, Long> last) {
        c.poll(Duration.ofMillis(100)).forEach(r -> last.put(new TopicPartition(r.topic(), r.partition()), r.offset()));
    }

    /** Owns 2 partitions and has consumed each to its last record (offset 24). */
    static boolean readToEnd(KafkaConsumer<String, String> c, Map<TopicPartition, Long> last) {
        return c.assignment().size() == 2
                && c.assignment().stream().allMatch(tp -> last.getOrDefault(tp, -1L) == 24L);
    }

    /** Two members share a 4-partition topic and consume every record once. */
    static void twoMembersShare(Class<?> assignor) throws Exception {
        String topic = Chronik.unique("j-grp");
        String group = Chronik.unique("g");
        Chronik.createTopic(admin, topic, 4, Map.of());
        produce(topic, 4, 25);
        try (KafkaConsumer<String, String> a = member(group, assignor, null);
                KafkaConsumer<String, String> b = member(group, assignor, null)) {
            Listener la = new Listener();
            a.subscribe(List.of(topic), la);
            Map<TopicPartition, Long> lastA = la.last;
            Map<TopicPartition, Long> lastB = new HashMap<>();
            Chronik.until("member a owns all 4 partitions", () -> pollInto(a, lastA),
                    () -> a.assignment().size() == 4);
            b.subscribe(List.of(topic));
            Chronik.until("both members own 2 partitions and have read them to the end", () -> {
                pollInto(a, lastA);
                pollInto(b, lastB);
            }, () -> readToEnd(a, lastA) && readToEnd(b, lastB));
            Set<TopicPartition> union = new HashSet<>(a.assignment());
            union.addAll(b.assignment());
            assertEquals(4, union.size());
            assertTrue(la.lost.isEmpty(), "no partition lost in a clean rebalance");
            if (assignor == CooperativeStickyAssignor.class) {
                assertEquals(b.assignment(), la.revoked, "cooperative: only the moved partitions are revoked");
            } else {
                assertEquals(4, la.revoked.size(), "eager: everything is revoked before the rebalance");
            }
            a.commitSync();
            b.commitSync();
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups()
                    .get(group).get(30, TimeUnit.SECONDS);
            assertEquals(GroupState.STABLE, d.groupState());
            assertEquals(2, d.members().size());
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            assertEquals(4, committed.size());
            committed.values().forEach(o -> assertEquals(25, o.offset()));
        }
    }

    // Classic protocol, eager assignors: range and round-robin.
    @Test
    void eagerRangeAssignor() throws Exception {
        twoMembersShare(RangeAssignor.class);
    }

    @Test
    void eagerRoundRobinAssignor() throws Exception {
        twoMembersShare(RoundRobinAssignor.class);
    }

    // Classic protocol, incremental cooperative rebalancing.
    @Test
    void cooperativeStickyAssignor() throws Exception {
        twoMembersShare(CooperativeStickyAssignor.class);
    }

    // A static member (group.instance.id) that leaves without LeaveGroup and
    // comes back within the session timeout gets its partitions back with no
    // new generation.
    @Test
    void staticMembershipRejoinsWithoutRebalance() throws Exception {
        String topic = Chronik.unique("j-static");
        String group = Chronik.unique("g-static");
        Chronik.createTopic(admin, topic, 2, Map.of());
        int generation;
        Set<TopicPartition> assignment;
        try (KafkaConsumer<String, String> c = member(group, RangeAssignor.class, "static-1")) {
            c.subscribe(List.of(topic));
            Chronik.until("static member assigned", () -> c.poll(Duration.ofMillis(100)),
                    () -> c.assignment().size() == 2);
            generation = c.groupMetadata().generationId();
            assignment = new HashSet<>(c.assignment());
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups()
                    .get(group).get(30, TimeUnit.SECONDS);
            MemberDescription m = d.members().iterator().next();
            assertEquals("static-1", m.groupInstanceId().orElse(null));
        }
        try (KafkaConsumer<String, String> c = member(group, RangeAssignor.class, "static-1")) {
            c.subscribe(List.of(topic));
            Chronik.until("static member back", () -> c.poll(Duration.ofMillis(100)),
                    () -> c.assignment().size() == 2);
            assertEquals(assignment, c.assignment());
            assertEquals(generation, c.groupMetadata().generationId(), "no rebalance for a static rejoin");
        }
    }

    // commitSync with metadata, committed(), seek, seekToBeginning/End, position.
    @Test
    void commitsAndSeeks() throws Exception {
        String topic = Chronik.unique("j-seek");
        String group = Chronik.unique("g-seek");
        Chronik.createTopic(admin, topic, 1, Map.of());
        produce(topic, 1, 50);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = member(group, RangeAssignor.class, null)) {
            c.assign(List.of(tp));
            c.seek(tp, 20);
            List<ConsumerRecord<String, String>> got = Chronik.pollN(c, 1);
            assertEquals(20, got.get(0).offset());
            c.commitSync(Map.of(tp, new OffsetAndMetadata(30, "checkpoint")));
            OffsetAndMetadata om = c.committed(Set.of(tp)).get(tp);
            assertEquals(30, om.offset());
            assertEquals("checkpoint", om.metadata());
            c.seekToEnd(List.of(tp));
            assertEquals(50, c.position(tp));
            c.seekToBeginning(List.of(tp));
            assertEquals(0, c.position(tp));
        }
        try (KafkaConsumer<String, String> c = member(group, RangeAssignor.class, null)) {
            c.assign(List.of(tp));
            List<ConsumerRecord<String, String>> got = Chronik.pollN(c, 20);
            assertEquals(30, got.get(0).offset(), "a new consumer starts at the committed offset");
            assertEquals(49, got.get(got.size() - 1).offset());
        }
    }

    // offsetsForTimes finds the first offset at or after a timestamp;
    // beginningOffsets/endOffsets bound the partition.
    @Test
    void offsetsForTimes() throws Exception {
        String topic = Chronik.unique("j-times");
        Chronik.createTopic(admin, topic, 1, Map.of());
        long t0 = System.currentTimeMillis() - 100_000;
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of())) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, 0, t0 + i * 1000L, "k", "v" + i)).get();
            }
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = Chronik.consumer(Map.of())) {
            Map<TopicPartition, OffsetAndTimestamp> r = c.offsetsForTimes(Map.of(tp, t0 + 3500));
            assertEquals(4, r.get(tp).offset());
            assertEquals(t0 + 4000, r.get(tp).timestamp());
            assertEquals(0, c.offsetsForTimes(Map.of(tp, t0 - 1)).get(tp).offset());
            assertNull(c.offsetsForTimes(Map.of(tp, t0 + 60_000)).get(tp), "nothing that late");
            assertEquals(0L, c.beginningOffsets(List.of(tp)).get(tp));
            assertEquals(10L, c.endOffsets(List.of(tp)).get(tp));
            assertEquals(1, c.partitionsFor(topic).size());
        }
    }
}
