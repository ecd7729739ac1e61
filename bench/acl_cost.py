#!/usr/bin/env python3
"""acl_cost.py - what authorization costs the data path: produce and consume
throughput with the authorizer off, and on with 10,000 ACLs.

    build/deps/venv/bin/python bench/acl_cost.py [--reps 3] [--messages N] [--acls 10000]

Each repetition starts two fresh `build/chronik` nodes in turn (the order
swapped every repetition; release build, defaults, a new data directory):

  off   no authorizer
  on    authorizer.class.name set (with allow.everyone.if.no.acl.found, so
        that the plaintext client may create the ACLs), and --acls ACLs: one
        ALLOW of WRITE and one of READ on the benchmark topic for
        User:ANONYMOUS (the principal of a plaintext client), the rest
        literal and prefixed ACLs for other topics and users, spread over
        topics, groups and principals so that every lookup has company

then build/bench/produce (librdkafka, acks=1, linger.ms=5, 100 B, one
partition) and build/bench/consume (from offset 0). The ACLs are created
with confluent-kafka 2.x's AdminClient (the virtualenv tools/deps.sh test
makes), 500 to a request. stdout: one JSON object per run, then
{"medians": ...}; stderr: progress.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "build", "chronik")
TOPIC = "bench-acl"
DEADLINE_S = 120.0
ANON = "User:ANONYMOUS"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(aport):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/ready" % aport, timeout=2) as f:
            return f.status == 200
    except OSError:
        return False


def start(work, authorizer):
    port, aport = free_port(), free_port()
    cmd = [BIN, "server", "--listen", "127.0.0.1:%d" % port, "--controller-listen", "127.0.0.1:%d" % free_port(),
           "--admin-listen", "127.0.0.1:%d" % aport, "--data-dir", os.path.join(work, "data")]
    if authorizer:
        # allow.everyone.if.no.acl.found: a plaintext client is User:ANONYMOUS, and it must be
        # able to create the ACLs (CLUSTER has none); the benchmark's topic has its own ACLs,
        # so every produce and fetch goes through the lookup
        cmd += ["--set", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "--set", "allow.everyone.if.no.acl.found=true"]
    log = open(os.path.join(work, "broker.log"), "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + DEADLINE_S
    while not ready(aport):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("acl_cost.py: the broker did not start; see %s/broker.log" % work)
        time.sleep(0.05)
    return proc, "127.0.0.1:%d" % port


def bindings(n):
    """n ACLs: the two the benchmark needs first, then others that match nothing it does."""
    out = [AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, ANON, "*", op,
                      AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)]
    kinds = ((ResourceType.TOPIC, ResourcePatternType.LITERAL), (ResourceType.TOPIC, ResourcePatternType.PREFIXED),
             (ResourceType.GROUP, ResourcePatternType.LITERAL), (ResourceType.TOPIC, ResourcePatternType.LITERAL))
    for i in range(n - len(out)):
        rtype, pattern = kinds[i % len(kinds)]
        name = "other-%d" % i if pattern == ResourcePatternType.LITERAL else "other-prefix-%d-" % i
        principal = "User:user-%d" % (i % 500) if i % 3 else ANON
        out.append(AclBinding(rtype, name, pattern, principal, "*", AclOperation.WRITE, AclPermissionType.ALLOW))
    return out


def setup(bootstrap, nacls):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if nacls:
        # topic creation needs CREATE: allow it for the set-up, then take it back
        create = AclBinding(ResourceType.TOPIC, TOPIC, ResourcePatternType.LITERAL, ANON, "*",
                            AclOperation.CREATE, AclPermissionType.ALLOW)
        for f in admin.create_acls([create]).values():
            f.result(DEADLINE_S)
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(DEADLINE_S)
    if nacls:
        todo = bindings(nacls - 1)
        for i in range(0, len(todo), 500):
            for f in admin.create_acls(todo[i:i + 500]).values():
                f.result(DEADLINE_S)
    return admin


def cpu_s(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_prog(prog, bootstrap, args, broker_pid):
    cmd = [os.path.join(REPO, "build", "bench", prog), "-b", bootstrap, "-t", TOPIC, "-n", str(args.messages)]
    if prog == "produce":
        cmd += ["-s", "100", "-a", "1"]
    c0 = cpu_s(broker_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit("acl_cost.py: %s failed: %s" % (prog, out.stderr[-2000:]))
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["broker_cpu_s"] = round(cpu_s(broker_pid) - c0, 2)
    return r


def one(rep, mode, args):
    work = tempfile.mkdtemp(prefix="chronik-bench-acl-")
    proc, bootstrap = start(work, mode == "on")
    try:
        setup(bootstrap, args.acls if mode == "on" else 0)
        got = []
        for prog in ("produce", "consume"):
            r = run_prog(prog, bootstrap, args, proc.pid)
            r.update({"mode": mode, "rep": rep, "prog": prog, "acls": args.acls if mode == "on" else 0})
            print(json.dumps(r), flush=True)
            print("rep %d %s %s: %s" % (rep, mode, prog, r), file=sys.stderr)
            got.append(r)
        return got
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--messages", type=int, default=2000000)
    ap.add_argument("--acls", type=int, default=10000)
    args = ap.parse_args()
    for b in (BIN, os.path.join(REPO, "build", "bench", "produce")):
        if not os.path.exists(b):
            raise SystemExit("acl_cost.py: %s missing: make build/chronik bench" % b)
    runs = []
    for rep in range(args.reps):
        for mode in (("off", "on") if rep % 2 == 0 else ("on", "off")):
            runs += one(rep, mode, args)
    med = {}
    for mode in ("off", "on"):
        for prog in ("produce", "consume"):
            rows = [r for r in runs if r["mode"] == mode and r["prog"] == prog]
            med["%s_%s_msgs_per_s" % (prog, mode)] = statistics.median(r["msg_per_s"] for r in rows)
            med["%s_%s_broker_cpu_s" % (prog, mode)] = statistics.median(r["broker_cpu_s"] for r in rows)
    for prog in ("produce", "consume"):
        med["%s_on_vs_off" % prog] = round(med["%s_on_msgs_per_s" % prog] / med["%s_off_msgs_per_s" % prog], 3)
    print(json.dumps({"medians": med, "reps": args.reps, "messages": args.messages, "acls": args.acls}))


if __name__ == "__main__":
    main()
