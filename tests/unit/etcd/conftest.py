"""Fixtures: a real etcd (Debian's binary) with TLS on loopback, and a module runner.

Certificates are made here with the `cryptography` package; every member gets free
random ports; readiness is a poll with a deadline; every process is stopped after.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.ports import free_port

# tests/conftest.py (the lead's) puts collections/ on sys.path too; this keeps the
# etcd tests runnable on their own.
_COLLECTIONS = Path(__file__).resolve().parents[3] / "collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))


ETCD = shutil.which("etcd")
ETCDCTL = shutil.which("etcdctl")
READY_DEADLINE = 30.0

pytestmark = pytest.mark.skipif(not (ETCD and ETCDCTL), reason="needs etcd and etcdctl")


# --- PKI ----------------------------------------------------------------------------
@dataclass
class Pki:
    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_params(self) -> dict[str, str]:
        return {
            "ca_cert": str(self.ca),
            "client_cert": str(self.client_cert),
            "client_key": str(self.client_key),
        }


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name | None,
    common_name: str,
    *,
    is_ca: bool = False,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ca_key if is_ca else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if is_ca else ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if not is_ca:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, _ = _issue(ca_key, None, "test-etcd-ca", is_ca=True)
    paths: dict[str, Path] = {}
    for label, server in (("server", True), ("client", False)):
        cert, key = _issue(ca_key, ca_cert.subject, f"test-{label}", server=server)
        paths[f"{label}_cert"] = directory / f"{label}.crt"
        paths[f"{label}_key"] = directory / f"{label}.key"
        paths[f"{label}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(paths[f"{label}_key"], key)
    ca = directory / "ca.crt"
    ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return Pki(directory=directory, ca=ca, **paths)


# --- etcd processes -----------------------------------------------------------------


@dataclass
class Member:
    name: str
    data_dir: Path
    pki: Pki
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def client_url(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://127.0.0.1:{self.peer_port}"

    def start(self, initial_cluster: str, state: str = "new", token: str = "test") -> None:
        p = self.pki
        argv = [
            ETCD,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={token}",
            f"--cert-file={p.server_cert}",
            f"--key-file={p.server_key}",
            f"--trusted-ca-file={p.ca}",
            "--client-cert-auth",
            f"--peer-cert-file={p.server_cert}",
            f"--peer-key-file={p.server_key}",
            f"--peer-trusted-ca-file={p.ca}",
            "--peer-client-cert-auth",
            "--heartbeat-interval=50",
            "--election-timeout=500",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
        log = open(self.data_dir.parent / f"{self.name}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(argv, stdout=log, stderr=log)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.data_dir.parent / f"{self.name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def etcdctl(pki: Pki, endpoints: list[str], *args: str, check: bool = True) -> Any:
    argv = [
        ETCDCTL,
        f"--endpoints={','.join(endpoints)}",
        f"--cacert={pki.ca}",
        f"--cert={pki.client_cert}",
        f"--key={pki.client_key}",
        "--dial-timeout=2s",
        "--command-timeout=5s",
        *args,
    ]
    env = {**os.environ, "ETCDCTL_API": "3", "LC_ALL": "C"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {proc.stderr[-500:]}")
    return proc


def wait_ready(member: Member, deadline: float = READY_DEADLINE) -> None:
    """Poll the member's status endpoint until it answers (works for learners too)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if member.process is not None and member.process.poll() is not None:
            raise AssertionError(f"etcd {member.name} exited:\n{member.log()}")
        proc = etcdctl(
            member.pki, [member.client_url], "endpoint", "status", "-w", "json", check=False
        )
        if proc.returncode == 0:
            status = json.loads(proc.stdout)[0]["Status"]
            if status.get("leader"):
                return
        time.sleep(0.2)
    raise AssertionError(f"etcd {member.name} not ready after {deadline}s:\n{member.log()}")


@dataclass
class Cluster:
    pki: Pki
    root: Path
    members: list[Member] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members if m.process is not None]

    def new_member(self, name: str) -> Member:
        member = Member(name=name, data_dir=self.root / f"{name}.etcd", pki=self.pki)
        self.members.append(member)
        return member

    def bootstrap(self, size: int) -> None:
        fresh = [self.new_member(f"n{i}") for i in range(1, size + 1)]
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in fresh)
        for member in fresh:
            member.start(cluster)
        for member in fresh:
            wait_ready(member)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def stop(self) -> None:
        for member in self.members:
            member.stop()


@pytest.fixture
def cluster_factory(pki: Pki, tmp_path: Path):
    clusters: list[Cluster] = []

    def make(size: int) -> Cluster:
        cluster = Cluster(pki=pki, root=tmp_path / f"cluster{len(clusters)}")
        cluster.root.mkdir()
        clusters.append(cluster)
        cluster.bootstrap(size)
        return cluster

    yield make
    for cluster in clusters:
        cluster.stop()


@pytest.fixture(scope="module")
def shared_cluster(pki: Pki, tmp_path_factory: pytest.TempPathFactory):
    """A three-member cluster for read-only tests of one test file."""
    cluster = Cluster(pki=pki, root=tmp_path_factory.mktemp("shared"))
    try:
        cluster.bootstrap(3)
        yield cluster
    finally:
        cluster.stop()
