package io.chronik.compat;

import org.apache.kafka.clients.admin.Admin;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** One Admin client per test class, closed after the class. */
abstract class WithAdmin {
    static Admin admin;

    @BeforeAll
    static void openAdmin() {
        admin = Chronik.admin();
    }

    @AfterAll
    static void closeAdmin() {
        admin.close();
    }
}
