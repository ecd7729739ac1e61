#!/usr/bin/python3
"""capture_golden.py - record real clients' request frames as golden vectors.

    make build/bench/mock_broker && /usr/bin/python3 tools/capture_golden.py [--out DIR]

Starts the reference broker (build/bench/mock_broker, librdkafka's in-memory
mock cluster) with a recording TCP proxy in front of it, runs real clients
through the proxy, and writes every distinct (client, api key, api version)
request frame to DIR (default tests/data/golden) as

    <client>-<ApiName>-v<version>.bin

holding the frame's bytes after the 4-byte length: request header + body.
When a client sends the same api and version several times, the longest
frame is kept (it exercises the most fields). Old *.bin files in DIR are
removed first, so a re-run replaces the set; the contents change from run to
run in timestamps, ids and CRCs inside record batches, and a vector that a
client sends only on a timer (Heartbeat) may come and go. Client versions
used for the committed set: kcat 1.7.1 / librdkafka 2.0.2, kafka-python
2.0.2, kafkajs 2.2.4 (Debian 12 packages; kafkajs from
tests/integration/package-lock.json). The mock caps the versions clients
pick (Metadata v2, Produce v7, Fetch v11), so most vectors are pre-flexible;
librdkafka's ApiVersions v3 and InitProducerId v4 are flexible.

The clients:
  librdkafka    kcat -L; kcat -P of keyed messages (acks=all, acks=1, and
                idempotent); kcat -C of them back; kcat -G (consumer group)
  kafka-python  KafkaAdminClient metadata; KafkaProducer send + flush
                (acks=1); KafkaConsumer in a group with a commit
  kafkajs       tests/integration/kafkajs_produce.js (producer, acks=1)

The mock advertises its own port in Metadata, which would send clients past
the proxy after bootstrap; the proxy therefore rewrites, in every response,
the bytes "127.0.0.1" + int32 mock port into "127.0.0.1" + int32 proxy port
(same length, so no frame size changes).

tests/unit/test_golden.c decodes and re-encodes every vector with Chronik's
codec; it does not run this script.
"""

import argparse
import json
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.dont_write_bytecode = True
import kwire  # noqa: E402

MOCK_BIN = REPO / "build" / "bench" / "mock_broker"
TOPIC = "golden"
TOPIC_PARTITIONS = 2
MESSAGES = [("k1", "alpha"), ("k2", "beta"), ("k3", "gamma"), ("k1", "delta")]
CLIENT_TIMEOUT_S = 60
CONSUMER_IDLE_MS = 20000         # kafka-python gives up after this long without a message
START_TIMEOUT_S = 10
FRAME_BYTES_MAX = 1 << 20        # golden frames are small; anything bigger is a bug
ACCEPT_BACKLOG = 16


def log(msg):
    print("capture: " + msg, file=sys.stderr, flush=True)


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_frame(sock):
    head = recv_exact(sock, 4)
    if head is None:
        return None
    n = struct.unpack(">i", head)[0]
    if n < 0 or n > FRAME_BYTES_MAX:
        raise ValueError("frame length %d" % n)
    return recv_exact(sock, n)


class RecordingProxy:
    """Forwards whole frames between clients and the mock; records requests."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=ACCEPT_BACKLOG)
        self.port = self.listener.getsockname()[1]
        self.client = "none"
        self.frames = []          # (client, payload)
        self.lock = threading.Lock()
        self.old_addr = b"127.0.0.1" + struct.pack(">i", upstream_port)
        self.new_addr = b"127.0.0.1" + struct.pack(">i", self.port)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                down.close()
                continue
            label = self.client
            threading.Thread(target=self._pump, args=(down, up, label, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, label, False), daemon=True).start()

    def _pump(self, src, dst, label, is_request):
        try:
            while True:
                payload = recv_frame(src)
                if payload is None:
                    break
                if is_request:
                    with self.lock:
                        self.frames.append((label, payload))
                else:
                    payload = payload.replace(self.old_addr, self.new_addr)
                dst.sendall(struct.pack(">i", len(payload)) + payload)
        except (OSError, ValueError):
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


def start_mock():
    proc = subprocess.Popen([str(MOCK_BIN), "--topic", "%s:%d" % (TOPIC, TOPIC_PARTITIONS)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line:
        proc.kill()
        sys.exit("capture: the mock broker printed no bootstrap address")
    return proc, int(line.rsplit(":", 1)[1])


def run(cmd, stdin_text=None, cwd=None):
    r = subprocess.run(cmd, input=stdin_text, capture_output=True, text=True,
                       timeout=CLIENT_TIMEOUT_S, cwd=cwd)
    if r.returncode != 0:
        sys.exit("capture: %s failed (%d):\n%s" % (cmd[0], r.returncode, r.stderr))
    return r.stdout


def librdkafka_clients(bootstrap):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        sys.exit("capture: kcat not installed")
    lines = "".join("%s:%s\n" % kv for kv in MESSAGES)
    run([kcat, "-L", "-b", bootstrap, "-m", "10"])
    for acks in ("all", "1"):
        run([kcat, "-P", "-b", bootstrap, "-t", TOPIC, "-K", ":", "-X", "acks=%s" % acks], lines)
    run([kcat, "-P", "-b", bootstrap, "-t", TOPIC, "-K", ":", "-X", "enable.idempotence=true"], lines)
    out = run([kcat, "-C", "-b", bootstrap, "-t", TOPIC, "-o", "beginning", "-e", "-K", ":",
               "-m", "10"])
    if out.count("\n") < 3 * len(MESSAGES):
        sys.exit("capture: kcat -C read back only:\n" + out)
    out = run([kcat, "-b", bootstrap, "-G", "golden-librdkafka", "-o", "beginning", "-e",
               "-K", ":", "-m", "10", "-X", "session.timeout.ms=6000", TOPIC])
    if out.count("\n") < 3 * len(MESSAGES):
        sys.exit("capture: kcat -G read back only:\n" + out)


def kafka_python_clients(bootstrap):
    from kafka import KafkaAdminClient, KafkaProducer
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="golden-kafka-python",
                             api_version_auto_timeout_ms=10000)
    try:
        admin.describe_cluster()
        admin.describe_topics([TOPIC])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, client_id="golden-kafka-python",
                             api_version_auto_timeout_ms=10000)
    try:
        futures = [producer.send(TOPIC, key=k.encode(), value=v.encode()) for k, v in MESSAGES]
        producer.flush(timeout=CLIENT_TIMEOUT_S)
        for f in futures:
            f.get(timeout=CLIENT_TIMEOUT_S)
    finally:
        producer.close(timeout=CLIENT_TIMEOUT_S)
    kafka_python_consumer(bootstrap)


def kafka_python_consumer(bootstrap):
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="golden-kafka-python",
                             client_id="golden-kafka-python", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=CONSUMER_IDLE_MS,
                             api_version_auto_timeout_ms=10000)
    try:
        got = 0
        for _ in consumer:
            got += 1
            if got == len(MESSAGES):
                break
        if got < len(MESSAGES):
            sys.exit("capture: kafka-python consumer read only %d messages" % got)
        consumer.commit()
    finally:
        consumer.close()


def kafkajs_clients(bootstrap):
    script = REPO / "tests" / "integration" / "kafkajs_produce.js"
    msgs = ["%s=%s" % kv for kv in MESSAGES]
    out = run(["node", str(script), bootstrap, TOPIC, "1"] + msgs, cwd=script.parent)
    json.loads(out)


CLIENTS = [
    ("librdkafka", librdkafka_clients),
    ("kafka-python", kafka_python_clients),
    ("kafkajs", kafkajs_clients),
]


def write_vectors(frames, out_dir):
    """Keeps the longest frame per (client, api, version); returns the file names."""
    best = {}
    for client, payload in frames:
        api_key, version, _ = kwire.parse_request_header(payload)
        key = (client, api_key, version)
        if key not in best or len(payload) > len(best[key]):
            best[key] = payload
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.bin"):
        old.unlink()
    names = []
    for (client, api_key, version), payload in sorted(best.items()):
        name = "%s-%s-v%d.bin" % (client, kwire.api_name(api_key), version)
        (out_dir / name).write_bytes(payload)
        names.append((name, len(payload)))
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "tests" / "data" / "golden"))
    args = ap.parse_args()
    if not MOCK_BIN.exists():
        sys.exit("capture: build the mock broker first: make build/bench/mock_broker")
    mock, mock_port = start_mock()
    proxy = RecordingProxy(mock_port)
    bootstrap = "127.0.0.1:%d" % proxy.port
    try:
        for client, fn in CLIENTS:
            log("running %s through %s (mock on %d)" % (client, bootstrap, mock_port))
            with proxy.lock:
                proxy.client = client
            fn(bootstrap)
    finally:
        proxy.close()
        mock.terminate()
        mock.wait(timeout=START_TIMEOUT_S)
    # Frames still in flight when the clients returned were already answered;
    # copy under the lock so a late pump thread cannot race the listing.
    with proxy.lock:
        frames = list(proxy.frames)
    names = write_vectors(frames, Path(args.out))
    for name, size in names:
        log("%6d  %s" % (size, name))
    log("%d vectors in %s" % (len(names), args.out))
    if not names:
        sys.exit(1)


if __name__ == "__main__":
    main()
