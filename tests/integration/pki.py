"""Test certificates, made at test time with Python's cryptography (Debian's
python3-cryptography): a CA, a server keystore for localhost/127.0.0.1,
client certificates and an unrelated CA. Shared by the TLS and the secure
cluster tests; import it after pytest.importorskip("cryptography")."""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_SERIAL = 0x1001


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_cn, key, issuer_cn, issuer_key, serial, days=(-1, 30), ca=False, san=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject_cn)).issuer_name(_name(issuer_cn))
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem_key(key, password=None):
    enc = (serialization.BestAvailableEncryption(password.encode()) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class Pki:
    """Files under dir: ca.pem, other-ca.pem, keystore.pem (server key + chain),
    client.pem/client.key, expired.pem/expired.key."""

    def __init__(self, d):
        self.dir = d
        self.ca_key, self.other_key = _key(), _key()
        self.ca = _cert("Chronik Test CA", self.ca_key, "Chronik Test CA", self.ca_key, 1, ca=True)
        other = _cert("Unrelated CA", self.other_key, "Unrelated CA", self.other_key, 2, ca=True)
        self.write("ca.pem", _pem_cert(self.ca))
        self.write("other-ca.pem", _pem_cert(other))
        self.write_keystore("keystore.pem", SERVER_SERIAL)
        self.client("client", 0x3003, (-1, 30))
        self.client("expired", 0x4004, (-30, -1))

    def path(self, name):
        return str(self.dir / name)

    def write(self, name, data):
        (self.dir / name).write_bytes(data)

    def write_keystore(self, name, serial, password=None, san=True):
        """san=False: a certificate that names no host (CN only): host-name checks fail on it."""
        key = _key()
        cert = _cert("localhost", key, "Chronik Test CA", self.ca_key, serial, san=san)
        self.write(name, _pem_key(key, password) + _pem_cert(cert) + _pem_cert(self.ca))

    def replace_keystore(self, serial):
        """Atomically, as a certificate renewal tool would."""
        self.write_keystore("keystore.new", serial)
        os.replace(self.path("keystore.new"), self.path("keystore.pem"))

    def client(self, name, serial, days):
        key = _key()
        self.write(name + ".key", _pem_key(key))
        self.write(name + ".pem", _pem_cert(_cert("client-" + name, key, "Chronik Test CA", self.ca_key, serial,
                                                   days=days)))
