#!/usr/bin/env python3
"""Stage the loadbalancer scenario's apiserver stand-ins on the controller.

Makes a test CA and one apiserver-like serving certificate per host (SANs: `kubernetes`, the
host name, its address and the VIP, as kubeadm makes them), then one tar per host with
everything the host needs, at the paths it needs them (one transfer per host instead of one
per file, which matters on a loaded machine):

    etc/kubernetes/pki/ca.crt            the test CA, where kubeadm puts the cluster CA
    etc/airlock-readyz/tls.{crt,key}     the host's serving certificate and key (0600)
    etc/airlock-readyz/env               READYZ_BIND / READYZ_PORT for the unit
    usr/local/bin/airlock-readyz         readyz_server.py
    etc/systemd/system/airlock-readyz.service

CA and keys already present are kept; prints "changed" when it wrote anything. Needs the
`cryptography` package (the controller's venv has it).

    stage_standin.py --out DIR --vip 10.77.12.250 --port 6443 --host m1=10.77.12.11 ...
"""

from __future__ import annotations

import argparse
import datetime
import io
import ipaddress
import tarfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)
HERE = Path(__file__).resolve().parent


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


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def write_archive(out: Path, host: str, ip: str, port: int) -> bool:
    """out/<host>.tar with the stand-in's files; True when its content changed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "etc/kubernetes/pki/ca.crt", (out / "ca.crt").read_bytes(), 0o644)
        _add(tar, "etc/airlock-readyz/tls.crt", (out / f"{host}.crt").read_bytes(), 0o644)
        _add(tar, "etc/airlock-readyz/tls.key", (out / f"{host}.key").read_bytes(), 0o600)
        _add(
            tar, "etc/airlock-readyz/env", f"READYZ_BIND={ip}\nREADYZ_PORT={port}\n".encode(), 0o644
        )
        _add(tar, "usr/local/bin/airlock-readyz", (HERE / "readyz_server.py").read_bytes(), 0o755)
        unit = (HERE / "airlock-readyz.service").read_bytes()
        _add(tar, "etc/systemd/system/airlock-readyz.service", unit, 0o644)
    path = out / f"{host}.tar"
    if path.exists() and path.read_bytes() == buf.getvalue():
        return False
    path.write_bytes(buf.getvalue())
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for the files")
    parser.add_argument("--vip", required=True, help="the API VIP (a SAN of every cert)")
    parser.add_argument("--port", type=int, default=6443, help="port the stand-ins listen on")
    parser.add_argument("--host", action="append", default=[], help="NAME=IP, repeatable")
    args = parser.parse_args()
    args.out.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca, changed = _load_or_make_ca(args.out)
    for spec in args.host:
        host, ip = spec.split("=", 1)
        key_path, crt_path = args.out / f"{host}.key", args.out / f"{host}.crt"
        if changed or not (key_path.exists() and crt_path.exists()):
            key, cert = _serving_cert(ca_key, ca, host, ip, args.vip)
            _write_key(key_path, key)
            crt_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            changed = True
        changed = write_archive(args.out, host, ip, args.port) or changed
    print("changed" if changed else "unchanged")


if __name__ == "__main__":
    main()
