"""A cluster secured end to end: every listener (client, inter-broker,
controller) speaks SASL_SSL, the nodes log in to each other with
SCRAM-SHA-512 as User:broker, the authorizer denies by default and
super.users names the admin and the brokers. Nodes given a wrong password,
or a truststore without the cluster's CA, stay out while the others serve.
A mixed cluster (clients and brokers on SASL_SSL, the quorum on SSL with
client certificates) works too.

The start-up users (sasl.scram.bootstrap.users) are given alike on every
node: the nodes log in to each other's controller listeners with them
before the metadata log that stores the credentials has replicated."""

import re
import ssl

import pytest
# Debian's python3-cryptography (tools/deps.sh), as test_tls.py
pytest.importorskip("cryptography", reason="TLS tests run on Debian's Python (python3-cryptography)")
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

import harness  # noqa: E402
import kwire  # noqa: E402
from pki import Pki  # noqa: E402
from test_cluster import brokers_in_status, cluster, leader_view, ready, status, wait_for  # noqa: E402,F401
from test_quorum import describe_quorum  # noqa: E402
from test_sasl import handshake_v1, sasl_authenticate_v1  # noqa: E402

CLIENT_TIMEOUT_S = 30.0
DEADLINE_S = 60.0          # ASan builds, TLS and SCRAM on a loaded 2-core machine
MESSAGES = 2000
BROKER_PASSWORD = "broker-pw-7f3a"
ADMIN_PASSWORD = "admin-pw-91c2"
SCRAM_LOGIN = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";'


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    return Pki(d)


def tls_ctx(pki):
    return ssl.create_default_context(cafile=pki.path("ca.pem"))


def sasl_ssl_settings(pki, broker_password=BROKER_PASSWORD, truststore="ca.pem"):
    """Every listener SASL_SSL (the harness's PLAINTEXT-named client listener
    is mapped to SASL_SSL), SCRAM-SHA-512 between nodes, authorizer on."""
    users = "SCRAM-SHA-512=[name=broker,password=%s];SCRAM-SHA-512=[name=admin,password=%s]" % (
        BROKER_PASSWORD, ADMIN_PASSWORD)
    return {
        "listener.security.protocol.map": "PLAINTEXT:SASL_SSL,CONTROLLER:SASL_SSL",
        "ssl.keystore.location": pki.path("keystore.pem"),
        "ssl.truststore.location": pki.path(truststore),
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "sasl.mechanism.controller.protocol": "SCRAM-SHA-512",
        "sasl.jaas.config": SCRAM_LOGIN % ("broker", broker_password),
        "sasl.scram.bootstrap.users": users,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": "User:admin;User:broker",
    }


def admin_conf(pki, nodes, password=ADMIN_PASSWORD):
    return {"bootstrap.servers": ",".join(b.bootstrap for b in nodes), "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin", "sasl.password": password,
            "ssl.ca.location": pki.path("ca.pem")}


def secure_cluster(cluster, pki, n=3):
    """n SASL_SSL voters (the cluster fixture of test_cluster.py)."""
    return cluster(n, node_kwargs=lambda i: {"settings": sasl_ssl_settings(pki), "ssl_context": tls_ctx(pki)})


def cluster_with_outsider(broker_factory, pki, outsider_settings, all_settings=None, ctx=None):
    """Three voters, node 3 with outsider_settings; started like the cluster
    fixture does, waiting for nodes 1 and 2 only to be ready."""
    def node(i):
        own = dict(sasl_ssl_settings(pki), **(all_settings or {}))
        own.update(outsider_settings if i == 3 else {})
        return broker_factory(name="node%d" % i, node_id=i, settings=own, start=False,
                              ssl_context=ctx or tls_ctx(pki))
    nodes = [node(i) for i in (1, 2, 3)]
    ports = harness.free_ports(9)
    for i, b in enumerate(nodes):
        b._pick_ports(ports[3 * i:3 * i + 3])
    voters = ",".join("%d@%s:%d" % (b.node_id, b.host, b.controller_port) for b in nodes)
    for b in nodes:
        b.extra_args += ["--voters", voters]
        b.start()
    wait_for(lambda: ready(nodes[0]) and ready(nodes[1]), "nodes 1 and 2 to be ready", DEADLINE_S)
    return nodes


def registered(node):
    try:
        return sorted(i for i, b in brokers_in_status(node).items() if not b["fenced"])
    except (OSError, KeyError, ValueError):
        return []


def create_topic(conf, name, partitions, rf):
    admin = AdminClient(conf)  # kept alive until the answer: a destroyed handle fails its futures
    fs = admin.create_topics([NewTopic(name, partitions, rf)], operation_timeout=CLIENT_TIMEOUT_S,
                             request_timeout=CLIENT_TIMEOUT_S)
    fs[name].result(timeout=CLIENT_TIMEOUT_S)


def isr_sizes(conf, topic):
    """{partition: (leader, ISR size)}; {} while the topic has an error (e.g. no leader yet)."""
    md = AdminClient(conf).list_topics(topic=topic, timeout=CLIENT_TIMEOUT_S)
    t = md.topics[topic]
    return {} if t.error is not None else {p.id: (p.leader, len(p.isrs)) for p in t.partitions.values()}


def full_isr(conf, topic, partitions, rf):
    sizes = isr_sizes(conf, topic)
    return len(sizes) == partitions and all(s == rf for _, s in sizes.values())


def produce_all(conf, topic, n):
    p = Producer(dict(conf, **{"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                               "message.timeout.ms": int(DEADLINE_S * 1000)}))
    errors, acked = [], []

    def done(err, msg):
        (errors if err else acked).append(err or msg.offset())
    for i in range(n):
        p.produce(topic, value=b"secure-%d" % i, key=b"%d" % (i % 7), on_delivery=done)
        p.poll(0)
    left = p.flush(DEADLINE_S)
    assert left == 0 and not errors and len(acked) == n, (left, errors[:3], len(acked))


def consume_all(conf, topic, n):
    c = Consumer(dict(conf, **{"group.id": "secure-readers", "auto.offset.reset": "earliest",
                               "enable.auto.commit": False}))
    c.subscribe([topic])
    seen, errors = set(), []
    try:
        def more():
            for m in c.consume(num_messages=500, timeout=0.5):
                if m.error() is None:
                    seen.add(m.value())
                else:
                    errors.append(str(m.error()))
            return len(seen) >= n
        try:
            wait_for(more, "every message consumed over SASL_SSL", DEADLINE_S)
        except AssertionError as e:
            raise AssertionError("%s: %d seen, last errors %s" % (e, len(seen), errors[-3:])) from None
    finally:
        c.close()
    assert seen == {b"secure-%d" % i for i in range(n)}


def leader_node(nodes):
    leader_id, _ = wait_for(lambda: leader_view(nodes), "one quorum leader", DEADLINE_S)
    return next(b for b in nodes if b.node_id == leader_id)


# Every listener SASL_SSL, SCRAM-SHA-512 between nodes, authorizer on with
# deny by default: one leader is elected, the three brokers register, an
# admin creates a replication-factor-3 topic over SASL_SSL, 2,000 messages
# produced with acks=all and idempotence are all consumed; the leader of a
# partition killed with SIGKILL and restarted rejoins and the ISR is 3 again.
def test_every_listener_sasl_ssl(cluster, pki):
    nodes = secure_cluster(cluster, pki)
    leader = leader_node(nodes)
    wait_for(lambda: registered(leader) == [1, 2, 3], "three brokers registered", DEADLINE_S)
    assert all(status(b)["quorum"]["leader_id"] == leader.node_id for b in nodes)
    conf = admin_conf(pki, nodes)
    create_topic(conf, "secure", 3, 3)
    wait_for(lambda: full_isr(conf, "secure", 3, 3), "ISR of 3", DEADLINE_S)
    produce_all(conf, "secure", MESSAGES)
    consume_all(conf, "secure", MESSAGES)

    victim_id = isr_sizes(conf, "secure")[0][0]
    victim = next(b for b in nodes if b.node_id == victim_id)
    victim.kill9()
    others = [b for b in nodes if b is not victim]
    conf_others = admin_conf(pki, others)
    wait_for(lambda: isr_sizes(conf_others, "secure").get(0, (-1,))[0] not in (victim_id, -1),
             "a new partition leader", DEADLINE_S)
    victim.start()
    wait_for(lambda: full_isr(conf, "secure", 3, 3), "the ISR back to 3", DEADLINE_S)
    wait_for(lambda: registered(leader_node(nodes)) == [1, 2, 3], "the node registered again", DEADLINE_S)


def server_log(node):
    """The node's stderr without the harness's command lines (they hold --set values)."""
    return "\n".join(line for line in node.log_text().splitlines() if not line.startswith("---- start"))


def outsider_left_out(nodes):
    """(the two good nodes, the outsider, the leader) once the good two are registered."""
    good, bad = nodes[:2], nodes[2]
    leader = leader_node(good)
    wait_for(lambda: registered(leader) == [1, 2], "the two good brokers registered", DEADLINE_S)
    return good, bad, leader


def good_nodes_serve(pki, good, leader, topic):
    """The two good nodes take a topic and 50 messages while node 3 stays unregistered."""
    assert 3 not in registered(leader)
    conf = admin_conf(pki, good)
    create_topic(conf, topic, 1, 2)
    produce_all(conf, topic, 50)
    assert 3 not in registered(leader)


# A node given a wrong inter-broker password does not join: its log says the
# login was refused (and never shows a password), while the other two elect
# a leader, register and serve a client over SASL_SSL.
def test_wrong_password_stays_out(broker_factory, pki):
    nodes = cluster_with_outsider(broker_factory, pki, {"sasl.jaas.config": SCRAM_LOGIN % ("broker", "not-the-password")})
    good, bad, leader = outsider_left_out(nodes)
    wait_for(lambda: "SASL login failed" in bad.log_text(), "the refused login in the bad node's log", DEADLINE_S)
    text = bad.log_text()
    assert 'user="broker" mechanism=SCRAM-SHA-512' in text and "refused the login" in text, text[-2000:]
    for b in nodes:
        assert "not-the-password" not in server_log(b) and BROKER_PASSWORD not in server_log(b)
    good_nodes_serve(pki, good, leader, "two-nodes")


# A node whose truststore does not hold the cluster's CA cannot verify its
# peers: its TLS handshakes fail (the log says why) and it never registers,
# while the other two serve.
def test_untrusting_node_stays_out(broker_factory, pki):
    nodes = cluster_with_outsider(broker_factory, pki, {"ssl.truststore.location": pki.path("other-ca.pem")})
    good, bad, leader = outsider_left_out(nodes)
    # (TLS failures share one rate limit: an earlier one may hide the first of these for a while)
    wait_for(lambda: "TLS handshake failed" in server_log(bad) and "certificate verify failed" in server_log(bad),
             "the failed verification in the node's log", DEADLINE_S)
    good_nodes_serve(pki, good, leader, "trusting")


# A mixed cluster: clients and brokers on SASL_SSL (SCRAM), the quorum's
# controller listener on SSL with client certificates required (each node
# presents its keystore, principal User:CN=localhost, a super user): the
# cluster forms, replicates and serves an admin that logs in with SCRAM
# (and, ssl.client.auth being one setting for every TLS listener, presents
# a client certificate too).
def test_mixed_protocols(cluster, pki):
    def kwargs(i):
        s = sasl_ssl_settings(pki)
        s.update({"listener.security.protocol.map": "PLAINTEXT:SASL_SSL,CONTROLLER:SSL",
                  "ssl.client.auth": "required", "super.users": "User:admin;User:broker;User:CN=localhost"})
        return {"settings": s, "ssl_context": mtls_ctx(pki)}
    nodes = cluster(3, node_kwargs=kwargs)
    leader = leader_node(nodes)
    wait_for(lambda: registered(leader) == [1, 2, 3], "three brokers registered", DEADLINE_S)
    assert "controller protocol=SSL, inter-broker protocol=SASL_SSL mechanism=SCRAM-SHA-512" in server_log(leader)
    conf = dict(admin_conf(pki, nodes), **{"ssl.certificate.location": pki.path("client.pem"),
                                           "ssl.key.location": pki.path("client.key")})
    create_topic(conf, "mixed", 2, 3)
    wait_for(lambda: full_isr(conf, "mixed", 2, 3), "ISR of 3", DEADLINE_S)
    produce_all(conf, "mixed", 500)
    consume_all(conf, "mixed", 500)


# Clients on a listener of their own (CLIENTS, SASL_SSL with SCRAM), the
# brokers on the inter-broker listener (PLAINTEXT, mapped to SSL with client
# certificates) and the quorum on SSL: each broker registers both listeners,
# a client is told every broker's CLIENTS address, and the brokers replicate
# over SSL between themselves.
def test_clients_and_brokers_on_separate_listeners(cluster, pki):
    client_ports = dict(zip(range(1, 4), harness.free_ports(3)))

    def kwargs(i):
        s = sasl_ssl_settings(pki)
        s.update({"listeners": "CLIENTS://127.0.0.1:%d" % client_ports[i],
                  "listener.security.protocol.map": "PLAINTEXT:SSL,CLIENTS:SASL_SSL,CONTROLLER:SSL",
                  "inter.broker.listener.name": "PLAINTEXT", "ssl.client.auth": "required",
                  "super.users": "User:admin;User:CN=localhost"})
        return {"settings": s, "ssl_context": mtls_ctx(pki)}
    nodes = cluster(3, node_kwargs=kwargs)
    leader = leader_node(nodes)
    wait_for(lambda: registered(leader) == [1, 2, 3], "three brokers registered", DEADLINE_S)
    assert "controller protocol=SSL, inter-broker protocol=SSL" in server_log(leader)
    conf = dict(admin_conf(pki, nodes), **{"ssl.certificate.location": pki.path("client.pem"),
                                           "ssl.key.location": pki.path("client.key")})
    conf["bootstrap.servers"] = ",".join("127.0.0.1:%d" % p for p in client_ports.values())
    md = AdminClient(conf).list_topics(timeout=CLIENT_TIMEOUT_S)
    assert {b.id: b.port for b in md.brokers.values()} == client_ports
    create_topic(conf, "separate", 3, 3)
    wait_for(lambda: full_isr(conf, "separate", 3, 3), "ISR of 3", DEADLINE_S)
    produce_all(conf, "separate", 500)
    consume_all(conf, "separate", 500)


def mtls_ctx(pki):
    ctx = tls_ctx(pki)
    ctx.load_cert_chain(pki.path("client.pem"), pki.path("client.key"))
    return ctx



# ssl.endpoint.identification.algorithm: with certificates that name no host
# (no subjectAltName), nodes that do not check host names (empty) form a
# cluster, while the node that checks them (https, the default) refuses
# every peer's certificate, says so, and stays out.
def test_host_name_check(broker_factory, pki):
    pki.write_keystore("nosan.pem", 0x5005, san=False)
    ctx = tls_ctx(pki)
    ctx.check_hostname = False  # the start-up probe: these certificates name no host
    nodes = cluster_with_outsider(broker_factory, pki, {"ssl.endpoint.identification.algorithm": "https"},
                                  all_settings={"ssl.keystore.location": pki.path("nosan.pem"),
                                                "ssl.endpoint.identification.algorithm": ""}, ctx=ctx)
    good, bad = nodes[:2], nodes[2]
    leader = leader_node(good)
    wait_for(lambda: registered(leader) == [1, 2], "the two nodes that skip the check registered", DEADLINE_S)
    wait_for(lambda: "IP address mismatch" in server_log(bad), "the refused certificate in the log", DEADLINE_S)
    assert 3 not in registered(leader)


def relogged_peers(node):
    """Peer addresses (one per connection) that logged in more than once."""
    peers = re.findall(r"SASL login peer=(\S+) principal=User:broker", server_log(node))
    return {p for p in peers if peers.count(p) > 1}


# connections.max.reauth.ms bounds a session: the nodes log in again on the
# same connections before their sessions end (KIP-368), holding new requests
# meanwhile (the answers come in order, and Raft fetches long-poll), so no
# connection between them is closed as expired and the cluster keeps serving.
def test_nodes_reauthenticate(cluster, pki):
    def kwargs(i):
        return {"settings": dict(sasl_ssl_settings(pki), **{"connections.max.reauth.ms": "6000"}),
                "ssl_context": tls_ctx(pki)}
    nodes = cluster(3, node_kwargs=kwargs)
    leader = leader_node(nodes)
    wait_for(lambda: registered(leader) == [1, 2, 3], "three brokers registered", DEADLINE_S)
    wait_for(lambda: all(relogged_peers(b) for b in nodes), "a node connection re-authenticated on each node",
             DEADLINE_S)
    for b in nodes:
        assert "SASL session expired" not in server_log(b), server_log(b)[-3000:]
    conf = admin_conf(pki, nodes)
    create_topic(conf, "relogin", 1, 3)
    produce_all(conf, "relogin", 100)


def controller_login(node, pki, user, password):
    """A TLS connection to node's controller listener, logged in with PLAIN."""
    c = kwire.Conn(node.host, node.controller_port, timeout=CLIENT_TIMEOUT_S, ssl_context=tls_ctx(pki))
    assert handshake_v1(c, "PLAIN") == 0
    err, _, _, _ = sasl_authenticate_v1(c, b"\0" + user.encode() + b"\0" + password.encode())
    assert err == 0, err
    return c


# With the authorizer on, a SASL_SSL controller listener serves only
# principals allowed CLUSTER_ACTION: a super user (the brokers', the
# admin) is answered, a user without it is disconnected after its login.
def test_controller_listener_needs_cluster_action(cluster, pki):
    def kwargs(i):
        s = sasl_ssl_settings(pki)
        s["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-512"
        s["sasl.scram.bootstrap.users"] += ";SCRAM-SHA-512=[name=alice,password=alice-pw]"
        return {"settings": s, "ssl_context": tls_ctx(pki)}
    (node,) = cluster(1, node_kwargs=kwargs)
    for user, pw in (("broker", BROKER_PASSWORD), ("admin", ADMIN_PASSWORD)):
        with controller_login(node, pki, user, pw) as c:
            assert describe_quorum(c)["partitions"][0]["leader_id"] == node.node_id
    with controller_login(node, pki, "alice", "alice-pw") as c:
        with pytest.raises((kwire.WireError, OSError)):
            describe_quorum(c)
    assert "may not use the controller listener" in server_log(node)
