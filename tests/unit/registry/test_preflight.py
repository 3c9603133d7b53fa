"""The registry stage's preflight and certificate checks on this machine (hosts with a local
connection): a missing CA and every way a brought certificate can be wrong stop before
anything is installed (Harbor's own checks: test_harbor.py), each host in one line
that names the file and the fix; an issued certificate names every name clients use and is
issued once."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
TAGS = "registry_preflight,registry_pki"
NOW = datetime.datetime.now(datetime.UTC)


class Authority:
    """A CA on disk (ca.crt, ca.key) that signs certificates, itself or through others."""

    def __init__(self, directory: Path, name: str, parent: Authority | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer = parent or self
        tomorrow = NOW + datetime.timedelta(days=1)
        builder = _builder(self.name, parent.name if parent else self.name, self.key, tomorrow)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        self.cert = builder.sign(issuer.key, hashes.SHA256())
        self.crt = directory / f"{name}.crt"
        self.crt.write_bytes(_pem(self.cert))
        self.key_file = directory / f"{name}.key"
        self.key_file.write_bytes(_key_pem(self.key))

    def issue(
        self, path: Path, names: list[str], *, key: ec.EllipticCurvePrivateKey | None = None,
        not_after: datetime.datetime | None = None,
        usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
    ) -> tuple[Path, Path]:  # fmt: skip
        """A server certificate for `names` at PATH.crt, its key at PATH.key."""
        own = ec.generate_private_key(ec.SECP256R1())
        sans = [
            x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n)
            for n in names
        ]
        builder = (
            _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]),
                     self.name, own, not_after or NOW + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), False)
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
        )  # fmt: skip
        crt, key_file = path.with_suffix(".crt"), path.with_suffix(".key")
        crt.write_bytes(_pem(builder.sign(self.key, hashes.SHA256())))
        key_file.write_bytes(_key_pem(key or own))
        return crt, key_file


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
    not_after: datetime.datetime,
) -> x509.CertificateBuilder:  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(NOW, not_after) - datetime.timedelta(days=2))
        .not_valid_after(not_after)
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def run_stage(
    tmp_path: Path, hosts: dict[str, dict[str, Any]], **settings: Any
) -> tuple[int, dict[str, list[str]], dict[str, Any]]:
    """Run playbooks/registry.yml's preflight and certificate tasks on `hosts` (local
    connection); returns the exit code, every failure message by host, and the recap."""
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "airlock_cluster_name": "unit",
                "airlock_credentials_dir": str(tmp_path / "credentials"),
                "registry_impl": "distribution",
                **settings,
            },
            "hosts": hosts,
            "children": {"registry": {"hosts": dict.fromkeys(hosts)}},
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_NOCOLOR="1",
    )
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", tmp_path / "hosts.yml", "--tags", TAGS,
         REPO / "playbooks/registry.yml"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(result.stdout + result.stderr)
    failures: dict[str, list[str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed"):
                    items = [r for r in res.get("results", []) if r.get("failed")] or [res]
                    failures.setdefault(host, []).extend(str(r.get("msg")) for r in items)
    return result.returncode, failures, report["stats"]


@pytest.fixture
def cluster_ca(tmp_path: Path) -> Authority:
    """The cluster CA where the pki stage leaves it."""
    directory = tmp_path / "credentials" / "kubernetes"
    directory.mkdir(parents=True)
    ca = Authority(directory, "ca")
    ca.crt.rename(directory / "ca.crt")
    ca.key_file.rename(directory / "ca.key")
    ca.crt, ca.key_file = directory / "ca.crt", directory / "ca.key"
    return ca


def test_a_missing_cluster_ca_says_to_run_the_pki_stage(tmp_path: Path) -> None:
    code, failures, _ = run_stage(tmp_path, {"m1": {"ip": "127.0.0.1"}})
    assert code != 0
    assert any(
        "ca.crt (registry_ca_file) is not a file on the controller; run the pki stage first" in m
        for m in failures["m1"]
    ), failures


def test_issued_certificates_name_every_client_name_once(
    tmp_path: Path, cluster_ca: Authority
) -> None:
    hosts = {"m1": {"ip": "127.0.0.1"}, "m2": {"ip": "127.0.0.2"}}
    names = ["registry.example.org", "10.1.2.3"]
    code, failures, stats = run_stage(tmp_path, hosts, registry_names=names)
    assert code == 0 and not failures, failures
    creds = tmp_path / "credentials" / "registry"
    assert creds.stat().st_mode & 0o777 == 0o700
    for host, hv in hosts.items():
        cert = x509.load_pem_x509_certificate((creds / f"{host}.crt").read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sorted(sans.get_values_for_type(x509.DNSName)) == [host, "registry.example.org"]
        assert sorted(str(a) for a in sans.get_values_for_type(x509.IPAddress)) == [
            "10.1.2.3",
            hv["ip"],
        ]
        assert cert.issuer == cluster_ca.cert.subject
        cluster_ca.cert.public_key().verify(  # type: ignore[union-attr]
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
        )
        assert (creds / f"{host}.key").stat().st_mode & 0o777 == 0o600
    assert {s["changed"] for s in stats.values()} != {0}
    code, failures, stats = run_stage(tmp_path, hosts, registry_names=names)
    assert code == 0 and {s["changed"] for s in stats.values()} == {0}, (failures, stats)


def test_brought_certificates_are_checked_before_anything_is_installed(
    tmp_path: Path, cluster_ca: Authority
) -> None:
    """One host per case; each fails (or passes) on its own."""
    own = tmp_path / "own"
    own.mkdir()
    root = Authority(own, "root")
    intermediate = Authority(own, "intermediate", parent=root)
    other = Authority(own, "other")
    yesterday = NOW - datetime.timedelta(days=1)
    # host: (issuer, names in the certificate, chain given, issue() options, the failure or None)
    cases: dict[str, tuple[Authority, list[str], bool, dict[str, Any], str | None]] = {
        "good": (intermediate, ["good", "127.0.0.1"], True, {}, None),
        "wild": (intermediate, ["*.example.org", "wild", "127.0.0.1"], True, {}, None),
        "nochain": (intermediate, ["nochain", "127.0.0.1"], False, {}, "does not chain to"),
        "otherca": (other, ["otherca", "127.0.0.1"], True, {}, "does not chain to"),
        "wrongkey": (
            intermediate, ["wrongkey", "127.0.0.1"], True,
            {"key": ec.generate_private_key(ec.SECP256R1())}, "is not the key of",
        ),
        "expired": (
            intermediate, ["expired", "127.0.0.1"], True, {"not_after": yesterday}, ", not now;"
        ),
        "noip": (intermediate, ["noip"], True, {}, "does not name 127.0.0.1,"),
        "client": (
            intermediate, ["client", "127.0.0.1"], True,
            {"usage": ExtendedKeyUsageOID.CLIENT_AUTH}, "is not for a TLS server",
        ),
    }  # fmt: skip
    hosts = {}
    for host, (issuer, names, chain, options, _) in cases.items():
        crt, key = issuer.issue(own / host, names, **options)
        hosts[host] = {
            "ip": "127.0.0.1",
            "registry_tls_cert_file": str(crt),
            "registry_tls_key_file": str(key),
            "registry_tls_chain_file": str(intermediate.crt) if chain else "",
            "registry_names": ["registry.example.org"] if host == "wild" else [],
        }
    code, failures, _ = run_stage(tmp_path, hosts, registry_ca_file=str(root.crt))
    assert code != 0
    for host, (*_, expected) in cases.items():
        if expected is None:
            assert host not in failures, failures[host]
            continue
        [message] = failures[host]
        assert expected in message, message
        assert message.startswith("registry: ") and "\n" not in message, message
    assert not (tmp_path / "credentials" / "registry" / "good.crt").exists()


def test_a_brought_certificate_needs_its_key(tmp_path: Path, cluster_ca: Authority) -> None:
    crt, _ = cluster_ca.issue(tmp_path / "server", ["m1", "127.0.0.1"])
    code, failures, _ = run_stage(
        tmp_path, {"m1": {"ip": "127.0.0.1"}}, registry_tls_cert_file=str(crt)
    )
    assert code != 0
    [message] = failures["m1"]
    assert "set registry_tls_cert_file and registry_tls_key_file together" in message


def test_an_issued_certificate_due_for_renewal_is_issued_again(
    tmp_path: Path, cluster_ca: Authority
) -> None:
    hosts = {"m1": {"ip": "127.0.0.1"}}
    code, failures, _ = run_stage(tmp_path, hosts)
    assert code == 0 and not failures, failures
    crt = tmp_path / "credentials" / "registry" / "m1.crt"
    key = tmp_path / "credentials" / "registry" / "m1.key"
    first = x509.load_pem_x509_certificate(crt.read_bytes())
    # The same certificate as if issued long ago: 20 days left, inside the 30-day window.
    own = serialization.load_pem_private_key(key.read_bytes(), password=None)
    soon = NOW + datetime.timedelta(days=20)
    builder = (
        x509.CertificateBuilder()
        .subject_name(first.subject)
        .issuer_name(first.issuer)
        .public_key(own.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=800))
        .not_valid_after(soon)
    )
    for ext in first.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    crt.write_bytes(_pem(builder.sign(cluster_ca.key, hashes.SHA256())))

    # 10 days of warning: not due yet, kept as it is.
    code, failures, stats = run_stage(tmp_path, hosts, registry_cert_renew_days=10)
    assert code == 0 and stats["m1"]["changed"] == 0, (failures, stats)
    assert x509.load_pem_x509_certificate(crt.read_bytes()).not_valid_after_utc < soon + (
        datetime.timedelta(seconds=1)
    )

    # The default 30 days: issued again, same key, same names, a full validity.
    code, failures, stats = run_stage(tmp_path, hosts)
    assert code == 0 and not failures and stats["m1"]["changed"] > 0, (failures, stats)
    renewed = x509.load_pem_x509_certificate(crt.read_bytes())
    assert renewed.not_valid_after_utc > NOW + datetime.timedelta(days=800)
    assert renewed.public_key() == first.public_key()
    san = x509.SubjectAlternativeName
    assert (
        renewed.extensions.get_extension_for_class(san).value
        == first.extensions.get_extension_for_class(san).value
    )
    # And then it is not due any more: a third run changes nothing.
    code, _, stats = run_stage(tmp_path, hosts)
    assert code == 0 and stats["m1"]["changed"] == 0, stats
