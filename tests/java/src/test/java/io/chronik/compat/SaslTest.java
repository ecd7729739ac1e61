package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Java clients log in to the secured broker's SASL_PLAINTEXT listener with
 * PLAIN and SCRAM-SHA-512 (users with SCRAM credentials), and a wrong
 * password is refused with SaslAuthenticationException.
 */
@Timeout(120)
class SaslTest {
    // PLAIN: the Admin client sees the one broker.
    @Test
    void plain() throws Exception {
        try (Admin a = Chronik.admin(Chronik.sasl("PLAIN", Chronik.ADMIN, Chronik.ADMIN_PASSWORD))) {
            assertEquals(1, a.describeCluster().nodes().get(30, TimeUnit.SECONDS).size());
        }
    }

    // SCRAM-SHA-512: a producer and a consumer group round-trip a record.
    @Test
    void scramSha512() throws Exception {
        Map<String, Object> login = Chronik.sasl("SCRAM-SHA-512", Chronik.ADMIN, Chronik.ADMIN_PASSWORD);
        String topic = Chronik.unique("j-scram");
        try (Admin a = Chronik.admin(login)) {
            a.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        try (KafkaProducer<String, String> p = Chronik.producer(login)) {
            p.send(new ProducerRecord<>(topic, "k", "over scram")).get(30, TimeUnit.SECONDS);
        }
        try (KafkaConsumer<String, String> c = Chronik.consumer(Chronik.with(login,
                Map.of(ConsumerConfig.GROUP_ID_CONFIG, Chronik.unique("j-scramg"))))) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = Chronik.pollN(c, 1);
            assertEquals("over scram", got.get(0).value());
        }
    }

    // A wrong password, with either mechanism: SaslAuthenticationException.
    @Test
    void wrongPassword() {
        for (String mech : List.of("PLAIN", "SCRAM-SHA-512")) {
            try (Admin a = Chronik.admin(Chronik.sasl(mech, Chronik.ALICE, "not-" + Chronik.ALICE_PASSWORD))) {
                ExecutionException e = assertThrows(ExecutionException.class,
                        () -> a.describeCluster().nodes().get(30, TimeUnit.SECONDS));
                assertInstanceOf(SaslAuthenticationException.class, e.getCause(), mech);
            }
        }
    }
}
