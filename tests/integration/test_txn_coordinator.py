"""Transactions (KIP-98, KIP-447, KIP-890 part 1): the transaction coordinator.

The coordinator keeps transactional ids in __transaction_state, bumps
epochs, fences zombies, runs the two-phase end (PrepareCommit/PrepareAbort,
WriteTxnMarkers to each partition's leader, CompleteCommit/CompleteAbort)
and aborts transactions past their timeout. Hand-built requests use kwire;
the client tests drive confluent-kafka's transactional producer.

Markers are applied by the partition side (WriteTxnMarkers, control batches,
read_committed Fetch). Tests that need it call `needs_markers` and skip
while the broker does not serve WriteTxnMarkers (API 27); the others check
what the coordinator alone guarantees, including that a transaction stays
in its Prepare state (markers pending) until the markers land. What the
coordinator sends is checked against MarkerSink, a stand-in broker that
registers with the controller, leads a partition and records the
WriteTxnMarkers requests it gets.
"""

import os
import socket
import struct
import threading

import pytest

import kwire
from harness import wait_until
from test_admin import create_topic
from test_cluster import cluster, status  # noqa: F401 (cluster: a fixture)
from test_groups import fetch_offsets_v8, find_coordinator_v4
from test_idempotence import init_producer_id
from test_replication import create_topic as create_replicated_topic

API_ADD_PARTITIONS_TO_TXN = 24
API_ADD_OFFSETS_TO_TXN = 25
API_END_TXN = 26
API_WRITE_TXN_MARKERS = 27
API_TXN_OFFSET_COMMIT = 28
API_DESCRIBE_TRANSACTIONS = 65
API_LIST_TRANSACTIONS = 66

ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_PRODUCER_EPOCH = 47
ERR_INVALID_TXN_STATE = 48
ERR_INVALID_TRANSACTION_TIMEOUT = 50
ERR_CONCURRENT_TRANSACTIONS = 51
ERR_UNSTABLE_OFFSET_COMMIT = 88
ERR_OPERATION_NOT_ATTEMPTED = 55
ERR_PRODUCER_FENCED = 90
ERR_TRANSACTIONAL_ID_NOT_FOUND = 105

DEADLINE_S = 60.0  # ASan broker on a loaded 2-core machine
# Short abort checks so that the timeout test does not wait 10 s per pass.
TXN_SETTINGS = {"group.initial.rebalance.delay.ms": "0",
                "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}


def markers_served(broker):
    with kwire.Conn.to(broker.bootstrap) as c:
        return API_WRITE_TXN_MARKERS in kwire.api_versions(c, 3)["apis"]


@pytest.fixture
def txn_broker(broker_factory):
    """A broker whose transaction coordinator is ready: FindCoordinator (as every client sends
    first) created __transaction_state and answers without error."""
    b = broker_factory(name="broker", settings=TXN_SETTINGS)
    with kwire.Conn.to(b.bootstrap) as c:
        wait_until(lambda: find_coordinator_v4(c, 1, ["x"])[0]["error"] == ERR_NONE, "the coordinator", DEADLINE_S)
    return b


def needs_markers(broker):
    if not markers_served(broker):
        pytest.skip("the partition side of transactions (WriteTxnMarkers) is not served by this build")


# ---- wire helpers -------------------------------------------------------------

def compact_topics(w, topics):
    """{topic: [partitions]} as a compact array of (name, compact int32 array)."""
    w.uvarint(len(topics) + 1)
    for t, ps in topics.items():
        w.compact_string(t).uvarint(len(ps) + 1)
        for p in ps:
            w.i32(p)
        w.tags()
    return w


def read_topic_results(r):
    out = {}
    for _ in range(r.compact_array_len()):
        t = r.compact_string()
        for _ in range(r.compact_array_len()):
            p, err = r.i32(), r.i16()
            r.tags()
            out[(t, p)] = err
        r.tags()
    return out


def add_partitions_v3(conn, txn_id, pid, epoch, topics):
    """AddPartitionsToTxn v3; returns {(topic, partition): error}."""
    w = kwire.Writer().compact_string(txn_id).i64(pid).i16(epoch)
    compact_topics(w, topics).tags()
    _, body = conn.request(API_ADD_PARTITIONS_TO_TXN, 3, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    return read_topic_results(r)


def add_partitions_v1(conn, txn_id, pid, epoch, topics):
    w = kwire.Writer().string(txn_id).i64(pid).i16(epoch).i32(len(topics))
    for t, ps in topics.items():
        w.string(t).i32(len(ps))
        for p in ps:
            w.i32(p)
    _, body = conn.request(API_ADD_PARTITIONS_TO_TXN, 1, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    out = {}
    for _ in range(r.array_len()):
        t = r.string()
        for _ in range(r.array_len()):
            p = r.i32()
            out[(t, p)] = r.i16()
    return out


def verify_v4(conn, txns):
    """AddPartitionsToTxn v4, VerifyOnly: txns [(id, pid, epoch, {topic: [p]})];
    returns (top error, {id: {(topic, p): error}})."""
    w = kwire.Writer().uvarint(len(txns) + 1)
    for txn_id, pid, epoch, topics in txns:
        w.compact_string(txn_id).i64(pid).i16(epoch).i8(1)
        compact_topics(w, topics).tags()
    _, body = conn.request(API_ADD_PARTITIONS_TO_TXN, 4, w.tags().bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    top = r.i16()
    out = {}
    for _ in range(r.compact_array_len()):
        txn_id = r.compact_string()
        out[txn_id] = read_topic_results(r)
        r.tags()
    return top, out


def end_txn(conn, txn_id, pid, epoch, commit, version=3):
    if version >= 3:
        w = kwire.Writer().compact_string(txn_id).i64(pid).i16(epoch).i8(1 if commit else 0).tags()
    else:
        w = kwire.Writer().string(txn_id).i64(pid).i16(epoch).i8(1 if commit else 0)
    _, body = conn.request(API_END_TXN, version, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    return r.i16()


def add_offsets_v3(conn, txn_id, pid, epoch, group):
    w = kwire.Writer().compact_string(txn_id).i64(pid).i16(epoch).compact_string(group).tags()
    _, body = conn.request(API_ADD_OFFSETS_TO_TXN, 3, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    return r.i16()


def txn_offset_commit_v3(conn, txn_id, pid, epoch, group, offsets):
    """TxnOffsetCommit v3 without member data; offsets {(topic, p): offset}; returns {(topic, p): error}."""
    w = kwire.Writer().compact_string(txn_id).compact_string(group).i64(pid).i16(epoch)
    w.i32(-1).compact_string("").compact_string(None)
    topics = {}
    for (t, p), o in offsets.items():
        topics.setdefault(t, []).append((p, o))
    w.uvarint(len(topics) + 1)
    for t, ps in topics.items():
        w.compact_string(t).uvarint(len(ps) + 1)
        for p, o in ps:
            w.i32(p).i64(o).i32(-1).compact_string("").tags()
        w.tags()
    _, body = conn.request(API_TXN_OFFSET_COMMIT, 3, w.tags().bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    return read_topic_results(r)


def describe_txns(conn, ids):
    """DescribeTransactions v0; returns {id: dict}."""
    w = kwire.Writer().uvarint(len(ids) + 1)
    for i in ids:
        w.compact_string(i)
    _, body = conn.request(API_DESCRIBE_TRANSACTIONS, 0, w.tags().bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    out = {}
    for _ in range(r.compact_array_len()):
        d = {"error": r.i16()}
        txn_id = r.compact_string()
        d.update(state=r.compact_string(), timeout_ms=r.i32(), start_ms=r.i64(), pid=r.i64(), epoch=r.i16())
        parts = set()
        for _ in range(r.compact_array_len()):
            t = r.compact_string()
            for _ in range(r.compact_array_len()):
                parts.add((t, r.i32()))
            r.tags()
        d["partitions"] = parts
        r.tags()
        out[txn_id] = d
    return out


def list_txns(conn, states=(), pids=(), duration_ms=-1):
    """ListTransactions v1; returns (error, unknown filters, {id: (pid, state)})."""
    w = kwire.Writer().uvarint(len(states) + 1)
    for s in states:
        w.compact_string(s)
    w.uvarint(len(pids) + 1)
    for p in pids:
        w.i64(p)
    w.i64(duration_ms).tags()
    _, body = conn.request(API_LIST_TRANSACTIONS, 1, w.bytes(), timeout=DEADLINE_S)
    r = kwire.Reader(body)
    r.i32()
    err = r.i16()
    unknown = [r.compact_string() for _ in range(r.compact_array_len())]
    txns = {}
    for _ in range(r.compact_array_len()):
        txn_id, pid, state = r.compact_string(), r.i64(), r.compact_string()
        r.tags()
        txns[txn_id] = (pid, state)
    return err, unknown, txns


def one_transaction(conn, txn_id, topics, commit):
    """InitProducerId, AddPartitionsToTxn(topics), EndTxn; returns (pid, epoch)."""
    _, pid, epoch = init_producer_id(conn, version=4, txn_id=txn_id)
    assert add_partitions_v3(conn, txn_id, pid, epoch, topics) == {(t, p): ERR_NONE for t, ps in topics.items() for p in ps}
    assert end_txn(conn, txn_id, pid, epoch, commit=commit) == ERR_NONE
    return pid, epoch


def state_of(broker, txn_id):
    with kwire.Conn.to(broker.bootstrap) as c:
        return describe_txns(c, [txn_id])[txn_id]


# ---- the coordinator on the wire --------------------------------------------------

# InitProducerId with a transactional id: a producer id with epoch 0, then epoch + 1 on each
# re-init (a retry of the producer's own bump keeps it); a stale (pid, epoch) is fenced
# (PRODUCER_FENCED v4, INVALID_PRODUCER_EPOCH v3); a
# timeout above transaction.max.timeout.ms is refused; Describe/ListTransactions show the id.
def test_init_epochs_fencing_and_listing(txn_broker):
    with kwire.Conn.to(txn_broker.bootstrap) as c:
        err, pid, epoch = init_producer_id(c, version=4, txn_id="tx-init")
        assert (err, epoch) == (ERR_NONE, 0) and pid >= 0
        assert init_producer_id(c, version=1, txn_id="tx-init") == (ERR_NONE, pid, 1)
        assert init_producer_id(c, version=4, txn_id="tx-init", pid=pid, epoch=1) == (ERR_NONE, pid, 2)
        # the same again is a retry whose answer was lost: the current epoch, no new bump (KIP-360)
        assert init_producer_id(c, version=4, txn_id="tx-init", pid=pid, epoch=1) == (ERR_NONE, pid, 2)
        assert init_producer_id(c, version=4, txn_id="tx-init", pid=pid, epoch=0)[0] == ERR_PRODUCER_FENCED
        assert init_producer_id(c, version=3, txn_id="tx-init", pid=pid, epoch=0)[0] == ERR_INVALID_PRODUCER_EPOCH
        assert init_producer_id(c, version=4, txn_id="tx-big", timeout_ms=900001)[0] == \
            ERR_INVALID_TRANSACTION_TIMEOUT
        other = init_producer_id(c, version=4, txn_id="tx-other")
        assert other[0] == ERR_NONE and other[1] != pid
        got = describe_txns(c, ["tx-init", "tx-never", "tx-big"])
        assert (got["tx-init"]["error"], got["tx-init"]["state"], got["tx-init"]["pid"], got["tx-init"]["epoch"]) == \
            (ERR_NONE, "Empty", pid, 2)
        assert got["tx-never"]["error"] == got["tx-big"]["error"] == ERR_TRANSACTIONAL_ID_NOT_FOUND
        err, unknown, txns = list_txns(c, states=["Empty", "Bogus"])
        assert (err, unknown) == (ERR_NONE, ["Bogus"])
        assert txns == {"tx-init": (pid, "Empty"), "tx-other": (other[1], "Empty")}
        assert list_txns(c, pids=[other[1]])[2] == {"tx-other": (other[1], "Empty")}
        assert list_txns(c, states=["Ongoing"])[2] == {}


# AddPartitionsToTxn makes the transaction Ongoing with its partitions; an unknown topic fails
# that partition and leaves the others unattempted; a stale epoch is fenced (INVALID_PRODUCER_EPOCH
# before v2); v4 VerifyOnly answers per partition; EndTxn(commit) moves it to PrepareCommit, after
# which a conflicting abort is INVALID_TXN_STATE and re-init waits (CONCURRENT_TRANSACTIONS).
def test_add_verify_end(txn_broker):
    create_topic(txn_broker, "txa", 2)
    with kwire.Conn.to(txn_broker.bootstrap) as c:
        _, pid, epoch = init_producer_id(c, version=4, txn_id="tx-a")
        assert add_partitions_v3(c, "tx-a", pid, epoch, {"txa": [0], "nosuch": [0]}) == \
            {("txa", 0): ERR_OPERATION_NOT_ATTEMPTED, ("nosuch", 0): ERR_UNKNOWN_TOPIC_OR_PARTITION}
        assert state_of(txn_broker, "tx-a")["state"] == "Empty"
        assert add_partitions_v3(c, "tx-a", pid, epoch, {"txa": [0, 1]}) == {("txa", 0): 0, ("txa", 1): 0}
        assert add_partitions_v3(c, "tx-a", pid, epoch + 1, {"txa": [0]}) == {("txa", 0): ERR_PRODUCER_FENCED}
        assert add_partitions_v1(c, "tx-a", pid, epoch + 1, {"txa": [0]}) == {("txa", 0): ERR_INVALID_PRODUCER_EPOCH}
        d = state_of(txn_broker, "tx-a")
        assert (d["state"], d["partitions"], d["timeout_ms"]) == ("Ongoing", {("txa", 0), ("txa", 1)}, 60000)
        assert d["start_ms"] > 0
        counts = status(txn_broker)["counts"]
        assert (counts["transactions"], counts["open_transactions"]) == (1, 1)
        top, got = verify_v4(c, [("tx-a", pid, epoch, {"txa": [1]}), ("tx-b", pid, epoch, {"txa": [0]})])
        assert top == ERR_NONE and got["tx-a"] == {("txa", 1): ERR_NONE}
        assert got["tx-b"] == {("txa", 0): 49}  # INVALID_PRODUCER_ID_MAPPING: never initialised
        assert end_txn(c, "tx-a", pid, epoch, commit=True) == ERR_NONE
        assert state_of(txn_broker, "tx-a")["state"] in ("PrepareCommit", "CompleteCommit")
        assert end_txn(c, "tx-a", pid, epoch, commit=False) == ERR_INVALID_TXN_STATE
        if not markers_served(txn_broker):
            # markers cannot land: the transaction stays prepared and re-init must wait
            assert end_txn(c, "tx-a", pid, epoch, commit=True) == ERR_CONCURRENT_TRANSACTIONS
            assert init_producer_id(c, version=4, txn_id="tx-a")[0] == ERR_CONCURRENT_TRANSACTIONS
            assert state_of(txn_broker, "tx-a")["partitions"] == {("txa", 0), ("txa", 1)}


# A new producer's InitProducerId while the old one's transaction is open aborts it first, at a
# bumped epoch (CONCURRENT_TRANSACTIONS until the abort completes); the old producer is fenced.
def test_init_aborts_the_zombies_transaction(txn_broker):
    create_topic(txn_broker, "txz2", 1)
    with kwire.Conn.to(txn_broker.bootstrap) as c:
        _, pid, epoch = init_producer_id(c, version=4, txn_id="tx-z")
        assert add_partitions_v3(c, "tx-z", pid, epoch, {"txz2": [0]}) == {("txz2", 0): ERR_NONE}
        assert init_producer_id(c, version=4, txn_id="tx-z")[0] == ERR_CONCURRENT_TRANSACTIONS
        d = wait_until(lambda: (lambda s: s if s["state"] != "Ongoing" else None)(state_of(txn_broker, "tx-z")),
                       "the abort to be stored", DEADLINE_S)
        assert (d["state"], d["pid"], d["epoch"]) in (("PrepareAbort", pid, epoch + 1), ("CompleteAbort", pid, epoch + 1))
        assert end_txn(c, "tx-z", pid, epoch, commit=True) == ERR_PRODUCER_FENCED
        assert end_txn(c, "tx-z", pid, epoch, commit=True, version=1) == ERR_INVALID_PRODUCER_EPOCH
        if markers_served(txn_broker):
            got = wait_until(lambda: (lambda r: r if r[0] == ERR_NONE else None)(
                init_producer_id(c, version=4, txn_id="tx-z")), "the abort to complete", DEADLINE_S)
            assert got == (ERR_NONE, pid, epoch + 2)


# An id idle for transactional.id.expiration.ms is forgotten, for good: its tombstone is durable.
def test_idle_id_expires(broker_factory):
    b = broker_factory(name="broker", settings=dict(TXN_SETTINGS, **{
        "transactional.id.expiration.ms": "1500",
        "transaction.remove.expired.transaction.cleanup.interval.ms": "200"}))
    with kwire.Conn.to(b.bootstrap) as c:
        wait_until(lambda: find_coordinator_v4(c, 1, ["tx-e"])[0]["error"] == ERR_NONE, "the coordinator")
        assert init_producer_id(c, version=4, txn_id="tx-e")[0] == ERR_NONE
        assert state_of(b, "tx-e")["error"] == ERR_NONE
    wait_until(lambda: state_of(b, "tx-e")["error"] == ERR_TRANSACTIONAL_ID_NOT_FOUND, "the id to expire",
               DEADLINE_S)
    # no expiry pass after the restart: only the stored tombstone can keep the id away
    b.settings["transaction.remove.expired.transaction.cleanup.interval.ms"] = "3600000"
    b.restart()
    got = wait_until(lambda: (lambda s: s if s["error"] != 15 and s["error"] != 16 else None)(state_of(b, "tx-e")),
                     "the coordinator to load", DEADLINE_S)
    assert got["error"] == ERR_TRANSACTIONAL_ID_NOT_FOUND


# TxnOffsetCommit is verified with the transaction coordinator when it runs on the same node:
# without AddOffsetsToTxn the group is not in the transaction (INVALID_TXN_STATE), a stale
# epoch is fenced; after AddOffsetsToTxn the offsets are accepted and held pending, also after
# a restart (the group coordinator reads them back as part of an open transaction).
def test_txn_offset_commit_verified(txn_broker):
    create_topic(txn_broker, "txc", 1)
    with kwire.Conn.to(txn_broker.bootstrap) as c:
        _, pid, epoch = init_producer_id(c, version=4, txn_id="tx-c")
        assert add_partitions_v3(c, "tx-c", pid, epoch, {"txc": [0]}) == {("txc", 0): ERR_NONE}
        wait_until(lambda: find_coordinator_v4(c, 0, ["txc-g"])[0]["error"] == ERR_NONE, "the group coordinator")
        offsets = {("txc", 0): 7}
        assert txn_offset_commit_v3(c, "tx-c", pid, epoch, "txc-g", offsets) == {("txc", 0): ERR_INVALID_TXN_STATE}
        assert add_offsets_v3(c, "tx-c", pid, epoch + 1, "txc-g") == ERR_PRODUCER_FENCED
        assert add_offsets_v3(c, "tx-c", pid, epoch, "txc-g") == ERR_NONE
        assert txn_offset_commit_v3(c, "tx-c", pid, epoch - 1, "txc-g", offsets) == {("txc", 0): ERR_PRODUCER_FENCED}
        assert txn_offset_commit_v3(c, "tx-c", pid, epoch, "txc-g", offsets) == {("txc", 0): ERR_NONE}
        assert txn_offset_commit_v3(c, "tx-c", pid, epoch, "txc-g", {("nosuch", 0): 1}) == \
            {("nosuch", 0): ERR_UNKNOWN_TOPIC_OR_PARTITION}
    assert plain_offset(txn_broker, "txc-g", "txc", 0) == -1
    assert stable_offset(txn_broker, "txc-g", "txc", 0)[1] == ERR_UNSTABLE_OFFSET_COMMIT
    txn_broker.restart()  # rebuilt from __consumer_offsets: the transactional batch is pending again
    with kwire.Conn.to(txn_broker.bootstrap) as c:
        wait_until(lambda: find_coordinator_v4(c, 0, ["txc-g"])[0]["error"] == ERR_NONE, "the group coordinator")
    assert plain_offset(txn_broker, "txc-g", "txc", 0) == -1
    assert stable_offset(txn_broker, "txc-g", "txc", 0)[1] == ERR_UNSTABLE_OFFSET_COMMIT


# Once every partition's leader acknowledges the markers the transaction completes, and the id
# can start another one; a retried EndTxn(commit) is then a success.
def test_markers_complete_the_transaction(txn_broker):
    needs_markers(txn_broker)
    create_topic(txn_broker, "txm", 1)
    with kwire.Conn.to(txn_broker.bootstrap) as c:
        pid, epoch = one_transaction(c, "tx-m", {"txm": [0]}, commit=True)
        wait_until(lambda: state_of(txn_broker, "tx-m")["state"] == "CompleteCommit", "markers", DEADLINE_S)
        assert end_txn(c, "tx-m", pid, epoch, commit=True) == ERR_NONE
        assert add_partitions_v3(c, "tx-m", pid, epoch, {"txm": [0]}) == {("txm", 0): 0}


# The coordinator's state survives a restart: a transaction prepared before it is found
# prepared after it (and completed once markers can land), with its producer id and epoch.
def test_prepared_transaction_survives_restart(txn_broker):
    create_topic(txn_broker, "txr", 1)
    with kwire.Conn.to(txn_broker.bootstrap) as c:
        _, pid, _ = init_producer_id(c, version=4, txn_id="tx-r")
        _, _, epoch = init_producer_id(c, version=4, txn_id="tx-r")
        assert add_partitions_v3(c, "tx-r", pid, epoch, {"txr": [0]}) == {("txr", 0): 0}
        assert end_txn(c, "tx-r", pid, epoch, commit=False) == ERR_NONE
    txn_broker.restart()
    d = wait_until(lambda: state_of(txn_broker, "tx-r"), "the coordinator to load", DEADLINE_S)
    assert (d["error"], d["pid"], d["epoch"]) == (ERR_NONE, pid, epoch)
    if markers_served(txn_broker):
        wait_until(lambda: state_of(txn_broker, "tx-r")["state"] == "CompleteAbort", "markers", DEADLINE_S)
    else:
        assert (d["state"], d["partitions"]) == ("PrepareAbort", {("txr", 0)})


def coordinator_of(nodes, txn_id, exclude=()):
    """The node FindCoordinator names for txn_id (asked of a node not in exclude), once it names
    a live one."""
    def ask():
        for n in nodes:
            if n in exclude:
                continue
            try:
                with kwire.Conn.to(n.bootstrap) as c:
                    got = find_coordinator_v4(c, 1, [txn_id])[0]
            except (OSError, kwire.WireError):
                continue
            live = [m for m in nodes if m.node_id == got["node_id"] and m not in exclude]
            if got["error"] == ERR_NONE and live:
                return live[0]
        return None
    return wait_until(ask, "a coordinator for " + txn_id, DEADLINE_S)


# Failover: a transaction prepared on one coordinator is found prepared, with its producer id,
# epoch and partitions, by the node that leads its __transaction_state partition after the first
# one dies (and is completed there once markers can land).
def test_prepared_transaction_survives_failover(cluster):
    nodes = cluster(3)
    first = coordinator_of(nodes, "tx-f")
    # three replicas: txf-0 keeps a leader whichever node dies (with one replica on the dead
    # node no marker could land until it came back)
    create_replicated_topic(first, "txf", 1, rf=3)
    with kwire.Conn.to(first.bootstrap) as c:
        _, pid, epoch = wait_until(lambda: (lambda r: r if r[0] == ERR_NONE else None)(
            init_producer_id(c, version=4, txn_id="tx-f")), "InitProducerId", DEADLINE_S)
        assert add_partitions_v3(c, "tx-f", pid, epoch, {"txf": [0]}) == {("txf", 0): ERR_NONE}
        assert end_txn(c, "tx-f", pid, epoch, commit=True) == ERR_NONE
    first.kill9()
    second = coordinator_of(nodes, "tx-f", exclude=(first,))
    assert second is not first
    d = wait_until(lambda: (lambda s: s if s["error"] == ERR_NONE else None)(state_of(second, "tx-f")),
                   "the new coordinator to load", DEADLINE_S)
    assert (d["pid"], d["epoch"]) == (pid, epoch)
    if markers_served(second):
        wait_until(lambda: state_of(second, "tx-f")["state"] == "CompleteCommit", "markers", DEADLINE_S)
    else:
        assert (d["state"], d["partitions"]) == ("PrepareCommit", {("txf", 0)})


# ---- markers, seen by a stand-in partition leader ------------------------------------

class MarkerSink:
    """A stand-in broker on loopback that speaks ApiVersions (advertising WriteTxnMarkers) and
    WriteTxnMarkers v0-v1, records every marker it is sent, and answers each partition with
    the next code of `answers` (then NONE; NOT_LEADER_OR_FOLLOWER while `refuse` is set).
    Registered with the controller as a broker (register), it can lead partitions, so the
    coordinator's markers for them come here."""

    def __init__(self, answers=()):
        self.markers = []          # (pid, epoch, commit, {topic: [partitions]}, coordinator epoch)
        self.answers = list(answers)
        self.refuse = False
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, conn):
        try:
            while True:
                (n,) = struct.unpack(">i", self._read(conn, 4))
                r = kwire.Reader(self._read(conn, n))
                key, version, corr = r.i16(), r.i16(), r.i32()
                r.string()  # client id
                if kwire.request_header_version(key, version) >= 2:
                    r.tags()
                head = kwire.Writer().i32(corr)
                if key == kwire.API_API_VERSIONS:
                    body = self._api_versions(version)
                else:
                    assert key == API_WRITE_TXN_MARKERS, key
                    if version >= 1:
                        head.tags()
                    body = self._markers(r, version)
                conn.sendall(kwire.frame(head.bytes() + body))
        except (EOFError, OSError):
            conn.close()

    @staticmethod
    def _api_versions(version):
        apis = [(kwire.API_API_VERSIONS, 0, 3), (API_WRITE_TXN_MARKERS, 0, 1)]
        w = kwire.Writer().i16(ERR_NONE)
        if version >= 3:
            w.uvarint(len(apis) + 1)
            for k, lo, hi in apis:
                w.i16(k).i16(lo).i16(hi).tags()
            return w.i32(0).tags().bytes()
        w.i32(len(apis))
        for k, lo, hi in apis:
            w.i16(k).i16(lo).i16(hi)
        return (w.i32(0) if version >= 1 else w).bytes()

    def _markers(self, r, version):
        flex = version >= 1
        arr = r.compact_array_len if flex else r.array_len
        text = r.compact_string if flex else r.string
        out = kwire.Writer()
        got = []
        for _ in range(arr()):
            pid, epoch, commit = r.i64(), r.i16(), r.i8() == 1
            topics = {}
            for _ in range(arr()):
                t = text()
                topics[t] = [r.i32() for _ in range(arr())]
                if flex:
                    r.tags()
            coord_epoch = r.i32()
            if flex:
                r.tags()
            got.append((pid, epoch, commit, topics, coord_epoch))
        with self.lock:
            self.markers += got
            codes = [6 if self.refuse else self.answers.pop(0) if self.answers else ERR_NONE for _ in got]
        out.uvarint(len(got) + 1) if flex else out.i32(len(got))
        for (pid, _, _, topics, _), code in zip(got, codes):
            out.i64(pid)
            out.uvarint(len(topics) + 1) if flex else out.i32(len(topics))
            for t, ps in topics.items():
                out.compact_string(t) if flex else out.string(t)
                out.uvarint(len(ps) + 1) if flex else out.i32(len(ps))
                for p in ps:
                    out.i32(p).i16(code)
                    if flex:
                        out.tags()
                if flex:
                    out.tags()
            if flex:
                out.tags()
        if flex:
            out.tags()
        return out.bytes()

    def seen(self):
        with self.lock:
            return list(self.markers)

    def register(self, node, broker_id):
        """BrokerRegistration v0 and one BrokerHeartbeat at node's controller: broker_id, unfenced."""
        w = kwire.Writer().i32(broker_id).compact_string("chronik-cluster").raw(os.urandom(16))
        w.uvarint(2).compact_string("PLAINTEXT").compact_string("127.0.0.1")
        w.raw(struct.pack(">Hh", self.port, 0)).tags()  # port (uint16), security protocol PLAINTEXT
        w.uvarint(1).compact_string(None).tags()         # no features, no rack
        with kwire.Conn("127.0.0.1", node.controller_port) as c:
            _, resp = c.request(62, 0, w.bytes(), timeout=DEADLINE_S)
            r = kwire.Reader(resp)
            r.i32()
            assert r.i16() == ERR_NONE
            epoch = r.i64()
            hb = kwire.Writer().i32(broker_id).i64(epoch).i64(1 << 40).i8(0).i8(0).tags().bytes()
            _, resp = c.request(63, 0, hb, timeout=DEADLINE_S)
            r = kwire.Reader(resp)
            r.i32()
            assert r.i16() == ERR_NONE

    def close(self):
        self.listener.close()


def leader_of(broker, topic, partition=0):
    with kwire.Conn.to(broker.bootstrap) as c:
        for t in kwire.metadata_v1(c, [topic])["topics"]:
            for p in t["partitions"]:
                if p["partition_index"] == partition:
                    return p["leader_id"]
    return None


def sink_leads(broker, sink, topic):
    """Makes sink broker 2 and the leader of topic's only partition. __transaction_state is created
    first, while this node is the only broker, so that all of it stays here."""
    from confluent_kafka.admin import AdminClient, NewTopic
    with kwire.Conn.to(broker.bootstrap) as c:
        wait_until(lambda: find_coordinator_v4(c, 1, ["x"])[0]["error"] == ERR_NONE, "the coordinator")
    sink.register(broker, 2)
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    a.create_topics([NewTopic(topic, 1, replica_assignment=[[2]])])[topic].result(DEADLINE_S)
    wait_until(lambda: leader_of(broker, topic) == 2, "the stand-in broker to lead " + topic, DEADLINE_S)


# The markers reach the partition's leader: one WriteTxnMarkers with the producer id, the
# epoch, the result, the partitions and the coordinator epoch; a refused partition is sent
# again until acknowledged, and only then is the transaction complete (CompleteCommit); an
# abort's markers say abort; INVALID_PRODUCER_EPOCH counts as done (the partition is past it).
def test_markers_reach_the_partition_leader(broker_factory):
    b = broker_factory(name="broker", settings=dict(TXN_SETTINGS, **{"broker.session.timeout.ms": "600000"}))
    sink = MarkerSink(answers=[6])  # NOT_LEADER_OR_FOLLOWER once
    try:
        sink_leads(b, sink, "txsink")
        with kwire.Conn.to(b.bootstrap) as c:
            pid, epoch = one_transaction(c, "tx-s", {"txsink": [0]}, commit=True)
            wait_until(lambda: state_of(b, "tx-s")["state"] == "CompleteCommit", "the commit to complete", DEADLINE_S)
            seen = sink.seen()
            assert len(seen) == 2 and seen[0] == seen[1]  # refused once, sent again
            assert seen[0][:4] == (pid, epoch, True, {"txsink": [0]}) and seen[0][4] >= 0
            assert add_partitions_v3(c, "tx-s", pid, epoch, {"txsink": [0]}) == {("txsink", 0): ERR_NONE}
            assert end_txn(c, "tx-s", pid, epoch, commit=False) == ERR_NONE
            wait_until(lambda: state_of(b, "tx-s")["state"] == "CompleteAbort", "the abort to complete", DEADLINE_S)
            assert sink.seen()[2:] == [(pid, epoch, False, {"txsink": [0]}, seen[0][4])]
            # a leader that knows a later epoch of the producer has ended the transaction already
            sink.answers = [47]  # INVALID_PRODUCER_EPOCH
            assert add_partitions_v3(c, "tx-s", pid, epoch, {"txsink": [0]}) == {("txsink", 0): ERR_NONE}
            assert end_txn(c, "tx-s", pid, epoch, commit=True) == ERR_NONE
            wait_until(lambda: state_of(b, "tx-s")["state"] == "CompleteCommit", "the commit to complete", DEADLINE_S)
            assert len(sink.seen()) == 4
    finally:
        sink.close()


# A transaction whose markers were not all acknowledged before a restart is found in
# PrepareCommit after it, its markers are sent again, and it completes once they land.
def test_markers_resent_after_restart(broker_factory):
    b = broker_factory(name="broker", settings=dict(TXN_SETTINGS, **{"broker.session.timeout.ms": "600000"}))
    sink = MarkerSink()
    sink.refuse = True
    try:
        sink_leads(b, sink, "txrs")
        with kwire.Conn.to(b.bootstrap) as c:
            pid, epoch = one_transaction(c, "tx-rs", {"txrs": [0]}, commit=True)
        wait_until(lambda: len(sink.seen()) >= 2, "markers refused twice", DEADLINE_S)
        b.restart()
        n = len(sink.seen())
        d = wait_until(lambda: (lambda s: s if s["error"] == ERR_NONE else None)(state_of(b, "tx-rs")),
                       "the coordinator to load", DEADLINE_S)
        assert (d["state"], d["pid"], d["epoch"]) == ("PrepareCommit", pid, epoch)
        sink.refuse = False
        wait_until(lambda: state_of(b, "tx-rs")["state"] == "CompleteCommit", "the commit to complete", DEADLINE_S)
        assert sink.seen()[-1][:4] == (pid, epoch, True, {"txrs": [0]}) and len(sink.seen()) > n
    finally:
        sink.close()


# An AddPartitionsToTxn or AddOffsetsToTxn that comes right after EndTxn, while the ended
# transaction's markers are still being written, waits for them and succeeds (kafkajs does
# not retry AddOffsetsToTxn's CONCURRENT_TRANSACTIONS); when the markers cannot land it is
# answered CONCURRENT_TRANSACTIONS after a bounded wait, and the transaction stays prepared.
def test_add_waits_for_the_previous_end(broker_factory):
    b = broker_factory(name="broker", settings=dict(TXN_SETTINGS, **{"broker.session.timeout.ms": "600000"}))
    create_topic(b, "txw", 1)
    sink = MarkerSink()
    sink.refuse = True
    try:
        with kwire.Conn.to(b.bootstrap) as c:  # __consumer_offsets all here, before the sink registers
            wait_until(lambda: find_coordinator_v4(c, 0, ["txw-g"])[0]["error"] == ERR_NONE, "groups", DEADLINE_S)
        sink_leads(b, sink, "txws")
        with kwire.Conn.to(b.bootstrap) as c:
            _, pid, epoch = init_producer_id(c, version=4, txn_id="tx-w")
            for _ in range(5):
                assert add_partitions_v3(c, "tx-w", pid, epoch, {"txw": [0]}) == {("txw", 0): ERR_NONE}
                assert end_txn(c, "tx-w", pid, epoch, commit=True) == ERR_NONE
                assert add_offsets_v3(c, "tx-w", pid, epoch, "txw-g") == ERR_NONE
                assert end_txn(c, "tx-w", pid, epoch, commit=False) == ERR_NONE
            pid2, epoch2 = one_transaction(c, "tx-w2", {"txws": [0]}, commit=True)  # its markers are refused
            assert add_partitions_v3(c, "tx-w2", pid2, epoch2, {"txw": [0]}) == {("txw", 0): ERR_CONCURRENT_TRANSACTIONS}
            assert add_offsets_v3(c, "tx-w2", pid2, epoch2, "txw-g") == ERR_CONCURRENT_TRANSACTIONS
        assert state_of(b, "tx-w2")["state"] == "PrepareCommit"
        wait_until(lambda: state_of(b, "tx-w")["state"] == "CompleteAbort", "the last abort", DEADLINE_S)
    finally:
        sink.close()


# ---- confluent-kafka's transactional producer ----------------------------------------

def txn_producer(broker, txn_id, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": broker.bootstrap, "transactional.id": txn_id}
    conf.update(extra)
    return Producer(conf)


def group_metadata(broker, group):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    return c, c.consumer_group_metadata()


def committed_offset(consumer, topic, partition):
    from confluent_kafka import TopicPartition
    return consumer.committed([TopicPartition(topic, partition)], timeout=30)[0].offset


def stable_offset(broker, group, topic, partition):
    """OffsetFetch v8 with RequireStable: (offset, partition error)."""
    with kwire.Conn.to(broker.bootstrap) as c:
        return fetch_offsets_v8(c, {group: [(topic, [partition])]}, require_stable=True)[group][1][(topic, partition)]


def plain_offset(broker, group, topic, partition):
    """OffsetFetch v8 without RequireStable: the committed offset, -1 when none."""
    with kwire.Conn.to(broker.bootstrap) as c:
        return fetch_offsets_v8(c, {group: [(topic, [partition])]})[group][1][(topic, partition)]


# init_transactions, begin, send_offsets_to_transaction, commit: the group's __consumer_offsets
# partition joins the transaction (AddOffsetsToTxn), the offsets stay pending until the COMMIT
# marker lands on it (a RequireStable OffsetFetch is UNSTABLE_OFFSET_COMMIT meanwhile), and
# become the group's committed offsets once it does.
@pytest.mark.pyclients
def test_send_offsets_to_transaction(txn_broker):
    from confluent_kafka import TopicPartition
    create_topic(txn_broker, "txo", 1)
    consumer, meta = group_metadata(txn_broker, "txo-group")
    p = txn_producer(txn_broker, "tx-offsets")
    try:
        p.init_transactions(DEADLINE_S)
        p.begin_transaction()
        p.send_offsets_to_transaction([TopicPartition("txo", 0, 42)], meta, DEADLINE_S)
        d = state_of(txn_broker, "tx-offsets")
        assert d["state"] == "Ongoing" and [t for t, _ in d["partitions"]] == ["__consumer_offsets"]
        assert plain_offset(txn_broker, "txo-group", "txo", 0) == -1  # pending: not committed before the marker
        assert stable_offset(txn_broker, "txo-group", "txo", 0)[1] == ERR_UNSTABLE_OFFSET_COMMIT
        p.commit_transaction(DEADLINE_S)
        if markers_served(txn_broker):
            wait_until(lambda: committed_offset(consumer, "txo", 0) == 42, "the offset to commit", DEADLINE_S)
            assert stable_offset(txn_broker, "txo-group", "txo", 0) == (42, ERR_NONE)
            wait_until(lambda: state_of(txn_broker, "tx-offsets")["state"] == "CompleteCommit", "markers")
        else:
            assert state_of(txn_broker, "tx-offsets")["state"] == "PrepareCommit"
            assert plain_offset(txn_broker, "txo-group", "txo", 0) == -1
            assert stable_offset(txn_broker, "txo-group", "txo", 0)[1] == ERR_UNSTABLE_OFFSET_COMMIT
    finally:
        consumer.close()


# Zombie fencing: a second producer with the same transactional.id bumps the epoch; the first
# one's next transactional request is refused and its error is fatal.
@pytest.mark.pyclients
def test_zombie_is_fenced(txn_broker):
    from confluent_kafka import KafkaException, TopicPartition
    create_topic(txn_broker, "txz", 1)
    consumer, meta = group_metadata(txn_broker, "txz-group")
    try:
        zombie = txn_producer(txn_broker, "tx-zombie")
        zombie.init_transactions(DEADLINE_S)
        first = state_of(txn_broker, "tx-zombie")
        fresh = txn_producer(txn_broker, "tx-zombie")
        fresh.init_transactions(DEADLINE_S)
        second = state_of(txn_broker, "tx-zombie")
        assert (second["pid"], second["epoch"]) == (first["pid"], first["epoch"] + 1)
        zombie.begin_transaction()
        with pytest.raises(KafkaException) as e:
            zombie.send_offsets_to_transaction([TopicPartition("txz", 0, 1)], meta, DEADLINE_S)
        assert e.value.args[0].fatal()
        assert state_of(txn_broker, "tx-zombie")["state"] == "Empty"  # the zombie added nothing
    finally:
        consumer.close()


# A transaction older than its transaction.timeout.ms is aborted by the coordinator at a bumped
# epoch, so its producer is fenced: its commit fails.
@pytest.mark.pyclients
def test_timed_out_transaction_is_aborted(txn_broker):
    from confluent_kafka import KafkaException, TopicPartition
    create_topic(txn_broker, "txt", 1)
    consumer, meta = group_metadata(txn_broker, "txt-group")
    try:
        p = txn_producer(txn_broker, "tx-timeout", **{"transaction.timeout.ms": 3000})
        p.init_transactions(DEADLINE_S)
        epoch = state_of(txn_broker, "tx-timeout")["epoch"]
        p.begin_transaction()
        p.send_offsets_to_transaction([TopicPartition("txt", 0, 5)], meta, DEADLINE_S)
        d = wait_until(lambda: (lambda s: s if s["state"] in ("PrepareAbort", "CompleteAbort") else None)(
            state_of(txn_broker, "tx-timeout")), "the coordinator to abort", DEADLINE_S)
        assert d["epoch"] == epoch + 1
        with pytest.raises(KafkaException):
            p.commit_transaction(DEADLINE_S)
        if markers_served(txn_broker):
            wait_until(lambda: state_of(txn_broker, "tx-timeout")["state"] == "CompleteAbort", "markers")
            assert stable_offset(txn_broker, "txt-group", "txt", 0) == (-1, ERR_NONE)
    finally:
        consumer.close()


# The whole path with data: init, begin, produce, commit, then abort of a second transaction;
# a read_committed consumer sees the committed records only (needs the partition side).
@pytest.mark.pyclients
def test_commit_and_abort_visibility(txn_broker):
    from confluent_kafka import Consumer
    needs_markers(txn_broker)
    create_topic(txn_broker, "txv", 1)
    p = txn_producer(txn_broker, "tx-vis")
    p.init_transactions(DEADLINE_S)
    p.begin_transaction()
    for v in (b"c1", b"c2"):
        p.produce("txv", v)
    p.commit_transaction(DEADLINE_S)
    p.begin_transaction()
    p.produce("txv", b"a1")
    p.abort_transaction(DEADLINE_S)
    p.begin_transaction()
    p.produce("txv", b"c3")
    p.commit_transaction(DEADLINE_S)
    c = Consumer({"bootstrap.servers": txn_broker.bootstrap, "group.id": "txv-reader",
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    try:
        c.subscribe(["txv"])
        seen = []
        wait_until(lambda: (lambda m: seen.append(m.value()) if m and not m.error() else None)(c.poll(0.5)) or
                   len(seen) >= 3, "three committed records", DEADLINE_S)
        assert seen == [b"c1", b"c2", b"c3"]
    finally:
        c.close()
