"""The admin HTTP endpoints: /health, /ready and Prometheus /metrics, read
while the broker serves real clients."""

import urllib.error
import urllib.request

import pytest
from confluent_kafka import Producer

HTTP_TIMEOUT_S = 10


def _get(broker, path):
    with urllib.request.urlopen(broker.admin_url + path, timeout=HTTP_TIMEOUT_S) as r:
        return r.status, r.read().decode()


def _metrics(broker):
    """{name or name{labels}: value} from /metrics, checking every sample line parses."""
    status, text = _get(broker, "/metrics")
    assert status == 200
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = int(value)
    return out


# /health and /ready answer 200; an unknown path answers 404.
def test_health_and_ready(broker):
    assert _get(broker, "/health")[0] == 200
    assert _get(broker, "/ready")[0] == 200
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(broker, "/no-such-page")
    assert e.value.code == 404


# Durable produces show in the request, connection and fsync counters and the partition gauges.
@pytest.mark.pyclients
def test_metrics_count_requests_and_fsyncs(broker):
    before = _metrics(broker)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
    acked = []
    for i in range(20):
        p.produce("metrics-topic", b"m%d" % i, on_delivery=lambda err, msg: acked.append(err is None))
        p.flush(10)
    assert acked == [True] * 20
    after = _metrics(broker)
    delta = lambda k: after.get(k, 0) - before.get(k, 0)
    assert delta('chronik_requests_total{api="Produce"}') >= 20  # one at a time: a request each
    assert delta("chronik_connections_accepted_total") >= 1
    assert delta("chronik_network_bytes_in_total") > 20 * 2
    # every acknowledged produce waited for a sync; syncs are shared, never more than waiters
    assert delta("chronik_log_flush_waiters_total") >= 20
    assert 1 <= delta("chronik_log_fsyncs_total") <= delta("chronik_log_flush_waiters_total") + 5
    assert delta("chronik_log_flush_rounds_total") >= 1
    # partition gauges: this topic's log end and high watermark, nothing offline
    part = '{topic="metrics-topic",partition="0"}'
    assert after["chronik_partition_log_end_offset" + part] == 20
    assert after["chronik_partition_high_watermark" + part] == 20
    assert after["chronik_partition_log_start_offset" + part] == 0
    assert after["chronik_partition_size_bytes" + part] > 20 * 2
    assert after["chronik_partitions_offline"] == 0 and after["chronik_partitions"] >= 1
