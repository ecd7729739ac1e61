"""The operator tools of the chronik binary: the offline `chronik log check
DIR` and `chronik log dump DIR` on a partition directory written by a real
broker, before and after a byte in the middle of a sealed segment is
corrupted; and `chronik cluster status` against a running broker, healthy
and with a partition that storage took offline."""

import json
import os
import re
import subprocess

import pytest

import harness

CLIENT_TIMEOUT_S = 30.0
SEGMENT_BYTES = 16384          # small segments (the minimum is 14 KiB)
MESSAGES = 60
MESSAGE_BYTES = 1000
BATCH_BYTES = 4096             # a few messages per batch, so segments hold several batches

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

pytestmark = pytest.mark.skipif(harness.TARGET != "chronik", reason="offline tools of the chronik binary")


def chronik(*args):
    r = harness.run_tool([str(harness.CHRONIK_BIN)] + list(args), timeout_s=CLIENT_TIMEOUT_S,
                         env=dict(os.environ, **harness.SANITIZER_ENV))
    assert not [m for m in harness.SANITIZER_MARKERS if m in r.stderr], r.stderr
    return r


def produce_with_kcat(kcat, broker, topic):
    lines = "".join("%04d%s\n" % (i, "x" * (MESSAGE_BYTES - 4)) for i in range(MESSAGES))
    r = subprocess.run([kcat, "-P", "-b", broker.bootstrap, "-t", topic, "-p", "0",
                                "-X", "batch.size=%d" % BATCH_BYTES, "-X", "linger.ms=5"],
                               input=lines, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def stopped(broker_factory, kcat):
    """A stopped broker and its partition directory holding MESSAGES records in several segments."""
    broker = broker_factory(settings={"log.segment.bytes": str(SEGMENT_BYTES)})
    produce_with_kcat(kcat, broker, "cli")
    broker.stop()
    part = broker.data_dir / "cli-0"
    segments = sorted(part.glob("*.log"))
    assert len(segments) >= 3, segments
    return broker, part, segments


@pytest.fixture
def written(stopped):
    """The partition directory and segments of `stopped`."""
    return stopped[1:]


def batch_counts(check_output):
    return [int(n) for n in re.findall(r"batches=(\d+)", check_output)]


# `log check` passes a clean directory, reporting each segment's batch count; `log dump` lists every offset once.
def test_check_and_dump_clean(written):
    part, segments = written
    r = chronik("log", "check", str(part))
    assert r.returncode == EXIT_OK, r.stdout + r.stderr
    counts = batch_counts(r.stdout)
    assert len(counts) == len(segments) and sum(counts) > len(segments), r.stdout
    assert "%d segment(s), 0 problem(s)" % len(segments) in r.stdout, r.stdout

    d = chronik("log", "dump", str(part))
    assert d.returncode == EXIT_OK, d.stdout + d.stderr
    batches = re.findall(r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+)", d.stdout)
    assert len(batches) == sum(counts)
    covered = [o for base, last, _ in batches for o in range(int(base), int(last) + 1)]
    assert covered == list(range(MESSAGES))
    assert sum(int(c) for _, _, c in batches) == MESSAGES
    assert "crcOk: false" not in d.stdout
    assert d.stdout.count("Dumping ") == len(segments)


# A byte flipped in the middle of a sealed segment makes `log check` exit non-zero naming the segment and the bad batch; `log dump` flags the CRC.
def test_check_finds_corruption(written):
    part, segments = written
    victim = segments[0]          # sealed: a later segment exists
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    r = chronik("log", "check", str(part))
    assert r.returncode == EXIT_PROBLEMS, r.stdout + r.stderr
    report = r.stdout.split(victim.name, 1)
    assert len(report) == 2, r.stdout
    assert "invalid batch at position" in report[1].split(".log", 1)[0], r.stdout
    assert re.search(r"damaged: offsets \d+\.\.\d+", report[1]), r.stdout
    assert "0 problem(s)" not in r.stdout

    d = chronik("log", "dump", str(part))
    assert d.returncode == EXIT_PROBLEMS, d.stdout
    assert "crcOk: false" in d.stdout


# Missing arguments print the usage and exit 2; an unreadable directory exits 2.
def test_usage_and_unreadable(tmp_path):
    for args in (["log"], ["log", "check"], ["log", "verify", str(tmp_path)], ["log", "dump", "a", "b"]):
        r = chronik(*args)
        assert r.returncode == EXIT_USAGE, (args, r.stdout, r.stderr)
        assert "usage: chronik log check DIR" in r.stderr, (args, r.stderr)
    r = chronik("log", "--help")
    assert r.returncode == EXIT_OK and "chronik log dump DIR" in r.stdout
    r = chronik("log", "check", str(tmp_path / "missing"))
    assert r.returncode == EXIT_USAGE and "cannot read directory" in r.stdout, r.stdout


def status(broker, *extra):
    return chronik("cluster", "status", "--admin", "127.0.0.1:%d" % broker.admin_port, *extra)


# `cluster status` of a healthy broker exits 0 and shows every partition's log end; --json has the same facts.
def test_cluster_status_healthy(broker, kcat):
    produce_with_kcat(kcat, broker, "st")
    r = status(broker)
    assert r.returncode == EXIT_OK, r.stdout + r.stderr
    assert r.stdout.startswith("cluster ") and ": healthy" in r.stdout.splitlines()[0], r.stdout
    row = [line.split() for line in r.stdout.splitlines() if line.startswith("st ")]
    assert len(row) == 1, r.stdout
    # TOPIC PART LEADER EPOCH REPLICAS ISR STATE LOG-START LOG-END HW BYTES
    assert row[0][1] == "0" and row[0][6] == "online" and row[0][8] == str(MESSAGES), row
    assert row[0][9] == str(MESSAGES), row  # high watermark: everything is durable

    j = status(broker, "--json")
    assert j.returncode == EXIT_OK, j.stderr
    doc = json.loads(j.stdout)
    assert doc["healthy"] is True and doc["problems"] == []
    assert doc["node"]["listener"] == broker.bootstrap and doc["node"]["ready"] is True
    assert doc["counts"]["offline_partitions"] == 0 and doc["counts"]["topics"] >= 1
    st = [p for p in doc["partitions"] if p["topic"] == "st"]
    assert len(st) == 1 and st[0]["log_end"] == MESSAGES and st[0]["high_watermark"] == MESSAGES
    assert st[0]["bytes"] > MESSAGES * MESSAGE_BYTES and st[0]["state"] == "online"


# A partition whose sealed segment fails its CRC at start-up is read-only:
# status exits 1 naming it and the damaged offsets, the valid prefix is still
# served, writes are refused; `log repair` is refused while the broker runs,
# and after it (broker stopped) the partition is healthy and writable again.
def test_cluster_status_damaged_partition_and_repair(stopped, kcat):
    broker, part, segments = stopped
    victim = segments[0]          # sealed and below the recovery point
    data = bytearray(victim.read_bytes())
    data[len(data) - 10] ^= 0xFF  # inside its last batch, which open always re-reads
    victim.write_bytes(bytes(data))
    broker.start()
    r = status(broker)
    assert r.returncode == EXIT_PROBLEMS, r.stdout + r.stderr
    assert "DEGRADED" in r.stdout.splitlines()[0], r.stdout
    assert "problem: cli-0 read-only" in r.stdout and "not served" in r.stdout, r.stdout
    doc = json.loads(status(broker, "--json").stdout)
    assert doc["healthy"] is False and doc["counts"]["read_only_partitions"] == 1
    (cli,) = [p for p in doc["partitions"] if p["topic"] == "cli"]
    assert cli["state"] == "read-only" and "corrupt" in cli["error"], cli
    first_bad = cli["damaged_from"]
    assert 0 < first_bad < MESSAGES and cli["damaged_to"] > first_bad and cli["log_end"] == first_bad, cli
    got = subprocess.run([kcat, "-C", "-b", broker.bootstrap, "-t", "cli", "-p", "0", "-o", "beginning",
                          "-c", str(first_bad), "-f", "%o\n"], capture_output=True, text=True,
                         timeout=CLIENT_TIMEOUT_S)
    assert [int(x) for x in got.stdout.split()] == list(range(first_bad)), got.stderr
    w = subprocess.run([kcat, "-P", "-b", broker.bootstrap, "-t", "cli", "-p", "0",
                        "-X", "message.timeout.ms=3000"], input="refused\n", capture_output=True,
                       text=True, timeout=CLIENT_TIMEOUT_S)
    assert "Delivery failed" in w.stderr or w.returncode != 0, w.stderr
    refused = chronik("log", "repair", str(part))
    assert refused.returncode == EXIT_USAGE and "stop it first" in refused.stdout, refused.stdout
    broker.stop()
    rep = chronik("log", "repair", str(part))
    assert rep.returncode == EXIT_OK and "repaired" in rep.stdout, rep.stdout
    aside = [p for p in part.parent.iterdir() if p.name.startswith("cli-0.") and p.name.endswith("-damaged")]
    assert len(aside) == 1 and any(aside[0].iterdir()), rep.stdout
    broker.start()
    assert status(broker).returncode == EXIT_OK
    produce_with_kcat(kcat, broker, "cli")
    (cli,) = [p for p in json.loads(status(broker, "--json").stdout)["partitions"] if p["topic"] == "cli"]
    assert cli["state"] == "online" and cli["log_end"] == first_bad + MESSAGES, cli


# Bad arguments print the usage and exit 2; an unreachable admin port exits 2.
def test_cluster_status_usage_and_unreachable():
    for args in (["cluster"], ["cluster", "stat"], ["cluster", "status", "--admin", "nohost"],
                 ["cluster", "status", "--bogus"]):
        r = chronik(*args)
        assert r.returncode == EXIT_USAGE, (args, r.stdout, r.stderr)
        assert "usage: chronik cluster status" in r.stderr, (args, r.stderr)
    r = chronik("cluster", "status", "--admin", "127.0.0.1:%d" % harness.free_port())
    assert r.returncode == EXIT_USAGE and "no status from" in r.stderr, r.stderr
