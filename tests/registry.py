"""A real registry on loopback for tests, and skopeo to push into it.

Debian's `docker-registry` (CNCF distribution 2.8) serves HTTPS on 127.0.0.1 with a
certificate from a CA made here (`cryptography`), optionally behind htpasswd (bcrypt)
authentication; skopeo (verifying TLS with that CA) pushes OCI archives into it. Both come
from scripts/apt-packages; a missing one fails the test with the command that installs it.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import re
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.ports import free_port

REGISTRY = shutil.which("docker-registry") or shutil.which("registry")
SKOPEO = shutil.which("skopeo")
READY_DEADLINE = 20.0
USER = "puller"
# What turns TLS verification (or TLS itself) off in containerd's, crictl's and registries'
# settings: `skip_verify`, `insecure_skip_verify`, `--insecure`, `plain-http` / `plain_http`.
# Nothing airlock writes may say it (tests/unit/test_tls_verified.py, and the rendered files
# in tests/integration/containerd/test_registry_tls.py).
UNVERIFIED = re.compile(r"skip_verify|insecure|plain[-_]http", re.IGNORECASE)


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    certs: Path  # a skopeo --cert-dir: ca.crt
    context: ssl.SSLContext  # verifies the registry with its CA
    credentials: str | None = None  # USER:PASSWORD when htpasswd authentication is on

    @property
    def ca(self) -> Path:
        return self.certs / "ca.crt"


def require_tools() -> None:
    missing = [n for n, p in (("docker-registry", REGISTRY), ("skopeo", SKOPEO)) if not p]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: apt-get install docker-registry skopeo "
            "(scripts/bootstrap installs them)"
        )


def make_ca_and_cert(directory: Path) -> None:
    """certs/ca.crt (a new CA), server.crt and server.key (127.0.0.1, signed by it)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airlock test registry CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "certs").mkdir()
    (directory / "certs" / "ca.crt").write_bytes(ca.public_bytes(pem))
    (directory / "server.crt").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "server.key").chmod(0o600)


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        # passlib (in the lock for Ansible's password_hash) hashes with libxcrypt through
        # the standard library's `crypt`, which Python 3.11 marks deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        from passlib.hash import bcrypt

        return str(bcrypt.using(rounds=10).hash(password))


@contextlib.contextmanager
def serve(
    base: Path,
    authenticate: bool = False,
    *,
    readonly: bool = False,
    storage: Path | None = None,
    tls_from: Path | None = None,
) -> Iterator[Registry]:
    """docker-registry on a free loopback port over TLS (its CA and files under `base`);
    with `authenticate`, htpasswd (bcrypt) authentication for USER and a random password.
    `readonly` refuses every push (distribution's maintenance mode); `storage` is its image
    directory (default BASE/data), so two registries can serve the same images; `tls_from`
    is another registry's `base` whose CA and certificate it serves instead of new ones.
    Stopped on exit."""
    require_tools()
    if tls_from is None:
        make_ca_and_cert(base)
    else:
        shutil.copytree(tls_from / "certs", base / "certs")
        for name in ("server.crt", "server.key"):
            shutil.copy2(tls_from / name, base / name)
    host = f"127.0.0.1:{free_port()}"
    config: dict = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(storage or base / "data")}},
        "http": {
            "addr": host,
            "tls": {"certificate": str(base / "server.crt"), "key": str(base / "server.key")},
        },
    }
    if readonly:
        config["storage"]["maintenance"] = {
            "readonly": {"enabled": True},
            "uploadpurging": {"enabled": False},
        }
    credentials = None
    if authenticate:
        password = secrets.token_urlsafe(16)
        credentials = f"{USER}:{password}"
        htpasswd = base / "htpasswd"
        htpasswd.touch(mode=0o600)
        htpasswd.write_text(f"{USER}:{_bcrypt(password)}\n")
        config["auth"] = {"htpasswd": {"realm": "airlock-test", "path": str(htpasswd)}}
    (base / "config.yml").write_text(yaml.safe_dump(config))
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen(
        [str(REGISTRY), "serve", str(base / "config.yml")], stdout=log, stderr=log
    )
    context = ssl.create_default_context(cafile=str(base / "certs" / "ca.crt"))
    deadline = time.monotonic() + READY_DEADLINE
    try:
        while True:
            try:
                with urllib.request.urlopen(f"https://{host}/v2/", context=context, timeout=2):
                    break
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and authenticate:  # it serves, and asks for credentials
                    break
                raise
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"docker-registry did not serve https://{host}/v2/ within "
                        f"{READY_DEADLINE:.0f}s: {(base / 'registry.log').read_text()[-2000:]}"
                    )
                time.sleep(0.1)
        yield Registry(host, base / "certs", context, credentials)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def push(registry: Registry, archive: Path, reference: str) -> str:
    """skopeo copy of an OCI archive to docker://HOST/REFERENCE (TLS verified with the
    registry's CA, its credentials if it has any); returns the manifest digest."""
    digest_file = archive.with_name(archive.name + ".digest")
    creds = ["--dest-creds", registry.credentials] if registry.credentials else []
    subprocess.run(
        [
            str(SKOPEO), "copy", "--quiet", "--dest-cert-dir", str(registry.certs), *creds,
            "--digestfile", str(digest_file),
            f"oci-archive:{archive}", f"docker://{registry.host}/{reference}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return digest_file.read_text().strip()
