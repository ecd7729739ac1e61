package io.chronik.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.kafka.common.utils.internals.AppInfoParser;
import org.junit.jupiter.api.Test;

/** Needs no broker: tools/deps.sh runs it to resolve the tier's plugins offline-ready. */
class InstallTest {
    // The client on the classpath is the one the pom pins.
    @Test
    void pinnedClientVersion() {
        assertEquals(System.getProperty("kafka.version"), AppInfoParser.getVersion());
    }
}
