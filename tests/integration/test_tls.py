"""Named listeners and TLS: an SSL listener beside the PLAINTEXT one, real
clients (kcat, confluent-kafka) over it, client certificates, bad peers that
must cost only their own connection, and certificate reload without restart.

Certificates are made at test time (Python's cryptography): a CA, a server
certificate for localhost/127.0.0.1, client certificates (one expired) and
an unrelated CA that the server's certificate does not chain to."""

import os
import signal
import socket
import ssl
import threading

import pytest
# Debian's python3-cryptography (tools/deps.sh): the tier run on the newest Python clients'
# virtualenv, which has no cryptography, collects this file without running it
pytest.importorskip("cryptography", reason="TLS tests run on Debian's Python (python3-cryptography)")
from cryptography import x509  # noqa: E402

import harness
import kwire
from pki import SERVER_SERIAL, Pki  # noqa: E402

CLIENT_TIMEOUT_S = 30.0
CLOSE_DEADLINE_S = 5.0
RELOAD_DEADLINE_S = 15.0     # the broker looks at its files every 2 s
IO_TIMEOUT_S = 10.0
RENEWED_SERIAL = 0x2002


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    return Pki(d)


def ssl_broker(broker_factory, pki, client_auth="none", **settings):
    """A broker with PLAINTEXT (the harness's) and SSL listeners; returns (broker, ssl_port)."""
    port = harness.free_port()
    s = {"listeners": "SSL://127.0.0.1:%d" % port, "ssl.keystore.location": pki.path("keystore.pem"),
         "ssl.truststore.location": pki.path("ca.pem"), "ssl.client.auth": client_auth}
    s.update(settings)
    return broker_factory(settings=s), port


def client_ctx(pki, ca="ca.pem", cert=None):
    ctx = ssl.create_default_context(cafile=pki.path(ca))
    if cert:
        ctx.load_cert_chain(pki.path(cert + ".pem"), pki.path(cert + ".key"))
    return ctx


def tls_conn(port, ctx):
    c = kwire.Conn("127.0.0.1", port, timeout=IO_TIMEOUT_S)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
    return c


def api_versions_ok(conn):
    r = kwire.api_versions(conn, 0, timeout=IO_TIMEOUT_S)
    return r["error_code"] == kwire.ERR_NONE and len(r["apis"]) > 0


def served_serial(port, pki):
    ctx = client_ctx(pki)
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True)).serial_number


def kcat_ssl(pki, cert=None):
    args = ["-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + pki.path("ca.pem")]
    if cert:
        args += ["-X", "ssl.certificate.location=" + pki.path(cert + ".pem"),
                 "-X", "ssl.key.location=" + pki.path(cert + ".key")]
    return args


def confluent_ssl(pki, cert=None, ca="ca.pem"):
    conf = {"security.protocol": "SSL", "ssl.ca.location": pki.path(ca)}
    if cert:
        conf.update({"ssl.certificate.location": pki.path(cert + ".pem"),
                     "ssl.key.location": pki.path(cert + ".key")})
    return conf


def metadata_port(bootstrap, extra):
    """The port confluent-kafka's Metadata lists for the only broker."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient(dict({"bootstrap.servers": bootstrap}, **extra)).list_topics(timeout=IO_TIMEOUT_S)
    assert len(md.brokers) == 1, md.brokers
    return next(iter(md.brokers.values())).port


# ---- named listeners ---------------------------------------------------------

# Each listener answers Metadata with its own advertised address (two names,
# both PLAINTEXT): a client is sent back to the listener it came on.
def test_metadata_names_the_listener_the_client_came_on(broker_factory):
    ext = harness.free_port()
    b = broker_factory(settings={"listeners": "EXTERNAL://127.0.0.1:%d" % ext,
                                 "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
                                 "advertised.listeners": "EXTERNAL://localhost:%d" % ext})
    with kwire.Conn("127.0.0.1", b.port) as c:
        assert [(x["host"], x["port"]) for x in kwire.metadata_v1(c)["brokers"]] == [("127.0.0.1", b.port)]
    with kwire.Conn("127.0.0.1", ext) as c:
        assert [(x["host"], x["port"]) for x in kwire.metadata_v1(c)["brokers"]] == [("localhost", ext)]


def startup_error(tmp_path, settings):
    """Runs the server with settings that must stop it; returns its stderr."""
    cmd = [str(harness.CHRONIK_BIN), "server", "--data-dir", str(tmp_path / "refused"),
           "--listen", "127.0.0.1:%d" % harness.free_port(),
           "--controller-listen", "127.0.0.1:%d" % harness.free_port(),
           "--admin-listen", "127.0.0.1:%d" % harness.free_port()]
    for k, v in settings.items():
        cmd += ["--set", "%s=%s" % (k, v)]
    r = harness.run_tool(cmd, timeout_s=CLIENT_TIMEOUT_S)
    assert r.returncode != 0, r.stderr
    return r.stderr


# An unknown listener name and an unknown SASL mechanism are refused at start-up with a message saying what to change.
@pytest.mark.parametrize("settings,message", [
    ({"listeners": "FOO://127.0.0.1:1"}, "add FOO:PLAINTEXT or FOO:SSL to listener.security.protocol.map"),
    ({"sasl.enabled.mechanisms": "GSSAPI"}, "'GSSAPI' is not offered"),
    ({"listeners": "SSL://127.0.0.1:1"}, "needs ssl.keystore.location"),
    ({"inter.broker.listener.name": "NOPE"}, "inter.broker.listener.name 'NOPE' is not a client listener"),
])
def test_bad_listener_settings_stop_startup(tmp_path, settings, message):
    assert message in startup_error(tmp_path, settings)


# ---- TLS with real clients -----------------------------------------------------

# kcat produces over SSL (including a record larger than a TLS record), confluent-kafka
# reads it back over SSL; Metadata on the SSL listener names the SSL port.
@pytest.mark.pyclients
def test_kcat_and_confluent_over_ssl(broker_factory, pki, kcat, tmp_path):
    from confluent_kafka import Consumer
    b, port = ssl_broker(broker_factory, pki)
    ssl_boot = "127.0.0.1:%d" % port
    assert metadata_port(ssl_boot, confluent_ssl(pki)) == port
    assert metadata_port(b.bootstrap, {}) == b.port
    big = "x" * 300000
    values = ["small-%d" % i for i in range(50)] + [big]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(values) + "\n")
    r = harness.run_tool([kcat, "-b", ssl_boot, "-P", "-t", "tls-topic", "-l", str(src),
                          "-X", "message.max.bytes=1000000"] + kcat_ssl(pki), timeout_s=CLIENT_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    c = Consumer(dict({"bootstrap.servers": ssl_boot, "group.id": "tls-g", "auto.offset.reset": "earliest"},
                      **confluent_ssl(pki)))
    try:
        c.subscribe(["tls-topic"])
        got = []
        harness.wait_until(lambda: _poll_into(c, got) and len(got) >= len(values), "records over SSL",
                           deadline_s=CLIENT_TIMEOUT_S)
        assert got == values
    finally:
        c.close()
    r = harness.run_tool([kcat, "-b", ssl_boot, "-C", "-t", "tls-topic", "-o", "beginning", "-e", "-q"]
                         + kcat_ssl(pki), timeout_s=CLIENT_TIMEOUT_S)
    assert r.returncode == 0 and r.stdout.split("\n")[:len(values)] == values, r.stderr


def _poll_into(consumer, out):
    m = consumer.poll(0.5)
    if m is not None and m.error() is None:
        out.append(m.value().decode())
    return True


# ssl.client.auth=required: no certificate, no service; a certificate from the CA is served.
@pytest.mark.pyclients
def test_client_auth_required(broker_factory, pki, kcat):
    b, port = ssl_broker(broker_factory, pki, client_auth="required")
    with pytest.raises((ssl.SSLError, kwire.WireError, ConnectionError, OSError)):
        with tls_conn(port, client_ctx(pki)) as c:
            api_versions_ok(c)  # TLS 1.3: the refusal arrives after the client's handshake
    with tls_conn(port, client_ctx(pki, cert="client")) as c:
        assert api_versions_ok(c)
    r = harness.run_tool([kcat, "-L", "-b", "127.0.0.1:%d" % port, "-m", "10"] + kcat_ssl(pki, cert="client"),
                         timeout_s=CLIENT_TIMEOUT_S)
    assert r.returncode == 0 and "broker 1 at 127.0.0.1:%d" % port in r.stdout, r.stderr
    assert "handshake failed" in b.log_text()


# An expired client certificate is refused, and the broker's log says why.
def test_expired_client_certificate_refused(broker_factory, pki):
    b, port = ssl_broker(broker_factory, pki, client_auth="required")
    with pytest.raises((ssl.SSLError, kwire.WireError, ConnectionError, OSError)):
        with tls_conn(port, client_ctx(pki, cert="expired")) as c:
            api_versions_ok(c)
    harness.wait_until(lambda: "certificate has expired" in b.log_text(), "the broker logs the expired certificate",
                       deadline_s=CLOSE_DEADLINE_S)


# A server certificate from a CA the client does not trust fails the client's
# handshake with a verification error (Python's ssl, and confluent-kafka's error callback).
@pytest.mark.pyclients
def test_untrusted_server_certificate_fails_clearly(broker_factory, pki):
    from confluent_kafka import KafkaException, Producer
    _, port = ssl_broker(broker_factory, pki)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_conn(port, client_ctx(pki, ca="other-ca.pem"))
    errors = []
    p = Producer(dict({"bootstrap.servers": "127.0.0.1:%d" % port, "error_cb": lambda e: errors.append(str(e))},
                      **confluent_ssl(pki, ca="other-ca.pem")))
    with pytest.raises(KafkaException):
        p.list_topics(timeout=3)
    harness.wait_until(lambda: p.poll(0.2) is not None and any("certificate verify failed" in e for e in errors),
                       "the client reports the failed verification", deadline_s=CLIENT_TIMEOUT_S)


# A plaintext Kafka client on the TLS port is disconnected; the broker keeps
# serving both listeners, including a TLS connection opened before.
def test_plaintext_client_on_tls_port_is_closed(broker_factory, pki):
    b, port = ssl_broker(broker_factory, pki)
    ctx = client_ctx(pki)
    with tls_conn(port, ctx) as before:
        assert api_versions_ok(before)
        with kwire.Conn("127.0.0.1", port) as c:
            c.send_bad(kwire.frame(kwire.request_header(kwire.API_API_VERSIONS, 0, 1) + kwire.api_versions_body(0)))
            assert c.wait_closed(CLOSE_DEADLINE_S)
        assert api_versions_ok(before)
    with kwire.Conn("127.0.0.1", b.port) as c:
        assert api_versions_ok(c)
    with tls_conn(port, ctx) as c:
        assert api_versions_ok(c)


# Garbage on the TLS port (random bytes, a TLS record header announcing a huge
# record, a handshake cut short) closes only that connection.
def test_garbage_on_tls_port_closes_only_that_connection(broker_factory, pki):
    b, port = ssl_broker(broker_factory, pki)
    ctx = client_ctx(pki)
    payloads = [kwire.random_bytes(seed, n) for seed, n in ((1, 7), (2, 300), (3, 70000))]
    payloads += [b"\x16\x03\x01\xff\xff" + b"\x01" * 64, b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00",
                 b"\x17\x03\x03\x40\x00" + b"\x00" * 100]
    with tls_conn(port, ctx) as keep:
        for p in payloads:
            with kwire.Conn("127.0.0.1", port) as c:
                c.send_bad(p, half_close=True)
                assert c.wait_closed(CLOSE_DEADLINE_S), p[:16]
            assert api_versions_ok(keep)
    assert b.running()
    with kwire.Conn("127.0.0.1", b.port) as c:
        assert api_versions_ok(c)


# Many TLS clients at once, each pipelining requests, all answered in order.
def test_concurrent_tls_clients(broker_factory, pki):
    _, port = ssl_broker(broker_factory, pki)
    ctx = client_ctx(pki)
    failures = []

    def run():
        try:
            with tls_conn(port, ctx) as c:
                for i in range(20):
                    c.send_frame(kwire.request_header(kwire.API_API_VERSIONS, 0, 100 + i) + kwire.api_versions_body(0))
                for i in range(20):
                    corr = kwire.Reader(c.recv_frame(IO_TIMEOUT_S)).i32()
                    if corr != 100 + i:
                        failures.append("correlation %d, expected %d" % (corr, 100 + i))
        except Exception as e:  # reported below
            failures.append(repr(e))

    threads = [threading.Thread(target=run, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CLIENT_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads) and not failures, failures


# ---- reload ----------------------------------------------------------------------

# A renewed keystore file is served to new connections without a restart; a
# connection opened before keeps working.
def test_certificate_reload(broker_factory, pki):
    b, port = ssl_broker(broker_factory, pki)
    assert served_serial(port, pki) == SERVER_SERIAL
    with tls_conn(port, client_ctx(pki)) as before:
        pki.replace_keystore(RENEWED_SERIAL)
        harness.wait_until(lambda: served_serial(port, pki) == RENEWED_SERIAL, "the renewed certificate is served",
                           deadline_s=RELOAD_DEADLINE_S)
        assert api_versions_ok(before)
    assert "TLS certificates reloaded" in b.log_text()


# A broken keystore leaves the old certificate serving; SIGHUP forces a reread.
def test_bad_reload_keeps_serving_and_sighup_rereads(broker_factory, pki):
    b, port = ssl_broker(broker_factory, pki)
    pki.write("keystore.new", b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    os.replace(pki.path("keystore.new"), pki.path("keystore.pem"))
    harness.wait_until(lambda: "TLS certificates not reloaded" in b.log_text(), "the bad file is reported",
                       deadline_s=RELOAD_DEADLINE_S)
    assert served_serial(port, pki) == SERVER_SERIAL
    pki.replace_keystore(RENEWED_SERIAL)
    b.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: served_serial(port, pki) == RENEWED_SERIAL, "the file is reread",
                       deadline_s=RELOAD_DEADLINE_S)
    assert b.running()


# An encrypted private key is read with ssl.key.password, which DescribeConfigs
# never shows (sensitive, no value); a wrong one stops start-up.
@pytest.mark.pyclients
def test_encrypted_key(broker_factory, pki):
    from confluent_kafka.admin import AdminClient, ConfigResource
    pki.write_keystore("keystore.pem", SERVER_SERIAL, password="s3cret")
    b, port = ssl_broker(broker_factory, pki, **{"ssl.key.password": "s3cret"})
    assert served_serial(port, pki) == SERVER_SERIAL
    res = ConfigResource(ConfigResource.Type.BROKER, "1")
    admin = AdminClient({"bootstrap.servers": b.bootstrap})  # alive until the result is in
    entries = admin.describe_configs([res])[res].result(timeout=IO_TIMEOUT_S)
    pw = entries["ssl.key.password"]
    assert pw.is_sensitive and pw.value is None, (pw.is_sensitive, pw.value)
    err = startup_error(pki.dir, {"listeners": "SSL://127.0.0.1:%d" % harness.free_port(),
                                  "ssl.keystore.location": pki.path("keystore.pem"), "ssl.key.password": "wrong"})
    assert "cannot read the private key" in err
