package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The transaction coordinator with Kafka's own producer and Admin: what works without the
 * partition side (markers); the data path with read_committed is UnservedTest.transactions. */
@Timeout(90)
class TransactionCoordinatorTest {
    private static KafkaProducer<String, String> txnProducer(String id) {
        return Chronik.producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id));
    }

    // initTransactions, sendOffsetsToTransaction, commitTransaction; Admin describeTransactions and
    // listTransactions see the id, its producer and the group's __consumer_offsets partition.
    @Test
    void offsetsInATransaction() throws Exception {
        String id = Chronik.unique("jtx");
        String topic = Chronik.unique("jtx-topic");
        try (Admin a = Chronik.admin(); KafkaProducer<String, String> p = txnProducer(id)) {
            Chronik.createTopic(a, topic, 1, Map.of());
            p.initTransactions();
            p.beginTransaction();
            p.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(7)),
                    new ConsumerGroupMetadata(Chronik.unique("jtx-group")));
            TransactionDescription d = a.describeTransactions(List.of(id)).description(id).get(30, TimeUnit.SECONDS);
            assertEquals(TransactionState.ONGOING, d.state());
            assertEquals(Set.of("__consumer_offsets"),
                    d.topicPartitions().stream().map(TopicPartition::topic).collect(Collectors.toSet()));
            p.commitTransaction();
            TransactionState s = a.describeTransactions(List.of(id)).description(id).get(30, TimeUnit.SECONDS).state();
            assertTrue(s == TransactionState.PREPARE_COMMIT || s == TransactionState.COMPLETE_COMMIT, s.toString());
            List<TransactionListing> listed = List.copyOf(a.listTransactions().all().get(30, TimeUnit.SECONDS));
            assertTrue(listed.stream().anyMatch(l -> l.transactionalId().equals(id) && l.producerId() == d.producerId()),
                    listed.toString());
        }
    }

    // A second producer with the same transactional.id fences the first.
    @Test
    void zombieFenced() throws Exception {
        String id = Chronik.unique("jtx-z");
        String topic = Chronik.unique("jtx-z-topic");
        try (Admin a = Chronik.admin(); KafkaProducer<String, String> zombie = txnProducer(id)) {
            Chronik.createTopic(a, topic, 1, Map.of());
            zombie.initTransactions();
            try (KafkaProducer<String, String> fresh = txnProducer(id)) {
                fresh.initTransactions();
                zombie.beginTransaction();
                assertThrows(ProducerFencedException.class, () -> zombie.sendOffsetsToTransaction(
                        Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)),
                        new ConsumerGroupMetadata(Chronik.unique("jtx-z-group"))));
            }
        }
    }
}
