"""Process lifecycle: graceful stop, restart on the same ports and data
directory, and start-up after SIGKILL."""

import harness
import kwire

NODE_ID = 1


def _answers(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        assert kwire.api_versions(c, 0)["error_code"] == kwire.ERR_NONE
        md = kwire.metadata_v1(c)
    assert [(b["node_id"], b["port"]) for b in md["brokers"]] == [(NODE_ID, broker.port)]


# SIGTERM stops the broker with exit 0 and it starts again on the same port and data directory.
def test_graceful_restart_same_port(broker):
    _answers(broker)
    broker.restart()
    assert broker.starts == 2
    _answers(broker)


# After SIGKILL the broker starts again on the same data directory and serves.
def test_start_after_kill9(broker):
    _answers(broker)
    broker.kill9()
    assert not broker.running()
    broker.start()
    _answers(broker)


# A client connection open during SIGTERM does not keep the broker from exiting cleanly.
def test_stop_with_open_client_connection(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        assert kwire.api_versions(c, 0)["error_code"] == kwire.ERR_NONE
        broker.stop()
        assert c.wait_closed(5.0)


# A node that is not one of controller.quorum.voters is refused with a clear
# error (every node is a voter in this version; broker-only nodes come later).
def test_node_outside_the_voters_refused(tmp_path):
    r = harness.run_tool([str(harness.CHRONIK_BIN), "server", "--listen", "127.0.0.1:%d" % harness.free_port(),
                          "--controller-listen", "127.0.0.1:%d" % harness.free_port(),
                          "--admin-listen", "127.0.0.1:%d" % harness.free_port(),
                          "--data-dir", str(tmp_path / "data"), "--node-id", "3",
                          "--voters", "1@127.0.0.1:19093,2@127.0.0.2:19093"], timeout_s=30)
    assert r.returncode == 1
    assert "node.id=3 is not in controller.quorum.voters" in r.stderr
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr
