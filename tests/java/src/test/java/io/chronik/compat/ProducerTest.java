package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.DescribeProducersResult.PartitionProducerState;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(90)
class ProducerTest extends WithAdmin {
    static KafkaConsumer<String, String> assigned(String topic, int partitions) {
        KafkaConsumer<String, String> c = Chronik.consumer(Map.of());
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        c.assign(tps);
        c.seekToBeginning(tps);
        return c;
    }

    // The default producer is idempotent with acks=all: the broker tracks its
    // producer id and the last sequence of every batch it acknowledged.
    @Test
    void defaultsAreIdempotentWithAcksAll() throws Exception {
        String topic = Chronik.unique("j-idem");
        Chronik.createTopic(admin, topic, 1, Map.of());
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of())) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                sent.add(p.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
            }
            p.flush();
            for (int i = 0; i < 100; i++) {
                assertEquals(i, sent.get(i).get().offset());
            }
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        PartitionProducerState state = admin.describeProducers(List.of(tp)).partitionResult(tp)
                .get(30, TimeUnit.SECONDS);
        assertEquals(1, state.activeProducers().size(), "one idempotent producer");
        ProducerState ps = state.activeProducers().get(0);
        assertTrue(ps.producerId() >= 0);
        assertEquals(99, ps.lastSequence());
    }

    // Every codec the Java client offers round-trips keys, values and headers.
    @ParameterizedTest
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void everyCompressionCodec(String codec) throws Exception {
        String topic = Chronik.unique("j-codec-" + codec);
        Chronik.createTopic(admin, topic, 2, Map.of());
        int n = 500;
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, codec, ProducerConfig.LINGER_MS_CONFIG, 20))) {
            for (int i = 0; i < n; i++) {
                RecordHeaders h = new RecordHeaders();
                h.add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                p.send(new ProducerRecord<>(topic, null, "key" + (i % 7), codec + "-" + i, h));
            }
            p.flush();
        }
        try (KafkaConsumer<String, String> c = assigned(topic, 2)) {
            List<ConsumerRecord<String, String>> got = Chronik.pollN(c, n);
            assertEquals(n, got.size());
            for (ConsumerRecord<String, String> r : got) {
                String i = new String(r.headers().lastHeader("n").value(), StandardCharsets.UTF_8);
                assertEquals(codec + "-" + i, r.value());
                assertEquals("key" + (Integer.parseInt(i) % 7), r.key());
            }
        }
    }

    // Headers keep their order, repeated keys and null values; explicit
    // CreateTime timestamps and null keys/values come back as sent.
    @Test
    void headersTimestampsAndNulls() throws Exception {
        String topic = Chronik.unique("j-headers");
        Chronik.createTopic(admin, topic, 1, Map.of());
        long ts = 1_600_000_000_123L;
        RecordHeaders h = new RecordHeaders();
        h.add("a", "1".getBytes(StandardCharsets.UTF_8));
        h.add("a", "2".getBytes(StandardCharsets.UTF_8));
        h.add("empty", new byte[0]);
        h.add("null", null);
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of())) {
            p.send(new ProducerRecord<>(topic, 0, ts, "k", "v", h)).get();
            p.send(new ProducerRecord<String, String>(topic, 0, ts + 5, null, null)).get();
        }
        try (KafkaConsumer<String, String> c = assigned(topic, 1)) {
            List<ConsumerRecord<String, String>> got = Chronik.pollN(c, 2);
            ConsumerRecord<String, String> r = got.get(0);
            assertEquals(TimestampType.CREATE_TIME, r.timestampType());
            assertEquals(ts, r.timestamp());
            Iterator<Header> it = r.headers().iterator();
            Header[] hs = {it.next(), it.next(), it.next(), it.next()};
            assertEquals("a", hs[0].key());
            assertArrayEquals("1".getBytes(StandardCharsets.UTF_8), hs[0].value());
            assertArrayEquals("2".getBytes(StandardCharsets.UTF_8), hs[1].value());
            assertArrayEquals(new byte[0], hs[2].value());
            assertEquals("null", hs[3].key());
            assertNull(hs[3].value());
            ConsumerRecord<String, String> nulls = got.get(1);
            assertNull(nulls.key());
            assertNull(nulls.value());
            assertEquals(ts + 5, nulls.timestamp());
        }
    }

    // On a message.timestamp.type=LogAppendTime topic the broker's clock
    // replaces the producer's timestamp, in the produce response and in
    // what consumers and offsetsForTimes see.
    @Test
    void logAppendTime() throws Exception {
        String topic = Chronik.unique("j-lat");
        Chronik.createTopic(admin, topic, 1, Map.of("message.timestamp.type", "LogAppendTime"));
        long before = System.currentTimeMillis();
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of())) {
            RecordMetadata md = p.send(new ProducerRecord<>(topic, 0, 1000L, "k", "v")).get();
            assertTrue(md.timestamp() >= before, "append time " + md.timestamp());
            long after = System.currentTimeMillis();
            assertTrue(md.timestamp() <= after);
            p.send(new ProducerRecord<>(topic, 0, 2000L, "k2", "v2"), null).get();
        }
        try (KafkaConsumer<String, String> c = assigned(topic, 1)) {
            List<ConsumerRecord<String, String>> got = Chronik.pollN(c, 2);
            for (ConsumerRecord<String, String> r : got) {
                assertEquals(TimestampType.LOG_APPEND_TIME, r.timestampType());
                assertTrue(r.timestamp() >= before, "record timestamp " + r.timestamp());
            }
            TopicPartition tp = new TopicPartition(topic, 0);
            assertEquals(0, c.offsetsForTimes(Map.of(tp, 0L)).get(tp).offset());
            assertEquals(got.get(0).timestamp(), c.offsetsForTimes(Map.of(tp, 0L)).get(tp).timestamp());
        }
    }

    static String bigString(int n, char fill) {
        char[] cs = new char[n];
        java.util.Arrays.fill(cs, fill);
        return new String(cs);
    }

    // A record just under message.max.bytes (1048588 by default) is stored and
    // fetched whole; a batch over it is refused with MESSAGE_TOO_LARGE.
    @Test
    void largeMessagesNearMessageMaxBytes() throws Exception {
        String topic = Chronik.unique("j-large");
        Chronik.createTopic(admin, topic, 1, Map.of());
        String big = bigString(1_048_000, 'x');
        String tooBig = bigString(1_100_000, 'y');
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 4 * 1024 * 1024);
        cfg.put(ProducerConfig.BATCH_SIZE_CONFIG, 16384);
        try (KafkaProducer<String, String> p = Chronik.producer(cfg)) {
            assertEquals(0, p.send(new ProducerRecord<>(topic, 0, "big", big)).get().offset());
            ExecutionException e = assertThrows(ExecutionException.class,
                    () -> p.send(new ProducerRecord<>(topic, 0, "too-big", tooBig)).get());
            assertInstanceOf(RecordTooLargeException.class, e.getCause());
            assertEquals(1, p.send(new ProducerRecord<>(topic, 0, "small", "s")).get().offset());
        }
        try (KafkaConsumer<String, String> c = Chronik.consumer(Map.of(
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 65536))) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            List<ConsumerRecord<String, String>> got = Chronik.pollN(c, 2);
            assertEquals(big, got.get(0).value());
            assertEquals("s", got.get(1).value());
            assertEquals(1, got.get(1).offset());
        }
    }
}
