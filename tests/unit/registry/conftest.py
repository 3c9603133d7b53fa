"""Fixtures: a CA made here, and the Harbor stand-in serving HTTPS with a certificate from it.

`harbor` is a fresh stand-in per test (its state starts with Harbor's `library` project);
the test fails when any request or answer departed from Harbor's API description.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .harbor_standin import ADMIN_PASSWORD, HarborStandIn, serve


@dataclass
class Pki:
    ca: Path  # signed the stand-in's certificate
    other_ca: Path  # a CA that signed nothing here
    cert: Path  # for 127.0.0.1 and localhost
    key: Path
    wrong_name_cert: Path  # from `ca`, but only for harbor.example.internal
    wrong_name_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(directory: Path, stem: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"airlock test {stem}"))
        .issuer_name(_name(f"airlock test {stem}"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{stem}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def _server(
    directory: Path,
    stem: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    names: list[x509.GeneralName],
) -> tuple[Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(stem))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("harbor-pki")
    ca, ca_key, ca_cert = _ca(directory, "ca")
    other_ca, _key, _cert = _ca(directory, "other-ca")
    cert, key = _server(
        directory,
        "harbor",
        ca_key,
        ca_cert,
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
    )
    wrong_cert, wrong_key = _server(
        directory, "elsewhere", ca_key, ca_cert, [x509.DNSName("harbor.example.internal")]
    )
    return Pki(ca, other_ca, cert, key, wrong_cert, wrong_key)


@dataclass
class RunningHarbor:
    standin: HarborStandIn
    url: str
    ca: Path

    def params(self, **extra: Any) -> dict[str, Any]:
        """Connection options of a harbor_* module for this stand-in, plus `extra`."""
        return {
            "url": self.url,
            "ca_cert": str(self.ca),
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "timeout": 10,
            **extra,
        }


@pytest.fixture
def harbor(pki: Pki) -> Iterator[RunningHarbor]:
    standin = HarborStandIn()
    with serve(standin, pki.cert, pki.key) as url:
        yield RunningHarbor(standin, url, pki.ca)
    assert not standin.violations, "requests or answers outside Harbor's API description:\n" + (
        "\n".join(standin.violations)
    )
