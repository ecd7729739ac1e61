package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** DescribeLogDirs through the Java Admin client: the broker's one log directory and its partitions. */
@Timeout(60)
class LogDirsTest extends WithAdmin {
    // One absolute directory; a partition written to has a size, no lag, no future log; the volume's sizes.
    @Test
    void describeLogDirs() throws Exception {
        String topic = Chronik.unique("j-logdirs");
        Chronik.createTopic(admin, topic, 2, Map.of());
        try (KafkaProducer<String, String> p = Chronik.producer(Map.of())) {
            p.send(new ProducerRecord<>(topic, 0, "k", "x".repeat(1000))).get(30, TimeUnit.SECONDS);
        }
        Node node = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).iterator().next();
        Map<Integer, Map<String, LogDirDescription>> all =
                admin.describeLogDirs(List.of(node.id())).allDescriptions().get(30, TimeUnit.SECONDS);
        assertEquals(1, all.size());
        Map<String, LogDirDescription> dirs = all.get(node.id());
        assertEquals(1, dirs.size());
        Map.Entry<String, LogDirDescription> dir = dirs.entrySet().iterator().next();
        assertTrue(Path.of(dir.getKey()).isAbsolute(), dir.getKey());
        assertNull(dir.getValue().error());
        Map<TopicPartition, ReplicaInfo> replicas = dir.getValue().replicaInfos();
        ReplicaInfo written = replicas.get(new TopicPartition(topic, 0));
        assertTrue(written.size() > 1000, "size " + written.size());
        assertEquals(0, written.offsetLag());
        assertFalse(written.isFuture());
        assertTrue(replicas.containsKey(new TopicPartition(topic, 1)));
        long total = dir.getValue().totalBytes().orElse(-1), usable = dir.getValue().usableBytes().orElse(-1);
        assertTrue(total > 0 && usable >= 0 && usable <= total, total + " " + usable);
    }
}
