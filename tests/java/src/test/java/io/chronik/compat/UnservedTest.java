package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.Disabled;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** What the broker does not serve yet: each test is a named skip, enabled when it lands. */
@Timeout(60)
class UnservedTest {
    // A transactional producer commits a transaction.
    @Test
    void transactions() throws Exception {
        String topic = Chronik.unique("j-txn");
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, Chronik.unique("tx")))) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, "k", "v"));
            p.commitTransaction();
        }
    }

    // A consumer on the KIP-848 group protocol (group.protocol=consumer) is assigned partitions.
    @Test
    @Disabled("not served yet: the consumer group protocol of KIP-848 (ConsumerGroupHeartbeat); the classic protocol is")
    void consumerGroupProtocol() throws Exception {
        try (KafkaConsumer<String, String> c = Chronik.consumer(Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, Chronik.unique("g848"), ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer"))) {
            c.subscribe(List.of(Chronik.unique("j-848")));
            Chronik.until("assignment", () -> c.poll(Duration.ofMillis(100)), () -> !c.assignment().isEmpty());
        }
    }

    // The metadata quorum describes its leader and voters (a single node leads itself).
    @Test
    void describeMetadataQuorum() throws Exception {
        try (Admin a = Chronik.admin()) {
            QuorumInfo q = a.describeMetadataQuorum().quorumInfo().get(30, TimeUnit.SECONDS);
            assertEquals(1, q.voters().size());
        }
    }
}
