#!/usr/bin/env python3
"""Test PKI for the loadbalancer scenario: a CA and one apiserver-like serving certificate per
host (SANs: `kubernetes`, the host name, its address and the VIP, as kubeadm makes them).

Files already present are kept; prints "changed" when it wrote anything. Needs the
`cryptography` package (the controller's venv has it).

    make_test_pki.py --out DIR --vip 10.77.12.250 --host m1=10.77.12.11 --host m2=...
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _load_or_make_ca(out: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bool]:
    key_path, crt_path = out / "ca.key", out / "ca.crt"
    if key_path.exists() and crt_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(crt_path.read_bytes()), False
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("airlock-molecule-test-ca"))
        .issuer_name(_name("airlock-molecule-test-ca"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, True


def _serving_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, host: str, ip: str, vip: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName("kubernetes"), x509.DNSName(host)]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in (ip, vip)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the files")
    parser.add_argument("--vip", required=True, help="the API VIP (a SAN of every cert)")
    parser.add_argument("--host", action="append", default=[], help="NAME=IP, repeatable")
    args = parser.parse_args()
    args.out.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca, changed = _load_or_make_ca(args.out)
    for spec in args.host:
        host, ip = spec.split("=", 1)
        key_path, crt_path = args.out / f"{host}.key", args.out / f"{host}.crt"
        if key_path.exists() and crt_path.exists() and not changed:
            continue
        key, cert = _serving_cert(ca_key, ca, host, ip, args.vip)
        _write_key(key_path, key)
        crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        changed = True
    print("changed" if changed else "unchanged")


if __name__ == "__main__":
    main()
